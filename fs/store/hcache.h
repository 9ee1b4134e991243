/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hcache.h: the on-disk header cache of one account (SQLite, WAL). It remembers mailbox
 * state (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ), every message's flags, sizes, dates and
 * envelope fields, the file name chosen for it and persistent inode numbers, so that a
 * remount lists folders without refetching headers. No FUSE, no network.
 *
 * Identity is (mailbox, UIDVALIDITY, UID). Mailboxes get a persistent 64-bit id (rowid)
 * that survives renames; messages are keyed by (mailbox id, uidvalidity, uid).
 *
 * Threads: every function is thread-safe (one mutex per Hcache). No function waits on
 * the network; all may do local disk I/O. Errors are HCACHE_ERROR; a caller that gets
 * one keeps working without the cache for that operation (everything cached can be
 * fetched again). A corrupt database is moved aside and rebuilt empty, by hcache_open()
 * or by the first operation that hits the corruption (that operation fails with
 * HCACHE_ERROR_CORRUPT, later ones work on the new, empty cache).
 */
#pragma once

#include <glib.h>

#include "imap.h"

G_BEGIN_DECLS

#define HCACHE_ERROR (hcache_error_quark())
GQuark hcache_error_quark(void);

typedef enum {
	HCACHE_ERROR_IN_USE,	/* another imapfs process holds the cache directory */
	HCACHE_ERROR_IO,	/* local I/O or SQLite failure */
	HCACHE_ERROR_FULL,	/* disk full (SQLITE_FULL, ENOSPC) */
	HCACHE_ERROR_CORRUPT,	/* the database was corrupt; it has been rebuilt empty */
	HCACHE_ERROR_NOT_FOUND, /* no such mailbox or message */
	HCACHE_ERROR_INVALID,	/* bad argument */
} HcacheErrorCode;

/* The schema version this code writes (PRAGMA user_version). An older cache is migrated
 * in place when opened, keeping its rows (1 -> 2 adds References and In-Reply-To, 2 -> 3
 * the journal). */
#define HCACHE_SCHEMA_VERSION 3

typedef struct _Hcache Hcache;

/* Opens (creating) the cache in @dir: mkdir -p, mode 0700 (tightened if looser), files
 * 0600, whatever the umask. Takes an exclusive flock on @dir/lock: a second open of the
 * same directory, by this or another process, fails with HCACHE_ERROR_IN_USE and the
 * message "cache in use by another imapfs (pid N)". A database from a newer schema or a
 * corrupt one is moved aside (hcache.db.bad-<time>) and rebuilt, with a g_message. */
Hcache *hcache_open(const char *dir, GError **error);
void hcache_close(Hcache *hc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Hcache, hcache_close)

const char *hcache_get_dir(Hcache *hc);
/* How many times the database was moved aside and rebuilt since open (tests, logs). */
guint hcache_get_rebuilds(Hcache *hc);

/* ---- mailboxes -------------------------------------------------------------------- */

typedef struct {
	gint64 id;	     /* persistent id, > 0; set by put/get */
	char *name;	     /* server name, UTF-8 */
	char delim;	     /* 0 for NIL */
	guint attrs;	     /* ImapMailboxAttrs (includes the SPECIAL-USE bits) */
	char *special_use;   /* "\\Sent" etc., or NULL */
	guint32 uidvalidity; /* 0: never selected */
	guint32 uidnext;
	guint64 highestmodseq; /* 0: unknown / no CONDSTORE */
} HcacheMailbox;
void hcache_mailbox_clear(HcacheMailbox *mb);
void hcache_mailbox_free(HcacheMailbox *mb);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HcacheMailbox, hcache_mailbox_free)

