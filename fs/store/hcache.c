/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hcache.c: the SQLite header cache (see hcache.h). Owns the database file, its schema
 * and migrations, the directory lock, the flag ordering rule of STYLE.md §5 and the
 * persistent inode numbers. Corruption is handled by moving the file aside and
 * rebuilding: everything here can be fetched again from the server.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "hcache-private.h"

#define DB_NAME		"hcache.db"
#define LOCK_NAME	"lock"
#define BUSY_TIMEOUT_MS 5000


G_DEFINE_QUARK(hcache - error - quark, hcache_error)

/* ---- schema ------------------------------------------------------------------------- */

/* Version 1, as first released. A new database is created at version 1 and then brought up
 * to date by the same migrations an old one goes through, so every migration runs on every
 * new cache too. */
static const char schema_v1[] = "CREATE TABLE mailbox("
				" id INTEGER PRIMARY KEY,"
				" name TEXT NOT NULL UNIQUE,"
				" delim INTEGER NOT NULL DEFAULT 0,"
				" attrs INTEGER NOT NULL DEFAULT 0,"
				" special_use TEXT,"
				" uidvalidity INTEGER NOT NULL DEFAULT 0,"
				" uidnext INTEGER NOT NULL DEFAULT 0,"
				" highestmodseq INTEGER NOT NULL DEFAULT 0);"
				"CREATE TABLE message("
				" mbox INTEGER NOT NULL,"
				" uidvalidity INTEGER NOT NULL,"
				" uid INTEGER NOT NULL,"
				" flags TEXT NOT NULL DEFAULT '',"
				" modseq INTEGER NOT NULL DEFAULT 0,"
				" lgen INTEGER NOT NULL DEFAULT 0,"
				" size INTEGER NOT NULL DEFAULT 0,"
				" true_size INTEGER NOT NULL DEFAULT 0,"
				" idate INTEGER NOT NULL DEFAULT 0,"
				" idate_tz INTEGER NOT NULL DEFAULT 0,"
				" date TEXT, subject TEXT, from_ TEXT, to_ TEXT, message_id TEXT,"
				" extra BLOB,"
				" filename TEXT,"
				" ino INTEGER,"
				" PRIMARY KEY(mbox, uidvalidity, uid)) WITHOUT ROWID;"
				"CREATE TABLE inode("
				" ino INTEGER PRIMARY KEY,"
				" key TEXT NOT NULL UNIQUE);"
				"CREATE TRIGGER message_del AFTER DELETE ON message BEGIN"
				" DELETE FROM inode WHERE ino = old.ino; END;";

/* Version 2: the References and In-Reply-To of each message (thread views). Rows from
 * before it get NULL ("never fetched"): they are not refetched, and stay NULL until the
 * message is listed again from the server (a UIDVALIDITY change or a rebuilt cache); a
 * fetched message without the field gets "". */
static const char migrate_v2[] = "ALTER TABLE message ADD COLUMN references_ TEXT;"
				 "ALTER TABLE message ADD COLUMN in_reply_to TEXT;";

/* Version 3: the journal of writes in flight (hcache-journal.c). */
static const char migrate_v3[] = "CREATE TABLE journal("
				 " id INTEGER PRIMARY KEY,"
				 " op INTEGER NOT NULL,"
				 " mailbox TEXT NOT NULL,"
				 " uidvalidity INTEGER NOT NULL DEFAULT 0,"
				 " uids TEXT,"
				 " dest TEXT,"
				 " message_id TEXT,"
				 " size INTEGER NOT NULL DEFAULT 0,"
				 " path TEXT,"
				 " dest_uidvalidity INTEGER NOT NULL DEFAULT 0,"
				 " dest_uidnext INTEGER NOT NULL DEFAULT 0,"
				 " dest_uid INTEGER NOT NULL DEFAULT 0,"
				 " flags TEXT,"
				 " internaldate INTEGER NOT NULL DEFAULT 0,"
				 " step INTEGER NOT NULL DEFAULT 0,"
				 " created INTEGER NOT NULL DEFAULT 0);";

/* Brings the schema from version @from to HCACHE_SCHEMA_VERSION, in the caller's
 * transaction: each case upgrades by one version and falls through to the next. */
