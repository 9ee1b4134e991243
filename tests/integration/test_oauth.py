# SPDX-License-Identifier: GPL-2.0-or-later
"""OAuth2 logins (issue 15) against a real Dovecot whose oauth2 passdb checks every token at
an RFC 7662 introspection endpoint the test runs on 127.0.0.1 (tl.OAuth2Introspection):
-o oauth_token_command= logs in with OAUTHBEARER or XOAUTH2, whichever the server offers; a
refused token is one clear line at mount; a failing or hanging command too; a token that
expires while mounted is replaced by running the command again when the connection comes
back; and the token never shows in argv, the environment, the log or the protocol trace.
"""

import os
import subprocess
import time

import pytest

import imapfs_testlib as tl
from test_mount import Mount, _mounted, emls, mount  # noqa: F401 (fixture)


@pytest.fixture
def idp():
	with tl.OAuth2Introspection() as p:
		yield p


def token_command(tmp_path, tokens):
	"""A token helper as users have them: prints the first line of TOKENS (its cached
	token); when TOKENS holds more lines, the next call gets the next one (a refresh).
	Every call is counted in CALLS. Returns (command, tokens file, calls file)."""
	tf, calls = tmp_path / "tokens", tmp_path / "calls"
	tf.write_text("".join(t + "\n" for t in tokens))
	script = tmp_path / "token-helper"
	script.write_text("""#!/bin/sh
exec 9>"%(tf)s.lock"
flock 9
echo x >> "%(calls)s"
head -n 1 "%(tf)s"
if [ "$(wc -l < "%(tf)s")" -gt 1 ]; then sed -i 1d "%(tf)s"; fi
""" % {"tf": tf, "calls": calls})
	script.chmod(0o755)
	return str(script), tf, calls


def n_calls(calls):
	try:
		return len(calls.read_text().splitlines())
	except FileNotFoundError:
		return 0


def logins(dv, method):
	return dv.log_text().count("Login: user=<alice>, method=%s" % method)


def no_token_anywhere(m, tokens):
	"""The tokens are in none of: the daemon's argv and environment, its log, the trace."""
	pid = m.proc.pid
	with open("/proc/%d/cmdline" % pid, "rb") as f:
		argv = f.read()
	with open("/proc/%d/environ" % pid, "rb") as f:
		env = f.read()
	with open(m.trace, "rb") as f:
		trace = f.read()
	log = m.log().encode()
	assert b"AUTHENTICATE" in trace and b"<redacted>" in trace
	for t in tokens:
		for what, data in (("argv", argv), ("environment", env), ("log", log),
				   ("trace", trace)):
			assert t.encode() not in data, "token in the " + what


def oauth_mount(mount, dv, tmp_path, cmd, opts=()):
	trace = str(tmp_path / "trace")
	m = mount(dv, password=False,
		  opts=["oauth_token_command=" + cmd, "trace_file=" + trace, "no_cache"] + list(opts))
	m.trace = trace
	return m


@pytest.mark.parametrize("mechs,method", [(None, "OAUTHBEARER"), ("xoauth2", "XOAUTH2")])
def test_good_token_mounts(idp, mount, tmp_path, monkeypatch, mechs, method):
	monkeypatch.setenv("G_MESSAGES_DEBUG", "all")  # the token is not in the debug log either
	dv = tl.Dovecot()
	dv.start("slash", corpus_n=8, oauth2_url=idp.url, oauth2_mechs=mechs)
	try:
		token = "tok-good-" + os.urandom(8).hex()
		idp.tokens[token] = "alice"
		cmd, _, calls = token_command(tmp_path, [token])
		m = oauth_mount(mount, dv, tmp_path, cmd)
		os.listdir(os.path.join(m.mnt, "INBOX"))
		assert "method=PLAIN" not in dv.log_text()  # (before our own checker logs in)
		conn = dv.imap()
		want = {m_.uid for m_ in tl.fetch_messages(conn, "INBOX")}
		got = {int(n.rsplit("_", 1)[1][:-4]) for n in emls(os.path.join(m.mnt, "INBOX"))}
		assert got == want and want
		assert logins(dv, method) >= 1 and token in idp.seen
		assert n_calls(calls) >= 1
		no_token_anywhere(m, [token])
		m.stop()
	finally:
		dv.stop()


