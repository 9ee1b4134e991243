# SPDX-License-Identifier: GPL-2.0-or-later
"""Hostile and odd input (issue 9, items 10, 11, 13, 14, 15) against a real Dovecot, a real
mount of the built binary and real tools: symlinks planted in the cache directory are never
followed, the password is neither in /proc/PID/environ nor in a core dump, folder names from
the server are cut to 255 bytes and cleaned of invisible controls yet map back exactly, bad
command lines give one clear line and a non-zero exit, a full disk under the body cache is
reported once as such, readdir keeps the kernel's 64-bit offset, and a lazy unmount with an
open file ends the daemon cleanly.

The mount helpers are those of test_mount.py; an independent imaplib client checks the
server side.
"""

import errno
import glob
import os
import signal
import stat
import subprocess
import time
import unicodedata

import pytest

import imapfs_testlib as tl
from test_mount import (  # noqa: F401 (fixtures)
	MOUNT_TIMEOUT,
	Mount,
	_FakeDv,
	_fake_server,
	_mounted,
	_private_cache_home,
	emls,
	mount,
)

COMMIT_TIMEOUT = 60


def message(subject, body=b"hello\r\n", date="Mon, 1 Jan 2024 10:00:00 +0000"):
	return (b"From: a@example.org\r\nTo: alice@example.org\r\nSubject: " +
		subject.encode() + b"\r\nDate: " + date.encode() +
		b"\r\nMessage-ID: <" + str(abs(hash(subject))).encode() +
		b"@example.org>\r\n\r\n" + body)


def read_all_in(folder):
	"""{file name: bytes} of every message in a mounted folder (cat of each)."""
	out = {}
	for n in emls(folder):
		with open(os.path.join(folder, n), "rb") as f:
			out[n] = f.read()
	return out


def server_bodies(conn, folder):
	return {m.uid: m.body for m in tl.fetch_messages(conn, folder, body=True)}


def uid_of(name):
	return int(name.rsplit("_", 1)[1][:-4]) if "_" in name else int(name[:-4])


def wait_for(cond, what, timeout=COMMIT_TIMEOUT):
	tl.wait_for(cond, timeout, what)


def body_files(cache):
	return [p for p in glob.glob(os.path.join(cache, "bodies", "*", "*"))
		if stat.S_ISREG(os.lstat(p).st_mode)]


def start(m, **popen_kw):
	"""Mount.start() with extra Popen arguments (cwd, preexec_fn)."""
	os.makedirs(m.mnt, exist_ok=True)
	m.logf = open(m.log_path, "ab")
	m.proc = subprocess.Popen(m.argv(), env=m.env(), stdin=subprocess.DEVNULL,
				  stdout=m.logf, stderr=subprocess.STDOUT, **popen_kw)
	deadline = time.time() + MOUNT_TIMEOUT
	while time.time() < deadline:
		if _mounted(m.mnt):
			return m
		if m.proc.poll() is not None:
			raise AssertionError("imapfs exited %d: %s" % (m.proc.returncode, m.log()))
		time.sleep(0.05)
	raise AssertionError("mount did not appear: " + m.log())


def snapshot(path):
	"""{relative path: (kind, bytes or link target, mode)} of everything under @path."""
	out = {}
	for root, dirs, files in os.walk(path):
		for n in dirs + files:
			p = os.path.join(root, n)
			st = os.lstat(p)
			if stat.S_ISLNK(st.st_mode):
				v = ("link", os.readlink(p))
			elif stat.S_ISDIR(st.st_mode):
				v = ("dir", None)
			else:
				with open(p, "rb") as f:
					v = ("file", f.read())
			out[os.path.relpath(p, path)] = v + (stat.S_IMODE(st.st_mode),)
	return out


# ---- item 10: the cache directory ------------------------------------------------------