static gboolean
migrate(sqlite3 *db, int from, GError **error)
{
	char *msg = NULL;
	int rc = SQLITE_OK;

	switch (from) {
	case 0:
		rc = sqlite3_exec(db, schema_v1, NULL, NULL, &msg);
		if (rc != SQLITE_OK)
			break;
		/* fall through */
	case 1:
		rc = sqlite3_exec(db, migrate_v2, NULL, NULL, &msg);
		if (rc != SQLITE_OK)
			break;
		/* fall through */
	case 2:
		rc = sqlite3_exec(db, migrate_v3, NULL, NULL, &msg);
		break;
	default:
		break;
	}
	if (rc != SQLITE_OK) {
		g_set_error(error, HCACHE_ERROR,
			    rc == SQLITE_FULL ? HCACHE_ERROR_FULL : HCACHE_ERROR_IO,
			    "header cache: migrating the schema from version %d: %s", from,
			    msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return FALSE;
	}
	return TRUE;
}

/* ---- errors and statements -------------------------------------------------------- */

static gboolean rebuild_locked(Hcache *hc, const char *why, GError **error);

static gboolean
is_corrupt(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

/* Classifies a failed SQLite call, rolls back, rebuilds a corrupt database. */
static gboolean
sql_fail(Hcache *hc, int rc, const char *what, GError **error)
{
	const char *msg = hc->db ? sqlite3_errmsg(hc->db) : sqlite3_errstr(rc);
	int sys = hc->db ? sqlite3_system_errno(hc->db) : 0;
	g_autofree char *text = g_strdup_printf("header cache: %s: %s%s%s", what, msg,
						sys ? ": " : "", sys ? g_strerror(sys) : "");
	gboolean full =
		(rc & 0xff) == SQLITE_FULL ||
		((rc & 0xff) == SQLITE_IOERR && (sys == ENOSPC || sys == EDQUOT || sys == EFBIG));

	if (hc->db != NULL && !sqlite3_get_autocommit(hc->db))
		sqlite3_exec(hc->db, "ROLLBACK", NULL, NULL, NULL);
	if (is_corrupt(rc)) {
		g_message("%s; rebuilding the cache", text);
		rebuild_locked(hc, "corrupt", NULL);
		g_set_error(error, HCACHE_ERROR, HCACHE_ERROR_CORRUPT, "%s (cache rebuilt)", text);
	} else if (full) {
		g_set_error_literal(error, HCACHE_ERROR, HCACHE_ERROR_FULL, text);
	} else {
		g_set_error_literal(error, HCACHE_ERROR, HCACHE_ERROR_IO, text);
	}
	return FALSE;
}

/* A prepared statement for the static string @sql, reset and unbound. */
static sqlite3_stmt *
stmt(Hcache *hc, const char *sql, GError **error)
{
	sqlite3_stmt *s;
	int rc;

	if (hc->db == NULL) {
		g_set_error_literal(error, HCACHE_ERROR, HCACHE_ERROR_IO,
				    "header cache: not available");
		return NULL;
	}
	s = g_hash_table_lookup(hc->stmts, sql);
	if (s != NULL) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		return s;
	}
	rc = sqlite3_prepare_v3(hc->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
	if (rc != SQLITE_OK) {
		sql_fail(hc, rc, "prepare", error);
		return NULL;
	}
	g_hash_table_insert(hc->stmts, (gpointer)sql, s);
	return s;
}

static gboolean
exec(Hcache *hc, const char *sql, GError **error)
{
	int rc;

	if (hc->db == NULL) {
		g_set_error_literal(error, HCACHE_ERROR, HCACHE_ERROR_IO,
				    "header cache: not available");
		return FALSE;
	}
	rc = sqlite3_exec(hc->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sql_fail(hc, rc, sql, error);
	return TRUE;
}


static void
bind_arg(sqlite3_stmt *s, int i, const SqlArg *a)
{
	gsize len;
	const void *p;

	switch (a->kind) {
	case ARG_INT:
		sqlite3_bind_int64(s, i, a->i);
		break;
	case ARG_TEXT:
		if (a->s == NULL)
			sqlite3_bind_null(s, i);
		else
			sqlite3_bind_text(s, i, a->s, -1, SQLITE_TRANSIENT);
		break;
	case ARG_BLOB:
		if (a->b == NULL) {
			sqlite3_bind_null(s, i);
			break;
		}
		p = g_bytes_get_data(a->b, &len);
		sqlite3_bind_blob64(s, i, p ? p : "", len, SQLITE_TRANSIENT);
		break;
	}
}

/* Runs @sql with @args, calling @fn (may be NULL) on each row. Returns the row count, or
 * -1 with @error set (the failure named @what, see sql_fail()). */
gint64
hcache_sql_query(Hcache *hc, const char *what, const char *sql, const SqlArg *args, guint n, SqlRowFn fn,
	  gpointer data, GError **error)
{
	sqlite3_stmt *s = stmt(hc, sql, error);
	gint64 rows = 0;
	int rc;

	if (s == NULL)
		return -1;
	for (guint i = 0; i < n; i++)
		bind_arg(s, (int)i + 1, &args[i]);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (fn != NULL)
			fn(s, data);
		rows++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		sql_fail(hc, rc, what, error);
		return -1;
	}
	return rows;
}

/* A statement without result rows: how many rows it changed, or -1 with @error set. */
gint64
hcache_sql_run(Hcache *hc, const char *sql, const SqlArg *args, guint n, GError **error)
{
	if (hcache_sql_query(hc, "write", sql, args, n, NULL, NULL, error) < 0)
		return -1;
	return sqlite3_changes(hc->db);
}

/* Row callbacks for one-column results: the last row's value wins. */
static void
row_int(sqlite3_stmt *s, gpointer data)
{
	*(gint64 *)data = sqlite3_column_int64(s, 0);
}

static void
row_text(sqlite3_stmt *s, gpointer data)
{
	g_free(*(char **)data);
	*(char **)data = g_strdup((const char *)sqlite3_column_text(s, 0));
}

static void
finalize_all(Hcache *hc)
{
	GHashTableIter it;
	gpointer v;

	g_hash_table_iter_init(&it, hc->stmts);
	while (g_hash_table_iter_next(&it, NULL, &v))
		sqlite3_finalize(v);
	g_hash_table_remove_all(hc->stmts);
}

/* ---- files and permissions --------------------------------------------------------- */

static gboolean
ensure_dir(const char *dir, GError **error)
{
	struct stat st;

	if (g_mkdir_with_parents(dir, 0700) != 0) {
		int e = errno;

		g_set_error(error, HCACHE_ERROR, e == ENOSPC ? HCACHE_ERROR_FULL : HCACHE_ERROR_IO,
			    "header cache: cannot create %s: %s", dir, g_strerror(e));
		return FALSE;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		g_set_error(error, HCACHE_ERROR, HCACHE_ERROR_IO,
			    "header cache: %s is not a directory", dir);
		return FALSE;
	}
	if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) != 0) {
		int e = errno;

		g_set_error(error, HCACHE_ERROR, HCACHE_ERROR_IO, "header cache: chmod %s: %s", dir,
			    g_strerror(e));
		return FALSE;
	}
	return TRUE;
}

/* Creates @path 0600 if missing and tightens it if it exists (no symlinks followed). */
static gboolean
ensure_file(const char *path, gboolean create, GError **error)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);

	if (fd < 0) {
		int e = errno;

		if (!create && e == ENOENT)
			return TRUE;
		g_set_error(error, HCACHE_ERROR, e == ENOSPC ? HCACHE_ERROR_FULL : HCACHE_ERROR_IO,
			    "header cache: cannot open %s: %s", path, g_strerror(e));
		return FALSE;
	}
	if (fchmod(fd, 0600) != 0) {
		int e = errno;

		close(fd);
		g_set_error(error, HCACHE_ERROR, HCACHE_ERROR_IO, "header cache: chmod %s: %s",
			    path, g_strerror(e));
		return FALSE;
	}
	close(fd);
	return TRUE;
}

static void
tighten_sidecars(Hcache *hc)
{
	g_autofree char *wal = g_strconcat(hc->db_path, "-wal", NULL);
	g_autofree char *shm = g_strconcat(hc->db_path, "-shm", NULL);

	ensure_file(wal, FALSE, NULL);
	ensure_file(shm, FALSE, NULL);
}

static int
take_lock(const char *dir, GError **error)
{
	g_autofree char *path = g_build_filename(dir, LOCK_NAME, NULL);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	char buf[32];

	if (fd < 0) {
		int e = errno;

		g_set_error(error, HCACHE_ERROR, e == ENOSPC ? HCACHE_ERROR_FULL : HCACHE_ERROR_IO,
			    "header cache: cannot open %s: %s", path, g_strerror(e));
		return -1;
	}
	fchmod(fd, 0600);
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		long pid = 0;

		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			pid = strtol(buf, NULL, 10);
		}
		if (e == EWOULDBLOCK)
			g_set_error(error, HCACHE_ERROR, HCACHE_ERROR_IN_USE,
				    "cache in use by another imapfs (pid %ld): %s", pid, dir);
		else
			g_set_error(error, HCACHE_ERROR, HCACHE_ERROR_IO,
				    "header cache: cannot lock %s: %s", path, g_strerror(e));
		return -1;
	}
	g_snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, strlen(buf), 0) < 0)
		g_debug("header cache: cannot write the pid to %s", path);
	return fd;
}

