# SPDX-License-Identifier: GPL-2.0-or-later
"""Fault tests: the imap/ library (through tests/imap-cli) against tests/fakeimap scripts
that drop, stall, BYE, lie about STARTTLS, inject plaintext, announce huge literals and
interleave unsolicited data. Each test asserts the error class imap-cli reports, that it
comes within the deadline, and what the client did or did not send (the transcript).
"""

import collections
import os
import re
import subprocess
import sys
import time

import pytest

import imapfs_testlib as tl

sys.path.insert(0, os.path.join(tl.source_dir(), "tests", "fakeimap"))

import fakeimap as fi  # noqa: E402
# The fake server's own self-test runs here too (it has no meson test of its own).
from test_fakeimap import *  # noqa: E402,F401,F403

PASSWORD = "s3cret-Pa55"
CAPS = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE UIDPLUS MOVE NAMESPACE AUTH=PLAIN AUTH=LOGIN"
CAPS_TLS = CAPS + " STARTTLS"

Result = collections.namedtuple("Result", "rc out err error elapsed")


@pytest.fixture(scope="module")
def cli():
	p = tl.imap_cli_bin()
	if not os.access(p, os.X_OK):
		pytest.skip("imap-cli not built (%s)" % p)
	return p


@pytest.fixture(scope="module")
def tls_certs(tmp_path_factory):
	return fi.make_certs(str(tmp_path_factory.mktemp("faults-certs")))


def run_cli(cli, port, *args, tls="none", timeout_ms=3000, cafile=None, user="alice",
	    password=PASSWORD, extra=(), wall=60):
	cmd = [cli, "--host", "127.0.0.1", "--port", str(port), "--tls", tls,
	       "--timeout", str(timeout_ms), "--user", user]
	if tls == "none":
		cmd.append("--allow-insecure")
	if cafile:
		cmd += ["--cafile", cafile]
	cmd += list(extra) + list(args)
	env = dict(os.environ, IMAPFS_PASSWORD=password)
	env.pop("G_DEBUG", None)  # a library warning must not turn into an abort here
	t0 = time.monotonic()
	r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
			   stderr=subprocess.PIPE, timeout=wall)
	el = time.monotonic() - t0
	err = r.stderr.decode(errors="replace")
	m = re.search(r"imap-cli: (IMAP_ERROR_[A-Z_]+):", err)
	return Result(r.returncode, r.stdout, err, m.group(1) if m else None, el)


def server(script=None, **kw):
	kw.setdefault("end_timeout", 5.0)
	return fi.FakeImap(script, **kw).start()


def assert_error(res, *codes):
	assert res.rc == 1, res
	assert res.error in codes, res
	lines = [ln for ln in res.err.splitlines() if ln.startswith("imap-cli:")]
	assert len(lines) == 1, res.err


def no_secret(srv):
	for c in srv.conns:
		assert PASSWORD.encode() not in bytes(c.raw) or c.tls, "password sent in clear"


# ---------------------------------------------------------------------------------------
# Baseline: the scripted server is good enough for a normal login.

def test_baseline_login(cli):
	srv = server(fi.login_steps(CAPS) + [fi.wait_close(5)])
	try:
		r = run_cli(cli, srv.port, "login")
		srv.wait(1, 10)
	finally:
		srv.stop()
	assert r.rc == 0 and r.out == b"OK\n", r
	assert srv.conns[0].auth == ("alice", PASSWORD)
	assert srv.errors == []


# ---------------------------------------------------------------------------------------
# Connection loss, stalls, BYE

def test_drop_after_greeting(cli):
	srv = server([fi.greeting(CAPS), fi.drop()])
	try:
		r = run_cli(cli, srv.port, "login")
	finally:
		srv.stop()
	assert_error(r, "IMAP_ERROR_DISCONNECTED")


def test_drop_with_rst_during_login(cli):
	srv = server([fi.greeting(CAPS), fi.expect(r".*"), fi.drop(rst=True)])
	try:
		r = run_cli(cli, srv.port, "login")
	finally:
		srv.stop()
	assert_error(r, "IMAP_ERROR_DISCONNECTED")


