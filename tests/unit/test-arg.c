/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-arg.c: the checked accessors of the argument tree (imap/arg.c): every accessor on
 * every argument type, out-of-range indexes and numbers that do not fit.
 */
#include "config.h"

#include <string.h>

#include "parser.h"

static ImapResponse *
parse(const char *text, gsize len)
{
	g_autoptr(ImapParser) p = imap_parser_new(NULL);
	gsize consumed = 0;

	g_assert_cmpint(imap_parser_feed(p, (const guint8 *)text, len, &consumed, NULL), ==,
			IMAP_PARSE_RESPONSE);
	return imap_parser_take(p);
}

static void
test_accessors(void)
{
	static const char in[] = "* X atom \"quo ted\" {3}\r\nl\0t NIL (a (b)) 0 4294967295 "
				 "4294967296 18446744073709551615 18446744073709551616 -1 +1 "
				 "12a \"12\" nil\r\n";
	g_autoptr(ImapResponse) r = parse(in, sizeof(in) - 1);
	const ImapArg *atom, *quoted, *lit, *nil, *list, *n0, *n32, *n33, *n64, *n65, *neg, *plus,
		*mixed, *qnum, *nil2;
	gboolean is_nil = TRUE;
	guint32 v32 = 7;
	guint64 v64 = 7;

	g_assert_cmpuint(r->args->len, ==, 16);
	atom = g_ptr_array_index(r->args, 1);
	quoted = g_ptr_array_index(r->args, 2);
	lit = g_ptr_array_index(r->args, 3);
	nil = g_ptr_array_index(r->args, 4);
	list = g_ptr_array_index(r->args, 5);
	n0 = g_ptr_array_index(r->args, 6);
	n32 = g_ptr_array_index(r->args, 7);
	n33 = g_ptr_array_index(r->args, 8);
	n64 = g_ptr_array_index(r->args, 9);
	n65 = g_ptr_array_index(r->args, 10);
	neg = g_ptr_array_index(r->args, 11);
	plus = g_ptr_array_index(r->args, 12);
	mixed = g_ptr_array_index(r->args, 13);
	qnum = g_ptr_array_index(r->args, 14);
	nil2 = g_ptr_array_index(r->args, 15);

	g_assert_true(imap_arg_is_atom(atom, "ATOM"));
	g_assert_false(imap_arg_is_atom(atom, "ATO"));
	g_assert_false(imap_arg_is_atom(quoted, "quo ted"));
	g_assert_false(imap_arg_is_atom(NULL, "x"));
	g_assert_false(imap_arg_is_atom(atom, NULL));
	g_assert_cmpstr(imap_arg_atom(atom), ==, "atom");
	g_assert_null(imap_arg_atom(quoted));
	g_assert_null(imap_arg_atom(nil));
	g_assert_null(imap_arg_atom(list));
	g_assert_null(imap_arg_atom(NULL));

	g_assert_null(imap_arg_string(atom));
	g_assert_cmpstr(imap_arg_string(quoted), ==, "quo ted");
	g_assert_cmpmem(imap_arg_string(lit), lit->len, "l\0t", 3);
	g_assert_null(imap_arg_string(nil));
	g_assert_null(imap_arg_string(list));
	g_assert_null(imap_arg_string(NULL));

	g_assert_cmpstr(imap_arg_astring(atom), ==, "atom");
	g_assert_cmpstr(imap_arg_astring(quoted), ==, "quo ted");
	g_assert_nonnull(imap_arg_astring(lit));
	g_assert_null(imap_arg_astring(nil));
	g_assert_null(imap_arg_astring(list));

	g_assert_null(imap_arg_nstring(nil, &is_nil));
	g_assert_true(is_nil);
	g_assert_null(imap_arg_nstring(nil2, &is_nil));
	g_assert_true(is_nil);
	g_assert_cmpstr(imap_arg_nstring(quoted, &is_nil), ==, "quo ted");
	g_assert_false(is_nil);
	g_assert_null(imap_arg_nstring(atom, &is_nil));
	g_assert_false(is_nil);
	g_assert_null(imap_arg_nstring(list, NULL));

	g_assert_true(imap_arg_number(n0, &v32));
	g_assert_cmpuint(v32, ==, 0);
	g_assert_true(imap_arg_number(n32, &v32));
	g_assert_cmpuint(v32, ==, G_MAXUINT32);
	g_assert_false(imap_arg_number(n33, &v32));
	g_assert_cmpuint(v32, ==, G_MAXUINT32);
	g_assert_true(imap_arg_number64(n33, &v64));
	g_assert_cmpuint(v64, ==, 4294967296ull);
	g_assert_true(imap_arg_number64(n64, &v64));
	g_assert_cmpuint(v64, ==, G_MAXUINT64);
	g_assert_false(imap_arg_number64(n65, &v64));
	g_assert_false(imap_arg_number64(neg, NULL));
	g_assert_false(imap_arg_number64(plus, NULL));
	g_assert_false(imap_arg_number64(mixed, NULL));
	g_assert_false(imap_arg_number64(qnum, NULL));
	g_assert_false(imap_arg_number64(nil, NULL));
	g_assert_false(imap_arg_number(NULL, NULL));

	g_assert_null(imap_arg_list(atom));
	g_assert_nonnull(imap_arg_list(list));
	g_assert_cmpuint(imap_arg_list_len(list), ==, 2);
	g_assert_cmpuint(imap_arg_list_len(atom), ==, 0);
	g_assert_cmpuint(imap_arg_list_len(NULL), ==, 0);
	g_assert_true(imap_arg_is_atom(imap_arg_list_nth(list, 0), "a"));
	g_assert_cmpuint(imap_arg_list_len(imap_arg_list_nth(list, 1)), ==, 1);
	g_assert_null(imap_arg_list_nth(list, 2));
	g_assert_null(imap_arg_list_nth(atom, 0));
	g_assert_null(imap_arg_list_nth(NULL, 0));
	imap_arg_free(NULL);
	imap_response_free(NULL);
}

