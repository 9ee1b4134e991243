/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-bodycache.c: unit tests of the on-disk body cache (fs/store/bodycache.c): atomic
 * commit and lookup, permissions, LRU eviction under a cap and across reopen, cleanup
 * of a crashed run's leftovers, readers that survive eviction, mailbox drops, symlinks
 * planted in the cache never followed, and a full disk reported once.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "bodycache.h"

typedef struct {
	char *tmp;
	char *dir;
} Fixture;

static void
fx_setup(Fixture *fx, gconstpointer data)
{
	(void)data;
	fx->tmp = g_dir_make_tmp("cache-bodycache-XXXXXX", NULL);
	g_assert_nonnull(fx->tmp);
	fx->dir = g_build_filename(fx->tmp, "acct", NULL);
}

static void
rm_rf(const char *path)
{
	g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
	const char *n;

	while (d != NULL && (n = g_dir_read_name(d)) != NULL) {
		g_autofree char *p = g_build_filename(path, n, NULL);

		if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
			rm_rf(p);
		else
			g_unlink(p);
	}
	g_rmdir(path);
}

static void
fx_teardown(Fixture *fx, gconstpointer data)
{
	(void)data;
	rm_rf(fx->tmp);
	g_free(fx->tmp);
	g_free(fx->dir);
}

static guint
file_mode(const char *path)
{
	struct stat st;

	g_assert_cmpint(stat(path, &st), ==, 0);
	return st.st_mode & 07777;
}

static char *
body_text(guint32 uid, gsize len)
{
	char *b = g_malloc(len + 1);

	for (gsize i = 0; i < len; i++)
		b[i] = (char)('a' + (uid + i) % 26);
	b[len] = '\0';
	return b;
}

static char *
read_all(int fd)
{
	GString *s = g_string_new(NULL);
	char buf[4096];
	ssize_t n;
	off_t off = 0;

	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		g_string_append_len(s, buf, n);
		off += n;
	}
	g_assert_cmpint(n, ==, 0);
	return g_string_free(s, FALSE);
}

static void
add(Bodycache *bc, guint64 mbox, guint32 uv, guint32 uid, gsize len)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *b = body_text(uid, len);

	g_assert_true(bodycache_add(bc, mbox, uv, uid, b, len, &error));
	g_assert_no_error(error);
}

static void
check_body(Bodycache *bc, guint64 mbox, guint32 uv, guint32 uid, gsize len)
{
	g_autofree char *want = body_text(uid, len);
	g_autofree char *got = NULL;
	guint64 size = 0;
	int fd = bodycache_lookup(bc, mbox, uv, uid, &size);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpuint(size, ==, len);
	got = read_all(fd);
	close(fd);
	g_assert_cmpstr(got, ==, want);
}

