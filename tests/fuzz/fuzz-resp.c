/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz-resp.c: libFuzzer target for the typed decoders (imap/resp.c). The input is parsed
 * into responses and every decoder runs on every response, whatever its kind: each must
 * either decode or fail with IMAP_ERROR_PROTOCOL, and never crash or leak.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_error(GError *error, gboolean ok)
{
	if (ok && error)
		abort();
	if (!ok && (!error || error->domain != IMAP_ERROR || error->code != IMAP_ERROR_PROTOCOL))
		abort();
}

static void
run_decoders(const ImapResponse *r)
{
	for (int utf8 = 0; utf8 < 2; utf8++) {
		g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL, e4 = NULL, e5 = NULL;
		g_autoptr(GError) e6 = NULL, e7 = NULL;
		g_auto(GStrv) caps = imap_resp_capability(r, &e1);
		g_auto(GStrv) en = imap_resp_enabled(r, &e2);
		g_autoptr(ImapNamespaces) ns = imap_resp_namespace(r, utf8, &e3);
		g_autoptr(ImapMailboxInfo) info = imap_resp_list(r, utf8, &e4);
		g_autofree char *mbox = NULL;
		ImapStatus st;
		gboolean ok = imap_resp_status(r, utf8, &mbox, &st, &e5);
		g_auto(GStrv) roots = imap_resp_quotaroot(r, utf8, &e6);

		check_error(e1, caps != NULL);
		check_error(e2, en != NULL);
		check_error(e3, ns != NULL);
		check_error(e4, info != NULL);
		check_error(e5, ok);
		if (ok && !mbox)
			abort();
		check_error(e6, roots != NULL);
		if (info && !g_utf8_validate(info->name, -1, NULL))
			abort();
		{
			g_autoptr(GError) e8 = NULL;
			g_autofree char *nm = NULL;
			ImapNotifyKind kind;
			ImapStatus nst;
			gboolean nok = imap_resp_notify(r, utf8, &kind, &nm, &nst, &e8);

			if (nok && e8)
				abort();
			if (!nok && e8 && (e8->domain != IMAP_ERROR || e8->code != IMAP_ERROR_PROTOCOL))
				abort();
			if (!nok && nm)
				abort();
			if (nok && kind == IMAP_NOTIFY_STATUS && !nm)
				abort();
		}
		if (!utf8) {
			ImapQuota q = {0};

			ok = imap_resp_quota(r, &q, &e7);
			check_error(e7, ok);
			g_free(q.root);
		}
	}
	{
		g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL, e4 = NULL, e5 = NULL;
		g_autoptr(GError) e6 = NULL, e7 = NULL;
		guint32 seq = 0, n = 0, v = 0, u = 0;
		guint64 ms = 0;
		gboolean earlier = FALSE;
		g_autofree char *tag = NULL;
		g_autoptr(ImapMessage) msg = imap_resp_fetch(r, &seq, &e1);
		ImapFetchSection sec = {0};
		gboolean found = imap_resp_fetch_section(r, &sec, &e2);
		g_autoptr(ImapUidSet) s1 = imap_resp_search(r, &ms, &e3);
		g_autoptr(ImapUidSet) s2 = imap_resp_esearch(r, &tag, &e4);
		g_autoptr(ImapUidSet) s3 = imap_resp_vanished(r, &earlier, &e5);
		g_autoptr(ImapUidSet) src = NULL, dst = NULL;
		g_autoptr(ImapUidSet) mod = imap_resp_code_modified(r);
		gboolean num_ok = imap_resp_number(r, &n, &e6);

		check_error(e1, msg != NULL);
		if (found) {
			if (e2 || !sec.section || !sec.data)
				abort();
			g_free(sec.section);
		} else if (e2 && e2->code != IMAP_ERROR_PROTOCOL) {
			abort();
		}
		check_error(e3, s1 != NULL);
		check_error(e4, s2 != NULL);
		check_error(e5, s3 != NULL);
		check_error(e6, num_ok);
		if (msg && msg->bodystructure) {
			/* the re-serialized BODYSTRUCTURE parses again */
			g_autofree char *line = g_strdup_printf("* 1 FETCH (BODYSTRUCTURE %s)\r\n",
								msg->bodystructure);
			ImapParserLimits big = {1 << 30, 64, 1 << 30, 1 << 30, 1ULL << 31};
			g_autoptr(ImapParser) p = imap_parser_new(&big);
			gsize consumed;

			if (imap_parser_feed(p, (const guint8 *)line, strlen(line), &consumed,
					     &e7) != IMAP_PARSE_RESPONSE)
				abort();
		}
		if (mod && imap_uidset_count(mod) == 0)
			abort(); /* a parsed set is never empty */
		imap_resp_code_appenduid(r, &v, &u);
		imap_resp_code_copyuid(r, &v, &src, &dst);
		imap_resp_code_number(r, "UIDNEXT", &ms);
		imap_resp_code_number(r, "HIGHESTMODSEQ", &ms);
		imap_resp_error_code(r, IMAP_ERROR_FAILED);
		imap_resp_untagged_kind(r);
	}
	for (guint i = 0; i < r->args->len; i++) {
		g_autoptr(GError) e = NULL;
		g_auto(GStrv) flags = imap_resp_flags(g_ptr_array_index(r->args, i), &e);

		check_error(e, flags != NULL);
	}
	if (r->code_args->len == 1) {
		g_autoptr(GError) e = NULL;
		g_auto(GStrv) flags = imap_resp_flags(g_ptr_array_index(r->code_args, 0), &e);

		check_error(e, flags != NULL);
	}
	if (r->text)
		imap_parse_datetime(r->text, NULL, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ImapParserLimits lim = {
		.max_line = 8192,
		.max_depth = 16,
		.max_literal = 65536,
		.stream_threshold = 65536,
		.max_response = 200000,
	};
	g_autoptr(ImapParser) p = imap_parser_new(&lim);
	gsize off = 0;

	if (size > 200000)
		return 0;
	while (off < size) {
		gsize consumed = 0;
		ImapParseResult res = imap_parser_feed(p, data + off, size - off, &consumed, NULL);

		off += consumed;
		if (res != IMAP_PARSE_RESPONSE)
			break;
		{
			g_autoptr(ImapResponse) r = imap_parser_take(p);

			run_decoders(r);
		}
	}
	return 0;
}
