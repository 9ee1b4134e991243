/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hcache-private.h: what the files of the header cache share (hcache.c owns the database,
 * its schema and its statements; hcache-journal.c keeps the journal of writes in flight in
 * the same database). Nothing else includes it.
 */
#pragma once

#include <sqlite3.h>

#include "hcache.h"

struct _Hcache {
	GMutex lock;
	char *dir;
	char *db_path;
	int lock_fd;
	sqlite3 *db;
	GHashTable *stmts; /* static SQL text -> sqlite3_stmt* */
	guint64 gen;	   /* last local write generation (flag ordering) */
	guint rebuilds;
};

/*
 * The one way statements run: hcache_sql_query() prepares (cached), binds its arguments to
 * ?1, ?2, ... in order, steps through every row handing it to a callback, and resets, so no
 * statement is left open between calls. Arguments are written ARGS(SQL_INT(x),
 * SQL_TEXT(s), ...); the macros convert each value, so varargs promotion cannot bite.
 * Callers hold hc->lock.
 */
typedef struct {
	enum { ARG_INT, ARG_TEXT, ARG_BLOB } kind;
	gint64 i;
	const char *s; /* NULL binds NULL */
	GBytes *b;     /* NULL binds NULL */
} SqlArg;
#define SQL_INT(x)  ((SqlArg){.kind = ARG_INT, .i = (gint64)(x)})
#define SQL_TEXT(x) ((SqlArg){.kind = ARG_TEXT, .s = (x)})
#define SQL_BLOB(x) ((SqlArg){.kind = ARG_BLOB, .b = (x)})
#define ARGS(...)   (const SqlArg[]){__VA_ARGS__}, G_N_ELEMENTS(((const SqlArg[]){__VA_ARGS__}))

typedef void (*SqlRowFn)(sqlite3_stmt *s, gpointer data);

/* Runs @sql (a static string: statements are cached by address) with @args, calling @fn
 * (may be NULL) on each row. Returns the row count, or -1 with @error set (a corrupt
 * database is rebuilt). */
gint64 hcache_sql_query(Hcache *hc, const char *what, const char *sql, const SqlArg *args, guint n,
			SqlRowFn fn, gpointer data, GError **error);
/* A statement without result rows: how many rows it changed, or -1 with @error set. */
gint64 hcache_sql_run(Hcache *hc, const char *sql, const SqlArg *args, guint n, GError **error);
gboolean hcache_sql_begin(Hcache *hc, GError **error);
gboolean hcache_sql_commit(Hcache *hc, GError **error);
/* Ends a locked operation: a failed one rolls back its open transaction (if any). */
void hcache_sql_unlock_after(Hcache *hc, gboolean ok);
char *hcache_sql_col_str(sqlite3_stmt *s, int i);