static guint
count_tmp(const char *root)
{
	g_autoptr(GDir) d = g_dir_open(root, 0, NULL);
	const char *n;
	guint c = 0;

	while (d != NULL && (n = g_dir_read_name(d)) != NULL)
		if (g_str_has_prefix(n, ".tmp-"))
			c++;
	return c;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void
test_commit_lookup(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *root = g_build_filename(fx->dir, "bodies", NULL);
	g_autofree char *file = g_build_filename(root, "0000000000000007", "3-42", NULL);
	mode_t old = umask(0);
	Bodycache *bc = bodycache_open(fx->dir, 0, &error);
	BodycacheStats st;
	BodycacheWriter *w;
	int fd;

	(void)data;
	umask(old);
	g_assert_no_error(error);
	g_assert_cmpuint(file_mode(fx->dir), ==, 0700);
	g_assert_cmpuint(file_mode(root), ==, 0700);
	g_assert_cmpint(bodycache_lookup(bc, 7, 3, 42, NULL), ==, -1);
	g_assert_false(bodycache_contains(bc, 7, 3, 42));

	/* streaming writer: nothing is visible before the commit */
	w = bodycache_writer_new(bc, 7, 3, 42, &error);
	g_assert_no_error(error);
	g_assert_cmpint(write(bodycache_writer_get_fd(w), "Subject: x\r\n\r\nhi\r\n", 18), ==, 18);
	g_assert_false(bodycache_contains(bc, 7, 3, 42));
	g_assert_false(g_file_test(file, G_FILE_TEST_EXISTS));
	g_assert_cmpuint(count_tmp(root), ==, 1);
	fd = bodycache_writer_commit(w, &error);
	g_assert_no_error(error);
	g_assert_cmpint(fd, >=, 0);
	{
		g_autofree char *got = read_all(fd);

		g_assert_cmpstr(got, ==, "Subject: x\r\n\r\nhi\r\n");
	}
	close(fd);
	g_assert_cmpuint(count_tmp(root), ==, 0);
	g_assert_cmpuint(file_mode(file), ==, 0600);
	{
		g_autofree char *mdir = g_path_get_dirname(file);

		g_assert_cmpuint(file_mode(mdir), ==, 0700);
	}
	g_assert_true(bodycache_contains(bc, 7, 3, 42));

	fd = bodycache_lookup(bc, 7, 3, 42, NULL);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(fcntl(fd, F_GETFL) & O_ACCMODE, ==, O_RDONLY);
	close(fd);
	/* keyed by all three parts */
	g_assert_cmpint(bodycache_lookup(bc, 7, 4, 42, NULL), ==, -1);
	g_assert_cmpint(bodycache_lookup(bc, 8, 3, 42, NULL), ==, -1);
	g_assert_cmpint(bodycache_lookup(bc, 7, 3, 43, NULL), ==, -1);

	/* an aborted write leaves nothing */
	w = bodycache_writer_new(bc, 7, 3, 43, &error);
	g_assert_cmpint(write(bodycache_writer_get_fd(w), "partial", 7), ==, 7);
	bodycache_writer_abort(w);
	g_assert_cmpuint(count_tmp(root), ==, 0);
	g_assert_false(bodycache_contains(bc, 7, 3, 43));

	/* re-adding the same key replaces it without double counting */
	add(bc, 7, 3, 42, 100);
	bodycache_get_stats(bc, &st);
	g_assert_cmpuint(st.files, ==, 1);
	g_assert_cmpuint(st.bytes, ==, 100);
	g_assert_cmpuint(st.hits, ==, 1);
	g_assert_cmpuint(st.misses, ==, 4);
	g_assert_cmpuint(st.cap, ==, BODYCACHE_DEFAULT_CAP);
	bodycache_close(bc);

	/* persistence */
	bc = bodycache_open(fx->dir, 0, &error);
	g_assert_no_error(error);
	check_body(bc, 7, 3, 42, 100);
	bodycache_get_stats(bc, &st);
	g_assert_cmpuint(st.files, ==, 1);
	g_assert_cmpuint(st.bytes, ==, 100);
	bodycache_remove(bc, 7, 3, 42);
	g_assert_false(bodycache_contains(bc, 7, 3, 42));
	g_assert_false(g_file_test(file, G_FILE_TEST_EXISTS));
	bodycache_get_stats(bc, &st);
	g_assert_cmpuint(st.files, ==, 0);
	g_assert_cmpuint(st.bytes, ==, 0);

	/* a second owner of the directory is refused */
	g_assert_null(bodycache_open(fx->dir, 0, &error));
	g_assert_error(error, BODYCACHE_ERROR, BODYCACHE_ERROR_IN_USE);
	bodycache_close(bc);
}

static void
test_lru(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	Bodycache *bc = bodycache_open(fx->dir, 10000, &error);
	BodycacheStats st;
	int fd;

	(void)data;
	g_assert_no_error(error);
	for (guint32 uid = 1; uid <= 5; uid++)
		add(bc, 1, 1, uid, 2000);
	bodycache_get_stats(bc, &st);
	g_assert_cmpuint(st.bytes, ==, 10000);
	g_assert_cmpuint(st.evictions, ==, 0);
	/* use 1, so 2 is now the least recently used */
	fd = bodycache_lookup(bc, 1, 1, 1, NULL);
	close(fd);
	add(bc, 1, 1, 6, 2000);
	g_assert_true(bodycache_contains(bc, 1, 1, 1));
	g_assert_false(bodycache_contains(bc, 1, 1, 2));
	g_assert_true(bodycache_contains(bc, 1, 1, 3));
	bodycache_get_stats(bc, &st);
	g_assert_cmpuint(st.bytes, ==, 10000);
	g_assert_cmpuint(st.files, ==, 5);
	g_assert_cmpuint(st.evictions, ==, 1);

	/* a body larger than the cap: the caller still gets a readable fd, nothing stays */
	{
		g_autofree char *big = body_text(99, 20000);
		g_autofree char *got = NULL;
		BodycacheWriter *w = bodycache_writer_new(bc, 1, 1, 99, &error);

		g_assert_cmpint(write(bodycache_writer_get_fd(w), big, 20000), ==, 20000);
		fd = bodycache_writer_commit(w, &error);
		g_assert_no_error(error);
		g_assert_cmpint(fd, >=, 0);
		got = read_all(fd);
		close(fd);
		g_assert_cmpstr(got, ==, big);
		bodycache_get_stats(bc, &st);
		g_assert_cmpuint(st.files, ==, 0);
		g_assert_cmpuint(st.bytes, ==, 0);
	}

	/* LRU order survives a reopen (lookups refresh the mtime) */
	for (guint32 uid = 1; uid <= 4; uid++) {
		add(bc, 1, 1, uid, 2000);
		g_usleep(20000); /* file system timestamps are coarse (jiffies) */
	}
	fd = bodycache_lookup(bc, 1, 1, 1, NULL);
	close(fd);
	bodycache_close(bc);
	bc = bodycache_open(fx->dir, 4000, &error); /* evicts two at open */
	g_assert_no_error(error);
	g_assert_true(bodycache_contains(bc, 1, 1, 1));
	g_assert_false(bodycache_contains(bc, 1, 1, 2));
	g_assert_false(bodycache_contains(bc, 1, 1, 3));
	g_assert_true(bodycache_contains(bc, 1, 1, 4));
	bodycache_set_cap(bc, 2000);
	g_assert_true(bodycache_contains(bc, 1, 1, 1) != bodycache_contains(bc, 1, 1, 4));
	bodycache_get_stats(bc, &st);
	g_assert_cmpuint(st.files, ==, 1);
	bodycache_close(bc);
}

static void
test_crash_leftovers(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *root = g_build_filename(fx->dir, "bodies", NULL);
	g_autofree char *stray = g_build_filename(root, "0000000000000001", "junk", NULL);
	g_autofree char *loose = g_build_filename(root, "0000000000000001", "1-2", NULL);
	Bodycache *bc;
	BodycacheStats st;
	int status = 0;
	pid_t pid;

	(void)data;
	/* a kill -9 in the middle of a write: the child dies holding a temp file */
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		BodycacheWriter *w;

		bc = bodycache_open(fx->dir, 0, NULL);
		if (bc == NULL || !bodycache_add(bc, 1, 1, 1, body_text(1, 500), 500, NULL))
			_exit(3);
		w = bodycache_writer_new(bc, 1, 1, 2, NULL);
		if (w == NULL || write(bodycache_writer_get_fd(w), "half a mess", 11) != 11)
			_exit(4);
		kill(getpid(), SIGKILL);
		_exit(5);
	}
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFSIGNALED(status));
	g_assert_cmpint(WTERMSIG(status), ==, SIGKILL);
	g_assert_cmpuint(count_tmp(root), ==, 1);
	g_assert_true(g_file_set_contents(stray, "x", 1, NULL));
	g_assert_true(g_file_set_contents(loose, "abc", 3, NULL));
	g_assert_cmpint(chmod(loose, 0644), ==, 0);

	/* the dead process's flock is gone with it */
	bc = bodycache_open(fx->dir, 0, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(count_tmp(root), ==, 0);
	/* a file of a name we never write is not ours: left alone, not indexed */
	g_assert_true(g_file_test(stray, G_FILE_TEST_EXISTS));
	check_body(bc, 1, 1, 1, 500);
	/* a complete file somebody put there is indexed and tightened */
	g_assert_true(bodycache_contains(bc, 1, 1, 2));
	g_assert_cmpuint(file_mode(loose), ==, 0600);
	bodycache_get_stats(bc, &st);
	g_assert_cmpuint(st.files, ==, 2);
	g_assert_cmpuint(st.bytes, ==, 503);
	bodycache_close(bc);
}

