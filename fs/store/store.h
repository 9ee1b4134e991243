/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store.h: the facade of the mail model, the only header fs/ includes from fs/store/.
 *
 * The store speaks folders (server mailboxes), messages (identity: mailbox, UIDVALIDITY,
 * UID) and bodies; it knows nothing of FUSE, inodes, struct stat or errno, and never turns
 * a name into a file name (fs/naming.c does that). Errors are GErrors (IMAP_ERROR from the
 * library, STORE_ERROR for its own); fs/errmap.c decides the errno.
 *
 * Threads: every function is thread-safe. Functions ending in _sync may wait on the
 * network (bounded by the pool's timeout); the others never block on I/O.
 *
 * Lock order (top to bottom; never upwards): store->folders_emit -> fs context lock
 * (fs/inode.c) -> store->lock ->
 * body->lock. No store lock is ever held across a network wait.
 */
#pragma once

#include <glib.h>
#include <gio/gio.h>

#include "imap.h"

G_BEGIN_DECLS

#define STORE_ERROR (store_error_quark())
GQuark store_error_quark(void);

typedef enum {
	STORE_ERROR_NOT_FOUND,	  /* no such folder or message */
	STORE_ERROR_IO,		  /* local I/O (temp files) */
	STORE_ERROR_INVALID,	  /* bad argument */
	STORE_ERROR_CACHE_IN_USE, /* the cache directory belongs to another imapfs */
	STORE_ERROR_OFFLINE,	  /* offline and the data is not in the cache */
	STORE_ERROR_STALE,	  /* the message's UIDVALIDITY is gone from the server */
	STORE_ERROR_TOO_BIG,	  /* a new message over the server's APPENDLIMIT */
	STORE_ERROR_READ_ONLY,	  /* a change while offline: nothing can be changed now */
	STORE_ERROR_DENIED,	  /* the server refused a change (NO, or a read-only folder
				   * or a missing right that it ignored silently) */
} StoreErrorCode;

typedef enum {
	STORE_NS_PERSONAL,
	STORE_NS_OTHER,
	STORE_NS_SHARED,
} StoreNsKind;

/* One namespace of the account (RFC 2342), flattened from ImapNamespaces. */
typedef struct {
	StoreNsKind kind;
	guint index;  /* position within its kind (0 = the first personal namespace) */
	char *prefix; /* UTF-8, e.g. "INBOX." or "" */
	char delim;   /* 0 for NIL */
} StoreNamespace;
void store_namespace_free(StoreNamespace *ns);

typedef struct _Store Store;
typedef struct _StoreFolder StoreFolder;   /* refcounted, one per server mailbox */
typedef struct _StoreMessage StoreMessage; /* refcounted, one per (folder, UIDVALIDITY, UID) */
typedef struct _StoreBody StoreBody;	   /* refcounted, the content of one message */

/* ---- the account ---------------------------------------------------------------- */

/* Copies @cfg (and its secrets). Does no I/O. */
Store *store_new(const ImapConfig *cfg);
void store_free(Store *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Store, store_free)
/* Shutdown: cancels every store operation in flight (shared listings and body fetches,
 * calls on request threads, the background downloader) so that blocked requests fail at
 * once; from then on every store call that would use the network fails at once
 * (STORE_ERROR_IO). Any thread, idempotent; store_free() still must be called. */
void store_cancel_all(Store *store);
/* Cancels the store operations in flight now (their requests fail at once) and nothing
 * later: what a lazy unmount does to requests stuck in the detached mount. Any thread. */
void store_cancel_running(Store *store);

/* The default cache directory of an account: $XDG_CACHE_HOME/imapfs/<account-id>, the
 * id a readable, file-name-safe form of user@host:port[/root]. */
char *store_default_cache_dir(const char *user, const char *host, guint port, const char *root);
/* Opens the on-disk header and body caches in @dir (created 0700, files 0600), bodies
 * capped at @cap bytes (0: 1 GiB). Call once, before connecting, in the process that will
 * run the store. STORE_ERROR_CACHE_IN_USE when another imapfs owns @dir. Without this
 * call the store runs uncached. */
gboolean store_open_cache(Store *store, const char *dir, guint64 cap, GError **error);
/* Which bodies the store keeps on disk (-o sync=). HEADERS (the default): the bodies that
 * were read; NONE: headers only, no body is ever written to the body cache; NEW: also
 * downloads in the background the bodies of messages new since the previous cached state
 * of each folder listed (all of it on a cold cache); ALL: every body of every selectable
 * folder, walked in the background after start-up. */
typedef enum {
	STORE_SYNC_HEADERS,
	STORE_SYNC_NONE,
	STORE_SYNC_NEW,
	STORE_SYNC_ALL,
} StoreSync;
/* Call before the first use. NEW and ALL need the cache (without it they act as HEADERS). */
void store_set_sync(Store *store, StoreSync policy);
/* Starts the background downloader of sync=new|all (one thread, one IMAP connection at a
 * time, BODY.PEEK: never sets \Seen). Call once, after any fork, when the store is up.
 * No-op for the other policies, without the cache, or offline (-o offline). store_free()
 * cancels and joins it. */
void store_sync_start(Store *store);
/* TRUE when the cache knows at least one folder (enough to run offline). */
gboolean store_cache_has_data(Store *store);
/* Offline mode: no network; folders, listings and bodies come from the cache, the rest
 * fails at once with STORE_ERROR_OFFLINE. With @retry (the server was unreachable), a
 * listing request tries to reconnect at most every offline retry interval, and once the server answers the
 * store is online again and the next listings resync; without it (-o offline) the store
 * never touches the network. Call before the first use. */
void store_go_offline(Store *store, gboolean retry);
gboolean store_is_offline(Store *store);
/* How often an unreachable server is tried again while offline (default 15 s). Call
 * before the first use. */
void store_set_offline_retry(Store *store, gint64 us);

/* Connects and logs in (first connection of the pool). */
gboolean store_connect_sync(Store *store, GCancellable *cancel, GError **error);

/* Namespaces and every folder of every namespace. @namespaces (out, owning array of
 * StoreNamespace*) is never empty on success: a server without NAMESPACE gets one
 * personal namespace with an empty prefix; NULL asks for the folders only (no
 * NAMESPACE sent). Returns owning array of StoreFolder* refs. */
GPtrArray *store_list_folders_sync(Store *store, GPtrArray **namespaces, GCancellable *cancel,
				   GError **error);

/* Finishes or verifies the writes a crash or a lost connection left unconfirmed (the
 * journal in the header cache), oldest first: after connecting, before the tree is built.
 * An entry that cannot be settled now stays for the next mount; FALSE then, with the
 * first such reason. No-op without the cache or offline. */
gboolean store_journal_recover_sync(Store *store, GCancellable *cancel, GError **error);

/* Network counters of the IMAP pool. */
void store_get_stats(Store *store, ImapStats *out);
/* Counters of the on-disk body cache since start-up, and what it holds (all 0 without
 * the cache). */
typedef struct {
	guint64 hits, misses; /* opens served from the disk / not */
	guint64 bytes, files; /* cached bodies now */
} StoreCacheStats;
void store_get_cache_stats(Store *store, StoreCacheStats *out);

/* QUOTA of INBOX's quota root, cached for a minute. IMAP_ERROR_UNSUPPORTED without QUOTA. */
gboolean store_quota_sync(Store *store, ImapQuota *out, GCancellable *cancel, GError **error);

/* ---- change events ------------------------------------------------------------------ */

/* One change of the account's state, whatever saw it first: a resync, an unsolicited
 * response on any connection, a local write, IDLE/NOTIFY. fs/ applies them in one place. */
typedef enum {
	STORE_EVENT_MESSAGE_ADDED,  /* @folder, @msg */
	STORE_EVENT_MESSAGE_GONE,   /* @folder, @msg (expunged; the ref keeps it readable) */
	STORE_EVENT_FLAGS_CHANGED,  /* @folder, @msg (read the new state from the store) */
	STORE_EVENT_FOLDER_RESET,   /* @folder: UIDVALIDITY changed; every message of it is gone,
				     * its cached rows and bodies dropped, open bodies stale */
	STORE_EVENT_FOLDER_ADDED,   /* @folder */
	STORE_EVENT_FOLDER_REMOVED, /* @folder */
	STORE_EVENT_FOLDER_RENAMED, /* @folder (now under its new name), @old_name */
} StoreEventKind;

typedef struct {
	StoreEventKind kind;
	StoreFolder *folder;  /* borrowed for the call */
	StoreMessage *msg;    /* borrowed for the call, or NULL */
	const char *old_name; /* FOLDER_RENAMED only */
	gboolean local;	      /* a write of this mount (local.c): a MESSAGE_ADDED names a UID
			       * the server just made, a name no lookup can have missed */
} StoreEvent;

/* Called in the thread that saw the change, with no store lock held; it must not call a
 * _sync function (it may take its own locks and call the non-blocking getters). */
typedef void (*StoreEventFn)(const StoreEvent *event, gpointer data);
/* Sets the one receiver of the store's events (NULL: none). Call before the first use. */
void store_set_event_handler(Store *store, StoreEventFn fn, gpointer data);

/* ---- folders ---------------------------------------------------------------------- */

StoreFolder *store_folder_ref(StoreFolder *folder);
void store_folder_unref(StoreFolder *folder);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreFolder, store_folder_unref)

