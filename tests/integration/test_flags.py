# SPDX-License-Identifier: GPL-2.0-or-later
"""Flags through xattrs (issue 11) against a real Dovecot, a real mount and the real
setfattr/getfattr/find: user.imap.flags replaces, adds (+X) and removes (-X) with one UID
STORE each and no FETCH before it, user.xdg.tags maps tags (spaces, non-ASCII) onto
keywords and back exactly, removexattr clears, invalid flags are EINVAL with nothing sent,
a folder whose PERMANENTFLAGS refuse a keyword gives EPERM with nothing sent (tests/fakeimap),
and a listing that was in flight during a STORE does not revert it. Every change is checked
on the server with the independent imaplib checker (imapfs_testlib), never only through the
mount; the commands sent are read from the protocol trace or the fake server's transcript.
"""

import errno
import os
import re
import subprocess
import sys
import threading

import pytest

import imapfs_testlib as tl
from test_mount import _FakeDv, emls, mount  # noqa: F401 (fixture)

FLAGS = "user.imap.flags"
# no listing refresh between two steps of a test, whatever its speed: a command in the
# trace is then one that setfattr caused, and getfattr shows what the store holds
QUIET = ["dir_max_age=3600", "flags_max_age=3600"]
TAGS = "user.xdg.tags"


def setfattr(path, name, value):
	subprocess.run(["setfattr", "-n", name, "-v", value, path], check=True, timeout=60)


def setfattr_fails(path, name, value):
	"""The errno name setfattr reports (it prints strerror), e.g. 'Invalid argument'."""
	r = subprocess.run(["setfattr", "-n", name, "-v", value, path], stderr=subprocess.PIPE,
			   timeout=60)
	assert r.returncode != 0
	return r.stderr.decode()


def getfattr(path, name):
	"""The value as getfattr prints it (--only-values: the raw bytes)."""
	r = subprocess.run(["getfattr", "--absolute-names", "--only-values", "-n", name, path], stdout=subprocess.PIPE,
			   check=True, timeout=60)
	return r.stdout.decode()


class Trace:
	"""The client commands of a -o trace_file, read from a mark onwards."""

	def __init__(self, path):
		self.path, self.mark = path, 0

	def _lines(self):
		with open(self.path, "rb") as f:
			data = f.read()
		return data, [ln.decode(errors="replace") for ln in data.splitlines() if b" C: " in ln]

	def since(self):
		"""The commands sent since the last call (tags stripped), and move the mark."""
		data, _ = self._lines()
		new = data[self.mark:]
		self.mark = len(data)
		out = []
		for ln in new.decode(errors="replace").splitlines():
			m = re.search(r" C: \S+ (.*)$", ln)
			if m:  # the trace writes a backslash (and any odd byte) as \xNN
				out.append(re.sub(r"\\x([0-9a-fA-F]{2})",
						  lambda x: chr(int(x.group(1), 16)), m.group(1)))
		return out


def stores(cmds):
	return [c for c in cmds if c.startswith("UID STORE")]


def fetches(cmds):
	return [c for c in cmds if "FETCH" in c]


def one_message(dv, flags=()):
	conn = dv.imap()
	uid = tl.append(conn, "INBOX", b"Subject: flags\r\nFrom: a@b\r\n\r\nbody\r\n", flags=flags)
	return conn, uid


def inbox_file(m):
	inbox = os.path.join(m.mnt, "INBOX")
	(name,) = emls(inbox)
	return os.path.join(inbox, name)


