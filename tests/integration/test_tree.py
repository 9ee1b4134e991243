# SPDX-License-Identifier: GPL-2.0-or-later
"""The living tree (issue 10) against a real Dovecot, a real mount and real tools: the
daemon holds nodes only for what the kernel holds (forget frees them, readdirplus counts
only what it returned), inode numbers survive a forget, and changes made by another
client reach the tree and the kernel: an expunge is a deletion inotify sees, folders
created or deleted on the server appear and disappear without remounting. The freshness
timers are set to 0 by options, so no test waits for one. The server's state is checked
through imaplib (imapfs_testlib), never only through the mount.
"""

import ctypes
import os
import select
import struct
import subprocess
import time

import imapfs_testlib as tl
from test_mount import mount  # noqa: F401 (fixture)

IN_DELETE_SELF = 0x00000400
IN_NONBLOCK = 0o4000


def drop_kernel_caches():
	"""Makes the kernel forget unused dentries and inodes (it then sends FORGET)."""
	subprocess.run(["sync"], check=True)
	with open("/proc/sys/vm/drop_caches", "w") as f:
		f.write("2\n")


wait_for = tl.wait_for


class Inotify:
	"""inotify through libc (no third-party module): watch one directory, read events."""

	def __init__(self, path, mask):
		self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
		self.fd = self.libc.inotify_init1(IN_NONBLOCK)
		assert self.fd >= 0
		wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
		assert wd >= 0, os.strerror(ctypes.get_errno())

	def events(self, timeout):
		"""(mask, name) pairs that arrive within @timeout seconds of the first wait."""
		out = []
		r, _, _ = select.select([self.fd], [], [], timeout)
		if not r:
			return out
		data = os.read(self.fd, 65536)
		off = 0
		while off < len(data):
			_wd, mask, _cookie, n = struct.unpack_from("iIII", data, off)
			name = data[off + 16:off + 16 + n].rstrip(b"\0").decode()
			out.append((mask, name))
			off += 16 + n
		return out

	def close(self):
		os.close(self.fd)


def by_uid(d):
	return {int(n.rsplit("_", 1)[1][:-4]): n for n in os.listdir(d) if n.endswith(".eml")}


def test_forget_frees_message_nodes(fresh_dovecot, mount):  # noqa: F811
	"""ls -l over several readdirplus buffers creates nodes; when the kernel forgets the
	inodes every message node is freed (none was counted for an entry not returned)."""
	dv = fresh_dovecot("slash", corpus_n=400)
	m = mount(dv)
	inbox = os.path.join(m.mnt, "INBOX")
	n = tl.status(dv.imap(), "INBOX")["MESSAGES"]
	assert n > 100
	subprocess.run(["ls", "-l", inbox], check=True, stdout=subprocess.DEVNULL)
	assert m.stats()["nodes_msg"] >= n
	drop_kernel_caches()
	wait_for(lambda: m.stats()["nodes_msg"] == 0, what="message nodes freed: %s" % m.stats())
	# the files are still there, under the same inode numbers
	st = {name: os.stat(os.path.join(inbox, name)).st_ino for name in os.listdir(inbox)}
	assert len(st) == n
	drop_kernel_caches()
	wait_for(lambda: m.stats()["nodes_msg"] == 0, what="nodes freed again")
	again = {name: os.stat(os.path.join(inbox, name)).st_ino for name in st}
	assert again == st


def test_cat_of_every_file_does_not_keep_nodes(fresh_dovecot, mount):  # noqa: F811
	"""find | xargs cat, then the kernel forgets: nothing is left behind per message."""
	dv = fresh_dovecot("slash", corpus_n=80)
	m = mount(dv)
	for _ in range(2):
		subprocess.run("find '%s' -type f -print0 | xargs -0 cat > /dev/null" % m.mnt,
			       shell=True, check=True)
		drop_kernel_caches()
		wait_for(lambda: m.stats()["nodes_msg"] == 0, what="nodes freed: %s" % m.stats())


def test_expunge_by_another_client_is_a_deletion_inotify_sees(fresh_dovecot, mount):  # noqa: F811
	"""The daemon tells the kernel an expunged file was deleted (notify_delete): a watch on
	the file gets IN_DELETE_SELF, the name is gone at once. (Linux reports a FUSE
	notify_delete to the file's watchers, not as IN_DELETE to the directory's.)"""
	dv = fresh_dovecot("slash", corpus_n=0)
	conn = dv.imap()
	uids = [tl.append(conn, "INBOX", b"Subject: m%d\r\n\r\nbody %d\r\n" % (i, i))
		for i in range(3)]
	m = mount(dv, opts=["dir_max_age=0"])
	inbox = os.path.join(m.mnt, "INBOX")
	names = by_uid(inbox)
	assert sorted(names) == sorted(uids)
	victim = uids[1]
	watch = Inotify(os.path.join(inbox, names[victim]), IN_DELETE_SELF)
	try:
		tl.select(conn, "INBOX", readonly=False)
		tl.check(conn.uid("STORE", str(victim), "+FLAGS.SILENT", "(\\Deleted)"))
		tl.check(conn.uid("EXPUNGE", str(victim)))
		assert victim not in tl.fetch_flags(conn, "INBOX")  # the server's state
		assert sorted(by_uid(inbox)) == [uids[0], uids[2]]  # this ls resyncs
		seen = []
		deadline = time.time() + 10
		while not any(mask & IN_DELETE_SELF for mask, _ in seen) and time.time() < deadline:
			seen += watch.events(1)
		assert any(mask & IN_DELETE_SELF for mask, _ in seen), seen
	finally:
		watch.close()
	assert not os.path.exists(os.path.join(inbox, names[victim]))


