/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rename.c: mv and ln of messages between folders. Decides what the tree allows (the
 * errnos of the checks below), calls the store (fs/store/move.c does the IMAP and the
 * journal), re-points the moved file's node so the kernel's inode follows the message, and
 * collects the kernel invalidations the handler queues after its reply. No FUSE reply and
 * no notify call here; no lock held across the store call.
 *
 * Decisions (README "Changing mail", man page):
 *   - a message renamed within its own folder (its name is a view of date, subject and
 *     UID), or moved onto an existing name in the target, or RENAME_EXCHANGE: EPERM;
 *   - a directory renamed: EPERM for now (folders are issue 12), nothing sent;
 *   - a message moved or linked into a directory that cannot hold messages (a namespace
 *     root without a mailbox, a \Noselect folder): EPERM, nothing sent;
 *   - ln within the same folder: EPERM.
 * The target name given is not kept: the file shows under its canonical name in the target.
 * The kernel's entry for the given name is invalidated a short while (RENAME_GRACE) after
 * the reply, so that the next lookup answers ENOENT for it: not at once, because tools stat
 * what they just created (coreutils mv with several sources lstat()s every target) and
 * must not see a rename that succeeded fail. One thread of this file runs those delayed
 * invalidations (queued in order, so their deadlines are in order).
 */
#define G_LOG_DOMAIN "imapfs"

#include "config.h"

#include <errno.h>
#include <linux/fs.h>
#include <string.h>

#include "fs.h"

#define RENAME_GRACE (1 * G_USEC_PER_SEC)

/* The delayed invalidations of given names: oldest first (all wait the same grace), so
 * the thread sleeps until the head is due and a push wakes it only when the queue was
 * empty (a burst of renames costs no wake-up each). */
struct _FsRenamer {
	GThread *thread;
	GMutex lock;
	GCond cond;
	GQueue queue; /* Delayed*; protected by lock */
	gboolean stop; /* protected by lock */
	FsNotify *notify;
};

typedef struct {
	gint64 due; /* monotonic us */
	fuse_ino_t parent;
	char *name;
} Delayed;

static gpointer
renamer_run(gpointer data)
{
	FsRenamer *r = data;

	g_mutex_lock(&r->lock);
	while (!r->stop) {
		Delayed *d = g_queue_peek_head(&r->queue);

		if (d == NULL) {
			g_cond_wait(&r->cond, &r->lock);
			continue;
		}
		if (d->due > g_get_monotonic_time()) {
			g_cond_wait_until(&r->cond, &r->lock, d->due);
			continue;
		}
		g_queue_pop_head(&r->queue);
		g_mutex_unlock(&r->lock);
		fs_notify_inval_entry(r->notify, d->parent, d->name);
		g_free(d->name);
		g_free(d);
		g_mutex_lock(&r->lock);
	}
	g_mutex_unlock(&r->lock);
	return NULL;
}

/* Under fs->lock. */
static void
inval_later_locked(Fs *fs, fuse_ino_t parent, const char *name)
{
	Delayed *d = g_new0(Delayed, 1);
	FsRenamer *r;

	if (fs->renamer == NULL) {
		r = fs->renamer = g_new0(FsRenamer, 1);
		g_mutex_init(&r->lock);
		g_cond_init(&r->cond);
		g_queue_init(&r->queue);
		r->notify = fs->notify;
		r->thread = g_thread_new("imapfs-rename", renamer_run, r);
	}
	r = fs->renamer;
	d->due = g_get_monotonic_time() + RENAME_GRACE;
	d->parent = parent;
	d->name = g_strdup(name);
	g_mutex_lock(&r->lock);
	g_queue_push_tail(&r->queue, d);
	if (r->queue.length == 1)
		g_cond_signal(&r->cond);
	g_mutex_unlock(&r->lock);
}

void
fs_rename_stop(Fs *fs)
{
	FsRenamer *r;
	Delayed *d;

	g_mutex_lock(&fs->lock);
	r = g_steal_pointer(&fs->renamer);
	g_mutex_unlock(&fs->lock);
	if (r == NULL)
		return;
	g_mutex_lock(&r->lock);
	r->stop = TRUE;
	g_cond_signal(&r->cond);
	g_mutex_unlock(&r->lock);
	g_thread_join(r->thread);
	while ((d = g_queue_pop_head(&r->queue)) != NULL) {
		g_free(d->name);
		g_free(d);
	}
	g_mutex_clear(&r->lock);
	g_cond_clear(&r->cond);
	g_free(r);
}

/* Under fs->lock: the message named @name in directory @dir (a ref), or NULL. */
static StoreMessage *
msg_by_name_locked(Fs *fs, FsNode *dir, const char *name)
{
	guint32 uid;

	if (dir->index == NULL || (uid = fs_dir_index_find(dir->index, name)) == 0)
		return NULL;
	return store_folder_get_message(fs->store, dir->folder, uid);
}

/* Under fs->lock: 0 when @dest can receive a message from @src's folder as @newname. */
static int
check_target_locked(Fs *fs, FsNode *dest, StoreFolder *src_folder, const char *newname)
{
	g_autoptr(StoreMessage) there = NULL;

	if (dest->kind != FS_NODE_DIR)
		return ENOTDIR;
	if (dest->folder == NULL || !store_folder_is_selectable(dest->folder))
		return EPERM; /* a namespace root or a \Noselect folder holds no messages */
	if (dest->folder == src_folder ||
	    strcmp(store_folder_get_name(dest->folder), store_folder_get_name(src_folder)) == 0)
		return EPERM; /* within its own folder: the name is a view, nothing to change */
	if (newname != NULL && g_hash_table_lookup(dest->subdirs, newname) != NULL)
		return EISDIR;
	there = newname != NULL ? msg_by_name_locked(fs, dest, newname) : NULL;
	if (there != NULL)
		return EPERM; /* never replaces a message */
	return 0;
}

