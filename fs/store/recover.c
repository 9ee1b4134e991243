/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * recover.c: finishing what a crash or a lost connection left in the journal of writes
 * (hcache.h). Each kind of write knows how to verify and finish its own entries (the
 * store_recover_* functions of its file); this file walks the journal oldest first and
 * hands each entry to its kind. An entry that cannot be settled now (the server is
 * unreachable) stays for the next attempt; one that is settled goes.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include "store-private.h"

/* Settles @e: TRUE when it is done with (finished, or verified as done). */
static gboolean
recover_one(Store *store, HcacheJournalEntry *e, GCancellable *cancel, GError **error)
{
	switch (e->op) {
	case HCACHE_JOURNAL_APPEND:
		return store_recover_append_sync(store, e, cancel, error);
	case HCACHE_JOURNAL_MOVE:
		return store_recover_move_sync(store, e, cancel, error);
	case HCACHE_JOURNAL_COPY:
		return store_recover_copy_sync(store, e, cancel, error);
	case HCACHE_JOURNAL_DELETE:
		return store_recover_delete_sync(store, e, cancel, error);
	default:
		g_set_error(error, STORE_ERROR, STORE_ERROR_INVALID,
			    "journal entry %" G_GINT64_FORMAT ": unknown operation %d (left as it is)",
			    e->id, e->op);
		return FALSE;
	}
}

gboolean
store_journal_recover_sync(Store *store, GCancellable *cancel, GError **error)
{
	g_autoptr(GPtrArray) all = NULL;
	GError *local = NULL;
	gboolean ok = TRUE;

	if (store_hc(store) == NULL || store_is_offline(store))
		return TRUE;
	all = hcache_journal_list(store->hc, 0, &local);
	if (all == NULL) {
		store_cache_error(store, local);
		g_propagate_error(error, local);
		return FALSE;
	}
	for (guint i = 0; i < all->len; i++) {
		HcacheJournalEntry *e = g_ptr_array_index(all, i);

		if (recover_one(store, e, cancel, &local)) {
			g_message("journal: settled a pending write (%d) in %s", e->op, e->mailbox);
			if (!hcache_journal_remove(store->hc, e->id, &local)) {
				store_cache_error(store, local);
				g_clear_error(&local);
			}
			continue;
		}
		g_message("journal: a pending write (%d) in %s stays: %s", e->op, e->mailbox,
			  local ? local->message : "not settled");
		if (ok && local != NULL)
			g_propagate_error(error, g_error_copy(local));
		ok = FALSE;
		g_clear_error(&local);
		if (g_cancellable_is_cancelled(cancel))
			break;
	}
	/* staged files of finished or abandoned creates (those still pending stay) */
	g_clear_pointer(&all, g_ptr_array_unref);
	all = hcache_journal_list(store->hc, HCACHE_JOURNAL_APPEND, NULL);
	if (all != NULL)
		store_staged_cleanup(store, all);
	return ok;
}
