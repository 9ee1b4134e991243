# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers shared by every imapfs integration test: a private Dovecot per test or session.

Wraps scripts/dovecot and scripts/corpus (start/stop by PID, never by name), gives logged-in
imaplib connections with the generated CA verified, and reads server state independently
of the C code: NAMESPACE and LIST parsing, a modified UTF-7 codec, counts, flags, bodies.
Stable API: see /work/notes/testlib.md. Add, never change signatures.
"""

import atexit
import base64
import collections
import imaplib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

PYTHON = "/usr/bin/python3"


# ---------------------------------------------------------------------------------------
# Paths

def sbin(name):
	"""Dovecot's programs live in /usr/sbin and /usr/bin; PATH may lack /usr/sbin."""
	for d in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
		if os.access(os.path.join(d, name), os.X_OK):
			return os.path.join(d, name)
	return name


def source_dir():
	"""The repository root (env IMAPFS_SOURCE_DIR, else derived from this file)."""
	d = os.environ.get("IMAPFS_SOURCE_DIR")
	if d:
		return d
	return os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def build_dir():
	"""The meson build dir (env IMAPFS_BUILD_DIR, else SOURCE/build-main)."""
	return os.environ.get("IMAPFS_BUILD_DIR") or os.path.join(source_dir(), "build-main")


def imapfs_bin():
	"""Path of the imapfs executable (env IMAPFS_BIN, else BUILD/fs/imapfs)."""
	return os.environ.get("IMAPFS_BIN") or os.path.join(build_dir(), "fs", "imapfs")


def imap_cli_bin():
	"""Path of tests/imap-cli (env IMAP_CLI, else BUILD/tests/imap-cli); may not exist."""
	return os.environ.get("IMAP_CLI") or os.path.join(build_dir(), "tests", "imap-cli")


def script(name):
	return os.path.join(source_dir(), "scripts", name)


# ---------------------------------------------------------------------------------------
# Process bookkeeping: everything started here is stopped by PID at exit, even on failure.

_LIVE = set()


def _stop_all():
	for dv in list(_LIVE):
		try:
			dv.stop()
		except Exception as e:  # noqa: BLE001 - best effort at exit
			print("imapfs_testlib: stopping %s failed: %s" % (dv.dir, e), file=sys.stderr)


atexit.register(_stop_all)


def _on_sigterm(signum, frame):
	_stop_all()
	signal.signal(signum, signal.SIG_DFL)
	os.kill(os.getpid(), signum)


def install_signal_handlers():
	"""Stop every instance on SIGTERM/SIGHUP too (meson's timeout sends SIGTERM)."""
	for s in (signal.SIGTERM, signal.SIGHUP):
		if signal.getsignal(s) in (signal.SIG_DFL, None):
			signal.signal(s, _on_sigterm)


def wait_for(cond, timeout=30, what="condition", step=0.05):
	"""Polls @cond until it returns something true (returned), at most @timeout seconds;
	AssertionError naming @what otherwise. The way tests wait: on a condition, never a
	fixed sleep."""
	deadline = time.monotonic() + timeout
	while time.monotonic() < deadline:
		v = cond()
		if v:
			return v
		time.sleep(step)
	raise AssertionError("timed out waiting for " + what)


def expand_uid_set(text, uids):
	"""The members of @uids (an iterable of ints) inside the IMAP UID set @text
	("1:3,7,9:*"), sorted; '*' is the highest of @uids."""
	uids = set(uids)
	top = max(uids) if uids else 0
	out = set()
	for part in text.split(","):
		a, _, b = part.partition(":")
		a = top if a == "*" else int(a)
		b = a if not b else top if b == "*" else int(b)
		out |= {u for u in uids if min(a, b) <= u <= max(a, b)}
	return sorted(out)


def pid_alive(pid):
	try:
		with open("/proc/%d/stat" % pid) as f:
			st = f.read()
	except OSError:
		return False
	return st[st.rfind(")") + 2:].split()[0] != "Z"


def descendants(pid):
	"""PIDs of all descendants of pid."""
	kids = collections.defaultdict(list)
	for e in os.listdir("/proc"):
		if not e.isdigit():
			continue
		try:
			with open("/proc/%s/stat" % e) as f:
				st = f.read()
			kids[int(st[st.rfind(")") + 2:].split()[1])].append(int(e))
		except (OSError, ValueError, IndexError):
			continue
	out, todo = [], [pid]
	while todo:
		for c in kids.get(todo.pop(), []):
			out.append(c)
			todo.append(c)
	return out


