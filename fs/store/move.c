/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * move.c: moving and copying messages between folders on the server (mv and ln, cp within
 * the mount), and settling such writes a crash or a lost answer left unconfirmed.
 *
 * A move is UID MOVE when the server has MOVE; otherwise UID COPY, then
 * UID STORE +FLAGS.SILENT (\Deleted), then UID EXPUNGE of that one UID (UIDPLUS). Without
 * UIDPLUS there is never a bare EXPUNGE (it would take other clients' \Deleted mail): the
 * source keeps its \Deleted copy, hidden from this mount's listings. The source is touched
 * only once the server confirmed the copy.
 *
 * Journal (hcache.h), one MOVE or COPY entry per message: @mailbox/@uidvalidity/@uids the
 * source, @dest the target, @message_id the message's Message-ID, @size the target's
 * UIDNEXT before the command (a lower bound: new copies have UIDs at or above it), @path
 * "UIDVALIDITY UID" of the copy once COPYUID told it. Steps: 0 written before the MOVE or
 * COPY is sent; 1 the copy is confirmed; 2 the source is \Deleted; the entry goes once the
 * source is expunged (or, without UIDPLUS, once it is \Deleted). A crash point
 * (IMAPFS_TEST_CRASH_AT) sits between every two of these steps.
 *
 * Settling an unconfirmed step 0 never repeats a copy blindly: it asks the server whether
 * the source UID still exists and whether the target has the message (by the recorded UID,
 * else by Message-ID among the UIDs at or above the recorded UIDNEXT), and copies again
 * only when the target does not have it (or cannot tell: a message without a Message-ID).
 * A duplicate is preferred to a loss. A pending COPY (ln, cp) is verified, never repeated:
 * the command that asked for it already failed.
 *
 * No store lock is held across a network call; the folders' listings are told through
 * local.c once the server confirmed.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <stdio.h>
#include <string.h>

#include "store-private.h"

/* The state of one move or copy, in memory and (when the cache is on) in its journal entry. */
typedef struct {
	Store *store;
	HcacheJournalOp op;
	char *src;	     /* source mailbox (server name) */
	guint32 src_uv, uid; /* the source message */
	char *dest;	     /* target mailbox */
	char *message_id;    /* or NULL */
	guint32 dest_uidnext; /* the target's UIDNEXT before the command, 0 unknown */
	guint32 dest_uv;      /* the target's UIDVALIDITY when known (COPYUID, STATUS), else 0 */
	guint32 dest_uid;     /* the copy's UID when known, else 0 */
	gint step;
	gint64 jid;	      /* journal entry, 0 when none */
	gboolean src_gone;    /* the source UID is expunged */
	gboolean src_deleted; /* the source is \Deleted and stays (no UIDPLUS) */
	StoreMessage *msg;    /* the source's record (a ref), NULL at recovery */
} Move;

static void
move_clear(Move *m)
{
	g_clear_pointer(&m->msg, store_message_unref);
	g_free(m->src);
	g_free(m->dest);
	g_free(m->message_id);
}

static gboolean
is_ambiguous(const GError *error)
{
	/* the command may or may not have been carried out */
	return error != NULL && error->domain == IMAP_ERROR &&
	       (error->code == IMAP_ERROR_DISCONNECTED || error->code == IMAP_ERROR_TIMEOUT);
}

static ImapUidSet *
one_uid(guint32 uid)
{
	ImapUidSet *s = imap_uidset_new();

	imap_uidset_add(s, uid);
	return s;
}

static gboolean
max_uid(guint32 uid, gpointer data)
{
	guint32 *max = data;

	if (uid > *max)
		*max = uid;
	return TRUE;
}

/* ---- the journal ------------------------------------------------------------------ */

static void
journal_add(Move *m)
{
	Hcache *hc = store_hc(m->store);
	g_autoptr(GError) error = NULL;
	g_autofree char *uids = g_strdup_printf("%u", m->uid);
	HcacheJournalEntry e = {
		.op = m->op,
		.mailbox = m->src,
		.uidvalidity = m->src_uv,
		.uids = uids,
		.dest = m->dest,
		.message_id = m->message_id,
		.dest_uidvalidity = m->dest_uv,
		.dest_uidnext = m->dest_uidnext,
		.step = m->step,
	};

	if (hc == NULL)
		return;
	m->jid = hcache_journal_add(hc, &e, &error);
	if (m->jid == 0)
		store_cache_error(m->store, error);
}

static void
journal_step(Move *m, gint step)
{
	Hcache *hc = store_hc(m->store);
	g_autoptr(GError) error = NULL;
	gboolean ok;

	m->step = step;
	if (hc == NULL || m->jid == 0)
		return;
	if (step == 1 && m->dest_uid != 0) {
		ok = hcache_journal_set_dest_uid(hc, m->jid, step, m->dest_uv, m->dest_uid, &error);
	} else {
		ok = hcache_journal_set_step(hc, m->jid, step, NULL, &error);
	}
	if (!ok)
		store_cache_error(m->store, error);
}

static void
journal_done(Move *m)
{
	Hcache *hc = store_hc(m->store);
	g_autoptr(GError) error = NULL;

	if (hc != NULL && m->jid != 0 && !hcache_journal_remove(hc, m->jid, &error))
		store_cache_error(m->store, error);
	m->jid = 0;
}

/* ---- asking the server --------------------------------------------------------------- */

static void
take_copyuid(Move *m, guint32 uv, ImapUidSet *dst)
{
	guint32 uid = 0;

	if (dst != NULL)
		imap_uidset_foreach(dst, max_uid, &uid);
	if (uv != 0 && uid != 0) {
		m->dest_uv = uv;
		m->dest_uid = uid;
	}
	imap_uidset_free(dst);
}

/* Does the source UID still exist (\Deleted or not)? */
static gboolean
src_exists(Move *m, gboolean *exists, GCancellable *call, GError **error)
{
	g_autofree char *text = g_strdup_printf("%u", m->uid);
	ImapSearchTerm t = {IMAP_SEARCH_UID, text, NULL};
	g_autoptr(GError) local = NULL;
	g_autoptr(ImapUidSet) got =
		imap_search_sync(m->store->pool, m->src, m->src_uv, &t, 1, call, &local);

	if (got == NULL) {
		if (g_error_matches(local, IMAP_ERROR, IMAP_ERROR_UIDVALIDITY) ||
		    g_error_matches(local, IMAP_ERROR, IMAP_ERROR_NONEXISTENT)) {
			/* the source is no longer the mailbox the UID was taken in */
			*exists = FALSE;
			return TRUE;
		}
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	*exists = imap_uidset_contains(got, m->uid);
	return TRUE;
}

/* Does the target have the copy? By its recorded UID, else by Message-ID among the UIDs
 * at or above the recorded UIDNEXT (then m->dest_uid is set to the newest match). With
 * neither, *@known is FALSE. */
static gboolean
target_has(Move *m, gboolean *has, gboolean *known, GCancellable *call, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autoptr(ImapUidSet) got = NULL;
	g_autofree char *text = NULL;
	ImapSearchTerm t[2] = {{0}};
	guint n = 0;

	*has = FALSE;
	*known = TRUE;
	if (m->dest_uid != 0) {
		text = g_strdup_printf("%u", m->dest_uid);
		t[n++] = (ImapSearchTerm){IMAP_SEARCH_UID, text, NULL};
	} else if (m->message_id != NULL && *m->message_id != '\0') {
		text = g_strdup_printf("%u:*", MAX(m->dest_uidnext, 1));
		t[n++] = (ImapSearchTerm){IMAP_SEARCH_UID, text, NULL};
		t[n++] = (ImapSearchTerm){IMAP_SEARCH_HEADER, m->message_id, "Message-ID"};
	} else {
		*known = FALSE;
		return TRUE;
	}
	got = imap_search_sync(m->store->pool, m->dest, m->dest_uv, t, n, call, &local);
	if (got == NULL) {
		if (g_error_matches(local, IMAP_ERROR, IMAP_ERROR_UIDVALIDITY)) {
			/* the target was recreated: whatever was copied there is gone */
			m->dest_uid = 0;
			m->dest_uv = 0;
			return TRUE;
		}
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	if (m->dest_uid != 0) {
		*has = imap_uidset_contains(got, m->dest_uid);
	} else {
		guint32 uid = 0;

		/* "N:*" always matches the last message even below N: check the bound */
		imap_uidset_foreach(got, max_uid, &uid);
		if (uid >= m->dest_uidnext && uid != 0) {
			*has = TRUE;
			m->dest_uid = uid;
		}
	}
	return TRUE;
}

/* The target's UIDVALIDITY and UIDNEXT, from its listing when loaded (UIDNEXT then is a
 * lower bound, which is all we need), else with one STATUS. */
static gboolean
dest_state(Move *m, StoreFolder *dest, GCancellable *call, GError **error)
{
	ImapStatus st = {0};

	g_mutex_lock(&m->store->lock);
	if (dest->loaded && dest->uidvalidity != 0 && dest->uidnext != 0) {
		m->dest_uv = dest->uidvalidity;
		m->dest_uidnext = dest->uidnext;
	}
	g_mutex_unlock(&m->store->lock);
	if (m->dest_uv != 0)
		return TRUE;
	if (!imap_status_sync(m->store->pool, m->dest, IMAP_STATUS_UIDVALIDITY | IMAP_STATUS_UIDNEXT,
			      &st, call, error))
		return FALSE;
	m->dest_uv = st.uidvalidity;
	m->dest_uidnext = st.uidnext;
	return TRUE;
}

/* ---- the steps ------------------------------------------------------------------------ */

static const char *const deleted_flag[] = {"\\Deleted", NULL};

/* From m->step to the end. With @verify the state at m->step is uncertain (a crash, or an
 * answer lost with the connection): before a command that is not idempotent (MOVE, COPY)
 * the server is asked what happened. */
static gboolean
move_drive(Move *m, gboolean verify, GCancellable *call, GError **error)
{
	ImapPool *pool = m->store->pool;
	g_autoptr(ImapUidSet) set = one_uid(m->uid);

	if (m->step == 0) {
		gboolean has = FALSE, known = FALSE, exists = TRUE;
		ImapUidSet *dst = NULL;
		guint32 uv = 0;

		if (verify) {
			if (!src_exists(m, &exists, call, error))
				return FALSE;
			if (!exists) {
				/* moved (or removed by someone else): nothing left to do here */
				m->src_gone = TRUE;
				if (m->dest_uid == 0 && !target_has(m, &has, &known, call, error))
					return FALSE;
				return TRUE;
			}
			if (!target_has(m, &has, &known, call, error))
				return FALSE;
		}
		if (!has && imap_pool_has_capability(pool, "MOVE")) {
			if (!imap_move_sync(pool, m->src, m->src_uv, set, m->dest, &uv, &dst, call,
					    error))
				return FALSE;
			take_copyuid(m, uv, dst);
			m->src_gone = TRUE;
			return TRUE;
		}
		if (!has) {
			if (!imap_copy_sync(pool, m->src, m->src_uv, set, m->dest, &uv, &dst, call,
					    error))
				return FALSE;
			take_copyuid(m, uv, dst);
			store_crash_point(m->store, "move-copied");
		}
		journal_step(m, 1);
		store_crash_point(m->store, "move-step1");
	}
	if (m->step == 1) {
		if (!imap_store_flags_sync(pool, m->src, m->src_uv, set, IMAP_STORE_ADD, deleted_flag,
					   0, NULL, call, error))
			return FALSE;
		store_crash_point(m->store, "move-deleted");
		journal_step(m, 2);
		store_crash_point(m->store, "move-step2");
	}
	if (imap_pool_has_capability(pool, "UIDPLUS")) {
		if (!imap_expunge_uids_sync(pool, m->src, m->src_uv, set, call, error))
			return FALSE;
		store_crash_point(m->store, "move-expunged");
		m->src_gone = TRUE;
	} else {
		/* never a bare EXPUNGE: the \Deleted source stays */
		m->src_deleted = TRUE;
	}
	return TRUE;
}

/* ---- the public calls ----------------------------------------------------------------- */

static StoreFolder *
folder_of(Store *store, const char *name)
{
	StoreFolder *f;

	g_mutex_lock(&store->lock);
	f = g_hash_table_lookup(store->folders, name);
	if (f != NULL)
		store_folder_ref(f);
	g_mutex_unlock(&store->lock);
	return f;
}

/* Common start of a move or a copy: checks, the identity, the target's state. */
static gboolean
begin(Store *store, Move *m, HcacheJournalOp op, StoreMessage *msg, StoreFolder *dest,
      StoreFolder **src, GCancellable *call, GError **error)
{
	const StoreMessageInfo *info = store_message_get_info(msg);
	StoreEnvelope env = {0};

	memset(m, 0, sizeof(*m));
	m->store = store;
	m->op = op;
	if (!store_folder_is_selectable(dest)) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_INVALID, "%s cannot hold messages",
			    store_folder_get_name(dest));
		return FALSE;
	}
	if (strcmp(info->mailbox, store_folder_get_name(dest)) == 0) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_INVALID,
			    "the message is already in %s", info->mailbox);
		return FALSE;
	}
	*src = folder_of(store, info->mailbox);
	if (*src == NULL) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_NOT_FOUND, "no folder %s",
			    info->mailbox);
		return FALSE;
	}
	m->src = g_strdup(info->mailbox);
	m->src_uv = info->uidvalidity;
	m->uid = info->uid;
	m->dest = g_strdup(store_folder_get_name(dest));
	m->msg = store_message_ref(msg);
	store_message_get_envelope(store, msg, &env);
	m->message_id = g_steal_pointer(&env.message_id);
	store_envelope_clear(&env);
	return dest_state(m, dest, call, error);
}

