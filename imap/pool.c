/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pool.c: the connections of one account. Up to max_conns connections, opened lazily,
 * lent to workers with mailbox affinity (a connection that already has the mailbox
 * SELECTed/EXAMINEd is preferred; read paths EXAMINE, write paths SELECT), replaced with
 * backoff after a drop, and one automatic retry for idempotent commands only. It also
 * runs SELECT/EXAMINE (with QRESYNC parameters) and checks UIDVALIDITY on every re-select.
 *
 * Locking: pool->lock protects the connection list and every PoolConn field; it is never
 * held across network I/O (opening and selecting happen with the lock released while the
 * PoolConn is marked `switching`). Lock order: pool->lock, then a connection's own lock
 * (taken inside conn.c); connection event handlers touch only atomics, never pool->lock.
 *
 * UIDVALIDITY: whatever connection learns a new UIDVALIDITY for a mailbox (a re-SELECT, or
 * an unsolicited "* OK [UIDVALIDITY n]"), every connection that has that mailbox selected
 * must re-select before its next use, a command that expects the old value fails with
 * IMAP_ERROR_UIDVALIDITY, and so does a command during which its connection heard of a
 * change (its data may belong to the new UID map): never another message's bytes.
 */
#define G_LOG_DOMAIN "imapfs-imap"

#include "config.h"

#include "pool.h"

#include <string.h>

#include "resp.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000
#define BUSY_MARGIN_MS 1000 /* see acquire_once */

typedef struct {
	ImapPool *pool;
	ImapConn *conn;
	char *mailbox;        /* selected mailbox (UTF-8) or NULL */
	gboolean rw;          /* SELECTed (not EXAMINEd) */
	char **permflags;     /* PERMANENTFLAGS of that SELECT; NULL when EXAMINEd or the
			       * server sent none (then every flag is permanent) */
	guint32 uidvalidity;
	guint users;          /* leases out */
	gboolean switching;   /* a lease holder is (re)selecting; nobody else may use it */
	gint64 last_used;
	/* UIDVALIDITY announced by the server outside a SELECT ("* OK [UIDVALIDITY n]"):
	 * the event handler (I/O thread, no pool lock) bumps uv_events when n differs from
	 * uv_current; leases notice it (imap_lease_run), acquire applies it under the lock. */
	gint uv_current; /* atomic copy of uidvalidity */
	gint uv_events;  /* atomic */
	gint uv_acked;   /* protected by pool->lock: the uv_events already applied */
	gint changed;    /* atomic: ImapChanged bits heard unsolicited since the release */
	guint64 seen;    /* protected by pool->lock: the pool's writes numbered up to this
			  * one are known to its view of @mailbox (imap_pool_note_write) */
} PoolConn;

struct _ImapLease {
	PoolConn *pc;
	gint uv_events; /* pc->uv_events as applied when the lease was granted */
	guint64 writes; /* pool->writes when it was granted: its commands see those */
};

struct _ImapPool {
	ImapConfig cfg;   /* own copy */
	ImapStats stats;  /* atomics */
	gint epoch;       /* atomic */
	gint dropped;     /* atomic: a connection died since the last open */
	gint no_ranges;   /* atomic: the server ignores BODY[]<o.l> */
	GMutex lock;
	GCond cond;
	GPtrArray *conns; /* of PoolConn*, protected by lock */
	guint opening;    /* protected by lock */
	guint fail_count; /* protected by lock */
	gint64 next_attempt;
	GError *last_error; /* protected by lock: why the last open failed */
	char **caps;      /* of the first connection (protected by lock) */
	ImapChangedFn changed_fn; /* immutable after imap_pool_set_changed_handler */
	gpointer changed_data;
	/* Writes made through the pool, numbered; @written: mailbox -> number of the last
	 * one that changed it. Both protected by lock (see imap_pool_note_write). */
	guint64 writes;
	GHashTable *written;
};

/* ---- config ------------------------------------------------------------------------- */

static void
wipe(char *s)
{
	if (s)
		memset(s, 0, strlen(s));
}

void
imap_config_clear(ImapConfig *cfg)
{
	if (!cfg)
		return;
	wipe(cfg->password);
	wipe(cfg->oauth_token);
	g_free(cfg->host);
	g_free(cfg->user);
	g_free(cfg->password);
	g_free(cfg->oauth_token);
	g_free(cfg->cafile);
	g_free(cfg->tls_fingerprint);
	memset(cfg, 0, sizeof(*cfg));
	cfg->trace_fd = -1;
}

