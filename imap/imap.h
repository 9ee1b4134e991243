/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * imap.h: the only header of the IMAP client library that code outside imap/ includes.
 *
 * The API speaks UIDs, UIDVALIDITY, UTF-8 mailbox names, GBytes and fd sinks. Sequence
 * numbers, tags, raw protocol lines, parser trees and OpenSSL types never cross it.
 * Every call that may wait on the network ends in _sync, takes a GCancellable and a
 * GError, and returns within the pool's timeout (IMAP_ERROR_TIMEOUT) at the latest.
 * All functions are thread-safe unless noted; many worker threads may call into one
 * ImapPool at once and the pool spreads them over its connections.
 */
#pragma once

#include <glib.h>
#include <gio/gio.h>

G_BEGIN_DECLS

/* ---- errors (error.c) ------------------------------------------------------------ */

#define IMAP_ERROR (imap_error_quark())
GQuark imap_error_quark(void);

typedef enum {
	IMAP_ERROR_FAILED,        /* anything else */
	IMAP_ERROR_PROTOCOL,      /* malformed or unexpected server data */
	IMAP_ERROR_LIMIT,         /* a line, literal or nesting limit was exceeded */
	IMAP_ERROR_TIMEOUT,       /* a deadline passed */
	IMAP_ERROR_DISCONNECTED,  /* connection lost or BYE */
	IMAP_ERROR_CONNECT,       /* DNS, refused, unreachable */
	IMAP_ERROR_TLS,           /* handshake, verification, hostname or pin mismatch */
	IMAP_ERROR_TLS_REQUIRED,  /* STARTTLS missing, PREAUTH when TLS was required */
	IMAP_ERROR_AUTH,          /* bad credentials or no usable mechanism */
	IMAP_ERROR_INSECURE,      /* refusing to send a credential in cleartext */
	IMAP_ERROR_NO,            /* tagged NO without a more specific code */
	IMAP_ERROR_BAD,           /* tagged BAD */
	IMAP_ERROR_NONEXISTENT,   /* [NONEXISTENT], or a mailbox that does not exist */
	IMAP_ERROR_ALREADYEXISTS, /* [ALREADYEXISTS] */
	IMAP_ERROR_NOPERM,        /* [NOPERM] */
	IMAP_ERROR_OVERQUOTA,     /* [OVERQUOTA] */
	IMAP_ERROR_LIMIT_SERVER,  /* [LIMIT] */
	IMAP_ERROR_INUSE,         /* [INUSE] */
	IMAP_ERROR_UNAVAILABLE,   /* [UNAVAILABLE] / [SERVERBUG] */
	IMAP_ERROR_CANNOT,        /* [CANNOT] */
	IMAP_ERROR_EXPUNGEISSUED, /* [EXPUNGEISSUED], or the message is gone */
	IMAP_ERROR_CORRUPTION,    /* [CORRUPTION] */
	IMAP_ERROR_UIDVALIDITY,   /* UIDVALIDITY changed under us */
	IMAP_ERROR_UNSUPPORTED,   /* the server lacks a needed capability */
	IMAP_ERROR_CANCELLED,     /* the GCancellable fired */
	IMAP_ERROR_INVALID,       /* bad argument from the caller (e.g. a flag with a space) */
	IMAP_ERROR_BUSY,          /* every connection of the pool stayed busy until the
				   * deadline: the server is reachable, try again later */
	IMAP_ERROR_NOT_PERMANENT, /* the mailbox's PERMANENTFLAGS (of a read-write SELECT) do
				   * not let a flag be stored: refused before anything is sent */
} ImapErrorCode;

/* Maps an RFC 5530 response code (upper-case atom, e.g. "OVERQUOTA") to an error code;
 * @fallback when the code is NULL or unknown. */
ImapErrorCode imap_error_from_code(const char *resp_code, ImapErrorCode fallback);

/* ---- UID sets (seqset.c) ----------------------------------------------------------- */