/* The copy in the target, for the listings: the one COPYUID named, else the newest with
 * its Message-ID among the new UIDs. NULL when it cannot be told (it shows at the next
 * listing of the target). */
static StoreMessage *
show_copy(Move *m, StoreFolder *dest, GCancellable *call)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) got = NULL;
	g_autoptr(ImapUidSet) set = NULL;
	gboolean has, known;

	if (m->dest_uid == 0 && !target_has(m, &has, &known, call, &error)) {
		g_message("%s: cannot find the copy of %s UID %u: %s", m->dest, m->src, m->uid,
			  error->message);
		return NULL;
	}
	if (m->dest_uid == 0 || m->dest_uv == 0) {
		g_message("%s: the copy of %s UID %u shows at the next listing", m->dest, m->src,
			  m->uid);
		store_folder_list_messages_sync(m->store, dest, 0, NULL, call, NULL);
		return NULL;
	}
	if (m->msg != NULL &&
	    (got = store_local_add_copies(m->store, dest, m->dest_uv, &m->msg, &m->dest_uid, 1)))
		return store_message_ref(g_ptr_array_index(got, 0)); /* no fetch */
	set = one_uid(m->dest_uid);
	got = store_local_add_sync(m->store, dest, m->dest_uv, set, call, &error);
	if (got == NULL || got->len == 0) {
		g_message("%s: cannot list the copy (UID %u): %s", m->dest, m->dest_uid,
			  error ? error->message : "not found");
		return NULL;
	}
	return store_message_ref(g_ptr_array_index(got, 0));
}

