# SPDX-License-Identifier: GPL-2.0-or-later
"""Proves the test harness itself: scripts/dovecot in both layouts, TLS with the generated
CA, namespaces, capabilities, the corpus as corpus.json describes it, loopback-only
listening, clean stop, and that the imapfs binary answers --version and --help.
"""

import email
import email.header
import email.policy
import imaplib
import os
import re
import ssl
import subprocess

import pytest

import imapfs_testlib as tl

REQUIRED_CAPS = ["IMAP4REV1", "IDLE", "MOVE", "UIDPLUS", "CONDSTORE", "QRESYNC", "SPECIAL-USE",
		 "LIST-STATUS", "QUOTA", "NAMESPACE", "LITERAL+"]


def caps_of(conn):
	data = tl.check(conn.capability(), "CAPABILITY")
	return set(data[-1].decode().upper().split())


def test_server_runs(dovecot_any):
	dv = dovecot_any
	assert dv.running()
	r = subprocess.run([tl.PYTHON, tl.script("dovecot"), "status", dv.dir],
			   stdout=subprocess.PIPE, check=True)
	out = r.stdout.decode()
	assert "running" in out and str(dv.port_imap) in out and str(dv.port_imaps) in out
	assert os.path.exists(dv.ca)


def test_start_is_idempotent(dovecot_slash):
	dv = dovecot_slash
	r = subprocess.run([tl.PYTHON, tl.script("dovecot"), "start", dv.dir, "--layout", "slash"],
			   stdout=subprocess.PIPE, check=True)
	assert ("pid=%d" % dv.pid) in r.stdout.decode()
	with open(os.path.join(dv.dir, "run", "master.pid")) as f:
		assert int(f.read()) == dv.pid


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
@pytest.mark.parametrize("user", ["alice", "bob"])
def test_login_tls(dovecot_any, tls, user):
	c = dovecot_any.imap(user=user, tls=tls)
	assert c.state == "AUTH"
	sock = c.sock if tls == "implicit" else c.sock
	assert isinstance(sock, ssl.SSLSocket)
	assert sock.version() in ("TLSv1.2", "TLSv1.3")
	c.logout()


def test_starttls_offered_before_login(dovecot_slash):
	c = dovecot_slash.imap(tls="none", login=False)
	assert "STARTTLS" in c.capabilities
	assert "AUTH=PLAIN" in c.capabilities
	c.logout()


def test_wrong_password_fails(dovecot_slash):
	c = dovecot_slash.imap(tls="starttls", login=False)
	with pytest.raises(imaplib.IMAP4.error):
		c.login("alice", "not-the-password")
	c.logout()


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_untrusted_ca_fails(dovecot_slash, dovecot_dot, tls):
	# Each instance has its own CA: the other one's CA must not verify this server.
	with pytest.raises(ssl.SSLCertVerificationError):
		dovecot_slash.imap(tls=tls, cafile=dovecot_dot.ca)


def test_certificate_names(dovecot_slash):
	dv = dovecot_slash
	ctx = ssl.create_default_context(cafile=dv.ca)
	import socket
	for name in ("localhost", "127.0.0.1"):
		with socket.create_connection((dv.host, dv.port_imaps), timeout=10) as s:
			with ctx.wrap_socket(s, server_hostname=name) as t:
				assert t.getpeercert()
	with socket.create_connection((dv.host, dv.port_imaps), timeout=10) as s:
		with pytest.raises(ssl.SSLCertVerificationError):
			ctx.wrap_socket(s, server_hostname="example.org")


def test_namespace_slash(dovecot_slash):
	ns = tl.namespaces(dovecot_slash.imap())
	assert ns == {"personal": [("", "/")], "other": [], "shared": []}


def test_namespace_dot(dovecot_dot):
	ns = tl.namespaces(dovecot_dot.imap())
	assert ns == {"personal": [("INBOX.", ".")], "other": [("user.", ".")],
		      "shared": [("shared.", ".")]}


def test_capabilities(dovecot_any):
	caps = caps_of(dovecot_any.imap())
	missing = [c for c in REQUIRED_CAPS if c not in caps]
	assert not missing, "missing capabilities: %s (have %s)" % (missing, sorted(caps))


