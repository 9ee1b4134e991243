/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * append.c: a staged file becomes a new message: checked as RFC 5322, bare LF made CRLF,
 * journalled, sent with APPEND, found (APPENDUID, else by Message-ID and size among the
 * UIDs from the UIDNEXT before the APPEND) and added to the folder's listing. Also the
 * recovery of an APPEND a crash or a lost connection left unconfirmed.
 *
 * The rule for "is a message" (documented in the README and the man page): no NUL byte;
 * the file starts with a header field; every line up to the first empty line is a header
 * field ("Name:" with a name of printable ASCII other than ':') or the continuation of
 * one (starting with a space or a tab); that empty line (the header/body separation) is
 * present; and GMime parses the header into a message. A leading mbox "From " line is
 * not a header field.
 *
 * Finding an APPEND whose answer was lost: by Message-ID and exact size among the UIDs
 * at or above the UIDNEXT the folder had before it; a message without Message-ID by exact
 * size there, each candidate's bytes compared with the staged file. Prefer a duplicate to
 * a loss: when in doubt the message is sent again.
 *
 * Journal entry of an APPEND (hcache.h): mailbox, uidvalidity and uids "UIDNEXT:*" of the
 * target before the APPEND, message_id, size (CRLF bytes), path (the staged file), dest
 * "<internaldate> <flag> ..." (what the APPEND carried); step 0 until the server's OK,
 * then 1 with the new UID.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gmime/gmime.h>
#include <string.h>
#include <unistd.h>

#include "store-private.h"

/* A message larger than this is refused even without APPENDLIMIT (a GBytes in memory). */
#define APPEND_HARD_LIMIT ((guint64)G_MAXINT32)
/* Candidates of the same size compared byte for byte (no Message-ID). */
#define MAX_COMPARE 8

enum { STEP_SENT = 0, STEP_CONFIRMED = 1 };

guint64
store_append_limit(Store *store)
{
	guint64 n = 0;

	if (store->pool != NULL && imap_pool_capability_number(store->pool, "APPENDLIMIT", &n))
		return n;
	return 0;
}

/* ---- the bytes ---------------------------------------------------------------------- */

static gboolean
invalid(GError **error, const char *why)
{
	g_set_error(error, STORE_ERROR, STORE_ERROR_INVALID, "not an RFC 5322 message: %s", why);
	return FALSE;
}

static gboolean
too_big(GError **error, guint64 size, guint64 limit)
{
	g_set_error(error, STORE_ERROR, STORE_ERROR_TOO_BIG,
		    "the message has %" G_GUINT64_FORMAT " bytes, the server takes at most %"
		    G_GUINT64_FORMAT,
		    size, limit);
	return FALSE;
}

/* The staged file with every bare LF made CRLF. */
static GByteArray *
read_crlf(int fd, guint64 limit, GError **error)
{
	g_autoptr(GByteArray) out = g_byte_array_new();
	guint8 buf[65536];
	guint8 prev = 0;
	off_t off = 0;

	if (limit == 0 || limit > APPEND_HARD_LIMIT)
		limit = APPEND_HARD_LIMIT;
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			g_set_error(error, STORE_ERROR, STORE_ERROR_IO, "reading the staged file: %s",
				    g_strerror(errno));
			return NULL;
		}
		if (n == 0)
			break;
		off += n;
		for (ssize_t i = 0; i < n; i++) {
			guint8 c = buf[i];

			if (c == 0) {
				invalid(error, "it contains a NUL byte");
				return NULL;
			}
			if (c == '\n' && prev != '\r')
				g_byte_array_append(out, (const guint8 *)"\r", 1);
			g_byte_array_append(out, &c, 1);
			prev = c;
		}
		if (out->len > limit) {
			too_big(error, out->len, limit);
			return NULL;
		}
	}
	return g_steal_pointer(&out);
}

/* The header rule (see the top of the file) on CRLF bytes; @header_len gets the length
 * of the header section including the empty line. */
static gboolean
check_header(const guint8 *p, gsize n, gsize *header_len, GError **error)
{
	guint fields = 0, line = 1;
	gsize i = 0;

	while (i < n) {
		const guint8 *eol = memmem(p + i, n - i, "\r\n", 2);
		gsize len, j;

		if (eol == NULL)
			break;
		len = eol - (p + i);
		if (len == 0) {
			if (fields == 0)
				return invalid(error, "no header field");
			*header_len = i + 2;
			return TRUE;
		}
		if (p[i] == ' ' || p[i] == '\t') {
			if (fields == 0)
				return invalid(error, "it starts with a continuation line");
		} else {
			for (j = i; j < i + len && p[j] != ':'; j++)
				if (p[j] < 33 || p[j] > 126)
					break;
			if (j == i || j == i + len || p[j] != ':') {
				g_autofree char *why = g_strdup_printf(
					"line %u is not a header field", line);

				return invalid(error, why);
			}
			fields++;
		}
		i += len + 2;
		line++;
	}
	if (fields == 0)
		return invalid(error, "no header field");
	return invalid(error, "no empty line ends the header");
}

