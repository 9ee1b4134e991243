/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-seqset.c: ImapUidSet (seqset.c): merging, parsing with its strict grammar,
 * printing, splitting, iteration, and the cost of large ascending sets.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap.h"

static char *
set_str(const ImapUidSet *set)
{
	return imap_uidset_to_string(set);
}

static void
test_add_merge(void)
{
	g_autoptr(ImapUidSet) set = imap_uidset_new();
	g_autofree char *s1 = NULL, *s2 = NULL, *s3 = NULL, *s4 = NULL, *s5 = NULL;

	g_assert_true(imap_uidset_is_empty(set));
	g_assert_cmpuint(imap_uidset_count(set), ==, 0);
	imap_uidset_add(set, 5);
	imap_uidset_add(set, 3);
	imap_uidset_add(set, 4);
	imap_uidset_add(set, 10);
	imap_uidset_add(set, 10);
	imap_uidset_add(set, 1);
	s1 = set_str(set);
	g_assert_cmpstr(s1, ==, "1,3:5,10");
	imap_uidset_add(set, 2);
	s2 = set_str(set);
	g_assert_cmpstr(s2, ==, "1:5,10");
	imap_uidset_add_range(set, 20, 15);
	imap_uidset_add_range(set, 7, 8);
	s3 = set_str(set);
	g_assert_cmpstr(s3, ==, "1:5,7:8,10,15:20");
	imap_uidset_add_range(set, 6, 16); /* swallows 7:8, 10, joins 1:5 and 15:20 */
	s4 = set_str(set);
	g_assert_cmpstr(s4, ==, "1:20");
	imap_uidset_add_range(set, 100, G_MAXUINT32);
	imap_uidset_add_range(set, 50, 60);
	imap_uidset_add_range(set, 21, 49);
	s5 = set_str(set);
	g_assert_cmpstr(s5, ==, "1:60,100:*");
	g_assert_cmpuint(imap_uidset_count(set), ==, 60 + ((guint64)G_MAXUINT32 - 100 + 1));
	g_assert_true(imap_uidset_contains(set, 1));
	g_assert_true(imap_uidset_contains(set, 60));
	g_assert_false(imap_uidset_contains(set, 61));
	g_assert_false(imap_uidset_contains(set, 99));
	g_assert_true(imap_uidset_contains(set, 100));
	g_assert_true(imap_uidset_contains(set, G_MAXUINT32));
	g_assert_false(imap_uidset_contains(set, 0));
	imap_uidset_add_range(set, 1, G_MAXUINT32);
	{
		g_autofree char *s = set_str(set);

		g_assert_cmpstr(s, ==, "1:*");
	}
}

static void
test_add_max(void)
{
	g_autoptr(ImapUidSet) set = imap_uidset_new();
	g_autofree char *a = NULL, *b = NULL;

	imap_uidset_add(set, G_MAXUINT32);
	a = set_str(set);
	g_assert_cmpstr(a, ==, "*");
	imap_uidset_add(set, G_MAXUINT32 - 1);
	imap_uidset_add(set, G_MAXUINT32); /* append path must not overflow last + 1 */
	imap_uidset_add(set, 1);
	b = set_str(set);
	g_assert_cmpstr(b, ==, "1,4294967294:*");
	g_assert_cmpuint(imap_uidset_count(set), ==, 3);
}

