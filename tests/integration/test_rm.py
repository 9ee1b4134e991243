# SPDX-License-Identifier: GPL-2.0-or-later
"""rm of messages (issue 11) against a real Dovecot in both layouts, a real mount and real
tools (rm, rm -f, find -delete): \\Deleted is stored and confirmed before unlink returns,
the name is gone at once, and the expunge follows the policy (-o expunge=close|immediate|
never) with UID EXPUNGE of our own UIDs only: another client's \\Deleted mail is never
expunged. rm of 1,000 files is a handful of commands. Crash safety: the daemon killed
between the steps (IMAPFS_TEST_CRASH_AT), remounted, finishes the job. Every assertion on
the server's state goes through imaplib (imapfs_testlib), never only through the mount.
"""

import errno
import os
import re
import subprocess
import sys
import time

import pytest

import imapfs_testlib as tl
from test_mount import Mount, emls, mount  # noqa: F401 (fixture)

UID_RE = re.compile(r"_(\d+)\.eml$")
DELAY = "0.3"  # -o expunge_delay= for the tests (seconds); they wait on the server


def uid_of(name):
	return int(UID_RE.search(name).group(1))


def by_uid(d):
	return {uid_of(n): n for n in emls(d)}


def folder_of(dv, name):
	"""The server name of personal folder @name in @dv's layout."""
	if name == "INBOX":
		return name
	return dv.personal_prefix + name


def fill(dv, folder, n, tag="m"):
	"""@n small messages APPENDed to @folder (created if needed); their UIDs."""
	conn = dv.imap()
	if folder != "INBOX":
		conn.create(tl.mbox(folder))
	uids = [tl.append(conn, folder, b"Subject: %s %d\r\nMessage-ID: <%s%d@x>\r\n\r\nbody %d\r\n"
			  % (tag.encode(), i, tag.encode(), i, i)) for i in range(n)]
	conn.logout()
	return uids


def server_uids(dv, folder):
	return tl.fetch_flags(dv.imap(), folder)


def mark_deleted_by_other(dv, folder, uid):
	conn = dv.imap()
	tl.select(conn, folder, readonly=False)
	tl.check(conn.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)"))
	conn.logout()


def rm(*paths, flags=(), check=True):
	return subprocess.run(["rm"] + list(flags) + ["--"] + list(paths), stdout=subprocess.PIPE,
			      stderr=subprocess.PIPE, timeout=120, check=check)


def wait_expunged(dv, folder, uids, what="expunged"):
	uids = set(uids)
	return tl.wait_for(lambda: not (uids & set(server_uids(dv, folder))), timeout=30,
			   what="%s: %s" % (what, sorted(uids)))


@pytest.mark.parametrize("layout", ["slash", "dot"])
def test_rm_stores_deleted_then_expunges_on_close(fresh_dovecot, mount, layout):  # noqa: F811
	"""rm returns once \\Deleted is on the server; the name is gone at once; the UID
	EXPUNGE follows when the folder is closed; another client's \\Deleted message stays."""
	dv = fresh_dovecot(layout)
	folder = folder_of(dv, "Work")
	uids = fill(dv, folder, 4)
	mark_deleted_by_other(dv, folder, uids[0])
	m = mount(dv, opts=["expunge_delay=2"])
	d = os.path.join(m.mnt, "Work")
	names = by_uid(d)
	assert sorted(names) == uids
	victim = uids[2]
	rm(os.path.join(d, names[victim]))
	# the server already has it (\Deleted) and the name is gone
	flags = server_uids(dv, folder)
	assert victim not in flags or "\\Deleted" in flags[victim]
	assert victim not in by_uid(d)
	assert not os.path.exists(os.path.join(d, names[victim]))
	wait_expunged(dv, folder, [victim])
	left = server_uids(dv, folder)
	assert sorted(left) == [uids[0], uids[1], uids[3]]
	assert "\\Deleted" in left[uids[0]]  # the other client's: never expunged
	assert sorted(by_uid(d)) == [uids[0], uids[1], uids[3]]


