/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * newfile.c: files created in a folder, before and while they become messages. A created
 * file is "staged": its bytes go to a private file of the store (StoreStaged), it has an
 * inode of its own (not in the node table: a range of numbers no message takes) and is
 * visible under the name it was created with. When the last handle of the file is
 * flushed (close(2), so that cp and cat > see the error) it is APPENDed once; from then
 * on its created name answers ENOENT and the message shows under its canonical name.
 *
 * Names that are not appended at close: temporary names of tools that write a file and
 * rename it (a leading '.' or '#', a trailing '~': rsync's .name.XXXXXX, editors' swap and
 * backup files) and empty files (touch). They stay staged, visible, until renamed to a
 * plain name in a folder (then they are appended by the rename, which returns the error),
 * unlinked, or forgotten by the kernel; the mount never sends them by itself.
 *
 * A staged file that cp filled with copy_file_range from a message of the mount is a
 * "server copy": its flush is a UID COPY of that message, no download and no upload. Any
 * other access to its bytes first downloads them into the staged file.
 *
 * Locking: fs->lock protects the tables and the FsNewFile fields marked so; nf->lock
 * serializes what changes a file's content or sends it (write, truncate, flush, rename),
 * and is taken before fs->lock, never while a store call waits with fs->lock held.
 */
#define G_LOG_DOMAIN "imapfs"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"

/* Inode numbers of staged files: a range a 64-bit hash lands in with negligible odds,
 * probed past live nodes anyway. */
#define NEWFILE_INO_BASE 0xfff0000000000000ULL
#define ENTRY_TIMEOUT 0.0 /* re-checked on every path walk: the name goes at close */

struct _FsNewFile {
	gint ref;	      /* atomic */
	guint64 ino;	      /* immutable */
	GMutex lock;	      /* content and sending (see the top) */
	/* protected by fs->lock: */
	FsNode *dir;	      /* held */
	char *name;
	gboolean listed;      /* the name shows (in fs->newfiles->by_name) */
	gboolean in_table;    /* in by_ino: the kernel or a handle holds it */
	guint64 nlookup;
	guint handles;	      /* open handles */
	guint active;	      /* handles written or opened since their last flush */
	gint64 mtime, ctime;
	gboolean mtime_set;   /* by utimens (cp -p): the INTERNALDATE */
	/* protected by lock: */
	StoreStaged *staged;  /* NULL once sent or dropped */
	StoreMessage *copy_of; /* a server copy of this message (ref), or NULL */
	guint64 copy_size;
	gboolean sent;
};

struct _FsNewFiles {
	GHashTable *by_ino;  /* guint64* ino -> FsNewFile* (a ref) */
	GHashTable *by_name; /* "dirino/name" -> FsNewFile* (borrowed from by_ino) */
	guint64 next;
};

static FsNewFile *
nf_ref(FsNewFile *nf)
{
	g_atomic_int_inc(&nf->ref);
	return nf;
}

void
fs_newfile_unref(Fs *fs, FsNewFile *nf)
{
	if (nf == NULL || !g_atomic_int_dec_and_test(&nf->ref))
		return;
	store_staged_free(nf->staged);
	g_clear_pointer(&nf->copy_of, store_message_unref);
	g_mutex_lock(&fs->lock);
	fs_node_unhold(fs->nodes, nf->dir);
	g_mutex_unlock(&fs->lock);
	g_mutex_clear(&nf->lock);
	g_free(nf->name);
	g_free(nf);
}

static FsNewFiles *
tables_locked(Fs *fs)
{
	if (fs->newfiles == NULL) {
		fs->newfiles = g_new0(FsNewFiles, 1);
		fs->newfiles->by_ino = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, NULL);
		fs->newfiles->by_name = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	}
	return fs->newfiles;
}

static char *
key(FsNode *dir, const char *name)
{
	return g_strdup_printf("%" G_GUINT64_FORMAT "/%s", dir->ino, name);
}