/* ---- bursts: mv of many files (write-behind, batch.c) -------------------------------- */

/*
 * mv renames one file at a time and waits for each answer. The first move of a quiet
 * folder runs as above; the moves that follow it closely (to the same target, on a server
 * with MOVE and UIDPLUS, into a target whose listing is loaded) each get their journal
 * entry and are hidden from the source at once, and a few milliseconds later one
 * UID MOVE carries them all. The copies then show in the target under their canonical
 * names, cloned from the sources' records (COPYUID; nothing fetched). A lost answer is
 * settled move by move as after a crash; a refusal brings the files back (with a log
 * line). The kernel's node for such a file is not re-pointed: the name given to mv
 * answers ENOENT a moment later and the canonical name takes over.
 */
typedef struct {
	StoreFolder *dest; /* ref */
	GPtrArray *moves;  /* Move* (owned), in join order */
} MoveBatch;

typedef struct {
	StoreMessage *msg;
	StoreFolder *dest;
} MoveItem;

static void
move_batch_free(MoveBatch *b)
{
	for (guint i = 0; i < b->moves->len; i++) {
		move_clear(g_ptr_array_index(b->moves, i));
		g_free(g_ptr_array_index(b->moves, i));
	}
	g_ptr_array_unref(b->moves);
	store_folder_unref(b->dest);
	g_free(b);
}

