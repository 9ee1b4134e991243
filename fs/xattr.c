/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xattr.c: extended attributes: message metadata (flags, tags, UID, INTERNALDATE, MODSEQ,
 * decoded envelope fields), folder metadata (server name, delimiter, special use, STATUS
 * counters) and the daemon's counters on the mount root (user.imapfs.stats, for tests and
 * curious users). Values carry no trailing NUL. Two names can be written, on messages
 * only: user.imap.flags and user.xdg.tags (the grammar and the tag mapping live in the
 * store, flags.c); every other name we show is read-only (EPERM), any other user.* name
 * cannot be stored (ENOTSUP, which cp/rsync take as "no xattrs here").
 */
#define G_LOG_DOMAIN "imapfs"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/xattr.h>

#include "fs.h"

#define STATS_XATTR   "user.imapfs.stats"

static const char *const msg_names[] = {
	"user.imap.flags",  "user.xdg.tags",	    "user.imap.uid",  "user.imap.internaldate",
	"user.imap.modseq", "user.mail.subject",    "user.mail.from", "user.mail.to",
	"user.mail.date",   "user.mail.message_id",
};

static const char *const dir_names[] = {
	"user.imap.mailbox",	 "user.imap.delimiter", "user.imap.special_use",
	"user.imap.uidvalidity", "user.imap.messages",	"user.imap.unseen",
};

static GBytes *
str_value(const char *s)
{
	return g_bytes_new(s, strlen(s));
}

static GBytes *
take_value(char *s)
{
	return g_bytes_new_take(s, strlen(s));
}

static char *
format_internaldate(const StoreMessageInfo *i)
{
	g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc(i->internaldate);
	g_autoptr(GTimeZone) tz = g_time_zone_new_offset(i->internaldate_tz * 60);
	g_autoptr(GDateTime) local = NULL;

	if (utc == NULL)
		return g_strdup_printf("%" G_GINT64_FORMAT, i->internaldate);
	local = tz ? g_date_time_to_timezone(utc, tz) : g_date_time_ref(utc);
	return g_date_time_format(local, "%Y-%m-%dT%H:%M:%S%:z");
}

/* The envelope field behind xattr @name (owned), or NULL. */
static char *
envelope_field(Fs *fs, FsNode *node, const char *name)
{
	StoreEnvelope env;
	char *v = NULL;

	store_message_get_envelope(fs->store, node->msg, &env);
	if (!strcmp(name, "user.mail.from"))
		v = g_steal_pointer(&env.from);
	else if (!strcmp(name, "user.mail.to"))
		v = g_steal_pointer(&env.to);
	else if (!strcmp(name, "user.mail.date"))
		v = g_steal_pointer(&env.date);
	else if (!strcmp(name, "user.mail.message_id"))
		v = g_steal_pointer(&env.message_id);
	store_envelope_clear(&env);
	return v;
}

/* Which message xattrs exist (the optional ones only when they have a value). */
static gboolean
msg_has(Fs *fs, FsNode *node, const char *name)
{
	const StoreMessageInfo *i = store_message_get_info(node->msg);

	if (!strcmp(name, "user.imap.modseq")) {
		StoreMessageState s;
		gboolean have;

		store_message_get_state(fs->store, node->msg, &s);
		have = s.modseq != 0;
		store_message_state_clear(&s);
		return have;
	}
	if (!strcmp(name, "user.mail.subject"))
		return i->subject != NULL;
	if (g_str_has_prefix(name, "user.mail.")) {
		g_autofree char *v = envelope_field(fs, node, name);

		return v != NULL;
	}
	return TRUE;
}

static int
msg_get(Fs *fs, FsNode *node, const char *name, GBytes **value)
{
	const StoreMessageInfo *i = store_message_get_info(node->msg);
	g_autofree char *field = NULL;
	StoreMessageState s;
	int err = 0;

	store_message_get_state(fs->store, node->msg, &s);
	if (!strcmp(name, "user.imap.flags")) {
		*value = take_value(g_strjoinv(" ", s.flags));
	} else if (!strcmp(name, "user.xdg.tags")) {
		/* the inverse of what fs_xattr_set() stores */
		*value = take_value(store_tags_from_flags((const char *const *)s.flags));
	} else if (!strcmp(name, "user.imap.uid")) {
		*value = take_value(g_strdup_printf("%u", i->uid));
	} else if (!strcmp(name, "user.imap.internaldate")) {
		*value = take_value(format_internaldate(i));
	} else if (!strcmp(name, "user.imap.modseq") && s.modseq != 0) {
		*value = take_value(g_strdup_printf("%" G_GUINT64_FORMAT, s.modseq));
	} else if (!strcmp(name, "user.mail.subject") && i->subject) {
		*value = str_value(i->subject);
	} else if (g_str_has_prefix(name, "user.mail.") &&
		   (field = envelope_field(fs, node, name)) != NULL) {
		*value = take_value(g_steal_pointer(&field));
	} else {
		err = ENODATA;
	}
	store_message_state_clear(&s);
	return err;
}

