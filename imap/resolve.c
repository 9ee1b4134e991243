/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * resolve.c: getaddrinfo() with a deadline. The lookup runs on its own thread and
 * signals a pipe when done; the caller polls that pipe, its cancel fd and the deadline.
 * The job is shared by reference, so whichever side finishes last frees it: a caller
 * that gave up never waits for a stuck resolver.
 */
#define G_LOG_DOMAIN "imapfs-imap"

#include "config.h"

#include "resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

typedef struct {
	gint ref;
	char *host;
	char *port;
	int pipe[2];          /* the thread writes one byte to pipe[1] when done */
	int rc;               /* getaddrinfo's result; read after the byte arrives */
	struct addrinfo *res; /* owned by the job until taken */
} ResolveJob;

static void
job_unref(ResolveJob *job)
{
	if (!g_atomic_int_dec_and_test(&job->ref))
		return;
	if (job->res)
		freeaddrinfo(job->res);
	close(job->pipe[0]);
	close(job->pipe[1]);
	g_free(job->host);
	g_free(job->port);
	g_free(job);
}

static gpointer
resolve_thread(gpointer data)
{
	ResolveJob *job = data;
	struct addrinfo hints = { 0 };
	char done = 1;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	job->rc = getaddrinfo(job->host, job->port, &hints, &job->res);
	/* The write publishes rc/res to the reader (a pipe is a full barrier in practice; the
	 * reader also reads them only after the byte). */
	while (write(job->pipe[1], &done, 1) < 0 && errno == EINTR)
		;
	job_unref(job);
	return NULL;
}

struct addrinfo *
imap_resolve_sync(const char *host, const char *port, gint64 deadline, int cancel_fd,
		  GError **error)
{
	ResolveJob *job = g_new0(ResolveJob, 1);
	g_autoptr(GError) terr = NULL;
	struct addrinfo *res = NULL;
	GThread *thread;

	job->ref = 2;
	job->host = g_strdup(host);
	job->port = g_strdup(port);
	if (pipe2(job->pipe, O_CLOEXEC) < 0) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_FAILED, "pipe: %s", g_strerror(errno));
		job->ref = 1;
		job->pipe[0] = job->pipe[1] = -1;
		job_unref(job);
		return NULL;
	}
	thread = g_thread_try_new("imap-resolve", resolve_thread, job, &terr);
	if (!thread) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_FAILED, "cannot start resolver: %s",
			    terr->message);
		job->ref = 1;
		job_unref(job);
		return NULL;
	}
	g_thread_unref(thread);

	for (;;) {
		struct pollfd pfd[2] = { { job->pipe[0], POLLIN, 0 }, { cancel_fd, POLLIN, 0 } };
		gint64 now = g_get_monotonic_time();
		int r;

		if (now >= deadline) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT,
				    "timed out resolving %s", host);
			break;
		}
		r = poll(pfd, cancel_fd >= 0 ? 2 : 1, (int)MIN((deadline - now + 999) / 1000, 1000));
		if (r < 0 && errno != EINTR) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_FAILED, "poll: %s",
				    g_strerror(errno));
			break;
		}
		if (r > 0 && cancel_fd >= 0 && (pfd[1].revents & POLLIN)) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_CANCELLED, "cancelled");
			break;
		}
		if (r > 0 && pfd[0].revents) {
			if (job->rc != 0)
				g_set_error(error, IMAP_ERROR, IMAP_ERROR_CONNECT,
					    "cannot resolve %s: %s", host, gai_strerror(job->rc));
			else
				res = g_steal_pointer(&job->res);
			break;
		}
	}
	job_unref(job);
	return res;
}
