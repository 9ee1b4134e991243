/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-parser.c: the incremental response parser (imap/parser.c) against a table of real
 * server responses (RFC 3501/9051 examples, Dovecot, Cyrus, Courier, Gmail, Exchange),
 * each fed whole, one byte at a time and split at every offset, which must all give the
 * same canonical dump; and malformed input, which must give the right error, never a crash.
 */
#include "config.h"

#include <string.h>

#include "parser.h"

/* ---- canonical dump ---------------------------------------------------------------- */

static void
dump_bytes(GString *out, const char *s, gsize len)
{
	for (gsize i = 0; i < len; i++) {
		guint8 c = (guint8)s[i];

		if (c < 0x20 || c >= 0x7f || c == '\\')
			g_string_append_printf(out, "\\x%02x", c);
		else
			g_string_append_c(out, (char)c);
	}
}

static void
dump_arg(GString *out, const ImapArg *a)
{
	switch (a->type) {
	case IMAP_ARG_ATOM:
		dump_bytes(out, a->str, a->len);
		break;
	case IMAP_ARG_QUOTED:
		g_string_append_c(out, '"');
		dump_bytes(out, a->str, a->len);
		g_string_append_c(out, '"');
		break;
	case IMAP_ARG_LITERAL:
		if (a->literal8)
			g_string_append_c(out, '~');
		if (a->streamed) {
			g_assert_null(a->str);
			g_string_append_printf(out, "{%" G_GSIZE_FORMAT "*}", a->len);
		} else {
			g_assert_nonnull(a->str);
			g_assert_cmpint(a->str[a->len], ==, 0);
			g_string_append_printf(out, "{%" G_GSIZE_FORMAT "}", a->len);
			dump_bytes(out, a->str, a->len);
		}
		break;
	case IMAP_ARG_NIL:
		g_string_append(out, "NIL");
		break;
	case IMAP_ARG_LIST:
		g_string_append_c(out, '(');
		for (guint i = 0; i < a->list->len; i++) {
			if (i)
				g_string_append_c(out, ' ');
			dump_arg(out, g_ptr_array_index(a->list, i));
		}
		g_string_append_c(out, ')');
		break;
	}
}

static const char *const status_names[] = {"", "OK", "NO", "BAD", "PREAUTH", "BYE"};

static void
dump_response(GString *out, const ImapResponse *r)
{
	g_assert_nonnull(r->args);
	g_assert_nonnull(r->code_args);
	g_assert_nonnull(r->text);
	switch (r->kind) {
	case IMAP_RESP_UNTAGGED:
		g_string_append_c(out, '*');
		break;
	case IMAP_RESP_TAGGED:
		g_string_append(out, r->tag);
		break;
	case IMAP_RESP_CONTINUATION:
		g_string_append_c(out, '+');
		break;
	}
	if (r->status != IMAP_STATUS_NONE) {
		g_string_append_printf(out, " %s", status_names[r->status]);
		g_assert_cmpuint(r->args->len, ==, 0);
	}
	if (r->code) {
		g_string_append_printf(out, " [%s", r->code);
		for (guint i = 0; i < r->code_args->len; i++) {
			g_string_append_c(out, ' ');
			dump_arg(out, g_ptr_array_index(r->code_args, i));
		}
		g_string_append_c(out, ']');
	} else {
		g_assert_cmpuint(r->code_args->len, ==, 0);
	}
	for (guint i = 0; i < r->args->len; i++) {
		g_string_append_c(out, ' ');
		dump_arg(out, g_ptr_array_index(r->args, i));
	}
	if (r->status != IMAP_STATUS_NONE || r->kind == IMAP_RESP_CONTINUATION) {
		g_string_append(out, " |");
		dump_bytes(out, r->text, strlen(r->text));
		g_string_append_c(out, '|');
	} else {
		g_assert_cmpstr(r->text, ==, "");
	}
}

/* ---- feeding ----------------------------------------------------------------------- */

typedef struct {
	GString *streamed;
	gboolean refuse;
} SinkData;

static gboolean
sink_cb(const guint8 *data, gsize len, gpointer user_data)
{
	SinkData *sd = user_data;

	g_assert_cmpuint(len, >, 0);
	if (sd->refuse)
		return FALSE;
	g_string_append_len(sd->streamed, (const char *)data, (gssize)len);
	return TRUE;
}

/* Feeds @data in chunks that end at the offsets in @cuts (ascending, then len), returns
 * the dumps of all responses, one a line, and "ERROR <code>" at the end on an error. */
