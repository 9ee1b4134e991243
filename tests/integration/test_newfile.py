# SPDX-License-Identifier: GPL-2.0-or-later
"""New messages from files (issue 11): create, write and close a file in a folder is one
APPEND of its bytes (bare LF made CRLF) when the last handle is flushed; a file that is not
an RFC 5322 message fails its close with EINVAL and nothing is sent; a Maildir name's
":2," info becomes flags; temporary names wait for their rename; messages are immutable
(EPERM); cp within the mount is a UID COPY. Every check is made on the server with
imaplib, not only through the mount.
"""

import errno
import os
import re
import shutil
import stat
import subprocess
import time

import pytest

import imapfs_testlib as tl
from test_mount import Mount

MSG = (b"From: Alice <alice@example.org>\n"
       b"To: Bob <bob@example.org>\n"
       b"Subject: %s\n"
       b"Date: Mon, 1 Jan 2024 10:00:00 +0000\n"
       b"Message-ID: <%s@example.org>\n"
       b"\n"
       b"Hello,\nthis is line two.\n")


def msg(tag):
	return MSG % (tag.encode(), tag.encode())


def crlf(b):
	return re.sub(rb"(?<!\r)\n", b"\r\n", b)


@pytest.fixture(params=["slash", "dot"])
def env(request, fresh_dovecot, tmp_path):
	dv = fresh_dovecot(request.param)
	conn = dv.imap()
	prefix = "INBOX." if request.param == "dot" else ""
	for f in ("Archive", "Other"):
		tl.check(conn.create(tl.mbox(prefix + f)), "CREATE")
	mounts = []

	def mount(*opts):
		n = len(mounts)
		m = Mount(dv, tmp_path / ("mnt%d" % n), tmp_path / ("imapfs%d.log" % n),
			  opts=["trace_file=%s" % (tmp_path / ("trace%d" % n))] + list(opts))
		m.trace = str(tmp_path / ("trace%d" % n))
		mounts.append(m)
		return m.start()

	class E:
		pass
	e = E()
	e.dv, e.conn, e.mount, e.tmp = dv, conn, mount, tmp_path
	e.layout = request.param
	e.A, e.O = prefix + "Archive", prefix + "Other"  # server names
	yield e
	for m in mounts:
		m.stop()
	for m in mounts:
		assert "CRITICAL" not in m.log() and "WARNING" not in m.log(), m.log()


def bodies(conn, folder):
	return [m.body for m in tl.fetch_messages(conn, folder, body=True)]


def emls(d):
	return sorted(n for n in os.listdir(d) if n.endswith(".eml"))


def run(*argv, **kw):
	return subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
			      timeout=60, **kw)


def test_cp_appends_once_with_crlf_and_shows_canonical_name(env, tmp_path):
	m = env.mount()
	src = tmp_path / "in.eml"
	src.write_bytes(msg("cp-one"))
	arch = os.path.join(m.mnt, "Archive")
	assert emls(arch) == []
	r = run("cp", str(src), arch + "/")
	assert r.returncode == 0, r.stderr
	assert bodies(env.conn, env.A) == [crlf(msg("cp-one"))]
	# the created name is gone, the canonical one is there at once
	names = emls(arch)
	assert len(names) == 1 and names[0] != "in.eml", names
	assert not os.path.exists(os.path.join(arch, "in.eml"))
	with open(os.path.join(arch, names[0]), "rb") as f:
		assert f.read() == crlf(msg("cp-one"))


def test_cat_redirect_appends(env):
	m = env.mount()
	p = os.path.join(m.mnt, "Archive", "x.eml")
	r = subprocess.run(["sh", "-c", "cat > '%s'" % p], input=msg("cat"), timeout=60)
	assert r.returncode == 0
	assert bodies(env.conn, env.A) == [crlf(msg("cat"))]


