/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-trace.c: the protocol trace (trace.c): line format, and that passwords, tokens
 * and SASL payloads never appear in it, whether or not the caller marked them secret.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "trace.h"

typedef struct {
	int fd;
	char *path;
	ImapTrace *trace;
} Fixture;

static void
fx_setup(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	fx->fd = g_file_open_tmp("utils-trace-XXXXXX", &fx->path, &error);
	g_assert_no_error(error);
	fx->trace = imap_trace_new(fx->fd);
}

static void
fx_teardown(Fixture *fx, gconstpointer data)
{
	imap_trace_free(fx->trace);
	close(fx->fd);
	g_unlink(fx->path);
	g_free(fx->path);
}

static char *
contents(Fixture *fx)
{
	char *text = NULL;

	g_assert_true(g_file_get_contents(fx->path, &text, NULL, NULL));
	return text;
}

static ImapCmd *
finished(ImapCmd *cmd)
{
	g_assert_true(imap_cmd_finish(cmd, NULL));
	return cmd;
}

static void
test_format(Fixture *fx, gconstpointer data)
{
	g_autoptr(ImapCmd) cmd = imap_cmd_new("UID FETCH");
	g_autoptr(ImapUidSet) set = imap_uidset_parse("1:3", NULL);
	g_autoptr(GBytes) body = g_bytes_new_static("Subject: hi\r\n\r\nsecret body\r\n", 28);
	g_autoptr(ImapCmd) app = imap_cmd_new("APPEND");
	g_autofree char *long_line = g_strnfill(10000, 'x');
	g_autofree char *text = NULL;
	const char *expect = "C: A1 UID FETCH 1:3 (FLAGS)\n"
			     "S: * 1 FETCH (FLAGS (\\x5cSeen) BODY[] {12}\n"
			     "S: {12 bytes}\n"
			     "S: )\n"
			     "S: ctl\\x00\\x1b[31m\\x0a\n"
			     "C: A2 APPEND \"INBOX\" {28 bytes}\n"
			     "C: DONE\n"
			     "[c2] S: A1 OK done\n";

	imap_cmd_uidset(cmd, set);
	imap_cmd_raw(cmd, "(FLAGS)");
	imap_trace_client(fx->trace, "A1", finished(cmd));
	imap_trace_server_line(fx->trace, "* 1 FETCH (FLAGS (\\Seen) BODY[] {12}\r\n",
			       strlen("* 1 FETCH (FLAGS (\\Seen) BODY[] {12}\r\n"));
	imap_trace_server_literal(fx->trace, 12);
	imap_trace_server_line(fx->trace, ")\r\n", 3);
	imap_trace_server_line(fx->trace, "ctl\0\x1b[31m\n\r\n", 12);
	imap_cmd_mailbox(app, "inbox");
	imap_cmd_literal(app, body);
	imap_trace_client(fx->trace, "A2", finished(app));
	imap_trace_client_line(fx->trace, "DONE");
	imap_trace_set_prefix(fx->trace, "[c2] ");
	imap_trace_server_line(fx->trace, "A1 OK done", 10);
	text = contents(fx);
	g_assert_cmpstr(text, ==, expect);
	g_assert_null(strstr(text, "secret body"));

	/* very long lines are cut */
	imap_trace_set_prefix(fx->trace, NULL);
	imap_trace_server_line(fx->trace, long_line, 10000);
	g_free(text);
	text = contents(fx);
	g_assert_nonnull(strstr(text, "...(5904 more bytes)\n"));
	g_assert_cmpuint(strlen(text), <, strlen(expect) + 4200);
}

