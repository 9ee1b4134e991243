# SPDX-License-Identifier: GPL-2.0-or-later
"""Hostile, slow and quirky servers (issue 9) against a real mount and real tools: a
UIDVALIDITY change announced in the middle of a session, FETCH data with NIL where a value
belongs, a server that answers a byte range with the whole body, a server that dribbles,
a pool whose connections are all busy, transient failures under -o sync=all, TLS closed
during the handshake and a certificate without subjectAltName.

The server is tests/fakeimap (a small stateful INBOX served by rules); each test is named
after the symptom it guards against.
"""

import errno
import os
import re
import subprocess
import sys
import threading
import time

import pytest

import imapfs_testlib as tl
from test_mount import _FakeDv, mount  # noqa: F401 (fixture)

sys.path.insert(0, os.path.join(tl.source_dir(), "tests", "fakeimap"))

import fakeimap as fi  # noqa: E402

CAPS = "IMAP4rev1 LITERAL+ SASL-IR UIDPLUS NAMESPACE AUTH=PLAIN"


def message(subject, body, date="Mon, 1 Jan 2024 10:00:00 +0000"):
	return ("From: a@example.org\r\nSubject: %s\r\nDate: %s\r\n\r\n" % (subject, date)).encode() + body


class Box:
	"""The INBOX of a scripted server: {uid: bytes} at one UIDVALIDITY, plus switches that
	make it misbehave. Rules run on the fakeimap thread; tests change the state between
	steps (under self.lock)."""

	def __init__(self, msgs, uidvalidity=7):
		self.lock = threading.Lock()
		self.uidvalidity = uidvalidity
		self.msgs = dict(msgs)
		self.announce = None      # bytes sent before the next body answer (once)
		self.nil = {}             # uid -> set of items sent as NIL
		self.whole = False        # answer BODY.PEEK[]<o.l> with the whole body
		self.body_steps = None    # callable(uid) -> list of fakeimap steps, or None
		self.body_fail = {}       # uid -> number of NO [UNAVAILABLE] answers still to give
		self.body_commands = []   # the body FETCH commands seen

	def examine(self, conn, m):
		with self.lock:
			return ("* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY %d] v\r\n"
				"* OK [UIDNEXT %d] n\r\n{tag} OK [READ-ONLY] done\r\n" % (
					len(self.msgs), self.uidvalidity, max(self.msgs or [0]) + 1)).encode()

	def search(self, conn, m):
		with self.lock:
			return ("* SEARCH %s\r\n{tag} OK done\r\n" % " ".join(map(str, sorted(self.msgs)))).encode()

	def _uids(self, text):
		return tl.expand_uid_set(text, self.msgs)

	def headers(self, conn, m):
		uids, items = m.group(1).decode(), m.group(2).decode()
		with self.lock:
			order = sorted(self.msgs)
			out = []
			for u in self._uids(uids):
				data = self.msgs[u]
				nil = self.nil.get(u, set())
				subj = re.search(rb"Subject: (.*)\r\n", data).group(1).decode()
				date = re.search(rb"Date: (.*)\r\n", data).group(1).decode()
				line = "* %d FETCH (UID %d FLAGS ()" % (order.index(u) + 1, u)
				if "RFC822.SIZE" in items:
					line += " RFC822.SIZE " + ("NIL" if "size" in nil else str(len(data)))
				if "INTERNALDATE" in items:
					line += " INTERNALDATE " + ("NIL" if "date" in nil else '"01-Jan-2024 10:00:00 +0000"')
				if "ENVELOPE" in items:
					if "envelope" in nil:
						line += " ENVELOPE NIL"
					else:
						line += (' ENVELOPE ("%s" "%s" NIL NIL NIL NIL NIL NIL NIL NIL)' % (date, subj))
				out.append(line + ")\r\n")
			return ("".join(out) + "{tag} OK done\r\n").encode()

	def body(self, conn, m):
		text = m.group(0).decode(errors="replace")
		uid = int(m.group(1))
		with self.lock:
			self.body_commands.append(text)
			pre, self.announce = self.announce or b"", None
			if self.body_fail.get(uid, 0) > 0:
				self.body_fail[uid] -= 1
				return pre + b"{tag} NO [UNAVAILABLE] try again later\r\n"
			data = self.msgs.get(uid)
			if data is None:
				return pre + b"{tag} OK nothing\r\n"
			seq = sorted(self.msgs).index(uid) + 1
			part = re.search(r"BODY\.PEEK\[\]<(\d+)\.(\d+)>", text)
			if part and not self.whole:
				off, n = int(part.group(1)), int(part.group(2))
				chunk = data[off:off + n]
				head = "* %d FETCH (UID %d BODY[]<%d> {%d}\r\n" % (seq, uid, off, len(chunk))
			else:
				chunk = data
				head = "* %d FETCH (UID %d BODY[] {%d}\r\n" % (seq, uid, len(chunk))
			reply = pre + head.encode() + chunk + b")\r\n{tag} OK done\r\n"
			steps = self.body_steps(uid, reply) if self.body_steps else None
		return steps if steps is not None else reply