ImapPool *
imap_pool_new(const ImapConfig *cfg)
{
	ImapPool *pool = g_new0(ImapPool, 1);

	pool->cfg = *cfg;
	pool->cfg.host = g_strdup(cfg->host);
	pool->cfg.user = g_strdup(cfg->user);
	pool->cfg.password = g_strdup(cfg->password);
	pool->cfg.oauth_token = g_strdup(cfg->oauth_token);
	pool->cfg.cafile = g_strdup(cfg->cafile);
	pool->cfg.tls_fingerprint = g_strdup(cfg->tls_fingerprint);
	if (!pool->cfg.timeout_ms)
		pool->cfg.timeout_ms = 30000;
	if (!pool->cfg.max_conns)
		pool->cfg.max_conns = 4;
	if (!pool->cfg.port)
		pool->cfg.port = cfg->tls == IMAP_TLS_IMPLICIT ? 993 : 143;
	g_mutex_init(&pool->lock);
	g_cond_init(&pool->cond);
	pool->conns = g_ptr_array_new();
	pool->written = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	return pool;
}

static void
pool_conn_free(PoolConn *pc)
{
	imap_conn_free(pc->conn);
	g_free(pc->mailbox);
	g_strfreev(pc->permflags);
	g_free(pc);
}

static gpointer
pool_conn_free_thread(gpointer pc)
{
	pool_conn_free(pc);
	return NULL;
}

void
imap_pool_free(ImapPool *pool)
{
	g_autoptr(GPtrArray) closing = NULL;

	if (!pool)
		return;
	/* Each connection says LOGOUT and waits for the answer (bounded): all at once, so
	 * that the daemon ends (and frees the cache for the next mount) after one round trip,
	 * not one per connection. */
	closing = g_ptr_array_new();
	for (guint i = 1; i < pool->conns->len; i++) {
		GThread *t = g_thread_try_new("imapfs-logout", pool_conn_free_thread,
					      pool->conns->pdata[i], NULL);

		if (t != NULL)
			g_ptr_array_add(closing, t);
		else
			pool_conn_free(pool->conns->pdata[i]);
	}
	if (pool->conns->len > 0)
		pool_conn_free(pool->conns->pdata[0]);
	for (guint i = 0; i < closing->len; i++)
		g_thread_join(closing->pdata[i]);
	g_ptr_array_unref(pool->conns);
	g_hash_table_unref(pool->written);
	g_clear_error(&pool->last_error);
	g_strfreev(pool->caps);
	imap_config_clear(&pool->cfg);
	g_mutex_clear(&pool->lock);
	g_cond_clear(&pool->cond);
	g_free(pool);
}

const ImapConfig *
imap_pool_get_config(ImapPool *pool)
{
	return &pool->cfg;
}

ImapStats *
imap_pool_stats(ImapPool *pool)
{
	return &pool->stats;
}

guint
imap_pool_epoch(ImapPool *pool)
{
	return (guint)g_atomic_int_get(&pool->epoch);
}

gboolean
imap_pool_ranges_ignored(ImapPool *pool)
{
	return g_atomic_int_get(&pool->no_ranges) != 0;
}

void
imap_pool_set_ranges_ignored(ImapPool *pool)
{
	g_atomic_int_set(&pool->no_ranges, 1);
}

void
imap_pool_bump_epoch(ImapPool *pool)
{
	g_atomic_int_inc(&pool->epoch);
}

void
imap_pool_get_stats(ImapPool *pool, ImapStats *out)
{
	out->bytes_in = __atomic_load_n(&pool->stats.bytes_in, __ATOMIC_RELAXED);
	out->bytes_out = __atomic_load_n(&pool->stats.bytes_out, __ATOMIC_RELAXED);
	out->commands = __atomic_load_n(&pool->stats.commands, __ATOMIC_RELAXED);
	out->body_bytes = __atomic_load_n(&pool->stats.body_bytes, __ATOMIC_RELAXED);
	out->reconnects = __atomic_load_n(&pool->stats.reconnects, __ATOMIC_RELAXED);
}

char **
imap_pool_dup_caps(ImapPool *pool)
{
	char **caps;

	g_mutex_lock(&pool->lock);
	caps = g_strdupv(pool->caps);
	g_mutex_unlock(&pool->lock);
	return caps;
}

char **
imap_pool_dup_selected(ImapPool *pool)
{
	GPtrArray *out = g_ptr_array_new();

	g_mutex_lock(&pool->lock);
	for (guint i = 0; i < pool->conns->len; i++) {
		PoolConn *pc = pool->conns->pdata[i];

		if (pc->mailbox != NULL)
			g_ptr_array_add(out, g_strdup(pc->mailbox));
	}
	g_mutex_unlock(&pool->lock);
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(out, FALSE);
}

gboolean
imap_pool_has_capability(ImapPool *pool, const char *cap)
{
	gboolean found = FALSE;

	g_mutex_lock(&pool->lock);
	for (guint i = 0; pool->caps && pool->caps[i]; i++)
		if (g_ascii_strcasecmp(pool->caps[i], cap) == 0)
			found = TRUE;
	g_mutex_unlock(&pool->lock);
	return found;
}