def test_not_a_message_fails_close_with_einval_and_sends_nothing(env, tmp_path):
	m = env.mount()
	arch = os.path.join(m.mnt, "Archive")
	for i, data in enumerate([b"hello world\n", b"\x00\x01binary", b"Subject: x\nno separator",
				  b"From alice Mon Jan 1 10:00:00 2024\nSubject: x\n\nbody\n"]):
		src = tmp_path / ("junk%d.txt" % i)
		src.write_bytes(data)
		r = run("cp", str(src), arch + "/")
		assert r.returncode != 0
		assert b"Invalid argument" in r.stderr, r.stderr
		assert not os.path.exists(os.path.join(arch, "junk%d.txt" % i))
	# straight from Python: close() itself raises
	fd = os.open(os.path.join(arch, "junk.eml"), os.O_WRONLY | os.O_CREAT, 0o644)
	os.write(fd, b"not a message\n")
	with pytest.raises(OSError) as ei:
		os.close(fd)
	assert ei.value.errno == errno.EINVAL
	assert tl.status(env.conn, env.A)["MESSAGES"] == 0
	assert not re.search(r"C: \S+ APPEND", open(m.trace, "rb").read().decode(errors="replace"))


def test_maildir_import_with_flags_and_mtime(env, tmp_path):
	m = env.mount()
	md = tmp_path / "Maildir" / "cur"
	md.mkdir(parents=True)
	names = {"1700000000.1.host:2,FRS": {"\\Flagged", "\\Answered", "\\Seen"},
		 "1700000001.2.host:2,": set(),
		 "1700000002.3.host:2,DT": {"\\Draft"}}
	for i, n in enumerate(sorted(names)):
		(md / n).write_bytes(msg("maildir%d" % i))
		os.utime(md / n, (1600000000 + i, 1600000000 + i))
	arch = os.path.join(m.mnt, "Archive")
	r = run("sh", "-c", "cp -p '%s'/* '%s'/" % (md, arch))
	assert r.returncode == 0, r.stderr
	got = tl.fetch_messages(env.conn, env.A, body=True)
	assert len(got) == 3
	by_tag = {re.search(rb"Subject: (\S+)", g.body).group(1).decode(): g for g in got}
	for i, n in enumerate(sorted(names)):
		g = by_tag["maildir%d" % i]
		assert set(g.flags) - {"\\Recent"} == names[n], (n, g.flags)
		# cp -p set the mtime before close: it is the INTERNALDATE
		t = time.mktime(time.strptime(g.internaldate[:20], "%d-%b-%Y %H:%M:%S"))
		off = int(g.internaldate[-5:-2]) * 3600 + int(g.internaldate[-5] + g.internaldate[-2:]) * 60
		assert abs((t - time.timezone - off) - (1600000000 + i)) <= 1, g.internaldate
	assert len(emls(arch)) == 3


def test_messages_are_immutable(env):
	uid = tl.append(env.conn, env.A, crlf(msg("keep")))
	m = env.mount()
	arch = os.path.join(m.mnt, "Archive")
	(name,) = emls(arch)
	p = os.path.join(arch, name)
	for flags in (os.O_WRONLY, os.O_RDWR, os.O_RDONLY | os.O_TRUNC, os.O_WRONLY | os.O_APPEND):
		with pytest.raises(OSError) as ei:
			os.open(p, flags)
		assert ei.value.errno == errno.EPERM, flags
	for call in (lambda: os.truncate(p, 0), lambda: os.chmod(p, 0o600),
		     lambda: os.chown(p, os.getuid(), os.getgid()), lambda: os.utime(p, (1, 1))):
		with pytest.raises(OSError) as ei:
			call()
		assert ei.value.errno == errno.EPERM
	r = subprocess.run(["sh", "-c", "echo x >> '%s'" % p], stderr=subprocess.PIPE, timeout=30)
	assert r.returncode != 0 and b"Operation not permitted" in r.stderr
	assert tl.fetch_body(env.conn, env.A, uid) == crlf(msg("keep"))
	assert tl.status(env.conn, env.A)["MESSAGES"] == 1