def rules(box):
	return [
		(rb"\S+ CAPABILITY", ("* CAPABILITY %s\r\n{tag} OK\r\n" % CAPS).encode()),
		(rb"\S+ NAMESPACE", b'* NAMESPACE (("" "/")) NIL NIL\r\n{tag} OK\r\n'),
		(rb"\S+ LIST .*", b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
		 b'* LIST (\\HasNoChildren) "/" Other\r\n{tag} OK\r\n'),
		(rb"\S+ (EXAMINE|SELECT) .*", box.examine),
		(rb"\S+ UID SEARCH .*", box.search),
		(rb"\S+ UID FETCH (\d+) \(UID BODY\.PEEK\[\].*", box.body),
		(rb"\S+ UID FETCH (\S+) (.*)", box.headers),
		(rb"\S+ (NOOP|CHECK|ENABLE .*|ID .*)", b"{tag} OK\r\n"),
	]


class Session:
	"""A served Box over implicit TLS: rules whose reply may be a list of steps."""

	def __init__(self, tmp_path, box):
		self.box = box
		ca, crt, key = fi.make_certs(str(tmp_path / "certs"))
		script = fi.login_steps(CAPS) + [fi.serve(rules(box), timeout=300)]
		self.srv = fi.FakeImap(scripts=[script], tls="implicit", certfile=crt, keyfile=key,
				       end_timeout=5).start()
		self.dv = _FakeDv(self.srv.port, ca)

	def stop(self):
		self.srv.stop()


@pytest.fixture
def session(tmp_path):
	made = []

	def make(box):
		s = Session(tmp_path, box)
		made.append(s)
		return s

	yield make
	for s in made:
		s.stop()


def eml(inbox):
	return sorted(n for n in os.listdir(inbox) if n.endswith(".eml"))


def read(path):
	with open(path, "rb") as f:
		return f.read()


wait_for = tl.wait_for


# ---- 1. UIDVALIDITY change announced mid-session ------------------------------------------