static char *
run(const ImapParserLimits *lim, SinkData *sd, const char *data, gsize len, const gsize *cuts,
    guint n_cuts)
{
	g_autoptr(ImapParser) p = imap_parser_new(lim);
	GString *out = g_string_new(NULL);
	gsize start = 0;

	if (sd)
		imap_parser_set_sink(p, sink_cb, sd);
	for (guint c = 0; c <= n_cuts; c++) {
		gsize end = c < n_cuts ? cuts[c] : len;
		gsize off = start;

		while (off < end) {
			g_autoptr(GError) error = NULL;
			gsize consumed = 12345;
			ImapParseResult res;

			res = imap_parser_feed(p, (const guint8 *)data + off, end - off, &consumed,
					       &error);
			g_assert_cmpuint(consumed, <=, end - off);
			off += consumed;
			if (res == IMAP_PARSE_RESPONSE) {
				g_autoptr(ImapResponse) r = imap_parser_take(p);

				g_assert_nonnull(r);
				g_assert_null(imap_parser_take(p));
				dump_response(out, r);
				g_string_append_c(out, '\n');
			} else if (res == IMAP_PARSE_ERROR) {
				g_assert_nonnull(error);
				g_assert_true(error->domain == IMAP_ERROR);
				g_string_append_printf(out, "ERROR %d\n", error->code);
				/* dead: stays dead */
				g_clear_error(&error);
				g_assert_cmpint(imap_parser_feed(p, (const guint8 *)"* OK\r\n", 6,
								 &consumed, &error),
						==, IMAP_PARSE_ERROR);
				g_assert_nonnull(error);
				return g_string_free(out, FALSE);
			} else {
				g_assert_cmpuint(consumed, ==, end - off + consumed);
				g_assert_null(imap_parser_take(p));
			}
		}
		start = end;
	}
	return g_string_free(out, FALSE);
}

/* Whole, byte by byte, and split at every offset: all must equal @expect. */
static void
check_all_splits(const ImapParserLimits *lim, const char *data, gsize len, const char *expect)
{
	g_autofree char *whole = run(lim, NULL, data, len, NULL, 0);
	g_autofree gsize *cuts = g_new(gsize, len + 1);

	if (g_strcmp0(whole, expect) != 0) {
		g_autoptr(GString) in = g_string_new(NULL);

		dump_bytes(in, data, len);
		g_printerr("input:  %s\nexpect: %s\ngot:    %s\n", in->str, expect, whole);
	}
	g_assert_cmpstr(whole, ==, expect);
	for (gsize i = 0; i < len; i++)
		cuts[i] = i + 1;
	{
		g_autofree char *bytes = run(lim, NULL, data, len, cuts, len ? (guint)len - 1 : 0);

		g_assert_cmpstr(bytes, ==, expect);
	}
	for (gsize i = 1; i < len; i++) {
		gsize cut = i;
		g_autofree char *split = run(lim, NULL, data, len, &cut, 1);

		g_assert_cmpstr(split, ==, expect);
	}
}

#define IN(s) s, sizeof(s) - 1

typedef struct {
	const char *in;
	gsize len;
	const char *out;
} Case;

