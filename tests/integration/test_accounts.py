# SPDX-License-Identifier: GPL-2.0-or-later
"""Everyday use (issue 15) against a real Dovecot and real mounts: accounts in
$XDG_CONFIG_HOME/imapfs/config (`imapfs NAME DIR`, the command line overriding the file,
one-line refusals naming file, line and key, a password only in a private file and never
in argv or the environment), the options mount(8) passes, an fstab line and
`mount -t fuse.imapfs` (as root, in a private mount namespace where imapfs is on mount's
default PATH), the systemd user unit (systemd-analyze verify, meson install), and a
remount right after fusermount3 -u, also when the old daemon is slow to let go of the
cache.
"""

import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import imapfs_testlib as tl
from test_mount import Mount, _mounted, emls, mount  # noqa: F401 (fixture)


class AccountMount(Mount):
	"""imapfs -f [-o ...] ACCOUNT MOUNTPOINT: everything else comes from the config file."""

	def __init__(self, dv, mnt, log, account, opts=()):
		super().__init__(dv, mnt, log, opts=opts, password=False)
		self.account = account

	def argv(self, foreground=True):
		a = [tl.imapfs_bin()] + (["-f"] if foreground else [])
		for o in self.opts:
			a += ["-o", o]
		return a + [self.account, self.mnt]


@pytest.fixture
def config(tmp_path, monkeypatch):
	"""config(text, mode=0o600) writes $XDG_CONFIG_HOME/imapfs/config; returns its path."""
	home = tmp_path / "xdg-config"
	monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
	path = home / "imapfs" / "config"

	def write(text, mode=0o600):
		path.parent.mkdir(parents=True, exist_ok=True)
		path.write_text(text)
		path.chmod(mode)
		return str(path)

	return write


@pytest.fixture
def amount(tmp_path):
	made = []

	def make(dv, account="work", opts=()):
		n = len(made)
		m = AccountMount(dv, tmp_path / ("amnt%d" % n), tmp_path / ("a%d.log" % n), account,
				 opts)
		made.append(m)
		return m.start()

	yield make
	for m in made:
		m.stop()
	for m in made:
		assert "CRITICAL" not in m.log() and "WARNING" not in m.log(), m.log()


def account_text(dv, extra="", name="work"):
	return ("# imapfs accounts\n"
		"[account %s]\n"
		"url = %s\n"
		"cafile = %s\n"
		"password = %s\n"
		"%s" % (name, dv.url(), dv.ca, dv.users["alice"], extra))


def uids_of(conn, folder="INBOX"):
	return sorted(m.uid for m in tl.fetch_messages(conn, folder))


def test_account_mounts_and_command_line_wins(dovecot_slash, config, amount):
	dv = dovecot_slash
	pw = dv.users["alice"]
	config(account_text(dv, "names = uid\nmax_conns = 2\nmark_seen = false\n"))
	m = amount(dv)
	inbox = os.path.join(m.mnt, "INBOX")
	uids = uids_of(dv.imap())
	assert sorted(os.listdir(inbox), key=lambda n: int(n[:-4])) == ["%d.eml" % u for u in uids]
	# the password from the file is in neither the daemon's argv nor its environment
	for what in ("cmdline", "environ"):
		with open("/proc/%d/%s" % (m.proc.pid, what), "rb") as f:
			assert pw.encode() not in f.read(), what
	assert "work" in open("/proc/%d/cmdline" % m.proc.pid, "rb").read().decode()
	m.stop()
	# -o names=readable on the command line overrides the file's names = uid
	m2 = amount(dv, opts=["names=readable"])
	names = emls(os.path.join(m2.mnt, "INBOX"))
	assert sorted(int(re.search(r"_(\d+)\.eml$", n).group(1)) for n in names) == uids
	assert all(not re.fullmatch(r"\d+\.eml", n) for n in names)


