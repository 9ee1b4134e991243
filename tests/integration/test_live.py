# SPDX-License-Identifier: GPL-2.0-or-later
"""Live (issue 13): the mount follows the server without remounting and without its
freshness timers. Every mount here sets dir_max_age, flags_max_age and folders_max_age to
an hour, so only a push (NOTIFY, IDLE) or the watcher's polling can explain a change that
shows. Another client (imaplib through imapfs_testlib, also the checker of the server's
state) appends, expunges, sets flags, creates, renames and deletes folders; the test waits
for the change through the mount with a generous cap, never a fixed sleep.

Against a real Dovecot (NOTIFY, IDLE, LIST-STATUS) and against tests/fakeimap for what
Dovecot cannot be made to do: IDLE without NOTIFY, neither (polling), a push connection
dropped, a huge VANISHED range.
"""

import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

import imapfs_testlib as tl
from test_mount import _FakeDv, mount  # noqa: F401 (fixture)

sys.path.insert(0, os.path.join(tl.source_dir(), "tests", "fakeimap"))

import fakeimap as fi  # noqa: E402

LONG = ["dir_max_age=3600", "flags_max_age=3600", "folders_max_age=3600"]
CAP = 20  # seconds: generous; a push arrives within about a second


def by_uid(d):
	out = {}
	for n in os.listdir(d):
		m = re.search(r"_(\d+)\.eml$", n)
		if m:
			out[int(m.group(1))] = n
	return out


def flags_of(path):
	return os.getxattr(path, "user.imap.flags").decode().split()


def msg(subject, body="x"):
	return ("From: a@example.org\r\nSubject: %s\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
		"\r\n%s\r\n" % (subject, body)).encode()


def store_flags(conn, folder, uid, op, flags):
	tl.select(conn, folder, readonly=False)
	tl.check(conn.uid("STORE", str(uid), op, "(%s)" % flags))


def expunge(conn, folder, uid):
	store_flags(conn, folder, uid, "+FLAGS.SILENT", "\\Deleted")
	tl.check(conn.uid("EXPUNGE", str(uid)))


def live_mount(mount, dv, *extra):  # noqa: F811
	m = mount(dv, opts=LONG + list(extra))
	return m


# ---- against Dovecot (NOTIFY) --------------------------------------------------------

@pytest.mark.parametrize("live", ["auto", "idle", "poll"])
def test_messages_and_flags_follow_the_server(fresh_dovecot, mount, live):  # noqa: F811
	"""New mail, flag changes and expunges by another client show in INBOX (selected by
	IDLE) and in a folder that is not in use, with every timer at an hour: by NOTIFY
	(auto), IDLE on INBOX plus polling for the other folder (idle), polling (poll)."""
	dv = fresh_dovecot("slash", corpus_n=0)
	conn = dv.imap()
	tl.check(conn.create(tl.mbox("Other")))
	a = tl.append(conn, "INBOX", msg("first"))
	b = tl.append(conn, "Other", msg("other first"))
	opts = ["live=" + live]
	if live != "auto":
		opts.append("poll=1")
	m = live_mount(mount, dv, *opts)
	mode = {"auto": "NOTIFY for every folder", "idle": "IDLE on up to",
		"poll": "polling every"}[live]
	tl.wait_for(lambda: mode in m.log(), CAP, "live mode in the log: " + mode)
	inbox, other = os.path.join(m.mnt, "INBOX"), os.path.join(m.mnt, "Other")
	assert sorted(by_uid(inbox)) == [a]
	assert sorted(by_uid(other)) == [b]

	for folder, path, first in (("INBOX", inbox, a), ("Other", other, b)):
		new = tl.append(conn, folder, msg("new in " + folder))
		assert new in tl.fetch_flags(conn, folder)  # the server's state
		tl.wait_for(lambda: new in by_uid(path), CAP, "new mail in " + folder)
		name = by_uid(path)[new]
		with open(os.path.join(path, name), "rb") as f:
			assert f.read() == tl.fetch_body(conn, folder, new)

		store_flags(conn, folder, first, "+FLAGS", "\\Flagged")
		assert "\\Flagged" in tl.fetch_flags(conn, folder)[first]
		fp = os.path.join(path, by_uid(path)[first])
		tl.wait_for(lambda: "\\Flagged" in flags_of(fp), CAP, "\\Flagged in " + folder)

		expunge(conn, folder, first)
		assert first not in tl.fetch_flags(conn, folder)
		tl.wait_for(lambda: first not in by_uid(path), CAP, "expunge in " + folder)
		tl.wait_for(lambda: not os.path.exists(fp), CAP, "the kernel's entry of the expunged")
		assert sorted(by_uid(path)) == sorted(tl.fetch_flags(conn, folder))