def test_special_use(dovecot_any):
	dv = dovecot_any
	fs = {f.name: f for f in tl.list_all_folders(dv.imap())}
	p = dv.personal_prefix
	for name, flag in (("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"),
			   ("Junk", "\\Junk")):
		assert flag in fs[p + name].flags, fs[p + name]


def test_quota(dovecot_any):
	c = dovecot_any.imap()
	typ, data = c.getquotaroot("INBOX")
	assert typ == "OK"
	flat = b" ".join(x for part in data for x in part)
	assert b"STORAGE" in flat and b"1048576" in flat, flat


def test_corpus_folders(dovecot_any):
	dv = dovecot_any
	assert dv.corpus and dv.corpus["n"] == 60 and dv.corpus["layout"] == dv.layout
	fs = {f.name: f for f in tl.list_all_folders(dv.imap())}
	expected = {f["name"]: f for f in dv.corpus["folders"]}
	assert set(fs) == set(expected)
	for name, f in expected.items():
		assert ("\\Noselect" in fs[name].flags) == f["noselect"], name
		if not f["noselect"]:
			assert fs[name].delimiter == dv.delimiter
	for name in (dv.personal_prefix + "Entwürfe", dv.personal_prefix + "日本語"):
		assert name in fs and fs[name].raw != name.encode()


def test_corpus_counts(dovecot_any):
	dv = dovecot_any
	counts = tl.folder_counts(dv.imap())
	assert counts == dv.corpus_folders()
	personal = sum(f["count"] for f in dv.corpus["folders"] if f["namespace"] == "personal")
	assert personal == 60
	inbox = dv.corpus_folders()["INBOX"]
	assert inbox >= 10


def test_corpus_messages(dovecot_any):
	"""uid, size and flags of every message are as corpus.json says; reading sets no \\Seen."""
	dv = dovecot_any
	c = dv.imap()
	by_folder = {}
	for m in dv.corpus["messages"]:
		by_folder.setdefault(m["folder"], []).append(m)
	for folder, exp in by_folder.items():
		got = tl.fetch_messages(c, folder, body=True)
		assert [m.uid for m in got] == [m["uid"] for m in exp], folder
		for g, e in zip(got, exp):
			assert g.size == e["size"] == len(g.body)
			assert set(g.flags) - {"\\Recent"} == set(e["flags"]), (folder, g.uid)
			assert g.body.count(b"\r\n") == g.body.count(b"\n")
			assert ("<%s>" % e["message_id"].strip("<>")).encode() in g.body
	# still unchanged after reading everything
	for folder, exp in by_folder.items():
		flags = tl.fetch_flags(c, folder)
		assert {u: f - {"\\Recent"} for u, f in flags.items()} == \
			{e["uid"]: set(e["flags"]) for e in exp}


def test_corpus_variety(dovecot_slash):
	"""The small corpus already has the interesting shapes."""
	dv = dovecot_slash
	c = dv.imap()
	charsets, types, subjects, big, raw8, kws = set(), set(), [], 0, 0, set()
	for folder in dv.corpus_folders():
		for m in tl.fetch_messages(c, folder, body=True):
			msg = email.message_from_bytes(m.body, policy=email.policy.compat32)
			types.add(msg.get_content_type())
			for part in msg.walk():
				cs = part.get_content_charset()
				if cs:
					charsets.add(cs.lower())
			head = m.body.split(b"\r\n\r\n", 1)[0]
			sm = re.search(rb"^Subject: (.*(?:\r\n[ \t].*)*)", head, re.M | re.I)
			subjects.append(sm.group(1).decode("latin-1") if sm else None)
			if any(b >= 0x80 for b in head):
				raw8 += 1
			big = max(big, m.size)
			kws |= {f for f in m.flags if not f.startswith("\\")}
	assert {"utf-8", "iso-8859-1", "koi8-r", "shift_jis"} <= charsets, charsets
	assert {"multipart/alternative", "multipart/mixed", "text/plain"} <= types, types
	assert any(s and "/" in s for s in subjects)
	assert any(s and "=?" in s for s in subjects)
	assert any(s and '"' in s and "\x01" in s for s in subjects)
	assert None in subjects
	assert raw8 >= 1
	assert big >= 100 * 1024
	assert {"$Label1", "Work"} <= kws