@pytest.mark.parametrize("layout", ["slash", "dot"])
def test_replace_add_remove_mixed(fresh_dovecot, mount, tmp_path, layout):
	"""Each setfattr is one UID STORE (two for a +/- mix) and no FETCH; the server has the
	flags asked for; getfattr right after shows them."""
	dv = fresh_dovecot(layout)
	conn, uid = one_message(dv, flags=("\\Draft",))
	trace = Trace(str(tmp_path / "trace"))
	m = mount(dv, opts=["trace_file=" + trace.path] + QUIET)
	p = inbox_file(m)
	assert getfattr(p, FLAGS) == "\\Draft"
	steps = [
		("\\Seen \\Flagged $Label1", {"\\Seen", "\\Flagged", "$Label1"},
		 ["FLAGS.SILENT (\\Seen \\Flagged $Label1)"]),
		("+\\Answered +$Label2", {"\\Seen", "\\Flagged", "$Label1", "\\Answered", "$Label2"},
		 ["+FLAGS.SILENT (\\Answered $Label2)"]),
		("-\\Seen", {"\\Flagged", "$Label1", "\\Answered", "$Label2"},
		 ["-FLAGS.SILENT (\\Seen)"]),
		("+$Label3 -$Label1\t-\\Answered", {"\\Flagged", "$Label2", "$Label3"},
		 ["+FLAGS.SILENT ($Label3)", "-FLAGS.SILENT ($Label1 \\Answered)"]),
		("\\seen", {"\\Seen"}, ["FLAGS.SILENT (\\Seen)"]),
	]
	trace.since()
	for value, want, sent in steps:
		setfattr(p, FLAGS, value)
		cmds = trace.since()
		assert [s.split(" ", 3)[3] for s in stores(cmds)] == sent, cmds
		assert all(s.startswith("UID STORE %d " % uid) for s in stores(cmds)), cmds
		assert fetches(cmds) == [], cmds
		assert tl.fetch_flags(conn, "INBOX")[uid] - {"\\Recent"} == want
		assert set(getfattr(p, FLAGS).split()) == want
	assert getfattr(p, TAGS) == ""


def test_find_exec_setfattr_over_several_files(fresh_dovecot, mount, tmp_path):
	"""find -exec setfattr -v '+\\Seen' {} +: one STORE per file, the other flags kept."""
	dv = fresh_dovecot("slash")
	conn = dv.imap()
	before = {}
	for i in range(5):
		fl = ("\\Flagged",) if i % 2 else ("$Label%d" % i,)
		uid = tl.append(conn, "INBOX", b"Subject: m%d\r\n\r\nbody %d\r\n" % (i, i), flags=fl)
		before[uid] = set(fl)
	trace = Trace(str(tmp_path / "trace"))
	m = mount(dv, opts=["trace_file=" + trace.path] + QUIET)
	inbox = os.path.join(m.mnt, "INBOX")
	assert len(emls(inbox)) == 5
	trace.since()
	subprocess.run(["find", inbox, "-name", "*.eml", "-exec", "setfattr", "-n", FLAGS, "-v",
			"+\\Seen", "{}", "+"], check=True, timeout=120)
	cmds = trace.since()
	sent = stores(cmds)
	assert len(sent) == 5, cmds
	assert sorted(int(s.split()[2]) for s in sent) == sorted(before)
	assert all(s.endswith("+FLAGS.SILENT (\\Seen)") for s in sent), sent
	assert fetches(cmds) == [], cmds
	after = tl.fetch_flags(conn, "INBOX")
	assert {u: f - {"\\Recent"} for u, f in after.items()} == \
		{u: f | {"\\Seen"} for u, f in before.items()}