static void
unlist_locked(Fs *fs, FsNewFile *nf)
{
	g_autofree char *k = NULL;

	if (!nf->listed)
		return;
	k = key(nf->dir, nf->name);
	g_hash_table_remove(tables_locked(fs)->by_name, k);
	nf->listed = FALSE;
}

/* Drops @nf from the inode table once nothing holds it; returns TRUE when the table's
 * ref must be dropped (after the unlock). */
static gboolean
maybe_drop_locked(Fs *fs, FsNewFile *nf)
{
	if (!nf->in_table || nf->nlookup > 0 || nf->handles > 0)
		return FALSE;
	unlist_locked(fs, nf);
	g_hash_table_remove(tables_locked(fs)->by_ino, &nf->ino);
	nf->in_table = FALSE;
	return TRUE;
}

void
fs_newfile_free_all(Fs *fs)
{
	GHashTableIter it;
	gpointer v;

	if (fs->newfiles == NULL)
		return;
	g_hash_table_iter_init(&it, fs->newfiles->by_ino);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		FsNewFile *nf = v;

		store_staged_free(g_steal_pointer(&nf->staged));
		g_clear_pointer(&nf->copy_of, store_message_unref);
		g_mutex_clear(&nf->lock);
		g_free(nf->name);
		g_free(nf);
	}
	g_hash_table_unref(fs->newfiles->by_ino);
	g_hash_table_unref(fs->newfiles->by_name);
	g_clear_pointer(&fs->newfiles, g_free);
}

/* ---- names ------------------------------------------------------------------------- */

gboolean
fs_newfile_is_temp_name(const char *name)
{
	gsize n = strlen(name);

	return n == 0 || name[0] == '.' || name[0] == '#' || name[n - 1] == '~';
}

char **
fs_newfile_maildir_flags(const char *name)
{
	const char *info = strstr(name, ":2,");
	GPtrArray *a = g_ptr_array_new();

	for (const char *p = info ? info + 3 : ""; *p; p++) {
		const char *f = NULL;

		switch (*p) {
		case 'F':
			f = "\\Flagged";
			break;
		case 'R':
			f = "\\Answered";
			break;
		case 'S':
			f = "\\Seen";
			break;
		case 'D':
			f = "\\Draft";
			break;
		default:
			/* T (trashed) is not imported as \Deleted: an import must not create mail
			 * the next expunge of any client destroys; P (passed) and the lower-case
			 * keyword letters have no IMAP meaning without their dovecot-keywords */
			break;
		}
		if (f != NULL && !g_ptr_array_find_with_equal_func(a, f, g_str_equal, NULL))
			g_ptr_array_add(a, g_strdup(f));
	}
	g_ptr_array_add(a, NULL);
	return (char **)g_ptr_array_free(a, FALSE);
}

/* ---- the kernel's view ------------------------------------------------------------- */

static void
stat_locked(Fs *fs, FsNewFile *nf, guint64 size, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = nf->ino;
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = nf->listed ? 1 : 0;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 4096;
	st->st_size = size;
	st->st_blocks = (size + 511) / 512;
	st->st_mtime = st->st_atime = nf->mtime;
	st->st_ctime = nf->ctime;
}

static guint64
size_of(FsNewFile *nf)
{
	/* racy reads are fine for stat: the fd's size is the truth */
	if (nf->copy_of != NULL)
		return nf->copy_size;
	return nf->staged != NULL ? store_staged_get_size(nf->staged) : 0;
}

static void
fill_entry(Fs *fs, FsNewFile *nf, guint64 size, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = nf->ino;
	e->generation = 1;
	stat_locked(fs, nf, size, &e->attr);
	e->attr_timeout = 0; /* its size changes with every write */
	e->entry_timeout = ENTRY_TIMEOUT;
}