static gboolean
sink(const guint8 *data, gsize len, gpointer user_data)
{
	g_string_append_len(user_data, (const char *)data, (gssize)len);
	return TRUE;
}

static void
test_streamed(void)
{
	ImapParserLimits lim = {1024, 8, 1 << 20, 4, 1 << 20};
	g_autoptr(ImapParser) p = imap_parser_new(&lim);
	g_autoptr(GString) got = g_string_new(NULL);
	g_autoptr(ImapResponse) r = NULL;
	static const char in1[] = "* 1 FETCH (BODY[] {6}\r\nabc";
	static const char in2[] = "def)\r\n";
	gsize consumed;
	const ImapArg *a;

	imap_parser_set_sink(p, sink, got);
	g_assert_cmpint(imap_parser_feed(p, (const guint8 *)in1, sizeof(in1) - 1, &consumed, NULL),
			==, IMAP_PARSE_NEED_MORE);
	/* turning the sink off mid-literal: this literal still goes to it */
	imap_parser_set_sink(p, NULL, NULL);
	g_assert_cmpint(imap_parser_feed(p, (const guint8 *)in2, sizeof(in2) - 1, &consumed, NULL),
			==, IMAP_PARSE_RESPONSE);
	r = imap_parser_take(p);
	g_assert_cmpstr(got->str, ==, "abcdef");
	a = imap_arg_list_nth(g_ptr_array_index(r->args, 2), 1);
	g_assert_cmpint(a->type, ==, IMAP_ARG_LITERAL);
	g_assert_true(a->streamed);
	g_assert_null(a->str);
	g_assert_cmpuint(a->len, ==, 6);
	g_assert_null(imap_arg_string(a));
	g_assert_null(imap_arg_astring(a));
	g_assert_null(imap_arg_nstring(a, NULL));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/arg/accessors", test_accessors);
	g_test_add_func("/arg/streamed", test_streamed);
	return g_test_run();
}