/* Under the batcher's lock: no network here. */
static gboolean
move_join(Store *store, StoreFolder *src, gpointer *data, const ImapUidSet *uids, guint32 uid,
	  gpointer item, GError **error)
{
	MoveItem *it = item;
	MoveBatch *b = *data;
	g_autoptr(StoreFolder) srcf = NULL;
	g_autoptr(ImapUidSet) one = NULL;
	gboolean loaded;
	Move *m;

	if (b != NULL && b->dest != it->dest)
		return FALSE; /* another target: on its own */
	if (!imap_pool_has_capability(store->pool, "MOVE") ||
	    !imap_pool_has_capability(store->pool, "UIDPLUS"))
		return FALSE;
	g_mutex_lock(&store->lock);
	loaded = it->dest->loaded && it->dest->uidvalidity != 0 && it->dest->uidnext != 0;
	g_mutex_unlock(&store->lock);
	if (!loaded)
		return FALSE; /* its UIDNEXT would need a STATUS */
	m = g_new0(Move, 1);
	if (!begin(store, m, HCACHE_JOURNAL_MOVE, it->msg, it->dest, &srcf, NULL, error)) {
		move_clear(m);
		g_free(m);
		return FALSE;
	}
	journal_add(m);
	store_crash_point(store, "move-batch-joined");
	if (b == NULL) {
		b = g_new0(MoveBatch, 1);
		b->dest = store_folder_ref(it->dest);
		b->moves = g_ptr_array_new();
		*data = b;
	}
	g_ptr_array_add(b->moves, m);
	one = one_uid(uid);
	store_local_remove(store, src, one, TRUE); /* gone from the source at once */
	return TRUE;
}

