/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * inode.c: the inode table and the directory tree. Owns FsNode, inode numbers, the
 * mapping of names to nodes, and the merge of a folder's message listing into its
 * directory. Calls the store (never libfuse, except notify through notify.c).
 *
 * Design:
 * - Inode numbers are a 64-bit hash of the identity (store_hash_dir/_message): a
 *   directory's path in the tree, a message's (mailbox, UIDVALIDITY, UID); with the cache
 *   on, a message takes the number the header cache stored for it (the same hash unless
 *   it collided). They are therefore the same on every mount of an unchanged account. A
 *   collision in memory is resolved by probing the next free number; 0 and FUSE_ROOT_ID
 *   are never handed out.
 * - Nodes are created under fs->lock and never freed while mounted, so a node pointer
 *   obtained from the table stays valid without a reference count. An expunged message
 *   leaves the name table but keeps its node (an open file can still be read or stat'ed).
 * - fs->lock is never held while calling a *_sync() store function: the caller copies
 *   what it needs, unlocks, calls, relocks and merges. It is the outermost lock
 *   (fs->lock -> store->lock).
 */
#define G_LOG_DOMAIN "imapfs"

#include "config.h"

#include <string.h>
#include <unistd.h>

#include "fs.h"

#define DIR_TIMEOUT 10.0
#define MSG_TIMEOUT 60.0

static void
insert_locked(Fs *fs, FsNode *node, guint64 h)
{
	while (h <= FUSE_ROOT_ID || g_hash_table_contains(fs->inodes, &h))
		h++;
	node->ino = h;
	g_hash_table_insert(fs->inodes, &node->ino, node);
}

static FsNode *
dir_new_locked(Fs *fs, FsNode *parent, const char *name, const char *path)
{
	FsNode *n = g_new0(FsNode, 1);

	n->kind = FS_NODE_DIR;
	n->parent = parent;
	n->name = g_strdup(name);
	n->subdirs = g_hash_table_new(g_str_hash, g_str_equal);
	insert_locked(fs, n, store_hash_dir(path));
	if (parent != NULL)
		g_hash_table_insert(parent->subdirs, n->name, n);
	return n;
}

static void
node_free(FsNode *n)
{
	g_free(n->name);
	g_clear_pointer(&n->subdirs, g_hash_table_unref);
	g_clear_pointer(&n->msgs, g_hash_table_unref);
	g_clear_pointer(&n->msg_order, g_ptr_array_unref);
	g_clear_pointer(&n->folder, store_folder_unref);
	g_clear_pointer(&n->msg, store_message_unref);
	g_free(n);
}

Fs *
fs_new(FsOptions *opts, Store *store)
{
	Fs *fs = g_new0(Fs, 1);

	fs->opts = opts;
	fs->store = store;
	g_mutex_init(&fs->lock);
	fs->inodes =
		g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, (GDestroyNotify)node_free);
	fs->dir_handles = g_hash_table_new_full(g_direct_hash, g_direct_equal,
						(GDestroyNotify)g_ptr_array_unref, NULL);
	fs->mount_time = time(NULL);
	fs->uid = getuid();
	fs->gid = getgid();
	return fs;
}

void
fs_free(Fs *fs)
{
	if (fs == NULL)
		return;
	g_hash_table_unref(fs->dir_handles);
	g_hash_table_unref(fs->inodes);
	g_clear_pointer(&fs->namespaces, g_ptr_array_unref);
	g_mutex_clear(&fs->lock);
	g_free(fs);
}

/* ---- the tree ------------------------------------------------------------------------ */

