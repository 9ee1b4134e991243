# SPDX-License-Identifier: GPL-2.0-or-later
"""mv and ln of messages (issue 11) against a real Dovecot in both layouts, a real mount
and the real tools: mv to another folder (UID MOVE), with another target name, across
namespaces, within the folder and onto an existing name (EPERM), ln (UID COPY), flags kept,
the file readable under its new name at once and ls of both folders right after. Every
test checks the server's state with imaplib (imapfs_testlib), not only the mount.
"""

import errno
import os
import subprocess
import uuid

import pytest

import imapfs_testlib as tl
from test_mount import mount  # noqa: F401 (fixture)


@pytest.fixture(scope="module", params=["slash", "dot"])
def srv(request):
	"""A writable server per layout for this module (each test uses its own messages)."""
	dv = tl.Dovecot()
	request.addfinalizer(dv.stop)
	dv.start(request.param, corpus_n=20, seed=3)
	return dv


def server_name(dv, path):
	"""The server name of a folder shown as @path in the mount ('INBOX' stays)."""
	if path == "INBOX":
		return "INBOX"
	return dv.personal_prefix + path.replace("/", dv.delimiter)


def put(dv, folder, subject, flags=()):
	"""APPENDs a small message with a unique Message-ID; returns (uid, message_id, bytes)."""
	mid = "<%s@imapfs.test>" % uuid.uuid4()
	data = ("From: a@example.org\r\nTo: b@example.org\r\nSubject: %s\r\nMessage-ID: %s\r\n"
		"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nbody of %s\r\n" % (subject, mid, subject)).encode()
	uid = tl.append(dv.imap(), server_name(dv, folder), data, flags=flags)
	assert uid
	return uid, mid, data


def by_mid(dv, folder, mid, user="alice"):
	"""{uid: flags} of the messages of @folder (server name) whose Message-ID is @mid."""
	c = dv.imap(user)
	tl.select(c, folder)
	typ, data = c.uid("SEARCH", None, "HEADER", "Message-ID", '"%s"' % mid)
	assert typ == "OK"
	uids = [int(x) for x in data[0].split()]
	flags = tl.fetch_flags(c, folder)
	return {u: flags[u] - {"\\Recent"} for u in uids}


def name_of(d, uid):
	for n in os.listdir(d):
		if n.endswith("_%d.eml" % uid):
			return n
	return None


def test_mv_to_another_folder_keeps_flags_and_the_file(srv, mount):  # noqa: F811
	uid, mid, data = put(srv, "INBOX", "mv me", flags=("\\Flagged", "$Label1", "\\Seen"))
	m = mount(srv)
	inbox, work = os.path.join(m.mnt, "INBOX"), os.path.join(m.mnt, "Work")
	name = name_of(inbox, uid)
	os.listdir(work)
	fd = os.open(os.path.join(inbox, name), os.O_RDONLY)
	try:
		ino = os.fstat(fd).st_ino
		subprocess.run(["mv", os.path.join(inbox, name), work + "/"], check=True)
		# the server: gone from INBOX, exactly once in Work, flags kept
		assert by_mid(srv, "INBOX", mid) == {}
		moved = by_mid(srv, server_name(srv, "Work"), mid)
		assert len(moved) == 1
		new_uid, flags = next(iter(moved.items()))
		assert flags == {"\\Flagged", "$Label1", "\\Seen"}
		# the mount, right after: the canonical name in Work, nothing left in INBOX
		assert name_of(inbox, uid) is None
		assert name not in os.listdir(inbox)
		new_name = name_of(work, new_uid)
		assert new_name is not None
		with open(os.path.join(work, new_name), "rb") as f:
			assert f.read() == data
		# the same inode, and a process holding it open still reads it
		assert os.stat(os.path.join(work, new_name)).st_ino == ino
		assert os.pread(fd, 1 << 20, 0) == data
		assert os.fstat(fd).st_size == len(data)
	finally:
		os.close(fd)
	assert os.getxattr(os.path.join(work, new_name), "user.imap.uid").decode() == str(new_uid)


def test_mv_with_another_target_name(srv, mount):  # noqa: F811
	uid, mid, data = put(srv, "INBOX", "renamed on the way")
	m = mount(srv)
	inbox, arch = os.path.join(m.mnt, "INBOX"), os.path.join(m.mnt, "Archive")
	name = name_of(inbox, uid)
	target = os.path.join(arch, "whatever I like.eml")
	subprocess.run(["mv", os.path.join(inbox, name), target], check=True)
	moved = by_mid(srv, server_name(srv, "Archive"), mid)
	assert len(moved) == 1 and by_mid(srv, "INBOX", mid) == {}
	new_uid = next(iter(moved))
	# the given name does not stay: the canonical one is there
	tl.wait_for(lambda: not os.path.exists(target), what="the given name gone")
	assert "whatever I like.eml" not in os.listdir(arch)
	with open(os.path.join(arch, name_of(arch, new_uid)), "rb") as f:
		assert f.read() == data


