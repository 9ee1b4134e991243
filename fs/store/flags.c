/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * flags.c: changing a message's flags, and the two text forms fs/ shows them in: the
 * user.imap.flags grammar ("\Seen $Label1", "+\Seen -$Junk") and freedesktop tags
 * (user.xdg.tags) with their reversible mapping onto IMAP keywords. It never decides an
 * errno and knows no FUSE; the parsers are pure (unit-tested, fuzzed).
 *
 * A change is one UID STORE FLAGS.SILENT per mode (SET, ADD, REMOVE), sent without reading
 * the flags first. Once the server confirms, the new set (the one given for SET; the last
 * known one plus or minus the given flags otherwise, as FLAGS.SILENT returns nothing) goes
 * into the message under store->lock, into the header cache with hcache_flags_local(), and
 * the UID is pinned (local.c: a listing already in flight, which may carry the flags from
 * before the STORE, does not revert them), then STORE_EVENT_FLAGS_CHANGED is emitted.
 * A STORE is idempotent: a crash before the local update loses nothing the next resync
 * does not bring back, so no journal entry is written for it.
 *
 * Tags and keywords (README.md "Flags and tags"): a tag that is itself a keyword atom is
 * the keyword. Any other tag (spaces, non-ASCII, IMAP specials, a leading backslash) is
 * stored as TAG_PREFIX followed by its UTF-8 bytes, where every byte other than A-Z a-z
 * 0-9 '-' '_' '.' is written =XX (two upper-case hex digits): "my tag" is "$Tag:my=20tag".
 * Only the canonical form decodes, and a tag that would look like an encoding is encoded
 * itself, so the mapping is a bijection between tags and keywords (without commas).
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <string.h>

#include "store-private.h"

#define TAG_PREFIX "$Tag:"

/* ---- tags <-> keywords --------------------------------------------------------------- */

/* ATOM-CHAR (RFC 3501): what a keyword is made of. */
static gboolean
atom_char(guchar c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

/* Bytes an encoded tag keeps as they are. */
static gboolean
safe_char(guchar c)
{
	return g_ascii_isalnum(c) || c == '-' || c == '_' || c == '.';
}

/* What a tag may be: what splitting a user.xdg.tags value on commas and trimming gives. */
static gboolean
tag_valid(const char *tag, gsize len)
{
	return len > 0 && g_utf8_validate(tag, (gssize)len, NULL) &&
	       memchr(tag, ',', len) == NULL && memchr(tag, '\0', len) == NULL &&
	       !g_ascii_isspace(tag[0]) && !g_ascii_isspace(tag[len - 1]);
}

static gboolean tag_is_plain(const char *tag);

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* lower case is not canonical */
}

/* The tag @kw is the canonical encoding of (owned), or NULL. */
static char *
decode_canonical(const char *kw)
{
	g_autoptr(GString) out = NULL;
	const char *p;

	if (!g_str_has_prefix(kw, TAG_PREFIX))
		return NULL;
	out = g_string_new(NULL);
	for (p = kw + strlen(TAG_PREFIX); *p;) {
		if (safe_char((guchar)*p)) {
			g_string_append_c(out, *p++);
		} else if (*p == '=' && hex_digit(p[1]) >= 0 && hex_digit(p[2]) >= 0) {
			char c = (char)(hex_digit(p[1]) * 16 + hex_digit(p[2]));

			if (safe_char((guchar)c))
				return NULL; /* =41 for 'A': not how we write it */
			g_string_append_c(out, c);
			p += 3;
		} else {
			return NULL;
		}
	}
	if (!tag_valid(out->str, out->len) || tag_is_plain(out->str))
		return NULL;
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* A tag that is its own keyword: an atom that is not the encoding of another tag. */
static gboolean
tag_is_plain(const char *tag)
{
	g_autofree char *inner = NULL;

	for (const char *p = tag; *p; p++)
		if (!atom_char((guchar)*p))
			return FALSE;
	inner = decode_canonical(tag); /* a shorter string: the recursion ends */
	return *tag != '\0' && inner == NULL;
}

static char *
tag_encode(const char *tag, gsize len, GError **error)
{
	GString *s;

	if (!tag_valid(tag, len)) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_INVALID,
			    "a tag must be non-empty UTF-8 without a comma or NUL");
		return NULL;
	}
	{
		g_autofree char *t = g_strndup(tag, len);

		if (tag_is_plain(t))
			return g_steal_pointer(&t);
	}
	s = g_string_new(TAG_PREFIX);
	for (gsize i = 0; i < len; i++) {
		guchar c = (guchar)tag[i];

		if (safe_char(c))
			g_string_append_c(s, (char)c);
		else
			g_string_append_printf(s, "=%02X", c);
	}
	return g_string_free(s, FALSE);
}

