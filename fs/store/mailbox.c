/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mailbox.c: the message listing of one folder: EXAMINE, then UID FETCH of UID, FLAGS,
 * RFC822.SIZE, INTERNALDATE, ENVELOPE (and MODSEQ with CONDSTORE), and a cheap refresh
 * (new UIDs in full, flags of the rest, expunges detected from the UID list). Identity of
 * a message is (mailbox, UIDVALIDITY, UID); a UIDVALIDITY change drops the old listing.
 * Issue 5 replaces the refresh with the header cache and CONDSTORE/QRESYNC resync.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <string.h>

#include "store-private.h"

typedef struct {
	const char *mailbox;
	guint32 uidvalidity;
	gboolean full;	  /* full items: StoreMessage*; else ImapMessage* copies (flags) */
	GPtrArray *items; /* owning */
} Collect;

/* Runs on the connection's I/O thread: copy what we need, nothing else. */
static void
collect_cb(ImapMessage *m, gpointer user_data)
{
	Collect *c = user_data;

	if (m->uid == 0)
		return;
	if (c->full) {
		g_ptr_array_add(c->items,
				store_message_new_from_imap(c->mailbox, c->uidvalidity, m));
	} else {
		ImapMessage *copy = g_new0(ImapMessage, 1);

		copy->have = m->have & (IMAP_FETCH_UID | IMAP_FETCH_FLAGS | IMAP_FETCH_MODSEQ);
		copy->uid = m->uid;
		copy->flags = m->flags ? g_strdupv(m->flags) : NULL;
		copy->modseq = m->modseq;
		g_ptr_array_add(c->items, copy);
	}
}

static gint
cmp_uid(gconstpointer a, gconstpointer b)
{
	const StoreMessage *x = *(StoreMessage *const *)a;
	const StoreMessage *y = *(StoreMessage *const *)b;

	return x->info.uid < y->info.uid ? -1 : x->info.uid > y->info.uid;
}

static GPtrArray *
snapshot_locked(StoreFolder *f)
{
	GPtrArray *out = g_ptr_array_new_full(f->sorted ? f->sorted->len : 0,
					      (GDestroyNotify)store_message_unref);

	if (f->sorted != NULL)
		for (guint i = 0; i < f->sorted->len; i++)
			g_ptr_array_add(out, store_message_ref(g_ptr_array_index(f->sorted, i)));
	return out;
}

static void
rebuild_sorted_locked(StoreFolder *f)
{
	GHashTableIter it;
	gpointer v;

	g_clear_pointer(&f->sorted, g_ptr_array_unref);
	f->sorted = g_ptr_array_new_full(g_hash_table_size(f->by_uid),
					 (GDestroyNotify)store_message_unref);
	g_hash_table_iter_init(&it, f->by_uid);
	while (g_hash_table_iter_next(&it, NULL, &v))
		g_ptr_array_add(f->sorted, store_message_ref(v));
	g_ptr_array_sort(f->sorted, cmp_uid);
}

static gboolean
fetch(Store *store, StoreFolder *f, guint32 uidvalidity, guint32 first, gboolean full,
      GPtrArray **out, GCancellable *cancel, GError **error)
{
	g_autoptr(ImapUidSet) set = imap_uidset_new();
	Collect c = {
		.mailbox = f->name,
		.uidvalidity = uidvalidity,
		.full = full,
	};
	guint items = IMAP_FETCH_UID | IMAP_FETCH_FLAGS;

	if (full)
		items |= IMAP_FETCH_SIZE | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_ENVELOPE;
	if (store->condstore)
		items |= IMAP_FETCH_MODSEQ;
	c.items = g_ptr_array_new_with_free_func(full ? (GDestroyNotify)store_message_unref
						      : (GDestroyNotify)imap_message_free);
	imap_uidset_add_range(set, first, G_MAXUINT32);
	if (!imap_fetch_sync(store->pool, f->name, uidvalidity, set, items, 0, collect_cb, &c,
			     cancel, error)) {
		g_ptr_array_unref(c.items);
		return FALSE;
	}
	*out = c.items;
	return TRUE;
}

