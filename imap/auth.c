/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * auth.c: login on a new connection. SASL PLAIN (with SASL-IR when offered), the LOGIN
 * command as a fallback (unless LOGINDISABLED), OAUTHBEARER and XOAUTH2 when an OAuth
 * token or a token source is configured (the source is asked at every login, and once more
 * when the server refuses the token, so an expired token is replaced). It never sends a credential without TLS unless tls == NONE and the
 * peer is a loopback address or allow_insecure_auth is set. Secrets are marked secret in
 * the command builder (the trace shows "<redacted>") and wiped after use.
 */
#define G_LOG_DOMAIN "imapfs-imap"

#include "config.h"

#include "auth.h"

#include <stdio.h>
#include <string.h>

typedef enum { MECH_PLAIN, MECH_XOAUTH2, MECH_OAUTHBEARER } Mech;

typedef struct {
	Mech mech;
	const char *initial; /* base64, sent on the first "+" when no SASL-IR */
	gboolean sent_initial;
} SaslState;

static void
wipe_free(char *s)
{
	if (s) {
		memset(s, 0, strlen(s));
		g_free(s);
	}
}

static char *
b64(const GString *raw)
{
	return g_base64_encode((const guchar *)raw->str, raw->len);
}

/* RFC 5801 saslname: ',' -> "=2C", '=' -> "=3D". */
static void
append_saslname(GString *s, const char *user)
{
	for (const char *p = user; *p; p++) {
		if (*p == ',')
			g_string_append(s, "=2C");
		else if (*p == '=')
			g_string_append(s, "=3D");
		else
			g_string_append_c(s, *p);
	}
}

static char *
initial_response(const ImapConfig *cfg, Mech mech, const char *token)
{
	g_autoptr(GString) raw = g_string_new(NULL);
	char *out;

	switch (mech) {
	case MECH_PLAIN:
		g_string_append_c(raw, '\0');
		g_string_append(raw, cfg->user);
		g_string_append_c(raw, '\0');
		g_string_append(raw, cfg->password);
		break;
	case MECH_XOAUTH2:
		g_string_append_printf(raw, "user=%s\001auth=Bearer %s\001\001", cfg->user,
				       token);
		break;
	case MECH_OAUTHBEARER:
		g_string_append(raw, "n,a=");
		append_saslname(raw, cfg->user);
		g_string_append_printf(raw, ",\001host=%s\001port=%u\001auth=Bearer %s\001\001",
				       cfg->host, cfg->port, token);
		break;
	}
	out = b64(raw);
	memset(raw->str, 0, raw->len);
	return out;
}

static gboolean
sasl_cont(ImapConn *conn, const ImapResponse *cont, GString *reply, gboolean *secret,
	  gpointer data, GError **error)
{
	SaslState *st = data;

	if (!st->sent_initial && st->initial) {
		/* "+ " with an empty challenge: send the initial response now */
		st->sent_initial = TRUE;
		g_string_append(reply, st->initial);
		*secret = TRUE;
		return TRUE;
	}
	/* A challenge after the response: the OAuth mechanisms send an error JSON here and
	 * expect an empty response (XOAUTH2) or %x01 (OAUTHBEARER); PLAIN has no second step,
	 * so the exchange is cancelled with "*". */
	*secret = FALSE;
	if (st->mech == MECH_XOAUTH2) {
		g_debug("XOAUTH2 error challenge received");
	} else if (st->mech == MECH_OAUTHBEARER) {
		g_string_append(reply, "AQ==");
	} else {
		g_string_append(reply, "*");
	}
	return TRUE;
}