gboolean
fs_newfile_lookup(Fs *fs, FsNode *dir, const char *name, struct fuse_entry_param *e)
{
	g_autofree char *k = key(dir, name);
	FsNewFile *nf;
	guint64 size;

	g_mutex_lock(&fs->lock);
	nf = fs->newfiles ? g_hash_table_lookup(fs->newfiles->by_name, k) : NULL;
	if (nf == NULL) {
		g_mutex_unlock(&fs->lock);
		return FALSE;
	}
	nf_ref(nf);
	g_mutex_unlock(&fs->lock);
	size = size_of(nf);
	g_mutex_lock(&fs->lock);
	nf->nlookup++;
	fill_entry(fs, nf, size, e);
	g_mutex_unlock(&fs->lock);
	fs_newfile_unref(fs, nf);
	return TRUE;
}

FsNewFile *
fs_newfile_get(Fs *fs, fuse_ino_t ino)
{
	guint64 k = ino;
	FsNewFile *nf = NULL;

	if (ino < NEWFILE_INO_BASE)
		return NULL;
	g_mutex_lock(&fs->lock);
	if (fs->newfiles != NULL)
		nf = g_hash_table_lookup(fs->newfiles->by_ino, &k);
	if (nf != NULL)
		nf_ref(nf);
	g_mutex_unlock(&fs->lock);
	return nf;
}

void
fs_newfile_stat(Fs *fs, FsNewFile *nf, struct stat *st)
{
	guint64 size = size_of(nf);

	g_mutex_lock(&fs->lock);
	stat_locked(fs, nf, size, st);
	g_mutex_unlock(&fs->lock);
}

gboolean
fs_newfile_forget(Fs *fs, fuse_ino_t ino, guint64 nlookup)
{
	guint64 k = ino;
	FsNewFile *nf = NULL;
	gboolean drop = FALSE;

	if (ino < NEWFILE_INO_BASE)
		return FALSE;
	g_mutex_lock(&fs->lock);
	if (fs->newfiles != NULL)
		nf = g_hash_table_lookup(fs->newfiles->by_ino, &k);
	if (nf != NULL) {
		nf->nlookup = nf->nlookup > nlookup ? nf->nlookup - nlookup : 0;
		drop = maybe_drop_locked(fs, nf);
	}
	g_mutex_unlock(&fs->lock);
	if (drop)
		fs_newfile_unref(fs, nf);
	return nf != NULL;
}

/* ---- create, open, release ---------------------------------------------------------- */

int
fs_newfile_create(Fs *fs, FsNode *dir, const char *name, FsNewFile **out,
		  struct fuse_entry_param *e)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *k = NULL;
	FsNewFiles *t;
	FsNewFile *nf;
	StoreStaged *staged;

	*out = NULL;
	if (dir->kind != FS_NODE_DIR)
		return ENOTDIR;
	if (dir->folder == NULL || !store_folder_is_selectable(dir->folder))
		return EPERM; /* no mailbox holds messages here */
	if (strlen(name) > 255 || strchr(name, '/') != NULL)
		return ENAMETOOLONG;
	staged = store_staged_new(fs->store, &error);
	if (staged == NULL) {
		g_message("cannot stage a new file: %s", error->message);
		return fs_errno_from_error(error);
	}
	nf = g_new0(FsNewFile, 1);
	nf->ref = 2; /* the inode table's and the caller's */
	g_mutex_init(&nf->lock);
	nf->staged = staged;
	nf->name = g_strdup(name);
	nf->mtime = nf->ctime = time(NULL);
	nf->nlookup = 1;
	nf->handles = 1;
	nf->active = 1;
	k = key(dir, name);
	g_mutex_lock(&fs->lock);
	t = tables_locked(fs);
	if (g_hash_table_contains(t->by_name, k) || g_hash_table_contains(dir->subdirs, name)) {
		g_mutex_unlock(&fs->lock);
		store_staged_free(nf->staged);
		g_mutex_clear(&nf->lock);
		g_free(nf->name);
		g_free(nf);
		return EEXIST;
	}
	do
		nf->ino = NEWFILE_INO_BASE + ++t->next;
	while (fs_node_table_get(fs->nodes, nf->ino) != NULL);
	nf->dir = dir;
	fs_node_hold(dir);
	nf->listed = nf->in_table = TRUE;
	g_hash_table_insert(t->by_ino, &nf->ino, nf);
	g_hash_table_insert(t->by_name, g_steal_pointer(&k), nf);
	fill_entry(fs, nf, 0, e);
	g_mutex_unlock(&fs->lock);
	*out = nf;
	return 0;
}

