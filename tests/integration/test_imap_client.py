# SPDX-License-Identifier: GPL-2.0-or-later
"""The IMAP client library (imap/) against a real Dovecot, through tests/imap-cli.

Every operation is checked by its effect on the server, with imaplib (via imapfs_testlib)
as the independent checker, in both layouts ('/' with an empty personal prefix and '.'
with INBOX. plus other/shared namespaces). Also TLS (implicit, STARTTLS, hostname, CA, pin),
the cleartext-credential policy, the trace redaction, deadlines and connection loss.
"""

import base64
import os
import re
import socket
import subprocess
import threading
import time

import pytest

import imapfs_testlib as tl

MSG = (b"From: Alice <alice@example.com>\r\n"
       b"To: Bob <bob@example.com>\r\n"
       b"Subject: %s\r\n"
       b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
       b"Message-ID: <%s@example.com>\r\n"
       b"\r\n"
       b"Hello Bob,\r\n%s\r\n")


def message(i, body=b"line"):
	return MSG % (b"message %d" % i, b"m%d-%d" % (i, time.monotonic_ns()), body)


@pytest.fixture(scope="module", params=["slash", "dot"])
def srv(request, imap_cli):
	"""One Dovecot per layout for this module, with a folder 'Lib' of 5 messages."""
	dv = tl.Dovecot()
	request.addfinalizer(dv.stop)
	dv.start(request.param, corpus_n=0)
	dv.pfx = dv.personal_prefix
	c = dv.imap()
	lib = dv.pfx + "Lib"
	tl.check(c.create(tl.mbox(lib)), "CREATE")
	for i in range(5):
		tl.append(c, lib, message(i, b"x" * (100 * i)), flags=("\\Seen",) if i % 2 else ())
	c.logout()
	dv.cli = imap_cli
	return dv


def run(dv, *args, tls="implicit", user="alice", host="localhost", opts=(), password=None,
	timeout=60, env_extra=None, cafile=True):
	port = dv.port_imaps if tls == "implicit" else dv.port_imap
	cmd = [dv.cli, "--host", host, "--port", str(port), "--tls", tls, "--user", user]
	if cafile:
		cmd += ["--cafile", dv.ca]
	cmd += list(opts) + [str(a) for a in args]
	env = dict(os.environ)
	env["IMAPFS_PASSWORD"] = dv.users[user] if password is None else password
	env.pop("G_MESSAGES_DEBUG", None)
	if env_extra:
		env.update(env_extra)
	return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
			      stderr=subprocess.PIPE, env=env, timeout=timeout)


def ok(r):
	assert r.returncode == 0, "imap-cli failed: %s" % r.stderr.decode(errors="replace")
	assert r.stderr == b"", r.stderr.decode(errors="replace")
	return r.stdout.decode()


def fails(r, code):
	err = r.stderr.decode(errors="replace")
	assert r.returncode == 1, "expected %s, got rc=%d out=%r err=%r" % (code, r.returncode,
									    r.stdout, err)
	lines = err.strip().splitlines()
	assert len(lines) == 1, err
	assert lines[0].startswith("imap-cli: %s: " % code), err
	return lines[0]


def kv(out):
	d = {}
	for line in out.splitlines():
		k, _, v = line.partition(" ")
		d[k] = v
	return d


def fetch_lines(out):
	res = {}
	for line in out.splitlines():
		d = dict(f.split("=", 1) for f in line.split("\t"))
		res[int(d["uid"])] = d
	return res


def uids_of(setstr):
	out = set()
	for part in filter(None, setstr.strip().split(",")):
		a, _, b = part.partition(":")
		out.update(range(int(a), int(b or a) + 1))
	return out


def flags_of(c, box):
	"""{uid: flags} without \\Recent (session-dependent)."""
	return {u: f - {"\\Recent"} for u, f in tl.fetch_flags(c, box).items()}


def new_folder(dv, c, name, n=0):
	full = dv.pfx + name
	tl.check(c.create(tl.mbox(full)), "CREATE")
	uids = [tl.append(c, full, message(i)) for i in range(n)]
	return full, uids


# ---- connection, TLS, auth ------------------------------------------------------------

@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_login_tls_modes(srv, tls):
	assert ok(run(srv, "login", tls=tls)) == "OK\n"
	caps = ok(run(srv, "capability", tls=tls)).split()
	assert "IMAP4REV1" in caps and "MOVE" in caps and "UIDPLUS" in caps


def test_login_by_ip_literal(srv):
	assert ok(run(srv, "login", host="127.0.0.1")) == "OK\n"


def test_hostname_mismatch(srv):
	name = socket.gethostname()
	try:
		addr = socket.gethostbyname(name)
	except OSError:
		pytest.skip("host name does not resolve")
	if addr != "127.0.0.1" or name in ("localhost",):
		pytest.skip("host name %s does not resolve to 127.0.0.1" % name)
	line = fails(run(srv, "login", host=name), "IMAP_ERROR_TLS")
	assert "hostname mismatch" in line


def test_untrusted_ca(srv):
	line = fails(run(srv, "login", cafile=False), "IMAP_ERROR_TLS")
	assert "certificate verify failed: unable to get local issuer certificate" in line


def test_untrusted_ca_starttls(srv):
	line = fails(run(srv, "login", tls="starttls", cafile=False), "IMAP_ERROR_TLS")
	assert "certificate verify failed" in line


def _fingerprint(dv):
	out = subprocess.run(["openssl", "x509", "-in", os.path.join(dv.dir, "server.pem"),
			      "-noout", "-fingerprint", "-sha256"], stdout=subprocess.PIPE,
			     check=True).stdout.decode()
	return out.strip().split("=", 1)[1]


def test_pin(srv):
	fp = _fingerprint(srv)
	assert ok(run(srv, "login", opts=["--fingerprint", "SHA256:" + fp])) == "OK\n"
	assert ok(run(srv, "login", opts=["--fingerprint",
					  "sha256:" + fp.replace(":", "").lower()])) == "OK\n"
	bad = "SHA256:" + "00" * 32
	line = fails(run(srv, "login", opts=["--fingerprint", bad]), "IMAP_ERROR_TLS")
	assert "certificate pin mismatch" in line
	fails(run(srv, "login", opts=["--fingerprint", "SHA256:1234"]), "IMAP_ERROR_INVALID")