static const Case good_cases[] = {
	/* greetings */
	{IN("* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
	    "STARTTLS AUTH=PLAIN] Dovecot ready.\r\n"),
	 "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS "
	 "AUTH=PLAIN] |Dovecot ready.|\n"},
	{IN("* OK [CAPABILITY IMAP4rev1 LITERAL+ ID ENABLE STARTTLS AUTH=PLAIN SASL-IR] "
	    "mail.example.com Cyrus IMAP v3.4.4 server ready\r\n"),
	 "* OK [CAPABILITY IMAP4rev1 LITERAL+ ID ENABLE STARTTLS AUTH=PLAIN SASL-IR] "
	 "|mail.example.com Cyrus IMAP v3.4.4 server ready|\n"},
	{IN("* OK Gimap ready for requests from 192.0.2.1 x1mb12345678abc\r\n"),
	 "* OK |Gimap ready for requests from 192.0.2.1 x1mb12345678abc|\n"},
	{IN("* OK The Microsoft Exchange IMAP4 service is ready. "
	    "[TQBXADIAUABSADAAMQBDAEEAMAAwADAAMgAuAG4AYQBtAHAAcgBkADAAMQAuAA==]\r\n"),
	 "* OK |The Microsoft Exchange IMAP4 service is ready. "
	 "[TQBXADIAUABSADAAMQBDAEEAMAAwADAAMgAuAG4AYQBtAHAAcgBkADAAMQAuAA==]|\n"},
	{IN("* OK [CAPABILITY IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT "
	    "QUOTA IDLE ACL ACL2=UNION STARTTLS] Courier-IMAP ready. Copyright 1998-2018 "
	    "Double Precision, Inc.  See COPYING for distribution information.\r\n"),
	 "* OK [CAPABILITY IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT QUOTA "
	 "IDLE ACL ACL2=UNION STARTTLS] |Courier-IMAP ready. Copyright 1998-2018 Double "
	 "Precision, Inc.  See COPYING for distribution information.|\n"},
	{IN("* PREAUTH [CAPABILITY IMAP4rev2] Logged in as Smith\r\n"),
	 "* PREAUTH [CAPABILITY IMAP4rev2] |Logged in as Smith|\n"},
	{IN("* BYE Autologout; idle for too long\r\n"), "* BYE |Autologout; idle for too long|\n"},
	{IN("* BYE [UNAVAILABLE] Server shutting down\r\n"),
	 "* BYE [UNAVAILABLE] |Server shutting down|\n"},
	/* SELECT */
	{IN("* 172 EXISTS\r\n* 1 RECENT\r\n* OK [UNSEEN 12] Message 12 is first unseen\r\n"
	    "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n* OK [UIDNEXT 4392] Predicted next "
	    "UID\r\n* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n* OK "
	    "[PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\nA142 OK [READ-WRITE] SELECT "
	    "completed\r\n"),
	 "* 172 EXISTS\n* 1 RECENT\n* OK [UNSEEN 12] |Message 12 is first unseen|\n"
	 "* OK [UIDVALIDITY 3857529045] |UIDs valid|\n* OK [UIDNEXT 4392] |Predicted next UID|\n"
	 "* FLAGS (\\x5cAnswered \\x5cFlagged \\x5cDeleted \\x5cSeen \\x5cDraft)\n"
	 "* OK [PERMANENTFLAGS (\\x5cDeleted \\x5cSeen \\x5c*)] |Limited|\n"
	 "A142 OK [READ-WRITE] |SELECT completed|\n"},
	{IN("* OK [HIGHESTMODSEQ 715194045007]\r\n"), "* OK [HIGHESTMODSEQ 715194045007] ||\n"},
	{IN("* ok [uidnext 5] fine\r\n"), "* OK [UIDNEXT 5] |fine|\n"},
	{IN("* OK [ALERT]\r\n"), "* OK [ALERT] ||\n"},
	{IN("* OK\r\n"), "* OK ||\n"},
	{IN("A1 OK\r\n"), "A1 OK ||\n"},
	{IN("* OK [REFERRAL imap://user;AUTH=*@SERVER2/] Try server 2\r\n"),
	 "* OK [REFERRAL imap://user;AUTH=*@SERVER2/] |Try server 2|\n"},
	{IN("* OK [CAPABILITY IMAP4rev1] [brackets] in (text) \"quote\r\n"),
	 "* OK [CAPABILITY IMAP4rev1] |[brackets] in (text) \"quote|\n"},
	{IN("* OK [ALERT]no space\r\n"), "* OK [ALERT] |no space|\n"},
	{IN("* NO [BADCHARSET (UTF-8 \"X Y\")] charset\r\n"),
	 "* NO [BADCHARSET (UTF-8 \"X Y\")] |charset|\n"},
	/* tagged */
	{IN("A003 OK [APPENDUID 38505 3955] APPEND completed\r\n"),
	 "A003 OK [APPENDUID 38505 3955] |APPEND completed|\n"},
	{IN("A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"),
	 "A004 OK [COPYUID 38505 304,319:320 3956:3958] |Done|\n"},
	{IN("d105 OK [MODIFIED 7,9] Conditional STORE failed\r\n"),
	 "d105 OK [MODIFIED 7,9] |Conditional STORE failed|\n"},
	{IN("A1 NO [NONEXISTENT] Unknown Mailbox: Foo (now in authenticated state) "
	    "(Failure)\r\n"),
	 "A1 NO [NONEXISTENT] |Unknown Mailbox: Foo (now in authenticated state) (Failure)|\n"},
	{IN("a2 BAD Error in IMAP command received by server.\r\n"),
	 "a2 BAD |Error in IMAP command received by server.|\n"},
	{IN("a]1 ok done \r\n"), "a]1 OK |done |\n"},
	/* continuations */
	{IN("+ YGgGCSqGSIb3EgECAgIAb1kwV6ADAgEFoQMCAQ+iSzBJoAMCAQGiQgRAtHTEuOP2BXb9sBYFR4S"
	    "JlDZxmg39IxmRBOhXRKdDA0uHTCOT9Bq3OsUTXUlk0CsFLoa8j+gvGDlgHuqzWVPJkUmxsrFSlA==\r\n"),
	 "+ |YGgGCSqGSIb3EgECAgIAb1kwV6ADAgEFoQMCAQ+iSzBJoAMCAQGiQgRAtHTEuOP2BXb9sBYFR4SJlDZxmg"
	 "39IxmRBOhXRKdDA0uHTCOT9Bq3OsUTXUlk0CsFLoa8j+gvGDlgHuqzWVPJkUmxsrFSlA==|\n"},
	{IN("+ Ready for literal data\r\n"), "+ |Ready for literal data|\n"},
	{IN("+ \r\n+\r\n+ [ALERT] x\r\n"), "+ ||\n+ ||\n+ |[ALERT] x|\n"},
	/* capability, enable, id, namespace */
	{IN("* CAPABILITY IMAP4rev1 STARTTLS AUTH=GSSAPI LOGINDISABLED\r\n"),
	 "* CAPABILITY IMAP4rev1 STARTTLS AUTH=GSSAPI LOGINDISABLED\n"},
	{IN("* ENABLED CONDSTORE QRESYNC\r\n"), "* ENABLED CONDSTORE QRESYNC\n"},
	{IN("* ID (\"name\" \"Dovecot\")\r\n* ID NIL\r\n"),
	 "* ID (\"name\" \"Dovecot\")\n* ID NIL\n"},
	{IN("* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\" \"X-PARAM\" "
	    "(\"FLAG1\" \"FLAG2\")))\r\n"),
	 "* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\" \"X-PARAM\" "
	 "(\"FLAG1\" \"FLAG2\")))\n"},
	{IN("* NAMESPACE ((\"INBOX.\" \".\")) NIL nil\r\n"),
	 "* NAMESPACE ((\"INBOX.\" \".\")) NIL NIL\n"},
	/* LIST */
	{IN("* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n"),
	 "* LIST (\\x5cHasNoChildren \\x5cSent) \"/\" Sent\n"},
	{IN("* LIST (\\HasNoChildren \\All) \"/\" \"[Gmail]/All Mail\"\r\n"),
	 "* LIST (\\x5cHasNoChildren \\x5cAll) \"/\" \"[Gmail]/All Mail\"\n"},
	{IN("* LIST (\\Subscribed) \"/\" \"Foo\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"),
	 "* LIST (\\x5cSubscribed) \"/\" \"Foo\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\n"},
	{IN("* LIST (\\Noselect) NIL \"\"\r\n"), "* LIST (\\x5cNoselect) NIL \"\"\n"},
	{IN("* LIST () \".\" INBOX.&ZeVnLIqe-\r\n"), "* LIST () \".\" INBOX.&ZeVnLIqe-\n"},
	{IN("* LIST (\\HasNoChildren) \"/\" {8}\r\nfoo \"bar\r\n"),
	 "* LIST (\\x5cHasNoChildren) \"/\" {8}foo \"bar\n"},
	{IN("* LIST () \"/\" foo[bar]\r\n"), "* LIST () \"/\" foo[bar]\n"},
	{IN("* STATUS foo[bar (MESSAGES 1)\r\n"), "* STATUS foo[bar (MESSAGES 1)\n"},
	{IN("* LSUB () \".\" #news.comp.mail.misc\r\n"), "* LSUB () \".\" #news.comp.mail.misc\n"},
	{IN("* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"),
	 "* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\n"},
	{IN("* LIST () \"/\" \"a\\\\b\\\"c\"\r\n"), "* LIST () \"/\" \"a\\x5cb\"c\"\n"},
	/* FETCH */
	{IN("* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" "
	    "RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 "
	    "WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
	    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" "
	    "\"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL "
	    "\"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL "
	    "NIL \"<B27397-0100000@cac.washington.edu>\") BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" "
	    "\"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n"),
	 "* 12 FETCH (FLAGS (\\x5cSeen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE "
	 "4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary "
	 "and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" "
	 "NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" "
	 "\"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL "
	 "\"minutes\" \"CNRI.Reston.VA.US\") (\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL "
	 "NIL \"<B27397-0100000@cac.washington.edu>\") BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" "
	 "\"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\n"},
	{IN("* 3 FETCH (UID 44 ENVELOPE (NIL {11}\r\nHello \"you\" ((\"A \\\"Q\\\" B\" NIL "
	    "\"a\" \"example.com\")) NIL NIL ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL "
	    "NIL NIL)) NIL NIL NIL NIL))\r\n"),
	 "* 3 FETCH (UID 44 ENVELOPE (NIL {11}Hello \"you\" ((\"A \"Q\" B\" NIL \"a\" "
	 "\"example.com\")) NIL NIL ((NIL NIL \"undisclosed-recipients\" NIL) (NIL NIL NIL "
	 "NIL)) NIL NIL NIL NIL))\n"},
	{IN("* 1 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
	    "\"7BIT\" 1152 23)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" "
	    "\"cc.diff\") \"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" "
	    "\"BASE64\" 4554 73) \"MIXED\"))\r\n"),
	 "* 1 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
	 "\"7BIT\" 1152 23) (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") "
	 "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) "
	 "\"MIXED\"))\n"},
	{IN("* 2 FETCH (UID 10 BODY[HEADER.FIELDS (DATE FROM)] {49}\r\nDate: Mon, 7 Feb 1994 "
	    "21:52:25 -0800\r\nFrom: x\r\n\r\n)\r\n"),
	 "* 2 FETCH (UID 10 BODY[HEADER.FIELDS (DATE FROM)] {49}Date: Mon, 7 Feb 1994 21:52:25 "
	 "-0800\\x0d\\x0aFrom: x\\x0d\\x0a\\x0d\\x0a)\n"},
	{IN("* 5 FETCH (UID 9 BINARY[1] ~{4}\r\n\x00\x01\r\n BINARY.SIZE[1] 4)\r\n"),
	 "* 5 FETCH (UID 9 BINARY[1] ~{4}\\x00\\x01\\x0d\\x0a BINARY.SIZE[1] 4)\n"},
	{IN("* 7 FETCH (BODY[]<0> {5}\r\nabcde UID 3)\r\n"),
	 "* 7 FETCH (BODY[]<0> {5}abcde UID 3)\n"},
	{IN("* 7 FETCH (body[1.2.MIME]<1024> NIL)\r\n"), "* 7 FETCH (body[1.2.MIME]<1024> NIL)\n"},
	{IN("* 1 FETCH (BODY[HEADER] {0}\r\n)\r\n"), "* 1 FETCH (BODY[HEADER] {0})\n"},
	{IN("* 4 FETCH (UID 8 MODSEQ (12121231000) FLAGS (\\Seen $Label1 \\Recent))\r\n"),
	 "* 4 FETCH (UID 8 MODSEQ (12121231000) FLAGS (\\x5cSeen $Label1 \\x5cRecent))\n"},
	{IN("* 9 FETCH (UID 1 BODY[HEADER.FIELDS (\"X-A\" Subject)] \"\")\r\n"),
	 "* 9 FETCH (UID 1 BODY[HEADER.FIELDS (\"X-A\" Subject)] \"\")\n"},
	{IN("* 1 FETCH (UID 1 X ~foo)\r\n"), "* 1 FETCH (UID 1 X ~foo)\n"},
	/* SEARCH family, QUOTA */
	{IN("* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ 917162500)\r\n"),
	 "* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ 917162500)\n"},
	{IN("* SEARCH\r\n"), "* SEARCH\n"},
	{IN("* ESEARCH (TAG \"A282\") UID MIN 2 COUNT 3 ALL 2,10:11\r\n"),
	 "* ESEARCH (TAG \"A282\") UID MIN 2 COUNT 3 ALL 2,10:11\n"},
	{IN("* VANISHED (EARLIER) 41,43:116,118,120:211,214:540\r\n"),
	 "* VANISHED (EARLIER) 41,43:116,118,120:211,214:540\n"},
	{IN("* QUOTAROOT INBOX \"\"\r\n* QUOTA \"\" (STORAGE 10 512)\r\n"),
	 "* QUOTAROOT INBOX \"\"\n* QUOTA \"\" (STORAGE 10 512)\n"},
	/* sloppy servers */
	{IN("* SEARCH 1 2 3 \r\n"), "* SEARCH 1 2 3\n"},
	{IN("* FLAGS ( \\Seen  \\Draft )\r\n"), "* FLAGS (\\x5cSeen \\x5cDraft)\n"},
	{IN("* 1 EXISTS\n* 2 EXPUNGE\n"), "* 1 EXISTS\n* 2 EXPUNGE\n"},
	{IN("* OK bare\n"), "* OK |bare|\n"},
	{IN("* 3 FETCH (FLAGS ())\r\n"), "* 3 FETCH (FLAGS ())\n"},
	{IN("* X ((()))\r\n"), "* X ((()))\n"},
	/* Gmail */
	{IN("* 1 FETCH (X-GM-THRID 1278455344230334865 X-GM-MSGID 1278455344230334865 "
	    "X-GM-LABELS (\\Important \\Sent \"Muy Importante\" \"\\\\Starred\") UID 4 "
	    "MODSEQ (1234) FLAGS (\\Seen))\r\n"),
	 "* 1 FETCH (X-GM-THRID 1278455344230334865 X-GM-MSGID 1278455344230334865 X-GM-LABELS "
	 "(\\x5cImportant \\x5cSent \"Muy Importante\" \"\\x5cStarred\") UID 4 MODSEQ (1234) "
	 "FLAGS (\\x5cSeen))\n"},
	/* Exchange-style BODYSTRUCTURE with extension data */
	{IN("* 3 FETCH (UID 7 BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL "
	    "NIL \"quoted-printable\" 1234 40 NIL NIL NIL NIL)(\"application\" \"pdf\" "
	    "(\"name\" \"a b.pdf\") NIL NIL \"base64\" 88000 NIL (\"attachment\" "
	    "(\"filename\" \"a b.pdf\" \"size\" \"64000\")) NIL NIL) \"mixed\" (\"boundary\" "
	    "\"_002_\") NIL \"en-US\"))\r\n"),
	 "* 3 FETCH (UID 7 BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
	 "\"quoted-printable\" 1234 40 NIL NIL NIL NIL) (\"application\" \"pdf\" (\"name\" "
	 "\"a b.pdf\") NIL NIL \"base64\" 88000 NIL (\"attachment\" (\"filename\" \"a b.pdf\" "
	 "\"size\" \"64000\")) NIL NIL) \"mixed\" (\"boundary\" \"_002_\") NIL \"en-US\"))\n"},
	/* Dovecot, header fields */
	{IN("* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {24}\r\nSubject: hello "
	    "world\r\n\r\n)\r\n"),
	 "* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {24}Subject: hello "
	 "world\\x0d\\x0a\\x0d\\x0a)\n"},
	{IN("* 1 X {3}\nabc\r\n"), "* 1 X {3}abc\n"},
	{IN("* 1 FETCH (BODY[a[b]c] NIL)\r\n"), "* 1 FETCH (BODY[a[b]c] NIL)\n"},
};

