# SPDX-License-Identifier: GPL-2.0-or-later
"""The read side of the mount (issue 4) against a real Dovecot, a real FUSE mount of the
built binary and real tools: the tree equals what an independent imaplib checker lists in
every namespace, counts, sizes and bytes match the server, reading never sets \\Seen, range
reads move little, xattrs are right, names are safe and stable, start-up errors are one
clear line, and a dead server gives EIO while fusermount3 -u still works.

Every mount is unmounted (fusermount3 -u, by mountpoint) and its daemon waited for (killed
by PID as a last resort), also when a test fails.
"""

import calendar
import errno
import os
import re
import select
import signal
import sys
import stat
import subprocess
import time
import unicodedata

import pytest

import imapfs_testlib as tl

UID_RE = re.compile(r"_(\d+)\.eml$")
MOUNT_TIMEOUT = 30


def _mounted(path):
	with open("/proc/self/mounts") as f:
		for line in f:
			parts = line.split()
			mp = parts[1].encode().decode("unicode_escape").encode("latin-1").decode()
			if mp == path:
				return parts
	return None


class Mount:
	"""imapfs -f in the background (so the test knows its PID and log), ready once the
	mountpoint shows in /proc/self/mounts."""

	def __init__(self, dv, mnt, log, user="alice", tls="implicit", root=None, opts=(),
		     password=True):
		self.dv, self.mnt, self.log_path = dv, str(mnt), str(log)
		self.user, self.tls, self.root, self.opts = user, tls, root, list(opts)
		self.password = password
		self.proc = None

	def argv(self, foreground=True):
		a = [tl.imapfs_bin()]
		if foreground:
			a.append("-f")
		a += ["-o", "cafile=" + self.dv.ca]
		for o in self.opts:
			a += ["-o", o]
		a += [self.dv.url(self.user, tls=self.tls, root=self.root), self.mnt]
		return a

	def env(self):
		e = dict(os.environ)
		e.pop("IMAPFS_PASSWORD", None)
		# each mount its own header/body cache (two live mounts of one account would
		# otherwise share, and the second be refused)
		e["XDG_CACHE_HOME"] = self.mnt + "-xdg-cache"
		if self.password:
			e["IMAPFS_PASSWORD"] = self.dv.users[self.user]
		return e

	def start(self):
		os.makedirs(self.mnt, exist_ok=True)
		self.logf = open(self.log_path, "ab")
		self.proc = subprocess.Popen(self.argv(), env=self.env(), stdin=subprocess.DEVNULL,
					     stdout=self.logf, stderr=subprocess.STDOUT)
		deadline = time.time() + MOUNT_TIMEOUT
		while time.time() < deadline:
			if _mounted(self.mnt):
				return self
			if self.proc.poll() is not None:
				raise AssertionError("imapfs exited %d: %s" % (self.proc.returncode,
									       self.log()))
			time.sleep(0.05)
		raise AssertionError("mount did not appear: " + self.log())

	def log(self):
		try:
			with open(self.log_path, "rb") as f:
				return f.read().decode(errors="replace")
		except FileNotFoundError:
			return ""

	def stats(self):
		v = os.getxattr(self.mnt, "user.imapfs.stats").decode()
		return {k: int(x) for k, x in (kv.split("=") for kv in v.split())}

	def stop(self):
		if _mounted(self.mnt):
			subprocess.run(["fusermount3", "-u", self.mnt], timeout=30)
		if self.proc is not None:
			try:
				self.proc.wait(timeout=15)
			except subprocess.TimeoutExpired:
				tl.kill_and_wait(self.proc.pid, signal.SIGKILL, 5)
			self.proc = None
			self.logf.close()
		if _mounted(self.mnt):
			subprocess.run(["fusermount3", "-u", "-z", self.mnt], timeout=30)

	def __enter__(self):
		return self.start()

	def __exit__(self, *exc):
		self.stop()


@pytest.fixture(autouse=True)
def _private_cache_home(tmp_path, monkeypatch):
	"""imapfs processes started with os.environ get a per-test cache directory."""
	monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def mount(tmp_path):
	"""Factory: mount(dv, **kw) -> a started Mount, stopped at the end of the test."""
	made = []

	def make(dv, **kw):
		n = len(made)
		m = Mount(dv, tmp_path / ("mnt%d" % n), tmp_path / ("imapfs%d.log" % n), **kw)
		made.append(m)
		return m.start()

	yield make
	for m in made:
		m.stop()
	for m in made:
		assert "CRITICAL" not in m.log() and "WARNING" not in m.log(), m.log()


