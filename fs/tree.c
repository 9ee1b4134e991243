/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tree.c: the directory tree of the mount and the listings of its folders. Owns the
 * mapping of folders to directories (by StoreFolder object, never by name), the merge of
 * a folder's listing into its directory index as a diff, directory snapshots for readdir,
 * and node attributes. Calls the store (never libfuse, except through notify.c).
 *
 * Design:
 * - Nodes (node.c) exist for what the kernel holds: a message node is made by lookup or
 *   readdirplus and freed by forget; directories live while linked in the tree. Inode
 *   numbers are a 64-bit hash of the identity (store_hash_dir/_message; with the cache
 *   on, a message takes the number the header cache stored), so they are the same on
 *   every mount of an unchanged account.
 * - A folder's directory holds an index of its message names keyed by UID (dirindex.c),
 *   made at the first listing and changed in place from then on: by the diff of a later
 *   listing against the store's current state, and by store events (events.c).
 * - fs->lock is the outermost lock (fs->lock -> store->lock) and is never held while
 *   calling a *_sync() store function: copy, unlock, call, relock, merge.
 */
#define G_LOG_DOMAIN "imapfs"

#include "config.h"

#include <malloc.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

#define DIR_TIMEOUT 10.0
#define MSG_TIMEOUT 60.0

static void snapshot_release(Fs *fs, FsDirSnapshot *snap);

Fs *
fs_new(FsOptions *opts, Store *store)
{
	Fs *fs = g_new0(Fs, 1);

	fs->opts = opts;
	fs->store = store;
	g_mutex_init(&fs->lock);
	fs->nodes = fs_node_table_new();
	fs->dirs = g_hash_table_new(NULL, NULL);
	fs->dir_handles = g_hash_table_new(NULL, NULL);
	fs->own_changes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	fs->mount_time = time(NULL);
	fs->uid = getuid();
	fs->gid = getgid();
	return fs;
}

void
fs_free(Fs *fs)
{
	GHashTableIter it;
	gpointer snap;

	if (fs == NULL)
		return;
	/* directory handles a lazy unmount never released */
	g_hash_table_iter_init(&it, fs->dir_handles);
	while (g_hash_table_iter_next(&it, &snap, NULL)) {
		g_hash_table_iter_steal(&it);
		snapshot_release(fs, snap);
	}
	g_hash_table_unref(fs->dir_handles);
	fs_newfile_free_all(fs);
	g_hash_table_unref(fs->dirs);
	g_hash_table_unref(fs->own_changes);
	fs_node_table_free(fs->nodes);
	g_clear_pointer(&fs->namespaces, g_ptr_array_unref);
	g_mutex_clear(&fs->lock);
	g_free(fs);
}

FsNode *
fs_node_get(Fs *fs, fuse_ino_t ino)
{
	FsNode *n;

	g_mutex_lock(&fs->lock);
	n = fs_node_table_get(fs->nodes, ino);
	g_mutex_unlock(&fs->lock);
	return n;
}

/* ---- the tree ------------------------------------------------------------------------ */

static char *
dir_path(FsNode *dir, const char *name)
{
	GString *s = g_string_new(NULL);
	g_autoptr(GPtrArray) parts = g_ptr_array_new();

	for (FsNode *n = dir; n != NULL && n->parent != NULL; n = n->parent)
		g_ptr_array_insert(parts, 0, n->name);
	for (guint i = 0; i < parts->len; i++) {
		g_string_append_c(s, '/');
		g_string_append(s, g_ptr_array_index(parts, i));
	}
	g_string_append_c(s, '/');
	g_string_append(s, name);
	return g_string_free(s, FALSE);
}

