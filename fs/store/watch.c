/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * watch.c: the change watcher (-o live=). It learns that a folder changed on the server
 * (NOTIFY for every folder, IDLE on the folders in use, STATUS or LIST-STATUS polling,
 * unsolicited responses on pool connections) and resyncs that folder on its own worker
 * thread with the shared listing load (store_folder_list_messages_sync, max age 0), so
 * the merge emits the store events and fs/ applies them: the watcher itself never
 * touches a listing, never walks a UID set and never emits an event.
 *
 * Design:
 * - Coalescing: a folder is due at most once (a queue of names plus a set); a burst of
 *   notifications for one folder while its resync waits costs one resync. A notification
 *   with STATUS data is compared against what the store knows before resyncing (an
 *   unchanged HIGHESTMODSEQ is no change); a later one for the same due folder replaces it.
 * - A resync must start after the change was heard: the worker waits for a listing
 *   already in flight to end before asking for its own (one joined in flight could have
 *   read the server before the change).
 * - Threads: the worker (resyncs, folder list refreshes), the manager (which IDLE
 *   connections run, polling rounds), the NOTIFY thread and one thread per IDLE
 *   (imap/). Their callbacks run on connection I/O threads: they only queue.
 * - After a lost push connection comes back (NOTIFY's READY resumed; IDLE's EXISTS after
 *   a reconnect) every loaded folder (or the one IDLE watched) is resynced once, and the
 *   folder list refreshed: what happened meanwhile is unknown.
 *
 * Lock order: (connection lock, on I/O threads) -> store->lock -> w->lock. Nothing here
 * waits on the network with a lock held.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <string.h>

#include "store-private.h"

#define RECENT_US (5 * 60 * G_USEC_PER_SEC) /* "used lately": IDLE candidates */
#define TICK_US (G_USEC_PER_SEC)	    /* the manager's look at the folders in use */

typedef enum {
	ACTIVE_OFF,
	ACTIVE_NOTIFY,
	ACTIVE_IDLE,
	ACTIVE_POLL,
} Active;

typedef struct {
	char *name;
	gboolean check;	 /* resync only when @st differs from the store's state */
	gboolean strict; /* (with check) equal items that are present mean no change; else
			  * only an equal HIGHESTMODSEQ does (NOTIFY sends STATUS for flags
			  * without one when CONDSTORE is off) */
	ImapStatus st;
} Due;

struct _StoreWatch {
	Store *store;
	StoreWatchConfig cfg; /* immutable (subtrees owned) */
	GCancellable *cancel;
	GThread *worker;
	GThread *manager;
	ImapNotify *notify; /* manager thread only (and stop) */
	GHashTable *idles;  /* mailbox name -> ImapIdle*; manager thread only */
	GMutex lock;
	GCond cond;
	/* protected by lock: */
	gboolean stop;
	Active active;
	GQueue queue;	       /* Due*, oldest first */
	GHashTable *due;       /* name -> Due* (in the queue) */
	gboolean folders_due;  /* refresh the folder list */
	gboolean all_due;      /* resync every loaded folder */
	gboolean notify_down;  /* NOTIFY refused: the manager falls back */
	gboolean busy;	       /* the worker is running a job */
};

static void
due_free(Due *d)
{
	g_free(d->name);
	g_free(d);
}

static const char *
active_name(Active a)
{
	static const char *const names[] = {"off", "notify", "idle", "poll"};

	return names[a];
}

/* Any thread, no lock held by the caller other than connection locks. @st NULL: resync
 * unconditionally. */
static void
mark_due(StoreWatch *w, const char *mailbox, const ImapStatus *st, gboolean strict)
{
	Due *d;

	g_mutex_lock(&w->lock);
	d = g_hash_table_lookup(w->due, mailbox);
	if (d == NULL) {
		d = g_new0(Due, 1);
		d->name = g_strdup(mailbox);
		d->check = st != NULL;
		if (st != NULL)
			d->st = *st;
		d->strict = strict;
		g_queue_push_tail(&w->queue, d);
		g_hash_table_insert(w->due, d->name, d);
		g_cond_broadcast(&w->cond);
	} else if (st == NULL) {
		d->check = FALSE;
	} else if (d->check) {
		d->st = *st; /* the latest word of the server */
		d->strict = d->strict && strict;
	}
	g_mutex_unlock(&w->lock);
}