static void
add_folder_locked(Fs *fs, StoreFolder *folder)
{
	g_auto(GStrv) path = naming_folder_path(store_folder_get_name(folder),
						store_folder_get_delim(folder), fs->namespaces);
	GString *full = g_string_new(NULL);
	FsNode *cur = fs->tree_root;
	guint n = g_strv_length(path);

	for (guint i = 0; i < n; i++) {
		FsNode *next = g_hash_table_lookup(cur->subdirs, path[i]);
		g_autofree char *name = g_strdup(path[i]);

		if (i == n - 1 && next != NULL && next->folder != NULL && next->folder != folder) {
			/* two mailboxes map to one name: the later one gets a suffix */
			for (int k = 2;; k++) {
				g_free(name);
				name = naming_component_variant(path[i], k);
				next = g_hash_table_lookup(cur->subdirs, name);
				if (next == NULL || next->folder == NULL || next->folder == folder)
					break;
			}
		}
		g_string_append_c(full, '/');
		g_string_append(full, name);
		if (next == NULL)
			next = dir_new_locked(fs, cur, name, full->str);
		cur = next;
	}
	if (cur != fs->tree_root && cur->folder == NULL)
		cur->folder = store_folder_ref(folder);
	g_string_free(full, TRUE);
}

static FsNode *
find_root_locked(Fs *fs, const char *root, GPtrArray *folders)
{
	g_auto(GStrv) parts = g_strsplit(root, "/", -1);
	FsNode *cur = fs->tree_root;

	for (guint i = 0; parts[i] && cur; i++)
		if (*parts[i])
			cur = g_hash_table_lookup(cur->subdirs, parts[i]);
	if (cur != NULL)
		return cur;
	/* else a server mailbox name */
	while (*root == '/')
		root++;
	for (guint i = 0; i < folders->len; i++) {
		StoreFolder *f = g_ptr_array_index(folders, i);
		GHashTableIter it;
		gpointer v;

		if (strcmp(store_folder_get_name(f), root) != 0)
			continue;
		g_hash_table_iter_init(&it, fs->inodes);
		while (g_hash_table_iter_next(&it, NULL, &v))
			if (((FsNode *)v)->folder == f)
				return v;
	}
	return NULL;
}

gboolean
fs_tree_build_sync(Fs *fs, GError **error)
{
	g_autoptr(GPtrArray) nss = NULL;
	g_autoptr(GPtrArray) folders = NULL;
	FsNode *root;

	folders = store_list_folders_sync(fs->store, &nss, NULL, error);
	if (folders == NULL)
		return FALSE;
	g_mutex_lock(&fs->lock);
	fs->namespaces = g_steal_pointer(&nss);
	fs->tree_root = dir_new_locked(fs, NULL, "", "");
	/* INBOX first so that it always owns "INBOX" */
	for (guint i = 0; i < folders->len; i++)
		if (!g_ascii_strcasecmp(store_folder_get_name(g_ptr_array_index(folders, i)),
					"INBOX"))
			add_folder_locked(fs, g_ptr_array_index(folders, i));
	for (guint i = 0; i < folders->len; i++)
		if (g_ascii_strcasecmp(store_folder_get_name(g_ptr_array_index(folders, i)),
				       "INBOX"))
			add_folder_locked(fs, g_ptr_array_index(folders, i));
	root = fs->tree_root;
	if (fs->opts->root != NULL && *fs->opts->root && strcmp(fs->opts->root, "/") != 0) {
		root = find_root_locked(fs, fs->opts->root, folders);
		if (root == NULL) {
			g_mutex_unlock(&fs->lock);
			g_set_error(error, STORE_ERROR, STORE_ERROR_NOT_FOUND,
				    "root folder %s not found on the server", fs->opts->root);
			return FALSE;
		}
	}
	/* the mount's root answers to FUSE_ROOT_ID */
	g_hash_table_steal(fs->inodes, &root->ino);
	root->ino = FUSE_ROOT_ID;
	g_hash_table_insert(fs->inodes, &root->ino, root);
	fs->root = root;
	fs->tree_time = g_get_monotonic_time();
	g_mutex_unlock(&fs->lock);
	return TRUE;
}

gboolean
fs_tree_refresh_sync(Fs *fs, gint64 max_age_us, GCancellable *cancel, GError **error)
{
	g_autoptr(GPtrArray) folders = NULL;

	g_mutex_lock(&fs->lock);
	if (fs->tree_refreshing || g_get_monotonic_time() - fs->tree_time < max_age_us) {
		g_mutex_unlock(&fs->lock);
		return TRUE;
	}
	fs->tree_refreshing = TRUE;
	g_mutex_unlock(&fs->lock);

	folders = store_list_folders_sync(fs->store, NULL, cancel, error);

	g_mutex_lock(&fs->lock);
	fs->tree_refreshing = FALSE;
	if (folders != NULL) {
		/* new folders appear; vanished ones stay until remount (their listing fails) */
		for (guint i = 0; i < folders->len; i++)
			add_folder_locked(fs, g_ptr_array_index(folders, i));
		fs->tree_time = g_get_monotonic_time();
	}
	g_mutex_unlock(&fs->lock);
	return folders != NULL;
}

