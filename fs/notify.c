/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * notify.c: kernel cache invalidation. Requests are queued and run on one thread of their
 * own, because fuse_lowlevel_notify_*() must not run inside the handler of a related
 * operation nor under a lock a handler may need (include/fuse_lowlevel.h). Later issues
 * feed server changes (IDLE, resync) through here.
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
	char *name; /* NULL: invalidate the inode, else the entry @name in directory @ino */
} Job;

static void
run(gpointer data, gpointer user_data)
{
	Job *job = data;
	FsNotify *n = user_data;
	int r;

	if (job->name != NULL)
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
push(FsNotify *n, fuse_ino_t ino, const char *name)
{
	Job *job;

	if (n == NULL)
		return;
	job = g_new0(Job, 1);
	job->ino = ino;
	job->name = g_strdup(name);
	g_thread_pool_push(n->pool, job, NULL);
}

void
fs_notify_inval_inode(FsNotify *n, fuse_ino_t ino)
{
	push(n, ino, NULL);
}

void
fs_notify_inval_entry(FsNotify *n, fuse_ino_t parent, const char *name)
{
	push(n, parent, name);
}
