/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * parser.h: internal to imap/. The incremental response parser (parser.c) and the typed
 * argument tree it builds (arg.c). No I/O: bytes are fed in, whole responses come out.
 * Modelled on Dovecot's imap-parser: NEED_MORE is a normal return, hard limits on line
 * length, nesting depth and literal size, and large literals go to a sink, not memory.
 */
#pragma once

#include "imap.h"

G_BEGIN_DECLS

/* ---- argument tree (arg.c) ----------------------------------------------------------- */

typedef enum {
	IMAP_ARG_ATOM,    /* includes numbers and FETCH section atoms like BODY[HEADER]<0> */
	IMAP_ARG_QUOTED,  /* "..." with escapes removed */
	IMAP_ARG_LITERAL, /* {n} or ~{n}; data in .str unless streamed to the sink */
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,    /* ( ... ) */
} ImapArgType;

typedef struct _ImapArg ImapArg;
struct _ImapArg {
	ImapArgType type;
	char *str;        /* ATOM/QUOTED/LITERAL: NUL-terminated copy (may hold NULs: use len) */
	gsize len;
	gboolean literal8; /* ~{n} */
	gboolean streamed; /* LITERAL whose bytes went to the sink; str is NULL, len is n */
	GPtrArray *list;   /* LIST: of ImapArg*, owning */
};
void imap_arg_free(ImapArg *arg);

/* Checked accessors: NULL/FALSE when the type does not fit, never a crash. */
gboolean imap_arg_is_atom(const ImapArg *arg, const char *word); /* case-insensitive */
const char *imap_arg_atom(const ImapArg *arg);           /* ATOM only */
const char *imap_arg_string(const ImapArg *arg);         /* QUOTED or LITERAL (not streamed) */
const char *imap_arg_astring(const ImapArg *arg);        /* ATOM, QUOTED or LITERAL */
const char *imap_arg_nstring(const ImapArg *arg, gboolean *is_nil); /* string or NIL */
gboolean imap_arg_number(const ImapArg *arg, guint32 *out);     /* ATOM of digits, fits */
gboolean imap_arg_number64(const ImapArg *arg, guint64 *out);
const GPtrArray *imap_arg_list(const ImapArg *arg);     /* LIST only */
guint imap_arg_list_len(const ImapArg *arg);            /* 0 for a non-list */
const ImapArg *imap_arg_list_nth(const ImapArg *arg, guint i); /* NULL when out of range */

/* ---- responses --------------------------------------------------------------------- */

typedef enum {
	IMAP_RESP_UNTAGGED,     /* "* ..." */
	IMAP_RESP_TAGGED,       /* "A1 OK ..." */
	IMAP_RESP_CONTINUATION, /* "+ ..." */
} ImapRespKind;

typedef enum {
	IMAP_STATUS_NONE, /* not a status response (e.g. "* 3 EXISTS", "* LIST ...") */
	IMAP_STATUS_OK,
	IMAP_STATUS_NO,
	IMAP_STATUS_BAD,
	IMAP_STATUS_PREAUTH,
	IMAP_STATUS_BYE,
} ImapRespStatus;

typedef struct {
	ImapRespKind kind;
	char *tag;              /* TAGGED only */
	ImapRespStatus status;
	/* Status responses (OK/NO/BAD/PREAUTH/BYE, tagged or untagged) and continuations: */
	char *code;             /* response code atom, upper-cased ("APPENDUID"), or NULL */
	GPtrArray *code_args;   /* of ImapArg*, the rest inside [...]; never NULL */
	char *text;             /* human-readable text after the code, or "" */
	/* Everything else: the parsed arguments after the "*", e.g. for
	 * "* 12 FETCH (UID 7)" -> [ATOM 12, ATOM FETCH, LIST(...)], and for
	 * "* LIST (\Noselect) "/" foo" -> [ATOM LIST, LIST, QUOTED, ATOM]. Never NULL. */
	GPtrArray *args;
	/* A continuation's raw text (base64 for AUTHENTICATE) is in .text. */
} ImapResponse;
void imap_response_free(ImapResponse *resp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImapResponse, imap_response_free)

/* ---- the parser (parser.c) ----------------------------------------------------------- */

typedef struct {
	gsize max_line;          /* bytes of non-literal text in one response; default 64 KiB */
	guint max_depth;         /* list nesting; default 32 */
	guint64 max_literal;     /* bytes in one literal; default 64 MiB (refuses >= INT_MAX) */
	gsize stream_threshold;  /* literals >= this go to the sink when one is set; 64 KiB */
	guint64 max_response;    /* total bytes in memory for one response; default 128 MiB */
} ImapParserLimits;

/* Called for streamed literal data, in order, possibly many times per literal. Return
 * FALSE to fail the parse (e.g. a write error). @ctx identifies the literal: the parsed
 * prefix of the response so far is not available, so the sink sees raw bytes only. */
typedef gboolean (*ImapLiteralSink)(const guint8 *data, gsize len, gpointer user_data);

typedef enum {
	IMAP_PARSE_NEED_MORE, /* all input consumed; feed more */
	IMAP_PARSE_RESPONSE,  /* one response complete: take it with imap_parser_take() */
	IMAP_PARSE_ERROR,     /* malformed or over a limit: *error says which; parser is dead */
} ImapParseResult;

typedef struct _ImapParser ImapParser;

ImapParser *imap_parser_new(const ImapParserLimits *limits /* NULL: defaults */);
void imap_parser_free(ImapParser *parser);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImapParser, imap_parser_free)

/* Streams literals of at least limits.stream_threshold bytes to @sink instead of memory
 * (NULL turns it off). Typically set only while a body FETCH is in flight. */
void imap_parser_set_sink(ImapParser *parser, ImapLiteralSink sink, gpointer user_data);
/* (The sink in effect when a literal's {n} is parsed gets all of that literal's bytes, even
 * if the sink is changed meanwhile. A sink returning FALSE fails the parse with
 * IMAP_ERROR_FAILED, "literal sink failed".) */

/* Consumes up to @len bytes; *consumed says how many. Stops after each complete response
 * (returning RESPONSE) so the caller can react (e.g. to a continuation) before feeding
 * the rest. Errors are IMAP_ERROR_PROTOCOL or IMAP_ERROR_LIMIT. */
ImapParseResult imap_parser_feed(ImapParser *parser, const guint8 *data, gsize len,
				 gsize *consumed, GError **error);

/* The completed response (ownership to the caller), and the parser is ready for the next. */
ImapResponse *imap_parser_take(ImapParser *parser);

/* TRUE while the parser is in the middle of a literal's bytes (the server announced
 * {n} and we are waiting for them): used by the connection to tell a drop mid-literal. */
gboolean imap_parser_in_literal(const ImapParser *parser);

/* The sum of the sizes of every literal announced ({n}) since the parser was made: the
 * connection grants a command time for the bytes the server said it would send. */
guint64 imap_parser_literal_bytes(const ImapParser *parser);

G_END_DECLS
