/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-resp.c: the typed decoders of imap/resp.c on real server responses, field by
 * field, and on responses that do not fit the grammar (which must be protocol errors,
 * never guesses or crashes).
 */
#include "config.h"

#include <string.h>

#include "resp.h"

static ImapResponse *
parse_n(const char *text, gsize len)
{
	g_autoptr(ImapParser) p = imap_parser_new(NULL);
	g_autoptr(GError) error = NULL;
	gsize consumed = 0;

	g_assert_cmpint(imap_parser_feed(p, (const guint8 *)text, len, &consumed, &error), ==,
			IMAP_PARSE_RESPONSE);
	g_assert_no_error(error);
	g_assert_cmpuint(consumed, ==, len);
	return imap_parser_take(p);
}

static ImapResponse *
parse(const char *text)
{
	return parse_n(text, strlen(text));
}

static const ImapArg *
arg_nth_for_test(const ImapResponse *r, guint i)
{
	g_assert_cmpuint(i, <, r->args->len);
	return g_ptr_array_index(r->args, i);
}

#define PROTO_ERR(call)                                                                            \
	do {                                                                                       \
		g_autoptr(GError) e_ = NULL;                                                       \
		g_assert_false((call) != 0);                                                       \
		g_assert_error(e_, IMAP_ERROR, IMAP_ERROR_PROTOCOL);                               \
	} while (0)

static void
test_kind(void)
{
	static const struct {
		const char *in;
		ImapUntaggedKind kind;
	} cases[] = {
		{"* OK hi\r\n", IMAP_UNTAGGED_STATUS},
		{"* BYE x\r\n", IMAP_UNTAGGED_STATUS},
		{"* CAPABILITY IMAP4rev1\r\n", IMAP_UNTAGGED_CAPABILITY},
		{"* ENABLED\r\n", IMAP_UNTAGGED_ENABLED},
		{"* NAMESPACE NIL NIL NIL\r\n", IMAP_UNTAGGED_NAMESPACE},
		{"* list () \"/\" x\r\n", IMAP_UNTAGGED_LIST},
		{"* LSUB () \"/\" x\r\n", IMAP_UNTAGGED_LSUB},
		{"* STATUS x (MESSAGES 1)\r\n", IMAP_UNTAGGED_STATUS_DATA},
		{"* FLAGS ()\r\n", IMAP_UNTAGGED_FLAGS},
		{"* 3 EXISTS\r\n", IMAP_UNTAGGED_EXISTS},
		{"* 3 RECENT\r\n", IMAP_UNTAGGED_RECENT},
		{"* 3 EXPUNGE\r\n", IMAP_UNTAGGED_EXPUNGE},
		{"* 3 FETCH (UID 1)\r\n", IMAP_UNTAGGED_FETCH},
		{"* SEARCH\r\n", IMAP_UNTAGGED_SEARCH},
		{"* ESEARCH (TAG \"a\")\r\n", IMAP_UNTAGGED_ESEARCH},
		{"* VANISHED 1\r\n", IMAP_UNTAGGED_VANISHED},
		{"* QUOTA \"\" ()\r\n", IMAP_UNTAGGED_QUOTA},
		{"* QUOTAROOT INBOX\r\n", IMAP_UNTAGGED_QUOTAROOT},
		{"* ID NIL\r\n", IMAP_UNTAGGED_ID},
		{"* 3 FOO\r\n", IMAP_UNTAGGED_OTHER},
		{"* X-FOO 3\r\n", IMAP_UNTAGGED_OTHER},
		{"* EXISTS 3\r\n", IMAP_UNTAGGED_OTHER},
		{"* (x)\r\n", IMAP_UNTAGGED_OTHER},
		{"A1 OK x\r\n", IMAP_UNTAGGED_OTHER},
		{"+ x\r\n", IMAP_UNTAGGED_OTHER},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(ImapResponse) r = parse(cases[i].in);

		g_assert_cmpint(imap_resp_untagged_kind(r), ==, cases[i].kind);
	}
}

static void
test_capability(void)
{
	g_autoptr(ImapResponse) r = parse("* OK [CAPABILITY IMAP4rev1 SASL-IR auth=PLAIN "
					  "LITERAL+] Dovecot ready.\r\n");
	g_autoptr(ImapResponse) r2 = parse("* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n");
	g_autoptr(ImapResponse) r3 = parse("* ENABLED CONDSTORE qresync\r\n");
	g_autoptr(ImapResponse) bad = parse("* CAPABILITY IMAP4rev1 \"X\"\r\n");
	g_autoptr(ImapResponse) other = parse("* OK [ALERT] x\r\n");
	g_auto(GStrv) c1 = imap_resp_capability(r, NULL);
	g_auto(GStrv) c2 = imap_resp_capability(r2, NULL);
	g_auto(GStrv) c3 = imap_resp_enabled(r3, NULL);
	const char *e1[] = {"IMAP4REV1", "SASL-IR", "AUTH=PLAIN", "LITERAL+", NULL};
	const char *e2[] = {"IMAP4REV1", "STARTTLS", "LOGINDISABLED", NULL};
	const char *e3[] = {"CONDSTORE", "QRESYNC", NULL};

	g_assert_true(g_strv_equal((const char *const *)c1, e1));
	g_assert_true(g_strv_equal((const char *const *)c2, e2));
	g_assert_true(g_strv_equal((const char *const *)c3, e3));
	PROTO_ERR(imap_resp_capability(bad, &e_));
	PROTO_ERR(imap_resp_capability(other, &e_));
	PROTO_ERR(imap_resp_enabled(r2, &e_));
}

static void
test_namespace(void)
{
	g_autoptr(ImapResponse) r =
		parse("* NAMESPACE ((\"\" \"/\")(\"&AMQ-\" \".\")) ((\"~\" \"/\")) ((\"#shared/\" "
		      "\"/\" \"X-PARAM\" (\"FLAG1\" \"FLAG2\"))(\"#public\" NIL))\r\n");
	g_autoptr(ImapResponse) r2 = parse("* NAMESPACE ((\"INBOX.\" \".\")) NIL NIL\r\n");
	g_autoptr(ImapNamespaces) ns = imap_resp_namespace(r, FALSE, NULL);
	g_autoptr(ImapNamespaces) ns2 = imap_resp_namespace(r2, FALSE, NULL);
	ImapNamespace *n;
	static const char *const bad[] = {
		"* NAMESPACE NIL NIL\r\n",
		"* NAMESPACE ((\"\" \"//\")) NIL NIL\r\n",
		"* NAMESPACE ((\"\")) NIL NIL\r\n",
		"* NAMESPACE ((\"\" \"/\" \"X\")) NIL NIL\r\n",
		"* NAMESPACE \"x\" NIL NIL\r\n",
		"* NAMESPACE ((\"\" (\"/\"))) NIL NIL\r\n",
		"* NAMESPACE ((\"\xff\" \"/\")) NIL NIL\r\n",
		"* NAMESPACE NIL NIL NIL NIL\r\n",
	};

	g_assert_nonnull(ns);
	g_assert_cmpuint(ns->personal->len, ==, 2);
	n = g_ptr_array_index(ns->personal, 0);
	g_assert_cmpstr(n->prefix, ==, "");
	g_assert_cmpint(n->delim, ==, '/');
	n = g_ptr_array_index(ns->personal, 1);
	g_assert_cmpstr(n->prefix, ==, "\xc3\x84"); /* &AMQ- is U+00C4 */
	g_assert_cmpint(n->delim, ==, '.');
	g_assert_cmpuint(ns->other->len, ==, 1);
	n = g_ptr_array_index(ns->other, 0);
	g_assert_cmpstr(n->prefix, ==, "~");
	g_assert_cmpuint(ns->shared->len, ==, 2);
	n = g_ptr_array_index(ns->shared, 0);
	g_assert_cmpstr(n->prefix, ==, "#shared/");
	g_assert_cmpint(n->delim, ==, '/');
	n = g_ptr_array_index(ns->shared, 1);
	g_assert_cmpstr(n->prefix, ==, "#public");
	g_assert_cmpint(n->delim, ==, 0);
	g_assert_cmpuint(ns2->personal->len, ==, 1);
	g_assert_cmpuint(ns2->other->len, ==, 0);
	g_assert_cmpuint(ns2->shared->len, ==, 0);
	n = g_ptr_array_index(ns2->personal, 0);
	g_assert_cmpstr(n->prefix, ==, "INBOX.");
	g_assert_cmpint(n->delim, ==, '.');
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(ImapResponse) b = parse(bad[i]);

		PROTO_ERR(imap_resp_namespace(b, FALSE, &e_));
	}
}

