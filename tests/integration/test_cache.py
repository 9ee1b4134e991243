# SPDX-License-Identifier: GPL-2.0-or-later
"""The on-disk header and body cache (issue 5) against a real Dovecot and a real mount:
a warm remount lists without any FETCH, a no-change resync costs only the EXAMINE, changes
made by another client between mounts show exactly, a recreated mailbox (new UIDVALIDITY)
never serves stale names or bytes, cached bodies cost no body bytes, permissions are
0700/0600, a corrupt database is rebuilt, a second mount of one cache is refused, an
offline mount serves the cache and fails fast for the rest, and a kill -9 during the first
load leaves a cache that the next mount completes consistently.

The mount helpers are those of test_mount.py; every mount gets its own -o cache_dir.
"""

import errno
import os
import re
import signal
import stat
import subprocess
import time

import pytest

import imapfs_testlib as tl
from test_mount import Mount, UID_RE, _mounted, emls, mount  # noqa: F401 (fixture)


@pytest.fixture
def cmount(mount, tmp_path):
	"""Factory: cmount(dv, cache, trace=False, opts=(), **kw) -> test_mount's mount()
	with -o cache_dir=cache (and a protocol trace in m.trace when asked)."""
	count = [0]

	def make(dv, cache, trace=False, opts=(), **kw):
		count[0] += 1
		opts = ["cache_dir=%s" % cache] + list(opts)
		tpath = str(tmp_path / ("trace%d" % count[0]))
		if trace:
			opts.append("trace_file=" + tpath)
		m = mount(dv, opts=opts, **kw)
		m.trace = tpath
		return m

	return make


def commands(m):
	"""The IMAP commands of the mount's trace: ['LIST', 'EXAMINE', 'UID FETCH', ...]."""
	with open(m.trace, "rb") as f:
		data = f.read()
	out = []
	for cmd in re.findall(rb"\] C: \S+ (UID \w+|\w+)", data):
		out.append(cmd.decode())
	return out


def walk(mnt):
	"""{relative path: (inode, size)} of the whole tree (what ls -lR sees)."""
	out = {}
	for root, dirs, files in os.walk(mnt):
		for n in dirs + files:
			p = os.path.join(root, n)
			st = os.lstat(p)
			out[os.path.relpath(p, mnt)] = (st.st_ino, st.st_size if n in files else 0)
	return out


def uids_in(path):
	return sorted(int(UID_RE.search(n).group(1)) for n in emls(path))


def by_uid(path):
	return {int(UID_RE.search(n).group(1)): os.path.join(path, n) for n in emls(path)}


def message(subject, body=b"hello", date="Mon, 1 Jan 2024 10:00:00 +0000"):
	return (b"From: a@example.org\r\nTo: alice@example.org\r\nSubject: " +
		subject.encode() + b"\r\nDate: " + date.encode() +
		b"\r\nMessage-ID: <" + subject.replace(" ", ".").encode() +
		b"@example.org>\r\n\r\n" + body + b"\r\n")


def first_mount(fresh_dovecot, cmount, tmp_path, corpus_n):
	"""A fresh server with a corpus and a first (cold) mount with its own cache."""
	dv = fresh_dovecot("slash", corpus_n=corpus_n)
	cache = str(tmp_path / "cache")
	m = cmount(dv, cache)
	return dv, dv.imap(), cache, m, os.path.join(m.mnt, "INBOX")


def stop_server(dv):
	"""Stops the server but keeps its files (dv.start() brings it back, same ports)."""
	subprocess.run([tl.PYTHON, tl.script("dovecot"), "stop", dv.dir], check=True,
		       stdout=subprocess.DEVNULL, timeout=60)


def assert_eio_fast(path):
	t0 = time.time()
	with pytest.raises(OSError) as e:
		with open(path, "rb") as f:
			f.read()
	assert e.value.errno == errno.EIO and time.time() - t0 < 2


def restart_and_see_new_mail(dv, inbox):
	"""Restarts the server, adds a message; the mount must show it by itself."""
	dv.start(layout="slash")
	new = tl.append(dv.imap(), "INBOX", message("back online"))
	# the mount retries every offline_retry (1 s in these tests)
	tl.wait_for(lambda: new in uids_in(inbox), timeout=60, what="the new mail after the restart",
		    step=0.2)