@pytest.fixture(scope="module", params=["slash", "dot"])
def mounted(request, tmp_path_factory):
	"""One mount per layout of the read-only session server, shared by the module."""
	dv = request.getfixturevalue("dovecot_" + request.param)
	d = tmp_path_factory.mktemp("mount-" + request.param)
	m = Mount(dv, d / "mnt", d / "imapfs.log", opts=["trace_file=%s" % (d / "trace")])
	request.addfinalizer(m.stop)
	m.start()
	m.trace = str(d / "trace")
	return m


# ---- the independent model of the tree (SPEC §2) ------------------------------------

def expected_dirs(conn):
	"""The set of directory paths (relative, '/'-joined) the SPEC says the mount shows."""
	ns = tl.namespaces(conn)
	spaces = []
	for kind in ("personal", "other", "shared"):
		for i, (prefix, delim) in enumerate(ns[kind]):
			spaces.append((kind, i, prefix, delim))

	def ns_dir(kind, prefix, delim):
		p = prefix[:-len(delim)] if delim and prefix.endswith(delim) else prefix
		if not p:
			return ["#shared" if kind == "shared" else "#users" if kind == "other"
				else "#personal"]
		return p.split(delim) if delim else [p]

	def comp(s):
		return s.replace("/", "\u2215")

	top_ns = set()
	for kind, i, prefix, delim in spaces:
		if not (kind == "personal" and i == 0):
			top_ns.add(ns_dir(kind, prefix, delim)[0])

	out = set()
	for f in tl.list_all_folders(conn):
		name, delim = f.name, f.delimiter
		if name.upper() == "INBOX":
			parts = ["INBOX"]
		else:
			best = None
			for kind, i, prefix, d in spaces:
				root = bool(prefix) and d and prefix.endswith(d) and name == prefix[:-len(d)]
				if name.startswith(prefix) or root:
					if best is None or len(prefix) > len(best[2]):
						best = (kind, i, prefix, d, root)
			kind, i, prefix, d, root = best
			rest = name if root else name[len(prefix):]
			split = [comp(x) for x in (rest.split(delim) if delim else [rest])] if rest else []
			if kind == "personal" and i == 0:
				parts = split
				if parts and parts[0] in top_ns:
					parts[0] += "~"
			else:
				parts = ns_dir(kind, prefix, d) + ([] if root else split)
		for k in range(1, len(parts) + 1):
			out.add("/".join(parts[:k]))
	return out, {f.name: f for f in tl.list_all_folders(conn)}


def folder_dirs(m, conn):
	"""{server name: directory path in the mount} via the user.imap.mailbox xattr."""
	out = {}
	for root, dirs, files in os.walk(m.mnt):
		try:
			name = os.getxattr(root, "user.imap.mailbox").decode()
		except OSError:
			continue
		out[name] = root
	return out


def emls(path):
	return sorted(n for n in os.listdir(path) if n.endswith(".eml"))


# ---- the tree -----------------------------------------------------------------------

def test_find_dirs_equals_checker(mounted):
	conn = mounted.dv.imap()
	want, _ = expected_dirs(conn)
	r = subprocess.run(["find", mounted.mnt, "-mindepth", "1", "-type", "d"],
			   stdout=subprocess.PIPE, check=True, timeout=60)
	got = {os.path.relpath(p, mounted.mnt) for p in r.stdout.decode().splitlines()}
	assert got == want
	# non-ASCII folder names come through as UTF-8 (NFC as the server has them)
	if mounted.dv.layout == "slash":
		assert "Entwürfe" in got and "日本語" in got


def test_counts_equal_server(mounted):
	conn = mounted.dv.imap()
	counts = tl.folder_counts(conn)
	dirs = folder_dirs(mounted, conn)
	assert set(counts) <= set(dirs)
	for name, n in counts.items():
		assert len(emls(dirs[name])) == n, name


def test_dir_xattrs(mounted):
	conn = mounted.dv.imap()
	dirs = folder_dirs(mounted, conn)
	counts = tl.folder_counts(conn)
	for name, path in dirs.items():
		st = tl.status(conn, name) if name in counts else None
		x = {k: os.getxattr(path, k).decode() for k in os.listxattr(path)}
		assert x["user.imap.mailbox"] == name
		assert x["user.imap.delimiter"] == mounted.dv.delimiter
		if st is not None:
			assert int(x["user.imap.messages"]) == st["MESSAGES"]
			assert int(x["user.imap.unseen"]) == st["UNSEEN"]
			assert int(x["user.imap.uidvalidity"]) == st["UIDVALIDITY"]
	sent = [p for n, p in dirs.items() if n.split(mounted.dv.delimiter)[-1] == "Sent"][0]
	assert os.getxattr(sent, "user.imap.special_use") == b"\\Sent"


