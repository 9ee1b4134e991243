/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * trace.c: the redacted protocol trace (trace.h). It owns the line format and the
 * redaction of credentials; it must never write a password, token or SASL payload, and
 * it never fails or slows a command beyond the write(2) of one line.
 */
#define G_LOG_DOMAIN "imapfs-imap"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "trace.h"

#define TRACE_LINE_MAX 4096 /* bytes of one traced line before it is cut */

struct _ImapTrace {
	int fd;	      /* -1: off; immutable */
	GMutex lock;  /* serializes writes and guards prefix */
	char *prefix; /* protected by lock */
};

ImapTrace *
imap_trace_new(int fd)
{
	ImapTrace *trace = g_new0(ImapTrace, 1);

	trace->fd = fd < 0 ? -1 : fd;
	g_mutex_init(&trace->lock);
	trace->prefix = g_strdup("");
	return trace;
}

void
imap_trace_free(ImapTrace *trace)
{
	if (!trace)
		return;
	g_mutex_clear(&trace->lock);
	g_free(trace->prefix);
	g_free(trace);
}

gboolean
imap_trace_enabled(const ImapTrace *trace)
{
	return trace && trace->fd >= 0;
}

void
imap_trace_set_prefix(ImapTrace *trace, const char *prefix)
{
	g_return_if_fail(trace != NULL);
	g_mutex_lock(&trace->lock);
	g_free(trace->prefix);
	trace->prefix = g_strdup(prefix ? prefix : "");
	g_mutex_unlock(&trace->lock);
}

/* Appends @len bytes with control bytes escaped, cut at TRACE_LINE_MAX. */
static void
append_escaped(GString *s, const char *p, gsize len)
{
	gsize n = MIN(len, TRACE_LINE_MAX);

	for (gsize i = 0; i < n; i++) {
		guchar c = (guchar)p[i];

		if (c < 0x20 || c == 0x7f || c == '\\')
			g_string_append_printf(s, "\\x%02x", c);
		else
			g_string_append_c(s, (char)c);
	}
	if (len > n)
		g_string_append_printf(s, "...(%" G_GSIZE_FORMAT " more bytes)", len - n);
}

/* Writes "<prefix><dir>: <body>\n" with one write(2) (retried on EINTR/short write). */
static void
emit(ImapTrace *trace, const char *dir, const char *body, gsize len)
{
	g_autoptr(GString) line = NULL;
	gsize off = 0;

	g_mutex_lock(&trace->lock);
	line = g_string_new(trace->prefix);
	g_string_append(line, dir);
	g_string_append(line, ": ");
	append_escaped(line, body, len);
	g_string_append_c(line, '\n');
	while (off < line->len) {
		ssize_t w = write(trace->fd, line->str + off, line->len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (gsize)w;
	}
	g_mutex_unlock(&trace->lock);
}

static gboolean
is_mech_char(char c)
{
	return g_ascii_isupper(c) || g_ascii_isdigit(c) || c == '-' || c == '_';
}

char *
imap_trace_redact_auth(const char *verb, const char *args)
{
	g_return_val_if_fail(verb != NULL, NULL);
	if (!args)
		args = "";
	if (g_ascii_strcasecmp(verb, "LOGIN") == 0)
		return g_strdup(*args ? "<redacted>" : "");
	if (g_ascii_strcasecmp(verb, "AUTHENTICATE") == 0) {
		gsize n = 0;

		/* Keep the mechanism name when it looks like one (RFC 4422 charset). */
		while (args[n] && is_mech_char(args[n]) && n < 20)
			n++;
		if (n == 0 || (args[n] && args[n] != ' '))
			return g_strdup(*args ? "<redacted>" : "");
		if (!args[n])
			return g_strndup(args, n);
		return g_strdup_printf("%.*s <redacted>", (int)n, args);
	}
	return g_strdup(args);
}

void
imap_trace_client(ImapTrace *trace, const char *tag, const ImapCmd *cmd)
{
	g_autofree char *all = NULL;
	g_autofree char *shown = NULL;
	g_autofree char *line = NULL;
	const char *verb, *args;
	gsize vlen;

	if (!imap_trace_enabled(trace) || !cmd)
		return;
	verb = imap_cmd_get_verb(cmd);
	all = imap_cmd_to_trace(cmd);
	vlen = strlen(verb);
	/* The rendering starts with the verb; be safe if it ever does not. */
	if (strncmp(all, verb, vlen) != 0)
		args = "<redacted>";
	else
		args = all[vlen] == ' ' ? all + vlen + 1 : all + vlen;
	shown = imap_trace_redact_auth(verb, args);
	line = g_strdup_printf("%s%s%s%s%s", tag ? tag : "", tag ? " " : "", verb,
			       *shown ? " " : "", shown);
	emit(trace, "C", line, strlen(line));
}

void
imap_trace_client_line(ImapTrace *trace, const char *line)
{
	if (!imap_trace_enabled(trace) || !line)
		return;
	emit(trace, "C", line, strlen(line));
}

void
imap_trace_client_sasl(ImapTrace *trace)
{
	if (!imap_trace_enabled(trace))
		return;
	emit(trace, "C", "<redacted>", strlen("<redacted>"));
}

void
imap_trace_server_line(ImapTrace *trace, const char *line, gsize len)
{
	if (!imap_trace_enabled(trace) || !line)
		return;
	if (len >= 1 && line[len - 1] == '\n')
		len--;
	if (len >= 1 && line[len - 1] == '\r')
		len--;
	emit(trace, "S", line, len);
}

void
imap_trace_server_literal(ImapTrace *trace, gsize n)
{
	g_autofree char *s = NULL;

	if (!imap_trace_enabled(trace))
		return;
	s = g_strdup_printf("{%" G_GSIZE_FORMAT " bytes}", n);
	emit(trace, "S", s, strlen(s));
}