static void
test_list(void)
{
	static const struct {
		const char *in;
		gboolean utf8;
		const char *name;
		char delim;
		guint attrs;
	} cases[] = {
		{"* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n", FALSE, "Sent", '/',
		 IMAP_MBOX_HASNOCHILDREN | IMAP_MBOX_SENT},
		{"* LIST (\\HasNoChildren \\All) \"/\" \"[Gmail]/All Mail\"\r\n", FALSE,
		 "[Gmail]/All Mail", '/', IMAP_MBOX_HASNOCHILDREN | IMAP_MBOX_ALL},
		{"* LIST (\\Noselect \\HasChildren) \"/\" \"[Gmail]\"\r\n", FALSE, "[Gmail]", '/',
		 IMAP_MBOX_NOSELECT | IMAP_MBOX_HASCHILDREN},
		{"* LIST (\\Subscribed \\NonExistent) \"/\" \"Foo\" (\"CHILDINFO\" "
		 "(\"SUBSCRIBED\"))\r\n",
		 FALSE, "Foo", '/', IMAP_MBOX_SUBSCRIBED | IMAP_MBOX_NONEXISTENT},
		{"* LIST (\\Marked \\Unmarked \\Remote \\NoInferiors) NIL inbox\r\n", FALSE,
		 "INBOX", 0,
		 IMAP_MBOX_MARKED | IMAP_MBOX_UNMARKED | IMAP_MBOX_REMOTE | IMAP_MBOX_NOINFERIORS},
		{"* LIST (\\archive \\DRAFTS \\Flagged \\Junk \\Trash \\Important \\X-Unknown "
		 "$Foo) \".\" INBOX.Archive\r\n",
		 FALSE, "INBOX.Archive", '.',
		 IMAP_MBOX_ARCHIVE | IMAP_MBOX_DRAFTS | IMAP_MBOX_FLAGGED | IMAP_MBOX_JUNK |
			 IMAP_MBOX_TRASH | IMAP_MBOX_IMPORTANT},
		{"* LIST () \".\" INBOX.&ZeVnLIqe-\r\n", FALSE,
		 "INBOX.\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", '.', 0},
		{"* LIST () \".\" INBOX.&ZeVnLIqe-\r\n", TRUE, "INBOX.&ZeVnLIqe-", '.', 0},
		/* not valid modified UTF-7 but valid UTF-8: kept */
		{"* LIST () \"/\" \"caf\xc3\xa9 & co\"\r\n", FALSE, "caf\xc3\xa9 & co", '/', 0},
		{"* LIST () \"/\" {7}\r\nfoo\"bar\r\n", FALSE, "foo\"bar", '/', 0},
		{"* LIST () \"\\\\\" \"a\\\\b\"\r\n", FALSE, "a\\b", '\\', 0},
		{"* LSUB () \".\" #news.comp.mail.misc\r\n", FALSE, "#news.comp.mail.misc", '.',
		 IMAP_MBOX_SUBSCRIBED},
		{"* LIST (\\HasNoChildren) \"/\" \"Old\" (\"OLDNAME\" (\"Older\"))\r\n", FALSE,
		 "Old", '/', IMAP_MBOX_HASNOCHILDREN},
	};
	static const char *const bad[] = {
		"* LIST \\Noselect \"/\" x\r\n",
		"* LIST () \"/\"\r\n",
		"* LIST () \"//\" x\r\n",
		"* LIST () \"/\" (x)\r\n",
		"* LIST (\"\\Sent\") \"/\" x\r\n",
		"* LIST () \"/\" x (\"CHILDINFO\")\r\n",
		"* LIST () \"/\" x (\"CHILDINFO\" (\"SUBSCRIBED\")) y\r\n",
		"* LIST () \"/\" \"\xff\xfe\"\r\n",
		"* STATUS () \"/\" x\r\n",
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(ImapResponse) r = parse(cases[i].in);
		g_autoptr(GError) error = NULL;
		g_autoptr(ImapMailboxInfo) info = imap_resp_list(r, cases[i].utf8, &error);

		g_assert_no_error(error);
		g_assert_cmpstr(info->name, ==, cases[i].name);
		g_assert_cmpint(info->delim, ==, cases[i].delim);
		g_assert_cmphex(info->attrs, ==, cases[i].attrs);
		g_assert_cmpuint(info->status.have, ==, 0);
	}
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(ImapResponse) r = parse(bad[i]);

		PROTO_ERR(imap_resp_list(r, FALSE, &e_));
	}
	{
		static const char nul[] = "* LIST () \"/\" {3}\r\na\0b\r\n";
		g_autoptr(ImapResponse) r = parse_n(nul, sizeof(nul) - 1);

		PROTO_ERR(imap_resp_list(r, FALSE, &e_));
	}
}

static void
test_status(void)
{
	g_autoptr(ImapResponse) r = parse("* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292 "
					  "RECENT 2 UIDVALIDITY 4294967295 UNSEEN 0 "
					  "HIGHESTMODSEQ 90060128194045007 SIZE 12345678901 "
					  "X-UNKNOWN (a b) APPENDLIMIT NIL)\r\n");
	g_autoptr(ImapResponse) r2 = parse("* STATUS \"&AMQ-\" ()\r\n");
	g_autofree char *name = NULL;
	g_autofree char *name2 = NULL;
	ImapStatus st;
	static const char *const bad[] = {
		"* STATUS x (MESSAGES)\r\n",
		"* STATUS x (MESSAGES a)\r\n",
		"* STATUS x (MESSAGES 4294967296)\r\n",
		"* STATUS x (UIDNEXT -1)\r\n",
		"* STATUS x MESSAGES 1\r\n",
		"* STATUS (MESSAGES 1)\r\n",
		"* STATUS x (MESSAGES 1) y\r\n",
		"* STATUS x ((MESSAGES) 1)\r\n",
	};

	g_assert_true(imap_resp_status(r, FALSE, &name, &st, NULL));
	g_assert_cmpstr(name, ==, "blurdybloop");
	g_assert_cmphex(st.have, ==, 0x7f);
	g_assert_cmpuint(st.messages, ==, 231);
	g_assert_cmpuint(st.uidnext, ==, 44292);
	g_assert_cmpuint(st.recent, ==, 2);
	g_assert_cmpuint(st.uidvalidity, ==, 4294967295u);
	g_assert_cmpuint(st.unseen, ==, 0);
	g_assert_cmpuint(st.highestmodseq, ==, 90060128194045007ull);
	g_assert_cmpuint(st.size, ==, 12345678901ull);
	g_assert_true(imap_resp_status(r2, FALSE, &name2, &st, NULL));
	g_assert_cmpstr(name2, ==, "\xc3\x84");
	g_assert_cmpuint(st.have, ==, 0);
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(ImapResponse) b = parse(bad[i]);

		PROTO_ERR(imap_resp_status(b, FALSE, NULL, NULL, &e_));
	}
}