def test_bad_password(srv):
	line = fails(run(srv, "login", password="wrong"), "IMAP_ERROR_AUTH")
	assert "Authentication failed" in line


def test_cleartext_policy(srv):
	# loopback by name and address: allowed with --tls none
	assert ok(run(srv, "login", tls="none", host="127.0.0.1")) == "OK\n"
	name = socket.gethostname()
	try:
		addr = socket.gethostbyname(name)
	except OSError:
		addr = None
	if addr == "127.0.0.1" and name != "localhost":
		# a host name that is not a loopback name: refused without --allow-insecure
		fails(run(srv, "login", tls="none", host=name), "IMAP_ERROR_INSECURE")
		assert ok(run(srv, "login", tls="none", host=name,
			      opts=["--allow-insecure"])) == "OK\n"


def test_trace_never_holds_password(srv, tmp_path):
	for tls in ("implicit", "starttls"):
		trace = tmp_path / ("trace-" + tls)
		ok(run(srv, "list", tls=tls, opts=["--trace", str(trace)]))
		text = trace.read_bytes()
		pw = srv.users["alice"].encode()
		plain = base64.b64encode(b"\0alice\0" + pw)
		assert b"AUTHENTICATE" in text or b"LOGIN" in text
		assert pw not in text and plain not in text
		assert b"<redacted>" in text
	# a failed login is traced without the (wrong) password as well
	trace = tmp_path / "trace-bad"
	run(srv, "login", password="s3cr3t-wrong", opts=["--trace", str(trace)])
	assert b"s3cr3t-wrong" not in trace.read_bytes()


def test_connect_refused():
	s = socket.socket()
	s.bind(("127.0.0.1", 0))
	port = s.getsockname()[1]
	s.close()
	cli = tl.imap_cli_bin()
	r = subprocess.run([cli, "--host", "127.0.0.1", "--port", str(port), "--user", "x", "login"],
			   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
			   env=dict(os.environ, IMAPFS_PASSWORD="x"), timeout=30)
	assert r.returncode == 1 and r.stderr.startswith(b"imap-cli: IMAP_ERROR_CONNECT: ")


def _silent_server(script):
	"""A one-connection TCP server on 127.0.0.1 running @script(conn) in a thread."""
	srv = socket.socket()
	srv.bind(("127.0.0.1", 0))
	srv.listen(1)

	def serve():
		try:
			c, _ = srv.accept()
		except OSError:
			return
		srv.close()  # a retry must not reach this script again
		try:
			script(c)
		except OSError:
			pass
		finally:
			c.close()

	t = threading.Thread(target=serve, daemon=True)
	t.start()
	return srv, t


def _cli_raw(port, *args, timeout_ms=1500):
	return subprocess.run([tl.imap_cli_bin(), "--host", "127.0.0.1", "--port", str(port),
			       "--tls", "none", "--timeout", str(timeout_ms), "--user", "alice"] +
			      list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
			      env=dict(os.environ, IMAPFS_PASSWORD="pw"), timeout=30)


def test_stalled_greeting_times_out():
	srv, t = _silent_server(lambda c: time.sleep(5))
	t0 = time.monotonic()
	r = _cli_raw(srv.getsockname()[1], "login")
	took = time.monotonic() - t0
	srv.close()
	assert r.returncode == 1 and b"IMAP_ERROR_TIMEOUT" in r.stderr, r.stderr
	assert 1.0 < took < 4.5


def _login_script(c, after):
	f = c.makefile("rb")
	c.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR UIDPLUS] fake\r\n")
	tag = f.readline().split()[0]
	c.sendall(tag + b" OK [CAPABILITY IMAP4rev1 UIDPLUS] in\r\n")
	after(c, f)


def test_stalled_command_times_out():
	def after(c, f):
		f.readline()  # the LIST
		time.sleep(5)

	srv, t = _silent_server(lambda c: _login_script(c, after))
	t0 = time.monotonic()
	r = _cli_raw(srv.getsockname()[1], "list", '""', "*")
	took = time.monotonic() - t0
	srv.close()
	assert r.returncode == 1 and b"IMAP_ERROR_TIMEOUT" in r.stderr, r.stderr
	assert took < 4.5


def test_drop_mid_literal():
	def after(c, f):
		tag = f.readline().split()[0]  # EXAMINE
		c.sendall(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\n" + tag + b" OK [READ-ONLY] ok\r\n")
		f.readline()  # UID FETCH
		c.sendall(b"* 1 FETCH (UID 1 BODY[] {100000}\r\n" + b"x" * 5000)
		time.sleep(0.2)
		c.shutdown(socket.SHUT_RDWR)

	srv, t = _silent_server(lambda c: _login_script(c, after))
	r = _cli_raw(srv.getsockname()[1], "body", "INBOX", "1")
	srv.close()
	assert r.returncode == 1, r.stderr
	assert b"IMAP_ERROR_DISCONNECTED" in r.stderr and b"literal" in r.stderr, r.stderr


def test_bye_during_command():
	def after(c, f):
		f.readline()
		c.sendall(b"* BYE server shutting down\r\n")
		c.shutdown(socket.SHUT_RDWR)

	srv, t = _silent_server(lambda c: _login_script(c, after))
	r = _cli_raw(srv.getsockname()[1], "status", "INBOX")
	srv.close()
	assert r.returncode == 1
	assert b"IMAP_ERROR_DISCONNECTED" in r.stderr and b"shutting down" in r.stderr, r.stderr


def test_starttls_not_offered():
	def script(c):
		f = c.makefile("rb")
		c.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] no tls here\r\n")
		f.readline()

	srv, t = _silent_server(script)
	r = subprocess.run([tl.imap_cli_bin(), "--host", "127.0.0.1", "--port",
			    str(srv.getsockname()[1]), "--tls", "starttls", "--user", "a", "login"],
			   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
			   env=dict(os.environ, IMAPFS_PASSWORD="pw"), timeout=30)
	srv.close()
	assert r.returncode == 1 and b"IMAP_ERROR_TLS_REQUIRED" in r.stderr, r.stderr