static int
materialize_locked(Fs *fs, FsNewFile *nf, GCancellable *cancel);

int
fs_newfile_open(Fs *fs, FsNewFile *nf, int flags, GCancellable *cancel)
{
	int err = 0;

	g_mutex_lock(&nf->lock);
	if (nf->sent || nf->staged == NULL) {
		err = (flags & O_ACCMODE) == O_RDONLY ? ENOENT : EPERM;
	} else if (flags & O_TRUNC) {
		g_clear_pointer(&nf->copy_of, store_message_unref);
		if (ftruncate(store_staged_get_fd(nf->staged), 0) < 0)
			err = errno;
	}
	g_mutex_unlock(&nf->lock);
	if (err != 0)
		return err;
	g_mutex_lock(&fs->lock);
	nf->handles++;
	if ((flags & O_ACCMODE) != O_RDONLY)
		nf->active++;
	g_mutex_unlock(&fs->lock);
	(void)cancel;
	return 0;
}

void
fs_newfile_release(Fs *fs, FsNewFile *nf, gboolean active)
{
	gboolean drop;

	g_mutex_lock(&fs->lock);
	nf->handles--;
	if (active && nf->active > 0)
		nf->active--;
	drop = maybe_drop_locked(fs, nf);
	g_mutex_unlock(&fs->lock);
	if (drop)
		fs_newfile_unref(fs, nf);
}

/* ---- content ------------------------------------------------------------------------- */

/* A server copy is about to be read or changed: its bytes are downloaded first. */
static int
materialize_locked(Fs *fs, FsNewFile *nf, GCancellable *cancel)
{
	g_autoptr(StoreBody) body = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *buf = NULL;
	int fd;
	guint64 off = 0;

	if (nf->copy_of == NULL)
		return 0;
	body = store_body_open(fs->store, nf->copy_of);
	buf = g_malloc(65536);
	fd = store_staged_get_fd(nf->staged);
	for (;;) {
		gboolean changed = FALSE;
		gssize n = store_body_read_sync(fs->store, body, off, 65536, buf, &changed, cancel,
						&error);

		if (n < 0)
			return fs_errno_from_error(error);
		if (n == 0)
			break;
		if (pwrite(fd, buf, n, off) != n)
			return errno ? errno : EIO;
		off += n;
	}
	g_clear_pointer(&nf->copy_of, store_message_unref);
	return 0;
}

int
fs_newfile_write(Fs *fs, FsNewFile *nf, const char *buf, size_t size, off_t off,
		 gboolean *reactivate, GCancellable *cancel)
{
	guint64 limit = store_append_limit(fs->store);
	ssize_t n;
	int err;

	g_mutex_lock(&nf->lock);
	if (nf->sent || nf->staged == NULL) {
		g_mutex_unlock(&nf->lock);
		return -EPERM; /* it is a message now: immutable */
	}
	if (limit != 0 && (guint64)off + size > limit) {
		g_mutex_unlock(&nf->lock);
		return -EFBIG;
	}
	err = materialize_locked(fs, nf, cancel);
	if (err != 0) {
		g_mutex_unlock(&nf->lock);
		return -err;
	}
	n = pwrite(store_staged_get_fd(nf->staged), buf, size, off);
	err = errno;
	g_mutex_unlock(&nf->lock);
	if (n < 0)
		return -err;
	g_mutex_lock(&fs->lock);
	nf->mtime = nf->ctime = time(NULL);
	nf->mtime_set = FALSE;
	if (*reactivate) {
		nf->active++;
		*reactivate = FALSE;
	}
	g_mutex_unlock(&fs->lock);
	return (int)n;
}