def test_mv_within_the_folder_is_eperm(srv, mount):  # noqa: F811
	uid, mid, _ = put(srv, "INBOX", "stay")
	m = mount(srv)
	inbox = os.path.join(m.mnt, "INBOX")
	name = name_of(inbox, uid)
	with pytest.raises(OSError) as e:
		os.rename(os.path.join(inbox, name), os.path.join(inbox, "new name.eml"))
	assert e.value.errno == errno.EPERM
	assert list(by_mid(srv, "INBOX", mid)) == [uid]
	assert name_of(inbox, uid) == name


def test_mv_onto_an_existing_message_is_eperm(srv, mount):  # noqa: F811
	uid, mid, _ = put(srv, "INBOX", "source")
	uid2, mid2, _ = put(srv, "Work", "already there")
	m = mount(srv)
	inbox, work = os.path.join(m.mnt, "INBOX"), os.path.join(m.mnt, "Work")
	src = os.path.join(inbox, name_of(inbox, uid))
	dst = os.path.join(work, name_of(work, uid2))
	with pytest.raises(OSError) as e:
		os.rename(src, dst)
	assert e.value.errno == errno.EPERM
	assert list(by_mid(srv, "INBOX", mid)) == [uid]
	assert list(by_mid(srv, server_name(srv, "Work"), mid2)) == [uid2]
	assert by_mid(srv, server_name(srv, "Work"), mid) == {}


def test_mv_of_a_directory_and_into_a_non_folder_is_eperm(srv, mount):  # noqa: F811
	uid, mid, _ = put(srv, "INBOX", "nowhere")
	m = mount(srv)
	inbox = os.path.join(m.mnt, "INBOX")
	with pytest.raises(OSError) as e:
		os.rename(os.path.join(m.mnt, "Archive"), os.path.join(m.mnt, "Archive2"))
	assert e.value.errno == errno.EPERM
	assert "Archive2" not in os.listdir(m.mnt)
	# "Lists" exists only as the parent of other folders (no mailbox of its own)
	with pytest.raises(OSError) as e:
		os.rename(os.path.join(inbox, name_of(inbox, uid)),
			  os.path.join(m.mnt, "Lists", "x.eml"))
	assert e.value.errno == errno.EPERM
	assert list(by_mid(srv, "INBOX", mid)) == [uid]


def test_ln_copies_on_the_server(srv, mount):  # noqa: F811
	uid, mid, data = put(srv, "INBOX", "link me", flags=("\\Answered", "Work"))
	m = mount(srv)
	inbox, junk = os.path.join(m.mnt, "INBOX"), os.path.join(m.mnt, "Junk")
	name = name_of(inbox, uid)
	os.listdir(junk)
	subprocess.run(["ln", os.path.join(inbox, name), junk + "/"], check=True)
	assert list(by_mid(srv, "INBOX", mid)) == [uid]
	copies = by_mid(srv, server_name(srv, "Junk"), mid)
	assert len(copies) == 1
	new_uid, flags = next(iter(copies.items()))
	assert flags == {"\\Answered", "Work"}
	new_name = name_of(junk, new_uid)
	with open(os.path.join(junk, new_name), "rb") as f:
		assert f.read() == data
	assert name_of(inbox, uid) == name
	# the source's name does not stay in Junk unless it is the canonical one
	if new_name != name:
		tl.wait_for(lambda: not os.path.exists(os.path.join(junk, name)),
			    what="the given name gone")
	# within the same folder: EPERM, nothing copied
	with pytest.raises(OSError) as e:
		os.link(os.path.join(inbox, name), os.path.join(inbox, "again.eml"))
	assert e.value.errno == errno.EPERM
	assert list(by_mid(srv, "INBOX", mid)) == [uid]


def test_mv_across_namespaces(srv, mount):  # noqa: F811
	if srv.layout != "dot":
		pytest.skip("only the dot layout has other users' namespaces")
	srv.doveadm("acl", "set", "-u", "bob", "INBOX.Shared", "user=alice", "lookup", "read",
		    "insert", "write", "write-seen", "write-deleted", "expunge")
	uid, mid, data = put(srv, "INBOX", "to bob", flags=("\\Flagged",))
	m = mount(srv)
	inbox = os.path.join(m.mnt, "INBOX")
	shared = os.path.join(m.mnt, "user", "bob", "Shared")
	os.listdir(shared)
	subprocess.run(["mv", os.path.join(inbox, name_of(inbox, uid)), shared + "/"], check=True)
	assert by_mid(srv, "INBOX", mid) == {}
	there = by_mid(srv, "INBOX.Shared", mid, user="bob")
	assert len(there) == 1
	new_uid = next(iter(there))
	with open(os.path.join(shared, name_of(shared, new_uid)), "rb") as f:
		assert f.read() == data
	# and back again
	subprocess.run(["mv", os.path.join(shared, name_of(shared, new_uid)), inbox + "/"],
		       check=True)
	assert by_mid(srv, "INBOX.Shared", mid, user="bob") == {}
	assert len(by_mid(srv, "INBOX", mid)) == 1