@pytest.mark.parametrize("how", ["unsolicited", "reselect"])
def test_uidvalidity_change_mid_session_never_serves_another_message(session, mount, how):
	old = {u: message("old %d" % u, b"OLD-%d\r\n" % u) for u in (1, 2, 3)}
	new = {u: message("new %d" % u, b"NEW-%d " % u * 50 + b"\r\n") for u in (1, 2, 3)}
	box = Box(old)
	s = session(box)
	m = mount(s.dv, opts=["max_conns=2"])
	inbox = os.path.join(m.mnt, "INBOX")
	path = {int(os.getxattr(os.path.join(inbox, n), "user.imap.uid")): os.path.join(inbox, n)
		for n in eml(inbox)}
	assert sorted(path) == [1, 2, 3]
	# a handle on message 2 whose bytes were read (the kernel may keep them), and one on
	# message 3 never read (every read reaches the store)
	warm = os.open(path[2], os.O_RDONLY)
	assert os.read(warm, 1 << 20) == old[2]
	cold = os.open(path[3], os.O_RDONLY)
	try:
		# the server recreates the mailbox: same UIDs, other messages, UIDVALIDITY 8
		with box.lock:
			box.uidvalidity = 8
			box.msgs = dict(new)
			if how == "unsolicited":
				box.announce = b"* OK [UIDVALIDITY 8] mailbox recreated\r\n"
		if how == "reselect":
			# every live connection is dropped: the retry re-EXAMINEs, sees UIDVALIDITY 8
			s.srv.drop_all()
		# message 1 was never read: this read goes to the server and meets the change
		# (ESTALE, or ENOENT when the reset already took its name away)
		with pytest.raises(OSError) as e:
			read(path[1])
		assert e.value.errno in (errno.ESTALE, errno.ENOENT), e.value
		# the folder is reset: the open, unread handle is stale
		with pytest.raises(OSError) as e:
			os.pread(cold, 1 << 20, 0)
		assert e.value.errno == errno.ESTALE, e.value
		# the read one: ESTALE, or its own bytes from the page cache; never the new
		# message that took its UID
		try:
			assert os.pread(warm, 1 << 20, 0) == old[2]
		except OSError as e2:
			assert e2.errno == errno.ESTALE, e2
	finally:
		os.close(warm)
		os.close(cold)
	# the new messages show under their own names and read right; the old names are gone
	got = wait_for(lambda: [n for n in eml(inbox) if "new" in n] or None, what="new listing")
	assert len(got) == 3, eml(inbox)
	for n in got:
		assert b"NEW-" in read(os.path.join(inbox, n))
	assert not [n for n in eml(inbox) if "old" in n]
	assert "UIDVALIDITY 7 is gone" in m.log()


# ---- 2. NIL where the protocol wants a value ----------------------------------------------

def test_nil_internaldate_envelope_size_message_does_not_vanish(session, mount):
	msgs = {1: message("nil date", b"one\r\n", date="Tue, 2 Jan 2024 12:00:00 +0000"),
		2: message("nil size", b"two two\r\n"),
		3: message("nil envelope", b"three three three\r\n"),
		4: message("nil everything", b"four\r\n")}
	box = Box(msgs)
	box.nil = {1: {"date"}, 2: {"size"}, 3: {"envelope"}, 4: {"date", "size", "envelope"}}
	s = session(box)
	m = mount(s.dv)
	inbox = os.path.join(m.mnt, "INBOX")
	names = eml(inbox)
	assert len(names) == 4, names
	by_uid = {}
	for n in names:
		by_uid[int(os.getxattr(os.path.join(inbox, n), "user.imap.uid"))] = n
	assert sorted(by_uid) == [1, 2, 3, 4]
	# the date falls back to the Date: header of the envelope, then the epoch
	assert int(os.stat(os.path.join(inbox, by_uid[1])).st_mtime) == 1704196800
	assert int(os.stat(os.path.join(inbox, by_uid[4])).st_mtime) == 0
	for uid, n in by_uid.items():
		p = os.path.join(inbox, n)
		r = subprocess.run(["cat", p], stdout=subprocess.PIPE, check=True, timeout=30)
		assert r.stdout == msgs[uid]
		wait_for(lambda: os.stat(p).st_size == len(msgs[uid]), what="exact size")
	assert m.log().count("NIL (or nothing)") == 1, m.log()


# ---- 3. a byte range answered with the whole body ------------------------------------------

def test_range_answered_with_whole_body_is_read_right(session, mount):
	big = message("big one", bytes(range(256)) * 2000)  # ~500 KB: ranges are used
	box = Box({1: big})
	box.whole = True
	s = session(box)
	m = mount(s.dv, opts=["no_cache"])
	inbox = os.path.join(m.mnt, "INBOX")
	(name,) = eml(inbox)
	p = os.path.join(inbox, name)
	with open(p, "rb") as f:
		f.seek(300000)
		assert f.read(1000) == big[300000:301000]
		f.seek(100)
		assert f.read(5000) == big[100:5100]
	r = subprocess.run(["cat", p], stdout=subprocess.PIPE, check=True, timeout=60)
	assert r.stdout == big
	with box.lock:
		cmds = list(box.body_commands)
	ranged = [c for c in cmds if "<" in c]
	assert len(ranged) <= 1, cmds  # asked once, never again after the whole body came


