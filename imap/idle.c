/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * idle.c: imap_idle_start()/imap_idle_stop(), a watcher thread on its own connection
 * (outside the pool) that keeps one mailbox selected and reports EXISTS, EXPUNGE,
 * VANISHED and FETCH FLAGS as ImapChange callbacks: IDLE when the server offers it
 * (re-issued every 28 minutes), NOOP every minute otherwise. On a lost connection it
 * bumps the pool's epoch, reports IMAP_CHANGE_LOST and reconnects with backoff; after every
 * EXAMINE (the first and each reconnect) it reports IMAP_CHANGE_WATCHING so the caller
 * looks again. It never changes the mailbox
 * (EXAMINE) and never touches the caller's state except through the callback.
 */
#define G_LOG_DOMAIN "imapfs-imap"

#include "config.h"

#include <string.h>

#include "pool.h"
#include "resp.h"

#define IDLE_REISSUE_MS (28 * 60 * 1000)
#define POLL_INTERVAL_MS (60 * 1000)

struct _ImapIdle {
	ImapPool *pool;
	char *mailbox;
	ImapChangeFn fn;
	gpointer user_data;
	GCancellable *cancel;
	GThread *thread;
};

static gboolean
idle_untagged(ImapConn *conn, const ImapResponse *resp, gpointer data)
{
	ImapIdle *idle = data;
	g_autoptr(GError) err = NULL;
	ImapChange ch = { 0 };
	guint32 n;

	ch.mailbox = idle->mailbox;
	switch (imap_resp_untagged_kind(resp)) {
	case IMAP_UNTAGGED_EXISTS:
		if (!imap_resp_number(resp, &n, &err))
			return TRUE;
		ch.kind = IMAP_CHANGE_EXISTS;
		ch.exists = n;
		idle->fn(&ch, idle->user_data);
		return TRUE;
	case IMAP_UNTAGGED_EXPUNGE:
		ch.kind = IMAP_CHANGE_EXPUNGED;
		ch.uid = 0;
		idle->fn(&ch, idle->user_data);
		return TRUE;
	case IMAP_UNTAGGED_VANISHED: {
		/* one call with the whole set: a hostile "VANISHED 1:4294967294" is two
		 * numbers here, never four billion calls */
		gboolean earlier = FALSE;
		g_autoptr(ImapUidSet) set = imap_resp_vanished(resp, &earlier, &err);

		if (!set)
			return TRUE;
		ch.kind = IMAP_CHANGE_EXPUNGED;
		ch.uids = set;
		idle->fn(&ch, idle->user_data);
		return TRUE;
	}
	case IMAP_UNTAGGED_FETCH: {
		guint32 seq;
		g_autoptr(ImapMessage) msg = imap_resp_fetch(resp, &seq, &err);

		if (!msg)
			return TRUE;
		/* servers often leave the UID out of an unsolicited FETCH (uid 0 then) */
		ch.kind = IMAP_CHANGE_FLAGS;
		ch.uid = (msg->have & IMAP_FETCH_UID) ? msg->uid : 0;
		ch.msg = msg;
		idle->fn(&ch, idle->user_data);
		return TRUE;
	}
	default:
		return FALSE;
	}
}

static ImapCmd *
noop_build(ImapConn *conn, gpointer data, GError **error)
{
	ImapCmd *cmd = imap_cmd_new("NOOP");

	imap_conn_cmd_options(conn, cmd);
	if (!imap_cmd_finish(cmd, error)) {
		imap_cmd_free(cmd);
		return NULL;
	}
	return cmd;
}

static gpointer
idle_thread(gpointer data)
{
	ImapIdle *idle = data;
	const ImapConfig *cfg = imap_pool_get_config(idle->pool);
	guint fails = 0;

	while (!g_cancellable_is_cancelled(idle->cancel)) {
		g_autoptr(GError) err = NULL;
		ImapConn *conn = imap_conn_open_sync(cfg, imap_pool_stats(idle->pool),
						     idle->cancel, &err);
		ImapSelectInfo *info = NULL;
		ImapChange lost = { IMAP_CHANGE_LOST, idle->mailbox, 0, 0, NULL, NULL };

		if (conn)
			info = imap_select_run(conn, idle->mailbox, FALSE, 0, 0, idle->cancel, &err);
		if (!info) {
			imap_conn_free(conn);
			if (g_cancellable_is_cancelled(idle->cancel))
				break;
			g_message("IDLE on %s: %s; retrying", idle->mailbox, err->message);
			fails++;
			{
				guint ms = MIN(30000u, 500u << MIN(fails, 6u));
				gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;

				while (g_get_monotonic_time() < end &&
				       !g_cancellable_is_cancelled(idle->cancel))
					g_usleep(50000);
			}
			continue;
		}
		{
			/* watched from now on: what changed before (since the caller last looked,
			 * or while we were away) is not told by IDLE, so the caller looks again */
			ImapChange ex = { IMAP_CHANGE_WATCHING, idle->mailbox, info->exists, 0,
					   NULL, NULL };

			idle->fn(&ex, idle->user_data);
		}
		imap_select_info_free(info);
		fails = 0;
		while (!g_cancellable_is_cancelled(idle->cancel) && imap_conn_is_alive(conn)) {
			g_autoptr(GError) e2 = NULL;

			if (imap_conn_has_cap(conn, "IDLE")) {
				if (!imap_conn_idle_begin_sync(conn, idle_untagged, idle, idle->cancel,
							       &e2))
					break;
				imap_conn_wait(conn, IDLE_REISSUE_MS, idle->cancel);
				if (g_cancellable_is_cancelled(idle->cancel))
					break; /* imap_conn_free() ends the IDLE, bounded */
				if (!imap_conn_idle_end_sync(conn, NULL, &e2))
					break;
			} else {
				ImapCmd *cmd = noop_build(conn, NULL, &e2);

				if (!cmd || !imap_conn_run_sync(conn, cmd, 0, idle_untagged, idle, NULL,
							       NULL, NULL, idle->cancel, &e2))
					break;
				imap_conn_wait(conn, POLL_INTERVAL_MS, idle->cancel);
			}
		}
		if (!g_cancellable_is_cancelled(idle->cancel)) {
			imap_pool_bump_epoch(idle->pool);
			idle->fn(&lost, idle->user_data);
		}
		imap_conn_free(conn);
	}
	return NULL;
}

ImapIdle *
imap_idle_start(ImapPool *pool, const char *mailbox, ImapChangeFn fn, gpointer user_data,
		GError **error)
{
	ImapIdle *idle;

	if (!mailbox || !fn) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID, "no mailbox or callback");
		return NULL;
	}
	idle = g_new0(ImapIdle, 1);
	idle->pool = pool;
	idle->mailbox = g_strdup(mailbox);
	idle->fn = fn;
	idle->user_data = user_data;
	idle->cancel = g_cancellable_new();
	idle->thread = g_thread_new("imap-idle", idle_thread, idle);
	return idle;
}

void
imap_idle_stop(ImapIdle *idle)
{
	if (!idle)
		return;
	g_cancellable_cancel(idle->cancel);
	g_thread_join(idle->thread);
	g_object_unref(idle->cancel);
	g_free(idle->mailbox);
	g_free(idle);
}
