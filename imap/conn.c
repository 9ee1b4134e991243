/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conn.c: one IMAP connection. Setup (TCP, TLS/STARTTLS, greeting, CAPABILITY, login via
 * auth.c, ENABLE) runs synchronously in the opener's thread; then one I/O thread owns the
 * socket, the TLS session and the parser, writes submitted commands (pipelined), reads,
 * dispatches untagged responses and completes commands on their tagged response.
 *
 * Design (model: the sshfs reader thread; isync drv_imap.c cmd_sendable()):
 * - Invariants: only the I/O thread touches fd/tls/parser/rbuf/out after setup. A command
 *   is in exactly one of conn->pending (not yet written), conn->inflight (tag sent, in tag
 *   order) or completed (done == TRUE, owned by its waiting worker via a reference).
 * - Sending rules: at most MAX_INFLIGHT commands in flight; nothing is sent behind a
 *   command that still has parts waiting for a "+" continuation; an EXCLUSIVE command is
 *   sent only when nothing is in flight and nothing is sent behind it (a body FETCH with
 *   a sink, IDLE), so streamed literal bytes always belong to that one command.
 * - Deadlines: while anything is in flight (except an established IDLE) the connection
 *   must make progress (bytes in or out) every cfg->timeout_ms, else it is stalled: it
 *   dies with IMAP_ERROR_TIMEOUT. And every command (IDLE aside) must be complete within
 *   a total deadline from the moment its tag was sent: timeout_ms plus the time its own
 *   bytes, the bytes received meanwhile and the literals announced meanwhile take at
 *   MIN_RATE bytes/s (so a big honest transfer has the time it needs, and a server that
 *   dribbles a byte now and then cannot hold a reader for ever); past it the connection
 *   dies with IMAP_ERROR_TIMEOUT too. A drop is IMAP_ERROR_DISCONNECTED. On death every
 *   pending and in-flight command completes with that error and the event handler gets
 *   resp == NULL; the pool bumps its epoch and reconnects.
 * - Cancellation: a worker that gives up abandons its command (fn, sink cleared under the
 *   lock); the I/O thread still consumes its responses so the stream stays in sync, except
 *   a streamed literal: its next bytes drop the connection (a download nobody waits for).
 * - Locking: one mutex per connection (conn->lock). The I/O thread holds it while feeding
 *   the parser and dispatching (handlers and sinks run under it) and while moving commands
 *   to the output buffer, never across poll() or a socket read/write. Lock order: pool
 *   lock before conn lock (pool.c); handlers must not call back into the connection.
 */
#define G_LOG_DOMAIN "imapfs-imap"

#include "config.h"

#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>

#include "auth.h"
#include "resolve.h"
#include "resp.h"
#include "tls.h"
#include "trace.h"

#define MAX_INFLIGHT 16
#define RBUF_SIZE (64 * 1024)
#define LOGOUT_TIMEOUT_MS 2000
/* The slowest transfer rate a command's total deadline allows for the literal bytes the
 * server announced (64 KiB/s: a 10 MB message gets timeout + 160 s). */
#define MIN_RATE (64 * 1024)

typedef struct {
	gint ref;
	ImapCmd *cmd;
	char tag[16];
	guint flags;
	guint next_part;        /* next part of cmd to write */
	gboolean cont_ready;    /* a "+" arrived for the next part */
	gboolean idling;        /* IDLE: "+" received */
	gboolean done_sent;     /* IDLE: DONE written */
	gint64 sent_at;         /* monotonic us when the tag was written out, 0 before */
	guint64 lit_base;       /* the parser's literal byte count at that moment */
	guint64 rx_base;        /* conn->rx_total at that moment */
	guint64 tx_bytes;       /* the command's own size */
	ImapConnRespFn fn;      /* NULL once abandoned */
	gpointer data;
	ImapLiteralSink sink;
	gpointer sink_data;
	gboolean done;
	ImapResponse *tagged;
	GError *error;
} ConnCmd;

struct _ImapConn {
	/* immutable after setup */
	const ImapConfig *cfg;
	ImapStats *stats;
	guint id;
	int fd;
	ImapTls *tls;
	char **caps;
	gboolean condstore, qresync, utf8;
	gboolean loopback;
	ImapTrace *trace;
	GThread *thread;
	int wake[2];
	gint64 timeout_us;

	/* setup phase only (opener's thread) */
	gint64 setup_deadline;
	int setup_cancel_fd;

	/* I/O thread (or setup) only */
	ImapParser *parser;
	guint8 *rbuf;
	gsize rpos, rlen;
	GByteArray *out;
	gsize out_pos;
	gint64 last_activity;
	guint64 rx_total; /* bytes read from the server */
	/* trace scanner of server bytes */
	GString *tline;
	guint64 tlit_left;

	/* protected by lock */
	GMutex lock;
	GCond cond;
	GQueue pending;
	GQueue inflight;
	ConnCmd *sink_cmd;
	ConnCmd *idle_cmd;
	gboolean idle_done_req;
	guint tag_counter;
	gboolean dead;
	GError *dead_error;
	gboolean quit;
	gboolean logging_out;
	char *bye_text;
	ImapConnEventFn event_fn;
	gpointer event_data;
};

static gint conn_ids;

/* Bodies stream to a sink, so a literal may be as big as a message can be (below INT_MAX,
 * as isync); what is held in memory for one response stays bounded by max_response. */
static const ImapParserLimits parser_limits = {
	.max_line = 64 * 1024,
	.max_depth = 32,
	.max_literal = G_MAXINT - 1,
	.stream_threshold = 64 * 1024,
	.max_response = 128 * 1024 * 1024,
};

/* ---- small helpers ------------------------------------------------------------------ */

static void
stat_add(ImapConn *c, guint64 *field, guint64 n)
{
	if (c->stats)
		__atomic_add_fetch(field, n, __ATOMIC_RELAXED);
}

static ConnCmd *
cc_ref(ConnCmd *cc)
{
	g_atomic_int_inc(&cc->ref);
	return cc;
}

static void
cc_unref(ConnCmd *cc)
{
	if (!cc || !g_atomic_int_dec_and_test(&cc->ref))
		return;
	imap_cmd_free(cc->cmd);
	imap_response_free(cc->tagged);
	g_clear_error(&cc->error);
	g_free(cc);
}

