/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ops.c: the fuse_lowlevel_ops table. Every handler is thin: decode the request, call
 * inode.c / xattr.c / the store, map a GError through errmap.c, and send exactly one
 * fuse_reply_*(). Handlers run on fuse_session_loop_mt() workers and may block in store
 * *_sync() calls (bounded by the IMAP timeout); they hold no lock while replying.
 *
 * Messages are immutable: writing, truncating, chmod, chown, utimens of a message is EPERM.
 * New files (create, write, flush, copy_file_range into them) are newfile.c's; their
 * handlers ask it first. With -o ro every write path answers EROFS (the kernel already
 * refuses most of them on a read-only mount).
 */
#define G_LOG_DOMAIN "imapfs"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/statvfs.h>

#include "fs.h"

#define NEG_TIMEOUT_PROBE 10.0			/* names that can never be messages */
#define NEG_TIMEOUT_MSG	  1.0

static Fs *
fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* FUSE_INTERRUPT cancels the store call the request is blocked in. The callback runs
 * under the request's lock in libfuse, and clearing it takes that lock, so after
 * req_end() it can no longer fire. req_end() comes before the reply (which frees req). */
static void
interrupted(fuse_req_t req, void *data)
{
	g_cancellable_cancel(data);
}

static GCancellable *
req_begin(fuse_req_t req)
{
	GCancellable *c = g_cancellable_new();

	fuse_req_interrupt_func(req, interrupted, c);
	return c;
}

static void
req_end(fuse_req_t req, GCancellable *c)
{
	fuse_req_interrupt_func(req, NULL, NULL);
	g_object_unref(c);
}

static void
op_init(void *userdata, struct fuse_conn_info *conn)
{
	if (conn->capable & FUSE_CAP_READDIRPLUS) {
		/* always readdirplus: `ls -l` then needs no lookups at all */
		conn->want |= FUSE_CAP_READDIRPLUS;
		conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	}
	/* The data of a message never changes (invalidated explicitly when its size was
	 * wrong), so the kernel must not drop the page cache on mtime checks. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

static void
fill_entry(Fs *fs, FsNode *n, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = n->ino;
	e->generation = 1;
	fs_node_stat(fs, n, &e->attr);
	e->attr_timeout = fs_node_attr_timeout(n);
	e->entry_timeout = fs_node_entry_timeout(n);
}

static void
op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	Fs *fs = fs_of(req);
	FsNode *dir = fs_node_get(fs, parent);
	g_autoptr(GError) error = NULL;
	struct fuse_entry_param e;
	GCancellable *cancel;
	FsNode *n;

	if (dir == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (dir->kind != FS_NODE_DIR) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (fs_newfile_lookup(fs, dir, name, &e)) {
		fuse_reply_entry(req, &e);
		return;
	}
	cancel = req_begin(req);
	n = fs_dir_lookup_sync(fs, dir, name, cancel, &error);
	req_end(req, cancel);
	if (error != NULL) {
		fuse_reply_err(req, fs_errno_from_error(error));
		return;
	}
	if (n == NULL) {
		/* a negative entry: the kernel answers repeated probes by itself */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = naming_could_be_message(fs->opts->names, name)
					  ? NEG_TIMEOUT_MSG
					  : NEG_TIMEOUT_PROBE;
		fuse_reply_entry(req, &e);
		return;
	}
	fill_entry(fs, n, &e);
	fuse_reply_entry(req, &e);
}

/* Under fs->lock. TRUE when the node was freed. */
static gboolean
forget_one(Fs *fs, fuse_ino_t ino, uint64_t nlookup)
{
	FsNode *n = fs_node_table_get(fs->nodes, ino);

	return n != NULL && fs_node_forget(fs->nodes, n, nlookup);
}

static void
op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	Fs *fs = fs_of(req);

	if (fs_newfile_forget(fs, ino, nlookup)) {
		fuse_reply_none(req);
		return;
	}
	g_mutex_lock(&fs->lock);
	forget_one(fs, ino, nlookup);
	g_mutex_unlock(&fs->lock);
	fuse_reply_none(req);
}

static void
op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	Fs *fs = fs_of(req);
	guint freed = 0;

	for (size_t i = 0; i < count; i++)
		if (fs_newfile_forget(fs, forgets[i].ino, forgets[i].nlookup))
			forgets[i].nlookup = 0;
	g_mutex_lock(&fs->lock);
	for (size_t i = 0; i < count; i++)
		freed += forget_one(fs, forgets[i].ino, forgets[i].nlookup);
	g_mutex_unlock(&fs->lock);
	fuse_reply_none(req);
	fs_memory_freed(fs, freed);
}

