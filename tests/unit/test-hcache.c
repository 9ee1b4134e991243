/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-hcache.c: unit tests of the SQLite header cache (fs/store/hcache.c): schema and
 * permissions, persistence, bulk speed, the flag ordering rule, VANISHED, UIDVALIDITY
 * changes, rebuild of corrupt or future databases, migration of older ones, the thread
 * headers (References, In-Reply-To), the directory lock and inode numbers.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "hcache.h"

typedef struct {
	char *tmp;
	char *dir; /* tmp/acct: does not exist yet */
} Fixture;

static void
fx_setup(Fixture *fx, gconstpointer data)
{
	(void)data;
	fx->tmp = g_dir_make_tmp("cache-hcache-XXXXXX", NULL);
	g_assert_nonnull(fx->tmp);
	fx->dir = g_build_filename(fx->tmp, "imapfs", "acct", NULL);
}

static void
rm_rf(const char *path)
{
	g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
	const char *n;

	while (d != NULL && (n = g_dir_read_name(d)) != NULL) {
		g_autofree char *p = g_build_filename(path, n, NULL);

		if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
			rm_rf(p);
		else
			g_unlink(p);
	}
	g_rmdir(path);
}

static void
fx_teardown(Fixture *fx, gconstpointer data)
{
	(void)data;
	rm_rf(fx->tmp);
	g_free(fx->tmp);
	g_free(fx->dir);
}

static char *
db_path(Fixture *fx)
{
	return g_build_filename(fx->dir, "hcache.db", NULL);
}

static guint
file_mode(const char *path)
{
	struct stat st;

	g_assert_cmpint(stat(path, &st), ==, 0);
	return st.st_mode & 07777;
}

static HcacheMessage *
make_msg(guint32 uid, const char *flags, guint64 modseq)
{
	HcacheMessage *m = hcache_message_new();

	m->uid = uid;
	m->flags = flags ? g_strsplit(flags, " ", -1) : NULL;
	m->modseq = modseq;
	m->size = 1000 + uid;
	m->internaldate = 1700000000 + uid;
	m->internaldate_tz = 60;
	m->date = g_strdup("Tue, 14 Nov 2023 22:13:20 +0100");
	m->subject = g_strdup_printf("Subject number %u", uid);
	m->from = g_strdup("Alice <alice@example.org>");
	m->to = g_strdup("Bob <bob@example.org>");
	m->message_id = g_strdup_printf("<%u@example.org>", uid);
	m->filename = g_strdup_printf("%u-subject.eml", uid);
	return m;
}

/* Stores @m and frees it. */
static void
put_one(Hcache *hc, gint64 mbox, guint32 uv, HcacheMessage *m, guint64 ticket)
{
	g_autoptr(GError) error = NULL;

	gboolean ok = hcache_messages_put(hc, mbox, uv, &m, 1, ticket, &error);

	g_assert_no_error(error);
	g_assert_true(ok);
	hcache_message_free(m);
}

static char *
flags_of(Hcache *hc, gint64 mbox, guint32 uv, guint32 uid, guint64 *modseq)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HcacheMessage) m = hcache_message_get(hc, mbox, uv, uid, &error);

	g_assert_no_error(error);
	g_assert_nonnull(m);
	if (modseq != NULL)
		*modseq = m->modseq;
	return g_strjoinv(" ", m->flags);
}

static gint64
setup_mailbox(Hcache *hc, const char *name, guint32 uv)
{
	g_autoptr(GError) error = NULL;
	HcacheMailbox mb = {0};
	gboolean dropped = TRUE;

	mb.name = (char *)name;
	mb.delim = '/';
	mb.uidnext = 100;
	g_assert_true(hcache_mailbox_put(hc, &mb, &error));
	g_assert_no_error(error);
	g_assert_cmpint(mb.id, >, 0);
	g_assert_true(hcache_mailbox_set_uidvalidity(hc, mb.id, uv, &dropped, &error));
	g_assert_no_error(error);
	g_assert_false(dropped);
	return mb.id;
}

/* ---- tests ----------------------------------------------------------------------------- */

