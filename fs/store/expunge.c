/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * expunge.c: when the messages this mount marked \Deleted are expunged (-o expunge=).
 * Only ever UID EXPUNGE of exactly our own UIDs (UIDPLUS): a bare EXPUNGE would take
 * other clients' \Deleted mail too, so without UIDPLUS nothing is expunged at all.
 *
 * close (the default): the UIDs wait per folder until no file or directory handle is
 * open in it (store_folder_is_open) and nothing happened there for the delay, then one
 * UID EXPUNGE takes all of them; at unmount store_flush_sync() expunges what is left.
 * immediate: right after the STORE, on the caller's thread. never: the journal entry goes
 * once the STORE is confirmed; the messages stay \Deleted on the server, hidden for the
 * rest of this mount only.
 *
 * One thread (started with the first queued folder) watches the queue; an expunge that
 * fails (server away) is tried again later, and its journal entries stay until it is
 * done. Locking: e->lock protects the queue; nothing else is taken under it.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <string.h>

#include "store-private.h"

#define POLL_US	 (100 * G_TIME_SPAN_MILLISECOND) /* how often an open folder is looked at */
#define RETRY_US (5 * G_TIME_SPAN_SECOND)	 /* after a failed expunge */

/* What waits for its expunge in one mailbox. */
typedef struct {
	char *mailbox;
	StoreFolder *folder; /* ref, or NULL (queued by the recovery) */
	guint32 uidvalidity;
	ImapUidSet *uids;
	GArray *ids;	    /* gint64 journal entries settled by the expunge */
	gint64 last_change; /* monotonic us: queued, or seen open */
	gint64 retry_at;    /* monotonic us, 0: none */
} Pending;

struct _StoreExpunger {
	StoreExpunge policy;
	gint64 delay_us;
	gint uidplus_logged; /* atomic */
	GMutex lock;
	GCond cond;
	GHashTable *queue; /* mailbox -> Pending* (owned) */
	guint running;	   /* expunges in progress outside the queue */
	GThread *thread;
	gboolean stopping;
};
typedef struct _StoreExpunger StoreExpunger;

static void
pending_free(Pending *p)
{
	g_free(p->mailbox);
	g_clear_pointer(&p->folder, store_folder_unref);
	imap_uidset_free(p->uids);
	g_array_unref(p->ids);
	g_free(p);
}

static StoreExpunger *
expunger_get(Store *store)
{
	StoreExpunger *e;

	g_mutex_lock(&store->lock);
	if (store->expunger == NULL) {
		e = g_new0(StoreExpunger, 1);
		e->policy = STORE_EXPUNGE_CLOSE;
		e->delay_us = 2 * G_TIME_SPAN_SECOND;
		g_mutex_init(&e->lock);
		g_cond_init(&e->cond);
		e->queue = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
						 (GDestroyNotify)pending_free);
		store->expunger = e;
	}
	e = store->expunger;
	g_mutex_unlock(&store->lock);
	return e;
}

void
store_set_expunge(Store *store, StoreExpunge policy, gint64 delay_us)
{
	StoreExpunger *e = expunger_get(store);

	e->policy = policy;
	e->delay_us = MAX(delay_us, 0);
	store_delete_load_journal(store);
}

StoreExpunge
store_expunge_policy(Store *store)
{
	return expunger_get(store)->policy;
}

gboolean
store_expunge_possible(Store *store)
{
	StoreExpunger *e = expunger_get(store);

	if (imap_pool_has_capability(store->pool, "UIDPLUS"))
		return TRUE;
	if (g_atomic_int_compare_and_exchange(&e->uidplus_logged, 0, 1))
		g_message("the server has no UIDPLUS: messages removed here stay \\Deleted on the "
			  "server (a bare EXPUNGE would also take other clients' \\Deleted mail)");
	return FALSE;
}

static void
remove_entries(Store *store, const gint64 *ids, guint n)
{
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < n && store_hc(store) != NULL; i++)
		if (ids[i] != 0 && !hcache_journal_remove(store->hc, ids[i], &error)) {
			store_cache_error(store, error);
			g_clear_error(&error);
		}
}