const char *store_folder_get_name(StoreFolder *folder); /* server name, UTF-8, immutable */
char store_folder_get_delim(StoreFolder *folder);
guint store_folder_get_attrs(StoreFolder *folder); /* ImapMailboxAttrs */
gboolean store_folder_is_selectable(StoreFolder *folder);
/* "\Sent" style name of the first SPECIAL-USE attribute, or NULL. Static string. */
const char *store_folder_get_special_use(StoreFolder *folder);

/* The messages of @folder ordered by UID (owning array of StoreMessage* refs). EXAMINEs
 * and fetches when the folder was never loaded or its listing is older than @max_age_us;
 * otherwise no I/O. *@changed (may be NULL) tells whether the set of messages differs
 * from the previous listing (UIDVALIDITY change, new or expunged mail). */
GPtrArray *store_folder_list_messages_sync(Store *store, StoreFolder *folder, gint64 max_age_us,
					   gboolean *changed, GCancellable *cancel, GError **error);
/* The current listing of @folder without any I/O or wait (owning array of refs, by
 * UID), or NULL when it was never loaded. */
GPtrArray *store_folder_snapshot(Store *store, StoreFolder *folder);
/* The message @uid of @folder's current listing (a ref), or NULL. No I/O. */
StoreMessage *store_folder_get_message(Store *store, StoreFolder *folder, guint32 uid);
/* A number that grows with every call: taken before a command, it orders that command's
 * answer against local changes (see fs/dirindex.h). */