static gint
cmp_move_uid(gconstpointer a, gconstpointer b)
{
	const Move *x = *(Move *const *)a, *y = *(Move *const *)b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static gboolean
collect_uid(guint32 uid, gpointer data)
{
	g_array_append_val((GArray *)data, uid);
	return TRUE;
}

/* The batch is done on the server: the journal entries go, the copies show. */
static void
move_batch_done(Store *store, StoreFolder *src, MoveBatch *b, const ImapUidSet *uids, guint32 uv,
		ImapUidSet *dst, GCancellable *call)
{
	g_autoptr(GArray) new_uids = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_autoptr(GPtrArray) msgs = g_ptr_array_new();
	g_autoptr(GPtrArray) got = NULL;

	/* COPYUID lists the new UIDs in the order of the (ascending) source set */
	if (dst != NULL)
		imap_uidset_foreach(dst, collect_uid, new_uids);
	g_ptr_array_sort(b->moves, cmp_move_uid);
	for (guint i = 0; i < b->moves->len; i++) {
		Move *m = g_ptr_array_index(b->moves, i);

		m->src_gone = TRUE;
		journal_done(m);
		g_ptr_array_add(msgs, m->msg);
	}
	/* the copies first: they are cloned from the sources' header-cache rows */
	if (uv != 0 && new_uids->len == b->moves->len)
		got = store_local_add_copies(store, b->dest, uv, (StoreMessage *const *)msgs->pdata,
					     (const guint32 *)new_uids->data, new_uids->len);
	store_local_remove(store, src, uids, FALSE);
	if (got == NULL && uv != 0 && dst != NULL)
		got = store_local_add_sync(store, b->dest, uv, dst, call, NULL);
	if (got == NULL || got->len < b->moves->len) /* shows with the target's next listing */
		store_folder_list_messages_sync(store, b->dest, 0, NULL, call, NULL);
}

/* On the flusher thread, no lock held. */
static void
move_run(Store *store, StoreFolder *src, const ImapUidSet *uids, gpointer data)
{
	MoveBatch *b = data;
	Move *first = g_ptr_array_index(b->moves, 0);
	GError *local = NULL;
	ImapUidSet *dst = NULL;
	GCancellable *call;
	guint32 uv = 0;

	call = store_call_begin(store, NULL, &local);
	if (call == NULL) {
		/* shutting down: the journal has them, the next mount finishes them */
		g_message("mv of %u messages %s -> %s left for the next mount: %s",
			  b->moves->len, first->src, first->dest, local->message);
		g_clear_error(&local);
		move_batch_free(b);
		return;
	}
	store_crash_point(store, "move-batch-run");
	if (imap_move_sync(store->pool, first->src, first->src_uv, uids, first->dest, &uv, &dst,
			   call, &local)) {
		store_crash_point(store, "move-batch-moved");
		move_batch_done(store, src, b, uids, uv, dst, call);
	} else if (is_ambiguous(local)) {
		/* the answer was lost, not necessarily the command: settle each as a crash
		 * would be, by asking the server */
		g_message("mv of %u messages %s -> %s: %s; checking what the server did",
			  b->moves->len, first->src, first->dest, local->message);
		for (guint i = 0; i < b->moves->len; i++) {
			Move *m = g_ptr_array_index(b->moves, i);
			g_autoptr(GError) again = NULL;
			g_autoptr(ImapUidSet) one = one_uid(m->uid);
			g_autoptr(StoreMessage) copy = NULL;

			if (!move_drive(m, TRUE, call, &again)) {
				g_message("%s UID %u -> %s: %s (the next mount finishes it)", m->src,
					  m->uid, m->dest, again->message);
				continue;
			}
			journal_done(m);
			copy = show_copy(m, b->dest, call);
			if (m->src_gone)
				store_local_remove(store, src, one, FALSE);
		}
	} else {
		/* refused: nothing moved, the files come back */
		g_message("mv of %u messages %s -> %s refused: %s", b->moves->len, first->src,
			  first->dest, local->message);
		for (guint i = 0; i < b->moves->len; i++)
			journal_done(g_ptr_array_index(b->moves, i));
		store_local_unhide(store, src, uids);
	}
	g_clear_error(&local);
	imap_uidset_free(dst);
	store_call_end(store, call);
	move_batch_free(b);
}

static const StoreBatchKind move_kind = {
	.name = "mv",
	.join = move_join,
	.run = move_run,
};

gboolean
store_message_move_sync(Store *store, StoreMessage *msg, StoreFolder *dest, StoreMessage **moved,
			GCancellable *cancel, GError **error)
{
	g_autoptr(StoreFolder) src = NULL;
	g_autoptr(ImapUidSet) set = NULL;
	GError *local = NULL;
	gboolean uncertain = FALSE;
	GCancellable *call;
	Move m;
	gboolean ok;

	if (moved != NULL)
		*moved = NULL;
	if (store_is_offline(store)) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_OFFLINE, "offline");
		return FALSE;
	}
	src = folder_of(store, store_message_get_info(msg)->mailbox);
	if (src != NULL &&
	    store_batch_join(store, &move_kind, src, store_message_get_info(msg)->uid,
			     &(MoveItem){msg, dest}, &local))
		return TRUE; /* in a burst: sent with the others in a moment */
	g_clear_pointer(&src, store_folder_unref);
	if (local != NULL) {
		g_propagate_error(error, local);
		return FALSE;
	}
	call = store_call_begin(store, cancel, error);
	if (call == NULL)
		return FALSE;
	if (!begin(store, &m, HCACHE_JOURNAL_MOVE, msg, dest, &src, call, error)) {
		store_call_end(store, call);
		move_clear(&m);
		return FALSE;
	}
	journal_add(&m);
	store_crash_point(store, "move-journaled");
	ok = move_drive(&m, FALSE, call, &local);
	if (!ok && is_ambiguous(local)) {
		uncertain = TRUE;
		/* the answer was lost, not necessarily the command: ask, then finish */
		g_message("%s UID %u -> %s: %s; checking what the server did", m.src, m.uid, m.dest,
			  local->message);
		g_clear_error(&local);
		ok = move_drive(&m, TRUE, call, &local);
	}
	if (!ok) {
		if (m.step == 0 && !uncertain)
			journal_done(&m); /* refused: nothing happened */
		store_call_end(store, call);
		g_propagate_error(error, local);
		move_clear(&m);
		return FALSE;
	}
	journal_done(&m);
	set = one_uid(m.uid);
	/* the copy first: it is cloned from the source's header-cache row */
	if (moved != NULL)
		*moved = show_copy(&m, dest, call);
	store_local_remove(store, src, set, !m.src_gone);
	store_call_end(store, call);
	move_clear(&m);
	store_batch_ran(store, &move_kind, src); /* the moves that follow closely are batched */
	return TRUE;
}

