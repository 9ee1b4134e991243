/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * naming.c: server mailbox names to directory paths (namespaces, delimiters, '/' inside a
 * name) and messages to file names. Pure and FUSE-free so the unit test compiles it alone;
 * the reverse mapping is a table lookup in inode.c, never a parse of a file name.
 *
 * Message names are "YYYY-MM-DD_HHMM_<subject>_<UID>.eml": the INTERNALDATE in UTC first so
 * that plain `ls` (any locale: the fixed-width digits compare first) lists mail by arrival,
 * the subject for humans, the UID last for uniqueness. UTC keeps names stable when the
 * user's time zone changes.
 *
 * Folder name components follow the same rules as message names: at most 255 bytes (cut
 * on a character boundary), no '/', no control characters, no invisible format characters
 * (bidi overrides, zero-width), and a "~N" variant when two server names end up equal
 * (naming_component_variant(), used by inode.c). Nothing is ever parsed back: commands
 * use the server name the directory's node keeps.
 */
#include "config.h"

#include <string.h>

#include "naming.h"

#define NAME_MAX_BYTES	  255
#define SUBJECT_MAX_BYTES 120

/* Cuts @s to at most @max bytes on a character boundary. */
static void
cut_utf8(GString *s, gsize max)
{
	if (s->len > max) {
		const char *end = g_utf8_find_prev_char(s->str, s->str + max + 1);

		g_string_truncate(s, end != NULL ? (gsize)(end - s->str) : 0);
	}
}

/* Characters that show nothing and can make a name look like another (bidi overrides,
 * zero-width characters): dropped from names. */
static gboolean
is_invisible(gunichar c)
{
	return g_unichar_type(c) == G_UNICODE_FORMAT;
}

/* Characters that break a line or a terminal: shown as U+FFFD. */
static gboolean
is_control(gunichar c)
{
	GUnicodeType t = g_unichar_type(c);

	return t == G_UNICODE_CONTROL || t == G_UNICODE_LINE_SEPARATOR ||
	       t == G_UNICODE_PARAGRAPH_SEPARATOR;
}

char *
naming_component(const char *raw)
{
	g_autofree char *valid = NULL;
	GString *out;

	if (raw == NULL)
		raw = "";
	if (!g_utf8_validate(raw, -1, NULL))
		raw = valid = g_utf8_make_valid(raw, -1);
	out = g_string_sized_new(strlen(raw) + 8);
	for (const char *p = raw; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (c == '/')
			g_string_append(out, "\xe2\x88\x95"); /* U+2215 DIVISION SLASH */
		else if (is_control(c))
			g_string_append(out, "\xef\xbf\xbd"); /* U+FFFD */
		else if (!is_invisible(c))
			g_string_append_unichar(out, c);
	}
	cut_utf8(out, NAME_MAX_BYTES);
	if (out->len == 0)
		g_string_assign(out, "_");
	else if (!strcmp(out->str, "."))
		g_string_assign(out, "\xef\xbc\x8e"); /* U+FF0E */
	else if (!strcmp(out->str, ".."))
		g_string_assign(out, "\xef\xbc\x8e\xef\xbc\x8e");
	return g_string_free(out, FALSE);
}

char *
naming_component_variant(const char *name, guint k)
{
	g_autofree char *suffix = k > 1 ? g_strdup_printf("~%u", k) : g_strdup("~");
	GString *out = g_string_new(name);

	cut_utf8(out, NAME_MAX_BYTES - strlen(suffix));
	g_string_append(out, suffix);
	return g_string_free(out, FALSE);
}

/* Does @name start with @prefix? The "INBOX" at the start of a prefix is case-insensitive
 * (RFC 3501 §5.1). */
static gboolean
has_prefix(const char *name, const char *prefix)
{
	gsize n = strlen(prefix);

	if (n >= 5 && !g_ascii_strncasecmp(prefix, "INBOX", 5))
		return !g_ascii_strncasecmp(name, prefix, 5) &&
		       !strncmp(name + 5, prefix + 5, n - 5);
	return !strncmp(name, prefix, n);
}

static void
add_split(GPtrArray *out, const char *s, char delim)
{
	if (delim == 0) {
		g_ptr_array_add(out, naming_component(s));
		return;
	}
	{
		char d[2] = {delim, 0};
		g_auto(GStrv) parts = g_strsplit(s, d, -1);
		guint n = g_strv_length(parts);

		/* a trailing delimiter does not make an empty last component */
		if (n > 1 && *parts[n - 1] == '\0')
			n--;
		for (guint i = 0; i < n; i++)
			g_ptr_array_add(out, naming_component(parts[i]));
	}
}

/* The directory components of a non-first namespace: its prefix without the trailing
 * delimiter, or the fixed name for an empty prefix. */
static void
add_ns_dir(GPtrArray *out, const StoreNamespace *ns)
{
	g_autofree char *p = g_strdup(ns->prefix);
	gsize n = strlen(p);

	if (n > 0 && ns->delim && p[n - 1] == ns->delim)
		p[--n] = '\0';
	if (n == 0) {
		g_ptr_array_add(out,
				g_strdup(ns->kind == STORE_NS_SHARED  ? NAMING_NS_SHARED_EMPTY
					 : ns->kind == STORE_NS_OTHER ? NAMING_NS_OTHER_EMPTY
								      : NAMING_NS_PERSONAL_EMPTY));
		return;
	}
	add_split(out, p, ns->delim);
}

