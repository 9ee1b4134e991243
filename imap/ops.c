/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ops.c: the operations of imap.h, each a command (or a short sequence on one leased
 * connection) built with cmd.c and decoded with resp.c. Reading never changes the mailbox
 * (EXAMINE, BODY.PEEK); moves never lose mail (UID MOVE, or COPY then \Deleted and UID
 * EXPUNGE of exactly the moved UIDs); nothing here ever sends a bare EXPUNGE.
 */
#define G_LOG_DOMAIN "imapfs-imap"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "pool.h"
#include "resp.h"

#define MAX_UIDSET_TEXT 8000 /* split longer UID sets over several commands */
#define SPLIT_COUNT 2000

static ImapCmd *
new_cmd(ImapConn *conn, const char *verb)
{
	ImapCmd *cmd = imap_cmd_new(verb);

	imap_conn_cmd_options(conn, cmd);
	return cmd;
}

static ImapCmd *
finish(ImapCmd *cmd, GError **error)
{
	if (!imap_cmd_finish(cmd, error)) {
		imap_cmd_free(cmd);
		return NULL;
	}
	return cmd;
}

static gboolean
require_cap(ImapPool *pool, const char *cap, GError **error)
{
	if (imap_pool_has_capability(pool, cap))
		return TRUE;
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED, "the server lacks %s", cap);
	return FALSE;
}

/* Makes sure capabilities are known (the first connection is opened lazily). */
static gboolean
ensure_connected(ImapPool *pool, GCancellable *cancel, GError **error)
{
	if (imap_pool_has_capability(pool, "IMAP4rev1") || imap_pool_has_capability(pool, "IMAP4rev2"))
		return TRUE;
	return imap_pool_connect_sync(pool, cancel, error);
}

/* ---- NAMESPACE ---------------------------------------------------------------------- */

typedef struct {
	ImapNamespaces *ns;
} NsData;

static ImapCmd *
ns_build(ImapConn *conn, gpointer data, GError **error)
{
	return finish(new_cmd(conn, "NAMESPACE"), error);
}

static gboolean
ns_untagged(ImapConn *conn, const ImapResponse *resp, gpointer data)
{
	NsData *d = data;
	g_autoptr(GError) err = NULL;

	if (imap_resp_untagged_kind(resp) != IMAP_UNTAGGED_NAMESPACE)
		return FALSE;
	imap_namespaces_free(d->ns);
	d->ns = imap_resp_namespace(resp, imap_conn_utf8(conn), &err);
	if (!d->ns)
		g_message("bad NAMESPACE response: %s", err->message);
	return TRUE;
}

static GPtrArray *list_one(ImapPool *pool, const char *ref, const char *pattern,
			   gboolean with_status, GCancellable *cancel, GError **error);

gboolean
imap_namespace_sync(ImapPool *pool, ImapNamespaces **out, GCancellable *cancel, GError **error)
{
	NsData d = { NULL };
	ImapPoolOp op = { .access = IMAP_ACCESS_ANY, .idempotent = TRUE, .build = ns_build,
			  .conn_flags = IMAP_CONN_SERIAL,
			  .untagged = ns_untagged, .data = &d };

	if (!ensure_connected(pool, cancel, error))
		return FALSE;
	if (imap_pool_has_capability(pool, "NAMESPACE")) {
		if (!imap_pool_run(pool, &op, NULL, cancel, error)) {
			imap_namespaces_free(d.ns);
			return FALSE;
		}
	}
	if (!d.ns) {
		/* No NAMESPACE: one personal namespace "" with the delimiter of LIST "" "" */
		g_autoptr(GPtrArray) l = list_one(pool, "", "", FALSE, cancel, error);
		ImapNamespace *n;

		if (!l)
			return FALSE;
		d.ns = g_new0(ImapNamespaces, 1);
		d.ns->personal = g_ptr_array_new();
		d.ns->other = g_ptr_array_new();
		d.ns->shared = g_ptr_array_new();
		n = g_new0(ImapNamespace, 1);
		n->prefix = g_strdup("");
		n->delim = l->len ? ((ImapMailboxInfo *)l->pdata[0])->delim : '/';
		g_ptr_array_add(d.ns->personal, n);
	}
	*out = d.ns;
	return TRUE;
}

/* ---- LIST --------------------------------------------------------------------------- */

typedef struct {
	const char *ref;
	const char *pattern;
	gboolean with_status;
	gboolean special_use;
	GPtrArray *out;      /* of ImapMailboxInfo* */
	GHashTable *by_name; /* borrowed names -> info */
} ListData;

static ImapCmd *
list_build(ImapConn *conn, gpointer data, GError **error)
{
	ListData *d = data;
	ImapCmd *cmd = new_cmd(conn, "LIST");
	gboolean ext = imap_conn_has_cap(conn, "LIST-EXTENDED");
	gboolean su = ext && imap_conn_has_cap(conn, "SPECIAL-USE");
	gboolean st = d->with_status && imap_conn_has_cap(conn, "LIST-STATUS");

	imap_cmd_mailbox(cmd, d->ref);
	imap_cmd_mailbox(cmd, d->pattern);
	if (su || st) {
		imap_cmd_raw(cmd, "RETURN (");
		if (su)
			imap_cmd_raw(cmd, "SPECIAL-USE");
		if (st)
			imap_cmd_raw(cmd, imap_conn_condstore(conn)
						  ? "STATUS (MESSAGES UIDNEXT UIDVALIDITY UNSEEN "
						    "HIGHESTMODSEQ)"
						  : "STATUS (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)");
		imap_cmd_raw(cmd, ")");
	}
	return finish(cmd, error);
}

static gboolean
list_untagged(ImapConn *conn, const ImapResponse *resp, gpointer data)
{
	ListData *d = data;
	g_autoptr(GError) err = NULL;

	switch (imap_resp_untagged_kind(resp)) {
	case IMAP_UNTAGGED_LIST: {
		ImapMailboxInfo *info = imap_resp_list(resp, imap_conn_utf8(conn), &err);

		if (!info) {
			g_message("bad LIST response: %s", err->message);
			return TRUE;
		}
		g_ptr_array_add(d->out, info);
		g_hash_table_replace(d->by_name, info->name, info);
		return TRUE;
	}
	case IMAP_UNTAGGED_STATUS_DATA: {
		g_autofree char *name = NULL;
		ImapStatus st = { 0 };
		ImapMailboxInfo *info;

		if (!d->with_status)
			return FALSE;
		if (!imap_resp_status(resp, imap_conn_utf8(conn), &name, &st, &err))
			return TRUE;
		info = g_hash_table_lookup(d->by_name, name);
		if (info)
			info->status = st;
		return TRUE;
	}
	default:
		return FALSE;
	}
}

static gboolean
list_reset(gpointer data)
{
	ListData *d = data;

	g_hash_table_remove_all(d->by_name);
	g_ptr_array_set_size(d->out, 0);
	return TRUE;
}