static gboolean
dir_has(FsNode *node, const char *name)
{
	if (node->folder == NULL)
		return FALSE;
	if (!strcmp(name, "user.imap.special_use"))
		return store_folder_get_special_use(node->folder) != NULL;
	if (!strcmp(name, "user.imap.uidvalidity") || !strcmp(name, "user.imap.messages") ||
	    !strcmp(name, "user.imap.unseen"))
		return store_folder_is_selectable(node->folder);
	return !strcmp(name, "user.imap.mailbox") || !strcmp(name, "user.imap.delimiter");
}

static int
dir_get(Fs *fs, FsNode *node, const char *name, GBytes **value, GCancellable *cancel)
{
	ImapStatus st;
	g_autoptr(GError) error = NULL;
	char d[2] = {0, 0};

	if (!dir_has(node, name))
		return ENODATA;
	if (!strcmp(name, "user.imap.mailbox")) {
		*value = str_value(store_folder_get_name(node->folder));
		return 0;
	}
	if (!strcmp(name, "user.imap.delimiter")) {
		d[0] = store_folder_get_delim(node->folder);
		*value = str_value(d);
		return 0;
	}
	if (!strcmp(name, "user.imap.special_use")) {
		*value = str_value(store_folder_get_special_use(node->folder));
		return 0;
	}
	if (!store_folder_status_sync(fs->store, node->folder, &st, cancel, &error))
		return fs_errno_from_error(error);
	if (!strcmp(name, "user.imap.uidvalidity"))
		*value = take_value(g_strdup_printf("%u", st.uidvalidity));
	else if (!strcmp(name, "user.imap.messages"))
		*value = take_value(g_strdup_printf("%u", st.messages));
	else
		*value = take_value(g_strdup_printf("%u", st.unseen));
	return 0;
}

int
fs_xattr_get(Fs *fs, FsNode *node, const char *name, GBytes **value, GCancellable *cancel)
{
	*value = NULL;
	/* Only user.* exists here. "Not supported" (not "no data") for security.* and
	 * system.* lets ls -l stop asking for SELinux labels and ACLs after the first file
	 * (coreutils caches ENOTSUP per filesystem), instead of two round trips per file. */
	if (!g_str_has_prefix(name, "user."))
		return EOPNOTSUPP;
	if (node == fs->root && !strcmp(name, STATS_XATTR)) {
		ImapStats s;
		StoreCacheStats c;

		guint dirs, msgs;

		store_get_stats(fs->store, &s);
		store_get_cache_stats(fs->store, &c);
		g_mutex_lock(&fs->lock);
		dirs = fs_node_table_count(fs->nodes, FS_NODE_DIR);
		msgs = fs_node_table_count(fs->nodes, FS_NODE_MSG);
		g_mutex_unlock(&fs->lock);
		*value = take_value(g_strdup_printf(
			"bytes_in=%" G_GUINT64_FORMAT " bytes_out=%" G_GUINT64_FORMAT
			" commands=%" G_GUINT64_FORMAT " body_bytes=%" G_GUINT64_FORMAT
			" reconnects=%" G_GUINT64_FORMAT " cache_hits=%" G_GUINT64_FORMAT
			" cache_misses=%" G_GUINT64_FORMAT " cache_bytes=%" G_GUINT64_FORMAT
			" cache_files=%" G_GUINT64_FORMAT " nodes_dir=%u nodes_msg=%u",
			s.bytes_in, s.bytes_out, s.commands, s.body_bytes, s.reconnects, c.hits,
			c.misses, c.bytes, c.files, dirs, msgs));
		return 0;
	}
	if (node->kind == FS_NODE_MSG) {
		if (!strcmp(name, "user.imap.flags") || !strcmp(name, "user.xdg.tags") ||
		    !strcmp(name, "user.imap.modseq")) {
			g_autoptr(GError) error = NULL;

			/* Flags change on the server: re-check a listing older than
			 * -o flags_max_age (one EXAMINE with CONDSTORE, for the whole folder).
			 * Without the server, the last known flags are the answer. */
			if (!fs_dir_refresh_sync(fs, node->parent,
						 (gint64)fs->opts->flags_max_age * G_USEC_PER_SEC, cancel,
						 &error))
				g_debug("flags of UID %u not refreshed: %s", node->uid,
					error->message);
		}
		return msg_get(fs, node, name, value);
	}
	return dir_get(fs, node, name, value, cancel);
}