gboolean
store_message_copy_sync(Store *store, StoreMessage *msg, StoreFolder *dest, StoreMessage **copy,
			GCancellable *cancel, GError **error)
{
	g_autoptr(StoreFolder) src = NULL;
	g_autoptr(ImapUidSet) set = NULL;
	ImapUidSet *dst = NULL;
	GError *local = NULL;
	GCancellable *call;
	gboolean uncertain = FALSE;
	guint32 uv = 0;
	Move m;
	gboolean ok;

	if (copy != NULL)
		*copy = NULL;
	if (store_is_offline(store)) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_OFFLINE, "offline");
		return FALSE;
	}
	call = store_call_begin(store, cancel, error);
	if (call == NULL)
		return FALSE;
	if (!begin(store, &m, HCACHE_JOURNAL_COPY, msg, dest, &src, call, error)) {
		store_call_end(store, call);
		move_clear(&m);
		return FALSE;
	}
	journal_add(&m);
	store_crash_point(store, "copy-journaled");
	set = one_uid(m.uid);
	ok = imap_copy_sync(store->pool, m.src, m.src_uv, set, m.dest, &uv, &dst, call, &local);
	if (ok) {
		take_copyuid(&m, uv, dst);
	} else if (is_ambiguous(local)) {
		gboolean has = FALSE, known = FALSE;
		GError *again = NULL;

		uncertain = TRUE;
		/* the answer was lost: copy again only when the target surely lacks it */
		g_message("copy of %s UID %u -> %s: %s; checking what the server did", m.src,
			  m.uid, m.dest, local->message);
		if (target_has(&m, &has, &known, call, &again) && known) {
			if (has) {
				ok = TRUE;
			} else {
				ok = imap_copy_sync(store->pool, m.src, m.src_uv, set, m.dest, &uv,
						    &dst, call, &again);
				if (ok)
					take_copyuid(&m, uv, dst);
			}
		}
		if (ok)
			g_clear_error(&local);
		else if (again != NULL)
			g_error_free(again);
	}
	store_crash_point(store, "copy-copied");
	if (ok || !uncertain)
		journal_done(&m);
	if (ok && copy != NULL)
		*copy = show_copy(&m, dest, call);
	store_call_end(store, call);
	move_clear(&m);
	if (!ok)
		g_propagate_error(error, local);
	return ok;
}