FsNode *
fs_node_lookup(Fs *fs, fuse_ino_t ino)
{
	FsNode *n;
	guint64 key = ino;

	g_mutex_lock(&fs->lock);
	n = g_hash_table_lookup(fs->inodes, &key);
	g_mutex_unlock(&fs->lock);
	return n;
}

/* ---- messages in directories ------------------------------------------------------- */

static char *
msg_name(Fs *fs, StoreMessage *m)
{
	const StoreMessageInfo *i = store_message_get_info(m);

	return naming_message_name(fs->opts->names, i->uid, i->internaldate, i->subject);
}

/* Merges a fresh listing into @dir; queues invalidations of vanished names. */
static void
merge_locked(Fs *fs, FsNode *dir, GPtrArray *msgs, GPtrArray *gone_names)
{
	GHashTable *table = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GPtrArray *order = g_ptr_array_new_full(msgs->len, NULL);

	for (guint i = 0; i < msgs->len; i++) {
		StoreMessage *m = g_ptr_array_index(msgs, i);
		char *name = msg_name(fs, m);
		FsNode *node = dir->msgs ? g_hash_table_lookup(dir->msgs, name) : NULL;

		if (node != NULL) {
			const StoreMessageInfo *a = store_message_get_info(node->msg);
			const StoreMessageInfo *b = store_message_get_info(m);

			if (a->uidvalidity != b->uidvalidity || a->uid != b->uid)
				node = NULL;
		}
		if (node == NULL) {
			node = g_new0(FsNode, 1);
			node->kind = FS_NODE_MSG;
			node->parent = dir;
			node->name = g_strdup(name);
			node->msg = store_message_ref(m);
			guint64 ino = store_message_get_ino(m);

			insert_locked(fs, node,
				      ino ? ino : store_hash_message(store_message_get_info(m)));
		}
		if (g_hash_table_contains(table, name)) {
			g_free(name); /* cannot happen: the UID is part of the name */
			continue;
		}
		g_hash_table_insert(table, name, node);
		g_ptr_array_add(order, node);
	}
	if (dir->msgs != NULL) {
		GHashTableIter it;
		gpointer k, v;

		g_hash_table_iter_init(&it, dir->msgs);
		while (g_hash_table_iter_next(&it, &k, &v)) {
			FsNode *old = v;

			if (g_hash_table_lookup(table, k) != old) {
				old->gone = TRUE;
				g_ptr_array_add(gone_names, g_strdup(k));
			}
		}
		g_hash_table_unref(dir->msgs);
		g_ptr_array_unref(dir->msg_order);
	}
	dir->msgs = table;
	dir->msg_order = order;
}

gboolean
fs_dir_refresh_sync(Fs *fs, FsNode *dir, gint64 max_age_us, GCancellable *cancel, GError **error)
{
	g_autoptr(GPtrArray) msgs = NULL;
	g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func(g_free);
	gboolean changed = FALSE;
	gboolean listed;

	if (dir->kind != FS_NODE_DIR || dir->folder == NULL ||
	    !store_folder_is_selectable(dir->folder))
		return TRUE;
	msgs = store_folder_list_messages_sync(fs->store, dir->folder, max_age_us, &changed, cancel,
					       error);
	if (msgs == NULL)
		return FALSE;
	g_mutex_lock(&fs->lock);
	listed = dir->msgs != NULL;
	if (changed || !listed)
		merge_locked(fs, dir, msgs, gone);
	g_mutex_unlock(&fs->lock);
	for (guint i = 0; i < gone->len; i++)
		fs_notify_inval_entry(fs->notify, dir->ino, g_ptr_array_index(gone, i));
	return TRUE;
}

