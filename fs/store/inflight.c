/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * inflight.c: shared network operations of the store (see inflight.h). Owns the worker
 * threads that run them and the bookkeeping of their waiters; knows nothing of folders
 * or bodies.
 *
 * Invariants: op->done goes from FALSE to TRUE once, with op->error set before and never
 * changed after; op->waiters counts the threads inside (or about to enter)
 * store_inflight_wait(); an operation is in group->ops from its start until its worker
 * ends it. Waiters sleep on op->cond in short steps, so a cancelled GCancellable (a FUSE
 * interrupt) is seen within WAIT_STEP without any callback into our locks.
 *
 * Lock order: group->lock before op->lock; neither is held across a call of @fn, of
 * g_cancellable_cancel() or of a waiter's sleep on another lock.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include "inflight.h"
#include "store.h"

#define WAIT_STEP (50 * G_TIME_SPAN_MILLISECOND)

struct _StoreInflightGroup {
	GMutex lock;
	GThreadPool *workers; /* created on the first start; protected by lock */
	GHashTable *ops;      /* StoreInflight* running (a reference each); protected by lock */
	GHashTable *calls;    /* GCancellable* of open calls (a reference each); same */
	gboolean closed;      /* protected by lock */
};

struct _StoreInflight {
	gint ref; /* atomic */
	StoreInflightGroup *group;
	StoreInflightFn fn;
	gpointer data;
	GDestroyNotify destroy;
	GCancellable *cancel; /* the operation's own */
	GMutex lock;
	GCond cond; /* signalled when done or on progress */
	/* protected by lock: */
	guint waiters;
	gboolean abandoned; /* the last waiter left before the end: cancelled */
	gboolean done;
	GError *error;		  /* the outcome when done (NULL: success) */
	gint64 progress_at;	  /* monotonic us of the last progress */
	StoreInflightProbe probe; /* optional; called by waiters under lock */
	gpointer probe_data;
	guint64 probe_last;
};

static GError *
closed_error(void)
{
	return g_error_new(STORE_ERROR, STORE_ERROR_IO, "imapfs is shutting down");
}

StoreInflightGroup *
store_inflight_group_new(void)
{
	StoreInflightGroup *g = g_new0(StoreInflightGroup, 1);

	g_mutex_init(&g->lock);
	g->ops = g_hash_table_new_full(NULL, NULL, NULL, NULL);
	g->calls = g_hash_table_new_full(NULL, NULL, g_object_unref, NULL);
	return g;
}

/* Snapshot of what close must cancel: references to the operations' and calls'
 * cancellables, taken under the lock, cancelled outside it. */
static GPtrArray *
cancellables_locked(StoreInflightGroup *g)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_object_unref);
	GHashTableIter it;
	gpointer k;

	g_hash_table_iter_init(&it, g->ops);
	while (g_hash_table_iter_next(&it, &k, NULL))
		g_ptr_array_add(out, g_object_ref(((StoreInflight *)k)->cancel));
	g_hash_table_iter_init(&it, g->calls);
	while (g_hash_table_iter_next(&it, &k, NULL))
		g_ptr_array_add(out, g_object_ref(k));
	return out;
}

static void
cancel_running(StoreInflightGroup *group, gboolean close)
{
	g_autoptr(GPtrArray) cancels = NULL;

	g_mutex_lock(&group->lock);
	if (close)
		group->closed = TRUE;
	cancels = cancellables_locked(group);
	g_mutex_unlock(&group->lock);
	for (guint i = 0; i < cancels->len; i++)
		g_cancellable_cancel(g_ptr_array_index(cancels, i));
}

void
store_inflight_group_close(StoreInflightGroup *group)
{
	cancel_running(group, TRUE);
}

void
store_inflight_group_cancel_running(StoreInflightGroup *group)
{
	cancel_running(group, FALSE);
}

gboolean
store_inflight_group_is_closed(StoreInflightGroup *group)
{
	gboolean closed;

	g_mutex_lock(&group->lock);
	closed = group->closed;
	g_mutex_unlock(&group->lock);
	return closed;
}

void
store_inflight_group_join(StoreInflightGroup *group)
{
	GThreadPool *workers;

	store_inflight_group_close(group);
	g_mutex_lock(&group->lock);
	workers = g_steal_pointer(&group->workers);
	g_mutex_unlock(&group->lock);
	if (workers != NULL)
		g_thread_pool_free(workers, FALSE, TRUE);
}