void
imap_conn_set_resp_error(const ImapResponse *resp, GError **error)
{
	ImapErrorCode code;
	const char *text = resp->text && *resp->text ? resp->text : NULL;

	if (resp->status == IMAP_STATUS_BAD)
		code = imap_resp_error_code(resp, IMAP_ERROR_BAD);
	else if (resp->status == IMAP_STATUS_BYE)
		code = IMAP_ERROR_DISCONNECTED;
	else
		code = imap_resp_error_code(resp, IMAP_ERROR_NO);
	g_set_error(error, IMAP_ERROR, code, "%s%s",
		    resp->status == IMAP_STATUS_BAD ? "server said BAD: " :
		    resp->status == IMAP_STATUS_BYE ? "server closed the connection: " : "",
		    text ? text : "command failed");
}

static void
set_caps(ImapConn *c, char **caps)
{
	g_strfreev(c->caps);
	c->caps = caps;
}

static void
take_caps_from_code(ImapConn *c, const ImapResponse *resp)
{
	if (resp->code && g_ascii_strcasecmp(resp->code, "CAPABILITY") == 0) {
		g_autoptr(GError) err = NULL;
		char **caps = imap_resp_capability(resp, &err);

		if (caps)
			set_caps(c, caps);
		else
			g_debug("conn %u: bad CAPABILITY code: %s", c->id, err->message);
	}
}

static void
wake(ImapConn *c)
{
	char b = 1;

	if (c->wake[1] >= 0 && write(c->wake[1], &b, 1) < 0 && errno != EAGAIN)
		g_debug("conn %u: wake: %s", c->id, g_strerror(errno));
}

/* OpenSSL writes to the socket with write(2), which raises SIGPIPE when the peer is gone.
 * The library must not change the process's signal disposition, so SIGPIPE is blocked in
 * the threads that write (the I/O thread for good; the opener around setup, consuming a
 * SIGPIPE that setup caused), and the write fails with EPIPE instead (as libcurl does). */
typedef struct {
	sigset_t old;
	gboolean was_pending;
} SigpipeGuard;

static void
sigpipe_block(SigpipeGuard *g)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void
sigpipe_restore(SigpipeGuard *g)
{
	sigset_t set, pending;
	struct timespec zero = { 0, 0 };

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	if (!g->was_pending && sigismember(&pending, SIGPIPE))
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- trace of server bytes ---------------------------------------------------------- */

static void
trace_in(ImapConn *c, const guint8 *p, gsize n)
{
	if (!imap_trace_enabled(c->trace))
		return;
	while (n > 0) {
		const guint8 *nl;
		gsize k;

		if (c->tlit_left > 0) {
			k = MIN(n, c->tlit_left);
			c->tlit_left -= k;
			p += k;
			n -= k;
			continue;
		}
		nl = memchr(p, '\n', n);
		k = nl ? (gsize)(nl - p) + 1 : n;
		if (c->tline->len < 16384)
			g_string_append_len(c->tline, (const char *)p,
					    MIN(k, 16384 - c->tline->len));
		p += k;
		n -= k;
		if (nl) {
			const char *s = c->tline->str;
			gsize len = c->tline->len;
			guint64 lit = 0;

			while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
				len--;
			imap_trace_server_line(c->trace, s, len);
			if (len > 2 && s[len - 1] == '}') {
				gsize i = len - 2;

				if (s[i] == '+')
					i--;
				while (i > 0 && g_ascii_isdigit(s[i]))
					i--;
				if (s[i] == '{')
					lit = g_ascii_strtoull(s + i + 1, NULL, 10);
			}
			if (lit > 0) {
				c->tlit_left = lit;
				imap_trace_server_literal(c->trace, lit);
			}
			g_string_truncate(c->tline, 0);
		}
	}
}

/* ---- transport ---------------------------------------------------------------------- */

static ImapIoStatus
raw_read(ImapConn *c, void *buf, gsize len, gsize *n, GError **error)
{
	ImapIoStatus st;
	ssize_t r;

	if (c->tls) {
		st = imap_tls_read(c->tls, buf, len, n, error);
	} else {
		*n = 0;
		r = recv(c->fd, buf, len, 0);
		if (r > 0) {
			*n = r;
			st = IMAP_IO_OK;
		} else if (r == 0) {
			st = IMAP_IO_EOF;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			st = IMAP_IO_WANT_READ;
		} else {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_DISCONNECTED,
				    "connection lost: %s", g_strerror(errno));
			st = IMAP_IO_ERROR;
		}
	}
	if (st == IMAP_IO_OK) {
		c->rx_total += *n;
		stat_add(c, &c->stats->bytes_in, *n);
		trace_in(c, buf, *n);
	}
	return st;
}

static ImapIoStatus
raw_write(ImapConn *c, const void *buf, gsize len, gsize *n, GError **error)
{
	ImapIoStatus st;
	ssize_t r;

	if (c->tls) {
		st = imap_tls_write(c->tls, buf, len, n, error);
	} else {
		*n = 0;
		r = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (r >= 0) {
			*n = r;
			st = IMAP_IO_OK;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			st = IMAP_IO_WANT_WRITE;
		} else {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_DISCONNECTED,
				    "connection lost: %s", g_strerror(errno));
			st = IMAP_IO_ERROR;
		}
	}
	if (st == IMAP_IO_OK)
		stat_add(c, &c->stats->bytes_out, *n);
	return st;
}

/* ---- setup phase: synchronous I/O with the setup deadline --------------------------- */

static gboolean
setup_wait(ImapConn *c, short events, GError **error)
{
	for (;;) {
		struct pollfd pfd[2] = { { c->fd, events, 0 }, { c->setup_cancel_fd, POLLIN, 0 } };
		gint64 now = g_get_monotonic_time();
		int r;

		if (now >= c->setup_deadline) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT,
				    "timed out waiting for the server");
			return FALSE;
		}
		r = poll(pfd, c->setup_cancel_fd >= 0 ? 2 : 1,
			 (int)MIN((c->setup_deadline - now + 999) / 1000, 1000));
		if (r < 0 && errno != EINTR) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_FAILED, "poll: %s",
				    g_strerror(errno));
			return FALSE;
		}
		if (r > 0 && c->setup_cancel_fd >= 0 && (pfd[1].revents & POLLIN)) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_CANCELLED, "cancelled");
			return FALSE;
		}
		if (r > 0 && pfd[0].revents)
			return TRUE;
	}
}