static void
op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Fs *fs = fs_of(req);
	FsNode *n = fs_node_get(fs, ino);
	FsNewFile *nf;
	struct stat st;

	if (n == NULL && (nf = fs_newfile_get(fs, ino)) != NULL) {
		fs_newfile_stat(fs, nf, &st);
		fs_newfile_unref(fs, nf);
		fuse_reply_attr(req, &st, 0);
		return;
	}
	if (n == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fs_node_stat(fs, n, &st);
	fuse_reply_attr(req, &st, fs_node_attr_timeout(n));
}

static gboolean
read_only(Fs *fs)
{
	return fs->opts->read_only;
}

static void
op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	Fs *fs = fs_of(req);
	FsNewFile *nf;
	GCancellable *cancel;
	struct stat st;
	int err;

	if (read_only(fs)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	nf = fs_newfile_get(fs, ino);
	if (nf == NULL) {
		/* messages are immutable, folders have no mode, owner or times to change */
		fuse_reply_err(req, fs_node_get(fs, ino) ? EPERM : ENOENT);
		return;
	}
	cancel = req_begin(req);
	err = fs_newfile_setattr(fs, nf, attr, to_set, cancel);
	req_end(req, cancel);
	if (err == 0)
		fs_newfile_stat(fs, nf, &st);
	fs_newfile_unref(fs, nf);
	if (err != 0)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, 0);
}

static void
op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Fs *fs = fs_of(req);
	FsNode *n = fs_node_get(fs, ino);
	g_autoptr(GError) error = NULL;
	GCancellable *cancel;
	gboolean ok;

	if (n == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (n->kind != FS_NODE_DIR) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	cancel = req_begin(req);
	if (!fs_tree_refresh_sync(fs, (gint64)fs->opts->folders_max_age * G_USEC_PER_SEC, cancel,
				  &error)) {
		/* the folder's own listing below reports a dead server */
		g_debug("LIST failed: %s", error->message);
		g_clear_error(&error);
	}
	ok = fs_dir_refresh_sync(fs, n, (gint64)fs->opts->dir_max_age * G_USEC_PER_SEC, cancel, &error);
	req_end(req, cancel);
	if (!ok) {
		int err = fs_errno_from_error(error);

		if (err != EACCES && err != ENOENT) {
			fuse_reply_err(req, err);
			return;
		}
		/* a folder we may not read: show its subfolders only */
		g_message("cannot list %s: %s", store_folder_get_name(n->folder), error->message);
	}
	fi->fh = (uint64_t)(uintptr_t)fs_dir_snapshot_new(fs, n);
	fuse_reply_open(req, fi);
}

/* One readdirplus entry: the node (held while we fill it) and its attributes. A lookup is
 * counted only when the entry fits in the reply ("." and ".." are never counted). */
static size_t
add_plus(Fs *fs, fuse_req_t req, FsDirSnapshot *snap, FsDirEntry *d, char *buf, size_t room,
	 off_t next, gboolean dot)
{
	g_autofree char *name = NULL;
	struct fuse_entry_param e;
	FsNode *n;
	size_t len;

	g_mutex_lock(&fs->lock);
	n = d->node ? d->node
		    : fs_node_msg_get(fs->nodes, snap->dir, d->msg,
				      fs_msg_ino_locked(fs, snap->dir, d->msg));
	fs_node_hold(n);
	g_mutex_unlock(&fs->lock);
	fill_entry(fs, n, &e);
	name = fs_dir_entry_name(fs, snap, d);
	len = fuse_add_direntry_plus(req, buf, room, name, &e, next);
	g_mutex_lock(&fs->lock);
	if (len <= room && !dot)
		fs_node_ref_lookup(n);
	fs_node_unhold(fs->nodes, n);
	g_mutex_unlock(&fs->lock);
	return len;
}