def test_symlinks_in_cache_dir_are_not_followed(fresh_dovecot, mount, tmp_path):
	"""Regression: a symlink in bodies/ pointing at a user directory made imapfs delete
	that directory's files at mount (and a rebuilt header cache removed everything under
	bodies/, user files included)."""
	dv = fresh_dovecot("slash")
	conn = dv.imap()
	for i in range(4):
		tl.append(conn, "INBOX", message("msg %d" % i, b"body %d\r\n" % i * 50))
	want = server_bodies(conn, "INBOX")
	cache = str(tmp_path / "cache")
	m = mount(dv, opts=["cache_dir=" + cache])
	inbox = os.path.join(m.mnt, "INBOX")
	read_all_in(inbox)
	wait_for(lambda: len(body_files(cache)) == 4, "4 bodies in the cache")
	m.stop()

	victim = tmp_path / "victim"
	victim.mkdir()
	(victim / "notes.txt").write_bytes(b"precious")
	(victim / "1-2").write_bytes(b"looks like a body")
	(victim / ".tmp-zzzzzz").write_bytes(b"looks like a temp file")
	sub = victim / "0000000000000001"
	sub.mkdir()
	(sub / "1-1").write_bytes(b"nested")
	os.chmod(victim / "1-2", 0o644)
	lone = tmp_path / "lone"
	lone.write_bytes(b"a lone file")
	bodies = os.path.join(cache, "bodies")
	mdir = os.path.dirname(body_files(cache)[0])
	replaced = sorted(body_files(cache))[0]
	os.unlink(replaced)
	os.symlink(str(lone), replaced)  # a body replaced by a link
	os.symlink(str(victim), os.path.join(bodies, "00000000000000ff"))
	os.symlink(str(victim), os.path.join(bodies, "00000000000000fe"))
	os.symlink(str(lone), os.path.join(bodies, ".tmp-abcdef"))
	os.symlink(str(victim / "1-2"), os.path.join(mdir, "1-999"))
	(tmp_path / "stray").write_bytes(b"mine")
	os.link(str(tmp_path / "stray"), os.path.join(mdir, "notes"))  # a user's file
	before = (snapshot(str(victim)), lone.read_bytes(), (tmp_path / "stray").read_bytes())

	# a remount scans the cache; every message reads as the server has it
	m2 = mount(dv, opts=["cache_dir=" + cache])
	got = read_all_in(os.path.join(m2.mnt, "INBOX"))
	assert {uid_of(n): b for n, b in got.items()} == want
	m2.stop()
	# a lost header cache drops the bodies filed under its ids: ours only
	for n in os.listdir(cache):
		if n.startswith("hcache.db"):
			with open(os.path.join(cache, n), "r+b") as f:
				f.write(os.urandom(8192))
	m3 = mount(dv, opts=["cache_dir=" + cache])
	got = read_all_in(os.path.join(m3.mnt, "INBOX"))
	assert {uid_of(n): b for n, b in got.items()} == want
	m3.stop()

	after = (snapshot(str(victim)), lone.read_bytes(), (tmp_path / "stray").read_bytes())
	assert after == before
	assert os.path.islink(os.path.join(bodies, "00000000000000ff"))
	assert os.path.exists(os.path.join(mdir, "notes"))


def test_symlinked_bodies_dir_is_refused(dovecot_slash, tmp_path):
	"""bodies/ itself a link to a user directory: one clear line, nothing touched."""
	dv = dovecot_slash
	cache = tmp_path / "cache"
	cache.mkdir(mode=0o700)
	victim = tmp_path / "victim"
	(victim / "0000000000000001").mkdir(parents=True)
	(victim / "0000000000000001" / "junk").write_bytes(b"precious")
	(victim / ".tmp-zzzzzz").write_bytes(b"a temp file")
	os.symlink(str(victim), str(cache / "bodies"))
	before = snapshot(str(victim))
	mnt = str(tmp_path / "mnt")
	os.makedirs(mnt)
	env = dict(os.environ, IMAPFS_PASSWORD=dv.users["alice"])
	try:
		line = run_fail([tl.imapfs_bin(), "-o", "cafile=" + dv.ca, "-o",
				 "cache_dir=%s" % cache, dv.url("alice"), mnt], env)
	finally:
		if _mounted(mnt):
			subprocess.run(["fusermount3", "-u", mnt], timeout=30)
	assert "bodies" in line and "no_cache" in line, line
	assert snapshot(str(victim)) == before


@pytest.mark.parametrize("name", ["hcache.db", "hcache.db-wal", "hcache.db-shm", "lock",
				  "bodies/lock"])
