/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * batch.c: write-behind for bursts of one kind of write in one folder. `rm Folder/<all>`
 * calls unlink once per file and waits for each answer; sending one command per file would
 * cost a round trip each. So the first operation of a quiet folder runs synchronously (its
 * errors reach the caller), and the ones that follow it closely join a batch: each join
 * is made durable by the kind (a journal row) and acknowledged at once; the flusher thread
 * sends the accumulated UID set in one command after a few milliseconds of quiet, or as
 * soon as it holds STORE_BATCH_MAX UIDs. A listing of the folder flushes first
 * (store_batch_flush_sync), so nobody lists a state the server may not reach.
 *
 * Nothing here knows what the write is: a kind (StoreBatchKind) gives the two callbacks,
 * join (durability and the local effect, under the key's lock) and run (the command, on
 * the flusher thread, with the failure handling). A key is (kind, folder).
 *
 * Locking: batcher->lock protects every field below; a kind's join runs under it (it may
 * take store->lock, the header cache's lock and fs->lock through the events: so this lock
 * orders before all of them and is never taken by anything holding one of those). Run is
 * called with no lock held. One flusher thread runs batches one at a time, in the order
 * they became due.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include "store-private.h"

#define STORE_BATCH_MAX	  500				  /* UIDs per command */
#define STORE_BATCH_QUIET (10 * G_TIME_SPAN_MILLISECOND) /* sent after this much quiet */
#define STORE_BATCH_BURST (500 * G_TIME_SPAN_MILLISECOND) /* joins after an op this recent */

typedef struct {
	const StoreBatchKind *kind;
	StoreFolder *folder; /* ref */
	gint64 last_op;	     /* monotonic us of the last op (synchronous or joined), 0 none */
	/* the batch being filled, or uids == NULL: */
	ImapUidSet *uids;
	gpointer data;	   /* the kind's state of that batch */
	gint64 last_add;   /* monotonic us */
	gboolean forced;   /* a flush asked for it: due now */
	guint running;	   /* batches of this key handed to run and not back yet */
} BatchKey;

struct _StoreBatcher {
	Store *store;
	GMutex lock;
	GCond cond;	   /* the flusher waits on it; so do flushers-on-demand */
	GHashTable *keys;  /* BatchKey* (owned), found by batch_find */
	GThread *thread;   /* started with the first join */
	gboolean stopping;
};

static void
key_free(BatchKey *k)
{
	imap_uidset_free(k->uids);
	store_folder_unref(k->folder);
	g_free(k);
}

static StoreBatcher *
batcher_get(Store *store)
{
	StoreBatcher *b;

	g_mutex_lock(&store->lock);
	if (store->batcher == NULL) {
		b = g_new0(StoreBatcher, 1);
		b->store = store;
		g_mutex_init(&b->lock);
		g_cond_init(&b->cond);
		b->keys = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)key_free);
		store->batcher = b;
	}
	b = store->batcher;
	g_mutex_unlock(&store->lock);
	return b;
}

/* Under b->lock. */
static BatchKey *
key_find(StoreBatcher *b, const StoreBatchKind *kind, StoreFolder *folder, gboolean create)
{
	GHashTableIter it;
	gpointer v;

	g_hash_table_iter_init(&it, b->keys);
	while (g_hash_table_iter_next(&it, &v, NULL)) {
		BatchKey *k = v;

		if (k->kind == kind && k->folder == folder)
			return k;
	}
	if (!create)
		return NULL;
	{
		BatchKey *k = g_new0(BatchKey, 1);

		k->kind = kind;
		k->folder = store_folder_ref(folder);
		g_hash_table_add(b->keys, k);
		return k;
	}
}

/* Under b->lock: the monotonic time @k's batch is due, or G_MAXINT64. */
static gint64
due_at(BatchKey *k)
{
	if (k->uids == NULL)
		return G_MAXINT64;
	if (k->forced || imap_uidset_count(k->uids) >= STORE_BATCH_MAX)
		return 0;
	return k->last_add + STORE_BATCH_QUIET;
}

static gpointer flusher(gpointer data);

void
store_batch_ran(Store *store, const StoreBatchKind *kind, StoreFolder *folder)
{
	StoreBatcher *b = batcher_get(store);

	g_mutex_lock(&b->lock);
	key_find(b, kind, folder, TRUE)->last_op = g_get_monotonic_time();
	g_mutex_unlock(&b->lock);
}