def test_expunge_waits_until_the_folder_is_closed(fresh_dovecot, mount):  # noqa: F811
	dv = fresh_dovecot("slash")
	uids = fill(dv, "INBOX", 3)
	m = mount(dv, opts=["expunge_delay=" + DELAY])
	d = os.path.join(m.mnt, "INBOX")
	names = by_uid(d)
	with open(os.path.join(d, names[uids[0]]), "rb") as held:
		rm(os.path.join(d, names[uids[1]]))
		# several times the delay with a file open in the folder: nothing expunged
		deadline = time.monotonic() + 10 * float(DELAY)
		while time.monotonic() < deadline:
			assert "\\Deleted" in server_uids(dv, "INBOX")[uids[1]]
			time.sleep(0.1)
		assert held.read(4)
	wait_expunged(dv, "INBOX", [uids[1]])
	assert sorted(server_uids(dv, "INBOX")) == [uids[0], uids[2]]


@pytest.mark.parametrize("layout", ["slash", "dot"])
def test_expunge_immediate(fresh_dovecot, mount, layout):  # noqa: F811
	dv = fresh_dovecot(layout)
	uids = fill(dv, "INBOX", 3)
	m = mount(dv, opts=["expunge=immediate", "expunge_delay=3600"])
	d = os.path.join(m.mnt, "INBOX")
	names = by_uid(d)
	rm(os.path.join(d, names[uids[1]]))
	assert sorted(server_uids(dv, "INBOX")) == [uids[0], uids[2]]  # no wait
	assert sorted(by_uid(d)) == [uids[0], uids[2]]


def test_expunge_never_hides_for_this_mount_only(fresh_dovecot, mount):  # noqa: F811
	"""-o expunge=never: only \\Deleted; the message is hidden for the rest of the mount,
	stays \\Deleted on the server, and shows again (with \\Deleted) after a remount."""
	dv = fresh_dovecot("slash")
	uids = fill(dv, "INBOX", 2)
	m = mount(dv, opts=["expunge=never", "expunge_delay=0"])
	d = os.path.join(m.mnt, "INBOX")
	names = by_uid(d)
	rm(os.path.join(d, names[uids[0]]))
	assert sorted(by_uid(d)) == [uids[1]]
	m.stop()
	flags = server_uids(dv, "INBOX")
	assert sorted(flags) == uids and "\\Deleted" in flags[uids[0]]
	m2 = mount(dv, opts=["expunge=never"])
	d2 = os.path.join(m2.mnt, "INBOX")
	assert sorted(by_uid(d2)) == uids
	got = os.getxattr(os.path.join(d2, names[uids[0]]), "user.imap.flags").decode()
	assert "\\Deleted" in got.split()


def test_unmount_expunges_what_is_pending(fresh_dovecot, mount):  # noqa: F811
	dv = fresh_dovecot("slash")
	uids = fill(dv, "INBOX", 3)
	m = mount(dv, opts=["expunge_delay=3600"])
	d = os.path.join(m.mnt, "INBOX")
	names = by_uid(d)
	rm(os.path.join(d, names[uids[0]]), os.path.join(d, names[uids[2]]))
	assert "\\Deleted" in server_uids(dv, "INBOX")[uids[0]]
	t0 = time.monotonic()
	m.stop()
	assert time.monotonic() - t0 < 10
	assert sorted(server_uids(dv, "INBOX")) == [uids[1]]