static void
mark_flag(StoreWatch *w, gboolean *flag)
{
	g_mutex_lock(&w->lock);
	*flag = TRUE;
	g_cond_broadcast(&w->cond);
	g_mutex_unlock(&w->lock);
}

void
store_watch_heard(Store *store, const char *mailbox)
{
	/* under store->lock: store_watch_stop() clears store->watch under it before w goes */
	g_mutex_lock(&store->lock);
	if (store->watch != NULL)
		mark_due(store->watch, mailbox, NULL, FALSE);
	g_mutex_unlock(&store->lock);
}

/* ---- the worker -------------------------------------------------------------------- */

/* Under store->lock: the folder named @name (INBOX in any case), or NULL. */
static StoreFolder *
lookup_locked(Store *store, const char *name)
{
	StoreFolder *f = g_hash_table_lookup(store->folders, name);
	GHashTableIter it;
	gpointer v;

	if (f != NULL || g_ascii_strcasecmp(name, "INBOX") != 0)
		return f;
	g_hash_table_iter_init(&it, store->folders);
	while (g_hash_table_iter_next(&it, NULL, &v))
		if (g_ascii_strcasecmp(((StoreFolder *)v)->name, "INBOX") == 0)
			return v;
	return NULL;
}

/* Under store->lock: does @st tell something @f's listing does not know? */
static gboolean
differs_locked(StoreFolder *f, const ImapStatus *st, gboolean strict)
{
	guint cmp = IMAP_STATUS_UIDNEXT | IMAP_STATUS_MESSAGES | IMAP_STATUS_HIGHESTMODSEQ;

	if ((st->have & IMAP_STATUS_UIDVALIDITY) && st->uidvalidity != f->uidvalidity)
		return TRUE;
	if ((st->have & IMAP_STATUS_UIDNEXT) && st->uidnext != f->uidnext)
		return TRUE;
	if ((st->have & IMAP_STATUS_MESSAGES) && st->messages != f->exists)
		return TRUE;
	if ((st->have & IMAP_STATUS_HIGHESTMODSEQ) && f->highestmodseq != 0)
		return st->highestmodseq != f->highestmodseq;
	/* no modseq to compare: a notification may be about flags, a poll cannot tell */
	return strict ? (st->have & cmp) == 0 : TRUE;
}

static void
resync(StoreWatch *w, Due *d)
{
	Store *store = w->store;
	g_autoptr(GPtrArray) msgs = NULL;
	g_autoptr(GError) err = NULL;
	StoreFolder *f;
	gint64 t0;

	g_mutex_lock(&store->lock);
	f = lookup_locked(store, d->name);
	if (f == NULL || !f->loaded || !f->listed || !store_folder_is_selectable(f) ||
	    (d->check && !differs_locked(f, &d->st, d->strict))) {
		/* never listed (its first listing reads it whole), gone, or nothing new */
		g_mutex_unlock(&store->lock);
		return;
	}
	store_folder_ref(f);
	/* a listing in flight may have read the server before the change: wait it out */
	while (f->inflight != NULL && !g_cancellable_is_cancelled(w->cancel))
		g_cond_wait_until(&store->cond, &store->lock,
				  g_get_monotonic_time() + 50 * G_TIME_SPAN_MILLISECOND);
	g_mutex_unlock(&store->lock);
	t0 = g_get_monotonic_time();
	msgs = store_folder_list_messages_sync(store, f, 0, NULL, w->cancel, &err);
	if (msgs == NULL && !g_error_matches(err, IMAP_ERROR, IMAP_ERROR_CANCELLED) &&
	    !g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
	    !g_cancellable_is_cancelled(w->cancel))
		g_message("live: resync of %s failed: %s", f->name, err->message);
	else
		g_debug("live: %s resynced in %" G_GINT64_FORMAT " ms", f->name,
			(g_get_monotonic_time() - t0) / 1000);
	store_folder_unref(f);
}

