# SPDX-License-Identifier: GPL-2.0-or-later
"""Self-test of fakeimap: every step kind against Python's imaplib and raw sockets, so a
fault test that fails can blame the client, not the fake server. Run directly with pytest
or through tests/integration/test_faults.py, which imports these tests.
"""

import imaplib
import os
import socket
import ssl
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fakeimap as fi  # noqa: E402


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
	return fi.make_certs(str(tmp_path_factory.mktemp("fakeimap-certs")))


def raw_client(port, timeout=5):
	s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
	return s, s.makefile("rb")


def test_login_and_transcript():
	script = fi.login_steps() + [
		fi.expect(r"\S+ SELECT \"?INBOX\"?", "* 3 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n{tag} OK [READ-WRITE] done\r\n"),
		fi.expect(r"\S+ LOGOUT", "* BYE bye\r\n{tag} OK bye\r\n"),
	]
	with fi.FakeImap(script) as srv:
		c = imaplib.IMAP4("127.0.0.1", srv.port)
		c.login("alice", "secret pw")
		typ, data = c.select("INBOX")
		assert typ == "OK" and data == [b"3"]
		c.logout()
		assert srv.wait(1)
	assert srv.errors == []
	cmds = srv.commands(0)
	# imaplib always asks CAPABILITY first (auth() answers it)
	assert cmds == ["CAPABILITY", 'LOGIN alice "secret pw"', "SELECT INBOX", "LOGOUT"]
	assert srv.conns[0].auth == ("alice", "secret pw")
	assert srv.transcript(0)[-1].endswith(b"LOGOUT\r\n")


def test_mismatch_is_recorded():
	script = [fi.greeting(), fi.expect(r"\S+ NOOP", "{tag} OK\r\n")]
	with fi.FakeImap(script) as srv:
		s, f = raw_client(srv.port)
		f.readline()
		s.sendall(b"a1 CAPABILITY\r\n")
		assert f.readline() == b"a1 BAD fakeimap: unexpected command\r\n"
		assert f.readline() == b""  # strict: closed
		srv.wait(1)
	assert len(srv.errors) == 1 and "CAPABILITY" in srv.errors[0]


def test_authenticate_plain_forms():
	for ir in (True, False):
		with fi.FakeImap(fi.login_steps()) as srv:
			s, f = raw_client(srv.port)
			f.readline()
			import base64
			tok = base64.b64encode(b"\0bob\0p\xc3\xa4ss")
			if ir:
				s.sendall(b"x AUTHENTICATE PLAIN " + tok + b"\r\n")
			else:
				s.sendall(b"x AUTHENTICATE PLAIN\r\n")
				assert f.readline().startswith(b"+")
				s.sendall(tok + b"\r\n")
			assert f.readline().startswith(b"x OK")
			f.close()
			s.close()
			srv.wait(1)
		assert srv.conns[0].auth == ("bob", "päss")


def test_literal_command_and_continuation():
	script = fi.login_steps() + [fi.expect(rb"\S+ APPEND INBOX \{5\}\r\nhello", "{tag} OK [APPENDUID 1 9] ok\r\n")]
	with fi.FakeImap(script) as srv:
		c = imaplib.IMAP4("127.0.0.1", srv.port)
		c.login("alice", "pw")
		typ, data = c.append("INBOX", None, None, b"hello")
		assert typ == "OK"
		c.shutdown()
		srv.wait(1)
	assert srv.errors == []
	assert srv.commands(0)[-1] == "APPEND INBOX {5}\r\nhello"
	assert b"+ go ahead\r\n" in srv.conns[0].sent


def test_unsolicited_in_the_middle():
	script = fi.login_steps() + [
		fi.expect(r"\S+ NOOP", "* 4 EXPUNGE\r\n* 2 FETCH (FLAGS (\\Seen))\r\n{tag} OK done\r\n")]
	with fi.FakeImap(script) as srv:
		c = imaplib.IMAP4("127.0.0.1", srv.port)
		c.login("alice", "pw")
		assert c.noop()[0] == "OK"
		assert c.response("EXPUNGE")[1] == [b"4"]
		c.shutdown()


def test_stall_and_drop():
	script = [fi.greeting(), fi.stall(0.5), fi.send("* OK late\r\n"), fi.drop()]
	with fi.FakeImap(script) as srv:
		s, f = raw_client(srv.port)
		f.readline()
		t0 = time.monotonic()
		assert f.readline() == b"* OK late\r\n"
		assert time.monotonic() - t0 >= 0.45
		assert f.readline() == b""
		srv.wait(1)
	assert srv.conns[0].closed_by == "server"


def test_drop_rst():
	with fi.FakeImap([fi.greeting(), fi.stall(0.2), fi.drop(rst=True)]) as srv:
		s, f = raw_client(srv.port)
		f.readline()
		time.sleep(0.5)
		with pytest.raises(ConnectionResetError):
			s.recv(10)
		srv.wait(1)
	assert srv.conns[0].closed_by == "server"


def test_bye():
	with fi.FakeImap([fi.greeting(), fi.bye("going away")]) as srv:
		s, f = raw_client(srv.port)
		f.readline()
		assert f.readline() == b"* BYE going away\r\n"
		assert f.readline() == b""


def test_chunked_send():
	with fi.FakeImap([fi.send(b"* OK chunked greeting\r\n", chunk=3, delay=0.01)]) as srv:
		s, f = raw_client(srv.port)
		assert f.readline() == b"* OK chunked greeting\r\n"