def test_preauth_when_tls_required():
	def script(c):
		c.sendall(b"* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome\r\n")
		time.sleep(1)

	srv, t = _silent_server(script)
	r = subprocess.run([tl.imap_cli_bin(), "--host", "127.0.0.1", "--port",
			    str(srv.getsockname()[1]), "--tls", "starttls", "--user", "a", "login"],
			   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
			   env=dict(os.environ, IMAPFS_PASSWORD="pw"), timeout=30)
	srv.close()
	assert r.returncode == 1 and b"IMAP_ERROR_TLS_REQUIRED" in r.stderr, r.stderr


def test_login_fallback_and_logindisabled():
	seen = {}

	def script(c):
		f = c.makefile("rb")
		c.sendall(b"* OK [CAPABILITY IMAP4rev1] old server\r\n")
		line = f.readline()
		seen["login"] = line
		tag = line.split()[0]
		c.sendall(tag + b" OK [CAPABILITY IMAP4rev1] hi\r\n")
		line = f.readline()
		tag = line.split()[0]
		c.sendall(b"* BYE bye\r\n" + tag + b" OK bye\r\n")

	srv, t = _silent_server(script)
	r = _cli_raw(srv.getsockname()[1], "login")
	srv.close()
	t.join(5)
	assert r.returncode == 0, r.stderr
	assert seen["login"] == b'A1 LOGIN alice "pw"\r\n'

	def script2(c):
		f = c.makefile("rb")
		c.sendall(b"* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] no\r\n")
		seen["after"] = f.readline()

	srv, t = _silent_server(script2)
	r = _cli_raw(srv.getsockname()[1], "login")
	srv.close()
	assert r.returncode == 1 and b"IMAP_ERROR_AUTH" in r.stderr, r.stderr
	assert b"LOGIN" not in seen.get("after", b"")


# ---- reading: nothing changes on the server ----------------------------------------

def test_namespace(srv):
	c = srv.imap()
	ns = tl.namespaces(c)
	out = ok(run(srv, "namespace"))
	got = {}
	for line in out.splitlines():
		kind, prefix, delim = line.split("\t")
		got.setdefault(kind, []).append((prefix, None if delim == "NIL" else delim))
	for kind in ("personal", "other", "shared"):
		assert got.get(kind, []) == ns[kind]


def test_list_all(srv):
	c = srv.imap()
	expect = {f.name: f for f in tl.list_all_folders(c)}
	out = ok(run(srv, "list"))
	got = {}
	for line in out.splitlines():
		name, delim, attrs = line.split("\t")[:3]
		got[name] = (delim, attrs.split())
	for name, f in expect.items():
		if "\\NonExistent" in f.flags:
			continue
		assert name in got, "%s missing from %s" % (name, sorted(got))
		assert got[name][0] == f.delimiter
		if "\\NonExistent" in got[name][1] or "\\Noselect" in f.flags:
			assert "\\NonExistent" in got[name][1] or "\\Noselect" in got[name][1]
			continue
		for a in ("\\Noselect", "\\Sent", "\\Trash", "\\Drafts", "\\Junk"):
			assert (a.lower() in [x.lower() for x in f.flags]) == \
				(a.lower() in [x.lower() for x in got[name][1]]), (name, f.flags, got[name])
	assert srv.pfx + "Lib" in got and "INBOX" in got


def test_list_status_and_status(srv):
	c = srv.imap()
	lib = srv.pfx + "Lib"
	st = tl.status(c, lib)
	out = ok(run(srv, "list", "--status"))
	line = [x for x in out.splitlines() if x.split("\t")[0] == lib][0]
	fields = dict(f.split("=") for f in line.split("\t")[3].split())
	assert int(fields["messages"]) == st["MESSAGES"] == 5
	assert int(fields["uidnext"]) == st["UIDNEXT"]
	assert int(fields["uidvalidity"]) == st["UIDVALIDITY"]
	assert int(fields["unseen"]) == st["UNSEEN"]
	s = kv(ok(run(srv, "status", lib)))
	assert int(s["messages"]) == 5 and int(s["uidvalidity"]) == st["UIDVALIDITY"]
	assert int(s["unseen"]) == st["UNSEEN"] and int(s["uidnext"]) == st["UIDNEXT"]
	fails(run(srv, "status", srv.pfx + "NoSuchFolder"), "IMAP_ERROR_NONEXISTENT")


def test_examine(srv):
	c = srv.imap()
	lib = srv.pfx + "Lib"
	st = tl.status(c, lib)
	e = kv(ok(run(srv, "examine", lib)))
	assert int(e["uidvalidity"]) == st["UIDVALIDITY"]
	assert int(e["uidnext"]) == st["UIDNEXT"]
	assert int(e["exists"]) == 5 and e["read_only"] == "1"
	assert int(e["highestmodseq"]) > 0
	assert "\\Seen" in e["flags"]
	fails(run(srv, "examine", srv.pfx + "NoSuchFolder"), "IMAP_ERROR_NONEXISTENT")


def test_fetch_matches_imaplib_and_sets_no_flags(srv):
	c = srv.imap()
	lib = srv.pfx + "Lib"
	before = tl.fetch_messages(c, lib)
	out = ok(run(srv, "fetch", lib, "1:*", "flags", "size", "internaldate", "envelope",
		     "modseq", "header", "bodystructure"))
	got = fetch_lines(out)
	assert sorted(got) == [m.uid for m in before]
	for m in before:
		g = got[m.uid]
		assert set(g["flags"].split()) - {"\\Recent"} == set(m.flags) - {"\\Recent"}
		assert int(g["size"]) == m.size
		assert g["subject"].startswith("message ")
		assert g["from"] == "alice@example.com" and g["to"] == "bob@example.com"
		assert int(g["modseq"]) > 0 and int(g["header_len"]) > 50
		assert g["bodystructure"].startswith('("text" "plain"')
	# bodies, whole and ranges, stream and memory, equal imaplib's; never set \Seen
	for m in before:
		body = tl.fetch_body(c, lib, m.uid)
		r = run(srv, "body", lib, m.uid)
		assert r.returncode == 0 and r.stdout == body
		assert run(srv, "body", lib, m.uid, "--mem").stdout == body
		assert run(srv, "body", lib, m.uid, 10, 25).stdout == body[10:35]
		assert run(srv, "body", lib, m.uid, len(body) - 3, 100).stdout == body[-3:]
	after = tl.fetch_messages(c, lib)
	assert [(m.uid, set(m.flags) - {"\\Recent"}) for m in after] == \
		[(m.uid, set(m.flags) - {"\\Recent"}) for m in before]
	fails(run(srv, "body", lib, 9999), "IMAP_ERROR_EXPUNGEISSUED")


