#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""fakeimap: a small scripted, misbehaving IMAP server for fault and protocol tests.

Each accepted connection plays a script (a list of steps: expect a client command matching
a regex and answer, send bytes, stall, drop, BYE, STARTTLS, ...) and records exactly what
the client sent, for asserting the command transcript. Listens on 127.0.0.1 only; runs its
asyncio loop in a background thread (or as a process: see main()). Stdlib only.
"""

import asyncio
import base64
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

DEFAULT_CAPS = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE UIDPLUS MOVE NAMESPACE AUTH=PLAIN AUTH=LOGIN"


# ---------------------------------------------------------------------------------------
# Steps. A script is a list of these (or of plain tuples, see _coerce()).

class Step:
	kind = "step"

	def __repr__(self):
		return "%s(%s)" % (self.kind, ", ".join("%s=%r" % kv for kv in vars(self).items()))


class send(Step):
	"""Send bytes (str is UTF-8 encoded). '{tag}' is replaced by the tag of the last
	expected command. With chunk=N the bytes go out N at a time, delay seconds apart."""
	kind = "send"

	def __init__(self, data, chunk=None, delay=0.0):
		self.data = data.encode() if isinstance(data, str) else data
		self.chunk = chunk
		self.delay = delay


class expect(Step):
	"""Read one client command (line + any literals) and match it against a regex
	(re.fullmatch, DOTALL, on the command without its final CRLF; str patterns are
	encoded). On a match send `reply` ({tag} substituted; may be None). On a mismatch the
	error is recorded, '{tag} BAD fakeimap: unexpected command' is sent and, when
	`strict` (default), the connection is closed. timeout: seconds to wait."""
	kind = "expect"

	def __init__(self, pattern, reply=None, timeout=10.0, strict=True, continuation=b"+ go ahead\r\n"):
		self.pattern = pattern.encode() if isinstance(pattern, str) else pattern
		self.reply = reply.encode() if isinstance(reply, str) else reply
		self.timeout = timeout
		self.strict = strict
		self.continuation = continuation


class stall(Step):
	"""Do nothing (and read nothing) for `seconds`."""
	kind = "stall"

	def __init__(self, seconds):
		self.seconds = seconds


class drop(Step):
	"""Close the TCP connection at once; rst=True sends a RST instead of a FIN."""
	kind = "drop"

	def __init__(self, rst=False):
		self.rst = rst


class bye(Step):
	"""Send '* BYE text' and close."""
	kind = "bye"

	def __init__(self, text="fakeimap: shutting down"):
		self.text = text


class starttls(Step):
	"""Upgrade this connection to TLS now (server side), e.g. right after sending the
	STARTTLS OK. Needs the server to have a certificate."""
	kind = "starttls"


class auth(Step):
	"""Accept one login in any of its forms: LOGIN, AUTHENTICATE PLAIN (with or without an
	initial response), AUTHENTICATE LOGIN. Records the user and password seen in
	conn.auth. ok=False answers NO [AUTHENTICATIONFAILED]. caps: when set, the OK carries
	[CAPABILITY caps]."""
	kind = "auth"

	def __init__(self, ok=True, caps=None, timeout=10.0):
		self.ok = ok
		self.caps = caps
		self.timeout = timeout


class wait_close(Step):
	"""Keep reading (and recording) until the client closes, up to `timeout` seconds;
	tagged commands get '{tag} NO fakeimap: not scripted', LOGOUT gets BYE + OK."""
	kind = "wait_close"

	def __init__(self, timeout=10.0):
		self.timeout = timeout


class serve(Step):
	"""A tiny generic responder for the rest of the connection: rules is a list of
	(pattern, reply) tried in order for each command; reply is bytes/str, a callable
	(conn, match) -> bytes or a list of steps, or a list of steps to play (e.g.
	[send(..), stall(1), drop()]).
	Unmatched tagged commands get NO, LOGOUT is always answered. Ends when the client
	closes, a played step ends the connection, or after timeout seconds."""
	kind = "serve"

	def __init__(self, rules=(), timeout=30.0):
		self.rules = [(p.encode() if isinstance(p, str) else p,
			       r.encode() if isinstance(r, str) else
			       [_coerce(x) for x in r] if isinstance(r, list) else r) for p, r in rules]
		self.timeout = timeout


def greeting(caps=DEFAULT_CAPS, text="fakeimap ready"):
	"""The usual first step: '* OK [CAPABILITY caps] text'."""
	if caps is None:
		return send("* OK %s\r\n" % text)
	return send("* OK [CAPABILITY %s] %s\r\n" % (caps, text))


def capability(caps=DEFAULT_CAPS):
	"""Expect a CAPABILITY command and answer it."""
	return expect(r"\S+ CAPABILITY", "* CAPABILITY %s\r\n{tag} OK Capability completed.\r\n" % caps)


def login_steps(caps=DEFAULT_CAPS, post_caps=None):
	"""greeting + optional CAPABILITY + login: the common prefix of most scripts."""
	return [greeting(caps), auth(caps=post_caps or caps)]


def _coerce(step):
	if isinstance(step, Step):
		return step
	if isinstance(step, (list, tuple)) and step:
		name, args = step[0], list(step[1:])
		cls = {"send": send, "expect": expect, "stall": stall, "drop": drop, "bye": bye,
		       "starttls": starttls, "auth": auth, "wait_close": wait_close,
		       "serve": serve}.get(name)
		if cls is None:
			raise ValueError("unknown step %r" % (name,))
		if name == "serve" and args:
			args[0] = [tuple(r) for r in args[0]]
		return cls(*args)
	raise ValueError("bad step %r" % (step,))


# ---------------------------------------------------------------------------------------
# Connections

class Conn:
	"""What happened on one accepted connection (read these from tests)."""

	def __init__(self, index):
		self.index = index
		self.received = []      # list of client commands (bytes, exactly as sent, incl. CRLF)
		self.raw = bytearray()  # every byte the client sent, in order
		self.sent = bytearray() # every byte we sent
		self.auth = None        # (user, password) of the last login seen
		self.tls = False
		self.accepted_at = time.monotonic()
		self.closed_at = None
		self.closed_by = None   # 'client' | 'server'
		self.step = 0           # index of the step being played
		self.done = threading.Event()
		self.session = None     # the live _Session (for push() and drop())

	def commands(self):
		"""Client commands as str with the final CRLF and the tag removed: 'LOGIN alice pw',
		'SELECT INBOX', 'DONE'; a line without a space (DONE, SASL data) stays whole."""
		out = []
		for c in self.received:
			s = c.decode("utf-8", "replace")
			s = s[:-2] if s.endswith("\r\n") else s.rstrip("\n")
			if _looks_tagged(c):
				s = s.split(" ", 1)[1]
			out.append(s)
		return out


def _looks_tagged(line):
	# A tag followed by a command name; base64 SASL continuations have no space.
	return b" " in line.split(b"\r\n", 1)[0]


class _Closed(Exception):
	pass


class _Session:
	def __init__(self, server, conn, reader, writer, script):
		self.srv = server
		self.c = conn
		self.r = reader
		self.w = writer
		self.script = [_coerce(s) for s in script]
		self.tag = b"*"
		self.buf = b""
		conn.session = self

	# -- I/O
	async def write(self, data):
		data = data.replace(b"{tag}", self.tag)
		self.c.sent += data
		self.w.write(data)
		await self.w.drain()

	async def _fill(self, timeout):
		try:
			chunk = await asyncio.wait_for(self.r.read(65536), timeout)
		except asyncio.TimeoutError:
			raise
		except (ConnectionError, OSError):
			chunk = b""
		if not chunk:
			self.c.closed_by = self.c.closed_by or "client"
			raise _Closed()
		self.c.raw += chunk
		self.buf += chunk

	async def read_line(self, timeout):
		while b"\r\n" not in self.buf and b"\n" not in self.buf:
			if len(self.buf) > self.srv.max_line:
				raise _Closed()
			await self._fill(timeout)
		k = self.buf.find(b"\n")
		line, self.buf = self.buf[:k + 1], self.buf[k + 1:]
		return line

	async def read_exact(self, n, timeout):
		while len(self.buf) < n:
			await self._fill(timeout)
		out, self.buf = self.buf[:n], self.buf[n:]
		return out

	async def read_command(self, timeout, continuation=b"+ go ahead\r\n"):
		"""One command: a line plus any literals and the text after them."""
		deadline = time.monotonic() + timeout
		cmd = b""
		while True:
			line = await self.read_line(max(0.01, deadline - time.monotonic()))
			cmd += line
			m = re.search(rb"\{(\d+)(\+?)\}\r?\n$", line)
			if not m:
				break
			n = int(m.group(1))
			if n > self.srv.max_literal:
				break
			if not m.group(2) and continuation:
				await self.write(continuation)
			cmd += await self.read_exact(n, max(0.01, deadline - time.monotonic()))
		self.c.received.append(cmd)
		first = cmd.split(b" ", 1)[0].strip()
		if b" " in cmd.split(b"\r\n", 1)[0]:
			self.tag = first
		return cmd

	# -- steps
	async def run(self):
		try:
			for i, st in enumerate(self.script):
				self.c.step = i
				if await self.play(st) is False:
					break
			else:
				self.c.step = len(self.script)
				await self.play(wait_close(self.srv.end_timeout))
		except _Closed:
			pass
		except asyncio.TimeoutError:
			self.srv.errors.append("conn %d step %d (%r): timed out waiting for the client"
					       % (self.c.index, self.c.step, self.script[self.c.step]
						  if self.c.step < len(self.script) else "end"))
		except (ConnectionError, OSError, ssl.SSLError) as e:
			self.c.closed_by = self.c.closed_by or "client"
			self.srv.log("conn %d: %s" % (self.c.index, e))
		finally:
			self.c.closed_by = self.c.closed_by or "server"
			self.c.closed_at = time.monotonic()
			try:
				self.w.close()
			except Exception:  # noqa: BLE001
				pass
			self.c.done.set()

	async def play(self, st):
		k = st.kind
		if k == "send":
			data = st.data.replace(b"{tag}", self.tag)  # before any chunking
			if st.chunk:
				for i in range(0, len(data), st.chunk):
					await self.write(data[i:i + st.chunk])
					if st.delay:
						await asyncio.sleep(st.delay)
			else:
				await self.write(data)
		elif k == "expect":
			cmd = await self.read_command(st.timeout, st.continuation)
			body = cmd[:-2] if cmd.endswith(b"\r\n") else cmd.rstrip(b"\n")
			if not re.fullmatch(st.pattern, body, re.DOTALL):
				self.srv.errors.append("conn %d step %d: expected %r, got %r" % (
					self.c.index, self.c.step, st.pattern, cmd[:300]))
				await self.write(b"{tag} BAD fakeimap: unexpected command\r\n")
				if st.strict:
					self.c.closed_by = "server"
					return False
				return True
			if st.reply is not None:
				await self.write(st.reply)
		elif k == "stall":
			await asyncio.sleep(st.seconds)
		elif k == "drop":
			self.c.closed_by = "server"
			if st.rst:
				sock = self.w.get_extra_info("socket")
				if sock is not None:
					sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
			self.w.transport.abort() if st.rst else self.w.close()
			return False
		elif k == "bye":
			await self.write(b"* BYE " + st.text.encode() + b"\r\n")
			self.c.closed_by = "server"
			return False
		elif k == "starttls":
			if not self.srv.ssl_context:
				raise RuntimeError("starttls step without a certificate")
			await self.w.start_tls(self.srv.ssl_context)
			self.c.tls = True
			# anything the client pipelined before the handshake must not count as TLS data
			self.buf = b""
		elif k == "auth":
			return await self.do_auth(st)
		elif k == "wait_close":
			await self.drain_until_close(st.timeout)
			return False
		elif k == "serve":
			await self.do_serve(st)
			return False
		return True

	async def do_auth(self, st):
		while True:
			cmd = await self.read_command(st.timeout)
			up = cmd.upper()
			parts = cmd.rstrip(b"\r\n").split(b" ")
			if len(parts) >= 2 and parts[1].upper() == b"CAPABILITY":
				await self.write(b"* CAPABILITY " + (st.caps or DEFAULT_CAPS).encode()
						 + b"\r\n{tag} OK done\r\n")
				continue
			if len(parts) >= 2 and parts[1].upper() in (b"ID", b"NOOP"):
				await self.write(b"{tag} OK done\r\n")
				continue
			break
		user = pw = None
		if len(parts) >= 2 and parts[1].upper() == b"LOGIN":
			args = _astrings(cmd.split(b" ", 2)[2] if len(parts) > 2 else b"")
			if len(args) >= 2:
				user, pw = args[0], args[1]
		elif up.split(b" ")[1:3] == [b"AUTHENTICATE", b"PLAIN"] or \
				up.split(b" ")[1:3] == [b"AUTHENTICATE", b"PLAIN\r\n"]:
			ir = parts[3] if len(parts) > 3 else None
			if ir is None:
				await self.write(b"+ \r\n")
				ir = (await self.read_command(st.timeout)).strip()
			try:
				dec = base64.b64decode(ir)
				_, user, pw = dec.split(b"\0", 2)
			except (ValueError, base64.binascii.Error):
				pass
		elif up.split(b" ")[1:3] in ([b"AUTHENTICATE", b"LOGIN"], [b"AUTHENTICATE", b"LOGIN\r\n"]):
			ir = parts[3] if len(parts) > 3 else None
			if ir is None:
				await self.write(b"+ VXNlcm5hbWU6\r\n")
				ir = (await self.read_command(st.timeout)).strip()
			user = base64.b64decode(ir)
			await self.write(b"+ UGFzc3dvcmQ6\r\n")
			pw = base64.b64decode((await self.read_command(st.timeout)).strip())
		else:
			self.srv.errors.append("conn %d: expected a login, got %r" % (self.c.index, cmd[:200]))
			await self.write(b"{tag} BAD fakeimap: expected a login\r\n")
			return False
		self.c.auth = (user.decode("utf-8", "replace") if user is not None else None,
			       pw.decode("utf-8", "replace") if pw is not None else None)
		if st.ok:
			capr = ("[CAPABILITY %s] " % st.caps).encode() if st.caps else b""
			await self.write(b"{tag} OK " + capr + b"Logged in\r\n")
			return True
		await self.write(b"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
		return True

	async def drain_until_close(self, timeout):
		deadline = time.monotonic() + timeout
		while time.monotonic() < deadline:
			try:
				cmd = await self.read_command(max(0.01, deadline - time.monotonic()))
			except asyncio.TimeoutError:
				return
			if not _looks_tagged(cmd):
				continue
			if cmd.split(b" ")[1].strip().upper() == b"LOGOUT":
				await self.write(b"* BYE fakeimap: logging out\r\n{tag} OK Logout completed.\r\n")
				self.c.closed_by = "server"
				return
			await self.write(b"{tag} NO fakeimap: not scripted\r\n")

	async def do_serve(self, st):
		deadline = time.monotonic() + st.timeout
		while time.monotonic() < deadline:
			try:
				cmd = await self.read_command(max(0.01, deadline - time.monotonic()))
			except asyncio.TimeoutError:
				return
			body = cmd.rstrip(b"\r\n")
			for pat, reply in st.rules:
				m = re.fullmatch(pat, body, re.DOTALL)
				if m:
					if callable(reply):
						reply = reply(self.c, m)
						if isinstance(reply, list):
							reply = [_coerce(x) for x in reply]
					if isinstance(reply, list):
						for st2 in reply:
							if await self.play(st2) is False:
								return
						break
					out = reply
					if out:
						await self.write(out)
					break
			else:
				if _looks_tagged(cmd) and cmd.split(b" ")[1].strip().upper() == b"LOGOUT":
					await self.write(b"* BYE bye\r\n{tag} OK Logout completed.\r\n")
					self.c.closed_by = "server"
					return
				if _looks_tagged(cmd):
					await self.write(b"{tag} NO fakeimap: no rule\r\n")


def _astrings(b):
	"""Parse IMAP astrings (atoms and quoted strings; literals inline) from a LOGIN line."""
	out, i = [], 0
	b = b.rstrip(b"\r\n")
	while i < len(b):
		c = b[i:i + 1]
		if c == b" ":
			i += 1
		elif c == b'"':
			j, buf = i + 1, bytearray()
			while j < len(b) and b[j:j + 1] != b'"':
				if b[j:j + 1] == b"\\":
					j += 1
				buf += b[j:j + 1]
				j += 1
			out.append(bytes(buf))
			i = j + 1
		elif c == b"{":
			m = re.match(rb"\{(\d+)\+?\}\r\n", b[i:])
			if not m:
				break
			n = int(m.group(1))
			s = i + m.end()
			out.append(b[s:s + n])
			i = s + n
		else:
			j = b.find(b" ", i)
			j = len(b) if j < 0 else j
			out.append(b[i:j])
			i = j
	return out


# ---------------------------------------------------------------------------------------
# The server

class FakeImap:
	"""srv = FakeImap(script, tls=None|'implicit', certfile=, keyfile=).start()
	srv.port; srv.conns (list of Conn); srv.errors (list of str); srv.stop().

	script: a list of steps played on every connection, or scripts=[s1, s2, ...] for the
	1st, 2nd, ... connection (the last one repeats). certfile/keyfile are needed for
	tls='implicit' and for starttls() steps (make_certs() gives a throwaway CA + cert)."""

	def __init__(self, script=None, scripts=None, tls=None, certfile=None, keyfile=None,
		     port=0, end_timeout=10.0, max_literal=1 << 30, max_line=1 << 20, verbose=False):
		if scripts is None:
			scripts = [script if script is not None else login_steps()]
		self.scripts = scripts
		self.tls = tls
		self.want_port = port
		self.end_timeout = end_timeout
		self.max_literal = max_literal
		self.max_line = max_line
		self.verbose = verbose
		self.conns = []
		self.errors = []
		self.port = None
		self.host = "127.0.0.1"
		self.ssl_context = None
		if certfile:
			ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
			ctx.load_cert_chain(certfile, keyfile)
			self.ssl_context = ctx
		if tls == "implicit" and not self.ssl_context:
			raise ValueError("tls='implicit' needs certfile/keyfile")
		self._loop = None
		self._thread = None
		self._server = None
		self._ready = threading.Event()
		self._tasks = set()

	def log(self, msg):
		if self.verbose:
			print("fakeimap: " + msg, file=sys.stderr)

	async def _handle(self, reader, writer):
		idx = len(self.conns)
		c = Conn(idx)
		c.tls = self.tls == "implicit"
		self.conns.append(c)
		script = self.scripts[min(idx, len(self.scripts) - 1)]
		task = asyncio.current_task()
		self._tasks.add(task)
		try:
			await _Session(self, c, reader, writer, script).run()
		finally:
			self._tasks.discard(task)

	async def _main(self):
		ctx = self.ssl_context if self.tls == "implicit" else None
		self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.want_port,
							  ssl=ctx, reuse_address=True)
		self.port = self._server.sockets[0].getsockname()[1]
		self._ready.set()
		self._stop = asyncio.Event()
		await self._stop.wait()
		self._server.close()
		tasks = list(self._tasks)
		for t in tasks:
			t.cancel()
		await asyncio.gather(*tasks, return_exceptions=True)

	def start(self):
		def runner():
			self._loop = asyncio.new_event_loop()
			try:
				self._loop.run_until_complete(self._main())
			finally:
				self._loop.close()
		self._thread = threading.Thread(target=runner, name="fakeimap", daemon=True)
		self._thread.start()
		if not self._ready.wait(10):
			raise RuntimeError("fakeimap did not start")
		return self

	def stop(self):
		if self._loop and self._thread and self._thread.is_alive():
			self._loop.call_soon_threadsafe(self._stop.set)
			self._thread.join(10)

	def drop_all(self):
		"""Closes every live connection now (the clients see EOF); new ones are served."""
		def abort():
			for t in list(self._tasks):
				t.cancel()
		self._loop.call_soon_threadsafe(abort)

	def push(self, data, pred=None):
		"""Sends `data` (unsolicited responses, bytes or str) now on every live connection
		for which pred(conn) is true (all when None). Returns how many got it."""
		data = data.encode() if isinstance(data, str) else data
		hits = [c for c in self.conns if not c.done.is_set() and c.session is not None
			and (pred is None or pred(c))]

		def send():
			for c in hits:
				try:
					c.sent += data
					c.session.w.write(data)
				except Exception:  # noqa: BLE001
					pass
		self._loop.call_soon_threadsafe(send)
		return len(hits)

	def drop(self, pred=None):
		"""Closes (abort: the client sees EOF) every live connection for which pred(conn) is
		true (all when None); new connections are served as usual. Returns how many."""
		hits = [c for c in self.conns if not c.done.is_set() and c.session is not None
			and (pred is None or pred(c))]

		def close():
			for c in hits:
				c.closed_by = "server"
				c.session.w.transport.abort()
		self._loop.call_soon_threadsafe(close)
		return len(hits)

	def __enter__(self):
		return self.start()

	def __exit__(self, *exc):
		self.stop()

	def wait(self, n=1, timeout=30.0):
		"""Wait until at least n connections were accepted and have finished."""
		deadline = time.monotonic() + timeout
		while time.monotonic() < deadline:
			if len(self.conns) >= n and all(c.done.is_set() for c in self.conns[:n]):
				return True
			time.sleep(0.01)
		return False

	def transcript(self, conn=0):
		"""Client commands of connection `conn` as bytes, exactly as sent."""
		return list(self.conns[conn].received) if conn < len(self.conns) else []

	def commands(self, conn=0):
		"""Client commands of connection `conn` without tags and CRLF (see Conn.commands)."""
		return self.conns[conn].commands() if conn < len(self.conns) else []


# ---------------------------------------------------------------------------------------
# The fault proxy: a real server behind, faults injected on the way

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r?\n$")


class FaultProxy:
	"""A man in the middle between a client and a real IMAP server (plain TCP upstream),
	for fault tests that need a server with real state:

	- hide_caps: capabilities removed from every CAPABILITY response and [CAPABILITY] code
	  (e.g. ("MOVE", "UIDPLUS")); strip_codes: response codes removed (e.g. ("COPYUID",)).
	- drop_after: a regex (re.fullmatch on a client command line without tag and CRLF);
	  the first `drop_times` such commands are forwarded, the server's tagged answer is
	  swallowed and the client's connection is closed: the server did it, the client never
	  learns.
	- commands(): every client command line (tag removed, over all connections, in order).
	tls='implicit' with certfile/keyfile serves TLS to the client. Listens on 127.0.0.1."""

	def __init__(self, upstream_port, upstream_host="127.0.0.1", tls=None, certfile=None,
		     keyfile=None, hide_caps=(), strip_codes=(), drop_after=None, drop_times=1):
		self.up = (upstream_host, upstream_port)
		self.hide_caps = [c.encode() for c in hide_caps]
		self.strip_codes = [c.encode() for c in strip_codes]
		self.drop_after = drop_after.encode() if isinstance(drop_after, str) else drop_after
		self.drops_left = drop_times if drop_after else 0
		self.drops = 0
		self.lines = []
		self.ssl_context = None
		if tls == "implicit":
			ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
			ctx.load_cert_chain(certfile, keyfile)
			self.ssl_context = ctx
		self.port = None
		self._loop = self._thread = self._server = None
		self._ready = threading.Event()
		self._tasks = set()
		self._lock = threading.Lock()

	def commands(self):
		with self._lock:
			return list(self.lines)

	def _rewrite(self, line):
		if b"CAPABILITY" in line.upper():
			for c in self.hide_caps:
				line = re.sub(rb"(?i) " + re.escape(c) + rb"(?=[ \]\r\n])", b"", line)
		for code in self.strip_codes:
			line = re.sub(rb"(?i)\[" + re.escape(code) + rb"( [^\]]*)?\] ?", b"", line)
		return line

	async def _client_to_server(self, cr, uw, state):
		while True:
			line = await cr.readline()
			if not line:
				return
			text = line.rstrip(b"\r\n")
			parts = text.split(b" ", 1)
			if len(parts) == 2 and not state.get("in_literal"):
				with self._lock:
					self.lines.append(parts[1].decode("utf-8", "replace"))
				if self.drops_left > 0 and self.drop_after is not None and \
						re.fullmatch(self.drop_after, parts[1], re.DOTALL):
					self.drops_left -= 1
					state["drop_tag"] = parts[0]
			uw.write(line)
			m = _LITERAL.search(line)
			while m:
				uw.write(await cr.readexactly(int(m.group(1))))
				line = await cr.readline()
				uw.write(line)
				m = _LITERAL.search(line)
			await uw.drain()

	async def _server_to_client(self, ur, cw, state):
		while True:
			line = await ur.readline()
			if not line:
				return
			tag = state.get("drop_tag")
			if tag is not None and line.startswith(tag + b" "):
				self.drops += 1
				return "drop"
			cw.write(self._rewrite(line))
			m = _LITERAL.search(line)
			while m:
				cw.write(await ur.readexactly(int(m.group(1))))
				line = await ur.readline()
				cw.write(self._rewrite(line))
				m = _LITERAL.search(line)
			await cw.drain()

	async def _handle(self, cr, cw):
		task = asyncio.current_task()
		self._tasks.add(task)
		uw = None
		try:
			ur, uw = await asyncio.open_connection(*self.up)
			state = {}
			a = asyncio.ensure_future(self._client_to_server(cr, uw, state))
			b = asyncio.ensure_future(self._server_to_client(ur, cw, state))
			done, pending = await asyncio.wait({a, b}, return_when=asyncio.FIRST_COMPLETED)
			for t in pending:
				t.cancel()
			await asyncio.gather(*pending, return_exceptions=True)
		except (ConnectionError, OSError, asyncio.IncompleteReadError, ssl.SSLError):
			pass
		finally:
			for w in (cw, uw):
				if w is not None:
					try:
						w.transport.abort()
					except Exception:  # noqa: BLE001
						pass
			self._tasks.discard(task)

	async def _main(self):
		self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0,
							  ssl=self.ssl_context)
		self.port = self._server.sockets[0].getsockname()[1]
		self._ready.set()
		self._stop = asyncio.Event()
		await self._stop.wait()
		self._server.close()
		for t in list(self._tasks):
			t.cancel()
		await asyncio.gather(*list(self._tasks), return_exceptions=True)

	def start(self):
		def runner():
			self._loop = asyncio.new_event_loop()
			try:
				self._loop.run_until_complete(self._main())
			finally:
				self._loop.close()
		self._thread = threading.Thread(target=runner, name="faultproxy", daemon=True)
		self._thread.start()
		if not self._ready.wait(10):
			raise RuntimeError("fault proxy did not start")
		return self

	def stop(self):
		if self._loop and self._thread and self._thread.is_alive():
			self._loop.call_soon_threadsafe(self._stop.set)
			self._thread.join(10)

	def __enter__(self):
		return self.start()

	def __exit__(self, *exc):
		self.stop()


def make_certs(d):
	"""A throwaway CA and a server certificate for localhost/127.0.0.1 in directory d.
	Returns (ca_path, cert_path, key_path). Reuses files that already exist."""
	os.makedirs(d, exist_ok=True)
	ca, cakey = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
	crt, key = os.path.join(d, "server.pem"), os.path.join(d, "server.key")
	if os.path.exists(crt):
		return ca, crt, key
	csr, ext = os.path.join(d, "server.csr"), os.path.join(d, "server.ext")
	run = lambda *a: subprocess.run(a, check=True, stdout=subprocess.DEVNULL,  # noqa: E731
					 stderr=subprocess.DEVNULL)
	run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
	    "-nodes", "-keyout", cakey, "-out", ca, "-days", "3650", "-subj", "/CN=fakeimap test CA",
	    "-addext", "basicConstraints=critical,CA:TRUE",
	    "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
	    "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
	with open(ext, "w") as f:
		f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
			"extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
			"subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
	run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey, "-CAcreateserial",
	    "-out", crt, "-days", "3650", "-extfile", ext)
	os.unlink(csr)
	os.unlink(ext)
	return ca, crt, key


def main():
	"""Run as a process: fakeimap.py --script FILE.json [--port N] [--port-file F]
	[--tls implicit] [--cert F --key F] [--transcript OUT.json]. The JSON script is a list
	of steps like ["send", "* OK hi\\r\\n"], ["expect", "\\\\S+ LOGIN .*", "{tag} OK\\r\\n"],
	["stall", 2], ["drop"], ["auth"] (or {"scripts": [[...], [...]]}). Serves until SIGTERM;
	then writes the transcript (list per connection of commands as latin-1 str)."""
	import argparse
	import signal
	ap = argparse.ArgumentParser(prog="fakeimap.py")
	ap.add_argument("--script", required=True)
	ap.add_argument("--port", type=int, default=0)
	ap.add_argument("--port-file")
	ap.add_argument("--tls", choices=["implicit"], default=None)
	ap.add_argument("--cert")
	ap.add_argument("--key")
	ap.add_argument("--transcript")
	a = ap.parse_args()
	with open(a.script) as f:
		js = json.load(f)
	scripts = js["scripts"] if isinstance(js, dict) else [js]
	srv = FakeImap(scripts=scripts, tls=a.tls, certfile=a.cert, keyfile=a.key, port=a.port,
		       verbose=True).start()
	if a.port_file:
		with open(a.port_file + ".tmp", "w") as f:
			f.write("%d\n" % srv.port)
		os.rename(a.port_file + ".tmp", a.port_file)
	else:
		print(srv.port, flush=True)
	done = threading.Event()
	signal.signal(signal.SIGTERM, lambda *_: done.set())
	signal.signal(signal.SIGINT, lambda *_: done.set())
	done.wait()
	srv.stop()
	if a.transcript:
		with open(a.transcript, "w") as f:
			json.dump({"connections": [[c.decode("latin-1") for c in conn.received]
						   for conn in srv.conns], "errors": srv.errors}, f, indent=1)


if __name__ == "__main__":
	main()


# ---------------------------------------------------------------------------------------
# A tiny stateful account for mount-level write tests: folders with messages that survive
# reconnects (and daemon restarts), APPEND with scripted faults.

class MailStore:
	"""store = MailStore(["INBOX", "Archive"], caps=...); script = store.script()
	FakeImap(scripts=[script]) then serves LIST, NAMESPACE, STATUS, EXAMINE/SELECT, UID
	FETCH (listing items and bodies), UID SEARCH (UID, HEADER, LARGER, SMALLER), APPEND.
	append_faults: a list consumed one per APPEND: None (normal), 'drop-before-store',
	'drop-after-store' (stored, then the connection dropped before the tagged OK),
	'stall-after-store' (stored, no answer for a minute)."""

	def __init__(self, folders=("INBOX",), caps="IMAP4rev1 LITERAL+ SASL-IR UIDPLUS NAMESPACE AUTH=PLAIN",
		     uidvalidity=7):
		self.caps = caps
		self.uidplus = "UIDPLUS" in caps.split()
		self.boxes = {f: {"uidnext": 1, "msgs": []} for f in folders}
		self.uidvalidity = uidvalidity
		self.append_faults = []
		self.appends = 0
		self.selected = {}
		self.lock = threading.Lock()

	def add(self, folder, data, flags=()):
		box = self.boxes[folder]
		uid = box["uidnext"]
		box["uidnext"] += 1
		box["msgs"].append({"uid": uid, "data": data, "flags": list(flags)})
		return uid

	def messages(self, folder):
		return [m["data"] for m in self.boxes[folder]["msgs"]]

	@staticmethod
	def _name(b):
		b = b.strip()
		return b[1:-1].decode() if b.startswith(b'"') else b.decode()

	def _uids(self, box, text):
		out = set()
		maxuid = box["msgs"][-1]["uid"] if box["msgs"] else 0
		for part in text.split(b","):
			if b":" in part:
				a, b = part.split(b":")
				a = maxuid if a == b"*" else int(a)
				b = maxuid if b == b"*" else int(b)
				a, b = min(a, b), max(a, b)
				out |= {m["uid"] for m in box["msgs"] if a <= m["uid"] <= b}
			else:
				u = maxuid if part == b"*" else int(part)
				out |= {m["uid"] for m in box["msgs"] if m["uid"] == u}
		return out

	@staticmethod
	def _header(data, name):
		m = re.search(rb"(?im)^" + name.encode() + rb":[ \t]*(.*?)\r?$", data.split(b"\r\n\r\n")[0])
		return m.group(1) if m else None

	def _fetch_item(self, box, seq, m, items):
		d = m["data"]
		subj = self._header(d, "Subject") or b"NIL"
		mid = self._header(d, "Message-ID")
		parts = [b"UID %d" % m["uid"]]
		if b"BODY.PEEK[]" in items:
			rng = re.search(rb"BODY\.PEEK\[\]<(\d+)\.(\d+)>", items)
			if rng:
				o, n = int(rng.group(1)), int(rng.group(2))
				part = d[o:o + n]
				parts.append(b"BODY[]<%d> {%d}\r\n" % (o, len(part)) + part)
			else:
				parts.append(b"BODY[] {%d}\r\n" % len(d) + d)
		else:
			env = b'("Mon, 1 Jan 2024 10:00:00 +0000" "%s" NIL NIL NIL NIL NIL NIL NIL %s)' % (
				subj.replace(b'"', b"'"), (b'"' + mid + b'"') if mid else b"NIL")
			parts.append(b"FLAGS (%s) RFC822.SIZE %d INTERNALDATE \"01-Jan-2024 10:00:00 +0000\" "
				     b"ENVELOPE %s" % (" ".join(m["flags"]).encode(), len(d), env))
		return b"* %d FETCH (%s)\r\n" % (seq, b" ".join(parts))

	def _rule(self, c, mt):
		body = mt.group(0)
		tag, rest = body.split(b" ", 1)
		verb = rest.split(b" ", 1)[0].upper()
		with self.lock:
			if verb == b"APPEND":
				return self._append(c, body)
			out = b""
			if verb == b"CAPABILITY":
				out = b"* CAPABILITY " + self.caps.encode() + b"\r\n"
			elif verb == b"NAMESPACE":
				out = b'* NAMESPACE (("" "/")) NIL NIL\r\n'
			elif verb == b"LIST":
				out = b"".join(b'* LIST (\\HasNoChildren) "/" "%s"\r\n' % f.encode() for f in self.boxes)
			elif verb == b"STATUS":
				name = self._name(re.match(rb'STATUS ("[^"]*"|\S+)', rest).group(1))
				box = self.boxes.get(name)
				if box is None:
					return tag + b" NO [NONEXISTENT] no such mailbox\r\n"
				out = b'* STATUS "%s" (MESSAGES %d UIDNEXT %d UIDVALIDITY %d UNSEEN 0)\r\n' % (
					name.encode(), len(box["msgs"]), box["uidnext"], self.uidvalidity)
			elif verb in (b"EXAMINE", b"SELECT"):
				name = self._name(re.match(rb'\S+ ("[^"]*"|\S+)', rest).group(1))
				box = self.boxes.get(name)
				if box is None:
					return tag + b" NO [NONEXISTENT] no such mailbox\r\n"
				self.selected[c.index] = name
				out = (b"* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY %d] v\r\n* OK [UIDNEXT %d] n\r\n"
				       % (len(box["msgs"]), self.uidvalidity, box["uidnext"]))
			elif rest.upper().startswith(b"UID FETCH"):
				box = self.boxes[self.selected[c.index]]
				_, _, uidset, items = rest.split(b" ", 3)
				want = self._uids(box, uidset)
				for seq, m in enumerate(box["msgs"], 1):
					if m["uid"] in want:
						out += self._fetch_item(box, seq, m, items)
			elif rest.upper().startswith(b"UID SEARCH"):
				box = self.boxes[self.selected[c.index]]
				hits = {m["uid"] for m in box["msgs"]}
				toks = re.findall(rb'"[^"]*"|\S+', rest[len(b"UID SEARCH"):])
				i = 0
				while i < len(toks):
					t = toks[i].upper()
					if t == b"UID":
						hits &= self._uids(box, toks[i + 1])
						i += 2
					elif t == b"HEADER":
						f, v = toks[i + 1].decode(), toks[i + 2].strip(b'"')
						hits &= {m["uid"] for m in box["msgs"]
							 if v.lower() in (self._header(m["data"], f) or b"\x00").lower()}
						i += 3
					elif t in (b"LARGER", b"SMALLER"):
						n = int(toks[i + 1])
						hits &= {m["uid"] for m in box["msgs"]
							 if (len(m["data"]) > n if t == b"LARGER" else len(m["data"]) < n)}
						i += 2
					else:
						i += 1
				out = b"* SEARCH" + b"".join(b" %d" % u for u in sorted(hits)) + b"\r\n"
			return out + tag + b" OK done\r\n"

	def _append(self, c, body):
		tag = body.split(b" ", 1)[0]
		m = re.match(rb'\S+ APPEND ("[^"]*"|\S+)(?: \(([^)]*)\))?(?: "[^"]*")? \{(\d+)\+?\}\r?\n', body, re.S)
		n = int(m.group(3))
		data = body[m.end():m.end() + n]
		if len(data) < n:  # serve() stripped the command's CRLF and the message's last ones
			data += (b"\r\n" * n)[:n - len(data)]
		name = self._name(m.group(1))
		fault = self.append_faults.pop(0) if self.append_faults else None
		self.appends += 1
		if fault == "drop-before-store":
			return [drop()]
		if name not in self.boxes:
			return tag + b" NO [TRYCREATE] no such mailbox\r\n"
		uid = self.add(name, data, (m.group(2) or b"").decode().split())
		if fault == "drop-after-store":
			return [drop()]
		if fault == "stall-after-store":
			return [stall(60)]
		code = b"[APPENDUID %d %d] " % (self.uidvalidity, uid) if self.uidplus else b""
		return tag + b" OK " + code + b"Append completed\r\n"

	def script(self):
		rules = [(rb"\S+ (NOOP|CHECK|ENABLE .*|ID .*|UNSELECT|CLOSE)", b"{tag} OK\r\n"),
			 (rb"\S+ (?!LOGOUT).*", self._rule)]
		return login_steps(self.caps) + [serve(rules, timeout=300)]