static void
test_schema_and_perms(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = db_path(fx);
	g_autofree char *wal = g_strconcat(path, "-wal", NULL);
	g_autofree char *lock = g_build_filename(fx->dir, "lock", NULL);
	mode_t old = umask(0); /* the cache must not depend on the umask */
	Hcache *hc = hcache_open(fx->dir, &error);
	sqlite3 *db;
	sqlite3_stmt *s;

	(void)data;
	umask(old);
	g_assert_no_error(error);
	g_assert_nonnull(hc);
	g_assert_cmpuint(file_mode(fx->dir), ==, 0700);
	g_assert_cmpuint(file_mode(path), ==, 0600);
	g_assert_cmpuint(file_mode(lock), ==, 0600);
	setup_mailbox(hc, "INBOX", 7);
	if (g_file_test(wal, G_FILE_TEST_EXISTS))
		g_assert_cmpuint(file_mode(wal), ==, 0600);
	hcache_close(hc);

	g_assert_cmpint(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_step(s), ==, SQLITE_ROW);
	g_assert_cmpint(sqlite3_column_int(s, 0), ==, HCACHE_SCHEMA_VERSION);
	sqlite3_finalize(s);
	g_assert_cmpint(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_step(s), ==, SQLITE_ROW);
	g_assert_cmpstr((const char *)sqlite3_column_text(s, 0), ==, "wal");
	sqlite3_finalize(s);
	sqlite3_close(db);

	/* loose permissions left by someone else are tightened */
	g_assert_cmpint(chmod(fx->dir, 0755), ==, 0);
	g_assert_cmpint(chmod(path, 0644), ==, 0);
	hc = hcache_open(fx->dir, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(file_mode(fx->dir), ==, 0700);
	g_assert_cmpuint(file_mode(path), ==, 0600);
	if (g_file_test(wal, G_FILE_TEST_EXISTS))
		g_assert_cmpuint(file_mode(wal), ==, 0600);
	hcache_close(hc);
}

static void
test_persistence(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	Hcache *hc = hcache_open(fx->dir, &error);
	g_autoptr(GPtrArray) boxes = NULL;
	g_autoptr(GPtrArray) msgs = NULL;
	HcacheMailbox mb = {0};
	HcacheMessage *m;
	gint64 id;

	(void)data;
	g_assert_no_error(error);
	mb.name = (char *)"Archiv/Ünïcode";
	mb.delim = '/';
	mb.attrs = 1 << 17;
	mb.special_use = (char *)"\\Archive";
	mb.uidvalidity = 42;
	mb.uidnext = 9;
	mb.highestmodseq = G_GUINT64_CONSTANT(9000000000000);
	g_assert_true(hcache_mailbox_put(hc, &mb, &error));
	g_assert_no_error(error);
	id = mb.id;
	m = make_msg(5, "\\Seen $Label1", 77);
	m->extra = g_bytes_new("\0blob", 5);
	m->true_size = 1234;
	put_one(hc, id, 42, m, HCACHE_TICKET_FORCE);
	hcache_close(hc);

	hc = hcache_open(fx->dir, &error);
	g_assert_no_error(error);
	g_assert_true(hcache_mailbox_get(hc, "Archiv/Ünïcode", &mb, &error));
	g_assert_no_error(error);
	g_assert_cmpint(mb.id, ==, id);
	g_assert_cmpint(mb.delim, ==, '/');
	g_assert_cmpuint(mb.attrs, ==, 1 << 17);
	g_assert_cmpstr(mb.special_use, ==, "\\Archive");
	g_assert_cmpuint(mb.uidvalidity, ==, 42);
	g_assert_cmpuint(mb.uidnext, ==, 9);
	g_assert_cmpuint(mb.highestmodseq, ==, G_GUINT64_CONSTANT(9000000000000));
	hcache_mailbox_clear(&mb);

	g_assert_false(hcache_mailbox_get(hc, "nope", &mb, &error));
	g_assert_error(error, HCACHE_ERROR, HCACHE_ERROR_NOT_FOUND);
	g_clear_error(&error);

	boxes = hcache_mailbox_list(hc, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(boxes->len, ==, 1);

	msgs = hcache_messages_load(hc, id, 42, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(msgs->len, ==, 1);
	m = g_ptr_array_index(msgs, 0);
	g_assert_cmpuint(m->uid, ==, 5);
	g_assert_cmpstr(m->flags[0], ==, "\\Seen");
	g_assert_cmpstr(m->flags[1], ==, "$Label1");
	g_assert_null(m->flags[2]);
	g_assert_cmpuint(m->modseq, ==, 77);
	g_assert_cmpuint(m->size, ==, 1005);
	g_assert_cmpuint(m->true_size, ==, 1234);
	g_assert_cmpint(m->internaldate, ==, 1700000005);
	g_assert_cmpint(m->internaldate_tz, ==, 60);
	g_assert_cmpstr(m->subject, ==, "Subject number 5");
	g_assert_cmpstr(m->from, ==, "Alice <alice@example.org>");
	g_assert_cmpstr(m->to, ==, "Bob <bob@example.org>");
	g_assert_cmpstr(m->message_id, ==, "<5@example.org>");
	g_assert_cmpstr(m->filename, ==, "5-subject.eml");
	g_assert_cmpuint(g_bytes_get_size(m->extra), ==, 5);
	g_assert_cmpint(memcmp(g_bytes_get_data(m->extra, NULL), "\0blob", 5), ==, 0);
	g_assert_cmpuint(m->ino, >, 1);

	/* a re-put without file name or true size keeps the stored ones */
	{
		HcacheMessage *again = make_msg(5, "\\Seen", 78);
		g_autoptr(HcacheMessage) got = NULL;

		g_clear_pointer(&again->filename, g_free);
		put_one(hc, id, 42, again, HCACHE_TICKET_FORCE);
		got = hcache_message_get(hc, id, 42, 5, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(got->filename, ==, "5-subject.eml");
		g_assert_cmpuint(got->true_size, ==, 1234);
		g_assert_true(hcache_message_set_filename(hc, id, 42, 5, "renamed.eml", &error));
		g_assert_true(hcache_message_set_true_size(hc, id, 42, 5, 999, &error));
		g_assert_no_error(error);
	}
	{
		g_autoptr(HcacheMessage) got = hcache_message_get(hc, id, 42, 5, &error);

		g_assert_cmpstr(got->filename, ==, "renamed.eml");
		g_assert_cmpuint(got->true_size, ==, 999);
	}
	g_assert_null(hcache_message_get(hc, id, 42, 6, &error));
	g_assert_error(error, HCACHE_ERROR, HCACHE_ERROR_NOT_FOUND);
	g_clear_error(&error);
	hcache_close(hc);
}

/* References and In-Reply-To: stored, read back, kept by a put that lacks them ("" means
 * the message has none, NULL that they were never fetched). */
static void
test_thread_headers(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(Hcache) hc = hcache_open(fx->dir, &error);
	g_autoptr(HcacheMessage) got = NULL;
	g_autoptr(GPtrArray) all = NULL;
	HcacheMessage *m;
	gint64 id;

	(void)data;
	g_assert_no_error(error);
	id = setup_mailbox(hc, "INBOX", 7);
	m = make_msg(1, NULL, 0);
	m->references = g_strdup("<a@x> <b@x>");
	m->in_reply_to = g_strdup("<b@x>");
	put_one(hc, id, 7, m, HCACHE_TICKET_FORCE);
	m = make_msg(2, NULL, 0);
	m->references = g_strdup("");
	m->in_reply_to = g_strdup("");
	put_one(hc, id, 7, m, HCACHE_TICKET_FORCE);
	put_one(hc, id, 7, make_msg(3, NULL, 0), HCACHE_TICKET_FORCE);

	got = hcache_message_get(hc, id, 7, 1, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(got->references, ==, "<a@x> <b@x>");
	g_assert_cmpstr(got->in_reply_to, ==, "<b@x>");
	g_clear_pointer(&got, hcache_message_free);

	/* a re-put without them (NULL) keeps them; a new value replaces them */
	put_one(hc, id, 7, make_msg(1, "\\Seen", 0), HCACHE_TICKET_FORCE);
	m = make_msg(2, NULL, 0);
	m->references = g_strdup("<c@x>");
	put_one(hc, id, 7, m, HCACHE_TICKET_FORCE);

	all = hcache_messages_load(hc, id, 7, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(all->len, ==, 3);
	m = g_ptr_array_index(all, 0);
	g_assert_cmpstr(m->references, ==, "<a@x> <b@x>");
	g_assert_cmpstr(m->in_reply_to, ==, "<b@x>");
	g_assert_cmpstr(m->flags[0], ==, "\\Seen");
	m = g_ptr_array_index(all, 1);
	g_assert_cmpstr(m->references, ==, "<c@x>");
	g_assert_cmpstr(m->in_reply_to, ==, "");
	m = g_ptr_array_index(all, 2);
	g_assert_null(m->references);
	g_assert_null(m->in_reply_to);
}

/* The schema of version 1 as released (frozen here: the migration's input). */
static const char schema_v1[] =
	"CREATE TABLE mailbox(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	" delim INTEGER NOT NULL DEFAULT 0, attrs INTEGER NOT NULL DEFAULT 0, special_use TEXT,"
	" uidvalidity INTEGER NOT NULL DEFAULT 0, uidnext INTEGER NOT NULL DEFAULT 0,"
	" highestmodseq INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE message(mbox INTEGER NOT NULL, uidvalidity INTEGER NOT NULL,"
	" uid INTEGER NOT NULL, flags TEXT NOT NULL DEFAULT '', modseq INTEGER NOT NULL DEFAULT 0,"
	" lgen INTEGER NOT NULL DEFAULT 0, size INTEGER NOT NULL DEFAULT 0,"
	" true_size INTEGER NOT NULL DEFAULT 0, idate INTEGER NOT NULL DEFAULT 0,"
	" idate_tz INTEGER NOT NULL DEFAULT 0, date TEXT, subject TEXT, from_ TEXT, to_ TEXT,"
	" message_id TEXT, extra BLOB, filename TEXT, ino INTEGER,"
	" PRIMARY KEY(mbox, uidvalidity, uid)) WITHOUT ROWID;"
	"CREATE TABLE inode(ino INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);"
	"CREATE TRIGGER message_del AFTER DELETE ON message BEGIN"
	" DELETE FROM inode WHERE ino = old.ino; END;"
	"PRAGMA journal_mode=WAL;"
	"INSERT INTO mailbox VALUES(3, 'INBOX', 47, 0, NULL, 7, 12, 500);"
	"INSERT INTO message VALUES(3, 7, 11, '\\Seen', 400, 2, 1011, 0, 1700000011, 60,"
	" 'Tue, 14 Nov 2023', 'old subject', 'Alice <a@x>', 'Bob <b@x>', '<11@x>', NULL,"
	" '11-old.eml', 123456);"
	"INSERT INTO inode VALUES(123456, 'm:3:7:11');"
	"PRAGMA user_version=1;";

static int
user_version(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int v;

	g_assert_cmpint(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_step(s), ==, SQLITE_ROW);
	v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* A cache of schema version 1 opens, is migrated in place and keeps its rows, inode
 * numbers and flag generations; the new fields are NULL until the headers are fetched. */
static void
test_migrate_v1(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = db_path(fx);
	g_autoptr(Hcache) hc = NULL;
	g_autoptr(HcacheMessage) got = NULL;
	HcacheMailbox mb = {0};
	HcacheMessage *m;
	sqlite3 *db;

	(void)data;
	g_assert_cmpint(g_mkdir_with_parents(fx->dir, 0700), ==, 0);
	g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(db, schema_v1, NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(db);
	g_assert_cmpint(user_version(path), ==, 1);

	hc = hcache_open(fx->dir, &error);
	g_assert_no_error(error);
	g_assert_nonnull(hc);
	g_assert_cmpuint(hcache_get_rebuilds(hc), ==, 0);
	g_assert_true(hcache_mailbox_get(hc, "INBOX", &mb, &error));
	g_assert_no_error(error);
	g_assert_cmpint(mb.id, ==, 3);
	g_assert_cmpuint(mb.uidvalidity, ==, 7);
	g_assert_cmpuint(mb.uidnext, ==, 12);
	g_assert_cmpuint(mb.highestmodseq, ==, 500);
	hcache_mailbox_clear(&mb);

	got = hcache_message_get(hc, 3, 7, 11, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(got->subject, ==, "old subject");
	g_assert_cmpstr(got->filename, ==, "11-old.eml");
	g_assert_cmpstr(got->flags[0], ==, "\\Seen");
	g_assert_cmpuint(got->modseq, ==, 400);
	g_assert_cmpuint(got->ino, ==, 123456);
	g_assert_null(got->references);
	g_assert_null(got->in_reply_to);
	g_assert_cmpuint(hcache_inode_message(hc, 3, 7, 11, &error), ==, 123456);
	/* the local write generation survived: an older ticket cannot overwrite the flags */
	g_assert_cmpuint(hcache_ticket(hc), ==, 2);
	g_clear_pointer(&got, hcache_message_free);

	/* the next fetch of that message fills them in */
	m = make_msg(11, "\\Seen", 400);
	m->references = g_strdup("<10@x>");
	m->in_reply_to = g_strdup("<10@x>");
	put_one(hc, 3, 7, m, HCACHE_TICKET_FORCE);
	got = hcache_message_get(hc, 3, 7, 11, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(got->references, ==, "<10@x>");
	g_assert_cmpstr(got->in_reply_to, ==, "<10@x>");
	g_assert_cmpuint(got->ino, ==, 123456);
	g_clear_pointer(&got, hcache_message_free);
	g_clear_pointer(&hc, hcache_close);

	g_assert_cmpint(user_version(path), ==, HCACHE_SCHEMA_VERSION);
	/* and a migrated cache opens again as it is */
	hc = hcache_open(fx->dir, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(hcache_get_rebuilds(hc), ==, 0);
	got = hcache_message_get(hc, 3, 7, 11, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(got->references, ==, "<10@x>");
}

static void
count_cb(HcacheMessage *m, gpointer data)
{
	guint *n = data;

	g_assert_cmpuint(m->uid, ==, *n + 1);
	(*n)++;
}

static void
test_bulk(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	Hcache *hc = hcache_open(fx->dir, &error);
	g_autoptr(GPtrArray) msgs = g_ptr_array_new_with_free_func(
		(GDestroyNotify)hcache_message_free);
	g_autoptr(GPtrArray) loaded = NULL;
	g_autoptr(GHashTable) inos = g_hash_table_new(g_int64_hash, g_int64_equal);
	g_autoptr(ImapUidSet) uids = NULL;
	gint64 id, t0, t1, t2;
	guint64 maxm = 0;
	guint n = 0;

	(void)data;
	g_assert_no_error(error);
	id = setup_mailbox(hc, "INBOX", 1);
	for (guint32 uid = 1; uid <= 10000; uid++)
		g_ptr_array_add(msgs, make_msg(uid, "\\Seen", uid));
	t0 = g_get_monotonic_time();
	g_assert_true(hcache_messages_put(hc, id, 1, (HcacheMessage *const *)msgs->pdata,
					  msgs->len, HCACHE_TICKET_FORCE, &error));
	g_assert_no_error(error);
	t1 = g_get_monotonic_time();
	hcache_close(hc);

	hc = hcache_open(fx->dir, &error);
	g_assert_no_error(error);
	t2 = g_get_monotonic_time();
	loaded = hcache_messages_load(hc, id, 1, &error);
	g_assert_no_error(error);
	g_test_message("put 10000: %.3f s, reopen+load: %.3f s",
		       (t1 - t0) / 1e6, (g_get_monotonic_time() - t2) / 1e6);
	/* ~0.06 s on an idle machine; the bound leaves room for a loaded CI box and for
	 * sanitizer builds (instrumented code, several times slower) */
	g_assert_cmpuint(loaded->len, ==, 10000);
	for (guint i = 0; i < loaded->len; i++) {
		HcacheMessage *m = g_ptr_array_index(loaded, i);
		HcacheMessage *orig = g_ptr_array_index(msgs, i);

		g_assert_cmpuint(m->uid, ==, i + 1);
		g_assert_cmpuint(m->ino, ==, orig->ino);
		g_assert_false(g_hash_table_contains(inos, &m->ino));
		g_hash_table_add(inos, &m->ino);
	}
	g_assert_true(hcache_messages_foreach(hc, id, 1, count_cb, &n, &error));
	g_assert_cmpuint(n, ==, 10000);
	g_assert_cmpuint(hcache_messages_count(hc, id, 1, &error), ==, 10000);
	uids = hcache_messages_uids(hc, id, 1, &maxm, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(imap_uidset_count(uids), ==, 10000);
	g_assert_cmpuint(maxm, ==, 10000);
	{
		g_autofree char *text = imap_uidset_to_string(uids);

		g_assert_cmpstr(text, ==, "1:10000");
	}
	hcache_close(hc);
}

static void
test_flag_order(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	Hcache *hc = hcache_open(fx->dir, &error);
	const char *seen[] = {"\\Seen", NULL};
	const char *flagged[] = {"\\Seen", "\\Flagged", NULL};
	const char *none[] = {NULL};
	HcacheFlagUpdate up;
	guint64 ticket, modseq;
	guint applied = 99;
	gint64 id;
	char *f;

	(void)data;
	g_assert_no_error(error);
	id = setup_mailbox(hc, "INBOX", 1);
	put_one(hc, id, 1, make_msg(1, NULL, 10), HCACHE_TICKET_FORCE);
	put_one(hc, id, 1, make_msg(2, NULL, 0), HCACHE_TICKET_FORCE);

	/* modseq rule: a lower MODSEQ never overwrites, a higher one does */
	up = (HcacheFlagUpdate){1, seen, 12};
	g_assert_true(hcache_flags_apply(hc, id, 1, &up, 1, hcache_ticket(hc), &applied, &error));
	g_assert_cmpuint(applied, ==, 1);
	up = (HcacheFlagUpdate){1, none, 11};
	g_assert_true(hcache_flags_apply(hc, id, 1, &up, 1, hcache_ticket(hc), &applied, &error));
	g_assert_cmpuint(applied, ==, 0);
	f = flags_of(hc, id, 1, 1, &modseq);
	g_assert_cmpstr(f, ==, "\\Seen");
	g_assert_cmpuint(modseq, ==, 12);
	g_free(f);

	/* write counter: FETCH started (ticket), then a local STORE, then the FETCH answer
	 * arrives with the old flags: ignored. Without MODSEQ (uid 2) and with an equal
	 * MODSEQ (uid 1, store answer without a modseq). */
	ticket = hcache_ticket(hc);
	g_assert_true(hcache_flags_local(hc, id, 1, 2, flagged, 0, &error));
	g_assert_true(hcache_flags_local(hc, id, 1, 1, flagged, 0, &error));
	g_assert_no_error(error);
	up = (HcacheFlagUpdate){2, none, 0};
	g_assert_true(hcache_flags_apply(hc, id, 1, &up, 1, ticket, &applied, &error));
	g_assert_cmpuint(applied, ==, 0);
	up = (HcacheFlagUpdate){1, seen, 12};
	g_assert_true(hcache_flags_apply(hc, id, 1, &up, 1, ticket, &applied, &error));
	g_assert_cmpuint(applied, ==, 0);
	f = flags_of(hc, id, 1, 2, NULL);
	g_assert_cmpstr(f, ==, "\\Seen \\Flagged");
	g_free(f);
	f = flags_of(hc, id, 1, 1, NULL);
	g_assert_cmpstr(f, ==, "\\Seen \\Flagged");
	g_free(f);

	/* a full header re-put from the old FETCH is also stale for the flags */
	{
		put_one(hc, id, 1, make_msg(2, NULL, 0), ticket);
		f = flags_of(hc, id, 1, 2, NULL);
		g_assert_cmpstr(f, ==, "\\Seen \\Flagged");
		g_free(f);
	}

	/* ...but a FETCH started after the STORE applies, and a higher MODSEQ from the
	 * server always wins (the server saw something newer) */
	up = (HcacheFlagUpdate){2, none, 0};
	g_assert_true(hcache_flags_apply(hc, id, 1, &up, 1, hcache_ticket(hc), &applied, &error));
	g_assert_cmpuint(applied, ==, 1);
	up = (HcacheFlagUpdate){1, none, 13};
	g_assert_true(hcache_flags_apply(hc, id, 1, &up, 1, ticket, &applied, &error));
	g_assert_cmpuint(applied, ==, 1);
	f = flags_of(hc, id, 1, 1, &modseq);
	g_assert_cmpstr(f, ==, "");
	g_assert_cmpuint(modseq, ==, 13);
	g_free(f);

	/* the write counter survives a reopen */
	g_assert_true(hcache_flags_local(hc, id, 1, 2, seen, 0, &error));
	hcache_close(hc);
	hc = hcache_open(fx->dir, &error);
	g_assert_no_error(error);
	up = (HcacheFlagUpdate){2, none, 0};
	g_assert_true(hcache_flags_apply(hc, id, 1, &up, 1, ticket, &applied, &error));
	g_assert_cmpuint(applied, ==, 0);
	g_assert_true(hcache_flags_apply(hc, id, 1, &up, 1, hcache_ticket(hc), &applied, &error));
	g_assert_cmpuint(applied, ==, 1);

	/* unknown message */
	g_assert_false(hcache_flags_local(hc, id, 1, 999, seen, 0, &error));
	g_assert_error(error, HCACHE_ERROR, HCACHE_ERROR_NOT_FOUND);
	g_clear_error(&error);
	up = (HcacheFlagUpdate){999, seen, 0};
	g_assert_true(hcache_flags_apply(hc, id, 1, &up, 1, HCACHE_TICKET_FORCE, &applied,
					 &error));
	g_assert_cmpuint(applied, ==, 0);
	hcache_close(hc);
}

static void
test_vanished(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	Hcache *hc = hcache_open(fx->dir, &error);
	g_autoptr(GPtrArray) msgs = g_ptr_array_new_with_free_func(
		(GDestroyNotify)hcache_message_free);
	g_autoptr(ImapUidSet) set = imap_uidset_new();
	g_autoptr(ImapUidSet) left = NULL;
	g_autofree char *text = NULL;
	guint32 arr[] = {50, 51, 4000};
	guint deleted = 0;
	gint64 id;

	(void)data;
	g_assert_no_error(error);
	id = setup_mailbox(hc, "INBOX", 1);
	for (guint32 uid = 1; uid <= 100; uid++)
		g_ptr_array_add(msgs, make_msg(uid, NULL, 0));
	g_assert_true(hcache_messages_put(hc, id, 1, (HcacheMessage *const *)msgs->pdata,
					  msgs->len, HCACHE_TICKET_FORCE, &error));
	/* VANISHED (EARLIER) 1:10,20,90:4000000000 */
	imap_uidset_add_range(set, 1, 10);
	imap_uidset_add(set, 20);
	imap_uidset_add_range(set, 90, 4000000000u);
	g_assert_true(hcache_messages_delete_set(hc, id, 1, set, &deleted, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(deleted, ==, 10 + 1 + 11);
	g_assert_true(hcache_messages_delete(hc, id, 1, arr, G_N_ELEMENTS(arr), &deleted, &error));
	g_assert_cmpuint(deleted, ==, 2);
	left = hcache_messages_uids(hc, id, 1, NULL, &error);
	text = imap_uidset_to_string(left);
	g_assert_cmpstr(text, ==, "11:19,21:49,52:89");
	hcache_close(hc);
}

static void
test_uidvalidity(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	Hcache *hc = hcache_open(fx->dir, &error);
	HcacheMailbox mb = {0};
	gboolean dropped = FALSE;
	guint64 ino1, ino_other;
	gint64 id, other;

	(void)data;
	g_assert_no_error(error);
	id = setup_mailbox(hc, "INBOX", 1);
	other = setup_mailbox(hc, "Other", 1);
	put_one(hc, id, 1, make_msg(1, NULL, 5), HCACHE_TICKET_FORCE);
	put_one(hc, other, 1, make_msg(1, NULL, 5), HCACHE_TICKET_FORCE);
	ino1 = hcache_inode_message(hc, id, 1, 1, &error);
	ino_other = hcache_inode_message(hc, other, 1, 1, &error);
	g_assert_cmpuint(ino1, !=, ino_other);
	mb.name = (char *)"INBOX";
	mb.uidnext = 2;
	mb.highestmodseq = 5;
	mb.uidvalidity = 2; /* put never changes a known UIDVALIDITY */
	g_assert_true(hcache_mailbox_put(hc, &mb, &error));
	g_assert_true(hcache_mailbox_get(hc, "INBOX", &mb, &error));
	g_assert_cmpuint(mb.uidvalidity, ==, 1);
	hcache_mailbox_clear(&mb);

	g_assert_true(hcache_mailbox_set_uidvalidity(hc, id, 1, &dropped, &error));
	g_assert_false(dropped);
	g_assert_true(hcache_mailbox_set_uidvalidity(hc, id, 2, &dropped, &error));
	g_assert_no_error(error);
	g_assert_true(dropped);
	g_assert_cmpuint(hcache_messages_count(hc, id, 1, &error), ==, 0);
	g_assert_cmpuint(hcache_messages_count(hc, other, 1, &error), ==, 1);
	g_assert_true(hcache_mailbox_get(hc, "INBOX", &mb, &error));
	g_assert_cmpuint(mb.uidvalidity, ==, 2);
	g_assert_cmpuint(mb.uidnext, ==, 0);
	g_assert_cmpuint(mb.highestmodseq, ==, 0);
	hcache_mailbox_clear(&mb);
	/* the other mailbox's inode is untouched */
	g_assert_cmpuint(hcache_inode_message(hc, other, 1, 1, &error), ==, ino_other);
	hcache_close(hc);
}

static void
test_rename_delete(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	Hcache *hc = hcache_open(fx->dir, &error);
	g_autoptr(GPtrArray) boxes = NULL;
	HcacheMailbox mb = {0};
	gint64 a, child, unrelated, stale;
	guint64 ino;

	(void)data;
	g_assert_no_error(error);
	a = setup_mailbox(hc, "Work", 3);
	child = setup_mailbox(hc, "Work/2024", 4);
	unrelated = setup_mailbox(hc, "Workshop", 5);
	put_one(hc, a, 3, make_msg(1, NULL, 0), HCACHE_TICKET_FORCE);
	ino = hcache_inode_message(hc, a, 3, 1, &error);
	/* a stale row where a child lands is replaced, with its messages */
	stale = setup_mailbox(hc, "Job/2024", 9);
	put_one(hc, stale, 9, make_msg(1, NULL, 0), HCACHE_TICKET_FORCE);
	g_assert_true(hcache_mailbox_rename(hc, "Work", "Job", '/', &error));
	g_assert_no_error(error);
	g_assert_true(hcache_mailbox_get(hc, "Job", &mb, &error));
	g_assert_cmpint(mb.id, ==, a);
	hcache_mailbox_clear(&mb);
	g_assert_true(hcache_mailbox_get(hc, "Job/2024", &mb, &error));
	g_assert_cmpint(mb.id, ==, child);
	hcache_mailbox_clear(&mb);
	g_assert_true(hcache_mailbox_get(hc, "Workshop", &mb, &error));
	g_assert_cmpint(mb.id, ==, unrelated);
	hcache_mailbox_clear(&mb);
	g_assert_cmpuint(hcache_messages_count(hc, a, 3, &error), ==, 1);
	g_assert_cmpuint(hcache_inode_message(hc, a, 3, 1, &error), ==, ino);
	g_assert_cmpuint(hcache_messages_count(hc, stale, 9, &error), ==, 0);
	g_assert_false(hcache_mailbox_rename(hc, "Nope", "X", '/', &error));
	g_assert_error(error, HCACHE_ERROR, HCACHE_ERROR_NOT_FOUND);
	g_clear_error(&error);

	g_assert_true(hcache_mailbox_delete(hc, "Job", &error));
	g_assert_no_error(error);
	g_assert_cmpuint(hcache_messages_count(hc, a, 3, &error), ==, 0);
	boxes = hcache_mailbox_list(hc, &error);
	g_assert_cmpuint(boxes->len, ==, 2);
	g_assert_cmpstr(((HcacheMailbox *)boxes->pdata[0])->name, ==, "Job/2024");
	g_assert_cmpstr(((HcacheMailbox *)boxes->pdata[1])->name, ==, "Workshop");
	g_assert_cmpint(hcache_mailbox_ensure(hc, "Workshop", &error), ==, unrelated);
	g_assert_cmpint(hcache_mailbox_ensure(hc, "New", &error), >, 0);
	g_assert_no_error(error);
	hcache_close(hc);
}

/* Populates, closes, lets @damage break the file, reopens: the cache must be rebuilt
 * empty and usable. */
static void
check_rebuilt(Fixture *fx, void (*damage)(const char *path))
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) msgs = g_ptr_array_new_with_free_func(
		(GDestroyNotify)hcache_message_free);
	g_autofree char *path = db_path(fx);
	Hcache *hc = hcache_open(fx->dir, &error);
	HcacheMailbox mb = {0};
	gint64 id;

	g_assert_no_error(error);
	id = setup_mailbox(hc, "INBOX", 1);
	for (guint32 uid = 1; uid <= 2000; uid++)
		g_ptr_array_add(msgs, make_msg(uid, "\\Seen", uid));
	g_assert_true(hcache_messages_put(hc, id, 1, (HcacheMessage *const *)msgs->pdata,
					  msgs->len, HCACHE_TICKET_FORCE, &error));
	hcache_close(hc);

	damage(path);
	hc = hcache_open(fx->dir, &error);
	g_assert_no_error(error);
	g_assert_nonnull(hc);
	g_assert_cmpuint(hcache_get_rebuilds(hc), ==, 1);
	g_assert_false(hcache_mailbox_get(hc, "INBOX", &mb, &error));
	g_assert_error(error, HCACHE_ERROR, HCACHE_ERROR_NOT_FOUND);
	g_clear_error(&error);
	id = setup_mailbox(hc, "INBOX", 1);
	put_one(hc, id, 1, make_msg(1, "\\Seen", 1), HCACHE_TICKET_FORCE);
	g_assert_cmpuint(file_mode(path), ==, 0600);
	hcache_close(hc);

	/* and it stays good */
	hc = hcache_open(fx->dir, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(hcache_get_rebuilds(hc), ==, 0);
	g_assert_cmpuint(hcache_messages_count(hc, id, 1, &error), ==, 1);
	hcache_close(hc);
}

static void
damage_garbage(const char *path)
{
	g_autofree char *junk = g_malloc(65536);

	for (guint i = 0; i < 65536; i++)
		junk[i] = (char)(i * 7 + 3);
	g_assert_true(g_file_set_contents(path, junk, 65536, NULL));
}

static void
damage_truncate(const char *path)
{
	struct stat st;

	g_assert_cmpint(stat(path, &st), ==, 0);
	g_assert_cmpint(st.st_size, >, 8192);
	g_assert_cmpint(truncate(path, st.st_size / 2), ==, 0);
}

static void
damage_middle(const char *path)
{
	int fd = open(path, O_WRONLY);
	char junk[4096];

	memset(junk, 0xa5, sizeof(junk));
	g_assert_cmpint(fd, >=, 0);
	/* page 2 onwards: the schema page stays, the b-tree pages are garbage */
	g_assert_cmpint(pwrite(fd, junk, sizeof(junk), 4096), ==, sizeof(junk));
	g_assert_cmpint(pwrite(fd, junk, sizeof(junk), 3 * 4096), ==, sizeof(junk));
	close(fd);
}

static void
damage_future(const char *path)
{
	sqlite3 *db;

	g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(db, "PRAGMA user_version=999", NULL, NULL, NULL), ==,
			SQLITE_OK);
	sqlite3_close(db);
}

static void
test_corrupt_garbage(Fixture *fx, gconstpointer data)
{
	(void)data;
	check_rebuilt(fx, damage_garbage);
}

static void
test_corrupt_truncated(Fixture *fx, gconstpointer data)
{
	(void)data;
	check_rebuilt(fx, damage_truncate);
}

static void
test_corrupt_pages(Fixture *fx, gconstpointer data)
{
	(void)data;
	check_rebuilt(fx, damage_middle);
}

static void
test_future_version(Fixture *fx, gconstpointer data)
{
	(void)data;
	check_rebuilt(fx, damage_future);
}

/* Corruption found while running (not at open): the operation fails with
 * HCACHE_ERROR_CORRUPT, the file is rebuilt, the next operations work. */
static void
test_corrupt_runtime(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = db_path(fx);
	Hcache *hc = hcache_open(fx->dir, &error);
	g_autoptr(GPtrArray) msgs = NULL;
	sqlite3 *db;
	gint64 id;

	(void)data;
	g_assert_no_error(error);
	id = setup_mailbox(hc, "INBOX", 1);
	put_one(hc, id, 1, make_msg(1, NULL, 0), HCACHE_TICKET_FORCE);
	/* another connection points the message table at a page that does not exist */
	g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(db, "PRAGMA writable_schema=ON;"
				     " UPDATE sqlite_schema SET rootpage = 999999"
				     " WHERE name = 'message';", NULL, NULL, NULL), ==, SQLITE_OK);
	{
		/* bump the schema cookie so the cache's connection re-reads the schema */
		sqlite3_stmt *s;
		g_autofree char *sql = NULL;

		g_assert_cmpint(sqlite3_prepare_v2(db, "PRAGMA schema_version", -1, &s, NULL), ==,
				SQLITE_OK);
		g_assert_cmpint(sqlite3_step(s), ==, SQLITE_ROW);
		sql = g_strdup_printf("PRAGMA schema_version=%d", sqlite3_column_int(s, 0) + 1);
		sqlite3_finalize(s);
		g_assert_cmpint(sqlite3_exec(db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
	}
	sqlite3_close(db);

	msgs = hcache_messages_load(hc, id, 1, &error);
	g_assert_null(msgs);
	g_assert_error(error, HCACHE_ERROR, HCACHE_ERROR_CORRUPT);
	g_clear_error(&error);
	g_assert_cmpuint(hcache_get_rebuilds(hc), ==, 1);
	id = setup_mailbox(hc, "INBOX", 1);
	put_one(hc, id, 1, make_msg(1, NULL, 0), HCACHE_TICKET_FORCE);
	g_assert_cmpuint(hcache_messages_count(hc, id, 1, &error), ==, 1);
	g_assert_no_error(error);
	hcache_close(hc);
}

/* A full disk (simulated with RLIMIT_FSIZE in a child): a big put fails with an error,
 * rolls back, and the cache keeps answering. */
static int
full_disk_child(Fixture *fx)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) msgs = g_ptr_array_new_with_free_func(
		(GDestroyNotify)hcache_message_free);
	Hcache *hc = hcache_open(fx->dir, &error);
	struct rlimit rl = {256 * 1024, 256 * 1024};
	gint64 id;

	if (hc == NULL)
		return 10;
	id = setup_mailbox(hc, "INBOX", 1);
	put_one(hc, id, 1, make_msg(1, NULL, 0), HCACHE_TICKET_FORCE);
	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
		return 11;
	for (guint32 uid = 2; uid <= 20000; uid++)
		g_ptr_array_add(msgs, make_msg(uid, "\\Seen", uid));
	if (hcache_messages_put(hc, id, 1, (HcacheMessage *const *)msgs->pdata, msgs->len,
				HCACHE_TICKET_FORCE, &error))
		return 12;
	if (!g_error_matches(error, HCACHE_ERROR, HCACHE_ERROR_FULL))
		return 13;
	if (g_getenv("HCACHE_TEST_VERBOSE") != NULL)
		g_printerr("disk full: %s (code %d)\n", error->message, error->code);
	g_clear_error(&error);
	/* rolled back, still usable */
	if (hcache_messages_count(hc, id, 1, &error) != 1 || error != NULL)
		return 14;
	hcache_close(hc);
	return 0;
}

static void
test_disk_full(Fixture *fx, gconstpointer data)
{
	int status = 0;
	pid_t pid;

	(void)data;
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0)
		_exit(full_disk_child(fx));
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

static void
test_in_use(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	Hcache *hc = hcache_open(fx->dir, &error);
	Hcache *second;
	g_autofree char *want = g_strdup_printf("cache in use by another imapfs (pid %d)",
						(int)getpid());

	(void)data;
	g_assert_no_error(error);
	second = hcache_open(fx->dir, &error);
	g_assert_null(second);
	g_assert_error(error, HCACHE_ERROR, HCACHE_ERROR_IN_USE);
	g_assert_true(g_str_has_prefix(error->message, want));
	g_clear_error(&error);
	hcache_close(hc);
	/* released on close */
	hc = hcache_open(fx->dir, &error);
	g_assert_no_error(error);
	hcache_close(hc);
}

/* The lock is per process too: a child that holds the cache makes the parent's open
 * fail with the child's pid in the message; the lock dies with the child. */
static void
test_in_use_other_process(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *want = NULL;
	int ready[2], quit[2];
	int status = 0;
	pid_t pid;
	char c;
	Hcache *hc;

	(void)data;
	g_assert_cmpint(pipe(ready), ==, 0);
	g_assert_cmpint(pipe(quit), ==, 0);
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		Hcache *mine = hcache_open(fx->dir, NULL);

		if (write(ready[1], mine ? "y" : "n", 1) != 1)
			_exit(2);
		if (read(quit[0], &c, 1) != 1)
			_exit(3);
		hcache_close(mine);
		_exit(0);
	}
	g_assert_cmpint(read(ready[0], &c, 1), ==, 1);
	g_assert_cmpint(c, ==, 'y');
	hc = hcache_open(fx->dir, &error);
	g_assert_null(hc);
	g_assert_error(error, HCACHE_ERROR, HCACHE_ERROR_IN_USE);
	want = g_strdup_printf("cache in use by another imapfs (pid %d)", (int)pid);
	g_assert_true(g_str_has_prefix(error->message, want));
	g_clear_error(&error);
	g_assert_cmpint(kill(pid, SIGKILL), ==, 0); /* a crashed owner frees the cache */
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	hc = hcache_open(fx->dir, &error);
	g_assert_no_error(error);
	g_assert_nonnull(hc);
	hcache_close(hc);
	close(ready[0]);
	close(ready[1]);
	close(quit[0]);
	close(quit[1]);
}

typedef struct {
	Hcache *hc;
	gint64 id;
	guint base;
} Worker;

static gpointer
worker_thread(gpointer data)
{
	Worker *w = data;
	const char *seen[] = {"\\Seen", NULL};

	for (guint round = 0; round < 20; round++) {
		g_autoptr(GPtrArray) msgs = g_ptr_array_new_with_free_func(
			(GDestroyNotify)hcache_message_free);
		g_autoptr(GPtrArray) loaded = NULL;
		g_autoptr(GError) error = NULL;
		guint64 t = hcache_ticket(w->hc);
		HcacheFlagUpdate up = {w->base + round * 10 + 1, seen, 0};

		for (guint32 i = 1; i <= 10; i++)
			g_ptr_array_add(msgs, make_msg(w->base + round * 10 + i, NULL, 0));
		g_assert_true(hcache_messages_put(w->hc, w->id, 1,
						  (HcacheMessage *const *)msgs->pdata, msgs->len,
						  t, &error));
		g_assert_no_error(error);
		g_assert_true(hcache_flags_apply(w->hc, w->id, 1, &up, 1, t, NULL, &error));
		g_assert_true(hcache_flags_local(w->hc, w->id, 1, up.uid, seen, 0, &error));
		g_assert_cmpuint(hcache_inode_dir(w->hc, "INBOX", &error), >, 1);
		loaded = hcache_messages_load(w->hc, w->id, 1, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(loaded->len, >=, (round + 1) * 10);
	}
	return NULL;
}

static void
test_threads(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	Hcache *hc = hcache_open(fx->dir, &error);
	Worker w[4];
	GThread *t[4];

	(void)data;
	g_assert_no_error(error);
	for (guint i = 0; i < G_N_ELEMENTS(w); i++) {
		w[i].hc = hc;
		w[i].id = setup_mailbox(hc, "INBOX", 1);
		w[i].base = i * 1000;
		t[i] = g_thread_new("worker", worker_thread, &w[i]);
	}
	for (guint i = 0; i < G_N_ELEMENTS(w); i++)
		g_thread_join(t[i]);
	g_assert_cmpuint(hcache_messages_count(hc, w[0].id, 1, &error), ==, 4 * 200);
	hcache_close(hc);
}

static void
test_inodes(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	Hcache *hc = hcache_open(fx->dir, &error);
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
							     NULL);
	guint64 d_inbox, d_sub, m1, m2, m_future;
	gint64 id;

	(void)data;
	g_assert_no_error(error);
	id = setup_mailbox(hc, "INBOX", 1);
	d_inbox = hcache_inode_dir(hc, "INBOX", &error);
	d_sub = hcache_inode_dir(hc, "INBOX/sub", &error);
	g_assert_no_error(error);
	/* the first candidate is fs/inode.c's hash: a drop-in replacement */
	g_assert_cmpuint(d_inbox, ==, hcache_hash_dir("INBOX"));
	g_assert_cmpuint(hcache_inode_dir(hc, "INBOX", &error), ==, d_inbox);
	/* a message gets its number at put; asking first or later gives the same */
	m_future = hcache_inode_message(hc, id, 1, 2, &error);
	g_assert_cmpuint(m_future, ==, hcache_hash_message("INBOX", 1, 2));
	put_one(hc, id, 1, make_msg(1, NULL, 0), HCACHE_TICKET_FORCE);
	put_one(hc, id, 1, make_msg(2, NULL, 0), HCACHE_TICKET_FORCE);
	m1 = hcache_inode_message(hc, id, 1, 1, &error);
	m2 = hcache_inode_message(hc, id, 1, 2, &error);
	g_assert_cmpuint(m2, ==, m_future);
	g_assert_cmpuint(m1, ==, hcache_hash_message("INBOX", 1, 1));
	for (guint32 uid = 3; uid < 3000; uid++) {
		guint64 *ino = g_new(guint64, 1);

		*ino = hcache_inode_message(hc, id, 7, uid, &error);
		g_assert_cmpuint(*ino, >, 1);
		g_assert_false(g_hash_table_contains(seen, ino));
		g_hash_table_add(seen, ino);
	}
	hcache_close(hc);

	hc = hcache_open(fx->dir, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(hcache_inode_dir(hc, "INBOX", &error), ==, d_inbox);
	g_assert_cmpuint(hcache_inode_dir(hc, "INBOX/sub", &error), ==, d_sub);
	g_assert_cmpuint(hcache_inode_message(hc, id, 1, 1, &error), ==, m1);
	g_assert_cmpuint(hcache_inode_message(hc, id, 1, 2, &error), ==, m2);
	g_assert_no_error(error);
	g_assert_cmpuint(hcache_inode_message(hc, 12345, 1, 1, &error), ==, 0);
	g_assert_error(error, HCACHE_ERROR, HCACHE_ERROR_NOT_FOUND);
	g_clear_error(&error);
	hcache_close(hc);
}

/* A collision: force a taken hash by allocating the message's hash as a directory first
 * is impossible to arrange by name, so use the database directly. */
static void
test_inode_collision(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = db_path(fx);
	Hcache *hc = hcache_open(fx->dir, &error);
	guint64 h = hcache_hash_message("INBOX", 1, 1);
	g_autofree char *sql = g_strdup_printf(
		"INSERT INTO inode(ino, key) VALUES(%" G_GINT64_FORMAT ", 'x:1'),"
		"(%" G_GINT64_FORMAT ", 'x:2')", (gint64)h, (gint64)(h + 1));
	sqlite3 *db;
	gint64 id;

	(void)data;
	g_assert_no_error(error);
	id = setup_mailbox(hc, "INBOX", 1);
	hcache_close(hc);
	g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(db);
	hc = hcache_open(fx->dir, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(hcache_inode_message(hc, id, 1, 1, &error), ==, h + 2);
	hcache_close(hc);
}

/* The journal of writes in flight: rows survive a reopen, steps and UID sets advance,
 * removal is final, and a folder rename rewrites the mailboxes it names. */
static void
test_journal(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	HcacheJournalEntry move = {.op = HCACHE_JOURNAL_MOVE, .mailbox = "INBOX",
				   .uidvalidity = 7, .uids = "3:5", .dest = "Archive/2024"};
	HcacheJournalEntry append = {.op = HCACHE_JOURNAL_APPEND, .mailbox = "Archive",
				     .message_id = "<a@b>", .size = 1234, .path = "/x/stage",
				     .dest_uidnext = 41, .flags = "\\Seen $Label1",
				     .internaldate = 1700000000};
	Hcache *hc = hcache_open(fx->dir, &error);
	g_autoptr(GPtrArray) all = NULL;
	g_autoptr(GPtrArray) appends = NULL;
	HcacheJournalEntry *e;

	(void)data;
	g_assert_no_error(error);
	g_assert_cmpint(hcache_journal_add(hc, &move, &error), >, 0);
	g_assert_cmpint(hcache_journal_add(hc, &append, &error), >, move.id);
	g_assert_true(hcache_journal_set_dest_uid(hc, move.id, 1, 9, 77, &error));
	g_assert_true(hcache_journal_set_step(hc, move.id, 2, "4:5", &error));
	g_assert_true(hcache_journal_set_step(hc, append.id, 1, NULL, &error));
	hcache_close(hc);

	hc = hcache_open(fx->dir, &error);
	g_assert_no_error(error);
	all = hcache_journal_list(hc, 0, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(all->len, ==, 2);
	e = g_ptr_array_index(all, 0);
	g_assert_cmpint(e->id, ==, move.id);
	g_assert_cmpint(e->op, ==, HCACHE_JOURNAL_MOVE);
	g_assert_cmpstr(e->mailbox, ==, "INBOX");
	g_assert_cmpuint(e->uidvalidity, ==, 7);
	g_assert_cmpstr(e->uids, ==, "4:5");
	g_assert_cmpstr(e->dest, ==, "Archive/2024");
	g_assert_cmpint(e->step, ==, 2);
	g_assert_cmpuint(e->dest_uidvalidity, ==, 9);
	g_assert_cmpuint(e->dest_uid, ==, 77);
	g_assert_cmpint(e->created, >, 0);
	e = g_ptr_array_index(all, 1);
	g_assert_cmpstr(e->uids, ==, NULL);
	g_assert_cmpstr(e->message_id, ==, "<a@b>");
	g_assert_cmpuint(e->size, ==, 1234);
	g_assert_cmpstr(e->path, ==, "/x/stage");
	g_assert_cmpuint(e->dest_uidnext, ==, 41);
	g_assert_cmpstr(e->flags, ==, "\\Seen $Label1");
	g_assert_cmpint(e->internaldate, ==, 1700000000);
	g_assert_cmpint(e->step, ==, 1);

	g_assert_true(hcache_journal_rename(hc, "Archive", "Old", '/', &error));
	appends = hcache_journal_list(hc, HCACHE_JOURNAL_APPEND, &error);
	g_assert_cmpuint(appends->len, ==, 1);
	g_assert_cmpstr(((HcacheJournalEntry *)g_ptr_array_index(appends, 0))->mailbox, ==, "Old");
	g_clear_pointer(&all, g_ptr_array_unref);
	all = hcache_journal_list(hc, HCACHE_JOURNAL_MOVE, &error);
	g_assert_cmpstr(((HcacheJournalEntry *)g_ptr_array_index(all, 0))->dest, ==, "Old/2024");
	g_assert_cmpstr(((HcacheJournalEntry *)g_ptr_array_index(all, 0))->mailbox, ==, "INBOX");

	g_assert_true(hcache_journal_remove(hc, move.id, &error));
	g_assert_true(hcache_journal_remove(hc, move.id, &error)); /* gone already: fine */
	g_clear_pointer(&all, g_ptr_array_unref);
	all = hcache_journal_list(hc, 0, &error);
	g_assert_cmpuint(all->len, ==, 1);
	hcache_close(hc);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/hcache/" name, Fixture, NULL, fx_setup, fn, fx_teardown)
	ADD("schema-perms", test_schema_and_perms);
	ADD("persistence", test_persistence);
	ADD("thread-headers", test_thread_headers);
	ADD("migrate-v1", test_migrate_v1);
	ADD("bulk-10000", test_bulk);
	ADD("flag-order", test_flag_order);
	ADD("vanished", test_vanished);
	ADD("uidvalidity", test_uidvalidity);
	ADD("rename-delete", test_rename_delete);
	ADD("corrupt-garbage", test_corrupt_garbage);
	ADD("corrupt-truncated", test_corrupt_truncated);
	ADD("corrupt-pages", test_corrupt_pages);
	ADD("future-version", test_future_version);
	ADD("corrupt-runtime", test_corrupt_runtime);
	ADD("disk-full", test_disk_full);
	ADD("in-use", test_in_use);
	ADD("in-use-other-process", test_in_use_other_process);
	ADD("threads", test_threads);
	ADD("inodes", test_inodes);
	ADD("inode-collision", test_inode_collision);
	ADD("journal", test_journal);
	return g_test_run();
}