def test_search(srv):
	c = srv.imap()
	lib = srv.pfx + "Lib"
	msgs = tl.fetch_messages(c, lib)
	seen = {m.uid for m in msgs if "\\Seen" in m.flags}
	assert uids_of(ok(run(srv, "search", lib, "all"))) == {m.uid for m in msgs}
	assert uids_of(ok(run(srv, "search", lib, "seen"))) == seen
	assert uids_of(ok(run(srv, "search", lib, "unseen"))) == {m.uid for m in msgs} - seen
	assert uids_of(ok(run(srv, "search", lib, "subject", "message 3"))) == {msgs[3].uid}
	assert uids_of(ok(run(srv, "search", lib, "subject", "no such thing"))) == set()
	assert uids_of(ok(run(srv, "search", lib, "larger", "300", "seen"))) == \
		{m.uid for m in msgs if m.size > 300} & seen
	assert uids_of(ok(run(srv, "search", lib, "subject", "Grüße"))) == set()
	# HEADER: by Message-ID, as move.c finds a copy without COPYUID
	typ, data = c.uid("FETCH", str(msgs[2].uid), "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
	mid = re.search(rb"<[^>]+>", data[0][1]).group(0).decode()
	assert uids_of(ok(run(srv, "search", lib, "header", "Message-ID", mid))) == {msgs[2].uid}
	assert uids_of(ok(run(srv, "search", lib, "header", "Message-ID", "<nope@x>"))) == set()


def test_parallel_workers_share_the_pool(srv):
	out = kv(ok(run(srv, "parallel", srv.pfx + "Lib", 6, 4, opts=["--max-conns", "2"])))
	assert out["failed"] == "0" and out["fetches"] == "20"


@pytest.mark.parametrize("conns", [1, 3])
def test_parallel_mixed_commands_pipeline_correctly(srv, conns):
	"""16 threads mixing streamed and in-memory bodies, STATUS, FETCH and SEARCH over one
	pool: every answer reaches the command that asked for it."""
	out = kv(ok(run(srv, "parallel-mix", srv.pfx + "Lib", 16, 20,
			opts=["--max-conns", str(conns)])))
	assert out["failed"] == "0" and out["fetches"] == "100"


# ---- writing: checked by effect ------------------------------------------------------

def test_append(srv, tmp_path):
	c = srv.imap()
	box, _ = new_folder(srv, c, "App")
	f = tmp_path / "m.eml"
	data = message(1, b"appended")
	f.write_bytes(data)
	out = kv(ok(run(srv, "append", box, f, "\\Flagged", "$Work", "--date=1700000000")))
	st = tl.status(c, box)
	assert int(out["uidvalidity"]) == st["UIDVALIDITY"]
	uid = int(out["uid"])
	msgs = tl.fetch_messages(c, box, body=True)
	assert [m.uid for m in msgs] == [uid]
	assert msgs[0].body == data
	assert set(msgs[0].flags) >= {"\\Flagged", "$Work"}
	assert "14-Nov-2023" in msgs[0].internaldate
	fails(run(srv, "append", box, f, "bad flag"), "IMAP_ERROR_INVALID")
	fails(run(srv, "append", srv.pfx + "Nope", f), "IMAP_ERROR_NONEXISTENT")
	assert len(tl.fetch_messages(c, box)) == 1


def test_append_large_and_stream_body(srv, tmp_path):
	c = srv.imap()
	box, _ = new_folder(srv, c, "Big")
	body = b"".join(b"%08d %s\r\n" % (i, b"y" * 90) for i in range(55000))
	data = MSG % (b"big", b"big", body)
	f = tmp_path / "big.eml"
	f.write_bytes(data)
	out = kv(ok(run(srv, "append", box, f)))
	uid = int(out["uid"])
	r = run(srv, "body", box, uid, opts=["--stats"])
	assert r.returncode == 0 and r.stdout == data
	stats = dict(x.split("=") for x in r.stderr.decode().split()[1:])
	assert int(stats["body_bytes"]) == len(data)
	assert tl.fetch_body(c, box, uid) == data
	assert flags_of(c, box)[uid] == set()


def test_store(srv):
	c = srv.imap()
	box, uids = new_folder(srv, c, "Flags", 3)
	ok(run(srv, "store", box, "%d:%d" % (uids[0], uids[1]), "+", "\\Flagged", "$Label1"))
	fl = flags_of(c, box)
	assert fl[uids[0]] == fl[uids[1]] == {"\\Flagged", "$Label1"} and fl[uids[2]] == set()
	ok(run(srv, "store", box, uids[0], "-", "$Label1"))
	assert flags_of(c, box)[uids[0]] == {"\\Flagged"}
	ok(run(srv, "store", box, uids[2], "=", "\\Seen", "\\Answered"))
	assert flags_of(c, box)[uids[2]] == {"\\Seen", "\\Answered"}
	ok(run(srv, "store", box, uids[2], "="))
	assert flags_of(c, box)[uids[2]] == set()
	for bad in ("has space", "\\Recent", "(x", "\\Bogus", "a]b"):
		fails(run(srv, "store", box, uids[1], "+", bad), "IMAP_ERROR_INVALID")
	assert flags_of(c, box)[uids[1]] == {"\\Flagged", "$Label1"}


def test_store_unchangedsince(srv):
	c = srv.imap()
	box, uids = new_folder(srv, c, "Cond", 2)
	ok(run(srv, "store", box, uids[0], "+", "$A"))
	out = ok(run(srv, "store", box, "%d:%d" % (uids[0], uids[1]), "+", "$B",
		     "--unchangedsince=1"))
	assert "modified" in out
	assert uids[0] in uids_of(kv(out)["modified"])


def test_copy(srv):
	c = srv.imap()
	src, uids = new_folder(srv, c, "CopySrc", 3)
	dst, _ = new_folder(srv, c, "CopyDst", 0)
	out = kv(ok(run(srv, "copy", src, "%d,%d" % (uids[0], uids[2]), dst)))
	assert int(out["uidvalidity"]) == tl.status(c, dst)["UIDVALIDITY"]
	dmsgs = tl.fetch_messages(c, dst, body=True)
	assert {m.uid for m in dmsgs} == uids_of(out["uids"])
	assert sorted(m.body for m in dmsgs) == sorted(tl.fetch_body(c, src, u)
						       for u in (uids[0], uids[2]))
	assert len(tl.fetch_messages(c, src)) == 3


def test_move_loses_nothing(srv):
	c = srv.imap()
	src, uids = new_folder(srv, c, "MoveSrc", 4)
	dst, _ = new_folder(srv, c, "MoveDst", 0)
	bodies = {u: tl.fetch_body(c, src, u) for u in uids}
	out = kv(ok(run(srv, "move", src, "%d:%d" % (uids[1], uids[2]), dst)))
	left = tl.fetch_messages(c, src)
	assert [m.uid for m in left] == [uids[0], uids[3]]
	moved = tl.fetch_messages(c, dst, body=True)
	assert sorted(m.body for m in moved) == sorted([bodies[uids[1]], bodies[uids[2]]])
	assert {m.uid for m in moved} == uids_of(out["uids"])
	fails(run(srv, "move", src, uids[0], srv.pfx + "NoSuchDest"), "IMAP_ERROR_NONEXISTENT")
	assert [m.uid for m in tl.fetch_messages(c, src)] == [uids[0], uids[3]]


def test_expunge_only_given_uids(srv):
	c = srv.imap()
	box, uids = new_folder(srv, c, "Exp", 3)
	# another client's \Deleted message must survive our UID EXPUNGE
	tl.select(c, box, readonly=False)
	tl.check(c.uid("STORE", "%d,%d" % (uids[0], uids[1]), "+FLAGS.SILENT", "(\\Deleted)"))
	c.unselect()  # not CLOSE, which would expunge
	ok(run(srv, "expunge", box, uids[0]))
	left = tl.fetch_messages(c, box)
	assert [m.uid for m in left] == [uids[1], uids[2]]
	assert "\\Deleted" in left[0].flags


def test_create_rename_delete(srv):
	c = srv.imap()
	d = srv.delimiter
	top = srv.pfx + "Ärger"
	sub = top + d + "Grüße ✓"
	ok(run(srv, "create", sub))
	names = {f.name for f in tl.list_all_folders(c)}
	assert sub in names
	fails(run(srv, "create", sub), "IMAP_ERROR_ALREADYEXISTS")
	new = top + d + "Ünïcödé & co"
	ok(run(srv, "rename", sub, new))
	names = {f.name for f in tl.list_all_folders(c)}
	assert new in names and sub not in names
	listed = ok(run(srv, "list")).splitlines()
	assert any(line.split("\t")[0] == new for line in listed)
	ok(run(srv, "delete", new))
	assert new not in {f.name for f in tl.list_all_folders(c)}
	fails(run(srv, "delete", new), "IMAP_ERROR_NONEXISTENT")
	fails(run(srv, "rename", "INBOX", srv.pfx + "X"), "IMAP_ERROR_INVALID")


def test_quota(srv):
	out = kv(ok(run(srv, "quota", "INBOX")))
	assert "storage" in out
	used, limit = out["storage"].split()
	assert int(used) >= 0 and (limit == "none" or int(limit) > 0)


def test_examine_qresync_reports_changes(srv):
	c = srv.imap()
	box, uids = new_folder(srv, c, "Qr", 3)
	e = kv(ok(run(srv, "examine", box)))
	uv, ms = e["uidvalidity"], e["highestmodseq"]
	tl.select(c, box, readonly=False)
	tl.check(c.uid("STORE", str(uids[0]), "+FLAGS.SILENT", "(\\Flagged)"))
	tl.check(c.uid("STORE", str(uids[1]), "+FLAGS.SILENT", "(\\Deleted)"))
	tl.check(c.expunge())
	c.close()
	out = ok(run(srv, "examine", box, uv, ms))
	assert "vanished %d" % uids[1] in out.splitlines()
	changed = [l for l in out.splitlines() if l.startswith("changed ")]
	assert len(changed) == 1 and "uid=%d\t" % uids[0] in changed[0] + "\t"
	assert "\\Flagged" in changed[0]


def test_idle_reports_changes(srv):
	c = srv.imap()
	box, uids = new_folder(srv, c, "Idle", 2)
	p = subprocess.Popen([srv.cli, "--host", "localhost", "--port", str(srv.port_imaps),
			      "--cafile", srv.ca, "--user", "alice", "idle", box, "6"],
			     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
			     env=dict(os.environ, IMAPFS_PASSWORD=srv.users["alice"]))
	try:
		assert p.stdout.readline() == b"idling\n"
		time.sleep(1.5)
		new = tl.append(c, box, message(9))
		tl.select(c, box, readonly=False)
		tl.check(c.uid("STORE", str(uids[0]), "+FLAGS.SILENT", "(\\Flagged)"))
		tl.check(c.uid("STORE", str(uids[1]), "+FLAGS.SILENT", "(\\Deleted)"))
		tl.check(c.expunge())
		c.close()
		out, err = p.communicate(timeout=30)
	finally:
		if p.poll() is None:
			p.kill()
			p.wait()
	assert p.returncode == 0, err
	lines = out.decode().splitlines()
	assert any(l.startswith("exists ") for l in lines), lines
	assert any(l.startswith("flags %d " % uids[0]) and "\\Flagged" in l for l in lines), lines
	assert "expunged %d" % uids[1] in lines or "expunged 0" in lines, lines
	assert new


def test_idle_reports_lost_connection():
	def script(c):
		f = c.makefile("rb")
		c.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR IDLE] fake\r\n")
		tag = f.readline().split()[0]
		c.sendall(tag + b" OK in\r\n")
		tag = f.readline().split()[0]  # CAPABILITY
		c.sendall(b"* CAPABILITY IMAP4rev1 IDLE\r\n" + tag + b" OK done\r\n")
		tag = f.readline().split()[0]  # EXAMINE
		c.sendall(b"* 2 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n" + tag + b" OK [READ-ONLY] ok\r\n")
		assert f.readline().split()[1] == b"IDLE"
		c.sendall(b"+ idling\r\n* 3 EXISTS\r\n* 1 EXPUNGE\r\n"
			  b"* 2 FETCH (UID 9 FLAGS (\\Seen))\r\n")
		time.sleep(0.5)
		c.shutdown(socket.SHUT_RDWR)

	lsock = socket.socket()
	lsock.bind(("127.0.0.1", 0))
	lsock.listen(4)
	port = lsock.getsockname()[1]

	def serve():
		# the pool's login connection, then the IDLE connection
		for i in range(2):
			try:
				c, _ = lsock.accept()
			except OSError:
				return
			if i == 0:
				threading.Thread(target=lambda c=c: (time.sleep(3), c.close()),
						 daemon=True).start()
				f = c.makefile("rb")
				c.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR IDLE] x\r\n")
				tag = f.readline().split()[0]
				c.sendall(tag + b" OK [CAPABILITY IMAP4rev1 IDLE] in\r\n")
				continue
			lsock.close()
			try:
				script(c)
			finally:
				c.close()

	t = threading.Thread(target=serve, daemon=True)
	t.start()
	r = _cli_raw(port, "idle", "INBOX", "2", timeout_ms=3000)
	lsock.close()
	assert r.returncode == 0, r.stderr
	lines = r.stdout.decode().splitlines()
	assert lines[0] == "idling"
	assert lines[1:5] == ["exists 3", "expunged 0", "flags 9 \\Seen", "lost"], lines


