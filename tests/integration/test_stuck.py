# SPDX-License-Identifier: GPL-2.0-or-later
"""Never stuck (issue 9, items 5, 6 and 9): a real mount against tests/fakeimap scripted to
stall or dribble, real tools (ls, cat, mountpoint, fusermount3).

- Requests that need a listing or a body another request is already fetching share that
  fetch: one failure fails them all at once (no serial retries), each leaves on its own
  interrupt (kill) and within the timeout.
- A download whose every reader is gone is stopped (its connection closed).
- SIGTERM/SIGINT or an unmount while a request is stuck end the daemon and the mount at
  once, and the stuck tool gets an error.
"""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

import imapfs_testlib as tl
from test_mount import _FakeDv, _mounted, _private_cache_home, mount  # noqa: F401

sys.path.insert(0, os.path.join(tl.source_dir(), "tests", "fakeimap"))

import fakeimap as fi  # noqa: E402

TIMEOUT = 3	      # -o timeout= of the mounts here (seconds)
MARGIN = 2.0	      # scheduling slack on a loaded machine, on top of a promised bound
SHUTDOWN_BOUND = 2.0  # SIGTERM ends the daemon and the mount within this (issue 9)
CAPS = "IMAP4rev1 LITERAL+ SASL-IR UIDPLUS NAMESPACE AUTH=PLAIN"


def _envelope(uid, size):
	return ('* %d FETCH (UID %d FLAGS (\\Seen) RFC822.SIZE %d INTERNALDATE '
		'"01-Jan-2024 10:00:00 +0000" ENVELOPE ("Mon, 1 Jan 2024 10:00:00 +0000" '
		'"stuck %d" NIL NIL NIL NIL NIL NIL NIL "<s%d@x>"))\r\n' % (uid, uid, size, uid, uid))


def _body(size):
	head = b"Subject: stuck\r\n\r\n"
	return head + b"x" * (size - len(head))


def _server(tmp_path, examine="ok", body="ok", size=2000, dribble_chunk=1000,
	    dribble_delay=0.05, slow=None):
	"""One INBOX with one message of `size` bytes. examine/body: 'ok', 'stall' (no answer
	for a minute) or 'dribble' (the answer `dribble_chunk` bytes at a time, `dribble_delay`
	s apart, so no single wait reaches the timeout). slow: a second folder, Slow, whose
	EXAMINE behaves so (INBOX's is then fine)."""
	ca, crt, key = fi.make_certs(str(tmp_path / "certs"))
	data = _body(size)
	good = (b"* 1 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 2] n\r\n"
		b"{tag} OK [READ-ONLY] done\r\n")

	def fault(kind, reply):
		if kind == "stall":
			return [fi.stall(60)]
		if kind == "dribble":
			return [fi.send(reply, chunk=dribble_chunk, delay=dribble_delay)]
		return reply

	ex = fault(examine, good)
	whole = b"* 1 FETCH (UID 1 BODY[] {%d}\r\n" % len(data) + data + b")\r\n{tag} OK done\r\n"
	bd = fault(body, whole)
	folders = b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
	if slow:
		folders += b'* LIST (\\HasNoChildren) "/" Slow\r\n'
	rules = [
		(rb"\S+ CAPABILITY", ("* CAPABILITY %s\r\n{tag} OK\r\n" % CAPS).encode()),
		(rb"\S+ NAMESPACE", b'* NAMESPACE (("" "/")) NIL NIL\r\n{tag} OK\r\n'),
		(rb"\S+ LIST .*", folders + b"{tag} OK\r\n"),
		(rb'\S+ (EXAMINE|SELECT) "?Slow"?.*', fault(slow, good)),
		(rb"\S+ (EXAMINE|SELECT) .*", ex),
		(rb"\S+ UID FETCH \S+ \(.*BODY\.PEEK\[\]\)", bd),
		(rb"\S+ UID FETCH \S+ \(.*", (_envelope(1, size) + "{tag} OK done\r\n").encode()),
		(rb"\S+ (NOOP|CHECK|ENABLE .*|ID .*)", b"{tag} OK\r\n"),
	]
	script = fi.login_steps(CAPS) + [fi.serve(rules, timeout=120)]
	srv = fi.FakeImap(scripts=[script], tls="implicit", certfile=crt, keyfile=key).start()
	srv.whole_len = len(whole)
	return srv, _FakeDv(srv.port, ca)