gboolean
imap_pool_capability_number(ImapPool *pool, const char *name, guint64 *value)
{
	gsize len = strlen(name);
	gboolean found = FALSE;

	g_mutex_lock(&pool->lock);
	for (guint i = 0; !found && pool->caps && pool->caps[i]; i++) {
		const char *c = pool->caps[i];

		if (g_ascii_strncasecmp(c, name, len) == 0 && c[len] == '=' &&
		    g_ascii_string_to_unsigned(c + len + 1, 10, 0, G_MAXUINT64, value, NULL))
			found = TRUE;
	}
	g_mutex_unlock(&pool->lock);
	return found;
}

/* ---- SELECT / EXAMINE --------------------------------------------------------------- */

static void
add_flags(char ***dst, const ImapArg *list)
{
	g_autoptr(GError) err = NULL;
	char **f = imap_resp_flags(list, &err);

	if (!f) {
		g_debug("bad flag list: %s", err->message);
		return;
	}
	g_strfreev(*dst);
	*dst = f;
}

gboolean
imap_select_untagged(ImapConn *conn, const ImapResponse *resp, gpointer data)
{
	ImapSelectInfo *info = data;
	g_autoptr(GError) err = NULL;
	guint32 n;
	guint64 v;

	switch (imap_resp_untagged_kind(resp)) {
	case IMAP_UNTAGGED_FLAGS:
		if (resp->args->len >= 2)
			add_flags(&info->flags, resp->args->pdata[1]);
		return TRUE;
	case IMAP_UNTAGGED_EXISTS:
		if (imap_resp_number(resp, &n, &err))
			info->exists = n;
		return TRUE;
	case IMAP_UNTAGGED_RECENT:
		if (imap_resp_number(resp, &n, &err))
			info->recent = n;
		return TRUE;
	case IMAP_UNTAGGED_VANISHED: {
		gboolean earlier = FALSE;
		g_autoptr(ImapUidSet) set = imap_resp_vanished(resp, &earlier, &err);

		if (!set)
			return TRUE;
		if (!info->vanished) {
			info->vanished = g_steal_pointer(&set);
		} else {
			g_autofree char *txt = imap_uidset_to_string(set);
			g_auto(GStrv) ranges = g_strsplit(txt, ",", -1);

			for (guint i = 0; ranges[i]; i++) {
				guint64 a, b;
				char *colon = strchr(ranges[i], ':');

				a = g_ascii_strtoull(ranges[i], NULL, 10);
				b = colon ? g_ascii_strtoull(colon + 1, NULL, 10) : a;
				if (a && b && a <= G_MAXUINT32 && b <= G_MAXUINT32)
					imap_uidset_add_range(info->vanished, (guint32)MIN(a, b),
							      (guint32)MAX(a, b));
			}
		}
		return TRUE;
	}
	case IMAP_UNTAGGED_FETCH: {
		guint32 seq;
		ImapMessage *msg = imap_resp_fetch(resp, &seq, &err);

		if (!msg)
			return TRUE;
		if (!info->changed)
			info->changed = g_ptr_array_new_with_free_func(
				(GDestroyNotify)imap_message_free);
		g_ptr_array_add(info->changed, msg);
		return TRUE;
	}
	case IMAP_UNTAGGED_STATUS:
		if (resp->status != IMAP_STATUS_OK || !resp->code)
			return resp->status == IMAP_STATUS_OK;
		if (g_ascii_strcasecmp(resp->code, "UIDVALIDITY") == 0 &&
		    imap_resp_code_number(resp, "UIDVALIDITY", &v))
			info->uidvalidity = (guint32)v;
		else if (g_ascii_strcasecmp(resp->code, "UIDNEXT") == 0 &&
			 imap_resp_code_number(resp, "UIDNEXT", &v))
			info->uidnext = (guint32)v;
		else if (g_ascii_strcasecmp(resp->code, "HIGHESTMODSEQ") == 0 &&
			 imap_resp_code_number(resp, "HIGHESTMODSEQ", &v))
			info->highestmodseq = v;
		else if (g_ascii_strcasecmp(resp->code, "NOMODSEQ") == 0)
			info->highestmodseq = 0;
		else if (g_ascii_strcasecmp(resp->code, "PERMANENTFLAGS") == 0 &&
			 resp->code_args->len >= 1) {
			add_flags(&info->permanentflags, resp->code_args->pdata[0]);
			info->have_permanentflags = info->permanentflags != NULL;
		}
		return TRUE;
	default:
		return FALSE;
	}
}

