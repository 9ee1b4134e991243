/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * delete.c: rm of a message. The order is the journal's (hcache.h): a DELETE entry
 * (mailbox, UIDVALIDITY, UIDs, step 0) before the UID STORE +FLAGS (\Deleted); step 1 once
 * the server confirmed it; the message then leaves the listings (hidden: its record stays
 * until the expunge removes it, so a resync neither shows nor refetches it) and
 * expunge.c expunges it per the policy, removing the entry after the UID EXPUNGE.
 *
 * The first rm in a quiet folder is synchronous: the STORE is answered before unlink
 * returns, so a refusal reaches rm. One that follows another rm of the same folder
 * within half a second joins a batch (batch.c): its UID goes into the batch's journal
 * row (the durable record of it), it is hidden, and rm gets its answer at once; the batch
 * is one UID STORE for all of them. A refused batch brings its messages back.
 *
 * What a remount sees: an entry at step 0 is stored again, one at step 1 expunged (our
 * UIDs only); until then their UIDs stay hidden (store->rehide, loaded from the journal
 * at start, applied by store_delete_rehide_locked when a listing arrives). Must not: send
 * a bare EXPUNGE, or touch a message this mount did not delete.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <string.h>

#include "store-private.h"

static const char *const deleted_flag[] = {"\\Deleted", NULL};

/* The UIDs of one mailbox to keep hidden at load (a previous mount deleted them). */
typedef struct {
	guint32 uidvalidity;
	GHashTable *uids; /* set of guint32 */
} StoreRehide;

static void
rehide_free(StoreRehide *r)
{
	g_hash_table_unref(r->uids);
	g_free(r);
}

static gboolean
rehide_add_one(guint32 uid, gpointer data)
{
	g_hash_table_add(data, GUINT_TO_POINTER(uid));
	return TRUE;
}

static void
rehide_add(Store *store, const char *mailbox, guint32 uidvalidity, const ImapUidSet *uids)
{
	StoreRehide *r;

	g_mutex_lock(&store->lock);
	if (store->rehide == NULL)
		store->rehide = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
						      (GDestroyNotify)rehide_free);
	r = g_hash_table_lookup(store->rehide, mailbox);
	if (r == NULL || r->uidvalidity != uidvalidity) {
		r = g_new0(StoreRehide, 1);
		r->uidvalidity = uidvalidity;
		r->uids = g_hash_table_new(NULL, NULL);
		g_hash_table_replace(store->rehide, g_strdup(mailbox), r);
	}
	imap_uidset_foreach(uids, rehide_add_one, r->uids);
	g_mutex_unlock(&store->lock);
}

static gboolean
rehide_remove_one(guint32 uid, gpointer data)
{
	g_hash_table_remove(data, GUINT_TO_POINTER(uid));
	return TRUE;
}

void
store_delete_rehide_forget(Store *store, const char *mailbox, const ImapUidSet *uids)
{
	StoreRehide *r;

	g_mutex_lock(&store->lock);
	r = store->rehide ? g_hash_table_lookup(store->rehide, mailbox) : NULL;
	if (r != NULL) {
		imap_uidset_foreach(uids, rehide_remove_one, r->uids);
		if (g_hash_table_size(r->uids) == 0)
			g_hash_table_remove(store->rehide, mailbox);
	}
	g_mutex_unlock(&store->lock);
}

void
store_delete_rehide_locked(Store *store, StoreFolder *f)
{
	StoreRehide *r = store->rehide ? g_hash_table_lookup(store->rehide, f->name) : NULL;
	GHashTableIter it;
	gpointer key;

	if (r == NULL || store_folder_msg_count_locked(f) == 0)
		return;
	g_hash_table_iter_init(&it, r->uids);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		StoreMessage *m = store_folder_msg_lookup_locked(f, GPOINTER_TO_UINT(key));

		if (m != NULL && m->info.uidvalidity == r->uidvalidity)
			m->hidden = TRUE;
	}
}