@pytest.mark.parametrize("layout", ["slash", "dot"])
def test_xdg_tags_round_trip(fresh_dovecot, mount, layout):
	"""Tags with spaces and non-ASCII come back exactly, also on a second mount that
	reads them from the server; the keywords on the server are the documented encoding;
	system flags stay."""
	dv = fresh_dovecot(layout)
	conn, uid = one_message(dv, flags=("\\Seen", "$Old"))
	m = mount(dv, opts=QUIET)
	p = inbox_file(m)
	assert getfattr(p, TAGS) == "$Old"
	tags = "work,my tag,Müller & Söhne,\\Seen"
	setfattr(p, TAGS, tags)
	assert getfattr(p, TAGS) == tags
	want = {"\\Seen", "work", "$Tag:my=20tag", "$Tag:M=C3=BCller=20=26=20S=C3=B6hne",
		"$Tag:=5CSeen"}
	assert tl.fetch_flags(conn, "INBOX")[uid] - {"\\Recent"} == want
	assert set(getfattr(p, FLAGS).split()) == want
	# what another mount (no shared cache) makes of the server's keywords
	m2 = mount(dv)
	assert sorted(getfattr(inbox_file(m2), TAGS).split(",")) == sorted(tags.split(","))
	# replacing keeps the system flags and the tags still wanted
	setfattr(p, TAGS, " my tag , new ")
	assert getfattr(p, TAGS) in ("my tag,new", "new,my tag")
	assert tl.fetch_flags(conn, "INBOX")[uid] - {"\\Recent"} == \
		{"\\Seen", "$Tag:my=20tag", "new"}
	# removexattr: every keyword goes, the system flags stay
	os.removexattr(p, TAGS)
	assert tl.fetch_flags(conn, "INBOX")[uid] - {"\\Recent"} == {"\\Seen"}
	assert getfattr(p, TAGS) == ""
	assert getfattr(p, FLAGS) == "\\Seen"


def test_removexattr_flags_clears_all(fresh_dovecot, mount, tmp_path):
	dv = fresh_dovecot("slash")
	conn, uid = one_message(dv, flags=("\\Seen", "\\Flagged", "$X"))
	trace = Trace(str(tmp_path / "trace"))
	m = mount(dv, opts=["trace_file=" + trace.path] + QUIET)
	p = inbox_file(m)
	trace.since()
	os.removexattr(p, FLAGS)
	cmds = trace.since()
	assert [s.split(" ", 3)[3] for s in stores(cmds)] == ["FLAGS.SILENT ()"], cmds
	assert tl.fetch_flags(conn, "INBOX")[uid] - {"\\Recent"} == set()
	assert getfattr(p, FLAGS) == ""


def test_invalid_flags_are_einval_and_send_nothing(fresh_dovecot, mount, tmp_path):
	dv = fresh_dovecot("slash")
	conn, uid = one_message(dv, flags=("\\Flagged",))
	trace = Trace(str(tmp_path / "trace"))
	m = mount(dv, opts=["trace_file=" + trace.path] + QUIET)
	p = inbox_file(m)
	trace.since()
	for bad in ("\\Recent", "\\Bogus", "+\\Recent", "a(b", "\\Seen +\\Flagged", "+x -x",
		    "Müller", "\\Seen \\*"):
		with pytest.raises(OSError) as e:
			os.setxattr(p, FLAGS, bad.encode())
		assert e.value.errno == errno.EINVAL, bad
	assert "Invalid argument" in setfattr_fails(p, FLAGS, "\\Recent")
	with pytest.raises(OSError) as e:
		os.setxattr(p, TAGS, b"a,\xff\xfe")
	assert e.value.errno == errno.EINVAL
	assert stores(trace.since()) == []
	assert tl.fetch_flags(conn, "INBOX")[uid] - {"\\Recent"} == {"\\Flagged"}


