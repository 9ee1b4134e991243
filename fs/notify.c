/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * notify.c: kernel cache invalidation. Requests are queued and run on one thread of their
 * own, because fuse_lowlevel_notify_*() must not run inside the handler of a related
 * operation nor under a lock a handler may need (include/fuse_lowlevel.h). events.c feeds
 * every change of the store through here; a deletion is told as one (notify_delete), so
 * inotify watchers and file managers see it.
 */
#define G_LOG_DOMAIN "imapfs"

#include "config.h"

#include <errno.h>
#include <string.h>

#include "fs.h"

struct _FsNotify {
	struct fuse_session *se; /* immutable */
	GThreadPool *pool;	 /* one thread; owns the queued jobs */
};

typedef struct {
	fuse_ino_t ino;
	fuse_ino_t child; /* non-zero: @name (inode @child) was deleted from directory @ino */
	char *name; /* NULL: invalidate the inode, else the entry @name in directory @ino */
} Job;

static void
run(gpointer data, gpointer user_data)
{
	Job *job = data;
	FsNotify *n = user_data;
	int r;

	if (job->child != 0)
		r = fuse_lowlevel_notify_delete(n->se, job->ino, job->child, job->name,
						strlen(job->name));
	else if (job->name != NULL)
		r = fuse_lowlevel_notify_inval_entry(n->se, job->ino, job->name, strlen(job->name));
	else
		r = fuse_lowlevel_notify_inval_inode(n->se, job->ino, 0, 0);
	/* -ENOENT: the kernel did not know it, nothing to drop */
	if (r != 0 && r != -ENOENT && r != -EBADF)
		g_debug("invalidation of %lu failed: %s", (unsigned long)job->ino, g_strerror(-r));
	g_free(job->name);
	g_free(job);
}

FsNotify *
fs_notify_new(struct fuse_session *se)
{
	FsNotify *n = g_new0(FsNotify, 1);

	n->se = se;
	n->pool = g_thread_pool_new(run, n, 1, FALSE, NULL);
	return n;
}

void
fs_notify_free(FsNotify *n)
{
	if (n == NULL)
		return;
	g_thread_pool_free(n->pool, TRUE, TRUE);
	g_free(n);
}

static void
push(FsNotify *n, fuse_ino_t ino, fuse_ino_t child, const char *name)
{
	Job *job;

	if (n == NULL)
		return;
	job = g_new0(Job, 1);
	job->ino = ino;
	job->child = child;
	job->name = g_strdup(name);
	g_thread_pool_push(n->pool, job, NULL);
}

void
fs_notify_inval_inode(FsNotify *n, fuse_ino_t ino)
{
	push(n, ino, 0, NULL);
}

void
fs_notify_inval_entry(FsNotify *n, fuse_ino_t parent, const char *name)
{
	push(n, parent, 0, name);
}

void
fs_notify_delete(FsNotify *n, fuse_ino_t parent, fuse_ino_t child, const char *name)
{
	push(n, parent, child, name);
}

typedef struct {
	fuse_ino_t parent, child;
	char *name;
} Inval;

static void
inval_clear(gpointer p)
{
	g_free(((Inval *)p)->name);
}

void
fs_inval_init(FsInval *v)
{
	v->items = g_array_new(FALSE, FALSE, sizeof(Inval));
	g_array_set_clear_func(v->items, inval_clear);
}

void
fs_inval_add(FsInval *v, fuse_ino_t parent, fuse_ino_t child, const char *name)
{
	Inval i = {parent, child, g_strdup(name)};

	g_array_append_val(v->items, i);
}

void
fs_inval_flush(FsInval *v, FsNotify *n)
{
	for (guint k = 0; k < v->items->len; k++) {
		Inval *i = &g_array_index(v->items, Inval, k);

		push(n, i->parent, i->child, i->name);
	}
	g_clear_pointer(&v->items, g_array_unref);
}
