/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * body.c: message contents. A body keeps the prefix of the message fetched so far in a
 * file; a reader at the start of a big message gets one aligned chunk (BODY.PEEK[]<0.n>),
 * a reader that goes on sequentially gets the rest in one streamed FETCH, and random reads
 * elsewhere fetch only their aligned range. With the on-disk body cache (bodycache.c) on, a
 * body is first looked up there (then every read is a local pread); one that is not there
 * is fetched straight into a body-cache writer's file, and once complete the committer
 * thread makes it durable and visible (fsync + rename), no copy. Without the body cache
 * (-o no_cache), with -o sync=none (which never writes the body cache), or when the cache's
 * disk is full, the file is an unlinked temp file, and bodies stay in an in-memory LRU of
 * such files after their last user is gone. The background downloader of -o sync=new|all
 * (downloader.c) commits through the same path.
 *
 * Invariants: bytes [0, have) of the file are final and may be pread() without a lock;
 * at most one fetch into the file runs at a time (body->fetching): a shared operation
 * (inflight.c) that later readers join, each with its own deadline and cancellation; the
 * exact size is known when complete, and then it is what every read returns as EOF. A
 * server whose bytes disagree with RFC822.SIZE gets its size corrected in the message
 * state and the caller is told (size_changed), never a truncated or padded read. A body
 * file in the cache directory is a writer's ".tmp-" file until its commit: a failed,
 * cancelled or abandoned fetch never leaves a half-written body in the cache (the writer is
 * aborted when the body goes, and leftovers of a crash are removed at the next open).
 *
 * It uses message.c for the message state, resync.c to reset a folder whose UIDVALIDITY a
 * fetch found changed, and the account's services (store.c); nothing here calls the
 * downloader.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store-private.h"

#define ALIGN		(16 * 1024)    /* range fetches are aligned to this */
#define SMALL_WHOLE	(256 * 1024)   /* bodies up to this are fetched whole at once */
#define CACHE_MAX_BYTES (256ULL << 20) /* LRU cap of kept bodies */

struct _StoreBody {
	Store *store;
	StoreMessage *msg; /* ref */
	char *key;
	/* protected by store->lock: */
	int refs;	   /* the cache holds one */
	GList *lru;	   /* link in store->body_lru while only the cache holds it */
	int fd;		   /* the file the fetches write to, -1 until the first one */
	int old_fd;	   /* a cache file given up for a temp file (leave_cache), or -1:
			    * kept open until the body goes, a reader may still pread() it */
	BodycacheWriter *w; /* the body-cache writer whose file fd is, or NULL (fd is a temp
			     * file); only the fetch worker changes it, under the lock */
	guint64 have;	   /* valid prefix length in fd */
	gboolean complete; /* have == exact size */
	gboolean fetching;
	gboolean in_bc; /* in the on-disk body cache (or being committed to it) */
	gboolean stale; /* its folder's UIDVALIDITY changed: every read fails (ESTALE) */
	StoreInflight *inflight; /* that fetch (not a reference: its worker clears it) */
};

static char *
body_key(const StoreMessageInfo *i)
{
	return g_strdup_printf("%s\n%u %u", i->mailbox, i->uidvalidity, i->uid);
}

static void
body_free(StoreBody *b)
{
	if (b->fd >= 0)
		close(b->fd);
	if (b->old_fd >= 0)
		close(b->old_fd);
	bodycache_writer_abort(b->w); /* a body never completed: its cache file goes */
	store_message_unref(b->msg);
	g_free(b->key);
	g_free(b);
}

/* How many bodies (one file descriptor each) the cache keeps: a quarter of the descriptor
 * limit, between 64 and 1024. The kernel's page cache is the first cache; this one
 * answers when the kernel dropped pages, without a new download. */
static guint
cache_max_count(void)
{
	static gsize once;
	static guint count;

	if (g_once_init_enter(&once)) {
		struct rlimit rl;

		count = 64;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
			count = CLAMP(rl.rlim_cur / 4, 64, 1024);
		else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
			count = 1024;
		g_once_init_leave(&once, 1);
	}
	return count;
}