guint64 store_ticket(Store *store);
/* TRUE once a listing exists (then list_messages with a large max_age does no I/O). */
gboolean store_folder_is_loaded(Store *store, StoreFolder *folder);

/* fs/ counts the handles open in each folder (files and directory listings): deferred
 * work that must wait until a folder is closed (-o expunge=close) asks
 * store_folder_is_open(). Any thread, no I/O. */
void store_folder_open_handle(Store *store, StoreFolder *folder);
void store_folder_close_handle(Store *store, StoreFolder *folder);
gboolean store_folder_is_open(StoreFolder *folder);

/* STATUS (MESSAGES UNSEEN UIDVALIDITY UIDNEXT [HIGHESTMODSEQ]) of the folder. */
gboolean store_folder_status_sync(Store *store, StoreFolder *folder, ImapStatus *out,
				  GCancellable *cancel, GError **error);

/* ---- messages --------------------------------------------------------------------- */

StoreMessage *store_message_ref(StoreMessage *msg);
void store_message_unref(StoreMessage *msg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreMessage, store_message_unref)

/* The immutable part of a message (valid while a reference is held). The decoded
 * strings are UTF-8 or NULL. The other envelope fields are not kept in memory once the
 * header cache holds them: see store_message_get_envelope(). */
typedef struct {
	const char *mailbox; /* server name of its folder (one copy per folder) */
	guint32 uidvalidity;
	guint32 uid;
	gint64 internaldate;  /* seconds since the epoch, UTC */
	gint internaldate_tz; /* minutes east of UTC */
	const char *subject;  /* RFC 2047-decoded (file names need it) */
} StoreMessageInfo;
const StoreMessageInfo *store_message_get_info(StoreMessage *msg);
/* The decoded envelope fields of a message (UTF-8 or NULL each). */
typedef struct {
	char *from; /* "Name <a@b>, ..." */
	char *to;
	char *date; /* the Date: header text */
	char *message_id;
} StoreEnvelope;
/* Fills @out (owned copies) from memory or, for a message the header cache holds, from
 * its row (a local SQLite read, no network). */
