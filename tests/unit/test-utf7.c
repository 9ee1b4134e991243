/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-utf7.c: modified UTF-7 (utf7.c): RFC 3501 examples, round trips of real-world
 * names, and every malformed form that must be refused in either direction.
 */
#include "config.h"

#include "imap.h"

typedef struct {
	const char *utf8;
	const char *mutf7;
} Pair;

static const Pair pairs[] = {
	{"", ""},
	{"INBOX", "INBOX"},
	{"&", "&-"},
	{"a&b&&", "a&-b&-&-"},
	{"~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	 "~peter/mail/&U,BTFw-/&ZeVnLIqe-"}, /* RFC 3501 §5.1.3 */
	{"Entw\xc3\xbcrfe", "Entw&APw-rfe"}, /* Entwürfe */
	{"Gel\xc3\xb6schte Elemente", "Gel&APY-schte Elemente"},
	{"Gesendete Objekte", "Gesendete Objekte"},
	{"\xc3\xa4\xc3\xb6\xc3\xbc\xc3\x9f", "&AOQA9gD8AN8-"},		       /* äöüß */
	{"\xe9\x80\x81\xe4\xbf\xa1\xe6\xb8\x88\xe3\x81\xbf", "&kAFP4W4IMH8-"}, /* 送信済み */
	{"\xf0\x9f\x93\xa7 Mail", "&2D3c5w- Mail"},	       /* U+1F4E7 surrogate pair */
	{"\xf0\x9f\x98\x80\xf0\x9f\x98\x81", "&2D3eANg93gE-"}, /* two emoji, one shift */
	{"a-b", "a-b"},
	{"\xc3\xa9-", "&AOk--"},       /* '-' right after a shift */
	{"\xc3\xa9&", "&AOk-&-"},      /* '&' right after a shift */
	{"tab\there", "tab&AAk-here"}, /* controls are shifted */
	{"\x7f", "&AH8-"},
	{"\xef\xbf\xbd", "&,,0-"},	  /* U+FFFD */
	{"\xf4\x8f\xbf\xbf", "&2,,f,w-"}, /* U+10FFFF */
};

static void
test_pairs(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(pairs); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *enc = imap_utf7_encode(pairs[i].utf8, &error);
		g_autofree char *dec = NULL;

		g_assert_no_error(error);
		g_assert_cmpstr(enc, ==, pairs[i].mutf7);
		dec = imap_utf7_decode(pairs[i].mutf7, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(dec, ==, pairs[i].utf8);
	}
}

static void
test_round_trip_all_bmp(void)
{
	/* Every scalar value of the BMP and a sample above it, one at a time and in runs
	 * of 1..4 (to hit every bit alignment of the base64 tail). */
	for (gunichar c = 1; c < 0x110000; c += (c < 0x10000 ? 1 : 97)) {
		char buf[4 * 6 + 8];
		int n = 0;

		if (c >= 0xd800 && c <= 0xdfff)
			continue;
		for (int k = 1; k <= 4; k++) {
			g_autoptr(GError) error = NULL;
			g_autofree char *enc = NULL;
			g_autofree char *dec = NULL;

			n += g_unichar_to_utf8(c, buf + n);
			buf[n] = '\0';
			enc = imap_utf7_encode(buf, &error);
			g_assert_no_error(error);
			for (const char *p = enc; *p; p++)
				g_assert_true(*p >= 0x20 && *p <= 0x7e);
			dec = imap_utf7_decode(enc, &error);
			g_assert_no_error(error);
			g_assert_cmpstr(dec, ==, buf);
		}
	}
}

static void
test_encode_invalid(void)
{
	static const char *const bad[] = {
		"\xff",
		"abc\x80",
		"\xc3",
		"\xc0\xaf",	    /* stray, truncated, overlong */
		"\xed\xa0\x80",	    /* UTF-8 encoded surrogate */
		"\xf4\x90\x80\x80", /* > U+10FFFF */
		"ok\xe6\x97",	    /* truncated at the end */
	};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *enc = imap_utf7_encode(bad[i], &error);

		g_assert_null(enc);
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_INVALID);
	}
}

static void
test_decode_invalid(void)
{
	static const char *const bad[] = {
		"&",		       /* unterminated */
		"&AOQ",		       /* unterminated */
		"abc&AOQA9g",	       /* unterminated */
		"&AOQ/-",	       /* '/' is not modified base64 */
		"&AO=Q-",	       /* padding character */
		"&AO Q-",     "&AOR-", /* non-zero leftover bits (AOQ is U+00E4, AOR leaves 01) */
		"&AOQA-",	       /* an extra character: 6+ leftover bits */
		"&AGE-",	       /* shifted printable ASCII 'a' */
		"&ACY-",	       /* shifted '&' */
		"&AH4-",	       /* shifted '~' */
		"&ACA-",	       /* shifted space */
		"&AOQ-&APY-",	       /* two adjacent shifts */
		"&AGE-&AGE-", "&2D0-", /* lone high surrogate */
		"&2D0AOQ-",	       /* high surrogate followed by a non-surrogate */
		"&3gA-",	       /* lone low surrogate */
		"&2D3YPQ-",	       /* two high surrogates */
		"&AAA-",	       /* encoded NUL */
		"&AA-",		       /* fewer than 16 bits: empty */
		"a\x80",	       /* 8-bit byte */
		"\xc3\xa4",	       /* raw UTF-8 is not modified UTF-7 */
		"tab\there",	       /* raw control */
		"a\r\nb",     "\x7f",
	};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *dec = imap_utf7_decode(bad[i], &error);

		if (dec)
			g_error("decoded invalid input \"%s\" to \"%s\"", bad[i], dec);
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL);
	}
}

static void
test_decode_valid_edge(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *a = imap_utf7_decode("&-&-", &error);
	g_autofree char *b = NULL;
	g_autofree char *c = NULL;

	g_assert_no_error(error);
	g_assert_cmpstr(a, ==, "&&");
	/* a shift, '&' (not a shift), then another shift: not adjacent shifts */
	b = imap_utf7_decode("&AOQ-&-&APY-", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(b, ==, "\xc3\xa4&\xc3\xb6");
	c = imap_utf7_decode("&AOQ-x&APY-", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(c, ==, "\xc3\xa4x\xc3\xb6");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/utf7/pairs", test_pairs);
	g_test_add_func("/utf7/round-trip-all", test_round_trip_all_bmp);
	g_test_add_func("/utf7/encode-invalid", test_encode_invalid);
	g_test_add_func("/utf7/decode-invalid", test_decode_invalid);
	g_test_add_func("/utf7/decode-valid-edge", test_decode_valid_edge);
	return g_test_run();
}