FsNode *
fs_dir_find_sync(Fs *fs, FsNode *dir, const char *name, GCancellable *cancel, GError **error)
{
	FsNode *n;
	gboolean listed;

	g_mutex_lock(&fs->lock);
	n = g_hash_table_lookup(dir->subdirs, name);
	if (n == NULL && dir->msgs != NULL)
		n = g_hash_table_lookup(dir->msgs, name);
	listed = dir->msgs != NULL;
	g_mutex_unlock(&fs->lock);
	if (n != NULL || listed || dir->folder == NULL ||
	    !store_folder_is_selectable(dir->folder) ||
	    !naming_could_be_message(fs->opts->names, name))
		return n;
	/* first contact with this folder: list it (once) */
	if (!fs_dir_refresh_sync(fs, dir, G_MAXINT64, cancel, error))
		return NULL;
	g_mutex_lock(&fs->lock);
	n = dir->msgs ? g_hash_table_lookup(dir->msgs, name) : NULL;
	g_mutex_unlock(&fs->lock);
	return n;
}

static void
entry_free(FsDirEntry *e)
{
	g_free(e->name);
	g_free(e);
}

static void
add_entry(GPtrArray *a, const char *name, FsNode *node)
{
	FsDirEntry *e = g_new0(FsDirEntry, 1);

	e->name = g_strdup(name);
	e->ino = node->ino;
	e->node = node;
	g_ptr_array_add(a, e);
}

static gint
cmp_node_name(gconstpointer a, gconstpointer b)
{
	const FsNode *x = *(FsNode *const *)a, *y = *(FsNode *const *)b;

	return strcmp(x->name, y->name);
}

GPtrArray *
fs_dir_snapshot(Fs *fs, FsNode *dir)
{
	GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)entry_free);
	g_autoptr(GPtrArray) subs = g_ptr_array_new();
	GHashTableIter it;
	gpointer v;

	g_mutex_lock(&fs->lock);
	add_entry(a, ".", dir);
	add_entry(a, "..", dir->parent && dir != fs->root ? dir->parent : dir);
	g_hash_table_iter_init(&it, dir->subdirs);
	while (g_hash_table_iter_next(&it, NULL, &v))
		g_ptr_array_add(subs, v);
	g_ptr_array_sort(subs, cmp_node_name);
	for (guint i = 0; i < subs->len; i++)
		add_entry(a, ((FsNode *)g_ptr_array_index(subs, i))->name,
			  g_ptr_array_index(subs, i));
	if (dir->msg_order != NULL)
		for (guint i = 0; i < dir->msg_order->len; i++) {
			FsNode *m = g_ptr_array_index(dir->msg_order, i);

			add_entry(a, m->name, m);
		}
	g_hash_table_add(fs->dir_handles, a);
	g_mutex_unlock(&fs->lock);
	return a;
}

void
fs_dir_snapshot_free(Fs *fs, GPtrArray *snapshot)
{
	g_mutex_lock(&fs->lock);
	g_hash_table_remove(fs->dir_handles, snapshot);
	g_mutex_unlock(&fs->lock);
}

/* ---- attributes ------------------------------------------------------------------- */

void
fs_node_stat(Fs *fs, FsNode *node, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = node->ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 4096;
	if (node->kind == FS_NODE_DIR) {
		st->st_mode = S_IFDIR | 0555;
		g_mutex_lock(&fs->lock);
		st->st_nlink = 2 + g_hash_table_size(node->subdirs);
		g_mutex_unlock(&fs->lock);
		st->st_size = 4096;
		st->st_mtime = st->st_ctime = st->st_atime = fs->mount_time;
	} else {
		const StoreMessageInfo *i = store_message_get_info(node->msg);
		guint64 size = store_message_get_size(fs->store, node->msg);

		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = size;
		st->st_blocks = (size + 511) / 512;
		st->st_mtime = st->st_ctime = st->st_atime = i->internaldate;
	}
}

double
fs_node_entry_timeout(FsNode *node)
{
	return node->kind == FS_NODE_DIR ? DIR_TIMEOUT : MSG_TIMEOUT;
}

double
fs_node_attr_timeout(FsNode *node)
{
	return node->kind == FS_NODE_DIR ? DIR_TIMEOUT : MSG_TIMEOUT;
}