/* The id of @name, creating an empty row (uidvalidity 0) if needed. 0 on error. */
gint64 hcache_mailbox_ensure(Hcache *hc, const char *name, GError **error);
/* Fills @out (clear it with hcache_mailbox_clear). HCACHE_ERROR_NOT_FOUND if unknown. */
gboolean hcache_mailbox_get(Hcache *hc, const char *name, HcacheMailbox *out, GError **error);
/* Inserts or updates the row of @mb->name: delim, attrs, special_use, uidnext and
 * highestmodseq. The UIDVALIDITY is NOT changed here when the row already has a
 * different non-zero one: use hcache_mailbox_set_uidvalidity() first. Sets @mb->id. */
gboolean hcache_mailbox_put(Hcache *hc, HcacheMailbox *mb, GError **error);
/* Records the server's UIDVALIDITY. If the cache had another non-zero value, deletes
 * every message row (and its inode number) of the mailbox, resets UIDNEXT and
 * HIGHESTMODSEQ to 0 and sets *@dropped: the caller must then drop the mailbox's
 * bodies (bodycache_drop_mailbox) and invalidate its inodes. */
gboolean hcache_mailbox_set_uidvalidity(Hcache *hc, gint64 mbox, guint32 uidvalidity,
					gboolean *dropped, GError **error);
/* Every known mailbox, ordered by name (owning array of HcacheMailbox*). */
GPtrArray *hcache_mailbox_list(Hcache *hc, GError **error);
/* Renames @from and, when @delim is not 0, every mailbox below it (from + delim + ...),
 * like IMAP RENAME. Ids, messages and message inode numbers are kept. An existing row
 * named @to is replaced. HCACHE_ERROR_NOT_FOUND if @from is unknown. */
gboolean hcache_mailbox_rename(Hcache *hc, const char *from, const char *to, char delim,
			       GError **error);
/* Forgets the mailbox and its messages (after DELETE or when LIST no longer has it). */
gboolean hcache_mailbox_delete(Hcache *hc, const char *name, GError **error);

/* ---- messages --------------------------------------------------------------------- */

typedef struct {
	guint32 uid;
	char **flags;	      /* flags and keywords, NULL-terminated; NULL means none on
			       * input, loaded messages always have an array (maybe empty) */
	guint64 modseq;	      /* 0: unknown */
	guint64 size;	      /* RFC822.SIZE */
	guint64 true_size;    /* exact byte count once the body was fetched, else 0 */
	gint64 internaldate;  /* seconds since the epoch, UTC */
	gint internaldate_tz; /* minutes east of UTC */
	char *date;	      /* envelope fields as the store keeps them (decoded UTF-8) */
	char *subject;
	char *from;
	char *to;
	char *message_id;
	char *references;  /* References: unfolded; "" when the message has none; NULL: not */
	char *in_reply_to; /* known (never fetched, or a row from schema 1); on input, NULL
			    * keeps the stored value */
	GBytes *extra;	/* opaque blob for the caller (e.g. a serialized envelope) */
	char *filename; /* the file name chosen for it, or NULL (keeps the stored one) */
	guint64 ino;	/* out: persistent inode number (set by load/get/put) */
} HcacheMessage;
HcacheMessage *hcache_message_new(void);
void hcache_message_free(HcacheMessage *msg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HcacheMessage, hcache_message_free)

/*
 * Flag ordering (STYLE.md §5): a FETCH that started before a local STORE must not
 * overwrite the newer flags. Take a ticket with hcache_ticket() BEFORE sending a FETCH
 * (or EXAMINE) whose flags you will apply; record local STOREs with
 * hcache_flags_local(). When the result is applied, an update is ignored for a message
 * when its MODSEQ is lower than the cached one, or, when the MODSEQs are equal or
 * unknown, when the message had a local write after the ticket was taken.
 * HCACHE_TICKET_FORCE applies unconditionally.
 */
#define HCACHE_TICKET_FORCE G_MAXUINT64
guint64 hcache_ticket(Hcache *hc);

/* Upserts @n messages in one transaction (10,000 rows take a few tens of ms). Envelope
 * fields, sizes and dates are always written; flags and modseq follow the ordering rule
 * for @ticket; a NULL filename, references or in_reply_to keeps the stored one;
 * true_size 0 keeps the stored one.
 * Allocates each new message's inode number and stores it in msgs[i]->ino. */