static void
test_good(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(good_cases); i++)
		check_all_splits(NULL, good_cases[i].in, good_cases[i].len, good_cases[i].out);
}

typedef struct {
	const char *in;
	gsize len;
	int code;
} BadCase;

#define PROTO IMAP_ERROR_PROTOCOL
#define LIMIT IMAP_ERROR_LIMIT

static const BadCase bad_cases[] = {
	{IN("* 1 FETCH (UID 1 ENVELOPE (\"abc\r\n"), PROTO},
	{IN("* 1 FETCH (BODY[] {abc}\r\n"), PROTO},
	{IN("* 1 FETCH (BODY[] {}\r\n"), PROTO},
	{IN("* 1 FETCH (BODY[] {12 }\r\n"), PROTO},
	{IN("* 1 FETCH (BODY[] {3}x\r\n"), PROTO},
	{IN("* 1 FETCH (BODY[] {99999999999}\r\n"), LIMIT},
	{IN("* 1 FETCH (BODY[] {99999999999999999999999999}\r\n"), LIMIT},
	{IN("* 1 FETCH (BODY[] {2147483647}\r\n"), LIMIT},
	{IN("* 1 FETCH (BODY[] {5+}\r\nhello)\r\n"), PROTO},
	{IN("* 1 FETCH (BODY[] ~{5+}\r\nhello)\r\n"), PROTO},
	{IN("(A1 OK done\r\n"), PROTO},
	{IN("\x01"
	    "A OK\r\n"),
	 PROTO},
	{IN("A\x01 OK\r\n"), PROTO},
	{IN("A1\r\n"), PROTO},
	{IN("A1 FOO bar\r\n"), PROTO},
	{IN("A1 PREAUTH hi\r\n"), PROTO},
	{IN("A1 BYE hi\r\n"), PROTO},
	{IN("A1 (x)\r\n"), PROTO},
	{IN("A1 \"OK\" x\r\n"), PROTO},
	{IN("A+1 OK x\r\n"), PROTO},
	{IN("* 1 EXI\0STS\r\n"), PROTO},
	{IN("* 1 FETCH (UID \"a\0b\")\r\n"), PROTO},
	{IN("* OK foo\0bar\r\n"), PROTO},
	{IN("* LIST ) x\r\n"), PROTO},
	{IN("* LIST (a\r\n"), PROTO},
	{IN("* OK foo\rbar\r\n"), PROTO},
	{IN("* 1 EXISTS\r\r\n"), PROTO},
	{IN("*FOO\r\n"), PROTO},
	{IN("\r\n"), PROTO},
	{IN("* \r\n"), PROTO},
	{IN("*\r\n"), PROTO},
	{IN("* 1 FETCH (UID 1\"x\")\r\n"), PROTO},
	{IN("* 1 FETCH (UID \"x\"1)\r\n"), PROTO},
	{IN("* 1 FETCH (UID {1}\r\nx1)\r\n"), PROTO},
	{IN("* 1 FETCH (UID 1(x))\r\n"), PROTO},
	{IN("* OK [ALERT\r\n"), PROTO},
	{IN("* OK []\r\n"), PROTO},
	{IN("* OK [(x)] y\r\n"), PROTO},
	{IN("* OK [PERMANENTFLAGS (\\Seen] x\r\n"), PROTO},
	{IN("* OK [PERMANENTFLAGS (\\Seen)\r\n"), PROTO},
	{IN("* OK(x)\r\n"), PROTO},
	{IN("* 1 FETCH (BODY[HEADER\r\n"), PROTO},
	{IN("* 1 FETCH (BODY[]<12\r\n"), PROTO},
	{IN("* 1 FETCH (BODY[]<> x)\r\n"), PROTO},
	{IN("* 1 FETCH (BODY[]<1x> x)\r\n"), PROTO},
	{IN("* 1 FETCH (\x7f)\r\n"), PROTO},
	{IN("* 1 FETCH (UID\t1)\r\n"), PROTO},
	{IN("* X \"ab\\\r\n"), PROTO},
	{IN("A1 \r\n"), PROTO},
	{IN("* 1 X {3}\rx"), PROTO},
	{IN("* 1 FETCH (BODY[a[b] NIL)\r\n"), PROTO},
};

