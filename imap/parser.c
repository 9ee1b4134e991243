/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * parser.c: the incremental IMAP response parser. Bytes are fed in arbitrary chunks and a
 * byte-level state machine builds one ImapResponse at a time; it does no I/O, never
 * guesses at structure, and enforces hard limits (non-literal bytes, nesting depth,
 * literal size, bytes in memory) before it allocates anything a count from the wire asks
 * for. Large literals go to a sink instead of memory. After an error the parser is dead.
 */
#define G_LOG_DOMAIN "imapfs-imap"

#include "config.h"

#include <limits.h>
#include <string.h>

#include "parser.h"

#define DEFAULT_MAX_LINE	 (64 * 1024)
#define DEFAULT_MAX_DEPTH	 32
#define DEFAULT_MAX_LITERAL	 (64ULL * 1024 * 1024)
#define DEFAULT_STREAM_THRESHOLD (64 * 1024)
#define DEFAULT_MAX_RESPONSE	 (128ULL * 1024 * 1024)
#define LITERAL_PREALLOC	 (64 * 1024)

typedef enum {
	S_START,       /* first byte of a response */
	S_TAG,	       /* in the tag */
	S_UNTAGGED_SP, /* after "*" */
	S_CONT,	       /* after "+" */
	S_ARGS,	       /* between arguments */
	S_ATOM,
	S_ATOM_SECTION,	      /* inside the [...] of BODY[...] */
	S_ATOM_AFTER_SECTION, /* after the ']': maybe "<origin>" */
	S_ATOM_ORIGIN,
	S_TILDE, /* "~": literal8 or an atom */
	S_QUOTED,
	S_QUOTED_ESC,
	S_LIT_SIZE, /* "{" digits */
	S_LIT_CRLF, /* after "}" */
	S_LIT_LF,
	S_LITERAL,	     /* the literal's bytes */
	S_STATUS_KW_END,     /* after OK/NO/BAD/PREAUTH/BYE */
	S_STATUS_TEXT_START, /* after its space: "[" or text */
	S_CODE_NAME,
	S_AFTER_CODE,
	S_TEXT,	  /* free text up to the end of the line */
	S_EOL_LF, /* CR seen, LF expected */
	S_DONE,	  /* a response is complete and waits for take() */
	S_DEAD,
} State;

struct _ImapParser {
	ImapParserLimits lim;
	ImapLiteralSink sink;
	gpointer sink_data;

	State state;
	ImapResponse *resp;   /* being built; NULL between responses */
	GString *tok;	      /* the token (or tag, code name, text) being read */
	GPtrArray *stack;     /* borrowed GPtrArray* containers; [0] is args or code_args */
	gboolean in_code;     /* reading the arguments of a [CODE ...] */
	gboolean need_sep;    /* a token ended: a separator must follow */
	gboolean after_close; /* the last token was ")": "(" may follow directly */
	guint section_depth;
	guint origin_digits;

	gsize line_bytes; /* non-literal bytes of this response */
	guint64 lit_mem;  /* literal bytes of this response held in memory */

	gboolean lit8;
	guint lit_digits;
	guint64 lit_size;
	guint64 lit_left;
	gboolean lit_streamed;
	ImapLiteralSink lit_sink; /* the sink when the literal was announced */
	gpointer lit_sink_data;
	GByteArray *lit_buf;
	guint64 lit_announced; /* every literal's size since the parser was made */

	gboolean lf_noted;
	GError *dead;
};

ImapParser *
imap_parser_new(const ImapParserLimits *limits)
{
	ImapParser *p = g_new0(ImapParser, 1);

	if (limits)
		p->lim = *limits;
	else {
		p->lim.max_line = DEFAULT_MAX_LINE;
		p->lim.max_depth = DEFAULT_MAX_DEPTH;
		p->lim.max_literal = DEFAULT_MAX_LITERAL;
		p->lim.stream_threshold = DEFAULT_STREAM_THRESHOLD;
		p->lim.max_response = DEFAULT_MAX_RESPONSE;
	}
	p->tok = g_string_sized_new(256);
	p->stack = g_ptr_array_new();
	p->state = S_START;
	return p;
}