static void
test_flags_numbers(void)
{
	g_autoptr(ImapResponse) r = parse("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen "
					  "\\Draft $Forwarded Junk)\r\n");
	g_autoptr(ImapResponse) pf = parse("* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] "
					   "Limited\r\n");
	g_autoptr(ImapResponse) bad = parse("* FLAGS (\\Seen \"x\")\r\n");
	g_autoptr(ImapResponse) bad2 = parse("* FLAGS \\Seen\r\n");
	g_autoptr(ImapResponse) ex = parse("* 172 EXISTS\r\n");
	g_autoptr(ImapResponse) rc = parse("* 0 RECENT\r\n");
	g_autoptr(ImapResponse) exp = parse("* 4294967295 EXPUNGE\r\n");
	g_autoptr(ImapResponse) big = parse("* 4294967296 EXISTS\r\n");
	g_autoptr(ImapResponse) extra = parse("* 3 EXISTS x\r\n");
	g_auto(GStrv) f = imap_resp_flags(arg_nth_for_test(r, 1), NULL);
	g_auto(GStrv) f2 = imap_resp_flags(g_ptr_array_index(pf->code_args, 0), NULL);
	const char *e1[] = {"\\Answered", "\\Flagged",	"\\Deleted", "\\Seen",
			    "\\Draft",	  "$Forwarded", "Junk",	     NULL};
	const char *e2[] = {"\\Deleted", "\\Seen", "\\*", NULL};
	guint32 n;

	g_assert_true(g_strv_equal((const char *const *)f, e1));
	g_assert_true(g_strv_equal((const char *const *)f2, e2));
	PROTO_ERR(imap_resp_flags(arg_nth_for_test(bad, 1), &e_));
	PROTO_ERR(imap_resp_flags(arg_nth_for_test(bad2, 1), &e_));
	PROTO_ERR(imap_resp_flags(NULL, &e_));
	g_assert_true(imap_resp_number(ex, &n, NULL));
	g_assert_cmpuint(n, ==, 172);
	g_assert_true(imap_resp_number(rc, &n, NULL));
	g_assert_cmpuint(n, ==, 0);
	g_assert_true(imap_resp_number(exp, &n, NULL));
	g_assert_cmpuint(n, ==, 4294967295u);
	PROTO_ERR(imap_resp_number(big, &n, &e_));
	PROTO_ERR(imap_resp_number(extra, &n, &e_));
	PROTO_ERR(imap_resp_number(r, &n, &e_));
}

static void
check_addr(GPtrArray *list, guint i, const char *name, const char *mailbox, const char *host)
{
	ImapAddress *a;

	g_assert_cmpuint(i, <, list->len);
	a = g_ptr_array_index(list, i);
	g_assert_cmpstr(a->name, ==, name);
	g_assert_cmpstr(a->mailbox, ==, mailbox);
	g_assert_cmpstr(a->host, ==, host);
}

static void
test_fetch_rfc3501(void)
{
	g_autoptr(ImapResponse) r = parse(
		"* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" "
		"RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" "
		"\"IMAP4rev1 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" "
		"\"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
		"((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" "
		"\"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John "
		"Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL "
		"\"<B27397-0100000@cac.washington.edu>\") BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" "
		"\"US-ASCII\") NIL NIL \"7BIT\" 3028 92) UID 4827313 MODSEQ (624140003))\r\n");
	g_autoptr(GError) error = NULL;
	guint32 seq = 0;
	g_autoptr(ImapMessage) m = imap_resp_fetch(r, &seq, &error);
	const char *flags[] = {"\\Seen", NULL};
	ImapEnvelope *e;

	g_assert_no_error(error);
	g_assert_cmpuint(seq, ==, 12);
	g_assert_cmphex(m->have, ==,
			IMAP_FETCH_UID | IMAP_FETCH_FLAGS | IMAP_FETCH_SIZE |
				IMAP_FETCH_INTERNALDATE | IMAP_FETCH_ENVELOPE | IMAP_FETCH_MODSEQ);
	g_assert_cmpuint(m->uid, ==, 4827313);
	g_assert_true(g_strv_equal((const char *const *)m->flags, flags));
	g_assert_cmpuint(m->size, ==, 4286);
	g_assert_cmpint(m->internaldate, ==, 837596665); /* 1996-07-17 09:44:25 UTC */
	g_assert_cmpint(m->internaldate_tz, ==, -420);
	g_assert_cmpuint(m->modseq, ==, 624140003);
	g_assert_null(m->header);
	g_assert_null(m->bodystructure);
	e = m->envelope;
	g_assert_cmpstr(e->date, ==, "Wed, 17 Jul 1996 02:23:25 -0700 (PDT)");
	g_assert_cmpstr(e->subject, ==, "IMAP4rev1 WG mtg summary and minutes");
	g_assert_cmpuint(e->from->len, ==, 1);
	check_addr(e->from, 0, "Terry Gray", "gray", "cac.washington.edu");
	check_addr(e->sender, 0, "Terry Gray", "gray", "cac.washington.edu");
	check_addr(e->reply_to, 0, "Terry Gray", "gray", "cac.washington.edu");
	g_assert_cmpuint(e->to->len, ==, 1);
	check_addr(e->to, 0, NULL, "imap", "cac.washington.edu");
	g_assert_cmpuint(e->cc->len, ==, 2);
	check_addr(e->cc, 0, NULL, "minutes", "CNRI.Reston.VA.US");
	check_addr(e->cc, 1, "John Klensin", "KLENSIN", "MIT.EDU");
	g_assert_cmpuint(e->bcc->len, ==, 0);
	g_assert_null(e->in_reply_to);
	g_assert_cmpstr(e->message_id, ==, "<B27397-0100000@cac.washington.edu>");
}

static void
test_fetch_envelope_odd(void)
{
	/* literal subject, escaped quotes, groups, empty strings, NIL everywhere */
	g_autoptr(ImapResponse) r = parse(
		"* 3 FETCH (UID 44 ENVELOPE (NIL {11}\r\nHello \"you\" ((\"A \\\"Q\\\" B\" NIL "
		"\"a\" \"example.com\")) NIL NIL ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL "
		"NIL NIL)) ((NIL NIL \"team\" NIL)(\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"x.org\")"
		"(NIL NIL \"k\" \"y.org\")(NIL NIL NIL NIL)(\"\" NIL \"z\" \"z.org\")) NIL \"\" "
		"NIL))\r\n");
	g_autoptr(GError) error = NULL;
	g_autoptr(ImapMessage) m = imap_resp_fetch(r, NULL, &error);
	ImapEnvelope *e;

	g_assert_no_error(error);
	g_assert_cmphex(m->have, ==, IMAP_FETCH_UID | IMAP_FETCH_ENVELOPE);
	g_assert_null(m->flags);
	e = m->envelope;
	g_assert_null(e->date);
	g_assert_cmpstr(e->subject, ==, "Hello \"you\"");
	check_addr(e->from, 0, "A \"Q\" B", "a", "example.com");
	g_assert_cmpuint(e->sender->len, ==, 0);
	g_assert_cmpuint(e->reply_to->len, ==, 0);
	/* a group start is {name = group, mailbox = host = NULL}; the end is dropped */
	g_assert_cmpuint(e->to->len, ==, 1);
	check_addr(e->to, 0, "undisclosed-recipients", NULL, NULL);
	g_assert_cmpuint(e->cc->len, ==, 4);
	check_addr(e->cc, 0, "team", NULL, NULL);
	check_addr(e->cc, 1, "=?utf-8?q?J=C3=B6rg?=", "j", "x.org");
	check_addr(e->cc, 2, NULL, "k", "y.org");
	check_addr(e->cc, 3, "", "z", "z.org");
	g_assert_cmpuint(e->bcc->len, ==, 0);
	g_assert_cmpstr(e->in_reply_to, ==, "");
	g_assert_null(e->message_id);
}