char *
store_tag_to_keyword(const char *tag, GError **error)
{
	return tag_encode(tag, strlen(tag), error);
}

char *
store_keyword_to_tag(const char *keyword)
{
	char *tag = decode_canonical(keyword);

	return tag != NULL ? tag : g_strdup(keyword);
}

char **
store_tags_to_keywords(const char *text, gsize len, GError **error)
{
	g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
	gsize at = 0;

	if (memchr(text, '\0', len) != NULL) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_INVALID, "a tag list holds a NUL byte");
		return NULL;
	}
	while (at <= len) {
		const char *end = memchr(text + at, ',', len - at);
		gsize n = (end ? (gsize)(end - text) : len) - at;
		const char *t = text + at;
		char *kw;

		at += n + 1;
		while (n > 0 && g_ascii_isspace(*t))
			t++, n--;
		while (n > 0 && g_ascii_isspace(t[n - 1]))
			n--;
		if (n == 0)
			continue; /* "a,,b" and a trailing comma */
		kw = tag_encode(t, n, error);
		if (kw == NULL)
			return NULL;
		for (guint i = 0; kw != NULL && i < out->len; i++)
			if (strcmp(out->pdata[i], kw) == 0)
				g_clear_pointer(&kw, g_free);
		if (kw != NULL)
			g_ptr_array_add(out, kw);
	}
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(g_steal_pointer(&out), FALSE);
}

char *
store_tags_from_flags(const char *const *flags)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; flags != NULL && flags[i]; i++) {
		g_autofree char *tag = NULL;

		if (flags[i][0] == '\\')
			continue;
		tag = store_keyword_to_tag(flags[i]);
		if (s->len)
			g_string_append_c(s, ',');
		g_string_append(s, tag);
	}
	return g_string_free(s, FALSE);
}

/* ---- the user.imap.flags grammar --------------------------------------------------- */

void
store_flags_change_clear(StoreFlagsChange *change)
{
	g_clear_pointer(&change->set, g_strfreev);
	g_clear_pointer(&change->add, g_strfreev);
	g_clear_pointer(&change->remove, g_strfreev);
}

static gboolean
flags_contain(GPtrArray *a, const char *flag)
{
	for (guint i = 0; i < a->len; i++)
		if (g_ascii_strcasecmp(a->pdata[i], flag) == 0)
			return TRUE;
	return FALSE;
}

static char **
steal_strv(GPtrArray *a)
{
	g_ptr_array_add(a, NULL);
	return (char **)g_ptr_array_free(a, FALSE);
}

gboolean
store_flags_parse(const char *text, gsize len, StoreFlagsChange *out, GError **error)
{
	g_autoptr(GPtrArray) set = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) add = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) remove = g_ptr_array_new_with_free_func(g_free);
	guint signed_n = 0, plain_n = 0;
	gsize at = 0;

	memset(out, 0, sizeof(*out));
	if (memchr(text, '\0', len) != NULL) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_INVALID, "the flags hold a NUL byte");
		return FALSE;
	}
	while (at < len) {
		gsize n = 0;
		g_autofree char *word = NULL;
		g_autofree char *flag = NULL;
		GPtrArray *to = set;
		const char *name;

		if (g_ascii_isspace(text[at])) {
			at++;
			continue;
		}
		while (at + n < len && !g_ascii_isspace(text[at + n]))
			n++;
		word = g_strndup(text + at, n);
		at += n;
		name = word;
		if (word[0] == '+' || word[0] == '-') {
			to = word[0] == '+' ? add : remove;
			name++;
			signed_n++;
		} else {
			plain_n++;
		}
		flag = imap_flag_normalize(name, error);
		if (flag == NULL) {
			g_prefix_error(error, "%s: ", word);
			return FALSE;
		}
		if (signed_n && plain_n) {
			g_set_error(error, STORE_ERROR, STORE_ERROR_INVALID,
				    "either a flag set or +/- changes, not both");
			return FALSE;
		}
		if ((to == add && flags_contain(remove, flag)) ||
		    (to == remove && flags_contain(add, flag))) {
			g_set_error(error, STORE_ERROR, STORE_ERROR_INVALID,
				    "%s is both added and removed", flag);
			return FALSE;
		}
		if (!flags_contain(to, flag))
			g_ptr_array_add(to, g_steal_pointer(&flag));
	}
	out->replace = signed_n == 0;
	out->set = out->replace ? steal_strv(g_steal_pointer(&set)) : NULL;
	out->add = out->replace ? NULL : steal_strv(g_steal_pointer(&add));
	out->remove = out->replace ? NULL : steal_strv(g_steal_pointer(&remove));
	return TRUE;
}