void
imap_parser_free(ImapParser *parser)
{
	if (!parser)
		return;
	imap_response_free(parser->resp);
	g_string_free(parser->tok, TRUE);
	g_ptr_array_unref(parser->stack);
	if (parser->lit_buf)
		g_byte_array_unref(parser->lit_buf);
	g_clear_error(&parser->dead);
	g_free(parser);
}

void
imap_parser_set_sink(ImapParser *parser, ImapLiteralSink sink, gpointer user_data)
{
	parser->sink = sink;
	parser->sink_data = user_data;
}

guint64
imap_parser_literal_bytes(const ImapParser *parser)
{
	return parser->lit_announced;
}

gboolean
imap_parser_in_literal(const ImapParser *parser)
{
	return parser->state == S_LIT_CRLF || parser->state == S_LIT_LF ||
	       parser->state == S_LITERAL;
}

static void
reset_response(ImapParser *p)
{
	g_clear_pointer(&p->resp, imap_response_free);
	g_string_truncate(p->tok, 0);
	g_ptr_array_set_size(p->stack, 0);
	p->in_code = FALSE;
	p->need_sep = FALSE;
	p->after_close = FALSE;
	p->line_bytes = 0;
	p->lit_mem = 0;
	if (p->lit_buf)
		g_clear_pointer(&p->lit_buf, g_byte_array_unref);
	p->state = S_START;
}

ImapResponse *
imap_parser_take(ImapParser *parser)
{
	ImapResponse *resp;

	if (parser->state != S_DONE)
		return NULL;
	resp = g_steal_pointer(&parser->resp);
	reset_response(parser);
	return resp;
}

static ImapResponse *
response_new(void)
{
	ImapResponse *r = g_new0(ImapResponse, 1);

	r->args = g_ptr_array_new_with_free_func((GDestroyNotify)imap_arg_free);
	r->code_args = g_ptr_array_new_with_free_func((GDestroyNotify)imap_arg_free);
	return r;
}

static ImapArg *
arg_new(ImapArgType type, const char *data, gsize len)
{
	ImapArg *a = g_new0(ImapArg, 1);

	a->type = type;
	if (type != IMAP_ARG_NIL && type != IMAP_ARG_LIST) {
		a->str = g_malloc(len + 1);
		if (len)
			memcpy(a->str, data, len);
		a->str[len] = '\0';
		a->len = len;
	}
	return a;
}

/* fail() and fail_limit() record the error in p->dead (imap_parser_feed() hands out a
 * copy) and return FALSE for the caller to pass up. */