gboolean hcache_messages_put(Hcache *hc, gint64 mbox, guint32 uidvalidity,
			     HcacheMessage *const *msgs, guint n, guint64 ticket, GError **error);

typedef struct {
	guint32 uid;
	const char *const *flags; /* NULL-terminated; NULL means none */
	guint64 modseq;		  /* 0: unknown */
} HcacheFlagUpdate;
/* Applies FETCH FLAGS results (QRESYNC changed list, CHANGEDSINCE fetch, IDLE FETCH)
 * in one transaction. Unknown UIDs are skipped. *@applied (may be NULL) gets the count
 * of rows actually changed. */
gboolean hcache_flags_apply(Hcache *hc, gint64 mbox, guint32 uidvalidity,
			    const HcacheFlagUpdate *updates, guint n, guint64 ticket,
			    guint *applied, GError **error);
/* Records flags set by a local STORE (the server's answer): always written, and makes
 * every ticket taken before it stale for this message. @modseq 0 if not known. */
gboolean hcache_flags_local(Hcache *hc, gint64 mbox, guint32 uidvalidity, guint32 uid,
			    const char *const *flags, guint64 modseq, GError **error);

/* Sets the exact size (after a body fetch) / the chosen file name of one message. */
gboolean hcache_message_set_true_size(Hcache *hc, gint64 mbox, guint32 uidvalidity, guint32 uid,
				      guint64 size, GError **error);
gboolean hcache_message_set_filename(Hcache *hc, gint64 mbox, guint32 uidvalidity, guint32 uid,
				     const char *filename, GError **error);

/* One message, or NULL with HCACHE_ERROR_NOT_FOUND. */
HcacheMessage *hcache_message_get(Hcache *hc, gint64 mbox, guint32 uidvalidity, guint32 uid,
				  GError **error);

/* Every message of (@mbox, @uidvalidity) in UID order. The callback form does not hold
 * a copy of all rows; @msg is borrowed (steal fields if wanted, set them to NULL). The
 * callback runs with the cache lock held: do not call hcache functions from it. */
typedef void (*HcacheMessageFn)(HcacheMessage *msg, gpointer user_data);
gboolean hcache_messages_foreach(Hcache *hc, gint64 mbox, guint32 uidvalidity, HcacheMessageFn fn,
				 gpointer user_data, GError **error);
/* Same, as an owning array of HcacheMessage*. */
GPtrArray *hcache_messages_load(Hcache *hc, gint64 mbox, guint32 uidvalidity, GError **error);
/* The cached UIDs (for QRESYNC known-uids and the CONDSTORE expunge diff), and the
 * highest cached MODSEQ. Returns NULL on error; an empty set for an empty mailbox. */
ImapUidSet *hcache_messages_uids(Hcache *hc, gint64 mbox, guint32 uidvalidity, guint64 *max_modseq,
				 GError **error);
guint hcache_messages_count(Hcache *hc, gint64 mbox, guint32 uidvalidity, GError **error);

/* Deletes messages (VANISHED / expunge diff), with their inode numbers. *@deleted (may
 * be NULL) gets how many rows existed. */
gboolean hcache_messages_delete(Hcache *hc, gint64 mbox, guint32 uidvalidity, const guint32 *uids,
				guint n, guint *deleted, GError **error);
gboolean hcache_messages_delete_set(Hcache *hc, gint64 mbox, guint32 uidvalidity,
				    const ImapUidSet *uids, guint *deleted, GError **error);

/* ---- stable inode numbers ---------------------------------------------------------- */

/* The hash fs/inode.c uses (FNV-1a + splitmix64 of "d"+path / "m"+mailbox+uv+uid): the
 * first candidate for a new inode number, so numbers match the cache-less scheme. */
