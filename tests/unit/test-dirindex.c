/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-dirindex.c: unit tests of fs/dirindex.c: names to UIDs and back, diffs of listings
 * applied in place (names of known UIDs are not asked for again), UID order after
 * changes, and "a listing in flight does not revert a local change".
 */
#include "config.h"

#include <string.h>

#include "dirindex.h"

typedef struct {
	guint calls;
} Namer;

static char *
name_of(guint32 uid, gpointer data)
{
	Namer *n = data;

	n->calls++;
	return g_strdup_printf("%u.eml", uid);
}

static void
test_put_find_remove(void)
{
	g_autoptr(FsDirIndex) idx = fs_dir_index_new();

	fs_dir_index_put(idx, 7, "seven.eml");
	fs_dir_index_put(idx, 3, "three.eml");
	g_assert_cmpuint(fs_dir_index_find(idx, "seven.eml"), ==, 7);
	g_assert_cmpstr(fs_dir_index_name(idx, 3), ==, "three.eml");
	g_assert_cmpuint(fs_dir_index_find(idx, "nothing.eml"), ==, 0);
	/* a known UID put again with another name is renamed, not duplicated */
	fs_dir_index_put(idx, 7, "seven-b.eml");
	g_assert_cmpuint(fs_dir_index_find(idx, "seven.eml"), ==, 0);
	g_assert_cmpuint(fs_dir_index_find(idx, "seven-b.eml"), ==, 7);
	g_assert_cmpuint(fs_dir_index_size(idx), ==, 2);
	g_assert_true(fs_dir_index_remove(idx, 3));
	g_assert_false(fs_dir_index_remove(idx, 3));
	g_assert_null(fs_dir_index_name(idx, 3));
	g_assert_cmpuint(fs_dir_index_size(idx), ==, 1);
}

static void
assert_uids(FsDirIndex *idx, const guint32 *want, guint n)
{
	g_autoptr(GArray) uids = fs_dir_index_uids(idx);

	g_assert_cmpuint(uids->len, ==, n);
	for (guint i = 0; i < n; i++)
		g_assert_cmpuint(g_array_index(uids, guint32, i), ==, want[i]);
}

static void
test_order(void)
{
	g_autoptr(FsDirIndex) idx = fs_dir_index_new();
	const guint32 a[] = {2, 5, 9}, b[] = {1, 2, 9}, c[] = {1, 2, 9, 12};

	fs_dir_index_put(idx, 5, "5");
	fs_dir_index_put(idx, 9, "9");
	fs_dir_index_put(idx, 2, "2");
	assert_uids(idx, a, 3);
	fs_dir_index_remove(idx, 5);
	fs_dir_index_put(idx, 1, "1");
	assert_uids(idx, b, 3);
	fs_dir_index_put(idx, 12, "12");
	assert_uids(idx, c, 4);
}

static void
test_sync_applies_diffs_in_place(void)
{
	g_autoptr(FsDirIndex) idx = fs_dir_index_new();
	g_autoptr(GArray) added = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_autoptr(GArray) removed = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	const guint32 first[] = {1, 2, 3}, second[] = {2, 3, 4, 5};
	const char *kept;
	Namer namer = {0};

	fs_dir_index_sync(idx, first, 3, 1, name_of, &namer, added, removed, names);
	g_assert_cmpuint(namer.calls, ==, 3);
	g_assert_cmpuint(added->len, ==, 3);
	g_assert_cmpuint(removed->len, ==, 0);
	kept = fs_dir_index_name(idx, 2);

	g_array_set_size(added, 0);
	fs_dir_index_sync(idx, second, 4, 2, name_of, &namer, added, removed, names);
	/* only the two new UIDs were named; the kept entry is the same object */
	g_assert_cmpuint(namer.calls, ==, 5);
	g_assert_true(fs_dir_index_name(idx, 2) == kept);
	g_assert_cmpuint(added->len, ==, 2);
	g_assert_cmpuint(g_array_index(added, guint32, 0), ==, 4);
	g_assert_cmpuint(removed->len, ==, 1);
	g_assert_cmpuint(g_array_index(removed, guint32, 0), ==, 1);
	g_assert_cmpstr(g_ptr_array_index(names, 0), ==, "1.eml");
	g_assert_cmpuint(fs_dir_index_find(idx, "1.eml"), ==, 0);
	assert_uids(idx, second, 4);
}

static void
test_listing_in_flight_does_not_revert_local_change(void)
{
	g_autoptr(FsDirIndex) idx = fs_dir_index_new();
	const guint32 before[] = {1, 2, 3}, after_rm[] = {1, 3}, with_new[] = {1, 3, 10};
	Namer namer = {0};

	fs_dir_index_sync(idx, before, 3, 1, name_of, &namer, NULL, NULL, NULL);
	/* the mount removes 2 itself at ticket 5, and adds 10 (an APPEND) at ticket 6 */
	fs_dir_index_remove(idx, 2);
	fs_dir_index_hold(idx, 2, 5);
	fs_dir_index_put(idx, 10, "10.eml");
	fs_dir_index_hold(idx, 10, 6);
	/* a listing whose command went out before (ticket 4) still shows 2, not 10 */
	fs_dir_index_sync(idx, before, 3, 4, name_of, &namer, NULL, NULL, NULL);
	g_assert_null(fs_dir_index_name(idx, 2));
	g_assert_cmpstr(fs_dir_index_name(idx, 10), ==, "10.eml");
	/* a listing sent after both changes is the truth again */
	fs_dir_index_sync(idx, with_new, 3, 7, name_of, &namer, NULL, NULL, NULL);
	assert_uids(idx, with_new, 3);
	/* and with the holds settled, a later listing may remove 10 */
	fs_dir_index_sync(idx, after_rm, 2, 8, name_of, &namer, NULL, NULL, NULL);
	assert_uids(idx, after_rm, 2);
}

static void
test_clear(void)
{
	g_autoptr(FsDirIndex) idx = fs_dir_index_new();
	const guint32 one[] = {4};
	Namer namer = {0};

	fs_dir_index_put(idx, 1, "a");
	fs_dir_index_hold(idx, 4, 100);
	fs_dir_index_clear(idx);
	g_assert_cmpuint(fs_dir_index_size(idx), ==, 0);
	/* the hold went with the reset */
	fs_dir_index_sync(idx, one, 1, 2, name_of, &namer, NULL, NULL, NULL);
	g_assert_cmpuint(fs_dir_index_find(idx, "4.eml"), ==, 4);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/dirindex/put-find-remove", test_put_find_remove);
	g_test_add_func("/dirindex/order", test_order);
	g_test_add_func("/dirindex/sync-applies-diffs-in-place", test_sync_applies_diffs_in_place);
	g_test_add_func("/dirindex/listing-in-flight-does-not-revert-local-change",
			test_listing_in_flight_does_not_revert_local_change);
	g_test_add_func("/dirindex/clear", test_clear);
	return g_test_run();
}