def test_warm_remount_lists_without_fetch(fresh_dovecot, cmount, tmp_path):
	dv, conn, cache, m, inbox = first_mount(fresh_dovecot, cmount, tmp_path, 60)
	first = walk(m.mnt)
	m.stop()
	m2 = cmount(dv, cache, trace=True)
	assert walk(m2.mnt) == first  # names, inode numbers and sizes stable
	cmds = commands(m2)
	assert not [c for c in cmds if "FETCH" in c or "SEARCH" in c], cmds
	# the no-change resync of each folder is one EXAMINE (with QRESYNC)
	assert cmds.count("EXAMINE") <= len(dv.corpus_folders()), cmds


def test_no_change_resync_is_one_examine(fresh_dovecot, cmount, tmp_path):
	dv, conn, cache, m, inbox = first_mount(fresh_dovecot, cmount, tmp_path, 60)
	n = len(emls(inbox))
	m.stop()
	m2 = cmount(dv, cache, trace=True)
	before = m2.stats()
	assert len(emls(os.path.join(m2.mnt, "INBOX"))) == n
	after = m2.stats()
	assert after["commands"] - before["commands"] == 1
	assert after["body_bytes"] == before["body_bytes"]
	# (NOTIFY and IDLE are the standing push connection of -o live, not the resync)
	assert [c for c in commands(m2) if c not in ("LIST", "NAMESPACE", "CAPABILITY",
						     "AUTHENTICATE", "LOGIN", "ID",
						     "ENABLE", "LOGOUT", "NOOP", "NOTIFY",
						     "IDLE", "DONE")] == ["EXAMINE"]


def test_changes_between_mounts(fresh_dovecot, cmount, tmp_path):
	dv, conn, cache, m, inbox = first_mount(fresh_dovecot, cmount, tmp_path, 60)
	old = uids_in(inbox)
	assert len(old) >= 4
	m.stop()
	# another client: two new, two expunged, flags on one
	new = [tl.append(conn, "INBOX", message("new %d" % i)) for i in range(2)]
	tl.select(conn, "INBOX", readonly=False)
	tl.check(conn.uid("STORE", "%d,%d" % (old[0], old[2]), "+FLAGS", "(\\Deleted)"))
	tl.check(conn.expunge())
	tl.check(conn.uid("STORE", str(old[1]), "+FLAGS", "(\\Flagged $Label2)"))
	tl.check(conn.uid("STORE", str(old[3]), "-FLAGS", "(\\Seen)"))
	m2 = cmount(dv, cache, trace=True)
	inbox = os.path.join(m2.mnt, "INBOX")
	server = {x.uid: x for x in tl.fetch_messages(conn, "INBOX")}
	assert uids_in(inbox) == sorted(server)
	assert set(new) <= set(uids_in(inbox))
	files = by_uid(inbox)
	for uid in (old[1], old[3], new[0]):
		got = set(os.getxattr(files[uid], "user.imap.flags").decode().split())
		assert got == set(server[uid].flags) - {"\\Recent"}, uid
	# only the new mail was fetched in full
	with open(m2.trace, "rb") as f:
		fetches = re.findall(rb"C: \S+ UID FETCH (\S+) \(([^)]*)", f.read())
	full = [s for s, items in fetches if b"ENVELOPE" in items]
	assert full and all(not s.startswith(b"1:") for s in full), fetches


def test_uidvalidity_change_serves_no_stale_content(fresh_dovecot, cmount, tmp_path):
	dv = fresh_dovecot("slash")
	conn = dv.imap()
	tl.check(conn.create(tl.mbox("Tmp")))
	for i in range(3):
		tl.append(conn, "Tmp", message("same subject", b"old body %d" % i))
	cache = str(tmp_path / "cache")
	m = cmount(dv, cache)
	tmp = os.path.join(m.mnt, "Tmp")
	old_files = emls(tmp)
	for p in by_uid(tmp).values():
		with open(p, "rb") as f:
			assert b"old body" in f.read()  # now in the body cache
	old_uv = tl.status(conn, "Tmp", ["UIDVALIDITY"])["UIDVALIDITY"]
	m.stop()
	tl.check(conn.delete(tl.mbox("Tmp")))
	tl.check(conn.create(tl.mbox("Tmp")))
	for i in range(2):
		tl.append(conn, "Tmp", message("same subject", b"new body %d!" % i))
	assert tl.status(conn, "Tmp", ["UIDVALIDITY"])["UIDVALIDITY"] != old_uv
	m2 = cmount(dv, cache)
	tmp = os.path.join(m2.mnt, "Tmp")
	assert len(emls(tmp)) == 2
	assert set(emls(tmp)) <= set(old_files)  # same names (same UIDs, subject, date)...
	server = {x.uid: x for x in tl.fetch_messages(conn, "Tmp", body=True)}
	for uid, p in by_uid(tmp).items():
		with open(p, "rb") as f:
			data = f.read()
		assert data == server[uid].body and b"new body" in data  # ...never old bytes
		assert os.stat(p).st_size == len(server[uid].body)


