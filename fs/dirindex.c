/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dirindex.c: one folder's message names keyed by UID (see dirindex.h). Two hash tables
 * share each name (a GRefString, so a directory snapshot can keep a name without a copy);
 * the UID order for readdir is rebuilt lazily, only after a change that broke it.
 */
#include "config.h"

#include <string.h>

#include "dirindex.h"

struct _FsDirIndex {
	GHashTable *by_uid;  /* uid -> GRefString name (owned) */
	GHashTable *by_name; /* name (borrowed from by_uid) -> uid */
	GHashTable *holds;   /* uid -> guint64* ticket of a local change */
	GArray *order;	     /* guint32 UIDs ascending; valid unless order_stale */
	gboolean order_stale;
};

FsDirIndex *
fs_dir_index_new(void)
{
	FsDirIndex *idx = g_new0(FsDirIndex, 1);

	idx->by_uid = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)g_ref_string_release);
	idx->by_name = g_hash_table_new(g_str_hash, g_str_equal);
	idx->holds = g_hash_table_new_full(NULL, NULL, NULL, g_free);
	idx->order = g_array_new(FALSE, FALSE, sizeof(guint32));
	return idx;
}

void
fs_dir_index_free(FsDirIndex *idx)
{
	if (idx == NULL)
		return;
	g_hash_table_unref(idx->by_name);
	g_hash_table_unref(idx->by_uid);
	g_hash_table_unref(idx->holds);
	g_array_unref(idx->order);
	g_free(idx);
}

static void
put_owned(FsDirIndex *idx, guint32 uid, char *name)
{
	const char *old = g_hash_table_lookup(idx->by_uid, GUINT_TO_POINTER(uid));

	if (old != NULL) {
		if (strcmp(old, name) == 0) {
			g_ref_string_release(name);
			return;
		}
		g_hash_table_remove(idx->by_name, old);
	} else if (!idx->order_stale) {
		/* new mail has the highest UID: the order stays valid without a sort */
		if (idx->order->len == 0 ||
		    g_array_index(idx->order, guint32, idx->order->len - 1) < uid)
			g_array_append_val(idx->order, uid);
		else
			idx->order_stale = TRUE;
	}
	g_hash_table_insert(idx->by_uid, GUINT_TO_POINTER(uid), name);
	g_hash_table_insert(idx->by_name, name, GUINT_TO_POINTER(uid));
}

void
fs_dir_index_put(FsDirIndex *idx, guint32 uid, const char *name)
{
	g_return_if_fail(uid != 0 && name != NULL);
	put_owned(idx, uid, g_ref_string_new(name));
}

gboolean
fs_dir_index_remove(FsDirIndex *idx, guint32 uid)
{
	const char *name = g_hash_table_lookup(idx->by_uid, GUINT_TO_POINTER(uid));

	if (name == NULL)
		return FALSE;
	g_hash_table_remove(idx->by_name, name);
	g_hash_table_remove(idx->by_uid, GUINT_TO_POINTER(uid));
	idx->order_stale = TRUE;
	return TRUE;
}

guint32
fs_dir_index_find(const FsDirIndex *idx, const char *name)
{
	return GPOINTER_TO_UINT(g_hash_table_lookup(idx->by_name, name));
}

const char *
fs_dir_index_name(const FsDirIndex *idx, guint32 uid)
{
	return g_hash_table_lookup(idx->by_uid, GUINT_TO_POINTER(uid));
}

guint
fs_dir_index_size(const FsDirIndex *idx)
{
	return g_hash_table_size(idx->by_uid);
}

static gint
cmp_uid(gconstpointer a, gconstpointer b)
{
	guint32 x = *(const guint32 *)a, y = *(const guint32 *)b;

	return x < y ? -1 : x > y;
}