FsNode *
fs_tree_add_folder_locked(Fs *fs, StoreFolder *folder)
{
	g_auto(GStrv) path = naming_folder_path(store_folder_get_name(folder),
						store_folder_get_delim(folder), fs->namespaces);
	FsNode *cur = fs->tree_root, *created = NULL;
	guint n = g_strv_length(path);

	if (g_hash_table_contains(fs->dirs, folder))
		return NULL;
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
		if (next == NULL) {
			g_autofree char *full = dir_path(cur, name);

			next = fs_node_dir_new(fs->nodes, cur, name, store_hash_dir(full));
			if (created == NULL)
				created = next;
		}
		cur = next;
	}
	if (cur != fs->tree_root && cur->folder == NULL) {
		cur->folder = store_folder_ref(folder);
		g_hash_table_insert(fs->dirs, folder, cur);
	}
	return created;
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

		if (strcmp(store_folder_get_name(f), root) == 0)
			return g_hash_table_lookup(fs->dirs, f);
	}
	return NULL;
}

static gboolean
is_inbox(StoreFolder *f)
{
	return g_ascii_strcasecmp(store_folder_get_name(f), "INBOX") == 0;
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
	fs->tree_root = fs_node_dir_new(fs->nodes, NULL, "", store_hash_dir(""));
	/* INBOX first so that it always owns "INBOX" */
	for (guint i = 0; i < folders->len; i++)
		if (is_inbox(g_ptr_array_index(folders, i)))
			fs_tree_add_folder_locked(fs, g_ptr_array_index(folders, i));
	for (guint i = 0; i < folders->len; i++)
		if (!is_inbox(g_ptr_array_index(folders, i)))
			fs_tree_add_folder_locked(fs, g_ptr_array_index(folders, i));
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
	/* the mount's root answers to FUSE_ROOT_ID; the kernel never forgets it */
	fs_node_set_ino(fs->nodes, root, FUSE_ROOT_ID);
	fs_node_ref_lookup(root);
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

	/* folders that appeared or vanished arrive as events (events.c) */
	folders = store_list_folders_sync(fs->store, NULL, cancel, error);

	g_mutex_lock(&fs->lock);
	fs->tree_refreshing = FALSE;
	if (folders != NULL)
		fs->tree_time = g_get_monotonic_time();
	g_mutex_unlock(&fs->lock);
	return folders != NULL;
}

/* ---- messages in directories ------------------------------------------------------- */

char *
fs_msg_name(Fs *fs, StoreMessage *msg)
{
	const StoreMessageInfo *i = store_message_get_info(msg);

	return naming_message_name(fs->opts->names, i->uid, i->internaldate, i->subject);
}

fuse_ino_t
fs_msg_ino_locked(Fs *fs, FsNode *dir, StoreMessage *msg)
{
	FsNode *n = fs_node_msg_find(fs->nodes, dir, store_message_get_info(msg)->uid);
	guint64 ino;

	if (n != NULL)
		return n->ino;
	ino = store_message_get_ino(msg);
	return ino ? ino : store_hash_message(store_message_get_info(msg));
}

typedef struct {
	Fs *fs;
	GPtrArray *msgs; /* StoreMessage* by UID */
} Namer;