def test_folder_modes_say_what_can_change(env, tmp_path):
	"""A folder that holds messages is 0755 (file managers offer new files, delete and
	move by the write bit), messages 0444 (immutable); with -o ro everything is 0555/0444."""
	tl.append(env.conn, env.A, crlf(msg("modes")))
	m = env.mount()
	arch = os.path.join(m.mnt, "Archive")
	(name,) = emls(arch)
	assert stat.S_IMODE(os.stat(arch).st_mode) == 0o755
	assert stat.S_IMODE(os.stat(os.path.join(arch, name)).st_mode) == 0o444
	m.stop()
	ro = env.mount("ro")
	assert stat.S_IMODE(os.stat(os.path.join(ro.mnt, "Archive")).st_mode) == 0o555


def test_read_only_mount_is_erofs(env, tmp_path):
	tl.append(env.conn, env.A, crlf(msg("ro")))
	m = env.mount("ro")
	arch = os.path.join(m.mnt, "Archive")
	(name,) = emls(arch)
	assert stat.S_IMODE(os.stat(arch).st_mode) == 0o555
	with pytest.raises(OSError) as ei:
		os.open(os.path.join(arch, "new.eml"), os.O_WRONLY | os.O_CREAT, 0o644)
	assert ei.value.errno == errno.EROFS
	with pytest.raises(OSError) as ei:
		os.open(os.path.join(arch, name), os.O_WRONLY)
	assert ei.value.errno == errno.EROFS
	assert tl.status(env.conn, env.A)["MESSAGES"] == 1


def test_staged_file_visible_until_close(env):
	m = env.mount()
	arch = os.path.join(m.mnt, "Archive")
	p = os.path.join(arch, "draft.eml")
	with open(p, "wb") as f:
		f.write(msg("staged"))
		f.flush()
		assert os.stat(p).st_size == len(msg("staged"))
		assert os.path.exists(p)
		assert tl.status(env.conn, env.A)["MESSAGES"] == 0
	assert not os.path.exists(p)
	assert tl.status(env.conn, env.A)["MESSAGES"] == 1


def test_temp_name_then_rename_appends_once(env, tmp_path):
	"""rsync without --inplace: .name.XXXXXX written and closed, then renamed."""
	m = env.mount()
	arch = os.path.join(m.mnt, "Archive")
	tmp = os.path.join(arch, ".mail.eml.Ab12Cd")
	with open(tmp, "wb") as f:
		f.write(msg("rsync"))
	assert os.path.exists(tmp)
	assert tl.status(env.conn, env.A)["MESSAGES"] == 0  # a temp name waits
	# it is listed too (readdir and readdirplus), with its size
	assert ".mail.eml.Ab12Cd" in os.listdir(arch)
	ls = run("ls", "-la", arch)
	out = ls.stdout.decode()
	assert ls.returncode == 0 and ".mail.eml.Ab12Cd" in out, out
	assert [l.split()[4] for l in out.splitlines() if l.endswith(".mail.eml.Ab12Cd")] == [
		str(len(msg("rsync")))]
	os.rename(tmp, os.path.join(arch, "mail.eml"))
	assert bodies(env.conn, env.A) == [crlf(msg("rsync"))]
	assert not os.path.exists(tmp)
	assert ".mail.eml.Ab12Cd" not in os.listdir(arch)
	# an editor's backup and swap files are never sent
	for n in ("mail.eml~", ".mail.eml.swp"):
		with open(os.path.join(arch, n), "wb") as f:
			f.write(msg("backup"))
		os.unlink(os.path.join(arch, n))
	assert tl.status(env.conn, env.A)["MESSAGES"] == 1
	# rsync itself
	src = tmp_path / "src"
	src.mkdir()
	(src / "r.eml").write_bytes(msg("rsync2"))
	if shutil.which("rsync"):
		r = run("rsync", "-r", str(src) + "/", arch + "/")
		assert r.returncode == 0, r.stderr
		assert tl.status(env.conn, env.A)["MESSAGES"] == 2