# ---- 4. a server that dribbles ------------------------------------------------------------

def test_dribbling_server_cannot_block_cat_beyond_the_deadline(session, mount):
	body = message("drip", b"x" * 200 + b"\r\n")
	box = Box({1: body})
	box.body_steps = lambda uid, reply: [fi.send(reply, chunk=1, delay=0.5)]
	s = session(box)
	m = mount(s.dv, opts=["timeout=2", "no_cache"])
	inbox = os.path.join(m.mnt, "INBOX")
	(name,) = eml(inbox)
	t0 = time.monotonic()
	r = subprocess.run(["cat", os.path.join(inbox, name)], stdout=subprocess.PIPE,
			   stderr=subprocess.PIPE, timeout=120)
	elapsed = time.monotonic() - t0
	assert r.returncode != 0 and r.stdout == b"", r
	# one byte every 0.5 s keeps the stall clock happy; only the total deadline
	# (timeout + announced bytes at 64 KiB/s) ends it: the bounded-waiting promise
	assert elapsed < 2 + 6, elapsed


# ---- 7. a busy pool is not a dead server ---------------------------------------------------

def test_busy_pool_fails_one_request_not_the_mount(session, mount):
	big = message("slow big", b"0123456789abcdef" * (1 << 16))  # 1 MiB
	box = Box({1: big})
	started = threading.Event()

	def slow(uid, reply):
		if len(reply) < len(big) // 2:
			return None  # the size probe at open, the first chunk: at once
		started.set()
		return [fi.send(reply, chunk=32768, delay=0.15)]

	box.body_steps = slow
	s = session(box)
	m = mount(s.dv, opts=["timeout=2", "max_conns=1", "no_cache"])
	inbox = os.path.join(m.mnt, "INBOX")
	(name,) = eml(inbox)
	out = {}

	def reader():
		out["r"] = subprocess.run(["cat", os.path.join(inbox, name)], stdout=subprocess.PIPE,
					  timeout=120)

	t = threading.Thread(target=reader)
	t.start()
	wait_for(started.is_set, what="the download to start")
	# every connection is busy with the download: this listing waits, then fails alone
	with pytest.raises(OSError) as e:
		os.listdir(os.path.join(m.mnt, "Other"))
	assert e.value.errno == errno.EAGAIN, e.value
	t.join(120)
	assert out["r"].returncode == 0 and out["r"].stdout == big  # not aborted
	assert "offline" not in m.log(), m.log()
	# still online: the folder lists once the connection is free
	assert len(os.listdir(os.path.join(m.mnt, "Other"))) == 1


# ---- 8. transient failures under -o sync=all ------------------------------------------------

def test_sync_all_retries_a_transient_failure_instead_of_skipping(session, mount, tmp_path):
	msgs = {u: message("sync %d" % u, b"body %d\r\n" % u) for u in (1, 2, 3)}
	box = Box(msgs)
	box.body_fail = {2: 2}  # twice NO [UNAVAILABLE], then fine
	s = session(box)
	m = mount(s.dv, opts=["sync=all", "cache_dir=%s" % (tmp_path / "cache")])
	want = 6  # the fake server shows the same three messages in INBOX and Other
	tl.wait_for(lambda: m.stats()["cache_files"] >= want, timeout=60,
		    what="every body downloaded", step=0.2)
	assert m.stats()["cache_files"] == want, m.log()
	assert "skipped" not in m.log()


# ---- 8. EOF during the TLS handshake; 12. a certificate without subjectAltName -----------

def _cli(*args, port, host="127.0.0.1", cafile=None, tls="implicit", timeout_ms=3000):
	cmd = [tl.imap_cli_bin(), "--host", host, "--port", str(port), "--tls", tls,
	       "--timeout", str(timeout_ms), "--user", "alice"]
	if cafile:
		cmd += ["--cafile", cafile]
	cmd += list(args)
	env = dict(os.environ, IMAPFS_PASSWORD="secret")
	env.pop("G_DEBUG", None)
	r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
			   stderr=subprocess.PIPE, timeout=60)
	err = r.stderr.decode(errors="replace")
	mm = re.search(r"imap-cli: (IMAP_ERROR_[A-Z_]+):", err)
	return r.returncode, mm.group(1) if mm else None, err