def test_no_greeting_times_out(cli):
	srv = server([fi.stall(30)])
	try:
		r = run_cli(cli, srv.port, "login", timeout_ms=1000)
	finally:
		srv.stop()
	assert_error(r, "IMAP_ERROR_TIMEOUT")
	assert r.elapsed < 8, r.elapsed


def test_stall_mid_command_times_out(cli):
	script = fi.login_steps(CAPS) + [fi.expect(r"\S+ STATUS .*", "* STATUS INBOX (MESSAGES 1"),
					 fi.stall(30)]
	srv = server(script)
	try:
		r = run_cli(cli, srv.port, "status", "INBOX", timeout_ms=1000)
	finally:
		srv.stop()
	assert_error(r, "IMAP_ERROR_TIMEOUT")
	assert r.elapsed < 8, r.elapsed


def test_bye_greeting(cli):
	srv = server([fi.bye("too many connections")])
	try:
		r = run_cli(cli, srv.port, "login")
	finally:
		srv.stop()
	assert_error(r, "IMAP_ERROR_DISCONNECTED", "IMAP_ERROR_UNAVAILABLE", "IMAP_ERROR_CONNECT")


def test_bye_mid_command(cli):
	script = fi.login_steps(CAPS) + [
		fi.expect(r"\S+ STATUS .*"), fi.bye("server shutting down")]
	srv = server(scripts=[script])
	try:
		r = run_cli(cli, srv.port, "status", "INBOX")
	finally:
		srv.stop()
	# STATUS is idempotent: a retry on a new connection is allowed, but this server
	# answers every connection with BYE, so the command must fail in the end.
	assert_error(r, "IMAP_ERROR_DISCONNECTED")


def test_drop_mid_literal(cli):
	script = fi.login_steps(CAPS) + [
		fi.expect(r"\S+ (EXAMINE|SELECT) .*",
			  "* 1 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\n* OK [UIDNEXT 2] x\r\n{tag} OK [READ-ONLY] done\r\n"),
		fi.expect(r"\S+ UID FETCH .*", "* 1 FETCH (UID 1 BODY[] {1000}\r\n" + "x" * 400),
		fi.drop()]
	srv = server(script)
	try:
		r = run_cli(cli, srv.port, "body", "INBOX", "1", "--mem")
	finally:
		srv.stop()
	assert_error(r, "IMAP_ERROR_DISCONNECTED")
	assert r.out == b"", "partial body printed as if complete"


# ---------------------------------------------------------------------------------------
# TLS: no silent downgrade, no credentials in the clear

def test_starttls_missing_is_refused(cli):
	srv = server([fi.greeting(CAPS), fi.wait_close(5)])
	try:
		r = run_cli(cli, srv.port, "login", tls="starttls")
		srv.wait(1, 10)
	finally:
		srv.stop()
	assert_error(r, "IMAP_ERROR_TLS_REQUIRED")
	no_secret(srv)
	assert not any(c.startswith(("LOGIN", "AUTHENTICATE")) for c in srv.commands(0))


def test_starttls_missing_after_capability_command(cli):
	"""Greeting without capabilities: the client asks, still no STARTTLS."""
	srv = server([fi.greeting(None), fi.capability(CAPS), fi.wait_close(5)])
	try:
		r = run_cli(cli, srv.port, "login", tls="starttls")
		srv.wait(1, 10)
	finally:
		srv.stop()
	assert_error(r, "IMAP_ERROR_TLS_REQUIRED")
	no_secret(srv)


def test_starttls_refused_by_server(cli):
	srv = server([fi.greeting(CAPS_TLS), fi.expect(r"\S+ STARTTLS", "{tag} NO not today\r\n"),
		      fi.wait_close(5)])
	try:
		r = run_cli(cli, srv.port, "login", tls="starttls")
		srv.wait(1, 10)
	finally:
		srv.stop()
	# the class is debatable (TLS would name the cause better than NO); what matters is
	# that it aborts before any credential is sent
	assert_error(r, "IMAP_ERROR_TLS", "IMAP_ERROR_TLS_REQUIRED", "IMAP_ERROR_NO")
	no_secret(srv)
	assert not any(c.startswith(("LOGIN", "AUTHENTICATE")) for c in srv.commands(0))