@pytest.mark.parametrize("live", ["auto", "poll"])
def test_folders_created_renamed_and_deleted_follow(fresh_dovecot, mount, live):  # noqa: F811
	dv = fresh_dovecot("slash", corpus_n=0)
	conn = dv.imap()
	tl.check(conn.create(tl.mbox("Old")))
	opts = ["live=" + live] + (["poll=1"] if live == "poll" else [])
	m = live_mount(mount, dv, *opts)
	assert "Old" in os.listdir(m.mnt)
	tl.check(conn.create(tl.mbox("New")))
	assert "New" in [f.name for f in tl.list_all_folders(dv.imap())]
	tl.wait_for(lambda: "New" in os.listdir(m.mnt), CAP, "New appears")
	assert os.path.isdir(os.path.join(m.mnt, "New"))
	tl.check(conn.rename(tl.mbox("New"), tl.mbox("Renamed")))
	tl.wait_for(lambda: "Renamed" in os.listdir(m.mnt) and "New" not in os.listdir(m.mnt),
		    CAP, "New renamed to Renamed")
	tl.check(conn.delete(tl.mbox("Old")))
	names = [f.name for f in tl.list_all_folders(dv.imap())]
	assert "Old" not in names and "Renamed" in names
	tl.wait_for(lambda: "Old" not in os.listdir(m.mnt), CAP, "Old disappears")
	# the kernel's cached entry goes a moment later (invalidations run on their own thread)
	tl.wait_for(lambda: not os.path.exists(os.path.join(m.mnt, "Old")), CAP, "Old's entry")


def test_dot_layout_and_other_namespaces(fresh_dovecot, mount):  # noqa: F811
	"""The '.' layout (INBOX. prefix, shared namespaces watched as NOTIFY subtrees): new
	mail in a subfolder shows."""
	dv = fresh_dovecot("dot", corpus_n=0)
	conn = dv.imap()
	tl.check(conn.create(tl.mbox("INBOX.Sub")))
	m = live_mount(mount, dv)
	tl.wait_for(lambda: "NOTIFY for every folder" in m.log(), CAP, "NOTIFY")
	sub = os.path.join(m.mnt, "Sub")
	assert by_uid(sub) == {}
	new = tl.append(conn, "INBOX.Sub", msg("in sub"))
	tl.wait_for(lambda: new in by_uid(sub), CAP, "new mail in Sub")
	assert "trying again without" not in m.log()


