/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tls.c: the only file of imapfs that includes OpenSSL. It wraps one client session on a
 * connected non-blocking socket: context setup (TLS >= 1.2, system store or CA file),
 * SNI, host name / IP verification, an optional SHA-256 leaf pin, and non-blocking
 * read/write that tell the caller what to poll for. It never blocks and never logs data.
 */
#define G_LOG_DOMAIN "imapfs-imap"

#include "config.h"

#include "tls.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct _ImapTls {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	char *host;
	guint8 pin[32];
	gboolean have_pin;
};

static void
set_ssl_error(GError **error, ImapErrorCode code, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e) {
		ERR_error_string_n(e, buf, sizeof(buf));
		g_set_error(error, IMAP_ERROR, code, "%s: %s", what, buf);
	} else {
		g_set_error(error, IMAP_ERROR, code, "%s", what);
	}
	ERR_clear_error();
}

static gboolean
parse_pin(const char *text, guint8 out[32], GError **error)
{
	const char *p;
	guint n = 0;

	if (g_ascii_strncasecmp(text, "SHA256:", 7) != 0)
		goto bad;
	for (p = text + 7; *p; p++) {
		int hi, lo;

		if (*p == ':')
			continue;
		if (n >= 32 || !p[1])
			goto bad;
		hi = g_ascii_xdigit_value(p[0]);
		lo = g_ascii_xdigit_value(p[1]);
		if (hi < 0 || lo < 0)
			goto bad;
		out[n++] = (guint8)(hi << 4 | lo);
		p++;
	}
	if (n == 32)
		return TRUE;
bad:
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
		    "bad TLS fingerprint (want SHA256: and 64 hex digits)");
	return FALSE;
}

static gboolean
is_ip_literal(const char *host)
{
	guint8 buf[16];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

ImapTls *
imap_tls_new(int fd, const char *host, const char *cafile, const char *fingerprint,
	     GError **error)
{
	ImapTls *tls = g_new0(ImapTls, 1);
	X509_VERIFY_PARAM *param;

	tls->fd = fd;
	tls->host = g_strdup(host);
	if (fingerprint && *fingerprint) {
		if (!parse_pin(fingerprint, tls->pin, error))
			goto fail;
		tls->have_pin = TRUE;
	}

	tls->ctx = SSL_CTX_new(TLS_client_method());
	if (!tls->ctx) {
		set_ssl_error(error, IMAP_ERROR_TLS, "cannot create TLS context");
		goto fail;
	}
	SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(tls->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(tls->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
					   SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (cafile) {
		if (SSL_CTX_load_verify_locations(tls->ctx, cafile, NULL) != 1) {
			set_ssl_error(error, IMAP_ERROR_TLS, "cannot load CA file");
			g_prefix_error(error, "%s: ", cafile);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(tls->ctx) != 1) {
		set_ssl_error(error, IMAP_ERROR_TLS, "cannot load the system CA store");
		goto fail;
	}

	tls->ssl = SSL_new(tls->ctx);
	if (!tls->ssl || SSL_set_fd(tls->ssl, fd) != 1) {
		set_ssl_error(error, IMAP_ERROR_TLS, "cannot create TLS session");
		goto fail;
	}
	param = SSL_get0_param(tls->ssl);
	if (is_ip_literal(host)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1) {
			set_ssl_error(error, IMAP_ERROR_TLS, "cannot set IP to verify");
			goto fail;
		}
	} else {
		/* RFC 6125 §6.4.4: a certificate with subjectAltNames is matched against them
		 * only, and one without is refused: never fall back to the subject's CN */
		X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
							       X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
		if (SSL_set1_host(tls->ssl, host) != 1 ||
		    SSL_set_tlsext_host_name(tls->ssl, host) != 1) {
			set_ssl_error(error, IMAP_ERROR_TLS, "cannot set host name to verify");
			goto fail;
		}
	}
	SSL_set_connect_state(tls->ssl);
	return tls;
fail:
	imap_tls_free(tls);
	return NULL;
}

void
imap_tls_free(ImapTls *tls)
{
	if (!tls)
		return;
	if (tls->ssl)
		SSL_free(tls->ssl);
	if (tls->ctx)
		SSL_CTX_free(tls->ctx);
	g_free(tls->host);
	memset(tls->pin, 0, sizeof(tls->pin));
	g_free(tls);
}

static void
set_verify_error(ImapTls *tls, GError **error)
{
	long v = SSL_get_verify_result(tls->ssl);

	switch (v) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_TLS,
			    "certificate verify failed: hostname mismatch "
			    "(the certificate is not valid for '%s')", tls->host);
		break;
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_TLS,
			    "certificate verify failed: hostname mismatch "
			    "(the certificate is not valid for IP address %s)", tls->host);
		break;
	default:
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_TLS, "certificate verify failed: %s",
			    X509_verify_cert_error_string(v));
		break;
	}
}

static gboolean
check_pin(ImapTls *tls, GError **error)
{
	X509 *cert;
	guint8 md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	gboolean ok;

	if (!tls->have_pin)
		return TRUE;
	cert = SSL_get1_peer_certificate(tls->ssl);
	if (!cert) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_TLS, "server sent no certificate");
		return FALSE;
	}
	ok = X509_digest(cert, EVP_sha256(), md, &mdlen) == 1 && mdlen == 32 &&
	     CRYPTO_memcmp(md, tls->pin, 32) == 0;
	X509_free(cert);
	if (!ok) {
		g_autoptr(GString) got = g_string_new("SHA256:");

		for (guint i = 0; i < mdlen; i++)
			g_string_append_printf(got, "%s%02X", i ? ":" : "", md[i]);
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_TLS,
			    "certificate pin mismatch (server certificate is %s)", got->str);
	}
	return ok;
}