def test_sizes_mtimes_and_bytes(mounted):
	conn = mounted.dv.imap()
	dirs = folder_dirs(mounted, conn)
	counts = tl.folder_counts(conn)
	sampled = 0
	for name, path in sorted(dirs.items()):
		if name not in counts:
			assert emls(path) == []  # \Noselect: subfolders only
			continue
		msgs = {m.uid: m for m in tl.fetch_messages(conn, name)}
		files = emls(path)
		assert {int(UID_RE.search(f).group(1)) for f in files} == set(msgs)
		for i, f in enumerate(files):
			uid = int(UID_RE.search(f).group(1))
			st = os.stat(os.path.join(path, f))
			assert stat.S_ISREG(st.st_mode)
			assert st.st_size == msgs[uid].size, (name, f)
			assert abs(st.st_mtime - _internaldate(msgs[uid].internaldate)) < 1
			if i % 4 == 0 or st.st_size > 100000:
				r = subprocess.run(["cat", os.path.join(path, f)], stdout=subprocess.PIPE,
						   check=True, timeout=60)
				assert r.stdout == tl.fetch_body(conn, name, uid), (name, f)
				sampled += 1
	assert sampled >= 10


def _internaldate(s):
	"""'dd-Mon-yyyy hh:mm:ss +zzzz' -> epoch seconds."""
	t = calendar.timegm(time.strptime(s[:20].strip(), "%d-%b-%Y %H:%M:%S"))
	sign = 1 if s[21] == "+" else -1
	return t - sign * (int(s[22:24]) * 3600 + int(s[24:26]) * 60)


def test_grep_keeps_seen_flags(mounted):
	conn = mounted.dv.imap()
	names = list(tl.folder_counts(conn))
	before = {n: tl.fetch_flags(conn, n) for n in names}
	r = subprocess.run(["grep", "-r", "-l", "-a", "the", mounted.mnt], stdout=subprocess.PIPE,
			   timeout=300)
	assert r.returncode in (0, 1)
	r = subprocess.run(["grep", "-r", "-c", "xyzzy-nothing", mounted.mnt],
			   stdout=subprocess.PIPE, timeout=300)
	after = {n: tl.fetch_flags(conn, n) for n in names}
	assert after == before
	with open(mounted.trace, "rb") as f:
		trace = f.read()
	for line in trace.splitlines():
		if b" C: " in line and b"FETCH" in line:
			assert b"BODY[" not in line, line  # only BODY.PEEK[...]
		if b" C: " in line:
			assert b" SELECT " not in line and b"STORE" not in line, line


def test_second_grep_from_page_cache(mounted):
	subprocess.run(["grep", "-r", "-q", "xyzzy-nothing", mounted.mnt], timeout=300)
	before = mounted.stats()
	subprocess.run(["grep", "-r", "-q", "xyzzy-nothing", mounted.mnt], timeout=300)
	after = mounted.stats()
	assert after["body_bytes"] == before["body_bytes"]


def _norm(s):
	return unicodedata.normalize("NFC", re.sub(r"[ \t]", " ", s))


def test_file_xattrs(mounted):
	dv = mounted.dv
	conn = dv.imap()
	dirs = folder_dirs(mounted, conn)
	by_key = {(m["folder"], m["uid"]): m for m in dv.corpus["messages"]}
	checked = 0
	counts = tl.folder_counts(conn)
	for name, path in dirs.items():
		flags = tl.fetch_flags(conn, name) if name in counts else {}
		for f in emls(path):
			uid = int(UID_RE.search(f).group(1))
			p = os.path.join(path, f)
			x = {k: os.getxattr(p, k).decode() for k in os.listxattr(p)}
			assert x["user.imap.uid"] == str(uid)
			got = set(x["user.imap.flags"].split())
			assert got == flags[uid] - {"\\Recent"}, (name, f)
			kw = {k for k in flags[uid] if not k.startswith("\\")}
			assert set(filter(None, x["user.xdg.tags"].split(","))) == kw
			cm = by_key.get((name, uid))
			if cm is not None and cm.get("subject") is not None:
				# ENVELOPE (RFC 3501) gives the unfolded header; Dovecot turns a TAB
				# into a space there
				assert _norm(x.get("user.mail.subject", "")) == _norm(cm["subject"]), \
					(name, f)
			checked += 1
	assert checked > 20
	# getfattr -d dumps them (size probes, ERANGE retries)
	p = os.path.join(dirs["INBOX"], emls(dirs["INBOX"])[0])
	r = subprocess.run(["getfattr", "-d", p], stdout=subprocess.PIPE, check=True)
	out = r.stdout.decode()
	for k in ("user.imap.flags", "user.imap.uid", "user.imap.internaldate", "user.mail.from"):
		assert k + "=" in out