/* A set of UIDs kept as sorted, merged ranges. */
typedef struct _ImapUidSet ImapUidSet;
ImapUidSet *imap_uidset_new(void);
void imap_uidset_free(ImapUidSet *set);
ImapUidSet *imap_uidset_dup(const ImapUidSet *set);
void imap_uidset_add(ImapUidSet *set, guint32 uid);
void imap_uidset_add_range(ImapUidSet *set, guint32 first, guint32 last);
gboolean imap_uidset_contains(const ImapUidSet *set, guint32 uid);
guint64 imap_uidset_count(const ImapUidSet *set);
gboolean imap_uidset_is_empty(const ImapUidSet *set);
/* "1:3,7,9:*"-style text; last==G_MAXUINT32 is written as '*'. Caller frees. */
char *imap_uidset_to_string(const ImapUidSet *set);
/* Parses a sequence-set. '*' becomes G_MAXUINT32. NULL and an error on bad input. */
ImapUidSet *imap_uidset_parse(const char *text, GError **error);
/* Calls @fn for each UID in ascending order; stops when it returns FALSE. */
void imap_uidset_foreach(const ImapUidSet *set, gboolean (*fn)(guint32 uid, gpointer data),
			 gpointer data);
/* Splits the set into pieces of at most @max_count UIDs each (GPtrArray of ImapUidSet*,
 * owning). Used to keep command lines short. */
GPtrArray *imap_uidset_split(const ImapUidSet *set, guint max_count);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImapUidSet, imap_uidset_free)

/* ---- modified UTF-7 (utf7.c) ------------------------------------------------------- */

/* RFC 3501 §5.1.3. Both return NULL and set an error on malformed input. */
char *imap_utf7_encode(const char *utf8, GError **error);
char *imap_utf7_decode(const char *mutf7, GError **error);

/* ---- data types -------------------------------------------------------------------- */

typedef struct {
	char *prefix; /* UTF-8, e.g. "INBOX." or "" or "user." */
	char delim;   /* hierarchy delimiter, 0 for NIL */
} ImapNamespace;

typedef struct {
	GPtrArray *personal; /* of ImapNamespace*, owning; may be empty, never NULL */
	GPtrArray *other;
	GPtrArray *shared;
} ImapNamespaces;
void imap_namespaces_free(ImapNamespaces *ns);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImapNamespaces, imap_namespaces_free)

typedef enum {
	IMAP_MBOX_NOSELECT = 1 << 0,
	IMAP_MBOX_NOINFERIORS = 1 << 1,
	IMAP_MBOX_NONEXISTENT = 1 << 2,
	IMAP_MBOX_HASCHILDREN = 1 << 3,
	IMAP_MBOX_HASNOCHILDREN = 1 << 4,
	IMAP_MBOX_MARKED = 1 << 5,
	IMAP_MBOX_UNMARKED = 1 << 6,
	IMAP_MBOX_SUBSCRIBED = 1 << 7,
	IMAP_MBOX_REMOTE = 1 << 8,
	/* SPECIAL-USE (RFC 6154) */
	IMAP_MBOX_ALL = 1 << 16,
	IMAP_MBOX_ARCHIVE = 1 << 17,
	IMAP_MBOX_DRAFTS = 1 << 18,
	IMAP_MBOX_FLAGGED = 1 << 19,
	IMAP_MBOX_JUNK = 1 << 20,
	IMAP_MBOX_SENT = 1 << 21,
	IMAP_MBOX_TRASH = 1 << 22,
	IMAP_MBOX_IMPORTANT = 1 << 23,
} ImapMailboxAttrs;

/* Which fields of ImapStatus are set. */
typedef enum {
	IMAP_STATUS_MESSAGES = 1 << 0,
	IMAP_STATUS_RECENT = 1 << 1,
	IMAP_STATUS_UIDNEXT = 1 << 2,
	IMAP_STATUS_UIDVALIDITY = 1 << 3,
	IMAP_STATUS_UNSEEN = 1 << 4,
	IMAP_STATUS_HIGHESTMODSEQ = 1 << 5,
	IMAP_STATUS_SIZE = 1 << 6,
} ImapStatusItems;

