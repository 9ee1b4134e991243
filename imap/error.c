/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * error.c: the IMAP_ERROR domain and the mapping of RFC 5530 (and RFC 3501/9051)
 * response codes to ImapErrorCode. Codes that do not describe a failure (ALERT,
 * UIDNEXT, ...) and unknown codes give the caller's fallback; nothing here guesses.
 */
#define G_LOG_DOMAIN "imapfs-imap"

#include "config.h"

#include "imap.h"

GQuark
imap_error_quark(void)
{
	return g_quark_from_static_string("imap-error-quark");
}

static const struct {
	const char *code;
	ImapErrorCode err;
} code_map[] = {
	/* RFC 5530 */
	{"UNAVAILABLE", IMAP_ERROR_UNAVAILABLE},
	{"AUTHENTICATIONFAILED", IMAP_ERROR_AUTH},
	{"AUTHORIZATIONFAILED", IMAP_ERROR_AUTH},
	{"EXPIRED", IMAP_ERROR_AUTH},
	{"PRIVACYREQUIRED", IMAP_ERROR_TLS_REQUIRED},
	{"CONTACTADMIN", IMAP_ERROR_NOPERM},
	{"NOPERM", IMAP_ERROR_NOPERM},
	{"INUSE", IMAP_ERROR_INUSE},
	{"EXPUNGEISSUED", IMAP_ERROR_EXPUNGEISSUED},
	{"CORRUPTION", IMAP_ERROR_CORRUPTION},
	{"SERVERBUG", IMAP_ERROR_UNAVAILABLE},
	/* CLIENTBUG: the command may well have succeeded; not an error by itself. */
	{"CANNOT", IMAP_ERROR_CANNOT},
	{"LIMIT", IMAP_ERROR_LIMIT_SERVER},
	{"OVERQUOTA", IMAP_ERROR_OVERQUOTA},
	{"ALREADYEXISTS", IMAP_ERROR_ALREADYEXISTS},
	{"NONEXISTENT", IMAP_ERROR_NONEXISTENT},
	/* RFC 3501: the target mailbox of APPEND/COPY does not exist. */
	{"TRYCREATE", IMAP_ERROR_NONEXISTENT},
	/* RFC 9051: DELETE of a mailbox with children. */
	{"HASCHILDREN", IMAP_ERROR_CANNOT},
	/* RFC 6154: CREATE with a SPECIAL-USE attribute the server cannot do. */
	{"USEATTR", IMAP_ERROR_CANNOT},
	/* RFC 4469 (CATENATE) and RFC 7889 (APPENDLIMIT). */
	{"TOOBIG", IMAP_ERROR_LIMIT_SERVER},
	/* RFC 3516: the server cannot decode the content transfer encoding. */
	{"UNKNOWN-CTE", IMAP_ERROR_CANNOT},
	/* Seen from Gmail and others when rate limiting. */
	{"THROTTLED", IMAP_ERROR_UNAVAILABLE},
};

ImapErrorCode
imap_error_from_code(const char *resp_code, ImapErrorCode fallback)
{
	if (!resp_code)
		return fallback;
	for (gsize i = 0; i < G_N_ELEMENTS(code_map); i++) {
		if (g_ascii_strcasecmp(resp_code, code_map[i].code) == 0)
			return code_map[i].err;
	}
	return fallback;
}