static gboolean set_exact_size_locked(StoreMessage *msg, guint64 size);

static void
lru_push_locked(Store *store, StoreBody *b)
{
	g_queue_push_tail(&store->body_lru, b);
	b->lru = store->body_lru.tail;
	store->body_bytes += b->have;
}

static void
lru_remove_locked(Store *store, StoreBody *b)
{
	g_queue_delete_link(&store->body_lru, b->lru);
	b->lru = NULL;
	store->body_bytes -= b->have;
}

static void
evict_locked(Store *store)
{
	while (store->body_lru.length > cache_max_count() ||
	       (store->body_lru.length > 0 && store->body_bytes > CACHE_MAX_BYTES)) {
		StoreBody *b = store->body_lru.head->data;

		lru_remove_locked(store, b);
		g_hash_table_remove(store->bodies, b->key);
		body_free(b);
	}
}

StoreBody *
store_body_open(Store *store, StoreMessage *msg)
{
	g_autofree char *key = body_key(&msg->info);
	StoreBody *b;
	guint64 cached_size = 0;
	int cached_fd = -1;

	if (store_bc(store) != NULL && msg->hc_id != 0)
		cached_fd = bodycache_lookup(store->bc, msg->hc_id, msg->info.uidvalidity,
					     msg->info.uid, &cached_size);
	g_mutex_lock(&store->lock);
	b = g_hash_table_lookup(store->bodies, key);
	if (b == NULL) {
		b = g_new0(StoreBody, 1);
		b->store = store;
		b->msg = store_message_ref(msg);
		b->key = g_steal_pointer(&key);
		b->fd = -1;
		b->old_fd = -1;
		b->refs = 1;
		g_hash_table_insert(store->bodies, g_strdup(b->key), b);
		if (cached_fd >= 0) {
			/* a whole body from the disk cache: reads are local from now on */
			b->fd = cached_fd;
			cached_fd = -1;
			b->have = cached_size;
			b->complete = TRUE;
			b->in_bc = TRUE;
			set_exact_size_locked(msg, cached_size);
		}
	}
	if (cached_fd >= 0)
		close(cached_fd);
	if (b->lru != NULL)
		lru_remove_locked(store, b);
	b->refs++;
	g_mutex_unlock(&store->lock);
	return b;
}

void
store_body_unref(StoreBody *body)
{
	Store *store;

	if (body == NULL)
		return;
	store = body->store;
	g_mutex_lock(&store->lock);
	if (--body->refs == 1 && body->in_bc && !body->fetching) {
		/* the disk cache has it: no need to keep a descriptor */
		g_hash_table_remove(store->bodies, body->key);
		body_free(body);
	} else if (body->refs == 1) {
		lru_push_locked(store, body);
		evict_locked(store);
	} else if (body->refs == 0) {
		body_free(body);
	}
	g_mutex_unlock(&store->lock);
}

void
store_bodies_mark_stale(Store *store, const char *mailbox, guint32 uidvalidity)
{
	GHashTableIter it;
	gpointer v;

	g_mutex_lock(&store->lock);
	g_hash_table_iter_init(&it, store->bodies);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		StoreBody *b = v;

		if (b->msg->info.uidvalidity == uidvalidity &&
		    strcmp(b->msg->info.mailbox, mailbox) == 0)
			b->stale = TRUE;
	}
	g_mutex_unlock(&store->lock);
}

/* FALSE with STORE_ERROR_STALE when @body's folder was reset since it was opened. */
static gboolean
check_stale(Store *store, StoreBody *body, GError **error)
{
	gboolean stale;

	g_mutex_lock(&store->lock);
	stale = body->stale;
	g_mutex_unlock(&store->lock);
	if (stale)
		g_set_error(error, STORE_ERROR, STORE_ERROR_STALE,
			    "message %u of %s: the folder's UIDVALIDITY changed",
			    body->msg->info.uid, body->msg->info.mailbox);
	return !stale;
}

