/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-folder: the message array of a folder (fs/store/resync.c, declared in
 * store-private.h): lookup, insert (at the end and in the middle, duplicates refused),
 * removal, UID order and reference counts; and the flags its messages share. No network,
 * no cache: the accessors are called as their callers do, under store->lock, which no one
 * else takes here.
 */
#include "config.h"

#include "store-private.h"

/* A folder as a listing leaves it, with no messages (or with no listing at all). */
static StoreFolder *
folder_new_full(gboolean listed)
{
	StoreFolder *f = g_new0(StoreFolder, 1);

	f->ref = 1;
	f->name = g_strdup("INBOX");
	if (listed)
		f->msgs = g_ptr_array_new_with_free_func((GDestroyNotify)store_message_unref);
	return f;
}

static StoreFolder *
folder_new(void)
{
	return folder_new_full(TRUE);
}

static StoreMessage *
msg_new(guint32 uid)
{
	ImapMessage m = {.have = IMAP_FETCH_UID, .uid = uid};

	return store_message_new_from_imap("INBOX", 7, &m);
}

/* The UIDs of @f in iteration order, as "1 2 3". */
static char *
uids_of(StoreFolder *f)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < store_folder_msg_count_locked(f); i++)
		g_string_append_printf(s, "%s%u", i ? " " : "",
				       store_folder_msg_index_locked(f, i)->info.uid);
	return g_string_free(s, FALSE);
}

static void
check_uids(StoreFolder *f, const char *want)
{
	g_autofree char *got = uids_of(f);

	g_assert_cmpstr(got, ==, want);
}

static void
test_unlisted(void)
{
	StoreFolder *f = folder_new_full(FALSE);
	g_autoptr(StoreMessage) m = msg_new(1);

	g_assert_cmpuint(store_folder_msg_count_locked(f), ==, 0);
	g_assert_null(store_folder_msg_lookup_locked(f, 1));
	g_assert_false(store_folder_msg_remove_locked(f, 1));
	g_assert_null(store_folder_msg_snapshot_locked(f));
	/* nothing to add to: the first listing brings it */
	g_assert_false(store_folder_msg_insert_locked(f, m));
	g_assert_cmpint(g_atomic_int_get(&m->ref), ==, 1);
	g_assert_null(store_folder_msg_snapshot_locked(f));
	store_folder_unref(f);
}

static void
test_insert_lookup_remove(void)
{
	StoreFolder *f = folder_new();
	guint32 order[] = {10, 20, 30, 5, 25, 40, 1};
	StoreMessage *twenty = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(order); i++) {
		g_autoptr(StoreMessage) m = msg_new(order[i]);

		g_assert_true(store_folder_msg_insert_locked(f, m));
		if (order[i] == 20)
			twenty = m;
	}
	check_uids(f, "1 5 10 20 25 30 40");
	for (guint i = 0; i < G_N_ELEMENTS(order); i++)
		g_assert_cmpuint(store_folder_msg_lookup_locked(f, order[i])->info.uid, ==,
				 order[i]);
	g_assert_null(store_folder_msg_lookup_locked(f, 0));
	g_assert_null(store_folder_msg_lookup_locked(f, 2));
	g_assert_null(store_folder_msg_lookup_locked(f, 41));
	g_assert_true(store_folder_msg_lookup_locked(f, 20) == twenty);

	/* a UID it holds already: refused, the first object stays */
	{
		g_autoptr(StoreMessage) again = msg_new(20);

		g_assert_false(store_folder_msg_insert_locked(f, again));
		g_assert_cmpint(g_atomic_int_get(&again->ref), ==, 1);
		g_assert_true(store_folder_msg_lookup_locked(f, 20) == twenty);
	}

	/* first, middle, last, unknown */
	g_assert_true(store_folder_msg_remove_locked(f, 1));
	g_assert_true(store_folder_msg_remove_locked(f, 20));
	g_assert_true(store_folder_msg_remove_locked(f, 40));
	g_assert_false(store_folder_msg_remove_locked(f, 40));
	g_assert_false(store_folder_msg_remove_locked(f, 7));
	check_uids(f, "5 10 25 30");
	g_assert_null(store_folder_msg_lookup_locked(f, 20));
	g_assert_cmpuint(store_folder_msg_lookup_locked(f, 25)->info.uid, ==, 25);
	store_folder_unref(f);
}