static void
test_fetch_header_bodystructure(void)
{
	g_autoptr(ImapResponse) r = parse(
		"* 2 FETCH (UID 10 RFC822.SIZE 44827 BODY[HEADER] {28}\r\nSubject: hi\r\nFrom: "
		"a@b.c\r\n\r\n BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL "
		"NIL \"7BIT\" 1152 23)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" "
		"\"cc \\\"d\\\"\") \"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" "
		"\"BASE64\" 4554 73) \"MIXED\") X-GM-LABELS (\\Inbox \"a b\") FLAGS ())\r\n");
	g_autoptr(GError) error = NULL;
	g_autoptr(ImapMessage) m = imap_resp_fetch(r, NULL, &error);
	gsize len;
	const char *h;

	g_assert_no_error(error);
	g_assert_cmphex(m->have, ==,
			IMAP_FETCH_UID | IMAP_FETCH_SIZE | IMAP_FETCH_HEADER |
				IMAP_FETCH_BODYSTRUCTURE | IMAP_FETCH_FLAGS);
	g_assert_cmpuint(m->size, ==, 44827);
	h = g_bytes_get_data(m->header, &len);
	g_assert_cmpuint(len, ==, 28);
	g_assert_cmpmem(h, len, "Subject: hi\r\nFrom: a@b.c\r\n\r\n", 28);
	g_assert_cmpstr(m->bodystructure, ==,
			"((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23) "
			"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc \\\"d\\\"\") "
			"\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" "
			"4554 73) \"MIXED\")");
	g_assert_nonnull(m->flags);
	g_assert_null(m->flags[0]);
	/* the serialized BODYSTRUCTURE parses back to the same tree */
	{
		g_autofree char *line =
			g_strdup_printf("* 1 FETCH (BODYSTRUCTURE %s)\r\n", m->bodystructure);
		g_autoptr(ImapResponse) r2 = parse(line);
		g_autoptr(ImapMessage) m2 = imap_resp_fetch(r2, NULL, NULL);

		g_assert_cmpstr(m2->bodystructure, ==, m->bodystructure);
	}
	/* a literal with CRLF in BODYSTRUCTURE is written back as a literal */
	{
		g_autoptr(ImapResponse) r4 =
			parse("* 1 FETCH (BODYSTRUCTURE (\"TEXT\" {4}\r\na\r\nb "
			      "NIL))\r\n");
		g_autoptr(ImapMessage) m4 = imap_resp_fetch(r4, NULL, NULL);

		g_assert_cmpstr(m4->bodystructure, ==, "(\"TEXT\" {4}\r\na\r\nb NIL)");
	}
	/* the last of two headers wins */
	{
		g_autoptr(ImapResponse) r5 = parse("* 1 FETCH (BODY[HEADER] \"a\" RFC822.HEADER "
						   "\"bc\")\r\n");
		g_autoptr(ImapMessage) m5 = imap_resp_fetch(r5, NULL, NULL);

		g_assert_cmpuint(g_bytes_get_size(m5->header), ==, 2);
	}
	/* NIL header */
	{
		g_autoptr(ImapResponse) r3 = parse("* 1 FETCH (UID 3 BODY[HEADER] NIL)\r\n");
		g_autoptr(ImapMessage) m3 = imap_resp_fetch(r3, NULL, NULL);

		g_assert_true(m3->have & IMAP_FETCH_HEADER);
		g_assert_cmpuint(g_bytes_get_size(m3->header), ==, 0);
	}
}

/* BODY[HEADER.FIELDS (REFERENCES)]: the field unfolded, NULL when absent (but marked as
 * fetched), whatever the case of the names and the quoting of the list. */
static void
test_fetch_references(void)
{
	static const struct {
		const char *in;
		const char *want;
	} cases[] = {
		{"* 1 FETCH (UID 4 BODY[HEADER.FIELDS (REFERENCES)] {38}\r\nReferences: <a@x>\r\n"
		 "\t<b@x>\r\n  <c@x>\r\n\r\n)\r\n",
		 "<a@x> <b@x> <c@x>"},
		{"* 1 FETCH (UID 4 BODY[HEADER.FIELDS (REFERENCES)] {2}\r\n\r\n)\r\n", NULL},
		{"* 1 FETCH (UID 4 BODY[HEADER.FIELDS (REFERENCES)] NIL)\r\n", NULL},
		{"* 1 FETCH (UID 4 body[header.fields (\"References\")] \"references:<z@y>\")\r\n",
		 "<z@y>"},
		{"* 1 FETCH (UID 4 BODY[HEADER.FIELDS (REFERENCES)] {34}\r\nX-References: 1\r\n"
		 "References: <d@x>)\r\n",
		 "<d@x>"},
		{"* 1 FETCH (UID 4 BODY[HEADER.FIELDS (REFERENCES)] \"References:\")\r\n", ""},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(ImapResponse) r = parse(cases[i].in);
		g_autoptr(GError) error = NULL;
		g_autoptr(ImapMessage) m = imap_resp_fetch(r, NULL, &error);

		g_assert_no_error(error);
		g_assert_cmphex(m->have, ==, IMAP_FETCH_UID | IMAP_FETCH_REFERENCES);
		g_assert_cmpstr(m->references, ==, cases[i].want);
	}
	/* HEADER.FIELDS.NOT is not ours: skipped */
	{
		g_autoptr(ImapResponse) r = parse("* 1 FETCH (UID 4 BODY[HEADER.FIELDS.NOT (X)] "
						  "\"References: <a@x>\")\r\n");
		g_autoptr(ImapMessage) m = imap_resp_fetch(r, NULL, NULL);

		g_assert_cmphex(m->have, ==, IMAP_FETCH_UID);
		g_assert_null(m->references);
	}
}

static gboolean
count_sink(const guint8 *data, gsize len, gpointer user_data)
{
	*(gsize *)user_data += len;
	return TRUE;
}

static void
test_fetch_streamed(void)
{
	/* literals that went to the sink: BODY[HEADER] is not decoded, BODY[] is reported */
	ImapParserLimits lim = {1024, 8, 1 << 20, 4, 1 << 20};
	g_autoptr(ImapParser) p = imap_parser_new(&lim);
	static const char in[] = "* 1 FETCH (UID 9 BODY[HEADER] {5}\r\nabcde BODY[]<10> "
				 "{6}\r\nfghijk)\r\n";
	g_autoptr(ImapResponse) r = NULL;
	g_autoptr(ImapMessage) m = NULL;
	ImapFetchSection sec = {0};
	gsize consumed, got = 0;

	imap_parser_set_sink(p, count_sink, &got);
	g_assert_cmpint(imap_parser_feed(p, (const guint8 *)in, sizeof(in) - 1, &consumed, NULL),
			==, IMAP_PARSE_RESPONSE);
	r = imap_parser_take(p);
	g_assert_cmpuint(got, ==, 11);
	m = imap_resp_fetch(r, NULL, NULL);
	g_assert_cmphex(m->have, ==, IMAP_FETCH_UID);
	g_assert_null(m->header);
	g_assert_true(imap_resp_fetch_section(r, &sec, NULL));
	g_assert_cmpstr(sec.section, ==, "");
	g_assert_cmpint(sec.origin, ==, 10);
	g_assert_true(sec.data->streamed);
	g_assert_cmpuint(sec.data->len, ==, 6);
	g_free(sec.section);
}

