/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-mime.c: unit tests of fs/store/mime.c: RFC 2047 decoding of subjects (Q and B
 * encodings, charsets, folding, invalid bytes) and formatting of envelope address lists.
 */
#include "config.h"

#include "store.h"

static void
check_decode(const char *raw, const char *expect)
{
	g_autofree char *d = store_mime_decode_text(raw);

	g_assert_cmpstr(d, ==, expect);
}

static void
test_decode(void)
{
	check_decode(NULL, NULL);
	check_decode("plain", "plain");
	check_decode("=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=", "Gr\xc3\xbc\xc3\x9f"
						    "e");
	check_decode("=?ISO-8859-1?Q?caf=E9?= au lait", "caf\xc3\xa9 au lait");
	check_decode("=?utf-8?B?w6TDtsO8?=", "\xc3\xa4\xc3\xb6\xc3\xbc");
	check_decode("=?UTF-8?Q?a?=\r\n =?UTF-8?Q?b?=", "ab");
	check_decode("folded\r\n line", "folded line");
}

static void
test_invalid(void)
{
	g_autofree char *d = store_mime_decode_text("bad \xff\xfe bytes");

	g_assert_true(g_utf8_validate(d, -1, NULL));
}

static ImapAddress *
addr(const char *name, const char *mbox, const char *host)
{
	ImapAddress *a = g_new0(ImapAddress, 1);

	a->name = g_strdup(name);
	a->mailbox = g_strdup(mbox);
	a->host = g_strdup(host);
	return a;
}

static void
addr_free(ImapAddress *a)
{
	g_free(a->name);
	g_free(a->mailbox);
	g_free(a->host);
	g_free(a);
}

static void
test_addresses(void)
{
	g_autoptr(GPtrArray) l = g_ptr_array_new_with_free_func((GDestroyNotify)addr_free);
	g_autofree char *s = NULL;

	g_assert_null(store_mime_format_addresses(l));
	g_ptr_array_add(l, addr("=?UTF-8?Q?J=C3=B6rg?=", "joerg", "example.org"));
	g_ptr_array_add(l, addr(NULL, "bob", "example.com"));
	s = store_mime_format_addresses(l);
	g_assert_cmpstr(s, ==, "J\xc3\xb6rg <joerg@example.org>, bob@example.com");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mime/decode", test_decode);
	g_test_add_func("/mime/invalid", test_invalid);
	g_test_add_func("/mime/addresses", test_addresses);
	return g_test_run();
}