ImapSelectInfo *
imap_select_run(ImapConn *conn, const char *mailbox, gboolean write, guint32 known_uidvalidity,
		guint64 known_modseq, GCancellable *cancel, GError **error)
{
	ImapCmd *cmd = imap_cmd_new(write ? "SELECT" : "EXAMINE");
	g_autoptr(ImapSelectInfo) info = g_new0(ImapSelectInfo, 1);
	g_autoptr(ImapResponse) tagged = NULL;

	imap_conn_cmd_options(conn, cmd);
	imap_cmd_mailbox(cmd, mailbox);
	if (imap_conn_qresync(conn) && known_uidvalidity && known_modseq) {
		imap_cmd_raw(cmd, "(QRESYNC (");
		imap_cmd_number(cmd, known_uidvalidity);
		imap_cmd_number(cmd, known_modseq);
		imap_cmd_raw(cmd, "))");
	} else if (imap_conn_condstore(conn) && !imap_conn_qresync(conn)) {
		imap_cmd_raw(cmd, "(CONDSTORE)");
	}
	if (!imap_cmd_finish(cmd, error)) {
		imap_cmd_free(cmd);
		return NULL;
	}
	if (!imap_conn_run_sync(conn, cmd, IMAP_CONN_EXCLUSIVE, imap_select_untagged, info, NULL,
				NULL, &tagged, cancel, error)) {
		if (error && *error && (*error)->code == IMAP_ERROR_NO)
			(*error)->code = IMAP_ERROR_NONEXISTENT;
		return NULL;
	}
	info->read_only = !write;
	if (tagged && tagged->code) {
		if (g_ascii_strcasecmp(tagged->code, "READ-ONLY") == 0)
			info->read_only = TRUE;
		else if (g_ascii_strcasecmp(tagged->code, "READ-WRITE") == 0)
			info->read_only = FALSE;
	}
	if (!info->flags)
		info->flags = g_new0(char *, 1);
	if (!info->permanentflags)
		info->permanentflags = g_new0(char *, 1);
	return g_steal_pointer(&info);
}

/* ---- leases ------------------------------------------------------------------------- */

static void
conn_event(ImapConn *conn, const ImapResponse *resp, gpointer data)
{
	PoolConn *pc = data;
	ImapPool *pool = pc->pool;
	guint64 v;

	if (!resp) {
		g_atomic_int_inc(&pool->epoch);
		g_atomic_int_set(&pool->dropped, 1);
		return;
	}
	if (resp->kind == IMAP_RESP_UNTAGGED && resp->status == IMAP_STATUS_OK && resp->code &&
	    g_ascii_strcasecmp(resp->code, "UIDVALIDITY") == 0 &&
	    imap_resp_code_number(resp, "UIDVALIDITY", &v) && v <= G_MAXUINT32) {
		if ((guint32)g_atomic_int_get(&pc->uv_current) != (guint32)v) {
			g_message("conn %u: the server announced UIDVALIDITY %u (was %u): the "
				  "mailbox is reset", imap_conn_get_id(conn), (guint32)v,
				  (guint32)g_atomic_int_get(&pc->uv_current));
			g_atomic_int_inc(&pc->uv_events);
		}
		return;
	}
	/* Unsolicited EXISTS/EXPUNGE/VANISHED/FETCH: noted here (no pool lock on this
	 * thread), told to the changed handler when the connection is released. */
	switch (imap_resp_untagged_kind(resp)) {
	case IMAP_UNTAGGED_EXISTS:
		g_atomic_int_or(&pc->changed, IMAP_CHANGED_EXISTS);
		break;
	case IMAP_UNTAGGED_EXPUNGE:
	case IMAP_UNTAGGED_VANISHED:
		g_atomic_int_or(&pc->changed, IMAP_CHANGED_EXPUNGE);
		break;
	case IMAP_UNTAGGED_FETCH:
		g_atomic_int_or(&pc->changed, IMAP_CHANGED_FLAGS);
		break;
	default:
		g_debug("conn %u: unsolicited response (%d)", imap_conn_get_id(conn),
			imap_resp_untagged_kind(resp));
	}
}

void
imap_pool_set_changed_handler(ImapPool *pool, ImapChangedFn fn, gpointer data)
{
	pool->changed_fn = fn;
	pool->changed_data = data;
}

/* Lock held; drops dead idle connections (returned for freeing outside the lock). */
static void
reap(ImapPool *pool, GPtrArray *dead)
{
	for (guint i = 0; i < pool->conns->len;) {
		PoolConn *pc = pool->conns->pdata[i];

		if (pc->users == 0 && !pc->switching && !imap_conn_is_alive(pc->conn)) {
			g_ptr_array_remove_index(pool->conns, i);
			g_ptr_array_add(dead, pc);
			continue;
		}
		i++;
	}
}

static void
free_dead(GPtrArray *dead)
{
	for (guint i = 0; i < dead->len; i++)
		pool_conn_free(dead->pdata[i]);
	g_ptr_array_set_size(dead, 0);
}

static gboolean
set_cancelled(GCancellable *cancel, GError **error)
{
	if (g_cancellable_is_cancelled(cancel)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_CANCELLED, "cancelled");
		return TRUE;
	}
	return FALSE;
}