GBytes *
fs_xattr_list(Fs *fs, FsNode *node)
{
	GString *s = g_string_new(NULL);
	gsize len;

	if (node->kind == FS_NODE_MSG) {
		for (gsize i = 0; i < G_N_ELEMENTS(msg_names); i++)
			if (msg_has(fs, node, msg_names[i]))
				g_string_append_len(s, msg_names[i], strlen(msg_names[i]) + 1);
	} else {
		for (gsize i = 0; i < G_N_ELEMENTS(dir_names); i++)
			if (dir_has(node, dir_names[i]))
				g_string_append_len(s, dir_names[i], strlen(dir_names[i]) + 1);
		if (node == fs->root)
			g_string_append_len(s, STATS_XATTR, sizeof(STATS_XATTR));
	}
	len = s->len;
	return g_bytes_new_take(g_string_free(s, FALSE), len);
}

/* ---- the write side ------------------------------------------------------------- */

#define FLAGS_XATTR "user.imap.flags"
#define TAGS_XATTR  "user.xdg.tags"

/* One of the names we show on @node (then it is read-only unless flags or tags). */
static gboolean
known_name(Fs *fs, FsNode *node, const char *name)
{
	const char *const *names = node->kind == FS_NODE_MSG ? msg_names : dir_names;
	gsize n = node->kind == FS_NODE_MSG ? G_N_ELEMENTS(msg_names) : G_N_ELEMENTS(dir_names);

	for (gsize i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return TRUE;
	return node == fs->root && !strcmp(name, STATS_XATTR);
}

static gboolean
writable(FsNode *node, const char *name)
{
	return node->kind == FS_NODE_MSG &&
	       (!strcmp(name, FLAGS_XATTR) || !strcmp(name, TAGS_XATTR));
}

int
fs_xattr_set(Fs *fs, FsNode *node, const char *name, const char *value, size_t size, int flags,
	     GCancellable *cancel)
{
	g_autoptr(GError) error = NULL;
	gboolean ok;

	if (!g_str_has_prefix(name, "user."))
		return EOPNOTSUPP;
	if (!writable(node, name))
		/* folders hold no flags: tagging one is "not supported", like a
		 * filesystem without xattrs, not an error to report */
		return known_name(fs, node, name) ? EPERM : EOPNOTSUPP;
	/* both exist on every message (maybe empty): create fails, replace always works */
	if (flags & XATTR_CREATE)
		return EEXIST;
	if (!strcmp(name, FLAGS_XATTR)) {
		StoreFlagsChange change;

		ok = store_flags_parse(value, size, &change, &error);
		if (ok) {
			ok = store_message_change_flags_sync(fs->store, node->msg, &change, cancel,
							     &error);
			store_flags_change_clear(&change);
		}
	} else {
		g_auto(GStrv) kw = store_tags_to_keywords(value, size, &error);

		ok = kw != NULL &&
		     store_message_set_keywords_sync(fs->store, node->msg, (const char *const *)kw,
						     cancel, &error);
	}
	if (!ok) {
		g_debug("setxattr %s of UID %u: %s", name, node->uid, error->message);
		return fs_errno_from_error(error);
	}
	return 0;
}

int
fs_xattr_remove(Fs *fs, FsNode *node, const char *name, GCancellable *cancel)
{
	static const char *const none[] = {NULL};
	g_autoptr(GError) error = NULL;
	gboolean ok;

	if (!g_str_has_prefix(name, "user."))
		return EOPNOTSUPP;
	if (!writable(node, name))
		return known_name(fs, node, name) ? EPERM : ENODATA;
	if (!strcmp(name, FLAGS_XATTR))
		ok = store_message_set_flags_sync(fs->store, node->msg, STORE_FLAGS_SET, none,
						  cancel, &error);
	else
		ok = store_message_set_keywords_sync(fs->store, node->msg, none, cancel, &error);
	if (!ok) {
		g_debug("removexattr %s of UID %u: %s", name, node->uid, error->message);
		return fs_errno_from_error(error);
	}
	return 0;
}
