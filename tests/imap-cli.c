/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * imap-cli: a small command-line driver of the imap/ library, for protocol tests, fault
 * tests and benchmarks. One command per run, simple line-oriented output on stdout,
 * errors as one line "imap-cli: <IMAP_ERROR_NAME>: message" on stderr and exit 1.
 * The password comes from $IMAPFS_PASSWORD (never argv); see /work/notes/imap-cli.md.
 */
#define G_LOG_DOMAIN "imap-cli"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imap.h"
#include "pool.h"

static const char *const error_names[] = {
	"IMAP_ERROR_FAILED",       "IMAP_ERROR_PROTOCOL",      "IMAP_ERROR_LIMIT",
	"IMAP_ERROR_TIMEOUT",      "IMAP_ERROR_DISCONNECTED",  "IMAP_ERROR_CONNECT",
	"IMAP_ERROR_TLS",          "IMAP_ERROR_TLS_REQUIRED",  "IMAP_ERROR_AUTH",
	"IMAP_ERROR_INSECURE",     "IMAP_ERROR_NO",            "IMAP_ERROR_BAD",
	"IMAP_ERROR_NONEXISTENT",  "IMAP_ERROR_ALREADYEXISTS", "IMAP_ERROR_NOPERM",
	"IMAP_ERROR_OVERQUOTA",    "IMAP_ERROR_LIMIT_SERVER",  "IMAP_ERROR_INUSE",
	"IMAP_ERROR_UNAVAILABLE",  "IMAP_ERROR_CANNOT",        "IMAP_ERROR_EXPUNGEISSUED",
	"IMAP_ERROR_CORRUPTION",   "IMAP_ERROR_UIDVALIDITY",   "IMAP_ERROR_UNSUPPORTED",
	"IMAP_ERROR_CANCELLED",    "IMAP_ERROR_INVALID",       "IMAP_ERROR_BUSY",
};

static void
print_error(const GError *error)
{
	const char *name = "IMAP_ERROR_FAILED";

	if (error && error->domain == IMAP_ERROR && error->code >= 0 &&
	    (gsize)error->code < G_N_ELEMENTS(error_names))
		name = error_names[error->code];
	fflush(stdout);
	fprintf(stderr, "imap-cli: %s: %s\n", name, error ? error->message : "failed");
}

static int G_GNUC_NORETURN
die_error(const GError *error)
{
	print_error(error);
	exit(1);
}

static int G_GNUC_NORETURN
usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "imap-cli: IMAP_ERROR_INVALID: %s\n", msg);
	fprintf(stderr,
		"usage: imap-cli --host H [--port P] [--tls implicit|starttls|none] [--cafile F]\n"
		"         [--fingerprint SHA256:..] [--timeout MS] [--trace FILE] [--allow-insecure]\n"
		"         [--max-conns N] [--mark-seen] [--stats] [--uidvalidity N]\n"
		"         [--cancel-after MS] --user U CMD ARGS...\n"
		"password in $IMAPFS_PASSWORD, OAuth token in $IMAPFS_OAUTH_TOKEN\n"
		"commands: login capability namespace list [--status] [REF PATTERN] status MBOX\n"
		"  examine MBOX [UIDVALIDITY MODSEQ]  fetch MBOX UIDSET ITEM...\n"
		"  body MBOX UID [OFFSET LEN] [--mem]  store MBOX UIDSET +|-|= [FLAG...]\n"
		"  move|copy MBOX UIDSET DEST  expunge MBOX UIDSET  append MBOX FILE [FLAG...]\n"
		"  create|delete MBOX  rename A B  quota MBOX  search MBOX [KEY [VALUE]]...\n"
		"  idle MBOX SECONDS  notify SECONDS [SUBTREE...]  stats\n"
		"  parallel[-mix] MBOX THREADS ROUNDS\n");
	exit(2);
}

static guint64
parse_u64(const char *s, const char *what)
{
	guint64 v;

	if (!g_ascii_string_to_unsigned(s, 10, 0, G_MAXUINT64, &v, NULL)) {
		g_autofree char *m = g_strdup_printf("bad %s: %s", what, s);
		usage(m);
	}
	return v;
}

static ImapUidSet *
parse_set(const char *s)
{
	g_autoptr(GError) error = NULL;
	ImapUidSet *set = imap_uidset_parse(s, &error);

	if (!set) {
		g_prefix_error(&error, "bad UID set %s: ", s);
		error->domain = IMAP_ERROR;
		error->code = IMAP_ERROR_INVALID;
		die_error(error);
	}
	return set;
}

static void
need_args(int argc, int n)
{
	if (argc < n)
		usage("missing arguments");
}

static guint32 opt_uidvalidity;   /* --uidvalidity: expected UIDVALIDITY, 0 = any */
static GCancellable *cancel;      /* fired by --cancel-after MS */