/* A naive model: a bitmap of UIDs 1..N, compared against the set after random ops. */
static void
test_random_model(void)
{
	enum { N = 300 };
	GRand *rand = g_rand_new_with_seed(42);

	for (int round = 0; round < 200; round++) {
		g_autoptr(ImapUidSet) set = imap_uidset_new();
		gboolean model[N + 2] = {FALSE};
		g_autofree char *text = NULL;
		g_autoptr(ImapUidSet) back = NULL;
		g_autoptr(GError) error = NULL;
		guint64 count = 0;
		int ops = g_rand_int_range(rand, 1, 40);

		for (int k = 0; k < ops; k++) {
			guint32 a = (guint32)g_rand_int_range(rand, 1, N + 1);
			guint32 b = g_rand_boolean(rand)
					    ? a
					    : (guint32)g_rand_int_range(rand, 1, N + 1);

			imap_uidset_add_range(set, a, b);
			for (guint32 u = MIN(a, b); u <= MAX(a, b); u++)
				model[u] = TRUE;
		}
		for (guint32 u = 1; u <= N + 1; u++) {
			g_assert_cmpint(imap_uidset_contains(set, u), ==, model[u]);
			count += model[u];
		}
		g_assert_cmpuint(imap_uidset_count(set), ==, count);
		/* printed form is canonical: merged, ascending, no "a:a" */
		text = set_str(set);
		back = imap_uidset_parse(text, &error);
		g_assert_no_error(error);
		{
			g_autofree char *again = set_str(back);

			g_assert_cmpstr(again, ==, text);
		}
		{
			g_auto(GStrv) items = g_strsplit(text, ",", -1);
			guint32 prev_last = 0;

			for (guint i = 0; items[i]; i++) {
				guint32 f = 0, l = 0;

				if (strchr(items[i], ':'))
					g_assert_cmpint(sscanf(items[i], "%u:%u", &f, &l), ==, 2);
				else
					f = l = (guint32)atoi(items[i]);
				g_assert_cmpuint(f, <, l + (strchr(items[i], ':') ? 0 : 1));
				if (i > 0)
					g_assert_cmpuint(f, >, prev_last + 1);
				prev_last = l;
			}
		}
	}
	g_rand_free(rand);
}

static void
test_parse_valid(void)
{
	static const struct {
		const char *in, *out;
		guint64 count;
	} cases[] = {
		{"1", "1", 1},
		{"*", "*", 1},
		{"1:*", "1:*", G_MAXUINT32},
		{"*:1", "1:*", G_MAXUINT32},
		{"5:3", "3:5", 3},
		{"3,1,2", "1:3", 3},
		{"1:3,2:5,10", "1:5,10", 6},
		{"4294967295", "*", 1},
		{"4294967294", "4294967294", 1},
		{"7,7,7", "7", 1},
		{"1,3,5:7,9:*", "1,3,5:7,9:*", 0},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(ImapUidSet) set = imap_uidset_parse(cases[i].in, &error);
		g_autofree char *s = NULL;

		g_assert_no_error(error);
		s = set_str(set);
		g_assert_cmpstr(s, ==, cases[i].out);
		if (cases[i].count)
			g_assert_cmpuint(imap_uidset_count(set), ==, cases[i].count);
	}
}

static void
test_parse_invalid(void)
{
	static const char *const bad[] = {
		"",
		"0",
		"0:5",
		"5:0",
		"01",
		"1,",
		",1",
		"1,,2",
		"1::2",
		"1:",
		":1",
		"1:2:3",
		" 1",
		"1 ",
		"1, 2",
		"a",
		"1a",
		"-1",
		"+1",
		"**",
		"*1",
		"1*",
		"4294967296",
		"99999999999999999999",
		"1:4294967296",
		"18446744073709551617",
		"1;2",
		"1\n",
		"1\r\n2",
		"１",
	};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(ImapUidSet) set = imap_uidset_parse(bad[i], &error);

		if (set)
			g_error("parsed invalid \"%s\"", bad[i]);
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL);
	}
}

typedef struct {
	GArray *seen;
	guint stop_after;
} Collect;

static gboolean
collect(guint32 uid, gpointer data)
{
	Collect *c = data;

	g_array_append_val(c->seen, uid);
	return c->stop_after == 0 || c->seen->len < c->stop_after;
}

static void
test_foreach(void)
{
	g_autoptr(ImapUidSet) set = imap_uidset_parse("2:4,9,4294967294:*", NULL);
	Collect c = {g_array_new(FALSE, FALSE, sizeof(guint32)), 0};
	static const guint32 want[] = {2, 3, 4, 9, 4294967294u, 4294967295u};

	imap_uidset_foreach(set, collect, &c);
	g_assert_cmpmem(c.seen->data, c.seen->len * sizeof(guint32), want, sizeof(want));
	g_array_set_size(c.seen, 0);
	c.stop_after = 3;
	imap_uidset_foreach(set, collect, &c);
	g_assert_cmpuint(c.seen->len, ==, 3);
	g_array_unref(c.seen);
}