def run_account(account, mnt, *opts):
	os.makedirs(mnt, exist_ok=True)
	env = dict(os.environ)
	env.pop("IMAPFS_PASSWORD", None)
	argv = [tl.imapfs_bin()]
	for o in opts:
		argv += ["-o", o]
	r = subprocess.run(argv + [account, str(mnt)], env=env, stdin=subprocess.DEVNULL,
			   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
	mounted = _mounted(str(mnt))
	if mounted:
		subprocess.run(["fusermount3", "-u", str(mnt)], timeout=30)
	return r, mounted


BAD = [
	# (extra lines after the account's 5 lines, mode, line, expected text)
	("bogus = 1\n", 0o600, 6, "bogus: unknown key"),
	("max_conns = 0\n", 0o600, 6, "max_conns: '0' is not a whole number from 1 to 64"),
	("mark_seen = maybe\n", 0o600, 6, "mark_seen: 'maybe' is not true or false"),
	("sync = sometimes\n", 0o600, 6, "sync: 'sometimes' is not one of none, headers, new, all"),
	("cache_size = lots\n", 0o600, 6, "cache_size: 'lots' is not a size"),
	("timeout = 5\njust some words\n", 0o600, 7, "not a 'key = value' line"),
	("\n[general]\nx = 1\n", 0o600, 7, "[general]: unknown section"),
	("", 0o644, 5, "password: the file holds a secret but others may read it (mode 0644)"),
	("", 0o640, 5, "password: the file holds a secret but others may read it (mode 0640)"),
]


@pytest.mark.parametrize("extra,mode,line,says", BAD)
def test_bad_config_is_one_line(dovecot_slash, config, tmp_path, extra, mode, line, says):
	path = config(account_text(dovecot_slash, extra), mode)
	r, mounted = run_account("work", tmp_path / "mnt")
	err = r.stderr.decode()
	assert r.returncode != 0 and not mounted
	assert err.count("\n") == 1, err
	assert err.startswith("imapfs: %s:%d: " % (path, line)), err
	assert says in err, err
	assert dovecot_slash.users["alice"] not in err


def test_missing_url_account_and_file(dovecot_slash, config, tmp_path, monkeypatch):
	path = config("[account work]\ncafile = /x\n\n[account home]\nurl = imaps://a@b\n")
	r, _ = run_account("work", tmp_path / "mnt")
	assert r.stderr.decode() == "imapfs: %s:1: url: missing in [account work]\n" % path
	path = config(account_text(dovecot_slash))
	r, _ = run_account("other", tmp_path / "mnt")
	assert r.returncode != 0
	assert r.stderr.decode() == ("imapfs: %s: no [account other] section (a URL starts with "
				     "imaps:// or imap://)\n" % path)
	monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "nowhere"))
	r, _ = run_account("work", tmp_path / "mnt")
	assert r.stderr.decode().count("\n") == 1
	assert "no account 'work'" in r.stderr.decode() and "does not exist" in r.stderr.decode()


def test_options_mount8_passes_are_accepted(dovecot_slash, config, tmp_path):
	"""What mount(8)/mount.fuse3 and fstab lines put into -o does not stop the mount."""
	config(account_text(dovecot_slash))
	mnt = str(tmp_path / "mnt")
	os.makedirs(mnt)
	env = dict(os.environ)
	env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
	r = subprocess.run([tl.imapfs_bin(), "work", mnt, "-o",
			    "rw,nosuid,nodev,noexec,noatime,noauto,user,_netdev,nofail,defaults,"
			    "x-systemd.automount,comment=imapfs"], env=env,
			   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
			   timeout=60)
	try:
		assert r.returncode == 0, r.stderr
		parts = _mounted(mnt)
		assert parts and parts[2] == "fuse.imapfs"
		assert {"nosuid", "nodev", "noexec"} <= set(parts[3].split(","))
		assert "INBOX" in os.listdir(mnt)
	finally:
		if _mounted(mnt):
			subprocess.run(["fusermount3", "-u", mnt], timeout=30)


# ---- fstab and mount(8) --------------------------------------------------------------

MOUNT8_SCRIPT = r"""
set -e
# mount(8) runs mount.fuse3 with no PATH: /bin/sh looks in /usr/local/sbin first
mount --bind "$BIN_DIR" /usr/local/sbin
mount -T "$FSTAB" "$MNT1"
findmnt -n -o SOURCE,FSTYPE,OPTIONS "$MNT1"
ls "$MNT1"
umount "$MNT1"
mount -t fuse.imapfs work "$MNT2" -o ro
findmnt -n -o SOURCE,FSTYPE,OPTIONS "$MNT2"
ls "$MNT2/INBOX" | wc -l
fusermount3 -u "$MNT2"
echo done
"""