static gboolean
run_sasl(ImapConn *conn, const char *mech_name, Mech mech, const char *token,
	 ImapResponse **tagged, GError **error)
{
	const ImapConfig *cfg = imap_conn_get_config(conn);
	g_autoptr(ImapCmd) cmd = imap_cmd_new("AUTHENTICATE");
	char *ir = initial_response(cfg, mech, token);
	SaslState st = { mech, NULL, FALSE };
	gboolean ok;

	imap_cmd_atom(cmd, mech_name);
	if (imap_conn_has_cap(conn, "SASL-IR")) {
		imap_cmd_set_secret(cmd, TRUE);
		imap_cmd_atom(cmd, ir);
		imap_cmd_set_secret(cmd, FALSE);
	} else {
		st.initial = ir;
	}
	if (!imap_cmd_finish(cmd, error)) {
		wipe_free(ir);
		return FALSE;
	}
	ok = imap_conn_setup_command(conn, cmd, sasl_cont, &st, tagged, error);
	wipe_free(ir);
	return ok;
}

static gboolean
run_login(ImapConn *conn, ImapResponse **tagged, GError **error)
{
	const ImapConfig *cfg = imap_conn_get_config(conn);
	g_autoptr(ImapCmd) cmd = imap_cmd_new("LOGIN");

	imap_conn_cmd_options(conn, cmd);
	imap_cmd_astring(cmd, cfg->user);
	imap_cmd_set_secret(cmd, TRUE);
	imap_cmd_string(cmd, cfg->password, -1);
	imap_cmd_set_secret(cmd, FALSE);
	if (!imap_cmd_finish(cmd, error))
		return FALSE;
	return imap_conn_setup_command(conn, cmd, NULL, NULL, tagged, error);
}

/* The host as written names the local machine: "localhost", 127.0.0.0/8 or ::1. Together
 * with a loopback peer address this is what "loopback" means for cleartext credentials. */
static gboolean
is_loopback_name(const char *host)
{
	guint a, b, c, d;
	char end;

	if (g_ascii_strcasecmp(host, "localhost") == 0 ||
	    g_ascii_strcasecmp(host, "localhost.") == 0 || strcmp(host, "::1") == 0 ||
	    strcmp(host, "[::1]") == 0)
		return TRUE;
	return sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &end) == 4 && a == 127 &&
	       b < 256 && c < 256 && d < 256;
}

/* A token: a fresh one from the source, else the configured one. */
static char *
get_token(const ImapConfig *cfg, GError **error)
{
	g_autoptr(GError) err = NULL;
	char *token;

	if (cfg->oauth_token_fn == NULL)
		return g_strdup(cfg->oauth_token);
	token = cfg->oauth_token_fn(cfg->oauth_token_data, &err);
	if (token == NULL || *token == '\0') {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH, "no OAuth2 token: %s",
			    err ? err->message : "the token source gave an empty token");
		wipe_free(token);
		return NULL;
	}
	return token;
}

/* Did the server refuse the credentials (as opposed to the connection failing)? */
static gboolean
is_refusal(const GError *err)
{
	return err->domain == IMAP_ERROR &&
	       (err->code == IMAP_ERROR_NO || err->code == IMAP_ERROR_BAD ||
		err->code == IMAP_ERROR_FAILED || err->code == IMAP_ERROR_AUTH);
}

/* OAUTHBEARER (RFC 7628) or XOAUTH2, whichever the server offers. With a token source, a
 * refused token (expired, revoked) is asked for again once: the source may refresh it.
 * FALSE (and @error) when no exchange could start; else the exchange's outcome in @ok,
 * @err and @tagged. */