static GPtrArray *
list_one(ImapPool *pool, const char *ref, const char *pattern, gboolean with_status,
	 GCancellable *cancel, GError **error)
{
	ListData d = { ref, pattern, with_status, FALSE, NULL, NULL };
	ImapPoolOp op = { .access = IMAP_ACCESS_ANY, .idempotent = TRUE, .build = list_build,
			  .conn_flags = IMAP_CONN_SERIAL,
			  .untagged = list_untagged, .reset = list_reset, .data = &d };
	gboolean ok;

	d.out = g_ptr_array_new_with_free_func((GDestroyNotify)imap_mailbox_info_free);
	d.by_name = g_hash_table_new(g_str_hash, g_str_equal);
	ok = imap_pool_run(pool, &op, NULL, cancel, error);
	g_hash_table_unref(d.by_name);
	if (!ok) {
		g_ptr_array_unref(d.out);
		return NULL;
	}
	return d.out;
}

GPtrArray *
imap_list_sync(ImapPool *pool, const char *reference, const char *pattern,
	       GCancellable *cancel, GError **error)
{
	return list_one(pool, reference ? reference : "", pattern, FALSE, cancel, error);
}

static void
merge_list(GPtrArray *all, GHashTable *seen, GPtrArray *more)
{
	while (more->len) {
		ImapMailboxInfo *info = g_ptr_array_steal_index(more, 0);

		if (g_hash_table_contains(seen, info->name)) {
			imap_mailbox_info_free(info);
			continue;
		}
		g_hash_table_add(seen, info->name);
		g_ptr_array_add(all, info);
	}
}

GPtrArray *
imap_list_all_sync(ImapPool *pool, gboolean with_status, GCancellable *cancel, GError **error)
{
	g_autoptr(ImapNamespaces) ns = NULL;
	g_autoptr(GPtrArray) all = NULL;
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GPtrArray) first = NULL;
	GPtrArray *groups[3];

	if (!imap_namespace_sync(pool, &ns, cancel, error))
		return NULL;
	first = list_one(pool, "", "*", with_status, cancel, error);
	if (!first)
		return NULL;
	all = g_ptr_array_new_with_free_func((GDestroyNotify)imap_mailbox_info_free);
	merge_list(all, seen, first);
	groups[0] = ns->personal;
	groups[1] = ns->other;
	groups[2] = ns->shared;
	for (guint g = 0; g < 3; g++) {
		for (guint i = 0; i < groups[g]->len; i++) {
			ImapNamespace *n = groups[g]->pdata[i];
			gboolean reached = FALSE;
			g_autofree char *pattern = NULL;
			g_autoptr(GPtrArray) more = NULL;

			if (!n->prefix || !*n->prefix)
				continue;
			for (guint j = 0; j < all->len && !reached; j++) {
				ImapMailboxInfo *info = all->pdata[j];

				reached = g_str_has_prefix(info->name, n->prefix);
			}
			if (reached)
				continue;
			pattern = g_strconcat(n->prefix, "*", NULL);
			more = list_one(pool, "", pattern, with_status, cancel, error);
			if (!more)
				return NULL;
			merge_list(all, seen, more);
		}
	}
	g_hash_table_remove_all(seen);
	return g_steal_pointer(&all);
}

/* ---- STATUS ------------------------------------------------------------------------- */

typedef struct {
	const char *mailbox;
	guint items;
	ImapStatus *out;
	gboolean got;
} StatusData;

static ImapCmd *
status_build(ImapConn *conn, gpointer data, GError **error)
{
	StatusData *d = data;
	ImapCmd *cmd = new_cmd(conn, "STATUS");

	imap_cmd_mailbox(cmd, d->mailbox);
	imap_cmd_raw(cmd, "(");
	if (d->items & IMAP_STATUS_MESSAGES)
		imap_cmd_raw(cmd, "MESSAGES");
	if (d->items & IMAP_STATUS_RECENT)
		imap_cmd_raw(cmd, "RECENT");
	if (d->items & IMAP_STATUS_UIDNEXT)
		imap_cmd_raw(cmd, "UIDNEXT");
	if (d->items & IMAP_STATUS_UIDVALIDITY)
		imap_cmd_raw(cmd, "UIDVALIDITY");
	if (d->items & IMAP_STATUS_UNSEEN)
		imap_cmd_raw(cmd, "UNSEEN");
	if ((d->items & IMAP_STATUS_HIGHESTMODSEQ) && imap_conn_has_cap(conn, "CONDSTORE"))
		imap_cmd_raw(cmd, "HIGHESTMODSEQ");
	if ((d->items & IMAP_STATUS_SIZE) && imap_conn_has_cap(conn, "STATUS=SIZE"))
		imap_cmd_raw(cmd, "SIZE");
	imap_cmd_raw(cmd, ")");
	return finish(cmd, error);
}

static gboolean
status_untagged(ImapConn *conn, const ImapResponse *resp, gpointer data)
{
	StatusData *d = data;
	g_autofree char *name = NULL;
	g_autoptr(GError) err = NULL;
	ImapStatus st = { 0 };

	if (d->got || imap_resp_untagged_kind(resp) != IMAP_UNTAGGED_STATUS_DATA)
		return FALSE;
	if (!imap_resp_status(resp, imap_conn_utf8(conn), &name, &st, &err)) {
		g_message("bad STATUS response: %s", err->message);
		return TRUE;
	}
	if (g_strcmp0(name, d->mailbox) != 0 &&
	    !(g_ascii_strcasecmp(d->mailbox, "INBOX") == 0 &&
	      g_ascii_strcasecmp(name, "INBOX") == 0))
		return FALSE;
	*d->out = st;
	d->got = TRUE;
	return TRUE;
}

gboolean
imap_status_sync(ImapPool *pool, const char *mailbox, guint items, ImapStatus *out,
		 GCancellable *cancel, GError **error)
{
	StatusData d = { mailbox, items, out, FALSE };
	ImapPoolOp op = { .access = IMAP_ACCESS_ANY, .idempotent = TRUE, .build = status_build,
			  .conn_flags = IMAP_CONN_SERIAL,
			  .untagged = status_untagged, .data = &d };

	memset(out, 0, sizeof(*out));
	if (!imap_pool_run(pool, &op, NULL, cancel, error)) {
		if (error && *error && (*error)->code == IMAP_ERROR_NO)
			(*error)->code = IMAP_ERROR_NONEXISTENT;
		return FALSE;
	}
	if (!d.got) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL, "no STATUS data for %s",
			    mailbox);
		return FALSE;
	}
	return TRUE;
}

/* ---- EXAMINE ------------------------------------------------------------------------ */

ImapSelectInfo *
imap_examine_sync(ImapPool *pool, const char *mailbox, guint32 known_uidvalidity,
		  guint64 known_modseq, GCancellable *cancel, GError **error)
{
	ImapSelectInfo *info = NULL;
	ImapSelectParams sel = { known_uidvalidity, known_modseq, &info };
	ImapLease *lease = imap_pool_acquire(pool, mailbox, IMAP_ACCESS_READ, 0, &sel, cancel,
					     error);

	if (!lease) {
		imap_select_info_free(info);
		return NULL;
	}
	imap_pool_release(pool, lease);
	return info;
}