static StoreMessage *
find_msg(GPtrArray *msgs, guint32 uid)
{
	guint lo = 0, hi = msgs->len;

	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		StoreMessage *m = g_ptr_array_index(msgs, mid);
		guint32 u = store_message_get_info(m)->uid;

		if (u == uid)
			return m;
		if (u < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static char *
name_of(guint32 uid, gpointer data)
{
	Namer *nm = data;
	StoreMessage *m = find_msg(nm->msgs, uid);

	return m ? fs_msg_name(nm->fs, m) : NULL;
}

void
fs_dir_msg_gone_locked(Fs *fs, FsNode *dir, guint32 uid, const char *name, FsInval *inval)
{
	FsNode *n = fs_node_msg_find(fs->nodes, dir, uid);
	gboolean own = name != NULL && fs_own_change_locked(fs, dir->ino, name);

	if (n == NULL) {
		/* the kernel holds no inode for it; a cached entry may still name it */
		if (!own)
			fs_inval_add(inval, dir->ino, 0, name);
		return;
	}
	fs_node_msg_gone(fs->nodes, n);
	if (!own)
		fs_inval_add(inval, dir->ino, n->ino, name);
}

static char *
own_key(fuse_ino_t dir, const char *name)
{
	return g_strdup_printf("%" G_GUINT64_FORMAT "/%s", (guint64)dir, name);
}

void
fs_own_change_begin(Fs *fs, fuse_ino_t dir, const char *name)
{
	char *k = own_key(dir, name);

	g_mutex_lock(&fs->lock);
	g_hash_table_replace(fs->own_changes, k,
			     GUINT_TO_POINTER(GPOINTER_TO_UINT(
						      g_hash_table_lookup(fs->own_changes, k)) +
					      1));
	g_mutex_unlock(&fs->lock);
}

void
fs_own_change_end(Fs *fs, fuse_ino_t dir, const char *name)
{
	g_autofree char *k = own_key(dir, name);
	guint n;

	g_mutex_lock(&fs->lock);
	n = GPOINTER_TO_UINT(g_hash_table_lookup(fs->own_changes, k));
	if (n <= 1)
		g_hash_table_remove(fs->own_changes, k);
	else
		g_hash_table_replace(fs->own_changes, g_strdup(k), GUINT_TO_POINTER(n - 1));
	g_mutex_unlock(&fs->lock);
}

gboolean
fs_own_change_locked(Fs *fs, fuse_ino_t dir, const char *name)
{
	g_autofree char *k = NULL;

	if (g_hash_table_size(fs->own_changes) == 0)
		return FALSE;
	k = own_key(dir, name);
	return g_hash_table_contains(fs->own_changes, k);
}

/* Under fs->lock: brings @dir's index to the store's current listing, as a diff.
 * @ticket was taken before the listing's command was sent. */
static void
sync_index_locked(Fs *fs, FsNode *dir, guint64 ticket, FsInval *inval)
{
	g_autoptr(GPtrArray) msgs = store_folder_snapshot(fs->store, dir->folder);
	g_autoptr(GArray) uids = NULL;
	g_autoptr(GArray) removed = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	Namer nm = {fs, msgs};

	if (msgs == NULL)
		return;
	uids = g_array_sized_new(FALSE, FALSE, sizeof(guint32), msgs->len);
	for (guint i = 0; i < msgs->len; i++) {
		guint32 uid = store_message_get_info(g_ptr_array_index(msgs, i))->uid;

		g_array_append_val(uids, uid);
	}
	if (dir->index == NULL)
		dir->index = fs_dir_index_new();
	fs_dir_index_sync(dir->index, (const guint32 *)uids->data, uids->len, ticket, name_of, &nm,
			  NULL, removed, names);
	for (guint i = 0; i < removed->len; i++)
		fs_dir_msg_gone_locked(fs, dir, g_array_index(removed, guint32, i),
				       g_ptr_array_index(names, i), inval);
}

gboolean
fs_dir_refresh_sync(Fs *fs, FsNode *dir, gint64 max_age_us, GCancellable *cancel, GError **error)
{
	g_autoptr(GPtrArray) msgs = NULL;
	gboolean changed = FALSE;
	guint64 ticket;
	FsInval inval;

	if (dir->kind != FS_NODE_DIR || dir->folder == NULL ||
	    !store_folder_is_selectable(dir->folder))
		return TRUE;
	ticket = store_ticket(fs->store);
	msgs = store_folder_list_messages_sync(fs->store, dir->folder, max_age_us, &changed, cancel,
					       error);
	if (msgs == NULL)
		return FALSE;
	fs_inval_init(&inval);
	g_mutex_lock(&fs->lock);
	if (changed || dir->index == NULL)
		sync_index_locked(fs, dir, ticket, &inval);
	g_mutex_unlock(&fs->lock);
	fs_memory_freed(fs, inval.items->len);
	fs_inval_flush(&inval, fs->notify);
	return TRUE;
}

/* Under fs->lock: the node of message @name in @dir, held, or NULL. */
static FsNode *
find_msg_locked(Fs *fs, FsNode *dir, const char *name)
{
	guint32 uid;
	g_autoptr(StoreMessage) msg = NULL;
	FsNode *n;

	if (dir->index == NULL || (uid = fs_dir_index_find(dir->index, name)) == 0)
		return NULL;
	msg = store_folder_get_message(fs->store, dir->folder, uid);
	if (msg == NULL)
		return NULL;
	n = fs_node_msg_get(fs->nodes, dir, msg, fs_msg_ino_locked(fs, dir, msg));
	fs_node_ref_lookup(n);
	return n;
}

FsNode *
fs_dir_lookup_sync(Fs *fs, FsNode *dir, const char *name, GCancellable *cancel, GError **error)
{
	FsNode *n;
	gboolean listed;

	g_mutex_lock(&fs->lock);
	n = g_hash_table_lookup(dir->subdirs, name);
	if (n != NULL)
		fs_node_ref_lookup(n);
	else
		n = find_msg_locked(fs, dir, name);
	listed = dir->index != NULL;
	g_mutex_unlock(&fs->lock);
	if (n != NULL || listed || dir->folder == NULL ||
	    !store_folder_is_selectable(dir->folder) ||
	    !naming_could_be_message(fs->opts->names, name))
		return n;
	/* first contact with this folder: list it (once) */
	if (!fs_dir_refresh_sync(fs, dir, G_MAXINT64, cancel, error))
		return NULL;
	g_mutex_lock(&fs->lock);
	n = find_msg_locked(fs, dir, name);
	g_mutex_unlock(&fs->lock);
	return n;
}

/* ---- snapshots for readdir ---------------------------------------------------------- */

static void
add_entry(GArray *a, const char *name, FsNode *node, StoreMessage *msg)
{
	FsDirEntry e = {
		.name = g_strdup(name),
		.node = node,
		.msg = msg,
	};

	if (node != NULL)
		fs_node_hold(node);
	g_array_append_val(a, e);
}

static gint
cmp_node_name(gconstpointer a, gconstpointer b)
{
	const FsNode *x = *(FsNode *const *)a, *y = *(FsNode *const *)b;

	return strcmp(x->name, y->name);
}

FsDirSnapshot *
fs_dir_snapshot_new(Fs *fs, FsNode *dir)
{
	FsDirSnapshot *snap = g_new0(FsDirSnapshot, 1);
	g_autoptr(GPtrArray) subs = g_ptr_array_new();
	g_autoptr(GPtrArray) staged = fs_newfile_names(fs, dir);
	GHashTableIter it;
	gpointer v;

	g_mutex_lock(&fs->lock);
	snap->dir = dir;
	fs_node_hold(dir);
	if (dir->folder != NULL) {
		snap->folder = store_folder_ref(dir->folder);
		store_folder_open_handle(fs->store, snap->folder);
	}
	/* sized once: a folder of 50,000 messages would otherwise leave up to half of a
	 * doubled array unused while the directory is open */
	snap->entries = g_array_sized_new(FALSE, FALSE, sizeof(FsDirEntry),
					  2 + g_hash_table_size(dir->subdirs) + staged->len +
						  (dir->index ? fs_dir_index_size(dir->index) : 0));
	add_entry(snap->entries, ".", dir, NULL);
	add_entry(snap->entries, "..", dir->parent && dir != fs->root ? dir->parent : dir, NULL);
	g_hash_table_iter_init(&it, dir->subdirs);
	while (g_hash_table_iter_next(&it, NULL, &v))
		g_ptr_array_add(subs, v);
	g_ptr_array_sort(subs, cmp_node_name);
	for (guint i = 0; i < subs->len; i++) {
		FsNode *d = g_ptr_array_index(subs, i);

		add_entry(snap->entries, d->name, d, NULL);
	}
	/* new files not sent yet (newfile.c), under the names they were created with */
	for (guint i = 0; i < staged->len; i++)
		add_entry(snap->entries, g_ptr_array_index(staged, i), NULL, NULL);
	/* messages by UID; their names stay in the index (fs_dir_entry_name) */
	if (dir->index != NULL) {
		g_autoptr(GArray) uids = fs_dir_index_uids(dir->index);

		for (guint i = 0; i < uids->len; i++) {
			guint32 uid = g_array_index(uids, guint32, i);
			StoreMessage *m = store_folder_get_message(fs->store, dir->folder, uid);

			if (m != NULL)
				add_entry(snap->entries, NULL, NULL, m);
		}
	}
	g_hash_table_add(fs->dir_handles, snap);
	g_mutex_unlock(&fs->lock);
	return snap;
}

char *
fs_dir_entry_name(Fs *fs, FsDirSnapshot *snap, const FsDirEntry *e)
{
	char *name = NULL;

	if (e->name != NULL)
		return g_strdup(e->name);
	g_mutex_lock(&fs->lock);
	if (snap->dir->index != NULL)
		name = g_strdup(
			fs_dir_index_name(snap->dir->index, store_message_get_info(e->msg)->uid));
	g_mutex_unlock(&fs->lock);
	return name ? name : fs_msg_name(fs, e->msg);
}

/* Under no lock: drops what @snap holds. */
static void
snapshot_release(Fs *fs, FsDirSnapshot *snap)
{
	g_mutex_lock(&fs->lock);
	for (guint i = 0; i < snap->entries->len; i++) {
		FsDirEntry *e = &g_array_index(snap->entries, FsDirEntry, i);

		g_free(e->name);
		if (e->node != NULL)
			fs_node_unhold(fs->nodes, e->node);
		g_clear_pointer(&e->msg, store_message_unref);
	}
	fs_node_unhold(fs->nodes, snap->dir);
	g_mutex_unlock(&fs->lock);
	if (snap->folder != NULL) {
		store_folder_close_handle(fs->store, snap->folder);
		store_folder_unref(snap->folder);
	}
	g_array_unref(snap->entries);
	g_free(snap);
}

void
fs_dir_snapshot_free(Fs *fs, FsDirSnapshot *snap)
{
	g_mutex_lock(&fs->lock);
	g_hash_table_remove(fs->dir_handles, snap);
	g_mutex_unlock(&fs->lock);
	snapshot_release(fs, snap);
}

#define TRIM_AFTER 4096 /* records freed between two malloc_trim() calls */

void
fs_memory_freed(Fs *fs, guint n)
{
	if (n == 0 || (guint)g_atomic_int_add(&fs->freed, (gint)n) + n < TRIM_AFTER)
		return;
	g_atomic_int_set(&fs->freed, 0);
	malloc_trim(0);
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
		g_mutex_lock(&fs->lock);
		/* a folder that holds messages takes new files, rm and mv (file managers
		 * offer them by the write bit); the rest of the tree cannot change yet */
		st->st_mode = S_IFDIR | (!fs->opts->read_only && node->folder != NULL &&
						 store_folder_is_selectable(node->folder)
					 ? 0755
					 : 0555);
		st->st_nlink = 2 + g_hash_table_size(node->subdirs);
		g_mutex_unlock(&fs->lock);
		st->st_size = 4096;
		st->st_mtime = st->st_ctime = st->st_atime = fs->mount_time;
	} else {
		g_autoptr(StoreMessage) msg = NULL;
		const StoreMessageInfo *i;
		guint64 size;

		g_mutex_lock(&fs->lock); /* a node can be re-pointed */
		msg = store_message_ref(node->msg);
		g_mutex_unlock(&fs->lock);
		i = store_message_get_info(msg);
		size = store_message_get_size(fs->store, msg);

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