def test_ls_l_security_xattrs_not_supported(mounted):
	"""ls -l asked for security.selinux and system.posix_acl_access on every file, each a
	round trip answered "no data"; "not supported" lets it stop after the first file."""
	inbox = os.path.join(mounted.mnt, "INBOX")
	p = os.path.join(inbox, emls(inbox)[0])
	for path in (p, inbox, mounted.mnt):
		for name in ("security.selinux", "system.posix_acl_access", "trusted.x"):
			with pytest.raises(OSError) as e:
				os.getxattr(path, name)
			assert e.value.errno == errno.EOPNOTSUPP, (path, name, e.value)
	# user.* still works, and a missing user.* attribute is still "no data"
	assert os.getxattr(p, "user.imap.uid")
	with pytest.raises(OSError) as e:
		os.getxattr(p, "user.no.such")
	assert e.value.errno == errno.ENODATA


def test_names_safe(mounted):
	for root, dirs, files in os.walk(mounted.mnt):
		for n in dirs + files:
			b = n.encode("utf-8", "surrogateescape")
			assert len(b) <= 255
			b.decode("utf-8")  # valid UTF-8
			assert "/" not in n and "\0" not in n
			assert not any(ord(c) < 0x20 or ord(c) == 0x7f for c in n), n
		for n in files:
			assert n.endswith(".eml")


def test_probes_answered_locally(mounted):
	inbox = os.path.join(mounted.mnt, "INBOX")
	os.listdir(inbox)
	before = mounted.stats()
	for probe in (".git", "desktop.ini", ".hidden", "Autorun.inf", "._x.eml", ".DS_Store",
		      "HEAD", "libc.so.6", "x.eml"):
		for d in (mounted.mnt, inbox):
			with pytest.raises(FileNotFoundError):
				os.stat(os.path.join(d, probe))
	assert mounted.stats()["commands"] == before["commands"]


def test_ls_l_costs_no_round_trips(mounted):
	inbox = os.path.join(mounted.mnt, "INBOX")
	subprocess.run(["ls", "-l", inbox], stdout=subprocess.DEVNULL, check=True)
	before = mounted.stats()
	subprocess.run(["ls", "-l", inbox], stdout=subprocess.DEVNULL, check=True)
	# no per-file round trips (readdirplus): at most the re-EXAMINE of a listing older than
	# 10 s and the re-LIST (NAMESPACE + LIST) of a folder list older than 30 s
	assert mounted.stats()["commands"] - before["commands"] <= 3


def test_read_only(mounted):
	# (rm of a message works since issue 11: tests/integration/test_rm.py)
	inbox = os.path.join(mounted.mnt, "INBOX")
	f = os.path.join(inbox, emls(inbox)[0])
	for fn in (lambda: open(f, "r+b"),
		   lambda: os.mkdir(os.path.join(mounted.mnt, "NewFolder")),
		   lambda: os.rename(f, f + ".x"),
		   lambda: os.setxattr(f, "user.imap.uid", b"1")):
		with pytest.raises(OSError) as e:
			fn()
		assert e.value.errno in (errno.EROFS, errno.EPERM, errno.EACCES)
	# a new empty file is staged, never sent (see test_newfile.py), and can go again
	before = tl.status(mounted.dv.imap(), "INBOX")["MESSAGES"]
	open(os.path.join(inbox, "new.eml"), "w").close()
	os.unlink(os.path.join(inbox, "new.eml"))
	assert tl.status(mounted.dv.imap(), "INBOX")["MESSAGES"] == before


def test_statfs(mounted):
	st = os.statvfs(mounted.mnt)
	assert st.f_namemax == 255
	# Dovecot has a 1 GB STORAGE quota: df shows it
	assert st.f_blocks * st.f_frsize == 1024 * 1024 * 1024


# ---- names: stable across a remount, uid names, root subtree ------------------------

def _tree(mnt):
	out = {}
	for root, dirs, files in os.walk(mnt):
		for n in dirs + files:
			p = os.path.join(root, n)
			out[os.path.relpath(p, mnt)] = os.lstat(p).st_ino
	return out