static gboolean
setup_write_all(ImapConn *c, const void *data, gsize len, GError **error)
{
	const guint8 *p = data;

	while (len > 0) {
		gsize n;
		ImapIoStatus st = raw_write(c, p, len, &n, error);

		switch (st) {
		case IMAP_IO_OK:
			p += n;
			len -= n;
			break;
		case IMAP_IO_WANT_READ:
		case IMAP_IO_WANT_WRITE:
			if (!setup_wait(c, st == IMAP_IO_WANT_READ ? POLLIN : POLLOUT, error))
				return FALSE;
			break;
		case IMAP_IO_EOF:
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_DISCONNECTED,
				    "connection closed by the server");
			return FALSE;
		case IMAP_IO_ERROR:
			return FALSE;
		}
	}
	return TRUE;
}

static ImapResponse *
setup_read_response(ImapConn *c, GError **error)
{
	for (;;) {
		while (c->rpos < c->rlen) {
			gsize used = 0;
			ImapParseResult r = imap_parser_feed(c->parser, c->rbuf + c->rpos,
							     c->rlen - c->rpos, &used, error);

			c->rpos += used;
			if (r == IMAP_PARSE_RESPONSE)
				return imap_parser_take(c->parser);
			if (r == IMAP_PARSE_ERROR)
				return NULL;
		}
		c->rpos = c->rlen = 0;
		for (;;) {
			gsize n;
			ImapIoStatus st = raw_read(c, c->rbuf, RBUF_SIZE, &n, error);

			if (st == IMAP_IO_OK) {
				c->rlen = n;
				break;
			}
			if (st == IMAP_IO_EOF) {
				g_set_error(error, IMAP_ERROR, IMAP_ERROR_DISCONNECTED,
					    "connection closed by the server");
				return NULL;
			}
			if (st == IMAP_IO_ERROR)
				return NULL;
			if (!setup_wait(c, st == IMAP_IO_WANT_READ ? POLLIN : POLLOUT, error))
				return NULL;
		}
	}
}

static char *
next_tag(ImapConn *c)
{
	return g_strdup_printf("A%u", ++c->tag_counter);
}

static void
setup_untagged(ImapConn *c, const ImapResponse *resp)
{
	g_autoptr(GError) err = NULL;

	switch (imap_resp_untagged_kind(resp)) {
	case IMAP_UNTAGGED_CAPABILITY: {
		char **caps = imap_resp_capability(resp, &err);

		if (caps)
			set_caps(c, caps);
		break;
	}
	case IMAP_UNTAGGED_ENABLED: {
		g_auto(GStrv) en = imap_resp_enabled(resp, &err);

		for (guint i = 0; en && en[i]; i++) {
			if (g_ascii_strcasecmp(en[i], "QRESYNC") == 0)
				c->qresync = c->condstore = TRUE;
			else if (g_ascii_strcasecmp(en[i], "CONDSTORE") == 0)
				c->condstore = TRUE;
			else if (g_ascii_strcasecmp(en[i], "UTF8=ACCEPT") == 0)
				c->utf8 = TRUE;
		}
		break;
	}
	case IMAP_UNTAGGED_STATUS:
		if (resp->status == IMAP_STATUS_BYE) {
			g_free(c->bye_text);
			c->bye_text = g_strdup(resp->text);
		}
		take_caps_from_code(c, resp);
		break;
	default:
		break;
	}
}

gboolean
imap_conn_setup_command(ImapConn *c, ImapCmd *cmd, ImapConnContFn cont, gpointer cont_data,
			ImapResponse **tagged_out, GError **error)
{
	g_autofree char *tag = next_tag(c);
	guint n_parts = imap_cmd_get_n_parts(cmd);
	guint next = 1;
	GBytes *part = imap_cmd_get_part(cmd, 0);
	g_autoptr(GString) line = g_string_new(tag);
	gboolean ok;

	g_string_append_c(line, ' ');
	g_string_append_len(line, g_bytes_get_data(part, NULL), g_bytes_get_size(part));
	imap_trace_client(c->trace, tag, cmd);
	stat_add(c, &c->stats->commands, 1);
	ok = setup_write_all(c, line->str, line->len, error);
	memset(line->str, 0, line->len); /* may hold a credential (LOGIN, SASL-IR) */
	if (!ok)
		return FALSE;

	for (;;) {
		g_autoptr(ImapResponse) resp = setup_read_response(c, error);

		if (!resp)
			return FALSE;
		if (resp->kind == IMAP_RESP_UNTAGGED) {
			setup_untagged(c, resp);
			if (resp->status == IMAP_STATUS_BYE) {
				imap_conn_set_resp_error(resp, error);
				return FALSE;
			}
			continue;
		}
		if (resp->kind == IMAP_RESP_CONTINUATION) {
			if (next < n_parts) {
				part = imap_cmd_get_part(cmd, next++);
				if (!setup_write_all(c, g_bytes_get_data(part, NULL),
						     g_bytes_get_size(part), error))
					return FALSE;
			} else if (cont) {
				g_autoptr(GString) reply = g_string_new(NULL);
				gboolean secret = TRUE;

				if (!cont(c, resp, reply, &secret, cont_data, error))
					return FALSE;
				if (secret)
					imap_trace_client_sasl(c->trace);
				else
					imap_trace_client_line(c->trace, reply->str);
				g_string_append(reply, "\r\n");
				ok = setup_write_all(c, reply->str, reply->len, error);
				memset(reply->str, 0, reply->len);
				if (!ok)
					return FALSE;
			} else {
				g_set_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL,
					    "unexpected continuation request from the server");
				return FALSE;
			}
			continue;
		}
		if (g_strcmp0(resp->tag, tag) != 0) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL,
				    "unexpected tag in server response");
			return FALSE;
		}
		take_caps_from_code(c, resp);
		if (resp->status != IMAP_STATUS_OK) {
			imap_conn_set_resp_error(resp, error);
			if (tagged_out)
				*tagged_out = g_steal_pointer(&resp);
			return FALSE;
		}
		if (tagged_out)
			*tagged_out = g_steal_pointer(&resp);
		return TRUE;
	}
}

static gboolean
simple_setup_command(ImapConn *c, const char *verb, GError **error)
{
	g_autoptr(ImapCmd) cmd = imap_cmd_new(verb);

	if (!imap_cmd_finish(cmd, error))
		return FALSE;
	return imap_conn_setup_command(c, cmd, NULL, NULL, NULL, error);
}

static gboolean
is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return TRUE;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return in6->sin6_addr.s6_addr[12] == 127;
	}
	return FALSE;
}