/* ---- opening, checking, rebuilding ---------------------------------------------------- */

static void
close_db(Hcache *hc)
{
	finalize_all(hc);
	if (hc->db != NULL)
		sqlite3_close_v2(hc->db);
	hc->db = NULL;
}

/* Moves the database (and its WAL) aside, keeping only the latest bad copy. */
static void
move_aside(Hcache *hc)
{
	static const char *const sfx[] = {"", "-wal", "-shm"};
	g_autoptr(GDir) d = g_dir_open(hc->dir, 0, NULL);
	const char *n;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;

	while (d != NULL && (n = g_dir_read_name(d)) != NULL) {
		if (g_str_has_prefix(n, DB_NAME ".bad-")) {
			g_autofree char *p = g_build_filename(hc->dir, n, NULL);

			g_unlink(p);
		}
	}
	for (guint i = 0; i < G_N_ELEMENTS(sfx); i++) {
		g_autofree char *from = g_strconcat(hc->db_path, sfx[i], NULL);
		g_autofree char *to =
			g_strdup_printf("%s.bad-%" G_GINT64_FORMAT "%s", hc->db_path, now, sfx[i]);

		if (i == 2)
			g_unlink(from); /* the shm index is rebuilt from the WAL */
		else if (g_rename(from, to) != 0 && errno != ENOENT)
			g_unlink(from);
	}
}

static gint64
query_int(sqlite3 *db, const char *sql, int *rc_out)
{
	sqlite3_stmt *s = NULL;
	gint64 v = 0;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);

	if (rc == SQLITE_OK) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			v = sqlite3_column_int64(s, 0);
			rc = SQLITE_OK;
		} else if (rc == SQLITE_DONE) {
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(s);
	*rc_out = rc;
	return v;
}

typedef enum { OPEN_OK, OPEN_BAD, OPEN_FAIL } OpenResult;