/* ---- FETCH -------------------------------------------------------------------------- */

typedef struct {
	const ImapUidSet *uids;
	const ImapUidSet *part;
	guint items;
	guint64 changedsince;
	ImapMessageFn fn;
	gpointer user_data;
	ImapUidSet *seen; /* UIDs delivered by the command in flight */
} FetchData;

static ImapCmd *
fetch_build(ImapConn *conn, gpointer data, GError **error)
{
	FetchData *d = data;
	ImapCmd *cmd = new_cmd(conn, "UID FETCH");

	imap_cmd_uidset(cmd, d->part);
	imap_cmd_raw(cmd, "(UID");
	if (d->items & IMAP_FETCH_FLAGS)
		imap_cmd_raw(cmd, "FLAGS");
	if (d->items & IMAP_FETCH_SIZE)
		imap_cmd_raw(cmd, "RFC822.SIZE");
	if (d->items & IMAP_FETCH_INTERNALDATE)
		imap_cmd_raw(cmd, "INTERNALDATE");
	if (d->items & IMAP_FETCH_ENVELOPE)
		imap_cmd_raw(cmd, "ENVELOPE");
	if ((d->items & IMAP_FETCH_MODSEQ) && imap_conn_condstore(conn))
		imap_cmd_raw(cmd, "MODSEQ");
	if (d->items & IMAP_FETCH_BODYSTRUCTURE)
		imap_cmd_raw(cmd, "BODYSTRUCTURE");
	if (d->items & IMAP_FETCH_HEADER)
		imap_cmd_raw(cmd, "BODY.PEEK[HEADER]");
	if (d->items & IMAP_FETCH_REFERENCES)
		imap_cmd_raw(cmd, "BODY.PEEK[HEADER.FIELDS (REFERENCES)]");
	imap_cmd_raw(cmd, ")");
	if (d->changedsince && imap_conn_condstore(conn)) {
		imap_cmd_raw(cmd, "(CHANGEDSINCE");
		imap_cmd_number(cmd, d->changedsince);
		imap_cmd_raw(cmd, ")");
	}
	return finish(cmd, error);
}

static gboolean
fetch_untagged(ImapConn *conn, const ImapResponse *resp, gpointer data)
{
	FetchData *d = data;
	g_autoptr(GError) err = NULL;
	g_autoptr(ImapMessage) msg = NULL;
	guint32 seq;

	if (imap_resp_untagged_kind(resp) != IMAP_UNTAGGED_FETCH)
		return FALSE;
	msg = imap_resp_fetch(resp, &seq, &err);
	if (!msg) {
		g_message("bad FETCH response: %s", err->message);
		return FALSE;
	}
	if (!(msg->have & IMAP_FETCH_UID) || !imap_uidset_contains(d->part, msg->uid) ||
	    imap_uidset_contains(d->seen, msg->uid))
		return FALSE; /* unsolicited, or another command's (pipelined, same UIDs) */
	imap_uidset_add(d->seen, msg->uid);
	if (d->fn)
		d->fn(msg, d->user_data);
	return TRUE;
}

static gboolean
fetch_reset(gpointer data)
{
	/* a retry delivers the messages again (callers treat them as updates) */
	return TRUE;
}

gboolean
imap_fetch_sync(ImapPool *pool, const char *mailbox, guint32 expect_uidvalidity,
		const ImapUidSet *uids, guint items, guint64 changedsince, ImapMessageFn fn,
		gpointer user_data, GCancellable *cancel, GError **error)
{
	FetchData d = { uids, uids, items, changedsince, fn, user_data, NULL };
	ImapPoolOp op = { .mailbox = mailbox, .access = IMAP_ACCESS_READ,
			  .expect_uidvalidity = expect_uidvalidity, .idempotent = TRUE,
			  .build = fetch_build, .untagged = fetch_untagged, .reset = fetch_reset,
			  .data = &d };
	g_autofree char *text = NULL;
	g_autoptr(GPtrArray) parts = NULL;
	gboolean ok = TRUE;

	if (!uids || imap_uidset_is_empty(uids))
		return TRUE;
	d.seen = imap_uidset_new();
	text = imap_uidset_to_string(uids);
	if (strlen(text) <= MAX_UIDSET_TEXT) {
		ok = imap_pool_run(pool, &op, NULL, cancel, error);
	} else {
		parts = imap_uidset_split(uids, SPLIT_COUNT);
		for (guint i = 0; ok && i < parts->len; i++) {
			d.part = parts->pdata[i];
			ok = imap_pool_run(pool, &op, NULL, cancel, error);
		}
	}
	imap_uidset_free(d.seen);
	return ok;
}

/* ---- FETCH body --------------------------------------------------------------------- */

/* Servers that answer BODY.PEEK[]<o.l> with the whole body (no origin, or origin 0 and
 * every byte): the bytes that came are used (the asked slice cut out of them) and the pool
 * remembers not to ask that server for ranges again; from then on a range is a whole
 * fetch whose first @offset bytes are skipped on the way in. */
typedef struct {
	ImapPool *pool;
	guint32 uid;
	guint64 offset, length;
	gboolean mark_seen;
	int fd;
	gint64 start;       /* fd position before the first byte, -1 when not seekable */
	GByteArray *buf;    /* fd < 0 */
	guint64 written;
	guint64 skip, keep; /* body_write drops the first @skip bytes, keeps @keep at most */
	gboolean whole;     /* this attempt asked for the whole body */
	gboolean got;
	gboolean write_failed;
	int write_errno;
	gboolean bad_range; /* the server's data starts after the offset asked for */
	ImapStats *stats;
} BodyData;

static ImapCmd *
body_build(ImapConn *conn, gpointer data, GError **error)
{
	BodyData *d = data;
	ImapCmd *cmd = new_cmd(conn, "UID FETCH");
	ImapUidSet *set = imap_uidset_new();
	g_autofree char *item = NULL;

	imap_uidset_add(set, d->uid);
	imap_cmd_uidset(cmd, set);
	imap_uidset_free(set);
	d->whole = d->length == 0 || imap_pool_ranges_ignored(d->pool);
	d->skip = 0;
	d->keep = G_MAXUINT64;
	if (d->length > 0 && d->whole) {
		/* the server ignores ranges: cut the slice out of the whole body (with an fd,
		 * everything from @offset on: the caller learns where the message ends) */
		d->skip = d->offset;
		d->keep = d->fd < 0 ? d->length : G_MAXUINT64;
	}
	if (!d->whole)
		item = g_strdup_printf("%s<%" G_GUINT64_FORMAT ".%" G_GUINT64_FORMAT ">)",
				       d->mark_seen ? "BODY[]" : "BODY.PEEK[]", d->offset,
				       d->length);
	else
		item = g_strdup_printf("%s)", d->mark_seen ? "BODY[]" : "BODY.PEEK[]");
	imap_cmd_raw(cmd, "(UID");
	imap_cmd_raw(cmd, item);
	return finish(cmd, error);
}