gboolean
store_folder_is_loaded(Store *store, StoreFolder *folder)
{
	gboolean loaded;

	g_mutex_lock(&store->lock);
	loaded = folder->loaded;
	g_mutex_unlock(&store->lock);
	return loaded;
}

/* The network part of a (re)load; store->lock is NOT held. Fills the results for merge. */
typedef struct {
	ImapSelectInfo *sel;
	GPtrArray *full;  /* StoreMessage* of fetched messages (new ones or all) */
	GPtrArray *flags; /* ImapMessage* flag updates of the known ones, or NULL */
	gboolean reset;	  /* @full is the complete listing */
	gboolean unchanged;
} Load;

static void
load_clear(Load *l)
{
	g_clear_pointer(&l->sel, imap_select_info_free);
	g_clear_pointer(&l->full, g_ptr_array_unref);
	g_clear_pointer(&l->flags, g_ptr_array_unref);
}

static gboolean
load(Store *store, StoreFolder *f, gboolean was_loaded, guint32 old_uidvalidity,
     guint32 old_uidnext, guint32 old_exists, guint64 old_modseq, Load *l, GCancellable *cancel,
     GError **error)
{
	ImapSelectInfo *sel;

	sel = l->sel = imap_examine_sync(store->pool, f->name, 0, 0, cancel, error);
	if (sel == NULL)
		return FALSE;
	if (was_loaded && sel->uidvalidity == old_uidvalidity && sel->uidnext == old_uidnext &&
	    sel->exists == old_exists && old_modseq != 0 && sel->highestmodseq == old_modseq) {
		l->unchanged = TRUE;
		return TRUE;
	}
	if (!was_loaded || sel->uidvalidity != old_uidvalidity) {
		l->reset = TRUE;
		if (sel->exists == 0) {
			l->full =
				g_ptr_array_new_with_free_func((GDestroyNotify)store_message_unref);
			return TRUE;
		}
		return fetch(store, f, sel->uidvalidity, 1, TRUE, &l->full, cancel, error);
	}
	/* Same UIDVALIDITY: new UIDs in full, then flags (and the UID list) of all. */
	if (sel->uidnext == 0 || sel->uidnext > old_uidnext || old_uidnext == 0) {
		if (!fetch(store, f, sel->uidvalidity, MAX(old_uidnext, 1), TRUE, &l->full, cancel,
			   error))
			return FALSE;
	} else {
		l->full = g_ptr_array_new_with_free_func((GDestroyNotify)store_message_unref);
	}
	if (sel->exists == 0) {
		l->flags = g_ptr_array_new_with_free_func((GDestroyNotify)imap_message_free);
		return TRUE;
	}
	return fetch(store, f, sel->uidvalidity, 1, FALSE, &l->flags, cancel, error);
}