static gboolean
cancel_timeout(gpointer data)
{
	g_cancellable_cancel(cancel);
	return G_SOURCE_REMOVE;
}

static gpointer
cancel_thread(gpointer data)
{
	GMainContext *ctx = g_main_context_new();
	GSource *src = g_timeout_source_new(GPOINTER_TO_UINT(data));

	g_source_set_callback(src, cancel_timeout, NULL, NULL);
	g_source_attach(src, ctx);
	g_main_context_iteration(ctx, TRUE);
	g_source_unref(src);
	g_main_context_unref(ctx);
	return NULL;
}

/* ---- output helpers ----------------------------------------------------------------- */

static void
print_attrs(guint a)
{
	static const struct {
		guint bit;
		const char *name;
	} names[] = {
		{ IMAP_MBOX_NOSELECT, "\\Noselect" },     { IMAP_MBOX_NOINFERIORS, "\\Noinferiors" },
		{ IMAP_MBOX_NONEXISTENT, "\\NonExistent" }, { IMAP_MBOX_HASCHILDREN, "\\HasChildren" },
		{ IMAP_MBOX_HASNOCHILDREN, "\\HasNoChildren" }, { IMAP_MBOX_MARKED, "\\Marked" },
		{ IMAP_MBOX_UNMARKED, "\\Unmarked" },     { IMAP_MBOX_SUBSCRIBED, "\\Subscribed" },
		{ IMAP_MBOX_REMOTE, "\\Remote" },         { IMAP_MBOX_ALL, "\\All" },
		{ IMAP_MBOX_ARCHIVE, "\\Archive" },       { IMAP_MBOX_DRAFTS, "\\Drafts" },
		{ IMAP_MBOX_FLAGGED, "\\Flagged" },       { IMAP_MBOX_JUNK, "\\Junk" },
		{ IMAP_MBOX_SENT, "\\Sent" },             { IMAP_MBOX_TRASH, "\\Trash" },
		{ IMAP_MBOX_IMPORTANT, "\\Important" },
	};
	gboolean first = TRUE;

	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		if (a & names[i].bit) {
			printf("%s%s", first ? "" : " ", names[i].name);
			first = FALSE;
		}
	}
}

static void
print_strv(char **v)
{
	for (guint i = 0; v && v[i]; i++)
		printf("%s%s", i ? " " : "", v[i]);
}

static void
print_addrs(const char *key, GPtrArray *a)
{
	if (!a || !a->len)
		return;
	printf("\t%s=", key);
	for (guint i = 0; i < a->len; i++) {
		ImapAddress *ad = a->pdata[i];

		printf("%s%s@%s", i ? "," : "", ad->mailbox ? ad->mailbox : "",
		       ad->host ? ad->host : "");
	}
}

static void
print_message(ImapMessage *m, gpointer user_data)
{
	printf("uid=%u", m->uid);
	if (m->have & IMAP_FETCH_FLAGS) {
		printf("\tflags=");
		print_strv(m->flags);
	}
	if (m->have & IMAP_FETCH_SIZE)
		printf("\tsize=%" G_GUINT64_FORMAT, m->size);
	if (m->have & IMAP_FETCH_INTERNALDATE)
		printf("\tinternaldate=%" G_GINT64_FORMAT "\ttz=%d", m->internaldate,
		       m->internaldate_tz);
	if (m->have & IMAP_FETCH_MODSEQ)
		printf("\tmodseq=%" G_GUINT64_FORMAT, m->modseq);
	if ((m->have & IMAP_FETCH_ENVELOPE) && m->envelope) {
		if (m->envelope->subject)
			printf("\tsubject=%s", m->envelope->subject);
		if (m->envelope->message_id)
			printf("\tmessage_id=%s", m->envelope->message_id);
		print_addrs("from", m->envelope->from);
		print_addrs("to", m->envelope->to);
	}
	if ((m->have & IMAP_FETCH_HEADER) && m->header)
		printf("\theader_len=%" G_GSIZE_FORMAT, g_bytes_get_size(m->header));
	if ((m->have & IMAP_FETCH_BODYSTRUCTURE) && m->bodystructure)
		printf("\tbodystructure=%s", m->bodystructure);
	printf("\n");
}

static void
print_status(const ImapStatus *st)
{
	if (st->have & IMAP_STATUS_MESSAGES)
		printf("messages %u\n", st->messages);
	if (st->have & IMAP_STATUS_RECENT)
		printf("recent %u\n", st->recent);
	if (st->have & IMAP_STATUS_UIDNEXT)
		printf("uidnext %u\n", st->uidnext);
	if (st->have & IMAP_STATUS_UIDVALIDITY)
		printf("uidvalidity %u\n", st->uidvalidity);
	if (st->have & IMAP_STATUS_UNSEEN)
		printf("unseen %u\n", st->unseen);
	if (st->have & IMAP_STATUS_HIGHESTMODSEQ)
		printf("highestmodseq %" G_GUINT64_FORMAT "\n", st->highestmodseq);
	if (st->have & IMAP_STATUS_SIZE)
		printf("size %" G_GUINT64_FORMAT "\n", st->size);
}