static int
tcp_connect(ImapConn *c, GError **error)
{
	struct addrinfo *res = NULL, *ai;
	char port[8];
	int fd = -1;
	g_autofree char *last_err = NULL;

	g_snprintf(port, sizeof(port), "%u", c->cfg->port ? c->cfg->port :
			 c->cfg->tls == IMAP_TLS_IMPLICIT ? 993 : 143);
	res = imap_resolve_sync(c->cfg->host, port, c->setup_deadline, c->setup_cancel_fd,
				error);
	if (!res)
		return -1;
	for (ai = res; ai; ai = ai->ai_next) {
		int one = 1, soerr = 0;
		socklen_t sl = sizeof(soerr);
		g_autoptr(GError) werr = NULL;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0)
			continue;
		c->fd = fd;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    (errno == EINPROGRESS && setup_wait(c, POLLOUT, &werr) &&
		     getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)) {
			c->loopback = is_loopback(ai->ai_addr);
			break;
		}
		if (werr && (werr->code == IMAP_ERROR_CANCELLED)) {
			g_propagate_error(error, g_steal_pointer(&werr));
			close(fd);
			c->fd = -1;
			freeaddrinfo(res);
			return -1;
		}
		g_free(last_err);
		last_err = werr ? g_strdup(werr->message) :
				  g_strdup(g_strerror(soerr ? soerr : errno));
		close(fd);
		c->fd = fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_CONNECT, "cannot connect to %s port %s: %s",
			    c->cfg->host, port, last_err ? last_err : "no address");
		return -1;
	}
	{
		int on = 1, idle = 60, intvl = 15, cnt = 4;

		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	}
	return fd;
}

static gboolean
start_tls(ImapConn *c, GError **error)
{
	c->tls = imap_tls_new(c->fd, c->cfg->host, c->cfg->cafile, c->cfg->tls_fingerprint,
			      error);
	if (!c->tls)
		return FALSE;
	return imap_tls_handshake(c->tls, c->setup_deadline, c->setup_cancel_fd, error);
}

static gboolean
enable_extensions(ImapConn *c, GError **error)
{
	g_autoptr(ImapCmd) cmd = NULL;
	gboolean any = FALSE;

	if (imap_conn_has_cap(c, "CONDSTORE"))
		c->condstore = TRUE; /* enabled implicitly by its first use */
	if (!imap_conn_has_cap(c, "ENABLE"))
		return TRUE;
	cmd = imap_cmd_new("ENABLE");
	if (imap_conn_has_cap(c, "QRESYNC")) {
		imap_cmd_atom(cmd, "QRESYNC");
		any = TRUE;
	} else if (imap_conn_has_cap(c, "CONDSTORE")) {
		imap_cmd_atom(cmd, "CONDSTORE");
		any = TRUE;
	}
	if (imap_conn_has_cap(c, "UTF8=ACCEPT")) {
		imap_cmd_atom(cmd, "UTF8=ACCEPT");
		any = TRUE;
	}
	if (!any)
		return TRUE;
	if (!imap_cmd_finish(cmd, error))
		return FALSE;
	return imap_conn_setup_command(c, cmd, NULL, NULL, NULL, error);
}

static gboolean
setup(ImapConn *c, GError **error)
{
	g_autoptr(ImapResponse) greet = NULL;
	GError *err = NULL;
	gboolean preauth;

	if (tcp_connect(c, error) < 0)
		return FALSE;
	if (c->cfg->tls == IMAP_TLS_IMPLICIT && !start_tls(c, error))
		return FALSE;
	greet = setup_read_response(c, error);
	if (!greet)
		return FALSE;
	if (greet->kind != IMAP_RESP_UNTAGGED ||
	    (greet->status != IMAP_STATUS_OK && greet->status != IMAP_STATUS_PREAUTH &&
	     greet->status != IMAP_STATUS_BYE)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL,
			    "the server did not send an IMAP greeting");
		return FALSE;
	}
	if (greet->status == IMAP_STATUS_BYE) {
		imap_conn_set_resp_error(greet, error);
		g_prefix_error(error, "server refused the connection: ");
		return FALSE;
	}
	preauth = greet->status == IMAP_STATUS_PREAUTH;
	take_caps_from_code(c, greet);
	if (!c->caps && !simple_setup_command(c, "CAPABILITY", error))
		return FALSE;
	if (!imap_conn_has_cap(c, "IMAP4rev1") && !imap_conn_has_cap(c, "IMAP4rev2")) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED,
			    "the server does not speak IMAP4rev1");
		return FALSE;
	}
	if (c->cfg->tls == IMAP_TLS_STARTTLS) {
		if (preauth) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_TLS_REQUIRED,
				    "server sent PREAUTH on a connection that requires STARTTLS");
			return FALSE;
		}
		if (!imap_conn_has_cap(c, "STARTTLS")) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_TLS_REQUIRED,
				    "server does not offer STARTTLS");
			return FALSE;
		}
		if (!simple_setup_command(c, "STARTTLS", &err)) {
			if (err->domain == IMAP_ERROR &&
			    (err->code == IMAP_ERROR_NO || err->code == IMAP_ERROR_BAD)) {
				g_set_error(error, IMAP_ERROR, IMAP_ERROR_TLS,
					    "server refused STARTTLS: %s", err->message);
				g_clear_error(&err);
			} else {
				g_propagate_error(error, g_steal_pointer(&err));
			}
			return FALSE;
		}
		if (c->rpos < c->rlen)
			g_message("conn %u: discarding %" G_GSIZE_FORMAT
				  " bytes the server sent in cleartext after STARTTLS",
				  c->id, c->rlen - c->rpos);
		c->rpos = c->rlen = 0;
		imap_parser_free(c->parser);
		c->parser = imap_parser_new(&parser_limits);
		set_caps(c, NULL);
		if (!start_tls(c, error))
			return FALSE;
		if (!simple_setup_command(c, "CAPABILITY", error))
			return FALSE;
	}
	if (!preauth) {
		if (!imap_auth_login(c, error))
			return FALSE;
	}
	if (!enable_extensions(c, error))
		return FALSE;
	return TRUE;
}

/* ---- the I/O thread ----------------------------------------------------------------- */

static void
complete(ImapConn *c, ConnCmd *cc, ImapResponse *tagged, GError *err)
{
	cc->done = TRUE;
	cc->tagged = tagged;
	cc->error = err;
	if (c->sink_cmd == cc) {
		imap_parser_set_sink(c->parser, NULL, NULL);
		c->sink_cmd = NULL;
	}
	g_cond_broadcast(&c->cond);
	cc_unref(cc);
}