def test_cp_within_mount_is_uid_copy(env):
	"""No APPEND and no download: opening the source checks its size with a 2-byte probe
	(bodies over 256 KiB; smaller ones are fetched whole by that check), the copy itself
	is one UID COPY."""
	big = msg("copyme") + b"0123456789abcdef\n" * 20000
	uid = tl.append(env.conn, env.A, crlf(big))
	m = env.mount()
	arch, other = os.path.join(m.mnt, "Archive"), os.path.join(m.mnt, "Other")
	(name,) = emls(arch)
	with open(m.trace, "rb") as f:
		f.seek(0, 2)
		start = f.tell()
	r = run("cp", os.path.join(arch, name), other + "/")
	assert r.returncode == 0, r.stderr
	assert bodies(env.conn, env.O) == [crlf(big)]
	assert tl.fetch_body(env.conn, env.A, uid) == crlf(big)
	with open(m.trace, "rb") as f:
		f.seek(start)
		tr = f.read().decode(errors="replace")
	assert re.search(r"UID COPY", tr), tr
	assert not re.search(r"C: \S+ (APPEND|UID FETCH .*BODY\.PEEK\[\](?!<))", tr), tr
	assert len(emls(other)) == 1
	# a copy by read and write is one APPEND
	r = subprocess.run(["sh", "-c", "cat '%s' > '%s'" % (os.path.join(arch, name),
							   os.path.join(other, "c.eml"))], timeout=60)
	assert r.returncode == 0
	assert tl.status(env.conn, env.O)["MESSAGES"] == 2


# ---- crash safety: kill at each step of an APPEND, remount, exactly one message ------

@pytest.mark.parametrize("where", ["append-before-send", "append-after-ok"])
def test_crash_during_append_finished_at_remount(env, tmp_path, monkeypatch, where):
	monkeypatch.setenv("IMAPFS_TEST_CRASH_AT", where)
	m = env.mount()
	monkeypatch.delenv("IMAPFS_TEST_CRASH_AT")
	src = tmp_path / "c.eml"
	src.write_bytes(msg("crash-" + where))
	r = run("cp", str(src), os.path.join(m.mnt, "Archive") + "/")
	assert r.returncode != 0  # the daemon died under it
	tl.wait_for(lambda: m.proc.poll() is not None, 20, "the daemon to abort")
	m.stop()
	# the staged file and its journal entry survived in the cache
	staging = os.path.join(m.mnt + "-xdg-cache", "imapfs")
	assert any("append-" in f for _, _, fs in os.walk(staging) for f in fs)
	m.start()
	assert bodies(env.conn, env.A) == [crlf(msg("crash-" + where))]
	assert len(emls(os.path.join(m.mnt, "Archive"))) == 1
	tl.wait_for(lambda: not any("append-" in f for _, _, fs in os.walk(staging) for f in fs),
		    10, "the staged file to go")


# ---- faults, with tests/fakeimap's MailStore -----------------------------------------

import sys  # noqa: E402
sys.path.insert(0, os.path.join(tl.source_dir(), "tests", "fakeimap"))
import fakeimap as fi  # noqa: E402
from test_mount import _FakeDv  # noqa: E402

FAKE_CAPS = "IMAP4rev1 LITERAL+ SASL-IR UIDPLUS NAMESPACE AUTH=PLAIN"