/* Opens one connection with the lock released. Lock held on entry and exit. */
static PoolConn *
open_conn(ImapPool *pool, gint64 deadline, GCancellable *cancel, GError **error)
{
	ImapConn *conn;
	PoolConn *pc;
	GError *err = NULL;
	gint64 now = g_get_monotonic_time();

	if (pool->next_attempt > now) {
		if (pool->next_attempt > deadline && pool->last_error) {
			g_set_error(error, IMAP_ERROR, pool->last_error->code, "%s",
				    pool->last_error->message);
			return NULL;
		}
		while (g_get_monotonic_time() < pool->next_attempt) {
			if (set_cancelled(cancel, error))
				return NULL;
			g_cond_wait_until(&pool->cond, &pool->lock,
					  MIN(pool->next_attempt, g_get_monotonic_time() +
								  100 * G_TIME_SPAN_MILLISECOND));
		}
	}
	pool->opening++;
	g_mutex_unlock(&pool->lock);
	conn = imap_conn_open_sync(&pool->cfg, &pool->stats, cancel, &err);
	g_mutex_lock(&pool->lock);
	pool->opening--;
	g_cond_broadcast(&pool->cond);
	if (!conn) {
		if (err->code != IMAP_ERROR_CANCELLED) {
			guint ms = MIN(BACKOFF_MAX_MS, BACKOFF_MIN_MS << MIN(pool->fail_count, 8));

			/* wrong password, TLS or policy: retrying soon only repeats the failure
			 * (and may lock the account) */
			if (err->code == IMAP_ERROR_AUTH || err->code == IMAP_ERROR_TLS ||
			    err->code == IMAP_ERROR_TLS_REQUIRED || err->code == IMAP_ERROR_INSECURE)
				ms = BACKOFF_MAX_MS;

			pool->fail_count++;
			pool->next_attempt = g_get_monotonic_time() + (gint64)ms * 1000;
			g_clear_error(&pool->last_error);
			pool->last_error = g_error_copy(err);
		}
		g_propagate_error(error, err);
		return NULL;
	}
	pool->fail_count = 0;
	pool->next_attempt = 0;
	if (g_atomic_int_compare_and_exchange(&pool->dropped, 1, 0))
		__atomic_add_fetch(&pool->stats.reconnects, 1, __ATOMIC_RELAXED);
	if (!pool->caps)
		pool->caps = g_strdupv((char **)imap_conn_get_caps(conn));
	pc = g_new0(PoolConn, 1);
	pc->pool = pool;
	pc->conn = conn;
	pc->last_used = g_get_monotonic_time();
	imap_conn_set_event_handler(conn, conn_event, pc);
	g_ptr_array_add(pool->conns, pc);
	return pc;
}

/* Lock held. Makes every connection that has @mailbox selected with another UIDVALIDITY
 * than @uidvalidity (0: any) re-select before its next use. */
static void
forget_stale_locked(ImapPool *pool, const char *mailbox, guint32 uidvalidity)
{
	for (guint i = 0; i < pool->conns->len; i++) {
		PoolConn *pc = pool->conns->pdata[i];

		if (pc->mailbox && strcmp(pc->mailbox, mailbox) == 0 &&
		    (uidvalidity == 0 || pc->uidvalidity != uidvalidity))
			g_clear_pointer(&pc->mailbox, g_free);
	}
}

/* Lock held. Applies the UIDVALIDITY announcements the event handlers counted. */
static void
apply_uv_events_locked(ImapPool *pool)
{
	for (guint i = 0; i < pool->conns->len; i++) {
		PoolConn *pc = pool->conns->pdata[i];
		gint ev = g_atomic_int_get(&pc->uv_events);

		if (ev == pc->uv_acked)
			continue;
		pc->uv_acked = ev;
		if (pc->mailbox) {
			g_autofree char *name = g_strdup(pc->mailbox);

			forget_stale_locked(pool, name, 0);
		}
	}
}

static gboolean
usable(PoolConn *pc)
{
	return !pc->switching && imap_conn_is_alive(pc->conn);
}

/* Lock held. Selects @mailbox on @pc (marked switching by the caller, users counted). */
static gboolean
do_select(ImapPool *pool, PoolConn *pc, const char *mailbox, gboolean write,
	  guint32 expect_uidvalidity, const ImapSelectParams *sel, GCancellable *cancel,
	  GError **error)
{
	ImapSelectInfo *info;
	guint64 writes = pool->writes; /* what the SELECT will see */

	g_clear_pointer(&pc->mailbox, g_free);
	g_mutex_unlock(&pool->lock);
	info = imap_select_run(pc->conn, mailbox, write, sel ? sel->known_uidvalidity : 0,
			       sel ? sel->known_modseq : 0, cancel, error);
	g_mutex_lock(&pool->lock);
	if (!info)
		return FALSE;
	pc->mailbox = g_strdup(mailbox);
	pc->seen = writes;
	g_atomic_int_set(&pc->changed, 0); /* what was heard belongs to the old mailbox */
	pc->rw = !info->read_only;
	g_strfreev(pc->permflags);
	pc->permflags =
		pc->rw && info->have_permanentflags ? g_strdupv(info->permanentflags) : NULL;
	pc->uidvalidity = info->uidvalidity;
	g_atomic_int_set(&pc->uv_current, (gint)info->uidvalidity);
	pc->uv_acked = g_atomic_int_get(&pc->uv_events);
	/* the others that still have the old UID map re-select before their next use */
	forget_stale_locked(pool, mailbox, pc->uidvalidity);
	if (sel && sel->info_out)
		*sel->info_out = info;
	else
		imap_select_info_free(info);
	if (expect_uidvalidity && pc->uidvalidity != expect_uidvalidity) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UIDVALIDITY,
			    "UIDVALIDITY of %s changed (%u, expected %u)", mailbox,
			    pc->uidvalidity, expect_uidvalidity);
		return FALSE;
	}
	return TRUE;
}