def _count(srv, pattern):
	return sum(1 for c in list(srv.conns) for cmd in c.commands() if re.match(pattern, cmd))


def _wait_for(cond, timeout, what):
	tl.wait_for(cond, timeout, what, step=0.02)


def _spawn(*argv):
	return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
				stderr=subprocess.PIPE)


def _reap(procs, timeout):
	"""Waits for every process (up to timeout); returns {proc: seconds from now} of
	those that ended, killing (by PID) and reaping the rest."""
	t0 = time.monotonic()
	ended = {}
	while time.monotonic() - t0 < timeout and len(ended) < len(procs):
		for p in procs:
			if p not in ended and p.poll() is not None:
				ended[p] = time.monotonic() - t0
		time.sleep(0.02)
	for p in procs:
		if p not in ended:
			tl.kill_and_wait(p.pid, signal.SIGKILL, 30)
	for p in procs:
		p.communicate()
	return ended


def _blocked_in_fuse(pid):
	"""The process sleeps in a FUSE request (or has ended)."""
	try:
		with open("/proc/%d/wchan" % pid) as f:
			w = f.read()
	except FileNotFoundError:
		return True
	return "fuse" in w or "request_wait_answer" in w


# ---- item 5: waiting on another request's fetch -------------------------------------

def test_parallel_ls_on_stalled_server_fail_together(tmp_path, mount):
	"""5 parallel `ls` of a folder whose EXAMINE never comes back share one listing:
	one EXAMINE is sent, and all five fail within the timeout (they returned after 5, 10,
	16, 22 and 29 s when each waiter retried in turn)."""
	srv, dv = _server(tmp_path, examine="stall")
	try:
		m = mount(dv, opts=["timeout=%d" % TIMEOUT])
		inbox = os.path.join(m.mnt, "INBOX")
		procs = [_spawn("ls", inbox) for _ in range(5)]
		ended = _reap(procs, 4 * TIMEOUT + 10)
		assert len(ended) == 5, "some ls never returned"
		for p in procs:
			assert p.returncode != 0
		assert max(ended.values()) <= TIMEOUT + MARGIN, sorted(ended.values())
		assert _count(srv, r"EXAMINE") == 1, [c.commands() for c in srv.conns]
	finally:
		srv.stop()


@pytest.mark.parametrize("what", ["listing", "body"])
def test_killed_waiter_leaves_while_fetch_goes_on(tmp_path, mount, what):
	"""A second `ls` (or `cat`) waiting for the first one's listing (or body) is killed:
	it is gone at once (not in D state until the fetch ends), while the first goes on
	waiting, and the fetch is not sent again."""
	if what == "listing":
		srv, dv = _server(tmp_path, examine="stall")
		sent = r"EXAMINE"
	else:
		srv, dv = _server(tmp_path, body="stall")
		sent = r"UID FETCH .*BODY\.PEEK\[\]"
	try:
		m = mount(dv, opts=["timeout=%d" % (3 * TIMEOUT)])
		inbox = os.path.join(m.mnt, "INBOX")
		if what == "listing":
			argv = ["ls", inbox]
		else:
			argv = ["cat", os.path.join(inbox, os.listdir(inbox)[0])]
		first = _spawn(*argv)
		_wait_for(lambda: _count(srv, sent) == 1, 10, "the fetch")
		second = _spawn(*argv)
		_wait_for(lambda: _blocked_in_fuse(second.pid), 10, "the second tool to block")
		os.kill(second.pid, signal.SIGKILL)
		ended = _reap([second], 3 * TIMEOUT + 10)
		assert second in ended
		assert first.poll() is None, "the first tool should still be waiting"
		ended = _reap([first], 3 * TIMEOUT + 10)
		assert first.returncode != 0
		assert _count(srv, sent) == 1
	finally:
		srv.stop()