@pytest.fixture
def fake(tmp_path):
	made = []

	def make(caps=FAKE_CAPS, faults=()):
		ca, crt, key = fi.make_certs(str(tmp_path / ("certs%d" % len(made))))
		st = fi.MailStore(["INBOX", "Archive"], caps=caps)
		st.append_faults = list(faults)
		srv = fi.FakeImap(scripts=[st.script()], tls="implicit", certfile=crt,
				  keyfile=key).start()
		made.append((srv, []))
		mounts = made[-1][1]

		def mount(*opts):
			m = Mount(_FakeDv(srv.port, ca), tmp_path / "fmnt", tmp_path / "fimapfs.log",
				  opts=["timeout=5"] + list(opts))
			mounts.append(m)
			return m.start()
		return st, srv, mount
	yield make
	for srv, mounts in made:
		for m in mounts:
			m.stop()
		srv.stop()
		for m in mounts:
			assert "CRITICAL" not in m.log() and "WARNING" not in m.log(), m.log()


def _cp(m, data, name="n.eml", folder="Archive", tmp=None):
	src = tmp / name
	src.write_bytes(data)
	return run("cp", str(src), os.path.join(m.mnt, folder) + "/")


@pytest.mark.parametrize("fault", ["drop-after-store", "drop-before-store"])
def test_append_with_lost_answer_arrives_exactly_once(fake, tmp_path, fault):
	st, srv, mount = fake(faults=[fault])
	m = mount()
	r = _cp(m, msg("lost-" + fault), tmp=tmp_path)
	assert r.returncode == 0, r.stderr
	assert st.messages("Archive") == [crlf(msg("lost-" + fault))]
	# stored before the drop: found, not sent again; lost before it: sent once more
	assert st.appends == (1 if fault == "drop-after-store" else 2)
	assert len(emls(os.path.join(m.mnt, "Archive"))) == 1


def test_append_without_uidplus_finds_the_message(fake, tmp_path):
	st, srv, mount = fake(caps=FAKE_CAPS.replace("UIDPLUS ", ""))
	m = mount()
	r = _cp(m, msg("no-uidplus"), tmp=tmp_path)
	assert r.returncode == 0, r.stderr
	assert st.messages("Archive") == [crlf(msg("no-uidplus"))]
	# found by Message-ID among the new UIDs: shown under its name at once
	assert len(emls(os.path.join(m.mnt, "Archive"))) == 1
	# without a Message-ID: found by size and bytes
	r = _cp(m, b"Subject: no id\n\nbody\n", name="noid.eml", tmp=tmp_path)
	assert r.returncode == 0, r.stderr
	assert len(st.messages("Archive")) == 2
	assert len(emls(os.path.join(m.mnt, "Archive"))) == 2


def test_appendlimit_is_efbig(fake, tmp_path):
	st, srv, mount = fake(caps=FAKE_CAPS + " APPENDLIMIT=2000")
	m = mount()
	r = _cp(m, msg("big") + b"x" * 3000 + b"\n", tmp=tmp_path)
	assert r.returncode != 0 and b"File too large" in r.stderr, r.stderr
	# under the limit in LF bytes but over it in CRLF: refused at close
	small = msg("edge")
	body = small + b"\n" * (2000 - len(small))
	assert len(body) <= 2000 and len(crlf(body)) > 2000
	r = _cp(m, body, name="edge.eml", tmp=tmp_path)
	assert r.returncode != 0 and b"File too large" in r.stderr, r.stderr
	assert st.messages("Archive") == [] and st.appends == 0


def test_kill_while_append_answer_pending_then_remount(fake, tmp_path):
	"""kill -9 after the APPEND was sent (and stored), before its OK was processed."""
	st, srv, mount = fake(faults=["stall-after-store"])
	m = mount()
	(tmp_path / "k.eml").write_bytes(msg("kill"))
	cp = subprocess.Popen(["cp", str(tmp_path / "k.eml"), os.path.join(m.mnt, "Archive") + "/"],
			      stderr=subprocess.PIPE)
	tl.wait_for(lambda: st.appends == 1, 20, "the APPEND")
	os.kill(m.proc.pid, 9)
	cp.communicate(timeout=30)
	m.stop()
	m.start()
	assert st.messages("Archive") == [crlf(msg("kill"))]
	assert st.appends == 1  # found, not sent again
	assert len(emls(os.path.join(m.mnt, "Archive"))) == 1