static void
do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi,
	   gboolean plus)
{
	Fs *fs = fs_of(req);
	FsDirSnapshot *snap = (FsDirSnapshot *)(uintptr_t)fi->fh;
	g_autofree char *buf = g_malloc(size);
	size_t used = 0;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	for (guint64 i = off; i < snap->entries->len; i++) {
		FsDirEntry *d = &g_array_index(snap->entries, FsDirEntry, i);
		size_t len;

		if (d->node == NULL && d->msg == NULL) {
			/* a staged new file: skipped once it is gone (sent or unlinked) */
			struct fuse_entry_param e;

			if (!fs_newfile_lookup(fs, snap->dir, d->name, &e))
				continue;
			if (plus) {
				len = fuse_add_direntry_plus(req, buf + used, size - used, d->name,
							     &e, i + 1);
				if (len > size - used)
					fs_newfile_forget(fs, e.ino, 1);
			} else {
				len = fuse_add_direntry(req, buf + used, size - used, d->name,
							&e.attr, i + 1);
				fs_newfile_forget(fs, e.ino, 1);
			}
		} else if (plus) {
			len = add_plus(fs, req, snap, d, buf + used, size - used, i + 1, i < 2);
		} else {
			struct stat st = {
				.st_mode = d->msg ? S_IFREG : S_IFDIR,
			};

			g_mutex_lock(&fs->lock);
			st.st_ino = d->node ? d->node->ino : fs_msg_ino_locked(fs, snap->dir, d->msg);
			g_mutex_unlock(&fs->lock);
			g_autofree char *name = fs_dir_entry_name(fs, snap, d);

			len = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
		}
		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
}

static void
op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, FALSE);
}

static void
op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, TRUE);
}

static void
op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_dir_snapshot_free(fs_of(req), (FsDirSnapshot *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void
op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Fs *fs = fs_of(req);
	FsNode *n = fs_node_get(fs, ino);
	g_autoptr(GError) error = NULL;
	gboolean size_changed = FALSE, ok;
	StoreFolder *folder;
	GCancellable *cancel;
	StoreBody *body;
	FsFile *file;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		if (read_only(fs)) {
			fuse_reply_err(req, EROFS);
			return;
		}
	}
	if (n == NULL) {
		FsNewFile *nf = fs_newfile_get(fs, ino);
		int err;

		if (nf == NULL) {
			fuse_reply_err(req, ENOENT);
			return;
		}
		cancel = req_begin(req);
		err = fs_newfile_open(fs, nf, fi->flags, cancel);
		req_end(req, cancel);
		if (err != 0) {
			fs_newfile_unref(fs, nf);
			fuse_reply_err(req, err);
			return;
		}
		file = g_new0(FsFile, 1);
		file->nf = nf;
		file->active = (fi->flags & O_ACCMODE) != O_RDONLY;
		fi->fh = (uint64_t)(uintptr_t)file;
		fi->direct_io = 1; /* its size changes under the page cache */
		fuse_reply_open(req, fi);
		return;
	}
	if (n->kind != FS_NODE_MSG) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EPERM); /* messages are immutable */
		return;
	}
	body = store_body_open(fs->store, n->msg);
	g_mutex_lock(&fs->lock);
	folder = n->parent && n->parent->folder ? store_folder_ref(n->parent->folder) : NULL;
	g_mutex_unlock(&fs->lock);
	cancel = req_begin(req);
	ok = store_body_verify_size_sync(fs->store, body, &size_changed, cancel, &error);
	req_end(req, cancel);
	if (!ok) {
		store_body_unref(body);
		g_clear_pointer(&folder, store_folder_unref);
		fuse_reply_err(req, fs_errno_from_error(error));
		return;
	}
	file = g_new0(FsFile, 1);
	file->body = body;
	file->folder = folder;
	if (folder != NULL)
		store_folder_open_handle(fs->store, folder);
	fi->fh = (uint64_t)(uintptr_t)file;
	fi->noflush = 1;
	if (size_changed) {
		/* The kernel still has RFC822.SIZE as i_size: this handle bypasses the page
		 * cache (so its reads are not cut at the stale size), and the inode is
		 * invalidated so that the next stat sees the true size. */
		fi->direct_io = 1;
		fi->keep_cache = 0;
	} else {
		fi->keep_cache = 1; /* a message's bytes never change */
	}
	fuse_reply_open(req, fi);
	if (size_changed)
		fs_notify_inval_inode(fs->notify, ino);
}