def test_parallel_cat_on_stalled_body_fail_together(tmp_path, mount):
	"""3 parallel `cat` of one message whose body never comes: one body FETCH, and all
	fail within the timeout."""
	srv, dv = _server(tmp_path, body="stall")
	try:
		m = mount(dv, opts=["timeout=%d" % TIMEOUT])
		inbox = os.path.join(m.mnt, "INBOX")
		(name,) = os.listdir(inbox)
		procs = [_spawn("cat", os.path.join(inbox, name)) for _ in range(3)]
		ended = _reap(procs, 4 * TIMEOUT + 10)
		assert len(ended) == 3
		assert all(p.returncode != 0 for p in procs)
		assert max(ended.values()) <= TIMEOUT + MARGIN, sorted(ended.values())
		assert _count(srv, r"UID FETCH .*BODY\.PEEK\[\]") == 1
	finally:
		srv.stop()


# ---- item 9: a download nobody waits for ---------------------------------------------

def test_killed_reader_stops_its_download(tmp_path, mount):
	"""`cat` of a message that comes slowly is killed with kill -9 while the body
	streams: the download stops (the client closes that connection) instead of running
	on to the end for nobody."""
	srv, dv = _server(tmp_path, body="dribble", size=200000, dribble_chunk=1000,
			  dribble_delay=0.05)
	try:
		m = mount(dv, opts=["timeout=%d" % TIMEOUT])
		inbox = os.path.join(m.mnt, "INBOX")
		(name,) = os.listdir(inbox)
		cat = _spawn("cat", os.path.join(inbox, name))

		def body_conn():
			for c in list(srv.conns):
				if any("BODY.PEEK[]" in x for x in c.commands()):
					return c
			return None

		_wait_for(lambda: body_conn() is not None and len(body_conn().sent) > 20000, 30,
			  "the body to start streaming")
		os.kill(cat.pid, signal.SIGKILL)
		_reap([cat], 30)
		c = body_conn()
		# the whole body takes 10 s to send; the client must hang up long before
		_wait_for(lambda: c.done.is_set(), 30, "the body connection to close")
		assert c.closed_by == "client"
		assert len(c.sent) < srv.whole_len, "the download ran to its end"
	finally:
		srv.stop()


# ---- item 6 and "Done when": stopping a daemon with a stuck request -------------------

def _stuck_ls(tmp_path, mount, examine="stall"):
	srv, dv = _server(tmp_path, examine=examine)
	m = mount(dv, opts=["timeout=%d" % (10 * TIMEOUT)])
	ls = _spawn("ls", os.path.join(m.mnt, "INBOX"))
	_wait_for(lambda: _count(srv, r"EXAMINE") == 1, 10, "the EXAMINE")
	_wait_for(lambda: _blocked_in_fuse(ls.pid), 10, "ls to block")
	return srv, m, ls


def _assert_gone(m, ls, bound):
	t0 = time.monotonic()
	ended = _reap([m.proc, ls], bound + MARGIN)
	assert m.proc in ended, "the daemon did not exit"
	assert ended[m.proc] <= bound + MARGIN, ended[m.proc]
	assert ls in ended and ls.returncode != 0, "the stuck ls got no error"
	_wait_for(lambda: not _mounted(m.mnt), bound + MARGIN - (time.monotonic() - t0),
		  "the mount to go")
	# mountpoint(1) must answer (not hang on an unserved mount)
	r = subprocess.run(["mountpoint", "-q", m.mnt], timeout=10)
	assert r.returncode != 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_with_stuck_request_ends_daemon_and_mount(tmp_path, mount, sig):
	srv, m, ls = _stuck_ls(tmp_path, mount)
	try:
		os.kill(m.proc.pid, sig)
		_assert_gone(m, ls, SHUTDOWN_BOUND)
	finally:
		srv.stop()


