/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cmd.c: the typed command builder (cmd.h). Arguments are recorded with their type and
 * rendered by imap_cmd_finish(), which picks atom, quoted string or literal, encodes
 * mailbox names and splits the command into parts at synchronizing literals. It must
 * never emit a CR or LF outside a literal: every path to the output is validated here.
 */
#define G_LOG_DOMAIN "imapfs-imap"

#include "config.h"

#include <string.h>

#include "cmd.h"

#define QUOTED_MAX	  1024	     /* longer strings go as literals */
#define LITERAL_MINUS_MAX 4096	     /* RFC 7888: LITERAL- allows {n+} only up to this size */
#define LITERAL_MAX	  G_MAXINT32 /* bigger is refused (isync: INT_MAX); parts are GByteArrays */

typedef enum {
	ARG_TEXT,    /* final protocol text (atom, number, set, flag, raw) */
	ARG_STRING,  /* bytes, quoted or literal at finish */
	ARG_MAILBOX, /* UTF-8 name, encoded at finish, then as ARG_STRING */
	ARG_LITERAL, /* bytes, always a literal */
} ArgKind;

typedef struct {
	ArgKind kind;
	gboolean secret;
	gboolean raw; /* TEXT from imap_cmd_raw(): the only kind that affects spacing */
	char *text;   /* TEXT, MAILBOX (NUL-terminated) */
	GBytes *data; /* STRING, LITERAL */
} Arg;

struct _ImapCmd {
	char *verb;
	GArray *args; /* of Arg */
	gboolean literal_plus, literal_minus, utf8;
	gboolean secret;
	gboolean had_secret; /* some argument was secret: wipe the parts on free */
	GError *error;	     /* first invalid argument, or NULL */
	gboolean finished;
	GPtrArray *parts; /* of GBytes*, after finish */
	char *trace;	  /* after finish */
};

/* Overwrites bytes we own that held a secret (GBytes data is ours unless it came from
 * imap_cmd_literal(), which is never wiped). */
static void
wipe_bytes(GBytes *b)
{
	gsize n;
	gpointer d = (gpointer)g_bytes_get_data(b, &n);

	if (d)
		explicit_bzero(d, n);
}

static void
arg_clear(gpointer p)
{
	Arg *a = p;

	if (a->secret && a->text)
		explicit_bzero(a->text, strlen(a->text));
	if (a->secret && a->data && a->kind == ARG_STRING)
		wipe_bytes(a->data);
	g_free(a->text);
	if (a->data)
		g_bytes_unref(a->data);
}