def test_expunge_is_a_deletion_inotifywait_sees(fresh_dovecot, mount):  # noqa: F811
	"""inotifywait on the folder and on a file: the expunge by another client reaches
	them without anyone listing the folder again. For FUSE's notify_delete the kernel tells
	the file's watchers IN_DELETE_SELF; the directory's watchers got nothing on the 6.18
	kernel this was written on (an IN_DELETE naming the file is accepted, should a
	kernel send one; an event about any other name is not)."""
	if shutil.which("inotifywait") is None:
		pytest.skip("inotifywait not installed (inotify-tools; scripts/deps)")
	dv = fresh_dovecot("slash", corpus_n=0)
	conn = dv.imap()
	uids = [tl.append(conn, "INBOX", msg("m%d" % i)) for i in range(3)]
	m = live_mount(mount, dv)
	tl.wait_for(lambda: "NOTIFY for every folder" in m.log(), CAP, "NOTIFY")
	inbox = os.path.join(m.mnt, "INBOX")
	names = by_uid(inbox)
	victim = uids[1]
	vpath = os.path.join(inbox, names[victim])
	out = os.path.join(m.mnt + "-inotify.txt")
	w = subprocess.Popen(["inotifywait", "-m", "-o", out, "--format", "%w|%e|%f",
			      "-e", "delete", "-e", "delete_self", inbox, vpath],
			     stderr=subprocess.PIPE)
	try:
		assert b"Watches established" in w.stderr.readline() + w.stderr.readline()
		expunge(conn, "INBOX", victim)
		assert victim not in tl.fetch_flags(conn, "INBOX")

		def seen():
			try:
				with open(out) as f:
					return [ln.strip().split("|") for ln in f if ln.strip()]
			except FileNotFoundError:
				return []
		tl.wait_for(lambda: any("DELETE_SELF" in e for _, e, _ in seen()), CAP,
			    "IN_DELETE_SELF on the expunged file")
		events = seen()
	finally:
		w.terminate()
		w.wait(10)
	assert [vpath, "DELETE_SELF", ""] in events, events
	dir_events = [e for e in events if e[0].rstrip("/") == inbox]
	for p, e, name in dir_events:
		assert e == "DELETE" and name == names[victim], events
	assert not os.path.exists(vpath)
	assert sorted(by_uid(inbox)) == [uids[0], uids[2]]


def test_no_cache_and_live_off(fresh_dovecot, mount):  # noqa: F811
	"""-o live=off: nothing follows the server until a timer says so (here: never); the
	option is checked."""
	dv = fresh_dovecot("slash", corpus_n=0)
	conn = dv.imap()
	a = tl.append(conn, "INBOX", msg("a"))
	m = live_mount(mount, dv, "live=off", "no_cache")
	inbox = os.path.join(m.mnt, "INBOX")
	assert sorted(by_uid(inbox)) == [a]
	b = tl.append(conn, "INBOX", msg("b"))
	assert b in tl.fetch_flags(conn, "INBOX")
	# the daemon says what it does; nothing else can bring b
	tl.wait_for(lambda: "live: off" in m.log(), CAP, "live off in the log")
	assert sorted(by_uid(inbox)) == [a]
	for bad in ("live=sometimes", "idle_max=17", "poll=-1"):
		r = subprocess.run([tl.imapfs_bin(), "-o", bad, "imaps://a@127.0.0.1", m.mnt + "x"],
				   capture_output=True, timeout=30)
		assert r.returncode != 0
		lines = r.stderr.decode().strip().splitlines()
		assert len(lines) == 1 and bad.split("=")[0] in lines[0], lines


# ---- against tests/fakeimap: what Dovecot cannot be made to do ------------------------

from test_hostile import Box, message, rules as hostile_rules  # noqa: E402

BASE_CAPS = "IMAP4rev1 LITERAL+ SASL-IR UIDPLUS NAMESPACE AUTH=PLAIN"


class LiveBox(Box):
	"""The hostile tests' INBOX plus flags, a UIDNEXT that only grows, and the push
	commands: IDLE/DONE, NOTIFY SET, STATUS, and a NOOP that tells a connection the new
	message count (what a server does for a mailbox selected there)."""

	def __init__(self, msgs):
		super().__init__(msgs)
		self.flags = {}
		self.uidnext = max(self.msgs or [0]) + 1

	def add(self, subject):
		with self.lock:
			uid = self.uidnext
			self.uidnext += 1
			self.msgs[uid] = message(subject, b"body of " + subject.encode())
			return uid

	def examine(self, conn, m):
		with self.lock:
			conn.exists = len(self.msgs)
			return ("* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY %d] v\r\n"
				"* OK [UIDNEXT %d] n\r\n{tag} OK [READ-ONLY] done\r\n" % (
					len(self.msgs), self.uidvalidity, self.uidnext)).encode()

	def headers(self, conn, m):
		out = super().headers(conn, m).decode()
		with self.lock:
			for uid, fl in self.flags.items():
				out = out.replace("(UID %d FLAGS ()" % uid, "(UID %d FLAGS (%s)" % (uid, " ".join(fl)))
		return out.encode()

	def status(self, conn, m):
		name = m.group(1).decode().strip('"')
		with self.lock:
			n, nxt = (len(self.msgs), self.uidnext) if name == "INBOX" else (0, 1)
		return ("* STATUS %s (MESSAGES %d UIDNEXT %d UIDVALIDITY %d)\r\n{tag} OK\r\n" % (
			name, n, nxt, self.uidvalidity)).encode()

	def status_line(self):
		with self.lock:
			return "* STATUS INBOX (MESSAGES %d UIDNEXT %d)\r\n" % (len(self.msgs), self.uidnext)

	def noop(self, conn, m):
		with self.lock:
			n = len(self.msgs)
			out = ""
			if getattr(conn, "exists", None) is not None and conn.exists != n:
				out = "* %d EXISTS\r\n" % n
				conn.exists = n
		return (out + "{tag} OK\r\n").encode()

	@staticmethod
	def idle(conn, m):
		conn.idling = True
		return b"+ idling\r\n"

	@staticmethod
	def done(conn, m):
		conn.idling = False
		return b"{tag} OK idle done\r\n"

	@staticmethod
	def notify(conn, m):
		conn.notify = True
		return b"{tag} OK NOTIFY done\r\n"