def kill_and_wait(pid, sig=signal.SIGTERM, timeout=10.0):
	"""Send sig to pid, wait until it is gone (SIGKILL after timeout). True if it was alive."""
	if not pid_alive(pid):
		return False
	try:
		os.kill(pid, sig)
	except ProcessLookupError:
		return False
	deadline = time.time() + timeout
	while time.time() < deadline:
		if not pid_alive(pid):
			return True
		time.sleep(0.02)
	try:
		os.kill(pid, signal.SIGKILL)
	except ProcessLookupError:
		pass
	while pid_alive(pid):
		time.sleep(0.02)
	return True


def free_port():
	with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
		s.bind(("127.0.0.1", 0))
		return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# Modified UTF-7 (RFC 3501 5.1.3), independent of the C code.

def mutf7_decode(s):
	"""Modified UTF-7 (bytes or str) -> str. Raises ValueError on malformed input."""
	if isinstance(s, bytes):
		s = s.decode("ascii")
	out, i = [], 0
	while i < len(s):
		c = s[i]
		if c != "&":
			if not (0x20 <= ord(c) <= 0x7e):
				raise ValueError("non-printable in mUTF-7: %r" % s)
			out.append(c)
			i += 1
			continue
		j = s.find("-", i + 1)
		if j < 0:
			raise ValueError("unterminated shift in %r" % s)
		if j == i + 1:
			out.append("&")
		else:
			b64 = s[i + 1:j].replace(",", "/")
			if not re.fullmatch(r"[A-Za-z0-9+/]+", b64):
				raise ValueError("bad base64 in %r" % s)
			raw = base64.b64decode(b64 + "=" * (-len(b64) % 4))
			if len(raw) % 2:
				raise ValueError("odd UTF-16 length in %r" % s)
			out.append(raw.decode("utf-16-be"))
		i = j + 1
	return "".join(out)


def mutf7_encode(s):
	"""str -> modified UTF-7 str."""
	out, buf = [], []

	def flush():
		if buf:
			raw = "".join(buf).encode("utf-16-be")
			out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
			buf.clear()

	for c in s:
		if 0x20 <= ord(c) <= 0x7e:
			flush()
			out.append("&-" if c == "&" else c)
		else:
			buf.append(c)
	flush()
	return "".join(out)


def quote(s):
	"""An IMAP quoted string for imaplib arguments (ASCII only; mUTF-7 encode first)."""
	if isinstance(s, bytes):
		s = s.decode()
	return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mbox(name):
	"""UTF-8 mailbox name -> quoted mUTF-7 argument for imaplib."""
	return quote(mutf7_encode(name))


# ---------------------------------------------------------------------------------------
# A small parser for IMAP response data as imaplib returns it (lines and literal tuples).

class _Lit(bytes):
	pass


def _chunks(data):
	"""imaplib data list -> list of bytes and _Lit, with '{N}' markers removed."""
	out = []
	for el in data:
		if el is None:
			continue
		if isinstance(el, tuple):
			head, lit = el[0], el[1]
			head = re.sub(rb"\{\d+\+?\}$", b"", head)
			out.append(head)
			out.append(_Lit(lit))
		else:
			out.append(el + b" ")
	return out


def parse_sexp(data):
	"""Parse imaplib response data into nested Python lists.

	Atoms and quoted strings are bytes, NIL is None, literals are bytes, parenthesized
	lists are lists. Returns the flat top-level list of items."""
	if isinstance(data, (bytes, tuple)):
		data = [data]
	toks = []
	for ch in _chunks(data):
		if isinstance(ch, _Lit):
			toks.append(("lit", bytes(ch)))
			continue
		i, n = 0, len(ch)
		while i < n:
			c = ch[i:i + 1]
			if c in b" \r\n\t":
				i += 1
			elif c == b"(":
				toks.append(("(", None))
				i += 1
			elif c == b")":
				toks.append((")", None))
				i += 1
			elif c == b'"':
				j, buf = i + 1, bytearray()
				while j < n and ch[j:j + 1] != b'"':
					if ch[j:j + 1] == b"\\":
						j += 1
					buf += ch[j:j + 1]
					j += 1
				toks.append(("str", bytes(buf)))
				i = j + 1
			else:
				j = i
				depth = 0
				while j < n:
					cj = ch[j:j + 1]
					if cj == b"[":
						depth += 1
					elif cj == b"]":
						depth -= 1
					elif depth <= 0 and cj in b" ()\r\n":
						break
					j += 1
				atom = ch[i:j]
				toks.append(("nil", None) if atom.upper() == b"NIL" else ("atom", atom))
				i = j
	stack = [[]]
	for kind, val in toks:
		if kind == "(":
			stack.append([])
		elif kind == ")":
			if len(stack) > 1:
				lst = stack.pop()
				stack[-1].append(lst)
		else:
			stack[-1].append(val)
	while len(stack) > 1:
		lst = stack.pop()
		stack[-1].append(lst)
	return stack[0]