gssize
fs_newfile_read(Fs *fs, FsNewFile *nf, char *buf, size_t size, off_t off, GCancellable *cancel)
{
	gssize n;
	int err;

	g_mutex_lock(&nf->lock);
	if (nf->staged == NULL) {
		g_mutex_unlock(&nf->lock);
		return 0;
	}
	err = materialize_locked(fs, nf, cancel);
	if (err != 0) {
		g_mutex_unlock(&nf->lock);
		return -err;
	}
	n = pread(store_staged_get_fd(nf->staged), buf, size, off);
	err = errno;
	g_mutex_unlock(&nf->lock);
	return n < 0 ? -err : n;
}

int
fs_newfile_setattr(Fs *fs, FsNewFile *nf, const struct stat *attr, int to_set,
		   GCancellable *cancel)
{
	int err = 0;

	if (to_set & FUSE_SET_ATTR_SIZE) {
		g_mutex_lock(&nf->lock);
		if (nf->sent || nf->staged == NULL) {
			err = EPERM;
		} else if (nf->copy_of != NULL && (guint64)attr->st_size == nf->copy_size) {
			/* nothing changes */
		} else {
			err = materialize_locked(fs, nf, cancel);
			if (err == 0 && ftruncate(store_staged_get_fd(nf->staged), attr->st_size) < 0)
				err = errno;
		}
		g_mutex_unlock(&nf->lock);
		if (err != 0)
			return err;
	}
	/* cp -p: the modification time becomes the message's INTERNALDATE; mode and owner
	 * are accepted and ignored (a message has neither) */
	g_mutex_lock(&fs->lock);
	if (to_set & FUSE_SET_ATTR_MTIME) {
		nf->mtime = attr->st_mtime;
		nf->mtime_set = TRUE;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		nf->mtime = time(NULL);
		nf->mtime_set = FALSE;
	}
	nf->ctime = time(NULL);
	g_mutex_unlock(&fs->lock);
	return 0;
}

int
fs_newfile_copy_from(Fs *fs, FsNewFile *nf, StoreMessage *msg, off_t off_in, off_t off_out,
		     size_t len, size_t *copied)
{
	guint64 size = store_message_get_size(fs->store, msg);
	int err = 0;

	*copied = 0;
	g_mutex_lock(&nf->lock);
	if (nf->sent || nf->staged == NULL)
		err = EPERM;
	else if (nf->copy_of != NULL && (guint64)off_in == size && (guint64)off_out == size)
		; /* cp asking for more: the end */
	else if (off_in != 0 || off_out != 0 || len < size || nf->copy_of != NULL ||
		 store_staged_get_size(nf->staged) != 0)
		err = EXDEV; /* not a whole copy: the caller falls back to read/write */
	else {
		nf->copy_of = store_message_ref(msg);
		nf->copy_size = size;
		*copied = size;
	}
	g_mutex_unlock(&nf->lock);
	return err;
}

/* ---- sending -------------------------------------------------------------------------- */

/* Sends @nf to the folder of @dir (nf->lock held): UID COPY of a server copy, else the
 * APPEND of the staged bytes. */
static int
send_locked(Fs *fs, FsNewFile *nf, FsNode *dir, const char *name, gint64 date,
	    GCancellable *cancel)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(StoreMessage) msg = NULL;
	gboolean ok;

	if (nf->copy_of != NULL) {
		ok = store_message_copy_sync(fs->store, nf->copy_of, dir->folder, &msg, cancel,
					     &error);
	} else {
		g_auto(GStrv) flags = fs_newfile_maildir_flags(name);

		ok = store_staged_append_sync(fs->store, nf->staged, dir->folder,
					      (const char *const *)flags, date, &msg, cancel, &error);
	}
	if (!ok) {
		int err = fs_errno_from_error(error);

		g_message("%s/%s: %s", store_folder_get_name(dir->folder), name, error->message);
		return err;
	}
	nf->sent = TRUE;
	store_staged_free(g_steal_pointer(&nf->staged));
	g_clear_pointer(&nf->copy_of, store_message_unref);
	return 0;
}

