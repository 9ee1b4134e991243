/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * utf7.c: modified UTF-7 for mailbox names (RFC 3501 §5.1.3), both directions. Strict:
 * only the canonical encoding is accepted, so decode and encode are exact inverses and a
 * name never has two spellings. Pure functions, no I/O, no state; thread-safe.
 */
#define G_LOG_DOMAIN "imapfs-imap"

#include "config.h"

#include "imap.h"

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
b64value(guchar c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static gboolean
is_direct(gunichar c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* Bit accumulator for one shifted run. */
typedef struct {
	guint32 bits;
	guint nbits;
} B64State;

static void
put_unit(GString *out, B64State *st, guint16 unit)
{
	st->bits = (st->bits << 16) | unit;
	st->nbits += 16;
	while (st->nbits >= 6) {
		st->nbits -= 6;
		g_string_append_c(out, b64chars[(st->bits >> st->nbits) & 0x3f]);
	}
	st->bits &= (1u << st->nbits) - 1;
}

static void
close_shift(GString *out, B64State *st)
{
	if (st->nbits > 0)
		g_string_append_c(out, b64chars[(st->bits << (6 - st->nbits)) & 0x3f]);
	st->bits = 0;
	st->nbits = 0;
	g_string_append_c(out, '-');
}

char *
imap_utf7_encode(const char *utf8, GError **error)
{
	g_autoptr(GString) out = NULL;
	B64State st = {0, 0};
	gboolean shifted = FALSE;
	const char *p;

	g_return_val_if_fail(utf8 != NULL, NULL);

	if (!g_utf8_validate(utf8, -1, NULL)) {
		g_set_error_literal(error, IMAP_ERROR, IMAP_ERROR_INVALID,
				    "mailbox name is not valid UTF-8");
		return NULL;
	}
	out = g_string_sized_new(strlen(utf8) + 8);
	for (p = utf8; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (is_direct(c)) {
			if (shifted) {
				close_shift(out, &st);
				shifted = FALSE;
			}
			if (c == '&')
				g_string_append(out, "&-");
			else
				g_string_append_c(out, (char)c);
			continue;
		}
		if (!shifted) {
			g_string_append_c(out, '&');
			shifted = TRUE;
		}
		if (c >= 0x10000) {
			c -= 0x10000;
			put_unit(out, &st, (guint16)(0xd800 | (c >> 10)));
			put_unit(out, &st, (guint16)(0xdc00 | (c & 0x3ff)));
		} else {
			put_unit(out, &st, (guint16)c);
		}
	}
	if (shifted)
		close_shift(out, &st);
	return g_string_free(g_steal_pointer(&out), FALSE);
}

static char *
bad(GError **error, const char *what)
{
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL,
		    "malformed modified UTF-7 mailbox name: %s", what);
	return NULL;
}

char *
imap_utf7_decode(const char *mutf7, GError **error)
{
	g_autoptr(GString) out = NULL;
	const guchar *p;
	gboolean after_shift = FALSE; /* the previous token was a base64 run */

	g_return_val_if_fail(mutf7 != NULL, NULL);

	out = g_string_sized_new(strlen(mutf7));
	p = (const guchar *)mutf7;
	while (*p) {
		guint32 bits = 0;
		guint nbits = 0;
		guint32 high = 0; /* pending high surrogate, or 0 */
		gboolean any = FALSE;

		if (!is_direct(*p))
			return bad(error, "byte outside printable US-ASCII");
		if (*p != '&') {
			g_string_append_c(out, (char)*p++);
			after_shift = FALSE;
			continue;
		}
		p++;
		if (*p == '-') {
			g_string_append_c(out, '&');
			p++;
			after_shift = FALSE;
			continue;
		}
		if (after_shift)
			return bad(error, "two adjacent shifted runs");
		for (; *p && *p != '-'; p++) {
			int v = b64value(*p);

			if (v < 0)
				return bad(error, "invalid base64 character");
			bits = (bits << 6) | (guint32)v;
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			{
				guint32 unit = (bits >> nbits) & 0xffff;
				gunichar c;

				bits &= (1u << nbits) - 1;
				if (unit >= 0xd800 && unit <= 0xdbff) {
					if (high)
						return bad(error, "lone high surrogate");
					high = unit;
					continue;
				}
				if (unit >= 0xdc00 && unit <= 0xdfff) {
					if (!high)
						return bad(error, "lone low surrogate");
					c = 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00);
					high = 0;
				} else {
					if (high)
						return bad(error, "lone high surrogate");
					c = unit;
				}
				if (c == 0)
					return bad(error, "encoded NUL");
				if (is_direct(c))
					return bad(error, "shifted printable US-ASCII");
				g_string_append_unichar(out, c);
				any = TRUE;
			}
		}
		if (!*p)
			return bad(error, "unterminated shift");
		if (high)
			return bad(error, "lone high surrogate");
		if (!any)
			return bad(error, "empty shift");
		if (nbits >= 6 || bits != 0)
			return bad(error, "non-zero or excess padding bits");
		p++; /* '-' */
		after_shift = TRUE;
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}