def test_errnos_of_other_names(fresh_dovecot, mount):
	"""Read-only names EPERM, unknown user.* names ENOTSUP (remove: ENODATA), XATTR_CREATE
	EEXIST, folders hold no flags (ENOTSUP); none of it reaches the server."""
	dv = fresh_dovecot("slash")
	conn, uid = one_message(dv, flags=("\\Flagged",))
	m = mount(dv)
	p = inbox_file(m)
	inbox = os.path.dirname(p)
	cases = [
		(lambda: os.setxattr(p, "user.imap.uid", b"7"), errno.EPERM),
		(lambda: os.setxattr(p, "user.mail.subject", b"x"), errno.EPERM),
		(lambda: os.removexattr(p, "user.imap.internaldate"), errno.EPERM),
		(lambda: os.setxattr(p, "user.foo", b"x"), errno.ENOTSUP),
		(lambda: os.removexattr(p, "user.foo"), errno.ENODATA),
		(lambda: os.setxattr(p, FLAGS, b"\\Seen", os.XATTR_CREATE), errno.EEXIST),
		(lambda: os.setxattr(inbox, FLAGS, b"\\Seen"), errno.ENOTSUP),
		(lambda: os.setxattr(inbox, TAGS, b"work"), errno.ENOTSUP),
		(lambda: os.setxattr(inbox, "user.imap.mailbox", b"x"), errno.EPERM),
		(lambda: os.setxattr(m.mnt, "user.imapfs.stats", b"x"), errno.EPERM),
	]
	for fn, want in cases:
		with pytest.raises(OSError) as e:
			fn()
		assert e.value.errno == want
	assert tl.fetch_flags(conn, "INBOX")[uid] - {"\\Recent"} == {"\\Flagged"}
	# XATTR_REPLACE: the name always exists on a message
	os.setxattr(p, FLAGS, b"\\Seen", os.XATTR_REPLACE)
	assert tl.fetch_flags(conn, "INBOX")[uid] - {"\\Recent"} == {"\\Seen"}


# ---- a scripted server (tests/fakeimap) ------------------------------------------------

def _fake(tmp_path, permanent, stall_flag_fetch=0):
	"""One message (UID 1) in INBOX. SELECT answers PERMANENTFLAGS @permanent, EXAMINE an
	empty list (as Dovecot does). A flags-only FETCH is answered from the flags the
	message had when it arrived; the first one waits @stall_flag_fetch seconds first (a
	slow server). UID STORE changes the flags."""
	sys.path.insert(0, os.path.join(tl.source_dir(), "tests", "fakeimap"))
	import fakeimap as fi
	ca, crt, key = fi.make_certs(str(tmp_path / "certs"))
	state = {"flags": "", "flag_fetches": 0}
	lock = threading.Lock()

	def full_fetch(conn, m):
		with lock:
			fl = state["flags"]
		return ('* 1 FETCH (UID 1 FLAGS (%s) RFC822.SIZE 20 INTERNALDATE '
			'"01-Jan-2024 10:00:00 +0000" ENVELOPE ("Mon, 1 Jan 2024 10:00:00 +0000" '
			'"fake" NIL NIL NIL NIL NIL NIL NIL "<f@x>"))\r\n{tag} OK done\r\n' % fl).encode()

	def flag_fetch(conn, m):
		with lock:
			fl = state["flags"]
			state["flag_fetches"] += 1
			first = state["flag_fetches"] == 1
		reply = ("* 1 FETCH (UID 1 FLAGS (%s))\r\n{tag} OK done\r\n" % fl).encode()
		if first and stall_flag_fetch:
			return [fi.stall(stall_flag_fetch), fi.send(reply)]
		return reply

	def store(conn, m):
		mode, fl = m.group(1).decode(), m.group(2).decode().split()
		with lock:
			cur = state["flags"].split()
			if mode == "+":
				cur += [f for f in fl if f not in cur]
			elif mode == "-":
				cur = [f for f in cur if f not in fl]
			else:
				cur = fl
			state["flags"] = " ".join(cur)
		return b"{tag} OK stored\r\n"

	head = b"* 1 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 2] n\r\n"
	rules = [
		(rb"\S+ CAPABILITY", b"* CAPABILITY IMAP4rev1 NAMESPACE UIDPLUS\r\n{tag} OK\r\n"),
		(rb"\S+ NAMESPACE", b'* NAMESPACE (("" "/")) NIL NIL\r\n{tag} OK\r\n'),
		(rb"\S+ LIST .*", b'* LIST (\\HasNoChildren) "/" INBOX\r\n{tag} OK\r\n'),
		(rb"\S+ EXAMINE .*", head + b"* OK [PERMANENTFLAGS ()] none\r\n"
		 b"{tag} OK [READ-ONLY] done\r\n"),
		(rb"\S+ SELECT .*", head + b"* OK [PERMANENTFLAGS (" + permanent.encode() +
		 b")] some\r\n{tag} OK [READ-WRITE] done\r\n"),
		(rb"\S+ UID STORE 1 ([+-]?)FLAGS\.SILENT \((.*)\)", store),
		(rb"\S+ UID FETCH \S+ \(UID FLAGS\)", flag_fetch),
		(rb"\S+ UID FETCH \S+ \(.*", full_fetch),
		(rb"\S+ (NOOP|CHECK|ENABLE .*|ID .*)", b"{tag} OK\r\n"),
	]
	caps = "IMAP4rev1 LITERAL+ SASL-IR UIDPLUS NAMESPACE AUTH=PLAIN"
	script = fi.login_steps(caps) + [fi.serve(rules, timeout=120)]
	srv = fi.FakeImap(scripts=[script], tls="implicit", certfile=crt, keyfile=key).start()
	return srv, ca, state