/* ---- sending ------------------------------------------------------------------------ */

/* The flags after a confirmed STORE of @flags with @mode on @cur (owned). */
static char **
apply_mode(char **cur, StoreFlagsMode mode, const char *const *flags)
{
	GPtrArray *a = g_ptr_array_new();

	if (mode != STORE_FLAGS_SET)
		for (guint i = 0; cur != NULL && cur[i]; i++) {
			gboolean drop = FALSE;

			for (guint j = 0; mode == STORE_FLAGS_REMOVE && flags[j]; j++)
				drop = drop || g_ascii_strcasecmp(cur[i], flags[j]) == 0;
			if (!drop)
				g_ptr_array_add(a, g_strdup(cur[i]));
		}
	for (guint j = 0; mode != STORE_FLAGS_REMOVE && flags[j]; j++)
		if (!flags_contain(a, flags[j]))
			g_ptr_array_add(a, g_strdup(flags[j]));
	return steal_strv(a);
}

/* Under store->lock: the folder of @msg (a ref, or NULL), its UID pinned against the
 * listings in flight (local.c). */
static StoreFolder *
pin_locked(Store *store, StoreMessage *msg)
{
	StoreFolder *f = g_hash_table_lookup(store->folders, msg->info.mailbox);

	if (f == NULL)
		return NULL;
	if (f->uidvalidity == msg->info.uidvalidity)
		store_local_pin_locked(store, f, msg->info.uid);
	return store_folder_ref(f);
}

/* The server took the STORE: the message, the header cache, the event. */
static void
confirmed(Store *store, StoreMessage *msg, StoreFlagsMode mode, const char *const *flags)
{
	g_autoptr(StoreFolder) folder = NULL;
	g_auto(GStrv) now = NULL;
	g_autoptr(GError) error = NULL;
	Hcache *hc = store_hc(store);

	g_mutex_lock(&store->lock);
	{
		g_auto(GStrv) before = store_message_dup_flags_locked(msg);

		now = apply_mode(before, mode, flags);
	}
	store_message_set_flags_locked(msg, now);
	folder = pin_locked(store, msg);
	g_mutex_unlock(&store->lock);
	if (hc != NULL && msg->hc_id != 0 &&
	    !hcache_flags_local(hc, msg->hc_id, msg->info.uidvalidity, msg->info.uid,
				(const char *const *)now, 0, &error) &&
	    !g_error_matches(error, HCACHE_ERROR, HCACHE_ERROR_NOT_FOUND))
		store_cache_error(store, error);
	if (folder != NULL)
		store_emit(store, STORE_EVENT_FLAGS_CHANGED, folder, msg, NULL);
}

static const ImapStoreMode imap_mode[] = {
	[STORE_FLAGS_SET] = IMAP_STORE_SET,
	[STORE_FLAGS_ADD] = IMAP_STORE_ADD,
	[STORE_FLAGS_REMOVE] = IMAP_STORE_REMOVE,
};

/* One UID STORE of already normalized @flags. */
static gboolean
store_one(Store *store, StoreMessage *msg, StoreFlagsMode mode, const char *const *flags,
	  GCancellable *cancel, GError **error)
{
	const StoreMessageInfo *i = &msg->info;
	g_autoptr(ImapUidSet) uids = imap_uidset_new();
	GCancellable *call;
	gboolean ok;

	imap_uidset_add(uids, i->uid);
	call = store_call_begin(store, cancel, error);
	ok = call != NULL && imap_store_flags_sync(store->pool, i->mailbox, i->uidvalidity, uids,
						   imap_mode[mode], flags, 0, NULL, call, error);
	store_call_end(store, call);
	if (!ok) {
		if (error != NULL && g_error_matches(*error, IMAP_ERROR, IMAP_ERROR_NOT_PERMANENT))
			g_message("UID %u: %s: nothing stored", i->uid, (*error)->message);
		if (error != NULL)
			store_check_uidvalidity_error(store, i, *error);
		return FALSE;
	}
	confirmed(store, msg, mode, flags);
	return TRUE;
}

