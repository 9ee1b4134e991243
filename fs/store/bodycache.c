/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bodycache.c: the on-disk body cache (see bodycache.h). Owns the files under
 * <dir>/bodies/, their atomic commit (tmp + fsync + rename), the in-memory LRU index and
 * eviction under the byte cap. Bodies are immutable per UID: nothing is revalidated.
 *
 * Nothing below <dir>/bodies is trusted to be what we made it: every walk and open is
 * relative to a directory descriptor with O_NOFOLLOW (a symlink is never followed, not even
 * as a middle path component), and only names of our own forms ("<16 hex>" directories,
 * "<uv>-<uid>" regular files with one link, ".tmp-*" regular files) are ever indexed or
 * removed; anything else found there is left alone.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bodycache.h"

#define TMP_PREFIX ".tmp-"
#define TMP_LEN	   (sizeof(TMP_PREFIX) - 1 + 6)
#define MBOX_LEN   16

/* One cached body; its file name derives from (mbox, uidvalidity, uid), so none is kept
 * (an index of tens of thousands of bodies stays small). */
typedef struct {
	guint64 mbox;
	guint32 uidvalidity;
	guint32 uid;
	guint64 size;
	gint64 atime; /* real time, us */
	GList link;   /* in Bodycache.lru; data = this entry */
} Entry;

struct _Bodycache {
	GMutex lock;
	char *root;  /* <dir>/bodies, for messages only: all access goes through root_fd */
	int root_fd; /* O_DIRECTORY on <dir>/bodies, opened without following a symlink */
	int lock_fd;
	guint64 cap;
	GHashTable *index; /* set of Entry* (owning), hashed on (mbox, uidvalidity, uid) */
	GQueue lru;	   /* oldest first */
	guint64 bytes;
	guint64 hits, misses, evictions;
	gboolean full_logged; /* a full disk was reported (once per open); protected by lock */
	GQueue spare;	      /* BodycacheWriter* made ahead, not keyed yet; protected by lock */
};

struct _BodycacheWriter {
	Bodycache *bc;
	guint64 mbox;
	guint32 uidvalidity, uid;
	char tmp[TMP_LEN + 1]; /* name in root_fd */
	int fd;
};

G_DEFINE_QUARK(bodycache - error - quark, bodycache_error)

static void
set_errno_error(GError **error, int e, const char *what, const char *path)
{
	g_set_error(error, BODYCACHE_ERROR,
		    e == ENOSPC || e == EDQUOT || e == EFBIG ? BODYCACHE_ERROR_FULL
							     : BODYCACHE_ERROR_IO,
		    "body cache: %s %s: %s", what, path, g_strerror(e));
}

static char *
mbox_name(guint64 mbox)
{
	return g_strdup_printf("%016" G_GINT64_MODIFIER "x", mbox);
}

static char *
rel_path(guint64 mbox, guint32 uidvalidity, guint32 uid)
{
	return g_strdup_printf("%016" G_GINT64_MODIFIER "x/%u-%u", mbox, uidvalidity, uid);
}

/* Is @name exactly the body name "<uv>-<uid>" (decimal, no sign, no leading zero)? */
static gboolean
parse_body_name(const char *name, guint32 *uv, guint32 *uid)
{
	g_autofree char *again = NULL;
	char extra;

	if (sscanf(name, "%u-%u%c", uv, uid, &extra) != 2)
		return FALSE;
	again = g_strdup_printf("%u-%u", *uv, *uid);
	return strcmp(again, name) == 0;
}

/* Is @name a mailbox directory name (16 lowercase hex digits)? */
static gboolean
parse_mbox_name(const char *name, guint64 *mbox)
{
	if (strlen(name) != MBOX_LEN)
		return FALSE;
	for (const char *p = name; *p; p++)
		if (!g_ascii_isdigit(*p) && !(*p >= 'a' && *p <= 'f'))
			return FALSE;
	*mbox = g_ascii_strtoull(name, NULL, 16);
	return TRUE;
}

static guint
entry_hash(gconstpointer p)
{
	const Entry *e = p;

	return (guint)(e->mbox * 2654435761u) ^ (e->uidvalidity * 40503u) ^ e->uid;
}

static gboolean
entry_equal(gconstpointer a, gconstpointer b)
{
	const Entry *x = a, *y = b;

	return x->mbox == y->mbox && x->uidvalidity == y->uidvalidity && x->uid == y->uid;
}