typedef struct {
	Bodycache *bc;
	gint stop;
	gint reads;
} Race;

static gpointer
reader_thread(gpointer data)
{
	Race *r = data;

	while (!g_atomic_int_get(&r->stop)) {
		for (guint32 uid = 1; uid <= 20; uid++) {
			guint64 size = 0;
			int fd = bodycache_lookup(r->bc, 1, 1, uid, &size);
			g_autofree char *want = NULL;
			g_autofree char *got = NULL;

			if (fd < 0)
				continue;
			g_usleep(100); /* let the evictor unlink it under us */
			got = read_all(fd);
			close(fd);
			want = body_text(uid, size);
			g_assert_cmpuint(size, ==, 3000);
			g_assert_cmpstr(got, ==, want);
			g_atomic_int_inc(&r->reads);
		}
	}
	return NULL;
}

static void
test_readers_during_eviction(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	Race r = {0};
	GThread *t[3];
	BodycacheStats st;
	int held;

	(void)data;
	r.bc = bodycache_open(fx->dir, 3000 * 10, &error);
	g_assert_no_error(error);
	for (guint32 uid = 1; uid <= 10; uid++)
		add(r.bc, 1, 1, uid, 3000);
	/* an fd opened before eviction keeps the whole body readable */
	held = bodycache_lookup(r.bc, 1, 1, 1, NULL);
	g_assert_cmpint(held, >=, 0);
	for (guint i = 0; i < G_N_ELEMENTS(t); i++)
		t[i] = g_thread_new("reader", reader_thread, &r);
	for (guint round = 0; round < 30; round++) {
		for (guint32 uid = 1; uid <= 20; uid++)
			if (!bodycache_contains(r.bc, 1, 1, uid))
				add(r.bc, 1, 1, uid, 3000);
		bodycache_set_cap(r.bc, round % 2 ? 3000 * 2 : 3000 * 10);
	}
	g_atomic_int_set(&r.stop, 1);
	for (guint i = 0; i < G_N_ELEMENTS(t); i++)
		g_thread_join(t[i]);
	g_test_message("%d reads during eviction", g_atomic_int_get(&r.reads));
	bodycache_set_cap(r.bc, 1); /* evicts everything, held is unlinked now */
	bodycache_get_stats(r.bc, &st);
	g_assert_cmpuint(st.files, ==, 0);
	g_assert_cmpuint(st.bytes, ==, 0);
	{
		g_autofree char *want = body_text(1, 3000);
		g_autofree char *got = read_all(held);

		g_assert_cmpstr(got, ==, want);
	}
	close(held);
	bodycache_close(r.bc);
}