def check(res, what="command"):
	"""imaplib (typ, data) -> data; raises AssertionError unless typ == 'OK'."""
	typ, data = res
	if typ != "OK":
		raise AssertionError("%s failed: %s %r" % (what, typ, data))
	return data


# ---------------------------------------------------------------------------------------
# Namespaces, folders, messages over imaplib

Folder = collections.namedtuple("Folder", "name raw delimiter flags namespace")
Folder.__doc__ = """One LIST entry: name (decoded UTF-8, full server name), raw (mUTF-7 bytes),
delimiter (str or None), flags (tuple of str such as '\\\\Noselect', '\\\\Sent'), namespace
('personal'|'other'|'shared')."""

Message = collections.namedtuple("Message", "uid flags size internaldate body")
Message.__doc__ = """One message: uid (int), flags (tuple of str), size (int, RFC822.SIZE),
internaldate (str as sent by the server), body (bytes or None)."""


def namespaces(conn):
	"""NAMESPACE -> {'personal': [(prefix, delim)], 'other': [...], 'shared': [...]};
	prefixes are decoded UTF-8 strings, delim a str or None."""
	data = check(conn.namespace(), "NAMESPACE")
	items = parse_sexp(data)
	out = {}
	for key, lst in zip(("personal", "other", "shared"), items[:3]):
		out[key] = []
		for ns in lst or []:
			prefix = mutf7_decode(ns[0])
			delim = ns[1].decode() if ns[1] is not None else None
			out[key].append((prefix, delim))
	return out


def _parse_list(data):
	"""imaplib LIST data -> [[flags, delim, name]]; a literal name comes as a tuple
	followed by the (empty) rest of its line."""
	out = []
	for el in data:
		if el is None or el == b"":
			continue
		items = parse_sexp([el])
		if len(items) >= 3:
			out.append(items[:3])
	return out


def list_folders(conn, pattern="*", reference=""):
	"""LIST reference pattern -> [Folder] (namespace not classified: 'personal')."""
	data = check(conn.list(quote(reference), quote(pattern)), "LIST")
	out = []
	for flags, delim, name in _parse_list(data):
		if isinstance(name, int):
			name = str(name).encode()
		out.append(Folder(mutf7_decode(name), name, delim.decode() if delim else None,
				  tuple(f.decode() for f in flags), "personal"))
	return out


def list_all_folders(conn):
	"""Every folder in every namespace, each LISTed by its prefix; deduplicated, sorted by name."""
	ns = namespaces(conn)
	seen = {}
	for kind in ("personal", "other", "shared"):
		for prefix, delim in ns[kind]:
			pats = [mutf7_encode(prefix) + "*"]
			if prefix and delim and prefix.endswith(delim):
				# the namespace root itself (e.g. "user" for "user.")
				pats.append(mutf7_encode(prefix[:-len(delim)]))
			for pat in pats:
				for f in list_folders(conn, pat):
					if f.name not in seen:
						seen[f.name] = f._replace(namespace=kind)
			if kind == "personal":
				for f in list_folders(conn, "INBOX"):
					seen.setdefault(f.name, f)
	return [seen[k] for k in sorted(seen)]


def select(conn, folder, readonly=True):
	"""EXAMINE (default) or SELECT a UTF-8 folder name; returns the message count."""
	data = check(conn.select(mbox(folder), readonly=readonly), "SELECT " + folder)
	return int(data[0])