typedef struct {
	guint have; /* ImapStatusItems */
	guint32 messages, recent, uidnext, uidvalidity, unseen;
	guint64 highestmodseq;
	guint64 size;
} ImapStatus;

typedef struct {
	char *name;      /* UTF-8 (decoded from modified UTF-7 unless UTF8=ACCEPT) */
	char delim;      /* 0 for NIL */
	guint attrs;     /* ImapMailboxAttrs */
	ImapStatus status; /* from LIST-STATUS when requested; status.have == 0 otherwise */
} ImapMailboxInfo;
void imap_mailbox_info_free(ImapMailboxInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImapMailboxInfo, imap_mailbox_info_free)

typedef struct {
	char *name;    /* display name, raw (may hold RFC 2047 words), or NULL */
	char *mailbox; /* local part */
	char *host;
} ImapAddress;

typedef struct {
	char *date;        /* raw Date: header text, or NULL */
	char *subject;     /* raw (undecoded) subject, or NULL */
	GPtrArray *from;   /* of ImapAddress*, owning; never NULL */
	GPtrArray *sender;
	GPtrArray *reply_to;
	GPtrArray *to;
	GPtrArray *cc;
	GPtrArray *bcc;
	char *in_reply_to;
	char *message_id;
} ImapEnvelope;
void imap_envelope_free(ImapEnvelope *env);

/* What a FETCH asks for and which ImapMessage fields are valid. */
typedef enum {
	IMAP_FETCH_UID = 1 << 0, /* always present */
	IMAP_FETCH_FLAGS = 1 << 1,
	IMAP_FETCH_SIZE = 1 << 2,         /* RFC822.SIZE */
	IMAP_FETCH_INTERNALDATE = 1 << 3,
	IMAP_FETCH_ENVELOPE = 1 << 4,
	IMAP_FETCH_MODSEQ = 1 << 5,       /* needs CONDSTORE */
	IMAP_FETCH_HEADER = 1 << 6,       /* BODY.PEEK[HEADER] */
	IMAP_FETCH_BODYSTRUCTURE = 1 << 7,
	IMAP_FETCH_REFERENCES = 1 << 8,   /* BODY.PEEK[HEADER.FIELDS (REFERENCES)] */
} ImapFetchItems;

typedef struct {
	guint have;            /* ImapFetchItems */
	guint32 uid;
	char **flags;          /* NULL-terminated, e.g. "\\Seen", "$Label1"; NULL if !FLAGS */
	guint64 size;          /* RFC822.SIZE */
	gint64 internaldate;   /* seconds since the epoch, UTC */
	gint internaldate_tz;  /* zone offset in minutes east of UTC */
	guint64 modseq;
	ImapEnvelope *envelope;
	GBytes *header;
	char *bodystructure;   /* the BODYSTRUCTURE re-serialized as IMAP text */
	char *references;      /* the References: field unfolded, or NULL if the message has none */
} ImapMessage;
void imap_message_free(ImapMessage *msg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImapMessage, imap_message_free)

/* What SELECT/EXAMINE reported. For QRESYNC, the expunged UIDs (VANISHED (EARLIER)) and
 * the changed messages since the given modseq. */
typedef struct {
	guint32 uidvalidity;
	guint32 uidnext;
	guint32 exists;
	guint32 recent;
	guint64 highestmodseq; /* 0 when NOMODSEQ or no CONDSTORE */
	gboolean read_only;
	char **flags;
	char **permanentflags;
	gboolean have_permanentflags; /* the server sent PERMANENTFLAGS (without it, RFC 9051
				       * says every flag is permanent) */
	ImapUidSet *vanished;  /* QRESYNC only, else NULL */
	GPtrArray *changed;    /* of ImapMessage* (UID, FLAGS, MODSEQ); QRESYNC only, else NULL */
} ImapSelectInfo;
void imap_select_info_free(ImapSelectInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImapSelectInfo, imap_select_info_free)