void
store_body_cache_clear(Store *store)
{
	GHashTableIter it;
	gpointer v;

	g_mutex_lock(&store->lock);
	g_hash_table_iter_init(&it, store->bodies);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		StoreBody *b = v;

		if (b->lru != NULL)
			lru_remove_locked(store, b);
		g_hash_table_iter_remove(&it);
		/* also bodies of handles never released: after a lazy unmount the kernel
		 * drops the RELEASE of files closed later, and no request runs any more */
		body_free(b);
	}
	g_mutex_unlock(&store->lock);
}

static int
open_temp(GError **error)
{
	const char *dir = g_get_tmp_dir();
	g_autofree char *path = NULL;
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	path = g_build_filename(dir, "imapfs-body-XXXXXX", NULL);
	fd = g_mkstemp_full(path, O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;

		g_set_error(error, STORE_ERROR, STORE_ERROR_IO, "temp file in %s: %s", dir,
			    g_strerror(e));
		return -1;
	}
	unlink(path);
	return fd;
}

/* Records the exact size; TRUE when it differs from what the message said. */
static gboolean
set_exact_size_locked(StoreMessage *msg, guint64 size)
{
	gboolean changed = msg->size != size;

	if (changed)
		g_message("message %u in %s: server sent %" G_GUINT64_FORMAT
			  " bytes, RFC822.SIZE said %" G_GUINT64_FORMAT,
			  msg->info.uid, msg->info.mailbox, size, msg->size);
	msg->size = size;
	msg->size_exact = TRUE;
	return changed;
}

static gssize
pread_all(int fd, char *buf, gsize n, guint64 off, GError **error)
{
	gsize done = 0;

	while (done < n) {
		ssize_t r = pread(fd, buf + done, n - done, off + done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			g_set_error(error, STORE_ERROR, STORE_ERROR_IO, "body temp file: %s",
				    r < 0 ? g_strerror(errno) : "short read");
			return -1;
		}
		done += r;
	}
	return done;
}

void
store_body_commit_writer(Store *store, StoreMessage *msg, BodycacheWriter *w, guint64 size)
{
	g_autoptr(GError) error = NULL;
	int rfd = bodycache_writer_commit(w, &error);

	if (rfd < 0) {
		bodycache_log_failure(store->bc, error);
		return;
	}
	close(rfd);
	if (store_hc(store) != NULL &&
	    !hcache_message_set_true_size(store->hc, msg->hc_id, msg->info.uidvalidity,
					  msg->info.uid, size, &error))
		store_cache_error(store, error);
}

/* Copies the complete body in @fd (@size bytes) into the disk cache: for a body that lives
 * in a temp file (its cache file was given up when the disk was full). On the committer
 * thread, never on a reader's path. */
static void
commit_copy(Store *store, StoreMessage *msg, int fd, guint64 size)
{
	g_autoptr(GError) error = NULL;
	BodycacheWriter *w;

	w = bodycache_writer_new(store->bc, msg->hc_id, msg->info.uidvalidity, msg->info.uid,
				 &error);
	if (w != NULL && !bodycache_writer_copy(w, fd, size, &error))
		g_clear_pointer(&w, bodycache_writer_abort);
	if (w == NULL) {
		bodycache_log_failure(store->bc, error);
		return;
	}
	store_body_commit_writer(store, msg, w, size);
}

/* A body waiting for the committer: the message and its cache file, or a private fd on
 * its bytes to copy. */
typedef struct {
	Store *store;
	StoreMessage *msg;  /* a reference */
	BodycacheWriter *w; /* the body's cache file (owned), or NULL: then fd */
	int fd;		    /* dup of the body's temp file, or -1 */
	guint64 size;
} CommitJob;

/* Cache files the committer keeps made ahead for the next fetches (open_file). */
#define SPARE_WRITERS 16

/* Bodies queued beyond this are not cached: they are fetched again when read again. */
#define COMMIT_QUEUE_MAX 64

static void
commit_job_free(CommitJob *job)
{
	if (job->fd >= 0)
		close(job->fd);
	bodycache_writer_abort(job->w);
	store_message_unref(job->msg);
	g_free(job);
}

