/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-cmd.c: the command builder (cmd.c): exact wire bytes and parts for each argument
 * type and capability, refusal of invalid arguments, redacted trace rendering, and a
 * randomized check that no argument can ever put a CR or LF outside a literal: every
 * built command is re-parsed here and must give back exactly the arguments put in.
 */
#include "config.h"

#include <string.h>

#include "cmd.h"

/* The whole wire form (parts concatenated) as a NUL-terminated string. */
static char *
wire(const ImapCmd *cmd)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < imap_cmd_get_n_parts(cmd); i++) {
		gsize n;
		const char *p = g_bytes_get_data(imap_cmd_get_part(cmd, i), &n);

		g_string_append_len(s, p, (gssize)n);
	}
	g_assert_cmpuint(s->len, ==, imap_cmd_get_size(cmd));
	return g_string_free(s, FALSE);
}

static char *
part_str(const ImapCmd *cmd, guint i)
{
	gsize n;
	const char *p = g_bytes_get_data(imap_cmd_get_part(cmd, i), &n);

	return g_strndup(p, n);
}

/* Finishes @cmd, asserts success and a single part equal to @expect. */
static void
assert_one(ImapCmd *cmd, const char *expect)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *w = NULL;

	g_assert_true(imap_cmd_finish(cmd, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(imap_cmd_get_n_parts(cmd), ==, 1);
	g_assert_false(imap_cmd_part_waits(cmd, 0));
	w = wire(cmd);
	g_assert_cmpstr(w, ==, expect);
}

static void
assert_invalid(ImapCmd *cmd)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(imap_cmd_finish(cmd, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_INVALID);
}

static void
test_basic(void)
{
	g_autoptr(ImapCmd) a = imap_cmd_new("NOOP");
	g_autoptr(ImapCmd) b = imap_cmd_new("UID FETCH");
	g_autoptr(ImapCmd) c = imap_cmd_new("UID STORE");
	g_autoptr(ImapCmd) d = imap_cmd_new("EXAMINE");
	g_autoptr(ImapUidSet) set = imap_uidset_parse("1:5,7", NULL);
	g_autofree char *t = NULL;

	assert_one(a, "NOOP\r\n");
	g_assert_cmpstr(imap_cmd_get_verb(a), ==, "NOOP");

	imap_cmd_uidset(b, set);
	imap_cmd_raw(b, "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.4096>)");
	assert_one(b, "UID FETCH 1:5,7 (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.4096>)\r\n");

	imap_cmd_uidset(c, set);
	imap_cmd_raw(c, "(UNCHANGEDSINCE");
	imap_cmd_number(c, G_GUINT64_CONSTANT(18446744073709551615));
	imap_cmd_raw(c, ")");
	imap_cmd_raw(c, "+FLAGS.SILENT");
	imap_cmd_raw(c, "(");
	imap_cmd_flag(c, "\\seen");
	imap_cmd_flag(c, "$Junk");
	imap_cmd_flag(c, "\\DELETED");
	imap_cmd_raw(c, ")");
	assert_one(c, "UID STORE 1:5,7 (UNCHANGEDSINCE 18446744073709551615) "
		      "+FLAGS.SILENT (\\Seen $Junk \\Deleted)\r\n");
	t = imap_cmd_to_trace(c);
	g_assert_cmpstr(t, ==,
			"UID STORE 1:5,7 (UNCHANGEDSINCE 18446744073709551615) "
			"+FLAGS.SILENT (\\Seen $Junk \\Deleted)");

	imap_cmd_mailbox(d, "Entw\xc3\xbcrfe");
	imap_cmd_raw(d, "(QRESYNC (");
	imap_cmd_number(d, 67890007);
	imap_cmd_number(d, 90060115194045000);
	imap_cmd_raw(d, "))");
	assert_one(d, "EXAMINE \"Entw&APw-rfe\" (QRESYNC (67890007 90060115194045000))\r\n");
}

static void
test_verb(void)
{
	static const char *const bad[] = {
		"",	 "fetch", "UID  FETCH",	 " NOOP", "NOOP ", "NOOP\r\nA2 LOGOUT",
		"NO-OP", "X1",	  "N\xc3\x96OP",
	};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(ImapCmd) cmd = imap_cmd_new(bad[i]);

		imap_cmd_atom(cmd, "x");
		assert_invalid(cmd);
	}
}