static void
test_drop_mailbox(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *mdir = g_build_filename(fx->dir, "bodies", "0000000000000005", NULL);
	Bodycache *bc = bodycache_open(fx->dir, 0, &error);
	BodycacheStats st;

	(void)data;
	g_assert_no_error(error);
	add(bc, 5, 1, 1, 10);
	add(bc, 5, 1, 2, 10);
	add(bc, 5, 2, 1, 10);
	add(bc, 6, 1, 1, 10);
	g_assert_cmpuint(bodycache_drop_mailbox(bc, 5, 2), ==, 2);
	g_assert_true(bodycache_contains(bc, 5, 2, 1));
	g_assert_false(bodycache_contains(bc, 5, 1, 1));
	g_assert_cmpuint(bodycache_drop_mailbox(bc, 5, 0), ==, 1);
	g_assert_false(g_file_test(mdir, G_FILE_TEST_EXISTS));
	g_assert_true(bodycache_contains(bc, 6, 1, 1));
	bodycache_get_stats(bc, &st);
	g_assert_cmpuint(st.files, ==, 1);
	g_assert_cmpuint(st.bytes, ==, 10);
	/* the mailbox directory comes back on the next add */
	add(bc, 5, 3, 1, 10);
	check_body(bc, 5, 3, 1, 10);
	bodycache_close(bc);
}

/* Regression (issue 9, item 10): a symlink in bodies/ named like a mailbox directory made
 * the scan at open delete the files of the directory it pointed to. */
static char *
plant_file(const char *dir, const char *name, const char *text)
{
	char *p = g_build_filename(dir, name, NULL);

	g_assert_true(g_file_set_contents(p, text, -1, NULL));
	return p;
}

static void
assert_file(const char *path, const char *text)
{
	g_autofree char *got = NULL;

	g_assert_true(g_file_get_contents(path, &got, NULL, NULL));
	g_assert_cmpstr(got, ==, text);
}

