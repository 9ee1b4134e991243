/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * inflight.h: one network operation of the store that several requests wait for (a
 * folder listing, a body download), and the group that runs them and can stop them all.
 *
 * The work runs on a worker thread of the group with the operation's own GCancellable,
 * never on a requester's thread, so each requester is only a waiter: it leaves when the
 * operation ends (every waiter gets the same outcome, at the same moment), when its own
 * GCancellable fires (a FUSE interrupt) or when the operation showed no progress for its
 * idle time. When the last waiter has left an unfinished operation, the operation is
 * cancelled (a killed reader's download does not hold a connection). Shutting the group
 * down (store_inflight_group_close) cancels every operation and every call made through
 * store_inflight_group_call_begin(), and makes new ones fail at once.
 *
 * No lock of the caller is held inside these functions except where said; the group and
 * each operation have their own small lock, taken last (lock order: store->lock, then
 * group->lock, then op->lock).
 */
#pragma once

#include <gio/gio.h>

typedef struct _StoreInflight StoreInflight;
typedef struct _StoreInflightGroup StoreInflightGroup;

/* The work of an operation; runs on a worker thread. @cancel is the operation's own. */
typedef gboolean (*StoreInflightFn)(StoreInflight *op, gpointer data, GCancellable *cancel,
				    GError **error);

/* A group with its worker threads (created on demand). Free it after close: it waits for
 * the running workers, which end soon once cancelled. */
StoreInflightGroup *store_inflight_group_new(void);
void store_inflight_group_free(StoreInflightGroup *group);
/* Closes @group and waits for its workers to end; later starts fail (closed). */
void store_inflight_group_join(StoreInflightGroup *group);
/* Cancels every running operation and linked call; from now on starts and call_begin
 * fail at once (STORE_ERROR_IO, "shutting down"). Any thread, any time, idempotent. */
void store_inflight_group_close(StoreInflightGroup *group);
gboolean store_inflight_group_is_closed(StoreInflightGroup *group);
/* Cancels what runs now (operations and calls), like close, but later ones run. */
void store_inflight_group_cancel_running(StoreInflightGroup *group);

/* A call the caller makes on its own thread (not shared): returns a new GCancellable
 * that is cancelled when @cancel (may be NULL) is, or when the group closes. NULL with
 * @error set when the group is closed. End it with store_inflight_group_call_end(). */
GCancellable *store_inflight_group_call_begin(StoreInflightGroup *group, GCancellable *cancel,
					      GError **error);
void store_inflight_group_call_end(StoreInflightGroup *group, GCancellable *call);

/* Starts @fn(@data) on a worker of @group; the caller is its first waiter and owns one
 * reference, which store_inflight_wait() gives back. @destroy frees @data when the last
 * reference goes (never with a lock of the caller held: see store_inflight_wait). NULL
 * with @error when the group is closed (or no thread can be had); @data is then still
 * the caller's and @fn never runs. */
StoreInflight *store_inflight_start(StoreInflightGroup *group, StoreInflightFn fn, gpointer data,
				    GDestroyNotify destroy, GError **error);
/* A progress counter that waiters sample (under @op's lock, so it must be quick and take
 * no lock): a change counts as progress. Set it right after the start. */
typedef guint64 (*StoreInflightProbe)(gpointer data);
void store_inflight_set_probe(StoreInflight *op, StoreInflightProbe probe, gpointer data);
/* Plain references (no waiter), e.g. to read the data after store_inflight_wait(). The
 * last unref runs @destroy: no lock held then. */
StoreInflight *store_inflight_ref(StoreInflight *op);
void store_inflight_unref(StoreInflight *op);
/* A new waiter of @op (a reference for it, which store_inflight_wait() gives back). Call
 * it while whatever published @op keeps it alive (e.g. under store->lock). NULL when @op
 * was abandoned (its last waiter left, it is being cancelled): wait for its publisher to
 * drop it, then start a new one. */
StoreInflight *store_inflight_join(StoreInflight *op);
/* Waits until @op ends, @cancel fires (IMAP_ERROR_CANCELLED) or @op showed no progress
 * for @idle_us since this waiter came or since its last progress (IMAP_ERROR_TIMEOUT;
 * 0: no idle limit). On the end of @op: TRUE, or FALSE with a copy of its error. Always
 * leaves and drops the waiter's reference; the last waiter leaving an unfinished @op
 * cancels it. Never call it with a lock held. */
gboolean store_inflight_wait(StoreInflight *op, gint64 idle_us, GCancellable *cancel,
			     GError **error);
/* From @fn: the operation made progress (bytes came); waiters' idle time starts anew. */
void store_inflight_progress(StoreInflight *op);
/* The data given to store_inflight_start() (for waiters to read results that @fn left
 * there before it returned). */
gpointer store_inflight_get_data(StoreInflight *op);
/* How many waiters @op has now (for tests and logs). */
guint store_inflight_get_waiters(StoreInflight *op);
/* The operation's own cancellable (cancelled when its last waiter left or on close). */
GCancellable *store_inflight_get_cancellable(StoreInflight *op);
