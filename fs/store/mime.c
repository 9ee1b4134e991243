/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mime.c: the store's use of GMime: RFC 2047 decoding of header text and formatting of
 * envelope address lists as UTF-8. Pure functions, no I/O; every result is valid UTF-8
 * so callers can put it in a file name or an xattr without further checks.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <gmime/gmime.h>
#include <string.h>

#include "store-private.h"

void
store_mime_init(void)
{
	static gsize once;

	if (g_once_init_enter(&once)) {
		g_mime_init();
		g_once_init_leave(&once, 1);
	}
}

/* Valid UTF-8, in an allocation of its own size: the decoders return GString buffers
 * with room to spare, and a listing keeps one such string per message. */
static char *
make_valid(char *s)
{
	char *v;

	if (s == NULL)
		return NULL;
	v = g_utf8_validate(s, -1, NULL) ? g_strdup(s) : g_utf8_make_valid(s, -1);
	g_free(s);
	return v;
}

/* Header values may carry folding (CRLF + WSP); unfold to single spaces. */
static char *
unfold(const char *raw)
{
	GString *out = g_string_sized_new(strlen(raw));

	for (const char *p = raw; *p; p++) {
		if (*p == '\r' || *p == '\n') {
			while (p[1] == '\r' || p[1] == '\n')
				p++;
			if (p[1] != ' ' && p[1] != '\t')
				g_string_append_c(out, ' ');
			continue;
		}
		g_string_append_c(out, *p);
	}
	return g_string_free(out, FALSE);
}

char *
store_mime_decode_text(const char *raw)
{
	g_autofree char *unfolded = NULL;
	char *dec;

	if (raw == NULL)
		return NULL;
	store_mime_init();
	unfolded = unfold(raw);
	dec = g_mime_utils_header_decode_text(NULL, unfolded);
	if (dec == NULL)
		dec = g_strdup(unfolded);
	return make_valid(dec);
}

static char *
decode_phrase(const char *raw)
{
	g_autofree char *unfolded = unfold(raw);
	char *dec = g_mime_utils_header_decode_phrase(NULL, unfolded);

	if (dec == NULL)
		dec = g_strdup(unfolded);
	return make_valid(dec);
}

char *
store_mime_format_addresses(GPtrArray *addrs)
{
	GString *out;

	if (addrs == NULL || addrs->len == 0)
		return NULL;
	store_mime_init();
	out = g_string_new(NULL);
	for (guint i = 0; i < addrs->len; i++) {
		ImapAddress *a = g_ptr_array_index(addrs, i);
		g_autofree char *name = NULL;

		if (a == NULL)
			continue;
		if (a->host == NULL) {
			/* RFC 3501 group syntax: start (mailbox = group name) or end marker. */
			if (a->mailbox != NULL) {
				if (out->len)
					g_string_append(out, ", ");
				g_string_append_printf(out, "%s:", a->mailbox);
			} else {
				g_string_append_c(out, ';');
			}
			continue;
		}
		if (out->len && out->str[out->len - 1] != ':')
			g_string_append(out, ", ");
		else if (out->len)
			g_string_append_c(out, ' ');
		if (a->name != NULL && *a->name)
			name = decode_phrase(a->name);
		if (name != NULL && *name)
			g_string_append_printf(out, "%s <%s@%s>", name,
					       a->mailbox ? a->mailbox : "", a->host);
		else
			g_string_append_printf(out, "%s@%s", a->mailbox ? a->mailbox : "", a->host);
	}
	if (out->len == 0) {
		g_string_free(out, TRUE);
		return NULL;
	}
	return make_valid(g_string_free(out, FALSE));
}

gboolean
store_mime_parse_date(const char *raw, gint64 *utc, gint *tz_minutes)
{
	GDateTime *dt;

	if (raw == NULL)
		return FALSE;
	store_mime_init();
	dt = g_mime_utils_header_decode_date(raw);
	if (dt == NULL)
		return FALSE;
	*utc = g_date_time_to_unix(dt);
	*tz_minutes = (gint)(g_date_time_get_utc_offset(dt) / G_TIME_SPAN_MINUTE);
	g_date_time_unref(dt);
	return TRUE;
}