def run_imapfs(dv, mnt, cmd, opts=()):
	"""imapfs in the background mode (the verdict comes from the start-up): the result."""
	os.makedirs(mnt, exist_ok=True)
	env = dict(os.environ)
	env.pop("IMAPFS_PASSWORD", None)
	argv = [tl.imapfs_bin(), "-o", "cafile=" + dv.ca, "-o", "no_cache",
		"-o", "oauth_token_command=" + cmd]
	for o in opts:
		argv += ["-o", o]
	r = subprocess.run(argv + [dv.url(), str(mnt)], env=env, stdin=subprocess.DEVNULL,
			   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
	if _mounted(str(mnt)):
		subprocess.run(["fusermount3", "-u", str(mnt)], timeout=30)
	return r


def test_rejected_token_is_one_line_at_mount(idp, tmp_path):
	dv = tl.Dovecot()
	dv.start("slash", oauth2_url=idp.url)
	try:
		cmd, _, calls = token_command(tmp_path, ["tok-revoked-123"])
		r = run_imapfs(dv, tmp_path / "mnt", cmd)
		err = r.stderr.decode()
		assert r.returncode != 0
		assert len(err.splitlines()) == 1, err
		assert err.startswith("imapfs: login as alice at 127.0.0.1 failed")
		assert "OAuth2 token was refused" in err
		assert "tok-revoked-123" not in err and not r.stdout
		assert "tok-revoked-123" in idp.seen  # the server did check it
		assert n_calls(calls) >= 1
	finally:
		dv.stop()


@pytest.mark.parametrize("cmd,opts,says", [
	("echo nope >&2; exit 3", [], "oauth_token_command failed"),
	("true", [], "oauth_token_command printed no line"),
	("exec sleep 30", ["timeout=1"], "oauth_token_command did not finish within 1 s"),
])
def test_failing_token_command_is_one_line(idp, tmp_path, cmd, opts, says):
	dv = tl.Dovecot()
	dv.start("slash", oauth2_url=idp.url)
	try:
		t0 = time.monotonic()
		r = run_imapfs(dv, tmp_path / "mnt", cmd, opts)
		err = [ln for ln in r.stderr.decode().splitlines() if ln != "nope"]
		assert r.returncode != 0
		assert len(err) == 1 and says in err[0], err
		assert time.monotonic() - t0 < 20
		assert not idp.seen
	finally:
		dv.stop()


def test_expired_token_is_replaced_on_reconnect(idp, mount, tmp_path):
	"""The token the mount started with expires: the server drops the session (doveadm
	kick); the mount comes back by itself with a new token from the command and keeps
	working. The helper first hands out its stale token (refused), then the fresh one."""
	dv = tl.Dovecot()
	dv.start("slash", corpus_n=4, oauth2_url=idp.url)
	try:
		old, new = "tok-old-" + os.urandom(6).hex(), "tok-new-" + os.urandom(6).hex()
		idp.tokens[old] = "alice"
		cmd, tf, calls = token_command(tmp_path, [old])
		m = oauth_mount(mount, dv, tmp_path, cmd, ["dir_max_age=0"])
		inbox = os.path.join(m.mnt, "INBOX")
		before = set(emls(inbox))
		logins0 = logins(dv, "OAUTHBEARER")
		calls0 = n_calls(calls)
		old_checks = idp.seen.count(old)

		# the token expires; the helper still has it cached, and the refresh after it
		del idp.tokens[old]
		idp.tokens[new] = "alice"
		tf.write_text(old + "\n" + new + "\n")
		dv.doveadm("kick", "alice")
		conn = dv.imap()
		uid = tl.append(conn, "INBOX", b"From: a@example.org\r\nSubject: after the kick\r\n"
				b"Message-ID: <kick@example.org>\r\n\r\nbody\r\n")

		# the mount works again: the new message shows and reads from the server
		name = tl.wait_for(lambda: [n for n in set(emls(inbox)) - before
					    if n.endswith("_%d.eml" % uid)], 30, "the new message")[0]
		with open(os.path.join(inbox, name), "rb") as f:
			assert b"after the kick" in f.read()
		assert n_calls(calls) > calls0  # the command ran again
		assert new in idp.seen
		assert idp.seen.count(old) > old_checks  # the stale token was tried, refused...
		assert idp.seen.index(new) > idp.seen.index(old)
		assert logins(dv, "OAUTHBEARER") > logins0
		no_token_anywhere(m, [old, new])
		m.stop()
	finally:
		dv.stop()