typedef struct {
	char *root;       /* quota root name */
	guint64 storage_used_kb, storage_limit_kb; /* G_MAXUINT64 limit when none */
	guint64 messages_used, messages_limit;
} ImapQuota;

/* ---- the pool of connections to one account (pool.c, conn.c, tls.c, auth.c) -------- */

typedef enum {
	IMAP_TLS_IMPLICIT, /* imaps:// */
	IMAP_TLS_STARTTLS, /* imap://, STARTTLS mandatory */
	IMAP_TLS_NONE,     /* -o tls=none: cleartext */
} ImapTlsMode;

typedef struct {
	char *host;
	guint16 port;
	ImapTlsMode tls;
	char *user;
	char *password;           /* or NULL; never logged */
	char *oauth_token;        /* or NULL; XOAUTH2/OAUTHBEARER when set */
	/* Or a source of OAuth2 access tokens (wins over oauth_token): called before every
	 * login on a new connection, and once more when the server refuses the token, on
	 * the thread that opens the connection, with no library lock held; it may block
	 * (bounded by its own timeout). Returns a new token, which the library wipes and
	 * frees, or NULL with @error set. Must be thread-safe. */
	char *(*oauth_token_fn)(gpointer data, GError **error);
	gpointer oauth_token_data; /* for oauth_token_fn; outlives the pool */
	char *cafile;             /* NULL: the system CA store */
	char *tls_fingerprint;    /* "SHA256:hex..." pin, or NULL */
	gboolean allow_insecure_auth; /* credentials over cleartext to a non-loopback host */
	guint timeout_ms;         /* deadline for every network wait; 0 = 30000. Also each
				   * command's total: timeout_ms plus its bytes (sent, received,
				   * announced in literals) at 64 KiB/s; IMAP_ERROR_TIMEOUT after */
	guint max_conns;          /* 0 = 4 */
	int trace_fd;             /* protocol trace (redacted) to this fd, or -1 */
	gboolean mark_seen;       /* fetch with BODY[] instead of BODY.PEEK[] */
} ImapConfig;
void imap_config_clear(ImapConfig *cfg); /* frees the strings, wipes the secrets */

typedef struct _ImapPool ImapPool;

/* Copies @cfg. Does no I/O. */
ImapPool *imap_pool_new(const ImapConfig *cfg);
void imap_pool_free(ImapPool *pool);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImapPool, imap_pool_free)

/* What a pool connection heard about its selected mailbox outside the answer to a
 * command (RFC 9051 §7: the server may send EXISTS, EXPUNGE, VANISHED or a FETCH of
 * flags at any time). */
typedef enum {
	IMAP_CHANGED_EXISTS = 1 << 0,  /* new mail (or a changed count) */
	IMAP_CHANGED_EXPUNGE = 1 << 1, /* EXPUNGE or VANISHED */
	IMAP_CHANGED_FLAGS = 1 << 2,   /* an unsolicited FETCH */
} ImapChanged;
/* @changed: ImapChanged bits seen on a connection that had @mailbox (UIDVALIDITY
 * @uidvalidity) selected. Called on the thread that released the connection, with no
 * library lock held; it must not wait on the network. */
typedef void (*ImapChangedFn)(const char *mailbox, guint32 uidvalidity, guint changed,
			      gpointer data);
/* Sets the one receiver of such changes (NULL: none). Call before the first use. */
void imap_pool_set_changed_handler(ImapPool *pool, ImapChangedFn fn, gpointer data);

/* Opens the first connection and logs in, so a bad host, TLS or password shows up now. */
gboolean imap_pool_connect_sync(ImapPool *pool, GCancellable *cancel, GError **error);