def test_unmount_with_stuck_request_ends_daemon(tmp_path, mount):
	"""fusermount3 -u while `ls` is stuck: the kernel refuses to unmount a busy mount
	(EBUSY) and the daemon keeps serving; a lazy unmount (-z) is accepted and must end the
	stuck request, the daemon and the mount at once (not when the request times out)."""
	srv, m, ls = _stuck_ls(tmp_path, mount)
	try:
		r = subprocess.run(["fusermount3", "-u", m.mnt], stdout=subprocess.PIPE,
				   stderr=subprocess.PIPE, timeout=10)
		assert r.returncode != 0 and b"busy" in r.stderr.lower(), r.stderr
		assert m.proc.poll() is None and _mounted(m.mnt)
		os.stat(m.mnt)  # still served
		r = subprocess.run(["fusermount3", "-u", "-z", m.mnt], timeout=10)
		assert r.returncode == 0
		_assert_gone(m, ls, SHUTDOWN_BOUND)
	finally:
		srv.stop()


# ---- "Done when": bounded syscalls under a stalling or dribbling server, then SIGTERM --

def _timed(argv, bound):
	"""Runs one tool; returns (returncode, seconds), killing it past bound + MARGIN."""
	t0 = time.monotonic()
	p = _spawn(*argv)
	ended = _reap([p], bound + MARGIN)
	return p.returncode, ended.get(p, time.monotonic() - t0)


@pytest.mark.parametrize("fault", ["stall", "dribble"])
def test_faulty_server_bounds_every_syscall_and_sigterm_ends_mount(tmp_path, mount, fault):
	"""Under a server that stalls (or dribbles a byte now and then, each within the
	timeout, before any body byte) on a listing and on a body, every tool on the mount
	returns (with an error) within the timeout plus a margin, alone or ten at once; then
	SIGTERM with a request stuck ends the daemon and the mount within 2 s. (A dribble
	inside a body literal is progress: bounded by the per-command total deadline.)"""
	srv, dv = _server(tmp_path, body=fault, slow=fault, size=100000, dribble_chunk=1,
			  dribble_delay=TIMEOUT * 0.6)
	try:
		m = mount(dv, opts=["timeout=%d" % TIMEOUT])
		inbox, slow = os.path.join(m.mnt, "INBOX"), os.path.join(m.mnt, "Slow")
		(name,) = os.listdir(inbox)
		msg = os.path.join(inbox, name)
		for argv in (["ls", slow], ["cat", msg]):
			rc, took = _timed(argv, TIMEOUT)
			assert rc != 0 and took <= TIMEOUT + MARGIN, (argv, rc, took)
		procs = [_spawn("ls", slow) for _ in range(5)] + [_spawn("cat", msg) for _ in range(5)]
		ended = _reap(procs, TIMEOUT + MARGIN)
		assert len(ended) == len(procs), "a tool was still blocked after the timeout"
		assert all(p.returncode != 0 for p in procs)
		assert max(ended.values()) <= TIMEOUT + MARGIN, sorted(ended.values())

		cat = _spawn("cat", msg)
		_wait_for(lambda: _blocked_in_fuse(cat.pid), 10, "cat to block")
		os.kill(m.proc.pid, signal.SIGTERM)
		_assert_gone(m, cat, SHUTDOWN_BOUND)
	finally:
		srv.stop()


def test_lazy_unmount_without_stuck_request_keeps_open_files(tmp_path, mount, monkeypatch):
	"""The watch for lazy unmounts cancels stuck requests only: a file opened before
	`fusermount3 -u -z` is still read in full after the daemon saw the mount go, and
	closing it ends the daemon."""
	monkeypatch.setenv("G_MESSAGES_DEBUG", "imapfs")  # to see the watch react
	srv, dv = _server(tmp_path, size=50000)
	try:
		m = mount(dv, opts=["timeout=%d" % TIMEOUT])
		inbox = os.path.join(m.mnt, "INBOX")
		(name,) = os.listdir(inbox)
		with open(os.path.join(inbox, name), "rb") as f:
			r = subprocess.run(["fusermount3", "-u", "-z", m.mnt], timeout=10)
			assert r.returncode == 0
			_wait_for(lambda: "the mount was detached" in m.log(), 10,
				  "the daemon to see the mount go")
			assert m.proc.poll() is None
			assert f.read() == _body(50000)
		ended = _reap([m.proc], 10)
		assert m.proc in ended
	finally:
		srv.stop()