/* Lock held. */
static void
conn_die(ImapConn *c, GError *err)
{
	ConnCmd *cc;

	if (c->dead) {
		g_error_free(err);
		return;
	}
	if (c->logging_out)
		g_debug("conn %u: closed after LOGOUT", c->id);
	else
		g_debug("conn %u: %s", c->id, err->message);
	c->dead = TRUE;
	c->dead_error = err;
	while ((cc = g_queue_pop_head(&c->inflight)))
		complete(c, cc, NULL, g_error_copy(err));
	while ((cc = g_queue_pop_head(&c->pending)))
		complete(c, cc, NULL, g_error_copy(err));
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	if (c->event_fn)
		c->event_fn(c, NULL, c->event_data);
	g_cond_broadcast(&c->cond);
}

static gboolean
sink_trampoline(const guint8 *data, gsize len, gpointer user_data)
{
	ImapConn *c = user_data;
	ConnCmd *cc = c->sink_cmd;

	stat_add(c, &c->stats->body_bytes, len);
	if (cc && cc->sink)
		return cc->sink(data, len, cc->sink_data);
	/* abandoned (nobody wants the body any more): stop the download rather than let it
	 * hold the connection; the failed literal drops the connection (body fetches run
	 * alone on it), the pool opens another when needed */
	return cc == NULL;
}

static void
out_append(ImapConn *c, const void *p, gsize n)
{
	if (c->out_pos == c->out->len) {
		c->out_pos = 0;
		g_byte_array_set_size(c->out, 0);
	}
	g_byte_array_append(c->out, p, n);
}

/* Lock held: moves what may be sent now into the output buffer. */
static void
fill_output(ImapConn *c)
{
	for (;;) {
		ConnCmd *last = g_queue_peek_tail(&c->inflight);
		ConnCmd *cc;
		GBytes *part;

		if (last && last->next_part < imap_cmd_get_n_parts(last->cmd)) {
			if (!last->cont_ready)
				return;
			part = imap_cmd_get_part(last->cmd, last->next_part++);
			last->cont_ready = FALSE;
			out_append(c, g_bytes_get_data(part, NULL), g_bytes_get_size(part));
			continue;
		}
		if (last && (last->flags & IMAP_CONN_IDLE)) {
			if (last->idling && c->idle_done_req && !last->done_sent) {
				out_append(c, "DONE\r\n", 6);
				imap_trace_client_line(c->trace, "DONE");
				last->done_sent = TRUE;
				c->last_activity = g_get_monotonic_time();
			}
			return;
		}
		if (last && (last->flags & IMAP_CONN_EXCLUSIVE))
			return;
		cc = g_queue_peek_head(&c->pending);
		if (!cc)
			return;
		if ((cc->flags & IMAP_CONN_EXCLUSIVE) && last)
			return;
		if (g_queue_get_length(&c->inflight) >= MAX_INFLIGHT)
			return;
		if (cc->flags & IMAP_CONN_SERIAL) {
			const char *verb = imap_cmd_get_verb(cc->cmd);

			for (GList *l = c->inflight.head; l; l = l->next) {
				ConnCmd *o = l->data;

				if (strcmp(imap_cmd_get_verb(o->cmd), verb) == 0)
					return;
			}
		}
		g_queue_pop_head(&c->pending);
		g_snprintf(cc->tag, sizeof(cc->tag), "A%u", ++c->tag_counter);
		out_append(c, cc->tag, strlen(cc->tag));
		out_append(c, " ", 1);
		part = imap_cmd_get_part(cc->cmd, 0);
		out_append(c, g_bytes_get_data(part, NULL), g_bytes_get_size(part));
		cc->next_part = 1;
		cc->sent_at = g_get_monotonic_time();
		cc->lit_base = imap_parser_literal_bytes(c->parser);
		cc->rx_base = c->rx_total;
		for (guint i = 0; i < imap_cmd_get_n_parts(cc->cmd); i++)
			cc->tx_bytes += g_bytes_get_size(imap_cmd_get_part(cc->cmd, i));
		imap_trace_client(c->trace, cc->tag, cc->cmd);
		stat_add(c, &c->stats->commands, 1);
		if (cc->flags & IMAP_CONN_IDLE)
			c->idle_done_req = FALSE;
		if (cc->sink) {
			c->sink_cmd = cc;
			imap_parser_set_sink(c->parser, sink_trampoline, c);
		}
		g_queue_push_tail(&c->inflight, cc);
		if (c->last_activity == 0 || g_queue_get_length(&c->inflight) == 1)
			c->last_activity = g_get_monotonic_time();
	}
}

static ConnCmd *
find_inflight(ImapConn *c, const char *tag)
{
	for (GList *l = c->inflight.head; l; l = l->next) {
		ConnCmd *cc = l->data;

		if (strcmp(cc->tag, tag) == 0)
			return cc;
	}
	return NULL;
}

/* Lock held. Returns FALSE when the connection was killed. */
static gboolean
dispatch(ImapConn *c, ImapResponse *resp)
{
	if (resp->kind == IMAP_RESP_TAGGED) {
		ConnCmd *cc = find_inflight(c, resp->tag);
		GError *err = NULL;

		if (!cc) {
			conn_die(c, g_error_new(IMAP_ERROR, IMAP_ERROR_PROTOCOL,
					    "server answered an unknown tag"));
			imap_response_free(resp);
			return FALSE;
		}
		g_queue_remove(&c->inflight, cc);
		if (resp->status != IMAP_STATUS_OK)
			imap_conn_set_resp_error(resp, &err);
		complete(c, cc, resp, err);
		return TRUE;
	}
	if (resp->kind == IMAP_RESP_CONTINUATION) {
		ConnCmd *last = g_queue_peek_tail(&c->inflight);

		if (last && last->next_part < imap_cmd_get_n_parts(last->cmd) &&
		    !last->cont_ready) {
			last->cont_ready = TRUE;
		} else if (last && (last->flags & IMAP_CONN_IDLE) && !last->idling) {
			last->idling = TRUE;
			g_cond_broadcast(&c->cond);
		} else {
			conn_die(c, g_error_new(IMAP_ERROR, IMAP_ERROR_PROTOCOL,
					    "unexpected continuation request from the server"));
			imap_response_free(resp);
			return FALSE;
		}
		imap_response_free(resp);
		return TRUE;
	}
	/* untagged */
	if (resp->status == IMAP_STATUS_BYE) {
		g_free(c->bye_text);
		c->bye_text = g_strdup(resp->text);
	}
	for (GList *l = c->inflight.head; l; l = l->next) {
		ConnCmd *cc = l->data;

		if (cc->fn && cc->fn(c, resp, cc->data)) {
			imap_response_free(resp);
			return TRUE;
		}
	}
	if (c->event_fn)
		c->event_fn(c, resp, c->event_data);
	else
		g_debug("conn %u: unsolicited response ignored", c->id);
	imap_response_free(resp);
	return TRUE;
}