guint64 hcache_hash_dir(const char *path);
guint64 hcache_hash_message(const char *mailbox, guint32 uidvalidity, guint32 uid);

/* The persistent inode number of a directory (its path in the tree) or a message,
 * allocated on first use (hash, then probing past collisions and past 0/1) and stored, so
 * it is the same on every mount and unique among everything the cache knows. 0 on
 * error (then fall back to the hash). A message's number dies with its row. */
guint64 hcache_inode_dir(Hcache *hc, const char *path, GError **error);
guint64 hcache_inode_message(Hcache *hc, gint64 mbox, guint32 uidvalidity, guint32 uid,
			     GError **error);

/* ---- the journal of writes in flight (hcache-journal.c) ----------------------------- */

/*
 * Crash safety for the write side, as isync journals its operations: an intent row is
 * written (and committed: WAL, so it survives the process being killed) before a command
 * that changes the server is sent, its step advanced as the server confirms each part,
 * and the row removed once the whole operation is confirmed. Whatever is left at the next
 * mount (or reconnect) is finished or verified by the store before anything else.
 * Mailboxes are server names (a folder rename rewrites them: hcache_journal_rename).
 */
typedef enum {
	HCACHE_JOURNAL_MOVE = 1, /* @uids of @mailbox to @dest (move.c: @message_id, @size =
				  * @dest's UIDNEXT before, @path = COPYUID "UIDVALIDITY UID") */
	HCACHE_JOURNAL_COPY,	 /* @uids of @mailbox copied to @dest (as MOVE) */
	HCACHE_JOURNAL_APPEND,	 /* the staged file @path to @mailbox (@message_id, @size) */
	HCACHE_JOURNAL_DELETE,	 /* @uids of @mailbox: \Deleted by us, to be expunged */
} HcacheJournalOp;

typedef struct {
	gint64 id; /* set by hcache_journal_add */
	HcacheJournalOp op;
	char *mailbox;
	guint32 uidvalidity; /* of @mailbox when the UIDs were taken, 0 if none */
	char *uids;	     /* IMAP UID set text, or NULL */
	char *dest;	     /* target mailbox, or NULL */
	char *message_id;    /* Message-ID of the message (APPEND, COPY without COPYUID) */
	guint64 size;	     /* byte count of the message (APPEND) */
	char *path;	     /* the staged file (APPEND), or NULL */
	gint step;	     /* how far the operation got (its own numbering); 0 at first */
	gint64 created;	     /* wall-clock seconds, set by hcache_journal_add */
} HcacheJournalEntry;
void hcache_journal_entry_free(HcacheJournalEntry *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HcacheJournalEntry, hcache_journal_entry_free)

/* Writes @e (its id and created are set) and commits. Returns the id, 0 on error. */
gint64 hcache_journal_add(Hcache *hc, HcacheJournalEntry *e, GError **error);
/* Records that entry @id got to @step (and, when not NULL, its UID set is now @uids). */
gboolean hcache_journal_set_step(Hcache *hc, gint64 id, gint step, const char *uids,
				 GError **error);
/* Records that entry @id got to @step and that its @path column now holds @path (a MOVE
 * or COPY keeps its COPYUID result there: "UIDVALIDITY UIDSET" of the target). */
gboolean hcache_journal_set_path(Hcache *hc, gint64 id, gint step, const char *path,
				 GError **error);
/* The operation is confirmed: the entry goes. An unknown id is not an error. */
gboolean hcache_journal_remove(Hcache *hc, gint64 id, GError **error);
/* Every entry, oldest first (owning array of HcacheJournalEntry*); @op 0 for all kinds. */
GPtrArray *hcache_journal_list(Hcache *hc, HcacheJournalOp op, GError **error);
/* The entries naming @from (or a mailbox below it, with @delim) as mailbox or target now
 * name @to instead (after a folder RENAME). */
gboolean hcache_journal_rename(Hcache *hc, const char *from, const char *to, char delim,
			       GError **error);

G_END_DECLS