void store_message_get_envelope(Store *store, StoreMessage *msg, StoreEnvelope *out);
void store_envelope_clear(StoreEnvelope *env);
/* The persistent inode number the cache gave @msg, or 0 (then use
 * store_hash_message()). */
guint64 store_message_get_ino(StoreMessage *msg);
/* The first-choice inode numbers: 64-bit hashes of a directory's path in the tree and of
 * a message's identity (the same numbers the cache starts from). */
guint64 store_hash_dir(const char *path);
guint64 store_hash_message(const StoreMessageInfo *info);

/* The mutable part, copied under the store lock. */
typedef struct {
	guint64 size; /* exact byte count once the body was fetched, else RFC822.SIZE */
	gboolean size_exact;
	guint64 modseq; /* 0 when unknown (no CONDSTORE) */
	char **flags;	/* owned copy, NULL-terminated, never NULL */
} StoreMessageState;
void store_message_get_state(Store *store, StoreMessage *msg, StoreMessageState *out);
void store_message_state_clear(StoreMessageState *state);
/* Just the size of the state (cheaper: no copy of the flags). */
guint64 store_message_get_size(Store *store, StoreMessage *msg);

/* ---- local writes in the listings (local.c) ---------------------------------------- */

/* The write paths (flags, delete, move, copy, append) call these once the server confirmed
 * a change, so the listings and the tree show it at once; each pins what it changed
 * against listings already in flight (they cannot undo it) and emits the events. */

/* A local write took @uids out of @folder: moved away (@hide FALSE: the server no longer
 * has them; their header-cache rows go) or \Deleted by this mount (@hide TRUE: hidden from
 * every listing until their expunge removes them). Emits MESSAGE_GONE for each. No I/O
 * but the header cache. */
void store_local_remove(Store *store, StoreFolder *folder, const ImapUidSet *uids, gboolean hide);
/* Hidden messages of @folder come back (their \Deleted STORE failed, or was undone).
 * Emits MESSAGE_ADDED for each. */
void store_local_unhide(Store *store, StoreFolder *folder, const ImapUidSet *uids);
/* The UIDs of @folder hidden by store_local_remove(..., TRUE), or NULL when none. */
ImapUidSet *store_local_hidden(Store *store, StoreFolder *folder);
/* A local write put @uids into @folder (APPEND, COPY, MOVE; @uidvalidity from APPENDUID or
 * COPYUID): one UID FETCH of their listing items, rows in the header cache, and, when
 * @folder's listing is loaded at that UIDVALIDITY, they join it (MESSAGE_ADDED each).
 * Returns the messages (owning array of refs, UID order; missing UIDs are left out). */
GPtrArray *store_local_add_sync(Store *store, StoreFolder *folder, guint32 uidvalidity,
				const ImapUidSet *uids, GCancellable *cancel, GError **error);
/* The same for copies the server made of messages this store knows (MOVE or COPY with
 * COPYUID: @src[i] became @uids[i] of @folder at @uidvalidity): their records are cloned
 * from the header cache, so nothing is fetched. NULL when that cannot be done (no cache,
 * a source not in it): then use store_local_add_sync(). */
GPtrArray *store_local_add_copies(Store *store, StoreFolder *folder, guint32 uidvalidity,
				  StoreMessage *const *src, const guint32 *uids, guint n);

/* ---- moving and copying messages (move.c) ------------------------------------------ */

/* mv: moves @msg to the folder @dest (another selectable folder; any namespace): UID MOVE,
 * or without MOVE UID COPY + \Deleted + UID EXPUNGE of that UID (UIDPLUS; without UIDPLUS
 * the \Deleted source stays on the server, hidden from this mount's listings). The source
 * goes only after the server confirmed the copy. Journaled (hcache.h) when the cache is
 * on; an answer lost with the connection is checked with the server and finished.
 * On success the listings show the change at once (events); *@moved (may be NULL) gets the
 * message in @dest (a ref), or NULL when the copy's UID cannot be told (no COPYUID and no
 * Message-ID match: it shows at the next listing). STORE_ERROR_INVALID when @dest cannot
 * hold messages or is @msg's own folder (nothing sent). */