def test_fstab_and_mount_t(dovecot_slash, config, tmp_path):
	if os.geteuid() != 0:
		pytest.skip("needs root: mount(8) with an fstab line, in a private mount namespace")
	for tool in ("unshare", "findmnt", "mount", "/sbin/mount.fuse3"):
		if not shutil.which(tool):
			pytest.skip("%s is not installed" % tool)
	config(account_text(dovecot_slash))
	bin_dir = tmp_path / "bin"
	bin_dir.mkdir()
	os.symlink(tl.imapfs_bin(), bin_dir / "imapfs")
	mnt1, mnt2 = tmp_path / "Mail", tmp_path / "Mail2"
	mnt1.mkdir()
	mnt2.mkdir()
	fstab = tmp_path / "fstab"
	fstab.write_text("work %s fuse.imapfs noauto,user,_netdev 0 0\n" % mnt1)
	env = dict(os.environ, BIN_DIR=str(bin_dir), FSTAB=str(fstab), MNT1=str(mnt1),
		   MNT2=str(mnt2), XDG_CACHE_HOME=str(tmp_path / "cache"))
	env.pop("IMAPFS_PASSWORD", None)
	r = subprocess.run(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
			    MOUNT8_SCRIPT], env=env, stdin=subprocess.DEVNULL,
			   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
	out = r.stdout.decode().splitlines()
	assert r.returncode == 0, (r.stdout, r.stderr)
	assert out[-1] == "done"
	src, fstype, opts = out[0].split()
	assert (src, fstype) == ("imapfs:alice@127.0.0.1", "fuse.imapfs")
	assert {"nosuid", "nodev"} <= set(opts.split(","))
	assert "INBOX" in out[1:]
	src, fstype, opts = [ln for ln in out if ln.startswith("imapfs:")][1].split()
	assert fstype == "fuse.imapfs" and "ro" in opts.split(",")
	assert int(out[-2]) == len(uids_of(dovecot_slash.imap()))
	# both daemons are gone with their mounts (their namespace went with them)
	tl.wait_for(lambda: not [p for p in os.listdir("/proc") if p.isdigit() and
				 _cmdline_has(p, str(mnt1), str(mnt2))], 15, "the daemons to exit")


def _cmdline_has(pid, *words):
	try:
		with open("/proc/%s/cmdline" % pid, "rb") as f:
			argv = f.read().split(b"\0")
	except OSError:
		return False
	return argv and argv[0].endswith(b"imapfs") and any(w.encode() in argv for w in words)


# ---- systemd ---------------------------------------------------------------------------

def unit_template():
	with open(os.path.join(tl.source_dir(), "dist", "imapfs@.service.in")) as f:
		return f.read()