static void
refresh_folders(StoreWatch *w)
{
	g_autoptr(GPtrArray) folders = NULL;
	g_autoptr(GError) err = NULL;

	/* folders that appeared or vanished become events (store.c) */
	folders = store_list_folders_sync(w->store, NULL, w->cancel, &err);
	if (folders == NULL && !g_cancellable_is_cancelled(w->cancel))
		g_message("live: folder list refresh failed: %s", err->message);
}

static void
queue_all_loaded(StoreWatch *w)
{
	Store *store = w->store;
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter it;
	gpointer v;

	g_mutex_lock(&store->lock);
	g_hash_table_iter_init(&it, store->folders);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		StoreFolder *f = v;

		if (f->loaded && f->listed)
			g_ptr_array_add(names, g_strdup(f->name));
	}
	g_mutex_unlock(&store->lock);
	for (guint i = 0; i < names->len; i++)
		mark_due(w, g_ptr_array_index(names, i), NULL, FALSE);
}

static gpointer
worker_thread(gpointer data)
{
	StoreWatch *w = data;

	g_mutex_lock(&w->lock);
	for (;;) {
		Due *d;

		while (!w->stop && !w->folders_due && !w->all_due && g_queue_is_empty(&w->queue))
			g_cond_wait(&w->cond, &w->lock);
		if (w->stop)
			break;
		w->busy = TRUE;
		if (w->folders_due) {
			w->folders_due = FALSE;
			g_mutex_unlock(&w->lock);
			refresh_folders(w);
		} else if (w->all_due) {
			w->all_due = FALSE;
			g_mutex_unlock(&w->lock);
			queue_all_loaded(w);
		} else {
			d = g_queue_pop_head(&w->queue);
			g_hash_table_steal(w->due, d->name);
			g_mutex_unlock(&w->lock);
			resync(w, d);
			due_free(d);
		}
		g_mutex_lock(&w->lock);
		w->busy = FALSE;
	}
	g_mutex_unlock(&w->lock);
	return NULL;
}

/* ---- NOTIFY ------------------------------------------------------------------------ */

static void
on_notify(const ImapNotifyEvent *ev, gpointer data)
{
	StoreWatch *w = data;

	switch (ev->kind) {
	case IMAP_NOTIFY_READY:
		/* first time: what changed since the tree was listed; after a reconnect: what
		 * changed while the connection was down */
		if (ev->resumed)
			g_message("live: NOTIFY is back: resyncing the loaded folders");
		mark_flag(w, &w->folders_due);
		mark_flag(w, &w->all_due);
		break;
	case IMAP_NOTIFY_STATUS:
		if (ev->mailbox != NULL)
			mark_due(w, ev->mailbox, ev->status, FALSE);
		break;
	case IMAP_NOTIFY_MAILBOXES:
		mark_flag(w, &w->folders_due);
		break;
	case IMAP_NOTIFY_SELECTED: /* nothing is selected there: nothing to follow */
	case IMAP_NOTIFY_LOST:	   /* READY (resumed) follows */
		break;
	case IMAP_NOTIFY_REFUSED:
		mark_flag(w, &w->notify_down);
		break;
	}
}

/* ---- IDLE -------------------------------------------------------------------------- */

static void
on_idle(const ImapChange *ch, gpointer data)
{
	StoreWatch *w = data;

	/* WATCHING (the first EXAMINE and each reconnect), EXISTS, EXPUNGE, VANISHED (a set,
	 * never walked), FETCH */
	if (ch->kind != IMAP_CHANGE_LOST)
		mark_due(w, ch->mailbox, NULL, FALSE);
}

typedef struct {
	char *name;
	gint open;
	gint64 used_at;
	gboolean inbox;
} Candidate;

static gint
cmp_candidate(gconstpointer a, gconstpointer b)
{
	const Candidate *x = a, *y = b;

	if (x->inbox != y->inbox)
		return x->inbox ? -1 : 1;
	if ((x->open > 0) != (y->open > 0))
		return x->open > 0 ? -1 : 1;
	return x->used_at > y->used_at ? -1 : x->used_at < y->used_at;
}

/* The folders IDLE should watch now (a set of names): INBOX, then those with open handles,
 * then the most recently used, at most idle_max. */
