/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * auth.h: internal to imap/. Logging in during connection setup (auth.c): picks the best
 * mechanism the server offers and refuses to send a credential in cleartext unless the
 * configuration explicitly allows it.
 */
#pragma once

#include "conn.h"

G_BEGIN_DECLS

/* Authenticates on a connection in its setup phase and refreshes its capabilities.
 * Errors: IMAP_ERROR_INSECURE (no TLS and not allowed), IMAP_ERROR_AUTH (rejected, with
 * the server's text, or no usable mechanism), I/O errors. */
gboolean imap_auth_login(ImapConn *conn, GError **error);

G_END_DECLS
