/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pool.h: internal to imap/. The connections of one account (pool.c): leases with mailbox
 * affinity, lazy (re)connection with backoff, one automatic retry of idempotent commands.
 */
#pragma once

#include "conn.h"

G_BEGIN_DECLS

typedef enum {
	IMAP_ACCESS_ANY,   /* no mailbox needed (LIST, STATUS, CREATE, ...) */
	IMAP_ACCESS_READ,  /* the mailbox EXAMINEd (or SELECTed) */
	IMAP_ACCESS_WRITE, /* the mailbox SELECTed */
} ImapAccess;

/* A connection lent to one worker; others may pipeline on it for the same mailbox. */
typedef struct _ImapLease ImapLease;

/* Optional: force a fresh SELECT/EXAMINE with QRESYNC parameters and report it. */
typedef struct {
	guint32 known_uidvalidity;
	guint64 known_modseq;
	ImapSelectInfo **info_out;
} ImapSelectParams;

/* Waits (up to the pool timeout less a tenth, at most 1 s less) for a connection that has
 * @mailbox selected as needed, opening or switching one; IMAP_ERROR_BUSY when every
 * connection stayed busy. @expect_uidvalidity non-zero: IMAP_ERROR_UIDVALIDITY when the
 * mailbox's differs. */
ImapLease *imap_pool_acquire(ImapPool *pool, const char *mailbox, ImapAccess access,
			     guint32 expect_uidvalidity, const ImapSelectParams *sel,
			     GCancellable *cancel, GError **error);
void imap_pool_release(ImapPool *pool, ImapLease *lease);
/* A write (STORE, EXPUNGE, COPY, MOVE, APPEND) changed @mailbox, or may have (its answer
 * was lost): the other connections that have it selected and have not run a command since
 * are brought up to date with a NOOP before their next lease. Call after the write,
 * whatever its outcome, before releasing @lease (the one that made it; NULL if none). */
void imap_pool_note_write(ImapPool *pool, ImapLease *lease, const char *mailbox);
ImapConn *imap_lease_conn(ImapLease *lease);
guint32 imap_lease_uidvalidity(ImapLease *lease);
/* TRUE when @flag may be stored permanently on the lease's SELECTed mailbox: its
 * PERMANENTFLAGS list it or hold \*, or the server sent none (RFC 9051 §7.1). TRUE on an
 * EXAMINEd connection (nothing to check there: it cannot STORE). */
gboolean imap_lease_flag_is_permanent(ImapLease *lease, const char *flag);
/* After a command on the lease changed the server's selection state (e.g. DELETE or
 * RENAME of the selected mailbox, CLOSE): the connection must re-select next time. */
void imap_lease_forget_mailbox(ImapLease *lease);
/* Forgets every connection's selection of @mailbox (after DELETE/RENAME of it). */
void imap_pool_forget_mailbox(ImapPool *pool, const char *mailbox);

/* One command through the pool, rebuilt per attempt. */
typedef struct {
	const char *mailbox;     /* NULL for IMAP_ACCESS_ANY */
	ImapAccess access;
	guint32 expect_uidvalidity;
	gboolean idempotent;     /* retried once on IMAP_ERROR_DISCONNECTED */
	guint conn_flags;        /* ImapConnFlags */
	ImapCmd *(*build)(ImapConn *conn, gpointer data, GError **error);
	ImapConnRespFn untagged;
	gboolean (*reset)(gpointer data); /* before a retry; FALSE forbids it; may be NULL */
	gpointer data;
	ImapLiteralSink sink;
	gpointer sink_data;
} ImapPoolOp;

gboolean imap_pool_run(ImapPool *pool, const ImapPoolOp *op, ImapResponse **tagged_out,
		       GCancellable *cancel, GError **error);
/* The same on a lease already held (no retry). */
gboolean imap_lease_run(ImapLease *lease, const ImapPoolOp *op, ImapResponse **tagged_out,
			GCancellable *cancel, GError **error);

const ImapConfig *imap_pool_get_config(ImapPool *pool);
/* The capabilities of the first connection (after connect), NULL before. Caller frees. */
char **imap_pool_dup_caps(ImapPool *pool);
ImapStats *imap_pool_stats(ImapPool *pool);
/* The server answered a partial body fetch with the whole body: ask it for whole bodies
 * only from now on (ops.c cuts the ranges out). Atomic, never cleared. */
gboolean imap_pool_ranges_ignored(ImapPool *pool);
void imap_pool_set_ranges_ignored(ImapPool *pool);
/* Bumped every time a connection of the pool dies. */
guint imap_pool_epoch(ImapPool *pool);
void imap_pool_bump_epoch(ImapPool *pool);

/* The SELECT/EXAMINE data decoder, shared with the IDLE connection. */
gboolean imap_select_untagged(ImapConn *conn, const ImapResponse *resp, gpointer data);
/* Runs SELECT or EXAMINE on @conn; fills a new ImapSelectInfo. */
ImapSelectInfo *imap_select_run(ImapConn *conn, const char *mailbox, gboolean write,
				guint32 known_uidvalidity, guint64 known_modseq,
				GCancellable *cancel, GError **error);

G_END_DECLS
