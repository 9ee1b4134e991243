/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stage.c: the private files new messages are written to before their APPEND. With the
 * cache they live in its "staging" directory (0700), each created 0600 with O_EXCL and
 * without following a symlink, so that an APPEND journal entry can name the file and the
 * next mount can send it again; files no journal entry names are removed at mount. Without
 * the cache a staged file is an unnamed O_TMPFILE (else a file unlinked at once) under
 * $XDG_RUNTIME_DIR or /tmp: nothing to clean, and no crash safety.
 *
 * The file's path never leaves fs/store/: fs/ gets an object with an fd.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store-private.h"

#define STAGING_DIR "staging"
#define STAGED_PREFIX "append-"

static gboolean
io_error(GError **error, int err, const char *what, const char *path)
{
	g_set_error(error, STORE_ERROR, STORE_ERROR_IO, "%s %s: %s", what, path ? path : "",
		    g_strerror(err));
	return FALSE;
}

/* The staging directory of the cache (created 0700), opened without following a
 * symlink; -1 with @error. */
static int
staging_dir_open(Store *store, char **path_out, GError **error)
{
	Hcache *hc = store_hc(store);
	g_autofree char *path = NULL;
	struct stat st;
	int fd;

	if (hc == NULL) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_IO, "no cache");
		return -1;
	}
	path = g_build_filename(hcache_get_dir(hc), STAGING_DIR, NULL);
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		io_error(error, errno, "cannot create", path);
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		io_error(error, errno, "cannot open", path);
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 0077) != 0) {
		close(fd);
		g_set_error(error, STORE_ERROR, STORE_ERROR_IO,
			    "%s: not a private directory of this user", path);
		return -1;
	}
	if (path_out != NULL)
		*path_out = g_steal_pointer(&path);
	return fd;
}

/* An unnamed private file under $XDG_RUNTIME_DIR or /tmp. */
static int
tmpfile_open(GError **error)
{
	const char *dirs[] = {g_getenv("XDG_RUNTIME_DIR"), "/tmp"};

	for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
		g_autofree char *tmpl = NULL;
		int fd;

		if (dirs[i] == NULL || dirs[i][0] != '/')
			continue;
		fd = open(dirs[i], O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		/* no O_TMPFILE here: a named file, unlinked at once */
		tmpl = g_build_filename(dirs[i], "imapfs-append-XXXXXX", NULL);
		fd = g_mkstemp_full(tmpl, O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0) {
			unlink(tmpl);
			return fd;
		}
	}
	io_error(error, errno, "cannot create a temporary file in", "$XDG_RUNTIME_DIR or /tmp");
	return -1;
}

StoreStaged *
store_staged_new(Store *store, GError **error)
{
	StoreStaged *s = g_new0(StoreStaged, 1);

	s->store = store;
	s->fd = -1;
	if (store_hc(store) != NULL) {
		g_autofree char *dir = NULL;
		int dfd = staging_dir_open(store, &dir, error);

		if (dfd < 0) {
			g_free(s);
			return NULL;
		}
		for (int tries = 0; s->fd < 0 && tries < 16; tries++) {
			g_autofree char *name = g_strdup_printf(STAGED_PREFIX "%08x%08x",
								g_random_int(), g_random_int());

			s->fd = openat(dfd, name,
				       O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (s->fd >= 0)
				s->path = g_build_filename(dir, name, NULL);
			else if (errno != EEXIST)
				break;
		}
		if (s->fd < 0)
			io_error(error, errno, "cannot create a staging file in", dir);
		close(dfd);
	} else {
		s->fd = tmpfile_open(error);
	}
	if (s->fd < 0) {
		g_free(s);
		return NULL;
	}
	return s;
}

int
store_staged_get_fd(StoreStaged *s)
{
	return s->fd;
}

guint64
store_staged_get_size(StoreStaged *s)
{
	struct stat st;

	return fstat(s->fd, &st) == 0 ? (guint64)st.st_size : 0;
}

void
store_staged_free(StoreStaged *s)
{
	if (s == NULL)
		return;
	if (s->path != NULL && !s->keep)
		unlink(s->path);
	if (s->fd >= 0)
		close(s->fd);
	g_free(s->path);
	g_free(s);
}

void
store_staged_cleanup(Store *store, GPtrArray *entries)
{
	g_autoptr(GHashTable) keep = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = NULL;
	g_autoptr(GDir) d = NULL;
	const char *name;
	int dfd;

	if (store_hc(store) == NULL)
		return;
	for (guint i = 0; entries != NULL && i < entries->len; i++) {
		HcacheJournalEntry *e = g_ptr_array_index(entries, i);

		if (e->op == HCACHE_JOURNAL_APPEND && e->path != NULL)
			g_hash_table_add(keep, g_path_get_basename(e->path));
	}
	dfd = staging_dir_open(store, &dir, &error);
	if (dfd < 0) {
		g_message("staging: %s", error->message);
		return;
	}
	close(dfd);
	d = g_dir_open(dir, 0, NULL);
	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *p = NULL;

		if (!g_str_has_prefix(name, STAGED_PREFIX) || g_hash_table_contains(keep, name))
			continue;
		p = g_build_filename(dir, name, NULL);
		if (unlink(p) == 0)
			g_debug("staging: removed the abandoned %s", name);
	}
}