static void
test_symlinks_not_followed(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *root = g_build_filename(fx->dir, "bodies", NULL);
	g_autofree char *victim = g_build_filename(fx->tmp, "victim", NULL);
	g_autofree char *vfile = NULL, *vbody = NULL, *vtmp = NULL, *vlone = NULL;
	g_autofree char *mdir = g_build_filename(root, "0000000000000001", NULL);
	g_autofree char *link_dir = g_build_filename(root, "00000000000000ff", NULL);
	g_autofree char *link_tmp = g_build_filename(root, ".tmp-abcdef", NULL);
	g_autofree char *link_body = g_build_filename(mdir, "1-7", NULL);
	g_autofree char *link_new = g_build_filename(mdir, "1-8", NULL);
	g_autofree char *hard = g_build_filename(mdir, "1-9", NULL);
	Bodycache *bc = bodycache_open(fx->dir, 0, &error);
	BodycacheStats st;

	(void)data;
	g_assert_no_error(error);
	add(bc, 1, 1, 1, 100);
	add(bc, 1, 1, 7, 100);
	bodycache_close(bc);

	g_assert_cmpint(g_mkdir(victim, 0755), ==, 0);
	vfile = plant_file(victim, "notes.txt", "precious");
	vbody = plant_file(victim, "1-2", "looks like a body");
	vtmp = plant_file(victim, ".tmp-zzzzzz", "looks like a temp file");
	vlone = plant_file(fx->tmp, "lone", "a lone file");
	g_assert_cmpint(symlink(victim, link_dir), ==, 0);
	g_assert_cmpint(symlink(vlone, link_tmp), ==, 0);
	g_assert_cmpint(g_unlink(link_body), ==, 0);
	g_assert_cmpint(symlink(vlone, link_body), ==, 0);
	g_assert_cmpint(symlink(vtmp, link_new), ==, 0);
	g_assert_cmpint(link(vbody, hard), ==, 0);

	bc = bodycache_open(fx->dir, 0, &error);
	g_assert_no_error(error);
	/* only the real body is indexed; the links and the hard link are not ours */
	bodycache_get_stats(bc, &st);
	g_assert_cmpuint(st.files, ==, 1);
	g_assert_false(bodycache_contains(bc, 0xff, 1, 2));
	g_assert_false(bodycache_contains(bc, 1, 1, 7));
	g_assert_false(bodycache_contains(bc, 1, 1, 9));
	g_assert_cmpint(bodycache_lookup(bc, 1, 1, 8, NULL), ==, -1);
	/* writing a body whose name is a planted link replaces the link, not its target */
	add(bc, 1, 1, 7, 50);
	check_body(bc, 1, 1, 7, 50);
	add(bc, 1, 1, 8, 60);
	check_body(bc, 1, 1, 8, 60);
	/* drops and eviction remove our files only */
	g_assert_cmpuint(bodycache_drop_all(bc), ==, 3);
	bodycache_set_cap(bc, 1);
	bodycache_close(bc);

	assert_file(vfile, "precious");
	assert_file(vbody, "looks like a body");
	assert_file(vtmp, "looks like a temp file");
	assert_file(vlone, "a lone file");
	g_assert_true(g_file_test(link_dir, G_FILE_TEST_IS_SYMLINK));
	g_assert_true(g_file_test(hard, G_FILE_TEST_EXISTS));
	{
		struct stat s;

		g_assert_cmpint(stat(vbody, &s), ==, 0);
		g_assert_cmpuint(s.st_mode & 07777, ==, 0644); /* not tightened through the link */
	}
}

/* bodies/ itself a symlink: refused, nothing behind it touched. */
static void
test_symlinked_root_refused(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *root = g_build_filename(fx->dir, "bodies", NULL);
	g_autofree char *victim = g_build_filename(fx->tmp, "victim", NULL);
	g_autofree char *sub = g_build_filename(victim, "0000000000000001", NULL);
	g_autofree char *vfile = NULL, *vtmp = NULL;

	(void)data;
	g_assert_cmpint(g_mkdir_with_parents(sub, 0755), ==, 0);
	g_assert_cmpint(g_mkdir_with_parents(fx->dir, 0700), ==, 0);
	vfile = plant_file(sub, "junk", "precious");
	vtmp = plant_file(victim, ".tmp-zzzzzz", "a temp file");
	g_assert_cmpint(symlink(victim, root), ==, 0);
	g_assert_null(bodycache_open(fx->dir, 0, &error));
	g_assert_error(error, BODYCACHE_ERROR, BODYCACHE_ERROR_IO);
	assert_file(vfile, "precious");
	assert_file(vtmp, "a temp file");
	{
		g_autofree char *lock = g_build_filename(victim, "lock", NULL);

		g_assert_false(g_file_test(lock, G_FILE_TEST_EXISTS));
	}
}

