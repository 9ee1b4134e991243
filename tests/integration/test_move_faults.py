# SPDX-License-Identifier: GPL-2.0-or-later
"""mv under faults (issue 11, "Never lose mail"): a real mount against a real Dovecot
through tests/fakeimap's FaultProxy, which hides capabilities (no MOVE; neither MOVE nor
UIDPLUS, and no COPYUID) or drops the connection right after the server carried out a
UID MOVE (its OK lost); and kill -9 of the daemon (IMAPFS_TEST_CRASH_AT) between every two
steps of the COPY fallback, then a remount whose journal recovery finishes the move. After
each: the message exists on the server exactly once, and another client's \\Deleted
message in the source folder is still there. The server is checked with imaplib.
"""

import errno
import os
import subprocess
import sys
import uuid

import pytest

import imapfs_testlib as tl
from test_mount import Mount, _mounted, mount  # noqa: F401 (fixture)

sys.path.insert(0, os.path.join(tl.source_dir(), "tests", "fakeimap"))

import fakeimap as fi  # noqa: E402


class _ProxiedDv:
	"""What Mount needs of a server, pointing at the proxy in front of @dv."""

	host = "127.0.0.1"

	def __init__(self, dv, proxy, ca):
		self.dv, self.proxy, self.ca = dv, proxy, ca
		self.users = dv.users

	def url(self, user="alice", tls="implicit", root=None):
		return "imaps://%s@127.0.0.1:%d" % (user, self.proxy.port)


@pytest.fixture
def server(tmp_path):
	dv = tl.Dovecot()
	try:
		dv.start("slash", corpus_n=10, seed=5)
		yield dv
	finally:
		dv.stop()


@pytest.fixture
def proxied(tmp_path, server):
	"""proxied(**FaultProxy kw) -> (_ProxiedDv, proxy), stopped at the end."""
	ca, crt, key = fi.make_certs(str(tmp_path / "certs"))
	made = []

	def make(**kw):
		p = fi.FaultProxy(server.port_imap, tls="implicit", certfile=crt, keyfile=key,
				  **kw).start()
		made.append(p)
		return _ProxiedDv(server, p, ca), p

	yield make
	for p in made:
		p.stop()


def put(dv, folder, subject, flags=()):
	mid = "<%s@imapfs.test>" % uuid.uuid4()
	data = ("From: a@example.org\r\nSubject: %s\r\nMessage-ID: %s\r\n"
		"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nbody\r\n" % (subject, mid)).encode()
	uid = tl.append(dv.imap(), folder, data, flags=flags)
	return uid, mid


def copies(dv, folder, mid):
	"""{uid: flags} of @folder's messages with Message-ID @mid (\\Deleted ones too)."""
	c = dv.imap()
	tl.select(c, folder)
	typ, data = c.uid("SEARCH", None, "HEADER", "Message-ID", '"%s"' % mid)
	assert typ == "OK"
	flags = tl.fetch_flags(c, folder)
	return {int(u): flags[int(u)] - {"\\Recent"} for u in data[0].split()}


def name_of(d, uid):
	for n in os.listdir(d):
		if n.endswith("_%d.eml" % uid):
			return n
	return None


def bystander(dv):
	"""Another client's \\Deleted message in INBOX: no move may expunge it."""
	uid, mid = put(dv, "INBOX", "someone else's deleted mail", flags=("\\Deleted",))
	return mid


def assert_bystander(dv, mid):
	got = copies(dv, "INBOX", mid)
	assert len(got) == 1 and "\\Deleted" in next(iter(got.values())), got


def no_bare_expunge(cmds):
	return not any(c.upper().startswith("EXPUNGE") for c in cmds)


def test_lost_ok_after_move_leaves_one_copy(proxied, server, mount):  # noqa: F811
	"""The connection drops right after the server carried out the UID MOVE: the store
	asks the server what happened and finishes; the message exists once, in Work."""
	keep = bystander(server)
	uid, mid = put(server, "INBOX", "moved, answer lost", flags=("\\Flagged",))
	pdv, proxy = proxied(drop_after=r"UID MOVE .*")
	m = mount(pdv)
	inbox, work = os.path.join(m.mnt, "INBOX"), os.path.join(m.mnt, "Work")
	os.listdir(work)
	subprocess.run(["mv", os.path.join(inbox, name_of(inbox, uid)), work + "/"], check=True)
	assert proxy.drops == 1
	assert copies(server, "INBOX", mid) == {}
	moved = copies(server, "Work", mid)
	assert list(moved.values()) == [{"\\Flagged"}]
	assert name_of(work, next(iter(moved))) is not None
	assert name_of(inbox, uid) is None
	assert_bystander(server, keep)
	assert no_bare_expunge(proxy.commands())