static Entry *
find_locked(Bodycache *bc, guint64 mbox, guint32 uidvalidity, guint32 uid)
{
	Entry key = {.mbox = mbox, .uidvalidity = uidvalidity, .uid = uid};

	return g_hash_table_lookup(bc->index, &key);
}

static char *
entry_rel(const Entry *e)
{
	return rel_path(e->mbox, e->uidvalidity, e->uid);
}

/* Opens the directory @name in @dfd (creating it 0700 when @create) without following a
 * symlink, and tightens it to 0700. -1 with errno set (ENOTDIR for anything that is not a
 * real directory). */
static int
open_dir_at(int dfd, const char *name, gboolean create)
{
	struct stat st;
	int fd;

	if (create && mkdirat(dfd, name, 0700) != 0 && errno != EEXIST)
		return -1;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)
			errno = ENOTDIR;
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) != 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Splits @rel ("<mbox>/<file>") and opens the mailbox directory. -1 if it is missing or
 * not a real directory. */
static int
open_rel_dir(Bodycache *bc, const char *rel, const char **file)
{
	g_autofree char *dir = g_strndup(rel, MBOX_LEN);

	*file = rel + MBOX_LEN + 1;
	return openat(bc->root_fd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Removes the body file @rel (a directory entry of ours: never follows a link). */
static void
unlink_rel(Bodycache *bc, const char *rel)
{
	const char *file;
	int dfd = open_rel_dir(bc, rel, &file);

	if (dfd < 0)
		return;
	if (unlinkat(dfd, file, 0) != 0 && errno != ENOENT)
		g_debug("body cache: cannot remove %s/%s: %s", bc->root, rel, g_strerror(errno));
	close(dfd);
}

/* A read-only fd on the regular file @rel, or -1 (missing, a symlink, a FIFO, ...). */
static int
open_rel(Bodycache *bc, const char *rel)
{
	const char *file;
	int dfd = open_rel_dir(bc, rel, &file);
	struct stat st;
	int fd;

	if (dfd < 0)
		return -1;
	fd = openat(dfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	close(dfd);
	if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* ---- index ------------------------------------------------------------------------- */

static void
unlink_entry_locked(Bodycache *bc, Entry *e)
{
	g_autofree char *rel = entry_rel(e);

	unlink_rel(bc, rel);
	g_queue_unlink(&bc->lru, &e->link);
	bc->bytes -= e->size;
	g_hash_table_remove(bc->index, e); /* frees e */
}

static void
evict_locked(Bodycache *bc)
{
	while (bc->bytes > bc->cap && bc->lru.head != NULL) {
		unlink_entry_locked(bc, bc->lru.head->data);
		bc->evictions++;
	}
}

/* Inserts or replaces the entry of the body as the most recently used. */
static void
add_entry_locked(Bodycache *bc, guint64 mbox, guint32 uidvalidity, guint32 uid, guint64 size,
		 gint64 atime)
{
	Entry *e = find_locked(bc, mbox, uidvalidity, uid);

	if (e != NULL) {
		g_queue_unlink(&bc->lru, &e->link);
		bc->bytes -= e->size;
	} else {
		e = g_new0(Entry, 1);
		e->mbox = mbox;
		e->uidvalidity = uidvalidity;
		e->uid = uid;
		e->link.data = e;
		g_hash_table_add(bc->index, e);
	}
	e->size = size;
	e->atime = atime;
	g_queue_push_tail_link(&bc->lru, &e->link);
	bc->bytes += size;
}

static gint
cmp_atime(gconstpointer a, gconstpointer b)
{
	const Entry *x = *(Entry *const *)a;
	const Entry *y = *(Entry *const *)b;

	return x->atime < y->atime ? -1 : x->atime > y->atime;
}

/* A DIR* reading the directory @dfd (which stays open and owned by the caller). */
static DIR *
dir_stream(int dfd)
{
	int fd = dup(dfd);
	DIR *d;

	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (d == NULL)
		close(fd);
	else
		rewinddir(d); /* the offset is shared with @dfd */
	return d;
}

/* Is @st a body file this cache could have written (not a hard link of somebody's)? */
static gboolean
is_own_file(const struct stat *st)
{
	return S_ISREG(st->st_mode) && st->st_nlink == 1 && st->st_uid == geteuid();
}

/* Indexes the bodies of one mailbox directory. Leaves alone anything it did not write. */
static void
scan_mailbox(Bodycache *bc, const char *name, guint64 mbox, GPtrArray *found)
{
	int dfd = openat(bc->root_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = dfd >= 0 ? dir_stream(dfd) : NULL;
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		guint32 uv, uid;
		struct stat st;
		Entry *e;

		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		if (!parse_body_name(n, &uv, &uid) ||
		    fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) != 0 || !is_own_file(&st)) {
			g_debug("body cache: ignoring %s/%s/%s", bc->root, name, n);
			continue;
		}
		if ((st.st_mode & 07777) != 0600) {
			int fd = openat(dfd, n, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
			struct stat st2;

			if (fd >= 0 && fstat(fd, &st2) == 0 && st2.st_ino == st.st_ino &&
			    st2.st_dev == st.st_dev)
				fchmod(fd, 0600);
			if (fd >= 0)
				close(fd);
		}
		e = g_new0(Entry, 1);
		e->mbox = mbox;
		e->uidvalidity = uv;
		e->uid = uid;
		e->size = (guint64)st.st_size;
		e->atime = (gint64)st.st_mtim.tv_sec * G_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000;
		e->link.data = e;
		g_ptr_array_add(found, e);
	}
	if (d != NULL)
		closedir(d);
	if (dfd >= 0)
		close(dfd);
}

static void
scan(Bodycache *bc)
{
	DIR *d = dir_stream(bc->root_fd);
	g_autoptr(GPtrArray) found = g_ptr_array_new();
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		struct stat st;
		guint64 mbox;

		if (fstatat(bc->root_fd, n, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (g_str_has_prefix(n, TMP_PREFIX) && strlen(n) == TMP_LEN && is_own_file(&st)) {
			g_debug("body cache: removing leftover %s/%s", bc->root, n);
			unlinkat(bc->root_fd, n, 0);
		} else if (S_ISDIR(st.st_mode) && parse_mbox_name(n, &mbox)) {
			scan_mailbox(bc, n, mbox, found);
		}
	}
	if (d != NULL)
		closedir(d);
	g_ptr_array_sort(found, cmp_atime);
	for (guint i = 0; i < found->len; i++) {
		Entry *e = g_ptr_array_index(found, i);

		g_hash_table_add(bc->index, e);
		g_queue_push_tail_link(&bc->lru, &e->link);
		bc->bytes += e->size;
	}
}

/* ---- open / close ----------------------------------------------------------------------- */

Bodycache *
bodycache_open(const char *dir, guint64 cap, GError **error)
{
	g_autoptr(Bodycache) bc = NULL;
	struct stat st;
	int dfd;

	g_return_val_if_fail(dir != NULL, NULL);
	/* @dir itself is the user's choice and may be reached through a symlink */
	if (g_mkdir_with_parents(dir, 0700) != 0) {
		set_errno_error(error, errno, "cannot create", dir);
		return NULL;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fstat(dfd, &st) != 0 ||
	    ((st.st_mode & 07777) != 0700 && fchmod(dfd, 0700) != 0)) {
		set_errno_error(error, errno, "cannot use", dir);
		if (dfd >= 0)
			close(dfd);
		return NULL;
	}
	bc = g_new0(Bodycache, 1);
	g_mutex_init(&bc->lock);
	bc->lock_fd = -1;
	bc->root_fd = -1;
	bc->root = g_build_filename(dir, "bodies", NULL);
	bc->cap = cap != 0 ? cap : BODYCACHE_DEFAULT_CAP;
	bc->index = g_hash_table_new_full(entry_hash, entry_equal, g_free, NULL);
	bc->root_fd = open_dir_at(dfd, "bodies", TRUE);
	close(dfd);
	if (bc->root_fd < 0) {
		set_errno_error(error, errno, "cannot use", bc->root);
		return NULL;
	}
	bc->lock_fd = openat(bc->root_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (bc->lock_fd < 0) {
		set_errno_error(error, errno, "cannot open", "lock");
		return NULL;
	}
	fchmod(bc->lock_fd, 0600);
	if (flock(bc->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		g_set_error(error, BODYCACHE_ERROR, BODYCACHE_ERROR_IN_USE,
			    "body cache %s is in use by another imapfs", bc->root);
		return NULL;
	}
	scan(bc);
	evict_locked(bc);
	return g_steal_pointer(&bc);
}

void
bodycache_close(Bodycache *bc)
{
	if (bc == NULL)
		return;
	while (bc->spare.length > 0)
		bodycache_writer_abort(g_queue_pop_head(&bc->spare));
	if (bc->lock_fd >= 0)
		close(bc->lock_fd);
	if (bc->root_fd >= 0)
		close(bc->root_fd);
	g_queue_init(&bc->lru); /* the links live inside the entries */
	g_hash_table_unref(bc->index);
	g_mutex_clear(&bc->lock);
	g_free(bc->root);
	g_free(bc);
}

void
bodycache_set_cap(Bodycache *bc, guint64 cap)
{
	g_mutex_lock(&bc->lock);
	bc->cap = cap != 0 ? cap : BODYCACHE_DEFAULT_CAP;
	evict_locked(bc);
	g_mutex_unlock(&bc->lock);
}

/* ---- lookup ---------------------------------------------------------------------------- */

int
bodycache_lookup(Bodycache *bc, guint64 mbox, guint32 uidvalidity, guint32 uid, guint64 *size)
{
	g_autofree char *rel = rel_path(mbox, uidvalidity, uid);
	Entry *e;
	int fd = -1;

	g_mutex_lock(&bc->lock);
	e = find_locked(bc, mbox, uidvalidity, uid);
	if (e != NULL) {
		fd = open_rel(bc, rel);
		if (fd < 0) {
			/* removed or replaced behind our back: forget it */
			g_queue_unlink(&bc->lru, &e->link);
			bc->bytes -= e->size;
			g_hash_table_remove(bc->index, e);
		} else {
			g_queue_unlink(&bc->lru, &e->link);
			g_queue_push_tail_link(&bc->lru, &e->link);
			e->atime = g_get_real_time();
			if (size != NULL)
				*size = e->size;
		}
	}
	if (fd >= 0)
		bc->hits++;
	else
		bc->misses++;
	g_mutex_unlock(&bc->lock);
	if (fd >= 0 && futimens(fd, NULL) != 0) /* persists the LRU order across remounts */
		g_debug("body cache: futimens %s/%s: %s", bc->root, rel, g_strerror(errno));
	return fd;
}

gboolean
bodycache_contains(Bodycache *bc, guint64 mbox, guint32 uidvalidity, guint32 uid)
{
	gboolean found;

	g_mutex_lock(&bc->lock);
	found = find_locked(bc, mbox, uidvalidity, uid) != NULL;
	g_mutex_unlock(&bc->lock);
	return found;
}

/* ---- insert ---------------------------------------------------------------------------- */

/* A new temp file in root_fd, not keyed yet. */
static BodycacheWriter *
writer_create(Bodycache *bc, GError **error)
{
	static const char chars[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	BodycacheWriter *w = g_new0(BodycacheWriter, 1);
	int fd = -1;

	for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
		memcpy(w->tmp, TMP_PREFIX, sizeof(TMP_PREFIX) - 1);
		for (gsize i = sizeof(TMP_PREFIX) - 1; i < TMP_LEN; i++)
			w->tmp[i] = chars[g_random_int_range(0, sizeof(chars) - 1)];
		w->tmp[TMP_LEN] = '\0';
		fd = openat(bc->root_fd, w->tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		set_errno_error(error, errno, "cannot create a file in", bc->root);
		g_free(w);
		return NULL;
	}
	fchmod(fd, 0600); /* the umask only narrows the mode; be explicit */
	w->bc = bc;
	w->fd = fd;
	return w;
}

BodycacheWriter *
bodycache_writer_new(Bodycache *bc, guint64 mbox, guint32 uidvalidity, guint32 uid, GError **error)
{
	BodycacheWriter *w;

	g_mutex_lock(&bc->lock);
	w = g_queue_pop_head(&bc->spare);
	g_mutex_unlock(&bc->lock);
	if (w == NULL)
		w = writer_create(bc, error);
	if (w == NULL)
		return NULL;
	w->mbox = mbox;
	w->uidvalidity = uidvalidity;
	w->uid = uid;
	return w;
}

void
bodycache_writers_prepare(Bodycache *bc, guint n)
{
	for (;;) {
		BodycacheWriter *w;
		gboolean enough;

		g_mutex_lock(&bc->lock);
		enough = bc->spare.length >= n;
		g_mutex_unlock(&bc->lock);
		if (enough || (w = writer_create(bc, NULL)) == NULL)
			return;
		g_mutex_lock(&bc->lock);
		g_queue_push_tail(&bc->spare, w);
		g_mutex_unlock(&bc->lock);
	}
}

int
bodycache_writer_get_fd(BodycacheWriter *w)
{
	return w->fd;
}

gboolean
bodycache_writer_reserve(BodycacheWriter *w, guint64 offset, guint64 len, GError **error)
{
	int r;

	if (len == 0)
		return TRUE;
	do
		r = fallocate(w->fd, FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)len);
	while (r < 0 && errno == EINTR);
	if (r == 0 || (errno != ENOSPC && errno != EDQUOT && errno != EFBIG))
		return TRUE; /* e.g. EOPNOTSUPP: the writes find out */
	set_errno_error(error, errno, "cannot write to", w->bc->root);
	return FALSE;
}

void
bodycache_writer_abort(BodycacheWriter *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	unlinkat(w->bc->root_fd, w->tmp, 0);
	g_free(w);
}

int
bodycache_writer_commit(BodycacheWriter *w, GError **error)
{
	Bodycache *bc = w->bc;
	g_autofree char *rel = rel_path(w->mbox, w->uidvalidity, w->uid);
	g_autofree char *mbox = mbox_name(w->mbox);
	struct stat st;
	int rfd = -1, dfd;

	if (fsync(w->fd) != 0 || fstat(w->fd, &st) != 0) {
		set_errno_error(error, errno, "cannot write", bc->root);
		goto fail;
	}
	/* An fd on the committed inode for the caller, opened before anyone can evict it. */
	rfd = openat(bc->root_fd, w->tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (rfd < 0) {
		set_errno_error(error, errno, "cannot open a file in", bc->root);
		goto fail;
	}
	g_mutex_lock(&bc->lock);
	dfd = open_dir_at(bc->root_fd, mbox, TRUE);
	if (dfd < 0) {
		int e = errno;

		g_mutex_unlock(&bc->lock);
		set_errno_error(error, e, "cannot use the directory", mbox);
		goto fail;
	}
	if (renameat(bc->root_fd, w->tmp, dfd, rel + MBOX_LEN + 1) != 0) {
		int e = errno;

		close(dfd);
		g_mutex_unlock(&bc->lock);
		set_errno_error(error, e, "cannot rename to", rel);
		goto fail;
	}
	close(dfd);
	add_entry_locked(bc, w->mbox, w->uidvalidity, w->uid, (guint64)st.st_size,
			 g_get_real_time());
	evict_locked(bc);
	bc->full_logged = FALSE; /* there is room again: report the next full disk */
	g_mutex_unlock(&bc->lock);
	close(w->fd);
	g_free(w);
	return rfd;

fail:
	if (rfd >= 0)
		close(rfd);
	bodycache_writer_abort(w);
	return -1;
}

gboolean
bodycache_writer_copy(BodycacheWriter *w, int fd, guint64 size, GError **error)
{
	loff_t off = 0;

	while ((guint64)off < size) {
		ssize_t n = copy_file_range(fd, &off, w->fd, NULL, size - off, 0);
		char buf[65536];
		ssize_t r, done = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0)
			continue;
		if (n < 0 && errno != EXDEV && errno != EINVAL && errno != EOPNOTSUPP &&
		    errno != ENOSYS && errno != EBADF) {
			set_errno_error(error, errno, "cannot write to", w->bc->root);
			return FALSE;
		}
		/* no copy_file_range between these files (or it stopped): read and write */
		r = pread(fd, buf, MIN(sizeof(buf), size - off), off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			g_set_error(error, BODYCACHE_ERROR, BODYCACHE_ERROR_IO,
				    "body cache: the body ended at %" G_GUINT64_FORMAT
				    " of %" G_GUINT64_FORMAT " bytes%s%s",
				    (guint64)off, size, r < 0 ? ": " : "",
				    r < 0 ? g_strerror(errno) : "");
			return FALSE;
		}
		while (done < r) {
			ssize_t m = write(w->fd, buf + done, r - done);

			if (m < 0 && errno == EINTR)
				continue;
			if (m <= 0) {
				set_errno_error(error, m < 0 ? errno : ENOSPC, "cannot write to",
						w->bc->root);
				return FALSE;
			}
			done += m;
		}
		off += r;
	}
	return TRUE;
}

void
bodycache_log_failure(Bodycache *bc, const GError *error)
{
	gboolean first = TRUE;

	if (g_error_matches(error, BODYCACHE_ERROR, BODYCACHE_ERROR_FULL)) {
		g_mutex_lock(&bc->lock);
		first = !bc->full_logged;
		bc->full_logged = TRUE;
		g_mutex_unlock(&bc->lock);
	}
	if (first && g_error_matches(error, BODYCACHE_ERROR, BODYCACHE_ERROR_FULL))
		g_message("%s; bodies are not cached until there is room again", error->message);
	else if (first)
		g_message("%s", error->message);
	else
		g_debug("%s", error->message);
}

gboolean
bodycache_add(Bodycache *bc, guint64 mbox, guint32 uidvalidity, guint32 uid, const void *data,
	      gsize len, GError **error)
{
	BodycacheWriter *w = bodycache_writer_new(bc, mbox, uidvalidity, uid, error);
	const char *p = data;
	gsize done = 0;
	int fd;

	if (w == NULL)
		return FALSE;
	while (done < len) {
		ssize_t n = write(w->fd, p + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			set_errno_error(error, errno, "cannot write", bc->root);
			bodycache_writer_abort(w);
			return FALSE;
		}
		done += (gsize)n;
	}
	fd = bodycache_writer_commit(w, error);
	if (fd < 0)
		return FALSE;
	close(fd);
	return TRUE;
}

/* ---- removal --------------------------------------------------------------------------- */

void
bodycache_remove(Bodycache *bc, guint64 mbox, guint32 uidvalidity, guint32 uid)
{
	g_autofree char *rel = rel_path(mbox, uidvalidity, uid);
	Entry *e;

	g_mutex_lock(&bc->lock);
	e = find_locked(bc, mbox, uidvalidity, uid);
	if (e != NULL)
		unlink_entry_locked(bc, e);
	else
		unlink_rel(bc, rel);
	g_mutex_unlock(&bc->lock);
}

/* Drops the entries of @mbox (every mailbox when @all) whose UIDVALIDITY is not
 * @keep_uidvalidity (0: any), and the emptied directories. */
static guint
drop_locked(Bodycache *bc, gboolean all, guint64 mbox, guint32 keep_uidvalidity)
{
	g_autoptr(GPtrArray) victims = g_ptr_array_new();
	g_autoptr(GHashTable) dirs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GHashTableIter it;
	gpointer v;
	guint n = 0;

	g_hash_table_iter_init(&it, bc->index);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		Entry *e = v;

		if ((all || e->mbox == mbox) &&
		    (keep_uidvalidity == 0 || e->uidvalidity != keep_uidvalidity))
			g_ptr_array_add(victims, e);
	}
	for (guint i = 0; i < victims->len; i++) {
		Entry *e = g_ptr_array_index(victims, i);

		g_hash_table_add(dirs, mbox_name(e->mbox));
		unlink_entry_locked(bc, e);
		n++;
	}
	if (!all && keep_uidvalidity == 0)
		g_hash_table_add(dirs, mbox_name(mbox));
	if (keep_uidvalidity == 0) {
		g_hash_table_iter_init(&it, dirs);
		while (g_hash_table_iter_next(&it, &v, NULL))
			unlinkat(bc->root_fd, v, AT_REMOVEDIR); /* fails harmlessly unless empty */
	}
	return n;
}

guint
bodycache_drop_mailbox(Bodycache *bc, guint64 mbox, guint32 keep_uidvalidity)
{
	guint n;

	g_mutex_lock(&bc->lock);
	n = drop_locked(bc, FALSE, mbox, keep_uidvalidity);
	g_mutex_unlock(&bc->lock);
	return n;
}

guint
bodycache_drop_all(Bodycache *bc)
{
	guint n;

	g_mutex_lock(&bc->lock);
	n = drop_locked(bc, TRUE, 0, 0);
	g_mutex_unlock(&bc->lock);
	return n;
}

void
bodycache_get_stats(Bodycache *bc, BodycacheStats *out)
{
	g_mutex_lock(&bc->lock);
	out->bytes = bc->bytes;
	out->files = g_hash_table_size(bc->index);
	out->cap = bc->cap;
	out->hits = bc->hits;
	out->misses = bc->misses;
	out->evictions = bc->evictions;
	g_mutex_unlock(&bc->lock);
}
