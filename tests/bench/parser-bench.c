/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * parser-bench.c: throughput of the response parser (and of the FETCH decoder on top of
 * it) on a synthetic FETCH stream: 50,000 responses with UID, FLAGS, RFC822.SIZE,
 * INTERNALDATE and ENVELOPE, one in fifty also with a 10 KiB BODY[] literal, fed in
 * 64 KiB chunks as a connection would. Prints MB/s; not a test.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

#define N_MESSAGES 50000
#define CHUNK	   (64 * 1024)

static GString *
synthesize(void)
{
	GString *s = g_string_sized_new(40 * 1024 * 1024);
	g_autofree char *body = g_malloc(10240);

	for (gsize i = 0; i < 10240; i++)
		body[i] = (i % 78 == 77) ? '\n' : (char)('a' + i % 26);
	for (guint n = 1; n <= N_MESSAGES; n++) {
		g_string_append_printf(
			s,
			"* %u FETCH (UID %u FLAGS (\\Seen $Label%u) RFC822.SIZE %u INTERNALDATE "
			"\"%2u-Jul-2023 02:44:25 -0700\" ENVELOPE (\"Wed, 17 Jul 2023 02:23:25 "
			"-0700 "
			"(PDT)\" \"Re: [list] subject number %u \\\"quoted\\\"\" ((\"Terry Gray\" "
			"NIL "
			"\"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" "
			"\"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" "
			"\"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) "
			"((NIL NIL "
			"\"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" "
			"\"MIT.EDU\")) NIL \"<parent-%u@example.com>\" \"<msg-%u@example.com>\")",
			n, n + 1000, n % 7, 1000 + n * 13 % 100000, 1 + n % 28, n, n - 1, n);
		if (n % 50 == 0) {
			g_string_append(s, " BODY[] {10240}\r\n");
			g_string_append_len(s, body, 10240);
		}
		g_string_append(s, ")\r\n");
	}
	return s;
}

static double
run(const GString *s, gboolean decode, guint *n_out)
{
	g_autoptr(ImapParser) p = imap_parser_new(NULL);
	gint64 t0 = g_get_monotonic_time();
	guint n = 0;

	for (gsize off = 0; off < s->len;) {
		gsize end = MIN(s->len, off + CHUNK);

		while (off < end) {
			gsize consumed = 0;
			g_autoptr(GError) error = NULL;
			ImapParseResult res = imap_parser_feed(p, (const guint8 *)s->str + off,
							       end - off, &consumed, &error);

			off += consumed;
			if (res == IMAP_PARSE_ERROR) {
				fprintf(stderr, "parse error: %s\n", error->message);
				exit(1);
			}
			if (res == IMAP_PARSE_RESPONSE) {
				g_autoptr(ImapResponse) r = imap_parser_take(p);

				n++;
				if (decode) {
					g_autoptr(ImapMessage) m = imap_resp_fetch(r, NULL, &error);

					if (!m || !m->envelope) {
						fprintf(stderr, "decode error\n");
						exit(1);
					}
				}
			}
		}
	}
	*n_out = n;
	return (double)(g_get_monotonic_time() - t0) / 1e6;
}

int
main(int argc, char **argv)
{
	g_autoptr(GString) s = synthesize();
	double mb = (double)s->len / (1024.0 * 1024.0);
	guint reps = argc > 1 ? (guint)atoi(argv[1]) : 3;

	printf("stream: %.1f MiB, %d FETCH responses, %d KiB chunks\n", mb, N_MESSAGES,
	       CHUNK / 1024);
	for (int decode = 0; decode < 2; decode++) {
		double best = 1e9;
		guint n = 0;

		for (guint r = 0; r < reps; r++) {
			double t = run(s, decode, &n);

			best = MIN(best, t);
		}
		if (n != N_MESSAGES) {
			fprintf(stderr, "got %u responses\n", n);
			return 1;
		}
		printf("%-16s %8.1f MiB/s  (%.3f s, %.0f responses/s)\n",
		       decode ? "parse+decode:" : "parse:", mb / best, best, n / best);
	}
	return 0;
}