/* Under fs->lock, after the store call: the kernel's dentry @dest/@given points at the
 * file; unless that is the file's canonical name, it is invalidated after RENAME_GRACE (the
 * next lookup then finds the canonical name, the given one answers ENOENT). */
static void
inval_given_name(Fs *fs, FsNode *dest, StoreMessage *now, const char *given, FsInval *after)
{
	g_autofree char *canonical = now != NULL ? fs_msg_name(fs, now) : NULL;

	if (canonical == NULL || strcmp(canonical, given) != 0)
		inval_later_locked(fs, dest->ino, given);
}

int
fs_rename_sync(Fs *fs, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags, GCancellable *cancel, FsInval *after)
{
	g_autoptr(StoreMessage) msg = NULL;
	g_autoptr(StoreMessage) moved = NULL;
	g_autoptr(StoreFolder) dest_folder = NULL;
	g_autoptr(GError) error = NULL;
	FsNode *src, *dest, *n = NULL;
	gboolean ok;
	int err = 0;

	if (flags & RENAME_EXCHANGE)
		return EPERM;
	if (flags & ~(unsigned int)RENAME_NOREPLACE)
		return EINVAL;
	g_mutex_lock(&fs->lock);
	src = fs_node_table_get(fs->nodes, parent);
	dest = fs_node_table_get(fs->nodes, newparent);
	if (src == NULL || dest == NULL) {
		err = ENOENT;
	} else if (src->kind != FS_NODE_DIR || dest->kind != FS_NODE_DIR) {
		err = ENOTDIR;
	} else if (g_hash_table_lookup(src->subdirs, name) != NULL) {
		err = EPERM; /* a folder: issue 12 */
	} else if (src->folder == NULL || (msg = msg_by_name_locked(fs, src, name)) == NULL) {
		err = ENOENT;
	} else {
		err = check_target_locked(fs, dest, src->folder, newname);
	}
	if (err == 0) {
		/* the node the kernel holds for the file follows the message */
		n = fs_node_msg_find(fs->nodes, src, store_message_get_info(msg)->uid);
		if (n != NULL)
			fs_node_hold(n);
		fs_node_hold(dest);
		dest_folder = store_folder_ref(dest->folder);
	}
	g_mutex_unlock(&fs->lock);
	if (err != 0)
		return err;

	fs_own_change_begin(fs, parent, name);
	ok = store_message_move_sync(fs->store, msg, dest_folder, &moved, cancel, &error);
	fs_own_change_end(fs, parent, name);
	if (!ok) {
		g_message("mv %s -> %s: %s", name, newname, error->message);
		err = fs_errno_from_error(error);
	}
	g_mutex_lock(&fs->lock);
	if (err == 0 && n != NULL && moved != NULL && dest->folder == dest_folder)
		fs_node_msg_repoint(fs->nodes, n, dest, moved);
	if (err == 0)
		inval_given_name(fs, dest, moved, newname, after);
	if (n != NULL)
		fs_node_unhold(fs->nodes, n);
	fs_node_unhold(fs->nodes, dest);
	g_mutex_unlock(&fs->lock);
	return err;
}

FsNode *
fs_link_sync(Fs *fs, fuse_ino_t ino, fuse_ino_t newparent, const char *newname,
	     GCancellable *cancel, FsInval *after, int *err)
{
	g_autoptr(StoreMessage) msg = NULL;
	g_autoptr(StoreMessage) copy = NULL;
	g_autoptr(StoreFolder) dest_folder = NULL;
	g_autoptr(GError) error = NULL;
	FsNode *n, *dest, *out = NULL;

	*err = 0;
	g_mutex_lock(&fs->lock);
	n = fs_node_table_get(fs->nodes, ino);
	dest = fs_node_table_get(fs->nodes, newparent);
	if (n == NULL || dest == NULL)
		*err = ENOENT;
	else if (n->kind != FS_NODE_MSG)
		*err = EPERM;
	else if (n->parent == NULL || n->parent->folder == NULL)
		*err = ENOENT;
	else
		*err = check_target_locked(fs, dest, n->parent->folder, newname);
	if (*err == 0) {
		msg = store_message_ref(n->msg);
		fs_node_hold(n);
		fs_node_hold(dest);
		dest_folder = store_folder_ref(dest->folder);
	}
	g_mutex_unlock(&fs->lock);
	if (*err != 0)
		return NULL;

	if (!store_message_copy_sync(fs->store, msg, dest_folder, &copy, cancel, &error)) {
		g_message("ln %s: %s", newname, error->message);
		*err = fs_errno_from_error(error);
	}
	g_mutex_lock(&fs->lock);
	if (*err == 0) {
		/* the new entry: the copy's own node, or (copy not identified yet) the
		 * source's, until the name is invalidated */
		out = copy != NULL && dest->folder == dest_folder
			      ? fs_node_msg_get(fs->nodes, dest, copy,
						fs_msg_ino_locked(fs, dest, copy))
			      : n;
		fs_node_ref_lookup(out);
		inval_given_name(fs, dest, out == n ? NULL : copy, newname, after);
	}
	fs_node_unhold(fs->nodes, n);
	fs_node_unhold(fs->nodes, dest);
	g_mutex_unlock(&fs->lock);
	return out;
}