class FakeServer:
	def __init__(self, tmp_path, caps, msgs=None):
		self.box = LiveBox(msgs or {1: message("one", b"body one\r\n")})
		ca, crt, key = fi.make_certs(str(tmp_path / "certs"))
		box = self.box
		rules = [
			(rb"\S+ CAPABILITY", ("* CAPABILITY %s\r\n{tag} OK\r\n" % caps).encode()),
			(rb"\S+ IDLE", box.idle),
			(rb"DONE", box.done),
			(rb"\S+ NOTIFY SET .*", box.notify),
			(rb"\S+ STATUS (\S+) .*", box.status),
			(rb"\S+ NOOP", box.noop),
			(rb"\S+ (EXAMINE|SELECT) .*", box.examine),
			(rb"\S+ UID FETCH (\S+) \((UID FLAGS)\)", box.headers),
		] + hostile_rules(box)
		script = fi.login_steps(caps) + [fi.serve(rules, timeout=300)]
		self.srv = fi.FakeImap(scripts=[script], tls="implicit", certfile=crt, keyfile=key,
				       end_timeout=5).start()
		self.dv = _FakeDv(self.srv.port, ca)

	def conns(self, attr):
		return [c for c in self.srv.conns if not c.done.is_set() and getattr(c, attr, False)]

	def stop(self):
		self.srv.stop()


@pytest.fixture
def fake(tmp_path):
	made = []

	def make(caps, **kw):
		s = FakeServer(tmp_path, caps, **kw)
		made.append(s)
		return s

	yield make
	for s in made:
		s.stop()


def push_change(s, kind, seq_line):
	"""Tells the watcher's connection: NOTIFY as STATUS, IDLE as the selected mailbox's
	own response (@seq_line)."""
	if kind == "notify":
		assert s.srv.push(s.box.status_line(), lambda c: getattr(c, "notify", False)) == 1
	else:
		assert s.srv.push(seq_line, lambda c: getattr(c, "idling", False)) >= 1


@pytest.mark.parametrize("kind", ["notify", "idle"])
def test_push_from_a_server_with_or_without_notify(fake, mount, kind):  # noqa: F811
	"""IDLE without NOTIFY (and NOTIFY itself, scripted): new mail, flags and an expunge
	pushed by the server show in the mount, polling off and every timer at an hour."""
	s = fake(BASE_CAPS + " IDLE" + (" NOTIFY" if kind == "notify" else ""))
	m = mount(s.dv, opts=LONG + ["poll=0"])
	inbox = os.path.join(m.mnt, "INBOX")
	assert sorted(by_uid(inbox)) == [1]
	tl.wait_for(lambda: s.conns("notify" if kind == "notify" else "idling"), CAP,
		    "the watcher's connection")
	if kind == "idle":
		assert "live: IDLE on up to 2 folders in use" in m.log()
		assert not any("NOTIFY" in c for conn in s.srv.conns for c in conn.commands())

	two = s.box.add("two")
	push_change(s, kind, "* 2 EXISTS\r\n")
	tl.wait_for(lambda: two in by_uid(inbox), CAP, "new mail")

	f1 = os.path.join(inbox, by_uid(inbox)[1])
	with s.box.lock:
		s.box.flags[1] = ["\\Flagged"]
	push_change(s, kind, "* 1 FETCH (FLAGS (\\Flagged))\r\n")
	tl.wait_for(lambda: "\\Flagged" in flags_of(f1), CAP, "the flag")

	with s.box.lock:
		del s.box.msgs[1]
	push_change(s, kind, "* 1 EXPUNGE\r\n")
	tl.wait_for(lambda: 1 not in by_uid(inbox), CAP, "the expunge")
	assert sorted(by_uid(inbox)) == [two]
	assert s.srv.errors == []


