/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * main.c: start-up and shut-down of the daemon. Parses the command line, gets the password,
 * forks into the background *before* any thread exists (the parent waits on a pipe for
 * the child's verdict), opens the on-disk cache (refusing one that another imapfs holds),
 * connects and logs in (or runs offline from the cache: -o offline, or a server that
 * cannot be reached while the cache knows the account), lists the account, mounts, and only then
 * lets the parent exit 0; any failure before that is one "imapfs: ..." line on the
 * terminal and a non-zero exit. Then it runs fuse_session_loop_mt() until unmounted.
 *
 * Shutdown: SIGTERM/SIGINT/SIGHUP (libfuse's handlers) or the kernel ending the connection
 * (unmount, abort) make the session exit; the loop then joins its workers, so a worker
 * blocked in a store call would hold the daemon (and an unserved mount) for up to the
 * network timeout. A watcher thread sees the exit and cancels every store operation
 * (store_cancel_all): blocked requests fail and reply at once, the loop returns, the
 * mount goes. A lazy unmount (fusermount3 -u -z) only detaches the mount while a request
 * is stuck in it; the watcher sees it leave the mount table and cancels what runs, so the
 * stuck requests end, the kernel lets go of the mount and ends the connection.
 */
#define G_LOG_DOMAIN "imapfs"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs.h"

/* Forks; the parent exits with the child's verdict. Returns the write end of the pipe in
 * the child (-1 on failure, reported). */
static int
background(void)
{
	int p[2];
	pid_t pid;
	unsigned char verdict = 1;

	if (pipe2(p, O_CLOEXEC) != 0) {
		fprintf(stderr, "imapfs: pipe: %s\n", g_strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "imapfs: fork: %s\n", g_strerror(errno));
		return -1;
	}
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &verdict, 1) != 1) {
			int status;

			waitpid(pid, &status, 0);
			verdict = 1;
		}
		_exit(verdict);
	}
	close(p[0]);
	setsid();
	return p[1];
}

static void
report(int fd, unsigned char verdict)
{
	if (fd >= 0) {
		if (write(fd, &verdict, 1) != 1) {
			/* the parent is gone; nothing to tell */
		}
		close(fd);
	}
}

static void
detach_stdio(void)
{
	int null = open("/dev/null", O_RDWR);

	if (null < 0)
		return;
	dup2(null, STDIN_FILENO);
	dup2(null, STDOUT_FILENO);
	dup2(null, STDERR_FILENO);
	if (null > STDERR_FILENO)
		close(null);
}

/* The body cache keeps a descriptor per message: use what the hard limit allows. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = MIN(rl.rlim_max, 65536);
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* The device number of the filesystem mounted on @mountpoint, read from the kernel's
 * cached attributes (AT_STATX_DONT_SYNC: no request reaches our own, not yet running,
 * session loop). 0 if unknown. */
static dev_t
mount_dev(const char *mountpoint)
{
	struct statx stx;

	if (statx(AT_FDCWD, mountpoint, AT_STATX_DONT_SYNC, STATX_TYPE, &stx) != 0)
		return 0;
	return makedev(stx.stx_dev_major, stx.stx_dev_minor);
}

/* Is our filesystem (device @dev) still mounted on @mountpoint? Not after a lazy unmount
 * (fusermount3 -u -z), and then the path may hold somebody else's mount by now. */
static gboolean
still_mounted(const char *mountpoint, dev_t dev)
{
	g_autofree char *info = NULL;
	g_auto(GStrv) lines = NULL;

	if (dev == 0 || !g_file_get_contents("/proc/self/mountinfo", &info, NULL, NULL))
		return TRUE; /* cannot tell: let libfuse try */
	lines = g_strsplit(info, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		unsigned maj, min;
		char path[4096];

		/* "36 35 0:42 / /mnt/x rw,... - fuse.imapfs ..."; the path is \ooo-escaped */
		if (sscanf(lines[i], "%*u %*u %u:%u %*s %4095s", &maj, &min, path) != 3 ||
		    makedev(maj, min) != dev)
			continue;
		{
			g_autofree char *unescaped = g_strcompress(path);

			if (!strcmp(unescaped, mountpoint))
				return TRUE;
		}
	}
	return FALSE;
}

/* Has the kernel ended the session (unmounted, or aborted)? libfuse then skips the
 * unmount itself. */