def test_symlinked_header_cache_files_are_refused(dovecot_slash, tmp_path, name):
	"""A link planted in place of a cache file: its target is never written or changed
	(imapfs refuses the cache with one clear line, or SQLite replaces a stale sidecar
	link by its own file)."""
	dv = dovecot_slash
	cache = tmp_path / "cache"
	(cache / "bodies").mkdir(parents=True, mode=0o700)
	victim = tmp_path / "victim"
	victim.write_bytes(b"precious " * 1000)
	os.chmod(victim, 0o644)
	os.symlink(str(victim), str(cache / name))
	mnt = str(tmp_path / "mnt")
	os.makedirs(mnt)
	env = dict(os.environ, IMAPFS_PASSWORD=dv.users["alice"])
	try:
		r = subprocess.run([tl.imapfs_bin(), "-o", "cafile=" + dv.ca, "-o",
				    "cache_dir=%s" % cache, dv.url("alice"), mnt], env=env,
				   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
				   stderr=subprocess.PIPE, timeout=60)
		err = r.stderr.decode(errors="replace")
		if r.returncode != 0:
			assert len(err.splitlines()) == 1, err
			assert "cache" in err and "no_cache" in err, err
		else:
			assert _mounted(mnt) and not err, err
			assert os.listdir(os.path.join(mnt, "INBOX"))
			assert not os.path.islink(cache / name)
	finally:
		if _mounted(mnt):
			subprocess.run(["fusermount3", "-u", mnt], timeout=30)
	assert victim.read_bytes() == b"precious " * 1000
	assert stat.S_IMODE(os.stat(victim).st_mode) == 0o644


# ---- item 11: the password ---------------------------------------------------------------

def core_limit():
	import resource
	resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


@pytest.mark.parametrize("allow", [False, True], ids=["default", "allow_coredump"])
def test_password_not_in_environ_or_core_dump(dovecot_slash, tmp_path, monkeypatch, allow):
	"""Regression: IMAPFS_PASSWORD stayed readable in /proc/PID/environ for the life of the
	daemon (g_unsetenv does not clear the original block), and a crash dumped the password
	to a core file. The kernel's own account of the death (CLD_DUMPED or CLD_KILLED) tells
	whether a core was written; -o allow_coredump is the positive control."""
	dv = dovecot_slash
	password = dv.users["alice"].encode()
	monkeypatch.setenv("ASAN_OPTIONS", "disable_coredump=0:detect_leaks=0")  # sanitized builds
	work = tmp_path / "cwd"
	work.mkdir()
	m = Mount(dv, tmp_path / "mnt", tmp_path / "imapfs.log",
		  opts=["allow_coredump"] if allow else [])
	try:
		start(m, cwd=str(work), preexec_fn=core_limit)
		assert os.listdir(os.path.join(m.mnt, "INBOX"))
		with open("/proc/%d/environ" % m.proc.pid, "rb") as f:
			env = f.read()
		assert password not in env
		assert b"IMAPFS_PASSWORD=" + password not in env
		os.kill(m.proc.pid, signal.SIGABRT)
		info = os.waitid(os.P_PID, m.proc.pid, os.WEXITED | os.WNOWAIT)
		assert info.si_status == signal.SIGABRT
		if allow:
			assert info.si_code == os.CLD_DUMPED
		else:
			assert info.si_code == os.CLD_KILLED
			assert not [n for n in os.listdir(work) if n.startswith("core")]
	finally:
		m.stop()
		for n in os.listdir(work):
			os.unlink(os.path.join(work, n))
	assert "WARNING" not in m.log() and "CRITICAL" not in m.log(), m.log()


def test_help_documents_allow_coredump():
	r = subprocess.run([tl.imapfs_bin(), "--help"], stdout=subprocess.PIPE,
			   stderr=subprocess.STDOUT, timeout=30)
	assert r.returncode == 0
	assert b"allow_coredump" in r.stdout


# ---- item 13: folder names ---------------------------------------------------------------

def _invisible(name):
	return [c for c in name if unicodedata.category(c) in ("Cf", "Cc", "Zl", "Zp")]