static void
test_atom_astring(void)
{
	static const char *const bad_atoms[] = {
		"",   "a b", "(",   ")",  "{1}",  "a%",	      "a*", "\"",
		"\\", "a]",  "a\r", "\n", "\x7f", "\xc3\xa4", "\t",
	};
	g_autoptr(ImapCmd) ok = imap_cmd_new("SEARCH");

	for (guint i = 0; i < G_N_ELEMENTS(bad_atoms); i++) {
		g_autoptr(ImapCmd) cmd = imap_cmd_new("SEARCH");

		imap_cmd_atom(cmd, bad_atoms[i]);
		assert_invalid(cmd);
	}
	imap_cmd_atom(ok, "SINCE");
	imap_cmd_atom(ok, "1-Feb-1994");
	imap_cmd_raw(ok, "CHARSET UTF-8");
	imap_cmd_astring(ok, "user@example.com");
	imap_cmd_astring(ok, "a]b");
	imap_cmd_astring(ok, "nil");
	imap_cmd_astring(ok, "");
	imap_cmd_astring(ok, "two words");
	imap_cmd_astring(ok, "p\"w\\d");
	assert_one(ok, "SEARCH SINCE 1-Feb-1994 CHARSET UTF-8 user@example.com a]b \"nil\" \"\" "
		       "\"two words\" \"p\\\"w\\\\d\"\r\n");
}

static void
test_string_literals(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(ImapCmd) sync = imap_cmd_new("LOGIN");
	g_autoptr(ImapCmd) plus = imap_cmd_new("LOGIN");
	g_autoptr(ImapCmd) nul = imap_cmd_new("LOGIN");
	g_autofree char *p0 = NULL, *p1 = NULL, *p2 = NULL, *w = NULL;

	/* CR/LF force a synchronizing literal: three parts, the first two wait */
	imap_cmd_string(sync, "a\r\nb", -1);
	imap_cmd_string(sync, "x\ny", -1);
	g_assert_true(imap_cmd_finish(sync, &error));
	g_assert_cmpuint(imap_cmd_get_n_parts(sync), ==, 3);
	p0 = part_str(sync, 0);
	p1 = part_str(sync, 1);
	p2 = part_str(sync, 2);
	g_assert_cmpstr(p0, ==, "LOGIN {4}\r\n");
	g_assert_cmpstr(p1, ==, "a\r\nb {3}\r\n");
	g_assert_cmpstr(p2, ==, "x\ny\r\n");
	g_assert_true(imap_cmd_part_waits(sync, 0));
	g_assert_true(imap_cmd_part_waits(sync, 1));
	g_assert_false(imap_cmd_part_waits(sync, 2));

	/* LITERAL+: inline {n+} */
	imap_cmd_set_options(plus, TRUE, FALSE, FALSE);
	imap_cmd_string(plus, "a\r\nb", -1);
	imap_cmd_string(plus, "ok", 2);
	g_assert_true(imap_cmd_finish(plus, &error));
	g_assert_cmpuint(imap_cmd_get_n_parts(plus), ==, 1);
	w = wire(plus);
	g_assert_cmpstr(w, ==, "LOGIN {4+}\r\na\r\nb \"ok\"\r\n");

	/* a NUL byte cannot be sent in any IMAP string */
	imap_cmd_string(nul, "a\0b", 3);
	assert_invalid(nul);
}

