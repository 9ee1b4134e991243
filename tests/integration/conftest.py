# SPDX-License-Identifier: GPL-2.0-or-later
"""pytest fixtures for the imapfs integration tests: private Dovecot servers and paths.

Session servers (dovecot_slash, dovecot_dot) start once per pytest process with a small
corpus and are treated as read-only; tests that mutate use the fresh_dovecot factory.
Everything started here is stopped by PID in a finalizer, also when a test fails.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import imapfs_testlib as tl  # noqa: E402

SESSION_CORPUS_N = 60
SESSION_SEED = 1

tl.install_signal_handlers()


@pytest.fixture(scope="session")
def source_dir():
	return tl.source_dir()


@pytest.fixture(scope="session")
def build_dir():
	return tl.build_dir()


@pytest.fixture(scope="session")
def imapfs_bin():
	p = tl.imapfs_bin()
	if not os.access(p, os.X_OK):
		pytest.fail("imapfs binary not found at %s (set IMAPFS_BIN)" % p)
	return p


@pytest.fixture(scope="session")
def imap_cli():
	p = tl.imap_cli_bin()
	if not os.access(p, os.X_OK):
		pytest.skip("imap-cli not built (%s)" % p)
	return p


def _session_server(request, layout):
	dv = tl.Dovecot()
	request.addfinalizer(dv.stop)
	dv.start(layout, corpus_n=SESSION_CORPUS_N, seed=SESSION_SEED)
	return dv


@pytest.fixture(scope="session")
def dovecot_slash(request):
	"""Shared read-only server: '/' delimiter, empty personal prefix, 60-message corpus."""
	return _session_server(request, "slash")


@pytest.fixture(scope="session")
def dovecot_dot(request):
	"""Shared read-only server: '.' delimiter, INBOX. prefix, user./shared. namespaces."""
	return _session_server(request, "dot")


@pytest.fixture(params=["slash", "dot"])
def dovecot_any(request):
	"""Parametrized over both session servers."""
	return request.getfixturevalue("dovecot_" + request.param)


@pytest.fixture
def fresh_dovecot(request):
	"""Factory: fresh_dovecot(layout='slash', corpus_n=0, seed=1) -> a new started Dovecot,
	stopped (by PID) and removed when the test ends."""
	started = []

	def make(layout="slash", corpus_n=0, seed=1):
		dv = tl.Dovecot()
		started.append(dv)
		return dv.start(layout, corpus_n=corpus_n, seed=seed)

	yield make
	for dv in started:
		dv.stop()


@pytest.fixture
def tmp_dir(tmp_path):
	"""A per-test scratch directory (pytest's tmp_path)."""
	return tmp_path
