/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-error.c: the IMAP_ERROR domain and the mapping of RFC 5530 / RFC 3501 response
 * codes to ImapErrorCode (imap/error.c), including codes that are not errors.
 */
#include "config.h"

#include "imap.h"

static void
test_quark(void)
{
	g_assert_cmpstr(g_quark_to_string(IMAP_ERROR), ==, "imap-error-quark");
	g_assert_true(imap_error_quark() == IMAP_ERROR);
}

static void
test_codes(void)
{
	static const struct {
		const char *code;
		ImapErrorCode err;
	} cases[] = {
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
		{"CLIENTBUG", IMAP_ERROR_INVALID}, /* not an error: the fallback */
		{"CANNOT", IMAP_ERROR_CANNOT},
		{"LIMIT", IMAP_ERROR_LIMIT_SERVER},
		{"OVERQUOTA", IMAP_ERROR_OVERQUOTA},
		{"ALREADYEXISTS", IMAP_ERROR_ALREADYEXISTS},
		{"NONEXISTENT", IMAP_ERROR_NONEXISTENT},
		/* others */
		{"TRYCREATE", IMAP_ERROR_NONEXISTENT},
		{"HASCHILDREN", IMAP_ERROR_CANNOT},
		{"USEATTR", IMAP_ERROR_CANNOT},
		{"TOOBIG", IMAP_ERROR_LIMIT_SERVER},
		{"UNKNOWN-CTE", IMAP_ERROR_CANNOT},
		{"THROTTLED", IMAP_ERROR_UNAVAILABLE},
		{"nonexistent", IMAP_ERROR_NONEXISTENT},
		/* not errors, or unknown: the fallback */
		{"ALERT", IMAP_ERROR_INVALID},
		{"PARSE", IMAP_ERROR_INVALID},
		{"READ-ONLY", IMAP_ERROR_INVALID},
		{"READ-WRITE", IMAP_ERROR_INVALID},
		{"UIDNEXT", IMAP_ERROR_INVALID},
		{"UIDVALIDITY", IMAP_ERROR_INVALID},
		{"PERMANENTFLAGS", IMAP_ERROR_INVALID},
		{"CAPABILITY", IMAP_ERROR_INVALID},
		{"BADCHARSET", IMAP_ERROR_INVALID},
		{"X-SOMETHING", IMAP_ERROR_INVALID},
		{"", IMAP_ERROR_INVALID},
		{"NONEXISTENTX", IMAP_ERROR_INVALID},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
		g_assert_cmpint(imap_error_from_code(cases[i].code, IMAP_ERROR_INVALID), ==,
				cases[i].err);
	g_assert_cmpint(imap_error_from_code(NULL, IMAP_ERROR_NO), ==, IMAP_ERROR_NO);
	g_assert_cmpint(imap_error_from_code("ALERT", IMAP_ERROR_BAD), ==, IMAP_ERROR_BAD);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/error/quark", test_quark);
	g_test_add_func("/error/codes", test_codes);
	return g_test_run();
}