def status(conn, folder, items=("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN")):
	"""STATUS folder (items) -> {item: int}."""
	data = check(conn.status(mbox(folder), "(" + " ".join(items) + ")"), "STATUS " + folder)
	items_l = parse_sexp(data)
	lst = next(x for x in items_l if isinstance(x, list))
	return {lst[i].decode().upper(): int(lst[i + 1]) for i in range(0, len(lst) - 1, 2)}


def folder_counts(conn, folders=None):
	"""{folder: message count} for all selectable folders (or the given UTF-8 names)."""
	if folders is None:
		folders = [f.name for f in list_all_folders(conn)
			   if not any(x.lower() in ("\\noselect", "\\nonexistent") for x in f.flags)]
	return {f: status(conn, f, ("MESSAGES",))["MESSAGES"] for f in folders}


def _fetch_items(data):
	"""UID FETCH response data -> list of dicts {ITEM: value}."""
	items = parse_sexp(data)
	out = []
	i = 0
	while i < len(items):
		if isinstance(items[i], bytes) and items[i].isdigit() and i + 1 < len(items) \
				and isinstance(items[i + 1], list):
			lst = items[i + 1]
			d = {}
			for k in range(0, len(lst) - 1, 2):
				d[lst[k].decode().upper()] = lst[k + 1]
			out.append(d)
			i += 2
		else:
			i += 1
	return out


def fetch_messages(conn, folder, body=False, uids="1:*"):
	"""[Message] of a folder in UID order (EXAMINE + UID FETCH; never sets \\Seen)."""
	n = select(conn, folder, readonly=True)
	if n == 0:
		return []
	what = "(UID FLAGS RFC822.SIZE INTERNALDATE%s)" % (" BODY.PEEK[]" if body else "")
	data = check(conn.uid("FETCH", uids, what), "FETCH")
	msgs = {}
	for d in _fetch_items(data):
		if "UID" not in d:
			continue
		uid = int(d["UID"])
		m = msgs.get(uid) or Message(uid, (), 0, None, None)
		if "FLAGS" in d:
			m = m._replace(flags=tuple(f.decode() for f in d["FLAGS"]))
		if "RFC822.SIZE" in d:
			m = m._replace(size=int(d["RFC822.SIZE"]))
		if "INTERNALDATE" in d:
			m = m._replace(internaldate=d["INTERNALDATE"].decode())
		if "BODY[]" in d:
			m = m._replace(body=d["BODY[]"])
		msgs[uid] = m
	return [msgs[u] for u in sorted(msgs)]


def fetch_flags(conn, folder):
	"""{uid: set of flags} for a folder."""
	return {m.uid: set(m.flags) for m in fetch_messages(conn, folder)}


def fetch_body(conn, folder, uid):
	"""BODY.PEEK[] of one message as bytes."""
	ms = fetch_messages(conn, folder, body=True, uids=str(uid))
	if not ms:
		raise KeyError("no UID %d in %s" % (uid, folder))
	return ms[0].body


def append(conn, folder, data, flags=(), date=None):
	"""APPEND bytes to a UTF-8 folder; returns the new UID (from APPENDUID) or None."""
	fl = "(" + " ".join(flags) + ")" if flags else None
	typ, resp = conn.append(mbox(folder), fl, date or imaplib.Time2Internaldate(time.time()),
				data)
	check((typ, resp), "APPEND")
	m = re.search(rb"APPENDUID \d+ (\d+)", resp[0] or b"")
	return int(m.group(1)) if m else None


# ---------------------------------------------------------------------------------------
# The private Dovecot

def _read_kv(path):
	out = {}
	with open(path) as f:
		for line in f:
			line = line.strip()
			if "=" in line:
				k, v = line.split("=", 1)
				out[k] = v
	return out