def test_starttls_plaintext_injection_is_discarded(cli, tls_certs):
	"""Bytes after the STARTTLS OK in the same segment belong to no one (CVE-2011-0411
	class): the client discards them, so the injected EXISTS never reaches the session,
	and the credential goes out only inside TLS, after capabilities were asked again."""
	ca, crt, key = tls_certs
	script = [fi.greeting(CAPS_TLS),
		  fi.expect(r"\S+ STARTTLS", "{tag} OK Begin TLS now\r\n* 1 EXISTS\r\n"),
		  fi.starttls(), fi.auth(caps=CAPS), fi.wait_close(5)]
	srv = server(script, certfile=crt, keyfile=key)
	try:
		r = run_cli(cli, srv.port, "login", tls="starttls", cafile=ca)
		srv.wait(1, 10)
	finally:
		srv.stop()
	assert r.rc == 0, r
	assert srv.conns[0].tls and srv.conns[0].auth == ("alice", PASSWORD)
	assert srv.commands(0)[0] == "STARTTLS"


def test_starttls_good(cli, tls_certs):
	ca, crt, key = tls_certs
	script = [fi.greeting(CAPS_TLS), fi.expect(r"\S+ STARTTLS", "{tag} OK Begin TLS now\r\n"),
		  fi.starttls(), fi.auth(caps=CAPS), fi.wait_close(5)]
	srv = server(script, certfile=crt, keyfile=key)
	try:
		r = run_cli(cli, srv.port, "login", tls="starttls", cafile=ca)
		srv.wait(1, 10)
	finally:
		srv.stop()
	assert r.rc == 0, r
	assert srv.conns[0].tls and srv.conns[0].auth == ("alice", PASSWORD)
	# the capabilities from before TLS must not be trusted: asked again or sent with OK
	assert srv.commands(0)[0] == "STARTTLS"


def test_implicit_tls_untrusted_ca(cli, tls_certs, tmp_path):
	ca, crt, key = tls_certs
	other_ca = fi.make_certs(str(tmp_path / "other"))[0]
	srv = server(fi.login_steps(CAPS), tls="implicit", certfile=crt, keyfile=key)
	try:
		r = run_cli(cli, srv.port, "login", tls="implicit", cafile=other_ca)
	finally:
		srv.stop()
	assert_error(r, "IMAP_ERROR_TLS")
	assert all(c.auth is None for c in srv.conns)


def test_implicit_tls_good(cli, tls_certs):
	ca, crt, key = tls_certs
	srv = server(fi.login_steps(CAPS) + [fi.wait_close(5)], tls="implicit", certfile=crt,
		     keyfile=key)
	try:
		r = run_cli(cli, srv.port, "login", tls="implicit", cafile=ca)
		srv.wait(1, 10)
	finally:
		srv.stop()
	assert r.rc == 0, r
	assert srv.conns[0].auth == ("alice", PASSWORD)


def test_auth_failure(cli):
	srv = server([fi.greeting(CAPS), fi.auth(ok=False), fi.wait_close(5)])
	try:
		r = run_cli(cli, srv.port, "login")
	finally:
		srv.stop()
	assert_error(r, "IMAP_ERROR_AUTH")


# ---------------------------------------------------------------------------------------
# Limits and malformed data

def test_huge_literal_announced(cli):
	script = fi.login_steps(CAPS) + [
		fi.expect(r"\S+ (EXAMINE|SELECT) .*",
			  "* 1 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\n{tag} OK [READ-ONLY] done\r\n"),
		fi.expect(r"\S+ UID FETCH .*", "* 1 FETCH (UID 1 BODY[] {99999999999}\r\nabc"),
		fi.stall(10)]
	srv = server(script)
	try:
		r = run_cli(cli, srv.port, "body", "INBOX", "1", "--mem")
	finally:
		srv.stop()
	assert_error(r, "IMAP_ERROR_LIMIT", "IMAP_ERROR_PROTOCOL")
	assert r.elapsed < 8