/* Capability test on the logged-in server (after connect), e.g. "MOVE", "QRESYNC". */
gboolean imap_pool_has_capability(ImapPool *pool, const char *cap);
/* The number of a capability "NAME=n" (e.g. APPENDLIMIT=35651584, RFC 7889). FALSE when the
 * server does not announce @name with a decimal value. */
gboolean imap_pool_capability_number(ImapPool *pool, const char *name, guint64 *value);

/* The mailboxes selected on the pool's connections now (owning strv, may repeat). A server
 * may answer STATUS for a mailbox selected on the asking connection from that session's
 * view (Dovecot does, also in LIST-STATUS): for those, imap_noop_sync() is the way to learn
 * of changes. */
char **imap_pool_dup_selected(ImapPool *pool);

/* Counters for tests and benchmarks: bytes read from and written to the network (after
 * TLS), commands sent, and body bytes received in FETCH literals. */
typedef struct {
	guint64 bytes_in, bytes_out, commands, body_bytes, reconnects;
} ImapStats;
void imap_pool_get_stats(ImapPool *pool, ImapStats *out);

/* ---- operations (ops.c). Mailbox names are UTF-8; the library encodes them. -------- */

gboolean imap_namespace_sync(ImapPool *pool, ImapNamespaces **out, GCancellable *cancel,
			     GError **error);

/* Every mailbox of every namespace (LIST "" "*" plus LIST of each namespace prefix that
 * "*" does not reach), de-duplicated. With @with_status and LIST-STATUS, each entry's
 * status holds MESSAGES UIDNEXT UIDVALIDITY UNSEEN (and HIGHESTMODSEQ once CONDSTORE is
 * enabled). Returns GPtrArray of ImapMailboxInfo*. */
GPtrArray *imap_list_all_sync(ImapPool *pool, gboolean with_status, GCancellable *cancel,
			      GError **error);
/* One LIST with a reference and a pattern (both UTF-8). */
GPtrArray *imap_list_sync(ImapPool *pool, const char *reference, const char *pattern,
			  GCancellable *cancel, GError **error);

gboolean imap_status_sync(ImapPool *pool, const char *mailbox, guint items, ImapStatus *out,
			  GCancellable *cancel, GError **error);

/* EXAMINE (read-only) the mailbox on some connection and report its state. With
 * @known_uidvalidity and @known_modseq non-zero and QRESYNC, asks for changes since. */
ImapSelectInfo *imap_examine_sync(ImapPool *pool, const char *mailbox,
				  guint32 known_uidvalidity, guint64 known_modseq,
				  GCancellable *cancel, GError **error);

/* UID FETCH of @items for @uids in @mailbox (EXAMINE'd as needed). @changedsince (CONDSTORE)
 * when non-zero. @fn is called for every message as it arrives, in the calling thread's
 * context is NOT guaranteed: it runs on the connection's I/O thread, so keep it short.
 * If @expect_uidvalidity is non-zero and the mailbox's differs, fails with
 * IMAP_ERROR_UIDVALIDITY. */
typedef void (*ImapMessageFn)(ImapMessage *msg, gpointer user_data); /* msg borrowed */
gboolean imap_fetch_sync(ImapPool *pool, const char *mailbox, guint32 expect_uidvalidity,
			 const ImapUidSet *uids, guint items, guint64 changedsince,
			 ImapMessageFn fn, gpointer user_data, GCancellable *cancel,
			 GError **error);

/* The body of one message, or the byte range [offset, offset+length) when length > 0,
 * streamed to @fd (written with write(2) from the I/O thread) or, when fd < 0, returned
 * in @out. BODY.PEEK unless the pool was configured with mark_seen. Returns the number of
 * bytes the server sent, or -1 on error. A message that no longer exists is
 * IMAP_ERROR_EXPUNGEISSUED. A server that answers a range with the whole body is used as
 * it is and asked for whole bodies from then on: into @out exactly the range still comes
 * back; into @fd everything from @offset to the end of the message (more than @length:
 * the message ends there). */
