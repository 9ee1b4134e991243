/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz-seqset.c: libFuzzer target for seqset.c. Whatever parses must print to a
 * canonical form that parses to the same set; split pieces must add up to the whole.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gboolean
count_cb(guint32 uid, gpointer data)
{
	guint64 *n = data;

	(*n)++;
	return TRUE;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *in = g_strndup((const char *)data, size);
	g_autoptr(ImapUidSet) set = NULL;
	g_autoptr(ImapUidSet) again = NULL;
	g_autoptr(GPtrArray) pieces = NULL;
	g_autofree char *text = NULL;
	g_autofree char *text2 = NULL;
	guint64 count, sum = 0;
	guint max;

	set = imap_uidset_parse(in, NULL);
	if (!set)
		return 0;
	if (imap_uidset_is_empty(set))
		g_error("parsed an empty set");
	text = imap_uidset_to_string(set);
	again = imap_uidset_parse(text, NULL);
	if (!again)
		g_error("printed form \"%s\" does not parse", text);
	text2 = imap_uidset_to_string(again);
	if (strcmp(text, text2) != 0)
		g_error("not canonical: \"%s\" vs \"%s\"", text, text2);
	count = imap_uidset_count(set);
	if (count != imap_uidset_count(again))
		g_error("count changed");

	max = (guint)MIN(count / 7 + 1, G_MAXUINT);
	pieces = imap_uidset_split(set, max);
	for (guint i = 0; i < pieces->len; i++) {
		guint64 c = imap_uidset_count(pieces->pdata[i]);

		if (c == 0 || c > max)
			g_error("bad piece size");
		sum += c;
	}
	if (sum != count)
		g_error("split lost UIDs");
	if (count <= 100000) {
		guint64 n = 0;

		imap_uidset_foreach(set, count_cb, &n);
		if (n != count)
			g_error("foreach count mismatch");
	}
	return 0;
}