static void
test_split(void)
{
	g_autoptr(ImapUidSet) set = imap_uidset_parse("1:5,8,10:12", NULL);
	g_autoptr(GPtrArray) parts = imap_uidset_split(set, 3);
	static const char *const want[] = {"1:3", "4:5,8", "10:12"};
	g_autoptr(GPtrArray) one = NULL;
	g_autoptr(ImapUidSet) empty = imap_uidset_new();
	g_autoptr(GPtrArray) none = imap_uidset_split(empty, 10);
	g_autoptr(ImapUidSet) big = imap_uidset_parse("1:*", NULL);
	g_autoptr(GPtrArray) halves = imap_uidset_split(big, 2147483648u);

	g_assert_cmpuint(parts->len, ==, G_N_ELEMENTS(want));
	for (guint i = 0; i < parts->len; i++) {
		g_autofree char *s = set_str(parts->pdata[i]);

		g_assert_cmpstr(s, ==, want[i]);
	}
	one = imap_uidset_split(set, 1000);
	g_assert_cmpuint(one->len, ==, 1);
	{
		g_autofree char *s = set_str(one->pdata[0]);

		g_assert_cmpstr(s, ==, "1:5,8,10:12");
	}
	g_assert_cmpuint(none->len, ==, 0);
	g_assert_cmpuint(halves->len, ==, 2);
	{
		g_autofree char *a = set_str(halves->pdata[0]);
		g_autofree char *b = set_str(halves->pdata[1]);

		g_assert_cmpstr(a, ==, "1:2147483648");
		g_assert_cmpstr(b, ==, "2147483649:*");
	}
}

static void
test_dup(void)
{
	g_autoptr(ImapUidSet) set = imap_uidset_parse("1:5,8", NULL);
	g_autoptr(ImapUidSet) copy = imap_uidset_dup(set);
	g_autofree char *a = NULL, *b = NULL;

	imap_uidset_add(set, 100);
	a = set_str(set);
	b = set_str(copy);
	g_assert_cmpstr(a, ==, "1:5,8,100");
	g_assert_cmpstr(b, ==, "1:5,8");
	imap_uidset_free(NULL);
}

/* 200,000 ascending sparse UIDs (every other one: no merging) must be fast (O(1)
 * amortized append), and 20,000 descending ones (binary search + memmove at the front is
 * the worst case of this representation; still well under a second). */
static void
test_large(void)
{
	g_autoptr(ImapUidSet) up = imap_uidset_new();
	g_autoptr(ImapUidSet) down = imap_uidset_new();
	g_autoptr(ImapUidSet) dense = imap_uidset_new();
	g_autoptr(ImapUidSet) parsed = NULL;
	g_autofree char *text = NULL;
	gint64 t0 = g_get_monotonic_time();

	for (guint32 u = 1; u <= 400000; u += 2)
		imap_uidset_add(up, u);
	for (guint32 u = 1; u <= 200000; u++)
		imap_uidset_add(dense, u);
	g_assert_cmpuint(imap_uidset_count(up), ==, 200000);
	g_assert_true(imap_uidset_contains(up, 399999));
	g_assert_false(imap_uidset_contains(up, 400000));
	text = set_str(dense);
	g_assert_cmpstr(text, ==, "1:200000");
	g_free(text);
	text = set_str(up);
	parsed = imap_uidset_parse(text, NULL);
	g_assert_nonnull(parsed);
	g_assert_cmpuint(imap_uidset_count(parsed), ==, 200000);
	for (guint32 u = 20000; u >= 1; u--)
		imap_uidset_add(down, u * 2);
	g_assert_cmpuint(imap_uidset_count(down), ==, 20000);
	g_test_message("large sets took %" G_GINT64_FORMAT " ms",
		       (g_get_monotonic_time() - t0) / 1000);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/seqset/add-merge", test_add_merge);
	g_test_add_func("/seqset/add-max", test_add_max);
	g_test_add_func("/seqset/random-model", test_random_model);
	g_test_add_func("/seqset/parse-valid", test_parse_valid);
	g_test_add_func("/seqset/parse-invalid", test_parse_invalid);
	g_test_add_func("/seqset/foreach", test_foreach);
	g_test_add_func("/seqset/split", test_split);
	g_test_add_func("/seqset/dup", test_dup);
	g_test_add_func("/seqset/large", test_large);
	return g_test_run();
}