@pytest.mark.parametrize("layout", ["slash", "dot"])
def test_rm_f_and_find_delete(fresh_dovecot, mount, layout):  # noqa: F811
	dv = fresh_dovecot(layout)
	folder = folder_of(dv, "Old")
	uids = fill(dv, folder, 6)
	mark_deleted_by_other(dv, "INBOX", fill(dv, "INBOX", 1, tag="keep")[0])
	m = mount(dv, opts=["expunge_delay=" + DELAY])
	d = os.path.join(m.mnt, "Old")
	names = by_uid(d)
	r = rm(os.path.join(d, "no-such-message.eml"), os.path.join(d, names[uids[0]]),
	       flags=["-f"])
	assert r.returncode == 0 and r.stderr == b""
	wait_expunged(dv, folder, [uids[0]])
	r = subprocess.run(["find", d, "-name", "*.eml", "-delete"], stderr=subprocess.PIPE,
			   timeout=120)
	assert r.returncode == 0 and r.stderr == b"", r.stderr
	assert emls(d) == []
	wait_expunged(dv, folder, uids)
	assert server_uids(dv, folder) == {}
	inbox = server_uids(dv, "INBOX")
	assert len(inbox) == 1 and "\\Deleted" in list(inbox.values())[0]
	# rmdir is issue 12: refused, nothing sent
	r = subprocess.run(["rmdir", d], stderr=subprocess.PIPE, timeout=30)
	assert r.returncode != 0 and b"Operation not permitted" in r.stderr
	assert folder in {f.name for f in tl.list_all_folders(dv.imap())}


def test_rm_of_a_message_expunged_elsewhere_is_enoent(fresh_dovecot, mount):  # noqa: F811
	dv = fresh_dovecot("slash")
	uids = fill(dv, "INBOX", 2)
	m = mount(dv, opts=["expunge_delay=" + DELAY, "dir_max_age=3600"])
	d = os.path.join(m.mnt, "INBOX")
	names = by_uid(d)
	conn = dv.imap()
	tl.select(conn, "INBOX", readonly=False)
	tl.check(conn.uid("STORE", str(uids[0]), "+FLAGS.SILENT", "(\\Deleted)"))
	tl.check(conn.uid("EXPUNGE", str(uids[0])))
	assert sorted(server_uids(dv, "INBOX")) == [uids[1]]
	with pytest.raises(FileNotFoundError):
		os.unlink(os.path.join(d, names[uids[0]]))
	assert uids[0] not in by_uid(d)
	assert sorted(server_uids(dv, "INBOX")) == [uids[1]]


def test_rm_in_a_read_only_folder_is_eacces(fresh_dovecot, mount):  # noqa: F811
	"""bob shares INBOX.Shared read-only with alice: Dovecot ignores the STORE silently;
	rm says EACCES and the file stays."""
	dv = fresh_dovecot("dot")
	bob = dv.imap(user="bob")
	uid = tl.append(bob, "INBOX.Shared", b"Subject: shared\r\n\r\nx\r\n")
	m = mount(dv)
	d = os.path.join(m.mnt, "user", "bob", "Shared")
	names = by_uid(d)
	assert list(names) == [uid]
	with pytest.raises(PermissionError) as e:
		os.unlink(os.path.join(d, names[uid]))
	assert e.value.errno == errno.EACCES
	assert list(by_uid(d)) == [uid]
	flags = tl.fetch_flags(dv.imap(user="bob"), "INBOX.Shared")
	assert list(flags) == [uid] and "\\Deleted" not in flags[uid]


def test_rm_offline_is_erofs(fresh_dovecot, mount, tmp_path):  # noqa: F811
	dv = fresh_dovecot("slash")
	uids = fill(dv, "INBOX", 2)
	cache = "cache_dir=%s" % (tmp_path / "cache")
	m = mount(dv, opts=[cache])
	assert sorted(by_uid(os.path.join(m.mnt, "INBOX"))) == uids
	m.stop()
	m2 = mount(dv, opts=["offline", cache])
	d = os.path.join(m2.mnt, "INBOX")
	names = by_uid(d)
	with pytest.raises(OSError) as e:
		os.unlink(os.path.join(d, names[uids[0]]))
	assert e.value.errno == errno.EROFS
	assert sorted(by_uid(d)) == uids
	assert sorted(server_uids(dv, "INBOX")) == uids
	assert all("\\Deleted" not in f for f in server_uids(dv, "INBOX").values())