static OpenResult
try_open_db(Hcache *hc, GError **error)
{
	sqlite3_stmt *s = NULL;
	gint64 version;
	char *msg = NULL;
	int rc;
	gboolean ok;

	if (!ensure_file(hc->db_path, TRUE, error))
		return OPEN_FAIL;
	tighten_sidecars(hc);
	rc = sqlite3_open_v2(hc->db_path, &hc->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK)
		goto sqlerr;
	sqlite3_busy_timeout(hc->db, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(hc->db, 1);

	version = query_int(hc->db, "PRAGMA user_version", &rc);
	if (rc != SQLITE_OK)
		goto sqlerr;
	if (version > HCACHE_SCHEMA_VERSION || version < 0) {
		g_message("header cache %s has schema version %" G_GINT64_FORMAT
			  " (this imapfs knows %d): rebuilding it",
			  hc->db_path, version, HCACHE_SCHEMA_VERSION);
		return OPEN_BAD;
	}
	rc = sqlite3_exec(hc->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
			  &msg);
	sqlite3_free(msg);
	if (rc != SQLITE_OK)
		goto sqlerr;
	tighten_sidecars(hc);

	/* quick_check reads every page once: cheap next to refetching, and it catches a
	 * truncated file before the tree is built from it. */
	rc = sqlite3_prepare_v2(hc->db, "PRAGMA quick_check(1)", -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	ok = rc == SQLITE_ROW && g_strcmp0((const char *)sqlite3_column_text(s, 0), "ok") == 0;
	if (rc == SQLITE_ROW && !ok)
		g_message("header cache %s failed its check (%s): rebuilding it", hc->db_path,
			  (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	if (rc == SQLITE_ROW && !ok)
		return OPEN_BAD;
	if (rc != SQLITE_ROW)
		goto sqlerr;

	if (version < HCACHE_SCHEMA_VERSION) {
		g_autofree char *set =
			g_strdup_printf("PRAGMA user_version=%d", HCACHE_SCHEMA_VERSION);

		rc = sqlite3_exec(hc->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			goto sqlerr;
		if (!migrate(hc->db, (int)version, error)) {
			sqlite3_exec(hc->db, "ROLLBACK", NULL, NULL, NULL);
			return OPEN_FAIL;
		}
		rc = sqlite3_exec(hc->db, set, NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(hc->db, "COMMIT", NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			sqlite3_exec(hc->db, "ROLLBACK", NULL, NULL, NULL);
			goto sqlerr;
		}
	}
	hc->gen = (guint64)query_int(hc->db, "SELECT max(lgen) FROM message", &rc);
	if (rc != SQLITE_OK)
		goto sqlerr;
	return OPEN_OK;

sqlerr:
	if (is_corrupt(rc)) {
		g_message("header cache %s is not a valid database (%s): rebuilding it",
			  hc->db_path, sqlite3_errstr(rc));
		return OPEN_BAD;
	}
	g_set_error(error, HCACHE_ERROR,
		    (rc & 0xff) == SQLITE_FULL ? HCACHE_ERROR_FULL : HCACHE_ERROR_IO,
		    "header cache %s: %s", hc->db_path,
		    hc->db ? sqlite3_errmsg(hc->db) : sqlite3_errstr(rc));
	return OPEN_FAIL;
}

static gboolean
open_db_locked(Hcache *hc, GError **error)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		OpenResult r = try_open_db(hc, error);

		if (r == OPEN_OK)
			return TRUE;
		close_db(hc);
		if (r == OPEN_FAIL)
			return FALSE;
		move_aside(hc);
		hc->rebuilds++;
	}
	g_set_error(error, HCACHE_ERROR, HCACHE_ERROR_IO,
		    "header cache %s: still unusable after a rebuild", hc->db_path);
	return FALSE;
}

static gboolean
rebuild_locked(Hcache *hc, const char *why, GError **error)
{
	g_debug("header cache: rebuilding (%s)", why);
	close_db(hc);
	move_aside(hc);
	hc->rebuilds++;
	hc->gen = 0;
	return open_db_locked(hc, error);
}

Hcache *
hcache_open(const char *dir, GError **error)
{
	g_autoptr(Hcache) hc = NULL;

	g_return_val_if_fail(dir != NULL, NULL);
	if (!ensure_dir(dir, error))
		return NULL;
	hc = g_new0(Hcache, 1);
	g_mutex_init(&hc->lock);
	hc->dir = g_strdup(dir);
	hc->db_path = g_build_filename(dir, DB_NAME, NULL);
	hc->stmts = g_hash_table_new(g_direct_hash, g_direct_equal);
	hc->lock_fd = take_lock(dir, error);
	if (hc->lock_fd < 0)
		return NULL;
	if (!open_db_locked(hc, error))
		return NULL;
	return g_steal_pointer(&hc);
}

void
hcache_close(Hcache *hc)
{
	if (hc == NULL)
		return;
	close_db(hc);
	if (hc->lock_fd >= 0)
		close(hc->lock_fd); /* releases the flock; the file stays (no unlink race) */
	g_hash_table_unref(hc->stmts);
	g_mutex_clear(&hc->lock);
	g_free(hc->db_path);
	g_free(hc->dir);
	g_free(hc);
}

const char *
hcache_get_dir(Hcache *hc)
{
	return hc->dir;
}

guint
hcache_get_rebuilds(Hcache *hc)
{
	guint n;

	g_mutex_lock(&hc->lock);
	n = hc->rebuilds;
	g_mutex_unlock(&hc->lock);
	return n;
}

/* ---- helpers -------------------------------------------------------------------------- */

static char *
flags_join(const char *const *flags)
{
	return flags ? g_strjoinv(" ", (char **)flags) : g_strdup("");
}

static char **
flags_split(const char *text)
{
	if (text == NULL || *text == '\0')
		return g_new0(char *, 1);
	return g_strsplit(text, " ", -1);
}

char *
hcache_sql_col_str(sqlite3_stmt *s, int i)
{
	return g_strdup((const char *)sqlite3_column_text(s, i));
}

static char *
msg_key(gint64 mbox, guint32 uidvalidity, guint32 uid)
{
	return g_strdup_printf("m:%" G_GINT64_FORMAT ":%u:%u", mbox, uidvalidity, uid);
}

gboolean
hcache_sql_begin(Hcache *hc, GError **error)
{
	return exec(hc, "BEGIN IMMEDIATE", error);
}

gboolean
hcache_sql_commit(Hcache *hc, GError **error)
{
	return exec(hc, "COMMIT", error);
}

/* Ends a locked operation: a failed one rolls back its open transaction (if any). */
void
hcache_sql_unlock_after(Hcache *hc, gboolean ok)
{
	if (!ok && hc->db != NULL && !sqlite3_get_autocommit(hc->db))
		sqlite3_exec(hc->db, "ROLLBACK", NULL, NULL, NULL);
	g_mutex_unlock(&hc->lock);
}

static void
not_found(GError **error, const char *what)
{
	g_set_error(error, HCACHE_ERROR, HCACHE_ERROR_NOT_FOUND, "header cache: no %s", what);
}

/* ---- mailboxes ---------------------------------------------------------------------- */

void
hcache_mailbox_clear(HcacheMailbox *mb)
{
	g_clear_pointer(&mb->name, g_free);
	g_clear_pointer(&mb->special_use, g_free);
}

void
hcache_mailbox_free(HcacheMailbox *mb)
{
	if (mb == NULL)
		return;
	hcache_mailbox_clear(mb);
	g_free(mb);
}

#define MBOX_COLS "id, name, delim, attrs, special_use, uidvalidity, uidnext, highestmodseq"

static void
read_mailbox(sqlite3_stmt *s, gpointer data)
{
	HcacheMailbox *out = data;

	out->id = sqlite3_column_int64(s, 0);
	out->name = hcache_sql_col_str(s, 1);
	out->delim = (char)sqlite3_column_int(s, 2);
	out->attrs = (guint)sqlite3_column_int64(s, 3);
	out->special_use = hcache_sql_col_str(s, 4);
	out->uidvalidity = (guint32)sqlite3_column_int64(s, 5);
	out->uidnext = (guint32)sqlite3_column_int64(s, 6);
	out->highestmodseq = (guint64)sqlite3_column_int64(s, 7);
}

static gint64
mailbox_id_locked(Hcache *hc, const char *name, gboolean create, GError **error)
{
	gint64 id = 0;

	if (hcache_sql_query(hc, "read mailbox", "SELECT id FROM mailbox WHERE name = ?",
		      ARGS(SQL_TEXT(name)), row_int, &id, error) < 0)
		return 0;
	if (id != 0 || !create) {
		if (id == 0)
			not_found(error, "such mailbox");
		return id;
	}
	if (hcache_sql_run(hc, "INSERT INTO mailbox(name) VALUES(?)", ARGS(SQL_TEXT(name)), error) < 0)
		return 0;
	return sqlite3_last_insert_rowid(hc->db);
}

gint64
hcache_mailbox_ensure(Hcache *hc, const char *name, GError **error)
{
	gint64 id;

	g_return_val_if_fail(name != NULL, 0);
	g_mutex_lock(&hc->lock);
	id = mailbox_id_locked(hc, name, TRUE, error);
	g_mutex_unlock(&hc->lock);
	return id;
}

gboolean
hcache_mailbox_get(Hcache *hc, const char *name, HcacheMailbox *out, GError **error)
{
	gint64 rows;

	memset(out, 0, sizeof(*out));
	g_mutex_lock(&hc->lock);
	rows = hcache_sql_query(hc, "read mailbox", "SELECT " MBOX_COLS " FROM mailbox WHERE name = ?",
			 ARGS(SQL_TEXT(name)), read_mailbox, out, error);
	if (rows == 0)
		not_found(error, "such mailbox");
	g_mutex_unlock(&hc->lock);
	return rows > 0;
}

gboolean
hcache_mailbox_put(Hcache *hc, HcacheMailbox *mb, GError **error)
{
	gboolean ok;

	g_return_val_if_fail(mb != NULL && mb->name != NULL, FALSE);
	g_mutex_lock(&hc->lock);
	ok = hcache_sql_run(hc,
		     "INSERT INTO mailbox(name, delim, attrs, special_use, uidvalidity, uidnext,"
		     " highestmodseq) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
		     " ON CONFLICT(name) DO UPDATE SET delim = ?2, attrs = ?3, special_use = ?4,"
		     " uidvalidity = CASE WHEN uidvalidity = 0 THEN ?5 ELSE uidvalidity END,"
		     " uidnext = ?6, highestmodseq = ?7",
		     ARGS(SQL_TEXT(mb->name), SQL_INT((unsigned char)mb->delim), SQL_INT(mb->attrs),
			  SQL_TEXT(mb->special_use), SQL_INT(mb->uidvalidity), SQL_INT(mb->uidnext),
			  SQL_INT(mb->highestmodseq)),
		     error) >= 0;
	if (ok)
		mb->id = mailbox_id_locked(hc, mb->name, FALSE, error);
	ok = ok && mb->id != 0;
	g_mutex_unlock(&hc->lock);
	return ok;
}

/* Deletes the messages and every inode number of mailbox @mbox. */
static gboolean
drop_messages_locked(Hcache *hc, gint64 mbox, GError **error)
{
	g_autofree char *lo = g_strdup_printf("m:%" G_GINT64_FORMAT ":", mbox);
	g_autofree char *hi = g_strdup_printf("m:%" G_GINT64_FORMAT ";", mbox);

	return hcache_sql_run(hc, "DELETE FROM message WHERE mbox = ?", ARGS(SQL_INT(mbox)), error) >= 0 &&
	       hcache_sql_run(hc, "DELETE FROM inode WHERE key >= ? AND key < ?",
		       ARGS(SQL_TEXT(lo), SQL_TEXT(hi)), error) >= 0;
}

gboolean
hcache_mailbox_set_uidvalidity(Hcache *hc, gint64 mbox, guint32 uidvalidity, gboolean *dropped,
			       GError **error)
{
	gint64 rows, old64 = 0;
	guint32 old;
	gboolean ok = FALSE;

	if (dropped != NULL)
		*dropped = FALSE;
	g_mutex_lock(&hc->lock);
	rows = hcache_sql_query(hc, "read mailbox", "SELECT uidvalidity FROM mailbox WHERE id = ?",
			 ARGS(SQL_INT(mbox)), row_int, &old64, error);
	if (rows < 0)
		goto out;
	if (rows == 0) {
		not_found(error, "such mailbox");
		goto out;
	}
	old = (guint32)old64;
	if (old == uidvalidity) {
		ok = TRUE;
		goto out;
	}
	if (!hcache_sql_begin(hc, error))
		goto out;
	/* also from 0: a mailbox seen for the first time owns no rows (none left over
	 * from a database rebuilt while ids were in use) */
	if (!drop_messages_locked(hc, mbox, error))
		goto out;
	if (hcache_sql_run(hc,
		    "UPDATE mailbox SET uidvalidity = ?, uidnext = 0, highestmodseq = 0"
		    " WHERE id = ?",
		    ARGS(SQL_INT(uidvalidity), SQL_INT(mbox)), error) < 0 ||
	    !hcache_sql_commit(hc, error))
		goto out;
	if (old != 0 && dropped != NULL)
		*dropped = TRUE;
	ok = TRUE;
out:
	hcache_sql_unlock_after(hc, ok);
	return ok;
}

static void
list_mailbox_row(sqlite3_stmt *s, gpointer data)
{
	HcacheMailbox *mb = g_new0(HcacheMailbox, 1);

	read_mailbox(s, mb);
	g_ptr_array_add(data, mb);
}

GPtrArray *
hcache_mailbox_list(Hcache *hc, GError **error)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)hcache_mailbox_free);

	g_mutex_lock(&hc->lock);
	if (hcache_sql_query(hc, "list mailboxes", "SELECT " MBOX_COLS " FROM mailbox ORDER BY name", NULL,
		      0, list_mailbox_row, out, error) < 0)
		g_clear_pointer(&out, g_ptr_array_unref);
	g_mutex_unlock(&hc->lock);
	return out;
}

/* Deletes mailbox @mbox with its messages. */
static gboolean
drop_mailbox_locked(Hcache *hc, gint64 mbox, GError **error)
{
	return drop_messages_locked(hc, mbox, error) &&
	       hcache_sql_run(hc, "DELETE FROM mailbox WHERE id = ?", ARGS(SQL_INT(mbox)), error) >= 0;
}

typedef struct {
	const char *from, *to;
	GArray *ids;	  /* gint64 */
	GPtrArray *names; /* the new names */
} RenameRows;

static void
rename_row(sqlite3_stmt *s, gpointer data)
{
	RenameRows *r = data;
	gint64 id = sqlite3_column_int64(s, 0);

	g_array_append_val(r->ids, id);
	g_ptr_array_add(r->names,
			g_strconcat(r->to,
				    (const char *)sqlite3_column_text(s, 1) + strlen(r->from),
				    NULL));
}

/* from<delim>x -> to<delim>x for every child; a row already named like a target is
 * replaced (its messages go with it). */
static gboolean
rename_children_locked(Hcache *hc, const char *from, const char *to, char delim, GError **error)
{
	g_autofree char *prefix = g_strdup_printf("%s%c", from, delim);
	RenameRows r = {from, to, g_array_new(FALSE, FALSE, sizeof(gint64)),
			g_ptr_array_new_with_free_func(g_free)};
	g_autoptr(GArray) ids = r.ids;
	g_autoptr(GPtrArray) names = r.names;

	/* substr() counts characters */
	if (hcache_sql_query(hc, "rename", "SELECT id, name FROM mailbox WHERE substr(name, 1, ?) = ?",
		      ARGS(SQL_INT(g_utf8_strlen(prefix, -1)), SQL_TEXT(prefix)), rename_row, &r,
		      error) < 0)
		return FALSE;
	for (guint i = 0; i < ids->len; i++) {
		const char *name = g_ptr_array_index(names, i);
		gint64 other = mailbox_id_locked(hc, name, FALSE, NULL);

		if (other != 0 && !drop_mailbox_locked(hc, other, error))
			return FALSE;
		if (hcache_sql_run(hc, "UPDATE mailbox SET name = ? WHERE id = ?",
			    ARGS(SQL_TEXT(name), SQL_INT(g_array_index(ids, gint64, i))),
			    error) < 0)
			return FALSE;
	}
	return TRUE;
}

gboolean
hcache_mailbox_rename(Hcache *hc, const char *from, const char *to, char delim, GError **error)
{
	gboolean ok = FALSE;
	gint64 id, other;

	g_return_val_if_fail(from != NULL && to != NULL, FALSE);
	if (strcmp(from, to) == 0)
		return TRUE;
	g_mutex_lock(&hc->lock);
	if (!hcache_sql_begin(hc, error))
		goto out;
	id = mailbox_id_locked(hc, from, FALSE, error);
	if (id == 0)
		goto out;
	other = mailbox_id_locked(hc, to, FALSE, NULL);
	if (other != 0 && !drop_mailbox_locked(hc, other, error))
		goto out;
	if (hcache_sql_run(hc, "UPDATE mailbox SET name = ? WHERE id = ?", ARGS(SQL_TEXT(to), SQL_INT(id)),
		    error) < 0)
		goto out;
	if (delim != 0 && !rename_children_locked(hc, from, to, delim, error))
		goto out;
	ok = hcache_sql_commit(hc, error);
out:
	hcache_sql_unlock_after(hc, ok);
	return ok;
}

gboolean
hcache_mailbox_delete(Hcache *hc, const char *name, GError **error)
{
	gboolean ok = FALSE;
	gint64 id;

	g_mutex_lock(&hc->lock);
	id = mailbox_id_locked(hc, name, FALSE, error);
	if (id == 0 || !hcache_sql_begin(hc, error))
		goto out;
	ok = drop_mailbox_locked(hc, id, error) && hcache_sql_commit(hc, error);
out:
	hcache_sql_unlock_after(hc, ok);
	return ok;
}

/* ---- inode numbers -------------------------------------------------------------------- */

static guint64
fnv(guint64 h, const void *data, gsize n)
{
	const guchar *p = data;

	for (gsize i = 0; i < n; i++) {
		h ^= p[i];
		h *= G_GUINT64_CONSTANT(0x100000001b3);
	}
	return h;
}

static guint64
mix(guint64 z)
{
	z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

guint64
hcache_hash_dir(const char *path)
{
	guint64 h = G_GUINT64_CONSTANT(0xcbf29ce484222325);

	h = fnv(h, "d", 2);
	return mix(fnv(h, path, strlen(path)));
}

guint64
hcache_hash_message(const char *mailbox, guint32 uidvalidity, guint32 uid)
{
	guint64 h = G_GUINT64_CONSTANT(0xcbf29ce484222325);
	guint32 v[2] = {uidvalidity, uid};

	h = fnv(h, "m", 2);
	h = fnv(h, mailbox, strlen(mailbox) + 1);
	return mix(fnv(h, v, sizeof(v)));
}

/* The number stored for @key, or a new one starting at @candidate. 0 on error. */
static guint64
inode_locked(Hcache *hc, const char *key, guint64 candidate, GError **error)
{
	gint64 found = 0, rows, changed;
	guint64 ino;

	rows = hcache_sql_query(hc, "read inode", "SELECT ino FROM inode WHERE key = ?",
			 ARGS(SQL_TEXT(key)), row_int, &found, error);
	if (rows < 0)
		return 0;
	if (rows > 0)
		return (guint64)found;
	for (ino = candidate;; ino++) {
		if (ino <= 1) /* 0 and FUSE_ROOT_ID */
			continue;
		changed = hcache_sql_run(hc, "INSERT OR IGNORE INTO inode(ino, key) VALUES(?, ?)",
				  ARGS(SQL_INT(ino), SQL_TEXT(key)), error);
		if (changed < 0)
			return 0;
		if (changed == 1)
			return ino;
	}
}

guint64
hcache_inode_dir(Hcache *hc, const char *path, GError **error)
{
	g_autofree char *key = g_strconcat("d:", path, NULL);
	guint64 ino;

	g_mutex_lock(&hc->lock);
	ino = inode_locked(hc, key, hcache_hash_dir(path), error);
	g_mutex_unlock(&hc->lock);
	return ino;
}

static char *
mailbox_name_locked(Hcache *hc, gint64 mbox, GError **error)
{
	char *name = NULL;
	gint64 rows = hcache_sql_query(hc, "read mailbox", "SELECT name FROM mailbox WHERE id = ?",
				ARGS(SQL_INT(mbox)), row_text, &name, error);

	if (rows == 0)
		not_found(error, "such mailbox");
	return name;
}

guint64
hcache_inode_message(Hcache *hc, gint64 mbox, guint32 uidvalidity, guint32 uid, GError **error)
{
	g_autofree char *key = msg_key(mbox, uidvalidity, uid);
	g_autofree char *name = NULL;
	guint64 ino = 0;

	g_mutex_lock(&hc->lock);
	name = mailbox_name_locked(hc, mbox, error);
	if (name != NULL)
		ino = inode_locked(hc, key, hcache_hash_message(name, uidvalidity, uid), error);
	g_mutex_unlock(&hc->lock);
	return ino;
}

/* ---- messages ------------------------------------------------------------------------- */

HcacheMessage *
hcache_message_new(void)
{
	return g_new0(HcacheMessage, 1);
}

void
hcache_message_free(HcacheMessage *msg)
{
	if (msg == NULL)
		return;
	g_strfreev(msg->flags);
	g_free(msg->date);
	g_free(msg->subject);
	g_free(msg->from);
	g_free(msg->to);
	g_free(msg->message_id);
	g_free(msg->references);
	g_free(msg->in_reply_to);
	g_clear_pointer(&msg->extra, g_bytes_unref);
	g_free(msg->filename);
	g_free(msg);
}

guint64
hcache_ticket(Hcache *hc)
{
	guint64 t;

	g_mutex_lock(&hc->lock);
	t = hc->gen;
	g_mutex_unlock(&hc->lock);
	return t;
}

/* The ordering rule in SQL: parameter T is the ticket (-1 = force), M the new modseq
 * (both "?N" strings); "modseq" and "lgen" are the row's current values. */
#define APPLY_RULE(T, M)                                                                           \
	"(" T " < 0 OR CASE WHEN " M " <> 0 AND modseq <> 0 AND " M " <> modseq THEN " M           \
	" > modseq ELSE " T " >= lgen END)"
#define SQL_TICKET(t) SQL_INT((t) == HCACHE_TICKET_FORCE ? -1 : (gint64)(t))
#define PUT_RULE      APPLY_RULE("?18", "?5") /* hcache_messages_put() */
#define FLAGS_RULE    APPLY_RULE("?6", "?5")  /* hcache_flags_apply() */

gboolean
hcache_messages_put(Hcache *hc, gint64 mbox, guint32 uidvalidity, HcacheMessage *const *msgs,
		    guint n, guint64 ticket, GError **error)
{
	g_autofree char *name = NULL;
	gboolean ok = FALSE;

	g_mutex_lock(&hc->lock);
	name = mailbox_name_locked(hc, mbox, error);
	if (name == NULL || !hcache_sql_begin(hc, error))
		goto out;
	for (guint i = 0; i < n; i++) {
		HcacheMessage *m = msgs[i];
		g_autofree char *flags = flags_join((const char *const *)m->flags);
		g_autofree char *key = msg_key(mbox, uidvalidity, m->uid);
		gint64 ino;

		/* the number first (usually just a lookup), so the row is written once */
		ino = (gint64)inode_locked(hc, key, hcache_hash_message(name, uidvalidity, m->uid),
					   error);
		if (ino == 0)
			goto out;
		if (hcache_sql_run(hc,
			    "INSERT INTO message(mbox, uidvalidity, uid, flags, modseq, size,"
			    " true_size, idate, idate_tz, date, subject, from_, to_, message_id,"
			    " extra, filename, ino, references_, in_reply_to)"
			    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
			    " ?15, ?16, ?17, ?19, ?20)"
			    " ON CONFLICT DO UPDATE SET"
			    " flags = CASE WHEN " PUT_RULE " THEN ?4 ELSE flags END,"
			    " modseq = CASE WHEN " PUT_RULE " AND ?5 <> 0 THEN ?5"
			    " ELSE modseq END,"
			    " size = ?6,"
			    " true_size = CASE WHEN ?7 <> 0 THEN ?7 ELSE true_size END,"
			    " idate = ?8, idate_tz = ?9, date = ?10, subject = ?11, from_ = ?12,"
			    " to_ = ?13, message_id = ?14, extra = ?15,"
			    " filename = coalesce(?16, filename), ino = ?17,"
			    " references_ = coalesce(?19, references_),"
			    " in_reply_to = coalesce(?20, in_reply_to)",
			    ARGS(SQL_INT(mbox), SQL_INT(uidvalidity), SQL_INT(m->uid),
				 SQL_TEXT(flags), SQL_INT(m->modseq), SQL_INT(m->size),
				 SQL_INT(m->true_size), SQL_INT(m->internaldate),
				 SQL_INT(m->internaldate_tz), SQL_TEXT(m->date),
				 SQL_TEXT(m->subject), SQL_TEXT(m->from), SQL_TEXT(m->to),
				 SQL_TEXT(m->message_id), SQL_BLOB(m->extra), SQL_TEXT(m->filename),
				 SQL_INT(ino), SQL_TICKET(ticket), SQL_TEXT(m->references),
				 SQL_TEXT(m->in_reply_to)),
			    error) < 0)
			goto out;
		m->ino = (guint64)ino;
	}
	ok = hcache_sql_commit(hc, error);
out:
	hcache_sql_unlock_after(hc, ok);
	return ok;
}

gboolean
hcache_flags_apply(Hcache *hc, gint64 mbox, guint32 uidvalidity, const HcacheFlagUpdate *updates,
		   guint n, guint64 ticket, guint *applied, GError **error)
{
	gboolean ok = FALSE;
	guint count = 0;

	g_mutex_lock(&hc->lock);
	if (!hcache_sql_begin(hc, error))
		goto out;
	for (guint i = 0; i < n; i++) {
		g_autofree char *flags = flags_join(updates[i].flags);
		gint64 changed = hcache_sql_run(
			hc,
			"UPDATE message SET flags = ?4,"
			" modseq = CASE WHEN ?5 <> 0 THEN ?5 ELSE modseq END"
			" WHERE mbox = ?1 AND uidvalidity = ?2 AND uid = ?3 AND " FLAGS_RULE,
			ARGS(SQL_INT(mbox), SQL_INT(uidvalidity), SQL_INT(updates[i].uid),
			     SQL_TEXT(flags), SQL_INT(updates[i].modseq), SQL_TICKET(ticket)),
			error);

		if (changed < 0)
			goto out;
		count += (guint)changed;
	}
	ok = hcache_sql_commit(hc, error);
out:
	hcache_sql_unlock_after(hc, ok);
	if (applied != NULL)
		*applied = ok ? count : 0;
	return ok;
}

gboolean
hcache_flags_local(Hcache *hc, gint64 mbox, guint32 uidvalidity, guint32 uid,
		   const char *const *flags, guint64 modseq, GError **error)
{
	g_autofree char *text = flags_join(flags);
	gint64 changed;

	g_mutex_lock(&hc->lock);
	changed = hcache_sql_run(hc,
			  "UPDATE message SET flags = ?1, lgen = ?2,"
			  " modseq = CASE WHEN ?3 <> 0 THEN ?3 ELSE modseq END"
			  " WHERE mbox = ?4 AND uidvalidity = ?5 AND uid = ?6",
			  ARGS(SQL_TEXT(text), SQL_INT(hc->gen + 1), SQL_INT(modseq), SQL_INT(mbox),
			       SQL_INT(uidvalidity), SQL_INT(uid)),
			  error);
	if (changed == 0)
		not_found(error, "such message");
	if (changed > 0)
		hc->gen++;
	g_mutex_unlock(&hc->lock);
	return changed > 0;
}

/* Sets one column of one message (@value is the first parameter of @sql). */
static gboolean
update_one(Hcache *hc, const char *sql, gint64 mbox, guint32 uidvalidity, guint32 uid, SqlArg value,
	   GError **error)
{
	gint64 changed;

	g_mutex_lock(&hc->lock);
	changed = hcache_sql_run(hc, sql, ARGS(value, SQL_INT(mbox), SQL_INT(uidvalidity), SQL_INT(uid)),
			  error);
	if (changed == 0)
		not_found(error, "such message");
	g_mutex_unlock(&hc->lock);
	return changed > 0;
}

gboolean
hcache_message_set_true_size(Hcache *hc, gint64 mbox, guint32 uidvalidity, guint32 uid,
			     guint64 size, GError **error)
{
	return update_one(hc,
			  "UPDATE message SET true_size = ? WHERE mbox = ? AND"
			  " uidvalidity = ? AND uid = ?",
			  mbox, uidvalidity, uid, SQL_INT(size), error);
}

gboolean
hcache_message_set_filename(Hcache *hc, gint64 mbox, guint32 uidvalidity, guint32 uid,
			    const char *filename, GError **error)
{
	g_return_val_if_fail(filename != NULL, FALSE);
	return update_one(hc,
			  "UPDATE message SET filename = ? WHERE mbox = ? AND"
			  " uidvalidity = ? AND uid = ?",
			  mbox, uidvalidity, uid, SQL_TEXT(filename), error);
}

#define MSG_COLS                                                                                   \
	"uid, flags, modseq, size, true_size, idate, idate_tz, date, subject, from_, to_,"         \
	" message_id, extra, filename, ino, references_, in_reply_to"

static void
read_message(sqlite3_stmt *s, gpointer data)
{
	HcacheMessage *m = data;
	const void *blob;

	m->uid = (guint32)sqlite3_column_int64(s, 0);
	m->flags = flags_split((const char *)sqlite3_column_text(s, 1));
	m->modseq = (guint64)sqlite3_column_int64(s, 2);
	m->size = (guint64)sqlite3_column_int64(s, 3);
	m->true_size = (guint64)sqlite3_column_int64(s, 4);
	m->internaldate = sqlite3_column_int64(s, 5);
	m->internaldate_tz = sqlite3_column_int(s, 6);
	m->date = hcache_sql_col_str(s, 7);
	m->subject = hcache_sql_col_str(s, 8);
	m->from = hcache_sql_col_str(s, 9);
	m->to = hcache_sql_col_str(s, 10);
	m->message_id = hcache_sql_col_str(s, 11);
	blob = sqlite3_column_blob(s, 12);
	if (sqlite3_column_type(s, 12) != SQLITE_NULL)
		m->extra = g_bytes_new(blob, sqlite3_column_bytes(s, 12));
	m->filename = hcache_sql_col_str(s, 13);
	m->ino = (guint64)sqlite3_column_int64(s, 14);
	m->references = hcache_sql_col_str(s, 15);
	m->in_reply_to = hcache_sql_col_str(s, 16);
}

HcacheMessage *
hcache_message_get(Hcache *hc, gint64 mbox, guint32 uidvalidity, guint32 uid, GError **error)
{
	g_autoptr(HcacheMessage) m = hcache_message_new();
	gint64 rows;

	g_mutex_lock(&hc->lock);
	rows = hcache_sql_query(hc, "read message",
			 "SELECT " MSG_COLS " FROM message WHERE mbox = ? AND uidvalidity = ?"
			 " AND uid = ?",
			 ARGS(SQL_INT(mbox), SQL_INT(uidvalidity), SQL_INT(uid)), read_message, m,
			 error);
	if (rows == 0)
		not_found(error, "such message");
	g_mutex_unlock(&hc->lock);
	return rows > 0 ? g_steal_pointer(&m) : NULL;
}

typedef struct {
	HcacheMessageFn fn;
	gpointer data;
} ForeachRows;

static void
foreach_row(sqlite3_stmt *s, gpointer data)
{
	ForeachRows *r = data;
	g_autoptr(HcacheMessage) m = hcache_message_new();

	read_message(s, m);
	r->fn(m, r->data);
}

gboolean
hcache_messages_foreach(Hcache *hc, gint64 mbox, guint32 uidvalidity, HcacheMessageFn fn,
			gpointer user_data, GError **error)
{
	ForeachRows r = {fn, user_data};
	gint64 rows;

	g_mutex_lock(&hc->lock);
	rows = hcache_sql_query(hc, "load messages",
			 "SELECT " MSG_COLS " FROM message WHERE mbox = ? AND uidvalidity = ?"
			 " ORDER BY uid",
			 ARGS(SQL_INT(mbox), SQL_INT(uidvalidity)), foreach_row, &r, error);
	g_mutex_unlock(&hc->lock);
	return rows >= 0;
}

static void
steal_cb(HcacheMessage *msg, gpointer user_data)
{
	HcacheMessage *copy = g_memdup2(msg, sizeof(*msg));

	memset(msg, 0, sizeof(*msg));
	g_ptr_array_add(user_data, copy);
}

GPtrArray *
hcache_messages_load(Hcache *hc, gint64 mbox, guint32 uidvalidity, GError **error)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)hcache_message_free);

	if (!hcache_messages_foreach(hc, mbox, uidvalidity, steal_cb, out, error))
		g_clear_pointer(&out, g_ptr_array_unref);
	return out;
}