static void
test_references(void)
{
	StoreFolder *f = folder_new();
	StoreMessage *m = msg_new(3);
	g_autoptr(GPtrArray) snap = NULL;

	g_assert_true(store_folder_msg_insert_locked(f, m));
	g_assert_cmpint(g_atomic_int_get(&m->ref), ==, 2); /* ours and the folder's */
	snap = store_folder_msg_snapshot_locked(f);
	g_assert_cmpuint(snap->len, ==, 1);
	g_assert_true(g_ptr_array_index(snap, 0) == m);
	g_assert_cmpint(g_atomic_int_get(&m->ref), ==, 3);
	g_assert_true(store_folder_msg_remove_locked(f, 3));
	g_assert_cmpint(g_atomic_int_get(&m->ref), ==, 2);
	/* emptied, the folder still has a listing (of nothing) */
	g_clear_pointer(&snap, g_ptr_array_unref);
	snap = store_folder_msg_snapshot_locked(f);
	g_assert_nonnull(snap);
	g_assert_cmpuint(snap->len, ==, 0);
	g_assert_cmpint(g_atomic_int_get(&m->ref), ==, 1);
	store_message_unref(m);
	store_folder_unref(f);
}

/* New mail appends; a big folder stays sorted and every UID is found. */
static void
test_many(void)
{
	StoreFolder *f = folder_new();
	guint n = 5000;

	for (guint32 uid = 2; uid <= 2 * n; uid += 2) {
		g_autoptr(StoreMessage) m = msg_new(uid);

		g_assert_true(store_folder_msg_insert_locked(f, m));
	}
	for (guint k = n; k > 0; k--) { /* the odd ones, highest first: in the middle */
		g_autoptr(StoreMessage) m = msg_new(2 * k - 1);

		g_assert_true(store_folder_msg_insert_locked(f, m));
	}
	g_assert_cmpuint(store_folder_msg_count_locked(f), ==, 2 * n);
	for (guint i = 0; i < 2 * n; i++)
		g_assert_cmpuint(store_folder_msg_index_locked(f, i)->info.uid, ==, i + 1);
	for (guint32 uid = 1; uid <= 2 * n; uid++)
		g_assert_nonnull(store_folder_msg_lookup_locked(f, uid));
	for (guint32 uid = 1; uid <= 2 * n; uid += 3)
		g_assert_true(store_folder_msg_remove_locked(f, uid));
	for (guint32 uid = 1; uid <= 2 * n; uid++)
		g_assert_true((store_folder_msg_lookup_locked(f, uid) == NULL) == (uid % 3 == 1));
	store_folder_unref(f);
}

/* Messages with the same flags share one string; \Recent is not one of them. */
static void
test_flags_shared(void)
{
	char *seen[] = {"\\Seen", "\\Recent", "$Label", NULL};
	char *seen2[] = {"\\Seen", "$Label", NULL};
	ImapMessage a = {.have = IMAP_FETCH_UID | IMAP_FETCH_FLAGS, .uid = 1, .flags = seen};
	ImapMessage b = {.have = IMAP_FETCH_UID | IMAP_FETCH_FLAGS, .uid = 2, .flags = seen2};
	ImapMessage c = {.have = IMAP_FETCH_UID, .uid = 3};
	g_autoptr(StoreMessage) x = store_message_new_from_imap("INBOX", 7, &a);
	g_autoptr(StoreMessage) y = store_message_new_from_imap("INBOX", 7, &b);
	g_autoptr(StoreMessage) z = store_message_new_from_imap("INBOX", 7, &c);

	g_assert_cmpstr(x->flags, ==, "\\Seen $Label");
	g_assert_true(x->flags == y->flags);
	g_assert_cmpstr(z->flags, ==, "");
	store_message_copy_flags_locked(z, x);
	g_assert_true(z->flags == x->flags);
	store_message_update_locked(x, &(ImapMessage){.have = IMAP_FETCH_FLAGS, .uid = 1});
	g_assert_cmpstr(x->flags, ==, "");
	g_assert_cmpstr(y->flags, ==, "\\Seen $Label");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/folder/unlisted", test_unlisted);
	g_test_add_func("/folder/insert-lookup-remove", test_insert_lookup_remove);
	g_test_add_func("/folder/references", test_references);
	g_test_add_func("/folder/many", test_many);
	g_test_add_func("/folder/flags-shared", test_flags_shared);
	return g_test_run();
}