/* ---- recovery (recover.c dispatches here) ---------------------------------------------- */

static void
move_from_entry(Store *store, Move *m, const HcacheJournalEntry *e)
{
	memset(m, 0, sizeof(*m));
	m->store = store;
	m->op = e->op;
	m->jid = e->id;
	m->src = g_strdup(e->mailbox);
	m->src_uv = e->uidvalidity;
	m->uid = e->uids ? (guint32)g_ascii_strtoull(e->uids, NULL, 10) : 0;
	m->dest = g_strdup(e->dest);
	m->message_id = g_strdup(e->message_id);
	m->dest_uidnext = e->dest_uidnext;
	m->dest_uv = e->dest_uidvalidity;
	m->dest_uid = e->dest_uid;
	m->step = e->step;
}

gboolean
store_recover_move_sync(Store *store, HcacheJournalEntry *e, GCancellable *cancel, GError **error)
{
	GCancellable *call;
	gboolean ok;
	Move m;

	move_from_entry(store, &m, e);
	if (m.uid == 0 || m.dest == NULL) {
		g_message("journal: a move entry without its message (%s), dropped", e->mailbox);
		move_clear(&m);
		return TRUE;
	}
	call = store_call_begin(store, cancel, error);
	if (call == NULL) {
		move_clear(&m);
		return FALSE;
	}
	ok = move_drive(&m, TRUE, call, error);
	store_call_end(store, call);
	if (ok)
		g_message("journal: move of %s UID %u to %s finished (copy %s%u%s)", m.src, m.uid,
			  m.dest, m.dest_uid ? "UID " : "", m.dest_uid,
			  m.src_deleted ? "; the source stays \\Deleted: no UIDPLUS" : "");
	m.jid = 0; /* the dispatcher removes the entry */
	move_clear(&m);
	return ok;
}

gboolean
store_recover_copy_sync(Store *store, HcacheJournalEntry *e, GCancellable *cancel, GError **error)
{
	gboolean has = FALSE, known = FALSE, ok;
	GCancellable *call;
	Move m;

	move_from_entry(store, &m, e);
	if (m.dest == NULL) {
		move_clear(&m);
		return TRUE;
	}
	call = store_call_begin(store, cancel, error);
	if (call == NULL) {
		move_clear(&m);
		return FALSE;
	}
	ok = target_has(&m, &has, &known, call, error);
	store_call_end(store, call);
	if (ok)
		g_message("journal: an unconfirmed copy of %s UID %u to %s %s (never repeated)",
			  m.src, m.uid, m.dest,
			  !known ? "cannot be verified" : has ? "was made" : "was not made");
	move_clear(&m);
	return ok;
}