static void
test_literal_minus(void)
{
	g_autofree char *small = g_malloc(4096 + 1);
	g_autofree char *big = g_malloc(4097 + 1);
	g_autoptr(ImapCmd) a = imap_cmd_new("APPEND");
	g_autoptr(ImapCmd) b = imap_cmd_new("APPEND");
	g_autoptr(GBytes) sb = NULL, bb = NULL;

	memset(small, 'x', 4096);
	small[4096] = 0;
	memset(big, 'y', 4097);
	big[4097] = 0;
	sb = g_bytes_new_static(small, 4096);
	bb = g_bytes_new_static(big, 4097);
	imap_cmd_set_options(a, FALSE, TRUE, FALSE);
	imap_cmd_mailbox(a, "inbox");
	imap_cmd_literal(a, sb);
	g_assert_true(imap_cmd_finish(a, NULL));
	g_assert_cmpuint(imap_cmd_get_n_parts(a), ==, 1);
	{
		g_autofree char *w = wire(a);

		g_assert_true(g_str_has_prefix(w, "APPEND \"INBOX\" {4096+}\r\nxxx"));
	}
	imap_cmd_set_options(b, FALSE, TRUE, FALSE);
	imap_cmd_mailbox(b, "INBOX");
	imap_cmd_literal(b, bb);
	g_assert_true(imap_cmd_finish(b, NULL));
	g_assert_cmpuint(imap_cmd_get_n_parts(b), ==, 2);
	{
		g_autofree char *p0 = part_str(b, 0);
		g_autofree char *t = imap_cmd_to_trace(b);

		g_assert_cmpstr(p0, ==, "APPEND \"INBOX\" {4097}\r\n");
		g_assert_cmpuint(g_bytes_get_size(imap_cmd_get_part(b, 1)), ==, 4097 + 2);
		g_assert_cmpstr(t, ==, "APPEND \"INBOX\" {4097 bytes}");
	}
}

static void
test_8bit_and_long(void)
{
	const char *umlaut = "Gr\xc3\xbc\xc3\x9f"
			     "e";
	g_autofree char *long1024 = g_strnfill(1024, 'a');
	g_autofree char *long1025 = g_strnfill(1025, 'a');
	g_autoptr(ImapCmd) a = imap_cmd_new("SEARCH");
	g_autoptr(ImapCmd) b = imap_cmd_new("SEARCH");
	g_autoptr(ImapCmd) c = imap_cmd_new("SEARCH");
	g_autoptr(ImapCmd) d = imap_cmd_new("SEARCH");
	g_autofree char *wa = NULL, *wb = NULL, *wc = NULL, *wd = NULL;

	imap_cmd_set_options(a, TRUE, FALSE, FALSE);
	imap_cmd_string(a, umlaut, -1);
	g_assert_true(imap_cmd_finish(a, NULL));
	wa = wire(a);
	g_assert_cmpstr(wa, ==,
			"SEARCH {7+}\r\nGr\xc3\xbc\xc3\x9f"
			"e\r\n");

	imap_cmd_set_options(b, TRUE, FALSE, TRUE); /* UTF8=ACCEPT: quoted UTF-8 */
	imap_cmd_string(b, umlaut, -1);
	imap_cmd_string(b, "\xff\xfe", -1); /* not UTF-8: still a literal */
	g_assert_true(imap_cmd_finish(b, NULL));
	wb = wire(b);
	g_assert_cmpstr(wb, ==,
			"SEARCH \"Gr\xc3\xbc\xc3\x9f"
			"e\" {2+}\r\n\xff\xfe\r\n");

	imap_cmd_set_options(c, TRUE, FALSE, FALSE);
	imap_cmd_string(c, long1024, -1);
	g_assert_true(imap_cmd_finish(c, NULL));
	wc = wire(c);
	g_assert_cmpuint(strlen(wc), ==, strlen("SEARCH \"\"\r\n") + 1024);

	imap_cmd_set_options(d, TRUE, FALSE, FALSE);
	imap_cmd_string(d, long1025, -1);
	g_assert_true(imap_cmd_finish(d, NULL));
	wd = wire(d);
	g_assert_true(g_str_has_prefix(wd, "SEARCH {1025+}\r\naaa"));
}