gboolean store_message_move_sync(Store *store, StoreMessage *msg, StoreFolder *dest,
				 StoreMessage **moved, GCancellable *cancel, GError **error);
/* ln, cp within the mount: UID COPY of @msg to @dest (no download, no upload), with the
 * same checks, journal and results as store_message_move_sync(); the source stays. */
gboolean store_message_copy_sync(Store *store, StoreMessage *msg, StoreFolder *dest,
				 StoreMessage **copy, GCancellable *cancel, GError **error);

/* ---- new messages (stage.c, append.c) ---------------------------------------------- */

/* A private file a new message is written to before its APPEND (any thread, local I/O
 * only). With the cache: a 0600 file of the cache's staging directory, created O_EXCL
 * without following a symlink, so that a crash can be finished at the next mount; without
 * it: an unnamed O_TMPFILE under $XDG_RUNTIME_DIR or /tmp. Its path never leaves the
 * store; fs/ reads and writes the fd. */
typedef struct _StoreStaged StoreStaged;
StoreStaged *store_staged_new(Store *store, GError **error);
/* The fd (owned by @s; pread/pwrite/ftruncate only, no seek). */
int store_staged_get_fd(StoreStaged *s);
guint64 store_staged_get_size(StoreStaged *s);
/* Closes and removes the file, unless an APPEND journal entry still needs it (its
 * outcome is unknown: the next mount finishes it). NULL is fine. */
void store_staged_free(StoreStaged *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreStaged, store_staged_free)
/* The server's APPENDLIMIT (RFC 7889 capability APPENDLIMIT=n), 0 when it has none. */
guint64 store_append_limit(Store *store);
/* Makes the staged bytes a new message of @folder: checks them as an RFC 5322 message
 * (STORE_ERROR_INVALID, nothing sent), makes bare LF CRLF, refuses more than APPENDLIMIT
 * (STORE_ERROR_TOO_BIG), journals the APPEND, sends it with @flags (NULL-terminated, may
 * be NULL) and @internaldate (0: the server's clock), and finds the new UID (APPENDUID;
 * else by Message-ID and size among the UIDs from the UIDNEXT before). An APPEND whose
 * answer was lost is looked for and sent again only when absent. *@out: the new message
 * (a ref; it joined the folder's listing, MESSAGE_ADDED emitted) or NULL when its UID is
 * unknown (it shows after the next listing). Once it succeeded the staged file is gone. */
gboolean store_staged_append_sync(Store *store, StoreStaged *s, StoreFolder *folder,
				  const char *const *flags, gint64 internaldate, StoreMessage **out,
				  GCancellable *cancel, GError **error);
/* ---- deleting messages (delete.c, expunge.c; bursts through batch.c) --------------- */

/* When the UIDs this mount marked \Deleted are expunged (-o expunge=). Other clients'
 * \Deleted mail is never expunged: only UID EXPUNGE of our own UIDs (UIDPLUS), never a
 * bare EXPUNGE; without UIDPLUS our messages stay \Deleted on the server. */
typedef enum {
	STORE_EXPUNGE_CLOSE,	 /* once the folder is closed (no handle open in it) and
				  * quiet for the delay, and at unmount (the default) */
	STORE_EXPUNGE_IMMEDIATE, /* right after the \Deleted STORE */
	STORE_EXPUNGE_NEVER,	 /* only \Deleted: hidden for the rest of this mount */
} StoreExpunge;
/* Call once, after store_open_cache() and before the first use (defaults: CLOSE, 2 s).
 * Reads the journal: the messages a previous mount deleted and did not expunge stay
 * hidden from the listings until their expunge. */
void store_set_expunge(Store *store, StoreExpunge policy, gint64 delay_us);

/* rm of @msg in @folder: journals the intent, UID STORE +FLAGS (\Deleted) confirmed by
 * the server, then the message leaves the listings at once (MESSAGE_GONE) and waits for
 * its expunge (policy above). When another rm in the same folder finished a moment ago (a
 * burst: rm of many files), this one is journaled, hidden and acknowledged at once, and
 * its STORE goes out with the burst's others in one command a few milliseconds later (a
 * refused burst brings its messages back, with a log line). Errors: STORE_ERROR_NOT_FOUND
 * (already expunged: the name goes), STORE_ERROR_DENIED (read-only folder, no right,
 * NO), STORE_ERROR_READ_ONLY (offline), a network error (nothing changed). */