static gboolean
body_write(BodyData *d, const guint8 *p, gsize n)
{
	if (d->skip > 0) {
		gsize k = (gsize)MIN((guint64)n, d->skip);

		d->skip -= k;
		p += k;
		n -= k;
	}
	n = (gsize)MIN((guint64)n, d->keep);
	d->keep -= n;
	if (n == 0)
		return TRUE;
	if (d->fd < 0) {
		g_byte_array_append(d->buf, p, n);
		d->written += n;
		return TRUE;
	}
	while (n > 0) {
		ssize_t r = write(d->fd, p, n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			d->write_failed = TRUE;
			d->write_errno = errno;
			return FALSE;
		}
		p += r;
		n -= r;
		d->written += r;
	}
	return TRUE;
}

static gboolean
body_sink(const guint8 *data, gsize len, gpointer user_data)
{
	return body_write(user_data, data, len);
}

/* A streamed literal of @n bytes went to the fd unfiltered, but its first d->skip bytes
 * are before the range asked for: move the rest down to where the range begins (the fd
 * must be seekable and readable, as the store's temp files are). */
static void
unskip_streamed(BodyData *d, guint64 n)
{
	guint8 buf[65536];
	guint64 skip = d->skip;

	d->skip = 0;
	if (skip == 0)
		return;
	if (d->start < 0) {
		d->bad_range = TRUE; /* not seekable: cannot take the bytes back */
		return;
	}
	for (guint64 pos = skip; pos < n;) {
		ssize_t r = pread(d->fd, buf, (size_t)MIN((guint64)sizeof(buf), n - pos),
				  d->start + (off_t)pos);

		if (r <= 0) {
			d->bad_range = TRUE; /* e.g. a write-only fd: cannot take the bytes back */
			return;
		}
		if (pwrite(d->fd, buf, r, d->start + (off_t)(pos - skip)) != r) {
			d->write_failed = TRUE;
			d->write_errno = errno;
			return;
		}
		pos += r;
	}
	d->written = n > skip ? n - skip : 0;
	/* what lies beyond were our own (now moved) bytes */
	if (ftruncate(d->fd, d->start + (off_t)d->written) < 0)
		g_debug("body fd: ftruncate: %s", g_strerror(errno));
	if (lseek(d->fd, d->start + (off_t)d->written, SEEK_SET) < 0) {
		d->write_failed = TRUE;
		d->write_errno = errno;
	}
}

static gboolean
body_untagged(ImapConn *conn, const ImapResponse *resp, gpointer data)
{
	BodyData *d = data;
	g_autoptr(GError) err = NULL;
	g_autoptr(ImapMessage) msg = NULL;
	ImapFetchSection sec = { 0 };
	guint32 seq;

	if (d->got || imap_resp_untagged_kind(resp) != IMAP_UNTAGGED_FETCH)
		return FALSE;
	msg = imap_resp_fetch(resp, &seq, &err);
	if (!msg || !(msg->have & IMAP_FETCH_UID) || msg->uid != d->uid)
		return FALSE;
	if (!imap_resp_fetch_section(resp, &sec, &err))
		return FALSE; /* e.g. a FLAGS update for the same UID */
	d->got = TRUE;
	if (!d->whole && sec.data && sec.data->type != IMAP_ARG_NIL) {
		guint64 origin = sec.origin < 0 ? 0 : (guint64)sec.origin;

		if (origin > d->offset) {
			d->bad_range = TRUE;
		} else if (origin < d->offset || sec.data->len > d->length) {
			/* more than was asked for: the server ignores ranges */
			if (!imap_pool_ranges_ignored(d->pool))
				g_message("the server answers partial fetches with more data than "
					  "asked for: fetching whole bodies from now on");
			imap_pool_set_ranges_ignored(d->pool);
			d->skip = d->offset - origin;
			d->keep = d->fd < 0 ? d->length : G_MAXUINT64;
			if (sec.data->type == IMAP_ARG_LITERAL && sec.data->streamed)
				unskip_streamed(d, sec.data->len);
		}
	}
	if (d->bad_range) {
		/* nothing of it is usable */
	} else if (sec.data && sec.data->type == IMAP_ARG_LITERAL && sec.data->streamed) {
		/* bytes already went through the sink */
	} else if (sec.data && (sec.data->type == IMAP_ARG_LITERAL ||
				sec.data->type == IMAP_ARG_QUOTED)) {
		__atomic_add_fetch(&d->stats->body_bytes, sec.data->len, __ATOMIC_RELAXED);
		body_write(d, (const guint8 *)sec.data->str, sec.data->len);
	}
	g_free(sec.section);
	return TRUE;
}

static gboolean
body_reset(gpointer data)
{
	BodyData *d = data;

	if (d->written > 0)
		return FALSE;
	d->got = FALSE;
	d->bad_range = FALSE;
	return TRUE;
}

gint64
imap_fetch_body_sync(ImapPool *pool, const char *mailbox, guint32 expect_uidvalidity,
		     guint32 uid, guint64 offset, guint64 length, int fd, GBytes **out,
		     GCancellable *cancel, GError **error)
{
	BodyData d = { .pool = pool, .uid = uid, .offset = offset, .length = length,
		       .mark_seen = imap_pool_get_config(pool)->mark_seen, .fd = fd, .start = -1,
		       .stats = imap_pool_stats(pool) };
	ImapPoolOp op = { .mailbox = mailbox,
			  .access = d.mark_seen ? IMAP_ACCESS_WRITE : IMAP_ACCESS_READ,
			  .expect_uidvalidity = expect_uidvalidity, .idempotent = TRUE,
			  .build = body_build, .untagged = body_untagged, .reset = body_reset,
			  .data = &d };
	gboolean ok;

	if (uid == 0) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID, "UID 0");
		return -1;
	}
	if (fd >= 0) {
		op.sink = body_sink;
		op.sink_data = &d;
		op.conn_flags = IMAP_CONN_EXCLUSIVE;
		d.start = lseek(fd, 0, SEEK_CUR);
	} else {
		d.buf = g_byte_array_new();
	}
	ok = imap_pool_run(pool, &op, NULL, cancel, error);
	if (!ok) {
		if (d.buf)
			g_byte_array_unref(d.buf);
		if (error && *error && (*error)->code == IMAP_ERROR_PROTOCOL && d.write_failed) {
			g_clear_error(error);
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_FAILED, "writing the body: %s",
				    g_strerror(d.write_errno));
		}
		return -1;
	}
	if (d.write_failed) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_FAILED, "writing the body: %s",
			    g_strerror(d.write_errno));
		if (d.buf)
			g_byte_array_unref(d.buf);
		return -1;
	}
	if (d.bad_range) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL,
			    "the server sent other bytes of message UID %u than asked for", uid);
		if (d.buf)
			g_byte_array_unref(d.buf);
		return -1;
	}
	if (!d.got) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_EXPUNGEISSUED,
			    "message UID %u no longer exists in %s", uid, mailbox);
		if (d.buf)
			g_byte_array_unref(d.buf);
		return -1;
	}
	if (d.buf && out)
		*out = g_byte_array_free_to_bytes(d.buf);
	else if (d.buf)
		g_byte_array_unref(d.buf);
	return (gint64)d.written;
}