static void
test_fetch_gmail_exchange(void)
{
	g_autoptr(ImapResponse) g = parse(
		"* 1 FETCH (X-GM-THRID 1278455344230334865 X-GM-MSGID 1278455344230334865 "
		"X-GM-LABELS (\\Important \\Sent \"Muy Importante\") UID 4 MODSEQ (1234) FLAGS "
		"(\\Seen))\r\n");
	g_autoptr(ImapResponse) x = parse(
		"* 3 FETCH (UID 7 BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL "
		"NIL \"quoted-printable\" 1234 40 NIL NIL NIL NIL)(\"application\" \"pdf\" "
		"(\"name\" \"a b.pdf\") NIL NIL \"base64\" 88000 NIL (\"attachment\" "
		"(\"filename\" \"a b.pdf\")) NIL NIL) \"mixed\" (\"boundary\" \"_002_\") NIL "
		"\"en-US\"))\r\n");
	g_autoptr(ImapMessage) gm = imap_resp_fetch(g, NULL, NULL);
	g_autoptr(ImapMessage) xm = imap_resp_fetch(x, NULL, NULL);
	const char *flags[] = {"\\Seen", NULL};

	g_assert_cmphex(gm->have, ==, IMAP_FETCH_UID | IMAP_FETCH_MODSEQ | IMAP_FETCH_FLAGS);
	g_assert_cmpuint(gm->uid, ==, 4);
	g_assert_cmpuint(gm->modseq, ==, 1234);
	g_assert_true(g_strv_equal((const char *const *)gm->flags, flags));
	g_assert_cmphex(xm->have, ==, IMAP_FETCH_UID | IMAP_FETCH_BODYSTRUCTURE);
	g_assert_cmpstr(
		xm->bodystructure, ==,
		"((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" "
		"1234 40 NIL NIL NIL NIL) (\"application\" \"pdf\" (\"name\" \"a b.pdf\") NIL "
		"NIL \"base64\" 88000 NIL (\"attachment\" (\"filename\" \"a b.pdf\")) NIL NIL) "
		"\"mixed\" (\"boundary\" \"_002_\") NIL \"en-US\")");
}

/* issue 9: NIL where a value belongs is not a reason to drop the message: the item is
 * simply absent from ->have and the caller falls back */
static void
test_fetch_nil_items(void)
{
	g_autoptr(ImapResponse) r = parse("* 2 FETCH (UID 9 FLAGS () RFC822.SIZE NIL "
					  "INTERNALDATE NIL ENVELOPE NIL)\r\n");
	g_autoptr(ImapResponse) r2 = parse("* 2 FETCH (UID 9 RFC822.SIZE 12 INTERNALDATE NIL "
					   "ENVELOPE (\"Tue, 2 Jan 2024 12:00:00 +0000\" NIL NIL NIL "
					   "NIL NIL NIL NIL NIL NIL))\r\n");
	g_autoptr(GError) error = NULL;
	g_autoptr(ImapMessage) m = imap_resp_fetch(r, NULL, &error);
	g_autoptr(ImapMessage) m2 = NULL;

	g_assert_no_error(error);
	g_assert_cmphex(m->have, ==, IMAP_FETCH_UID | IMAP_FETCH_FLAGS);
	g_assert_cmpuint(m->uid, ==, 9);
	g_assert_null(m->envelope);
	m2 = imap_resp_fetch(r2, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmphex(m2->have, ==, IMAP_FETCH_UID | IMAP_FETCH_SIZE | IMAP_FETCH_ENVELOPE);
	g_assert_cmpuint(m2->size, ==, 12);
	g_assert_cmpstr(m2->envelope->date, ==, "Tue, 2 Jan 2024 12:00:00 +0000");
	g_assert_null(m2->envelope->subject);
}

static void
test_fetch_bad(void)
{
	static const char *const bad[] = {
		"* 1 FETCH UID 3\r\n",
		"* 1 FETCH (UID)\r\n",
		"* 1 FETCH (UID 0)\r\n",
		"* 1 FETCH (UID x)\r\n",
		"* 1 FETCH (UID 4294967296)\r\n",
		"* 1 FETCH (\"UID\" 3)\r\n",
		"* 1 FETCH (FLAGS \\Seen)\r\n",
		"* 1 FETCH (RFC822.SIZE -1)\r\n",
		"* 1 FETCH (INTERNALDATE \"yesterday\")\r\n",
		"* 1 FETCH (INTERNALDATE \"31-Feb-2020 00:00:00 +0000\")\r\n",
		"* 1 FETCH (ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL))\r\n",
		"* 1 FETCH (ENVELOPE (NIL NIL ((NIL NIL \"a\")) NIL NIL NIL NIL NIL NIL NIL))\r\n",
		"* 1 FETCH (ENVELOPE (NIL NIL \"x\" NIL NIL NIL NIL NIL NIL NIL))\r\n",
		"* 1 FETCH (ENVELOPE (NIL (x) NIL NIL NIL NIL NIL NIL NIL NIL))\r\n",
		"* 1 FETCH (ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL ATOM))\r\n",
		"* 1 FETCH (MODSEQ 5)\r\n",
		"* 1 FETCH (MODSEQ (5 6))\r\n",
		"* 1 FETCH (BODY[HEADER] (x))\r\n",
		"* 1 FETCH (BODY[HEADER.FIELDS (REFERENCES)] (x))\r\n",
		"* 1 FETCH (BODYSTRUCTURE \"x\")\r\n",
		"* x FETCH (UID 1)\r\n",
		"* 1 FETCH (UID 1) x\r\n",
	};

	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(ImapResponse) r = parse(bad[i]);

		PROTO_ERR(imap_resp_fetch(r, NULL, &e_));
	}
	/* regression (fuzz): a literal8 with a NUL in BODYSTRUCTURE was cut at the NUL, and
	 * envelope strings were cut the same way */
	{
		static const char bs[] =
			"* 1 FETCH (BODYSTRUCTURE (\"TEXT\" ~{3}\r\na\0b NIL))\r\n";
		static const char env[] =
			"* 1 FETCH (ENVELOPE (NIL {3}\r\na\0b NIL NIL NIL NIL NIL "
			"NIL NIL NIL))\r\n";
		g_autoptr(ImapResponse) r1 = parse_n(bs, sizeof(bs) - 1);
		g_autoptr(ImapResponse) r2 = parse_n(env, sizeof(env) - 1);

		PROTO_ERR(imap_resp_fetch(r1, NULL, &e_));
		PROTO_ERR(imap_resp_fetch(r2, NULL, &e_));
	}
}

static void
test_fetch_section(void)
{
	static const struct {
		const char *in;
		gboolean found;
		const char *section;
		gint64 origin;
		ImapArgType type;
		const char *data;
	} cases[] = {
		{"* 7 FETCH (UID 3 BODY[]<0> {5}\r\nabcde)\r\n", TRUE, "", 0, IMAP_ARG_LITERAL,
		 "abcde"},
		{"* 7 FETCH (BODY[] {3}\r\nxyz UID 3)\r\n", TRUE, "", -1, IMAP_ARG_LITERAL, "xyz"},
		{"* 7 FETCH (UID 3 BODY[1.2.MIME]<1024> NIL)\r\n", TRUE, "1.2.MIME", 1024,
		 IMAP_ARG_NIL, NULL},
		{"* 7 FETCH (UID 3 body[header.fields (DATE FROM)] \"x\")\r\n", TRUE,
		 "header.fields (DATE FROM)", -1, IMAP_ARG_QUOTED, "x"},
		{"* 7 FETCH (UID 3 BINARY[1] ~{2}\r\nab)\r\n", TRUE, "1", -1, IMAP_ARG_LITERAL,
		 "ab"},
		{"* 7 FETCH (UID 3 BODY[HEADER] {2}\r\nab BODY[TEXT] \"t\")\r\n", TRUE, "TEXT", -1,
		 IMAP_ARG_QUOTED, "t"},
		{"* 7 FETCH (UID 3 BODY[HEADER] {2}\r\nab)\r\n", FALSE, NULL, 0, 0, NULL},
		{"* 7 FETCH (UID 3 BINARY.SIZE[1] 4 FLAGS ())\r\n", FALSE, NULL, 0, 0, NULL},
		{"* 7 FETCH (UID 3)\r\n", FALSE, NULL, 0, 0, NULL},
	};
	static const char *const bad[] = {
		"* 7 FETCH (BODY[] (x))\r\n",
		"* 7 FETCH (BODY[] 3)\r\n",
		"* 7 FETCH BODY[]\r\n",
		"* 7 FETCH (BODY[])\r\n",
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(ImapResponse) r = parse(cases[i].in);
		g_autoptr(GError) error = NULL;
		ImapFetchSection s = {0};
		gboolean found = imap_resp_fetch_section(r, &s, &error);

		g_assert_no_error(error);
		g_assert_cmpint(found, ==, cases[i].found);
		if (!found)
			continue;
		g_assert_cmpstr(s.section, ==, cases[i].section);
		g_assert_cmpint(s.origin, ==, cases[i].origin);
		g_assert_cmpint(s.data->type, ==, cases[i].type);
		g_assert_cmpstr(s.data->str, ==, cases[i].data);
		g_free(s.section);
	}
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(ImapResponse) r = parse(bad[i]);

		PROTO_ERR(imap_resp_fetch_section(r, NULL, &e_));
	}
}