static void
op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	Fs *fs = fs_of(req);
	FsFile *file = (FsFile *)(uintptr_t)fi->fh;
	StoreBody *body = file->body;
	g_autoptr(GError) error = NULL;
	g_autofree char *buf = g_malloc(size ? size : 1);
	gboolean size_changed = FALSE;
	GCancellable *cancel = req_begin(req);
	gssize n;

	if (file->nf != NULL) {
		n = fs_newfile_read(fs, file->nf, buf, size, off, cancel);
		req_end(req, cancel);
		if (n < 0)
			fuse_reply_err(req, (int)-n);
		else
			fuse_reply_buf(req, buf, n);
		return;
	}
	n = store_body_read_sync(fs->store, body, off, size, buf, &size_changed, cancel, &error);
	req_end(req, cancel);
	if (n < 0)
		fuse_reply_err(req, fs_errno_from_error(error));
	else
		fuse_reply_buf(req, buf, n);
	if (size_changed)
		fs_notify_inval_inode(fs->notify, ino);
}

static void
op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	FsFile *file = (FsFile *)(uintptr_t)fi->fh;

	if (file->nf != NULL) {
		fs_newfile_release(fs_of(req), file->nf, file->active);
		fs_newfile_unref(fs_of(req), file->nf);
		g_free(file);
		fuse_reply_err(req, 0);
		return;
	}
	store_body_unref(file->body);
	if (file->folder != NULL) {
		store_folder_close_handle(fs_of(req)->store, file->folder);
		store_folder_unref(file->folder);
	}
	g_free(file);
	fuse_reply_err(req, 0);
}

/* close(2): the last writing handle of a new file sends it, and close reports the error. */
static void
op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	FsFile *file = (FsFile *)(uintptr_t)fi->fh;
	GCancellable *cancel;
	int err;

	if (file->nf == NULL) {
		fuse_reply_err(req, 0);
		return;
	}
	cancel = req_begin(req);
	err = fs_newfile_flush(fs_of(req), file->nf, &file->active, cancel);
	req_end(req, cancel);
	fuse_reply_err(req, err);
}

static void
op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	/* a staged file is sent at close; before that it is private, after it immutable */
	fuse_reply_err(req, 0);
}

static void
op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	Fs *fs = fs_of(req);
	struct statvfs sv = {
		.f_bsize = 4096,
		.f_frsize = 1024,
		.f_namemax = 255,
		.f_files = 0,
		.f_ffree = 0,
	};
	ImapQuota q = {0};
	g_autoptr(GError) error = NULL;

	GCancellable *cancel = req_begin(req);
	gboolean ok = store_quota_sync(fs->store, &q, cancel, &error);

	req_end(req, cancel);
	if (ok && q.storage_limit_kb != G_MAXUINT64) {
		sv.f_blocks = q.storage_limit_kb;
		sv.f_bfree = sv.f_bavail = q.storage_limit_kb > q.storage_used_kb
						   ? q.storage_limit_kb - q.storage_used_kb
						   : 0;
	}
	if (q.messages_limit != 0 && q.messages_limit != G_MAXUINT64) {
		sv.f_files = q.messages_limit;
		sv.f_ffree = sv.f_favail =
			q.messages_limit > q.messages_used ? q.messages_limit - q.messages_used : 0;
	}
	g_free(q.root);
	fuse_reply_statfs(req, &sv);
}

static void
reply_value(fuse_req_t req, size_t size, int err, GBytes *value)
{
	gsize len = 0;
	const void *data = value ? g_bytes_get_data(value, &len) : NULL;

	if (err != 0)
		fuse_reply_err(req, err);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, data, len);
}

static void
op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	Fs *fs = fs_of(req);
	FsNode *n = fs_node_get(fs, ino);
	g_autoptr(GBytes) value = NULL;
	GCancellable *cancel;
	int err;

	if (n == NULL) {
		/* a staged new file has no xattrs yet */
		fuse_reply_err(req, ino >= FUSE_ROOT_ID && fs_newfile_forget(fs, ino, 0) ? ENODATA
											  : ENOENT);
		return;
	}
	cancel = req_begin(req);
	err = fs_xattr_get(fs, n, name, &value, cancel);
	req_end(req, cancel);
	reply_value(req, size, err, value);
}

static void
op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	Fs *fs = fs_of(req);
	FsNode *n = fs_node_get(fs, ino);
	g_autoptr(GBytes) value = NULL;

	if (n == NULL && fs_newfile_forget(fs, ino, 0)) {
		reply_value(req, size, 0, NULL); /* a staged new file: none */
		return;
	}
	if (n == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	value = fs_xattr_list(fs, n);
	reply_value(req, size, 0, value);
}

