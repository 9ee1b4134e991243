/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * downloader.c: the background body downloader of -o sync=new|all. One thread takes jobs
 * (a folder from a UID on, or every folder) off a queue and downloads the whole bodies the
 * body cache lacks, one message at a time; a transient failure (server unreachable or busy,
 * offline) puts the job back at the end of the queue after a backoff, never drops a body.
 * It reads folders through the listing functions of resync.c and fetches each body straight
 * into a body-cache writer's file, committed by body.c's commit (store_body_commit_writer);
 * resync.c feeds its queue (store_sync_queue_folder), store.c stops it (store_sync_stop).
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <poll.h>

#include "store-private.h"

/* A job of the downloader: one folder from a UID on, every folder, or the stop mark. */
typedef struct {
	StoreFolder *folder; /* a reference, NULL for every folder (or stop) */
	guint32 from_uid;
	gboolean all;
	gboolean stop;
} StoreSyncJob;

static void
sync_job_free(StoreSyncJob *job)
{
	if (job->folder != NULL)
		store_folder_unref(job->folder);
	g_free(job);
}

/* How a step of the downloader ended: go on, stop the job for good (cancelled, no temp
 * file), or stop it and run it again later (a transient failure: server unreachable or
 * busy, offline). A transient failure never drops a body from the walk. */
typedef enum { SYNC_NEXT, SYNC_STOP, SYNC_RETRY } SyncStep;

#define SYNC_RETRY_MIN_MS 1000
#define SYNC_RETRY_MAX_MS 60000

static gboolean
sync_transient(const GError *error)
{
	return store_error_is_unreachable(error) ||
	       g_error_matches(error, IMAP_ERROR, IMAP_ERROR_BUSY) ||
	       g_error_matches(error, IMAP_ERROR, IMAP_ERROR_UNAVAILABLE) ||
	       g_error_matches(error, STORE_ERROR, STORE_ERROR_OFFLINE);
}

/* Downloads one whole body into the body cache unless it is there. */
static SyncStep
sync_one(Store *store, StoreMessage *msg, GCancellable *cancel)
{
	const StoreMessageInfo *info = &msg->info;
	g_autoptr(GError) error = NULL;
	Bodycache *bc = store_bc(store);
	BodycacheWriter *w;
	gint64 got;

	if (bc == NULL)
		return SYNC_STOP;
	if (msg->hc_id == 0 || bodycache_contains(bc, msg->hc_id, info->uidvalidity, info->uid))
		return SYNC_NEXT;
	/* straight into a body-cache file, committed (fsync + rename) once whole, removed if
	 * not; a full disk shows in the reservation, before anything is fetched */
	w = bodycache_writer_new(bc, msg->hc_id, info->uidvalidity, info->uid, &error);
	if (w == NULL ||
	    !bodycache_writer_reserve(w, 0, store_message_get_size(store, msg), &error)) {
		bodycache_log_failure(bc, error);
		bodycache_writer_abort(w);
		return SYNC_NEXT;
	}
	got = imap_fetch_body_sync(store->pool, info->mailbox, info->uidvalidity, info->uid, 0, 0,
				   bodycache_writer_get_fd(w), NULL, cancel, &error);
	if (got >= 0) {
		/* the same commit as the bodies readers completed */
		store_body_commit_writer(store, msg, w, got);
		return SYNC_NEXT;
	}
	bodycache_writer_abort(w);
	if (g_cancellable_is_cancelled(cancel))
		return SYNC_STOP;
	if (g_error_matches(error, IMAP_ERROR, IMAP_ERROR_EXPUNGEISSUED)) {
		g_debug("background sync: message %u of %s is gone", info->uid, info->mailbox);
		return SYNC_NEXT;
	}
	if (g_error_matches(error, IMAP_ERROR, IMAP_ERROR_UIDVALIDITY)) {
		/* reset: run the job again, it relists the folder first */
		store_check_uidvalidity_error(store, info, error);
		return SYNC_RETRY;
	}
	if (sync_transient(error)) {
		g_message("background sync of %s paused (retried later): %s", info->mailbox,
			  error->message);
		return SYNC_RETRY;
	}
	g_message("background sync: message %u of %s skipped: %s", info->uid, info->mailbox,
		  error->message);
	return SYNC_NEXT;
}

/* The messages of @msgs with a UID >= @from_uid, one at a time. */
static SyncStep
sync_messages(Store *store, GPtrArray *msgs, guint32 from_uid, GCancellable *cancel)
{
	for (guint i = 0; i < msgs->len; i++) {
		StoreMessage *msg = g_ptr_array_index(msgs, i);
		SyncStep step;

		if (g_cancellable_is_cancelled(cancel))
			return SYNC_STOP;
		if (store_is_offline(store))
			return SYNC_RETRY;
		if (msg->info.uid < from_uid)
			continue;
		step = sync_one(store, msg, cancel);
		if (step != SYNC_NEXT)
			return step;
	}
	return SYNC_NEXT;
}

/* The current listing of @folder (no I/O), or NULL if it has none. */
static GPtrArray *
folder_snapshot(Store *store, StoreFolder *folder)
{
	GPtrArray *out = NULL;

	g_mutex_lock(&store->lock);
	out = store_folder_msg_snapshot_locked(folder);
	g_mutex_unlock(&store->lock);
	return out;
}

/* sync=all: every selectable folder, loading the listings nobody asked for yet (from
 * the header cache when it has them, then resynced like any listing). */