static void
on_change(const ImapChange *ch, gpointer user_data)
{
	switch (ch->kind) {
	case IMAP_CHANGE_EXISTS:
		printf("exists %u\n", ch->exists);
		break;
	case IMAP_CHANGE_EXPUNGED:
		if (ch->uids != NULL) {
			g_autofree char *set = imap_uidset_to_string(ch->uids);

			printf("expunged %s\n", set);
		} else {
			printf("expunged %u\n", ch->uid);
		}
		break;
	case IMAP_CHANGE_FLAGS:
		printf("flags %u ", ch->uid);
		print_strv(ch->msg ? ch->msg->flags : NULL);
		if (ch->msg && (ch->msg->have & IMAP_FETCH_MODSEQ))
			printf(" modseq=%" G_GUINT64_FORMAT, ch->msg->modseq);
		printf("\n");
		break;
	case IMAP_CHANGE_LOST:
		printf("lost\n");
		break;
	case IMAP_CHANGE_WATCHING: /* (its timing against "idling" is not fixed) */
		return;
	}
	fflush(stdout);
}

static void
on_notify(const ImapNotifyEvent *ev, gpointer user_data)
{
	static const char *const kinds[] = {"ready", "status", "mailboxes", "selected", "lost",
					    "refused"};

	printf("%s", kinds[ev->kind]);
	if (ev->mailbox != NULL)
		printf(" %s", ev->mailbox);
	if (ev->kind == IMAP_NOTIFY_READY && ev->resumed)
		printf(" resumed");
	if (ev->status != NULL) {
		if (ev->status->have & IMAP_STATUS_MESSAGES)
			printf(" messages=%u", ev->status->messages);
		if (ev->status->have & IMAP_STATUS_UIDNEXT)
			printf(" uidnext=%u", ev->status->uidnext);
		if (ev->status->have & IMAP_STATUS_HIGHESTMODSEQ)
			printf(" highestmodseq=%" G_GUINT64_FORMAT, ev->status->highestmodseq);
	}
	printf("\n");
	fflush(stdout);
}

static const struct {
	const char *name;
	ImapSearchKey key;
	gboolean has_value;
} search_keys[] = {
	{ "all", IMAP_SEARCH_ALL, FALSE },         { "uid", IMAP_SEARCH_UID, TRUE },
	{ "subject", IMAP_SEARCH_SUBJECT, TRUE },  { "from", IMAP_SEARCH_FROM, TRUE },
	{ "to", IMAP_SEARCH_TO, TRUE },            { "body", IMAP_SEARCH_BODY, TRUE },
	{ "text", IMAP_SEARCH_TEXT, TRUE },        { "keyword", IMAP_SEARCH_KEYWORD, TRUE },
	{ "unkeyword", IMAP_SEARCH_UNKEYWORD, TRUE }, { "seen", IMAP_SEARCH_SEEN, FALSE },
	{ "unseen", IMAP_SEARCH_UNSEEN, FALSE },   { "flagged", IMAP_SEARCH_FLAGGED, FALSE },
	{ "deleted", IMAP_SEARCH_DELETED, FALSE }, { "since", IMAP_SEARCH_SINCE, TRUE },
	{ "before", IMAP_SEARCH_BEFORE, TRUE },    { "larger", IMAP_SEARCH_LARGER, TRUE },
	{ "smaller", IMAP_SEARCH_SMALLER, TRUE },  { "modseq", IMAP_SEARCH_MODSEQ, TRUE },
	{ "header", IMAP_SEARCH_HEADER, TRUE }, /* header FIELD VALUE */
};

/* ---- parallel: many workers on one pool (pipelining, affinity, benchmarks) ---------- */

typedef struct {
	ImapPool *pool;
	const char *mailbox;
	GArray *uids;     /* guint32 */
	gint next;        /* atomic index into uids */
	guint rounds;
	gint64 bytes;     /* atomic */
	gint failed;      /* atomic */
	GMutex lock;
	char *first_error;
	GHashTable *sizes; /* uid -> size of the first fetch (checks every fetch agrees) */
	gboolean mix;      /* parallel-mix: bodies to fd, STATUS, FETCH FLAGS, SEARCH too */
	int null_fd;
} ParData;

static void
count_msg(ImapMessage *m, gpointer data)
{
	(*(guint *)data)++;
}

static void
collect_uid(ImapMessage *m, gpointer data)
{
	g_array_append_val((GArray *)data, m->uid);
}