# ---- the connection's protocol logic against scripted servers -------------------------

def _serve_once(script):
	"""Like _silent_server, returning (port, thread, result dict) for assertions."""
	res = {}
	srv, t = _silent_server(lambda c: script(c, res))
	return srv, t, res


def _greet_login(c, f, caps=b"IMAP4rev1 AUTH=PLAIN SASL-IR UIDPLUS"):
	c.sendall(b"* OK [CAPABILITY " + caps + b"] fake\r\n")
	tag = f.readline().split()[0]
	c.sendall(tag + b" OK [CAPABILITY " + caps + b"] in\r\n")


def test_synchronizing_literal_waits_for_continuation(tmp_path):
	data = b"Subject: x\r\n\r\nhello\r\n"
	msg = tmp_path / "m.eml"
	msg.write_bytes(data)

	def script(c, res):
		f = c.makefile("rb")
		_greet_login(c, f)  # no LITERAL+
		line = f.readline()
		res["line"] = line
		c.settimeout(0.5)
		try:
			res["early"] = c.recv(100)  # nothing may come before "+"
		except socket.timeout:
			res["early"] = b""
		c.settimeout(None)
		c.sendall(b"+ go ahead\r\n")
		res["literal"] = f.read(len(data) + 2)
		tag = line.split()[0]
		c.sendall(tag + b" OK [APPENDUID 7 42] done\r\n")
		f.readline()

	srv, t, res = _serve_once(script)
	r = _cli_raw(srv.getsockname()[1], "append", "INBOX", str(msg), "\\Seen")
	t.join(5)
	assert r.returncode == 0, r.stderr
	assert r.stdout == b"uidvalidity 7\nuid 42\n"
	assert res["line"] == b'A2 APPEND "INBOX" (\\Seen) {%d}\r\n' % len(data)
	assert res["early"] == b""
	assert res["literal"] == data + b"\r\n"


