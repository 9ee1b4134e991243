/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * events.c: the one place where changes of the store reach the tree and the kernel. The
 * store calls fs_apply_event() from whichever thread saw the change (a resync, an
 * unsolicited response, a LIST), with no store lock held; this file updates directories
 * and indexes under fs->lock and queues kernel invalidations for after the unlock
 * (never a notify call under a lock or inside a related operation: the libfuse rule).
 *
 * Events are hints, not orders: each one is checked against the store's current state
 * before it is applied, so events that arrive late or out of order (two threads racing)
 * can neither resurrect an expunged message nor hide a present one. A directory that
 * was never listed has no index and ignores message events (its first listing reads the
 * store's state whole).
 */
#define G_LOG_DOMAIN "imapfs"

#include "config.h"

#include <string.h>

#include "fs.h"

/* Under fs->lock. */
static void
message_added(Fs *fs, FsNode *dir, StoreMessage *msg, gboolean local, FsInval *inval)
{
	guint32 uid = store_message_get_info(msg)->uid;
	g_autoptr(StoreMessage) now = store_folder_get_message(fs->store, dir->folder, uid);
	g_autofree char *name = NULL;

	if (now == NULL || fs_dir_index_name(dir->index, uid) != NULL)
		return;
	name = fs_msg_name(fs, now);
	fs_dir_index_put(dir->index, uid, name);
	/* a listing of this directory already in flight must not undo it */
	fs_dir_index_hold(dir->index, uid, store_ticket(fs->store));
	/* drops a negative entry the kernel may have cached for the name; a UID the server
	 * just gave our own write cannot have one (and a burst of moves would otherwise
	 * queue one invalidation per file, each waiting for the directory's lock) */
	if (!local)
		fs_inval_add(inval, dir->ino, 0, name);
}

/* Under fs->lock. */
static void
message_gone(Fs *fs, FsNode *dir, StoreMessage *msg, FsInval *inval)
{
	guint32 uid = store_message_get_info(msg)->uid;
	g_autoptr(StoreMessage) now = store_folder_get_message(fs->store, dir->folder, uid);
	g_autofree char *name = NULL;

	if (now != NULL || fs_dir_index_name(dir->index, uid) == NULL)
		return;
	name = g_strdup(fs_dir_index_name(dir->index, uid));
	fs_dir_index_remove(dir->index, uid);
	fs_dir_index_hold(dir->index, uid, store_ticket(fs->store));
	fs_dir_msg_gone_locked(fs, dir, uid, name, inval);
}

/* Under fs->lock: every message of @dir is gone (UIDVALIDITY changed); the next opendir
 * lists the folder afresh. */
static void
folder_reset(Fs *fs, FsNode *dir, FsInval *inval)
{
	g_autoptr(GArray) uids = NULL;

	if (dir->index == NULL)
		return;
	uids = fs_dir_index_uids(dir->index);
	for (guint i = 0; i < uids->len; i++) {
		guint32 uid = g_array_index(uids, guint32, i);

		fs_dir_msg_gone_locked(fs, dir, uid, fs_dir_index_name(dir->index, uid), inval);
	}
	g_clear_pointer(&dir->index, fs_dir_index_free);
}

/* Under fs->lock. */
static void
folder_added(Fs *fs, StoreFolder *folder, FsInval *inval)
{
	FsNode *top = fs_tree_add_folder_locked(fs, folder);

	if (top != NULL)
		fs_inval_add(inval, top->parent->ino, 0, top->name);
}

/* Under fs->lock: the folder's directory leaves the tree unless subfolders keep it (then
 * it stays as a plain directory). */
static void
folder_removed(Fs *fs, FsNode *dir, FsInval *inval)
{
	g_hash_table_remove(fs->dirs, dir->folder);
	folder_reset(fs, dir, inval);
	if (dir == fs->root || g_hash_table_size(dir->subdirs) > 0 || dir->parent == NULL) {
		g_clear_pointer(&dir->folder, store_folder_unref);
		fs_inval_add(inval, dir->ino, 0, NULL);
		return;
	}
	fs_inval_add(inval, dir->parent->ino, dir->ino, dir->name);
	fs_node_dir_detach(fs->nodes, dir);
}

void
fs_apply_event(const StoreEvent *ev, gpointer data)
{
	Fs *fs = data;
	FsInval inval;
	FsNode *dir;

	fs_inval_init(&inval);
	g_mutex_lock(&fs->lock);
	dir = g_hash_table_lookup(fs->dirs, ev->folder);
	switch (ev->kind) {
	case STORE_EVENT_MESSAGE_ADDED:
		if (dir != NULL && dir->index != NULL)
			message_added(fs, dir, ev->msg, ev->local, &inval);
		break;
	case STORE_EVENT_MESSAGE_GONE:
		if (dir != NULL && dir->index != NULL)
			message_gone(fs, dir, ev->msg, &inval);
		break;
	case STORE_EVENT_FLAGS_CHANGED:
		/* flags are read from the store on every getxattr; the kernel caches none */
		break;
	case STORE_EVENT_FOLDER_RESET:
		if (dir != NULL)
			folder_reset(fs, dir, &inval);
		break;
	case STORE_EVENT_FOLDER_ADDED:
		if (fs->tree_root != NULL)
			folder_added(fs, ev->folder, &inval);
		break;
	case STORE_EVENT_FOLDER_REMOVED:
		if (dir != NULL)
			folder_removed(fs, dir, &inval);
		break;
	case STORE_EVENT_FOLDER_RENAMED:
		/* the old directory goes, the new name comes (issue 12 re-keys in place) */
		if (dir != NULL)
			folder_removed(fs, dir, &inval);
		if (fs->tree_root != NULL)
			folder_added(fs, ev->folder, &inval);
		break;
	}
	g_mutex_unlock(&fs->lock);
	if (ev->kind == STORE_EVENT_MESSAGE_GONE || ev->kind == STORE_EVENT_FOLDER_RESET ||
	    ev->kind == STORE_EVENT_FOLDER_REMOVED)
		fs_memory_freed(fs, MAX(inval.items->len, 1));
	fs_inval_flush(&inval, fs->notify);
}