/* At start: every DELETE the journal still holds is hidden until it is settled. */
void
store_delete_load_journal(Store *store)
{
	g_autoptr(GPtrArray) all = NULL;
	g_autoptr(GError) error = NULL;

	if (store_hc(store) == NULL)
		return;
	all = hcache_journal_list(store->hc, HCACHE_JOURNAL_DELETE, &error);
	if (all == NULL) {
		store_cache_error(store, error);
		return;
	}
	for (guint i = 0; i < all->len; i++) {
		HcacheJournalEntry *e = g_ptr_array_index(all, i);
		g_autoptr(ImapUidSet) uids = e->uids ? imap_uidset_parse(e->uids, NULL) : NULL;

		if (uids != NULL && e->uidvalidity != 0)
			rehide_add(store, e->mailbox, e->uidvalidity, uids);
	}
}

/* ---- the journal ------------------------------------------------------------------- */

static gint64
journal_add(Store *store, const char *mailbox, guint32 uidvalidity, const ImapUidSet *uids)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *text = imap_uidset_to_string(uids);
	HcacheJournalEntry e = {
		.op = HCACHE_JOURNAL_DELETE,
		.mailbox = (char *)mailbox,
		.uidvalidity = uidvalidity,
		.uids = text,
	};
	gint64 id;

	if (store_hc(store) == NULL)
		return 0;
	id = hcache_journal_add(store->hc, &e, &error);
	if (id == 0)
		store_cache_error(store, error); /* goes on without crash safety */
	return id;
}

static void
journal_step(Store *store, gint64 id, gint step, const ImapUidSet *uids)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *text = uids ? imap_uidset_to_string(uids) : NULL;

	if (id != 0 && store_hc(store) != NULL &&
	    !hcache_journal_set_step(store->hc, id, step, text, &error))
		store_cache_error(store, error);
}

static void
journal_remove(Store *store, gint64 id)
{
	g_autoptr(GError) error = NULL;

	if (id != 0 && store_hc(store) != NULL && !hcache_journal_remove(store->hc, id, &error))
		store_cache_error(store, error);
}

/* ---- the synchronous rm ------------------------------------------------------------- */

typedef struct {
	gboolean seen;	  /* the server has the message */
	gboolean deleted; /* with \Deleted */
} Look;

static void
look_cb(ImapMessage *m, gpointer data)
{
	Look *l = data;

	l->seen = TRUE;
	for (guint i = 0; m->flags != NULL && m->flags[i] != NULL; i++)
		if (g_ascii_strcasecmp(m->flags[i], "\\Deleted") == 0)
			l->deleted = TRUE;
}

/* A NO to our STORE is a refusal; the rest (network, UIDVALIDITY) passes as it is. */
static void
refusal(GError **error, const char *mailbox)
{
	if (error == NULL || *error == NULL || (*error)->domain != IMAP_ERROR)
		return;
	if ((*error)->code == IMAP_ERROR_NO || (*error)->code == IMAP_ERROR_NOPERM ||
	    (*error)->code == IMAP_ERROR_BAD) {
		GError *e = g_error_new(STORE_ERROR, STORE_ERROR_DENIED,
					"%s: the server refused \\Deleted: %s", mailbox,
					(*error)->message);

		g_clear_error(error);
		*error = e;
	}
}