/* Lock held: has a write through another connection changed @pc's mailbox since @pc's
 * view of it was last brought up to date? */
static gboolean
stale_locked(ImapPool *pool, PoolConn *pc)
{
	gpointer last;

	return pc->mailbox != NULL &&
	       g_hash_table_lookup_extended(pool->written, pc->mailbox, NULL, &last) &&
	       (guint64)GPOINTER_TO_SIZE(last) > pc->seen;
}

/* Lock held, @pc marked switching by the caller: a NOOP, after which the connection's
 * view of its mailbox holds every write made before it (a server such as Dovecot shows a
 * message another session added, or a flag or an expunge it made, only at the end of a
 * session's next command: without it a FETCH of a new UID finds nothing). */
static gboolean
do_refresh(ImapPool *pool, PoolConn *pc, GCancellable *cancel, GError **error)
{
	ImapCmd *cmd = imap_cmd_new("NOOP");
	guint64 writes = pool->writes;
	gboolean ok;

	g_mutex_unlock(&pool->lock);
	ok = imap_cmd_finish(cmd, error) &&
	     imap_conn_run_sync(pc->conn, cmd, 0, NULL, NULL, NULL, NULL, NULL, cancel, error);
	g_mutex_lock(&pool->lock);
	if (ok)
		pc->seen = MAX(pc->seen, writes);
	/* what it heard is what our own writes did, which their callers have applied
	 * already; another client's change in that moment is left to the watcher */
	g_atomic_int_set(&pc->changed, 0);
	return ok;
}

void
imap_pool_note_write(ImapPool *pool, ImapLease *lease, const char *mailbox)
{
	if (mailbox == NULL)
		return;
	g_mutex_lock(&pool->lock);
	pool->writes++;
	g_hash_table_replace(pool->written, g_strdup(mailbox), GSIZE_TO_POINTER(pool->writes));
	/* the connection that made it knows its own write */
	if (lease != NULL && lease->pc->mailbox != NULL && strcmp(lease->pc->mailbox, mailbox) == 0)
		lease->writes = pool->writes;
	g_mutex_unlock(&pool->lock);
}