static void
test_mailbox(void)
{
	static const struct {
		const char *name;
		gboolean utf8;
		const char *expect;
	} cases[] = {
		{"inbox", FALSE, "SELECT \"INBOX\"\r\n"},
		{"InBoX", TRUE, "SELECT \"INBOX\"\r\n"},
		{"inbox/sub", FALSE, "SELECT \"inbox/sub\"\r\n"},
		{"", FALSE, "SELECT \"\"\r\n"},
		{"~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", FALSE,
		 "SELECT \"~peter/mail/&U,BTFw-/&ZeVnLIqe-\"\r\n"},
		{"Entw\xc3\xbcrfe", TRUE, "SELECT \"Entw\xc3\xbcrfe\"\r\n"},
		{"a&b", FALSE, "SELECT \"a&-b\"\r\n"},
		{"a&b", TRUE, "SELECT \"a&b\"\r\n"},
		{"say \"hi\" \\o/", FALSE, "SELECT \"say \\\"hi\\\" \\\\o/\"\r\n"},
		{"evil\r\nA2 DELETE INBOX", FALSE, "SELECT \"evil&AA0ACg-A2 DELETE INBOX\"\r\n"},
		{"evil\r\nA2 DELETE INBOX", TRUE, "SELECT {21+}\r\nevil\r\nA2 DELETE INBOX\r\n"},
		{"*", FALSE, "SELECT \"*\"\r\n"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(ImapCmd) cmd = imap_cmd_new("SELECT");

		imap_cmd_set_options(cmd, TRUE, FALSE, cases[i].utf8);
		imap_cmd_mailbox(cmd, cases[i].name);
		assert_one(cmd, cases[i].expect);
	}
	{
		g_autoptr(ImapCmd) cmd = imap_cmd_new("SELECT");

		imap_cmd_mailbox(cmd, "bad\xff");
		assert_invalid(cmd);
	}
	{
		g_autoptr(ImapCmd) cmd = imap_cmd_new("SELECT");

		imap_cmd_mailbox(cmd, NULL);
		assert_invalid(cmd);
	}
}

static void
test_flags(void)
{
	static const char *const bad[] = {
		"",
		"\\",
		"\\Recent",
		"\\Foo",
		"\\*",
		"*",
		"a b",
		"(a",
		"a)",
		"a]",
		"{3}",
		"%",
		"\"q\"",
		"a\r\nA2 LOGOUT",
		"\\Seen ",
		" \\Seen",
		"\\Seen\\Deleted",
		"\xc3\xa4",
		"a\\b",
	};
	static const char *const good[] = {
		"\\Answered", "\\flagged",  "\\Deleted", "\\SEEN", "\\Draft",
		"$Label1",    "$Forwarded", "NonJunk",	 "a[b",
	};
	g_autoptr(ImapCmd) ok = imap_cmd_new("STORE");

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(ImapCmd) cmd = imap_cmd_new("STORE");

		g_autoptr(GError) error = NULL;
		g_autofree char *n = imap_flag_normalize(bad[i], &error);

		imap_cmd_raw(cmd, "(");
		imap_cmd_flag(cmd, bad[i]);
		imap_cmd_raw(cmd, ")");
		assert_invalid(cmd);
		/* the check before a STORE is sent is the same rule */
		g_assert_null(n);
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_INVALID);
	}
	{
		g_autoptr(ImapCmd) cmd = imap_cmd_new("STORE");

		imap_cmd_flag(cmd, NULL);
		assert_invalid(cmd);
	}
	imap_cmd_raw(ok, "(");
	for (guint i = 0; i < G_N_ELEMENTS(good); i++)
		imap_cmd_flag(ok, good[i]);
	imap_cmd_raw(ok, ")");
	assert_one(ok, "STORE (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 $Forwarded "
		       "NonJunk a[b)\r\n");
	{
		g_autofree char *seen = imap_flag_normalize("\\sEEn", NULL);
		g_autofree char *kw = imap_flag_normalize("$label1", NULL);

		g_assert_cmpstr(seen, ==, "\\Seen");
		g_assert_cmpstr(kw, ==, "$label1"); /* keywords keep their case */
		g_assert_null(imap_flag_normalize(NULL, NULL));
	}
}