typedef struct {
	GBytes *data;	  /* CRLF */
	char *message_id; /* without <>, or NULL */
} Prepared;

static void
prepared_clear(Prepared *pm)
{
	g_clear_pointer(&pm->data, g_bytes_unref);
	g_clear_pointer(&pm->message_id, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Prepared, prepared_clear)

static gboolean
prepare(int fd, guint64 limit, Prepared *pm, GError **error)
{
	g_autoptr(GByteArray) a = read_crlf(fd, limit, error);
	GMimeStream *stream;
	GMimeParser *parser;
	GMimeMessage *m;
	gsize hlen = 0;

	if (a == NULL)
		return FALSE;
	if (!check_header(a->data, a->len, &hlen, error))
		return FALSE;
	store_mime_init();
	stream = g_mime_stream_mem_new_with_buffer((const char *)a->data, hlen);
	parser = g_mime_parser_new_with_stream(stream);
	m = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	if (m == NULL || g_mime_header_list_get_count(g_mime_object_get_header_list(
				 GMIME_OBJECT(m))) == 0) {
		g_clear_object(&m);
		return invalid(error, "GMime cannot parse its header");
	}
	if (g_mime_message_get_message_id(m) != NULL && g_mime_message_get_message_id(m)[0])
		pm->message_id = g_strdup(g_mime_message_get_message_id(m));
	g_object_unref(m);
	pm->data = g_byte_array_free_to_bytes(g_steal_pointer(&a));
	return TRUE;
}

/* ---- finding an APPEND -------------------------------------------------------------- */

static gboolean
same_bytes(Store *store, const char *mailbox, guint32 uv, guint32 uid, GBytes *want,
	   GCancellable *cancel, GError **error)
{
	g_autoptr(GBytes) got = NULL;

	if (imap_fetch_body_sync(store->pool, mailbox, uv, uid, 0, 0, -1, &got, cancel, error) < 0)
		return FALSE;
	return got != NULL && g_bytes_equal(got, want);
}

/* One UID SEARCH for the message @data (Message-ID @message_id, may be NULL) in @mailbox
 * among the UIDs >= @uidnext (0: all) at UIDVALIDITY @uv (0: any). */
static ImapUidSet *
search_appended(Store *store, const char *mailbox, guint32 uv, guint32 uidnext, GBytes *data,
		const char *message_id, GCancellable *cancel, GError **error)
{
	g_autofree char *range = uidnext ? g_strdup_printf("%u:*", uidnext) : NULL;
	g_autofree char *larger = g_strdup_printf("%" G_GSIZE_FORMAT, g_bytes_get_size(data) - 1);
	g_autofree char *smaller = g_strdup_printf("%" G_GSIZE_FORMAT, g_bytes_get_size(data) + 1);
	ImapSearchTerm terms[4];
	guint n = 0;

	if (range != NULL)
		terms[n++] = (ImapSearchTerm){IMAP_SEARCH_UID, range, NULL};
	if (message_id != NULL)
		terms[n++] = (ImapSearchTerm){IMAP_SEARCH_HEADER, message_id, "Message-ID"};
	terms[n++] = (ImapSearchTerm){IMAP_SEARCH_LARGER, larger, NULL};
	terms[n++] = (ImapSearchTerm){IMAP_SEARCH_SMALLER, smaller, NULL};
	return imap_search_sync(store->pool, mailbox, uv, terms, n, cancel, error);
}

typedef struct {
	guint32 want;
	guint32 found;
	guint32 uidnext;
} Pick;

static gboolean
pick_last(guint32 uid, gpointer data)
{
	Pick *p = data;

	if (uid != G_MAXUINT32 && uid >= p->uidnext)
		p->found = uid;
	return TRUE;
}

static gboolean
collect(guint32 uid, gpointer data)
{
	GArray *a = data;

	if (uid != G_MAXUINT32)
		g_array_append_val(a, uid);
	return a->len < MAX_COMPARE;
}

/* *@uid: the message @data in @mailbox at or above @uidnext, 0 when absent (the pool
 * brings a connection that missed our APPEND up to date before it searches). "n:*"
 * always matches the highest UID: below @uidnext it is filtered out. */
static gboolean
find_appended(Store *store, const char *mailbox, guint32 uv, guint32 uidnext, GBytes *data,
	      const char *message_id, guint32 *uid, GCancellable *cancel, GError **error)
{
	g_autoptr(ImapUidSet) set = NULL;
	g_autoptr(GArray) cand = g_array_new(FALSE, FALSE, sizeof(guint32));

	*uid = 0;
	set = search_appended(store, mailbox, uv, uidnext, data, message_id, cancel, error);
	if (set == NULL)
		return FALSE;
	if (message_id != NULL) {
		Pick p = {0, 0, uidnext};

		imap_uidset_foreach(set, pick_last, &p);
		*uid = p.found;
		return TRUE;
	}
	/* no Message-ID: same size is not enough, the bytes must be ours */
	imap_uidset_foreach(set, collect, cand);
	for (guint i = cand->len; i-- > 0;) {
		guint32 u = g_array_index(cand, guint32, i);
		g_autoptr(GError) local = NULL;

		if (u < uidnext)
			continue;
		if (same_bytes(store, mailbox, uv, u, data, cancel, &local)) {
			*uid = u;
			return TRUE;
		}
		if (local != NULL && !g_error_matches(local, IMAP_ERROR, IMAP_ERROR_EXPUNGEISSUED)) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
	}
	return TRUE;
}

/* The APPEND failed in a way that leaves its outcome unknown: the command may have
 * reached the server. */
static gboolean
outcome_unknown(const GError *e)
{
	return e != NULL && e->domain == IMAP_ERROR &&
	       (e->code == IMAP_ERROR_DISCONNECTED || e->code == IMAP_ERROR_TIMEOUT ||
		e->code == IMAP_ERROR_CANCELLED || e->code == IMAP_ERROR_PROTOCOL ||
		e->code == IMAP_ERROR_LIMIT);
}

/* One APPEND whose answer may be lost: when it was, the message is looked for and sent
 * again only when absent (once). */
static gboolean
append_once(Store *store, const char *mailbox, guint32 uv, guint32 uidnext, Prepared *pm,
	    const char *const *flags, gint64 internaldate, guint32 *new_uv, guint32 *new_uid,
	    GCancellable *cancel, GError **error)
{
	GError *local = NULL;

	if (imap_append_sync(store->pool, mailbox, pm->data, flags, internaldate, new_uv, new_uid,
			     cancel, &local))
		return TRUE;
	if (!outcome_unknown(local) || g_cancellable_is_cancelled(cancel)) {
		g_propagate_error(error, local);
		return FALSE;
	}
	g_message("APPEND to %s: %s; looking for the message before sending it again", mailbox,
		  local->message);
	g_clear_error(&local);
	if (!find_appended(store, mailbox, uv, uidnext, pm->data, pm->message_id, new_uid, cancel,
			   error))
		return FALSE;
	if (*new_uid != 0) {
		*new_uv = uv;
		return TRUE;
	}
	return imap_append_sync(store->pool, mailbox, pm->data, flags, internaldate, new_uv,
				new_uid, cancel, error);
}

/* ---- the APPEND of a staged file ---------------------------------------------------- */

gboolean
store_staged_append_sync(Store *store, StoreStaged *s, StoreFolder *folder,
			 const char *const *flags, gint64 internaldate, StoreMessage **out,
			 GCancellable *cancel, GError **error)
{
	g_auto(Prepared) pm = {NULL, NULL};
	HcacheJournalEntry e = {0};
	ImapStatus st = {0};
	GError *local = NULL;
	Hcache *hc = store_hc(store);
	GCancellable *call;
	guint32 uv = 0, uid = 0;
	gint64 id = 0;
	gboolean ok = FALSE;

	*out = NULL;
	if (!prepare(s->fd, store_append_limit(store), &pm, error))
		return FALSE;
	if (store_offline_check(store)) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_OFFLINE,
			    "offline: a new message needs the server");
		return FALSE;
	}
	call = store_call_begin(store, cancel, error);
	if (call == NULL)
		return FALSE;
	/* UIDNEXT before the APPEND: where to look for it if its answer is lost */
	if (!imap_status_sync(store->pool, folder->name,
			      IMAP_STATUS_UIDNEXT | IMAP_STATUS_UIDVALIDITY, &st, call, error))
		goto out;
	if (hc != NULL && s->path != NULL) {
		e.op = HCACHE_JOURNAL_APPEND;
		e.mailbox = folder->name;
		e.uidvalidity = e.dest_uidvalidity = st.uidvalidity;
		e.dest_uidnext = st.uidnext;
		e.flags = flags ? g_strjoinv(" ", (char **)flags) : NULL;
		e.internaldate = internaldate;
		e.message_id = pm.message_id;
		e.size = g_bytes_get_size(pm.data);
		e.path = s->path;
		id = hcache_journal_add(hc, &e, &local);
		g_free(e.flags);
		if (id == 0) {
			store_cache_error(store, local);
			g_clear_error(&local);
		} else {
			s->keep = TRUE; /* the journal names it now */
		}
	}
	store_crash_point(store, "append-before-send");
	if (!append_once(store, folder->name, st.uidvalidity, st.uidnext, &pm, flags, internaldate,
			 &uv, &uid, call, &local)) {
		if (id != 0 && !outcome_unknown(local)) {
			/* the server said no: nothing was stored */
			if (!hcache_journal_remove(hc, id, NULL))
				g_message("journal: cannot remove entry %" G_GINT64_FORMAT, id);
			s->keep = FALSE;
		}
		g_propagate_error(error, local);
		goto out;
	}
	store_crash_point(store, "append-after-ok");
	if (uv == 0)
		uv = st.uidvalidity;
	if (uid == 0 && !find_appended(store, folder->name, uv, st.uidnext, pm.data,
				       pm.message_id, &uid, call, &local)) {
		/* it is on the server; only its name waits for the next listing */
		g_message("APPEND to %s: cannot find the new message: %s", folder->name,
			  local->message);
		g_clear_error(&local);
	}
	if (id != 0) {
		if (!hcache_journal_remove(hc, id, &local)) {
			store_cache_error(store, local);
			g_clear_error(&local);
		}
		s->keep = FALSE;
	}
	if (s->path != NULL) {
		unlink(s->path);
		g_clear_pointer(&s->path, g_free);
	}
	ok = TRUE;
	if (uid != 0 && uv != 0) {
		g_autoptr(ImapUidSet) set = imap_uidset_new();
		g_autoptr(GPtrArray) got = NULL;

		imap_uidset_add(set, uid);
		got = store_local_add_sync(store, folder, uv, set, call, &local);
		if (got != NULL && got->len > 0)
			*out = store_message_ref(g_ptr_array_index(got, 0));
		else if (got == NULL) {
			g_message("APPEND to %s: the new message UID %u is not listed yet: %s",
				  folder->name, uid, local->message);
			g_clear_error(&local);
		}
	}