static SyncStep
sync_all(Store *store, GCancellable *cancel)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) folders = store_list_folders_sync(store, NULL, cancel, &error);

	if (folders == NULL) {
		if (g_cancellable_is_cancelled(cancel))
			return SYNC_STOP;
		g_message("background sync: listing the folders failed (retried later): %s",
			  error->message);
		return SYNC_RETRY;
	}
	for (guint i = 0; i < folders->len; i++) {
		StoreFolder *f = g_ptr_array_index(folders, i);
		g_autoptr(GPtrArray) msgs = NULL;
		SyncStep step;

		if (g_cancellable_is_cancelled(cancel))
			return SYNC_STOP;
		if (store_is_offline(store))
			return SYNC_RETRY;
		if (!store_folder_is_selectable(f))
			continue;
		msgs = store_folder_list_messages_sync(store, f, G_MAXINT64, NULL, cancel, &error);
		if (msgs == NULL) {
			if (g_cancellable_is_cancelled(cancel))
				return SYNC_STOP;
			if (sync_transient(error)) {
				g_message("background sync of %s paused (retried later): %s",
					  f->name, error->message);
				return SYNC_RETRY;
			}
			g_message("background sync: %s skipped: %s", f->name, error->message);
			g_clear_error(&error);
			continue;
		}
		step = sync_messages(store, msgs, 0, cancel);
		if (step != SYNC_NEXT)
			return step;
	}
	g_debug("background sync: every folder done");
	return SYNC_NEXT;
}

/* Sleeps @ms unless @cancel fires first. FALSE when cancelled. */
static gboolean
sync_sleep(GCancellable *cancel, guint ms)
{
	struct pollfd pfd = {g_cancellable_get_fd(cancel), POLLIN, 0};
	gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;

	while (!g_cancellable_is_cancelled(cancel)) {
		gint64 left = end - g_get_monotonic_time();

		if (left <= 0)
			break;
		if (pfd.fd >= 0)
			poll(&pfd, 1, (int)MIN((left + 999) / 1000, 1000));
		else
			g_usleep(MIN(left, 100000));
	}
	g_cancellable_release_fd(cancel);
	return !g_cancellable_is_cancelled(cancel);
}

static gpointer
sync_thread(gpointer data)
{
	Store *store = data;
	guint backoff = 0;

	for (;;) {
		StoreSyncJob *job = g_async_queue_pop(store->sync_queue);
		gboolean stop = job->stop;
		SyncStep step = SYNC_NEXT;

		if (!stop && !g_cancellable_is_cancelled(store->sync_cancel)) {
			if (store_offline_check(store)) {
				step = SYNC_RETRY;
			} else if (job->all) {
				step = sync_all(store, store->sync_cancel);
			} else {
				g_autoptr(GPtrArray) msgs = NULL;

				/* (a folder reset since is relisted, and queued again, by its
				 * next listing) */
				if (store_folder_is_loaded(store, job->folder))
					msgs = folder_snapshot(store, job->folder);
				if (msgs != NULL)
					step = sync_messages(store, msgs, job->from_uid,
							     store->sync_cancel);
			}
		}
		if (step == SYNC_RETRY && !stop) {
			/* back to the end of the queue after a pause: what is cached already
			 * is skipped quickly when it runs again */
			backoff = backoff ? MIN(backoff * 2, SYNC_RETRY_MAX_MS) : SYNC_RETRY_MIN_MS;
			if (sync_sleep(store->sync_cancel, backoff)) {
				g_async_queue_push(store->sync_queue, job);
				continue;
			}
		} else if (step == SYNC_NEXT) {
			backoff = 0;
		}
		sync_job_free(job);
		if (stop)
			break;
	}
	return NULL;
}

void
store_set_sync(Store *store, StoreSync policy)
{
	store->sync = policy;
}

void
store_sync_start(Store *store)
{
	g_autoptr(GError) error = NULL;

	if ((store->sync != STORE_SYNC_NEW && store->sync != STORE_SYNC_ALL) ||
	    store->syncer != NULL || store_bc(store) == NULL || store->offline_forced)
		return;
	store->sync_queue = g_async_queue_new();
	g_mutex_lock(&store->lock); /* store_cancel_all() reads it from any thread */
	store->sync_cancel = g_cancellable_new();
	g_mutex_unlock(&store->lock);
	store->syncer = g_thread_try_new("imapfs-sync", sync_thread, store, &error);
	if (store->syncer == NULL) {
		g_message("no background sync thread: %s", error->message);
		g_clear_pointer(&store->sync_queue, g_async_queue_unref);
		g_mutex_lock(&store->lock);
		g_clear_object(&store->sync_cancel);
		g_mutex_unlock(&store->lock);
		return;
	}
	if (store->sync == STORE_SYNC_ALL) {
		StoreSyncJob *job = g_new0(StoreSyncJob, 1);

		job->all = TRUE;
		g_async_queue_push(store->sync_queue, job);
	}
}

void
store_sync_queue_folder(Store *store, StoreFolder *folder, guint32 from_uid)
{
	StoreSyncJob *job;

	if (store->sync_queue == NULL)
		return;
	job = g_new0(StoreSyncJob, 1);
	job->folder = store_folder_ref(folder);
	job->from_uid = from_uid;
	g_async_queue_push(store->sync_queue, job);
}

void
store_sync_stop(Store *store)
{
	StoreSyncJob *job;

	if (store->syncer == NULL)
		return;
	g_cancellable_cancel(store->sync_cancel);
	job = g_new0(StoreSyncJob, 1);
	job->stop = TRUE;
	g_async_queue_push_front(store->sync_queue, job);
	g_thread_join(g_steal_pointer(&store->syncer));
	while ((job = g_async_queue_try_pop(store->sync_queue)) != NULL)
		sync_job_free(job);
	g_clear_pointer(&store->sync_queue, g_async_queue_unref);
	g_mutex_lock(&store->lock);
	g_clear_object(&store->sync_cancel);
	g_mutex_unlock(&store->lock);
}