static void
test_bad(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
		g_autofree char *expect = NULL;
		g_autofree char *got = run(NULL, NULL, bad_cases[i].in, bad_cases[i].len, NULL, 0);
		const char *last = strrchr(got, '\n');

		/* the last line is the error; earlier complete responses are fine */
		expect = g_strdup_printf("ERROR %d", bad_cases[i].code);
		g_assert_nonnull(last);
		while (last > got && last[-1] != '\n')
			last--;
		if (!g_str_has_prefix(last, expect))
			g_printerr("case %" G_GSIZE_FORMAT ": %s -> %s\n", i, bad_cases[i].in, got);
		g_assert_true(g_str_has_prefix(last, expect));
		/* split anywhere: the same error */
		for (gsize c = 1; c < bad_cases[i].len; c++) {
			g_autofree char *split =
				run(NULL, NULL, bad_cases[i].in, bad_cases[i].len, &c, 1);

			g_assert_cmpstr(split, ==, got);
		}
	}
}

static void
test_limits(void)
{
	ImapParserLimits lim = {
		.max_line = 1024,
		.max_depth = 4,
		.max_literal = 100,
		.stream_threshold = 50,
		.max_response = 300,
	};
	g_autoptr(GString) s = g_string_new("* 1 FETCH (X ");
	g_autofree char *got = NULL;

	/* nesting: 4 deep is fine, 5 is not */
	check_all_splits(&lim, IN("* X ((((a))))\r\n"), "* X ((((a))))\n");
	check_all_splits(&lim, IN("* X (((((a)))))\r\n"), "ERROR 2\n");
	check_all_splits(&lim, IN("* OK [X ((((a))))] t\r\n"), "* OK [X ((((a))))] |t|\n");
	check_all_splits(&lim, IN("* OK [X (((((a)))))] t\r\n"), "ERROR 2\n");
	/* 100 deep with the default limits */
	{
		g_autoptr(GString) deep = g_string_new("* X ");

		for (int i = 0; i < 100; i++)
			g_string_append_c(deep, '(');
		for (int i = 0; i < 100; i++)
			g_string_append_c(deep, ')');
		g_string_append(deep, "\r\n");
		got = run(NULL, NULL, deep->str, deep->len, NULL, 0);
		g_assert_cmpstr(got, ==, "ERROR 2\n");
		g_clear_pointer(&got, g_free);
	}
	/* where a response fails does not depend on the chunking: past the line limit it
	 * is LIMIT even when a protocol error follows in the same chunk */
	{
		ImapParserLimits small = {16, 4, 100, 50, 300};

		check_all_splits(&small, IN("* OK xxxxxxxxxxxxxxxxxxxx\0\r\n"), "ERROR 2\n");
		check_all_splits(&small, IN("* OK xxxxxxxxxx\0\r\n"), "ERROR 1\n");
		check_all_splits(&small, IN("* 1 X \"xxxxxxxxxx\"\r\n"), "ERROR 2\n");
		check_all_splits(&small, IN("* 1 X \"xxxxxx\"\r\n"), "* 1 X \"xxxxxx\"\n");
		check_all_splits(&small, IN("* 1 X \"xxxxxx\0\"\r\n"), "ERROR 1\n");
	}
	/* literal sizes */
	check_all_splits(&lim, IN("* 1 FETCH (X {100}\r\n"), "");
	check_all_splits(&lim, IN("* 1 FETCH (X {101}\r\n"), "ERROR 2\n");
	/* line length: exactly at the limit is fine */
	lim.max_response = 4096;
	while (s->len < 1024 - 3)
		g_string_append_c(s, 'a');
	g_string_append(s, ")\r\n");
	g_assert_cmpuint(s->len, ==, 1024);
	got = run(&lim, NULL, s->str, s->len, NULL, 0);
	if (!g_str_has_prefix(got, "* 1 FETCH (X aaa"))
		g_printerr("got %s\n", got);
	g_assert_true(g_str_has_prefix(got, "* 1 FETCH (X aaa"));
	g_clear_pointer(&got, g_free);
	g_string_insert_c(s, 20, 'a');
	got = run(&lim, NULL, s->str, s->len, NULL, 0);
	g_assert_cmpstr(got, ==, "ERROR 2\n");
	g_clear_pointer(&got, g_free);
	/* a long quoted string, and a long text */
	{
		g_autoptr(GString) q = g_string_new("* OK ");

		for (int i = 0; i < 2000; i++)
			g_string_append_c(q, 'x');
		got = run(&lim, NULL, q->str, q->len, NULL, 0);
		g_assert_cmpstr(got, ==, "ERROR 2\n");
		g_clear_pointer(&got, g_free);
	}
	/* total response size: literals in memory add up */
	lim.max_response = 300;
	check_all_splits(&lim,
			 IN("* 1 FETCH (A {90}\r\n"
			    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			    "aaaaaaaaaaaaaaaaaaaa"
			    " B {90}\r\n"
			    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
			    "bbbbbbbbbbbbbbbbbbbb"
			    " C {90}\r\n"),
			 "ERROR 2\n");
	/* literals are not counted as line bytes */
	{
		g_autoptr(GString) l = g_string_new("* 1 FETCH (A {100}\r\n");

		for (int i = 0; i < 100; i++)
			g_string_append_c(l, 'z');
		g_string_append(l, ")\r\n");
		lim.max_line = 30;
		got = run(&lim, NULL, l->str, l->len, NULL, 0);
		g_assert_true(g_str_has_prefix(got, "* 1 FETCH (A {100}zzz"));
		g_clear_pointer(&got, g_free);
	}
}

