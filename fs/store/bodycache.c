/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bodycache.c: the on-disk body cache (see bodycache.h). Owns the files under
 * <dir>/bodies/, their atomic commit (tmp + fsync + rename), the in-memory LRU index and
 * eviction under the byte cap. Bodies are immutable per UID: nothing is revalidated.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "bodycache.h"

#define TMP_PREFIX ".tmp-"

typedef struct {
	char *rel; /* "<mbox hex>/<uv>-<uid>", also the hash key */
	guint64 mbox;
	guint32 uidvalidity;
	guint64 size;
	gint64 atime; /* real time, us */
	GList link;   /* in Bodycache.lru; data = this entry */
} Entry;

struct _Bodycache {
	GMutex lock;
	char *root; /* <dir>/bodies */
	int lock_fd;
	guint64 cap;
	GHashTable *index; /* rel -> Entry* (owning) */
	GQueue lru;	   /* oldest first */
	guint64 bytes;
	guint64 hits, misses, evictions;
};

struct _BodycacheWriter {
	Bodycache *bc;
	guint64 mbox;
	guint32 uidvalidity, uid;
	char *tmp;
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
rel_path(guint64 mbox, guint32 uidvalidity, guint32 uid)
{
	return g_strdup_printf("%016" G_GINT64_MODIFIER "x/%u-%u", mbox, uidvalidity, uid);
}

static void
entry_free(Entry *e)
{
	g_free(e->rel);
	g_free(e);
}

static gboolean
ensure_dir(const char *path, GError **error)
{
	struct stat st;

	if (g_mkdir_with_parents(path, 0700) != 0) {
		set_errno_error(error, errno, "cannot create", path);
		return FALSE;
	}
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		set_errno_error(error, ENOTDIR, "cannot use", path);
		return FALSE;
	}
	if ((st.st_mode & 07777) != 0700 && chmod(path, 0700) != 0) {
		set_errno_error(error, errno, "cannot chmod", path);
		return FALSE;
	}
	return TRUE;
}

/* ---- index ------------------------------------------------------------------------- */

static void
unlink_entry_locked(Bodycache *bc, Entry *e)
{
	g_autofree char *path = g_build_filename(bc->root, e->rel, NULL);

	if (g_unlink(path) != 0 && errno != ENOENT)
		g_debug("body cache: cannot remove %s: %s", path, g_strerror(errno));
	g_queue_unlink(&bc->lru, &e->link);
	bc->bytes -= e->size;
	g_hash_table_remove(bc->index, e->rel); /* frees e */
}

static void
evict_locked(Bodycache *bc)
{
	while (bc->bytes > bc->cap && bc->lru.head != NULL) {
		unlink_entry_locked(bc, bc->lru.head->data);
		bc->evictions++;
	}
}