/* A reservation makes room without changing the file's size, so what is committed is
 * exactly what was written; one the file system cannot give is BODYCACHE_ERROR_FULL. */
static void
test_reserve(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *root = g_build_filename(fx->dir, "bodies", NULL);
	Bodycache *bc = bodycache_open(fx->dir, 0, &error);
	BodycacheWriter *w;
	struct stat st;
	guint64 size = 0;
	int fd;

	(void)data;
	g_assert_no_error(error);
	w = bodycache_writer_new(bc, 5, 1, 9, &error);
	g_assert_no_error(error);
	g_assert_true(bodycache_writer_reserve(w, 0, 0, &error));
	g_assert_true(bodycache_writer_reserve(w, 0, 1 << 20, &error));
	g_assert_no_error(error);
	g_assert_cmpint(fstat(bodycache_writer_get_fd(w), &st), ==, 0);
	g_assert_cmpint(st.st_size, ==, 0);
	g_assert_cmpint(write(bodycache_writer_get_fd(w), "Subject: r\r\n\r\nok\r\n", 18), ==, 18);
	if (bodycache_writer_reserve(w, 18, G_GUINT64_CONSTANT(1) << 62, &error))
		g_test_message("this file system does not reserve (no fallocate)");
	else
		g_assert_error(error, BODYCACHE_ERROR, BODYCACHE_ERROR_FULL);
	g_clear_error(&error);
	fd = bodycache_writer_commit(w, &error);
	g_assert_no_error(error);
	close(fd);
	fd = bodycache_lookup(bc, 5, 1, 9, &size);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpuint(size, ==, 18);
	{
		g_autofree char *got = read_all(fd);

		g_assert_cmpstr(got, ==, "Subject: r\r\n\r\nok\r\n");
	}
	close(fd);
	g_assert_cmpuint(count_tmp(root), ==, 0);
	bodycache_close(bc);
}

/* Temp files made ahead are what the next writers use; close removes the unused ones. */
static void
test_prepare(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *root = g_build_filename(fx->dir, "bodies", NULL);
	Bodycache *bc = bodycache_open(fx->dir, 0, &error);
	BodycacheWriter *w;
	guint64 size = 0;
	int fd;

	(void)data;
	g_assert_no_error(error);
	bodycache_writers_prepare(bc, 3);
	g_assert_cmpuint(count_tmp(root), ==, 3);
	bodycache_writers_prepare(bc, 2); /* enough already */
	g_assert_cmpuint(count_tmp(root), ==, 3);
	w = bodycache_writer_new(bc, 6, 2, 8, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(count_tmp(root), ==, 3); /* one of them */
	g_assert_cmpint(write(bodycache_writer_get_fd(w), "abc", 3), ==, 3);
	fd = bodycache_writer_commit(w, &error);
	g_assert_no_error(error);
	close(fd);
	g_assert_cmpuint(count_tmp(root), ==, 2);
	fd = bodycache_lookup(bc, 6, 2, 8, &size);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpuint(size, ==, 3);
	close(fd);
	bodycache_close(bc);
	g_assert_cmpuint(count_tmp(root), ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/bodycache/" name, Fixture, NULL, fx_setup, fn, fx_teardown)
	ADD("commit-lookup", test_commit_lookup);
	ADD("lru", test_lru);
	ADD("crash-leftovers", test_crash_leftovers);
	ADD("readers-during-eviction", test_readers_during_eviction);
	ADD("drop-mailbox", test_drop_mailbox);
	ADD("symlinks-in-cache-not-followed", test_symlinks_not_followed);
	ADD("symlinked-bodies-dir-refused", test_symlinked_root_refused);
	ADD("reserve", test_reserve);
	ADD("prepare", test_prepare);
	return g_test_run();
}