def test_cached_body_costs_no_body_bytes(fresh_dovecot, cmount, tmp_path):
	dv, conn, cache, m, inbox = first_mount(fresh_dovecot, cmount, tmp_path, 20)
	files = by_uid(inbox)
	uid, path = sorted(files.items())[0]
	with open(path, "rb") as f:
		want = f.read()
	assert want == tl.fetch_body(conn, "INBOX", uid)
	m.stop()
	m2 = cmount(dv, cache)
	inbox = os.path.join(m2.mnt, "INBOX")
	emls(inbox)
	before = m2.stats()
	with open(by_uid(inbox)[uid], "rb") as f:
		assert f.read() == want
	after = m2.stats()
	assert after["body_bytes"] == before["body_bytes"]
	assert after["commands"] == before["commands"]
	assert after["cache_hits"] == before["cache_hits"] + 1
	assert after["cache_files"] >= 1 and after["cache_bytes"] >= len(want)


def test_cache_permissions(fresh_dovecot, cmount, tmp_path):
	dv = fresh_dovecot("slash", corpus_n=20)
	cache = str(tmp_path / "cache")
	old = os.umask(0)
	try:
		m = cmount(dv, cache)
	finally:
		os.umask(old)
	inbox = os.path.join(m.mnt, "INBOX")
	for p in list(by_uid(inbox).values())[:3]:
		with open(p, "rb") as f:
			f.read()
	m.stop()
	seen = 0
	for root, dirs, files in os.walk(cache):
		assert stat.S_IMODE(os.stat(root).st_mode) == 0o700, root
		for n in files:
			p = os.path.join(root, n)
			assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p
			seen += 1
	assert seen >= 5  # lock, hcache.db, bodies/lock, 3 bodies


def test_corrupt_cache_is_rebuilt(fresh_dovecot, cmount, tmp_path):
	dv, conn, cache, m, inbox = first_mount(fresh_dovecot, cmount, tmp_path, 30)
	first = walk(m.mnt)
	uid, path = sorted(by_uid(inbox).items())[0]
	with open(path, "rb") as f:
		body = f.read()
	m.stop()
	for n in os.listdir(cache):
		if n.startswith("hcache.db"):
			with open(os.path.join(cache, n), "r+b") as f:
				f.write(os.urandom(8192))
	m2 = cmount(dv, cache)
	assert "moved aside" in m2.log() or "rebuil" in m2.log(), m2.log()
	assert m2.stats()["cache_files"] == 0  # bodies filed under the lost ids are gone
	assert walk(m2.mnt) == first
	with open(by_uid(os.path.join(m2.mnt, "INBOX"))[uid], "rb") as f:
		assert f.read() == body == tl.fetch_body(conn, "INBOX", uid)
	m2.stop()
	m3 = cmount(dv, cache, trace=True)  # and the rebuilt cache is warm again
	assert walk(m3.mnt) == first
	assert not [c for c in commands(m3) if "FETCH" in c]


