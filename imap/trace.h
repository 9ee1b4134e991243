/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * trace.h: internal to imap/. The protocol trace (trace.c): one line per client command
 * ("C: ") and per server line ("S: "), written to an fd given by the user (-o trace).
 * Credentials never reach it: commands are rendered through imap_cmd_to_trace() (secret
 * arguments become "<redacted>"), and on top of that everything after LOGIN, after the
 * mechanism of AUTHENTICATE, and every client SASL response is redacted unconditionally.
 * Literal bodies show as "{N bytes}".
 *
 * Threads: every function is thread-safe (one mutex per ImapTrace); each line is written
 * whole with a single write(2), so traces of several connections may share one fd.
 * Writes block (the fd is the user's choice) and errors are ignored: tracing is best
 * effort and never fails a command.
 */
#pragma once

#include "imap.h"
#include "cmd.h"

G_BEGIN_DECLS

typedef struct _ImapTrace ImapTrace;

/* @fd: where to write, or -1 for a trace that writes nothing. The fd is borrowed (not
 * closed by imap_trace_free). */
ImapTrace *imap_trace_new(int fd);
void imap_trace_free(ImapTrace *trace); /* NULL ok */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImapTrace, imap_trace_free)

/* TRUE when lines are written (fd >= 0). Lets callers skip work; NULL is off. */
gboolean imap_trace_enabled(const ImapTrace *trace);

/* Text put in front of every line, e.g. "[conn 2] ", to tell connections apart. */
void imap_trace_set_prefix(ImapTrace *trace, const char *prefix);

/* All functions below accept a NULL or disabled trace and then do nothing. */

/* "C: <tag> <redacted rendering of cmd>". @cmd must be finished. @tag may be NULL. */
void imap_trace_client(ImapTrace *trace, const char *tag, const ImapCmd *cmd);
/* A client line that is not a tagged command and holds no secret, e.g. "DONE".
 * Library constants only. */
void imap_trace_client_line(ImapTrace *trace, const char *line);
/* A client response to a "+" during AUTHENTICATE: always written as "C: <redacted>". */
void imap_trace_client_sasl(ImapTrace *trace);
/* One server line as received (a trailing CRLF is dropped; control bytes are escaped;
 * very long lines are cut). */
void imap_trace_server_line(ImapTrace *trace, const char *line, gsize len);
/* The body of a server literal: "S: {N bytes}". */
void imap_trace_server_literal(ImapTrace *trace, gsize n);

/* The redaction rule, exposed for tests and for callers that log commands elsewhere:
 * given a verb and the rendering of the arguments after it (as in imap_cmd_to_trace()
 * minus the verb), returns what may be shown. Caller frees. */
char *imap_trace_redact_auth(const char *verb, const char *args);

G_END_DECLS