def test_endless_line(cli):
	script = fi.login_steps(CAPS) + [
		fi.expect(r"\S+ STATUS .*", b"* STATUS INBOX (MESSAGES " + b"9" * (4 << 20)), fi.stall(10)]
	srv = server(script)
	try:
		r = run_cli(cli, srv.port, "status", "INBOX")
	finally:
		srv.stop()
	assert_error(r, "IMAP_ERROR_LIMIT", "IMAP_ERROR_PROTOCOL")


def test_garbage_response(cli):
	script = fi.login_steps(CAPS) + [
		fi.expect(r"\S+ STATUS .*", "\x00\x01garbage (((\r\n{tag} OK done\r\n"), fi.wait_close(5)]
	srv = server(script)
	try:
		r = run_cli(cli, srv.port, "status", "INBOX")
	finally:
		srv.stop()
	assert_error(r, "IMAP_ERROR_PROTOCOL")


# ---------------------------------------------------------------------------------------
# Unsolicited data in the middle of a command

def test_unsolicited_expunge_and_fetch_during_fetch(cli):
	script = fi.login_steps(CAPS) + [
		fi.expect(r"\S+ (EXAMINE|SELECT) .*",
			  "* 3 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\n* OK [UIDNEXT 4] x\r\n"
			  "* FLAGS (\\Seen)\r\n{tag} OK [READ-ONLY] done\r\n"),
		fi.expect(r"\S+ UID FETCH 1:\* .*",
			  "* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n* 3 EXPUNGE\r\n"
			  "* 2 FETCH (FLAGS (\\Flagged))\r\n* 2 FETCH (UID 2 FLAGS (\\Flagged))\r\n"
			  "* 4 EXISTS\r\n* 3 FETCH (UID 7 FLAGS ())\r\n{tag} OK done\r\n"),
		fi.wait_close(5)]
	srv = server(script)
	try:
		r = run_cli(cli, srv.port, "fetch", "INBOX", "1:*", "flags")
		srv.wait(1, 10)
	finally:
		srv.stop()
	assert r.rc == 0, r
	lines = r.out.decode().splitlines()
	uids = [re.search(r"uid=(\d+)", ln).group(1) for ln in lines]
	assert uids == ["1", "2", "7"], lines
	assert "\\Flagged" in lines[1]


def test_unsolicited_bye_alert_during_status(cli):
	script = fi.login_steps(CAPS) + [
		fi.expect(r"\S+ STATUS .*", "* OK [ALERT] maintenance at noon\r\n"
			  "* STATUS INBOX (MESSAGES 4 UIDNEXT 9 UIDVALIDITY 3 UNSEEN 1)\r\n"
			  "* 5 RECENT\r\n{tag} OK done\r\n"),
		fi.wait_close(5)]
	srv = server(script)
	try:
		r = run_cli(cli, srv.port, "status", "INBOX")
	finally:
		srv.stop()
	assert r.rc == 0, r
	assert "messages 4" in r.out.decode() and "uidnext 9" in r.out.decode()


# ---------------------------------------------------------------------------------------
# Reconnect and retry: idempotent commands may be retried, APPEND never

def _status_rules():
	return [(r"(\S+) STATUS .*", b"* STATUS INBOX (MESSAGES 4 UIDNEXT 9 UIDVALIDITY 3 UNSEEN 1)"
		 b"\r\n{tag} OK done\r\n")]


def test_idempotent_retry_after_drop(cli):
	s1 = fi.login_steps(CAPS) + [fi.expect(r"\S+ STATUS .*"), fi.drop()]
	s2 = fi.login_steps(CAPS) + [fi.serve(_status_rules(), timeout=10)]
	srv = server(scripts=[s1, s2])
	try:
		r = run_cli(cli, srv.port, "status", "INBOX", extra=["--stats"], timeout_ms=5000)
	finally:
		srv.stop()
	assert r.rc == 0, "STATUS is idempotent and should be retried after a drop: %r" % (r,)
	assert "messages 4" in r.out.decode()
	assert len(srv.conns) >= 2


