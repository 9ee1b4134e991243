/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * command.c: the secret-giving commands the user configures, run with /bin/sh -c exactly
 * as written (the command string is the user's, nothing of ours is pasted into it), bounded
 * by a timeout, and only the first line of their standard output kept. The OAuth2 token
 * source (-o oauth_token_command=) lives here: the IMAP library calls it before every
 * login, so each (re)connection gets a fresh token. Output buffers are wiped; nothing here
 * logs a token.
 */
#define G_LOG_DOMAIN "imapfs"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib-unix.h>

#include "fs.h"

#define OUTPUT_MAX (64 * 1024) /* a token is a few KiB at most */

G_DEFINE_QUARK(fs-command-error-quark, fs_command_error)

static void
wipe_string(GString *s)
{
	if (s != NULL)
		explicit_bzero(s->str, s->allocated_len);
}

/* Waits for @pid until @deadline (monotonic, µs); kills it after. Returns the wait status,
 * or -1 when it had to be killed. */
static int
reap(GPid pid, gint64 deadline)
{
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -1;
		if (g_get_monotonic_time() >= deadline)
			break;
		g_usleep(10 * 1000);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return -1;
}

char *
fs_command_first_line(const char *what, const char *cmd, guint timeout_s, GError **error)
{
	const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
	g_autoptr(GError) err = NULL;
	GString *out = g_string_sized_new(256);
	gboolean timed_out = FALSE, eof = FALSE;
	GPid pid;
	int fd = -1, status;
	gsize n;
	char *line;

	if (!g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
				      G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_CHILD_INHERITS_STDIN,
				      NULL, NULL, &pid, NULL, &fd, NULL, &err)) {
		g_set_error(error, FS_COMMAND_ERROR, 0, "%s: %s", what, err->message);
		g_string_free(out, TRUE);
		return NULL;
	}
	g_unix_set_fd_nonblocking(fd, TRUE, NULL);
	while (!eof && out->len < OUTPUT_MAX) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		gint64 left = deadline - g_get_monotonic_time();
		char buf[4096];
		ssize_t r;

		if (left <= 0) {
			timed_out = TRUE;
			break;
		}
		if (poll(&p, 1, (int)MAX(1, left / 1000)) < 0 && errno != EINTR)
			break;
		r = read(fd, buf, sizeof(buf));
		if (r > 0)
			g_string_append_len(out, buf, r);
		else if (r == 0 || (errno != EAGAIN && errno != EINTR))
			eof = TRUE;
		explicit_bzero(buf, sizeof(buf));
	}
	close(fd);
	/* the output is complete (or cut): the command gets what is left of the time to
	 * exit; one that keeps running after closing its output is killed then */
	status = reap(pid, timed_out ? 0 : deadline);
	if (timed_out || status == -1) {
		g_set_error(error, FS_COMMAND_ERROR, 0, "%s did not finish within %u s", what,
			    timeout_s);
		wipe_string(out);
		g_string_free(out, TRUE);
		return NULL;
	}
	if (!g_spawn_check_wait_status(status, &err)) {
		g_set_error(error, FS_COMMAND_ERROR, 0, "%s failed: %s", what, err->message);
		wipe_string(out);
		g_string_free(out, TRUE);
		return NULL;
	}
	for (n = 0; n < out->len && out->str[n] != '\n' && out->str[n] != '\r' &&
		    out->str[n] != '\0';
	     n++)
		;
	line = g_strndup(out->str, n);
	wipe_string(out);
	g_string_free(out, TRUE);
	if (*line == '\0') {
		g_set_error(error, FS_COMMAND_ERROR, 0, "%s printed no line", what);
		g_free(line);
		return NULL;
	}
	return line;
}

char *
fs_oauth_token(gpointer data, GError **error)
{
	const FsOptions *o = data;
	char *token = fs_command_first_line("oauth_token_command", o->oauth_token_command,
					    (guint)o->timeout, error);

	if (token != NULL && (strpbrk(token, " \t\x01") != NULL)) {
		/* it goes into "auth=Bearer TOKEN\x01": no separators */
		explicit_bzero(token, strlen(token));
		g_free(token);
		g_set_error(error, FS_COMMAND_ERROR, 0,
			    "oauth_token_command printed a line that is not a token (it has "
			    "blanks or control characters)");
		return NULL;
	}
	return token;
}