def test_shared_folders_dot(dovecot_dot):
	dv = dovecot_dot
	c = dv.imap()
	fs = {f.name: f for f in tl.list_all_folders(c)}
	assert fs["user.bob.Shared"].namespace == "other"
	assert fs["shared.Announcements"].namespace == "shared"
	assert "user.bob.Private" not in fs
	assert tl.select(c, "user.bob.Shared") == 3
	assert tl.select(c, "shared.Announcements") == 2
	typ, _ = c.select(tl.mbox("user.bob.Private"), readonly=True)
	assert typ != "OK"


def test_listens_on_loopback_only(dovecot_any):
	dv = dovecot_any
	addrs = dv.listening_addresses()
	assert {p for _, p in addrs} >= {dv.port_imap, dv.port_imaps}
	assert all(a == "127.0.0.1" for a, _ in addrs), addrs
	# and nothing of this instance on UDP either
	out = subprocess.run(["ss", "-Hlunp"], stdout=subprocess.PIPE, check=True).stdout.decode()
	pids = set(dv.process_ids())
	for line in out.splitlines():
		assert not any(("pid=%d," % p) in line for p in pids), line


@pytest.mark.parametrize("layout", ["slash", "dot"])
def test_stop_leaves_nothing(fresh_dovecot, layout):
	dv = fresh_dovecot(layout)
	c = dv.imap()  # an imap process exists now
	tl.select(c, "INBOX")
	pids = dv.process_ids()
	assert len(pids) >= 3
	d = dv.dir
	subprocess.run([tl.PYTHON, tl.script("dovecot"), "stop", d], check=True,
		       stdout=subprocess.DEVNULL)
	assert not [p for p in pids if tl.pid_alive(p)]
	r = subprocess.run([tl.PYTHON, tl.script("dovecot"), "status", d], stdout=subprocess.PIPE)
	assert r.returncode != 0 and b"not running" in r.stdout


def test_corpus_deterministic(fresh_dovecot):
	a = fresh_dovecot("slash", corpus_n=25, seed=7)
	b = fresh_dovecot("slash", corpus_n=25, seed=7)
	ca, cb = a.imap(), b.imap()
	for folder in a.corpus_folders():
		ma = tl.fetch_messages(ca, folder, body=True)
		mb = tl.fetch_messages(cb, folder, body=True)
		assert [(m.uid, m.flags, m.internaldate, m.body) for m in ma] == \
			[(m.uid, m.flags, m.internaldate, m.body) for m in mb]
	strip = lambda c: {k: v for k, v in c.items() if k != "layout"}  # noqa: E731
	assert strip(a.corpus) == strip(b.corpus)


def test_imapfs_version(imapfs_bin):
	r = subprocess.run([imapfs_bin, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
			   stdin=subprocess.DEVNULL, timeout=30)
	out = r.stdout.decode(errors="replace")
	assert r.returncode == 0, out
	assert "imapfs" in out.lower()


def test_imapfs_help(imapfs_bin):
	r = subprocess.run([imapfs_bin, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
			   stdin=subprocess.DEVNULL, timeout=30)
	out = r.stdout.decode(errors="replace")
	assert r.returncode == 0, out
	assert "usage" in out.lower() and "imapfs" in out.lower()


def test_start_refuses_other_layout(dovecot_dot):
	r = subprocess.run([tl.PYTHON, tl.script("dovecot"), "start", dovecot_dot.dir, "--layout",
			    "slash"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
	# already running: start is a no-op that reports the running instance
	assert r.returncode == 0 and b"layout=dot" in r.stdout


def test_corpus_refuses_second_run(dovecot_slash):
	r = subprocess.run([tl.PYTHON, tl.script("corpus"), dovecot_slash.dir, "5"],
			   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
	assert r.returncode != 0 and b"already has a corpus" in r.stderr