def test_append_not_retried_after_drop(cli, tmp_path):
	msg = tmp_path / "m.eml"
	msg.write_bytes(b"From: a@b\r\nSubject: x\r\n\r\nbody\r\n")
	s1 = fi.login_steps(CAPS) + [fi.expect(r"\S+ APPEND .*"), fi.drop()]
	s2 = fi.login_steps(CAPS) + [fi.serve([(r"\S+ APPEND .*", b"{tag} OK [APPENDUID 3 9] ok\r\n")],
					      timeout=5)]
	srv = server(scripts=[s1, s2])
	try:
		r = run_cli(cli, srv.port, "append", "INBOX", str(msg), timeout_ms=3000)
	finally:
		srv.stop()
	assert_error(r, "IMAP_ERROR_DISCONNECTED")
	appends = sum(1 for c in srv.conns for cmd in c.commands() if cmd.startswith("APPEND"))
	assert appends == 1, "APPEND sent %d times" % appends


# ---------------------------------------------------------------------------------------
# Transcript: exact commands, names never inject, secrets never traced

def test_mailbox_name_cannot_inject(cli):
	evil = 'x" LOGOUT\r\nA1 DELETE INBOX'
	rules = [(r"\S+ STATUS .*", b"{tag} NO [NONEXISTENT] no such mailbox\r\n")]
	srv = server(fi.login_steps(CAPS) + [fi.serve(rules, timeout=5)])
	try:
		r = run_cli(cli, srv.port, "status", evil)
		srv.wait(1, 10)
	finally:
		srv.stop()
	assert r.rc == 1, r
	cmds = srv.commands(0)
	assert not any(c.startswith(("DELETE", "LOGOUT")) for c in cmds[:-1]), cmds
	status = [c for c in srv.transcript(0) if b" STATUS " in c]
	assert len(status) <= 1
	if status:
		# one command: CR/LF either mUTF-7 encoded inside a quoted string or in a literal
		line = status[0]
		assert line.count(b"\r\n") == 1 or re.search(rb"\{\d+\+?\}\r\n", line), status


def test_quoted_and_utf7_names(cli):
	rules = [(r"\S+ STATUS (.*) \([^()]*\)", lambda conn, m: b"* STATUS " + m.group(1)
		  + b" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 1 UNSEEN 0)\r\n{tag} OK done\r\n")]
	srv = server(fi.login_steps(CAPS) + [fi.serve(rules, timeout=5)])
	try:
		r1 = run_cli(cli, srv.port, "status", 'Entwürfe "quoted" \\ back')
		srv.wait(1, 10)
	finally:
		srv.stop()
	assert r1.rc == 0, r1
	st = [c for c in srv.commands(0) if c.startswith("STATUS")][0]
	assert st.startswith('STATUS "Entw&APw-rfe \\"quoted\\" \\\\ back" (') or \
		st.startswith("STATUS {"), st


def test_password_not_in_trace(cli, tmp_path):
	trace = tmp_path / "trace.txt"
	srv = server(fi.login_steps(CAPS) + [fi.wait_close(5)])
	try:
		r = run_cli(cli, srv.port, "login", extra=["--trace", str(trace)])
	finally:
		srv.stop()
	assert r.rc == 0, r
	t = trace.read_bytes()
	import base64
	assert t, "empty trace"
	assert PASSWORD.encode() not in t
	assert base64.b64encode(b"\0alice\0" + PASSWORD.encode()) not in t
	assert base64.b64encode(b"alice\0alice\0" + PASSWORD.encode()) not in t


def test_login_literal_password_with_specials(cli):
	"""A server without SASL PLAIN gets LOGIN; odd passwords must be quoted/literal."""
	caps = "IMAP4rev1 LITERAL+ IDLE UIDPLUS"
	pw = 'p"w\\ {3}\r'
	srv = server([fi.greeting(caps), fi.auth(caps=caps), fi.wait_close(5)])
	try:
		r = run_cli(cli, srv.port, "login", password=pw[:-1])
		srv.wait(1, 10)
	finally:
		srv.stop()
	assert r.rc == 0, r
	assert srv.conns[0].auth == ("alice", pw[:-1])