def test_rejected_literal_ends_the_command(tmp_path):
	msg = tmp_path / "m.eml"
	msg.write_bytes(b"Subject: x\r\n\r\nhello\r\n")

	def script(c, res):
		f = c.makefile("rb")
		_greet_login(c, f)
		tag = f.readline().split()[0]
		c.sendall(tag + b" NO [TRYCREATE] no such mailbox\r\n")
		res["next"] = f.readline()

	srv, t, res = _serve_once(script)
	r = _cli_raw(srv.getsockname()[1], "append", "Nope", str(msg))
	t.join(5)
	assert r.returncode == 1 and b"IMAP_ERROR_NONEXISTENT" in r.stderr, r.stderr
	assert res["next"].split()[1] == b"LOGOUT"  # the literal was never sent


def test_server_not_reading_times_out(tmp_path):
	msg = tmp_path / "big.eml"
	msg.write_bytes(b"Subject: x\r\n\r\n" + b"z" * (8 << 20))

	def script(c, res):
		f = c.makefile("rb")
		_greet_login(c, f, b"IMAP4rev1 AUTH=PLAIN SASL-IR LITERAL+")
		time.sleep(6)  # never reads the APPEND

	srv, t, res = _serve_once(script)
	t0 = time.monotonic()
	r = _cli_raw(srv.getsockname()[1], "append", "INBOX", str(msg))
	assert r.returncode == 1 and b"IMAP_ERROR_TIMEOUT" in r.stderr, r.stderr
	assert time.monotonic() - t0 < 5


def test_unsolicited_data_during_fetch():
	def script(c, res):
		f = c.makefile("rb")
		_greet_login(c, f)
		tag = f.readline().split()[0]  # EXAMINE
		c.sendall(b"* 3 EXISTS\r\n* OK [UIDVALIDITY 9] x\r\n" + tag + b" OK [READ-ONLY] ok\r\n")
		line = f.readline()
		res["fetch"] = line
		tag = line.split()[0]
		c.sendall(b"* 1 FETCH (UID 10 FLAGS (\\Seen))\r\n"
			  b"* 3 EXPUNGE\r\n"
			  b"* 1 FETCH (FLAGS (\\Deleted))\r\n"
			  b"* 2 FETCH (UID 11 FLAGS ())\r\n"
			  b"* 5 FETCH (UID 99 FLAGS (\\Flagged))\r\n"
			  b"* 4 EXISTS\r\n" + tag + b" OK done\r\n")
		f.readline()

	srv, t, res = _serve_once(script)
	r = _cli_raw(srv.getsockname()[1], "fetch", "INBOX", "10:11", "flags")
	t.join(5)
	assert r.returncode == 0, r.stderr
	assert res["fetch"] == b"A3 UID FETCH 10:11 (UID FLAGS)\r\n"
	assert r.stdout.decode().splitlines() == ["uid=10\tflags=\\Seen", "uid=11\tflags="]