void
store_inflight_group_free(StoreInflightGroup *group)
{
	if (group == NULL)
		return;
	store_inflight_group_join(group);
	g_assert(g_hash_table_size(group->ops) == 0);
	g_assert(g_hash_table_size(group->calls) == 0);
	g_hash_table_unref(group->ops);
	g_hash_table_unref(group->calls);
	g_mutex_clear(&group->lock);
	g_free(group);
}

/* ---- calls on the caller's thread ------------------------------------------------- */

static void
forward_cancel(GCancellable *from, gpointer to)
{
	g_cancellable_cancel(to);
}

GCancellable *
store_inflight_group_call_begin(StoreInflightGroup *group, GCancellable *cancel, GError **error)
{
	GCancellable *call = g_cancellable_new();
	gulong id = 0;

	if (cancel != NULL)
		id = g_cancellable_connect(cancel, G_CALLBACK(forward_cancel), g_object_ref(call),
					   g_object_unref);
	g_object_set_data(G_OBJECT(call), "imapfs-parent", cancel ? g_object_ref(cancel) : NULL);
	g_object_set_data(G_OBJECT(call), "imapfs-handler", GSIZE_TO_POINTER(id));
	g_mutex_lock(&group->lock);
	if (group->closed) {
		g_mutex_unlock(&group->lock);
		g_propagate_error(error, closed_error());
		store_inflight_group_call_end(NULL, call);
		return NULL;
	}
	g_hash_table_add(group->calls, g_object_ref(call));
	g_mutex_unlock(&group->lock);
	return call;
}

void
store_inflight_group_call_end(StoreInflightGroup *group, GCancellable *call)
{
	GCancellable *parent;
	gulong id;

	if (call == NULL)
		return;
	if (group != NULL) {
		g_mutex_lock(&group->lock);
		g_hash_table_remove(group->calls, call);
		g_mutex_unlock(&group->lock);
	}
	parent = g_object_steal_data(G_OBJECT(call), "imapfs-parent");
	id = GPOINTER_TO_SIZE(g_object_steal_data(G_OBJECT(call), "imapfs-handler"));
	if (parent != NULL) {
		/* waits for a forward_cancel running in another thread */
		g_cancellable_disconnect(parent, id);
		g_object_unref(parent);
	}
	g_object_unref(call);
}

/* ---- shared operations ------------------------------------------------------------ */

static void
op_free(StoreInflight *op)
{
	if (op->destroy != NULL)
		op->destroy(op->data);
	g_clear_error(&op->error);
	g_object_unref(op->cancel);
	g_mutex_clear(&op->lock);
	g_cond_clear(&op->cond);
	g_free(op);
}

static StoreInflight *
op_ref(StoreInflight *op)
{
	g_atomic_int_inc(&op->ref);
	return op;
}

static void
op_unref(StoreInflight *op)
{
	if (op != NULL && g_atomic_int_dec_and_test(&op->ref))
		op_free(op);
}

/* Ends @op with @error (stolen; NULL: success) and wakes every waiter. */
static void
op_finish(StoreInflight *op, GError *error)
{
	g_mutex_lock(&op->lock);
	op->error = error;
	op->done = TRUE;
	g_cond_broadcast(&op->cond);
	g_mutex_unlock(&op->lock);
}

static void
worker_run(gpointer data, gpointer user_data)
{
	StoreInflight *op = data;
	StoreInflightGroup *group = op->group;
	GError *error = NULL;
	gboolean ok;

	ok = op->fn(op, op->data, op->cancel, &error);
	if (ok)
		g_clear_error(&error);
	else if (error == NULL)
		error = g_error_new(STORE_ERROR, STORE_ERROR_IO, "operation failed");
	if (!ok && store_inflight_group_is_closed(group) &&
	    g_cancellable_is_cancelled(op->cancel)) {
		g_clear_error(&error);
		error = closed_error();
	}
	g_mutex_lock(&group->lock);
	g_hash_table_remove(group->ops, op);
	g_mutex_unlock(&group->lock);
	op_finish(op, error);
	op_unref(op); /* the worker's */
}