static void
commit_job_run(gpointer data, gpointer user_data)
{
	CommitJob *job = data;

	if (job->w != NULL)
		store_body_commit_writer(job->store, job->msg, g_steal_pointer(&job->w), job->size);
	else
		commit_copy(job->store, job->msg, job->fd, job->size);
	/* the files the next fetches will stream into, made here and not on their path */
	bodycache_writers_prepare(job->store->bc, SPARE_WRITERS);
	commit_job_free(job);
}

GThreadPool *
store_body_committer_new(Store *store)
{
	g_autoptr(GError) error = NULL;
	GThreadPool *pool = g_thread_pool_new_full(commit_job_run, store,
						   (GDestroyNotify)commit_job_free, 1, FALSE,
						   &error);

	if (pool == NULL)
		g_message("body cache: no committer thread (%s): bodies are not cached",
			  error->message);
	return pool;
}

void
store_body_committer_free(GThreadPool *committer)
{
	/* Not immediate: the queued bodies (at most COMMIT_QUEUE_MAX) are committed before
	 * unmount completes, so what was read before an unmount is there offline. */
	g_thread_pool_free(committer, FALSE, TRUE);
}

/* Hands the complete body to the committer: its cache file @w (taken: aborted when it
 * cannot be queued), or without one the bytes in @fd. FALSE when it was not queued. */