static gpointer
par_worker(gpointer data)
{
	ParData *d = data;

	for (;;) {
		gint i = g_atomic_int_add(&d->next, 1);
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) b = NULL;
		guint32 uid;
		gint64 n;

		if ((guint)i >= d->uids->len * d->rounds)
			break;
		uid = g_array_index(d->uids, guint32, (guint)i % d->uids->len);
		if (d->mix && i % 5 == 1) {
			/* streamed to an fd: an EXCLUSIVE command with a sink */
			n = imap_fetch_body_sync(d->pool, d->mailbox, 0, uid, 0, 0, d->null_fd, NULL,
						 NULL, &error);
		} else if (d->mix && i % 5 == 2) {
			ImapStatus st;

			n = imap_status_sync(d->pool, d->mailbox, IMAP_STATUS_MESSAGES, &st, NULL,
					     &error) ? 0 : -1;
			if (n == 0)
				continue;
		} else if (d->mix && i % 5 == 3) {
			g_autoptr(ImapUidSet) one = imap_uidset_new();
			guint count = 0;

			imap_uidset_add(one, uid);
			n = imap_fetch_sync(d->pool, d->mailbox, 0, one,
					    IMAP_FETCH_FLAGS | IMAP_FETCH_SIZE, 0, count_msg, &count,
					    NULL, &error) ? 0 : -1;
			if (n == 0 && count == 1)
				continue;
			if (n == 0) {
				n = -1;
				g_set_error(&error, IMAP_ERROR, IMAP_ERROR_FAILED,
					    "UID %u: %u FETCH responses", uid, count);
			}
		} else if (d->mix && i % 5 == 4) {
			ImapSearchTerm t = { IMAP_SEARCH_ALL, NULL };
			g_autoptr(ImapUidSet) r = imap_search_sync(d->pool, d->mailbox, 0, &t, 1, NULL,
								   &error);

			n = r && imap_uidset_contains(r, uid) ? 0 : -1;
			if (n == 0)
				continue;
			if (r)
				g_set_error(&error, IMAP_ERROR, IMAP_ERROR_FAILED, "SEARCH lost %u", uid);
		} else {
			n = imap_fetch_body_sync(d->pool, d->mailbox, 0, uid, 0, 0, -1, &b, NULL,
						 &error);
		}
		g_mutex_lock(&d->lock);
		if (n < 0) {
			g_atomic_int_inc(&d->failed);
			if (!d->first_error)
				d->first_error = g_strdup(error->message);
		} else {
			gpointer old = g_hash_table_lookup(d->sizes, GUINT_TO_POINTER(uid));

			if (!old)
				g_hash_table_insert(d->sizes, GUINT_TO_POINTER(uid),
						    GSIZE_TO_POINTER((gsize)n + 1));
			else if (GPOINTER_TO_SIZE(old) != (gsize)n + 1) {
				g_atomic_int_inc(&d->failed);
				if (!d->first_error)
					d->first_error = g_strdup_printf("UID %u: size differs", uid);
			}
			d->bytes += n;
		}
		g_mutex_unlock(&d->lock);
	}
	return NULL;
}

static int
run_parallel(ImapPool *pool, const char *mailbox, guint threads, guint rounds, gboolean mix,
	     GError **error)
{
	ParData d = { pool, mailbox, g_array_new(FALSE, FALSE, sizeof(guint32)), 0, rounds };
	g_autoptr(ImapUidSet) all = imap_uidset_new();
	g_autoptr(GPtrArray) th = g_ptr_array_new();
	gint64 t0, t1;
	int rc = 0;

	imap_uidset_add_range(all, 1, G_MAXUINT32);
	d.mix = mix;
	d.null_fd = mix ? open("/dev/null", O_WRONLY | O_CLOEXEC) : -1;
	g_mutex_init(&d.lock);
	d.sizes = g_hash_table_new(NULL, NULL);
	if (!imap_fetch_sync(pool, mailbox, 0, all, IMAP_FETCH_UID, 0, collect_uid, d.uids, NULL,
			     error)) {
		rc = 1;
		goto out;
	}
	t0 = g_get_monotonic_time();
	for (guint i = 0; i < threads; i++)
		g_ptr_array_add(th, g_thread_new("worker", par_worker, &d));
	for (guint i = 0; i < threads; i++)
		g_thread_join(th->pdata[i]);
	t1 = g_get_monotonic_time();
	printf("messages %u\nfetches %u\nbytes %" G_GINT64_FORMAT "\nfailed %d\nseconds %.3f\n",
	       d.uids->len, d.uids->len * rounds, d.bytes, d.failed, (t1 - t0) / 1e6);
	if (d.failed) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_FAILED, "%d fetches failed: %s", d.failed,
			    d.first_error);
		rc = 1;
	}
out:
	if (d.null_fd >= 0)
		close(d.null_fd);
	g_free(d.first_error);
	g_hash_table_unref(d.sizes);
	g_array_unref(d.uids);
	g_mutex_clear(&d.lock);
	return rc;
}

/* ---- commands ----------------------------------------------------------------------- */