static void
test_huge_limits(void)
{
	/* limits at the top of their types must not overflow anywhere */
	ImapParserLimits lim = {G_MAXSIZE, G_MAXUINT, G_MAXUINT64, G_MAXSIZE, G_MAXUINT64};
	g_autofree char *got = NULL;

	check_all_splits(&lim, IN("* 1 FETCH (UID 1 BODY[] {3}\r\nabc)\r\nA1 OK x\r\n"),
			 "* 1 FETCH (UID 1 BODY[] {3}abc)\nA1 OK |x|\n");
	got = run(&lim, NULL, IN("* 1 X {2147483647}\r\n"), NULL, 0);
	g_assert_cmpstr(got, ==, "ERROR 2\n");
}

static void
test_sink(void)
{
	ImapParserLimits lim = {
		.max_line = 1024,
		.max_depth = 8,
		.max_literal = 1000,
		.stream_threshold = 10,
		.max_response = 100,
	};
	SinkData sd = {g_string_new(NULL), FALSE};
	static const char in[] = "* 1 FETCH (UID 5 BODY[] {12}\r\nHello world! BODY[1] {9}\r\n"
				 "123456789 X ~{200}\r\n";
	g_autoptr(GString) big = g_string_new(in);
	g_autofree char *got = NULL;

	for (int i = 0; i < 200; i++)
		g_string_append_c(big, (char)('a' + i % 26));
	g_string_append(big, ")\r\n");
	for (gsize cut = 0; cut <= big->len; cut++) {
		g_string_truncate(sd.streamed, 0);
		got = run(&lim, &sd, big->str, big->len, &cut, cut < big->len ? 1 : 0);
		g_assert_cmpstr(got, ==,
				"* 1 FETCH (UID 5 BODY[] {12*} BODY[1] {9}123456789 X "
				"~{200*})\n");
		g_assert_cmpuint(sd.streamed->len, ==, 212);
		g_assert_true(g_str_has_prefix(sd.streamed->str, "Hello world!abcdef"));
		g_clear_pointer(&got, g_free);
	}
	/* without a sink the 200-byte literal is over max_response */
	got = run(&lim, NULL, big->str, big->len, NULL, 0);
	g_assert_cmpstr(got, ==, "ERROR 2\n");
	g_clear_pointer(&got, g_free);
	/* a sink that refuses fails the parse */
	sd.refuse = TRUE;
	got = run(&lim, &sd, big->str, big->len, NULL, 0);
	g_assert_cmpstr(got, ==, "ERROR 0\n");
	g_string_free(sd.streamed, TRUE);
}