static gboolean
queue_commit(Store *store, StoreMessage *msg, int fd, BodycacheWriter *w, guint64 size)
{
	CommitJob *job;
	int copy = -1;

	if (store->committer == NULL ||
	    g_thread_pool_unprocessed(store->committer) >= COMMIT_QUEUE_MAX ||
	    (w == NULL && (copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)) {
		bodycache_writer_abort(w);
		return FALSE;
	}
	job = g_new0(CommitJob, 1);
	job->store = store;
	job->msg = store_message_ref(msg);
	job->w = w;
	job->fd = copy;
	job->size = size;
	if (!g_thread_pool_push(store->committer, job, NULL)) {
		commit_job_free(job);
		return FALSE;
	}
	return TRUE;
}

typedef enum { F_NONE, F_WHOLE, F_PREFIX, F_REST, F_RANGE } FetchKind;

/* One shared fetch into a body's file (inflight.c); the waiters read size_changed. */
typedef struct {
	StoreBody *body; /* a user reference (refs) */
	FetchKind kind;
	guint64 from, len;
	int fd;		       /* atomic: body->fd as the worker writes to it, -1 before */
	gboolean size_changed; /* set by the worker before it ends */
} FetchJob;

static void
fetch_job_free(FetchJob *job)
{
	store_body_unref(job->body);
	g_free(job);
}

/* Waiters' progress probe: the bytes written so far (the file only grows). */
static guint64
fetch_job_probe(gpointer data)
{
	FetchJob *job = data;
	int fd = g_atomic_int_get(&job->fd);
	struct stat st;

	return fd >= 0 && fstat(fd, &st) == 0 ? (guint64)st.st_size : 0;
}

/* The file of @body's first fetch, published in body->fd (readers pread() only below
 * body->have, which no fetch has moved yet). A body that will be committed to the body
 * cache is fetched straight into a writer's file there, so the bytes land where they stay
 * and the commit is an fsync and a rename (the committer makes those files ahead, off the
 * readers' path: bodycache_writers_prepare); any other body (-o no_cache, -o sync=none, no
 * header-cache row, a writer that cannot be made) into an unlinked temp file. */
static int
open_file(Store *store, StoreBody *body, GError **error)
{
	StoreMessage *msg = body->msg;
	Bodycache *bc = store_bc(store);
	g_autoptr(GError) local = NULL;
	BodycacheWriter *w = NULL;
	int fd = -1;

	if (bc != NULL && msg->hc_id != 0 && store->sync != STORE_SYNC_NONE) {
		w = bodycache_writer_new(bc, msg->hc_id, msg->info.uidvalidity, msg->info.uid,
					 &local);
		if (w == NULL)
			bodycache_log_failure(bc, local);
		else if ((fd = fcntl(bodycache_writer_get_fd(w), F_DUPFD_CLOEXEC, 0)) < 0)
			g_clear_pointer(&w, bodycache_writer_abort);
	}
	if (fd < 0)
		fd = open_temp(error);
	if (fd < 0)
		return -1;
	g_mutex_lock(&store->lock);
	body->fd = fd;
	body->w = w;
	g_mutex_unlock(&store->lock);
	return fd;
}

/* Logs why a fetch into @w's file (@fd) failed: @error is a bodycache error, or the
 * IMAP_ERROR_FAILED that imap_fetch_body_sync() makes of a failed write (it speaks no
 * errno). Then a file system that cannot take one more block past the bytes written is a
 * full disk, logged once like every other cache insert; anything else as it came. */
static void
log_cache_write(Store *store, BodycacheWriter *w, int fd, const GError *error)
{
	g_autoptr(GError) full = NULL;
	g_autoptr(GError) e = NULL;
	struct stat st;

	if (error->domain == BODYCACHE_ERROR) {
		bodycache_log_failure(store->bc, error);
		return;
	}
	if (fstat(fd, &st) == 0 && !bodycache_writer_reserve(w, st.st_size, ALIGN, &full)) {
		bodycache_log_failure(store->bc, full);
		return;
	}
	e = g_error_new(BODYCACHE_ERROR, BODYCACHE_ERROR_IO, "body cache: %s", error->message);
	bodycache_log_failure(store->bc, e);
}

/* @body's cache file cannot take its bytes (a full disk): its first @have bytes move to a
 * temp file, which every later fetch uses, and the cache file is given up (its name goes
 * with the writer, its descriptor stays open in body->old_fd while the body lives, as a
 * reader may be in pread() on it). Called once at most: body->w is NULL afterwards. The new
 * fd, or -1 with @error. */
static int
leave_cache(Store *store, StoreBody *body, guint64 have, GError **error)
{
	char buf[65536];
	BodycacheWriter *w;
	int tmp, old;

	tmp = open_temp(error);
	if (tmp < 0)
		return -1;
	g_mutex_lock(&store->lock);
	old = body->fd;
	g_mutex_unlock(&store->lock);
	for (guint64 off = 0; off < have;) {
		gssize r = pread_all(old, buf, MIN(sizeof(buf), have - off), off, error);
		gssize done = 0;

		if (r < 0) {
			close(tmp);
			return -1;
		}
		while (done < r) {
			ssize_t m = pwrite(tmp, buf + done, r - done, off + done);

			if (m < 0 && errno == EINTR)
				continue;
			if (m <= 0) {
				g_set_error(error, STORE_ERROR, STORE_ERROR_IO,
					    "body temp file: %s",
					    m < 0 ? g_strerror(errno) : "short write");
				close(tmp);
				return -1;
			}
			done += m;
		}
		off += r;
	}
	g_mutex_lock(&store->lock);
	w = g_steal_pointer(&body->w);
	body->old_fd = body->fd;
	body->fd = tmp;
	g_mutex_unlock(&store->lock);
	bodycache_writer_abort(w);
	return tmp;
}

/* The worker of a shared fetch: streams into the body's file with the operation's
 * @cancel, then publishes the new prefix and clears body->fetching/inflight under the lock.
 * A complete body whose file is a cache writer's goes to the committer (fsync + rename);
 * one in a temp file is copied there. A full disk under the cache moves the body to a temp
 * file (leave_cache) and the fetch goes on there: reads never fail for want of cache room. */
static gboolean
fetch_run(StoreInflight *op, gpointer data, GCancellable *cancel, GError **error)
{
	FetchJob *job = data;
	StoreBody *body = job->body;
	Store *store = body->store;
	StoreMessage *msg = body->msg;
	const StoreMessageInfo *info = &msg->info;
	guint64 from = job->from, len = job->len, end;
	FetchKind kind = job->kind;
	BodycacheWriter *drop = NULL;
	gboolean ok, commit = FALSE;
	GError *local = NULL;
	gint64 got = -1;
	int fd;

	g_mutex_lock(&store->lock);
	fd = body->fd;
	/* what this fetch should bring, reserved in a cache file */
	end = kind == F_PREFIX ? MIN(len, msg->size) : msg->size;
	g_mutex_unlock(&store->lock);
	if (fd < 0)
		fd = open_file(store, body, &local);
	while (fd >= 0) {
		g_atomic_int_set(&job->fd, fd);
		/* from == body->have: drop what an earlier failed fetch left beyond it, so the
		 * waiters' probe (the file size) sees this fetch's bytes as progress */
		if (ftruncate(fd, from) < 0 || lseek(fd, from, SEEK_SET) < 0) {
			g_set_error(&local, STORE_ERROR, STORE_ERROR_IO, "seek: %s",
				    g_strerror(errno));
			break;
		}
		if (body->w != NULL &&
		    !bodycache_writer_reserve(body->w, from, end > from ? end - from : 0, &local)) {
			/* no room in the cache for the body: fetched into a temp file */
		} else if (kind == F_WHOLE) {
			got = imap_fetch_body_sync(store->pool, info->mailbox, info->uidvalidity,
						   info->uid, 0, 0, fd, NULL, cancel, &local);
		} else {
			got = imap_fetch_body_sync(store->pool, info->mailbox, info->uidvalidity,
						   info->uid, from,
						   kind == F_REST ? G_MAXUINT32 : len, fd, NULL,
						   cancel, &local);
		}
		/* IMAP_ERROR_FAILED: the write into the file failed (e.g. a disk full that the
		 * reservation did not see, RFC822.SIZE being short) */
		if (got >= 0 || body->w == NULL ||
		    (local->domain != BODYCACHE_ERROR &&
		     !g_error_matches(local, IMAP_ERROR, IMAP_ERROR_FAILED)))
			break;
		log_cache_write(store, body->w, fd, local);
		g_clear_error(&local);
		fd = leave_cache(store, body, from, &local);
	}
	ok = got >= 0;
	/* the message ended before RFC822.SIZE said: what was reserved beyond goes */
	if (ok && body->w != NULL && (guint64)(from + got) < end && ftruncate(fd, from + got) < 0)
		g_debug("body cache file: ftruncate: %s", g_strerror(errno));

	g_mutex_lock(&store->lock);
	if (ok) {
		if (kind == F_PREFIX && (guint64)got == len) {
			body->have = len;
		} else {
			/* F_WHOLE, F_REST, or a prefix that hit the end */
			body->have = from + got;
			body->complete = TRUE;
			if (set_exact_size_locked(msg, body->have))
				job->size_changed = TRUE;
			commit = store_bc(store) != NULL && msg->hc_id != 0 && !body->in_bc &&
				 store->sync != STORE_SYNC_NONE;
		}
	}
	if (commit) {
		/* The committer writes it to disk; the readers go on at once. in_bc stays
		 * set even if the queue was full: this body object is not offered again, a
		 * later one is. */
		body->in_bc = TRUE;
		queue_commit(store, msg, fd, g_steal_pointer(&body->w), from + got);
	} else if (body->complete) {
		/* not to be cached after all (the cache was reset meanwhile): its file is
		 * just a temp file now */
		drop = g_steal_pointer(&body->w);
	}
	body->fetching = FALSE;
	body->inflight = NULL;
	g_cond_broadcast(&store->cond);
	g_mutex_unlock(&store->lock);
	bodycache_writer_abort(drop);
	if (!ok)
		g_propagate_error(error, local);
	return ok;
}

static gssize read_impl(Store *store, StoreBody *body, guint64 offset, gsize size, char *buf,
			gboolean stream, gboolean *size_changed, GCancellable *cancel,
			GError **error);

static gboolean verify_size(Store *store, StoreBody *body, gboolean *size_changed,
			    GCancellable *cancel, GError **error);

gboolean
store_body_verify_size_sync(Store *store, StoreBody *body, gboolean *size_changed,
			    GCancellable *cancel, GError **error)
{
	GError *local = NULL;
	gboolean ok;

	if (size_changed != NULL)
		*size_changed = FALSE;
	if (!check_stale(store, body, error))
		return FALSE;
	ok = verify_size(store, body, size_changed, cancel, &local);
	if (!ok) {
		store_check_uidvalidity_error(store, &body->msg->info, local);
		g_propagate_error(error, local);
	}
	return ok;
}

static gboolean
verify_size(Store *store, StoreBody *body, gboolean *size_changed, GCancellable *cancel,
	    GError **error)
{
	StoreMessage *msg = body->msg;
	const StoreMessageInfo *info = &msg->info;
	g_autoptr(GBytes) tail = NULL;
	guint64 claimed;
	gboolean exact;
	gint64 got;
	char c;

	if (size_changed != NULL)
		*size_changed = FALSE;
	g_mutex_lock(&store->lock);
	claimed = msg->size;
	exact = msg->size_exact;
	g_mutex_unlock(&store->lock);
	if (exact)
		return TRUE;
	if (store_is_offline(store)) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_OFFLINE,
			    "offline: message %u of %s is not in the cache", info->uid,
			    info->mailbox);
		return FALSE;
	}
	if (claimed <= SMALL_WHOLE)
		return read_impl(store, body, 0, 1, &c, FALSE, size_changed, cancel, error) >= 0;
	{
		GCancellable *call = store_call_begin(store, cancel, error);

		got = call == NULL ? -1
				   : imap_fetch_body_sync(store->pool, info->mailbox,
							  info->uidvalidity, info->uid, claimed - 1,
							  2, -1, &tail, call, error);
		store_call_end(store, call);
	}
	if (got < 0)
		return FALSE;
	if (got == 1) {
		g_mutex_lock(&store->lock);
		if (msg->size == claimed)
			msg->size_exact = TRUE;
		g_mutex_unlock(&store->lock);
		return TRUE;
	}
	/* longer or shorter than it said: only the whole body tells the truth */
	return read_impl(store, body, 0, 1, &c, TRUE, size_changed, cancel, error) >= 0;
}

