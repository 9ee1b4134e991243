/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * notify.c: imap_notify_start()/imap_notify_stop(), one watcher thread on its own
 * connection (outside the pool) that asks the server for NOTIFY (RFC 5465) on every folder
 * of the account and hands each notification to the caller, typed (imap_resp_notify). No
 * mailbox is ever selected on it, so the server tells changes as STATUS per folder and
 * folder changes as LIST. It waits in IDLE (re-issued every 28 minutes) or, without IDLE,
 * sends a NOOP every 5 minutes; on a lost connection it reports IMAP_NOTIFY_LOST and
 * reconnects with backoff, then IMAP_NOTIFY_READY with .resumed. It never changes
 * anything on the server and never walks a UID set: what a notification means is the
 * caller's business.
 */
#define G_LOG_DOMAIN "imapfs-imap"

#include "config.h"

#include <string.h>

#include "pool.h"
#include "resp.h"

#define IDLE_REISSUE_MS (28 * 60 * 1000)
#define NOOP_INTERVAL_MS (5 * 60 * 1000)
#define BACKOFF_MAX_MS 30000u

struct _ImapNotify {
	ImapPool *pool;
	char **subtrees; /* the notify thread's (dropped when the server refuses them) */
	ImapNotifyFn fn;
	gpointer user_data;
	GCancellable *cancel;
	GThread *thread;
	gint selected_logged; /* atomic: the oddity was logged once */
};

static void
report(ImapNotify *n, ImapNotifyKind kind, const char *mailbox, const ImapStatus *status,
       gboolean resumed)
{
	ImapNotifyEvent ev = {kind, mailbox, status, resumed};

	n->fn(&ev, n->user_data);
}

/* I/O thread, connection lock held (both as the IDLE command's handler and as the
 * connection's event handler). */
static gboolean
notify_untagged(ImapConn *conn, const ImapResponse *resp, gpointer data)
{
	ImapNotify *n = data;
	g_autoptr(GError) err = NULL;
	g_autofree char *mailbox = NULL;
	ImapNotifyKind kind;
	ImapStatus st;

	if (!imap_resp_notify(resp, imap_conn_utf8(conn), &kind, &mailbox, &st, &err)) {
		if (err == NULL)
			return FALSE;
		g_debug("NOTIFY: ignoring a malformed notification: %s", err->message);
		return TRUE;
	}
	if (kind == IMAP_NOTIFY_SELECTED &&
	    g_atomic_int_compare_and_exchange(&n->selected_logged, 0, 1))
		g_debug("NOTIFY: message data without a selected mailbox (passed on, not decoded)");
	report(n, kind, mailbox, kind == IMAP_NOTIFY_STATUS ? &st : NULL, FALSE);
	return TRUE;
}

static void
notify_event(ImapConn *conn, const ImapResponse *resp, gpointer data)
{
	if (resp != NULL) /* (NULL: the connection died; the thread sees it) */
		notify_untagged(conn, resp, data);
}

static ImapCmd *
notify_build(ImapConn *conn, ImapNotify *n, GError **error)
{
	static const char msg_events[] = "(MessageNew MessageExpunge FlagChange)";
	static const char all_events[] =
		"(MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)";
	ImapCmd *cmd = imap_cmd_new("NOTIFY");

	imap_conn_cmd_options(conn, cmd);
	imap_cmd_atom(cmd, "SET");
	imap_cmd_raw(cmd, "(");
	imap_cmd_atom(cmd, "selected");
	imap_cmd_raw(cmd, msg_events);
	imap_cmd_raw(cmd, ")");
	imap_cmd_raw(cmd, "(");
	imap_cmd_atom(cmd, "personal");
	imap_cmd_raw(cmd, all_events);
	imap_cmd_raw(cmd, ")");
	if (n->subtrees != NULL && n->subtrees[0] != NULL) {
		imap_cmd_raw(cmd, "(");
		imap_cmd_atom(cmd, "subtree");
		imap_cmd_raw(cmd, "(");
		for (guint i = 0; n->subtrees[i]; i++)
			imap_cmd_mailbox(cmd, n->subtrees[i]);
		imap_cmd_raw(cmd, ")");
		imap_cmd_raw(cmd, all_events);
		imap_cmd_raw(cmd, ")");
	}
	if (!imap_cmd_finish(cmd, error)) {
		imap_cmd_free(cmd);
		return NULL;
	}
	return cmd;
}

static ImapCmd *
noop_build(ImapConn *conn, GError **error)
{
	ImapCmd *cmd = imap_cmd_new("NOOP");

	imap_conn_cmd_options(conn, cmd);
	if (!imap_cmd_finish(cmd, error)) {
		imap_cmd_free(cmd);
		return NULL;
	}
	return cmd;
}

/* Sleeps @ms or until cancelled. */
static void
nap(ImapNotify *n, guint ms)
{
	gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;

	while (g_get_monotonic_time() < end && !g_cancellable_is_cancelled(n->cancel))
		g_usleep(20000);
}