static GHashTable *
idle_wanted(StoreWatch *w)
{
	Store *store = w->store;
	g_autoptr(GArray) c = g_array_new(FALSE, TRUE, sizeof(Candidate));
	GHashTable *out = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	gint64 now = g_get_monotonic_time();
	GHashTableIter it;
	gpointer v;

	g_mutex_lock(&store->lock);
	g_hash_table_iter_init(&it, store->folders);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		StoreFolder *f = v;
		Candidate k = {0};

		if (!f->listed || !store_folder_is_selectable(f))
			continue;
		k.inbox = g_ascii_strcasecmp(f->name, "INBOX") == 0;
		k.open = g_atomic_int_get(&f->handles);
		k.used_at = f->used_at;
		if (!k.inbox && k.open <= 0 && (f->used_at == 0 || now - f->used_at > RECENT_US))
			continue;
		k.name = g_strdup(f->name);
		g_array_append_val(c, k);
	}
	g_mutex_unlock(&store->lock);
	g_array_sort(c, cmp_candidate);
	for (guint i = 0; i < c->len; i++) {
		Candidate *k = &g_array_index(c, Candidate, i);

		if (i < w->cfg.idle_max)
			g_hash_table_add(out, g_steal_pointer(&k->name));
		g_free(k->name);
	}
	return out;
}

/* Manager thread: starts and stops IDLE connections to match idle_wanted(). */
static void
idle_update(StoreWatch *w)
{
	g_autoptr(GHashTable) want = idle_wanted(w);
	g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter it;
	gpointer k;

	g_hash_table_iter_init(&it, w->idles);
	while (g_hash_table_iter_next(&it, &k, NULL))
		if (!g_hash_table_contains(want, k))
			g_ptr_array_add(gone, g_strdup(k));
	for (guint i = 0; i < gone->len; i++) {
		const char *name = g_ptr_array_index(gone, i);

		g_debug("live: IDLE on %s ends (not in use)", name);
		g_hash_table_remove(w->idles, name); /* imap_idle_stop: a LOGOUT at most */
	}
	g_hash_table_iter_init(&it, want);
	while (g_hash_table_iter_next(&it, &k, NULL)) {
		g_autoptr(GError) err = NULL;
		ImapIdle *idle;

		if (g_hash_table_contains(w->idles, k))
			continue;
		idle = imap_idle_start(w->store->pool, k, on_idle, w, &err);
		if (idle == NULL) {
			g_message("live: IDLE on %s: %s", (char *)k, err->message);
			continue;
		}
		g_debug("live: IDLE on %s", (char *)k);
		/* (once it watches, IDLE says WATCHING: what changed before is resynced then) */
		g_hash_table_insert(w->idles, g_strdup(k), idle);
	}
}

/* ---- polling ----------------------------------------------------------------------- */

static void poll_selected(StoreWatch *w, char **selected);

/* One round: LIST-STATUS when offered (the folder list and every status in one command),
 * else one LIST and a STATUS per loaded folder; folders IDLE covers are left out. */