out:
	store_call_end(store, call);
	return ok;
}

/* ---- recovery ----------------------------------------------------------------------- */

gboolean
store_recover_append_sync(Store *store, HcacheJournalEntry *e, GCancellable *cancel,
			  GError **error)
{
	g_auto(Prepared) pm = {NULL, NULL};
	g_auto(GStrv) flags = NULL;
	guint32 uidnext = 0, uv = e->uidvalidity, uid = 0, new_uv = 0;
	gint64 internaldate = 0;
	GError *local = NULL;
	GCancellable *call;
	gboolean ok = FALSE;
	int fd;

	if (e->step >= STEP_CONFIRMED || e->path == NULL) {
		/* the server confirmed it (or there is nothing to send) */
		if (e->path != NULL)
			unlink(e->path);
		return TRUE;
	}
	fd = open(e->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		g_message("journal: the staged file of an APPEND to %s is gone (%s): settled",
			  e->mailbox, g_strerror(errno));
		return TRUE;
	}
	ok = prepare(fd, 0, &pm, &local);
	close(fd);
	if (!ok) {
		g_message("journal: the staged file of an APPEND to %s: %s", e->mailbox,
			  local->message);
		g_clear_error(&local);
		unlink(e->path);
		return TRUE;
	}
	ok = FALSE;
	uidnext = e->dest_uidnext;
	internaldate = e->internaldate;
	flags = e->flags && *e->flags ? g_strsplit(e->flags, " ", -1) : NULL;
	call = store_call_begin(store, cancel, error);
	if (call == NULL)
		return FALSE;
	if (!find_appended(store, e->mailbox, uv, uidnext, pm.data, pm.message_id, &uid, call,
			   &local)) {
		if (!g_error_matches(local, IMAP_ERROR, IMAP_ERROR_UIDVALIDITY))
			goto out;
		/* the folder was recreated: look at all of it */
		g_clear_error(&local);
		if (!find_appended(store, e->mailbox, 0, 0, pm.data, pm.message_id, &uid, call,
				   &local))
			goto out;
	}
	if (uid != 0) {
		g_message("journal: the APPEND to %s arrived (UID %u)", e->mailbox, uid);
	} else {
		g_message("journal: the APPEND to %s did not arrive: sending it again", e->mailbox);
		if (!append_once(store, e->mailbox, uv, uidnext, &pm,
				 (const char *const *)flags, internaldate, &new_uv, &uid, call,
				 &local))
			goto out;
	}
	unlink(e->path);
	ok = TRUE;
out:
	store_call_end(store, call);
	if (local != NULL)
		g_propagate_error(error, local);
	return ok;
}