/* Lock held. Feeds what is in rbuf. Returns FALSE when the connection died. */
static gboolean
feed(ImapConn *c)
{
	while (c->rpos < c->rlen) {
		GError *err = NULL;
		gsize used = 0;
		ImapParseResult r = imap_parser_feed(c->parser, c->rbuf + c->rpos,
						     c->rlen - c->rpos, &used, &err);

		c->rpos += used;
		if (r == IMAP_PARSE_ERROR) {
			conn_die(c, err);
			return FALSE;
		}
		if (r == IMAP_PARSE_RESPONSE && !dispatch(c, imap_parser_take(c->parser)))
			return FALSE;
	}
	c->rpos = c->rlen = 0;
	return TRUE;
}

/* Lock held. The earliest total deadline of the commands in flight (IDLE has none), or
 * G_MAXINT64. */
static gint64
inflight_deadline(ImapConn *c)
{
	guint64 lit = imap_parser_literal_bytes(c->parser);
	gint64 min = G_MAXINT64;

	for (GList *l = c->inflight.head; l; l = l->next) {
		ConnCmd *cc = l->data;
		guint64 bytes;
		gint64 d;

		if ((cc->flags & IMAP_CONN_IDLE) || cc->sent_at == 0)
			continue;
		bytes = (lit - cc->lit_base) + (c->rx_total - cc->rx_base) + cc->tx_bytes;
		d = cc->sent_at + c->timeout_us +
		    (gint64)MIN(bytes * G_USEC_PER_SEC / MIN_RATE, (guint64)G_MAXINT64 / 4);
		min = MIN(min, d);
	}
	return min;
}

static GError *
eof_error(ImapConn *c)
{
	if (c->bye_text)
		return g_error_new(IMAP_ERROR, IMAP_ERROR_DISCONNECTED,
				   "server closed the connection: %s", c->bye_text);
	if (imap_parser_in_literal(c->parser))
		return g_error_new(IMAP_ERROR, IMAP_ERROR_DISCONNECTED,
				   "connection lost in the middle of a literal");
	return g_error_new(IMAP_ERROR, IMAP_ERROR_DISCONNECTED, "connection closed by the server");
}

static gpointer
io_thread(gpointer data)
{
	ImapConn *c = data;
	gboolean read_wants_write = FALSE;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* EPIPE instead (see sigpipe_block) */
	g_mutex_lock(&c->lock);
	while (!c->quit && !c->dead) {
		gboolean progress = FALSE, write_blocked = FALSE;
		struct pollfd pfd[2];
		int timeout = -1, r;
		gboolean busy;
		gint64 now, deadline;

		fill_output(c);
		busy = c->out_pos < c->out->len || c->inflight.length > 0;
		if (busy && c->inflight.length == 1) {
			ConnCmd *only = g_queue_peek_head(&c->inflight);

			if ((only->flags & IMAP_CONN_IDLE) && only->idling && !only->done_sent &&
			    c->out_pos == c->out->len)
				busy = FALSE;
		}
		g_mutex_unlock(&c->lock);

		/* write */
		while (c->out_pos < c->out->len) {
			GError *err = NULL;
			gsize n;
			ImapIoStatus st = raw_write(c, c->out->data + c->out_pos,
						    c->out->len - c->out_pos, &n, &err);

			if (st == IMAP_IO_OK) {
				c->out_pos += n;
				progress = TRUE;
				continue;
			}
			if (st == IMAP_IO_WANT_WRITE || st == IMAP_IO_WANT_READ) {
				/* WANT_READ: POLLIN is always polled for */
				write_blocked = st == IMAP_IO_WANT_WRITE;
				break;
			}
			g_mutex_lock(&c->lock);
			conn_die(c, err ? err : g_error_new(IMAP_ERROR, IMAP_ERROR_DISCONNECTED,
							"connection closed by the server"));
			goto out;
		}

		/* read, as long as there is something */
		for (guint rounds = 0; rounds < 16; rounds++) {
			GError *err = NULL;
			gsize n;
			ImapIoStatus st = raw_read(c, c->rbuf, RBUF_SIZE, &n, &err);

			read_wants_write = FALSE;
			if (st == IMAP_IO_OK) {
				gboolean alive;

				c->rpos = 0;
				c->rlen = n;
				progress = TRUE;
				g_mutex_lock(&c->lock);
				alive = feed(c);
				g_mutex_unlock(&c->lock);
				if (!alive) {
					g_mutex_lock(&c->lock);
					goto out;
				}
				continue;
			}
			if (st == IMAP_IO_WANT_WRITE)
				read_wants_write = TRUE;
			if (st == IMAP_IO_WANT_READ || st == IMAP_IO_WANT_WRITE)
				break;
			g_mutex_lock(&c->lock);
			conn_die(c, st == IMAP_IO_EOF ? eof_error(c) : err);
			goto out;
		}

		g_mutex_lock(&c->lock);
		deadline = inflight_deadline(c); /* after the reads: without what completed */
		g_mutex_unlock(&c->lock);
		now = g_get_monotonic_time();
		if (now >= deadline) {
			g_mutex_lock(&c->lock);
			conn_die(c,
				 g_error_new(IMAP_ERROR, IMAP_ERROR_TIMEOUT,
					     "server did not complete the command in time (%u ms "
					     "plus the announced data at %u KiB/s)",
					     (guint)(c->timeout_us / 1000), MIN_RATE / 1024));
			goto out;
		}
		if (progress)
			c->last_activity = now;
		if (progress) {
			g_mutex_lock(&c->lock);
			continue;
		}
		if (busy) {
			gint64 left = MIN(c->last_activity + c->timeout_us, deadline) - now;

			if (left <= 0) {
				g_mutex_lock(&c->lock);
				conn_die(c, g_error_new(IMAP_ERROR, IMAP_ERROR_TIMEOUT,
						    "server did not respond within %u ms",
						    (guint)(c->timeout_us / 1000)));
				goto out;
			}
			timeout = (int)MIN((left + 999) / 1000, 60000);
		}
		pfd[0].fd = c->fd;
		pfd[0].events = POLLIN;
		if (write_blocked || read_wants_write)
			pfd[0].events |= POLLOUT;
		pfd[0].revents = 0;
		pfd[1].fd = c->wake[0];
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		if (c->tls && imap_tls_pending(c->tls))
			timeout = 0;
		r = poll(pfd, 2, timeout);
		if (r > 0 && (pfd[1].revents & POLLIN)) {
			char buf[64];

			while (read(c->wake[0], buf, sizeof(buf)) > 0)
				;
		}
		if (r > 0 && !busy && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			c->last_activity = g_get_monotonic_time();
		g_mutex_lock(&c->lock);
	}
	if (!c->dead)
		conn_die(c, g_error_new(IMAP_ERROR, IMAP_ERROR_DISCONNECTED, "connection closed"));
out:
	g_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- public ------------------------------------------------------------------------- */

ImapConn *
imap_conn_open_sync(const ImapConfig *cfg, ImapStats *stats, GCancellable *cancel,
		    GError **error)
{
	ImapConn *c = g_new0(ImapConn, 1);
	static ImapStats dummy_stats;
	g_autofree char *prefix = NULL;
	SigpipeGuard guard;
	gboolean ok;

	c->cfg = cfg;
	c->stats = stats ? stats : &dummy_stats;
	c->id = g_atomic_int_add(&conn_ids, 1) + 1;
	c->fd = -1;
	c->wake[0] = c->wake[1] = -1;
	c->timeout_us = (gint64)(cfg->timeout_ms ? cfg->timeout_ms : 30000) * 1000;
	c->trace = imap_trace_new(cfg->trace_fd);
	prefix = g_strdup_printf("[conn %u] ", c->id);
	imap_trace_set_prefix(c->trace, prefix);
	c->parser = imap_parser_new(&parser_limits);
	c->rbuf = g_malloc(RBUF_SIZE);
	c->out = g_byte_array_new();
	c->tline = g_string_new(NULL);
	g_mutex_init(&c->lock);
	g_cond_init(&c->cond);
	g_queue_init(&c->pending);
	g_queue_init(&c->inflight);
	c->setup_deadline = g_get_monotonic_time() + c->timeout_us;
	c->setup_cancel_fd = cancel ? g_cancellable_get_fd(cancel) : -1;

	sigpipe_block(&guard);
	ok = !g_cancellable_set_error_if_cancelled(cancel, error) && setup(c, error);
	sigpipe_restore(&guard);
	if (!ok) {
		if (cancel)
			g_cancellable_release_fd(cancel);
		c->setup_cancel_fd = -1;
		imap_conn_free(c);
		return NULL;
	}
	if (cancel)
		g_cancellable_release_fd(cancel);
	c->setup_cancel_fd = -1;
	if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_FAILED, "pipe: %s", g_strerror(errno));
		imap_conn_free(c);
		return NULL;
	}
	g_debug("conn %u: logged in to %s%s%s", c->id, cfg->host, c->tls ? " over " : "",
		c->tls ? imap_tls_version(c->tls) : "");
	c->thread = g_thread_new("imap-io", io_thread, c);
	return c;
}