static gboolean
session_ended(struct fuse_session *se)
{
	struct pollfd p = {.fd = fuse_session_fd(se), .events = 0};

	return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

static char *
fsname_option(const FsOptions *o)
{
	g_autofree char *raw = g_strdup_printf("imapfs:%s@%s", o->imap.user, o->imap.host);
	GString *s = g_string_new("-ofsname=");

	for (const char *p = raw; *p; p++) {
		if (*p == ',' || *p == '\\')
			g_string_append_c(s, '\\');
		g_string_append_c(s, *p);
	}
	return g_string_free(s, FALSE);
}

/* The mount's ID in /proc/self/mountinfo: the newest fuse.imapfs mount on @mountpoint, or
 * 0. Reads no file of the mount (the session loop is not serving yet when we ask). */
static guint64
find_mount_id(const char *mountpoint)
{
	g_autofree char *data = NULL;
	g_auto(GStrv) lines = NULL;
	guint64 id = 0;

	if (!g_file_get_contents("/proc/self/mountinfo", &data, NULL, NULL))
		return 0;
	lines = g_strsplit(data, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_auto(GStrv) f = g_strsplit(lines[i], " ", 0);
		const char *sep = strstr(lines[i], " - ");
		g_autofree char *mp = NULL;

		if (g_strv_length(f) < 5 || sep == NULL ||
		    !g_str_has_prefix(sep, " - fuse.imapfs "))
			continue;
		mp = g_strcompress(f[4]); /* octal escapes: \040 for a space, ... */
		if (strcmp(mp, mountpoint) == 0)
			id = g_ascii_strtoull(f[0], NULL, 10);
	}
	return id;
}

static gboolean
mount_present(guint64 id)
{
	g_autofree char *data = NULL;
	g_autofree char *head = g_strdup_printf("\n%" G_GUINT64_FORMAT " ", id);

	if (!g_file_get_contents("/proc/self/mountinfo", &data, NULL, NULL))
		return TRUE; /* cannot tell: assume it is */
	return g_str_has_prefix(data, head + 1) || strstr(data, head) != NULL;
}

/* The shutdown watcher: polls the session's exit flag (set from a signal handler, so no
 * callback can tell us) and then cancels the store's operations. It also watches the mount
 * table: a lazy unmount detaches the mount while requests are stuck in it, which the
 * kernel then keeps until they end; those are cancelled at once (nothing more: open files
 * of a detached mount are still served until the kernel ends the connection). */
typedef struct {
	struct fuse_session *se;
	Store *store;
	guint64 mount_id; /* 0: unknown, not watched */
	GMutex lock;
	GCond cond;
	gboolean stop; /* protected by lock */
	GThread *thread;
} ExitWatch;

#define CACHE_WAIT	 (3 * G_TIME_SPAN_SECOND) /* for an exiting imapfs to free the cache */
#define CACHE_WAIT_STEP	 (50 * G_TIME_SPAN_MILLISECOND)
#define EXIT_WATCH_STEP	 (100 * G_TIME_SPAN_MILLISECOND)
#define MOUNT_WATCH_STEP (5) /* exit watch steps between two looks at the mount table */

static gpointer
exit_watch_run(gpointer data)
{
	ExitWatch *w = data;
	gboolean exited = FALSE;
	guint n = 0;

	g_mutex_lock(&w->lock);
	while (!w->stop && !(exited = fuse_session_exited(w->se))) {
		if (w->mount_id != 0 && ++n % MOUNT_WATCH_STEP == 0 &&
		    !mount_present(w->mount_id)) {
			g_debug("the mount was detached: cancelling the requests in flight");
			w->mount_id = 0;
			g_mutex_unlock(&w->lock);
			store_cancel_running(w->store);
			g_mutex_lock(&w->lock);
			continue;
		}
		g_cond_wait_until(&w->cond, &w->lock, g_get_monotonic_time() + EXIT_WATCH_STEP);
	}
	g_mutex_unlock(&w->lock);
	if (exited) {
		g_debug("shutting down: cancelling the requests in flight");
		store_cancel_all(w->store);
	}
	return NULL;
}

static void
exit_watch_start(ExitWatch *w, struct fuse_session *se, Store *store, const char *mountpoint)
{
	w->se = se;
	w->store = store;
	w->mount_id = find_mount_id(mountpoint);
	g_mutex_init(&w->lock);
	g_cond_init(&w->cond);
	w->thread = g_thread_new("imapfs-exit", exit_watch_run, w);
}

static void
exit_watch_stop(ExitWatch *w)
{
	g_mutex_lock(&w->lock);
	w->stop = TRUE;
	g_cond_signal(&w->cond);
	g_mutex_unlock(&w->lock);
	g_thread_join(w->thread);
	g_mutex_clear(&w->lock);
	g_cond_clear(&w->cond);
}

/* The change watcher, once the tree is built and the notifier runs: NOTIFY also covers the
 * other users' and shared namespaces (their prefixes without the delimiter). */
static void
live_start(Fs *fs, const FsOptions *o)
{
	g_autoptr(GPtrArray) subtrees = g_ptr_array_new_with_free_func(g_free);
	StoreWatchConfig cfg = {o->live, (guint)o->idle_max, (guint)o->poll, NULL};

	for (guint i = 0; fs->namespaces != NULL && i < fs->namespaces->len; i++) {
		StoreNamespace *ns = g_ptr_array_index(fs->namespaces, i);
		gsize n = strlen(ns->prefix);

		if (ns->kind == STORE_NS_PERSONAL || n == 0)
			continue;
		if (ns->delim != 0 && ns->prefix[n - 1] == ns->delim)
			n--;
		if (n > 0)
			g_ptr_array_add(subtrees, g_strndup(ns->prefix, n));
	}
	g_ptr_array_add(subtrees, NULL);
	cfg.subtrees = (char **)subtrees->pdata;
	store_watch_start(fs->store, &cfg);
}

int
main(int argc, char **argv)
{
	FsOptions o = {0};
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *fsname = NULL;
	Store *store = NULL;
	Fs *fs = NULL;
	int verdict_fd = -1;
	int ret = 1;
	gboolean mounted = FALSE, handlers = FALSE;
	dev_t dev = 0;

	setlocale(LC_ALL, "");
	/* Up to 32 FUSE workers and an I/O thread per connection: glibc would give most of
	 * them an arena of their own, each keeping what it freed. Two are plenty here. */
	mallopt(M_ARENA_MAX, 2);
	/* read buffers (up to 128 KiB each) go back to the system when freed, instead of
	 * raising glibc's dynamic threshold and staying in the heap */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	/* a server closing the socket under a write must be an error, not a death */
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	if (!fs_options_parse(&o, argc, argv))
		goto out;
	if (o.show_version) {
		printf("imapfs %s\n", IMAPFS_VERSION);
		printf("FUSE library version %s\n", fuse_pkgversion());
		fflush(stdout); /* fuse_lowlevel_version() runs fusermount3 */
		fuse_lowlevel_version();
		ret = 0;
		goto out;
	}
	if (o.show_help) {
		fs_options_print_help(argv[0]);
		ret = 0;
		goto out;
	}
	/* The password is about to be read: no core dump and no ptrace by the user from now
	 * on (inherited by the daemon across fork), unless -o allow_coredump. */
	if (!o.allow_coredump && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		fprintf(stderr, "imapfs: cannot disable core dumps: %s\n", g_strerror(errno));
		goto out;
	}
	fsname = fsname_option(&o);
	fuse_opt_add_arg(&o.fuse_args, "-osubtype=imapfs");
	fuse_opt_add_arg(&o.fuse_args, fsname);

	fs = fs_new(&o, NULL);
	se = fuse_session_new(&o.fuse_args, &fs_ops, sizeof(fs_ops), fs);
	if (se == NULL)
		goto out; /* libfuse said why (unknown option) */
	if (!fs_options_get_password(&o))
		goto out;
	if (!o.foreground) {
		verdict_fd = background();
		if (verdict_fd < 0)
			goto out;
	}

	if (o.oauth_token_command != NULL) {
		o.imap.oauth_token_fn = fs_oauth_token; /* a fresh token at every login */
		o.imap.oauth_token_data = &o;
	}
	/* From here on threads exist: no more fork. */
	store = store_new(&o.imap);
	store_set_sync(store, o.sync);
	store_set_event_handler(store, fs_apply_event, fs);
	store_set_offline_retry(store, (gint64)o.offline_retry * G_USEC_PER_SEC);
	if (o.imap.password != NULL)
		explicit_bzero(o.imap.password, strlen(o.imap.password));
	fs->store = store;
	if (!o.no_cache) {
		g_autofree char *dir = o.cache_dir
					       ? g_strdup(o.cache_dir)
					       : store_default_cache_dir(o.imap.user, o.imap.host,
									 o.imap.port, o.root);

		gint64 give_up = g_get_monotonic_time() + CACHE_WAIT;

		/* an imapfs that was just unmounted may still be closing the cache: wait for it
		 * a little, so that "fusermount3 -u DIR && imapfs ... DIR" works */
		while (!store_open_cache(store, dir, o.cache_size, &error) &&
		       g_error_matches(error, STORE_ERROR, STORE_ERROR_CACHE_IN_USE) &&
		       g_get_monotonic_time() < give_up) {
			g_clear_error(&error);
			g_usleep(CACHE_WAIT_STEP);
		}
		if (error != NULL) {
			if (g_error_matches(error, STORE_ERROR, STORE_ERROR_CACHE_IN_USE))
				fprintf(stderr, "imapfs: %s; use -o cache_dir= or -o no_cache\n",
					error->message);
			else
				fprintf(stderr, "imapfs: %s (use -o no_cache to run without)\n",
					error->message);
			goto out;
		}
	}
	/* after the cache: what a previous mount deleted stays hidden until expunged */
	store_set_expunge(store, o.expunge, o.expunge_delay_us);
	if (o.offline) {
		if (!store_cache_has_data(store)) {
			fprintf(stderr,
				"imapfs: offline: the cache knows nothing of this account\n");
			goto out;
		}
		store_go_offline(store, FALSE);
		fprintf(stderr, "imapfs: offline: serving the cached tree and bodies only\n");
	} else if (!store_connect_sync(store, NULL, &error)) {
		g_autofree char *line = fs_describe_startup_error(&o, error);
		gboolean unreachable = g_error_matches(error, IMAP_ERROR, IMAP_ERROR_CONNECT) ||
				       g_error_matches(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT) ||
				       g_error_matches(error, IMAP_ERROR, IMAP_ERROR_DISCONNECTED);

		if (!unreachable || !store_cache_has_data(store)) {
			fprintf(stderr, "imapfs: %s\n", line);
			goto out;
		}
		store_go_offline(store, TRUE);
		fprintf(stderr, "imapfs: %s; offline: serving the cached tree and bodies only\n",
			line);
		g_clear_error(&error);
	}
	if (!store_journal_recover_sync(store, NULL, &error)) {
		g_message("unfinished writes from the previous mount stay pending: %s",
			  error->message);
		g_clear_error(&error);
	}
	if (!fs_tree_build_sync(fs, &error)) {
		g_autofree char *line = fs_describe_startup_error(&o, error);

		if (g_error_matches(error, STORE_ERROR, STORE_ERROR_NOT_FOUND))
			fprintf(stderr, "imapfs: %s\n", error->message);
		else
			fprintf(stderr, "imapfs: listing the account failed: %s\n", line);
		goto out;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		fprintf(stderr, "imapfs: cannot set signal handlers\n");
		goto out;
	}
	handlers = TRUE;
	if (fuse_session_mount(se, o.mountpoint) != 0) {
		fprintf(stderr, "imapfs: cannot mount on %s\n", o.mountpoint);
		goto out;
	}
	mounted = TRUE;
	dev = mount_dev(o.mountpoint);
	fs->se = se;
	fs->notify = fs_notify_new(se);

	if (!o.foreground) {
		if (chdir("/") != 0) {
			/* harmless */
		}
		detach_stdio();
	}
	report(verdict_fd, 0);
	verdict_fd = -1;
	store_sync_start(store); /* -o sync=new|all: the background downloader */
	live_start(fs, &o);	 /* changes on the server reach the tree (-o live=) */

	loop = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(loop, 0);
	fuse_loop_cfg_set_max_threads(loop, 32);
	{
		ExitWatch watch = {0};

		exit_watch_start(&watch, se, store, o.mountpoint);
		ret = fuse_session_loop_mt(se, loop);
		exit_watch_stop(&watch);
	}
	/* unmounted (0), or SIGTERM/SIGINT/SIGHUP (the signal number): a clean end */
	ret = ret == 0 || ret == SIGTERM || ret == SIGINT || ret == SIGHUP ? 0 : 1;
	/* rm's write-behind and the expunges of -o expunge=close, bounded (what the server
	 * does not take stays in the journal for the next mount) */
	store_flush_sync(store, MIN((gint64)o.timeout, 10) * G_USEC_PER_SEC);
	store_cancel_all(store); /* nothing more is served: end what still runs */
	store_watch_stop(store);
	fuse_loop_cfg_destroy(loop);

out:
	report(verdict_fd, 1);
	if (mounted && (session_ended(se) || still_mounted(o.mountpoint, dev)))
		fuse_session_unmount(se);
	if (handlers)
		fuse_remove_signal_handlers(se);
	/* the store's threads may still send events: the tree and the notifier outlive them */
	store_free(store);
	if (fs != NULL) {
		fs_rename_stop(fs);
		fs_notify_free(fs->notify);
	}
	if (se != NULL)
		fuse_session_destroy(se);
	fs_free(fs);
	fs_options_clear(&o);
	return ret;
}
