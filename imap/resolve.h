/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * resolve.h: internal to imap/. Host name lookup with a deadline: getaddrinfo() has none,
 * so it runs on a short-lived thread and the caller waits only until its deadline.
 */
#pragma once

#include "imap.h"

#include <netdb.h>

/* Resolves @host:@port for a TCP connection. Waits until @deadline (monotonic µs) at most,
 * or until @cancel_fd (-1: none) becomes readable. Returns a list to free with
 * freeaddrinfo(), or NULL with IMAP_ERROR_CONNECT, IMAP_ERROR_TIMEOUT or
 * IMAP_ERROR_CANCELLED. A lookup still running after the deadline finishes on its own
 * thread and frees its result. */
struct addrinfo *imap_resolve_sync(const char *host, const char *port, gint64 deadline,
				   int cancel_fd, GError **error);