void
imap_conn_set_event_handler(ImapConn *c, ImapConnEventFn fn, gpointer data)
{
	g_mutex_lock(&c->lock);
	c->event_fn = fn;
	c->event_data = data;
	g_mutex_unlock(&c->lock);
}

static ConnCmd *
submit(ImapConn *c, ImapCmd *cmd, guint flags, ImapConnRespFn fn, gpointer data,
       ImapLiteralSink sink, gpointer sink_data, GError **error)
{
	ConnCmd *cc = g_new0(ConnCmd, 1);

	cc->ref = 1;
	cc->cmd = cmd;
	cc->flags = flags | (sink ? IMAP_CONN_EXCLUSIVE : 0);
	cc->fn = fn;
	cc->data = data;
	cc->sink = sink;
	cc->sink_data = sink_data;
	/* lock held by the caller */
	if (c->dead) {
		g_set_error(error, IMAP_ERROR, c->dead_error ? c->dead_error->code :
			    IMAP_ERROR_DISCONNECTED, "connection is closed%s%s",
			    c->dead_error ? ": " : "", c->dead_error ? c->dead_error->message : "");
		if (c->dead_error && c->dead_error->code != IMAP_ERROR_TIMEOUT)
			(*error)->code = IMAP_ERROR_DISCONNECTED;
		cc_unref(cc);
		return NULL;
	}
	g_queue_push_tail(&c->pending, cc_ref(cc));
	wake(c);
	return cc;
}

static void
abandon(ImapConn *c, ConnCmd *cc)
{
	cc->fn = NULL;
	cc->sink = NULL;
	if (g_queue_remove(&c->pending, cc))
		cc_unref(cc);
}

/* Lock held. Waits for cc->done (or @until_idling), @cancel or @deadline (0: none). */
static gboolean
wait_cmd(ImapConn *c, ConnCmd *cc, gboolean until_idling, gint64 deadline,
	 GCancellable *cancel, GError **error)
{
	while (!cc->done && !(until_idling && cc->idling)) {
		gint64 now = g_get_monotonic_time();

		if (g_cancellable_is_cancelled(cancel)) {
			abandon(c, cc);
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_CANCELLED, "cancelled");
			return FALSE;
		}
		if (deadline && now >= deadline) {
			abandon(c, cc);
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT,
				    "no answer from the server in time");
			return FALSE;
		}
		g_cond_wait_until(&c->cond, &c->lock, now + 100 * G_TIME_SPAN_MILLISECOND);
	}
	return TRUE;
}

static gboolean
run(ImapConn *c, ImapCmd *cmd, guint flags, ImapConnRespFn fn, gpointer data,
    ImapLiteralSink sink, gpointer sink_data, ImapResponse **tagged_out, gint64 deadline,
    GCancellable *cancel, GError **error)
{
	ConnCmd *cc;
	gboolean ok = FALSE;

	g_mutex_lock(&c->lock);
	cc = submit(c, cmd, flags, fn, data, sink, sink_data, error);
	if (!cc) {
		g_mutex_unlock(&c->lock);
		return FALSE;
	}
	if (wait_cmd(c, cc, FALSE, deadline, cancel, error)) {
		if (cc->error) {
			g_propagate_error(error, g_steal_pointer(&cc->error));
		} else {
			ok = TRUE;
		}
		if (tagged_out)
			*tagged_out = g_steal_pointer(&cc->tagged);
	}
	g_mutex_unlock(&c->lock);
	cc_unref(cc);
	return ok;
}