/* After a send: the created name is gone (ENOENT), the kernel forgets its entry. */
static void
retire(Fs *fs, FsNewFile *nf)
{
	fuse_ino_t parent;
	char *name;

	g_mutex_lock(&fs->lock);
	unlist_locked(fs, nf);
	parent = nf->dir->ino;
	name = g_strdup(nf->name);
	g_mutex_unlock(&fs->lock);
	fs_notify_inval_entry(fs->notify, parent, name);
	g_free(name);
}

int
fs_newfile_flush(Fs *fs, FsNewFile *nf, gboolean *active, GCancellable *cancel)
{
	g_autofree char *name = NULL;
	gboolean last, empty;
	FsNode *dir;
	gint64 date;
	int err;

	g_mutex_lock(&nf->lock);
	g_mutex_lock(&fs->lock);
	if (*active && nf->active > 0)
		nf->active--;
	*active = FALSE;
	last = nf->active == 0;
	name = g_strdup(nf->name);
	dir = nf->dir;
	fs_node_hold(dir);
	date = nf->mtime_set ? nf->mtime : 0;
	g_mutex_unlock(&fs->lock);
	empty = nf->staged == NULL || (nf->copy_of == NULL && store_staged_get_size(nf->staged) == 0);
	if (!last || nf->sent || empty || fs_newfile_is_temp_name(name)) {
		err = 0;
		goto out;
	}
	err = send_locked(fs, nf, dir, name, date, cancel);
	if (err == 0) {
		retire(fs, nf);
	} else if (err != EINTR) {
		/* nothing of it stays in the mount (an APPEND whose outcome is unknown stays in
		 * the journal and is finished at the next mount) */
		store_staged_free(g_steal_pointer(&nf->staged));
		g_clear_pointer(&nf->copy_of, store_message_unref);
		retire(fs, nf);
	}
out:
	g_mutex_unlock(&nf->lock);
	g_mutex_lock(&fs->lock);
	fs_node_unhold(fs->nodes, dir);
	g_mutex_unlock(&fs->lock);
	return err;
}

/* ---- rename and unlink (called first by op_rename / op_unlink) ---------------------- */

static FsNewFile *
find_listed(Fs *fs, FsNode *dir, const char *name)
{
	g_autofree char *k = key(dir, name);
	FsNewFile *nf;

	g_mutex_lock(&fs->lock);
	nf = fs->newfiles ? g_hash_table_lookup(fs->newfiles->by_name, k) : NULL;
	if (nf != NULL)
		nf_ref(nf);
	g_mutex_unlock(&fs->lock);
	return nf;
}

gboolean
fs_newfile_unlink(Fs *fs, FsNode *dir, const char *name, int *err)
{
	FsNewFile *nf = find_listed(fs, dir, name);

	if (nf == NULL)
		return FALSE;
	/* its bytes go at once and nothing is ever sent; open handles get EPERM on write */
	g_mutex_lock(&nf->lock);
	g_mutex_lock(&fs->lock);
	unlist_locked(fs, nf);
	g_mutex_unlock(&fs->lock);
	store_staged_free(g_steal_pointer(&nf->staged));
	g_clear_pointer(&nf->copy_of, store_message_unref);
	g_mutex_unlock(&nf->lock);
	fs_newfile_unref(fs, nf);
	*err = 0;
	return TRUE;
}