static ImapLease *
acquire_once(ImapPool *pool, const char *mailbox, ImapAccess access, guint32 expect_uidvalidity,
	     const ImapSelectParams *sel, GCancellable *cancel, GError **error)
{
	/* A little less than the timeout: a caller that waits for this request with the
	 * timeout as its own limit then hears "busy" (IMAP_ERROR_BUSY), not its own timeout. */
	guint wait_ms = pool->cfg.timeout_ms - MIN(pool->cfg.timeout_ms / 10, BUSY_MARGIN_MS);
	gint64 deadline = g_get_monotonic_time() + (gint64)wait_ms * 1000;
	g_autoptr(GPtrArray) dead = g_ptr_array_new();
	PoolConn *pick = NULL;
	gboolean need_select = FALSE;

	g_mutex_lock(&pool->lock);
	for (;;) {
		guint i;
		PoolConn *idle_free = NULL, *idle_any = NULL, *least = NULL, *same_busy = NULL;

		apply_uv_events_locked(pool);
		reap(pool, dead);
		if (dead->len) {
			g_mutex_unlock(&pool->lock);
			free_dead(dead);
			g_mutex_lock(&pool->lock);
			continue;
		}
		if (set_cancelled(cancel, error))
			break;
		/* Preference, for a mailbox: a free connection that has it selected; a free one
		 * with nothing selected; a new connection (below max_conns); a free one that has
		 * another mailbox (re-select); pipelining on a busy one that has it; waiting.
		 * So parallel readers of one mailbox spread over the connections. */
		for (i = 0; i < pool->conns->len; i++) {
			PoolConn *pc = pool->conns->pdata[i];
			gboolean same;

			if (!usable(pc))
				continue;
			same = mailbox && pc->mailbox && strcmp(pc->mailbox, mailbox) == 0 &&
			       (pc->rw || access != IMAP_ACCESS_WRITE);
			if (same && !sel && pc->users == 0) {
				pick = pc;
				break;
			}
			if (mailbox && sel && pc->users == 0 && pc->mailbox &&
			    strcmp(pc->mailbox, mailbox) == 0) {
				/* a fresh SELECT/EXAMINE with QRESYNC: re-select where it is */
				pick = pc;
				need_select = TRUE;
				break;
			}
			if (!same && !sel && pc->users == 0 && mailbox && pc->mailbox &&
			    strcmp(pc->mailbox, mailbox) == 0) {
				/* EXAMINEd here, SELECT needed: upgrade in place */
				pick = pc;
				need_select = TRUE;
				break;
			}
			if (same && !sel && (!same_busy || pc->users < same_busy->users))
				same_busy = pc;
			if (pc->users == 0) {
				if (!pc->mailbox && !idle_free)
					idle_free = pc;
				if (!idle_any || pc->last_used < idle_any->last_used)
					idle_any = pc;
			}
			if (!least || pc->users < least->users)
				least = pc;
		}
		if (pick)
			break;
		if (!mailbox) {
			if (least && (least->users == 0 ||
				      pool->conns->len + pool->opening >= pool->cfg.max_conns)) {
				pick = least;
				break;
			}
		} else if (idle_free) {
			pick = idle_free;
			need_select = TRUE;
			break;
		}
		if (pool->conns->len + pool->opening < pool->cfg.max_conns) {
			pick = open_conn(pool, deadline, cancel, error);
			if (!pick)
				break;
			need_select = mailbox != NULL;
			break;
		}
		if (mailbox && idle_any) {
			pick = idle_any;
			need_select = TRUE;
			break;
		}
		if (same_busy) {
			pick = same_busy;
			break;
		}
		if (g_get_monotonic_time() >= deadline) {
			/* the server is fine, only our connections are all taken (long
			 * downloads): not a timeout of the server, never a reason to go offline */
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_BUSY,
				    "no IMAP connection became free in time");
			break;
		}
		g_cond_wait_until(&pool->cond, &pool->lock,
				  MIN(deadline, g_get_monotonic_time() +
							100 * G_TIME_SPAN_MILLISECOND));
	}
	if (pick) {
		gboolean refresh = !need_select && pick->users == 0 && stale_locked(pool, pick);

		pick->users++;
		pick->last_used = g_get_monotonic_time();
		if (refresh) {
			gboolean ok;

			pick->switching = TRUE;
			ok = do_refresh(pool, pick, cancel, error);
			pick->switching = FALSE;
			g_cond_broadcast(&pool->cond);
			if (!ok) {
				pick->users--;
				pick = NULL;
			}
		}
		if (pick == NULL) {
			/* the NOOP failed: reported below */
		} else if (need_select) {
			gboolean ok;

			pick->switching = TRUE;
			ok = do_select(pool, pick, mailbox, access == IMAP_ACCESS_WRITE,
				       expect_uidvalidity, sel, cancel, error);
			pick->switching = FALSE;
			g_cond_broadcast(&pool->cond);
			if (!ok) {
				pick->users--;
				pick = NULL;
			}
		} else if (mailbox && expect_uidvalidity &&
			   pick->uidvalidity != expect_uidvalidity) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_UIDVALIDITY,
				    "UIDVALIDITY of %s changed (%u, expected %u)", mailbox,
				    pick->uidvalidity, expect_uidvalidity);
			pick->users--;
			pick = NULL;
		}
	}
	if (!pick) {
		g_mutex_unlock(&pool->lock);
		return NULL;
	}
	{
		ImapLease *lease = g_new0(ImapLease, 1);

		lease->pc = pick;
		/* an announcement after this point fails the lease's commands */
		lease->uv_events = pick->uv_acked;
		lease->writes = pool->writes;
		g_mutex_unlock(&pool->lock);
		return lease;
	}
}

ImapLease *
imap_pool_acquire(ImapPool *pool, const char *mailbox, ImapAccess access,
		  guint32 expect_uidvalidity, const ImapSelectParams *sel, GCancellable *cancel,
		  GError **error)
{
	GError *err = NULL;
	ImapLease *lease;

	if (access == IMAP_ACCESS_ANY)
		mailbox = NULL;
	lease = acquire_once(pool, mailbox, access, expect_uidvalidity, sel, cancel, &err);
	if (!lease && err->domain == IMAP_ERROR && err->code == IMAP_ERROR_DISCONNECTED &&
	    mailbox) {
		/* the connection died under the SELECT: once more on a fresh one */
		g_clear_error(&err);
		lease = acquire_once(pool, mailbox, access, expect_uidvalidity, sel, cancel, &err);
	}
	if (!lease)
		g_propagate_error(error, err);
	return lease;
}

void
imap_pool_release(ImapPool *pool, ImapLease *lease)
{
	if (!lease)
		return;
	g_autofree char *mailbox = NULL;
	guint32 uidvalidity = 0;
	guint changed;

	g_mutex_lock(&pool->lock);
	lease->pc->users--;
	lease->pc->last_used = g_get_monotonic_time();
	/* its commands ended after those writes: their answers brought them */
	lease->pc->seen = MAX(lease->pc->seen, lease->writes);
	changed = (guint)g_atomic_int_and(&lease->pc->changed, 0);
	if (changed != 0 && lease->pc->mailbox != NULL) {
		mailbox = g_strdup(lease->pc->mailbox);
		uidvalidity = lease->pc->uidvalidity;
	}
	g_cond_broadcast(&pool->cond);
	g_mutex_unlock(&pool->lock);
	g_free(lease);
	if (mailbox != NULL && pool->changed_fn != NULL)
		pool->changed_fn(mailbox, uidvalidity, changed, pool->changed_data);
}