/* ---- the write side: not in this issue ------------------------------------------- */

static void
op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
	    int flags)
{
	Fs *fs = fs_of(req);
	FsNewFile *nf = fs_newfile_get(fs, ino);
	FsNode *n;
	GCancellable *cancel;
	int err;

	if (nf != NULL) {
		/* a staged new file keeps no xattrs (cp -p then sets the mode instead of an ACL) */
		fs_newfile_unref(fs, nf);
		fuse_reply_err(req, read_only(fs) ? EROFS : ENOTSUP);
		return;
	}
	if (read_only(fs)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	n = fs_node_get(fs, ino);
	if (n == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	cancel = req_begin(req);
	err = fs_xattr_set(fs, n, name, value, size, flags, cancel);
	req_end(req, cancel);
	fuse_reply_err(req, err);
}

static void
op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	Fs *fs = fs_of(req);
	FsNode *n = fs_node_get(fs, ino);
	GCancellable *cancel;
	int err;

	if (read_only(fs)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (n == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	cancel = req_begin(req);
	err = fs_xattr_remove(fs, n, name, cancel);
	req_end(req, cancel);
	fuse_reply_err(req, err);
}

static void
op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	fuse_reply_err(req, EROFS);
}

/* rm of a message: \Deleted on the server, then the name is gone (store.h); the expunge
 * follows per -o expunge=. The store's events take the name out of the tree. */
static void
op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	Fs *fs = fs_of(req);
	FsNode *dir = fs_node_get(fs, parent);
	g_autoptr(GError) error = NULL;
	g_autoptr(StoreFolder) folder = NULL;
	g_autoptr(StoreMessage) msg = NULL;
	GCancellable *cancel;
	gboolean is_dir, ok;
	guint32 uid = 0;
	int err;

	if (read_only(fs)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (dir == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	/* a staged new file goes first (newfile.c) */
	if (fs_newfile_unlink(fs, dir, name, &err)) {
		fuse_reply_err(req, err);
		return;
	}
	if (dir->kind != FS_NODE_DIR) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	g_mutex_lock(&fs->lock);
	is_dir = g_hash_table_contains(dir->subdirs, name);
	if (dir->folder != NULL && dir->index != NULL) {
		folder = store_folder_ref(dir->folder);
		uid = fs_dir_index_find(dir->index, name);
	}
	g_mutex_unlock(&fs->lock);
	if (is_dir) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (uid != 0)
		msg = store_folder_get_message(fs->store, folder, uid);
	if (msg == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	cancel = req_begin(req);
	fs_own_change_begin(fs, parent, name);
	ok = store_message_delete_sync(fs->store, folder, msg, cancel, &error);
	fs_own_change_end(fs, parent, name);
	req_end(req, cancel);
	if (!ok)
		g_debug("rm %s: %s", name, error->message);
	fuse_reply_err(req, ok ? 0 : fs_errno_from_error(error));
}

/* Folders are issue 12: nothing is sent. */
static void
op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EPERM);
}

/* mv of a message to another folder (rename.c); directories are issue 12. */
static void
op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	  const char *newname, unsigned int flags)
{
	Fs *fs = fs_of(req);
	FsNode *dir = fs_node_get(fs, parent), *newdir = fs_node_get(fs, newparent);
	GCancellable *cancel;
	FsInval after;
	int err;

	if (read_only(fs)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	/* a staged new file is renamed (or sent) by newfile.c */
	if (dir != NULL && newdir != NULL &&
	    fs_newfile_rename(fs, dir, name, newdir, newname, flags, &err)) {
		fuse_reply_err(req, err);
		return;
	}
	cancel = req_begin(req);
	fs_inval_init(&after);
	err = fs_rename_sync(fs, parent, name, newparent, newname, flags, cancel, &after);
	req_end(req, cancel);
	fuse_reply_err(req, err);
	fs_inval_flush(&after, fs->notify);
}

/* A new file in a folder: staged until its last writing handle is flushed (newfile.c). */
static int
create_in(Fs *fs, fuse_ino_t parent, const char *name, mode_t mode, FsNewFile **nf,
	  struct fuse_entry_param *e)
{
	FsNode *dir;

	if (read_only(fs))
		return EROFS;
	if (!S_ISREG(mode))
		return EPERM; /* a folder holds messages only */
	dir = fs_node_get(fs, parent);
	if (dir == NULL)
		return ENOENT;
	return fs_newfile_create(fs, dir, name, nf, e);
}

static void
op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	  struct fuse_file_info *fi)
{
	Fs *fs = fs_of(req);
	struct fuse_entry_param e;
	FsNewFile *nf = NULL;
	FsFile *file;
	int err = create_in(fs, parent, name, mode | S_IFREG, &nf, &e);

	if (err != 0) {
		fuse_reply_err(req, err);
		return;
	}
	file = g_new0(FsFile, 1);
	file->nf = nf;
	file->active = TRUE;
	fi->fh = (uint64_t)(uintptr_t)file;
	fi->direct_io = 1;
	fuse_reply_create(req, &e, fi);
}

static void
op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	Fs *fs = fs_of(req);
	struct fuse_entry_param e;
	FsNewFile *nf = NULL;
	int err = create_in(fs, parent, name, mode, &nf, &e);

	if (err != 0) {
		fuse_reply_err(req, err);
		return;
	}
	/* an empty staged file with no handle: the next open, write and close sends it */
	fs_newfile_release(fs, nf, TRUE);
	fs_newfile_unref(fs, nf);
	fuse_reply_entry(req, &e);
}