gint64 imap_fetch_body_sync(ImapPool *pool, const char *mailbox, guint32 expect_uidvalidity,
			    guint32 uid, guint64 offset, guint64 length, int fd, GBytes **out,
			    GCancellable *cancel, GError **error);

typedef enum { IMAP_STORE_SET, IMAP_STORE_ADD, IMAP_STORE_REMOVE } ImapStoreMode;
/* The flag imap_store_flags_sync() would send for @flag (a settable system flag in RFC
 * case, or a keyword atom unchanged; owned), or NULL with IMAP_ERROR_INVALID ("\Recent",
 * unknown \Flags, a keyword with a space, a parenthesis, '*', non-ASCII...). No I/O. */
char *imap_flag_normalize(const char *flag, GError **error);
/* UID STORE [UNCHANGEDSINCE] FLAGS.SILENT on a SELECTed mailbox. @flags NULL-terminated;
 * a flag that is not a valid atom or \System flag is IMAP_ERROR_INVALID, nothing sent.
 * For SET and ADD, a flag that the PERMANENTFLAGS of the read-write SELECT neither list
 * nor allow with \* is IMAP_ERROR_NOT_PERMANENT, nothing sent (a server that sent no
 * PERMANENTFLAGS allows every flag).
 * With @unchangedsince and CONDSTORE, UIDs the server refused land in @modified (may be
 * NULL). */
gboolean imap_store_flags_sync(ImapPool *pool, const char *mailbox, guint32 expect_uidvalidity,
			       const ImapUidSet *uids, ImapStoreMode mode,
			       const char *const *flags, guint64 unchangedsince,
			       ImapUidSet **modified, GCancellable *cancel, GError **error);

/* The same without .SILENT (and without UNCHANGEDSINCE): *@echoed (may be NULL) gets the
 * UIDs the server answered with their FLAGS. A server may leave out those whose flags it
 * did not change (Dovecot does: already so, gone, or a read-only mailbox), so a UID
 * missing there needs a look (a FETCH) to tell why. */
gboolean imap_store_flags_echo_sync(ImapPool *pool, const char *mailbox,
				    guint32 expect_uidvalidity, const ImapUidSet *uids,
				    ImapStoreMode mode, const char *const *flags,
				    ImapUidSet **echoed, GCancellable *cancel, GError **error);

/* UID MOVE, or without MOVE: UID COPY, then \Deleted and UID EXPUNGE of exactly those UIDs
 * (needs UIDPLUS; without UIDPLUS the source is left \Deleted-free and a copy remains:
 * a duplicate, never a loss). Returns the COPYUID mapping when the server gives one:
 * @dest_uidvalidity and @dest_uids (in the order of the source set) may be NULL. */
gboolean imap_move_sync(ImapPool *pool, const char *mailbox, guint32 expect_uidvalidity,
			const ImapUidSet *uids, const char *dest, guint32 *dest_uidvalidity,
			ImapUidSet **dest_uids, GCancellable *cancel, GError **error);
gboolean imap_copy_sync(ImapPool *pool, const char *mailbox, guint32 expect_uidvalidity,
			const ImapUidSet *uids, const char *dest, guint32 *dest_uidvalidity,
			ImapUidSet **dest_uids, GCancellable *cancel, GError **error);

/* UID EXPUNGE of exactly @uids (needs UIDPLUS, else IMAP_ERROR_UNSUPPORTED: never a bare
 * EXPUNGE that could take other clients' \Deleted mail). It first stores \Deleted on
 * @uids on the same connection (UID STORE +FLAGS.SILENT), so that they go even when their
 * \Deleted was set on another connection whose change this one has not seen yet. */