/* Normalized copies of @flags (owned), or NULL with IMAP_ERROR_INVALID. */
static char **
normalize(const char *const *flags, GError **error)
{
	g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func(g_free);

	for (guint i = 0; flags != NULL && flags[i]; i++) {
		char *f = imap_flag_normalize(flags[i], error);

		if (f == NULL)
			return NULL;
		if (!flags_contain(a, f))
			g_ptr_array_add(a, f);
		else
			g_free(f);
	}
	g_ptr_array_set_free_func(a, NULL);
	return steal_strv(g_steal_pointer(&a));
}

static gboolean
online(Store *store, const StoreMessage *msg, GError **error)
{
	if (!store_offline_check(store))
		return TRUE;
	g_set_error(error, STORE_ERROR, STORE_ERROR_OFFLINE,
		    "offline: the flags of message %u of %s cannot change", msg->info.uid,
		    msg->info.mailbox);
	return FALSE;
}

gboolean
store_message_set_flags_sync(Store *store, StoreMessage *msg, StoreFlagsMode mode,
			     const char *const *flags, GCancellable *cancel, GError **error)
{
	g_auto(GStrv) norm = normalize(flags, error);

	if (norm == NULL)
		return FALSE;
	if (mode != STORE_FLAGS_SET && norm[0] == NULL)
		return TRUE; /* adding or removing nothing: no command */
	return online(store, msg, error) &&
	       store_one(store, msg, mode, (const char *const *)norm, cancel, error);
}

/* ADD then REMOVE: a flag the folder refuses fails the ADD before anything was sent. */
static gboolean
add_remove(Store *store, StoreMessage *msg, char **add, char **remove, GCancellable *cancel,
	   GError **error)
{
	if ((add[0] != NULL || remove[0] != NULL) && !online(store, msg, error))
		return FALSE;
	if (add[0] != NULL &&
	    !store_one(store, msg, STORE_FLAGS_ADD, (const char *const *)add, cancel, error))
		return FALSE;
	if (remove[0] != NULL &&
	    !store_one(store, msg, STORE_FLAGS_REMOVE, (const char *const *)remove, cancel, error))
		return FALSE;
	return TRUE;
}

gboolean
store_message_change_flags_sync(Store *store, StoreMessage *msg, const StoreFlagsChange *change,
				GCancellable *cancel, GError **error)
{
	g_auto(GStrv) add = NULL;
	g_auto(GStrv) remove = NULL;

	if (change->replace)
		return store_message_set_flags_sync(store, msg, STORE_FLAGS_SET,
						    (const char *const *)change->set, cancel,
						    error);
	add = normalize((const char *const *)change->add, error);
	remove = add ? normalize((const char *const *)change->remove, error) : NULL;
	if (remove == NULL)
		return FALSE;
	return add_remove(store, msg, add, remove, cancel, error);
}

gboolean
store_message_set_keywords_sync(Store *store, StoreMessage *msg, const char *const *keywords,
				GCancellable *cancel, GError **error)
{
	g_auto(GStrv) want = normalize(keywords, error);
	g_autoptr(GPtrArray) add = NULL;
	g_autoptr(GPtrArray) remove = NULL;
	g_auto(GStrv) add_v = NULL;
	g_auto(GStrv) remove_v = NULL;
	StoreMessageState st;

	if (want == NULL)
		return FALSE;
	for (guint i = 0; want[i]; i++)
		if (want[i][0] == '\\') {
			g_set_error(error, STORE_ERROR, STORE_ERROR_INVALID,
				    "%s is a system flag, not a keyword", want[i]);
			return FALSE;
		}
	/* From the last known flags: a keyword another client set since then stays. */
	store_message_get_state(store, msg, &st);
	add = g_ptr_array_new_with_free_func(g_free);
	remove = g_ptr_array_new_with_free_func(g_free);
	for (guint i = 0; want[i]; i++) {
		gboolean have = FALSE;

		for (guint j = 0; st.flags[j]; j++)
			have = have || g_ascii_strcasecmp(st.flags[j], want[i]) == 0;
		if (!have)
			g_ptr_array_add(add, g_strdup(want[i]));
	}
	for (guint j = 0; st.flags[j]; j++) {
		gboolean keep = st.flags[j][0] == '\\';

		for (guint i = 0; !keep && want[i]; i++)
			keep = g_ascii_strcasecmp(st.flags[j], want[i]) == 0;
		if (!keep)
			g_ptr_array_add(remove, g_strdup(st.flags[j]));
	}
	store_message_state_clear(&st);
	add_v = steal_strv(g_steal_pointer(&add));
	remove_v = steal_strv(g_steal_pointer(&remove));
	return add_remove(store, msg, add_v, remove_v, cancel, error);
}
