/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * resync.c: the message listing of one folder and its resync. A cold load is EXAMINE then
 * UID FETCH of UID, FLAGS, RFC822.SIZE, INTERNALDATE, ENVELOPE (and MODSEQ with
 * CONDSTORE); with the header cache on, the first listing comes from the cache and is then
 * resynced: with QRESYNC the EXAMINE itself carries VANISHED and changed flags, with
 * CONDSTORE a CHANGEDSINCE flag fetch, without either a flag fetch of all; new mail is
 * fetched from the last known UIDNEXT, and a UID SEARCH diff repairs a listing whose count
 * disagrees with EXISTS. An unchanged folder costs one EXAMINE. Identity of a message is
 * (mailbox, UIDVALIDITY, UID); a UIDVALIDITY change drops the old listing, cached rows and
 * bodies.
 *
 * Cache writes happen on the calling thread after each network step (never from a fetch
 * callback), one transaction per batch, and the mailbox's UIDNEXT/HIGHESTMODSEQ are stored
 * last, so a crash in between makes the next resync redo the work, never skip it.
 *
 * It owns the message array of a folder (one array of references sorted by UID) and its
 * accessors, the only code that reads or changes it.
 *
 * It builds its records with message.c and uses the account's services (store.c); it
 * reaches later files only by two notifications that never wait: a folder reset marks the
 * open bodies stale (store_bodies_mark_stale, body.c) and new mail is queued for the
 * downloader (store_sync_queue_folder, downloader.c).
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "store-private.h"

typedef struct {
	const char *mailbox;
	StoreFolder *folder;
	StoreInflight *op; /* the shared load this fetch is part of, or NULL */
	guint32 uidvalidity;
	gboolean full;	  /* full items: StoreMessage*; else ImapMessage* copies (flags) */
	GPtrArray *items; /* owning */
} Collect;