gboolean imap_expunge_uids_sync(ImapPool *pool, const char *mailbox, guint32 expect_uidvalidity,
				const ImapUidSet *uids, GCancellable *cancel, GError **error);

/* APPEND @message with @flags (may be NULL) and @internaldate (0: the server's clock).
 * Returns APPENDUID data when offered (else zeros). */
gboolean imap_append_sync(ImapPool *pool, const char *mailbox, GBytes *message,
			  const char *const *flags, gint64 internaldate, guint32 *uidvalidity,
			  guint32 *uid, GCancellable *cancel, GError **error);

gboolean imap_create_sync(ImapPool *pool, const char *mailbox, GCancellable *cancel,
			  GError **error);
gboolean imap_delete_sync(ImapPool *pool, const char *mailbox, GCancellable *cancel,
			  GError **error);
gboolean imap_rename_sync(ImapPool *pool, const char *from, const char *to,
			  GCancellable *cancel, GError **error);

/* NOOP on a connection that has @mailbox selected (EXAMINEd first when none has): what
 * the server then reports unsolicited (EXISTS, EXPUNGE, VANISHED, FETCH) reaches the
 * changed handler (imap_pool_set_changed_handler). */
gboolean imap_noop_sync(ImapPool *pool, const char *mailbox, GCancellable *cancel,
			GError **error);

/* GETQUOTAROOT of @mailbox; FALSE with IMAP_ERROR_UNSUPPORTED without QUOTA. */
gboolean imap_quota_sync(ImapPool *pool, const char *mailbox, ImapQuota *out,
			 GCancellable *cancel, GError **error);

/* Typed search keys; combined with AND. Enough for the store's needs and .search/. */
typedef enum {
	IMAP_SEARCH_ALL,
	IMAP_SEARCH_UID,      /* value: a uid set text */
	IMAP_SEARCH_SUBJECT,  /* value: string */
	IMAP_SEARCH_FROM,
	IMAP_SEARCH_TO,
	IMAP_SEARCH_BODY,
	IMAP_SEARCH_TEXT,
	IMAP_SEARCH_KEYWORD,  /* value: a flag atom */
	IMAP_SEARCH_UNKEYWORD,
	IMAP_SEARCH_SEEN,
	IMAP_SEARCH_UNSEEN,
	IMAP_SEARCH_FLAGGED,
	IMAP_SEARCH_DELETED,
	IMAP_SEARCH_SINCE,    /* value: "1-Feb-1994" */
	IMAP_SEARCH_BEFORE,
	IMAP_SEARCH_LARGER,   /* value: decimal */
	IMAP_SEARCH_SMALLER,
	IMAP_SEARCH_MODSEQ,   /* value: decimal */
	IMAP_SEARCH_HEADER,   /* header: a field name (printable ASCII, no ':' or space);
			       * value: string the field contains */
} ImapSearchKey;
typedef struct {
	ImapSearchKey key;
	const char *value;
	const char *header; /* IMAP_SEARCH_HEADER only */
} ImapSearchTerm;
/* UID SEARCH (RETURN (ALL) with ESEARCH). Returns the matching UIDs. */
ImapUidSet *imap_search_sync(ImapPool *pool, const char *mailbox, guint32 expect_uidvalidity,
			     const ImapSearchTerm *terms, guint n_terms, GCancellable *cancel,
			     GError **error);

/* ---- change notification (IDLE) --------------------------------------------------- */

typedef enum {
	IMAP_CHANGE_EXISTS,   /* new mail may have arrived; count in .exists */
	IMAP_CHANGE_EXPUNGED, /* .uids gone (VANISHED, one call per response, as ranges);
			       * .uids NULL and .uid 0 when only a seqno was known (EXPUNGE) */
	IMAP_CHANGE_FLAGS,    /* .msg has FLAGS (and MODSEQ); .uid its UID, 0 when not sent */
	IMAP_CHANGE_LOST,     /* the IDLE connection died; re-sync needed after it returns */
	IMAP_CHANGE_WATCHING, /* the mailbox is watched from now on (after the first EXAMINE
			       * and after each reconnect): earlier changes are not reported,
			       * look again; .exists as EXAMINE said */
} ImapChangeKind;
typedef struct {
	ImapChangeKind kind;
	const char *mailbox;
	guint32 exists;
	guint32 uid;
	const ImapMessage *msg;
	const ImapUidSet *uids; /* EXPUNGED from VANISHED: borrowed for the call */
} ImapChange;
typedef void (*ImapChangeFn)(const ImapChange *change, gpointer user_data);

