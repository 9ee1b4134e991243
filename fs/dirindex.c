/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dirindex.c: one folder's message names keyed by UID (see dirindex.h). Each message is
 * one allocation (UID and name) in an array sorted by UID, which is both the UID -> name
 * map (binary search; new mail appends) and the readdir order, and in a set hashed on
 * the name for name -> UID. No hash table carries a values array.
 */
#include "config.h"

#include <string.h>

#include "dirindex.h"

/* One message: its UID and its name in one allocation. */
typedef struct {
	guint32 uid;
	char name[];
} Entry;

struct _FsDirIndex {
	GPtrArray *by_uid;   /* Entry* (owned), ascending UID: binary search, and readdir order */
	GHashTable *by_name; /* set of the same Entry*, hashed on the name */
	GHashTable *holds;   /* uid -> guint64* ticket of a local change */
};

static guint
name_hash(gconstpointer e)
{
	return g_str_hash(((const Entry *)e)->name);
}

static gboolean
name_equal(gconstpointer a, gconstpointer b)
{
	return strcmp(((const Entry *)a)->name, ((const Entry *)b)->name) == 0;
}

FsDirIndex *
fs_dir_index_new(void)
{
	FsDirIndex *idx = g_new0(FsDirIndex, 1);

	idx->by_uid = g_ptr_array_new_with_free_func(g_free);
	idx->by_name = g_hash_table_new(name_hash, name_equal);
	idx->holds = g_hash_table_new_full(NULL, NULL, NULL, g_free);
	return idx;
}

void
fs_dir_index_free(FsDirIndex *idx)
{
	if (idx == NULL)
		return;
	g_hash_table_unref(idx->by_name);
	g_ptr_array_unref(idx->by_uid);
	g_hash_table_unref(idx->holds);
	g_free(idx);
}

/* The position of @uid in by_uid, or where it would go (*@found FALSE). */
static guint
position(const FsDirIndex *idx, guint32 uid, gboolean *found)
{
	guint lo = 0, hi = idx->by_uid->len;

	/* new mail has the highest UID: check the end first */
	if (hi > 0 && ((Entry *)idx->by_uid->pdata[hi - 1])->uid < uid) {
		*found = FALSE;
		return hi;
	}
	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		guint32 u = ((Entry *)idx->by_uid->pdata[mid])->uid;

		if (u == uid) {
			*found = TRUE;
			return mid;
		}
		if (u < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = FALSE;
	return lo;
}

static Entry *
entry_of(const FsDirIndex *idx, guint32 uid)
{
	gboolean found;
	guint at = position(idx, uid, &found);

	return found ? idx->by_uid->pdata[at] : NULL;
}

void
fs_dir_index_put(FsDirIndex *idx, guint32 uid, const char *name)
{
	gsize len = strlen(name);
	gboolean found;
	guint at;
	Entry *e;

	g_return_if_fail(uid != 0);
	at = position(idx, uid, &found);
	if (found) {
		Entry *old = idx->by_uid->pdata[at];

		if (strcmp(old->name, name) == 0)
			return;
		g_hash_table_remove(idx->by_name, old);
		g_ptr_array_remove_index(idx->by_uid, at); /* frees it */
	}
	e = g_malloc(sizeof(Entry) + len + 1);
	e->uid = uid;
	memcpy(e->name, name, len + 1);
	g_ptr_array_insert(idx->by_uid, (gint)at, e);
	g_hash_table_add(idx->by_name, e);
}

gboolean
fs_dir_index_remove(FsDirIndex *idx, guint32 uid)
{
	gboolean found;
	guint at = position(idx, uid, &found);

	if (!found)
		return FALSE;
	g_hash_table_remove(idx->by_name, idx->by_uid->pdata[at]);
	g_ptr_array_remove_index(idx->by_uid, at);
	return TRUE;
}

guint32
fs_dir_index_find(const FsDirIndex *idx, const char *name)
{
	gsize len = strlen(name);
	union {
		Entry e;
		char room[sizeof(Entry) + 256]; /* a file name is at most 255 bytes */
	} buf;
	g_autofree Entry *heap = NULL;
	Entry *key = &buf.e, *e;

	if (len >= 256)
		key = heap = g_malloc(sizeof(Entry) + len + 1);
	memcpy(key->name, name, len + 1);
	e = g_hash_table_lookup(idx->by_name, key);
	return e ? e->uid : 0;
}

const char *
fs_dir_index_name(const FsDirIndex *idx, guint32 uid)
{
	Entry *e = entry_of(idx, uid);

	return e ? e->name : NULL;
}

guint
fs_dir_index_size(const FsDirIndex *idx)
{
	return idx->by_uid->len;
}

GArray *
fs_dir_index_uids(FsDirIndex *idx)
{
	GArray *out = g_array_sized_new(FALSE, FALSE, sizeof(guint32), idx->by_uid->len);

	for (guint i = 0; i < idx->by_uid->len; i++)
		g_array_append_val(out, ((Entry *)idx->by_uid->pdata[i])->uid);
	return out;
}

void
fs_dir_index_clear(FsDirIndex *idx)
{
	g_hash_table_remove_all(idx->by_name);
	g_ptr_array_set_size(idx->by_uid, 0);
	g_hash_table_remove_all(idx->holds);
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
	GPtrArray *keep;
	GHashTableIter it;
	gpointer v;

	for (guint i = 0; i < n; i++) {
		guint32 uid = uids[i];
		char *name;

		if (uid == 0)
			continue;
		g_hash_table_add(seen, GUINT_TO_POINTER(uid));
		if (!may_change(idx, uid, ticket) || entry_of(idx, uid) != NULL)
			continue;
		name = name_of(uid, data);
		if (name == NULL)
			continue;
		fs_dir_index_put(idx, uid, name);
		g_free(name);
		if (added != NULL)
			g_array_append_val(added, uid);
	}
	/* what the listing no longer has goes, in one pass over the array */
	keep = g_ptr_array_sized_new(idx->by_uid->len);
	g_ptr_array_set_free_func(keep, g_free);
	for (guint i = 0; i < idx->by_uid->len; i++) {
		Entry *e = idx->by_uid->pdata[i];

		if (g_hash_table_contains(seen, GUINT_TO_POINTER(e->uid)) ||
		    !may_change(idx, e->uid, ticket)) {
			g_ptr_array_add(keep, e);
			continue;
		}
		g_hash_table_remove(idx->by_name, e);
		if (removed != NULL)
			g_array_append_val(removed, e->uid);
		if (removed_names != NULL)
			g_ptr_array_add(removed_names, g_strdup(e->name));
		g_free(e);
	}
	g_ptr_array_set_free_func(idx->by_uid, NULL);
	g_ptr_array_unref(idx->by_uid);
	idx->by_uid = keep;
	/* holds this listing is newer than are settled */
	g_hash_table_iter_init(&it, idx->holds);
	while (g_hash_table_iter_next(&it, NULL, &v))
		if (*(guint64 *)v < ticket)
			g_hash_table_iter_remove(&it);
}