gboolean
store_expunge_now_sync(Store *store, StoreFolder *folder, const char *mailbox, guint32 uidvalidity,
		       const ImapUidSet *uids, const gint64 *ids, guint n_ids, GCancellable *cancel,
		       GError **error)
{
	GError *local = NULL;
	GCancellable *call;
	gboolean ok;

	store_crash_point(store, "expunge-before");
	call = store_call_begin(store, cancel, error);
	if (call == NULL)
		return FALSE;
	ok = imap_expunge_uids_sync(store->pool, mailbox, uidvalidity, uids, call, &local);
	store_call_end(store, call);
	if (!ok && (g_error_matches(local, IMAP_ERROR, IMAP_ERROR_UIDVALIDITY) ||
		    g_error_matches(local, IMAP_ERROR, IMAP_ERROR_NONEXISTENT) ||
		    g_error_matches(local, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED))) {
		/* moot: those UIDs are gone with the folder or its UIDVALIDITY, or the server
		 * cannot expunge only ours (they stay \Deleted) */
		g_message("expunge in %s: %s (given up)", mailbox, local->message);
		g_clear_error(&local);
		ok = TRUE;
	} else if (!ok) {
		g_propagate_error(error, local);
		return FALSE;
	} else {
		store_crash_point(store, "expunge-done");
		if (folder != NULL)
			store_local_remove(store, folder, uids, FALSE);
	}
	remove_entries(store, ids, n_ids);
	store_delete_rehide_forget(store, mailbox, uids);
	return ok;
}

/* ---- the queue ------------------------------------------------------------------------ */

static gboolean
merge_one(guint32 uid, gpointer data)
{
	imap_uidset_add(data, uid);
	return TRUE;
}

/* Under e->lock: adds (@uids, @ids) to @mailbox's pending expunge. */
static void
enqueue_locked(StoreExpunger *e, StoreFolder *folder, const char *mailbox, guint32 uidvalidity,
	       const ImapUidSet *uids, const gint64 *ids, guint n_ids, gint64 retry_at)
{
	Pending *p = g_hash_table_lookup(e->queue, mailbox);

	if (p != NULL && p->uidvalidity != uidvalidity) {
		/* the older UIDs are moot (a reset folder); their entries go with the next */
		g_message("expunge in %s: UIDVALIDITY changed, %" G_GUINT64_FORMAT
			  " older UIDs dropped",
			  mailbox, imap_uidset_count(p->uids));
		imap_uidset_free(p->uids);
		p->uids = imap_uidset_new();
		p->uidvalidity = uidvalidity;
	}
	if (p == NULL) {
		p = g_new0(Pending, 1);
		p->mailbox = g_strdup(mailbox);
		p->uidvalidity = uidvalidity;
		p->uids = imap_uidset_new();
		p->ids = g_array_new(FALSE, FALSE, sizeof(gint64));
		g_hash_table_replace(e->queue, p->mailbox, p);
	}
	if (p->folder == NULL && folder != NULL)
		p->folder = store_folder_ref(folder);
	imap_uidset_foreach(uids, merge_one, p->uids);
	for (guint i = 0; i < n_ids; i++)
		if (ids[i] != 0)
			g_array_append_val(p->ids, ids[i]);
	p->last_change = g_get_monotonic_time();
	p->retry_at = MAX(p->retry_at, retry_at);
	g_cond_broadcast(&e->cond);
}

/* Runs @p (taken out of the queue); puts it back when it failed. */
static void
run_pending(Store *store, StoreExpunger *e, Pending *p, GCancellable *cancel)
{
	g_autoptr(GError) error = NULL;

	if (!store_expunge_now_sync(store, p->folder, p->mailbox, p->uidvalidity, p->uids,
				    (const gint64 *)p->ids->data, p->ids->len, cancel, &error)) {
		g_message("expunge in %s failed (%s): tried again later", p->mailbox,
			  error ? error->message : "?");
		g_mutex_lock(&e->lock);
		enqueue_locked(e, p->folder, p->mailbox, p->uidvalidity, p->uids,
			       (const gint64 *)p->ids->data, p->ids->len,
			       g_get_monotonic_time() + MAX(RETRY_US, e->delay_us));
		g_mutex_unlock(&e->lock);
	}
	pending_free(p);
}

static gpointer
expunger_thread(gpointer data)
{
	Store *store = data;
	StoreExpunger *e = store->expunger;

	g_mutex_lock(&e->lock);
	while (!e->stopping) {
		gint64 now = g_get_monotonic_time(), next = G_MAXINT64;
		GHashTableIter it;
		gpointer v;
		Pending *pick = NULL;

		g_hash_table_iter_init(&it, e->queue);
		while (g_hash_table_iter_next(&it, NULL, &v)) {
			Pending *p = v;
			gint64 at;

			if (p->folder != NULL && store_folder_is_open(p->folder)) {
				p->last_change = now; /* quiet counts from the close */
				next = MIN(next, now + POLL_US);
				continue;
			}
			at = MAX(p->last_change + e->delay_us, p->retry_at);
			if (at <= now) {
				pick = p;
				break;
			}
			/* look again sooner: the folder may be opened meanwhile */
			next = MIN(next, MIN(at, now + POLL_US));
		}
		if (pick != NULL) {
			g_hash_table_steal(e->queue, pick->mailbox);
			e->running++;
			g_mutex_unlock(&e->lock);
			run_pending(store, e, pick, NULL);
			g_mutex_lock(&e->lock);
			e->running--;
			g_cond_broadcast(&e->cond);
			continue;
		}
		if (next == G_MAXINT64)
			g_cond_wait(&e->cond, &e->lock);
		else
			g_cond_wait_until(&e->cond, &e->lock, next);
	}
	g_mutex_unlock(&e->lock);
	return NULL;
}