char **
naming_folder_path(const char *mailbox, char delim, GPtrArray *nss)
{
	GPtrArray *out = g_ptr_array_new();
	const StoreNamespace *best = NULL;
	gsize best_len = 0;
	gboolean is_root = FALSE;

	if (!g_ascii_strcasecmp(mailbox, "INBOX")) {
		g_ptr_array_add(out, g_strdup("INBOX"));
		g_ptr_array_add(out, NULL);
		return (char **)g_ptr_array_free(out, FALSE);
	}
	for (guint i = 0; nss != NULL && i < nss->len; i++) {
		const StoreNamespace *ns = g_ptr_array_index(nss, i);
		gsize n = strlen(ns->prefix);
		gboolean root = FALSE;

		if (!has_prefix(mailbox, ns->prefix)) {
			/* the namespace's own node, e.g. "user" for prefix "user." */
			if (n > 1 && ns->delim && ns->prefix[n - 1] == ns->delim &&
			    strlen(mailbox) == n - 1 && has_prefix(ns->prefix, mailbox))
				root = TRUE;
			else
				continue;
		}
		if (best == NULL || n > best_len) {
			best = ns;
			best_len = n;
			is_root = root;
		}
	}
	if (best != NULL && best->kind == STORE_NS_PERSONAL && best->index == 0) {
		if (is_root)
			add_split(out, mailbox, delim);
		else
			add_split(out, mailbox + best_len, delim);
		/* A personal folder never takes the name of a namespace directory. */
		for (guint i = 0; i < nss->len && out->len > 0; i++) {
			const StoreNamespace *ns = g_ptr_array_index(nss, i);
			g_autoptr(GPtrArray) dir = g_ptr_array_new_with_free_func(g_free);

			if (ns == best)
				continue;
			add_ns_dir(dir, ns);
			if (!strcmp(g_ptr_array_index(dir, 0), g_ptr_array_index(out, 0))) {
				char *renamed =
					naming_component_variant(g_ptr_array_index(out, 0), 1);

				g_free(g_ptr_array_index(out, 0));
				g_ptr_array_index(out, 0) = renamed;
				break;
			}
		}
	} else if (best != NULL) {
		add_ns_dir(out, best);
		if (!is_root && mailbox[best_len] != '\0')
			add_split(out, mailbox + best_len, delim);
	} else {
		add_split(out, mailbox, delim);
	}
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(out, FALSE);
}

static char *
sanitize_subject(const char *subject)
{
	g_autofree char *valid = NULL;
	GString *out;
	gboolean sep = TRUE; /* drops leading separators */

	if (subject == NULL)
		subject = "";
	if (!g_utf8_validate(subject, -1, NULL))
		subject = valid = g_utf8_make_valid(subject, -1);
	out = g_string_new(NULL);
	for (const char *p = subject; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		GUnicodeType t = g_unichar_type(c);

		if (c == '/') {
			g_string_append(out, "\xe2\x88\x95");
			sep = FALSE;
		} else if (g_unichar_isspace(c) || t == G_UNICODE_CONTROL ||
			   t == G_UNICODE_LINE_SEPARATOR || t == G_UNICODE_PARAGRAPH_SEPARATOR) {
			if (!sep)
				g_string_append_c(out, '_');
			sep = TRUE;
		} else if (t == G_UNICODE_FORMAT || t == G_UNICODE_UNASSIGNED ||
			   t == G_UNICODE_SURROGATE || t == G_UNICODE_PRIVATE_USE) {
			continue; /* bidi overrides, zero-width characters and the like */
		} else {
			g_string_append_unichar(out, c);
			sep = FALSE;
		}
	}
	if (out->len > SUBJECT_MAX_BYTES) {
		const char *end = g_utf8_find_prev_char(out->str, out->str + SUBJECT_MAX_BYTES + 1);

		g_string_truncate(out, end - out->str);
	}
	while (out->len > 0 && (out->str[out->len - 1] == '_' || out->str[out->len - 1] == '.'))
		g_string_truncate(out, out->len - 1);
	if (out->len == 0)
		g_string_assign(out, "no_subject");
	return g_string_free(out, FALSE);
}

char *
naming_message_name(NamingMode mode, guint32 uid, gint64 internaldate, const char *subject)
{
	g_autoptr(GDateTime) dt = NULL;
	g_autofree char *date = NULL;
	g_autofree char *subj = NULL;
	char *name;

	if (mode == NAMING_UID)
		return g_strdup_printf("%u.eml", uid);
	dt = g_date_time_new_from_unix_utc(CLAMP(internaldate, 0, G_GINT64_CONSTANT(253402300799)));
	date = dt ? g_date_time_format(dt, "%Y-%m-%d_%H%M") : g_strdup("0000-00-00_0000");
	subj = sanitize_subject(subject);
	name = g_strdup_printf("%s_%s_%u.eml", date, subj, uid);
	g_assert(strlen(name) <= NAME_MAX_BYTES);
	return name;
}

gboolean
naming_could_be_message(NamingMode mode, const char *name)
{
	gsize n = strlen(name);

	if (n < 5 || n > NAME_MAX_BYTES || strcmp(name + n - 4, ".eml") != 0)
		return FALSE;
	if (!g_ascii_isdigit(name[0]))
		return FALSE;
	if (mode == NAMING_UID) {
		if (name[0] == '0')
			return FALSE;
		for (gsize i = 0; i < n - 4; i++)
			if (!g_ascii_isdigit(name[i]))
				return FALSE;
	}
	return TRUE;
}