static void
test_raw(void)
{
	static const char *const bad[] = {"", "(\r\n", "x\n", "{5}", "\xc3\xa4", "\t"};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(ImapCmd) cmd = imap_cmd_new("FETCH");

		imap_cmd_raw(cmd, bad[i]);
		assert_invalid(cmd);
	}
	{
		g_autoptr(ImapCmd) cmd = imap_cmd_new("FETCH");

		imap_cmd_raw(cmd, NULL);
		assert_invalid(cmd);
	}
	{
		g_autoptr(ImapCmd) cmd = imap_cmd_new("UID FETCH");
		g_autoptr(ImapUidSet) empty = imap_uidset_new();

		imap_cmd_uidset(cmd, empty);
		assert_invalid(cmd);
	}
}

/* The first error wins and nothing is rendered after it. */
static void
test_error_state(void)
{
	g_autoptr(ImapCmd) cmd = imap_cmd_new("STORE");
	g_autoptr(GError) error = NULL;

	imap_cmd_atom(cmd, "ok");
	imap_cmd_flag(cmd, "bad flag");
	imap_cmd_atom(cmd, "bad atom");
	g_assert_false(imap_cmd_finish(cmd, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_INVALID);
	g_assert_nonnull(strstr(error->message, "flag"));
	{
		g_autoptr(ImapCmd) c2 = imap_cmd_new("UID SEARCH");
		g_autoptr(GError) e2 = NULL;

		imap_cmd_invalid(c2, "not a sequence set");
		g_assert_false(imap_cmd_finish(c2, &e2));
		g_assert_error(e2, IMAP_ERROR, IMAP_ERROR_INVALID);
		g_assert_cmpstr(e2->message, ==, "UID SEARCH: not a sequence set");
	}
}

static void
test_append_and_trace(void)
{
	const char msg[] = "From: a@b\r\nSubject: x\r\n\r\nbody\r\n";
	g_autoptr(GBytes) data = g_bytes_new_static(msg, sizeof(msg) - 1);
	g_autoptr(ImapCmd) cmd = imap_cmd_new("APPEND");
	g_autoptr(ImapCmd) login = imap_cmd_new("LOGIN");
	g_autoptr(ImapCmd) auth = imap_cmd_new("AUTHENTICATE");
	g_autofree char *p0 = NULL, *t = NULL, *tl = NULL, *ta = NULL, *wl = NULL;
	g_autoptr(GError) error = NULL;

	imap_cmd_mailbox(cmd, "Sent");
	imap_cmd_raw(cmd, "(");
	imap_cmd_flag(cmd, "\\Seen");
	imap_cmd_raw(cmd, ")");
	imap_cmd_string(cmd, "22-Nov-2026 14:00:00 +0000", -1);
	imap_cmd_literal(cmd, data);
	g_assert_true(imap_cmd_finish(cmd, &error));
	g_assert_cmpuint(imap_cmd_get_n_parts(cmd), ==, 2);
	p0 = part_str(cmd, 0);
	g_assert_cmpstr(p0, ==, "APPEND \"Sent\" (\\Seen) \"22-Nov-2026 14:00:00 +0000\" {31}\r\n");
	t = imap_cmd_to_trace(cmd);
	g_assert_cmpstr(t, ==,
			"APPEND \"Sent\" (\\Seen) \"22-Nov-2026 14:00:00 +0000\" {31 bytes}");

	imap_cmd_set_options(login, TRUE, FALSE, FALSE);
	imap_cmd_astring(login, "joe");
	imap_cmd_set_secret(login, TRUE);
	imap_cmd_string(login, "s3cr\"et", -1);
	imap_cmd_string(login, "multi\nline-secret", -1);
	g_assert_true(imap_cmd_finish(login, &error));
	tl = imap_cmd_to_trace(login);
	g_assert_cmpstr(tl, ==, "LOGIN joe <redacted> <redacted>");
	wl = wire(login);
	g_assert_cmpstr(wl, ==, "LOGIN joe \"s3cr\\\"et\" {17+}\r\nmulti\nline-secret\r\n");

	imap_cmd_atom(auth, "PLAIN");
	imap_cmd_set_secret(auth, TRUE);
	imap_cmd_atom(auth, "AGpvZQBzM2NyZXQ=");
	g_assert_true(imap_cmd_finish(auth, &error));
	ta = imap_cmd_to_trace(auth);
	g_assert_cmpstr(ta, ==, "AUTHENTICATE PLAIN <redacted>");
}

/* ---- randomized injection check -------------------------------------------------- */

typedef struct {
	const char *p, *end;
} Scan;

/* Parses one argument of the built command; returns its value (quoted unescaped or
 * literal bytes) or for an atom the atom text. Fails the test on any bad syntax. */
static GBytes *
scan_arg(Scan *s, gboolean *nonsync)
{
	GByteArray *v = g_byte_array_new();

	*nonsync = FALSE;
	if (*s->p == '"') {
		for (s->p++;; s->p++) {
			g_assert_true(s->p < s->end);
			g_assert_true(*s->p != '\r' && *s->p != '\n' && *s->p != '\0');
			if (*s->p == '"')
				break;
			if (*s->p == '\\') {
				s->p++;
				g_assert_true(*s->p == '"' || *s->p == '\\');
			}
			g_byte_array_append(v, (const guint8 *)s->p, 1);
		}
		s->p++;
	} else if (*s->p == '{') {
		guint64 n = 0;

		for (s->p++; g_ascii_isdigit(*s->p); s->p++)
			n = n * 10 + (guint64)(*s->p - '0');
		if (*s->p == '+') {
			*nonsync = TRUE;
			s->p++;
		}
		g_assert_true(s->p + 3 <= s->end && memcmp(s->p, "}\r\n", 3) == 0);
		s->p += 3;
		g_assert_cmpuint(n, <=, (guint64)(s->end - s->p));
		g_byte_array_append(v, (const guint8 *)s->p, (guint)n);
		s->p += n;
	} else {
		const char *start = s->p;

		while (s->p < s->end && *s->p != ' ' && *s->p != '\r') {
			g_assert_true(*s->p != '\n' && *s->p != '\0');
			s->p++;
		}
		g_assert_true(s->p > start);
		g_byte_array_append(v, (const guint8 *)start, (guint)(s->p - start));
	}
	return g_byte_array_free_to_bytes(v);
}

static char *
random_name(GRand *r, gsize *len_out, gboolean with_nul)
{
	static const char specials[] = "\r\n\"\\(){}% *]&-~/.\t\x7f";
	gsize len = (gsize)g_rand_int_range(r, 0, g_rand_int_range(r, 0, 8) == 0 ? 2000 : 24);
	char *s = g_malloc(len + 1);

	for (gsize i = 0; i < len; i++) {
		switch (g_rand_int_range(r, 0, 5)) {
		case 0:
			s[i] = specials[g_rand_int_range(r, 0, sizeof(specials) - 1)];
			break;
		case 1:
			s[i] = (char)g_rand_int_range(r, 0x80, 0x100);
			break;
		case 2:
			s[i] = (char)g_rand_int_range(r, with_nul ? 0 : 1, 0x20);
			break;
		default:
			s[i] = (char)g_rand_int_range(r, 0x20, 0x7f);
		}
	}
	s[len] = '\0';
	*len_out = len;
	return s;
}

static void
check_one(GRand *r, int kind, guint opts)
{
	gsize len;
	g_autofree char *name = random_name(r, &len, kind == 0);
	g_autoptr(ImapCmd) cmd = imap_cmd_new("LIST");
	g_autoptr(GError) error = NULL;
	g_autofree char *w = NULL;
	g_autoptr(GBytes) got = NULL;
	gboolean nonsync, lit_plus = opts & 1, lit_minus = opts & 2, utf8 = opts & 4;
	gsize wlen;
	Scan s;

	imap_cmd_set_options(cmd, lit_plus, lit_minus, utf8);
	if (kind == 0)
		imap_cmd_string(cmd, name, (gssize)len);
	else if (kind == 1)
		imap_cmd_astring(cmd, name);
	else if (kind == 2)
		imap_cmd_mailbox(cmd, name);
	else
		imap_cmd_flag(cmd, name);
	imap_cmd_atom(cmd, "END");
	if (!imap_cmd_finish(cmd, &error)) {
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_INVALID);
		if (kind == 0)
			g_assert_nonnull(memchr(name, '\0', len));
		else if (kind == 2)
			g_assert_false(g_utf8_validate(name, -1, NULL));
		else
			g_assert_cmpint(kind, ==, 3);
		return;
	}
	g_assert_true(kind != 0 || !memchr(name, '\0', len));
	/* every part but the last ends with a synchronizing literal header */
	for (guint i = 0; i < imap_cmd_get_n_parts(cmd); i++) {
		gsize n;
		const char *p = g_bytes_get_data(imap_cmd_get_part(cmd, i), &n);

		g_assert_cmpuint(n, >=, 2);
		g_assert_true(p[n - 2] == '\r' && p[n - 1] == '\n');
		if (imap_cmd_part_waits(cmd, i))
			g_assert_true(n >= 5 && p[n - 3] == '}' && g_ascii_isdigit(p[n - 4]));
	}
	{
		g_autofree char *t = imap_cmd_to_trace(cmd);

		g_assert_null(strchr(t, '\r'));
		g_assert_null(strchr(t, '\n'));
	}
	w = wire(cmd);
	wlen = imap_cmd_get_size(cmd);
	s.p = w;
	s.end = w + wlen;
	g_assert_true(g_str_has_prefix(w, "LIST "));
	s.p += 5;
	got = scan_arg(&s, &nonsync);
	if (s.p + 6 != s.end)
		g_error("kind %d opts %u name %s wire %s", kind, opts, g_strescape(name, NULL),
			g_strescape(w, NULL));
	g_assert_cmpmem(s.p, 6, " END\r\n", 6);
	if (nonsync)
		g_assert_true(lit_plus || lit_minus);
	if (kind == 2 && g_ascii_strcasecmp(name, "INBOX") == 0) {
		g_assert_cmpmem(g_bytes_get_data(got, NULL), g_bytes_get_size(got), "INBOX", 5);
	} else if (kind == 2 && !utf8) {
		g_autofree char *enc = imap_utf7_encode(name, NULL);

		g_assert_cmpmem(g_bytes_get_data(got, NULL), g_bytes_get_size(got), enc,
				strlen(enc));
	} else if (kind == 3) {
		g_assert_cmpuint(g_bytes_get_size(got), ==, len);
		g_assert_true(g_ascii_strncasecmp(g_bytes_get_data(got, NULL), name, len) == 0);
	} else {
		g_assert_cmpmem(g_bytes_get_data(got, NULL), g_bytes_get_size(got), name, len);
	}
}

static void
test_no_injection(void)
{
	GRand *r = g_rand_new_with_seed(20261122);

	for (int i = 0; i < 40000; i++)
		check_one(r, i % 4, (guint)g_rand_int_range(r, 0, 8));
	g_rand_free(r);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/cmd/basic", test_basic);
	g_test_add_func("/cmd/verb", test_verb);
	g_test_add_func("/cmd/atom-astring", test_atom_astring);
	g_test_add_func("/cmd/string-literals", test_string_literals);
	g_test_add_func("/cmd/literal-minus", test_literal_minus);
	g_test_add_func("/cmd/8bit-and-long", test_8bit_and_long);
	g_test_add_func("/cmd/mailbox", test_mailbox);
	g_test_add_func("/cmd/flags", test_flags);
	g_test_add_func("/cmd/raw", test_raw);
	g_test_add_func("/cmd/error-state", test_error_state);
	g_test_add_func("/cmd/append-and-trace", test_append_and_trace);
	g_test_add_func("/cmd/no-injection", test_no_injection);
	return g_test_run();
}
