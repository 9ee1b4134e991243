/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-inflight: the shared operations of the store (fs/store/inflight.c) with real
 * threads: waiters share one outcome, leave on their own cancellation or idle deadline,
 * the last one leaving cancels the work, and closing the group stops everything.
 */
#include "config.h"

#include <string.h>

#include "inflight.h"
#include "store.h"

/* The work of the tests: blocks until released or cancelled, then ends as told. */
typedef struct {
	GMutex lock;
	GCond cond;
	gboolean release;  /* protected by lock */
	gboolean fail;	   /* end with IMAP_ERROR_TIMEOUT */
	gboolean progress; /* report progress every 10 ms while blocked */
	gint runs;	   /* atomic */
	gint saw_cancel;   /* atomic: the work saw its cancellable fire */
} Work;

static void
work_init(Work *w)
{
	memset(w, 0, sizeof(*w));
	g_mutex_init(&w->lock);
	g_cond_init(&w->cond);
}

static void
work_clear(Work *w)
{
	g_mutex_clear(&w->lock);
	g_cond_clear(&w->cond);
}

static void
work_release(Work *w)
{
	g_mutex_lock(&w->lock);
	w->release = TRUE;
	g_cond_broadcast(&w->cond);
	g_mutex_unlock(&w->lock);
}

static gboolean
work_fn(StoreInflight *op, gpointer data, GCancellable *cancel, GError **error)
{
	Work *w = data;

	g_atomic_int_inc(&w->runs);
	g_mutex_lock(&w->lock);
	while (!w->release && !g_cancellable_is_cancelled(cancel)) {
		g_cond_wait_until(&w->cond, &w->lock,
				  g_get_monotonic_time() + 10 * G_TIME_SPAN_MILLISECOND);
		if (w->progress)
			store_inflight_progress(op);
	}
	g_mutex_unlock(&w->lock);
	if (g_cancellable_is_cancelled(cancel)) {
		g_atomic_int_set(&w->saw_cancel, 1);
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_CANCELLED, "cancelled");
		return FALSE;
	}
	if (w->fail) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT, "the server stalled");
		return FALSE;
	}
	return TRUE;
}

/* A waiter thread: waits on its reference, records its outcome. */
typedef struct {
	StoreInflight *op; /* the waiter's reference */
	GCancellable *cancel;
	gint64 idle_us;
	gboolean ok;
	GError *error;
	GThread *thread;
} Waiter;

static gpointer
waiter_run(gpointer data)
{
	Waiter *wt = data;

	wt->ok = store_inflight_wait(wt->op, wt->idle_us, wt->cancel, &wt->error);
	return NULL;
}

static void
waiter_start(Waiter *wt, StoreInflight *op_ref, gint64 idle_us)
{
	wt->op = op_ref;
	wt->cancel = g_cancellable_new();
	wt->idle_us = idle_us;
	wt->thread = g_thread_new("waiter", waiter_run, wt);
}

static void
waiter_join(Waiter *wt)
{
	g_thread_join(wt->thread);
	g_clear_object(&wt->cancel);
}

static void
wait_for_waiters(StoreInflight *op, guint n)
{
	while (store_inflight_get_waiters(op) != n)
		g_usleep(1000);
}

#define N 5

/* One failure fails every waiter, with the same error, and the work ran once. */
static void
test_failure_is_shared(void)
{
	StoreInflightGroup *g = store_inflight_group_new();
	Work w;
	Waiter wt[N] = {0};
	StoreInflight *op;

	work_init(&w);
	w.fail = TRUE;
	op = store_inflight_start(g, work_fn, &w, NULL, NULL);
	g_assert_nonnull(op);
	store_inflight_ref(op);
	waiter_start(&wt[0], op, 0);
	for (int i = 1; i < N; i++)
		waiter_start(&wt[i], store_inflight_join(op), 0);
	wait_for_waiters(op, N);
	work_release(&w);
	for (int i = 0; i < N; i++) {
		waiter_join(&wt[i]);
		g_assert_false(wt[i].ok);
		g_assert_error(wt[i].error, IMAP_ERROR, IMAP_ERROR_TIMEOUT);
		g_assert_cmpstr(wt[i].error->message, ==, "the server stalled");
		g_clear_error(&wt[i].error);
	}
	g_assert_cmpint(g_atomic_int_get(&w.runs), ==, 1);
	g_assert_false(g_atomic_int_get(&w.saw_cancel));
	store_inflight_unref(op);
	store_inflight_group_free(g);
	work_clear(&w);
}