def all_commands(srv):
	return [c for i in range(len(srv.conns)) for c in srv.commands(i)]


def test_permanentflags_refusal_is_eperm_and_sends_nothing(tmp_path, mount):
	"""A folder whose read-write SELECT lists PERMANENTFLAGS without \\*: a keyword not in
	the list is EPERM, logged, and no STORE is sent; a listed flag is stored."""
	srv, ca, state = _fake(tmp_path, "\\Seen \\Flagged \\Deleted $Known")
	try:
		m = mount(_FakeDv(srv.port, ca))
		p = inbox_file(m)
		with pytest.raises(OSError) as e:
			os.setxattr(p, FLAGS, b"+$Label1")
		assert e.value.errno == errno.EPERM
		with pytest.raises(OSError) as e:
			os.setxattr(p, TAGS, b"unlisted")
		assert e.value.errno == errno.EPERM
		cmds = all_commands(srv)
		assert any(c.startswith("SELECT") for c in cmds), cmds
		assert not any("STORE" in c for c in cmds), cmds
		assert state["flags"] == ""
		assert "does not keep the flag $Label1" in m.log()
		setfattr(p, FLAGS, "+\\Seen +$known")
		assert [c for c in all_commands(srv) if "STORE" in c] == \
			["UID STORE 1 +FLAGS.SILENT (\\Seen $known)"]
		assert state["flags"] == "\\Seen $known"
		assert set(getfattr(p, FLAGS).split()) == {"\\Seen", "$known"}
	finally:
		srv.stop()


def test_listing_in_flight_does_not_revert_a_store(tmp_path, mount):
	"""A resync whose flag FETCH the server answers late, with the flags from before a
	STORE that completed meanwhile, must not bring the old flags back."""
	srv, ca, state = _fake(tmp_path, "\\*", stall_flag_fetch=3)
	try:
		m = mount(_FakeDv(srv.port, ca), opts=["dir_max_age=0", "flags_max_age=3600"])
		p = inbox_file(m)
		inbox = os.path.dirname(p)
		n_before = len([c for c in all_commands(srv) if c.endswith("(UID FLAGS)")])
		ls = threading.Thread(target=lambda: os.listdir(inbox))
		ls.start()
		# the resync's flag FETCH has reached the server (and waits there)
		tl.wait_for(lambda: len([c for c in all_commands(srv)
					 if c.endswith("(UID FLAGS)")]) > n_before,
			    what="the resync's flag FETCH")
		setfattr(p, FLAGS, "+\\Flagged")
		assert ls.is_alive(), "the listing ended before the STORE: nothing was tested"
		assert state["flags"] == "\\Flagged"  # the server's state
		ls.join(60)
		assert not ls.is_alive()
		assert getfattr(p, FLAGS) == "\\Flagged"
	finally:
		srv.stop()