static int
run_command(ImapPool *pool, int argc, char **argv, GError **error)
{
	const char *cmd = argv[0];

	if (strcmp(cmd, "login") == 0 || strcmp(cmd, "stats") == 0) {
		if (!imap_pool_connect_sync(pool, cancel, error))
			return 1;
		printf("OK\n");
	} else if (strcmp(cmd, "capability") == 0) {
		g_auto(GStrv) caps = NULL;

		if (!imap_pool_connect_sync(pool, cancel, error))
			return 1;
		caps = imap_pool_dup_caps(pool);
		for (guint i = 0; caps && caps[i]; i++)
			printf("%s\n", caps[i]);
	} else if (strcmp(cmd, "namespace") == 0) {
		g_autoptr(ImapNamespaces) ns = NULL;
		const char *kinds[] = { "personal", "other", "shared" };

		if (!imap_namespace_sync(pool, &ns, cancel, error))
			return 1;
		for (guint k = 0; k < 3; k++) {
			GPtrArray *a = k == 0 ? ns->personal : k == 1 ? ns->other : ns->shared;

			for (guint i = 0; i < a->len; i++) {
				ImapNamespace *n = a->pdata[i];

				printf("%s\t%s\t%s%c\n", kinds[k], n->prefix, n->delim ? "" : "NIL",
				       n->delim ? n->delim : ' ');
			}
		}
	} else if (strcmp(cmd, "list") == 0) {
		gboolean with_status = argc > 1 && strcmp(argv[1], "--status") == 0;
		g_autoptr(GPtrArray) l = NULL;

		if (with_status) {
			argc--;
			argv++;
		}
		if (argc >= 3)
			l = imap_list_sync(pool, argv[1], argv[2], cancel, error);
		else
			l = imap_list_all_sync(pool, with_status, cancel, error);
		if (!l)
			return 1;
		for (guint i = 0; i < l->len; i++) {
			ImapMailboxInfo *m = l->pdata[i];

			printf("%s\t%s%c\t", m->name, m->delim ? "" : "NIL", m->delim ? m->delim : ' ');
			print_attrs(m->attrs);
			if (m->status.have)
				printf("\tmessages=%u uidnext=%u uidvalidity=%u unseen=%u",
				       m->status.messages, m->status.uidnext, m->status.uidvalidity,
				       m->status.unseen);
			printf("\n");
		}
	} else if (strcmp(cmd, "status") == 0) {
		ImapStatus st;

		need_args(argc, 2);
		if (!imap_status_sync(pool, argv[1], 0x7f, &st, cancel, error))
			return 1;
		print_status(&st);
	} else if (strcmp(cmd, "examine") == 0) {
		g_autoptr(ImapSelectInfo) info = NULL;
		guint32 uv = 0;
		guint64 ms = 0;

		need_args(argc, 2);
		if (argc >= 4) {
			uv = (guint32)parse_u64(argv[2], "UIDVALIDITY");
			ms = parse_u64(argv[3], "MODSEQ");
		}
		info = imap_examine_sync(pool, argv[1], uv, ms, cancel, error);
		if (!info)
			return 1;
		printf("uidvalidity %u\nuidnext %u\nexists %u\nrecent %u\n", info->uidvalidity,
		       info->uidnext, info->exists, info->recent);
		printf("highestmodseq %" G_GUINT64_FORMAT "\nread_only %d\n", info->highestmodseq,
		       info->read_only);
		printf("flags ");
		print_strv(info->flags);
		printf("\npermanentflags ");
		print_strv(info->permanentflags);
		printf("\n");
		if (info->vanished) {
			g_autofree char *s = imap_uidset_to_string(info->vanished);

			printf("vanished %s\n", s);
		}
		for (guint i = 0; info->changed && i < info->changed->len; i++) {
			ImapMessage *m = info->changed->pdata[i];

			printf("changed ");
			print_message(m, NULL);
		}
	} else if (strcmp(cmd, "fetch") == 0) {
		g_autoptr(ImapUidSet) set = NULL;
		guint items = IMAP_FETCH_UID;
		guint64 changedsince = 0;

		need_args(argc, 3);
		set = parse_set(argv[2]);
		for (int i = 3; i < argc; i++) {
			const char *it = argv[i];

			if (g_ascii_strcasecmp(it, "flags") == 0)
				items |= IMAP_FETCH_FLAGS;
			else if (g_ascii_strcasecmp(it, "size") == 0)
				items |= IMAP_FETCH_SIZE;
			else if (g_ascii_strcasecmp(it, "internaldate") == 0)
				items |= IMAP_FETCH_INTERNALDATE;
			else if (g_ascii_strcasecmp(it, "envelope") == 0)
				items |= IMAP_FETCH_ENVELOPE;
			else if (g_ascii_strcasecmp(it, "modseq") == 0)
				items |= IMAP_FETCH_MODSEQ;
			else if (g_ascii_strcasecmp(it, "header") == 0)
				items |= IMAP_FETCH_HEADER;
			else if (g_ascii_strcasecmp(it, "bodystructure") == 0)
				items |= IMAP_FETCH_BODYSTRUCTURE;
			else if (g_ascii_strncasecmp(it, "changedsince=", 13) == 0)
				changedsince = parse_u64(it + 13, "changedsince");
			else
				usage("unknown fetch item");
		}
		if (!imap_fetch_sync(pool, argv[1], opt_uidvalidity, set, items, changedsince, print_message, NULL,
				     cancel, error))
			return 1;
	} else if (strcmp(cmd, "body") == 0) {
		guint64 off = 0, len = 0;
		gboolean mem = FALSE;
		gint64 n;

		if (argc > 2 && strcmp(argv[argc - 1], "--mem") == 0) {
			mem = TRUE;
			argc--;
		}
		need_args(argc, 3);
		if (argc >= 5) {
			off = parse_u64(argv[3], "offset");
			len = parse_u64(argv[4], "length");
		}
		fflush(stdout);
		if (mem) {
			g_autoptr(GBytes) b = NULL;
			gsize sz;
			const guint8 *p;

			n = imap_fetch_body_sync(pool, argv[1], opt_uidvalidity,
						 (guint32)parse_u64(argv[2], "UID"), off, len, -1, &b,
						 cancel, error);
			if (n < 0)
				return 1;
			p = g_bytes_get_data(b, &sz);
			if (sz && fwrite(p, 1, sz, stdout) != sz)
				return 1;
		} else {
			n = imap_fetch_body_sync(pool, argv[1], opt_uidvalidity,
						 (guint32)parse_u64(argv[2], "UID"), off, len,
						 STDOUT_FILENO, NULL, cancel, error);
			if (n < 0)
				return 1;
		}
	} else if (strcmp(cmd, "store") == 0) {
		g_autoptr(ImapUidSet) set = NULL;
		g_autoptr(ImapUidSet) modified = NULL;
		ImapStoreMode mode;
		guint64 unchangedsince = 0;
		g_autoptr(GPtrArray) flags = g_ptr_array_new();

		need_args(argc, 4);
		set = parse_set(argv[2]);
		if (strcmp(argv[3], "+") == 0)
			mode = IMAP_STORE_ADD;
		else if (strcmp(argv[3], "-") == 0)
			mode = IMAP_STORE_REMOVE;
		else if (strcmp(argv[3], "=") == 0)
			mode = IMAP_STORE_SET;
		else
			usage("store mode must be +, - or =");
		for (int i = 4; i < argc; i++) {
			if (g_str_has_prefix(argv[i], "--unchangedsince="))
				unchangedsince = parse_u64(argv[i] + 17, "unchangedsince");
			else
				g_ptr_array_add(flags, argv[i]);
		}
		g_ptr_array_add(flags, NULL);
		if (!imap_store_flags_sync(pool, argv[1], opt_uidvalidity, set, mode,
					   (const char *const *)flags->pdata, unchangedsince,
					   &modified, cancel, error))
			return 1;
		if (modified) {
			g_autofree char *s = imap_uidset_to_string(modified);

			printf("modified %s\n", s);
		}
		printf("OK\n");
	} else if (strcmp(cmd, "move") == 0 || strcmp(cmd, "copy") == 0) {
		g_autoptr(ImapUidSet) set = NULL;
		g_autoptr(ImapUidSet) dst = NULL;
		guint32 uv = 0;
		gboolean ok;

		need_args(argc, 4);
		set = parse_set(argv[2]);
		if (cmd[0] == 'm')
			ok = imap_move_sync(pool, argv[1], opt_uidvalidity, set, argv[3], &uv, &dst,
					    cancel, error);
		else
			ok = imap_copy_sync(pool, argv[1], opt_uidvalidity, set, argv[3], &uv, &dst,
					    cancel, error);
		if (!ok)
			return 1;
		{
			g_autofree char *s = dst ? imap_uidset_to_string(dst) : g_strdup("");

			printf("uidvalidity %u\nuids %s\n", uv, s);
		}
	} else if (strcmp(cmd, "expunge") == 0) {
		g_autoptr(ImapUidSet) set = NULL;

		need_args(argc, 3);
		set = parse_set(argv[2]);
		if (!imap_expunge_uids_sync(pool, argv[1], opt_uidvalidity, set, cancel, error))
			return 1;
		printf("OK\n");
	} else if (strcmp(cmd, "append") == 0) {
		g_autofree char *data = NULL;
		gsize len = 0;
		g_autoptr(GBytes) msg = NULL;
		g_autoptr(GPtrArray) flags = g_ptr_array_new();
		gint64 date = 0;
		guint32 uv = 0, uid = 0;

		need_args(argc, 3);
		if (!g_file_get_contents(argv[2], &data, &len, error)) {
			(*error)->domain = IMAP_ERROR;
			(*error)->code = IMAP_ERROR_INVALID;
			return 1;
		}
		for (int i = 3; i < argc; i++) {
			if (g_str_has_prefix(argv[i], "--date="))
				date = (gint64)parse_u64(argv[i] + 7, "date");
			else
				g_ptr_array_add(flags, argv[i]);
		}
		g_ptr_array_add(flags, NULL);
		msg = g_bytes_new_take(g_steal_pointer(&data), len);
		if (!imap_append_sync(pool, argv[1], msg, (const char *const *)flags->pdata, date,
				      &uv, &uid, cancel, error))
			return 1;
		printf("uidvalidity %u\nuid %u\n", uv, uid);
	} else if (strcmp(cmd, "create") == 0 || strcmp(cmd, "delete") == 0) {
		need_args(argc, 2);
		if (!(cmd[0] == 'c' ? imap_create_sync(pool, argv[1], cancel, error) :
				      imap_delete_sync(pool, argv[1], cancel, error)))
			return 1;
		printf("OK\n");
	} else if (strcmp(cmd, "rename") == 0) {
		need_args(argc, 3);
		if (!imap_rename_sync(pool, argv[1], argv[2], cancel, error))
			return 1;
		printf("OK\n");
	} else if (strcmp(cmd, "quota") == 0) {
		ImapQuota q;

		need_args(argc, 2);
		if (!imap_quota_sync(pool, argv[1], &q, cancel, error))
			return 1;
		printf("root %s\n", q.root ? q.root : "");
		if (q.storage_limit_kb == G_MAXUINT64)
			printf("storage %" G_GUINT64_FORMAT " none\n", q.storage_used_kb);
		else
			printf("storage %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT "\n",
			       q.storage_used_kb, q.storage_limit_kb);
		if (q.messages_limit == G_MAXUINT64)
			printf("messages %" G_GUINT64_FORMAT " none\n", q.messages_used);
		else
			printf("messages %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT "\n",
			       q.messages_used, q.messages_limit);
		g_free(q.root);
	} else if (strcmp(cmd, "search") == 0) {
		g_autoptr(GArray) terms = g_array_new(FALSE, TRUE, sizeof(ImapSearchTerm));
		g_autoptr(ImapUidSet) res = NULL;
		g_autofree char *s = NULL;

		need_args(argc, 2);
		for (int i = 2; i < argc; i++) {
			ImapSearchTerm t = { 0 };
			guint k;

			for (k = 0; k < G_N_ELEMENTS(search_keys); k++)
				if (g_ascii_strcasecmp(argv[i], search_keys[k].name) == 0)
					break;
			if (k == G_N_ELEMENTS(search_keys))
				usage("unknown search key");
			t.key = search_keys[k].key;
			if (t.key == IMAP_SEARCH_HEADER) {
				if (i + 1 >= argc)
					usage("search key needs a value");
				t.header = argv[++i];
			}
			if (search_keys[k].has_value) {
				if (i + 1 >= argc)
					usage("search key needs a value");
				t.value = argv[++i];
			}
			g_array_append_val(terms, t);
		}
		res = imap_search_sync(pool, argv[1], opt_uidvalidity, (ImapSearchTerm *)(void *)terms->data,
				       terms->len, cancel, error);
		if (!res)
			return 1;
		s = imap_uidset_to_string(res);
		printf("%s\n", s ? s : "");
	} else if (strcmp(cmd, "parallel") == 0 || strcmp(cmd, "parallel-mix") == 0) {
		need_args(argc, 4);
		return run_parallel(pool, argv[1], (guint)parse_u64(argv[2], "threads"),
				    (guint)parse_u64(argv[3], "rounds"), cmd[8] == '-', error);
	} else if (strcmp(cmd, "idle") == 0) {
		ImapIdle *idle;
		guint64 secs;

		need_args(argc, 3);
		secs = parse_u64(argv[2], "seconds");
		if (!imap_pool_connect_sync(pool, cancel, error))
			return 1;
		idle = imap_idle_start(pool, argv[1], on_change, NULL, error);
		if (!idle)
			return 1;
		printf("idling\n");
		fflush(stdout);
		g_usleep(secs * G_USEC_PER_SEC);
		imap_idle_stop(idle);
	} else if (strcmp(cmd, "notify") == 0) {
		ImapNotify *notify;
		guint64 secs;

		need_args(argc, 2);
		secs = parse_u64(argv[1], "seconds");
		if (!imap_pool_connect_sync(pool, cancel, error))
			return 1;
		notify = imap_notify_start(pool, (const char *const *)(argv + 2), on_notify, NULL);
		printf("watching\n");
		fflush(stdout);
		g_usleep(secs * G_USEC_PER_SEC);
		imap_notify_stop(notify);
	} else {
		usage("unknown command");
	}
	return 0;
}