/* Runs on the connection's I/O thread: copy what we need, nothing else. */
static void
collect_cb(ImapMessage *m, gpointer user_data)
{
	Collect *c = user_data;

	if (c->op != NULL)
		store_inflight_progress(c->op);
	if (m->uid == 0)
		return;
	if (c->full) {
		guint want = IMAP_FETCH_SIZE | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_ENVELOPE;

		if ((m->have & want) != want &&
		    g_atomic_int_compare_and_exchange(&c->folder->nil_logged, 0, 1))
			g_message("%s: NIL (or nothing) for RFC822.SIZE, INTERNALDATE or "
				  "ENVELOPE of UID %u (maybe others): shown with fallbacks (date "
				  "from the header or the epoch, size on first read)",
				  c->mailbox, m->uid);
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

/* ---- the messages of a folder: one array of references sorted by UID ---------------- */

static gint
cmp_uid(gconstpointer a, gconstpointer b)
{
	const StoreMessage *x = *(StoreMessage *const *)a;
	const StoreMessage *y = *(StoreMessage *const *)b;

	return x->info.uid < y->info.uid ? -1 : x->info.uid > y->info.uid;
}

static gint
uid_cmp(gconstpointer a, gconstpointer b)
{
	guint32 x = *(const guint32 *)a, y = *(const guint32 *)b;

	return x < y ? -1 : x > y;
}

/* The position of @uid in @a (StoreMessage* by UID), or where it would go (*@found
 * FALSE). New mail goes last, so that case is checked first. */
static guint
msg_position(GPtrArray *a, guint32 uid, gboolean *found)
{
	guint lo = 0, hi = a != NULL ? a->len : 0;

	*found = FALSE;
	if (hi == 0 || ((StoreMessage *)a->pdata[hi - 1])->info.uid < uid)
		return hi;
	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		guint32 u = ((StoreMessage *)a->pdata[mid])->info.uid;

		if (u == uid) {
			*found = TRUE;
			return mid;
		}
		if (u < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static StoreMessage *
msg_find(GPtrArray *a, guint32 uid)
{
	gboolean found;
	guint at = msg_position(a, uid, &found);

	return found ? a->pdata[at] : NULL;
}

static GPtrArray *
msgs_new(guint reserve)
{
	return g_ptr_array_new_full(reserve, (GDestroyNotify)store_message_unref);
}

/* Cuts @a (made by msgs_new) to its first @n entries, whose tail holds pointers that were
 * moved to the front (no references of their own). */
static void
msgs_truncate_moved(GPtrArray *a, guint n)
{
	g_ptr_array_set_free_func(a, NULL);
	g_ptr_array_set_size(a, n);
	g_ptr_array_set_free_func(a, (GDestroyNotify)store_message_unref);
}

StoreMessage *
store_folder_msg_lookup_locked(StoreFolder *f, guint32 uid)
{
	return msg_find(f->msgs, uid);
}

gboolean
store_folder_msg_insert_locked(StoreFolder *f, StoreMessage *msg)
{
	gboolean found;
	guint at;

	if (f->msgs == NULL)
		return FALSE; /* no listing yet: its first one brings @msg */
	at = msg_position(f->msgs, msg->info.uid, &found);
	if (found)
		return FALSE;
	g_ptr_array_insert(f->msgs, (gint)at, store_message_ref(msg));
	return TRUE;
}

gboolean
store_folder_msg_remove_locked(StoreFolder *f, guint32 uid)
{
	gboolean found;
	guint at = msg_position(f->msgs, uid, &found);

	if (found)
		g_ptr_array_remove_index(f->msgs, at); /* drops the folder's reference */
	return found;
}

guint
store_folder_msg_count_locked(StoreFolder *f)
{
	return f->msgs != NULL ? f->msgs->len : 0;
}

StoreMessage *
store_folder_msg_index_locked(StoreFolder *f, guint i)
{
	g_return_val_if_fail(i < store_folder_msg_count_locked(f), NULL);
	return f->msgs->pdata[i];
}

GPtrArray *
store_folder_msg_snapshot_locked(StoreFolder *f)
{
	GPtrArray *out;

	if (f->msgs == NULL)
		return NULL;
	out = msgs_new(f->msgs->len);
	for (guint i = 0; i < f->msgs->len; i++)
		g_ptr_array_add(out, store_message_ref(f->msgs->pdata[i]));
	return out;
}

/* Removes the messages of @uids (any order; unknown ones are skipped) in one pass over
 * the array, where one store_folder_msg_remove_locked() each would move its tail each
 * time (an expunge of old mail from a big folder). */
void
store_folder_msg_remove_many_locked(StoreFolder *f, const guint32 *uids, guint n)
{
	g_autoptr(GArray) sorted = NULL;
	guint w = 0, j = 0;

	if (f->msgs == NULL || n == 0)
		return;
	if (n == 1) {
		store_folder_msg_remove_locked(f, uids[0]);
		return;
	}
	sorted = g_array_sized_new(FALSE, FALSE, sizeof(guint32), n);
	g_array_append_vals(sorted, uids, n);
	g_array_sort(sorted, uid_cmp);
	for (guint i = 0; i < f->msgs->len; i++) {
		StoreMessage *m = f->msgs->pdata[i];

		while (j < n && g_array_index(sorted, guint32, j) < m->info.uid)
			j++;
		if (j < n && g_array_index(sorted, guint32, j) == m->info.uid)
			store_message_unref(m);
		else
			f->msgs->pdata[w++] = m;
	}
	msgs_truncate_moved(f->msgs, w);
}

/* Replaces every message of @f by @msgs (StoreMessage* refs by UID, taken). */
static void
folder_msg_replace_all_locked(StoreFolder *f, GPtrArray *msgs)
{
	g_clear_pointer(&f->msgs, g_ptr_array_unref);
	f->msgs = msgs;
}

GPtrArray *
store_folder_snapshot_locked(StoreFolder *f)
{
	guint n = store_folder_msg_count_locked(f);
	GPtrArray *out = msgs_new(n);

	for (guint i = 0; i < n; i++) {
		StoreMessage *m = store_folder_msg_index_locked(f, i);

		if (!m->hidden)
			g_ptr_array_add(out, store_message_ref(m));
	}
	return out;
}

#define BATCH 1000 /* messages per header FETCH (cold load) and per cache transaction */

/* UID FETCH of @set: full items (StoreMessage*) or flags only (ImapMessage*); progress
 * is reported to @op (the shared load running it, or NULL). */
static gboolean
fetch_set_for(Store *store, StoreFolder *f, StoreInflight *op, guint32 uidvalidity,
	      const ImapUidSet *set, gboolean full, guint64 changedsince, GPtrArray **out,
	      GCancellable *cancel, GError **error)
{
	Collect c = {
		.mailbox = f->name,
		.folder = f,
		.op = op,
		.uidvalidity = uidvalidity,
		.full = full,
	};
	guint items = IMAP_FETCH_UID | IMAP_FETCH_FLAGS;

	if (full)
		items |= IMAP_FETCH_SIZE | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_ENVELOPE |
			 IMAP_FETCH_REFERENCES;
	if (store->condstore)
		items |= IMAP_FETCH_MODSEQ;
	c.items = g_ptr_array_new_with_free_func(full ? (GDestroyNotify)store_message_unref
						      : (GDestroyNotify)imap_message_free);
	if (!imap_fetch_sync(store->pool, f->name, uidvalidity, set, items, changedsince,
			     collect_cb, &c, cancel, error)) {
		g_ptr_array_unref(c.items);
		return FALSE;
	}
	*out = c.items;
	return TRUE;
}

/* fetch_set_for() on the worker of @f's shared load (which set f->inflight before it ran). */
static gboolean
fetch_set(Store *store, StoreFolder *f, guint32 uidvalidity, const ImapUidSet *set, gboolean full,
	  guint64 changedsince, GPtrArray **out, GCancellable *cancel, GError **error)
{
	return fetch_set_for(store, f, f->inflight, uidvalidity, set, full, changedsince, out,
			     cancel, error);
}

static gboolean
fetch(Store *store, StoreFolder *f, guint32 uidvalidity, guint32 first, gboolean full,
      GPtrArray **out, GCancellable *cancel, GError **error)
{
	g_autoptr(ImapUidSet) set = imap_uidset_new();

	imap_uidset_add_range(set, MAX(first, 1), G_MAXUINT32);
	return fetch_set(store, f, uidvalidity, set, full, 0, out, cancel, error);
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

/* ---- the header cache side ----------------------------------------------------------- */

/* Stores fetched messages, one transaction per BATCH; fills their inode numbers. */
static void
cache_put_rows(Store *store, gint64 id, guint32 uv, GPtrArray *msgs, guint64 ticket)
{
	g_autoptr(GError) error = NULL;

	if (store_hc(store) == NULL || id == 0 || msgs == NULL)
		return;
	for (guint at = 0; at < msgs->len; at += BATCH) {
		guint n = MIN(BATCH, msgs->len - at);
		g_autoptr(GPtrArray) rows =
			g_ptr_array_new_full(n, (GDestroyNotify)hcache_message_free);

		for (guint i = 0; i < n; i++)
			g_ptr_array_add(rows, store_message_to_hcache(
						      store, g_ptr_array_index(msgs, at + i)));
		if (!hcache_messages_put(store->hc, id, uv, (HcacheMessage *const *)rows->pdata, n,
					 ticket, &error)) {
			store_cache_error(store, error);
			return;
		}
		for (guint i = 0; i < n; i++) {
			StoreMessage *m = g_ptr_array_index(msgs, at + i);

			m->hc_id = id;
			m->ino = ((HcacheMessage *)g_ptr_array_index(rows, i))->ino;
		}
	}
}

/* cache_put_rows(), then what the records need not hold is dropped before they are
 * published: the thread headers (they go to the cache only) and, for rows the cache now
 * holds, the envelope fields (read back from there when an xattr asks). */
static void
cache_put(Store *store, gint64 id, guint32 uv, GPtrArray *msgs, guint64 ticket)
{
	cache_put_rows(store, id, uv, msgs, ticket);
	for (guint i = 0; msgs != NULL && i < msgs->len; i++) {
		StoreMessage *m = g_ptr_array_index(msgs, i);

		store_message_drop_fetched(m, m->hc_id == 0);
	}
}

static void
cache_flags(Store *store, gint64 id, guint32 uv, GPtrArray *flags, guint64 ticket)
{
	g_autoptr(GError) error = NULL;
	g_autofree HcacheFlagUpdate *u = NULL;

	if (store_hc(store) == NULL || id == 0 || flags == NULL || flags->len == 0)
		return;
	u = g_new0(HcacheFlagUpdate, flags->len);
	for (guint i = 0; i < flags->len; i++) {
		ImapMessage *m = g_ptr_array_index(flags, i);

		u[i].uid = m->uid;
		u[i].flags = (const char *const *)m->flags;
		u[i].modseq = m->modseq;
	}
	if (!hcache_flags_apply(store->hc, id, uv, u, flags->len, ticket, NULL, &error))
		store_cache_error(store, error);
}

static void
cache_gone(Store *store, gint64 id, guint32 uv, GArray *gone)
{
	g_autoptr(GError) error = NULL;

	if (store_hc(store) == NULL || id == 0 || gone == NULL || gone->len == 0)
		return;
	if (!hcache_messages_delete(store->hc, id, uv, (guint32 *)gone->data, gone->len, NULL,
				    &error))
		store_cache_error(store, error);
	if (store_bc(store) != NULL)
		for (guint i = 0; i < gone->len; i++)
			bodycache_remove(store->bc, id, uv, g_array_index(gone, guint32, i));
}

GPtrArray *
store_fetch_messages_sync(Store *store, StoreFolder *f, guint32 uidvalidity, const ImapUidSet *uids,
			  GCancellable *cancel, GError **error)
{
	guint64 ticket = store_hc(store) ? hcache_ticket(store->hc) : 0;
	GPtrArray *got = NULL;
	gint64 id;

	if (!fetch_set_for(store, f, NULL, uidvalidity, uids, TRUE, 0, &got, cancel, error))
		return NULL;
	g_mutex_lock(&store->lock);
	id = f->hc_id;
	g_mutex_unlock(&store->lock);
	g_ptr_array_sort(got, cmp_uid);
	cache_put(store, id, uidvalidity, got, ticket);
	return got;
}

static void
cache_state(Store *store, StoreFolder *f, gint64 id, const ImapSelectInfo *sel)
{
	g_autoptr(GError) error = NULL;
	HcacheMailbox mb = {
		.name = f->name,
		.delim = f->delim,
		.attrs = f->attrs,
		.special_use = (char *)store_folder_get_special_use(f),
		.uidvalidity = sel->uidvalidity,
		.uidnext = sel->uidnext,
		.highestmodseq = sel->highestmodseq,
	};

	if (store_hc(store) == NULL || id == 0)
		return;
	if (!hcache_mailbox_put(store->hc, &mb, &error))
		store_cache_error(store, error);
}

/* Records the mailbox's UIDVALIDITY in the cache; a different one drops the cached rows
 * and bodies of the old one (0: drops them all, the new value is not known yet). */
static void
cache_set_uidvalidity(Store *store, gint64 id, guint32 uidvalidity)
{
	g_autoptr(GError) cerr = NULL;
	gboolean dropped = FALSE;

	if (store_hc(store) == NULL || id == 0)
		return;
	if (!hcache_mailbox_set_uidvalidity(store->hc, id, uidvalidity, &dropped, &cerr))
		store_cache_error(store, cerr);
	if (dropped && store_bc(store) != NULL)
		bodycache_drop_mailbox(store->bc, id, uidvalidity);
}

void
store_folder_reset(Store *store, const char *mailbox, guint32 old_uidvalidity)
{
	StoreFolder *f;
	gint64 id = 0;

	g_mutex_lock(&store->lock);
	f = g_hash_table_lookup(store->folders, mailbox);
	if (f == NULL || old_uidvalidity == 0 || f->uidvalidity != old_uidvalidity) {
		/* unknown, or already reset (or reloaded) since */
		g_mutex_unlock(&store->lock);
		return;
	}
	store_folder_ref(f);
	id = f->hc_id;
	/* the next listing is a full reload (as for any UIDVALIDITY change) */
	f->uidvalidity = 0;
	f->loaded = FALSE;
	f->loaded_at = STORE_STALE;
	g_mutex_unlock(&store->lock);

	g_message("%s: UIDVALIDITY %u is gone on the server: the folder is reset", mailbox,
		  old_uidvalidity);
	store_bodies_mark_stale(store, mailbox, old_uidvalidity);
	cache_set_uidvalidity(store, id, 0);
	store_emit(store, STORE_EVENT_FOLDER_RESET, f, NULL, NULL);
	store_folder_unref(f);
}

void
store_check_uidvalidity_error(Store *store, const StoreMessageInfo *info, const GError *error)
{
	if (g_error_matches(error, IMAP_ERROR, IMAP_ERROR_UIDVALIDITY))
		store_folder_reset(store, info->mailbox, info->uidvalidity);
}

/* The cached listing of @f (warm start), or NULL when the cache has none. */
static GPtrArray *
warm_load(Store *store, StoreFolder *f, gint64 id, HcacheMailbox *mb)
{
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GError) error = NULL;
	GPtrArray *out;

	if (store_hc(store) == NULL || id == 0)
		return NULL;
	if (!hcache_mailbox_get(store->hc, f->name, mb, &error) || mb->uidvalidity == 0)
		return NULL;
	rows = hcache_messages_load(store->hc, mb->id, mb->uidvalidity, &error);
	if (rows == NULL) {
		store_cache_error(store, error);
		return NULL;
	}
	out = g_ptr_array_new_full(rows->len, (GDestroyNotify)store_message_unref);
	for (guint i = 0; i < rows->len; i++)
		g_ptr_array_add(out, store_message_new_from_hcache(f->name, mb->uidvalidity, mb->id,
								   g_ptr_array_index(rows, i)));
	return out;
}

/* ---- resync ------------------------------------------------------------------------ */

/* What the listing looked like before the network part (copied under the lock). */
typedef struct {
	gboolean was_loaded;
	guint32 uidvalidity, uidnext, exists;
	guint64 modseq;
	gint64 hc_id;
	GArray *uids; /* known UIDs (guint32), ascending */
} Known;

/* The network part of a (re)load; store->lock is NOT held. Fills the results for merge. */
typedef struct {
	ImapSelectInfo *sel;
	GPtrArray *full;  /* StoreMessage* of fetched messages (new ones or all) */
	GPtrArray *flags; /* ImapMessage* flag updates of known ones */
	GArray *gone;	  /* guint32 UIDs known before and expunged since */
	gboolean reset;	  /* @full is the complete listing */
	gboolean unchanged;
	guint64 ticket; /* store_ticket() taken before the EXAMINE (local.c pins) */
} Load;

static void
load_clear(Load *l)
{
	g_clear_pointer(&l->sel, imap_select_info_free);
	g_clear_pointer(&l->full, g_ptr_array_unref);
	g_clear_pointer(&l->flags, g_ptr_array_unref);
	g_clear_pointer(&l->gone, g_array_unref);
}

static gboolean
known_has(const Known *k, guint32 uid)
{
	return bsearch(&uid, k->uids->data, k->uids->len, sizeof(guint32), uid_cmp) != NULL;
}

static void
append_full(GPtrArray *to, GPtrArray *from)
{
	for (guint i = 0; i < from->len; i++)
		g_ptr_array_add(to, store_message_ref(g_ptr_array_index(from, i)));
}

/* Cold load: every message, newest batch first, each batch stored as it arrives. */
static gboolean
load_all(Store *store, StoreFolder *f, const Known *k, Load *l, guint64 ticket,
	 GCancellable *cancel, GError **error)
{
	ImapSelectInfo *sel = l->sel;
	g_autoptr(ImapUidSet) all = NULL;
	g_autoptr(GPtrArray) pieces = NULL;
	ImapSearchTerm term = {IMAP_SEARCH_ALL, NULL};

	l->reset = TRUE;
	l->full = g_ptr_array_new_with_free_func((GDestroyNotify)store_message_unref);
	if (sel->exists == 0)
		return TRUE;
	if (store_hc(store) == NULL || k->hc_id == 0 || sel->exists <= BATCH) {
		g_autoptr(GPtrArray) got = NULL;

		if (!fetch(store, f, sel->uidvalidity, 1, TRUE, &got, cancel, error))
			return FALSE;
		cache_put(store, k->hc_id, sel->uidvalidity, got, ticket);
		append_full(l->full, got);
		return TRUE;
	}
	all = imap_search_sync(store->pool, f->name, sel->uidvalidity, &term, 1, cancel, error);
	if (all == NULL)
		return FALSE;
	pieces = imap_uidset_split(all, BATCH);
	for (guint i = pieces->len; i-- > 0;) {
		g_autoptr(GPtrArray) got = NULL;

		if (!fetch_set(store, f, sel->uidvalidity, g_ptr_array_index(pieces, i), TRUE, 0,
			       &got, cancel, error))
			return FALSE;
		cache_put(store, k->hc_id, sel->uidvalidity, got, ticket);
		append_full(l->full, got);
	}
	return TRUE;
}

typedef struct {
	const Known *k;
	GHashTable *fresh;
	ImapUidSet *missing;
} AddMissing;

/* imap_uidset_foreach: server UIDs neither known nor just fetched. */
static gboolean
add_missing(guint32 uid, gpointer data)
{
	AddMissing *a = data;

	if (!known_has(a->k, uid) && !g_hash_table_contains(a->fresh, GUINT_TO_POINTER(uid)))
		imap_uidset_add(a->missing, uid);
	return TRUE;
}

static gboolean
load(Store *store, StoreFolder *f, const Known *k, Load *l, GCancellable *cancel, GError **error)
{
	ImapSelectInfo *sel;
	guint64 ticket = store_hc(store) ? hcache_ticket(store->hc) : 0;
	gboolean qresync, modseqs, all_flags = FALSE;
	g_autoptr(GHashTable) fresh = g_hash_table_new(NULL, NULL); /* UIDs in l->full */
	guint count;

	qresync = k->was_loaded && k->modseq != 0 && k->uidvalidity != 0 &&
		  imap_pool_has_capability(store->pool, "QRESYNC");
	sel = l->sel = imap_examine_sync(store->pool, f->name, qresync ? k->uidvalidity : 0,
					 qresync ? k->modseq : 0, cancel, error);
	if (sel == NULL)
		return FALSE;
	cache_set_uidvalidity(store, k->hc_id, sel->uidvalidity);
	if (!k->was_loaded || sel->uidvalidity != k->uidvalidity) {
		if (!load_all(store, f, k, l, ticket, cancel, error))
			return FALSE;
		cache_state(store, f, k->hc_id, sel);
		return TRUE;
	}
	modseqs = k->modseq != 0 && sel->highestmodseq != 0;
	if (modseqs && sel->highestmodseq == k->modseq && sel->uidnext == k->uidnext &&
	    sel->exists == k->exists) {
		l->unchanged = TRUE;
		return TRUE;
	}
	l->full = g_ptr_array_new_with_free_func((GDestroyNotify)store_message_unref);
	l->flags = g_ptr_array_new_with_free_func((GDestroyNotify)imap_message_free);
	l->gone = g_array_new(FALSE, FALSE, sizeof(guint32));

	/* expunges and flag changes */
	if (qresync && sel->highestmodseq != 0) {
		if (sel->vanished != NULL && !imap_uidset_is_empty(sel->vanished)) {
			for (guint i = 0; i < k->uids->len; i++) {
				guint32 uid = g_array_index(k->uids, guint32, i);

				if (imap_uidset_contains(sel->vanished, uid))
					g_array_append_val(l->gone, uid);
			}
		}
		for (guint i = 0; sel->changed != NULL && i < sel->changed->len; i++) {
			ImapMessage *m = g_ptr_array_index(sel->changed, i);
			ImapMessage *copy;

			if (!known_has(k, m->uid) || !(m->have & IMAP_FETCH_FLAGS))
				continue;
			copy = g_new0(ImapMessage, 1);
			copy->have =
				m->have & (IMAP_FETCH_UID | IMAP_FETCH_FLAGS | IMAP_FETCH_MODSEQ);
			copy->uid = m->uid;
			copy->flags = g_strdupv(m->flags);
			copy->modseq = m->modseq;
			g_ptr_array_add(l->flags, copy);
		}
	} else if (modseqs) {
		if (sel->highestmodseq != k->modseq && sel->exists > 0) {
			g_autoptr(GPtrArray) got = NULL;
			g_autoptr(ImapUidSet) set = imap_uidset_new();

			imap_uidset_add_range(set, 1, G_MAXUINT32);
			if (!fetch_set(store, f, sel->uidvalidity, set, FALSE, k->modseq, &got,
				       cancel, error))
				return FALSE;
			for (guint i = 0; i < got->len; i++)
				if (known_has(k, ((ImapMessage *)g_ptr_array_index(got, i))->uid))
					g_ptr_array_add(l->flags, g_steal_pointer(&got->pdata[i]));
		}
	} else if (sel->exists > 0) {
		g_autoptr(GPtrArray) got = NULL;

		if (!fetch(store, f, sel->uidvalidity, 1, FALSE, &got, cancel, error))
			return FALSE;
		g_ptr_array_extend_and_steal(l->flags, g_steal_pointer(&got));
		all_flags = TRUE;
	}

	/* new mail */
	if (k->uidnext != 0 && (sel->uidnext == 0 || sel->uidnext > k->uidnext)) {
		g_autoptr(GPtrArray) got = NULL;

		if (!fetch(store, f, sel->uidvalidity, k->uidnext, TRUE, &got, cancel, error))
			return FALSE;
		for (guint i = 0; i < got->len; i++) {
			StoreMessage *m = g_ptr_array_index(got, i);

			if (!known_has(k, m->info.uid))
				g_hash_table_add(fresh, GUINT_TO_POINTER(m->info.uid));
		}
		cache_put(store, k->hc_id, sel->uidvalidity, got, ticket);
		append_full(l->full, got);
	}

	/* the UID list: from the flags of all, or a SEARCH when the count disagrees */
	if (all_flags) {
		g_autoptr(GHashTable) listed = g_hash_table_new(NULL, NULL);
		g_autoptr(ImapUidSet) missing = imap_uidset_new();

		for (guint i = 0; i < l->flags->len; i++) {
			ImapMessage *m = g_ptr_array_index(l->flags, i);

			g_hash_table_add(listed, GUINT_TO_POINTER(m->uid));
			if (!known_has(k, m->uid) &&
			    !g_hash_table_contains(fresh, GUINT_TO_POINTER(m->uid)))
				imap_uidset_add(missing, m->uid);
		}
		for (guint i = 0; i < k->uids->len; i++) {
			guint32 uid = g_array_index(k->uids, guint32, i);

			if (!g_hash_table_contains(listed, GUINT_TO_POINTER(uid)))
				g_array_append_val(l->gone, uid);
		}
		if (!imap_uidset_is_empty(missing)) {
			g_autoptr(GPtrArray) got = NULL;

			if (!fetch_set(store, f, sel->uidvalidity, missing, TRUE, 0, &got, cancel,
				       error))
				return FALSE;
			cache_put(store, k->hc_id, sel->uidvalidity, got, ticket);
			append_full(l->full, got);
		}
	} else {
		count = k->uids->len - l->gone->len + g_hash_table_size(fresh);
		if (count != sel->exists || k->uidnext == 0) {
			ImapSearchTerm term = {IMAP_SEARCH_ALL, NULL};
			g_autoptr(ImapUidSet) server = NULL;
			g_autoptr(ImapUidSet) missing = imap_uidset_new();
			g_autoptr(GHashTable) gone = g_hash_table_new(NULL, NULL);

			server = imap_search_sync(store->pool, f->name, sel->uidvalidity, &term, 1,
						  cancel, error);
			if (server == NULL)
				return FALSE;
			for (guint i = 0; i < l->gone->len; i++)
				g_hash_table_add(
					gone, GUINT_TO_POINTER(g_array_index(l->gone, guint32, i)));
			for (guint i = 0; i < k->uids->len; i++) {
				guint32 uid = g_array_index(k->uids, guint32, i);

				if (!imap_uidset_contains(server, uid) &&
				    !g_hash_table_contains(gone, GUINT_TO_POINTER(uid)))
					g_array_append_val(l->gone, uid);
			}
			imap_uidset_foreach(server, add_missing, &(AddMissing){k, fresh, missing});
			if (!imap_uidset_is_empty(missing)) {
				g_autoptr(GPtrArray) got = NULL;

				if (!fetch_set(store, f, sel->uidvalidity, missing, TRUE, 0, &got,
					       cancel, error))
					return FALSE;
				cache_put(store, k->hc_id, sel->uidvalidity, got, ticket);
				append_full(l->full, got);
			}
		}
	}
	cache_flags(store, k->hc_id, sel->uidvalidity, l->flags, ticket);
	cache_gone(store, k->hc_id, sel->uidvalidity, l->gone);
	cache_state(store, f, k->hc_id, sel);
	return TRUE;
}

/* A change found by a merge, emitted once the store lock is dropped. */
typedef struct {
	StoreEventKind kind;
	StoreMessage *msg; /* ref or NULL */
} Pending;

static void
pending_add(GArray *events, StoreEventKind kind, StoreMessage *msg)
{
	Pending p = {kind, msg ? store_message_ref(msg) : NULL};

	if (events != NULL)
		g_array_append_val(events, p);
	else
		store_message_unref(p.msg);
}

static void
pending_clear(gpointer p)
{
	g_clear_pointer(&((Pending *)p)->msg, store_message_unref);
}

static GArray *
pending_new(void)
{
	GArray *a = g_array_new(FALSE, FALSE, sizeof(Pending));

	g_array_set_clear_func(a, pending_clear);
	return a;
}

/* Unlocked: hands what a merge found to the event receiver. */
static void
emit_pending(Store *store, StoreFolder *f, GArray *events)
{
	for (guint i = 0; events != NULL && i < events->len; i++) {
		Pending *p = &g_array_index(events, Pending, i);

		store_emit(store, p->kind, f, p->msg, NULL);
	}
}

/* Under store->lock: applies a load to the folder. Adds to @events (may be NULL) what
 * changed for someone who had seen the previous listing. */
static gboolean
merge_locked(Store *store, StoreFolder *f, Load *l, GArray *events)
{
	gboolean changed = FALSE;
	gboolean had = f->msgs != NULL; /* a listing of this folder was shown before */

	(void)store;
	if (l->unchanged)
		return FALSE;
	if (l->reset && had && f->uidvalidity != l->sel->uidvalidity)
		pending_add(events, STORE_EVENT_FOLDER_RESET, NULL);
	if (l->reset) {
		/* l->full (the complete listing) becomes the folder's array */
		GPtrArray *all = g_steal_pointer(&l->full);
		gboolean same = had && f->uidvalidity == l->sel->uidvalidity; /* a diff */
		guint n = 0;

		g_ptr_array_sort(all, cmp_uid); /* stable: of two copies, the later one wins */
		for (guint i = 0; i < all->len; i++) {
			StoreMessage *m = g_ptr_array_index(all, i);
			StoreMessage *old = NULL;

			if (i + 1 < all->len &&
			    ((StoreMessage *)all->pdata[i + 1])->info.uid == m->info.uid) {
				store_message_unref(m); /* the server sent it twice */
				continue;
			}
			if (same)
				old = store_folder_msg_lookup_locked(f, m->info.uid);
			if (same && store_local_pinned_locked(f, m->info.uid, l->ticket)) {
				store_message_unref(m);
				if (old == NULL)
					continue; /* removed here after the listing began */
				m = store_message_ref(old); /* its flags too are newer */
			} else if (old != NULL) {
				/* keep the object (and what we learnt about its size) */
				store_message_copy_flags_locked(old, m);
				store_message_unref(m);
				m = store_message_ref(old);
			}
			all->pdata[n++] = m;
		}
		msgs_truncate_moved(all, n);
		for (guint i = 0; same && i < store_folder_msg_count_locked(f); i++) {
			StoreMessage *m = store_folder_msg_index_locked(f, i);
			gboolean found;
			guint at = msg_position(all, m->info.uid, &found);

			/* added here after the listing began */
			if (!found && store_local_pinned_locked(f, m->info.uid, l->ticket))
				g_ptr_array_insert(all, (gint)at, store_message_ref(m));
		}
		changed = !had || f->uidvalidity != l->sel->uidvalidity ||
			  store_folder_msg_count_locked(f) != all->len;
		if (same) {
			for (guint i = 0; i < all->len; i++) {
				StoreMessage *m = g_ptr_array_index(all, i);

				if (store_folder_msg_lookup_locked(f, m->info.uid) == NULL) {
					changed = TRUE;
					pending_add(events, STORE_EVENT_MESSAGE_ADDED, m);
				}
			}
			for (guint i = 0; i < store_folder_msg_count_locked(f); i++) {
				StoreMessage *m = store_folder_msg_index_locked(f, i);

				if (msg_find(all, m->info.uid) == NULL)
					pending_add(events, STORE_EVENT_MESSAGE_GONE, m);
			}
		}
		folder_msg_replace_all_locked(f, all);
	} else {
		for (guint i = 0; i < l->full->len; i++) {
			StoreMessage *m = g_ptr_array_index(l->full, i);

			if (store_local_pinned_locked(f, m->info.uid, l->ticket) ||
			    !store_folder_msg_insert_locked(f, m))
				continue;
			pending_add(events, STORE_EVENT_MESSAGE_ADDED, m);
			changed = TRUE;
		}
		for (guint i = 0; i < l->flags->len; i++) {
			ImapMessage *im = g_ptr_array_index(l->flags, i);
			StoreMessage *m = store_folder_msg_lookup_locked(f, im->uid);

			if (m != NULL && !store_local_pinned_locked(f, im->uid, l->ticket)) {
				store_message_update_locked(m, im);
				pending_add(events, STORE_EVENT_FLAGS_CHANGED, m);
			}
		}
		for (guint i = 0; i < l->gone->len;) {
			guint32 uid = g_array_index(l->gone, guint32, i);
			StoreMessage *m = store_folder_msg_lookup_locked(f, uid);

			if (m != NULL && store_local_pinned_locked(f, uid, l->ticket)) {
				/* put back here after the listing began: it stays */
				g_array_remove_index_fast(l->gone, i);
				continue;
			}
			i++;
			if (m == NULL)
				continue;
			pending_add(events, STORE_EVENT_MESSAGE_GONE, m);
			changed = TRUE;
		}
		/* in one pass: one by one, each would move the array's tail */
		store_folder_msg_remove_many_locked(f, (const guint32 *)l->gone->data, l->gone->len);
	}
	if (l->reset && f->uidvalidity != l->sel->uidvalidity)
		g_clear_pointer(&f->pins, g_hash_table_unref); /* they named the old UIDs */
	store_local_settle_locked(f, l->ticket);
	return changed;
}

/* Installs a cached listing (@msgs, StoreMessage* refs, taken) as if it had been loaded
 * (stale: the caller resyncs it). */
static void
install_warm_locked(StoreFolder *f, GPtrArray *msgs, const HcacheMailbox *mb)
{
	f->exists = msgs->len;
	g_ptr_array_sort(msgs, cmp_uid);
	folder_msg_replace_all_locked(f, msgs);
	f->loaded = TRUE;
	f->loaded_at = STORE_STALE;
	f->uidvalidity = mb->uidvalidity;
	f->uidnext = mb->uidnext;
	f->highestmodseq = mb->highestmodseq;
}

/* One shared (re)load of a folder's listing (inflight.c); the waiters read @changed. */
typedef struct {
	Store *store;
	StoreFolder *folder; /* a reference */
	gboolean offline;
	gboolean changed; /* set by the worker before it ends */
} ListJob;

static void
list_job_free(ListJob *job)
{
	store_folder_unref(job->folder);
	g_free(job);
}

/* The worker of a shared load: the network part with the operation's @cancel, then the
 * merge; clears folder->loading/inflight under the lock before the waiters wake. */
static gboolean
list_run(StoreInflight *op, gpointer data, GCancellable *cancel, GError **error)
{
	ListJob *job = data;
	Store *store = job->store;
	StoreFolder *folder = job->folder;
	g_autoptr(GArray) events = pending_new();
	Load l = {0};
	Known k = {0};
	gboolean ok, ch = FALSE, warm = FALSE, offline = job->offline, sync = FALSE;
	guint32 sync_from = 0, reset_uv = 0, gone_uv = 0;

	g_mutex_lock(&store->lock);
	k.was_loaded = folder->loaded;
	k.hc_id = folder->hc_id;
	g_mutex_unlock(&store->lock);

	if (!k.was_loaded) {
		HcacheMailbox mb = {0};
		GPtrArray *msgs = warm_load(store, folder, k.hc_id, &mb);

		if (msgs != NULL) {
			g_mutex_lock(&store->lock);
			install_warm_locked(folder, msgs, &mb);
			store_delete_rehide_locked(store, folder);
			g_mutex_unlock(&store->lock);
			warm = TRUE;
		}
		hcache_mailbox_clear(&mb);
	}

	g_mutex_lock(&store->lock);
	k.was_loaded = folder->loaded;
	k.uidvalidity = folder->uidvalidity;
	k.uidnext = folder->uidnext;
	k.exists = folder->exists;
	k.modseq = folder->highestmodseq;
	k.uids = g_array_sized_new(FALSE, FALSE, sizeof(guint32),
				   store_folder_msg_count_locked(folder));
	for (guint i = 0; i < store_folder_msg_count_locked(folder); i++) {
		guint32 uid = store_folder_msg_index_locked(folder, i)->info.uid;

		g_array_append_val(k.uids, uid);
	}
	g_mutex_unlock(&store->lock);

	if (offline) {
		ok = warm;
		if (!ok)
			g_set_error(error, STORE_ERROR, STORE_ERROR_OFFLINE,
				    "offline: %s is not in the cache", folder->name);
	} else {
		GError *local = NULL;

		l.ticket = store_ticket(store);
		ok = load(store, folder, &k, &l, cancel, &local);
		if (!ok && k.was_loaded && store_hc(store) != NULL &&
		    store_error_is_unreachable(local)) {
			/* the server went away: serve what we have, retry now and then */
			g_message("%s: %s; offline: serving the cache", folder->name,
				  local->message);
			store_go_offline(store, TRUE);
			load_clear(&l);
			g_clear_error(&local);
			ok = TRUE;
		}
		if (g_error_matches(local, IMAP_ERROR, IMAP_ERROR_UIDVALIDITY) &&
		    k.uidvalidity != 0) {
			/* changed during the listing: the next one reloads it all */
			g_propagate_error(error, local);
			local = NULL;
			reset_uv = k.uidvalidity;
		}
		if (local != NULL)
			g_propagate_error(error, local);
	}

	g_mutex_lock(&store->lock);
	folder->loading = FALSE;
	folder->inflight = NULL;
	if (ok && l.sel != NULL) {
		ch = merge_locked(store, folder, &l, events);
		store_delete_rehide_locked(store, folder);
		folder->loaded = TRUE;
		folder->loaded_at = g_get_monotonic_time();
		folder->uidvalidity = l.sel->uidvalidity;
		folder->uidnext = l.sel->uidnext;
		folder->exists = l.sel->exists;
		folder->highestmodseq = l.sel->highestmodseq;
		/* sync=new|all: the bodies of what is new since the previous (cached) state */
		sync = !l.unchanged;
		sync_from = l.reset || l.sel->uidvalidity != k.uidvalidity ? 0 : k.uidnext;
		if (k.uidvalidity != 0 && l.sel->uidvalidity != k.uidvalidity)
			gone_uv = k.uidvalidity; /* the listing found the change */
	} else if (ok) {
		folder->loaded_at = g_get_monotonic_time();
	}
	job->changed = ch || warm;
	g_cond_broadcast(&store->cond);
	g_mutex_unlock(&store->lock);
	if (gone_uv != 0) /* (rows and bodies went in load(), the event comes next) */
		store_bodies_mark_stale(store, folder->name, gone_uv);
	emit_pending(store, folder, events);
	load_clear(&l);
	g_array_unref(k.uids);
	if (reset_uv != 0)
		store_folder_reset(store, folder->name, reset_uv);
	if (sync)
		store_sync_queue_folder(store, folder, sync_from);
	return ok;
}

GPtrArray *
store_folder_list_messages_sync(Store *store, StoreFolder *folder, gint64 max_age_us,
				gboolean *changed, GCancellable *cancel, GError **error)
{
	gboolean offline, waited = FALSE;
	GPtrArray *out;

	if (changed != NULL)
		*changed = FALSE;
	if (!store_folder_is_selectable(folder)) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_NOT_FOUND, "%s cannot hold messages",
			    folder->name);
		return NULL;
	}
	offline = store_offline_check(store);
	/* the write-behind first, so a listing shows what the server will have: every
	 * folder's, as a burst of moves is keyed by its source and its target's listing must
	 * wait for it too (nothing pending: no cost) */
	store_folder_flush_sync(store, NULL, g_get_monotonic_time() + store->idle_us);
	g_mutex_lock(&store->lock);
	for (;;) {
		StoreInflight *op;
		ListJob *job;
		gboolean ok;

		if (folder->loaded && folder->inflight == NULL &&
		    (waited || offline ||
		     g_get_monotonic_time() - folder->loaded_at <= max_age_us)) {
			/* fresh enough, or just loaded by the operation we waited for */
			out = store_folder_snapshot_locked(folder);
			g_mutex_unlock(&store->lock);
			return out;
		}
		if (folder->inflight != NULL) {
			/* someone else is loading it: wait for that, sharing its outcome */
			op = store_inflight_join(folder->inflight);
			if (op == NULL) {
				/* abandoned by its waiters and being cancelled: wait it out */
				if (g_cancellable_set_error_if_cancelled(cancel, error)) {
					g_mutex_unlock(&store->lock);
					return NULL;
				}
				g_cond_wait_until(&store->cond, &store->lock,
						  g_get_monotonic_time() +
							  50 * G_TIME_SPAN_MILLISECOND);
				continue;
			}
		} else {
			job = g_new0(ListJob, 1);
			job->store = store;
			job->folder = store_folder_ref(folder);
			job->offline = offline;
			op = store_inflight_start(store->inflight, list_run, job,
						  (GDestroyNotify)list_job_free, error);
			if (op == NULL) {
				g_mutex_unlock(&store->lock);
				list_job_free(job);
				return NULL;
			}
			folder->loading = TRUE;
			folder->inflight = op;
		}
		store_inflight_ref(op);
		g_mutex_unlock(&store->lock);
		ok = store_inflight_wait(op, store->idle_us, cancel, error);
		job = store_inflight_get_data(op);
		if (ok && changed != NULL && job->changed)
			*changed = TRUE;
		store_inflight_unref(op);
		if (!ok)
			return NULL;
		waited = TRUE;
		g_mutex_lock(&store->lock);
	}
}

GPtrArray *
store_folder_snapshot(Store *store, StoreFolder *folder)
{
	GPtrArray *out = NULL;

	g_mutex_lock(&store->lock);
	if (folder->loaded)
		out = store_folder_snapshot_locked(folder);
	g_mutex_unlock(&store->lock);
	return out;
}

StoreMessage *
store_folder_get_message(Store *store, StoreFolder *folder, guint32 uid)
{
	StoreMessage *m = NULL;

	g_mutex_lock(&store->lock);
	m = store_folder_msg_lookup_locked(folder, uid);
	if (m != NULL && !m->hidden)
		store_message_ref(m);
	else
		m = NULL;
	g_mutex_unlock(&store->lock);
	return m;
}