def test_long_and_bidi_folder_names_are_cut_cleaned_and_map_back(fresh_dovecot, mount,
								     tmp_path):
	"""Regression: folder names longer than 255 bytes were listed as they came (copying
	one to a local disk failed) and bidi controls (U+202E) stayed in them."""
	dv = fresh_dovecot("slash")
	conn = dv.imap()
	long_a = "\u6f22" * 85 + "\u7532" * 5  # 270 bytes in UTF-8, same first 255
	long_b = "\u6f22" * 85 + "\u4e59" * 5
	names = [long_a, long_b, "a\u202egnp.exe", "agnp.exe", "ab\u200bc", "\u202e"]
	for i, n in enumerate(names):
		tl.check(conn.create(tl.mbox(n)), "CREATE")
		tl.append(conn, n, message("folder %d" % i))
	m = mount(dv)
	r = subprocess.run(["ls", "-1", "--quoting-style=literal", m.mnt], stdout=subprocess.PIPE,
			   stderr=subprocess.PIPE, timeout=60)
	assert r.returncode == 0, r.stderr
	listed = r.stdout.decode().splitlines()
	assert sorted(listed) == sorted(os.listdir(m.mnt))
	assert len(set(listed)) == len(listed)
	by_server = {}
	for d in listed:
		assert len(d.encode()) <= 255, d
		assert not _invisible(d), repr(d)
		server = os.getxattr(os.path.join(m.mnt, d), "user.imap.mailbox").decode()
		by_server[server] = d
	assert set(names) <= set(by_server)
	assert by_server[long_a] != by_server[long_b]
	assert by_server["a\u202egnp.exe"].startswith("agnp.exe")
	assert by_server["ab\u200bc"].startswith("abc")
	# each directory lists its own server folder's message (commands use the server name)
	for i, n in enumerate(names):
		folder = os.path.join(m.mnt, by_server[n])
		files = emls(folder)
		assert len(files) == 1, (n, files)
		with open(os.path.join(folder, files[0]), "rb") as f:
			assert b"Subject: folder %d\r\n" % i in f.read()
	# and copying to a local disk works
	dest = tmp_path / "copy"
	dest.mkdir()
	r = subprocess.run(["cp", "-r", os.path.join(m.mnt, by_server[long_a]),
			    os.path.join(m.mnt, by_server[long_b]), str(dest)],
			   stderr=subprocess.PIPE, timeout=60)
	assert r.returncode == 0, r.stderr
	assert len(os.listdir(dest)) == 2


# ---- item 14: the command line -------------------------------------------------------------

def run_fail(argv, env):
	"""Runs imapfs expecting a failure: returns its one stderr line."""
	r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
			   stderr=subprocess.PIPE, timeout=60)
	err = r.stderr.decode(errors="replace")
	assert r.returncode != 0, err
	lines = [ln for ln in err.splitlines() if ln.strip()]
	assert len(lines) == 1, repr(err)
	assert "\r" not in err and err.endswith("\n") and err.count("\n") == 1, repr(err)
	assert lines[0].startswith("imapfs: "), lines[0]
	return lines[0]


