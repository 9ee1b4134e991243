/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * local.c: local writes in the listings. Once the server confirmed a write (a STORE of
 * \Deleted, a MOVE, a COPY, an APPEND), the write path tells the listing here, so that the
 * tree shows it at once through the one change path (events), and pins what it changed:
 * a listing whose command went out before the write cannot undo it (resync.c's merge asks
 * store_local_pinned_locked()); the next listing newer than the pin settles it.
 *
 * Messages \Deleted by this mount stay in the folder's records, marked hidden (so that a
 * resync still counts them as known and does not fetch them again), and out of every
 * listing until their expunge takes them.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include "store-private.h"

void
store_local_pin_locked(Store *store, StoreFolder *f, guint32 uid)
{
	guint64 *t = g_new(guint64, 1);

	*t = store_ticket(store);
	if (f->pins == NULL)
		f->pins = g_hash_table_new_full(NULL, NULL, NULL, g_free);
	g_hash_table_replace(f->pins, GUINT_TO_POINTER(uid), t);
}

gboolean
store_local_pinned_locked(StoreFolder *f, guint32 uid, guint64 ticket)
{
	guint64 *t = f->pins ? g_hash_table_lookup(f->pins, GUINT_TO_POINTER(uid)) : NULL;

	return t != NULL && *t > ticket;
}

static gboolean
settled(gpointer key, gpointer value, gpointer data)
{
	return *(guint64 *)value <= *(guint64 *)data;
}

void
store_local_settle_locked(StoreFolder *f, guint64 ticket)
{
	if (f->pins == NULL)
		return;
	g_hash_table_foreach_remove(f->pins, settled, &ticket);
	if (g_hash_table_size(f->pins) == 0)
		g_clear_pointer(&f->pins, g_hash_table_unref);
}

/* ---- removing ---------------------------------------------------------------------- */

typedef struct {
	Store *store;
	StoreFolder *f;
	gboolean hide;
	GPtrArray *gone; /* StoreMessage* refs: the events to emit */
	GArray *rows;	 /* guint32 UIDs whose header-cache rows (and records) go */
} Removal;

/* Under store->lock, for imap_uidset_foreach. */
static gboolean
remove_one(guint32 uid, gpointer data)
{
	Removal *r = data;
	StoreFolder *f = r->f;
	StoreMessage *m = store_folder_msg_lookup_locked(f, uid);

	store_local_pin_locked(r->store, f, uid);
	if (!r->hide)
		g_array_append_val(r->rows, uid); /* the records go after the walk, in one pass */
	if (m == NULL || (m->hidden && r->hide))
		return TRUE;
	if (!m->hidden) /* a hidden one left the tree when it was hidden */
		g_ptr_array_add(r->gone, store_message_ref(m));
	if (r->hide)
		m->hidden = TRUE;
	return TRUE;
}

void
store_local_remove(Store *store, StoreFolder *folder, const ImapUidSet *uids, gboolean hide)
{
	g_autoptr(GError) error = NULL;
	Removal r = {store, folder, hide, NULL, NULL};
	guint32 uv;
	gint64 id;

	r.gone = g_ptr_array_new_with_free_func((GDestroyNotify)store_message_unref);
	r.rows = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_mutex_lock(&store->lock);
	imap_uidset_foreach(uids, remove_one, &r);
	if (!hide)
		store_folder_msg_remove_many_locked(folder, (const guint32 *)r.rows->data,
						    r.rows->len);
	uv = folder->uidvalidity;
	id = folder->hc_id;
	g_mutex_unlock(&store->lock);
	if (r.rows->len > 0 && store_hc(store) != NULL && id != 0 && uv != 0 &&
	    !hcache_messages_delete(store->hc, id, uv, (guint32 *)r.rows->data, r.rows->len, NULL,
				    &error))
		store_cache_error(store, error);
	for (guint i = 0; i < r.gone->len; i++)
		store_emit(store, STORE_EVENT_MESSAGE_GONE, folder, g_ptr_array_index(r.gone, i),
			   NULL);
	g_ptr_array_unref(r.gone);
	g_array_unref(r.rows);
}

typedef struct {
	Store *store;
	StoreFolder *f;
	GPtrArray *back; /* StoreMessage* refs */
} Unhide;

static gboolean
unhide_one(guint32 uid, gpointer data)
{
	Unhide *u = data;
	StoreMessage *m = store_folder_msg_lookup_locked(u->f, uid);

	if (m == NULL || !m->hidden)
		return TRUE;
	m->hidden = FALSE;
	store_local_pin_locked(u->store, u->f, uid);
	g_ptr_array_add(u->back, store_message_ref(m));
	return TRUE;
}

void
store_local_unhide(Store *store, StoreFolder *folder, const ImapUidSet *uids)
{
	Unhide u = {store, folder, g_ptr_array_new_with_free_func((GDestroyNotify)store_message_unref)};

	g_mutex_lock(&store->lock);
	imap_uidset_foreach(uids, unhide_one, &u);
	g_mutex_unlock(&store->lock);
	for (guint i = 0; i < u.back->len; i++)
		store_emit(store, STORE_EVENT_MESSAGE_ADDED, folder, g_ptr_array_index(u.back, i),
			   NULL);
	g_ptr_array_unref(u.back);
}

