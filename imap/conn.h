/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conn.h: internal to imap/. One IMAP connection (conn.c): set up synchronously (TCP,
 * TLS or STARTTLS, greeting, capabilities, login, ENABLE), then driven by its own I/O
 * thread, which owns the socket, the TLS session and the parser. Worker threads submit
 * built commands and block until the tagged response; untagged responses go to the
 * command that asked for them or, if none claims them, to the connection's event handler.
 */
#pragma once

#include "imap.h"
#include "cmd.h"
#include "parser.h"

G_BEGIN_DECLS

typedef struct _ImapConn ImapConn;

/* Called on the I/O thread, with the connection's lock held, for every untagged response
 * while the command is in flight (commands in flight are asked oldest first). Return TRUE
 * when the response belongs to this command. Must not call back into the connection. */
typedef gboolean (*ImapConnRespFn)(ImapConn *conn, const ImapResponse *resp, gpointer data);

/* Unsolicited untagged responses (EXISTS, EXPUNGE, VANISHED, FETCH FLAGS, BYE, ...) and,
 * with resp == NULL, the death of the connection. I/O thread, lock held. */
typedef void (*ImapConnEventFn)(ImapConn *conn, const ImapResponse *resp, gpointer data);

/* During setup only (auth.c): called for each "+" continuation of the running command.
 * Append the reply line WITHOUT CRLF to @reply; it is sent verbatim (and traced as
 * "<redacted>" when @secret is set). Return FALSE to fail the command with *error. */
typedef gboolean (*ImapConnContFn)(ImapConn *conn, const ImapResponse *cont, GString *reply,
				   gboolean *secret, gpointer data, GError **error);

typedef enum {
	IMAP_CONN_EXCLUSIVE = 1 << 0, /* sent alone: nothing else in flight with it */
	IMAP_CONN_IDLE = 1 << 1,      /* the IDLE command (see imap_conn_idle_*) */
	IMAP_CONN_SERIAL = 1 << 2,    /* never in flight with another command of the same verb
				       * (their untagged data could not be told apart) */
} ImapConnFlags;

/* Opens and logs in; blocks up to cfg->timeout_ms per step. @cfg and @stats (may be
 * NULL) must outlive the connection. The event handler may be set now or later. */
ImapConn *imap_conn_open_sync(const ImapConfig *cfg, ImapStats *stats, GCancellable *cancel,
			      GError **error);
/* LOGOUT (briefly, when alive), stops the I/O thread, closes. NULL ok. Blocks. */
void imap_conn_free(ImapConn *conn);
void imap_conn_set_event_handler(ImapConn *conn, ImapConnEventFn fn, gpointer data);

/* Capabilities after login (immutable then, no lock). Case-insensitive. */
gboolean imap_conn_has_cap(ImapConn *conn, const char *cap);
const char *const *imap_conn_get_caps(ImapConn *conn);
/* ENABLE results: what the server confirmed. */
gboolean imap_conn_condstore(ImapConn *conn);
gboolean imap_conn_qresync(ImapConn *conn);
gboolean imap_conn_utf8(ImapConn *conn);
/* Sets the builder options (LITERAL+/-, UTF-8) this connection allows. */
void imap_conn_cmd_options(ImapConn *conn, ImapCmd *cmd);
gboolean imap_conn_is_alive(ImapConn *conn);
guint imap_conn_get_id(ImapConn *conn);

/* Submits @cmd (finished; ownership taken) and waits for its tagged response. @fn gets
 * the untagged responses (may be NULL). @sink (with EXCLUSIVE) receives big literals.
 * TRUE on a tagged OK; on NO/BAD an IMAP_ERROR from the response code and the server's
 * text. @tagged_out (may be NULL) receives the tagged response either way when there was
 * one. Errors also: DISCONNECTED, TIMEOUT (stalled server: the connection is closed),
 * CANCELLED (the command is abandoned: its responses are consumed and dropped). */
gboolean imap_conn_run_sync(ImapConn *conn, ImapCmd *cmd, guint flags, ImapConnRespFn fn,
			    gpointer data, ImapLiteralSink sink, gpointer sink_data,
			    ImapResponse **tagged_out, GCancellable *cancel, GError **error);

/* IDLE: imap_conn_idle_begin_sync() submits IDLE and returns once the server's "+" came
 * (untagged responses then go to @fn of the IDLE command). imap_conn_idle_end_sync()
 * sends DONE and waits for the tagged OK. */
gboolean imap_conn_idle_begin_sync(ImapConn *conn, ImapConnRespFn fn, gpointer data,
				   GCancellable *cancel, GError **error);
gboolean imap_conn_idle_end_sync(ImapConn *conn, GCancellable *cancel, GError **error);
/* Blocks until the connection dies, @cancel fires or @timeout_ms passes. */
void imap_conn_wait(ImapConn *conn, guint timeout_ms, GCancellable *cancel);

/* Setup phase only (auth.c): runs one command synchronously on the caller's thread. */
gboolean imap_conn_setup_command(ImapConn *conn, ImapCmd *cmd, ImapConnContFn cont,
				 gpointer cont_data, ImapResponse **tagged_out, GError **error);
gboolean imap_conn_is_tls(ImapConn *conn);
/* TRUE when the peer address is a loopback address (127/8, ::1). */
gboolean imap_conn_is_loopback(ImapConn *conn);
const ImapConfig *imap_conn_get_config(ImapConn *conn);

/* Fills @error from a tagged NO/BAD (or untagged BYE) response. */
void imap_conn_set_resp_error(const ImapResponse *resp, GError **error);

G_END_DECLS