static void invalid(ImapCmd *cmd, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
invalid(ImapCmd *cmd, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *msg = NULL;

	if (cmd->error)
		return;
	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	cmd->error = g_error_new(IMAP_ERROR, IMAP_ERROR_INVALID, "%s: %s", cmd->verb, msg);
}

static gboolean
valid_verb(const char *verb)
{
	const char *p = verb;

	if (!*p)
		return FALSE;
	for (; *p; p++) {
		if (*p == ' ') {
			if (p == verb || p[1] == ' ' || p[1] == '\0')
				return FALSE;
		} else if (*p < 'A' || *p > 'Z') {
			return FALSE;
		}
	}
	return TRUE;
}

ImapCmd *
imap_cmd_new(const char *verb)
{
	ImapCmd *cmd;

	g_return_val_if_fail(verb != NULL, NULL);
	cmd = g_new0(ImapCmd, 1);
	cmd->args = g_array_new(FALSE, TRUE, sizeof(Arg));
	g_array_set_clear_func(cmd->args, arg_clear);
	if (valid_verb(verb)) {
		cmd->verb = g_strdup(verb);
	} else {
		cmd->verb = g_strdup("(invalid verb)");
		invalid(cmd, "invalid command verb");
	}
	return cmd;
}

void
imap_cmd_free(ImapCmd *cmd)
{
	if (!cmd)
		return;
	g_free(cmd->verb);
	g_array_unref(cmd->args);
	g_clear_error(&cmd->error);
	if (cmd->parts) {
		for (guint i = 0; cmd->had_secret && i < cmd->parts->len; i++)
			wipe_bytes(g_ptr_array_index(cmd->parts, i));
		g_ptr_array_unref(cmd->parts);
	}
	g_free(cmd->trace);
	g_free(cmd);
}

void
imap_cmd_set_options(ImapCmd *cmd, gboolean literal_plus, gboolean literal_minus, gboolean utf8)
{
	g_return_if_fail(cmd != NULL && !cmd->finished);
	cmd->literal_plus = literal_plus;
	cmd->literal_minus = literal_minus;
	cmd->utf8 = utf8;
}

void
imap_cmd_set_secret(ImapCmd *cmd, gboolean secret)
{
	g_return_if_fail(cmd != NULL && !cmd->finished);
	cmd->secret = secret;
}

static void
add_arg(ImapCmd *cmd, ArgKind kind, char *text, GBytes *data)
{
	Arg a = {kind, cmd->secret, FALSE, text, data};

	if (cmd->secret)
		cmd->had_secret = TRUE;

	g_array_append_val(cmd->args, a);
}

/* ATOM-CHAR: any CHAR except atom-specials "(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]". */
static gboolean
is_atom_char(guchar c)
{
	if (c <= 0x20 || c >= 0x7f)
		return FALSE;
	return !strchr("(){%*\"\\]", c);
}

static gboolean
is_atom(const char *s, gboolean astring)
{
	if (!*s)
		return FALSE;
	for (; *s; s++)
		if (!is_atom_char((guchar)*s) && !(astring && *s == ']'))
			return FALSE;
	return TRUE;
}

void
imap_cmd_atom(ImapCmd *cmd, const char *atom)
{
	g_return_if_fail(cmd != NULL && !cmd->finished);
	if (!atom || !is_atom(atom, FALSE)) {
		invalid(cmd, "invalid atom");
		return;
	}
	add_arg(cmd, ARG_TEXT, g_strdup(atom), NULL);
}

void
imap_cmd_number(ImapCmd *cmd, guint64 n)
{
	g_return_if_fail(cmd != NULL && !cmd->finished);
	add_arg(cmd, ARG_TEXT, g_strdup_printf("%" G_GUINT64_FORMAT, n), NULL);
}

void
imap_cmd_uidset(ImapCmd *cmd, const ImapUidSet *set)
{
	g_return_if_fail(cmd != NULL && !cmd->finished);
	if (!set || imap_uidset_is_empty(set)) {
		invalid(cmd, "empty UID set");
		return;
	}
	add_arg(cmd, ARG_TEXT, imap_uidset_to_string(set), NULL);
}

void
imap_cmd_string(ImapCmd *cmd, const char *s, gssize len)
{
	g_return_if_fail(cmd != NULL && !cmd->finished);
	if (!s) {
		invalid(cmd, "NULL string");
		return;
	}
	if (len < 0)
		len = (gssize)strlen(s);
	if (memchr(s, '\0', (gsize)len)) {
		invalid(cmd, "string contains a NUL byte");
		return;
	}
	add_arg(cmd, ARG_STRING, NULL, g_bytes_new(s, (gsize)len));
}

void
imap_cmd_astring(ImapCmd *cmd, const char *s)
{
	g_return_if_fail(cmd != NULL && !cmd->finished);
	if (s && is_atom(s, TRUE) && g_ascii_strcasecmp(s, "NIL") != 0)
		add_arg(cmd, ARG_TEXT, g_strdup(s), NULL);
	else
		imap_cmd_string(cmd, s, -1);
}

void
imap_cmd_mailbox(ImapCmd *cmd, const char *utf8_name)
{
	g_return_if_fail(cmd != NULL && !cmd->finished);
	if (!utf8_name || !g_utf8_validate(utf8_name, -1, NULL)) {
		invalid(cmd, "mailbox name is not valid UTF-8");
		return;
	}
	if (g_ascii_strcasecmp(utf8_name, "INBOX") == 0)
		utf8_name = "INBOX";
	add_arg(cmd, ARG_MAILBOX, g_strdup(utf8_name), NULL);
}

static const char *const system_flags[] = {
	"\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft",
};

char *
imap_flag_normalize(const char *flag, GError **error)
{
	if (flag == NULL) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID, "NULL flag");
		return NULL;
	}
	if (flag[0] == '\\') {
		for (guint i = 0; i < G_N_ELEMENTS(system_flags); i++)
			if (g_ascii_strcasecmp(flag, system_flags[i]) == 0)
				return g_strdup(system_flags[i]);
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID, "not a settable system flag");
		return NULL;
	}
	if (!is_atom(flag, FALSE)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID, "flag is not a valid keyword");
		return NULL;
	}
	return g_strdup(flag);
}