def test_literal_over_the_limit_is_refused():
	def script(c, res):
		f = c.makefile("rb")
		_greet_login(c, f)
		tag = f.readline().split()[0]
		c.sendall(b"* LIST () \"/\" {4000000000}\r\n" + b"x" * 1000)
		time.sleep(2)

	srv, t, res = _serve_once(script)
	r = _cli_raw(srv.getsockname()[1], "list", "", "*")
	assert r.returncode == 1, r.stderr
	assert b"IMAP_ERROR_LIMIT" in r.stderr or b"IMAP_ERROR_PROTOCOL" in r.stderr, r.stderr


def test_plaintext_injected_after_starttls_is_discarded(srv):
	"""The server (a MITM) appends fake capabilities right after the STARTTLS OK; the client
	must drop them and ask again inside TLS."""
	import ssl
	ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
	ctx.load_cert_chain(os.path.join(srv.dir, "server.pem"), os.path.join(srv.dir, "server.key"))

	def script(c, res):
		f = c.makefile("rb")
		c.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi\r\n")
		tag = f.readline().split()[0]
		c.sendall(tag + b" OK begin TLS\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n")
		s = ctx.wrap_socket(c, server_side=True)
		tf = s.makefile("rb")
		line = tf.readline()
		res["first"] = line
		tag = line.split()[0]
		s.sendall(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK caps\r\n")
		line = tf.readline()
		res["login"] = line
		s.sendall(line.split()[0] + b" OK [CAPABILITY IMAP4rev1] in\r\n")
		line = tf.readline()
		s.sendall(b"* BYE bye\r\n" + line.split()[0] + b" OK bye\r\n")

	lsrv, t, res = _serve_once(script)
	r = subprocess.run([tl.imap_cli_bin(), "--host", "localhost", "--port",
			    str(lsrv.getsockname()[1]), "--tls", "starttls", "--cafile", srv.ca,
			    "--user", "alice", "login"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
			   env=dict(os.environ, IMAPFS_PASSWORD="pw"), timeout=30)
	t.join(5)
	assert r.returncode == 0, r.stderr
	assert res["first"].split()[1] == b"CAPABILITY"
	# the injected AUTH=PLAIN was not believed: the real caps have none, so LOGIN is used
	assert res["login"] == b'A3 LOGIN alice "pw"\r\n'


def test_uidvalidity_checked(srv):
	lib = srv.pfx + "Lib"
	uv = kv(ok(run(srv, "status", lib)))["uidvalidity"]
	assert ok(run(srv, "search", lib, "all", opts=["--uidvalidity", uv])).strip()
	for cmd in (["fetch", lib, "1:*", "flags"], ["body", lib, "1"], ["search", lib, "all"],
		    ["store", lib, "1", "+", "$X"], ["expunge", lib, "1"]):
		fails(run(srv, *cmd, opts=["--uidvalidity", str(int(uv) + 1)]),
		      "IMAP_ERROR_UIDVALIDITY")
	c = srv.imap()
	assert all("$X" not in f for f in flags_of(c, lib).values())
	assert len(tl.fetch_messages(c, lib)) == 5


def test_cancel_abandons_a_slow_fetch():
	def script(c, res):
		f = c.makefile("rb")
		_greet_login(c, f)
		tag = f.readline().split()[0]  # EXAMINE
		c.sendall(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 9] x\r\n" + tag + b" OK [READ-ONLY] ok\r\n")
		f.readline()
		c.sendall(b"* 1 FETCH (UID 1 BODY[] {1000000}\r\n")
		for _ in range(40):
			c.sendall(b"y" * 1000)
			time.sleep(0.1)

	srv, t, res = _serve_once(script)
	t0 = time.monotonic()
	r = subprocess.run([tl.imap_cli_bin(), "--host", "127.0.0.1", "--port",
			    str(srv.getsockname()[1]), "--tls", "none", "--timeout", "3000",
			    "--cancel-after", "800", "--user", "alice", "body", "INBOX", "1"],
			   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
			   env=dict(os.environ, IMAPFS_PASSWORD="pw"), timeout=30)
	took = time.monotonic() - t0
	assert r.returncode == 1 and b"IMAP_ERROR_CANCELLED" in r.stderr, r.stderr
	assert took < 4.0  # cancel at 0.8 s, then at most the 2 s LOGOUT grace


def test_idempotent_command_retried_after_drop():
	lsock = socket.socket()
	lsock.bind(("127.0.0.1", 0))
	lsock.listen(4)
	seen = []

	def serve():
		for i in range(2):
			c, _ = lsock.accept()
			f = c.makefile("rb")
			_greet_login(c, f)
			line = f.readline()
			seen.append(line)
			if i == 0:
				c.shutdown(socket.SHUT_RDWR)  # drop while STATUS is in flight
				c.close()
				continue
			tag = line.split()[0]
			c.sendall(b"* STATUS INBOX (MESSAGES 3 UIDNEXT 9)\r\n" + tag + b" OK done\r\n")
			f.readline()
			c.close()

	t = threading.Thread(target=serve, daemon=True)
	t.start()
	r = _cli_raw(lsock.getsockname()[1], "--stats", "status", "INBOX")
	t.join(5)
	lsock.close()
	assert r.returncode == 0, r.stderr
	assert r.stdout.decode().splitlines()[:2] == ["messages 3", "uidnext 9"]
	assert len(seen) == 2 and all(b"STATUS" in s for s in seen)
	assert b"reconnects=1" in r.stderr


def test_non_idempotent_command_not_retried(tmp_path):
	msg = tmp_path / "m.eml"
	msg.write_bytes(b"Subject: x\r\n\r\nhello\r\n")
	lsock = socket.socket()
	lsock.bind(("127.0.0.1", 0))
	lsock.listen(4)
	seen = []

	def serve():
		lsock.settimeout(5)
		try:
			while True:
				c, _ = lsock.accept()
				f = c.makefile("rb")
				_greet_login(c, f, b"IMAP4rev1 AUTH=PLAIN SASL-IR LITERAL+")
				line = f.readline()
				seen.append(line)
				c.shutdown(socket.SHUT_RDWR)
				c.close()
		except OSError:
			pass

	t = threading.Thread(target=serve, daemon=True)
	t.start()
	r = _cli_raw(lsock.getsockname()[1], "append", "INBOX", str(msg))
	lsock.close()
	assert r.returncode == 1 and b"IMAP_ERROR_DISCONNECTED" in r.stderr, r.stderr
	assert len([s for s in seen if b"APPEND" in s]) == 1


def test_move_without_move_capability():
	"""COPY, then \\Deleted and UID EXPUNGE of exactly the moved UIDs, in that order."""
	def script(c, res):
		f = c.makefile("rb")
		_greet_login(c, f, b"IMAP4rev1 AUTH=PLAIN SASL-IR UIDPLUS")
		res["cmds"] = []
		answers = [
			b"* 3 EXISTS\r\n* OK [UIDVALIDITY 9] x\r\n{tag} OK [READ-WRITE] ok\r\n",
			b"{tag} OK [COPYUID 77 4:5 20:21] copied\r\n",
			b"{tag} OK stored\r\n",
			b"* 2 EXPUNGE\r\n* 2 EXPUNGE\r\n{tag} OK expunged\r\n",
		]
		for a in answers:
			line = f.readline()
			res["cmds"].append(line.split(b" ", 1)[1])
			c.sendall(a.replace(b"{tag}", line.split()[0]))
		f.readline()

	srv, t, res = _serve_once(script)
	r = _cli_raw(srv.getsockname()[1], "move", "INBOX", "4:5", "Archive")
	t.join(5)
	assert r.returncode == 0, r.stderr
	assert r.stdout == b"uidvalidity 77\nuids 20:21\n"
	assert res["cmds"] == [b'SELECT "INBOX"\r\n', b'UID COPY 4:5 "Archive"\r\n',
			       b"UID STORE 4:5 +FLAGS.SILENT (\\Deleted)\r\n", b"UID EXPUNGE 4:5\r\n"]


def test_move_without_move_or_uidplus_keeps_the_original():
	def script(c, res):
		f = c.makefile("rb")
		_greet_login(c, f, b"IMAP4rev1 AUTH=PLAIN SASL-IR")
		res["cmds"] = []
		for a in (b"* 3 EXISTS\r\n* OK [UIDVALIDITY 9] x\r\n{tag} OK [READ-WRITE] ok\r\n",
			  b"{tag} OK copied\r\n", b"* BYE\r\n{tag} OK bye\r\n"):
			line = f.readline()
			res["cmds"].append(line.split(b" ", 1)[1])
			c.sendall(a.replace(b"{tag}", line.split()[0]))

	srv, t, res = _serve_once(script)
	r = _cli_raw(srv.getsockname()[1], "move", "INBOX", "4", "Archive")
	t.join(5)
	assert r.returncode == 1 and b"IMAP_ERROR_UNSUPPORTED" in r.stderr, r.stderr
	assert res["cmds"] == [b'SELECT "INBOX"\r\n', b'UID COPY 4 "Archive"\r\n', b"LOGOUT\r\n"]


def test_tls_peer_gone_during_big_write_is_no_sigpipe(srv, tmp_path):
	"""The server drops a TLS connection while an 8 MB APPEND is being written: a clean
	DISCONNECTED error, not a death by SIGPIPE."""
	import ssl
	ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
	ctx.load_cert_chain(os.path.join(srv.dir, "server.pem"), os.path.join(srv.dir, "server.key"))
	msg = tmp_path / "big.eml"
	msg.write_bytes(b"Subject: x\r\n\r\n" + b"a" * (8 << 20))

	def script(c, res):
		s = ctx.wrap_socket(c, server_side=True)
		f = s.makefile("rb")
		caps = b"IMAP4rev1 AUTH=PLAIN SASL-IR LITERAL+"
		s.sendall(b"* OK [CAPABILITY " + caps + b"] x\r\n")
		tag = f.readline().split()[0]
		s.sendall(tag + b" OK [CAPABILITY " + caps + b"] in\r\n")
		f.readline()
		s.shutdown(socket.SHUT_RDWR)

	lsrv, t, res = _serve_once(script)
	r = subprocess.run([tl.imap_cli_bin(), "--host", "localhost", "--port",
			    str(lsrv.getsockname()[1]), "--cafile", srv.ca, "--user", "alice",
			    "append", "INBOX", str(msg)], stdout=subprocess.PIPE,
			   stderr=subprocess.PIPE, env=dict(os.environ, IMAPFS_PASSWORD="pw"),
			   timeout=30)
	assert r.returncode == 1, (r.returncode, r.stderr)
	assert b"IMAP_ERROR_DISCONNECTED" in r.stderr, r.stderr


def test_idle_falls_back_to_noop_polling():
	"""Without IDLE the change watcher polls with NOOP and reports what NOOP brings."""
	lsock = socket.socket()
	lsock.bind(("127.0.0.1", 0))
	lsock.listen(4)
	seen = []

	def serve():
		lsock.settimeout(10)
		try:
			for i in range(2):
				c, _ = lsock.accept()
				f = c.makefile("rb")
				_greet_login(c, f, b"IMAP4rev1 AUTH=PLAIN SASL-IR")
				if i == 0:
					threading.Thread(target=lambda c=c: (time.sleep(3), c.close()),
							 daemon=True).start()
					continue
				tag = f.readline().split()[0]  # EXAMINE
				c.sendall(b"* 3 EXISTS\r\n* OK [UIDVALIDITY 9] x\r\n" + tag +
					  b" OK [READ-ONLY] ok\r\n")
				line = f.readline()
				seen.append(line)
				c.sendall(b"* 4 EXISTS\r\n* 2 FETCH (UID 8 FLAGS (\\Answered))\r\n" +
					  line.split()[0] + b" OK noop\r\n")
				f.readline()
				c.close()
		except OSError:
			pass

	t = threading.Thread(target=serve, daemon=True)
	t.start()
	r = _cli_raw(lsock.getsockname()[1], "idle", "INBOX", "1", timeout_ms=3000)
	lsock.close()
	assert r.returncode == 0, r.stderr
	assert seen and seen[0].split()[1] == b"NOOP"
	assert r.stdout.decode().splitlines()[:3] == ["idling", "exists 4", "flags 8 \\Answered"]