static void
test_success_is_shared(void)
{
	StoreInflightGroup *g = store_inflight_group_new();
	Work w;
	Waiter wt[N] = {0};
	StoreInflight *op;

	work_init(&w);
	op = store_inflight_start(g, work_fn, &w, NULL, NULL);
	waiter_start(&wt[0], op, 0);
	for (int i = 1; i < N; i++)
		waiter_start(&wt[i], store_inflight_join(op), 0);
	work_release(&w);
	for (int i = 0; i < N; i++) {
		waiter_join(&wt[i]);
		g_assert_true(wt[i].ok);
		g_assert_no_error(wt[i].error);
	}
	g_assert_cmpint(g_atomic_int_get(&w.runs), ==, 1);
	store_inflight_group_free(g);
	work_clear(&w);
}

/* A waiter whose request is interrupted leaves at once; the work goes on for the rest. */
static void
test_waiter_cancel_leaves_alone(void)
{
	StoreInflightGroup *g = store_inflight_group_new();
	Work w;
	Waiter a = {0}, b = {0};
	StoreInflight *op;

	work_init(&w);
	op = store_inflight_start(g, work_fn, &w, NULL, NULL);
	store_inflight_ref(op);
	waiter_start(&a, op, 0);
	waiter_start(&b, store_inflight_join(op), 0);
	wait_for_waiters(op, 2);
	g_cancellable_cancel(a.cancel);
	waiter_join(&a);
	g_assert_false(a.ok);
	g_assert_error(a.error, IMAP_ERROR, IMAP_ERROR_CANCELLED);
	g_clear_error(&a.error);
	g_assert_cmpuint(store_inflight_get_waiters(op), ==, 1);
	g_assert_false(g_cancellable_is_cancelled(store_inflight_get_cancellable(op)));
	work_release(&w);
	waiter_join(&b);
	g_assert_true(b.ok);
	g_assert_false(g_atomic_int_get(&w.saw_cancel));
	store_inflight_unref(op);
	store_inflight_group_free(g);
	work_clear(&w);
}

/* Every waiter gone (a reader killed): the work is cancelled, no one holds it. */
static void
test_last_waiter_gone_cancels_work(void)
{
	StoreInflightGroup *g = store_inflight_group_new();
	Work w;
	Waiter a = {0}, b = {0};
	StoreInflight *op;

	work_init(&w);
	op = store_inflight_start(g, work_fn, &w, NULL, NULL);
	store_inflight_ref(op);
	waiter_start(&a, op, 0);
	waiter_start(&b, store_inflight_join(op), 0);
	wait_for_waiters(op, 2);
	g_cancellable_cancel(a.cancel);
	waiter_join(&a);
	g_assert_false(g_cancellable_is_cancelled(store_inflight_get_cancellable(op)));
	g_cancellable_cancel(b.cancel);
	waiter_join(&b);
	g_clear_error(&a.error);
	g_clear_error(&b.error);
	g_assert_true(g_cancellable_is_cancelled(store_inflight_get_cancellable(op)));
	/* an abandoned operation takes no new waiter: its publisher starts a new one */
	g_assert_null(store_inflight_join(op));
	store_inflight_group_free(g); /* joins the worker, which saw the cancel */
	g_assert_true(g_atomic_int_get(&w.saw_cancel));
	store_inflight_unref(op);
	work_clear(&w);
}