gboolean store_message_delete_sync(Store *store, StoreFolder *folder, StoreMessage *msg,
				   GCancellable *cancel, GError **error);
/* Waits (at most until the monotonic @deadline) until the write-behind of @folder (NULL:
 * every folder) has been sent and answered. A listing of a folder calls it first. */
void store_folder_flush_sync(Store *store, StoreFolder *folder, gint64 deadline);
/* At unmount, before store_cancel_all(): sends the pending write-behind and the expunges
 * of -o expunge=close, whatever is open, bounded by @timeout_us. What is left (server
 * gone) stays in the journal for the next mount. */
void store_flush_sync(Store *store, gint64 timeout_us);
/* ---- following the server (watch.c) ------------------------------------------------ */

/* How the mount learns of changes made by other clients (-o live=). Whatever the mode,
 * a change only makes the watcher resync the folder (the listing's merge emits the
 * events); only folders whose listing is loaded are resynced (the others are read whole
 * when first listed). */
typedef enum {
	STORE_LIVE_AUTO, /* NOTIFY (RFC 5465) for every folder when offered; else IDLE on the
			  * folders in use plus polling for the rest; else polling */
	STORE_LIVE_IDLE, /* as AUTO without NOTIFY */
	STORE_LIVE_POLL, /* polling only */
	STORE_LIVE_OFF,	 /* nothing: listings follow their max-age timers only */
} StoreLive;

typedef struct {
	StoreLive mode;
	guint idle_max;	 /* IDLE connections at most (INBOX first, then the folders with
			  * open handles, then those used in the last 5 minutes); 0: no IDLE */
	guint poll_s;	 /* seconds between polling rounds (one LIST-STATUS, or STATUS per
			  * loaded folder no IDLE covers); 0: no polling */
	char **subtrees; /* NOTIFY also watches these subtrees (the prefixes of other users'
			  * and shared namespaces, UTF-8, without the delimiter); may be NULL */
} StoreWatchConfig;

/* Starts the watcher: its threads, and the NOTIFY or IDLE connections (outside the pool:
 * the readers keep theirs). Call once, when the tree is built and events reach the
 * kernel. No-op for STORE_LIVE_OFF or -o offline. */
void store_watch_start(Store *store, const StoreWatchConfig *cfg);
/* Stops and joins it (idempotent; store_free() calls it too). Main thread. */
void store_watch_stop(Store *store);
/* What the watcher runs now, for logs and tests: "notify", "idle", "poll" or "off". */
const char *store_watch_mode(Store *store);

/* ---- bodies ----------------------------------------------------------------------- */

/* The content of @msg. Bodies are shared between readers and kept (in unlinked temp
 * files, LRU-capped) after the last unref; issue 5's body cache plugs in here. */
StoreBody *store_body_open(Store *store, StoreMessage *msg);
void store_body_unref(StoreBody *body);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreBody, store_body_unref)

/* Reads up to @size bytes at @offset into @buf; returns the byte count (0 at the end) or
 * -1 with @error. Fetches only the aligned range it needs with BODY.PEEK[]<o.l>, unless
 * the reader is sequential from the start, in which case the rest of the body is
 * streamed once to a temp file. *@size_changed is set when the server's bytes showed that
 * RFC822.SIZE was wrong (the message state now has the exact size). */
gssize store_body_read_sync(Store *store, StoreBody *body, guint64 offset, gsize size, char *buf,
			    gboolean *size_changed, GCancellable *cancel, GError **error);

/* Makes sure the message's size is exact before a reader relies on it: a small body is
 * fetched whole (the reader wants it anyway), a large one gets a 2-byte probe at
 * RFC822.SIZE - 1. When the server's bytes disagree with RFC822.SIZE the body is streamed
 * to learn the truth and *@size_changed is set. No I/O once the size is exact. */
gboolean store_body_verify_size_sync(Store *store, StoreBody *body, gboolean *size_changed,
				     GCancellable *cancel, GError **error);

/* ---- changing flags (flags.c) ------------------------------------------------------ */

typedef enum {
	STORE_FLAGS_SET,    /* the flags become exactly these */
	STORE_FLAGS_ADD,    /* these are added, the others stay */
	STORE_FLAGS_REMOVE, /* these are removed, the others stay */
} StoreFlagsMode;