def test_without_move_copy_store_uid_expunge(proxied, server, mount):  # noqa: F811
	keep = bystander(server)
	uid, mid = put(server, "INBOX", "no MOVE here", flags=("$Label1",))
	pdv, proxy = proxied(hide_caps=("MOVE",))
	m = mount(pdv)
	inbox, work = os.path.join(m.mnt, "INBOX"), os.path.join(m.mnt, "Work")
	os.listdir(work)
	subprocess.run(["mv", os.path.join(inbox, name_of(inbox, uid)), work + "/"], check=True)
	cmds = proxy.commands()
	assert not any(c.upper().startswith("UID MOVE") for c in cmds), cmds
	assert any(c.upper().startswith("UID COPY %d " % uid) for c in cmds), cmds
	assert "UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid in cmds, cmds
	assert "UID EXPUNGE %d" % uid in cmds, cmds
	assert no_bare_expunge(cmds)
	assert copies(server, "INBOX", mid) == {}
	moved = copies(server, "Work", mid)
	assert list(moved.values()) == [{"$Label1"}]
	assert name_of(work, next(iter(moved))) is not None
	assert_bystander(server, keep)


def test_without_move_and_uidplus_the_source_stays_deleted(proxied, server, mount):  # noqa: F811
	keep = bystander(server)
	uid, mid = put(server, "INBOX", "neither MOVE nor UIDPLUS")
	pdv, proxy = proxied(hide_caps=("MOVE", "UIDPLUS"), strip_codes=("COPYUID", "APPENDUID"))
	m = mount(pdv)
	inbox, work = os.path.join(m.mnt, "INBOX"), os.path.join(m.mnt, "Work")
	os.listdir(work)
	subprocess.run(["mv", os.path.join(inbox, name_of(inbox, uid)), work + "/"], check=True)
	cmds = proxy.commands()
	assert not any(c.upper().startswith(("EXPUNGE", "UID EXPUNGE")) for c in cmds), cmds
	assert not any(c.upper().startswith("UID MOVE") for c in cmds), cmds
	# the source stays on the server, \Deleted; the mount no longer shows it
	assert list(copies(server, "INBOX", mid).values()) == [{"\\Deleted"}]
	assert name_of(inbox, uid) is None
	# the copy was found by its Message-ID (no COPYUID) and shows at once
	moved = copies(server, "Work", mid)
	assert len(moved) == 1
	assert name_of(work, next(iter(moved))) is not None
	assert_bystander(server, keep)


STEPS = ["move-journaled", "move-copied", "move-step1", "move-deleted", "move-step2",
	 "move-expunged"]


class _CrashMount(Mount):
	def __init__(self, *a, crash_at=None, **kw):
		super().__init__(*a, **kw)
		self.crash_at = crash_at

	def env(self):
		e = super().env()
		if self.crash_at:
			e["IMAPFS_TEST_CRASH_AT"] = self.crash_at
		return e


@pytest.mark.parametrize("step", STEPS)
def test_kill_between_steps_then_remount_finishes(proxied, server, tmp_path, step):
	"""kill -9 (abort) of the daemon between two steps of the COPY fallback; the next
	mount's journal recovery finishes the move: exactly one copy, in the target."""
	keep = bystander(server)
	uid, mid = put(server, "INBOX", "crash at " + step, flags=("\\Seen",))
	pdv, proxy = proxied(hide_caps=("MOVE",))
	mnt, log = tmp_path / "mnt", tmp_path / "imapfs.log"
	m = _CrashMount(pdv, mnt, log, crash_at=step).start()
	try:
		inbox, work = os.path.join(m.mnt, "INBOX"), os.path.join(m.mnt, "Work")
		os.listdir(work)
		r = subprocess.run(["mv", os.path.join(inbox, name_of(inbox, uid)), work + "/"],
				   stderr=subprocess.PIPE)
		assert r.returncode != 0
		tl.wait_for(lambda: m.proc.poll() is not None, what="the daemon aborted")
		assert "IMAPFS_TEST_CRASH_AT=%s" % step in m.log()
	finally:
		m.stop()
	assert not _mounted(str(mnt))
	m2 = _CrashMount(pdv, mnt, tmp_path / "imapfs2.log").start()
	try:
		assert "journal: settled a pending write" in m2.log(), m2.log()
		assert copies(server, "INBOX", mid) == {}
		moved = copies(server, "Work", mid)
		assert list(moved.values()) == [{"\\Seen"}], moved
		work = os.path.join(m2.mnt, "Work")
		assert name_of(work, next(iter(moved))) is not None
		assert name_of(os.path.join(m2.mnt, "INBOX"), uid) is None
		assert_bystander(server, keep)
		assert no_bare_expunge(proxy.commands())
	finally:
		m2.stop()
	assert "WARNING" not in m2.log() and "CRITICAL" not in m2.log(), m2.log()