BAD_CASES = {
	"fifo-password-file": "not a regular file",
	"timeout-wraps": "timeout=4294967297",
	"max-conns-wraps": "max_conns=4294967297",
	"timeout-negative": "timeout",
	"cache-size-overflow": "cache_size=",
	"empty-password-env": "password from IMAPFS_PASSWORD is empty",
	"empty-password-file": "password from password_file is empty",
	"empty-password-command": "password from password_command is empty",
	"crlf-in-user": "URL",
	"escaped-crlf-in-user": "URL",
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_command_line_one_clear_line(dovecot_slash, tmp_path, case):
	"""Regression: a FIFO as password_file hung before any check; integer options wrapped
	(timeout=4294967297 became 1 s); an empty password was sent to the server; a CR/LF in
	the URL's user split the one-line error. Each is now one line and a non-zero exit, and
	nothing reaches the server (the protocol trace stays empty)."""
	dv = dovecot_slash
	mnt = str(tmp_path / "mnt")
	os.makedirs(mnt)
	trace = str(tmp_path / "trace")
	env = dict(os.environ, IMAPFS_PASSWORD=dv.users["alice"])
	url = dv.url("alice")
	opts = ["-o", "cafile=" + dv.ca, "-o", "trace_file=" + trace]
	pw = str(tmp_path / "pw")
	if case == "fifo-password-file":
		os.mkfifo(pw, 0o600)
		opts += ["-o", "password_file=" + pw]
	elif case == "timeout-wraps":
		opts += ["-o", "timeout=4294967297"]
	elif case == "max-conns-wraps":
		opts += ["-o", "max_conns=4294967297"]
	elif case == "timeout-negative":
		opts += ["-o", "timeout=-1"]
	elif case == "cache-size-overflow":
		opts += ["-o", "cache_size=99999999999999999999999"]
	elif case == "empty-password-env":
		env["IMAPFS_PASSWORD"] = ""
	elif case == "empty-password-file":
		fd = os.open(pw, os.O_WRONLY | os.O_CREAT, 0o600)
		os.write(fd, b"\n")
		os.close(fd)
		opts += ["-o", "password_file=" + pw]
	elif case == "empty-password-command":
		opts += ["-o", "password_command=true"]
	elif case == "crlf-in-user":
		url = url.replace("alice@", "al\r\nice@")
	elif case == "escaped-crlf-in-user":
		url = url.replace("alice@", "al%0D%0Aice@")
	try:
		line = run_fail([tl.imapfs_bin()] + opts + [url, mnt], env)
		assert BAD_CASES[case] in line, line
		assert dv.users["alice"] not in line
		assert not os.path.exists(trace) or os.path.getsize(trace) == 0
	finally:
		if _mounted(mnt):
			subprocess.run(["fusermount3", "-u", mnt], timeout=30)


# ---- item 15: small ones ------------------------------------------------------------------

@pytest.fixture
def small_tmpfs():
	"""Factory: small_tmpfs(path, size) mounts a tmpfs of @size on @path (root only);
	unmounted (by path) at the end (the test stops its imapfs mounts first)."""
	made = []

	def make(path, size):
		if os.geteuid() != 0:
			pytest.skip("mounting a tmpfs needs root")
		os.makedirs(path, mode=0o700, exist_ok=True)
		subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs",
				path], check=True, timeout=30)
		made.append(path)
		return path

	yield make
	for p in made:
		subprocess.run(["umount", p], timeout=30)


def test_full_body_cache_logged_once_as_enospc(fresh_dovecot, mount, tmp_path, small_tmpfs):
	"""Regression: ENOSPC on a body commit was logged as "short read/write", once per
	message. Now one line says the disk is full; reads are right all along."""
	dv = fresh_dovecot("slash")
	conn = dv.imap()
	for i in range(8):
		tl.append(conn, "INBOX", message("big %d" % i, b"%d" % i * (120 * 1024) + b"\r\n"))
	want = server_bodies(conn, "INBOX")
	cache = str(tmp_path / "cache")
	os.makedirs(cache, mode=0o700)
	small_tmpfs(os.path.join(cache, "bodies"), "300k")
	m = mount(dv, opts=["cache_dir=" + cache])
	try:
		got = read_all_in(os.path.join(m.mnt, "INBOX"))
		assert {uid_of(n): b for n, b in got.items()} == want
		wait_for(lambda: "body cache: " in m.log(), "the full disk in the log")
	finally:
		m.stop()  # finishes the queued commits; before the tmpfs goes
	log = m.log()
	assert "short read" not in log, log
	assert log.count("No space left on device") == 1, log
	assert 1 <= len(body_files(cache)) < 8