static void
test_search(void)
{
	g_autoptr(ImapResponse) r = parse("* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ "
					  "917162500)\r\n");
	g_autoptr(ImapResponse) r2 = parse("* SEARCH\r\n");
	g_autoptr(ImapResponse) r3 = parse("* SEARCH 4294967295 1 \r\n");
	g_autoptr(ImapUidSet) s = NULL, s2 = NULL, s3 = NULL;
	g_autofree char *t = NULL, *t3 = NULL;
	guint64 ms = 1;
	static const char *const bad[] = {
		"* SEARCH 0\r\n",
		"* SEARCH 1 x\r\n",
		"* SEARCH 1 (MODSEQ x)\r\n",
		"* SEARCH (MODSEQ 5) 1\r\n",
		"* SEARCH 1 (FOO 5)\r\n",
		"* SEARCH 4294967296\r\n",
	};

	s = imap_resp_search(r, &ms, NULL);
	t = imap_uidset_to_string(s);
	g_assert_cmpstr(t, ==, "2,5:7,11:12,18:20,23");
	g_assert_cmpuint(ms, ==, 917162500);
	s2 = imap_resp_search(r2, &ms, NULL);
	g_assert_true(imap_uidset_is_empty(s2));
	g_assert_cmpuint(ms, ==, 0);
	s3 = imap_resp_search(r3, NULL, NULL);
	t3 = imap_uidset_to_string(s3);
	g_assert_cmpuint(imap_uidset_count(s3), ==, 2);
	g_assert_true(imap_uidset_contains(s3, 1));
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(ImapResponse) b = parse(bad[i]);

		PROTO_ERR(imap_resp_search(b, NULL, &e_));
	}
}

static void
test_esearch(void)
{
	static const struct {
		const char *in;
		const char *tag;
		const char *set;
	} cases[] = {
		{"* ESEARCH (TAG \"A282\") UID MIN 2 COUNT 3 ALL 2,10:11\r\n", "A282", "2,10:11"},
		{"* ESEARCH (TAG \"A283\") UID COUNT 0\r\n", "A283", ""},
		{"* ESEARCH (TAG \"A284\") UID MIN 4 MAX 9\r\n", "A284", "4,9"},
		{"* ESEARCH UID ALL 1:3 MODSEQ 5\r\n", NULL, "1:3"},
		{"* ESEARCH (TAG \"a\" MAILBOX \"x\" UIDVALIDITY 3) UID ALL 7\r\n", "a", "7"},
		{"* ESEARCH\r\n", NULL, ""},
	};
	static const char *const bad[] = {
		"* ESEARCH (TAG) UID ALL 1\r\n", "* ESEARCH (FOO \"a\") UID ALL 1\r\n",
		"* ESEARCH UID ALL\r\n",	 "* ESEARCH UID ALL x\r\n",
		"* ESEARCH UID ALL \"1\"\r\n",	 "* ESEARCH UID MIN 0\r\n",
		"* ESEARCH UID COUNT x\r\n",	 "* ESEARCH UID (x) 1\r\n",
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(ImapResponse) r = parse(cases[i].in);
		g_autoptr(GError) error = NULL;
		g_autofree char *tag = NULL;
		g_autoptr(ImapUidSet) s = imap_resp_esearch(r, &tag, &error);
		g_autofree char *txt = NULL;

		g_assert_no_error(error);
		txt = imap_uidset_to_string(s);
		g_assert_cmpstr(tag, ==, cases[i].tag);
		g_assert_cmpstr(txt, ==, cases[i].set);
	}
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(ImapResponse) b = parse(bad[i]);

		PROTO_ERR(imap_resp_esearch(b, NULL, &e_));
	}
}

static void
test_vanished(void)
{
	g_autoptr(ImapResponse) r = parse("* VANISHED (EARLIER) 41,43:116,118,120:211,214:540\r\n");
	g_autoptr(ImapResponse) r2 = parse("* VANISHED 405,407,410,425\r\n");
	g_autoptr(ImapUidSet) s = NULL, s2 = NULL;
	gboolean earlier = FALSE;
	static const char *const bad[] = {
		"* VANISHED\r\n",     "* VANISHED (EARLIER)\r\n", "* VANISHED (LATER) 1\r\n",
		"* VANISHED 1 2\r\n", "* VANISHED x\r\n",
	};

	s = imap_resp_vanished(r, &earlier, NULL);
	g_assert_true(earlier);
	g_assert_cmpuint(imap_uidset_count(s), ==, 1 + 74 + 1 + 92 + 327);
	s2 = imap_resp_vanished(r2, &earlier, NULL);
	g_assert_false(earlier);
	g_assert_cmpuint(imap_uidset_count(s2), ==, 4);
	g_assert_true(imap_uidset_contains(s2, 425));
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(ImapResponse) b = parse(bad[i]);

		PROTO_ERR(imap_resp_vanished(b, NULL, &e_));
	}
}

static void
test_quota(void)
{
	g_autoptr(ImapResponse) r = parse("* QUOTA \"\" (STORAGE 10 512 MESSAGE 1 1000 "
					  "X-FOO 3 4)\r\n");
	g_autoptr(ImapResponse) r2 = parse("* QUOTA \"User quota\" (STORAGE 10 512)\r\n");
	g_autoptr(ImapResponse) qr = parse("* QUOTAROOT INBOX \"\" \"User quota\"\r\n");
	g_autoptr(ImapResponse) qr2 = parse("* QUOTAROOT comp.mail.mime\r\n");
	g_auto(GStrv) roots = NULL, roots2 = NULL;
	ImapQuota q;
	const char *e[] = {"", "User quota", NULL};
	static const char *const bad[] = {
		"* QUOTA \"\" (STORAGE 10)\r\n",    "* QUOTA \"\" (STORAGE x 5)\r\n",
		"* QUOTA \"\" STORAGE 1 5\r\n",	    "* QUOTA (STORAGE 1 5)\r\n",
		"* QUOTA \"\" ((STORAGE) 1 5)\r\n",
	};

	g_assert_true(imap_resp_quota(r, &q, NULL));
	g_assert_cmpstr(q.root, ==, "");
	g_assert_cmpuint(q.storage_used_kb, ==, 10);
	g_assert_cmpuint(q.storage_limit_kb, ==, 512);
	g_assert_cmpuint(q.messages_used, ==, 1);
	g_assert_cmpuint(q.messages_limit, ==, 1000);
	g_free(q.root);
	g_assert_true(imap_resp_quota(r2, &q, NULL));
	g_assert_cmpstr(q.root, ==, "User quota");
	g_assert_cmpuint(q.messages_used, ==, 0);
	g_assert_cmpuint(q.messages_limit, ==, G_MAXUINT64);
	g_free(q.root);
	roots = imap_resp_quotaroot(qr, FALSE, NULL);
	g_assert_true(g_strv_equal((const char *const *)roots, e));
	roots2 = imap_resp_quotaroot(qr2, FALSE, NULL);
	g_assert_cmpuint(g_strv_length(roots2), ==, 0);
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(ImapResponse) b = parse(bad[i]);

		PROTO_ERR(imap_resp_quota(b, NULL, &e_));
	}
	PROTO_ERR(imap_resp_quotaroot(r, FALSE, &e_));
}