typedef struct {
	ImapUidSet *set;
	guint32 first, last; /* the range being collected; first 0: none yet */
	guint64 maxm;
} UidRows;

static void
uid_row(sqlite3_stmt *s, gpointer data)
{
	UidRows *r = data;
	guint32 uid = (guint32)sqlite3_column_int64(s, 0);
	guint64 m = (guint64)sqlite3_column_int64(s, 1);

	r->maxm = MAX(r->maxm, m);
	if (r->first != 0 && uid == r->last + 1) {
		r->last = uid;
		return;
	}
	if (r->first != 0)
		imap_uidset_add_range(r->set, r->first, r->last);
	r->first = r->last = uid;
}

ImapUidSet *
hcache_messages_uids(Hcache *hc, gint64 mbox, guint32 uidvalidity, guint64 *max_modseq,
		     GError **error)
{
	UidRows r = {imap_uidset_new(), 0, 0, 0};

	g_mutex_lock(&hc->lock);
	if (hcache_sql_query(hc, "load uids",
		      "SELECT uid, modseq FROM message WHERE mbox = ? AND uidvalidity = ?"
		      " ORDER BY uid",
		      ARGS(SQL_INT(mbox), SQL_INT(uidvalidity)), uid_row, &r, error) < 0)
		g_clear_pointer(&r.set, imap_uidset_free);
	else if (r.first != 0)
		imap_uidset_add_range(r.set, r.first, r.last);
	g_mutex_unlock(&hc->lock);
	if (max_modseq != NULL)
		*max_modseq = r.maxm;
	return r.set;
}

