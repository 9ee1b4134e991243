/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store-private.h: the structures and functions shared by the files of fs/store/. Nothing
 * outside fs/store/ includes this file (but the store's unit tests); each .c of the store
 * includes only this header (which brings store.h and the leaf modules bodycache.h,
 * hcache.h, inflight.h), never another .c's header.
 *
 * The files, in the order they build on each other (each uses only the ones before it,
 * plus the leaf modules mime.c, hcache.c, bodycache.c, inflight.c):
 *   store.c       the account: lifecycle, caches, offline, cancellation, folder LIST,
 *                 namespaces, quota, events;
 *   message.c     one message (StoreMessage) and its header-cache row;
 *   resync.c      the listing of one folder and its resync, folder resets;
 *   body.c        message contents: temp file or body-cache writer, the committer;
 *   flags.c       changing flags (UID STORE), the flag and tag text forms (pins the
 *                 UIDs it changes: local.c);
 *   downloader.c  the background downloader of -o sync=new|all.
 * The calls against that order are notifications or lifecycle, and none of them waits on
 * the network: store.c starts and stops the committer and the downloader and frees the
 * bodies (store_open_cache, store_free); resync.c marks the bodies of a reset folder stale
 * and queues new mail for the downloader.
 *
 * Locking: store->lock protects every field marked so below, in Store, StoreFolder and
 * StoreMessage. It is never held across a network call: a thread that needs the network
 * copies what it needs, unlocks, calls imap_*_sync(), relocks and merges. Refreshes of one
 * folder (and fetches of one body) are shared operations (inflight.c): the first request
 * starts one, later ones join it as waiters, each with its own deadline and cancellation;
 * store->lock orders before the group's and the operation's locks.
 */
#pragma once

#include "bodycache.h"
#include "hcache.h"
#include "inflight.h"
#include "store.h"

typedef struct _StoreWatch StoreWatch;

struct _Store {
	ImapPool *pool;		 /* immutable after store_new */
	gboolean condstore;	 /* immutable after connect */
	Hcache *hc;		 /* header cache or NULL; immutable after store_open_cache */
	Bodycache *bc;		 /* body cache or NULL; same */
	GThreadPool *committer;	 /* one thread writing bodies into bc, off the readers' path;
				  * created with bc, freed before it */
	StoreSync sync;		 /* -o sync=; set before use */
	GThread *syncer;	 /* the background body downloader or NULL (downloader.c) */
	GAsyncQueue *sync_queue; /* its jobs (StoreSyncJob*), NULL when no syncer */
	GCancellable *sync_cancel; /* cancelled by store_free before the join */
	gint cache_broken;	 /* atomic: the hcache was reset at run time, caches off */
	gint offline;		 /* atomic: no network, everything from the cache */
	gboolean offline_forced; /* -o offline: never try the network; set before use */
	gboolean probing;	 /* a reconnect attempt runs; protected by lock */
	gint64 probe_at;	 /* monotonic us of the last attempt; protected by lock */
	gint64 retry_us;	 /* -o offline_retry; set before use */
	StoreInflightGroup *inflight; /* shared listings and body fetches; immutable */
	gint64 idle_us;		 /* a waiter gives up after this long without progress */
	GMutex lock;
	GCond cond;	     /* signalled when a folder load or a body fetch ends */
	GHashTable *folders; /* server name -> StoreFolder* (owning); protected by lock */
	/* body cache: key "mailbox\n uidvalidity uid" -> StoreBody* (owning) */
	GHashTable *bodies; /* protected by lock */
	GQueue body_lru;    /* StoreBody* with refcount 1 (cache only), oldest first */
	guint64 body_bytes; /* bytes kept by the bodies in body_lru; protected by lock */
	gboolean quota_valid;
	gint64 quota_time;
	ImapQuota quota; /* protected by lock */
	guint64 ticket;	       /* atomic: store_ticket() */
	gboolean folders_listed; /* a LIST succeeded once; protected by lock */
	guint64 folders_ticket;	 /* store_ticket() taken before the LIST last merged; protected
				  * by lock: an older LIST finishing later changes nothing */
	GMutex folders_emit;	 /* held across a LIST's merge and its events, so that two
				  * LISTs' events reach fs/ in the order of their merges; taken
				  * before lock, never across a network wait */
	StoreEventFn event_fn; /* immutable after store_set_event_handler */
	/* rm (delete.c, expunge.c, batch.c): */
	struct _StoreBatcher *batcher;	 /* write-behind of bursts; created on first use
					  * (under lock), freed by store_free */
	struct _StoreExpunger *expunger; /* created by store_set_expunge or on first use
					  * (under lock), freed by store_free */
	GHashTable *rehide; /* mailbox -> StoreRehide*: UIDs a previous mount \Deleted and
			     * did not expunge (the journal), hidden when a listing brings
			     * them; protected by lock */
	StoreWatch *watch;     /* the change watcher (watch.c) or NULL; protected by lock
				* (set by store_watch_start, cleared by store_watch_stop) */
	char *crash_at;	       /* IMAPFS_TEST_CRASH_AT; immutable after store_new */
	gpointer event_data;
};

/* A loaded_at that makes any listing age due (0 would not be: the monotonic clock
 * starts at boot, and a max age can be longer than the uptime). */
#define STORE_STALE (G_MININT64 / 4)

struct _StoreFolder {
	gint ref;    /* atomic */
	char *name;  /* immutable */
	char delim;  /* immutable */
	guint attrs; /* immutable */
	/* protected by store->lock: */
	gint64 hc_id;	  /* hcache mailbox id, 0 without cache */
	gboolean listed;  /* in the last LIST */
	gboolean loading; /* a thread is fetching the listing */
	StoreInflight *inflight; /* that fetch (not a reference: its worker clears it) */
	gboolean loaded;
	gint64 loaded_at; /* monotonic us */
	guint32 uidvalidity, uidnext, exists;
	guint64 highestmodseq;
	gint nil_logged;    /* atomic: the server's NIL items were logged once */
	gint handles;	    /* atomic: handles open in it (store_folder_open_handle) */
	gint64 used_at;	    /* monotonic us of the last handle opened or closed in it (the
			     * watcher's "in use lately", watch.c) */
	/* StoreMessage* refs by ascending UID, NULL before the first listing; read and
	 * changed only through the store_folder_msg_*_locked() accessors (resync.c) */
	GPtrArray *msgs;
	GHashTable *pins;   /* guint32 uid -> guint64* ticket of the last local write
			     * (local.c), NULL when none */
};

/* What a fresh FETCH brought that a record does not keep once the header cache has it. */
typedef struct {
	StoreEnvelope env; /* until the message's header-cache row is written */
	/* References and In-Reply-To ("" none, NULL not fetched): only until cache_put()
	 * hands them to the header cache */
	char *references;
	char *in_reply_to;
} StoreFetched;

/* One per message of every listed folder (100,000 for a big account): kept small. */
struct _StoreMessage {
	gint ref;		/* atomic */
	guint size_exact : 1;	/* protected by store->lock */
	guint hidden : 1;	/* protected by store->lock: \\Deleted by this mount, waiting
				 * for its expunge; out of every listing (local.c) */
	StoreMessageInfo info; /* immutable; strings owned */
	StoreFetched *fetched; /* owned or NULL; changed only before the message is published */
	gint64 hc_id;	       /* hcache mailbox id (bodycache key), 0 without cache; and */
	guint64 ino;	       /* hcache inode number, 0 if none: both set before publishing */
	/* protected by store->lock: */
	guint64 size;
	guint64 modseq;
	char *flags; /* joined by ' ', "" for none: an interned GRefString (message.c) */
};

/* ---- store.c ------------------------------------------------------------------------ */

/* Hands @kind for @folder (and @msg) to the event receiver. Never call it with
 * store->lock held. */
void store_emit(Store *store, StoreEventKind kind, StoreFolder *folder, StoreMessage *msg,
		const char *old_name);
/* The same for a change a write of this mount made (StoreEvent.local). */
void store_emit_local(Store *store, StoreEventKind kind, StoreFolder *folder, StoreMessage *msg);
/* TRUE while offline. When the server was unreachable (not -o offline), first tries to
 * reconnect, at most every store->retry_us; network-free otherwise. */
gboolean store_offline_check(Store *store);
/* A network call on the caller's thread that store_cancel_all() also cancels: begin gives
 * the GCancellable to pass down (NULL with @error during shutdown), end releases it. */
GCancellable *store_call_begin(Store *store, GCancellable *cancel, GError **error);
void store_call_end(Store *store, GCancellable *call);
/* The server cannot be reached (connect, timeout, connection lost after retries). */
gboolean store_error_is_unreachable(const GError *error);

/* Test hook for the crash-safety tests: when the environment variable
 * IMAPFS_TEST_CRASH_AT (read once, at store_new) equals @where, the process aborts here,
 * as a kill -9 between two steps of a write would. */
void store_crash_point(Store *store, const char *where);

/* The caches, or NULL when off (never opened, or reset by a run-time corruption). */
Hcache *store_hc(Store *store);
Bodycache *store_bc(Store *store);
/* Logs a cache failure; a run-time corruption (HCACHE_ERROR_CORRUPT) switches both caches
 * off for the rest of the mount. */
void store_cache_error(Store *store, const GError *error);

/* ---- mime.c ------------------------------------------------------------------------- */

/* An RFC 5322 date (raw header text) to UTC seconds and a zone. */
gboolean store_mime_parse_date(const char *raw, gint64 *utc, gint *tz_minutes);

/* ---- message.c ---------------------------------------------------------------------- */

/* Items the server sent as NIL (or not at all) get fallbacks: INTERNALDATE from the
 * envelope's Date:, else the epoch; RFC822.SIZE 0, inexact (learnt on open). */
StoreMessage *store_message_new_from_imap(const char *mailbox, guint32 uidvalidity,
					  const ImapMessage *m);
/* Under store->lock: update the mutable fields from a fresh FETCH. */
void store_message_update_locked(StoreMessage *msg, const ImapMessage *m);
/* Under store->lock: @msg takes the flags and modseq of @from, a newer record of it. */
void store_message_copy_flags_locked(StoreMessage *msg, const StoreMessage *from);
/* Under store->lock: the flags of @msg (an owning vector, never NULL) / new ones (a local
 * STORE the server confirmed). */
char **store_message_dup_flags_locked(StoreMessage *msg);
void store_message_set_flags_locked(StoreMessage *msg, char *const *flags);
/* Before publishing: frees the thread headers and, unless @keep_envelope (no header-cache
 * row holds them), the envelope fields of a fresh FETCH. */
void store_message_drop_fetched(StoreMessage *msg, gboolean keep_envelope);
/* A StoreMessage from a header cache row (strings stolen from @row). */
StoreMessage *store_message_new_from_hcache(const char *mailbox, guint32 uidvalidity, gint64 hc_id,
					    HcacheMessage *row);
/* The header cache row of @msg (strings copied; true_size 0 = keep the stored one). */
HcacheMessage *store_message_to_hcache(Store *store, StoreMessage *msg);

/* ---- resync.c ----------------------------------------------------------------------- */

/* The messages of a folder: one array sorted by UID (a lookup is a binary search, new
 * mail appends, a removal moves the tail). These are its only accessors, all under
 * store->lock. */

/* The message with @uid or NULL; the folder's reference (take one to keep it unlocked). */
StoreMessage *store_folder_msg_lookup_locked(StoreFolder *folder, guint32 uid);
/* Adds @msg, taking a reference of its own; FALSE (and nothing done) when the folder holds
 * a message with its UID already, or has no listing yet (its first one brings @msg). */
gboolean store_folder_msg_insert_locked(StoreFolder *folder, StoreMessage *msg);
/* Removes the message with @uid, dropping the folder's reference; FALSE if none. */
gboolean store_folder_msg_remove_locked(StoreFolder *folder, guint32 uid);
/* Iteration in UID order: for (i = 0; i < count; i++) ... index(folder, i) (the folder's
 * references). */
guint store_folder_msg_count_locked(StoreFolder *folder);
StoreMessage *store_folder_msg_index_locked(StoreFolder *folder, guint i);
/* New references to every message in UID order, or NULL when the folder has no listing. */
GPtrArray *store_folder_msg_snapshot_locked(StoreFolder *folder);
/* Removes the messages of @uids (any order; unknown ones skipped) in one pass. */
void store_folder_msg_remove_many_locked(StoreFolder *folder, const guint32 *uids, guint n);

/* The server's UIDVALIDITY of @mailbox is no longer @old_uidvalidity (a fetch failed with
 * IMAP_ERROR_UIDVALIDITY): drops the folder's cached rows and bodies, marks its listing
 * for a full reload, makes the open bodies of @old_uidvalidity fail with
 * STORE_ERROR_STALE and emits STORE_EVENT_FOLDER_RESET. Once per change; no lock held. */
void store_folder_reset(Store *store, const char *mailbox, guint32 old_uidvalidity);
/* If @error is IMAP_ERROR_UIDVALIDITY, store_folder_reset() of @info's folder. */
void store_check_uidvalidity_error(Store *store, const StoreMessageInfo *info, const GError *error);

/* Under store->lock: the messages of @f a listing shows (hidden ones left out). */
GPtrArray *store_folder_snapshot_locked(StoreFolder *f);
/* UID FETCH of the listing items of @uids (UIDVALIDITY @uidvalidity) in @f, stored in the
 * header cache (rows at the newest ticket) and ready to publish. Owning array of
 * StoreMessage* in UID order; UIDs the server does not have are simply absent. */
GPtrArray *store_fetch_messages_sync(Store *store, StoreFolder *f, guint32 uidvalidity,
				     const ImapUidSet *uids, GCancellable *cancel, GError **error);

/* ---- local.c ------------------------------------------------------------------------ */

/*
 * A local write changes a listing at once, before any resync could see it; a listing
 * whose command was sent before that write (its ticket is older, store_ticket()) must not
 * undo it: the write "pins" the UID, and merges leave a pinned UID's presence and flags
 * as they are until a listing newer than the pin has settled it.
 */
void store_local_pin_locked(Store *store, StoreFolder *f, guint32 uid);
/* TRUE when a listing taken at @ticket must leave @uid of @f as it is. */
gboolean store_local_pinned_locked(StoreFolder *f, guint32 uid, guint64 ticket);
/* After a merge of a listing taken at @ticket: the pins it settled go. */
void store_local_settle_locked(StoreFolder *f, guint64 ticket);

/* ---- move.c ------------------------------------------------------------------------- */

/* Settle a pending MOVE / COPY journal entry (recover.c): TRUE when done with. */
gboolean store_recover_move_sync(Store *store, HcacheJournalEntry *e, GCancellable *cancel,
				 GError **error);
gboolean store_recover_copy_sync(Store *store, HcacheJournalEntry *e, GCancellable *cancel,
				 GError **error);
/* ---- batch.c: write-behind of bursts ------------------------------------------------ */

typedef struct _StoreBatcher StoreBatcher;
/* One kind of write that bursts may batch (a key is (kind, folder), the items are UIDs). */
typedef struct {
	const char *name; /* for logs */
	/* @uid joins the batch of @folder, which then holds @uids; @item is what the caller
	 * passed to store_batch_join() about it. Makes it durable and does its local effect
	 * before the caller is answered; *@data is the batch's state (NULL at its first item:
	 * set it). FALSE refuses the item: with @error it failed, without it the caller
	 * should run it synchronously. Called under the batcher's lock. */
	gboolean (*join)(Store *store, StoreFolder *folder, gpointer *data, const ImapUidSet *uids,
			 guint32 uid, gpointer item, GError **error);
	/* Sends the batch (@uids of @folder) on the flusher thread, no lock held, and deals
	 * with its failure; frees @data. */
	void (*run)(Store *store, StoreFolder *folder, const ImapUidSet *uids, gpointer data);
} StoreBatchKind;
/* An operation of @kind on @folder just succeeded synchronously: a burst may follow. */
void store_batch_ran(Store *store, const StoreBatchKind *kind, StoreFolder *folder);
/* When a burst of @kind on @folder is on (an operation finished less than half a second
 * ago), @uid joins its batch (kind->join) and TRUE; else FALSE (with @error when the join
 * failed). */
gboolean store_batch_join(Store *store, const StoreBatchKind *kind, StoreFolder *folder,
			  guint32 uid, gpointer item, GError **error);
/* Sends now what @folder's batches (NULL: all) hold and waits for them, at most until the
 * monotonic @deadline. TRUE when nothing is left pending. */
gboolean store_batch_flush_sync(Store *store, StoreFolder *folder, gint64 deadline);
/* store_free(): runs what is still pending and joins the flusher. */
void store_batch_free(Store *store);

/* ---- delete.c, expunge.c: rm --------------------------------------------------------- */

/* Under store->lock, when a listing of @f was installed or merged: hides the messages a
 * previous mount deleted and did not expunge. */
void store_delete_rehide_locked(Store *store, StoreFolder *f);
/* Those UIDs of @mailbox are settled (expunged, or back): no longer hidden at load. */
void store_delete_rehide_forget(Store *store, const char *mailbox, const ImapUidSet *uids);
/* The journal entry of a DELETE (recover.c's dispatch): STORE \Deleted again unless the
 * entry says it was confirmed, then UID EXPUNGE of those UIDs per the policy. */
gboolean store_recover_delete_sync(Store *store, HcacheJournalEntry *e, GCancellable *cancel,
				   GError **error);
/* The \Deleted STORE of @uids (of @mailbox at @uidvalidity; @folder may be NULL at
 * recovery) is confirmed, journal entry @journal_id (0: none) at step 1: expunges them
 * per the policy (now, once closed, or never), then removes the entry. */
void store_expunge_queue(Store *store, StoreFolder *folder, const char *mailbox,
			 guint32 uidvalidity, const ImapUidSet *uids, gint64 journal_id,
			 GCancellable *cancel);
/* UID EXPUNGE of @uids now; TRUE when settled (done, or moot: the folder or its
 * UIDVALIDITY is gone, no UIDPLUS), then the entries @ids are removed. */
gboolean store_expunge_now_sync(Store *store, StoreFolder *folder, const char *mailbox,
				guint32 uidvalidity, const ImapUidSet *uids, const gint64 *ids,
				guint n_ids, GCancellable *cancel, GError **error);
/* The policy, and whether it expunges at all on this server (UIDPLUS). */
StoreExpunge store_expunge_policy(Store *store);
gboolean store_expunge_possible(Store *store);
/* store_set_expunge(): the DELETE entries of the journal go into store->rehide. */
void store_delete_load_journal(Store *store);
/* store_free(): joins the expunger (what it holds stays in the journal). */
void store_expunge_free(Store *store);

/* ---- body.c ------------------------------------------------------------------------- */

/* Every body of @mailbox at @uidvalidity fails its reads from now on. */
void store_bodies_mark_stale(Store *store, const char *mailbox, guint32 uidvalidity);
/* At store_free(): frees every body, also those of handles the kernel never released. */
void store_body_cache_clear(Store *store);
/* The body committer: store_body_committer_new() when the body cache opens,
 * store_body_committer_free() before it closes (finishes the queued commits). */
GThreadPool *store_body_committer_new(Store *store);
void store_body_committer_free(GThreadPool *committer);
/* Commits @w (taken), whose file holds the complete body of @msg (@size bytes): fsync +
 * rename into the body cache, then the true size into the header cache; a failure is
 * logged (bodycache_log_failure) and nothing is cached. Blocks on the disk: on the
 * committer's or the downloader's thread, never on a reader's path. */
void store_body_commit_writer(Store *store, StoreMessage *msg, BodycacheWriter *w, guint64 size);

/* ---- watch.c ---------------------------------------------------------------------- */

/* The server said something about @mailbox (an unsolicited response on a pool
 * connection): the watcher resyncs it soon. No-op without a watcher; never blocks. */
void store_watch_heard(Store *store, const char *mailbox);

/* ---- downloader.c ------------------------------------------------------------------- */

/* Queues the bodies of @folder's messages with a UID >= @from_uid (0: all) for
 * download; no-op without a downloader. Never blocks. */
void store_sync_queue_folder(Store *store, StoreFolder *folder, guint32 from_uid);
/* Cancels and joins the downloader; store_free calls it before freeing the committer. */
void store_sync_stop(Store *store);

/* ---- stage.c, append.c -------------------------------------------------------------- */

struct _StoreStaged {
	Store *store;
	int fd;
	char *path;    /* in the cache's staging directory, NULL for an unnamed file */
	gboolean keep; /* an APPEND journal entry names the file: store_staged_free keeps it */
};
/* Removes the staged files no APPEND entry of @entries (HcacheJournalEntry*, may be
 * NULL) names: those of finished or abandoned creates. At mount, after recovery. */
void store_staged_cleanup(Store *store, GPtrArray *entries);
/* Settles a pending APPEND (journal recovery): a confirmed one just loses its staged file;
 * otherwise the message is looked for in the target (Message-ID and size, bytes without a
 * Message-ID) and sent again from the staged file only when absent. */
gboolean store_recover_append_sync(Store *store, HcacheJournalEntry *e, GCancellable *cancel,
				   GError **error);