@pytest.mark.parametrize("layout", ["slash", "dot"])
def test_rm_of_1000_messages_is_a_handful_of_commands(fresh_dovecot, mount, layout):  # noqa: F811
	dv = fresh_dovecot(layout)
	folder = folder_of(dv, "Bulk")
	uids = fill(dv, folder, 1000)
	keep = fill(dv, "INBOX", 1, tag="keep")[0]
	mark_deleted_by_other(dv, "INBOX", keep)
	m = mount(dv, opts=["expunge_delay=" + DELAY])
	d = os.path.join(m.mnt, "Bulk")
	assert len(emls(d)) == 1000
	before = m.stats()["commands"]
	r = subprocess.run("rm -- '%s'/*.eml" % d, shell=True, stderr=subprocess.PIPE, timeout=300)
	assert r.returncode == 0, r.stderr
	assert emls(d) == []
	wait_expunged(dv, folder, uids)
	sent = m.stats()["commands"] - before
	print("rm of 1000: %d IMAP commands" % sent)
	assert sent < 20, "%d IMAP commands for rm of 1000 messages" % sent
	assert server_uids(dv, folder) == {}
	assert list(server_uids(dv, "INBOX")) == [keep]  # the other client's \Deleted one


# ---- crash safety: kill -9 between the steps, remount -----------------------------------

def crash_mount(dv, tmp_path, where, opts=()):
	"""A mount whose daemon aborts at crash point @where (IMAPFS_TEST_CRASH_AT)."""
	m = Mount(dv, tmp_path / "crash-mnt", tmp_path / "crash.log", opts=list(opts))
	env = m.env()
	env["IMAPFS_TEST_CRASH_AT"] = where
	m.env = lambda: env
	return m.start()


@pytest.mark.parametrize("where,opts", [
	("delete-stored", ["expunge_delay=0"]),          # STORE done, its reply not journaled
	("expunge-before", ["expunge_delay=0"]),         # step 1 journaled, no EXPUNGE sent
	("expunge-before", ["expunge=immediate"]),
	("expunge-done", ["expunge_delay=0"]),           # expunged, the entry not removed
])
def test_crash_then_remount_finishes_the_rm(fresh_dovecot, mount, tmp_path, where, opts):  # noqa: F811
	dv = fresh_dovecot("slash")
	uids = fill(dv, "INBOX", 3)
	mark_deleted_by_other(dv, "INBOX", uids[0])
	cache = "cache_dir=%s" % (tmp_path / "cache")
	m = crash_mount(dv, tmp_path, where, list(opts) + [cache])
	try:
		d = os.path.join(m.mnt, "INBOX")
		names = by_uid(d)
		subprocess.run(["rm", "--", os.path.join(d, names[uids[1]])],
			       stderr=subprocess.DEVNULL, timeout=60)
		tl.wait_for(lambda: m.proc.poll() is not None, what="the daemon aborted")
		assert "IMAPFS_TEST_CRASH_AT=%s" % where in m.log()
	finally:
		m.stop()
	mount(dv, opts=["expunge_delay=0", cache])  # the same cache: its journal
	wait_expunged(dv, "INBOX", [uids[1]])
	left = server_uids(dv, "INBOX")
	assert sorted(left) == [uids[0], uids[2]]
	assert "\\Deleted" in left[uids[0]]  # another client's \Deleted mail is still there


def test_crash_in_a_burst_then_remount(fresh_dovecot, mount, tmp_path):  # noqa: F811
	"""Killed after a batch's STORE, before the journal saw it: the next mount stores and
	expunges exactly the batch's UIDs."""
	dv = fresh_dovecot("slash")
	uids = fill(dv, "INBOX", 30)
	keep = uids[-1]
	mark_deleted_by_other(dv, "INBOX", keep)
	cache = "cache_dir=%s" % (tmp_path / "cache")
	m = crash_mount(dv, tmp_path, "delete-batch-stored", ["expunge_delay=3600", cache])
	try:
		d = os.path.join(m.mnt, "INBOX")
		names = by_uid(d)
		victims = uids[:20]
		subprocess.run(["rm", "--"] + [os.path.join(d, names[u]) for u in victims],
			       stderr=subprocess.DEVNULL, timeout=60)
		tl.wait_for(lambda: m.proc.poll() is not None, what="the daemon aborted")
	finally:
		m.stop()
	mount(dv, opts=["expunge_delay=0", cache])
	wait_expunged(dv, "INBOX", victims)
	assert sorted(server_uids(dv, "INBOX")) == uids[20:]