/* Inserts or replaces the entry of @rel as the most recently used. */
static void
add_entry_locked(Bodycache *bc, const char *rel, guint64 mbox, guint32 uidvalidity, guint64 size,
		 gint64 atime)
{
	Entry *e = g_hash_table_lookup(bc->index, rel);

	if (e != NULL) {
		g_queue_unlink(&bc->lru, &e->link);
		bc->bytes -= e->size;
	} else {
		e = g_new0(Entry, 1);
		e->rel = g_strdup(rel);
		e->mbox = mbox;
		e->uidvalidity = uidvalidity;
		e->link.data = e;
		g_hash_table_insert(bc->index, e->rel, e);
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

/* Indexes the bodies of one mailbox directory; removes stray files. */
static void
scan_mailbox(Bodycache *bc, const char *name, GPtrArray *found)
{
	g_autofree char *dir = g_build_filename(bc->root, name, NULL);
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	guint64 mbox;
	const char *n;
	char *end;

	if (d == NULL)
		return;
	mbox = g_ascii_strtoull(name, &end, 16);
	if (*end != '\0' || strlen(name) != 16)
		return;
	while ((n = g_dir_read_name(d)) != NULL) {
		g_autofree char *path = g_build_filename(dir, n, NULL);
		guint32 uv, uid;
		struct stat st;
		char extra;
		Entry *e;

		if (sscanf(n, "%u-%u%c", &uv, &uid, &extra) != 2 ||
		    g_str_has_prefix(n, TMP_PREFIX) || lstat(path, &st) != 0 ||
		    !S_ISREG(st.st_mode)) {
			g_unlink(path);
			continue;
		}
		if ((st.st_mode & 07777) != 0600)
			chmod(path, 0600);
		e = g_new0(Entry, 1);
		e->rel = g_strdup_printf("%s/%s", name, n);
		e->mbox = mbox;
		e->uidvalidity = uv;
		e->size = (guint64)st.st_size;
		e->atime = (gint64)st.st_mtim.tv_sec * G_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000;
		e->link.data = e;
		g_ptr_array_add(found, e);
	}
}

static void
scan(Bodycache *bc)
{
	g_autoptr(GDir) d = g_dir_open(bc->root, 0, NULL);
	g_autoptr(GPtrArray) found = g_ptr_array_new();
	const char *n;

	while (d != NULL && (n = g_dir_read_name(d)) != NULL) {
		g_autofree char *path = g_build_filename(bc->root, n, NULL);

		if (g_str_has_prefix(n, TMP_PREFIX)) {
			g_debug("body cache: removing leftover %s", path);
			g_unlink(path);
		} else if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
			scan_mailbox(bc, n, found);
		}
	}
	g_ptr_array_sort(found, cmp_atime);
	for (guint i = 0; i < found->len; i++) {
		Entry *e = g_ptr_array_index(found, i);

		g_hash_table_insert(bc->index, e->rel, e);
		g_queue_push_tail_link(&bc->lru, &e->link);
		bc->bytes += e->size;
	}
}

/* ---- open / close ----------------------------------------------------------------------- */

Bodycache *
bodycache_open(const char *dir, guint64 cap, GError **error)
{
	g_autoptr(Bodycache) bc = NULL;
	g_autofree char *lock = NULL;

	g_return_val_if_fail(dir != NULL, NULL);
	if (!ensure_dir(dir, error))
		return NULL;
	bc = g_new0(Bodycache, 1);
	g_mutex_init(&bc->lock);
	bc->lock_fd = -1;
	bc->root = g_build_filename(dir, "bodies", NULL);
	bc->cap = cap != 0 ? cap : BODYCACHE_DEFAULT_CAP;
	bc->index =
		g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)entry_free);
	if (!ensure_dir(bc->root, error))
		return NULL;
	lock = g_build_filename(bc->root, "lock", NULL);
	bc->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (bc->lock_fd < 0) {
		set_errno_error(error, errno, "cannot open", lock);
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
	if (bc->lock_fd >= 0)
		close(bc->lock_fd);
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
	g_autofree char *path = NULL;
	Entry *e;
	int fd = -1;

	g_mutex_lock(&bc->lock);
	e = g_hash_table_lookup(bc->index, rel);
	if (e != NULL) {
		path = g_build_filename(bc->root, rel, NULL);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			/* removed behind our back: forget it */
			g_queue_unlink(&bc->lru, &e->link);
			bc->bytes -= e->size;
			g_hash_table_remove(bc->index, rel);
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
		g_debug("body cache: futimens %s: %s", path, g_strerror(errno));
	return fd;
}

gboolean
bodycache_contains(Bodycache *bc, guint64 mbox, guint32 uidvalidity, guint32 uid)
{
	g_autofree char *rel = rel_path(mbox, uidvalidity, uid);
	gboolean found;

	g_mutex_lock(&bc->lock);
	found = g_hash_table_contains(bc->index, rel);
	g_mutex_unlock(&bc->lock);
	return found;
}

/* ---- insert ---------------------------------------------------------------------------- */

BodycacheWriter *
bodycache_writer_new(Bodycache *bc, guint64 mbox, guint32 uidvalidity, guint32 uid, GError **error)
{
	BodycacheWriter *w;
	g_autofree char *tmp = g_build_filename(bc->root, TMP_PREFIX "XXXXXX", NULL);
	int fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0) {
		set_errno_error(error, errno, "cannot create", tmp);
		return NULL;
	}
	fchmod(fd, 0600); /* g_mkstemp_full honours the umask only downwards; be explicit */
	w = g_new0(BodycacheWriter, 1);
	w->bc = bc;
	w->mbox = mbox;
	w->uidvalidity = uidvalidity;
	w->uid = uid;
	w->tmp = g_steal_pointer(&tmp);
	w->fd = fd;
	return w;
}

