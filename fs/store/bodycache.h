/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bodycache.h: whole message bodies as files under <dir>/bodies/, keyed by (mailbox key,
 * UIDVALIDITY, UID). Bodies are immutable per UID, so an entry is never revalidated; it
 * is committed by tmp + fsync + rename (never visible half-written, even after kill -9)
 * and evicted least-recently-used under a byte cap. No FUSE, no network.
 *
 * Layout: <dir>/bodies/<mailbox key, 16 hex>/<uidvalidity>-<uid>, files 0600, dirs 0700;
 * <dir>/bodies/.tmp-* are writes in progress or files made ahead for them (removed at open
 * and, unused, at close); <dir>/bodies/lock is flock'ed by the owner. The mailbox key is
 * the hcache mailbox id (or any stable 64-bit number, e.g. hcache_hash_dir(name), when
 * running without the header cache).
 *
 * Nothing found under <dir>/bodies is followed through a symlink, and only names of the
 * forms above (regular files with one link, owned by us) are indexed or removed; anything
 * else there is left alone.
 *
 * Threads: every function is thread-safe. A lookup returns an fd: eviction or a drop may
 * unlink the file at any time, the fd stays readable (Linux unlink semantics).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BODYCACHE_ERROR (bodycache_error_quark())
GQuark bodycache_error_quark(void);

typedef enum {
	BODYCACHE_ERROR_IO,	/* local I/O failure */
	BODYCACHE_ERROR_FULL,	/* ENOSPC, EDQUOT, EFBIG: caller keeps working uncached */
	BODYCACHE_ERROR_IN_USE, /* another process owns the directory */
} BodycacheErrorCode;

#define BODYCACHE_DEFAULT_CAP (G_GUINT64_CONSTANT(1) << 30) /* 1 GiB */

typedef struct _Bodycache Bodycache;

/* Opens the cache in @dir/bodies (created 0700; @dir itself is created 0700 if missing).
 * Removes leftover temp files of a crashed run, indexes existing bodies (LRU order from
 * their mtime, which lookups refresh) and evicts down to @cap bytes (0 = default). */
Bodycache *bodycache_open(const char *dir, guint64 cap, GError **error);
void bodycache_close(Bodycache *bc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Bodycache, bodycache_close)

/* Changes the cap and evicts down to it. */
void bodycache_set_cap(Bodycache *bc, guint64 cap);

/* An fd (O_RDONLY, O_CLOEXEC; the caller closes it) on the cached body and its size in
 * *@size, or -1 on a miss. Marks the entry most recently used. */
int bodycache_lookup(Bodycache *bc, guint64 mbox, guint32 uidvalidity, guint32 uid, guint64 *size);
gboolean bodycache_contains(Bodycache *bc, guint64 mbox, guint32 uidvalidity, guint32 uid);

/* Streaming insert: write the body to bodycache_writer_get_fd() (e.g. pass it to
 * imap_fetch_body_sync), then commit or abort. Both free @w. */
typedef struct _BodycacheWriter BodycacheWriter;
BodycacheWriter *bodycache_writer_new(Bodycache *bc, guint64 mbox, guint32 uidvalidity, guint32 uid,
				      GError **error);
int bodycache_writer_get_fd(BodycacheWriter *w);
/* Makes temp files ahead (up to @n kept) for the next bodycache_writer_new() calls: creating
 * a file in the cache directory can wait behind the journal commits of the fsyncs there,
 * so the thread that commits makes them, not the thread a reader waits on. */
void bodycache_writers_prepare(Bodycache *bc, guint n);
/* Reserves room for the bytes [@offset, @offset + @len) of @w's file (fallocate, keeping
 * the file's size), so that a full disk shows before a body is fetched rather than in the
 * middle of the fetch. FALSE with BODYCACHE_ERROR_FULL (ENOSPC, EDQUOT, EFBIG); TRUE also
 * when the file system cannot reserve (a full disk then shows as a failed write). */
gboolean bodycache_writer_reserve(BodycacheWriter *w, guint64 offset, guint64 len, GError **error);
/* fsync + rename into place, then evicts down to the cap. Returns an fd for reading
 * the committed body (valid even if it is evicted at once, e.g. larger than the cap),
 * or -1 with @error (nothing is cached then). */
int bodycache_writer_commit(BodycacheWriter *w, GError **error);
void bodycache_writer_abort(BodycacheWriter *w);
/* Copies the first @size bytes of @fd into @w. FALSE with @error (BODYCACHE_ERROR_FULL
 * for ENOSPC, EDQUOT, EFBIG); @w is left to the caller to abort. */
gboolean bodycache_writer_copy(BodycacheWriter *w, int fd, guint64 size, GError **error);
/* Logs a failed insert: a full disk once (until an insert succeeds again), anything else
 * every time. */
void bodycache_log_failure(Bodycache *bc, const GError *error);

/* One-shot insert of @len bytes. */
gboolean bodycache_add(Bodycache *bc, guint64 mbox, guint32 uidvalidity, guint32 uid,
		       const void *data, gsize len, GError **error);

/* Forgets one body (the message was expunged). */
void bodycache_remove(Bodycache *bc, guint64 mbox, guint32 uidvalidity, guint32 uid);
/* Forgets every body of @mbox whose UIDVALIDITY is not @keep_uidvalidity (0: all).
 * Returns how many files were removed. */
guint bodycache_drop_mailbox(Bodycache *bc, guint64 mbox, guint32 keep_uidvalidity);
/* Forgets every body (the header cache that keyed them was lost). Returns the count. */
guint bodycache_drop_all(Bodycache *bc);

typedef struct {
	guint64 bytes; /* total size of the cached bodies */
	guint64 files;
	guint64 cap;
	guint64 hits, misses, evictions; /* since open */
} BodycacheStats;
void bodycache_get_stats(Bodycache *bc, BodycacheStats *out);

G_END_DECLS