static void
test_stops_after_each_response(void)
{
	static const char in[] = "+ go\r\n* 1 EXISTS\r\nA1 OK done\r\n";
	g_autoptr(ImapParser) p = imap_parser_new(NULL);
	g_autoptr(GError) error = NULL;
	gsize consumed, off = 0;
	ImapResponse *r;

	g_assert_cmpint(imap_parser_feed(p, (const guint8 *)in, strlen(in), &consumed, &error), ==,
			IMAP_PARSE_RESPONSE);
	g_assert_cmpuint(consumed, ==, 6);
	/* not taken yet: feeding again consumes nothing */
	g_assert_cmpint(imap_parser_feed(p, (const guint8 *)in + 6, 3, &consumed, &error), ==,
			IMAP_PARSE_RESPONSE);
	g_assert_cmpuint(consumed, ==, 0);
	r = imap_parser_take(p);
	g_assert_cmpint(r->kind, ==, IMAP_RESP_CONTINUATION);
	g_assert_cmpstr(r->text, ==, "go");
	imap_response_free(r);
	off = 6;
	g_assert_cmpint(
		imap_parser_feed(p, (const guint8 *)in + off, strlen(in) - off, &consumed, &error),
		==, IMAP_PARSE_RESPONSE);
	off += consumed;
	r = imap_parser_take(p);
	g_assert_cmpint(r->kind, ==, IMAP_RESP_UNTAGGED);
	g_assert_cmpuint(r->args->len, ==, 2);
	g_assert_cmpstr(imap_arg_atom(g_ptr_array_index(r->args, 1)), ==, "EXISTS");
	imap_response_free(r);
	g_assert_cmpint(
		imap_parser_feed(p, (const guint8 *)in + off, strlen(in) - off, &consumed, &error),
		==, IMAP_PARSE_RESPONSE);
	r = imap_parser_take(p);
	g_assert_cmpint(r->kind, ==, IMAP_RESP_TAGGED);
	g_assert_cmpstr(r->tag, ==, "A1");
	g_assert_cmpint(r->status, ==, IMAP_STATUS_OK);
	g_assert_cmpstr(r->text, ==, "done");
	imap_response_free(r);
	g_assert_cmpint(imap_parser_feed(p, NULL, 0, &consumed, &error), ==, IMAP_PARSE_NEED_MORE);
	g_assert_cmpuint(consumed, ==, 0);
}