@pytest.mark.parametrize("rst", [False, True], ids=["eof", "reset"])
def test_connection_closed_during_tls_handshake_is_a_network_failure(rst):
	# accepts, lets the ClientHello arrive, then closes (a load balancer whose server is
	# restarting)
	srv = fi.FakeImap([fi.stall(0.3), fi.drop(rst=rst)], end_timeout=2).start()
	try:
		rc, code, err = _cli("login", port=srv.port)
	finally:
		srv.stop()
	assert rc == 1 and code == "IMAP_ERROR_DISCONNECTED", err


def _cn_only_cert(d):
	ca, cakey = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
	crt, key, csr = os.path.join(d, "cn.pem"), os.path.join(d, "cn.key"), os.path.join(d, "cn.csr")
	ext = os.path.join(d, "cn.ext")

	def run(*a):
		subprocess.run(a, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

	run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
	    "-nodes", "-keyout", cakey, "-out", ca, "-days", "30", "-subj", "/CN=cn-only test CA",
	    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
	run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
	    "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
	with open(ext, "w") as f:  # no subjectAltName
		f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
			"extendedKeyUsage=serverAuth\n")
	run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey, "-CAcreateserial",
	    "-out", crt, "-days", "30", "-extfile", ext)
	return ca, crt, key


def test_certificate_with_cn_but_no_subjectaltname_is_refused(tmp_path):
	ca, crt, key = _cn_only_cert(str(tmp_path))
	srv = fi.FakeImap(fi.login_steps("IMAP4rev1 AUTH=PLAIN") + [fi.wait_close(3)],
			  tls="implicit", certfile=crt, keyfile=key, end_timeout=3).start()
	try:
		rc, code, err = _cli("login", port=srv.port, host="localhost", cafile=ca)
	finally:
		srv.stop()
	assert rc == 1 and code == "IMAP_ERROR_TLS", err
	assert not any(c.auth for c in srv.conns), "logged in over an unverified certificate"


@pytest.mark.parametrize("origin", ["none", "zero"])
@pytest.mark.parametrize("sink", ["mem", "file"])
def test_range_answered_with_whole_body_gives_the_range(tmp_path, origin, sink):
	"""The library level of item 3: BODY.PEEK[]<o.l> answered with every byte (no origin,
	or origin 0): the range asked for comes back (into a file: from the offset to the
	end), never the message's first bytes in its place."""
	body = bytes(range(256)) * 600  # 153600 bytes: streamed to a file sink
	head = b"BODY[]" if origin == "none" else b"BODY[]<0>"
	script = fi.login_steps(CAPS) + [
		fi.expect(r"\S+ (EXAMINE|SELECT) .*",
			  "* 1 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\n* OK [UIDNEXT 2] x\r\n{tag} OK [READ-ONLY] done\r\n"),
		fi.expect(r"\S+ UID FETCH 1 \(UID BODY\.PEEK\[\]<100000\.1000>\)",
			  b"* 1 FETCH (UID 1 " + head + b" {%d}\r\n" % len(body) + body +
			  b")\r\n{tag} OK done\r\n"),
		fi.wait_close(5)]
	srv = fi.FakeImap(script, end_timeout=5).start()
	out = tmp_path / "out"
	try:
		cmd = [tl.imap_cli_bin(), "--host", "127.0.0.1", "--port", str(srv.port), "--tls",
		       "none", "--allow-insecure", "--timeout", "3000", "--user", "alice", "body",
		       "INBOX", "1", "100000", "1000"] + (["--mem"] if sink == "mem" else [])
		env = dict(os.environ, IMAPFS_PASSWORD="secret")
		env.pop("G_DEBUG", None)
		with open(out, "w+b") as f:  # read-write: the client moves streamed bytes
			r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=f,
					   stderr=subprocess.PIPE, timeout=60)
	finally:
		srv.stop()
	assert r.returncode == 0, r.stderr
	want = body[100000:101000] if sink == "mem" else body[100000:]
	assert out.read_bytes() == want
	assert srv.errors == []