def test_second_mount_of_cache_refused(fresh_dovecot, cmount, tmp_path):
	dv = fresh_dovecot("slash", corpus_n=5)
	cache = str(tmp_path / "cache")
	m = cmount(dv, cache)
	m2 = Mount(dv, tmp_path / "mnt-second", tmp_path / "second.log",
		   opts=["cache_dir=" + cache])
	os.makedirs(m2.mnt)
	r = subprocess.run(m2.argv(foreground=True), env=m2.env(), stdin=subprocess.DEVNULL,
			   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
	out = r.stdout.decode().strip()
	assert r.returncode == 1
	assert len(out.splitlines()) == 1, out
	assert out.startswith("imapfs: cache in use by another imapfs (pid %d)" % m.proc.pid), out
	assert "cache_dir=" in out and "no_cache" in out
	assert not _mounted(m2.mnt)
	assert os.listdir(m.mnt)  # the first one is unharmed


def test_offline_serves_cache_and_fails_fast(fresh_dovecot, cmount, tmp_path):
	dv, conn, cache, m, inbox = first_mount(fresh_dovecot, cmount, tmp_path, 30)
	first = walk(m.mnt)
	files = sorted(by_uid(inbox).items())
	uid, path = files[0]
	with open(path, "rb") as f:
		cached = f.read()
	m.stop()
	# forced offline while the server is up: no connection at all
	m2 = cmount(dv, cache, trace=True, opts=["offline"])
	assert "offline" in m2.log()
	assert walk(m2.mnt) == first
	assert commands(m2) == []
	m2.stop()
	# the server is gone (its files kept): offline by itself
	stop_server(dv)
	m3 = cmount(dv, cache, opts=["timeout=5", "offline_retry=1", "dir_max_age=0"])
	assert "offline" in m3.log()
	assert walk(m3.mnt) == first
	inbox = os.path.join(m3.mnt, "INBOX")
	by = by_uid(inbox)
	with open(by[uid], "rb") as f:
		assert f.read() == cached
	assert_eio_fast(by[files[1][0]])
	# the server comes back with new mail: the mount goes online and resyncs by itself
	restart_and_see_new_mail(dv, inbox)
	with open(by[files[1][0]], "rb") as f:
		assert f.read()  # uncached bodies are fetched again


def test_kill9_during_initial_load_then_consistent(fresh_dovecot, cmount, tmp_path):
	dv = fresh_dovecot("slash", corpus_n=3000)
	conn = dv.imap()
	cache = str(tmp_path / "cache")
	m = cmount(dv, cache, trace=True)
	big, count = max(dv.corpus_folders().items(), key=lambda kv: kv[1])
	assert count > 1000  # more than one batch of headers
	d = os.path.join(m.mnt, *big.split("/"))
	ls = subprocess.Popen(["ls", "-l", d], stdout=subprocess.DEVNULL,
			      stderr=subprocess.DEVNULL)
	# kill while the second batch is on the wire (the first one is committed by then)
	deadline = time.time() + 30
	while time.time() < deadline:
		with open(m.trace, "rb") as f:
			if len(re.findall(rb"UID FETCH \S+ \([^)]*ENVELOPE", f.read())) >= 2:
				break
		time.sleep(0.002)
	os.kill(m.proc.pid, signal.SIGKILL)
	ls.wait(timeout=30)
	m.stop()
	m2 = cmount(dv, cache)
	d = os.path.join(m2.mnt, *big.split("/"))
	server = tl.fetch_messages(conn, big)
	assert uids_in(d) == sorted(x.uid for x in server)
	flags = {x.uid: set(x.flags) - {"\\Recent"} for x in server}
	for uid, p in list(by_uid(d).items())[::97]:
		assert set(os.getxattr(p, "user.imap.flags").decode().split()) == flags[uid]
	m2.stop()
	m3 = cmount(dv, cache, trace=True)  # complete now: warm, no FETCH
	d = os.path.join(m3.mnt, *big.split("/"))
	assert uids_in(d) == sorted(x.uid for x in server)
	assert not [c for c in commands(m3) if "FETCH" in c]


# ---- CONDSTORE-only and plain servers (tests/fakeimap: Dovecot always has QRESYNC) ----

class _FakeFolder:
	"""INBOX of a stateful fake server: {uid: [flags, modseq]}."""

	def __init__(self, n):
		self.uidvalidity, self.uidnext, self.modseq = 42, n + 1, n
		self.msgs = {u: ["\\Seen", u] for u in range(1, n + 1)}

	def touch(self):
		self.modseq += 1
		return self.modseq

	def add(self):
		self.msgs[self.uidnext] = ["", self.touch()]
		self.uidnext += 1

	def uids(self, text):
		return tl.expand_uid_set(text, self.msgs)

	def examine(self, conn, m):
		return ("* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY %d] v\r\n* OK [UIDNEXT %d] n\r\n"
			"%s{tag} OK [READ-ONLY] done\r\n" % (
				len(self.msgs), self.uidvalidity, self.uidnext,
				"* OK [HIGHESTMODSEQ %d] m\r\n" % self.modseq if self.condstore else ""
			)).encode()

	def search(self, conn, m):
		return ("* SEARCH %s\r\n{tag} OK done\r\n" % " ".join(map(str, sorted(self.msgs)))).encode()

	def fetch(self, conn, m):
		uids, items = m.group(1).decode(), m.group(2).decode()
		since = re.search(r"CHANGEDSINCE (\d+)", items)
		order = sorted(self.msgs)
		out = []
		for u in self.uids(uids):
			flags, modseq = self.msgs[u]
			if since and modseq <= int(since.group(1)):
				continue
			line = "* %d FETCH (UID %d FLAGS (%s)" % (order.index(u) + 1, u, flags)
			if self.condstore:
				line += " MODSEQ (%d)" % modseq
			if "ENVELOPE" in items:
				line += (' RFC822.SIZE 100 INTERNALDATE "01-Jan-2024 10:00:00 +0000" ENVELOPE '
					 '("Mon, 1 Jan 2024 10:00:00 +0000" "msg %d" NIL NIL NIL NIL NIL NIL '
					 'NIL "<m%d@x>")' % (u, u))
			out.append(line + ")\r\n")
		return ("".join(out) + "{tag} OK done\r\n").encode()


def _fake_store_server(tmp_path, folder, condstore):
	import sys
	sys.path.insert(0, os.path.join(tl.source_dir(), "tests", "fakeimap"))
	import fakeimap as fi
	from test_mount import _FakeDv
	folder.condstore = condstore
	ca, crt, key = fi.make_certs(str(tmp_path / "certs"))
	caps = "IMAP4rev1 LITERAL+ SASL-IR UIDPLUS NAMESPACE AUTH=PLAIN" + (
		" CONDSTORE" if condstore else "")
	rules = [
		(rb"\S+ CAPABILITY", ("* CAPABILITY %s\r\n{tag} OK\r\n" % caps).encode()),
		(rb"\S+ NAMESPACE", b'* NAMESPACE (("" "/")) NIL NIL\r\n{tag} OK\r\n'),
		(rb"\S+ LIST .*", b'* LIST (\\HasNoChildren) "/" INBOX\r\n{tag} OK\r\n'),
		(rb"\S+ (EXAMINE|SELECT) .*", folder.examine),
		(rb"\S+ UID SEARCH .*", folder.search),
		(rb"\S+ UID FETCH (\S+) (.*)", folder.fetch),
		(rb"\S+ (NOOP|CHECK|ENABLE .*|ID .*)", b"{tag} OK\r\n"),
	]
	script = fi.login_steps(caps) + [fi.serve(rules, timeout=120)]
	srv = fi.FakeImap(scripts=[script], tls="implicit", certfile=crt, keyfile=key).start()
	return srv, _FakeDv(srv.port, ca)


@pytest.mark.parametrize("condstore", [True, False], ids=["condstore", "plain"])
def test_resync_without_qresync(tmp_path, cmount, condstore):
	folder = _FakeFolder(6)
	srv, dv = _fake_store_server(tmp_path, folder, condstore)
	try:
		cache = str(tmp_path / "cache")
		m = cmount(dv, cache, trace=True)
		assert uids_in(os.path.join(m.mnt, "INBOX")) == [1, 2, 3, 4, 5, 6]
		m.stop()
		# another client: expunge 2, flag 4, two new messages
		del folder.msgs[2]
		folder.touch()
		folder.msgs[4] = ["\\Flagged", folder.touch()]
		folder.add()
		folder.add()
		m2 = cmount(dv, cache, trace=True)
		inbox = os.path.join(m2.mnt, "INBOX")
		assert uids_in(inbox) == [1, 3, 4, 5, 6, 7, 8]
		files = by_uid(inbox)
		assert os.getxattr(files[4], "user.imap.flags") == b"\\Flagged"
		assert os.getxattr(files[3], "user.imap.flags") == b"\\Seen"
		with open(m2.trace, "rb") as f:
			trace = f.read()
		full = re.findall(rb"C: \S+ UID FETCH (\S+) \([^)]*ENVELOPE", trace)
		assert full == [b"7:*"], trace  # headers of the new mail only
		if condstore:
			assert re.search(rb"C: \S+ UID FETCH 1:\* \(UID FLAGS MODSEQ\) \(CHANGEDSINCE 6\)",
					 trace), trace
			assert re.search(rb"C: \S+ UID SEARCH", trace)  # the expunge diff
		m2.stop()
		# nothing changed: with CONDSTORE one EXAMINE, else one flag fetch of all
		m3 = cmount(dv, cache, trace=True)
		assert uids_in(os.path.join(m3.mnt, "INBOX")) == [1, 3, 4, 5, 6, 7, 8]
		cmds = [c for c in commands(m3) if c not in ("LIST", "NAMESPACE", "CAPABILITY",
							     "AUTHENTICATE", "LOGIN", "ID",
							     "ENABLE", "LOGOUT", "NOOP")]
		assert cmds == (["EXAMINE"] if condstore else ["EXAMINE", "UID FETCH"]), cmds
		m3.stop()
		assert srv.errors == []
	finally:
		srv.stop()


def test_default_dir_no_cache_and_cache_size(fresh_dovecot, mount, tmp_path):
	dv = fresh_dovecot("slash", corpus_n=10)
	xdg = str(tmp_path / "xdg")
	m = Mount(dv, tmp_path / "mnt-default", tmp_path / "default.log")
	m.env = lambda: dict(os.environ, XDG_CACHE_HOME=xdg, IMAPFS_PASSWORD=dv.users["alice"])
	with m:
		assert emls(os.path.join(m.mnt, "INBOX"))
	want = os.path.join(xdg, "imapfs", "alice@127.0.0.1:%d" % dv.port_imaps)
	assert os.path.exists(os.path.join(want, "hcache.db")), os.listdir(xdg)
	# no_cache: nothing written anywhere
	m2 = mount(dv, opts=["no_cache"])  # (its XDG_CACHE_HOME is mnt + "-xdg-cache")
	assert emls(os.path.join(m2.mnt, "INBOX"))
	assert not os.path.exists(m2.mnt + "-xdg-cache")
	# a cap smaller than every message: bodies are read, none is kept
	m3 = mount(dv, opts=["cache_dir=%s" % (tmp_path / "small"), "cache_size=1K"])
	inbox = os.path.join(m3.mnt, "INBOX")
	for p in list(by_uid(inbox).values())[:3]:
		with open(p, "rb") as f:
			assert f.read()
	assert m3.stats()["cache_bytes"] <= 1024
	# a bad size is one clear line
	os.makedirs(str(tmp_path / "mnt-bad"))
	r = subprocess.run(Mount(dv, tmp_path / "mnt-bad", tmp_path / "bad.log",
				 opts=["cache_size=12Q"]).argv(), env=m3.env(),
			   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
			   timeout=30)
	assert r.returncode != 0
	assert r.stdout.decode().strip() == (
		"imapfs: bad cache_size=12Q (bytes, with K, M or G suffix)")


def test_server_lost_after_mount_goes_offline_and_back(fresh_dovecot, cmount, tmp_path):
	dv, conn, cache, m, inbox = first_mount(fresh_dovecot, cmount, tmp_path, 20)
	conn.logout()
	m.stop()
	# every listing resyncs (dir_max_age=0), so the next one meets the dead server
	m = cmount(dv, cache, opts=["timeout=3", "dir_max_age=0", "offline_retry=1"])
	inbox = os.path.join(m.mnt, "INBOX")
	files = sorted(by_uid(inbox).items())
	with open(files[0][1], "rb") as f:
		cached = f.read()
	stop_server(dv)
	t0 = time.time()
	assert by_uid(inbox).keys() == dict(files).keys()  # served from the cache
	assert time.time() - t0 < 3 * 3 + 5
	assert "offline" in m.log()
	with open(files[0][1], "rb") as f:
		assert f.read() == cached
	assert_eio_fast(files[1][1])
	restart_and_see_new_mail(dv, inbox)


# ---- -o sync=new|all: background body download ----------------------------------------

def wait_cache_files(m, want, timeout=60):
	"""Polls the stats xattr until cache_files reaches @want (at most @timeout s)."""
	deadline = time.time() + timeout
	while m.stats()["cache_files"] < want and time.time() < deadline:
		time.sleep(0.5)
	return m.stats()["cache_files"]


def all_flags(conn, folders):
	return {f: tl.fetch_flags(conn, f) for f in folders}


def test_sync_all_downloads_every_body(fresh_dovecot, cmount, tmp_path):
	dv = fresh_dovecot("slash", corpus_n=40)
	conn = dv.imap()
	folders = [f for f, n in dv.corpus_folders().items() if n > 0]
	server = {}  # (uid, body) pairs of the whole account, as the checker sees them
	for f in folders:
		for x in tl.fetch_messages(conn, f, body=True):
			server.setdefault(x.uid, set()).add(x.body)
	total = sum(len(tl.fetch_messages(conn, f)) for f in folders)
	assert total >= 20
	flags = all_flags(conn, folders)
	m = cmount(dv, str(tmp_path / "cache"), opts=["sync=all", "timeout=5"])
	# nobody lists anything: the background walk alone fills the cache
	assert wait_cache_files(m, total) == total, m.log()
	assert all_flags(conn, folders) == flags  # BODY.PEEK: no \Seen set
	conn.logout()
	stop_server(dv)
	seen = 0
	for root, dirs, files in os.walk(m.mnt):
		for p in (os.path.join(root, n) for n in emls(root)):
			with open(p, "rb") as fh:
				data = fh.read()  # offline: from the body cache only
			assert data in server[int(UID_RE.search(p).group(1))], p
			seen += 1
	assert seen >= total
	assert "background sync" not in m.log(), m.log()


def test_sync_new_downloads_new_mail(fresh_dovecot, cmount, tmp_path):
	dv, conn, cache, m, inbox = first_mount(fresh_dovecot, cmount, tmp_path, 20)
	assert uids_in(inbox)  # the listing (headers) is in the cache now, no body
	m.stop()
	new = [tl.append(conn, "INBOX", message("sync new %d" % i, b"body %d" % i))
	       for i in range(2)]
	flags = tl.fetch_flags(conn, "INBOX")
	m2 = cmount(dv, cache, opts=["sync=new", "timeout=5"])
	before = m2.stats()["cache_files"]
	inbox = os.path.join(m2.mnt, "INBOX")
	assert set(new) <= set(uids_in(inbox))  # the resync finds them and queues them
	assert wait_cache_files(m2, before + 2) == before + 2, m2.log()
	time.sleep(1)
	assert m2.stats()["cache_files"] == before + 2  # the new ones only
	assert tl.fetch_flags(conn, "INBOX") == flags
	want = {uid: tl.fetch_body(conn, "INBOX", uid) for uid in new}
	conn.logout()
	stop_server(dv)
	files = by_uid(inbox)
	for uid in new:
		with open(files[uid], "rb") as f:
			assert f.read() == want[uid]


def test_sync_needs_cache(fresh_dovecot, tmp_path):
	dv = fresh_dovecot("slash")
	os.makedirs(str(tmp_path / "mnt-sync"))
	for policy, line in (("all", "imapfs: -o sync=all needs the cache"),
			     ("new", "imapfs: -o sync=new needs the cache")):
		mm = Mount(dv, tmp_path / "mnt-sync", tmp_path / "sync.log",
			   opts=["sync=" + policy, "no_cache"])
		r = subprocess.run(mm.argv(), env=mm.env(), stdin=subprocess.DEVNULL,
				   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
		assert r.returncode == 1
		assert r.stdout.decode().strip() == line
	assert not _mounted(str(tmp_path / "mnt-sync"))


def test_sync_all_stops_promptly_at_unmount(fresh_dovecot, cmount, tmp_path):
	dv = fresh_dovecot("slash", corpus_n=1000)
	conn = dv.imap()
	flags = all_flags(conn, list(dv.corpus_folders()))
	m = cmount(dv, str(tmp_path / "cache"), opts=["sync=all"])
	assert wait_cache_files(m, 5) >= 5
	proc = m.proc
	subprocess.run(["fusermount3", "-u", m.mnt], timeout=30, check=True)
	assert proc.wait(timeout=15) == 0  # the downloader is cancelled and joined
	m.stop()
	assert all_flags(conn, list(dv.corpus_folders())) == flags
	m2 = cmount(dv, str(tmp_path / "cache"))  # what was committed is a sound cache
	assert 5 <= m2.stats()["cache_files"]


def test_sync_none_writes_no_body(fresh_dovecot, cmount, tmp_path):
	dv = fresh_dovecot("slash", corpus_n=10)
	conn = dv.imap()
	m = cmount(dv, str(tmp_path / "cache"), opts=["sync=none"])
	inbox = os.path.join(m.mnt, "INBOX")
	uid, path = sorted(by_uid(inbox).items())[0]
	with open(path, "rb") as f:
		assert f.read() == tl.fetch_body(conn, "INBOX", uid)
	m.stop()  # (the committer would have finished by now)
	m2 = cmount(dv, str(tmp_path / "cache"))
	assert m2.stats()["cache_files"] == 0
	assert uids_in(os.path.join(m2.mnt, "INBOX"))  # the headers were cached


def bodies_dir_files(cache):
	"""Every file under cache/bodies but its lock: committed bodies and .tmp- files."""
	root = os.path.join(cache, "bodies")
	out = []
	for d, dirs, files in os.walk(root):
		out += [os.path.relpath(os.path.join(d, n), root) for n in files if n != "lock"]
	return sorted(out)


def test_partly_read_body_leaves_nothing_in_cache(fresh_dovecot, cmount, tmp_path):
	"""Bodies are fetched straight into a body-cache temp file: one read only at its start
	is never committed and its temp file is gone after the unmount; one read to the end
	is committed byte for byte, with no temp file left."""
	dv = fresh_dovecot("slash")
	conn = dv.imap()
	big = tl.append(conn, "INBOX", message("big", b"0123456789abcde\r\n" * 60000))
	small = tl.append(conn, "INBOX", message("small"))
	want_big = tl.fetch_body(conn, "INBOX", big)
	want_small = tl.fetch_body(conn, "INBOX", small)
	cache = str(tmp_path / "cache")
	m = cmount(dv, cache)
	files = by_uid(os.path.join(m.mnt, "INBOX"))
	with open(files[big], "rb") as f:
		assert f.read(1000) == want_big[:1000]
		# the prefix went into a writer's file in the cache directory, not elsewhere
		assert [os.path.basename(n)[:5] for n in bodies_dir_files(cache)] == [".tmp-"]
	with open(files[small], "rb") as f:
		assert f.read() == want_small
	m.stop()  # finishes the queued commits
	left = bodies_dir_files(cache)
	assert len(left) == 1 and not os.path.basename(left[0]).startswith(".tmp-"), left
	with open(os.path.join(cache, "bodies", left[0]), "rb") as f:
		assert f.read() == want_small

	m2 = cmount(dv, cache)
	with open(by_uid(os.path.join(m2.mnt, "INBOX"))[big], "rb") as f:
		assert f.read() == want_big
	m2.stop()
	left = bodies_dir_files(cache)
	assert len(left) == 2 and not [n for n in left if ".tmp-" in n], left
	got = set()
	for n in left:
		with open(os.path.join(cache, "bodies", n), "rb") as f:
			got.add(f.read())
	assert got == {want_big, want_small}


def test_sync_none_writes_nothing_under_bodies(fresh_dovecot, cmount, tmp_path):
	"""-o sync=none never writes a body file, not even a temp file, while bodies are read."""
	dv = fresh_dovecot("slash")
	conn = dv.imap()
	big = tl.append(conn, "INBOX", message("big", b"0123456789abcde\r\n" * 60000))
	cache = str(tmp_path / "cache")
	m = cmount(dv, cache, opts=["sync=none"])
	with open(by_uid(os.path.join(m.mnt, "INBOX"))[big], "rb") as f:
		assert f.read(1000) == tl.fetch_body(conn, "INBOX", big)[:1000]
		assert bodies_dir_files(cache) == []  # the fetch has ended: its file is elsewhere
		f.read()
	assert bodies_dir_files(cache) == []
	m.stop()
	assert bodies_dir_files(cache) == []