guint
hcache_messages_count(Hcache *hc, gint64 mbox, guint32 uidvalidity, GError **error)
{
	gint64 n = 0;

	g_mutex_lock(&hc->lock);
	hcache_sql_query(hc, "count messages",
		  "SELECT count(*) FROM message WHERE mbox = ? AND uidvalidity = ?",
		  ARGS(SQL_INT(mbox), SQL_INT(uidvalidity)), row_int, &n, error);
	g_mutex_unlock(&hc->lock);
	return (guint)n;
}

gboolean
hcache_messages_delete(Hcache *hc, gint64 mbox, guint32 uidvalidity, const guint32 *uids, guint n,
		       guint *deleted, GError **error)
{
	gboolean ok = FALSE;
	guint count = 0;

	g_mutex_lock(&hc->lock);
	if (!hcache_sql_begin(hc, error))
		goto out;
	for (guint i = 0; i < n; i++) {
		gint64 changed = hcache_sql_run(
			hc, "DELETE FROM message WHERE mbox = ? AND uidvalidity = ? AND uid = ?",
			ARGS(SQL_INT(mbox), SQL_INT(uidvalidity), SQL_INT(uids[i])), error);

		if (changed < 0)
			goto out;
		count += (guint)changed;
	}
	ok = hcache_sql_commit(hc, error);
out:
	hcache_sql_unlock_after(hc, ok);
	if (deleted != NULL)
		*deleted = ok ? count : 0;
	return ok;
}