static gboolean
run_oauth(ImapConn *conn, const char **how, ImapResponse **tagged, gboolean *ok,
	  GError **err, GError **error)
{
	const ImapConfig *cfg = imap_conn_get_config(conn);
	Mech mech;
	char *token;

	if (imap_conn_has_cap(conn, "AUTH=OAUTHBEARER")) {
		*how = "OAUTHBEARER";
		mech = MECH_OAUTHBEARER;
	} else if (imap_conn_has_cap(conn, "AUTH=XOAUTH2")) {
		*how = "XOAUTH2";
		mech = MECH_XOAUTH2;
	} else {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
			    "the server offers neither OAUTHBEARER nor XOAUTH2");
		return FALSE;
	}
	token = get_token(cfg, error);
	if (token == NULL)
		return FALSE;
	*ok = run_sasl(conn, *how, mech, token, tagged, err);
	if (!*ok && cfg->oauth_token_fn != NULL && is_refusal(*err) &&
	    imap_conn_is_alive(conn)) {
		char *again;

		g_debug("conn %u: the server refused the OAuth2 token; asking for a new one",
			imap_conn_get_id(conn));
		again = get_token(cfg, error);
		if (again == NULL) {
			wipe_free(token);
			return FALSE;
		}
		if (strcmp(again, token) != 0) {
			g_clear_error(err);
			g_clear_pointer(tagged, imap_response_free);
			*ok = run_sasl(conn, *how, mech, again, tagged, err);
		}
		wipe_free(again);
	}
	wipe_free(token);
	if (!*ok && is_refusal(*err))
		g_prefix_error(err, "the OAuth2 token was refused: ");
	return TRUE;
}

gboolean
imap_auth_login(ImapConn *conn, GError **error)
{
	const ImapConfig *cfg = imap_conn_get_config(conn);
	g_autoptr(GError) err = NULL;
	g_autoptr(ImapResponse) tagged = NULL;
	gboolean ok;
	const char *how;

	if (!imap_conn_is_tls(conn) &&
	    !(cfg->tls == IMAP_TLS_NONE &&
	      ((imap_conn_is_loopback(conn) && is_loopback_name(cfg->host)) ||
	       cfg->allow_insecure_auth))) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INSECURE,
			    "refusing to send credentials over an unencrypted connection to %s "
			    "(use TLS, or allow_insecure_auth)", cfg->host);
		return FALSE;
	}
	if (!cfg->user || !*cfg->user) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH, "no user name given");
		return FALSE;
	}
	if (cfg->oauth_token || cfg->oauth_token_fn) {
		if (!run_oauth(conn, &how, &tagged, &ok, &err, error))
			return FALSE;
	} else if (cfg->password) {
		if (imap_conn_has_cap(conn, "AUTH=PLAIN")) {
			how = "AUTHENTICATE PLAIN";
			ok = run_sasl(conn, "PLAIN", MECH_PLAIN, NULL, &tagged, &err);
		} else if (!imap_conn_has_cap(conn, "LOGINDISABLED")) {
			how = "LOGIN";
			ok = run_login(conn, &tagged, &err);
		} else {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
				    "no usable login mechanism (LOGINDISABLED and no AUTH=PLAIN)");
			return FALSE;
		}
	} else {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH, "no password or token given");
		return FALSE;
	}
	if (!ok) {
		if (err->domain == IMAP_ERROR &&
		    (err->code == IMAP_ERROR_NO || err->code == IMAP_ERROR_BAD ||
		     err->code == IMAP_ERROR_FAILED)) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH, "login failed: %s",
				    err->message);
			return FALSE;
		}
		if (err->domain == IMAP_ERROR && err->code != IMAP_ERROR_DISCONNECTED &&
		    err->code != IMAP_ERROR_TIMEOUT && err->code != IMAP_ERROR_CANCELLED &&
		    err->code != IMAP_ERROR_PROTOCOL && err->code != IMAP_ERROR_LIMIT) {
			/* e.g. [AUTHENTICATIONFAILED] mapped to another code */
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH, "login failed: %s",
				    err->message);
			return FALSE;
		}
		g_propagate_error(error, g_steal_pointer(&err));
		return FALSE;
	}
	g_debug("logged in as %s with %s", cfg->user, how);
	/* capabilities may change after login; a [CAPABILITY] code already updated them,
	 * but servers that send none need asking */
	if (tagged && tagged->code && g_ascii_strcasecmp(tagged->code, "CAPABILITY") == 0)
		return TRUE;
	{
		g_autoptr(ImapCmd) cmd = imap_cmd_new("CAPABILITY");

		if (!imap_cmd_finish(cmd, error))
			return FALSE;
		return imap_conn_setup_command(conn, cmd, NULL, NULL, NULL, error);
	}
}