gboolean
fs_newfile_rename(Fs *fs, FsNode *dir, const char *name, FsNode *newdir, const char *newname,
		  unsigned int flags, int *err)
{
	FsNewFile *nf = find_listed(fs, dir, name);
	FsNewFile *target = NULL;
	g_autofree char *k = NULL;
	gboolean send, idle;
	gint64 date;

	if (nf == NULL)
		return FALSE;
	*err = 0;
	if (flags & RENAME_EXCHANGE) {
		*err = EINVAL;
		goto out;
	}
	if (newdir->kind != FS_NODE_DIR || newdir->folder == NULL ||
	    !store_folder_is_selectable(newdir->folder)) {
		*err = EPERM;
		goto out;
	}
	if (dir == newdir && strcmp(name, newname) == 0)
		goto out;
	g_mutex_lock(&fs->lock);
	if (g_hash_table_contains(newdir->subdirs, newname)) {
		g_mutex_unlock(&fs->lock);
		*err = EISDIR;
		goto out;
	}
	g_mutex_unlock(&fs->lock);
	{
		/* onto a message: messages are immutable */
		g_autoptr(GError) e = NULL;
		FsNode *m = fs_dir_lookup_sync(fs, newdir, newname, NULL, &e);

		if (m != NULL) {
			g_mutex_lock(&fs->lock);
			fs_node_forget(fs->nodes, m, 1);
			g_mutex_unlock(&fs->lock);
			*err = (flags & RENAME_NOREPLACE) ? EEXIST : EPERM;
			goto out;
		}
	}
	target = find_listed(fs, newdir, newname);
	if (target != NULL && (flags & RENAME_NOREPLACE)) {
		*err = EEXIST;
		goto out;
	}
	g_mutex_lock(&nf->lock);
	g_mutex_lock(&fs->lock);
	idle = nf->active == 0;
	date = nf->mtime_set ? nf->mtime : 0;
	g_mutex_unlock(&fs->lock);
	send = idle && !nf->sent && nf->staged != NULL && !fs_newfile_is_temp_name(newname) &&
	       (nf->copy_of != NULL || store_staged_get_size(nf->staged) > 0);
	if (send) {
		/* a tool's temporary file got its real name: now it is a message (once) */
		*err = send_locked(fs, nf, newdir, newname, date, NULL);
		g_mutex_unlock(&nf->lock);
		if (*err == 0) {
			retire(fs, nf);
			if (target != NULL)
				fs_newfile_unlink(fs, newdir, newname, &(int){0});
		}
		goto out;
	}
	if (target != NULL)
		fs_newfile_unlink(fs, newdir, newname, &(int){0});
	g_mutex_lock(&fs->lock);
	unlist_locked(fs, nf);
	fs_node_hold(newdir);
	fs_node_unhold(fs->nodes, nf->dir);
	nf->dir = newdir;
	g_free(nf->name);
	nf->name = g_strdup(newname);
	k = key(newdir, newname);
	g_hash_table_insert(tables_locked(fs)->by_name, g_steal_pointer(&k), nf);
	nf->listed = TRUE;
	nf->ctime = time(NULL);
	g_mutex_unlock(&fs->lock);
	g_mutex_unlock(&nf->lock);
out:
	if (target != NULL)
		fs_newfile_unref(fs, target);
	fs_newfile_unref(fs, nf);
	return TRUE;
}

/* The staged names of @dir (owned strings), for its listing. */
GPtrArray *
fs_newfile_names(Fs *fs, FsNode *dir)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter it;
	gpointer v;

	g_mutex_lock(&fs->lock);
	if (fs->newfiles != NULL) {
		g_hash_table_iter_init(&it, fs->newfiles->by_ino);
		while (g_hash_table_iter_next(&it, NULL, &v)) {
			FsNewFile *nf = v;

			if (nf->listed && nf->dir == dir)
				g_ptr_array_add(out, g_strdup(nf->name));
		}
	}
	g_mutex_unlock(&fs->lock);
	return out;
}