def test_killed_before_the_expunge_stays_hidden_offline(fresh_dovecot, mount, tmp_path):  # noqa: F811
	"""kill -9 after the STORE with the expunge still waiting; an offline remount (nothing
	can be expunged) still hides the message: the journal keeps it hidden until expunged."""
	dv = fresh_dovecot("slash")
	uids = fill(dv, "INBOX", 3)
	cache = str(tmp_path / "cache")
	m = mount(dv, opts=["expunge_delay=3600", "cache_dir=" + cache])
	d = os.path.join(m.mnt, "INBOX")
	names = by_uid(d)
	rm(os.path.join(d, names[uids[1]]))
	assert "\\Deleted" in server_uids(dv, "INBOX")[uids[1]]
	tl.kill_and_wait(m.proc.pid, 9)
	m.stop()
	m2 = mount(dv, opts=["offline", "cache_dir=" + cache])
	assert sorted(by_uid(os.path.join(m2.mnt, "INBOX"))) == [uids[0], uids[2]]
	m2.stop()
	m3 = mount(dv, opts=["cache_dir=" + cache, "expunge_delay=0"])
	wait_expunged(dv, "INBOX", [uids[1]])
	assert sorted(by_uid(os.path.join(m3.mnt, "INBOX"))) == [uids[0], uids[2]]


# ---- a server without UIDPLUS (tests/fakeimap) ---------------------------------------

def test_no_uidplus_never_expunges(tmp_path, mount):  # noqa: F811
	"""Without UIDPLUS no EXPUNGE of any kind is sent (a bare EXPUNGE would take other
	clients' \\Deleted mail): the message stays \\Deleted on the server, hidden here; not
	even the unmount expunges it."""
	sys.path.insert(0, os.path.join(tl.source_dir(), "tests", "fakeimap"))
	import fakeimap as fi
	from test_mount import _FakeDv
	ca, crt, key = fi.make_certs(str(tmp_path / "certs"))
	flags = {1: set(), 2: set(), 3: {"\\Deleted"}}  # 3: another client's \Deleted mail

	def fetch_reply(conn, m):
		out = b""
		for uid in sorted(flags):
			out += (b'* %d FETCH (UID %d FLAGS (%s) RFC822.SIZE 20 INTERNALDATE '
				b'"01-Jan-2024 10:00:0%d +0000" ENVELOPE ("Mon, 1 Jan 2024 10:00:00 +0000" '
				b'"m%d" NIL NIL NIL NIL NIL NIL NIL "<m%d@x>"))\r\n'
				% (uid, uid, " ".join(sorted(flags[uid])).encode(), uid, uid, uid))
		return out + b"{tag} OK done\r\n"

	def store_reply(conn, m):
		uid = int(m.group(1))
		changed = "\\Deleted" not in flags[uid]
		flags[uid].add("\\Deleted")
		echo = b""
		if changed and not m.group(2):
			echo = b"* %d FETCH (UID %d FLAGS (%s))\r\n" % (uid, uid, " ".join(
				sorted(flags[uid])).encode())
		return echo + b"{tag} OK stored\r\n"

	select = (b"* 3 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 4] n\r\n"
		  b"* FLAGS (\\Deleted \\Seen)\r\n* OK [PERMANENTFLAGS (\\Deleted \\Seen)] p\r\n")
	rules = [
		(rb"\S+ CAPABILITY", b"* CAPABILITY IMAP4rev1 NAMESPACE\r\n{tag} OK\r\n"),
		(rb"\S+ NAMESPACE", b'* NAMESPACE (("" "/")) NIL NIL\r\n{tag} OK\r\n'),
		(rb"\S+ LIST .*", b'* LIST (\\HasNoChildren) "/" INBOX\r\n{tag} OK\r\n'),
		(rb"\S+ EXAMINE .*", select + b"{tag} OK [READ-ONLY] done\r\n"),
		(rb"\S+ SELECT .*", select + b"{tag} OK [READ-WRITE] done\r\n"),
		(rb"\S+ UID STORE (\d+) \+FLAGS(\.SILENT)? \(\\Deleted\)", store_reply),
		(rb"\S+ UID FETCH \S+ \(.*", fetch_reply),
		(rb"\S+ (NOOP|CHECK|ENABLE .*|ID .*|UNSELECT|CLOSE)", b"{tag} OK\r\n"),
	]
	caps = "IMAP4rev1 LITERAL+ SASL-IR NAMESPACE AUTH=PLAIN"
	srv = fi.FakeImap(scripts=[fi.login_steps(caps) + [fi.serve(rules, timeout=120)]],
			  tls="implicit", certfile=crt, keyfile=key).start()
	try:
		m = mount(_FakeDv(srv.port, ca), opts=["expunge_delay=0"])
		d = os.path.join(m.mnt, "INBOX")
		names = by_uid(d)
		assert sorted(names) == [1, 2, 3]
		rm(os.path.join(d, names[2]))
		assert sorted(by_uid(d)) == [1, 3]
		assert "\\Deleted" in flags[2]
		m.stop()
		sent = [c for i in range(len(srv.conns)) for c in srv.commands(i)]
		assert any(re.fullmatch(r"UID STORE 2 \+FLAGS(\.SILENT)? \(\\Deleted\)", c)
			   for c in sent), sent
		assert not [c for c in sent if c.upper().startswith(("EXPUNGE", "UID EXPUNGE"))], sent
		assert flags == {1: set(), 2: {"\\Deleted"}, 3: {"\\Deleted"}}
		assert "no UIDPLUS" in m.log()
	finally:
		srv.stop()


