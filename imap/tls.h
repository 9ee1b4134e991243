/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tls.h: internal to imap/. A TLS client session on an already connected, non-blocking
 * socket (tls.c, the only OpenSSL user). Verification (CA store or file, host name or IP,
 * optional SHA-256 pin of the leaf) happens in the handshake; reads and writes never block
 * and report what they wait for, so the caller's poll() loop owns every deadline.
 */
#pragma once

#include "imap.h"

G_BEGIN_DECLS

typedef enum {
	IMAP_IO_OK,         /* some bytes moved (*n > 0) */
	IMAP_IO_WANT_READ,  /* poll for POLLIN and call again */
	IMAP_IO_WANT_WRITE, /* poll for POLLOUT and call again */
	IMAP_IO_EOF,        /* orderly close by the peer */
	IMAP_IO_ERROR,      /* *error set */
} ImapIoStatus;

typedef struct _ImapTls ImapTls;

/* Prepares a client session for @fd (connected, O_NONBLOCK; not owned). @host is what the
 * certificate must match (a DNS name, or an IPv4/IPv6 literal) and, for names, the SNI.
 * @cafile NULL: the system store. @fingerprint: "SHA256:<64 hex digits, colons optional>"
 * or NULL. Fails (IMAP_ERROR_TLS / IMAP_ERROR_INVALID) on a bad CA file or pin syntax. */
ImapTls *imap_tls_new(int fd, const char *host, const char *cafile, const char *fingerprint,
		      GError **error);
void imap_tls_free(ImapTls *tls);

/* Runs the handshake, polling @fd (and @cancel_fd when >= 0, which aborts with
 * IMAP_ERROR_CANCELLED when readable) until @deadline (g_get_monotonic_time() units).
 * Errors: IMAP_ERROR_TLS with a clear message ("certificate verify failed: ...",
 * "hostname mismatch", "certificate pin mismatch"), IMAP_ERROR_TIMEOUT, _DISCONNECTED. */
gboolean imap_tls_handshake(ImapTls *tls, gint64 deadline, int cancel_fd, GError **error);

/* Non-blocking I/O on an established session. */
ImapIoStatus imap_tls_read(ImapTls *tls, void *buf, gsize len, gsize *n, GError **error);
ImapIoStatus imap_tls_write(ImapTls *tls, const void *buf, gsize len, gsize *n,
			    GError **error);
/* TRUE when decrypted bytes are buffered inside the session (poll() cannot see them). */
gboolean imap_tls_pending(ImapTls *tls);
/* Protocol and cipher, e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384" (static strings). */
const char *imap_tls_version(ImapTls *tls);
const char *imap_tls_cipher(ImapTls *tls);

G_END_DECLS