gboolean
imap_conn_run_sync(ImapConn *c, ImapCmd *cmd, guint flags, ImapConnRespFn fn, gpointer data,
		   ImapLiteralSink sink, gpointer sink_data, ImapResponse **tagged_out,
		   GCancellable *cancel, GError **error)
{
	return run(c, cmd, flags, fn, data, sink, sink_data, tagged_out, 0, cancel, error);
}

gboolean
imap_conn_idle_begin_sync(ImapConn *c, ImapConnRespFn fn, gpointer data, GCancellable *cancel,
			  GError **error)
{
	ImapCmd *cmd = imap_cmd_new("IDLE");
	ConnCmd *cc;
	gboolean ok = FALSE;

	if (!imap_cmd_finish(cmd, error)) {
		imap_cmd_free(cmd);
		return FALSE;
	}
	g_mutex_lock(&c->lock);
	if (c->idle_cmd) {
		g_mutex_unlock(&c->lock);
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_FAILED, "already idling");
		imap_cmd_free(cmd);
		return FALSE;
	}
	cc = submit(c, cmd, IMAP_CONN_IDLE | IMAP_CONN_EXCLUSIVE, fn, data, NULL, NULL, error);
	if (!cc) {
		g_mutex_unlock(&c->lock);
		return FALSE;
	}
	if (wait_cmd(c, cc, TRUE, 0, cancel, error)) {
		if (cc->done) {
			if (cc->error)
				g_propagate_error(error, g_steal_pointer(&cc->error));
			else
				g_set_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL,
					    "IDLE ended at once");
		} else {
			c->idle_cmd = cc_ref(cc);
			ok = TRUE;
		}
	}
	g_mutex_unlock(&c->lock);
	cc_unref(cc);
	return ok;
}

gboolean
imap_conn_idle_end_sync(ImapConn *c, GCancellable *cancel, GError **error)
{
	ConnCmd *cc;
	gboolean ok = FALSE;

	g_mutex_lock(&c->lock);
	cc = g_steal_pointer(&c->idle_cmd);
	if (!cc) {
		g_mutex_unlock(&c->lock);
		return TRUE;
	}
	c->idle_done_req = TRUE;
	wake(c);
	if (wait_cmd(c, cc, FALSE, 0, cancel, error)) {
		if (cc->error)
			g_propagate_error(error, g_steal_pointer(&cc->error));
		else
			ok = TRUE;
	}
	g_mutex_unlock(&c->lock);
	cc_unref(cc);
	return ok;
}

void
imap_conn_wait(ImapConn *c, guint timeout_ms, GCancellable *cancel)
{
	gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	g_mutex_lock(&c->lock);
	while (!c->dead && !g_cancellable_is_cancelled(cancel)) {
		gint64 now = g_get_monotonic_time();

		if (now >= end)
			break;
		g_cond_wait_until(&c->cond, &c->lock, MIN(end, now + 100 * G_TIME_SPAN_MILLISECOND));
	}
	g_mutex_unlock(&c->lock);
}

void
imap_conn_free(ImapConn *c)
{
	ConnCmd *cc;

	if (!c)
		return;
	if (c->thread) {
		gboolean alive;

		g_mutex_lock(&c->lock);
		cc = g_steal_pointer(&c->idle_cmd);
		if (cc) {
			c->idle_done_req = TRUE;
			wake(c);
		}
		/* a LOGOUT would wait behind what is in flight (an abandoned command on a
		 * stalled or dribbling server): then just close */
		alive = !c->dead && g_queue_is_empty(&c->inflight);
		c->logging_out = TRUE;
		g_mutex_unlock(&c->lock);
		cc_unref(cc);
		if (alive) {
			ImapCmd *cmd = imap_cmd_new("LOGOUT");

			if (imap_cmd_finish(cmd, NULL))
				run(c, cmd, 0, NULL, NULL, NULL, NULL, NULL,
				    g_get_monotonic_time() + LOGOUT_TIMEOUT_MS * 1000, NULL, NULL);
			else
				imap_cmd_free(cmd);
		}
		g_mutex_lock(&c->lock);
		c->quit = TRUE;
		wake(c);
		g_mutex_unlock(&c->lock);
		g_thread_join(c->thread);
	}
	while ((cc = g_queue_pop_head(&c->pending)))
		cc_unref(cc);
	while ((cc = g_queue_pop_head(&c->inflight)))
		cc_unref(cc);
	imap_tls_free(c->tls);
	if (c->fd >= 0)
		close(c->fd);
	if (c->wake[0] >= 0)
		close(c->wake[0]);
	if (c->wake[1] >= 0)
		close(c->wake[1]);
	imap_parser_free(c->parser);
	g_free(c->rbuf);
	g_byte_array_unref(c->out);
	g_string_free(c->tline, TRUE);
	g_strfreev(c->caps);
	g_clear_error(&c->dead_error);
	g_free(c->bye_text);
	imap_trace_free(c->trace);
	g_mutex_clear(&c->lock);
	g_cond_clear(&c->cond);
	g_free(c);
}

gboolean
imap_conn_has_cap(ImapConn *c, const char *cap)
{
	for (guint i = 0; c->caps && c->caps[i]; i++)
		if (g_ascii_strcasecmp(c->caps[i], cap) == 0)
			return TRUE;
	return FALSE;
}

const char *const *
imap_conn_get_caps(ImapConn *c)
{
	return (const char *const *)c->caps;
}

gboolean
imap_conn_condstore(ImapConn *c)
{
	return c->condstore;
}

gboolean
imap_conn_qresync(ImapConn *c)
{
	return c->qresync;
}

gboolean
imap_conn_utf8(ImapConn *c)
{
	return c->utf8;
}

void
imap_conn_cmd_options(ImapConn *c, ImapCmd *cmd)
{
	imap_cmd_set_options(cmd, imap_conn_has_cap(c, "LITERAL+"),
			     imap_conn_has_cap(c, "LITERAL-"), c->utf8);
}

gboolean
imap_conn_is_alive(ImapConn *c)
{
	gboolean alive;

	g_mutex_lock(&c->lock);
	alive = !c->dead;
	g_mutex_unlock(&c->lock);
	return alive;
}

guint
imap_conn_get_id(ImapConn *c)
{
	return c->id;
}

gboolean
imap_conn_is_tls(ImapConn *c)
{
	return c->tls != NULL;
}

gboolean
imap_conn_is_loopback(ImapConn *c)
{
	return c->loopback;
}

const ImapConfig *
imap_conn_get_config(ImapConn *c)
{
	return c->cfg;
}
