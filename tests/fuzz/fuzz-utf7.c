/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz-utf7.c: libFuzzer target for utf7.c. The input is tried both as modified UTF-7
 * (whatever decodes must encode back to exactly the input) and as UTF-8 (valid UTF-8
 * must encode to printable ASCII and decode back to itself; invalid UTF-8 must fail).
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *in = g_strndup((const char *)data, size); /* stops at a NUL */
	g_autofree char *dec = NULL;
	g_autofree char *enc = NULL;

	dec = imap_utf7_decode(in, NULL);
	if (dec) {
		g_autofree char *again = imap_utf7_encode(dec, NULL);

		if (!g_utf8_validate(dec, -1, NULL))
			g_error("decode gave invalid UTF-8");
		if (!again || strcmp(again, in) != 0)
			g_error("decode/encode mismatch: \"%s\" -> \"%s\"", in,
				again ? again : "(null)");
	}

	enc = imap_utf7_encode(in, NULL);
	if (g_utf8_validate(in, -1, NULL) != (enc != NULL))
		g_error("encode accepted invalid UTF-8 or refused valid UTF-8");
	if (enc) {
		g_autofree char *back = imap_utf7_decode(enc, NULL);

		for (const char *p = enc; *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				g_error("encode produced a non-printable byte");
		if (!back || strcmp(back, in) != 0)
			g_error("encode/decode mismatch");
	}
	return 0;
}