/* ---- STORE -------------------------------------------------------------------------- */

typedef struct {
	const ImapUidSet *uids;
	ImapStoreMode mode;
	const char *const *flags;
	guint64 unchangedsince;
	ImapUidSet *echoed; /* not .SILENT: the UIDs the server answered with FETCH, else NULL */
} StoreData;

static ImapCmd *
store_build(ImapConn *conn, gpointer data, GError **error)
{
	StoreData *d = data;
	ImapCmd *cmd = new_cmd(conn, "UID STORE");

	imap_cmd_uidset(cmd, d->uids);
	if (d->unchangedsince && imap_conn_condstore(conn)) {
		imap_cmd_raw(cmd, "(UNCHANGEDSINCE");
		imap_cmd_number(cmd, d->unchangedsince);
		imap_cmd_raw(cmd, ")");
	}
	if (d->echoed != NULL)
		imap_cmd_raw(cmd, d->mode == IMAP_STORE_ADD	 ? "+FLAGS"
				  : d->mode == IMAP_STORE_REMOVE ? "-FLAGS"
								 : "FLAGS");
	else
		imap_cmd_raw(cmd, d->mode == IMAP_STORE_ADD	 ? "+FLAGS.SILENT"
				  : d->mode == IMAP_STORE_REMOVE ? "-FLAGS.SILENT"
								 : "FLAGS.SILENT");
	imap_cmd_raw(cmd, "(");
	for (guint i = 0; d->flags && d->flags[i]; i++)
		imap_cmd_flag(cmd, d->flags[i]);
	imap_cmd_raw(cmd, ")");
	return finish(cmd, error);
}

static gboolean
store_untagged(ImapConn *conn, const ImapResponse *resp, gpointer data)
{
	StoreData *d = data;
	g_autoptr(GError) err = NULL;
	g_autoptr(ImapMessage) msg = NULL;
	guint32 seq;

	/* FETCH FLAGS echoes (MODSEQ under CONDSTORE) of the stored UIDs */
	if (imap_resp_untagged_kind(resp) != IMAP_UNTAGGED_FETCH)
		return FALSE;
	msg = imap_resp_fetch(resp, &seq, &err);
	if (!msg || !(msg->have & IMAP_FETCH_UID) || !imap_uidset_contains(d->uids, msg->uid))
		return FALSE;
	/* runs on the connection's I/O thread, the caller waits: no lock needed */
	if (d->echoed && (msg->have & IMAP_FETCH_FLAGS))
		imap_uidset_add(d->echoed, msg->uid);
	return TRUE;
}

static gboolean
store_run(ImapPool *pool, const char *mailbox, guint32 expect_uidvalidity, StoreData *d,
	  ImapUidSet **modified, GCancellable *cancel, GError **error)
{
	ImapPoolOp op = { .mailbox = mailbox, .access = IMAP_ACCESS_WRITE,
			  .expect_uidvalidity = expect_uidvalidity, .build = store_build,
			  .untagged = store_untagged, .data = d };
	g_autoptr(ImapResponse) tagged = NULL;
	g_autoptr(ImapCmd) check = imap_cmd_new("UID STORE");
	ImapLease *lease;
	gboolean ok;

	if (modified)
		*modified = NULL;
	if (!d->uids || imap_uidset_is_empty(d->uids)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID, "empty UID set");
		return FALSE;
	}
	/* validate the flags before anything touches the network */
	for (guint i = 0; d->flags && d->flags[i]; i++)
		imap_cmd_flag(check, d->flags[i]);
	if (!imap_cmd_finish(check, error))
		return FALSE;
	/* A lease of our own (not imap_pool_run: a STORE is never retried anyway) so that
	 * the PERMANENTFLAGS of the SELECT it holds are checked before the command is sent:
	 * a server would take a refused keyword for this session only and lose it. */
	lease = imap_pool_acquire(pool, mailbox, IMAP_ACCESS_WRITE, expect_uidvalidity, NULL,
				  cancel, error);
	if (!lease)
		return FALSE;
	for (guint i = 0; d->mode != IMAP_STORE_REMOVE && d->flags && d->flags[i]; i++) {
		if (!imap_lease_flag_is_permanent(lease, d->flags[i])) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_NOT_PERMANENT,
				    "%s does not keep the flag %s (PERMANENTFLAGS)", mailbox,
				    d->flags[i]);
			imap_pool_release(pool, lease);
			return FALSE;
		}
	}
	ok = imap_lease_run(lease, &op, &tagged, cancel, error);
	imap_pool_note_write(pool, lease, mailbox);
	imap_pool_release(pool, lease);
	if (!ok)
		return FALSE;
	if (modified && tagged && tagged->code &&
	    g_ascii_strcasecmp(tagged->code, "MODIFIED") == 0)
		*modified = imap_resp_code_modified(tagged);
	return TRUE;
}

gboolean
imap_store_flags_sync(ImapPool *pool, const char *mailbox, guint32 expect_uidvalidity,
		      const ImapUidSet *uids, ImapStoreMode mode, const char *const *flags,
		      guint64 unchangedsince, ImapUidSet **modified, GCancellable *cancel,
		      GError **error)
{
	StoreData d = { uids, mode, flags, unchangedsince, NULL };

	return store_run(pool, mailbox, expect_uidvalidity, &d, modified, cancel, error);
}

gboolean
imap_store_flags_echo_sync(ImapPool *pool, const char *mailbox, guint32 expect_uidvalidity,
			   const ImapUidSet *uids, ImapStoreMode mode, const char *const *flags,
			   ImapUidSet **echoed, GCancellable *cancel, GError **error)
{
	StoreData d = { uids, mode, flags, 0, imap_uidset_new() };
	gboolean ok = store_run(pool, mailbox, expect_uidvalidity, &d, NULL, cancel, error);

	if (ok && echoed)
		*echoed = g_steal_pointer(&d.echoed);
	imap_uidset_free(d.echoed);
	return ok;
}

/* ---- COPY / MOVE / EXPUNGE ---------------------------------------------------------- */

typedef struct {
	const char *verb;
	const ImapUidSet *uids;
	const char *dest;
	guint32 uidvalidity;
	ImapUidSet *dst;
	gboolean got_copyuid;
} CopyData;

static ImapCmd *
copy_build(ImapConn *conn, gpointer data, GError **error)
{
	CopyData *d = data;
	ImapCmd *cmd = new_cmd(conn, d->verb);

	imap_cmd_uidset(cmd, d->uids);
	if (d->dest)
		imap_cmd_mailbox(cmd, d->dest);
	return finish(cmd, error);
}

static void
take_copyuid(CopyData *d, const ImapResponse *resp)
{
	guint32 v;
	ImapUidSet *src = NULL, *dst = NULL;

	if (!resp || !resp->code || g_ascii_strcasecmp(resp->code, "COPYUID") != 0)
		return;
	if (imap_resp_code_copyuid(resp, &v, &src, &dst)) {
		d->uidvalidity = v;
		imap_uidset_free(d->dst);
		d->dst = dst;
		d->got_copyuid = TRUE;
		imap_uidset_free(src);
	}
}