StoreInflight *
store_inflight_start(StoreInflightGroup *group, StoreInflightFn fn, gpointer data,
		     GDestroyNotify destroy, GError **error)
{
	StoreInflight *op = g_new0(StoreInflight, 1);
	GError *local = NULL;

	op->ref = 1;
	op->group = group;
	op->fn = fn;
	op->data = data;
	op->destroy = destroy;
	op->cancel = g_cancellable_new();
	g_mutex_init(&op->lock);
	g_cond_init(&op->cond);
	op->waiters = 1;
	op->progress_at = g_get_monotonic_time();

	g_mutex_lock(&group->lock);
	if (group->closed) {
		local = closed_error();
	} else {
		if (group->workers == NULL)
			group->workers = g_thread_pool_new(worker_run, NULL, -1, FALSE, &local);
		if (group->workers != NULL) {
			g_hash_table_add(group->ops, op);
			op_ref(op); /* the worker's */
			if (!g_thread_pool_push(group->workers, op, &local)) {
				g_hash_table_remove(group->ops, op);
				g_atomic_int_add(&op->ref, -1);
			}
		}
	}
	g_mutex_unlock(&group->lock);
	if (local != NULL) {
		g_propagate_error(error, local);
		op->destroy = NULL; /* @data stays the caller's */
		op_free(op);
		return NULL;
	}
	return op;
}

void
store_inflight_set_probe(StoreInflight *op, StoreInflightProbe probe, gpointer data)
{
	g_mutex_lock(&op->lock);
	op->probe = probe;
	op->probe_data = data;
	op->probe_last = probe(data);
	g_mutex_unlock(&op->lock);
}

StoreInflight *
store_inflight_ref(StoreInflight *op)
{
	return op_ref(op);
}

void
store_inflight_unref(StoreInflight *op)
{
	op_unref(op);
}

StoreInflight *
store_inflight_join(StoreInflight *op)
{
	gboolean abandoned;

	g_mutex_lock(&op->lock);
	abandoned = op->abandoned;
	if (!abandoned)
		op->waiters++;
	g_mutex_unlock(&op->lock);
	return abandoned ? NULL : op_ref(op);
}

gboolean
store_inflight_wait(StoreInflight *op, gint64 idle_us, GCancellable *cancel, GError **error)
{
	gint64 since = g_get_monotonic_time();
	gboolean ok = FALSE, abandon = FALSE;

	g_mutex_lock(&op->lock);
	for (;;) {
		gint64 now = g_get_monotonic_time(), until = now + WAIT_STEP;

		if (op->done) {
			ok = op->error == NULL;
			if (!ok)
				g_propagate_error(error, g_error_copy(op->error));
			break;
		}
		if (g_cancellable_is_cancelled(cancel)) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_CANCELLED, "cancelled");
			break;
		}
		if (op->probe != NULL) {
			guint64 v = op->probe(op->probe_data);

			if (v != op->probe_last) {
				op->probe_last = v;
				op->progress_at = now;
			}
		}
		if (idle_us > 0) {
			gint64 idle_end = MAX(since, op->progress_at) + idle_us;

			if (now >= idle_end) {
				g_set_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT,
					    "no answer from the server in time");
				break;
			}
			until = MIN(until, idle_end);
		}
		g_cond_wait_until(&op->cond, &op->lock, until);
	}
	abandon = --op->waiters == 0 && !op->done;
	if (abandon)
		op->abandoned = TRUE;
	g_mutex_unlock(&op->lock);
	if (abandon) {
		/* nobody wants the result any more: stop the network work */
		g_debug("last waiter left an unfinished operation: cancelling it");
		g_cancellable_cancel(op->cancel);
	}
	op_unref(op);
	return ok;
}

void
store_inflight_progress(StoreInflight *op)
{
	g_mutex_lock(&op->lock);
	op->progress_at = g_get_monotonic_time();
	g_mutex_unlock(&op->lock);
}

gpointer
store_inflight_get_data(StoreInflight *op)
{
	return op->data;
}

guint
store_inflight_get_waiters(StoreInflight *op)
{
	guint n;

	g_mutex_lock(&op->lock);
	n = op->waiters;
	g_mutex_unlock(&op->lock);
	return n;
}

GCancellable *
store_inflight_get_cancellable(StoreInflight *op)
{
	return op->cancel;
}