def test_polling_without_idle(fake, mount):  # noqa: F811
	"""No NOTIFY, no IDLE: a round every -o poll seconds finds the new mail (NOOP where
	INBOX is selected, STATUS elsewhere) and only then resyncs."""
	s = fake(BASE_CAPS)
	m = mount(s.dv, opts=LONG + ["poll=1"])
	inbox = os.path.join(m.mnt, "INBOX")
	assert sorted(by_uid(inbox)) == [1]
	tl.wait_for(lambda: "live: polling every 1 s" in m.log(), CAP, "polling")
	two = s.box.add("two")
	tl.wait_for(lambda: two in by_uid(inbox), CAP, "new mail by polling")
	cmds = [c for conn in s.srv.conns for c in conn.commands()]
	assert not any(c.startswith(("IDLE", "NOTIFY")) for c in cmds), cmds
	assert any(c.startswith("NOOP") for c in cmds), cmds


@pytest.mark.parametrize("kind", ["notify", "idle"])
def test_dropped_push_connection_reconnects_and_resyncs(fake, mount, kind):  # noqa: F811
	"""The push connection is dropped; mail that arrives meanwhile (nobody tells) shows
	once it is back: the watcher resyncs what it may have missed."""
	s = fake(BASE_CAPS + " IDLE" + (" NOTIFY" if kind == "notify" else ""))
	m = mount(s.dv, opts=LONG + ["poll=0"])
	inbox = os.path.join(m.mnt, "INBOX")
	assert sorted(by_uid(inbox)) == [1]
	attr = "notify" if kind == "notify" else "idling"
	tl.wait_for(lambda: s.conns(attr), CAP, "the watcher's connection")
	first = s.conns(attr)[0]
	two = s.box.add("two")
	assert s.srv.drop(lambda c: c is first) == 1
	tl.wait_for(lambda: [c for c in s.conns(attr) if c is not first], CAP, "a new push connection")
	tl.wait_for(lambda: two in by_uid(inbox), CAP, "mail that came while it was down")
	assert s.srv.errors == []


@pytest.mark.parametrize("kind", ["notify", "idle"])
def test_huge_vanished_range_does_not_wedge_the_daemon(fake, mount, kind):  # noqa: F811
	"""A hostile 'VANISHED 1:4294967294' on every connection (push and pool) is taken as
	a range: the daemon answers a listing within seconds, and the next push still works."""
	s = fake(BASE_CAPS + " IDLE" + (" NOTIFY" if kind == "notify" else ""))
	m = mount(s.dv, opts=LONG + ["poll=0"])
	inbox = os.path.join(m.mnt, "INBOX")
	assert sorted(by_uid(inbox)) == [1]
	tl.wait_for(lambda: s.conns("notify" if kind == "notify" else "idling"), CAP,
		    "the watcher's connection")
	assert s.srv.push("* VANISHED 1:4294967294\r\n* VANISHED (EARLIER) 1:4294967294\r\n") >= 2
	t0 = time.monotonic()
	names = by_uid(inbox)
	for n in names.values():
		os.stat(os.path.join(inbox, n))
	assert time.monotonic() - t0 < 5
	assert sorted(names) == [1]  # the server still has it
	two = s.box.add("two")
	push_change(s, kind, "* 2 EXISTS\r\n")
	tl.wait_for(lambda: two in by_uid(inbox), CAP, "new mail after the hostile range")
	assert time.monotonic() - t0 < CAP