static gboolean
copy_untagged(ImapConn *conn, const ImapResponse *resp, gpointer data)
{
	CopyData *d = data;

	/* UID MOVE sends COPYUID in an untagged OK before the expunges */
	if (imap_resp_untagged_kind(resp) == IMAP_UNTAGGED_STATUS &&
	    resp->status == IMAP_STATUS_OK && resp->code &&
	    g_ascii_strcasecmp(resp->code, "COPYUID") == 0) {
		take_copyuid(d, resp);
		return TRUE;
	}
	return FALSE;
}

static void
copy_out(CopyData *d, guint32 *dest_uidvalidity, ImapUidSet **dest_uids)
{
	if (dest_uidvalidity)
		*dest_uidvalidity = d->got_copyuid ? d->uidvalidity : 0;
	if (dest_uids)
		*dest_uids = g_steal_pointer(&d->dst);
	imap_uidset_free(d->dst);
	d->dst = NULL;
}

static gboolean
copy_run(ImapPool *pool, ImapLease *lease, CopyData *d, GCancellable *cancel, GError **error)
{
	ImapPoolOp op = { .build = copy_build, .untagged = copy_untagged, .data = d };
	g_autoptr(ImapResponse) tagged = NULL;

	if (!imap_lease_run(lease, &op, &tagged, cancel, error)) {
		if (d->dest && error && *error && (*error)->code == IMAP_ERROR_NO &&
		    tagged && tagged->code && g_ascii_strcasecmp(tagged->code, "TRYCREATE") == 0)
			(*error)->code = IMAP_ERROR_NONEXISTENT;
		return FALSE;
	}
	take_copyuid(d, tagged);
	return TRUE;
}

gboolean
imap_copy_sync(ImapPool *pool, const char *mailbox, guint32 expect_uidvalidity,
	       const ImapUidSet *uids, const char *dest, guint32 *dest_uidvalidity,
	       ImapUidSet **dest_uids, GCancellable *cancel, GError **error)
{
	CopyData d = { "UID COPY", uids, dest, 0, NULL, FALSE };
	ImapLease *lease;
	gboolean ok;

	if (!uids || imap_uidset_is_empty(uids)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID, "empty UID set");
		return FALSE;
	}
	lease = imap_pool_acquire(pool, mailbox, IMAP_ACCESS_READ, expect_uidvalidity, NULL,
				  cancel, error);
	if (!lease)
		return FALSE;
	ok = copy_run(pool, lease, &d, cancel, error);
	imap_pool_note_write(pool, lease, dest);
	imap_pool_release(pool, lease);
	if (ok)
		copy_out(&d, dest_uidvalidity, dest_uids);
	imap_uidset_free(d.dst);
	return ok;
}

gboolean
imap_move_sync(ImapPool *pool, const char *mailbox, guint32 expect_uidvalidity,
	       const ImapUidSet *uids, const char *dest, guint32 *dest_uidvalidity,
	       ImapUidSet **dest_uids, GCancellable *cancel, GError **error)
{
	CopyData d = { "UID MOVE", uids, dest, 0, NULL, FALSE };
	ImapLease *lease;
	ImapConn *conn;
	gboolean ok;

	if (!uids || imap_uidset_is_empty(uids)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID, "empty UID set");
		return FALSE;
	}
	lease = imap_pool_acquire(pool, mailbox, IMAP_ACCESS_WRITE, expect_uidvalidity, NULL,
				  cancel, error);
	if (!lease)
		return FALSE;
	conn = imap_lease_conn(lease);
	if (imap_conn_has_cap(conn, "MOVE")) {
		ok = copy_run(pool, lease, &d, cancel, error);
	} else {
		d.verb = "UID COPY";
		ok = copy_run(pool, lease, &d, cancel, error);
		if (ok && !imap_conn_has_cap(conn, "UIDPLUS")) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED,
				    "copied, but the original stays: the server has neither MOVE "
				    "nor UIDPLUS (UID EXPUNGE)");
			ok = FALSE;
		} else if (ok) {
			static const char *const deleted[] = { "\\Deleted", NULL };
			StoreData sd = { uids, IMAP_STORE_ADD, deleted, 0 };
			ImapPoolOp sop = { .build = store_build, .untagged = store_untagged,
					   .data = &sd };
			CopyData ed = { "UID EXPUNGE", uids, NULL, 0, NULL, FALSE };

			ok = imap_lease_run(lease, &sop, NULL, cancel, error) &&
			     copy_run(pool, lease, &ed, cancel, error);
			if (!ok)
				g_prefix_error(error, "copied, but removing the original failed: ");
		}
	}
	imap_pool_note_write(pool, lease, mailbox);
	imap_pool_note_write(pool, lease, dest);
	imap_pool_release(pool, lease);
	if (ok)
		copy_out(&d, dest_uidvalidity, dest_uids);
	imap_uidset_free(d.dst);
	return ok;
}

gboolean
imap_expunge_uids_sync(ImapPool *pool, const char *mailbox, guint32 expect_uidvalidity,
		       const ImapUidSet *uids, GCancellable *cancel, GError **error)
{
	CopyData d = { "UID EXPUNGE", uids, NULL, 0, NULL, FALSE };
	ImapLease *lease;
	gboolean ok;

	if (!uids || imap_uidset_is_empty(uids)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID, "empty UID set");
		return FALSE;
	}
	if (!ensure_connected(pool, cancel, error) || !require_cap(pool, "UIDPLUS", error))
		return FALSE;
	lease = imap_pool_acquire(pool, mailbox, IMAP_ACCESS_WRITE, expect_uidvalidity, NULL,
				  cancel, error);
	if (!lease)
		return FALSE;
	/* (a \Deleted STORE made on another connection is in this one's view: the pool
	 * refreshes a connection that missed a write before leasing it out) */
	ok = copy_run(pool, lease, &d, cancel, error);
	imap_pool_note_write(pool, lease, mailbox);
	imap_pool_release(pool, lease);
	imap_uidset_free(d.dst);
	return ok;
}

/* ---- APPEND ------------------------------------------------------------------------- */

typedef struct {
	const char *mailbox;
	GBytes *message;
	const char *const *flags;
	gint64 internaldate;
} AppendData;

static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static ImapCmd *
append_build(ImapConn *conn, gpointer data, GError **error)
{
	AppendData *d = data;
	ImapCmd *cmd = new_cmd(conn, "APPEND");

	imap_cmd_mailbox(cmd, d->mailbox);
	if (d->flags && d->flags[0]) {
		imap_cmd_raw(cmd, "(");
		for (guint i = 0; d->flags[i]; i++)
			imap_cmd_flag(cmd, d->flags[i]);
		imap_cmd_raw(cmd, ")");
	}
	if (d->internaldate > 0) {
		g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(d->internaldate);
		g_autofree char *date = NULL;

		if (dt) {
			date = g_strdup_printf("%02d-%s-%04d %02d:%02d:%02d +0000",
					       g_date_time_get_day_of_month(dt),
					       months[g_date_time_get_month(dt) - 1],
					       g_date_time_get_year(dt), g_date_time_get_hour(dt),
					       g_date_time_get_minute(dt),
					       g_date_time_get_second(dt));
			imap_cmd_string(cmd, date, -1);
		}
	}
	imap_cmd_literal(cmd, d->message);
	return finish(cmd, error);
}

