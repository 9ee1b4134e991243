/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cmd.h: internal to imap/. The typed command builder (cmd.c): commands are built from
 * typed arguments, never printed. Each specifier quotes, escapes, encodes or turns its
 * argument into a literal, so nothing built here can hold a bare CR or LF outside a
 * literal and no caller-supplied text can start a second command.
 *
 * Use:
 *	g_autoptr(ImapCmd) cmd = imap_cmd_new("UID STORE");
 *	imap_cmd_set_options(cmd, caps_literal_plus, caps_literal_minus, utf8_enabled);
 *	imap_cmd_uidset(cmd, uids);
 *	imap_cmd_raw(cmd, "+FLAGS.SILENT");
 *	imap_cmd_raw(cmd, "(");
 *	for (...) imap_cmd_flag(cmd, flags[i]);
 *	imap_cmd_raw(cmd, ")");
 *	if (!imap_cmd_finish(cmd, error)) return FALSE;   // nothing may be sent then
 *	// the connection sends "TAG " + part 0; for each further part it first waits for a
 *	// "+" continuation (imap_cmd_part_waits() of the previous part), then sends it.
 *
 * Spacing: arguments are separated by one space, except that no space is written after
 * raw text ending in '(' or '[' and none before raw text starting with ')' or ']'. So
 * "(", flag, flag, ")" gives "(\Seen $Junk)". Only raw text affects spacing.
 *
 * Errors: a bad argument does not fail the call; it puts the command in an error state
 * (the first error is kept) and imap_cmd_finish() then returns FALSE with
 * IMAP_ERROR_INVALID. Calling a builder function after finish is a programming error.
 *
 * Threads: an ImapCmd has no lock; one thread owns it at a time (the caller builds and
 * finishes it, then hands it to the connection, which only reads it).
 */
#pragma once

#include "imap.h"

G_BEGIN_DECLS

typedef struct _ImapCmd ImapCmd;

/* @verb is a fixed command name such as "UID FETCH": only A-Z and single inner spaces
 * (anything else puts the command in the error state). Never user data. */
ImapCmd *imap_cmd_new(const char *verb);
void imap_cmd_free(ImapCmd *cmd); /* NULL ok */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImapCmd, imap_cmd_free)

/* Server capabilities that change the encoding. May be called any time before finish
 * (arguments are rendered by imap_cmd_finish()). Defaults: all FALSE.
 * @literal_plus: LITERAL+ (RFC 7888): every literal is non-synchronizing {n+}.
 * @literal_minus: LITERAL- : non-synchronizing only for literals of at most 4096 bytes.
 * @utf8: UTF8=ACCEPT was ENABLEd (RFC 6855): mailbox names are sent as UTF-8 (not
 *        modified UTF-7) and quoted strings may hold valid UTF-8. */
void imap_cmd_set_options(ImapCmd *cmd, gboolean literal_plus, gboolean literal_minus,
			  gboolean utf8);

/* Arguments added while @secret is TRUE show as "<redacted>" in the trace rendering
 * (passwords, tokens, SASL initial responses). */
void imap_cmd_set_secret(ImapCmd *cmd, gboolean secret);

/* An atom (RFC 3501 ATOM-CHAR only, non-empty), e.g. a SEARCH date "1-Feb-1994". */
void imap_cmd_atom(ImapCmd *cmd, const char *atom);
/* A decimal number. */
void imap_cmd_number(ImapCmd *cmd, guint64 n);
/* A sequence-set from imap_uidset_to_string(); an empty set is an error. */
void imap_cmd_uidset(ImapCmd *cmd, const ImapUidSet *set);
/* A string: quoted when safe (no CR/LF/NUL, 7-bit unless utf8 mode and valid UTF-8, at
 * most 1024 bytes), otherwise a literal. A NUL byte is an error (IMAP strings cannot
 * hold it). @len may be -1 for a NUL-terminated string. */
void imap_cmd_string(ImapCmd *cmd, const char *s, gssize len);
/* An astring: a bare atom when @s is made of ASTRING-CHARs (and is not "NIL"), else
 * as imap_cmd_string(). For LOGIN user names and the like. */
void imap_cmd_astring(ImapCmd *cmd, const char *s);
/* A mailbox name in UTF-8: "INBOX" in any case becomes "INBOX"; otherwise modified
 * UTF-7 encoded (unless utf8 mode); then always quoted or a literal. Invalid UTF-8 is an
 * error. "" is allowed (LIST reference); '*' and '%' are passed on (LIST patterns). */
void imap_cmd_mailbox(ImapCmd *cmd, const char *utf8_name);
/* A flag: one of \Answered \Flagged \Deleted \Seen \Draft (any case; written in RFC
 * case) or a keyword atom such as "$Junk". Anything else (spaces, parens, "\Recent",
 * unknown \Flags, '*') is an error. */
void imap_cmd_flag(ImapCmd *cmd, const char *flag);
/* Constant protocol text written by the library itself: "(", ")", "+FLAGS.SILENT",
 * "BODY.PEEK[HEADER]", "RETURN (ALL)", a printf of numbers like "<0.4096>". NEVER user
 * data, never anything derived from a name, flag or message. Only printable ASCII is
 * accepted (anything else is an error). */
void imap_cmd_raw(ImapCmd *cmd, const char *text);
/* A literal with these exact bytes (APPEND message bodies), {n} or {n+} by the options.
 * The GBytes is referenced, not copied, until finish. 2 GiB or more is an error. */
void imap_cmd_literal(ImapCmd *cmd, GBytes *data);

/* Puts the command in the error state with @why (e.g. "UID search key is not a
 * sequence set"), for callers that validate something cmd.c cannot see. */
void imap_cmd_invalid(ImapCmd *cmd, const char *why);

/* Renders the command into parts. FALSE with IMAP_ERROR_INVALID (and no parts) when any
 * argument was invalid. Call once. */
gboolean imap_cmd_finish(ImapCmd *cmd, GError **error);

/* ---- for the connection, after a successful finish -------------------------------- */

/* The verb given to imap_cmd_new(), e.g. "UID FETCH". */
const char *imap_cmd_get_verb(const ImapCmd *cmd);
/* Number of parts, >= 1. */
guint imap_cmd_get_n_parts(const ImapCmd *cmd);
/* The wire bytes of part @i (borrowed, valid while @cmd lives; overwritten with zeros by
 * imap_cmd_free() when the command held a secret, so do not keep a ref). Part 0 is the text
 * after "TAG " (the connection writes the tag and one space first). Every part but the
 * last ends with a synchronizing literal header "{n}\r\n"; the last ends with "\r\n". */
GBytes *imap_cmd_get_part(const ImapCmd *cmd, guint i);
/* TRUE when part @i ends with a synchronizing literal header: wait for a "+"
 * continuation before sending part i+1 (a tagged NO/BAD instead ends the command). */
gboolean imap_cmd_part_waits(const ImapCmd *cmd, guint i);
/* Total wire size of all parts (without the tag). */
gsize imap_cmd_get_size(const ImapCmd *cmd);
/* One-line rendering for the trace, without tag or CRLF: secret arguments as
 * "<redacted>", literals as "{N bytes}". Caller frees. */
char *imap_cmd_to_trace(const ImapCmd *cmd);

G_END_DECLS