static gboolean
merge_locked(Store *store, StoreFolder *f, Load *l)
{
	gboolean changed = FALSE;
	GHashTable *by_uid;

	if (l->unchanged)
		return FALSE;
	if (l->reset) {
		by_uid = g_hash_table_new_full(NULL, NULL, NULL,
					       (GDestroyNotify)store_message_unref);
		for (guint i = 0; i < l->full->len; i++) {
			StoreMessage *m = g_ptr_array_index(l->full, i);
			StoreMessage *old = NULL;

			if (f->by_uid != NULL && f->uidvalidity == l->sel->uidvalidity)
				old = g_hash_table_lookup(f->by_uid, GUINT_TO_POINTER(m->info.uid));
			if (old != NULL) {
				/* keep the object (and what we learnt about its size) */
				g_strfreev(old->flags);
				old->flags = g_strdupv(m->flags);
				old->modseq = m->modseq;
				m = old;
			}
			g_hash_table_replace(by_uid, GUINT_TO_POINTER(m->info.uid),
					     store_message_ref(m));
		}
		changed = f->by_uid == NULL || f->uidvalidity != l->sel->uidvalidity ||
			  g_hash_table_size(f->by_uid) != g_hash_table_size(by_uid);
		if (!changed) {
			GHashTableIter it;
			gpointer k;

			g_hash_table_iter_init(&it, by_uid);
			while (g_hash_table_iter_next(&it, &k, NULL))
				if (!g_hash_table_contains(f->by_uid, k)) {
					changed = TRUE;
					break;
				}
		}
		g_clear_pointer(&f->by_uid, g_hash_table_unref);
		f->by_uid = by_uid;
	} else {
		g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);
		GHashTableIter it;
		gpointer k;

		for (guint i = 0; i < l->full->len; i++) {
			StoreMessage *m = g_ptr_array_index(l->full, i);

			g_hash_table_add(seen, GUINT_TO_POINTER(m->info.uid));
			if (g_hash_table_contains(f->by_uid, GUINT_TO_POINTER(m->info.uid)))
				continue;
			g_hash_table_replace(f->by_uid, GUINT_TO_POINTER(m->info.uid),
					     store_message_ref(m));
			changed = TRUE;
		}
		for (guint i = 0; i < l->flags->len; i++) {
			ImapMessage *im = g_ptr_array_index(l->flags, i);
			StoreMessage *m = g_hash_table_lookup(f->by_uid, GUINT_TO_POINTER(im->uid));

			g_hash_table_add(seen, GUINT_TO_POINTER(im->uid));
			if (m != NULL)
				store_message_update_locked(m, im);
		}
		/* Expunged: known UIDs the server no longer lists. */
		g_hash_table_iter_init(&it, f->by_uid);
		while (g_hash_table_iter_next(&it, &k, NULL))
			if (!g_hash_table_contains(seen, k)) {
				g_hash_table_iter_remove(&it);
				changed = TRUE;
			}
	}
	rebuild_sorted_locked(f);
	return changed;
}

GPtrArray *
store_folder_list_messages_sync(Store *store, StoreFolder *folder, gint64 max_age_us,
				gboolean *changed, GCancellable *cancel, GError **error)
{
	Load l = {0};
	gboolean was_loaded, ok, ch = FALSE;
	guint32 uidvalidity, uidnext, exists;
	guint64 modseq;
	GPtrArray *out;

	if (changed != NULL)
		*changed = FALSE;
	if (!store_folder_is_selectable(folder)) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_NOT_FOUND, "%s cannot hold messages",
			    folder->name);
		return NULL;
	}
	g_mutex_lock(&store->lock);
	for (;;) {
		if (folder->loaded && g_get_monotonic_time() - folder->loaded_at <= max_age_us) {
			out = snapshot_locked(folder);
			g_mutex_unlock(&store->lock);
			return out;
		}
		if (!folder->loading)
			break;
		/* Someone else is loading it: wait, then take theirs if fresh enough. */
		g_cond_wait(&store->cond, &store->lock);
		if (folder->loaded && !folder->loading) {
			out = snapshot_locked(folder);
			g_mutex_unlock(&store->lock);
			return out;
		}
	}
	folder->loading = TRUE;
	was_loaded = folder->loaded;
	uidvalidity = folder->uidvalidity;
	uidnext = folder->uidnext;
	exists = folder->exists;
	modseq = folder->highestmodseq;
	g_mutex_unlock(&store->lock);

	ok = load(store, folder, was_loaded, uidvalidity, uidnext, exists, modseq, &l, cancel,
		  error);

	g_mutex_lock(&store->lock);
	folder->loading = FALSE;
	if (ok) {
		ch = merge_locked(store, folder, &l);
		folder->loaded = TRUE;
		folder->loaded_at = g_get_monotonic_time();
		folder->uidvalidity = l.sel->uidvalidity;
		folder->uidnext = l.sel->uidnext;
		folder->exists = l.sel->exists;
		folder->highestmodseq = l.sel->highestmodseq;
		out = snapshot_locked(folder);
	} else {
		out = NULL;
	}
	g_cond_broadcast(&store->cond);
	g_mutex_unlock(&store->lock);
	load_clear(&l);
	if (changed != NULL)
		*changed = ch || !was_loaded;
	return out;
}