def test_ln_lost_ok_is_not_repeated_blindly(proxied, server, mount):  # noqa: F811
	"""ln whose COPY answer is lost: the store checks the target, finds the copy, and does
	not copy again."""
	uid, mid = put(server, "INBOX", "copy, answer lost")
	pdv, proxy = proxied(drop_after=r"UID COPY .*")
	m = mount(pdv)
	inbox, junk = os.path.join(m.mnt, "INBOX"), os.path.join(m.mnt, "Junk")
	os.listdir(junk)
	subprocess.run(["ln", os.path.join(inbox, name_of(inbox, uid)), junk + "/"], check=True)
	assert proxy.drops == 1
	assert list(copies(server, "INBOX", mid)) == [uid]
	assert len(copies(server, "Junk", mid)) == 1
	with pytest.raises(OSError) as e:
		os.link(os.path.join(inbox, name_of(inbox, uid)), os.path.join(inbox, "x.eml"))
	assert e.value.errno == errno.EPERM


def put_many(dv, folder, n, tag):
	"""n messages with unique Message-IDs; returns [(uid, mid)]."""
	return [put(dv, folder, "%s %d" % (tag, i)) for i in range(n)]


def test_burst_of_moves_is_batched(proxied, server, mount):  # noqa: F811
	"""mv of many files: the first move alone, the rest joined into UID MOVEs of UID sets
	(write-behind), cloned into the target without a fetch. Each message ends exactly once
	in the target, flags kept, and both folders list the result at once."""
	keep = bystander(server)
	msgs = put_many(server, "INBOX", 40, "burst")
	c = server.imap()
	tl.select(c, "INBOX", readonly=False)
	c.uid("STORE", str(msgs[3][0]), "+FLAGS", "(\\Flagged)")
	pdv, proxy = proxied()
	m = mount(pdv)
	inbox, work = os.path.join(m.mnt, "INBOX"), os.path.join(m.mnt, "Work")
	os.listdir(work)
	names = [os.path.join(inbox, name_of(inbox, uid)) for uid, _ in msgs]
	before = len(proxy.commands())
	subprocess.run(["mv"] + names + [work + "/"], check=True)
	for i, (uid, mid) in enumerate(msgs):
		assert copies(server, "INBOX", mid) == {}
		moved = copies(server, "Work", mid)
		assert len(moved) == 1, (mid, moved)
		want = {"\\Flagged"} if i == 3 else set()
		assert next(iter(moved.values())) == want
	cmds = proxy.commands()[before:]
	moves = [c for c in cmds if c.upper().startswith("UID MOVE")]
	assert 1 < len(moves) <= 6, moves  # the first alone, the burst in a few UID sets
	# the copies came from the sources' records: no FETCH of headers for them
	assert not any("ENVELOPE" in c.upper() for c in cmds), "\n".join(cmds)
	assert all(name_of(inbox, uid) is None for uid, _ in msgs)
	listed = [n for n in os.listdir(work) if n.endswith(".eml")]
	for _, mid in msgs:
		(new_uid,) = copies(server, "Work", mid)
		assert name_of(work, new_uid) in listed
	assert_bystander(server, keep)
	assert no_bare_expunge(proxy.commands())


@pytest.mark.parametrize("step", ["move-batch-joined", "move-batch-run", "move-batch-moved"])
def test_kill_in_a_burst_of_moves_then_remount(proxied, server, tmp_path, step):
	"""kill -9 (abort) while a burst of moves is journaled but not (or not known to be)
	sent: the next mount settles every journaled move; each message exists exactly once."""
	keep = bystander(server)
	msgs = put_many(server, "INBOX", 12, "crash " + step)
	pdv, proxy = proxied()
	mnt, log = tmp_path / "mnt", tmp_path / "imapfs.log"
	m = _CrashMount(pdv, mnt, log, crash_at=step).start()
	try:
		inbox, work = os.path.join(m.mnt, "INBOX"), os.path.join(m.mnt, "Work")
		os.listdir(work)
		names = [os.path.join(inbox, name_of(inbox, uid)) for uid, _ in msgs]
		# (the flusher may abort after mv got every answer: then all were acknowledged)
		r = subprocess.run(["mv"] + names + [work + "/"], stderr=subprocess.PIPE)
		tl.wait_for(lambda: m.proc.poll() is not None, what="the daemon aborted")
		assert "IMAPFS_TEST_CRASH_AT=%s" % step in m.log()
	finally:
		m.stop()
	m2 = _CrashMount(pdv, mnt, tmp_path / "imapfs2.log").start()
	try:
		assert "journal: settled a pending write" in m2.log(), m2.log()
		moved = 0
		for uid, mid in msgs:
			here, there = copies(server, "INBOX", mid), copies(server, "Work", mid)
			assert len(here) + len(there) == 1, (mid, here, there)
			moved += len(there)
		# the first (synchronous) move and at least the one journaled; every one that mv
		# was told succeeded
		assert moved >= 2
		if r.returncode == 0:
			assert moved == len(msgs)
		assert_bystander(server, keep)
		assert no_bare_expunge(proxy.commands())
	finally:
		m2.stop()