static gboolean fail(ImapParser *p, GError **error, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static gboolean fail_limit(ImapParser *p, GError **error, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static gboolean
fail(ImapParser *p, GError **error, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *msg = NULL;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_clear_error(&p->dead);
	g_set_error(&p->dead, IMAP_ERROR, IMAP_ERROR_PROTOCOL, "IMAP parse error: %s", msg);
	return FALSE;
}

static gboolean
fail_limit(ImapParser *p, GError **error, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *msg = NULL;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_clear_error(&p->dead);
	g_set_error(&p->dead, IMAP_ERROR, IMAP_ERROR_LIMIT, "IMAP limit exceeded: %s", msg);
	return FALSE;
}

static GPtrArray *
top(ImapParser *p)
{
	return g_ptr_array_index(p->stack, p->stack->len - 1);
}

static ImapRespStatus
status_of(const ImapArg *a)
{
	static const struct {
		const char *word;
		ImapRespStatus st;
	} words[] = {
		{"OK", IMAP_STATUS_OK},	  {"NO", IMAP_STATUS_NO},
		{"BAD", IMAP_STATUS_BAD}, {"PREAUTH", IMAP_STATUS_PREAUTH},
		{"BYE", IMAP_STATUS_BYE},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(words); i++) {
		if (imap_arg_is_atom(a, words[i].word))
			return words[i].st;
	}
	return IMAP_STATUS_NONE;
}

/* A complete token: the status keyword of a status response, or an argument. */
static gboolean
token_done(ImapParser *p, ImapArg *arg, GError **error)
{
	if (!p->in_code && p->stack->len == 1 && p->resp->args->len == 0) {
		ImapRespStatus st = status_of(arg);

		if (p->resp->kind == IMAP_RESP_TAGGED && st != IMAP_STATUS_OK &&
		    st != IMAP_STATUS_NO && st != IMAP_STATUS_BAD) {
			imap_arg_free(arg);
			return fail(p, error, "tagged response is not OK, NO or BAD");
		}
		if (st != IMAP_STATUS_NONE) {
			p->resp->status = st;
			imap_arg_free(arg);
			p->state = S_STATUS_KW_END;
			return TRUE;
		}
	}
	g_ptr_array_add(top(p), arg);
	p->need_sep = TRUE;
	p->after_close = FALSE;
	p->state = S_ARGS;
	return TRUE;
}

static gboolean
atom_done(ImapParser *p, GError **error)
{
	ImapArg *a;

	if (p->tok->len == 0)
		return fail(p, error, "empty atom");
	if (p->tok->len == 3 && g_ascii_strcasecmp(p->tok->str, "NIL") == 0)
		a = arg_new(IMAP_ARG_NIL, NULL, 0);
	else
		a = arg_new(IMAP_ARG_ATOM, p->tok->str, p->tok->len);
	return token_done(p, a, error);
}

static gboolean
literal_done(ImapParser *p, GError **error)
{
	ImapArg *a = g_new0(ImapArg, 1);

	a->type = IMAP_ARG_LITERAL;
	a->literal8 = p->lit8;
	a->len = (gsize)p->lit_size;
	if (p->lit_streamed) {
		a->streamed = TRUE;
	} else if (p->lit_buf) {
		guint8 nul = 0;

		g_byte_array_append(p->lit_buf, &nul, 1);
		a->str = (char *)g_byte_array_free(g_steal_pointer(&p->lit_buf), FALSE);
	} else {
		a->str = g_strdup("");
	}
	return token_done(p, a, error);
}

/* End of the line: the response is complete unless it is unbalanced. */
static gboolean
line_done(ImapParser *p, GError **error)
{
	ImapResponse *r = p->resp;

	if (p->in_code)
		return fail(p, error, "unterminated response code");
	if (p->stack->len > 1)
		return fail(p, error, "unterminated list");
	if (r->kind == IMAP_RESP_UNTAGGED && r->status == IMAP_STATUS_NONE && r->args->len == 0)
		return fail(p, error, "empty untagged response");
	if (r->kind == IMAP_RESP_TAGGED && r->status == IMAP_STATUS_NONE)
		return fail(p, error, "tagged response is not OK, NO or BAD");
	if (!r->text)
		r->text = g_strdup("");
	p->state = S_DONE;
	return TRUE;
}

static gboolean
eol(ImapParser *p, guint8 c, GError **error)
{
	if (c == '\r') {
		p->state = S_EOL_LF;
		return TRUE;
	}
	if (!p->lf_noted) {
		g_debug("server ends lines with a bare LF; accepting it");
		p->lf_noted = TRUE;
	}
	return line_done(p, error);
}

static gboolean
is_ctl(guint8 c)
{
	return c < 0x20 || c == 0x7f;
}

static gboolean
is_atom_char(const ImapParser *p, guint8 c)
{
	if (c <= ' ' || c == 0x7f)
		return FALSE;
	switch (c) {
	case '(':
	case ')':
	case '"':
	case '{':
		return FALSE;
	case ']':
		return !p->in_code;
	default:
		return TRUE;
	}
}

static gboolean
is_tag_char(guint8 c)
{
	if (c <= ' ' || c >= 0x7f)
		return FALSE;
	return strchr("(){%*\"\\+", c) == NULL;
}

/* "BODY[" and friends start a FETCH section atom that runs through the matching ']'. */
static gboolean
is_section_prefix(const GString *tok)
{
	static const char *const names[] = {"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK",
					    "BINARY.SIZE"};

	for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
		if (g_ascii_strcasecmp(tok->str, names[i]) == 0)
			return TRUE;
	}
	return FALSE;
}

static gboolean
literal_announced(ImapParser *p, GError **error)
{
	guint64 n = p->lit_size;

	if (p->lit_digits == 0)
		return fail(p, error, "literal without a size");
	if (n >= INT_MAX || n > p->lim.max_literal)
		return fail_limit(p, error, "literal of %" G_GUINT64_FORMAT " bytes", n);
	p->lit_announced += n;
	p->lit_streamed = p->sink && n >= p->lim.stream_threshold;
	p->lit_sink = p->sink;
	p->lit_sink_data = p->sink_data;
	if (!p->lit_streamed) {
		if (p->line_bytes + p->lit_mem + n > p->lim.max_response)
			return fail_limit(p, error,
					  "response of more than %" G_GUINT64_FORMAT " bytes",
					  p->lim.max_response);
		p->lit_mem += n;
	}
	p->state = S_LIT_CRLF;
	return TRUE;
}

static gboolean
literal_start(ImapParser *p, GError **error)
{
	if (p->lit_size == 0)
		return literal_done(p, error);
	p->lit_left = p->lit_size;
	if (!p->lit_streamed)
		p->lit_buf = g_byte_array_sized_new((guint)MIN(p->lit_size + 1, LITERAL_PREALLOC));
	p->state = S_LITERAL;
	return TRUE;
}

/* One step: consumes bytes at data[*pos] in the current state. FALSE on error. */
static gboolean
step(ImapParser *p, const guint8 *data, gsize len, gsize *pos, GError **error)
{
	gsize i = *pos;
	guint8 c = data[i];

	switch (p->state) {
	case S_START:
		p->resp = response_new();
		if (c == '*') {
			p->resp->kind = IMAP_RESP_UNTAGGED;
			p->state = S_UNTAGGED_SP;
			i++;
		} else if (c == '+') {
			p->resp->kind = IMAP_RESP_CONTINUATION;
			p->state = S_CONT;
			i++;
		} else if (is_tag_char(c)) {
			p->resp->kind = IMAP_RESP_TAGGED;
			p->state = S_TAG;
		} else {
			return fail(p, error, "bad first byte 0x%02x of a response", c);
		}
		break;
	case S_TAG: {
		gsize s = i;

		while (i < len && is_tag_char(data[i]))
			i++;
		g_string_append_len(p->tok, (const char *)data + s, i - s);
		if (i == len)
			break;
		if (data[i] != ' ')
			return fail(p, error, "bad byte 0x%02x in tag", data[i]);
		p->resp->tag = g_strndup(p->tok->str, p->tok->len);
		g_string_truncate(p->tok, 0);
		g_ptr_array_add(p->stack, p->resp->args);
		p->state = S_ARGS;
		i++;
		break;
	}
	case S_UNTAGGED_SP:
		if (c != ' ')
			return fail(p, error, "no space after '*'");
		g_ptr_array_add(p->stack, p->resp->args);
		p->state = S_ARGS;
		i++;
		break;
	case S_CONT:
		if (c == ' ')
			i++;
		g_string_truncate(p->tok, 0);
		p->state = S_TEXT;
		break;
	case S_ARGS:
		if (p->need_sep && c != ' ' && c != ')' && c != '\r' && c != '\n' &&
		    !(c == ']' && p->in_code) && !(c == '(' && p->after_close))
			return fail(p, error, "unexpected byte 0x%02x after an argument", c);
		switch (c) {
		case ' ':
			p->need_sep = FALSE;
			p->after_close = FALSE;
			i++;
			break;
		case '(': {
			ImapArg *a;

			if (p->stack->len > p->lim.max_depth)
				return fail_limit(p, error, "lists nested more than %u deep",
						  p->lim.max_depth);
			if (!p->in_code && p->stack->len == 1 && p->resp->args->len == 0 &&
			    p->resp->kind == IMAP_RESP_TAGGED)
				return fail(p, error, "tagged response is not OK, NO or BAD");
			a = arg_new(IMAP_ARG_LIST, NULL, 0);
			a->list = g_ptr_array_new_with_free_func((GDestroyNotify)imap_arg_free);
			g_ptr_array_add(top(p), a);
			g_ptr_array_add(p->stack, a->list);
			p->need_sep = FALSE;
			p->after_close = FALSE;
			i++;
			break;
		}
		case ')':
			if (p->stack->len <= 1)
				return fail(p, error, "unbalanced ')'");
			g_ptr_array_set_size(p->stack, p->stack->len - 1);
			p->need_sep = TRUE;
			p->after_close = TRUE;
			i++;
			break;
		case '"':
			g_string_truncate(p->tok, 0);
			p->state = S_QUOTED;
			i++;
			break;
		case '{':
			p->lit8 = FALSE;
			p->lit_size = 0;
			p->lit_digits = 0;
			p->state = S_LIT_SIZE;
			i++;
			break;
		case '~':
			p->state = S_TILDE;
			i++;
			break;
		case '\r':
		case '\n':
			i++;
			if (!eol(p, c, error))
				return FALSE;
			break;
		case ']':
			if (p->in_code) {
				if (p->stack->len != 1)
					return fail(p, error, "unterminated list in response code");
				p->in_code = FALSE;
				p->need_sep = FALSE;
				p->state = S_AFTER_CODE;
				i++;
				break;
			}
			/* ']' is an astring char outside response codes */
			G_GNUC_FALLTHROUGH;
		default:
			if (is_ctl(c))
				return fail(p, error, "control byte 0x%02x", c);
			g_string_truncate(p->tok, 0);
			p->state = S_ATOM;
			break;
		}
		break;
	case S_TILDE:
		if (c == '{') {
			p->lit8 = TRUE;
			p->lit_size = 0;
			p->lit_digits = 0;
			p->state = S_LIT_SIZE;
			i++;
		} else {
			g_string_assign(p->tok, "~");
			p->state = S_ATOM;
		}
		break;
	case S_ATOM: {
		gsize s = i;

		while (i < len && is_atom_char(p, data[i]) && data[i] != '[')
			i++;
		g_string_append_len(p->tok, (const char *)data + s, i - s);
		if (i == len)
			break;
		if (data[i] == '[') {
			if (!p->in_code && is_section_prefix(p->tok)) {
				p->section_depth = 1;
				p->state = S_ATOM_SECTION;
			}
			g_string_append_c(p->tok, '[');
			i++;
			break;
		}
		if (!atom_done(p, error))
			return FALSE;
		break;
	}
	case S_ATOM_SECTION: {
		gsize s = i;

		while (i < len && data[i] != ']' && data[i] != '[' && data[i] != '\r' &&
		       data[i] != '\n' && data[i] != '\0')
			i++;
		g_string_append_len(p->tok, (const char *)data + s, i - s);
		if (i == len)
			break;
		c = data[i];
		if (c == '[') {
			p->section_depth++;
		} else if (c == ']') {
			if (--p->section_depth == 0)
				p->state = S_ATOM_AFTER_SECTION;
		} else {
			return fail(p, error, "unterminated [section] in a FETCH item");
		}
		g_string_append_c(p->tok, (char)c);
		i++;
		break;
	}
	case S_ATOM_AFTER_SECTION:
		if (c == '<') {
			g_string_append_c(p->tok, '<');
			p->origin_digits = 0;
			p->state = S_ATOM_ORIGIN;
			i++;
		} else if (!atom_done(p, error)) {
			return FALSE;
		}
		break;
	case S_ATOM_ORIGIN:
		if (c >= '0' && c <= '9' && p->origin_digits < 20) {
			p->origin_digits++;
		} else if (c == '>' && p->origin_digits > 0) {
			g_string_append_c(p->tok, '>');
			i++;
			if (!atom_done(p, error))
				return FALSE;
			break;
		} else {
			return fail(p, error, "bad <origin> in a FETCH item");
		}
		g_string_append_c(p->tok, (char)c);
		i++;
		break;
	case S_QUOTED: {
		gsize s = i;

		while (i < len && data[i] != '"' && data[i] != '\\' && data[i] != '\r' &&
		       data[i] != '\n' && data[i] != '\0')
			i++;
		g_string_append_len(p->tok, (const char *)data + s, i - s);
		if (i == len)
			break;
		c = data[i];
		if (c == '"') {
			i++;
			if (!token_done(p, arg_new(IMAP_ARG_QUOTED, p->tok->str, p->tok->len),
					error))
				return FALSE;
		} else if (c == '\\') {
			p->state = S_QUOTED_ESC;
			i++;
		} else if (c == '\0') {
			return fail(p, error, "NUL in quoted string");
		} else {
			return fail(p, error, "unterminated quoted string");
		}
		break;
	}
	case S_QUOTED_ESC:
		if (c == '\r' || c == '\n' || c == '\0')
			return fail(p, error, "unterminated quoted string");
		/* RFC 3501 allows only \\ and \"; take any escaped byte as itself. */
		g_string_append_c(p->tok, (char)c);
		p->state = S_QUOTED;
		i++;
		break;
	case S_LIT_SIZE:
		if (c >= '0' && c <= '9') {
			if (p->lit_size > (G_MAXUINT64 - 9) / 10)
				return fail_limit(p, error, "literal size out of range");
			p->lit_size = p->lit_size * 10 + (guint64)(c - '0');
			p->lit_digits++;
			i++;
		} else if (c == '}') {
			i++;
			if (!literal_announced(p, error))
				return FALSE;
		} else if (c == '+' || c == '-') {
			return fail(p, error, "non-synchronizing literal from the server");
		} else {
			return fail(p, error, "bad literal size");
		}
		break;
	case S_LIT_CRLF:
		if (c == '\r') {
			p->state = S_LIT_LF;
			i++;
		} else if (c == '\n') {
			i++;
			if (!literal_start(p, error))
				return FALSE;
		} else {
			return fail(p, error, "literal size not followed by CRLF");
		}
		break;
	case S_LIT_LF:
		if (c != '\n')
			return fail(p, error, "literal size not followed by CRLF");
		i++;
		if (!literal_start(p, error))
			return FALSE;
		break;
	case S_LITERAL: {
		gsize n = (gsize)MIN((guint64)(len - i), p->lit_left);

		if (p->lit_streamed) {
			if (!p->lit_sink(data + i, n, p->lit_sink_data)) {
				g_clear_error(&p->dead);
				g_set_error_literal(&p->dead, IMAP_ERROR, IMAP_ERROR_FAILED,
						    "literal sink failed");
				return FALSE;
			}
		} else {
			g_byte_array_append(p->lit_buf, data + i, (guint)n);
		}
		i += n;
		p->lit_left -= n;
		if (p->lit_left == 0 && !literal_done(p, error))
			return FALSE;
		break;
	}
	case S_STATUS_KW_END:
		if (c == ' ') {
			p->state = S_STATUS_TEXT_START;
			i++;
		} else if (c == '\r' || c == '\n') {
			g_string_truncate(p->tok, 0);
			i++;
			if (!eol(p, c, error))
				return FALSE;
		} else {
			return fail(p, error, "unexpected byte 0x%02x after status", c);
		}
		break;
	case S_STATUS_TEXT_START:
		if (c == '[') {
			g_string_truncate(p->tok, 0);
			p->state = S_CODE_NAME;
			i++;
		} else {
			g_string_truncate(p->tok, 0);
			p->state = S_TEXT;
		}
		break;
	case S_CODE_NAME: {
		gsize s = i;

		while (i < len && data[i] != ']' && data[i] != '[' && is_atom_char(p, data[i]))
			i++;
		g_string_append_len(p->tok, (const char *)data + s, i - s);
		if (i == len)
			break;
		c = data[i];
		if ((c != ']' && c != ' ') || p->tok->len == 0)
			return fail(p, error, "bad response code");
		p->resp->code = g_ascii_strup(p->tok->str, (gssize)p->tok->len);
		g_string_truncate(p->tok, 0);
		i++;
		if (c == ']') {
			p->state = S_AFTER_CODE;
		} else {
			p->in_code = TRUE;
			p->need_sep = FALSE;
			p->after_close = FALSE;
			g_ptr_array_set_size(p->stack, 0);
			g_ptr_array_add(p->stack, p->resp->code_args);
			p->state = S_ARGS;
		}
		break;
	}
	case S_AFTER_CODE:
		if (c == ' ')
			i++;
		g_string_truncate(p->tok, 0);
		p->state = S_TEXT;
		break;
	case S_TEXT: {
		gsize s = i;

		while (i < len && data[i] != '\r' && data[i] != '\n' && data[i] != '\0')
			i++;
		g_string_append_len(p->tok, (const char *)data + s, i - s);
		if (i == len)
			break;
		c = data[i];
		if (c == '\0')
			return fail(p, error, "NUL in response text");
		p->resp->text = g_strndup(p->tok->str, p->tok->len);
		g_string_truncate(p->tok, 0);
		i++;
		if (!eol(p, c, error))
			return FALSE;
		break;
	}
	case S_EOL_LF:
		if (c != '\n')
			return fail(p, error, "CR not followed by LF");
		i++;
		if (!line_done(p, error))
			return FALSE;
		break;
	case S_DONE:
	case S_DEAD:
		g_assert_not_reached();
	}
	*pos = i;
	return TRUE;
}

/* After an error: drop the partial response; every later feed repeats the error. */
static ImapParseResult
die(ImapParser *p, GError **error)
{
	if (!p->dead)
		g_set_error_literal(&p->dead, IMAP_ERROR, IMAP_ERROR_PROTOCOL, "IMAP parse error");
	g_clear_pointer(&p->resp, imap_response_free);
	if (p->lit_buf)
		g_clear_pointer(&p->lit_buf, g_byte_array_unref);
	g_string_truncate(p->tok, 0);
	g_ptr_array_set_size(p->stack, 0);
	p->state = S_DEAD;
	g_debug("%s", p->dead->message);
	if (error)
		*error = g_error_copy(p->dead);
	return IMAP_PARSE_ERROR;
}

ImapParseResult
imap_parser_feed(ImapParser *parser, const guint8 *data, gsize len, gsize *consumed, GError **error)
{
	ImapParser *p = parser;
	gsize pos = 0;

	*consumed = 0;
	if (p->state == S_DEAD) {
		if (error)
			*error = g_error_copy(p->dead);
		return IMAP_PARSE_ERROR;
	}
	while (p->state != S_DONE && pos < len) {
		gsize before = pos;
		gboolean was_literal = p->state == S_LITERAL;
		gsize end = len;

		if (!was_literal) {
			/* Never look further than one byte past the limits, so that where a
			 * response fails does not depend on how the input was chunked. */
			guint64 room = MIN((guint64)(p->lim.max_line - p->line_bytes),
					   p->lim.max_response - p->line_bytes - p->lit_mem);

			if (room < (guint64)(len - pos))
				end = pos + (gsize)room + 1;
		}
		if (!step(p, data, end, &pos, error)) {
			*consumed = pos;
			return die(p, error);
		}
		if (!was_literal) {
			p->line_bytes += pos - before;
			if (p->line_bytes > p->lim.max_line ||
			    p->line_bytes + p->lit_mem > p->lim.max_response) {
				if (p->line_bytes > p->lim.max_line)
					fail_limit(p, error,
						   "more than %" G_GSIZE_FORMAT
						   " bytes of response text",
						   p->lim.max_line);
				else
					fail_limit(p, error,
						   "response of more than %" G_GUINT64_FORMAT
						   " bytes",
						   p->lim.max_response);
				*consumed = pos;
				return die(p, error);
			}
		}
	}
	*consumed = pos;
	return p->state == S_DONE ? IMAP_PARSE_RESPONSE : IMAP_PARSE_NEED_MORE;
}