gboolean
imap_append_sync(ImapPool *pool, const char *mailbox, GBytes *message, const char *const *flags,
		 gint64 internaldate, guint32 *uidvalidity, guint32 *uid, GCancellable *cancel,
		 GError **error)
{
	AppendData d = { mailbox, message, flags, internaldate };
	ImapPoolOp op = { .access = IMAP_ACCESS_ANY, .build = append_build, .data = &d };
	g_autoptr(ImapResponse) tagged = NULL;
	g_autoptr(ImapCmd) check = imap_cmd_new("APPEND");
	guint32 v = 0, u = 0;
	gboolean ok;

	for (guint i = 0; flags && flags[i]; i++)
		imap_cmd_flag(check, flags[i]);
	if (!imap_cmd_finish(check, error))
		return FALSE;
	ok = imap_pool_run(pool, &op, &tagged, cancel, error);
	imap_pool_note_write(pool, NULL, mailbox);
	if (!ok) {
		if (error && *error && (*error)->code == IMAP_ERROR_NO && tagged &&
		    tagged->code && g_ascii_strcasecmp(tagged->code, "TRYCREATE") == 0)
			(*error)->code = IMAP_ERROR_NONEXISTENT;
		return FALSE;
	}
	if (tagged)
		imap_resp_code_appenduid(tagged, &v, &u);
	if (uidvalidity)
		*uidvalidity = v;
	if (uid)
		*uid = u;
	return TRUE;
}

/* ---- CREATE / DELETE / RENAME ------------------------------------------------------- */

typedef struct {
	const char *verb;
	const char *a, *b;
} MboxData;

static ImapCmd *
mbox_build(ImapConn *conn, gpointer data, GError **error)
{
	MboxData *d = data;
	ImapCmd *cmd = new_cmd(conn, d->verb);

	imap_cmd_mailbox(cmd, d->a);
	if (d->b)
		imap_cmd_mailbox(cmd, d->b);
	return finish(cmd, error);
}

static gboolean
mbox_run(ImapPool *pool, MboxData *d, GCancellable *cancel, GError **error)
{
	ImapPoolOp op = { .access = IMAP_ACCESS_ANY, .build = mbox_build, .data = d };

	return imap_pool_run(pool, &op, NULL, cancel, error);
}

gboolean
imap_create_sync(ImapPool *pool, const char *mailbox, GCancellable *cancel, GError **error)
{
	MboxData d = { "CREATE", mailbox, NULL };

	return mbox_run(pool, &d, cancel, error);
}

gboolean
imap_delete_sync(ImapPool *pool, const char *mailbox, GCancellable *cancel, GError **error)
{
	MboxData d = { "DELETE", mailbox, NULL };

	if (g_ascii_strcasecmp(mailbox, "INBOX") == 0) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID, "INBOX cannot be deleted");
		return FALSE;
	}
	imap_pool_forget_mailbox(pool, mailbox);
	if (!mbox_run(pool, &d, cancel, error))
		return FALSE;
	imap_pool_forget_mailbox(pool, mailbox);
	return TRUE;
}

gboolean
imap_rename_sync(ImapPool *pool, const char *from, const char *to, GCancellable *cancel,
		 GError **error)
{
	MboxData d = { "RENAME", from, to };

	if (g_ascii_strcasecmp(from, "INBOX") == 0) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID, "INBOX is never renamed");
		return FALSE;
	}
	imap_pool_forget_mailbox(pool, from);
	if (!mbox_run(pool, &d, cancel, error))
		return FALSE;
	imap_pool_forget_mailbox(pool, from);
	imap_pool_forget_mailbox(pool, to);
	return TRUE;
}

/* ---- QUOTA -------------------------------------------------------------------------- */

typedef struct {
	const char *mailbox;
	ImapQuota *out;
	char **roots;
	gboolean got;
} QuotaData;

static ImapCmd *
quota_build(ImapConn *conn, gpointer data, GError **error)
{
	QuotaData *d = data;
	ImapCmd *cmd = new_cmd(conn, "GETQUOTAROOT");

	imap_cmd_mailbox(cmd, d->mailbox);
	return finish(cmd, error);
}

static gboolean
quota_untagged(ImapConn *conn, const ImapResponse *resp, gpointer data)
{
	QuotaData *d = data;
	g_autoptr(GError) err = NULL;

	switch (imap_resp_untagged_kind(resp)) {
	case IMAP_UNTAGGED_QUOTAROOT:
		g_strfreev(d->roots);
		d->roots = imap_resp_quotaroot(resp, imap_conn_utf8(conn), &err);
		return TRUE;
	case IMAP_UNTAGGED_QUOTA: {
		ImapQuota q = { 0 };

		if (!imap_resp_quota(resp, &q, &err))
			return TRUE;
		if (!d->got) {
			*d->out = q;
			d->got = TRUE;
		} else {
			g_free(q.root);
		}
		return TRUE;
	}
	default:
		return FALSE;
	}
}

gboolean
imap_quota_sync(ImapPool *pool, const char *mailbox, ImapQuota *out, GCancellable *cancel,
		GError **error)
{
	QuotaData d = { mailbox, out, NULL, FALSE };
	ImapPoolOp op = { .access = IMAP_ACCESS_ANY, .idempotent = TRUE, .build = quota_build,
			  .conn_flags = IMAP_CONN_SERIAL,
			  .untagged = quota_untagged, .data = &d };

	memset(out, 0, sizeof(*out));
	out->storage_limit_kb = G_MAXUINT64;
	out->messages_limit = G_MAXUINT64;
	if (!ensure_connected(pool, cancel, error) || !require_cap(pool, "QUOTA", error))
		return FALSE;
	if (!imap_pool_run(pool, &op, NULL, cancel, error)) {
		g_strfreev(d.roots);
		if (d.got)
			g_clear_pointer(&out->root, g_free);
		return FALSE;
	}
	if (!d.got) {
		out->root = d.roots && d.roots[0] ? g_strdup(d.roots[0]) : NULL;
		out->storage_limit_kb = G_MAXUINT64;
		out->messages_limit = G_MAXUINT64;
	}
	g_strfreev(d.roots);
	return TRUE;
}

/* ---- SEARCH ------------------------------------------------------------------------- */

typedef struct {
	const ImapSearchTerm *terms;
	guint n_terms;
	ImapUidSet *result;
	gboolean got;
} SearchData;

static gboolean
needs_charset(const ImapSearchTerm *terms, guint n)
{
	for (guint i = 0; i < n; i++) {
		if (!terms[i].value)
			continue;
		for (const char *p = terms[i].value; *p; p++)
			if ((guchar)*p >= 0x80)
				return TRUE;
	}
	return FALSE;
}