/* One rule for what a flag may be: imap_flag_normalize() (also the check before a STORE
 * is sent). */
void
imap_cmd_flag(ImapCmd *cmd, const char *flag)
{
	g_autoptr(GError) err = NULL;
	char *f;

	g_return_if_fail(cmd != NULL && !cmd->finished);
	f = imap_flag_normalize(flag, &err);
	if (f == NULL) {
		invalid(cmd, "%s", err->message);
		return;
	}
	add_arg(cmd, ARG_TEXT, f, NULL);
}

void
imap_cmd_raw(ImapCmd *cmd, const char *text)
{
	g_return_if_fail(cmd != NULL && !cmd->finished);
	if (!text || !*text) {
		invalid(cmd, "empty raw text");
		return;
	}
	/* Printable ASCII only; no '{' so that raw text can never fake a literal header. */
	for (const char *p = text; *p; p++) {
		if (*p < 0x20 || *p > 0x7e || *p == '{') {
			invalid(cmd, "raw text outside the allowed characters");
			return;
		}
	}
	add_arg(cmd, ARG_TEXT, g_strdup(text), NULL);
	g_array_index(cmd->args, Arg, cmd->args->len - 1).raw = TRUE;
}

void
imap_cmd_literal(ImapCmd *cmd, GBytes *data)
{
	g_return_if_fail(cmd != NULL && !cmd->finished);
	if (!data) {
		invalid(cmd, "NULL literal");
		return;
	}
	if (g_bytes_get_size(data) >= LITERAL_MAX) {
		invalid(cmd, "literal too large");
		return;
	}
	add_arg(cmd, ARG_LITERAL, NULL, g_bytes_ref(data));
}

void
imap_cmd_invalid(ImapCmd *cmd, const char *why)
{
	g_return_if_fail(cmd != NULL && !cmd->finished);
	invalid(cmd, "%s", why ? why : "invalid argument");
}

/* ---- rendering ---------------------------------------------------------------------- */

typedef struct {
	ImapCmd *cmd;
	GByteArray *cur; /* the part being built */
	GString *trace;
	gboolean open; /* the previous item was raw text ending in '(' or '[' */
} Render;

static void
out(Render *r, const void *p, gsize n)
{
	g_byte_array_append(r->cur, p, (guint)n);
}

static void
out_str(Render *r, const char *s)
{
	out(r, s, strlen(s));
}

static void
end_part(Render *r)
{
	g_ptr_array_add(r->cmd->parts, g_byte_array_free_to_bytes(r->cur));
	r->cur = g_byte_array_new();
}

/* Separator before the next item; @closing: it is raw text starting with ')' or ']'.
 * Only raw (library) text decides: an atom or string never changes the spacing. */
static void
separate(Render *r, gboolean closing)
{
	gboolean skip = r->open || closing;

	r->open = FALSE;
	if (skip)
		return;
	out_str(r, " ");
	g_string_append_c(r->trace, ' ');
}

static gboolean
quotable(const ImapCmd *cmd, const guint8 *p, gsize n)
{
	gboolean eight_bit = FALSE;

	if (n > QUOTED_MAX)
		return FALSE;
	for (gsize i = 0; i < n; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f) /* CR, LF, NUL and the other controls */
			return FALSE;
		if (p[i] >= 0x80)
			eight_bit = TRUE;
	}
	if (eight_bit && !(cmd->utf8 && g_utf8_validate((const char *)p, (gssize)n, NULL)))
		return FALSE;
	return TRUE;
}

static void
render_literal(Render *r, const Arg *a, const guint8 *p, gsize n)
{
	gboolean nonsync =
		r->cmd->literal_plus || (r->cmd->literal_minus && n <= LITERAL_MINUS_MAX);
	g_autofree char *hdr =
		g_strdup_printf("{%" G_GSIZE_FORMAT "%s}\r\n", n, nonsync ? "+" : "");

	separate(r, FALSE);
	out_str(r, hdr);
	if (!nonsync)
		end_part(r);
	if (n)
		out(r, p, n);
	if (a->secret)
		g_string_append(r->trace, "<redacted>");
	else
		g_string_append_printf(r->trace, "{%" G_GSIZE_FORMAT " bytes}", n);
}