def test_new_mail_from_another_client_appears(fresh_dovecot, mount):  # noqa: F811
	dv = fresh_dovecot("slash", corpus_n=0)
	conn = dv.imap()
	first = tl.append(conn, "INBOX", b"Subject: one\r\n\r\n1\r\n")
	m = mount(dv, opts=["dir_max_age=0"])
	inbox = os.path.join(m.mnt, "INBOX")
	assert sorted(by_uid(inbox)) == [first]
	second = tl.append(conn, "INBOX", b"Subject: two\r\n\r\n2\r\n")
	assert sorted(tl.fetch_flags(conn, "INBOX")) == [first, second]
	names = by_uid(inbox)
	assert sorted(names) == [first, second]
	with open(os.path.join(inbox, names[second]), "rb") as f:
		assert f.read() == tl.fetch_body(conn, "INBOX", second)


def test_folders_created_and_deleted_on_server_follow_without_remount(fresh_dovecot, mount):  # noqa: F811,E501
	dv = fresh_dovecot("slash", corpus_n=0)
	conn = dv.imap()
	tl.check(conn.create(tl.mbox("Old")))
	# the timer path (live=off): with push, the kernel's entry for Old is invalidated
	# asynchronously, a moment after the tree changed (test_live.py waits for it)
	m = mount(dv, opts=["folders_max_age=0", "live=off"])
	assert "Old" in os.listdir(m.mnt)
	os.stat(os.path.join(m.mnt, "Old"))
	tl.check(conn.delete(tl.mbox("Old")))
	tl.check(conn.create(tl.mbox("New")))
	# the server's own view, through a fresh session (a Maildir++ list index can lag
	# for the session that made the change while its directory's mtime second lasts)
	names = [f.name for f in tl.list_all_folders(dv.imap())]
	assert "New" in names and "Old" not in names
	top = os.listdir(m.mnt)
	assert "New" in top and "Old" not in top
	# the kernel's entry for Old is dropped by the notifier thread, right after the
	# listing that found it gone (never from inside the handler: the libfuse rule)
	tl.wait_for(lambda: not os.path.exists(os.path.join(m.mnt, "Old")), timeout=5,
		    what="Old gone from the kernel's cache")
	assert os.path.isdir(os.path.join(m.mnt, "New"))


def test_timer_options_are_checked(tmp_path):
	for bad in ("dir_max_age=-1", "offline_retry=0", "folders_max_age=86401"):
		r = subprocess.run([tl.imapfs_bin(), "-o", bad, "imaps://a@127.0.0.1",
				    str(tmp_path)], capture_output=True, timeout=30)
		assert r.returncode != 0
		lines = r.stderr.decode().strip().splitlines()
		assert len(lines) == 1 and bad.split("=")[0] in lines[0], lines


MAIL_XATTRS = ("user.mail.subject", "user.mail.from", "user.mail.to", "user.mail.date",
	       "user.mail.message_id")


def mail_xattrs(d):
	out = {}
	for name in sorted(os.listdir(d)):
		p = os.path.join(d, name)
		have = set(os.listxattr(p))
		out[name] = {x: os.getxattr(p, x) for x in MAIL_XATTRS if x in have}
	return out


def test_envelope_xattrs_read_back_from_the_cache(fresh_dovecot, mount, tmp_path):  # noqa: F811
	"""The records keep no envelope strings once the header cache has them: the xattrs
	come back from the cache, the same on the cold mount, a warm remount and offline."""
	dv = fresh_dovecot("slash", corpus_n=30)
	conn = dv.imap()
	cache = str(tmp_path / "cache")
	m = mount(dv, opts=["cache_dir=" + cache])
	inbox = os.path.join(m.mnt, "INBOX")
	cold = mail_xattrs(inbox)
	assert cold and all(len(v) >= 4 for v in cold.values())
	# the checker: each file's Message-ID is the server's for that UID
	for name, v in cold.items():
		uid = int(name.rsplit("_", 1)[1][:-4])
		body = tl.fetch_body(conn, "INBOX", uid)
		assert v["user.mail.message_id"] in body
	m.stop()
	m2 = mount(dv, opts=["cache_dir=" + cache])
	assert mail_xattrs(os.path.join(m2.mnt, "INBOX")) == cold
	m2.stop()
	m3 = mount(dv, opts=["cache_dir=" + cache, "offline"])
	assert mail_xattrs(os.path.join(m3.mnt, "INBOX")) == cold


def test_unsolicited_exists_on_a_pool_connection_makes_the_listing_resync(fresh_dovecot, mount):  # noqa: F811,E501
	"""New mail the server announces on one of the mount's own connections (an EXISTS
	after a body fetch) is listed at the next ls, although the listing is younger than
	dir_max_age (an hour here): unsolicited responses feed the change path."""
	dv = fresh_dovecot("slash", corpus_n=0)
	conn = dv.imap()
	first = tl.append(conn, "INBOX", b"Subject: one\r\n\r\n" + b"x" * 1000 + b"\r\n")
	m = mount(dv, opts=["dir_max_age=3600", "no_cache"])
	inbox = os.path.join(m.mnt, "INBOX")
	names = by_uid(inbox)
	assert sorted(names) == [first]
	second = tl.append(conn, "INBOX", b"Subject: two\r\n\r\n2\r\n")
	assert sorted(tl.fetch_flags(conn, "INBOX")) == [first, second]  # the server's state
	assert sorted(by_uid(inbox)) == [first]  # fresh listing: not asked again
	# a read of the first message runs a command on INBOX: Dovecot adds "* 2 EXISTS"
	with open(os.path.join(inbox, names[first]), "rb") as f:
		assert f.read() == tl.fetch_body(conn, "INBOX", first)
	assert sorted(by_uid(inbox)) == [first, second]