def test_cache_disk_full_mid_fetch_still_reads_every_byte(tmp_path, mount, small_tmpfs):
	"""Bodies are fetched straight into the body cache's files. When the cache's disk fills
	in the middle of a fetch (RFC822.SIZE said 1000 bytes, so the room reserved before the
	fetch was too small), the body moves to a temp file and the reader still gets every
	byte: no EIO, one log line for the full disk, no body file left half-written."""
	actual = 400000
	body = (b"Subject: size test\r\n\r\n" + b"0123456789abcdef" * (actual // 16 + 1))[:actual]
	srv, ca = _fake_server(tmp_path, 1000, body)
	cache = str(tmp_path / "cache")
	os.makedirs(cache, mode=0o700)
	small_tmpfs(os.path.join(cache, "bodies"), "300k")
	m = None
	try:
		m = mount(_FakeDv(srv.port, ca), opts=["cache_dir=" + cache])
		inbox = os.path.join(m.mnt, "INBOX")
		(name,) = os.listdir(inbox)
		r = subprocess.run(["cat", os.path.join(inbox, name)], stdout=subprocess.PIPE,
				   check=True, timeout=60)
		assert r.stdout == body
	finally:
		if m is not None:
			m.stop()  # finishes the queued commit (which finds the disk full too)
		srv.stop()
	log = m.log()
	assert [ln for ln in log.splitlines() if "body cache: " in ln] == [
		ln for ln in log.splitlines() if "No space left on device" in ln], log
	assert log.count("No space left on device") == 1, log
	assert body_files(cache) == []
	assert not glob.glob(os.path.join(cache, "bodies", ".tmp-*"))


def test_readdir_offset_beyond_4g_is_not_wrapped(dovecot_slash, mount):
	"""Regression: readdir kept the kernel's 64-bit offset in 32 bits, so a seek to
	2**32 + 2 listed the directory again from entry 2."""
	m = mount(dovecot_slash)
	inbox = os.path.join(m.mnt, "INBOX")
	full = sorted(os.listdir(inbox))
	assert full
	fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY)
	try:
		os.lseek(fd, 2, os.SEEK_SET)
		assert sorted(os.listdir(fd)) == full  # offsets are entry indexes: 2 skips . and ..
		for off in (2**32 + 2, 2**63 - 1):
			os.lseek(fd, off, os.SEEK_SET)
			assert os.listdir(fd) == []
	finally:
		os.close(fd)


LSAN = (glob.glob("/usr/lib/*/liblsan.so.0") + [None])[0]


def _sanitized(path):
	"""Was @path built with -fsanitize=address (then it checks leaks by itself)?"""
	with open(path, "rb") as f:
		return b"__asan_init" in f.read()


class LeakCheckedMount(Mount):
	"""The daemon under LeakSanitizer (preloaded, reports into the log, exit code kept)."""

	def env(self):
		e = super().env()
		if _sanitized(tl.imapfs_bin()):
			e["ASAN_OPTIONS"] = "detect_leaks=1:exitcode=0"
			e["G_SLICE"] = "always-malloc"
		elif LSAN is not None:
			e["LD_PRELOAD"] = LSAN
			e["LSAN_OPTIONS"] = "exitcode=0:fast_unwind_on_malloc=0"
			e["G_SLICE"] = "always-malloc"
		return e


@pytest.mark.parametrize("end", ["close", "sigterm"])
def test_lazy_unmount_with_open_file_exits_0_and_frees_it(dovecot_slash, tmp_path, end):
	"""Regression: after `fusermount3 -u -z` with a file open, the daemon leaked the open
	body and exited 1. Now the open file keeps reading right, and the daemon exits 0 when
	the file (and a directory held open) are closed or on SIGTERM, with no body or
	directory handle leaked and no second unmount attempt."""
	dv = dovecot_slash
	conn = dv.imap()
	m = LeakCheckedMount(dv, tmp_path / "mnt", tmp_path / "imapfs.log",
			     opts=["cache_dir=%s" % (tmp_path / "cache")])
	try:
		start(m)
		inbox = os.path.join(m.mnt, "INBOX")
		name = emls(inbox)[0]
		want = tl.fetch_body(conn, "INBOX", uid_of(name))
		d = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY)
		assert name in os.listdir(d)
		f = open(os.path.join(inbox, name), "rb")
		head = f.read(10)
		r = subprocess.run(["fusermount3", "-u", "-z", m.mnt], timeout=30)
		assert r.returncode == 0
		assert not _mounted(m.mnt)
		assert head + f.read() == want  # still served
		if end == "close":
			f.close()
			os.close(d)
		else:
			os.kill(m.proc.pid, signal.SIGTERM)
		rc = m.proc.wait(timeout=60)
		f.close()
		if end != "close":
			os.close(d)
		assert rc == 0, m.log()
	finally:
		m.stop()
	log = m.log()
	assert "failed to unmount" not in log, log
	# no LeakSanitizer report of a body or a directory handle
	assert "store_body" not in log and "fs_dir_snapshot" not in log, log
	assert "WARNING" not in log and "CRITICAL" not in log, log