def _cli_none(port, *args, timeout_ms=3000):
	cmd = [tl.imap_cli_bin(), "--host", "127.0.0.1", "--port", str(port), "--tls", "none",
	       "--allow-insecure", "--timeout", str(timeout_ms), "--user", "alice"] + list(args)
	env = dict(os.environ, IMAPFS_PASSWORD="secret")
	env.pop("G_DEBUG", None)
	t0 = time.monotonic()
	r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
			   stderr=subprocess.PIPE, timeout=120)
	err = r.stderr.decode(errors="replace")
	mm = re.search(r"imap-cli: (IMAP_ERROR_[A-Z_]+):", err)
	return r, mm.group(1) if mm else None, time.monotonic() - t0


def test_unsolicited_uidvalidity_during_fetch_fails_the_fetch():
	"""The library level of item 1: a body that arrives after '* OK [UIDVALIDITY n]' on
	the same connection belongs to the new UID map and is never handed out."""
	script = fi.login_steps(CAPS) + [
		fi.expect(r"\S+ (EXAMINE|SELECT) .*",
			  "* 1 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\n* OK [UIDNEXT 2] x\r\n{tag} OK [READ-ONLY] done\r\n"),
		fi.expect(r"\S+ UID FETCH 1 \(UID BODY\.PEEK\[\]\)",
			  "* OK [UIDVALIDITY 6] recreated\r\n* 1 FETCH (UID 1 BODY[] {9}\r\nNEW BYTES)\r\n"
			  "{tag} OK done\r\n"),
		fi.wait_close(5)]
	srv = fi.FakeImap(script, end_timeout=5).start()
	try:
		r, code, _ = _cli_none(srv.port, "--uidvalidity", "5", "body", "INBOX", "1", "--mem")
	finally:
		srv.stop()
	assert r.returncode == 1 and code == "IMAP_ERROR_UIDVALIDITY", r
	assert r.stdout == b""


def test_status_dribbled_a_byte_at_a_time_times_out():
	"""The library level of item 4: no literal, one byte every 0.3 s (never a stall of
	`timeout`): the command's total deadline ends it."""
	line = b"* STATUS INBOX (MESSAGES 4 UIDNEXT 9 UIDVALIDITY 3 UNSEEN 1)\r\n{tag} OK done\r\n"
	script = fi.login_steps(CAPS) + [fi.expect(r"\S+ STATUS .*"),
					 fi.send(line, chunk=1, delay=0.3), fi.wait_close(5)]
	srv = fi.FakeImap(script, end_timeout=5).start()
	try:
		r, code, elapsed = _cli_none(srv.port, "status", "INBOX", timeout_ms=1000)
	finally:
		srv.stop()
	assert r.returncode == 1 and code == "IMAP_ERROR_TIMEOUT", r
	assert elapsed < 1 + 4, elapsed


def test_tls_closed_during_handshake_mount_serves_the_cache(session, mount, tmp_path):
	"""Item 8 at the mount: the server's port answers but closes every connection during
	the TLS handshake (a load balancer whose server restarts): that is an unreachable
	server, so a mount with a cache starts offline and serves it, instead of failing on
	a 'TLS error'."""
	msgs = {1: message("cached one", b"cached body\r\n")}
	s = session(Box(msgs))
	cache = str(tmp_path / "cache")
	m = mount(s.dv, opts=["cache_dir=" + cache])
	inbox = os.path.join(m.mnt, "INBOX")
	(name,) = eml(inbox)
	assert read(os.path.join(inbox, name)) == msgs[1]
	wait_for(lambda: m.stats()["cache_files"] == 1, what="the body in the cache")
	m.stop()
	port = s.srv.port
	s.stop()
	lb = fi.FakeImap([fi.stall(0.3), fi.drop()], port=port, end_timeout=2).start()
	try:
		m2 = mount(s.dv, opts=["cache_dir=" + cache, "timeout=3"])
		assert "offline" in m2.log(), m2.log()
		assert eml(os.path.join(m2.mnt, "INBOX")) == [name]
		assert read(os.path.join(m2.mnt, "INBOX", name)) == msgs[1]
		m2.stop()
	finally:
		lb.stop()