static void
search_number(ImapCmd *cmd, const char *value)
{
	guint64 n;

	if (value && g_ascii_string_to_unsigned(value, 10, 0, G_MAXUINT64, &n, NULL))
		imap_cmd_number(cmd, n);
	else
		imap_cmd_atom(cmd, "\x01"); /* invalid: puts the command in the error state */
}

/* An RFC 5322 field name: printable US-ASCII but ':' (and no space). */
static gboolean
header_name_ok(const char *name)
{
	if (name == NULL || *name == '\0')
		return FALSE;
	for (const char *p = name; *p; p++)
		if ((guchar)*p <= 0x20 || (guchar)*p >= 0x7f || *p == ':')
			return FALSE;
	return TRUE;
}

static ImapCmd *
search_build(ImapConn *conn, gpointer data, GError **error)
{
	SearchData *d = data;
	ImapCmd *cmd = new_cmd(conn, "UID SEARCH");

	if (imap_conn_has_cap(conn, "ESEARCH"))
		imap_cmd_raw(cmd, "RETURN (ALL)");
	if (!imap_conn_utf8(conn) && needs_charset(d->terms, d->n_terms))
		imap_cmd_raw(cmd, "CHARSET UTF-8");
	if (d->n_terms == 0)
		imap_cmd_raw(cmd, "ALL");
	for (guint i = 0; i < d->n_terms; i++) {
		const ImapSearchTerm *t = &d->terms[i];

		switch (t->key) {
		case IMAP_SEARCH_ALL:
			imap_cmd_raw(cmd, "ALL");
			break;
		case IMAP_SEARCH_UID: {
			g_autoptr(GError) err = NULL;
			g_autoptr(ImapUidSet) set = t->value ? imap_uidset_parse(t->value, &err) :
							       NULL;

			imap_cmd_raw(cmd, "UID");
			if (set)
				imap_cmd_uidset(cmd, set);
			else
				imap_cmd_atom(cmd, "\x01");
			break;
		}
		case IMAP_SEARCH_SUBJECT:
		case IMAP_SEARCH_FROM:
		case IMAP_SEARCH_TO:
		case IMAP_SEARCH_BODY:
		case IMAP_SEARCH_TEXT:
			imap_cmd_raw(cmd, t->key == IMAP_SEARCH_SUBJECT ? "SUBJECT" :
					  t->key == IMAP_SEARCH_FROM ? "FROM" :
					  t->key == IMAP_SEARCH_TO ? "TO" :
					  t->key == IMAP_SEARCH_BODY ? "BODY" : "TEXT");
			imap_cmd_string(cmd, t->value ? t->value : "", -1);
			break;
		case IMAP_SEARCH_KEYWORD:
		case IMAP_SEARCH_UNKEYWORD:
			imap_cmd_raw(cmd, t->key == IMAP_SEARCH_KEYWORD ? "KEYWORD" : "UNKEYWORD");
			if (t->value && t->value[0] != '\\')
				imap_cmd_flag(cmd, t->value);
			else
				imap_cmd_atom(cmd, "\x01");
			break;
		case IMAP_SEARCH_SEEN:
			imap_cmd_raw(cmd, "SEEN");
			break;
		case IMAP_SEARCH_UNSEEN:
			imap_cmd_raw(cmd, "UNSEEN");
			break;
		case IMAP_SEARCH_FLAGGED:
			imap_cmd_raw(cmd, "FLAGGED");
			break;
		case IMAP_SEARCH_DELETED:
			imap_cmd_raw(cmd, "DELETED");
			break;
		case IMAP_SEARCH_SINCE:
		case IMAP_SEARCH_BEFORE:
			imap_cmd_raw(cmd, t->key == IMAP_SEARCH_SINCE ? "SINCE" : "BEFORE");
			imap_cmd_atom(cmd, t->value ? t->value : "\x01");
			break;
		case IMAP_SEARCH_LARGER:
		case IMAP_SEARCH_SMALLER:
			imap_cmd_raw(cmd, t->key == IMAP_SEARCH_LARGER ? "LARGER" : "SMALLER");
			search_number(cmd, t->value);
			break;
		case IMAP_SEARCH_MODSEQ:
			imap_cmd_raw(cmd, "MODSEQ");
			search_number(cmd, t->value);
			break;
		case IMAP_SEARCH_HEADER:
			imap_cmd_raw(cmd, "HEADER");
			if (header_name_ok(t->header))
				imap_cmd_astring(cmd, t->header);
			else
				imap_cmd_atom(cmd, "\x01");
			imap_cmd_string(cmd, t->value ? t->value : "", -1);
			break;
		default:
			imap_cmd_atom(cmd, "\x01");
			break;
		}
	}
	return finish(cmd, error);
}

static gboolean
search_untagged(ImapConn *conn, const ImapResponse *resp, gpointer data)
{
	SearchData *d = data;
	g_autoptr(GError) err = NULL;
	ImapUntaggedKind kind = imap_resp_untagged_kind(resp);
	ImapUidSet *set = NULL;

	if (d->got || (kind != IMAP_UNTAGGED_SEARCH && kind != IMAP_UNTAGGED_ESEARCH))
		return FALSE;
	if (kind == IMAP_UNTAGGED_SEARCH) {
		guint64 modseq = 0;

		set = imap_resp_search(resp, &modseq, &err);
	} else {
		g_autofree char *tag = NULL;

		set = imap_resp_esearch(resp, &tag, &err);
	}
	if (!set) {
		g_message("bad SEARCH response: %s", err->message);
		return TRUE;
	}
	imap_uidset_free(d->result);
	d->result = set;
	d->got = TRUE;
	return TRUE;
}

static gboolean
search_reset(gpointer data)
{
	SearchData *d = data;

	g_clear_pointer(&d->result, imap_uidset_free);
	d->got = FALSE;
	return TRUE;
}

ImapUidSet *
imap_search_sync(ImapPool *pool, const char *mailbox, guint32 expect_uidvalidity,
		 const ImapSearchTerm *terms, guint n_terms, GCancellable *cancel,
		 GError **error)
{
	SearchData d = { terms, n_terms, NULL, FALSE };
	ImapPoolOp op = { .mailbox = mailbox, .access = IMAP_ACCESS_READ,
			  .expect_uidvalidity = expect_uidvalidity, .idempotent = TRUE,
			  .conn_flags = IMAP_CONN_SERIAL,
			  .build = search_build, .untagged = search_untagged,
			  .reset = search_reset, .data = &d };

	if (!imap_pool_run(pool, &op, NULL, cancel, error)) {
		imap_uidset_free(d.result);
		return NULL;
	}
	return d.result ? d.result : imap_uidset_new();
}

/* ---- NOOP on a selected mailbox ------------------------------------------------------ */

static ImapCmd *
noop_build(ImapConn *conn, gpointer data, GError **error)
{
	return finish(new_cmd(conn, "NOOP"), error);
}

gboolean
imap_noop_sync(ImapPool *pool, const char *mailbox, GCancellable *cancel, GError **error)
{
	ImapPoolOp op = { .mailbox = mailbox, .access = IMAP_ACCESS_READ, .idempotent = TRUE,
			  .build = noop_build };

	return imap_pool_run(pool, &op, NULL, cancel, error);
}