/* A dedicated connection that EXAMINEs @mailbox and IDLEs (re-issued before 29 minutes;
 * NOOP polling when IDLE is not offered), calling @fn on its I/O thread for each change.
 * Reconnects with backoff by itself. */
typedef struct _ImapIdle ImapIdle;
ImapIdle *imap_idle_start(ImapPool *pool, const char *mailbox, ImapChangeFn fn,
			  gpointer user_data, GError **error);
void imap_idle_stop(ImapIdle *idle); /* blocks until the thread is gone; NULL ok */

/* ---- change notification for the whole account (NOTIFY, RFC 5465; notify.c) ------- */

typedef enum {
	IMAP_NOTIFY_READY,     /* NOTIFY SET was accepted; .resumed after a reconnect (what
				* changed while the connection was down is unknown) */
	IMAP_NOTIFY_STATUS,    /* messages of .mailbox changed (new, expunged, flags): .status
				* holds the items the server sent (any may be missing) */
	IMAP_NOTIFY_MAILBOXES, /* a folder was created, deleted, renamed or (un)subscribed:
				* .mailbox names it (NULL when the LIST did not decode) */
	IMAP_NOTIFY_SELECTED,  /* EXISTS, EXPUNGE, VANISHED or FETCH: about a selected mailbox,
				* and the NOTIFY connection selects none (a server oddity);
				* never decoded further (a VANISHED range is not walked) */
	IMAP_NOTIFY_LOST,      /* the connection died; it comes back by itself with backoff */
	IMAP_NOTIFY_REFUSED,   /* the server lacks NOTIFY or refused NOTIFY SET: the watcher
				* thread has ended (use IDLE or polling instead) */
} ImapNotifyKind;
typedef struct {
	ImapNotifyKind kind;
	const char *mailbox;	  /* UTF-8, or NULL */
	const ImapStatus *status; /* STATUS only, else NULL */
	gboolean resumed;	  /* READY only */
} ImapNotifyEvent;
/* Called on the watcher's threads (STATUS, MAILBOXES and SELECTED on the connection's I/O
 * thread with its lock held): copy what you need and return; never wait, never call the
 * library. Everything is borrowed for the call. */
typedef void (*ImapNotifyFn)(const ImapNotifyEvent *event, gpointer user_data);

/* A dedicated connection (outside the pool) that asks for NOTIFY SET (selected ...)
 * (personal ...) [(subtree @subtrees ...)] with MessageNew, MessageExpunge and FlagChange,
 * and MailboxName and SubscriptionChange for the folders, selects no mailbox (so the server
 * reports STATUS per changed folder and LIST per changed name), waits in IDLE (re-issued
 * before 29 minutes; NOOP every 5 minutes without IDLE) and calls @fn for each notification.
 * @subtrees (may be NULL): UTF-8 mailbox names whose subtrees are watched too (the prefixes
 * of other users' and shared namespaces). Reconnects with backoff by itself. Never fails
 * here: a server without NOTIFY is reported by IMAP_NOTIFY_REFUSED. */
typedef struct _ImapNotify ImapNotify;
ImapNotify *imap_notify_start(ImapPool *pool, const char *const *subtrees, ImapNotifyFn fn,
			      gpointer user_data);
void imap_notify_stop(ImapNotify *notify); /* blocks until the thread is gone; NULL ok */

G_END_DECLS