static void
test_in_literal(void)
{
	g_autoptr(ImapParser) p = imap_parser_new(NULL);
	gsize consumed;

	g_assert_false(imap_parser_in_literal(p));
	g_assert_cmpint(imap_parser_feed(p, (const guint8 *)"* 1 FETCH (BODY[] {5}\r\nab", 25,
					 &consumed, NULL),
			==, IMAP_PARSE_NEED_MORE);
	g_assert_true(imap_parser_in_literal(p));
	g_assert_cmpint(imap_parser_feed(p, (const guint8 *)"cde)", 4, &consumed, NULL), ==,
			IMAP_PARSE_NEED_MORE);
	g_assert_false(imap_parser_in_literal(p));
}

/* The connection's total deadline grants time for the literal bytes announced. */
static void
test_literal_bytes(void)
{
	g_autoptr(ImapParser) p = imap_parser_new(NULL);
	gsize consumed;

	g_assert_cmpuint(imap_parser_literal_bytes(p), ==, 0);
	g_assert_cmpint(imap_parser_feed(p, (const guint8 *)"* 1 FETCH (BODY[] {5}\r\nab", 25,
					 &consumed, NULL),
			==, IMAP_PARSE_NEED_MORE);
	g_assert_cmpuint(imap_parser_literal_bytes(p), ==, 5); /* counted when announced */
	g_assert_cmpint(imap_parser_feed(p, (const guint8 *)"cde {0}\r\n {3}\r\nxyz)\r\n", 21,
					 &consumed, NULL),
			==, IMAP_PARSE_RESPONSE);
	g_assert_cmpuint(imap_parser_literal_bytes(p), ==, 8);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/parser/good", test_good);
	g_test_add_func("/parser/bad", test_bad);
	g_test_add_func("/parser/limits", test_limits);
	g_test_add_func("/parser/sink", test_sink);
	g_test_add_func("/parser/huge-limits", test_huge_limits);
	g_test_add_func("/parser/stops-after-each-response", test_stops_after_each_response);
	g_test_add_func("/parser/in-literal", test_in_literal);
	g_test_add_func("/parser/literal-bytes", test_literal_bytes);
	return g_test_run();
}