static void
render_string(Render *r, const Arg *a, const guint8 *p, gsize n)
{
	GString *q;

	if (!quotable(r->cmd, p, n)) {
		render_literal(r, a, p, n);
		return;
	}
	q = g_string_sized_new(n + 2);
	g_string_append_c(q, '"');
	for (gsize i = 0; i < n; i++) {
		if (p[i] == '"' || p[i] == '\\')
			g_string_append_c(q, '\\');
		g_string_append_c(q, (char)p[i]);
	}
	g_string_append_c(q, '"');
	separate(r, FALSE);
	out(r, q->str, q->len);
	g_string_append(r->trace, a->secret ? "<redacted>" : q->str);
	if (a->secret)
		explicit_bzero(q->str, q->len);
	g_string_free(q, TRUE);
}

gboolean
imap_cmd_finish(ImapCmd *cmd, GError **error)
{
	Render r;

	g_return_val_if_fail(cmd != NULL && !cmd->finished, FALSE);
	cmd->finished = TRUE;
	if (cmd->error) {
		g_propagate_error(error, g_steal_pointer(&cmd->error));
		return FALSE;
	}

	/* Encode mailbox names first: the only step that can still fail. */
	for (guint i = 0; i < cmd->args->len; i++) {
		Arg *a = &g_array_index(cmd->args, Arg, i);
		g_autoptr(GError) local = NULL;
		char *enc;

		if (a->kind != ARG_MAILBOX)
			continue;
		enc = cmd->utf8 ? g_strdup(a->text) : imap_utf7_encode(a->text, &local);
		if (!enc) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID, "%s: %s", cmd->verb,
				    local->message);
			return FALSE;
		}
		a->kind = ARG_STRING;
		a->data = g_bytes_new_take(enc, strlen(enc));
	}

	cmd->parts = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	r.cmd = cmd;
	r.cur = g_byte_array_new();
	r.trace = g_string_new(cmd->verb);
	out_str(&r, cmd->verb);
	r.open = FALSE;
	for (guint i = 0; i < cmd->args->len; i++) {
		const Arg *a = &g_array_index(cmd->args, Arg, i);
		gsize n = 0;
		const guint8 *p = a->data ? g_bytes_get_data(a->data, &n) : NULL;

		switch (a->kind) {
		case ARG_TEXT: {
			char end = a->text[strlen(a->text) - 1];

			separate(&r, a->raw && (a->text[0] == ')' || a->text[0] == ']'));
			out_str(&r, a->text);
			g_string_append(r.trace, a->secret ? "<redacted>" : a->text);
			r.open = a->raw && (end == '(' || end == '[');
			break;
		}
		case ARG_STRING:
			render_string(&r, a, p, n);
			break;
		case ARG_LITERAL:
			render_literal(&r, a, p, n);
			break;
		case ARG_MAILBOX:
			g_assert_not_reached();
		}
	}
	out_str(&r, "\r\n");
	g_ptr_array_add(cmd->parts, g_byte_array_free_to_bytes(r.cur));
	cmd->trace = g_string_free(r.trace, FALSE);
	/* The argument data now lives in the parts. */
	g_array_set_size(cmd->args, 0);
	return TRUE;
}

const char *
imap_cmd_get_verb(const ImapCmd *cmd)
{
	g_return_val_if_fail(cmd != NULL, NULL);
	return cmd->verb;
}

guint
imap_cmd_get_n_parts(const ImapCmd *cmd)
{
	g_return_val_if_fail(cmd != NULL && cmd->parts, 0);
	return cmd->parts->len;
}

GBytes *
imap_cmd_get_part(const ImapCmd *cmd, guint i)
{
	g_return_val_if_fail(cmd != NULL && cmd->parts && i < cmd->parts->len, NULL);
	return g_ptr_array_index(cmd->parts, i);
}

gboolean
imap_cmd_part_waits(const ImapCmd *cmd, guint i)
{
	g_return_val_if_fail(cmd != NULL && cmd->parts && i < cmd->parts->len, FALSE);
	return i + 1 < cmd->parts->len;
}

gsize
imap_cmd_get_size(const ImapCmd *cmd)
{
	gsize n = 0;

	g_return_val_if_fail(cmd != NULL && cmd->parts, 0);
	for (guint i = 0; i < cmd->parts->len; i++)
		n += g_bytes_get_size(g_ptr_array_index(cmd->parts, i));
	return n;
}

char *
imap_cmd_to_trace(const ImapCmd *cmd)
{
	g_return_val_if_fail(cmd != NULL, NULL);
	if (!cmd->trace)
		return g_strdup_printf("%s <not finished>", cmd->verb);
	return g_strdup(cmd->trace);
}