void
store_expunge_queue(Store *store, StoreFolder *folder, const char *mailbox, guint32 uidvalidity,
		    const ImapUidSet *uids, gint64 journal_id, GCancellable *cancel)
{
	StoreExpunger *e = expunger_get(store);
	g_autoptr(GError) error = NULL;

	if (e->policy == STORE_EXPUNGE_NEVER || !store_expunge_possible(store)) {
		/* nothing more will be done: \Deleted stays, hidden for this mount */
		remove_entries(store, &journal_id, 1);
		return;
	}
	if (e->policy == STORE_EXPUNGE_IMMEDIATE &&
	    store_expunge_now_sync(store, folder, mailbox, uidvalidity, uids, &journal_id, 1,
				   cancel, &error))
		return;
	if (error != NULL)
		g_message("expunge in %s failed (%s): tried again later", mailbox, error->message);
	g_mutex_lock(&e->lock);
	enqueue_locked(e, folder, mailbox, uidvalidity, uids, &journal_id, 1,
		       error != NULL ? g_get_monotonic_time() + RETRY_US : 0);
	if (e->thread == NULL && !e->stopping)
		e->thread = g_thread_new("imapfs-expunge", expunger_thread, store);
	g_mutex_unlock(&e->lock);
}

/* ---- unmount ---------------------------------------------------------------------- */

typedef struct {
	GMutex lock;
	GCond cond;
	gboolean done;
	gint64 deadline;
	GCancellable *cancel;
} Watchdog;

/* Cancels the flush at its deadline. */
static gpointer
watchdog(gpointer data)
{
	Watchdog *w = data;

	g_mutex_lock(&w->lock);
	while (!w->done)
		if (!g_cond_wait_until(&w->cond, &w->lock, w->deadline) &&
		    g_get_monotonic_time() >= w->deadline) {
			g_cancellable_cancel(w->cancel);
			break;
		}
	g_mutex_unlock(&w->lock);
	return NULL;
}

void
store_flush_sync(Store *store, gint64 timeout_us)
{
	StoreExpunger *e = expunger_get(store);
	Watchdog w = {.deadline = g_get_monotonic_time() + timeout_us};
	GThread *t;

	if (store_is_offline(store))
		return; /* the journal keeps it for the next mount */
	g_mutex_init(&w.lock);
	g_cond_init(&w.cond);
	w.cancel = g_cancellable_new();
	t = g_thread_new("imapfs-flush", watchdog, &w);

	store_batch_flush_sync(store, NULL, w.deadline);
	{
		g_autoptr(GPtrArray) todo = g_ptr_array_new();
		GHashTableIter it;
		gpointer v;

		/* each pending expunge once, whether its folder is open or not */
		g_mutex_lock(&e->lock);
		g_hash_table_iter_init(&it, e->queue);
		while (g_hash_table_iter_next(&it, NULL, &v)) {
			g_ptr_array_add(todo, v);
			g_hash_table_iter_steal(&it);
		}
		e->running += todo->len;
		g_mutex_unlock(&e->lock);
		for (guint i = 0; i < todo->len; i++)
			run_pending(store, e, g_ptr_array_index(todo, i), w.cancel);
		g_mutex_lock(&e->lock);
		e->running -= todo->len;
		/* one the expunger thread took before: wait for it */
		while (e->running > 0 && g_get_monotonic_time() < w.deadline)
			g_cond_wait_until(&e->cond, &e->lock, w.deadline);
		g_mutex_unlock(&e->lock);
	}

	g_mutex_lock(&w.lock);
	w.done = TRUE;
	g_cond_signal(&w.cond);
	g_mutex_unlock(&w.lock);
	g_thread_join(t);
	g_object_unref(w.cancel);
	g_mutex_clear(&w.lock);
	g_cond_clear(&w.cond);
}

void
store_expunge_free(Store *store)
{
	StoreExpunger *e = store->expunger;

	if (e == NULL)
		return;
	g_mutex_lock(&e->lock);
	e->stopping = TRUE;
	g_cond_broadcast(&e->cond);
	g_mutex_unlock(&e->lock);
	if (e->thread != NULL)
		g_thread_join(e->thread);
	g_hash_table_unref(e->queue);
	g_mutex_clear(&e->lock);
	g_cond_clear(&e->cond);
	g_free(e);
	store->expunger = NULL;
}