/* A waiter's idle deadline: no progress for idle_us fails it; progress keeps it. */
static void
test_idle_deadline(void)
{
	StoreInflightGroup *g = store_inflight_group_new();
	Work w;
	StoreInflight *op;
	GError *error = NULL;
	gint64 t0;

	work_init(&w);
	op = store_inflight_start(g, work_fn, &w, NULL, NULL);
	store_inflight_ref(op);
	t0 = g_get_monotonic_time();
	g_assert_false(store_inflight_wait(op, 100 * G_TIME_SPAN_MILLISECOND, NULL, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT);
	g_assert_cmpint(g_get_monotonic_time() - t0, >=, 100 * G_TIME_SPAN_MILLISECOND);
	g_clear_error(&error);
	/* the only waiter left: the work was cancelled */
	g_assert_true(g_cancellable_is_cancelled(store_inflight_get_cancellable(op)));
	store_inflight_unref(op);

	/* with progress, a wait much longer than the idle limit succeeds */
	work_clear(&w);
	work_init(&w);
	w.progress = TRUE;
	op = store_inflight_start(g, work_fn, &w, NULL, NULL);
	{
		Waiter wt = {0};

		waiter_start(&wt, op, 50 * G_TIME_SPAN_MILLISECOND);
		/* several idle periods pass while the work reports progress */
		t0 = g_get_monotonic_time();
		while (g_get_monotonic_time() - t0 < 300 * G_TIME_SPAN_MILLISECOND)
			g_usleep(10000);
		work_release(&w);
		waiter_join(&wt);
		g_assert_no_error(wt.error);
		g_assert_true(wt.ok);
	}
	store_inflight_group_free(g);
	work_clear(&w);
}

static guint64
probe_counter(gpointer data)
{
	return (guint64)g_atomic_int_get((gint *)data);
}

/* A probe (bytes written so far) counts as progress too. */
static void
test_probe_progress(void)
{
	StoreInflightGroup *g = store_inflight_group_new();
	Work w;
	StoreInflight *op;
	Waiter wt = {0};
	gint counter = 0;
	gint64 t0;

	work_init(&w);
	op = store_inflight_start(g, work_fn, &w, NULL, NULL);
	store_inflight_set_probe(op, probe_counter, &counter);
	waiter_start(&wt, op, 50 * G_TIME_SPAN_MILLISECOND);
	t0 = g_get_monotonic_time();
	while (g_get_monotonic_time() - t0 < 300 * G_TIME_SPAN_MILLISECOND) {
		g_atomic_int_inc(&counter);
		g_usleep(10000);
	}
	work_release(&w);
	waiter_join(&wt);
	g_assert_no_error(wt.error);
	g_assert_true(wt.ok);
	store_inflight_group_free(g);
	work_clear(&w);
}

/* Closing the group (shutdown) fails every waiter at once and every later start. */
static void
test_close_cancels_everything(void)
{
	StoreInflightGroup *g = store_inflight_group_new();
	Work w;
	Waiter wt[N] = {0};
	StoreInflight *op;
	GCancellable *parent = g_cancellable_new();
	GCancellable *call;
	GError *error = NULL;

	work_init(&w);
	op = store_inflight_start(g, work_fn, &w, NULL, NULL);
	store_inflight_ref(op);
	waiter_start(&wt[0], op, 0);
	for (int i = 1; i < N; i++)
		waiter_start(&wt[i], store_inflight_join(op), 0);
	call = store_inflight_group_call_begin(g, parent, &error);
	g_assert_no_error(error);
	g_assert_false(g_cancellable_is_cancelled(call));
	wait_for_waiters(op, N);

	store_inflight_group_close(g);
	g_assert_true(store_inflight_group_is_closed(g));
	g_assert_true(g_cancellable_is_cancelled(call));
	g_assert_false(g_cancellable_is_cancelled(parent));
	for (int i = 0; i < N; i++) {
		waiter_join(&wt[i]);
		g_assert_false(wt[i].ok);
		g_assert_error(wt[i].error, STORE_ERROR, STORE_ERROR_IO);
		g_clear_error(&wt[i].error);
	}
	g_assert_true(g_atomic_int_get(&w.saw_cancel));
	store_inflight_group_call_end(g, call);

	g_assert_null(store_inflight_start(g, work_fn, &w, NULL, &error));
	g_assert_error(error, STORE_ERROR, STORE_ERROR_IO);
	g_clear_error(&error);
	g_assert_null(store_inflight_group_call_begin(g, parent, &error));
	g_assert_error(error, STORE_ERROR, STORE_ERROR_IO);
	g_clear_error(&error);
	g_assert_cmpint(g_atomic_int_get(&w.runs), ==, 1);
	store_inflight_unref(op);
	store_inflight_group_free(g);
	g_object_unref(parent);
	work_clear(&w);
}

/* A lazy unmount: what runs now is cancelled, the group goes on working. */
static void
test_cancel_running_only(void)
{
	StoreInflightGroup *g = store_inflight_group_new();
	Work w, w2;
	Waiter wt = {0};
	StoreInflight *op;
	GCancellable *call;
	GError *error = NULL;

	work_init(&w);
	work_init(&w2);
	op = store_inflight_start(g, work_fn, &w, NULL, NULL);
	waiter_start(&wt, op, 0);
	call = store_inflight_group_call_begin(g, NULL, NULL);
	store_inflight_group_cancel_running(g);
	g_assert_true(g_cancellable_is_cancelled(call));
	store_inflight_group_call_end(g, call);
	waiter_join(&wt);
	g_assert_false(wt.ok);
	g_assert_error(wt.error, IMAP_ERROR, IMAP_ERROR_CANCELLED);
	g_clear_error(&wt.error);
	g_assert_false(store_inflight_group_is_closed(g));

	op = store_inflight_start(g, work_fn, &w2, NULL, &error);
	g_assert_no_error(error);
	work_release(&w2);
	g_assert_true(store_inflight_wait(op, 0, NULL, &error));
	g_assert_no_error(error);
	store_inflight_group_free(g);
	work_clear(&w);
	work_clear(&w2);
}

/* A call's cancellable follows the request's (a FUSE interrupt). */
static void
test_call_follows_parent(void)
{
	StoreInflightGroup *g = store_inflight_group_new();
	GCancellable *parent = g_cancellable_new();
	GCancellable *call, *plain;

	call = store_inflight_group_call_begin(g, parent, NULL);
	plain = store_inflight_group_call_begin(g, NULL, NULL);
	g_assert_nonnull(call);
	g_assert_nonnull(plain);
	g_cancellable_cancel(parent);
	g_assert_true(g_cancellable_is_cancelled(call));
	g_assert_false(g_cancellable_is_cancelled(plain));
	store_inflight_group_call_end(g, call);
	store_inflight_group_call_end(g, plain);
	/* already cancelled at the start: cancelled at once */
	call = store_inflight_group_call_begin(g, parent, NULL);
	g_assert_true(g_cancellable_is_cancelled(call));
	store_inflight_group_call_end(g, call);
	store_inflight_group_free(g);
	g_object_unref(parent);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/inflight/failure-is-shared", test_failure_is_shared);
	g_test_add_func("/inflight/success-is-shared", test_success_is_shared);
	g_test_add_func("/inflight/waiter-cancel-leaves-alone", test_waiter_cancel_leaves_alone);
	g_test_add_func("/inflight/last-waiter-gone-cancels-work",
			test_last_waiter_gone_cancels_work);
	g_test_add_func("/inflight/idle-deadline", test_idle_deadline);
	g_test_add_func("/inflight/probe-progress", test_probe_progress);
	g_test_add_func("/inflight/close-cancels-everything", test_close_cancels_everything);
	g_test_add_func("/inflight/cancel-running-only", test_cancel_running_only);
	g_test_add_func("/inflight/call-follows-parent", test_call_follows_parent);
	return g_test_run();
}