gboolean
store_batch_join(Store *store, const StoreBatchKind *kind, StoreFolder *folder, guint32 uid,
		 gpointer item, GError **error)
{
	StoreBatcher *b = batcher_get(store);
	gint64 now = g_get_monotonic_time();
	g_autoptr(ImapUidSet) next = NULL;
	gboolean fresh;
	BatchKey *k;

	g_mutex_lock(&b->lock);
	k = key_find(b, kind, folder, FALSE);
	if (b->stopping || k == NULL || k->last_op == 0 || now - k->last_op > STORE_BATCH_BURST) {
		g_mutex_unlock(&b->lock);
		return FALSE; /* not in a burst: the caller runs it synchronously */
	}
	fresh = k->uids == NULL;
	next = fresh ? imap_uidset_new() : imap_uidset_dup(k->uids);
	imap_uidset_add(next, uid);
	if (!kind->join(store, folder, &k->data, next, uid, item, error)) {
		if (fresh)
			k->data = NULL;
		g_mutex_unlock(&b->lock);
		return FALSE;
	}
	imap_uidset_free(k->uids);
	k->uids = g_steal_pointer(&next);
	k->last_add = k->last_op = g_get_monotonic_time();
	if (b->thread == NULL)
		b->thread = g_thread_new("imapfs-batch", flusher, b);
	/* the flusher sleeps until the batch is due (quiet time after its last item, which
	 * it checks again when it wakes): only a new or a full batch needs to wake it, not
	 * every item of a burst */
	if (fresh || imap_uidset_count(k->uids) >= STORE_BATCH_MAX)
		g_cond_broadcast(&b->cond);
	g_mutex_unlock(&b->lock);
	return TRUE;
}

static gpointer
flusher(gpointer data)
{
	StoreBatcher *b = data;

	g_mutex_lock(&b->lock);
	for (;;) {
		GHashTableIter it;
		gpointer v;
		BatchKey *pick = NULL;
		gint64 first = G_MAXINT64, now = g_get_monotonic_time();
		ImapUidSet *uids;
		gpointer bdata;

		g_hash_table_iter_init(&it, b->keys);
		while (g_hash_table_iter_next(&it, &v, NULL)) {
			gint64 at = due_at(v);

			if (at < first) {
				first = at;
				pick = v;
			}
		}
		if (pick == NULL && b->stopping)
			break;
		if (pick == NULL || (first > now && !b->stopping)) {
			if (pick == NULL)
				g_cond_wait(&b->cond, &b->lock);
			else
				g_cond_wait_until(&b->cond, &b->lock, first);
			continue;
		}
		uids = g_steal_pointer(&pick->uids);
		bdata = g_steal_pointer(&pick->data);
		pick->forced = FALSE;
		pick->running++;
		store_folder_ref(pick->folder);
		g_mutex_unlock(&b->lock);
		pick->kind->run(b->store, pick->folder, uids, bdata);
		store_folder_unref(pick->folder);
		imap_uidset_free(uids);
		g_mutex_lock(&b->lock);
		pick->running--;
		g_cond_broadcast(&b->cond);
	}
	g_mutex_unlock(&b->lock);
	return NULL;
}

/* Under b->lock: does @folder (NULL: any) have a batch pending or running? */
static gboolean
busy_locked(StoreBatcher *b, StoreFolder *folder, gboolean force)
{
	GHashTableIter it;
	gpointer v;
	gboolean busy = FALSE;

	g_hash_table_iter_init(&it, b->keys);
	while (g_hash_table_iter_next(&it, &v, NULL)) {
		BatchKey *k = v;

		if (folder != NULL && k->folder != folder)
			continue;
		if (k->uids != NULL && force)
			k->forced = TRUE;
		if (k->uids != NULL || k->running > 0)
			busy = TRUE;
	}
	return busy;
}

gboolean
store_batch_flush_sync(Store *store, StoreFolder *folder, gint64 deadline)
{
	StoreBatcher *b;
	gboolean busy;

	g_mutex_lock(&store->lock);
	b = store->batcher;
	g_mutex_unlock(&store->lock);
	if (b == NULL)
		return TRUE;
	g_mutex_lock(&b->lock);
	while ((busy = busy_locked(b, folder, TRUE)) && b->thread != NULL) {
		g_cond_broadcast(&b->cond);
		if (!g_cond_wait_until(&b->cond, &b->lock, deadline) &&
		    g_get_monotonic_time() >= deadline)
			break;
	}
	busy = busy_locked(b, folder, FALSE);
	g_mutex_unlock(&b->lock);
	return !busy;
}

void
store_batch_free(Store *store)
{
	StoreBatcher *b = store->batcher;

	if (b == NULL)
		return;
	g_mutex_lock(&b->lock);
	b->stopping = TRUE; /* what is pending is still run (its commands fail at once once
			     * the store is cancelled, and each kind undoes what failed) */
	g_cond_broadcast(&b->cond);
	g_mutex_unlock(&b->lock);
	if (b->thread != NULL)
		g_thread_join(b->thread);
	g_hash_table_unref(b->keys);
	g_mutex_clear(&b->lock);
	g_cond_clear(&b->cond);
	g_free(b);
	store->batcher = NULL;
}