/* One UID STORE FLAGS.SILENT (SET: FLAGS, ADD: +FLAGS, REMOVE: -FLAGS) of @flags
 * (NULL-terminated; \Seen-style system flags in any case, keyword atoms), sent without
 * reading the flags first; ADD or REMOVE of nothing sends nothing. A flag that is not a
 * settable system flag or keyword atom (\Recent, \Bogus, "a b") is IMAP_ERROR_INVALID,
 * one the folder's PERMANENTFLAGS refuse is IMAP_ERROR_NOT_PERMANENT (logged once); both
 * before anything is sent. Offline: STORE_ERROR_OFFLINE. After the server's OK the
 * message's state holds the new flags at once (the header cache too) and
 * STORE_EVENT_FLAGS_CHANGED is emitted; a listing that was in flight meanwhile does not
 * revert them. */
gboolean store_message_set_flags_sync(Store *store, StoreMessage *msg, StoreFlagsMode mode,
				      const char *const *flags, GCancellable *cancel,
				      GError **error);

/* A parsed user.imap.flags value: whitespace-separated flags, either all bare (the new
 * set: @replace) or all signed, "+X" added and "-X" removed. */
typedef struct {
	gboolean replace;
	char **set;    /* replace only: the new flags (maybe empty), normalized */
	char **add;    /* !replace: never NULL, normalized, no duplicates */
	char **remove; /* !replace: never NULL, no flag in both lists */
} StoreFlagsChange;
void store_flags_change_clear(StoreFlagsChange *change);
/* Parses @len bytes of @text (no NUL needed) into @out (clear it after success).
 * STORE_ERROR_INVALID for a mix of bare and signed flags, a flag both added and removed or
 * a NUL byte; IMAP_ERROR_INVALID for a flag that cannot be stored. Pure. */
gboolean store_flags_parse(const char *text, gsize len, StoreFlagsChange *out, GError **error);
/* SET for a @replace change; else at most one ADD, then at most one REMOVE (all flags
 * are validated first, so an invalid or refused one means nothing was sent). */
gboolean store_message_change_flags_sync(Store *store, StoreMessage *msg,
					 const StoreFlagsChange *change, GCancellable *cancel,
					 GError **error);
/* Makes @keywords the message's keywords, leaving its system flags alone: one ADD of the
 * missing ones, one REMOVE of the others the last known state holds (none when nothing
 * differs). A system flag in @keywords is STORE_ERROR_INVALID. */
gboolean store_message_set_keywords_sync(Store *store, StoreMessage *msg,
					 const char *const *keywords, GCancellable *cancel,
					 GError **error);

/* Freedesktop tags (user.xdg.tags) and IMAP keywords, a bijection: a tag that is a
 * keyword atom (and not the encoding of another tag) is that keyword, any other tag is
 * "$Tag:" followed by its UTF-8 bytes with every byte but A-Z a-z 0-9 - _ . written =XX
 * ("my tag" <-> "$Tag:my=20tag"). A tag is non-empty UTF-8 without a comma and without
 * surrounding white space. Both pure; results owned. */
/* NULL with STORE_ERROR_INVALID when @tag cannot be a tag. */
char *store_tag_to_keyword(const char *tag, GError **error);
/* Never fails: a keyword that is no encoding is its own tag. */
char *store_keyword_to_tag(const char *keyword);
/* A user.xdg.tags value (@len bytes, comma-separated, white space around a tag and empty
 * tags dropped, duplicates once) to keywords (NULL-terminated); NULL with
 * STORE_ERROR_INVALID on an invalid tag or a NUL byte. */
char **store_tags_to_keywords(const char *text, gsize len, GError **error);
/* The user.xdg.tags value of a flag set: its keywords as tags, comma-separated. */
char *store_tags_from_flags(const char *const *flags);

/* ---- MIME helpers (mime.c) -------------------------------------------------------- */

/* RFC 2047-decoded UTF-8 of a raw header value (NULL in, NULL out). Invalid bytes are
 * replaced, the result is always valid UTF-8. */
char *store_mime_decode_text(const char *raw);
/* "Name <mailbox@host>, ..." of an envelope address list, names decoded. NULL if empty. */
char *store_mime_format_addresses(GPtrArray *addrs);
/* Initializes GMime once (thread-safe, idempotent). */
void store_mime_init(void);

G_END_DECLS