static void
op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

/* ln of a message into another folder: UID COPY (rename.c). */
static void
op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	Fs *fs = fs_of(req);
	GCancellable *cancel;
	struct fuse_entry_param e;
	FsInval after;
	FsNode *n;
	int err;

	if (read_only(fs)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	cancel = req_begin(req);
	fs_inval_init(&after);
	n = fs_link_sync(fs, ino, newparent, newname, cancel, &after, &err);
	req_end(req, cancel);
	if (n == NULL) {
		fuse_reply_err(req, err);
	} else {
		fill_entry(fs, n, &e);
		fuse_reply_entry(req, &e);
	}
	fs_inval_flush(&after, fs->notify);
}

static void
op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	 struct fuse_file_info *fi)
{
	Fs *fs = fs_of(req);
	FsFile *file = (FsFile *)(uintptr_t)fi->fh;
	gboolean reactivate;
	GCancellable *cancel;
	int n;

	if (read_only(fs)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (file->nf == NULL) {
		fuse_reply_err(req, EPERM); /* messages are immutable */
		return;
	}
	reactivate = !file->active;
	cancel = req_begin(req);
	n = fs_newfile_write(fs, file->nf, buf, size, off, &reactivate, cancel);
	req_end(req, cancel);
	if (n < 0) {
		fuse_reply_err(req, -n);
		return;
	}
	file->active = TRUE;
	fuse_reply_write(req, n);
}

/* cp within the mount: a whole message copied into a new, empty file becomes a UID COPY
 * at its close; anything else is EXDEV, and cp falls back to read and write. */
static void
op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in,
		   fuse_ino_t ino_out, off_t off_out, struct fuse_file_info *fi_out, size_t len,
		   int flags)
{
	Fs *fs = fs_of(req);
	FsFile *in = (FsFile *)(uintptr_t)fi_in->fh;
	FsFile *out = (FsFile *)(uintptr_t)fi_out->fh;
	g_autoptr(StoreMessage) msg = NULL;
	FsNode *n;
	size_t copied = 0;
	int err;

	if (read_only(fs)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (out->nf == NULL) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (in->nf != NULL || in->body == NULL || flags != 0) {
		fuse_reply_err(req, EXDEV);
		return;
	}
	n = fs_node_get(fs, ino_in);
	if (n == NULL || n->kind != FS_NODE_MSG) {
		fuse_reply_err(req, EXDEV);
		return;
	}
	g_mutex_lock(&fs->lock);
	msg = store_message_ref(n->msg);
	g_mutex_unlock(&fs->lock);
	err = fs_newfile_copy_from(fs, out->nf, msg, off_in, off_out, len, &copied);
	if (err != 0) {
		fuse_reply_err(req, err);
		return;
	}
	out->active = TRUE;
	fuse_reply_write(req, copied);
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.flush = op_flush,
	.statfs = op_statfs,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.setxattr = op_setxattr,
	.removexattr = op_removexattr,
	.mkdir = op_mkdir,
	.rmdir = op_rmdir,
	.unlink = op_unlink,
	.rename = op_rename,
	.create = op_create,
	.mknod = op_mknod,
	.symlink = op_symlink,
	.link = op_link,
	.write = op_write,
	.fsync = op_fsync,
	.copy_file_range = op_copy_file_range,
};