static void
test_codes(void)
{
	g_autoptr(ImapResponse) ap = parse("A003 OK [APPENDUID 38505 3955] APPEND completed\r\n");
	g_autoptr(ImapResponse) cp = parse("A004 OK [COPYUID 38505 304,319:320 3956:3958] "
					   "Done\r\n");
	g_autoptr(ImapResponse) cpbad = parse("A004 OK [COPYUID 38505 304,319 3956:3958] x\r\n");
	g_autoptr(ImapResponse) uv = parse("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n");
	g_autoptr(ImapResponse) hm = parse("* OK [HIGHESTMODSEQ 715194045007]\r\n");
	g_autoptr(ImapResponse) md = parse("d105 OK [MODIFIED 7,9] Conditional STORE "
					   "failed\r\n");
	g_autoptr(ImapResponse) plain = parse("* OK hi\r\n");
	g_autoptr(ImapUidSet) src = NULL, dst = NULL, mod = NULL;
	g_autofree char *s1 = NULL, *s2 = NULL, *s3 = NULL;
	guint32 v = 0, u = 0;
	guint64 n = 0;

	g_assert_true(imap_resp_code_appenduid(ap, &v, &u));
	g_assert_cmpuint(v, ==, 38505);
	g_assert_cmpuint(u, ==, 3955);
	g_assert_false(imap_resp_code_appenduid(cp, &v, &u));
	g_assert_true(imap_resp_code_copyuid(cp, &v, &src, &dst));
	s1 = imap_uidset_to_string(src);
	s2 = imap_uidset_to_string(dst);
	g_assert_cmpstr(s1, ==, "304,319:320");
	g_assert_cmpstr(s2, ==, "3956:3958");
	g_assert_false(imap_resp_code_copyuid(cpbad, NULL, NULL, NULL));
	g_assert_false(imap_resp_code_copyuid(plain, NULL, NULL, NULL));
	g_assert_true(imap_resp_code_number(uv, "UIDVALIDITY", &n));
	g_assert_cmpuint(n, ==, 3857529045u);
	g_assert_false(imap_resp_code_number(uv, "UIDNEXT", &n));
	g_assert_true(imap_resp_code_number(hm, "HIGHESTMODSEQ", &n));
	g_assert_cmpuint(n, ==, 715194045007ull);
	mod = imap_resp_code_modified(md);
	s3 = imap_uidset_to_string(mod);
	g_assert_cmpstr(s3, ==, "7,9");
	g_assert_null(imap_resp_code_modified(plain));
}

static void
test_error_code(void)
{
	static const struct {
		const char *in;
		ImapErrorCode code;
	} cases[] = {
		{"A1 NO [NONEXISTENT] Unknown Mailbox: Foo (Failure)\r\n", IMAP_ERROR_NONEXISTENT},
		{"A1 NO [ALREADYEXISTS] Mailbox exists\r\n", IMAP_ERROR_ALREADYEXISTS},
		{"A1 NO [OVERQUOTA] Quota exceeded\r\n", IMAP_ERROR_OVERQUOTA},
		{"A1 NO [TRYCREATE] No such mailbox\r\n", IMAP_ERROR_NONEXISTENT},
		{"A1 NO [EXPUNGEISSUED] gone\r\n", IMAP_ERROR_EXPUNGEISSUED},
		{"A1 BAD [CLIENTBUG] oops\r\n", IMAP_ERROR_FAILED},
		{"A1 NO [ALERT] oops\r\n", IMAP_ERROR_FAILED},
		{"A1 NO oops\r\n", IMAP_ERROR_FAILED},
		{"A1 OK [NONEXISTENT] hm\r\n", IMAP_ERROR_FAILED},
		{"* NO [UNAVAILABLE] later\r\n", IMAP_ERROR_UNAVAILABLE},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(ImapResponse) r = parse(cases[i].in);

		g_assert_cmpint(imap_resp_error_code(r, IMAP_ERROR_FAILED), ==, cases[i].code);
	}
}

static void
test_datetime(void)
{
	static const struct {
		const char *in;
		gboolean ok;
		gint64 utc;
		gint tz;
	} cases[] = {
		{"17-Jul-1996 02:44:25 -0700", TRUE, 837596665, -420},
		{" 1-Jan-1970 00:00:00 +0000", TRUE, 0, 0},
		{"1-jan-1970 05:30:00 +0530", TRUE, 0, 330},
		{"01-Feb-2024 23:59:59 +1400", TRUE, 1706831999 - 14 * 3600, 840},
		{"29-Feb-2024 12:00:00 -0000", TRUE, 1709208000, 0},
		{"31-Dec-2016 23:59:60 +0000", TRUE, 1483228799, 0},
		{"29-Feb-2023 12:00:00 +0000", FALSE, 0, 0},
		{"17-Jul-1996 02:44:25", FALSE, 0, 0},
		{"17-Jux-1996 02:44:25 -0700", FALSE, 0, 0},
		{"17-Jul-96 02:44:25 -0700", FALSE, 0, 0},
		{"17-Jul-1996 24:00:00 -0700", FALSE, 0, 0},
		{"17-Jul-1996 02:44:25 -0760", FALSE, 0, 0},
		{"17-Jul-1996 02:44:25 -0700 ", FALSE, 0, 0},
		{"", FALSE, 0, 0},
		{"32-Jul-1996 02:44:25 -0700", FALSE, 0, 0},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		gint64 utc = -1;
		gint tz = -1;

		g_assert_cmpint(imap_parse_datetime(cases[i].in, &utc, &tz), ==, cases[i].ok);
		if (!cases[i].ok)
			continue;
		g_assert_cmpint(utc, ==, cases[i].utc);
		g_assert_cmpint(tz, ==, cases[i].tz);
	}
	g_assert_false(imap_parse_datetime(NULL, NULL, NULL));
}

static void
test_wrong_kind(void)
{
	/* every decoder on a response of another kind: an error, never a crash */
	g_autoptr(ImapResponse) r = parse("* 3 FETCH (UID 1)\r\n");
	g_autoptr(ImapResponse) t = parse("A1 OK done\r\n");
	g_autoptr(ImapResponse) c = parse("+ go\r\n");
	ImapResponse *all[] = {r, t, c};

	for (gsize i = 0; i < G_N_ELEMENTS(all); i++) {
		ImapResponse *x = all[i];

		if (x != r) {
			PROTO_ERR(imap_resp_fetch(x, NULL, &e_));
			PROTO_ERR(imap_resp_fetch_section(x, NULL, &e_));
			PROTO_ERR(imap_resp_number(x, NULL, &e_));
		}
		PROTO_ERR(imap_resp_capability(x, &e_));
		PROTO_ERR(imap_resp_enabled(x, &e_));
		PROTO_ERR(imap_resp_namespace(x, FALSE, &e_));
		PROTO_ERR(imap_resp_list(x, FALSE, &e_));
		PROTO_ERR(imap_resp_status(x, FALSE, NULL, NULL, &e_));
		PROTO_ERR(imap_resp_search(x, NULL, &e_));
		PROTO_ERR(imap_resp_esearch(x, NULL, &e_));
		PROTO_ERR(imap_resp_vanished(x, NULL, &e_));
		PROTO_ERR(imap_resp_quota(x, NULL, &e_));
		PROTO_ERR(imap_resp_quotaroot(x, FALSE, &e_));
		g_assert_false(imap_resp_code_appenduid(x, NULL, NULL));
		g_assert_false(imap_resp_code_copyuid(x, NULL, NULL, NULL));
		g_assert_false(imap_resp_code_number(x, "UIDNEXT", NULL));
		g_assert_null(imap_resp_code_modified(x));
	}
}