def test_implicit_tls(certs):
	ca, crt, key = certs
	with fi.FakeImap(fi.login_steps(), tls="implicit", certfile=crt, keyfile=key) as srv:
		ctx = ssl.create_default_context(cafile=ca)
		c = imaplib.IMAP4_SSL("127.0.0.1", srv.port, ssl_context=ctx)
		c.login("alice", "pw")
		c.shutdown()
		srv.wait(1)
	assert srv.conns[0].tls and srv.errors == []


def test_starttls(certs):
	ca, crt, key = certs
	caps = fi.DEFAULT_CAPS + " STARTTLS"
	script = [fi.greeting(caps), fi.capability(caps),
		  fi.expect(r"\S+ STARTTLS", "{tag} OK Begin TLS\r\n"), fi.starttls(), fi.auth()]
	with fi.FakeImap(script, certfile=crt, keyfile=key) as srv:
		c = imaplib.IMAP4("127.0.0.1", srv.port)
		c.starttls(ssl_context=ssl.create_default_context(cafile=ca))
		c.login("alice", "pw")
		c.shutdown()
		srv.wait(1)
	assert srv.errors == [], srv.errors
	assert srv.conns[0].tls
	assert srv.commands(0)[:3] == ["CAPABILITY", "STARTTLS", "CAPABILITY"]


def test_starttls_injection_bytes_are_sent_in_clear(certs):
	"""The 'inject plaintext after the STARTTLS OK' scenario: both go out in one write."""
	ca, crt, key = certs
	script = [fi.greeting(fi.DEFAULT_CAPS + " STARTTLS"),
		  fi.expect(r"\S+ STARTTLS", "{tag} OK Begin TLS\r\n* 1 EXISTS\r\n"), fi.starttls()]
	with fi.FakeImap(script, certfile=crt, keyfile=key) as srv:
		s, f = raw_client(srv.port)
		f.readline()
		s.sendall(b"t STARTTLS\r\n")
		data = b""
		while b"EXISTS" not in data:
			data += s.recv(100)
		assert data == b"t OK Begin TLS\r\n* 1 EXISTS\r\n"


def test_huge_literal_announcement():
	script = fi.login_steps() + [
		fi.expect(r"\S+ (UID )?FETCH .*", "* 1 FETCH (UID 1 BODY[] {99999999999}\r\nabc"),
		fi.drop()]
	with fi.FakeImap(script) as srv:
		s, f = raw_client(srv.port)
		f.readline()
		s.sendall(b"a LOGIN x y\r\nb UID FETCH 1 BODY.PEEK[]\r\n")
		assert f.readline().startswith(b"a OK")
		assert f.readline() == b"* 1 FETCH (UID 1 BODY[] {99999999999}\r\n"
		assert f.read() == b"abc"
		srv.wait(1)
	assert srv.errors == []


def test_multiple_connections_scripts():
	s1 = [fi.greeting(), fi.drop()]
	s2 = fi.login_steps()
	with fi.FakeImap(scripts=[s1, s2]) as srv:
		for _ in range(3):
			c = socket.create_connection(("127.0.0.1", srv.port))
			c.recv(100)
			c.close()
		assert srv.wait(3)
	assert [c.closed_by for c in srv.conns][:1] == ["server"]
	assert len(srv.conns) == 3


def test_serve_rules():
	rules = [(r"\S+ NOOP", "{tag} OK noop\r\n"),
		 (r"\S+ SELECT (.*)", lambda conn, m: b"* 0 EXISTS\r\n{tag} OK selected " + m.group(1) + b"\r\n")]
	with fi.FakeImap(fi.login_steps() + [fi.serve(rules)]) as srv:
		c = imaplib.IMAP4("127.0.0.1", srv.port)
		c.login("a", "b")
		assert c.noop()[0] == "OK"
		assert c.select("Foo")[0] == "OK"
		assert c.status("Foo", "(MESSAGES)")[0] == "NO"
		c.logout()
		srv.wait(1)
	assert srv.commands(0)[2:] == ["NOOP", "SELECT Foo", "STATUS Foo (MESSAGES)", "LOGOUT"]


def test_cli_json_mode(tmp_path):
	import json
	import subprocess
	script = [["send", "* OK hi\r\n"], ["expect", r"\S+ NOOP", "{tag} OK done\r\n"], ["drop"]]
	sp = tmp_path / "s.json"
	sp.write_text(json.dumps(script))
	pf = tmp_path / "port"
	tr = tmp_path / "t.json"
	p = subprocess.Popen(["/usr/bin/python3", os.path.join(os.path.dirname(fi.__file__), "fakeimap.py"),
			      "--script", str(sp), "--port-file", str(pf), "--transcript", str(tr)],
			     stderr=subprocess.DEVNULL)
	try:
		for _ in range(500):
			if pf.exists():
				break
			time.sleep(0.01)
		s, f = raw_client(int(pf.read_text()))
		assert f.readline() == b"* OK hi\r\n"
		s.sendall(b"z NOOP\r\n")
		assert f.readline() == b"z OK done\r\n"
		assert f.readline() == b""
	finally:
		p.terminate()
		p.wait(10)
	assert json.loads(tr.read_text())["connections"] == [["z NOOP\r\n"]]