/* Deletes range by range (a VANISHED (EARLIER) set may span billions of UIDs). */
gboolean
hcache_messages_delete_set(Hcache *hc, gint64 mbox, guint32 uidvalidity, const ImapUidSet *uids,
			   guint *deleted, GError **error)
{
	g_autofree char *text = imap_uidset_to_string(uids);
	g_auto(GStrv) parts = g_strsplit(text ? text : "", ",", -1);
	gboolean ok = FALSE;
	guint count = 0;

	g_mutex_lock(&hc->lock);
	if (!hcache_sql_begin(hc, error))
		goto out;
	for (guint i = 0; parts[i] != NULL; i++) {
		char *colon = strchr(parts[i], ':');
		guint64 a, b;
		gint64 changed;

		if (parts[i][0] == '\0')
			continue;
		a = parts[i][0] == '*' ? G_MAXUINT32 : g_ascii_strtoull(parts[i], NULL, 10);
		b = colon == NULL     ? a
		    : colon[1] == '*' ? G_MAXUINT32
				      : g_ascii_strtoull(colon + 1, NULL, 10);
		changed = hcache_sql_run(hc,
				  "DELETE FROM message WHERE mbox = ? AND uidvalidity = ? AND"
				  " uid BETWEEN ? AND ?",
				  ARGS(SQL_INT(mbox), SQL_INT(uidvalidity), SQL_INT(MIN(a, b)),
				       SQL_INT(MAX(a, b))),
				  error);
		if (changed < 0)
			goto out;
		count += (guint)changed;
	}
	ok = hcache_sql_commit(hc, error);
out:
	hcache_sql_unlock_after(hc, ok);
	if (deleted != NULL)
		*deleted = ok ? count : 0;
	return ok;
}