ImapUidSet *
store_local_hidden(Store *store, StoreFolder *folder)
{
	ImapUidSet *out = NULL;

	g_mutex_lock(&store->lock);
	for (guint i = 0; i < store_folder_msg_count_locked(folder); i++) {
		StoreMessage *m = store_folder_msg_index_locked(folder, i);

		if (!m->hidden)
			continue;
		if (out == NULL)
			out = imap_uidset_new();
		imap_uidset_add(out, m->info.uid);
	}
	g_mutex_unlock(&store->lock);
	return out;
}

/* ---- adding ------------------------------------------------------------------------ */

/* Publishes the new messages @got (UID order) of @folder: each pinned; when the listing is
 * loaded at @uidvalidity they join it (MESSAGE_ADDED), else the first listing brings
 * them. An entry a listing put there first replaces its own in @got. */
static void
publish_added(Store *store, StoreFolder *folder, guint32 uidvalidity, GPtrArray *got)
{
	g_autoptr(GPtrArray) added = g_ptr_array_new_with_free_func((GDestroyNotify)store_message_unref);

	g_mutex_lock(&store->lock);
	for (guint i = 0; i < got->len; i++) {
		StoreMessage *m = g_ptr_array_index(got, i);
		StoreMessage *old;

		store_local_pin_locked(store, folder, m->info.uid);
		if (!folder->loaded || folder->uidvalidity != uidvalidity)
			continue; /* the first listing (or the reset one) will bring it */
		old = store_folder_msg_lookup_locked(folder, m->info.uid);
		if (old != NULL) {
			/* a listing got there first: keep that object */
			g_ptr_array_index(got, i) = store_message_ref(old);
			store_message_unref(m);
			continue;
		}
		if (store_folder_msg_insert_locked(folder, m))
			g_ptr_array_add(added, store_message_ref(m));
	}
	/* UIDs from the listing's UIDNEXT on are ours with no gap: the next resync need not
	 * fetch them again (another client's mail in a gap keeps UIDNEXT where it is) */
	for (guint i = 0; i < got->len && folder->loaded && folder->uidvalidity == uidvalidity;
	     i++) {
		guint32 uid = ((StoreMessage *)g_ptr_array_index(got, i))->info.uid;

		if (uid == folder->uidnext)
			folder->uidnext = uid + 1;
	}
	folder->exists += added->len;
	g_mutex_unlock(&store->lock);
	for (guint i = 0; i < added->len; i++)
		store_emit_local(store, STORE_EVENT_MESSAGE_ADDED, folder,
				 g_ptr_array_index(added, i));
}

GPtrArray *
store_local_add_sync(Store *store, StoreFolder *folder, guint32 uidvalidity, const ImapUidSet *uids,
		     GCancellable *cancel, GError **error)
{
	GCancellable *call = store_call_begin(store, cancel, error);
	GPtrArray *got;

	if (call == NULL)
		return NULL;
	got = store_fetch_messages_sync(store, folder, uidvalidity, uids, call, error);
	store_call_end(store, call);
	if (got == NULL) {
		store_check_uidvalidity_error(store,
					      &(StoreMessageInfo){.mailbox = folder->name,
								  .uidvalidity = uidvalidity},
					      error ? *error : NULL);
		return NULL;
	}
	publish_added(store, folder, uidvalidity, got);
	return got;
}

GPtrArray *
store_local_add_copies(Store *store, StoreFolder *folder, guint32 uidvalidity,
		       StoreMessage *const *src, const guint32 *uids, guint n)
{
	g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func((GDestroyNotify)hcache_message_free);
	g_autoptr(GError) error = NULL;
	Hcache *hc = store_hc(store);
	GPtrArray *got;
	gint64 id;

	if (hc == NULL || n == 0 || uidvalidity == 0)
		return NULL;
	g_mutex_lock(&store->lock);
	id = folder->hc_id;
	g_mutex_unlock(&store->lock);
	if (id == 0 && (id = hcache_mailbox_ensure(hc, folder->name, &error)) == 0)
		goto fail;
	for (guint i = 0; i < n; i++) {
		const StoreMessageInfo *info = &src[i]->info;
		HcacheMessage *row;

		if (src[i]->hc_id == 0)
			return NULL; /* not in the cache: fetched instead */
		row = hcache_message_get(hc, src[i]->hc_id, info->uidvalidity, info->uid, &error);
		if (row == NULL)
			goto fail;
		row->uid = uids[i];
		row->ino = 0;
		g_clear_pointer(&row->filename, g_free); /* the name has the UID in it */
		g_mutex_lock(&store->lock);
		g_strfreev(row->flags); /* what we know now, maybe newer than the row */
		row->flags = store_message_dup_flags_locked(src[i]);
		g_mutex_unlock(&store->lock);
		g_ptr_array_add(rows, row);
	}
	if (!hcache_messages_put(hc, id, uidvalidity, (HcacheMessage *const *)rows->pdata, n,
				 hcache_ticket(hc), &error))
		goto fail;
	got = g_ptr_array_new_full(n, (GDestroyNotify)store_message_unref);
	for (guint i = 0; i < n; i++)
		g_ptr_array_add(got, store_message_new_from_hcache(folder->name, uidvalidity, id,
								   g_ptr_array_index(rows, i)));
	publish_added(store, folder, uidvalidity, got);
	return got;

fail:
	store_cache_error(store, error);
	return NULL;
}
