/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * resp.h: internal to imap/. Typed decoders (resp.c) that turn one parsed ImapResponse
 * into the public data types of imap.h. Each is strict: data that does not fit the
 * grammar is IMAP_ERROR_PROTOCOL (never guessed at), and the response is left untouched.
 * Mailbox names are decoded from modified UTF-7 unless @utf8 (UTF8=ACCEPT) is set.
 * (A name that is not valid modified UTF-7 is kept as it is when it is valid UTF-8, else it
 * is a protocol error; "inbox" in any case comes out as "INBOX".)
 */
#pragma once

#include "parser.h"

G_BEGIN_DECLS

/* Which untagged response this is, by its keyword (the first atom, or the second after a
 * number: "* 3 EXISTS"). */
typedef enum {
	IMAP_UNTAGGED_OTHER,
	IMAP_UNTAGGED_STATUS,     /* OK/NO/BAD/PREAUTH/BYE (look at resp->status / code) */
	IMAP_UNTAGGED_CAPABILITY,
	IMAP_UNTAGGED_ENABLED,
	IMAP_UNTAGGED_NAMESPACE,
	IMAP_UNTAGGED_LIST,
	IMAP_UNTAGGED_LSUB,
	IMAP_UNTAGGED_STATUS_DATA, /* "* STATUS mbox (...)" */
	IMAP_UNTAGGED_FLAGS,
	IMAP_UNTAGGED_EXISTS,
	IMAP_UNTAGGED_RECENT,
	IMAP_UNTAGGED_EXPUNGE,
	IMAP_UNTAGGED_FETCH,
	IMAP_UNTAGGED_SEARCH,
	IMAP_UNTAGGED_ESEARCH,
	IMAP_UNTAGGED_VANISHED,
	IMAP_UNTAGGED_QUOTA,
	IMAP_UNTAGGED_QUOTAROOT,
	IMAP_UNTAGGED_ID,
} ImapUntaggedKind;
ImapUntaggedKind imap_resp_untagged_kind(const ImapResponse *resp);

/* "* CAPABILITY ..." or a [CAPABILITY ...] response code: upper-cased atoms, NULL-terminated. */
char **imap_resp_capability(const ImapResponse *resp, GError **error);
/* "* ENABLED X Y" */
char **imap_resp_enabled(const ImapResponse *resp, GError **error);
ImapNamespaces *imap_resp_namespace(const ImapResponse *resp, gboolean utf8, GError **error);
/* LIST or LSUB, including LIST-EXTENDED extended items (CHILDINFO is accepted and ignored)
 * and SPECIAL-USE attributes. */
ImapMailboxInfo *imap_resp_list(const ImapResponse *resp, gboolean utf8, GError **error);
/* "* STATUS mbox (MESSAGES 3 UIDNEXT 4 ...)"; *mailbox gets the decoded name. */
gboolean imap_resp_status(const ImapResponse *resp, gboolean utf8, char **mailbox,
			  ImapStatus *out, GError **error);
/* "* FLAGS (...)" and [PERMANENTFLAGS (...)] (pass the code args list). */
char **imap_resp_flags(const ImapArg *list, GError **error);
/* "* N EXISTS" / "* N RECENT" / "* N EXPUNGE": the number. */
gboolean imap_resp_number(const ImapResponse *resp, guint32 *out, GError **error);
/* "* N FETCH (...)": *seq gets N; the message gets every item it can decode (UID, FLAGS,
 * RFC822.SIZE, INTERNALDATE, ENVELOPE, MODSEQ, BODY[HEADER], BODYSTRUCTURE). Body
 * sections other than HEADER are reported through @section/@section_arg when non-NULL:
 * the first BODY[...]<origin> item's section text ("" for BODY[]), origin (or -1) and its
 * literal arg (possibly streamed). */
ImapMessage *imap_resp_fetch(const ImapResponse *resp, guint32 *seq, GError **error);
/* (ENVELOPE address groups, RFC 3501 §7.4.2: the start of a group is an ImapAddress with
 * name = the group name and mailbox = host = NULL; the end-of-group marker is dropped.
 * Messages without a UID item (unsolicited FETCH) lack IMAP_FETCH_UID in ->have.) */
typedef struct {
	char *section;        /* "" for BODY[], "HEADER", "1.2", ... */
	gint64 origin;        /* <n>, or -1 */
	const ImapArg *data;  /* borrowed from the response: nstring, possibly streamed */
} ImapFetchSection;
gboolean imap_resp_fetch_section(const ImapResponse *resp, ImapFetchSection *out,
				 GError **error); /* FALSE (no error) when there is none */
/* "* SEARCH 1 2 3 [(MODSEQ n)]" and "* ESEARCH (TAG "x") UID ALL 1:3 COUNT 3". */
ImapUidSet *imap_resp_search(const ImapResponse *resp, guint64 *modseq, GError **error);
ImapUidSet *imap_resp_esearch(const ImapResponse *resp, char **tag, GError **error);
/* "* VANISHED [(EARLIER)] 1:5": *earlier says whether EARLIER was given. */
ImapUidSet *imap_resp_vanished(const ImapResponse *resp, gboolean *earlier, GError **error);
/* "* QUOTA root (STORAGE 10 512 MESSAGE 1 1000)" */
gboolean imap_resp_quota(const ImapResponse *resp, ImapQuota *out, GError **error);
/* (out->root is a new string the caller frees; resources other than STORAGE and MESSAGE
 * are skipped; a missing resource has used 0 and limit G_MAXUINT64.) */
/* "* QUOTAROOT mbox root1 root2": the roots, NULL-terminated. */
char **imap_resp_quotaroot(const ImapResponse *resp, gboolean utf8, GError **error);

/* An untagged response on a NOTIFY connection (RFC 5465), typed: TRUE when it is a
 * notification, with *@kind (IMAP_NOTIFY_STATUS, _MAILBOXES or _SELECTED), *@mailbox (a
 * new string, or NULL) and, for STATUS, *@status; FALSE without an error when it is not
 * one (CAPABILITY, OK, ...); FALSE with IMAP_ERROR_PROTOCOL for a malformed STATUS or
 * LIST. EXISTS, EXPUNGE, VANISHED and FETCH are told by kind only, never decoded. */
gboolean imap_resp_notify(const ImapResponse *resp, gboolean utf8, ImapNotifyKind *kind,
			  char **mailbox, ImapStatus *status, GError **error);

/* Response codes of status responses. */
/* [APPENDUID uidvalidity uid] */
gboolean imap_resp_code_appenduid(const ImapResponse *resp, guint32 *uidvalidity, guint32 *uid);
/* [COPYUID uidvalidity src-set dst-set] */
gboolean imap_resp_code_copyuid(const ImapResponse *resp, guint32 *uidvalidity,
				ImapUidSet **src, ImapUidSet **dst);
/* [UIDVALIDITY n], [UIDNEXT n], [UNSEEN n], [HIGHESTMODSEQ n] */
gboolean imap_resp_code_number(const ImapResponse *resp, const char *code, guint64 *out);
/* [MODIFIED set] */
ImapUidSet *imap_resp_code_modified(const ImapResponse *resp);
/* The RFC 5530 (and RFC 3501) code of a NO/BAD as an ImapErrorCode; @fallback otherwise. */
ImapErrorCode imap_resp_error_code(const ImapResponse *resp, ImapErrorCode fallback);

/* Parses an IMAP date-time "17-Jul-1996 02:44:25 -0700" to UTC seconds and a zone. */
gboolean imap_parse_datetime(const char *text, gint64 *utc, gint *tz_minutes);

G_END_DECLS
