/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz-parser.c: libFuzzer target for the incremental response parser (imap/parser.c).
 * The input is parsed whole, in chunks whose sizes come from the input, and with a literal
 * sink; all three must give the same responses (a canonical dump is compared), and none
 * may crash, leak or read out of bounds.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
dump_arg(GString *out, const ImapArg *a)
{
	switch (a->type) {
	case IMAP_ARG_ATOM:
		g_string_append(out, "A:");
		g_string_append_len(out, a->str, (gssize)a->len);
		break;
	case IMAP_ARG_QUOTED:
		g_string_append(out, "Q:");
		g_string_append_len(out, a->str, (gssize)a->len);
		break;
	case IMAP_ARG_LITERAL:
		g_string_append_printf(out, "L%d:%" G_GSIZE_FORMAT ":", a->literal8, a->len);
		/* streamed or not, the dump is the same: the size only */
		if (!a->streamed && (!a->str || a->str[a->len] != '\0'))
			abort();
		break;
	case IMAP_ARG_NIL:
		g_string_append(out, "NIL");
		break;
	case IMAP_ARG_LIST:
		g_string_append_c(out, '(');
		for (guint i = 0; i < a->list->len; i++) {
			dump_arg(out, g_ptr_array_index(a->list, i));
			g_string_append_c(out, ' ');
		}
		g_string_append_c(out, ')');
		break;
	}
}

static void
dump_response(GString *out, const ImapResponse *r)
{
	if (!r->args || !r->code_args || !r->text)
		abort();
	g_string_append_printf(out, "%d|%s|%d|%s|%s|", r->kind, r->tag ? r->tag : "", r->status,
			       r->code ? r->code : "", r->text);
	for (guint i = 0; i < r->code_args->len; i++)
		dump_arg(out, g_ptr_array_index(r->code_args, i));
	g_string_append_c(out, '|');
	for (guint i = 0; i < r->args->len; i++)
		dump_arg(out, g_ptr_array_index(r->args, i));
	g_string_append_c(out, '\n');
}

static gboolean
sink(const guint8 *data, gsize len, gpointer user_data)
{
	gsize *total = user_data;

	if (len == 0)
		abort();
	*total += len;
	return TRUE;
}

/* Parses @data fed in chunks of 1 + (seed byte % @mod) bytes (whole when @mod is 0). */
static char *
run(const uint8_t *data, size_t size, guint mod, gboolean with_sink)
{
	ImapParserLimits lim = {
		.max_line = 4096,
		.max_depth = 16,
		.max_literal = 65536,
		.stream_threshold = 1024,
		.max_response = 100000,
	};
	g_autoptr(ImapParser) p = imap_parser_new(&lim);
	GString *out = g_string_new(NULL);
	gsize off = 0, streamed = 0;
	guint k = 0;

	if (with_sink)
		imap_parser_set_sink(p, sink, &streamed);
	while (off < size) {
		gsize chunk = mod ? 1 + data[k++ % size] % mod : size - off;
		gsize end = MIN(size, off + chunk);

		while (off < end) {
			g_autoptr(GError) error = NULL;
			gsize consumed = 0;
			ImapParseResult res =
				imap_parser_feed(p, data + off, end - off, &consumed, &error);

			if (consumed > end - off)
				abort();
			off += consumed;
			if (res == IMAP_PARSE_RESPONSE) {
				g_autoptr(ImapResponse) r = imap_parser_take(p);

				if (!r)
					abort();
				dump_response(out, r);
			} else if (res == IMAP_PARSE_ERROR) {
				if (!error || error->domain != IMAP_ERROR)
					abort();
				/* where it failed depends on nothing but the bytes */
				g_string_append_printf(out, "ERROR %d\n", error->code);
				return g_string_free(out, FALSE);
			} else if (off != end) {
				abort();
			}
		}
	}
	return g_string_free(out, FALSE);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *whole = NULL, *split = NULL, *bytes = NULL, *sunk = NULL;

	if (size > 200000)
		return 0;
	whole = run(data, size, 0, FALSE);
	split = run(data, size, 61, FALSE);
	bytes = run(data, size, 1, FALSE);
	if (strcmp(whole, split) != 0 || strcmp(whole, bytes) != 0)
		abort();
	/* with a sink, the in-memory limits differ, so only check it does not crash */
	sunk = run(data, size, 13, TRUE);
	return 0;
}