/* TRUE when NOTIFY is in force on @conn; *@refused when the server said no. */
static gboolean
notify_set(ImapNotify *n, ImapConn *conn, gboolean *refused, GError **error)
{
	g_autoptr(ImapResponse) tagged = NULL;
	ImapCmd *cmd;

	*refused = FALSE;
	if (!imap_conn_has_cap(conn, "NOTIFY")) {
		*refused = TRUE;
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED, "the server lacks NOTIFY");
		return FALSE;
	}
	cmd = notify_build(conn, n, error);
	if (cmd == NULL)
		return FALSE;
	if (imap_conn_run_sync(conn, cmd, 0, notify_untagged, n, NULL, NULL, &tagged, n->cancel,
			       error))
		return TRUE;
	*refused = tagged != NULL; /* the server answered NO or BAD */
	return FALSE;
}

/* Waits for notifications until the connection dies or we are cancelled. */
static void
listen_on(ImapNotify *n, ImapConn *conn)
{
	while (!g_cancellable_is_cancelled(n->cancel) && imap_conn_is_alive(conn)) {
		g_autoptr(GError) err = NULL;

		if (imap_conn_has_cap(conn, "IDLE")) {
			if (!imap_conn_idle_begin_sync(conn, notify_untagged, n, n->cancel, &err))
				break;
			imap_conn_wait(conn, IDLE_REISSUE_MS, n->cancel);
			if (g_cancellable_is_cancelled(n->cancel))
				break; /* imap_conn_free() ends the IDLE, bounded */
			if (!imap_conn_idle_end_sync(conn, NULL, &err))
				break;
		} else {
			ImapCmd *cmd = noop_build(conn, &err);

			if (cmd == NULL || !imap_conn_run_sync(conn, cmd, 0, notify_untagged, n, NULL,
							       NULL, NULL, n->cancel, &err))
				break;
			imap_conn_wait(conn, NOOP_INTERVAL_MS, n->cancel);
		}
	}
}

static gpointer
notify_thread(gpointer data)
{
	ImapNotify *n = data;
	const ImapConfig *cfg = imap_pool_get_config(n->pool);
	guint fails = 0;
	gboolean resumed = FALSE;

	while (!g_cancellable_is_cancelled(n->cancel)) {
		g_autoptr(GError) err = NULL;
		gboolean refused = FALSE;
		ImapConn *conn = imap_conn_open_sync(cfg, imap_pool_stats(n->pool), n->cancel, &err);

		if (conn != NULL) {
			imap_conn_set_event_handler(conn, notify_event, n);
			if (!notify_set(n, conn, &refused, &err)) {
				imap_conn_free(conn);
				conn = NULL;
			}
		}
		if (g_cancellable_is_cancelled(n->cancel)) {
			imap_conn_free(conn);
			break;
		}
		if (refused && n->subtrees != NULL && !g_error_matches(err, IMAP_ERROR,
								      IMAP_ERROR_UNSUPPORTED)) {
			/* maybe the other namespaces' subtrees: the personal one alone then */
			g_message("NOTIFY: %s; trying again without the other namespaces",
				  err->message);
			g_clear_pointer(&n->subtrees, g_strfreev);
			continue;
		}
		if (refused) {
			g_message("NOTIFY: %s: push for every folder is off", err->message);
			report(n, IMAP_NOTIFY_REFUSED, NULL, NULL, FALSE);
			break;
		}
		if (conn == NULL) {
			fails++;
			g_message("NOTIFY: %s; retrying", err->message);
			nap(n, MIN(BACKOFF_MAX_MS, 500u << MIN(fails, 6u)));
			continue;
		}
		g_debug("NOTIFY: watching every folder (conn %u)", imap_conn_get_id(conn));
		report(n, IMAP_NOTIFY_READY, NULL, NULL, resumed);
		resumed = TRUE;
		fails = 0;
		listen_on(n, conn);
		if (!g_cancellable_is_cancelled(n->cancel)) {
			g_message("NOTIFY: connection lost; reconnecting");
			report(n, IMAP_NOTIFY_LOST, NULL, NULL, FALSE);
		}
		imap_conn_free(conn);
		/* a server that drops us at once must not be hammered */
		nap(n, 250);
	}
	return NULL;
}

ImapNotify *
imap_notify_start(ImapPool *pool, const char *const *subtrees, ImapNotifyFn fn,
		  gpointer user_data)
{
	ImapNotify *n;

	g_return_val_if_fail(pool != NULL && fn != NULL, NULL);
	n = g_new0(ImapNotify, 1);
	n->pool = pool;
	n->subtrees = g_strdupv((char **)subtrees);
	n->fn = fn;
	n->user_data = user_data;
	n->cancel = g_cancellable_new();
	n->thread = g_thread_new("imap-notify", notify_thread, n);
	return n;
}

void
imap_notify_stop(ImapNotify *n)
{
	if (n == NULL)
		return;
	g_cancellable_cancel(n->cancel);
	g_thread_join(n->thread);
	g_object_unref(n->cancel);
	g_strfreev(n->subtrees);
	g_free(n);
}
