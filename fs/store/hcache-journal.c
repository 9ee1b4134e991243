/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hcache-journal.c: the journal of writes in flight, a table of the header cache's
 * database (see hcache.h). Each call is one committed transaction: WAL makes a committed
 * row survive the process being killed, which is the crash this journal is for.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <string.h>

#include "hcache-private.h"

void
hcache_journal_entry_free(HcacheJournalEntry *e)
{
	if (e == NULL)
		return;
	g_free(e->mailbox);
	g_free(e->uids);
	g_free(e->dest);
	g_free(e->message_id);
	g_free(e->path);
	g_free(e);
}

gint64
hcache_journal_add(Hcache *hc, HcacheJournalEntry *e, GError **error)
{
	gint64 id = 0;

	g_return_val_if_fail(e->mailbox != NULL, 0);
	e->created = g_get_real_time() / G_USEC_PER_SEC;
	g_mutex_lock(&hc->lock);
	if (hcache_sql_run(hc,
			   "INSERT INTO journal(op, mailbox, uidvalidity, uids, dest, message_id,"
			   " size, path, step, created) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
			   ARGS(SQL_INT(e->op), SQL_TEXT(e->mailbox), SQL_INT(e->uidvalidity),
				SQL_TEXT(e->uids), SQL_TEXT(e->dest), SQL_TEXT(e->message_id),
				SQL_INT(e->size), SQL_TEXT(e->path), SQL_INT(e->step),
				SQL_INT(e->created)),
			   error) == 1)
		id = sqlite3_last_insert_rowid(hc->db);
	g_mutex_unlock(&hc->lock);
	e->id = id;
	return id;
}

gboolean
hcache_journal_set_step(Hcache *hc, gint64 id, gint step, const char *uids, GError **error)
{
	gint64 n;

	g_mutex_lock(&hc->lock);
	n = hcache_sql_run(hc,
			   "UPDATE journal SET step = ?2, uids = coalesce(?3, uids) WHERE id = ?1",
			   ARGS(SQL_INT(id), SQL_INT(step), SQL_TEXT(uids)), error);
	g_mutex_unlock(&hc->lock);
	return n >= 0;
}

gboolean
hcache_journal_set_path(Hcache *hc, gint64 id, gint step, const char *path, GError **error)
{
	gint64 n;

	g_mutex_lock(&hc->lock);
	n = hcache_sql_run(hc, "UPDATE journal SET step = ?2, path = ?3 WHERE id = ?1",
			   ARGS(SQL_INT(id), SQL_INT(step), SQL_TEXT(path)), error);
	g_mutex_unlock(&hc->lock);
	return n >= 0;
}

gboolean
hcache_journal_remove(Hcache *hc, gint64 id, GError **error)
{
	gint64 n;

	g_mutex_lock(&hc->lock);
	n = hcache_sql_run(hc, "DELETE FROM journal WHERE id = ?1", ARGS(SQL_INT(id)), error);
	g_mutex_unlock(&hc->lock);
	return n >= 0;
}

static void
read_entry(sqlite3_stmt *s, gpointer data)
{
	HcacheJournalEntry *e = g_new0(HcacheJournalEntry, 1);

	e->id = sqlite3_column_int64(s, 0);
	e->op = (HcacheJournalOp)sqlite3_column_int(s, 1);
	e->mailbox = hcache_sql_col_str(s, 2);
	e->uidvalidity = (guint32)sqlite3_column_int64(s, 3);
	e->uids = hcache_sql_col_str(s, 4);
	e->dest = hcache_sql_col_str(s, 5);
	e->message_id = hcache_sql_col_str(s, 6);
	e->size = (guint64)sqlite3_column_int64(s, 7);
	e->path = hcache_sql_col_str(s, 8);
	e->step = sqlite3_column_int(s, 9);
	e->created = sqlite3_column_int64(s, 10);
	g_ptr_array_add(data, e);
}

GPtrArray *
hcache_journal_list(Hcache *hc, HcacheJournalOp op, GError **error)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)hcache_journal_entry_free);
	gint64 n;

	g_mutex_lock(&hc->lock);
	n = hcache_sql_query(hc, "journal", 
			     "SELECT id, op, mailbox, uidvalidity, uids, dest, message_id, size,"
			     " path, step, created FROM journal WHERE ?1 = 0 OR op = ?1 ORDER BY id",
			     ARGS(SQL_INT(op)), read_entry, out, error);
	g_mutex_unlock(&hc->lock);
	if (n < 0)
		g_clear_pointer(&out, g_ptr_array_unref);
	return out;
}

/* @name after the rename of @from to @to (with @delim for the mailboxes below), or NULL
 * when it is not concerned. */
static char *
renamed(const char *name, const char *from, const char *to, char delim)
{
	gsize len = strlen(from);

	if (name == NULL)
		return NULL;
	if (strcmp(name, from) == 0)
		return g_strdup(to);
	if (delim != 0 && strncmp(name, from, len) == 0 && name[len] == delim)
		return g_strconcat(to, name + len, NULL);
	return NULL;
}

gboolean
hcache_journal_rename(Hcache *hc, const char *from, const char *to, char delim, GError **error)
{
	g_autoptr(GPtrArray) all = hcache_journal_list(hc, 0, error);
	gboolean ok = all != NULL;

	if (!ok)
		return FALSE;
	g_mutex_lock(&hc->lock);
	ok = hcache_sql_begin(hc, error);
	for (guint i = 0; ok && i < all->len; i++) {
		HcacheJournalEntry *e = g_ptr_array_index(all, i);
		g_autofree char *mailbox = renamed(e->mailbox, from, to, delim);
		g_autofree char *dest = renamed(e->dest, from, to, delim);

		if (mailbox == NULL && dest == NULL)
			continue;
		ok = hcache_sql_run(hc,
				    "UPDATE journal SET mailbox = coalesce(?2, mailbox),"
				    " dest = coalesce(?3, dest) WHERE id = ?1",
				    ARGS(SQL_INT(e->id), SQL_TEXT(mailbox), SQL_TEXT(dest)),
				    error) >= 0;
	}
	if (ok)
		ok = hcache_sql_commit(hc, error);
	hcache_sql_unlock_after(hc, ok);
	return ok;
}