def test_ro_mount_refuses_rm(fresh_dovecot, mount):  # noqa: F811
	dv = fresh_dovecot("slash")
	uids = fill(dv, "INBOX", 1)
	m = mount(dv, opts=["ro"])
	d = os.path.join(m.mnt, "INBOX")
	with pytest.raises(OSError) as e:
		os.unlink(os.path.join(d, by_uid(d)[uids[0]]))
	assert e.value.errno == errno.EROFS
	assert list(server_uids(dv, "INBOX")) == uids
	assert "\\Deleted" not in server_uids(dv, "INBOX")[uids[0]]


def test_connection_lost_after_uid_expunge_loses_nothing(tmp_path, mount):  # noqa: F811
	"""The connection drops right after the server carried out our UID EXPUNGE (its OK
	lost): the expunge is settled (done, or done again: it only names our UIDs), the file
	stays gone, another client's \\Deleted message is still there, no bare EXPUNGE."""
	sys.path.insert(0, os.path.join(tl.source_dir(), "tests", "fakeimap"))
	import fakeimap as fi
	from test_move_faults import _ProxiedDv

	dv = tl.Dovecot()
	try:
		dv.start("slash", corpus_n=0)
		uids = fill(dv, "INBOX", 3, tag="drop")
		mark_deleted_by_other(dv, "INBOX", uids[0])
		ca, crt, key = fi.make_certs(str(tmp_path / "certs"))
		proxy = fi.FaultProxy(dv.port_imap, tls="implicit", certfile=crt, keyfile=key,
				      drop_after=r"UID EXPUNGE .*").start()
		try:
			m = mount(_ProxiedDv(dv, proxy, ca), opts=["expunge=immediate"])
			d = os.path.join(m.mnt, "INBOX")
			rm(os.path.join(d, by_uid(d)[uids[1]]))
			wait_expunged(dv, "INBOX", [uids[1]])
			assert uids[1] not in by_uid(d)
			left = server_uids(dv, "INBOX")
			assert uids[0] in left and "\\Deleted" in left[uids[0]]
			assert uids[2] in left
			m.stop()
			cmds = proxy.commands()
			assert proxy.drops >= 1, cmds
			assert not [c for c in cmds if c.upper().startswith("EXPUNGE")], cmds
		finally:
			proxy.stop()
	finally:
		dv.stop()