static void
test_secrets(Fixture *fx, gconstpointer data)
{
	g_autoptr(ImapCmd) login = imap_cmd_new("LOGIN");
	g_autoptr(ImapCmd) login_unmarked = imap_cmd_new("LOGIN");
	g_autoptr(ImapCmd) plain = imap_cmd_new("AUTHENTICATE");
	g_autoptr(ImapCmd) xoauth = imap_cmd_new("AUTHENTICATE");
	g_autoptr(ImapCmd) bare = imap_cmd_new("AUTHENTICATE");
	g_autoptr(ImapCmd) lit = imap_cmd_new("LOGIN");
	g_autofree char *text = NULL;
	static const char *const secrets[] = {
		"hunter2",	     "ya29.TOKEN-abcdef",
		"AGpvZQBodW50ZXIy",  "dXNlcj1qb2UBYXV0aD1CZWFyZXIg",
		"s3cret-in-literal", "joe-the-user",
		"cont-payload",
	};

	imap_cmd_astring(login, "joe");
	imap_cmd_set_secret(login, TRUE);
	imap_cmd_astring(login, "hunter2");
	imap_trace_client(fx->trace, "A1", finished(login));

	/* not marked secret by the caller: the trace still redacts after LOGIN */
	imap_cmd_astring(login_unmarked, "joe-the-user");
	imap_cmd_astring(login_unmarked, "ya29.TOKEN-abcdef");
	imap_trace_client(fx->trace, "A2", finished(login_unmarked));

	/* SASL-IR, also unmarked */
	imap_cmd_atom(plain, "PLAIN");
	imap_cmd_atom(plain, "AGpvZQBodW50ZXIy");
	imap_trace_client(fx->trace, "A3", finished(plain));

	imap_cmd_atom(xoauth, "XOAUTH2");
	imap_cmd_set_secret(xoauth, TRUE);
	imap_cmd_atom(xoauth, "dXNlcj1qb2UBYXV0aD1CZWFyZXIg");
	imap_trace_client(fx->trace, "A4", finished(xoauth));

	imap_cmd_atom(bare, "SCRAM-SHA-256");
	imap_trace_client(fx->trace, "A5", finished(bare));
	imap_trace_server_line(fx->trace, "+ cj1meWtvK2QybGJi", strlen("+ cj1meWtvK2QybGJi"));
	imap_trace_client_sasl(fx->trace);

	imap_cmd_set_options(lit, TRUE, FALSE, FALSE);
	imap_cmd_astring(lit, "joe");
	imap_cmd_set_secret(lit, TRUE);
	imap_cmd_string(lit, "s3cret-in-literal\r\n", -1);
	imap_trace_client(fx->trace, "A6", finished(lit));

	text = contents(fx);
	for (guint i = 0; i < G_N_ELEMENTS(secrets); i++)
		if (strstr(text, secrets[i]))
			g_error("secret %s in trace:\n%s", secrets[i], text);
	g_assert_nonnull(strstr(text, "C: A1 LOGIN <redacted>\n"));
	g_assert_nonnull(strstr(text, "C: A2 LOGIN <redacted>\n"));
	g_assert_nonnull(strstr(text, "C: A3 AUTHENTICATE PLAIN <redacted>\n"));
	g_assert_nonnull(strstr(text, "C: A4 AUTHENTICATE XOAUTH2 <redacted>\n"));
	g_assert_nonnull(strstr(text, "C: A5 AUTHENTICATE SCRAM-SHA-256\n"));
	g_assert_nonnull(strstr(text, "\nC: <redacted>\n"));
	g_assert_nonnull(strstr(text, "C: A6 LOGIN <redacted>\n"));
}

static void
test_redact_rule(void)
{
	static const struct {
		const char *verb, *args, *want;
	} cases[] = {
		{"LOGIN", "joe pw", "<redacted>"},
		{"login", "joe pw", "<redacted>"},
		{"LOGIN", "", ""},
		{"AUTHENTICATE", "PLAIN", "PLAIN"},
		{"AUTHENTICATE", "PLAIN AGpvZQ==", "PLAIN <redacted>"},
		{"AUTHENTICATE", "plain AGpvZQ==", "<redacted>"}, /* not a mechanism name */
		{"AUTHENTICATE", "\"PLAIN\" x", "<redacted>"},
		{"AUTHENTICATE", "ABCDEFGHIJKLMNOPQRSTUVWXYZ x", "<redacted>"}, /* > 20 chars */
		{"AUTHENTICATE", "", ""},
		{"SELECT", "\"INBOX\"", "\"INBOX\""},
		{"NOOP", NULL, ""},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *got = imap_trace_redact_auth(cases[i].verb, cases[i].args);

		g_assert_cmpstr(got, ==, cases[i].want);
	}
}

static void
test_disabled(void)
{
	g_autoptr(ImapTrace) off = imap_trace_new(-1);
	g_autoptr(ImapCmd) cmd = imap_cmd_new("NOOP");

	g_assert_false(imap_trace_enabled(off));
	g_assert_false(imap_trace_enabled(NULL));
	imap_trace_client(off, "A1", finished(cmd));
	imap_trace_server_line(off, "x", 1);
	imap_trace_server_literal(NULL, 3);
	imap_trace_client_sasl(NULL);
	imap_trace_free(NULL);
}

#define N_THREADS 4
#define N_LINES	  2000

static gpointer
writer(gpointer data)
{
	ImapTrace *trace = data;
	g_autofree char *line = g_strnfill(200, 'z');

	for (int i = 0; i < N_LINES; i++)
		imap_trace_server_line(trace, line, 200);
	return NULL;
}

static void
test_threads(Fixture *fx, gconstpointer data)
{
	GThread *threads[N_THREADS];
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	g_autofree char *want = NULL;
	guint n = 0;

	for (int i = 0; i < N_THREADS; i++)
		threads[i] = g_thread_new("trace-writer", writer, fx->trace);
	for (int i = 0; i < N_THREADS; i++)
		g_thread_join(threads[i]);
	text = contents(fx);
	lines = g_strsplit(text, "\n", -1);
	want = g_strnfill(200, 'z');
	for (guint i = 0; lines[i]; i++) {
		if (!lines[i][0] && !lines[i + 1])
			break;
		g_assert_true(g_str_has_prefix(lines[i], "S: "));
		g_assert_cmpstr(lines[i] + 3, ==, want);
		n++;
	}
	g_assert_cmpuint(n, ==, N_THREADS * N_LINES);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/trace/format", Fixture, NULL, fx_setup, test_format, fx_teardown);
	g_test_add("/trace/secrets", Fixture, NULL, fx_setup, test_secrets, fx_teardown);
	g_test_add_func("/trace/redact-rule", test_redact_rule);
	g_test_add_func("/trace/disabled", test_disabled);
	g_test_add("/trace/threads", Fixture, NULL, fx_setup, test_threads, fx_teardown);
	return g_test_run();
}