static gboolean
delete_one_sync(Store *store, StoreFolder *folder, const StoreMessageInfo *info,
		GCancellable *call, GError **error)
{
	g_autoptr(ImapUidSet) one = imap_uidset_new();
	g_autoptr(ImapUidSet) echoed = NULL;
	gint64 id;
	Look look = {0};

	imap_uidset_add(one, info->uid);
	id = journal_add(store, info->mailbox, info->uidvalidity, one);
	if (!imap_store_flags_echo_sync(store->pool, info->mailbox, info->uidvalidity, one,
					IMAP_STORE_ADD, deleted_flag, &echoed, call, error)) {
		/* the user is told it failed: nothing is left to finish */
		journal_remove(store, id);
		store_check_uidvalidity_error(store, info, error ? *error : NULL);
		refusal(error, info->mailbox);
		return FALSE;
	}
	store_crash_point(store, "delete-stored");
	if (!imap_uidset_contains(echoed, info->uid)) {
		/* no FLAGS came back: already \Deleted, gone, or ignored (read-only) */
		if (!imap_fetch_sync(store->pool, info->mailbox, info->uidvalidity, one,
				     IMAP_FETCH_UID | IMAP_FETCH_FLAGS, 0, look_cb, &look, call,
				     error)) {
			journal_remove(store, id);
			store_check_uidvalidity_error(store, info, error ? *error : NULL);
			return FALSE;
		}
		if (!look.seen) {
			journal_remove(store, id);
			store_local_remove(store, folder, one, FALSE);
			g_set_error(error, STORE_ERROR, STORE_ERROR_NOT_FOUND,
				    "%s: UID %u was already expunged", info->mailbox, info->uid);
			return FALSE;
		}
		if (!look.deleted) {
			journal_remove(store, id);
			g_set_error(error, STORE_ERROR, STORE_ERROR_DENIED,
				    "%s: the server did not store \\Deleted on UID %u (a read-only "
				    "folder, or no right to delete)",
				    info->mailbox, info->uid);
			return FALSE;
		}
	}
	journal_step(store, id, 1, NULL);
	store_local_remove(store, folder, one, TRUE);
	store_expunge_queue(store, folder, info->mailbox, info->uidvalidity, one, id, call);
	return TRUE;
}

/* ---- bursts: the batch kind ------------------------------------------------------- */

typedef struct {
	gint64 journal_id; /* 0 without the cache */
	guint32 uidvalidity;
	char *mailbox;
} DeleteBatch;

static void
delete_batch_free(DeleteBatch *d)
{
	g_free(d->mailbox);
	g_free(d);
}

static gboolean
delete_join(Store *store, StoreFolder *folder, gpointer *data, const ImapUidSet *uids, guint32 uid,
	    gpointer item, GError **error)
{
	DeleteBatch *d = *data;
	g_autoptr(ImapUidSet) one = imap_uidset_new();
	guint32 uv;

	g_mutex_lock(&store->lock);
	uv = folder->uidvalidity;
	g_mutex_unlock(&store->lock);
	if (uv == 0 || (d != NULL && d->uidvalidity != uv))
		return FALSE; /* the folder is being reset: the slow way */
	if (d == NULL) {
		d = g_new0(DeleteBatch, 1);
		d->uidvalidity = uv;
		d->mailbox = g_strdup(folder->name);
		d->journal_id = journal_add(store, folder->name, uv, uids);
		if (d->journal_id == 0 && store_hc(store) != NULL) {
			delete_batch_free(d);
			return FALSE; /* no durable record: the slow way */
		}
		*data = d;
	} else {
		journal_step(store, d->journal_id, 0, uids);
	}
	imap_uidset_add(one, uid);
	store_local_remove(store, folder, one, TRUE);
	return TRUE;
}