GArray *
fs_dir_index_uids(FsDirIndex *idx)
{
	GArray *out;

	if (idx->order_stale) {
		GHashTableIter it;
		gpointer k;

		g_array_set_size(idx->order, 0);
		g_hash_table_iter_init(&it, idx->by_uid);
		while (g_hash_table_iter_next(&it, &k, NULL)) {
			guint32 uid = GPOINTER_TO_UINT(k);

			g_array_append_val(idx->order, uid);
		}
		g_array_sort(idx->order, cmp_uid);
		idx->order_stale = FALSE;
	}
	out = g_array_sized_new(FALSE, FALSE, sizeof(guint32), idx->order->len);
	g_array_append_vals(out, idx->order->data, idx->order->len);
	return out;
}

void
fs_dir_index_clear(FsDirIndex *idx)
{
	g_hash_table_remove_all(idx->by_name);
	g_hash_table_remove_all(idx->by_uid);
	g_hash_table_remove_all(idx->holds);
	g_array_set_size(idx->order, 0);
	idx->order_stale = FALSE;
}

void
fs_dir_index_hold(FsDirIndex *idx, guint32 uid, guint64 ticket)
{
	guint64 *t = g_hash_table_lookup(idx->holds, GUINT_TO_POINTER(uid));

	if (t == NULL) {
		t = g_new(guint64, 1);
		g_hash_table_insert(idx->holds, GUINT_TO_POINTER(uid), t);
	} else if (*t > ticket) {
		return;
	}
	*t = ticket;
}

/* TRUE when a listing taken at @ticket may change @uid (and settles an older hold). */
static gboolean
may_change(FsDirIndex *idx, guint32 uid, guint64 ticket)
{
	guint64 *t = g_hash_table_lookup(idx->holds, GUINT_TO_POINTER(uid));

	if (t == NULL)
		return TRUE;
	if (ticket <= *t)
		return FALSE;
	g_hash_table_remove(idx->holds, GUINT_TO_POINTER(uid));
	return TRUE;
}

void
fs_dir_index_sync(FsDirIndex *idx, const guint32 *uids, guint n, guint64 ticket,
		  FsDirIndexNameFn name_of, gpointer data, GArray *added, GArray *removed,
		  GPtrArray *removed_names)
{
	g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);
	g_autoptr(GArray) gone = g_array_new(FALSE, FALSE, sizeof(guint32));
	GHashTableIter it;
	gpointer k;

	for (guint i = 0; i < n; i++) {
		guint32 uid = uids[i];
		char *name;

		if (uid == 0)
			continue;
		g_hash_table_add(seen, GUINT_TO_POINTER(uid));
		if (!may_change(idx, uid, ticket) ||
		    g_hash_table_contains(idx->by_uid, GUINT_TO_POINTER(uid)))
			continue;
		name = name_of(uid, data);
		if (name == NULL)
			continue;
		put_owned(idx, uid, g_ref_string_new(name));
		g_free(name);
		if (added != NULL)
			g_array_append_val(added, uid);
	}
	g_hash_table_iter_init(&it, idx->by_uid);
	while (g_hash_table_iter_next(&it, &k, NULL)) {
		guint32 uid = GPOINTER_TO_UINT(k);

		if (!g_hash_table_contains(seen, k) && may_change(idx, uid, ticket))
			g_array_append_val(gone, uid);
	}
	for (guint i = 0; i < gone->len; i++) {
		guint32 uid = g_array_index(gone, guint32, i);

		if (removed_names != NULL)
			g_ptr_array_add(removed_names, g_strdup(fs_dir_index_name(idx, uid)));
		fs_dir_index_remove(idx, uid);
		if (removed != NULL)
			g_array_append_val(removed, uid);
	}
	/* holds this listing is newer than are settled */
	g_hash_table_iter_init(&it, idx->holds);
	while (g_hash_table_iter_next(&it, NULL, &k))
		if (*(guint64 *)k < ticket)
			g_hash_table_iter_remove(&it);
}