# ---------------------------------------------------------------------------------------
# IDLE

def _idle_rules(idle_steps):
	return [
		(r"\S+ ENABLE .*", "* ENABLED QRESYNC\r\n{tag} OK enabled\r\n"),
		(r"\S+ (EXAMINE|SELECT) .*",
		 "* 2 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\n* OK [UIDNEXT 3] x\r\n"
		 "* OK [HIGHESTMODSEQ 9] x\r\n{tag} OK [READ-ONLY] done\r\n"),
		(r"\S+ UID (FETCH|SEARCH) .*",
		 "* 1 FETCH (UID 1 MODSEQ (3) FLAGS ())\r\n* 2 FETCH (UID 2 MODSEQ (4) FLAGS ())\r\n"
		 "{tag} OK done\r\n"),
		(r"\S+ NOOP", "{tag} OK noop\r\n"),
		(r"\S+ IDLE", idle_steps),
	]


def test_idle_reports_changes_then_lost(cli):
	steps = [fi.send("+ idling\r\n"), fi.stall(0.3),
		 fi.send("* 1 FETCH (UID 1 MODSEQ (10) FLAGS (\\Seen))\r\n"), fi.stall(0.3),
		 fi.drop()]
	srv = server(fi.login_steps(CAPS + " CONDSTORE QRESYNC") + [fi.serve(_idle_rules(steps), 20)])
	try:
		r = run_cli(cli, srv.port, "idle", "INBOX", "3", timeout_ms=2000)
	finally:
		srv.stop()
	lines = r.out.decode().splitlines()
	assert lines[:1] == ["idling"], r
	assert any(ln.startswith("flags 1 \\Seen") for ln in lines), r
	assert "lost" in lines, r


def test_reply_trickled_byte_by_byte(cli):
	"""Every byte in its own segment, literal included: the parser must not care."""
	body = b"Subject: trickle\r\n\r\nsmall body\r\n"
	script = fi.login_steps(CAPS) + [
		fi.expect(r"\S+ (EXAMINE|SELECT) .*",
			  "* 1 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\n* OK [UIDNEXT 2] x\r\n{tag} OK [READ-ONLY] done\r\n"),
		fi.expect(r"\S+ UID FETCH .*"),
		fi.send(b"* 1 FETCH (UID 1 BODY[] {%d}\r\n" % len(body) + body + b")\r\n{tag} OK done\r\n",
			chunk=1, delay=0.001),
		fi.wait_close(5)]
	srv = server(script)
	try:
		r = run_cli(cli, srv.port, "body", "INBOX", "1", "--mem")
	finally:
		srv.stop()
	assert r.rc == 0, r
	assert r.out == body


def test_search_header_transcript(cli):
	"""UID SEARCH HEADER: the field name as an astring, the value as a string (quoted or
	literal), never pasted; a field name with a space or ':' is refused before sending."""
	rules = [(r"\S+ EXAMINE .*", b"* OK [UIDVALIDITY 5] v\r\n{tag} OK [READ-ONLY] done\r\n"),
		 (r"\S+ UID SEARCH .*", b"* SEARCH 4 7\r\n{tag} OK done\r\n")]
	srv = server(fi.login_steps(CAPS) + [fi.serve(rules, timeout=5)])
	try:
		r = run_cli(cli, srv.port, "search", "INBOX", "uid", "3:*", "header", "Message-ID",
			    '<a"b@x>')
		bad = run_cli(cli, srv.port, "search", "INBOX", "header", "Message ID", "x")
		srv.wait(2, 10)
	finally:
		srv.stop()
	assert r.rc == 0 and r.out.strip() == b"4,7", r
	search = [c for c in srv.commands(0) if c.startswith("UID SEARCH")]
	assert search == ['UID SEARCH UID 3:* HEADER Message-ID "<a\\"b@x>"'], search
	assert bad.rc != 0
	assert not any(c.startswith("UID SEARCH") for c in srv.commands(1)), srv.commands(1)