/* Messages and debug output only with $IMAP_CLI_VERBOSE (or G_MESSAGES_DEBUG), so that an
 * error is exactly one line on stderr. */
static GLogWriterOutput
log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	if (!(level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) &&
	    !g_getenv("IMAP_CLI_VERBOSE") && !g_getenv("G_MESSAGES_DEBUG"))
		return G_LOG_WRITER_HANDLED;
	return g_log_writer_default(level, fields, n_fields, user_data);
}

int
main(int argc, char **argv)
{
	ImapConfig cfg = { 0 };
	g_autoptr(GError) error = NULL;
	g_autoptr(ImapPool) pool = NULL;
	gboolean stats = FALSE;
	guint cancel_ms = 0;
	GThread *ct = NULL;
	int i, rc;
	const char *pw = g_getenv("IMAPFS_PASSWORD");
	const char *tok = g_getenv("IMAPFS_OAUTH_TOKEN");

	g_log_set_writer_func(log_writer, NULL, NULL);
	cfg.tls = IMAP_TLS_IMPLICIT;
	cfg.trace_fd = -1;
	for (i = 1; i < argc && g_str_has_prefix(argv[i], "--"); i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

#define TAKE() (v ? (i++, v) : (usage("option needs a value"), NULL))
		if (strcmp(o, "--host") == 0)
			cfg.host = g_strdup(TAKE());
		else if (strcmp(o, "--port") == 0)
			cfg.port = (guint16)parse_u64(TAKE(), "port");
		else if (strcmp(o, "--tls") == 0) {
			const char *m = TAKE();

			if (strcmp(m, "implicit") == 0)
				cfg.tls = IMAP_TLS_IMPLICIT;
			else if (strcmp(m, "starttls") == 0)
				cfg.tls = IMAP_TLS_STARTTLS;
			else if (strcmp(m, "none") == 0)
				cfg.tls = IMAP_TLS_NONE;
			else
				usage("--tls implicit|starttls|none");
		} else if (strcmp(o, "--cafile") == 0)
			cfg.cafile = g_strdup(TAKE());
		else if (strcmp(o, "--fingerprint") == 0)
			cfg.tls_fingerprint = g_strdup(TAKE());
		else if (strcmp(o, "--timeout") == 0)
			cfg.timeout_ms = (guint)parse_u64(TAKE(), "timeout");
		else if (strcmp(o, "--max-conns") == 0)
			cfg.max_conns = (guint)parse_u64(TAKE(), "max-conns");
		else if (strcmp(o, "--trace") == 0) {
			const char *f = TAKE();

			cfg.trace_fd = strcmp(f, "-") == 0 ? STDERR_FILENO :
				       open(f, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
			if (cfg.trace_fd < 0) {
				fprintf(stderr, "imap-cli: IMAP_ERROR_INVALID: %s: %s\n", f,
					g_strerror(errno));
				return 1;
			}
		} else if (strcmp(o, "--allow-insecure") == 0)
			cfg.allow_insecure_auth = TRUE;
		else if (strcmp(o, "--mark-seen") == 0)
			cfg.mark_seen = TRUE;
		else if (strcmp(o, "--stats") == 0)
			stats = TRUE;
		else if (strcmp(o, "--uidvalidity") == 0)
			opt_uidvalidity = (guint32)parse_u64(TAKE(), "uidvalidity");
		else if (strcmp(o, "--cancel-after") == 0)
			cancel_ms = (guint)parse_u64(TAKE(), "cancel-after");
		else if (strcmp(o, "--user") == 0)
			cfg.user = g_strdup(TAKE());
		else
			usage("unknown option");
#undef TAKE
	}
	if (!cfg.host)
		usage("--host is required");
	if (i >= argc)
		usage("no command");
	cfg.password = g_strdup(pw);
	cfg.oauth_token = tok && *tok ? g_strdup(tok) : NULL;
	pool = imap_pool_new(&cfg);
	imap_config_clear(&cfg);

	cancel = g_cancellable_new();
	if (cancel_ms)
		ct = g_thread_new("cancel", cancel_thread, GUINT_TO_POINTER(cancel_ms));
	rc = run_command(pool, argc - i, argv + i, &error);
	fflush(stdout);
	if (ct)
		g_thread_unref(ct); /* may still be waiting for its timer */
	if (rc != 0) {
		print_error(error);
		return 1; /* the pool is freed (LOGOUT) on the way out */
	}
	if (stats || strcmp(argv[i], "stats") == 0) {
		ImapStats st;

		imap_pool_get_stats(pool, &st);
		fprintf(strcmp(argv[i], "stats") == 0 ? stdout : stderr,
			"stats bytes_in=%" G_GUINT64_FORMAT " bytes_out=%" G_GUINT64_FORMAT
			" commands=%" G_GUINT64_FORMAT " body_bytes=%" G_GUINT64_FORMAT
			" reconnects=%" G_GUINT64_FORMAT "\n",
			st.bytes_in, st.bytes_out, st.commands, st.body_bytes, st.reconnects);
	}
	return 0;
}