def test_systemd_unit(tmp_path):
	text = unit_template()
	# what the unit promises
	assert re.search(r"^ExecStart=@BINDIR@/imapfs -f %i ", text, re.M)
	assert re.search(r"^ExecStop=@FUSERMOUNT@ -u ", text, re.M)
	assert re.search(r"^Restart=on-failure$", text, re.M)
	assert re.search(r"^After=network-online.target$", text, re.M)
	assert re.search(r"^Wants=network-online.target$", text, re.M)
	if not shutil.which("systemd-analyze"):
		pytest.skip("systemd-analyze is not installed: the unit is not verified")
	units = tmp_path / "units"
	units.mkdir()
	unit = units / "imapfs@work.service"
	unit.write_text(text.replace("@BINDIR@", os.path.dirname(tl.imapfs_bin()))
			.replace("@FUSERMOUNT@", shutil.which("fusermount3") or "/usr/bin/fusermount3"))
	runtime = tmp_path / "runtime"
	runtime.mkdir(mode=0o700)
	env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime))
	r = subprocess.run(["systemd-analyze", "verify", "--user", "--man=no", str(unit)],
			   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
	assert r.returncode == 0 and not r.stdout.strip(), r.stdout.decode()


def test_meson_install_puts_unit_and_example(tmp_path):
	build = tl.build_dir()
	if not os.path.exists(os.path.join(build, "meson-private")) or not shutil.which("meson"):
		pytest.skip("no meson build directory at %s" % build)
	dest = tmp_path / "dest"
	r = subprocess.run(["meson", "install", "-C", build, "--no-rebuild", "--destdir",
			    str(dest)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
	assert r.returncode == 0, r.stdout.decode()
	found = {p.name: p for p in dest.rglob("*") if p.is_file()}
	assert "imapfs@.service" in found and "config.example" in found, sorted(found)
	unit = found["imapfs@.service"]
	assert unit.parent.parts[-3:] == ("lib", "systemd", "user")
	assert "@" not in unit.read_text().replace("imapfs@", "").replace("%i", "")
	# the example is a valid config: every key known, values right
	assert "[account work]" in found["config.example"].read_text()


def test_example_config_is_accepted(config, tmp_path):
	with open(os.path.join(tl.source_dir(), "dist", "config.example")) as f:
		config(f.read(), 0o600)
	# the accounts parse; mounting then fails on the (made-up) password source or host
	for name in ("work", "home", "gmail"):
		r, mounted = run_account(name, tmp_path / "mnt", "timeout=2")
		err = r.stderr.decode()
		assert r.returncode != 0 and not mounted
		assert "config:" not in err, err  # no complaint about the file itself


# ---- a remount at once -----------------------------------------------------------------

def start_bg(dv, mnt, cache, *opts):
	env = dict(os.environ, IMAPFS_PASSWORD=dv.users["alice"])
	argv = [tl.imapfs_bin(), "-o", "cafile=" + dv.ca, "-o", "cache_dir=" + str(cache)]
	for o in opts:
		argv += ["-o", o]
	return subprocess.run(argv + [dv.url(), str(mnt)], env=env, stdin=subprocess.DEVNULL,
			      stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


def lock_holder(cache):
	with open(os.path.join(cache, "lock")) as f:
		return int(f.read().split()[0])


def test_remount_at_once(fresh_dovecot, tmp_path):
	dv = fresh_dovecot("slash", corpus_n=5)
	mnt, cache = tmp_path / "mnt", tmp_path / "cache"
	mnt.mkdir()
	try:
		for _ in range(3):
			r = start_bg(dv, mnt, cache)
			assert r.returncode == 0, r.stderr
			assert "INBOX" in os.listdir(mnt)
			subprocess.run(["fusermount3", "-u", str(mnt)], check=True, timeout=30)
	finally:
		if _mounted(str(mnt)):
			subprocess.run(["fusermount3", "-u", str(mnt)], timeout=30)


def test_remount_at_once_while_the_old_daemon_says_goodbye(fresh_dovecot, tmp_path):
	"""The server stops answering (its imap processes are stopped): after fusermount3 -u
	the old daemon spends up to its LOGOUT timeout (2 s) leaving, holding the cache. A
	remount right away waits for it instead of failing with "cache in use"."""
	dv = fresh_dovecot("slash", corpus_n=5)
	mnt, cache = tmp_path / "mnt", tmp_path / "cache"
	mnt.mkdir()
	stopped = []
	try:
		r = start_bg(dv, mnt, cache, "max_conns=3")
		assert r.returncode == 0, r.stderr
		for root, dirs, files in os.walk(str(mnt)):
			pass  # every folder listed: several connections in use
		old = lock_holder(cache)
		for p in dv.process_ids():
			try:
				with open("/proc/%d/cmdline" % p, "rb") as f:
					cmd = f.read()
			except OSError:
				continue
			if cmd.startswith(b"dovecot/imap ") or b"imap [alice" in cmd:
				os.kill(p, signal.SIGSTOP)
				stopped.append(p)
		assert stopped
		subprocess.run(["fusermount3", "-u", str(mnt)], check=True, timeout=30)
		t0 = time.monotonic()
		r = start_bg(dv, mnt, cache)
		took = time.monotonic() - t0
		assert r.returncode == 0, r.stderr
		assert not tl.pid_alive(old)
		assert lock_holder(cache) != old
		assert "INBOX" in os.listdir(mnt)
		print("remount took %.2f s" % took)
	finally:
		for p in stopped:
			os.kill(p, signal.SIGCONT)
		if _mounted(str(mnt)):
			subprocess.run(["fusermount3", "-u", str(mnt)], timeout=30)


def test_help_tells_of_accounts_and_oauth(config):
	path = config("")
	r = subprocess.run([tl.imapfs_bin(), "--help"], stdout=subprocess.PIPE,
			   stderr=subprocess.STDOUT, timeout=30)
	out = r.stdout.decode()
	assert r.returncode == 0
	assert "[options] ACCOUNT MOUNTPOINT" in out
	assert "an [account NAME] section of %s" % path in out
	assert "-o oauth_token_command=CMD" in out