gboolean
imap_tls_handshake(ImapTls *tls, gint64 deadline, int cancel_fd, GError **error)
{
	for (;;) {
		int r, err;
		struct pollfd pfd[2];
		gint64 now;
		int nfds = 1;

		ERR_clear_error();
		errno = 0;
		r = SSL_do_handshake(tls->ssl);
		if (r == 1)
			break;
		err = SSL_get_error(tls->ssl, r);
		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
			if (SSL_get_verify_result(tls->ssl) != X509_V_OK) {
				ERR_clear_error();
				set_verify_error(tls, error);
			} else if (err == SSL_ERROR_SSL &&
				   ERR_GET_REASON(ERR_peek_error()) ==
					   SSL_R_UNEXPECTED_EOF_WHILE_READING) {
				/* closed mid-handshake (a load balancer whose server restarts):
				 * a network failure, not a TLS policy one */
				ERR_clear_error();
				g_set_error(error, IMAP_ERROR, IMAP_ERROR_DISCONNECTED,
					    "connection closed during TLS handshake");
			} else if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN) {
				int e = errno;
				unsigned long pe = ERR_peek_error();

				/* a reset or EOF (OpenSSL 3 queues ERR_LIB_SYS for it) is a
				 * network failure, anything else a TLS one */
				if (pe && ERR_GET_LIB(pe) != ERR_LIB_SYS) {
					set_ssl_error(error, IMAP_ERROR_TLS, "TLS handshake failed");
				} else {
					ERR_clear_error();
					g_set_error(error, IMAP_ERROR, IMAP_ERROR_DISCONNECTED,
						    "connection closed during TLS handshake%s%s",
						    r < 0 && e ? ": " : "",
						    r < 0 && e ? g_strerror(e) : "");
				}
			} else {
				set_ssl_error(error, IMAP_ERROR_TLS, "TLS handshake failed");
			}
			return FALSE;
		}
		now = g_get_monotonic_time();
		if (now >= deadline) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT, "TLS handshake timed out");
			return FALSE;
		}
		pfd[0].fd = tls->fd;
		pfd[0].events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		if (cancel_fd >= 0) {
			pfd[1].fd = cancel_fd;
			pfd[1].events = POLLIN;
			nfds = 2;
		}
		r = poll(pfd, nfds, (int)MIN((deadline - now + 999) / 1000, 1000));
		if (r < 0 && errno != EINTR) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_FAILED, "poll: %s",
				    g_strerror(errno));
			return FALSE;
		}
		if (nfds == 2 && r > 0 && (pfd[1].revents & POLLIN)) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_CANCELLED, "cancelled");
			return FALSE;
		}
	}
	if (SSL_get_verify_result(tls->ssl) != X509_V_OK) {
		set_verify_error(tls, error);
		return FALSE;
	}
	if (!check_pin(tls, error))
		return FALSE;
	g_debug("TLS established with %s: %s %s", tls->host, SSL_get_version(tls->ssl),
		SSL_get_cipher_name(tls->ssl));
	return TRUE;
}

static ImapIoStatus
io_status(ImapTls *tls, int r, const char *what, GError **error)
{
	int err = SSL_get_error(tls->ssl, r);

	switch (err) {
	case SSL_ERROR_WANT_READ:
		return IMAP_IO_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return IMAP_IO_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return IMAP_IO_EOF;
	case SSL_ERROR_SSL:
		if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			/* the peer closed without close_notify: a plain drop */
			ERR_clear_error();
			return IMAP_IO_EOF;
		}
		set_ssl_error(error, IMAP_ERROR_DISCONNECTED, what);
		return IMAP_IO_ERROR;
	case SSL_ERROR_SYSCALL:
		if (!ERR_peek_error()) {
			if (errno == EAGAIN || errno == EINTR)
				return IMAP_IO_WANT_READ;
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_DISCONNECTED,
				    "connection lost (%s): %s", what,
				    errno ? g_strerror(errno) : "unexpected EOF");
			return IMAP_IO_ERROR;
		}
		G_GNUC_FALLTHROUGH;
	default:
		set_ssl_error(error, IMAP_ERROR_DISCONNECTED, what);
		return IMAP_IO_ERROR;
	}
}

ImapIoStatus
imap_tls_read(ImapTls *tls, void *buf, gsize len, gsize *n, GError **error)
{
	size_t got = 0;
	int r;

	*n = 0;
	ERR_clear_error();
	errno = 0;
	r = SSL_read_ex(tls->ssl, buf, len, &got);
	if (r == 1) {
		*n = got;
		return IMAP_IO_OK;
	}
	return io_status(tls, r, "TLS read failed", error);
}

ImapIoStatus
imap_tls_write(ImapTls *tls, const void *buf, gsize len, gsize *n, GError **error)
{
	size_t done = 0;
	int r;

	*n = 0;
	ERR_clear_error();
	errno = 0;
	r = SSL_write_ex(tls->ssl, buf, len, &done);
	if (r == 1) {
		*n = done;
		return IMAP_IO_OK;
	}
	return io_status(tls, r, "TLS write failed", error);
}

gboolean
imap_tls_pending(ImapTls *tls)
{
	return SSL_pending(tls->ssl) > 0;
}

const char *
imap_tls_version(ImapTls *tls)
{
	return SSL_get_version(tls->ssl);
}

const char *
imap_tls_cipher(ImapTls *tls)
{
	return SSL_get_cipher_name(tls->ssl);
}