class Dovecot:
	"""A private Dovecot under a fresh temporary directory (scripts/dovecot).

	d = Dovecot().start("slash", corpus_n=60); conn = d.imap(); ...; d.stop()
	Also a context manager. Attributes after start: dir, host, port_imap, port_imaps, ca,
	users {'alice': pw, 'bob': pw}, layout, delimiter, personal_prefix, pid, corpus."""

	host = "127.0.0.1"

	def __init__(self, dir=None, keep=None):
		self.dir = dir
		self._own_dir = dir is None
		self.keep = keep if keep is not None else bool(os.environ.get("IMAPFS_KEEP_TEST_DIRS"))
		self.layout = None
		self.port_imap = self.port_imaps = None
		self.users = {}
		self.corpus = None
		self.pid = None
		self._conns = []

	# -- lifecycle
	def start(self, layout="slash", corpus_n=0, seed=1, user="alice", oauth2_url=None,
		  oauth2_mechs=None):
		"""oauth2_url: also accept OAUTHBEARER/XOAUTH2 tokens, checked by a POST to this
		RFC 7662 introspection URL (see OAuth2Introspection); oauth2_mechs: offer only
		"oauthbearer" or "xoauth2"."""
		if self.dir is None:
			self.dir = tempfile.mkdtemp(prefix="imapfs-dovecot-", dir="/tmp")
		self.layout = layout
		extra = ["--oauth2-url", oauth2_url] if oauth2_url else []
		extra += ["--oauth2-mechs", oauth2_mechs] if oauth2_mechs else []
		r = subprocess.run([PYTHON, script("dovecot"), "start", self.dir, "--layout", layout] + extra,
				   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
				   stderr=subprocess.STDOUT, timeout=120)
		_LIVE.add(self)
		if r.returncode != 0:
			raise RuntimeError("scripts/dovecot start failed:\n" + r.stdout.decode(errors="replace"))
		self._load()
		if corpus_n:
			self.fill(corpus_n, seed=seed, user=user)
		return self

	def fill(self, n, seed=1, user="alice"):
		"""Run scripts/corpus on this server; loads DIR/corpus.json into self.corpus."""
		r = subprocess.run([PYTHON, script("corpus"), self.dir, str(n), "--seed", str(seed),
				    "--user", user], stdin=subprocess.DEVNULL,
				   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=3600)
		if r.returncode != 0:
			raise RuntimeError("scripts/corpus failed:\n" + r.stdout.decode(errors="replace"))
		self._load()
		return self.corpus

	def _load(self):
		ports = _read_kv(os.path.join(self.dir, "ports"))
		self.port_imap = int(ports["imap"])
		self.port_imaps = int(ports["imaps"])
		self.users = _read_kv(os.path.join(self.dir, "users"))
		with open(os.path.join(self.dir, "run", "master.pid")) as f:
			self.pid = int(f.read().strip())
		cj = os.path.join(self.dir, "corpus.json")
		if os.path.exists(cj):
			with open(cj) as f:
				self.corpus = json.load(f)

	def stop(self):
		"""Stop the server by its PID, wait until all its processes are gone, remove DIR."""
		for c in self._conns:
			try:
				c.shutdown()
			except Exception:  # noqa: BLE001
				pass
		self._conns = []
		if self.dir and os.path.isdir(self.dir):
			pids = []
			if self.pid and pid_alive(self.pid):
				pids = [self.pid] + descendants(self.pid)
			subprocess.run([PYTHON, script("dovecot"), "stop", self.dir],
				       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
				       stderr=subprocess.DEVNULL, timeout=60)
			for p in pids:
				kill_and_wait(p, signal.SIGKILL, 0) if pid_alive(p) else None
			if self._own_dir and not self.keep:
				shutil.rmtree(self.dir, ignore_errors=True)
		_LIVE.discard(self)

	def running(self):
		return bool(self.pid and pid_alive(self.pid))

	def process_ids(self):
		"""The master PID and all its children (empty when stopped)."""
		if not self.running():
			return []
		return [self.pid] + descendants(self.pid)

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.stop()

	# -- properties
	@property
	def ca(self):
		return os.path.join(self.dir, "ca.pem")

	@property
	def log_path(self):
		return os.path.join(self.dir, "dovecot.log")

	def log_text(self):
		with open(self.log_path, errors="replace") as f:
			return f.read()

	@property
	def delimiter(self):
		return "/" if self.layout == "slash" else "."

	@property
	def personal_prefix(self):
		return "" if self.layout == "slash" else "INBOX."

	def maildir(self, user="alice"):
		return os.path.join(self.dir, "mail", user, "Maildir")

	def url(self, user="alice", tls="implicit", root=None):
		"""imaps://user@127.0.0.1:PORT (implicit) or imap://... (starttls)."""
		if tls == "implicit":
			u = "imaps://%s@%s:%d" % (user, self.host, self.port_imaps)
		else:
			u = "imap://%s@%s:%d" % (user, self.host, self.port_imap)
		return u + ("/" + root if root else "")

	def password_file(self, user="alice", path=None):
		"""Write the user's password to a 0600 file (default DIR/pw-USER) and return its path."""
		path = path or os.path.join(self.dir, "pw-" + user)
		fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
		with os.fdopen(fd, "w") as f:
			f.write(self.users[user] + "\n")
		os.chmod(path, 0o600)
		return path

	def ssl_context(self, cafile=None):
		return ssl.create_default_context(cafile=cafile or self.ca)

	# -- clients
	def imap(self, user="alice", tls="starttls", login=True, cafile=None, timeout=30):
		"""A (logged-in) imaplib connection. tls: 'starttls', 'implicit' or 'none'."""
		ctx = self.ssl_context(cafile)
		if tls == "implicit":
			c = imaplib.IMAP4_SSL(self.host, self.port_imaps, ssl_context=ctx, timeout=timeout)
		else:
			c = imaplib.IMAP4(self.host, self.port_imap, timeout=timeout)
			if tls == "starttls":
				c.starttls(ssl_context=ctx)
		if login:
			c.login(user, self.users[user])
		self._conns.append(c)
		return c

	def doveadm(self, *args, check=True):
		"""Run doveadm -c DIR/dovecot.conf ARGS; returns stdout as str."""
		r = subprocess.run([sbin("doveadm"), "-c", os.path.join(self.dir, "dovecot.conf")] + list(args),
				   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
				   stderr=subprocess.PIPE, timeout=300)
		if check and r.returncode != 0:
			raise RuntimeError("doveadm %s failed: %s" % (" ".join(args), r.stderr.decode()))
		return r.stdout.decode(errors="replace")

	def listening_addresses(self):
		"""[(addr, port)] of TCP sockets in LISTEN state owned by this instance's processes."""
		pids = set(self.process_ids())
		out = subprocess.run(["ss", "-Hltnp"], stdout=subprocess.PIPE, check=True).stdout.decode()
		res = []
		for line in out.splitlines():
			fields = line.split()
			if len(fields) < 5:
				continue
			owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
			if owners & pids:
				local = fields[3]
				addr, _, port = local.rpartition(":")
				res.append((addr.strip("[]"), int(port)))
		return res

	# -- corpus conveniences
	def corpus_folders(self):
		"""{folder name (server name, UTF-8): expected count} from corpus.json."""
		if not self.corpus:
			return {}
		return {f["name"]: f["count"] for f in self.corpus["folders"] if not f.get("noselect")}