static gboolean
cancelled(const GError *e)
{
	return g_error_matches(e, IMAP_ERROR, IMAP_ERROR_CANCELLED) ||
	       g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static void
delete_run(Store *store, StoreFolder *folder, const ImapUidSet *uids, gpointer data)
{
	DeleteBatch *d = data;
	g_autoptr(GError) error = NULL;
	GCancellable *call = store_call_begin(store, NULL, &error);
	gboolean ok = FALSE;

	if (call != NULL) {
		ok = imap_store_flags_sync(store->pool, d->mailbox, d->uidvalidity, uids,
					   IMAP_STORE_ADD, deleted_flag, 0, NULL, call, &error);
		store_call_end(store, call);
	}
	if (!ok && (call == NULL || cancelled(error)) && d->journal_id != 0) {
		/* shutting down: the next mount finishes it (the journal holds it at step 0) */
		g_message("rm in %s: \\Deleted of %" G_GUINT64_FORMAT
			  " messages not sent before the end (%s): the next mount sends it",
			  d->mailbox, imap_uidset_count(uids), error ? error->message : "");
		delete_batch_free(d);
		return;
	}
	if (!ok) {
		g_message("rm in %s: \\Deleted could not be stored on %" G_GUINT64_FORMAT
			  " messages (%s): they are back",
			  d->mailbox, imap_uidset_count(uids), error->message);
		journal_remove(store, d->journal_id);
		store_local_unhide(store, folder, uids);
		store_check_uidvalidity_error(
			store, &(StoreMessageInfo){.mailbox = d->mailbox, .uidvalidity = d->uidvalidity},
			error);
		delete_batch_free(d);
		return;
	}
	store_crash_point(store, "delete-batch-stored");
	journal_step(store, d->journal_id, 1, NULL);
	store_expunge_queue(store, folder, d->mailbox, d->uidvalidity, uids, d->journal_id, NULL);
	delete_batch_free(d);
}

static const StoreBatchKind delete_kind = {
	.name = "rm",
	.join = delete_join,
	.run = delete_run,
};

gboolean
store_message_delete_sync(Store *store, StoreFolder *folder, StoreMessage *msg, GCancellable *cancel,
			  GError **error)
{
	const StoreMessageInfo *info = store_message_get_info(msg);
	GError *local = NULL;
	GCancellable *call;
	gboolean ok;

	if (store_offline_check(store)) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_READ_ONLY,
			    "offline: %s cannot be changed now", info->mailbox);
		return FALSE;
	}
	if (store_batch_join(store, &delete_kind, folder, info->uid, NULL, &local))
		return TRUE;
	if (local != NULL) {
		g_propagate_error(error, local);
		return FALSE;
	}
	call = store_call_begin(store, cancel, error);
	if (call == NULL)
		return FALSE;
	ok = delete_one_sync(store, folder, info, call, error);
	store_call_end(store, call);
	if (ok)
		store_batch_ran(store, &delete_kind, folder);
	return ok;
}

void
store_folder_flush_sync(Store *store, StoreFolder *folder, gint64 deadline)
{
	store_batch_flush_sync(store, folder, deadline);
}

/* ---- recovery ------------------------------------------------------------------------ */

gboolean
store_recover_delete_sync(Store *store, HcacheJournalEntry *e, GCancellable *cancel, GError **error)
{
	g_autoptr(ImapUidSet) uids = e->uids ? imap_uidset_parse(e->uids, NULL) : NULL;
	GError *local = NULL;

	if (uids == NULL || imap_uidset_is_empty(uids) || e->uidvalidity == 0)
		return TRUE; /* nothing to do */
	if (e->step == 0) {
		/* the STORE may or may not have reached the server: it is idempotent */
		if (!imap_store_flags_sync(store->pool, e->mailbox, e->uidvalidity, uids,
					   IMAP_STORE_ADD, deleted_flag, 0, NULL, cancel, &local)) {
			if (g_error_matches(local, IMAP_ERROR, IMAP_ERROR_UIDVALIDITY) ||
			    g_error_matches(local, IMAP_ERROR, IMAP_ERROR_NONEXISTENT)) {
				/* those messages are gone with their folder or UIDVALIDITY */
				g_message("journal: rm in %s: %s (nothing left to do)", e->mailbox,
					  local->message);
				g_error_free(local);
				store_delete_rehide_forget(store, e->mailbox, uids);
				return TRUE;
			}
			g_propagate_error(error, local);
			return FALSE;
		}
		store_crash_point(store, "recover-delete-stored");
		journal_step(store, e->id, 1, NULL);
	}
	if (store_expunge_policy(store) == STORE_EXPUNGE_NEVER || !store_expunge_possible(store)) {
		/* \Deleted stays on the server; hidden only by the mount that deleted it */
		store_delete_rehide_forget(store, e->mailbox, uids);
		return TRUE;
	}
	/* expunge=close and immediate alike: at mount no handle is open in any folder */
	return store_expunge_now_sync(store, NULL, e->mailbox, e->uidvalidity, uids, NULL, 0,
				      cancel, error);
}