def test_names_and_inodes_stable_across_remount(dovecot_slash, mount):
	m = mount(dovecot_slash)
	first = _tree(m.mnt)
	m.stop()
	m2 = mount(dovecot_slash)
	second = _tree(m2.mnt)
	assert first == second
	names = "\n".join(first)
	assert "\u2215" in names  # the subject with '/'
	assert '"' in names or "'" in names


def test_names_uid(dovecot_slash, mount):
	m = mount(dovecot_slash, opts=["names=uid"])
	inbox = os.path.join(m.mnt, "INBOX")
	conn = dovecot_slash.imap()
	uids = [x.uid for x in tl.fetch_messages(conn, "INBOX")]
	assert sorted(os.listdir(inbox), key=lambda n: int(n[:-4])) == ["%d.eml" % u for u in uids]


def test_root_subtree(dovecot_slash, mount):
	m = mount(dovecot_slash, root="Work")
	assert os.getxattr(m.mnt, "user.imap.mailbox") == b"Work"
	assert sorted(d for d in os.listdir(m.mnt) if not d.endswith(".eml")) == ["Projects"]
	conn = dovecot_slash.imap()
	assert len(emls(m.mnt)) == tl.folder_counts(conn, ["Work"])["Work"]


def test_mount_type_and_background(dovecot_slash, tmp_path):
	mnt = str(tmp_path / "bg")
	os.makedirs(mnt)
	m = Mount(dovecot_slash, mnt, tmp_path / "bg.log", opts=[
		"password_file=" + dovecot_slash.password_file()], password=False)
	env = m.env()
	env.pop("IMAPFS_PASSWORD", None)
	try:
		r = subprocess.run(m.argv(foreground=False), env=env, stdin=subprocess.DEVNULL,
				   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
		assert r.returncode == 0, r.stderr
		parts = _mounted(mnt)
		assert parts is not None  # mounted by the time the command returns
		assert parts[0] == "imapfs:alice@127.0.0.1" and parts[2] == "fuse.imapfs"
		assert "INBOX" in os.listdir(mnt)
	finally:
		if _mounted(mnt):
			subprocess.run(["fusermount3", "-u", mnt], timeout=30)
	assert not _mounted(mnt)


# ---- range reads -------------------------------------------------------------------

def _big_message(size):
	head = ("From: Big Sender <big@example.org>\r\nTo: alice@example.org\r\n"
		"Subject: =?UTF-8?Q?Gro=C3=9Fe_Datei?=\r\nDate: Mon, 13 Nov 2023 10:00:00 +0100\r\n"
		"Message-ID: <big-1@example.org>\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/plain\r\n\r\n").encode()
	line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"
	return head + line * ((size - len(head)) // len(line))


def test_head_of_big_message_moves_little(fresh_dovecot, mount):
	dv = fresh_dovecot("slash")
	conn = dv.imap()
	data = _big_message(5 * 1024 * 1024)
	uid = tl.append(conn, "INBOX", data)
	m = mount(dv)
	inbox = os.path.join(m.mnt, "INBOX")
	(name,) = emls(inbox)
	assert name.endswith("_%d.eml" % uid) and "Große_Datei" in name
	p = os.path.join(inbox, name)
	assert os.stat(p).st_size == len(data)
	before = m.stats()
	r = subprocess.run(["head", "-c", "100", p], stdout=subprocess.PIPE, check=True)
	assert r.stdout == data[:100]
	after = m.stats()
	assert after["body_bytes"] - before["body_bytes"] < len(data) // 100
	assert after["bytes_in"] - before["bytes_in"] < len(data) // 100
	# a byte range in the middle
	with open(p, "rb") as f:
		f.seek(3 * 1024 * 1024 + 7)
		assert f.read(50) == data[3 * 1024 * 1024 + 7:3 * 1024 * 1024 + 57]
	# the whole file streams once
	before = m.stats()
	r = subprocess.run(["cat", p], stdout=subprocess.PIPE, check=True)
	assert r.stdout == data
	moved = m.stats()["body_bytes"] - before["body_bytes"]
	assert moved <= len(data) * 1.05
	# still unseen
	assert "\\Seen" not in tl.fetch_flags(conn, "INBOX")[uid]


def test_parallel_reads_use_several_connections(fresh_dovecot, mount, tmp_path):
	dv = fresh_dovecot("slash")
	conn = dv.imap()
	for i in range(8):
		tl.append(conn, "INBOX", _big_message(600 * 1024).replace(b"big-1", b"big-%d" % i))
	trace = str(tmp_path / "trace")
	m = mount(dv, opts=["trace_file=" + trace, "max_conns=4"])
	inbox = os.path.join(m.mnt, "INBOX")
	files = [os.path.join(inbox, n) for n in emls(inbox)]
	procs = [subprocess.Popen(["cat", f], stdout=subprocess.DEVNULL) for f in files]
	for p in procs:
		assert p.wait(timeout=120) == 0
	with open(trace, "rb") as f:
		conns = set(re.findall(rb"\[conn (\d+)\] C: \S+ UID FETCH \S+ \(UID BODY", f.read()))
	assert len(conns) >= 2


# ---- bad input and a dying server -------------------------------------------------

def _run_fail(argv, env):
	r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
			   stderr=subprocess.PIPE, timeout=90)
	err = r.stderr.decode()
	assert r.returncode != 0
	lines = [ln for ln in err.splitlines() if ln.strip()]
	assert len(lines) == 1, err
	return lines[0]


@pytest.mark.parametrize("case", ["password", "port", "certificate", "url", "mountpoint",
				  "pwfile-mode", "root"])
def test_bad_input_one_clear_line(dovecot_slash, tmp_path, case):
	dv = dovecot_slash
	mnt = str(tmp_path / "mnt")
	os.makedirs(mnt)
	env = dict(os.environ, IMAPFS_PASSWORD=dv.users["alice"])
	url = dv.url("alice")
	opts = ["-o", "cafile=" + dv.ca]
	if case == "password":
		env["IMAPFS_PASSWORD"] = "wrong"
		want = "login"
	elif case == "port":
		url = "imaps://alice@127.0.0.1:%d" % tl.free_port()
		want = "connect"
	elif case == "certificate":
		opts = []
		want = "TLS"
	elif case == "url":
		url = "imapz://alice@127.0.0.1"
		want = "URL"
	elif case == "mountpoint":
		mnt = str(tmp_path / "does-not-exist")
		want = "mountpoint"
	elif case == "root":
		url = dv.url("alice", root="No/Such/Folder")
		want = "not found"
	else:
		pw = tmp_path / "pw"
		pw.write_text(dv.users["alice"])
		os.chmod(pw, 0o644)
		opts += ["-o", "password_file=%s" % pw]
		want = "password_file"
	try:
		line = _run_fail([tl.imapfs_bin()] + opts + [url, mnt], env)
		assert line.startswith("imapfs: ") and want in line, line
		assert dv.users["alice"] not in line
	finally:
		if _mounted(mnt):
			subprocess.run(["fusermount3", "-u", mnt], timeout=30)


def test_killed_server_gives_eio_and_unmount_works(fresh_dovecot, mount):
	dv = fresh_dovecot("slash")
	conn = dv.imap()
	for i in range(3):
		tl.append(conn, "INBOX", _big_message(200 * 1024).replace(b"big-1", b"k-%d" % i))
	conn.logout()
	m = mount(dv, opts=["timeout=5"])
	inbox = os.path.join(m.mnt, "INBOX")
	files = [os.path.join(inbox, n) for n in emls(inbox)]
	with open(files[0], "rb") as f:
		assert f.read(10)
	pids = [dv.pid] + tl.descendants(dv.pid)
	for p in pids:
		tl.kill_and_wait(p, signal.SIGKILL, 5)
	t0 = time.time()
	with pytest.raises(OSError) as e:
		with open(files[1], "rb") as f:
			f.read()
	assert e.value.errno == errno.EIO
	assert time.time() - t0 < 5 * 3 + 5
	r = subprocess.run(["fusermount3", "-u", m.mnt], timeout=30)
	assert r.returncode == 0
	assert not _mounted(m.mnt)
	m.proc.wait(timeout=15)


def test_background_mount_resolves_relative_paths(dovecot_slash, tmp_path):
	"""Regression: the daemon runs in "/", so a relative cafile must be resolved before it
	goes to the background (new connections failed with EIO after the first folder)."""
	dv = dovecot_slash
	work = tmp_path / "work"
	os.makedirs(work / "mnt")
	with open(dv.ca, "rb") as src, open(work / "ca.pem", "wb") as dst:
		dst.write(src.read())
	dv.password_file(path=str(work / "pw"))
	env = dict(os.environ)
	env.pop("IMAPFS_PASSWORD", None)
	mnt = str(work / "mnt")
	try:
		r = subprocess.run([tl.imapfs_bin(), "-o", "cafile=ca.pem", "-o", "password_file=pw",
				    "-o", "max_conns=2", dv.url("alice"), "mnt"], cwd=str(work),
				   env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
				   stderr=subprocess.PIPE, timeout=60)
		assert r.returncode == 0, r.stderr
		r = subprocess.run(["find", mnt, "-name", "*.eml"], stdout=subprocess.PIPE,
				   stderr=subprocess.PIPE, timeout=120)
		assert r.returncode == 0 and r.stderr == b"", r.stderr
		conn = dv.imap()
		assert len(r.stdout.splitlines()) == sum(tl.folder_counts(conn).values())
	finally:
		if _mounted(mnt):
			subprocess.run(["fusermount3", "-u", mnt], timeout=30)


# ---- a server whose RFC822.SIZE is wrong (tests/fakeimap) ---------------------------

def _fake_server(tmp_path, claimed, body, stall_body=False):
	sys.path.insert(0, os.path.join(tl.source_dir(), "tests", "fakeimap"))
	import fakeimap as fi
	ca, crt, key = fi.make_certs(str(tmp_path / "certs"))
	env_line = ('* 1 FETCH (UID 1 FLAGS (\\Seen) RFC822.SIZE %d INTERNALDATE '
		    '"01-Jan-2024 10:00:00 +0000" ENVELOPE ("Mon, 1 Jan 2024 10:00:00 +0000" '
		    '"size test" NIL NIL NIL NIL NIL NIL NIL "<s@x>"))\r\n' % claimed)

	def body_reply(conn, m):
		text = m.group(0).decode()
		part = re.search(r"BODY\.PEEK\[\]<(\d+)\.(\d+)>", text)
		data = body
		if part:
			off, n = int(part.group(1)), int(part.group(2))
			data = body[off:off + n]
			head = "* 1 FETCH (UID 1 BODY[]<%d> {%d}\r\n" % (off, len(data))
		else:
			head = "* 1 FETCH (UID 1 BODY[] {%d}\r\n" % len(data)
		return head.encode() + data + b")\r\n{tag} OK done\r\n"

	rules = [
		(rb"\S+ CAPABILITY", b"* CAPABILITY IMAP4rev1 NAMESPACE UIDPLUS\r\n{tag} OK\r\n"),
		(rb"\S+ NAMESPACE", b'* NAMESPACE (("" "/")) NIL NIL\r\n{tag} OK\r\n'),
		(rb"\S+ LIST .*", b'* LIST (\\HasNoChildren) "/" INBOX\r\n{tag} OK\r\n'),
		(rb"\S+ (EXAMINE|SELECT) .*", b"* 1 EXISTS\r\n* 0 RECENT\r\n"
		 b"* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 2] n\r\n{tag} OK [READ-ONLY] done\r\n"),
		(rb"\S+ UID FETCH \S+ \(.*BODY\.PEEK\[\].*", [fi.stall(60)] if stall_body else body_reply),
		(rb"\S+ UID FETCH \S+ \(.*", env_line.encode() + b"{tag} OK done\r\n"),
		(rb"\S+ (NOOP|CHECK|ENABLE .*|ID .*)", b"{tag} OK\r\n"),
	]
	caps = "IMAP4rev1 LITERAL+ SASL-IR UIDPLUS NAMESPACE AUTH=PLAIN"
	script = fi.login_steps(caps) + [fi.serve(rules, timeout=60)]
	srv = fi.FakeImap(scripts=[script], tls="implicit", certfile=crt, keyfile=key).start()
	return srv, ca


class _FakeDv:
	host = "127.0.0.1"

	def __init__(self, port, ca):
		self.port_imaps, self.ca = port, ca
		self.users = {"alice": "secret"}

	def url(self, user="alice", tls="implicit", root=None):
		return "imaps://%s@127.0.0.1:%d" % (user, self.port_imaps)


@pytest.mark.parametrize("claimed,actual", [(1000, 900), (500, 900), (400000, 300000),
					    (300000, 400000)])
def test_wrong_rfc822_size_is_corrected(tmp_path, mount, claimed, actual):
	"""Never a truncated or padded file: the first reader gets exactly the server's bytes
	and stat shows the true size afterwards."""
	body = (b"Subject: size test\r\n\r\n" + b"0123456789abcdef" * (actual // 16 + 1))[:actual]
	srv, ca = _fake_server(tmp_path, claimed, body)
	m = None
	try:
		m = mount(_FakeDv(srv.port, ca))
		inbox = os.path.join(m.mnt, "INBOX")
		(name,) = os.listdir(inbox)
		p = os.path.join(inbox, name)
		assert os.stat(p).st_size == claimed  # what the server said
		r = subprocess.run(["cat", p], stdout=subprocess.PIPE, check=True, timeout=60)
		assert len(r.stdout) == len(body) and r.stdout == body
		deadline = time.time() + 5
		while os.stat(p).st_size != actual and time.time() < deadline:
			time.sleep(0.1)
		assert os.stat(p).st_size == actual
		with open(p, "rb") as f:
			assert f.read() == body
	finally:
		if m is not None:
			m.stop()
		srv.stop()


def test_password_command_and_mark_seen(fresh_dovecot, mount):
	dv = fresh_dovecot("slash")
	conn = dv.imap()
	uid = tl.append(conn, "INBOX", _big_message(20000))
	pw = dv.password_file()
	m = mount(dv, password=False, opts=["password_command=cat '%s'" % pw, "mark_seen"])
	inbox = os.path.join(m.mnt, "INBOX")
	(name,) = emls(inbox)
	assert "\\Seen" not in tl.fetch_flags(conn, "INBOX")[uid]  # listing is not reading
	with open(os.path.join(inbox, name), "rb") as f:
		assert f.read(10)
	assert "\\Seen" in tl.fetch_flags(conn, "INBOX")[uid]


def test_flags_changed_on_server_show_in_xattr(fresh_dovecot, mount):
	dv = fresh_dovecot("slash")
	conn = dv.imap()
	uid = tl.append(conn, "INBOX", _big_message(3000))
	m = mount(dv, opts=["flags_max_age=0"])
	inbox = os.path.join(m.mnt, "INBOX")
	p = os.path.join(inbox, emls(inbox)[0])
	assert os.getxattr(p, "user.imap.flags") == b""
	tl.select(conn, "INBOX", readonly=False)
	tl.check(conn.uid("STORE", str(uid), "+FLAGS", "(\\Flagged $Label1)"))
	# flags_max_age=0: the very next read re-checks the folder
	assert set(os.getxattr(p, "user.imap.flags").split()) == {b"\\Flagged", b"$Label1"}
	assert os.getxattr(p, "user.xdg.tags") == b"$Label1"


def test_interrupted_read_returns_promptly(tmp_path, mount):
	"""Ctrl-C on a read the server never answers: FUSE_INTERRUPT cancels the IMAP wait,
	the reader is gone long before the 60 s timeout, and the mount still unmounts."""
	body = b"Subject: size test\r\n\r\nhello\r\n"
	srv, ca = _fake_server(tmp_path, len(body), body, stall_body=True)
	m = None
	try:
		m = mount(_FakeDv(srv.port, ca), opts=["timeout=60"])
		inbox = os.path.join(m.mnt, "INBOX")
		(name,) = os.listdir(inbox)
		reader = subprocess.Popen(["cat", os.path.join(inbox, name)], stdout=subprocess.DEVNULL,
					  stderr=subprocess.DEVNULL)
		time.sleep(1.5)
		assert reader.poll() is None  # stuck on the server
		t0 = time.time()
		reader.send_signal(signal.SIGINT)
		reader.wait(timeout=20)
		assert time.time() - t0 < 10
	finally:
		if m is not None:
			m.stop()
		srv.stop()


def test_password_prompt_on_tty_without_echo(fresh_dovecot, tmp_path):
	dv = fresh_dovecot("slash")
	mnt = str(tmp_path / "mnt")
	os.makedirs(mnt)
	env = dict(os.environ)
	env.pop("IMAPFS_PASSWORD", None)
	cmd = "'%s' -o cafile='%s' '%s' '%s'" % (tl.imapfs_bin(), dv.ca, dv.url("alice"), mnt)
	try:
		# script(1) gives imapfs a terminal; the password is typed into it
		p = subprocess.Popen(["script", "-qec", cmd, "/dev/null"], stdin=subprocess.PIPE,
				     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
		seen = b""
		deadline = time.time() + 30
		while b"Password for" not in seen and time.time() < deadline:
			r, _, _ = select.select([p.stdout], [], [], 1.0)
			if r:
				seen += os.read(p.stdout.fileno(), 4096)
		p.stdin.write((dv.users["alice"] + "\n").encode())
		p.stdin.flush()
		out, _ = p.communicate(timeout=60)
		text = (seen + out).decode(errors="replace")
		assert p.returncode == 0, text
		assert "Password for alice@127.0.0.1:" in text
		assert dv.users["alice"] not in text  # not echoed
		assert "INBOX" in os.listdir(mnt)
	finally:
		if _mounted(mnt):
			subprocess.run(["fusermount3", "-u", mnt], timeout=30)