static void
test_free_null(void)
{
	ImapSelectInfo *si = g_new0(ImapSelectInfo, 1);

	imap_namespaces_free(NULL);
	imap_mailbox_info_free(NULL);
	imap_envelope_free(NULL);
	imap_message_free(NULL);
	imap_select_info_free(NULL);
	si->flags = g_strsplit("\\Seen \\Deleted", " ", -1);
	si->vanished = imap_uidset_new();
	si->changed = g_ptr_array_new();
	g_ptr_array_add(si->changed, g_new0(ImapMessage, 1));
	imap_select_info_free(si);
}

/* What a NOTIFY connection (RFC 5465) hears, as Dovecot sends it; message data without a
 * selected mailbox is told by kind, never decoded (a hostile VANISHED range costs
 * nothing). */
static void
test_notify(void)
{
	static const struct {
		const char *in;
		gboolean ok;
		ImapNotifyKind kind;
		const char *mailbox;
		guint have;
		guint32 messages, uidnext;
		guint64 modseq;
	} cases[] = {
		{"* STATUS INBOX (MESSAGES 1 UIDNEXT 3 UNSEEN 1 HIGHESTMODSEQ 6)\r\n", TRUE,
		 IMAP_NOTIFY_STATUS, "INBOX",
		 IMAP_STATUS_MESSAGES | IMAP_STATUS_UIDNEXT | IMAP_STATUS_UNSEEN |
			 IMAP_STATUS_HIGHESTMODSEQ,
		 1, 3, 6},
		{"* STATUS Other (HIGHESTMODSEQ 3)\r\n", TRUE, IMAP_NOTIFY_STATUS, "Other",
		 IMAP_STATUS_HIGHESTMODSEQ, 0, 0, 3},
		{"* STATUS \"&AOk-t&AOk-\" ()\r\n", TRUE, IMAP_NOTIFY_STATUS, "\xc3\xa9t\xc3\xa9", 0, 0, 0,
		 0},
		{"* LIST () \"/\" New\r\n", TRUE, IMAP_NOTIFY_MAILBOXES, "New", 0, 0, 0, 0},
		{"* LIST (\\NonExistent) \"/\" New2 (\"OLDNAME\" (New))\r\n", TRUE,
		 IMAP_NOTIFY_MAILBOXES, "New2", 0, 0, 0, 0},
		{"* LSUB () \".\" INBOX.x\r\n", TRUE, IMAP_NOTIFY_MAILBOXES, "INBOX.x", 0, 0, 0, 0},
		{"* 4 EXISTS\r\n", TRUE, IMAP_NOTIFY_SELECTED, NULL, 0, 0, 0, 0},
		{"* 2 EXPUNGE\r\n", TRUE, IMAP_NOTIFY_SELECTED, NULL, 0, 0, 0, 0},
		{"* VANISHED 1:4294967294\r\n", TRUE, IMAP_NOTIFY_SELECTED, NULL, 0, 0, 0, 0},
		{"* VANISHED (EARLIER) 1:*\r\n", TRUE, IMAP_NOTIFY_SELECTED, NULL, 0, 0, 0, 0},
		{"* 1 FETCH (UID 5 FLAGS (\\Seen))\r\n", TRUE, IMAP_NOTIFY_SELECTED, NULL, 0, 0, 0, 0},
		/* not notifications */
		{"* OK still here\r\n", FALSE, 0, NULL, 0, 0, 0, 0},
		{"* CAPABILITY IMAP4rev1 NOTIFY\r\n", FALSE, 0, NULL, 0, 0, 0, 0},
		{"* 3 RECENT\r\n", FALSE, 0, NULL, 0, 0, 0, 0},
	};
	static const char *const bad[] = {
		"* STATUS\r\n",
		"* STATUS INBOX MESSAGES\r\n",
		"* STATUS INBOX (MESSAGES x)\r\n",
		"* LIST\r\n",
		"* LIST () \"/\"\r\n",
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(ImapResponse) r = parse(cases[i].in);
		g_autoptr(GError) error = NULL;
		g_autofree char *mailbox = NULL;
		ImapNotifyKind kind = 99;
		ImapStatus st;
		gboolean ok = imap_resp_notify(r, FALSE, &kind, &mailbox, &st, &error);

		g_test_message("%s", cases[i].in);
		g_assert_no_error(error);
		g_assert_cmpint(ok, ==, cases[i].ok);
		if (!ok)
			continue;
		g_assert_cmpint(kind, ==, cases[i].kind);
		g_assert_cmpstr(mailbox, ==, cases[i].mailbox);
		if (kind != IMAP_NOTIFY_STATUS)
			continue;
		g_assert_cmpuint(st.have, ==, cases[i].have);
		g_assert_cmpuint(st.messages, ==, cases[i].messages);
		g_assert_cmpuint(st.uidnext, ==, cases[i].uidnext);
		g_assert_cmpuint(st.highestmodseq, ==, cases[i].modseq);
	}
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(ImapResponse) r = parse(bad[i]);
		g_autoptr(GError) error = NULL;
		g_autofree char *mailbox = NULL;
		ImapNotifyKind kind;
		ImapStatus st;

		g_test_message("%s", bad[i]);
		g_assert_false(imap_resp_notify(r, FALSE, &kind, &mailbox, &st, &error));
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL);
		g_assert_null(mailbox);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/resp/kind", test_kind);
	g_test_add_func("/resp/capability", test_capability);
	g_test_add_func("/resp/namespace", test_namespace);
	g_test_add_func("/resp/list", test_list);
	g_test_add_func("/resp/status", test_status);
	g_test_add_func("/resp/flags-numbers", test_flags_numbers);
	g_test_add_func("/resp/fetch/rfc3501", test_fetch_rfc3501);
	g_test_add_func("/resp/fetch/envelope-odd", test_fetch_envelope_odd);
	g_test_add_func("/resp/fetch/header-bodystructure", test_fetch_header_bodystructure);
	g_test_add_func("/resp/fetch/gmail-exchange", test_fetch_gmail_exchange);
	g_test_add_func("/resp/fetch/references", test_fetch_references);
	g_test_add_func("/resp/fetch/nil-items", test_fetch_nil_items);
	g_test_add_func("/resp/fetch/bad", test_fetch_bad);
	g_test_add_func("/resp/fetch/streamed", test_fetch_streamed);
	g_test_add_func("/resp/fetch/section", test_fetch_section);
	g_test_add_func("/resp/search", test_search);
	g_test_add_func("/resp/esearch", test_esearch);
	g_test_add_func("/resp/vanished", test_vanished);
	g_test_add_func("/resp/quota", test_quota);
	g_test_add_func("/resp/codes", test_codes);
	g_test_add_func("/resp/error-code", test_error_code);
	g_test_add_func("/resp/datetime", test_datetime);
	g_test_add_func("/resp/wrong-kind", test_wrong_kind);
	g_test_add_func("/resp/free", test_free_null);
	g_test_add_func("/resp/notify", test_notify);
	return g_test_run();
}