gssize
store_body_read_sync(Store *store, StoreBody *body, guint64 offset, gsize size, char *buf,
		     gboolean *size_changed, GCancellable *cancel, GError **error)
{
	GError *local = NULL;
	gssize n;

	if (size_changed != NULL)
		*size_changed = FALSE;
	if (!check_stale(store, body, error))
		return -1;
	n = read_impl(store, body, offset, size, buf, FALSE, size_changed, cancel, &local);
	if (n < 0) {
		store_check_uidvalidity_error(store, &body->msg->info, local);
		g_propagate_error(error, local);
	}
	return n;
}

/* Waits for the shared fetch @op (a waiter's reference, given back) of a body. */
static gboolean
wait_fetch(Store *store, StoreInflight *op, gboolean *size_changed, GCancellable *cancel,
	   GError **error)
{
	FetchJob *job;
	gboolean ok;

	store_inflight_ref(op);
	ok = store_inflight_wait(op, store->idle_us, cancel, error);
	job = store_inflight_get_data(op);
	if (ok && job->size_changed && size_changed != NULL)
		*size_changed = TRUE;
	store_inflight_unref(op);
	return ok;
}

/* @stream: the size must be learnt by streaming the whole body. */
static gssize
read_impl(Store *store, StoreBody *body, guint64 offset, gsize size, char *buf, gboolean stream,
	  gboolean *size_changed, GCancellable *cancel, GError **error)
{
	StoreMessage *msg = body->msg;
	const StoreMessageInfo *info = &msg->info;

	if (size_changed != NULL)
		*size_changed = FALSE;
	for (;;) {
		FetchKind kind = F_NONE;
		guint64 claimed, have, from = 0, len = 0, want_end;
		gboolean ok;
		gint64 got;
		g_autoptr(GBytes) bytes = NULL;
		GError *local = NULL;
		GCancellable *call;
		int fd;

		g_mutex_lock(&store->lock);
		claimed = msg->size;
		have = body->have;
		want_end = offset + size;
		if (body->complete || want_end <= have) {
			guint64 end = body->complete ? have : want_end;
			gsize n = offset >= end ? 0 : MIN(size, end - offset);

			fd = body->fd;
			g_mutex_unlock(&store->lock);
			return n == 0 ? 0 : pread_all(fd, buf, n, offset, error);
		}
		if (body->inflight != NULL) {
			/* another reader is fetching into the file: share its outcome */
			StoreInflight *op = store_inflight_join(body->inflight);

			if (op == NULL) {
				/* abandoned by its waiters and being cancelled: wait it out */
				if (g_cancellable_set_error_if_cancelled(cancel, error)) {
					g_mutex_unlock(&store->lock);
					return -1;
				}
				g_cond_wait_until(&store->cond, &store->lock,
						  g_get_monotonic_time() +
							  50 * G_TIME_SPAN_MILLISECOND);
				g_mutex_unlock(&store->lock);
				continue;
			}
			g_mutex_unlock(&store->lock);
			if (!wait_fetch(store, op, size_changed, cancel, error))
				return -1;
			continue;
		}
		if (store_is_offline(store)) {
			g_mutex_unlock(&store->lock);
			g_set_error(error, STORE_ERROR, STORE_ERROR_OFFLINE,
				    "offline: message %u of %s is not in the cache", info->uid,
				    info->mailbox);
			return -1;
		}
		if (stream || (offset <= have && (have > 0 || claimed <= SMALL_WHOLE))) {
			kind = have > 0 ? F_REST : F_WHOLE;
			from = have;
		} else if (offset <= have) {
			from = 0;
			len = (want_end + ALIGN - 1) / ALIGN * ALIGN;
			kind = len >= claimed ? F_WHOLE : F_PREFIX;
		} else {
			from = offset / ALIGN * ALIGN;
			len = (want_end + ALIGN - 1) / ALIGN * ALIGN - from;
			kind = F_RANGE;
			if (from + len >= claimed)
				len = G_MAXUINT32; /* to the real end, to learn the exact size */
		}
		if (kind != F_RANGE) {
			/* a shared fetch into the body's file (opened by the worker the first
			 * time), run by a worker; we wait for it like any later reader */
			FetchJob *job = g_new0(FetchJob, 1);
			StoreInflight *op;

			job->body = body;
			job->kind = kind;
			job->from = from;
			job->len = len;
			job->fd = -1;
			op = store_inflight_start(store->inflight, fetch_run, job,
						  (GDestroyNotify)fetch_job_free, error);
			if (op == NULL) {
				g_mutex_unlock(&store->lock);
				g_free(job);
				return -1;
			}
			body->refs++; /* the job's, dropped by fetch_job_free */
			body->fetching = TRUE;
			body->inflight = op;
			g_mutex_unlock(&store->lock);
			store_inflight_set_probe(op, fetch_job_probe, job);
			if (!wait_fetch(store, op, size_changed, cancel, error))
				return -1;
			continue;
		}
		g_mutex_unlock(&store->lock);

		call = store_call_begin(store, cancel, error);
		if (call == NULL)
			return -1;
		got = imap_fetch_body_sync(store->pool, info->mailbox, info->uidvalidity, info->uid,
					   from, len, -1, &bytes, call, &local);
		store_call_end(store, call);
		ok = got >= 0;

		g_mutex_lock(&store->lock);
		/* F_RANGE: serve from memory. */
		if (ok && got == 0 && from > 0) {
			/* the message ends before @from: only the whole body tells where */
			g_mutex_unlock(&store->lock);
			stream = TRUE;
			continue;
		}
		if (ok && len == G_MAXUINT32) {
			if (set_exact_size_locked(msg, from + got) && size_changed)
				*size_changed = TRUE;
		} else if (ok && (guint64)got < len) {
			/* the message ended before RFC822.SIZE said */
			if (set_exact_size_locked(msg, from + got) && size_changed)
				*size_changed = TRUE;
		}
		g_mutex_unlock(&store->lock);
		if (!ok) {
			g_propagate_error(error, local);
			return -1;
		}
		{
			gsize blen = 0;
			const char *data = bytes ? g_bytes_get_data(bytes, &blen) : NULL;
			guint64 skip = offset - from;
			gsize n;

			if (blen <= skip)
				return 0;
			n = MIN(size, blen - skip);
			memcpy(buf, data + skip, n);
			return n;
		}
	}
}