static void
poll_round(StoreWatch *w)
{
	Store *store = w->store;
	g_autoptr(GError) err = NULL;
	g_auto(GStrv) selected = NULL;

	if (store_is_offline(store))
		return;
	selected = imap_pool_dup_selected(store->pool);
	if (imap_pool_has_capability(store->pool, "LIST-STATUS")) {
		g_autoptr(GPtrArray) infos = imap_list_all_sync(store->pool, TRUE, w->cancel, &err);
		g_autoptr(GHashTable) names = g_hash_table_new(g_str_hash, g_str_equal);
		gboolean folders_changed = FALSE;
		GHashTableIter it;
		gpointer v;

		if (infos == NULL) {
			if (!g_cancellable_is_cancelled(w->cancel))
				g_message("live: polling failed: %s", err->message);
			return;
		}
		for (guint i = 0; i < infos->len; i++) {
			ImapMailboxInfo *info = g_ptr_array_index(infos, i);

			g_hash_table_add(names, info->name);
			if (info->status.have != 0 && !g_hash_table_contains(w->idles, info->name) &&
			    !g_strv_contains((const char *const *)selected, info->name))
				mark_due(w, info->name, &info->status, TRUE);
		}
		g_mutex_lock(&store->lock);
		g_hash_table_iter_init(&it, store->folders);
		while (g_hash_table_iter_next(&it, NULL, &v)) {
			StoreFolder *f = v;

			if (f->listed != g_hash_table_contains(names, f->name))
				folders_changed = TRUE;
		}
		for (guint i = 0; i < infos->len; i++) {
			ImapMailboxInfo *info = g_ptr_array_index(infos, i);

			if (lookup_locked(store, info->name) == NULL)
				folders_changed = TRUE;
		}
		g_mutex_unlock(&store->lock);
		if (folders_changed)
			mark_flag(w, &w->folders_due);
	} else {
		g_autoptr(GPtrArray) folders = store_list_folders_sync(store, NULL, w->cancel, &err);

		if (folders == NULL) {
			if (!g_cancellable_is_cancelled(w->cancel))
				g_message("live: polling failed: %s", err->message);
			return;
		}
		for (guint i = 0; i < folders->len && !g_cancellable_is_cancelled(w->cancel);
		     i++) {
			StoreFolder *f = g_ptr_array_index(folders, i);
			g_autoptr(GError) e2 = NULL;
			ImapStatus st;

			if (!store_folder_is_loaded(store, f) ||
			    g_hash_table_contains(w->idles, f->name) ||
			    g_strv_contains((const char *const *)selected, f->name))
				continue;
			if (store_folder_status_sync(store, f, &st, w->cancel, &e2))
				mark_due(w, f->name, &st, TRUE);
			else if (!g_cancellable_is_cancelled(w->cancel))
				g_debug("live: STATUS %s: %s", f->name, e2->message);
		}
	}
	poll_selected(w, selected);
}

/* The loaded folders selected on pool connections: their STATUS may come from the
 * session's own view (Dovecot), a NOOP there makes the server tell what changed (the
 * changed handler then marks them due, store_watch_heard). */
static void
poll_selected(StoreWatch *w, char **selected)
{
	Store *store = w->store;

	for (guint i = 0; selected[i] != NULL && !g_cancellable_is_cancelled(w->cancel); i++) {
		g_autoptr(GError) err = NULL;
		gboolean loaded;
		StoreFolder *f;

		if (g_hash_table_contains(w->idles, selected[i]) ||
		    g_strv_contains((const char *const *)selected + i + 1, selected[i]))
			continue;
		g_mutex_lock(&store->lock);
		f = lookup_locked(store, selected[i]);
		loaded = f != NULL && f->loaded && f->listed;
		g_mutex_unlock(&store->lock);
		if (loaded && !imap_noop_sync(store->pool, selected[i], w->cancel, &err) &&
		    !g_cancellable_is_cancelled(w->cancel))
			g_debug("live: NOOP in %s: %s", selected[i], err->message);
	}
}

/* ---- the manager ------------------------------------------------------------------- */

static Active
fallback(StoreWatch *w)
{
	if (w->cfg.idle_max > 0 && imap_pool_has_capability(w->store->pool, "IDLE"))
		return ACTIVE_IDLE;
	return w->cfg.poll_s > 0 ? ACTIVE_POLL : ACTIVE_OFF;
}

static void
announce(StoreWatch *w, Active a)
{
	switch (a) {
	case ACTIVE_NOTIFY:
		g_message("live: NOTIFY for every folder");
		break;
	case ACTIVE_IDLE:
		g_message("live: IDLE on up to %u folders in use%s", w->cfg.idle_max,
			  w->cfg.poll_s ? ", polling the others" : "");
		break;
	case ACTIVE_POLL:
		g_message("live: polling every %u s", w->cfg.poll_s);
		break;
	case ACTIVE_OFF:
		g_message("live: off (listings follow their max-age timers)");
		break;
	}
}