# ---------------------------------------------------------------------------------------
# An OAuth2 token introspection endpoint (RFC 7662) for Dovecot's oauth2 passdb

class OAuth2Introspection:
	"""A small HTTP server on 127.0.0.1 (a thread of the test process, stopped by its
	handle) that answers Dovecot's token checks: POST token=T -> {"active": true,
	"username": U} for a token in self.tokens ({token: user}), {"active": false} otherwise.
	Tests add and revoke tokens while a mount runs; self.seen lists the tokens asked about.

	with OAuth2Introspection() as idp: dv.start(oauth2_url=idp.url); idp.tokens[t] = "alice"
	"""

	def __init__(self):
		import http.server
		import threading
		import urllib.parse

		outer = self
		self.tokens = {}
		self.seen = []
		self._lock = threading.Lock()

		class Handler(http.server.BaseHTTPRequestHandler):
			def do_POST(self):
				n = int(self.headers.get("Content-Length") or 0)
				form = urllib.parse.parse_qs(self.rfile.read(n).decode())
				token = (form.get("token") or [""])[0]
				with outer._lock:
					outer.seen.append(token)
					user = outer.tokens.get(token)
				body = json.dumps({"active": True, "username": user} if user
						  else {"active": False}).encode()
				self.send_response(200)
				self.send_header("Content-Type", "application/json")
				self.send_header("Content-Length", str(len(body)))
				self.end_headers()
				self.wfile.write(body)

			def log_message(self, *args):
				pass

		self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
		self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
		self._thread.start()
		self.url = "http://127.0.0.1:%d/introspect" % self._server.server_address[1]

	def stop(self):
		if self._server is not None:
			self._server.shutdown()
			self._server.server_close()
			self._thread.join()
			self._server = None

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.stop()