ImapConn *
imap_lease_conn(ImapLease *lease)
{
	return lease->pc->conn;
}

guint32
imap_lease_uidvalidity(ImapLease *lease)
{
	guint32 v;
	ImapPool *pool = lease->pc->pool;

	g_mutex_lock(&pool->lock);
	v = lease->pc->uidvalidity;
	g_mutex_unlock(&pool->lock);
	return v;
}

gboolean
imap_lease_flag_is_permanent(ImapLease *lease, const char *flag)
{
	ImapPool *pool = lease->pc->pool;
	gboolean ok;

	g_mutex_lock(&pool->lock);
	ok = !lease->pc->rw || lease->pc->permflags == NULL;
	for (guint i = 0; !ok && lease->pc->permflags[i]; i++)
		ok = strcmp(lease->pc->permflags[i], "\\*") == 0 ||
		     g_ascii_strcasecmp(lease->pc->permflags[i], flag) == 0;
	g_mutex_unlock(&pool->lock);
	return ok;
}

void
imap_lease_forget_mailbox(ImapLease *lease)
{
	ImapPool *pool = lease->pc->pool;

	g_mutex_lock(&pool->lock);
	g_clear_pointer(&lease->pc->mailbox, g_free);
	g_mutex_unlock(&pool->lock);
}

void
imap_pool_forget_mailbox(ImapPool *pool, const char *mailbox)
{
	g_mutex_lock(&pool->lock);
	for (guint i = 0; i < pool->conns->len; i++) {
		PoolConn *pc = pool->conns->pdata[i];

		if (pc->mailbox && strcmp(pc->mailbox, mailbox) == 0)
			g_clear_pointer(&pc->mailbox, g_free);
	}
	g_mutex_unlock(&pool->lock);
}

gboolean
imap_lease_run(ImapLease *lease, const ImapPoolOp *op, ImapResponse **tagged_out,
	       GCancellable *cancel, GError **error)
{
	ImapConn *conn = lease->pc->conn;
	ImapCmd *cmd = op->build(conn, op->data, error);
	GError *err = NULL;
	gboolean ok;

	if (!cmd)
		return FALSE;
	ok = imap_conn_run_sync(conn, cmd, op->conn_flags, op->untagged, op->data, op->sink,
				op->sink_data, tagged_out, cancel, &err);
	if (op->mailbox && op->access != IMAP_ACCESS_ANY &&
	    g_atomic_int_get(&lease->pc->uv_events) != lease->uv_events) {
		/* the UID map changed while this ran: its data cannot be trusted */
		g_clear_error(&err);
		g_set_error(&err, IMAP_ERROR, IMAP_ERROR_UIDVALIDITY,
			    "UIDVALIDITY of %s changed during the command", op->mailbox);
		ok = FALSE;
	}
	if (!ok)
		g_propagate_error(error, err);
	return ok;
}

gboolean
imap_pool_run(ImapPool *pool, const ImapPoolOp *op, ImapResponse **tagged_out,
	      GCancellable *cancel, GError **error)
{
	GError *first = NULL;

	for (guint attempt = 0;; attempt++) {
		GError *err = NULL;
		ImapLease *lease = imap_pool_acquire(pool, op->mailbox, op->access,
						     op->expect_uidvalidity, NULL, cancel, &err);
		gboolean ok;

		if (!lease) {
			if (first && err->code != IMAP_ERROR_UIDVALIDITY &&
			    err->code != IMAP_ERROR_CANCELLED && err->code != IMAP_ERROR_BUSY) {
				/* the retry could not even reconnect: report why it died */
				g_debug("retry failed: %s", err->message);
				g_error_free(err);
				err = g_steal_pointer(&first);
			}
			g_clear_error(&first);
			g_propagate_error(error, err);
			return FALSE;
		}
		ok = imap_lease_run(lease, op, tagged_out, cancel, &err);
		imap_pool_release(pool, lease);
		if (ok) {
			g_clear_error(&first);
			return TRUE;
		}
		if (attempt == 0 && op->idempotent && err->domain == IMAP_ERROR &&
		    err->code == IMAP_ERROR_DISCONNECTED && (!op->reset || op->reset(op->data))) {
			g_debug("retrying after: %s", err->message);
			first = g_steal_pointer(&err);
			if (tagged_out)
				g_clear_pointer(tagged_out, imap_response_free);
			continue;
		}
		g_clear_error(&first);
		g_propagate_error(error, err);
		return FALSE;
	}
}

gboolean
imap_pool_connect_sync(ImapPool *pool, GCancellable *cancel, GError **error)
{
	ImapLease *lease = imap_pool_acquire(pool, NULL, IMAP_ACCESS_ANY, 0, NULL, cancel, error);

	if (!lease)
		return FALSE;
	imap_pool_release(pool, lease);
	return TRUE;
}