static gpointer
manager_thread(gpointer data)
{
	StoreWatch *w = data;
	gint64 next_poll = g_get_monotonic_time() + (gint64)w->cfg.poll_s * G_USEC_PER_SEC;
	Active active;

	g_mutex_lock(&w->lock);
	active = w->active;
	g_mutex_unlock(&w->lock);
	announce(w, active);
	if (active == ACTIVE_NOTIFY)
		w->notify = imap_notify_start(w->store->pool,
					      (const char *const *)w->cfg.subtrees, on_notify, w);
	g_mutex_lock(&w->lock);
	while (!w->stop) {
		gint64 now = g_get_monotonic_time();

		if (w->notify_down && w->active == ACTIVE_NOTIFY) {
			w->active = fallback(w);
			active = w->active;
			g_mutex_unlock(&w->lock);
			imap_notify_stop(g_steal_pointer(&w->notify));
			announce(w, active);
			g_mutex_lock(&w->lock);
			continue;
		}
		active = w->active;
		g_mutex_unlock(&w->lock);
		if (active == ACTIVE_IDLE)
			idle_update(w);
		if ((active == ACTIVE_IDLE || active == ACTIVE_POLL) && w->cfg.poll_s > 0 &&
		    now >= next_poll) {
			poll_round(w);
			next_poll = g_get_monotonic_time() + (gint64)w->cfg.poll_s * G_USEC_PER_SEC;
		}
		g_mutex_lock(&w->lock);
		if (!w->stop && !(w->notify_down && w->active == ACTIVE_NOTIFY))
			g_cond_wait_until(&w->cond, &w->lock, g_get_monotonic_time() + TICK_US);
	}
	g_mutex_unlock(&w->lock);
	return NULL;
}

/* ---- lifecycle --------------------------------------------------------------------- */

void
store_watch_start(Store *store, const StoreWatchConfig *cfg)
{
	StoreWatch *w;
	Active active;

	if (store->watch != NULL)
		return;
	if (cfg->mode == STORE_LIVE_OFF || store->offline_forced) {
		g_message("live: off (listings follow their max-age timers)");
		return;
	}
	if (cfg->mode == STORE_LIVE_AUTO && imap_pool_has_capability(store->pool, "NOTIFY"))
		active = ACTIVE_NOTIFY;
	else if (cfg->mode != STORE_LIVE_POLL && cfg->idle_max > 0 &&
		 imap_pool_has_capability(store->pool, "IDLE"))
		active = ACTIVE_IDLE;
	else
		active = cfg->poll_s > 0 ? ACTIVE_POLL : ACTIVE_OFF;
	w = g_new0(StoreWatch, 1);
	w->store = store;
	w->cfg = *cfg;
	w->cfg.subtrees = g_strdupv(cfg->subtrees);
	w->cancel = g_cancellable_new();
	w->idles = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					 (GDestroyNotify)imap_idle_stop);
	g_mutex_init(&w->lock);
	g_cond_init(&w->cond);
	g_queue_init(&w->queue);
	w->due = g_hash_table_new(g_str_hash, g_str_equal);
	w->active = active;
	g_mutex_lock(&store->lock);
	store->watch = w;
	g_mutex_unlock(&store->lock);
	w->worker = g_thread_new("store-watch", worker_thread, w);
	w->manager = g_thread_new("store-watch-mgr", manager_thread, w);
}

void
store_watch_stop(Store *store)
{
	StoreWatch *w = store->watch;

	if (w == NULL)
		return;
	g_mutex_lock(&store->lock);
	store->watch = NULL; /* store_watch_heard() no longer reaches w */
	g_mutex_unlock(&store->lock);
	g_mutex_lock(&w->lock);
	w->stop = TRUE;
	g_cond_broadcast(&w->cond);
	g_mutex_unlock(&w->lock);
	g_cancellable_cancel(w->cancel);
	g_thread_join(w->manager);
	/* the push threads call back into w: end them before the worker and w */
	imap_notify_stop(g_steal_pointer(&w->notify));
	g_hash_table_remove_all(w->idles);
	g_thread_join(w->worker);
	g_queue_clear_full(&w->queue, (GDestroyNotify)due_free);
	g_hash_table_unref(w->due);
	g_hash_table_unref(w->idles);
	g_object_unref(w->cancel);
	g_mutex_clear(&w->lock);
	g_cond_clear(&w->cond);
	g_strfreev(w->cfg.subtrees);
	g_free(w);
}

const char *
store_watch_mode(Store *store)
{
	Active a = ACTIVE_OFF;

	g_mutex_lock(&store->lock);
	if (store->watch != NULL) {
		g_mutex_lock(&store->watch->lock);
		a = store->watch->active;
		g_mutex_unlock(&store->watch->lock);
	}
	g_mutex_unlock(&store->lock);
	return active_name(a);
}