int
bodycache_writer_get_fd(BodycacheWriter *w)
{
	return w->fd;
}

void
bodycache_writer_abort(BodycacheWriter *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	g_unlink(w->tmp);
	g_free(w->tmp);
	g_free(w);
}

int
bodycache_writer_commit(BodycacheWriter *w, GError **error)
{
	Bodycache *bc = w->bc;
	g_autofree char *rel = rel_path(w->mbox, w->uidvalidity, w->uid);
	g_autofree char *path = g_build_filename(bc->root, rel, NULL);
	g_autofree char *dir = g_path_get_dirname(path);
	struct stat st;
	int rfd = -1;

	if (fsync(w->fd) != 0 || fstat(w->fd, &st) != 0) {
		set_errno_error(error, errno, "cannot write", w->tmp);
		goto fail;
	}
	/* An fd on the committed inode for the caller, opened before anyone can evict it. */
	rfd = open(w->tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (rfd < 0) {
		set_errno_error(error, errno, "cannot open", w->tmp);
		goto fail;
	}
	g_mutex_lock(&bc->lock);
	if (!ensure_dir(dir, error)) {
		g_mutex_unlock(&bc->lock);
		goto fail;
	}
	if (rename(w->tmp, path) != 0) {
		int e = errno;

		g_mutex_unlock(&bc->lock);
		set_errno_error(error, e, "cannot rename to", path);
		goto fail;
	}
	add_entry_locked(bc, rel, w->mbox, w->uidvalidity, (guint64)st.st_size, g_get_real_time());
	evict_locked(bc);
	g_mutex_unlock(&bc->lock);
	close(w->fd);
	g_free(w->tmp);
	g_free(w);
	return rfd;

fail:
	if (rfd >= 0)
		close(rfd);
	bodycache_writer_abort(w);
	return -1;
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
			set_errno_error(error, errno, "cannot write", w->tmp);
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
	e = g_hash_table_lookup(bc->index, rel);
	if (e != NULL) {
		unlink_entry_locked(bc, e);
	} else {
		g_autofree char *path = g_build_filename(bc->root, rel, NULL);

		g_unlink(path);
	}
	g_mutex_unlock(&bc->lock);
}

guint
bodycache_drop_mailbox(Bodycache *bc, guint64 mbox, guint32 keep_uidvalidity)
{
	g_autofree char *name = g_strdup_printf("%016" G_GINT64_MODIFIER "x", mbox);
	g_autofree char *dir = g_build_filename(bc->root, name, NULL);
	g_autoptr(GPtrArray) victims = g_ptr_array_new();
	GHashTableIter it;
	gpointer v;
	guint n = 0;

	g_mutex_lock(&bc->lock);
	g_hash_table_iter_init(&it, bc->index);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		Entry *e = v;

		if (e->mbox == mbox &&
		    (keep_uidvalidity == 0 || e->uidvalidity != keep_uidvalidity))
			g_ptr_array_add(victims, e);
	}
	for (guint i = 0; i < victims->len; i++) {
		unlink_entry_locked(bc, g_ptr_array_index(victims, i));
		n++;
	}
	if (keep_uidvalidity == 0)
		g_rmdir(dir); /* fails harmlessly if a writer just added a file */
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
