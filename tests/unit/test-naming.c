/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-naming.c: unit tests of fs/naming.c: namespaces and delimiters to directory paths,
 * messages to file names (length, forbidden characters, UTF-8 boundaries, order), and the
 * probe filter that keeps `.git` and friends off the network.
 */
#include "config.h"

#include <string.h>

#include "naming.h"

static void
ns_free(StoreNamespace *ns)
{
	g_free(ns->prefix);
	g_free(ns);
}

static GPtrArray *
make_ns(const char *spec[][3], guint n)
{
	GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)ns_free);
	guint idx[3] = {0};

	for (guint i = 0; i < n; i++) {
		StoreNamespace *ns = g_new0(StoreNamespace, 1);

		ns->kind = spec[i][0][0] == 'p'	  ? STORE_NS_PERSONAL
			   : spec[i][0][0] == 'o' ? STORE_NS_OTHER
						  : STORE_NS_SHARED;
		ns->index = idx[ns->kind]++;
		ns->prefix = g_strdup(spec[i][1]);
		ns->delim = spec[i][2][0];
		g_ptr_array_add(a, ns);
	}
	return a;
}

static void
check_path(const char *mailbox, char delim, GPtrArray *ns, const char *expect)
{
	g_auto(GStrv) path = naming_folder_path(mailbox, delim, ns);
	g_autofree char *joined = g_strjoinv("|", path);

	g_assert_cmpstr(joined, ==, expect);
}

static void
test_slash_layout(void)
{
	const char *spec[][3] = {{"p", "", "/"}, {"o", "user/", "/"}, {"s", "shared/", "/"}};
	g_autoptr(GPtrArray) ns = make_ns(spec, 3);

	check_path("INBOX", '/', ns, "INBOX");
	check_path("inbox", '/', ns, "INBOX");
	check_path("INBOX/sub", '/', ns, "INBOX|sub");
	check_path("Archive/2023", '/', ns, "Archive|2023");
	check_path("user/bob/work", '/', ns, "user|bob|work");
	check_path("user", '/', ns, "user");
	check_path("shared/team", '/', ns, "shared|team");
	check_path("Gr\xc3\xbc\xc3\x9f"
		   "e",
		   '/', ns,
		   "Gr\xc3\xbc\xc3\x9f"
		   "e");
}

static void
test_dot_layout(void)
{
	const char *spec[][3] = {{"p", "INBOX.", "."}, {"o", "user.", "."}, {"s", "", "."}};
	g_autoptr(GPtrArray) ns = make_ns(spec, 3);

	check_path("INBOX", '.', ns, "INBOX");
	check_path("INBOX.Sent", '.', ns, "Sent");
	check_path("INBOX.a.b", '.', ns, "a|b");
	check_path("INBOX.with/slash", '.', ns, "with\xe2\x88\x95slash");
	check_path("user.bob.work", '.', ns, "user|bob|work");
	check_path("public", '.', ns, NAMING_NS_SHARED_EMPTY "|public");
	check_path("INBOX.user", '.', ns, "user~");
	check_path("INBOX.user.x", '.', ns, "user~|x");
}

static void
test_nil_delim(void)
{
	const char *spec[][3] = {{"p", "", ""}};
	g_autoptr(GPtrArray) ns = make_ns(spec, 1);

	check_path("a/b.c", 0, ns,
		   "a\xe2\x88\x95"
		   "b.c");
	check_path("..", 0, ns, "\xef\xbc\x8e\xef\xbc\x8e");
}

static void
check_name_safe(const char *name)
{
	g_assert_nonnull(name);
	g_assert_cmpuint(strlen(name), <=, 255);
	g_assert_true(g_utf8_validate(name, -1, NULL));
	g_assert_null(strchr(name, '/'));
	for (const char *p = name; *p; p++)
		g_assert_cmpint((unsigned char)*p, >=, 0x20);
	g_assert_true(g_str_has_suffix(name, ".eml"));
}

static void
test_message_names(void)
{
	g_autofree char *a = naming_message_name(NAMING_READABLE, 42, 1700000000,
						 "Re: Hello / \"world\"\t\r\n  again");
	g_autofree char *b = naming_message_name(NAMING_READABLE, 7, 1700000000, NULL);
	g_autofree char *c = naming_message_name(NAMING_UID, 42, 1700000000, "x");
	g_autofree char *d = naming_message_name(NAMING_READABLE, 3, 1700000000,
						 "\xe2\x80\xae"
						 "evil\xe2\x80\xac"
						 "bidi");

	g_assert_cmpstr(a, ==, "2023-11-14_2213_Re:_Hello_\xe2\x88\x95_\"world\"_again_42.eml");
	g_assert_cmpstr(b, ==, "2023-11-14_2213_no_subject_7.eml");
	g_assert_cmpstr(c, ==, "42.eml");
	g_assert_cmpstr(d, ==, "2023-11-14_2213_evilbidi_3.eml");
	check_name_safe(a);
	check_name_safe(d);
}

static void
test_long_subject(void)
{
	GString *s = g_string_new(NULL);

	for (int i = 0; i < 200; i++)
		g_string_append(s, "\xe2\x82\xac"); /* euro sign, 3 bytes */
	for (int cut = 0; cut < 3; cut++) {
		g_autofree char *name = NULL;

		g_string_prepend_c(s, 'x');
		name = naming_message_name(NAMING_READABLE, G_MAXUINT32, 1700000000, s->str);
		check_name_safe(name);
	}
	g_string_free(s, TRUE);
}

static void
test_order(void)
{
	g_autofree char *a = naming_message_name(NAMING_READABLE, 100, 1600000000, "zzz");
	g_autofree char *b = naming_message_name(NAMING_READABLE, 5, 1700000000, "aaa");

	g_assert_cmpint(strcmp(a, b), <, 0);
}

static void
test_probes(void)
{
	const char *no[] = {".git", "desktop.ini", ".hidden", "Autorun.inf", "._1.eml", ".eml",
			    "HEAD", "x.eml",	   "1.EML",   "libc.so.6",   NULL};

	for (int i = 0; no[i]; i++) {
		g_assert_false(naming_could_be_message(NAMING_READABLE, no[i]));
		g_assert_false(naming_could_be_message(NAMING_UID, no[i]));
	}
	g_assert_true(naming_could_be_message(NAMING_UID, "12.eml"));
	g_assert_false(naming_could_be_message(NAMING_UID, "012.eml"));
	g_assert_false(naming_could_be_message(NAMING_UID, "2023-11-14_2213_a_1.eml"));
	g_assert_true(naming_could_be_message(NAMING_READABLE, "2023-11-14_2213_a_1.eml"));
}

static void
check_component_safe(const char *name)
{
	g_assert_nonnull(name);
	g_assert_cmpuint(strlen(name), >, 0);
	g_assert_cmpuint(strlen(name), <=, 255);
	g_assert_true(g_utf8_validate(name, -1, NULL));
	g_assert_null(strchr(name, '/'));
	g_assert_cmpstr(name, !=, ".");
	g_assert_cmpstr(name, !=, "..");
	for (const char *p = name; *p; p = g_utf8_next_char(p)) {
		GUnicodeType t = g_unichar_type(g_utf8_get_char(p));

		g_assert_cmpint(t, !=, G_UNICODE_CONTROL);
		g_assert_cmpint(t, !=, G_UNICODE_FORMAT);
	}
}

/* Regression (issue 9, item 13): folder names longer than 255 bytes were listed as they
 * came, and bidi controls stayed in them. */
static void
test_folder_names_long_and_bidi(void)
{
	const char *spec[][3] = {{"p", "", "/"}};
	g_autoptr(GPtrArray) ns = make_ns(spec, 1);
	GString *han = g_string_new(NULL);
	g_autofree char *bidi = naming_component("a\xe2\x80\xae"
						 "gnp.exe");
	g_autofree char *zw = naming_component("ab\xe2\x80\x8b"
					       "c\xe2\x81\xa6"
					       "d");
	g_autofree char *only = naming_component("\xe2\x80\xae");
	g_autofree char *dots = naming_component(".\xe2\x80\x8b");
	g_autofree char *c1 = naming_component("x\xc2\x85y\xe2\x80\xa8z");
	g_autofree char *bad = naming_component("x\xff\x01y");

	g_assert_cmpstr(bidi, ==, "agnp.exe");
	g_assert_cmpstr(zw, ==, "abcd");
	g_assert_cmpstr(only, ==, "_");
	g_assert_cmpstr(dots, ==, "\xef\xbc\x8e");
	g_assert_cmpstr(c1, ==, "x\xef\xbf\xbdy\xef\xbf\xbdz");
	check_component_safe(bidi);
	check_component_safe(c1);
	check_component_safe(bad);

	/* 90 three-byte characters (270 bytes): cut on a boundary, in every alignment */
	for (int i = 0; i < 90; i++)
		g_string_append(han, "\xe6\xbc\xa2"); /* U+6F22 */
	for (int shift = 0; shift < 3; shift++) {
		g_autofree char *name = naming_component(han->str);
		g_autofree char *v1 = naming_component_variant(name, 1);
		g_autofree char *v2 = naming_component_variant(name, 2);
		g_autofree char *v12 = naming_component_variant(name, 12);
		g_autofree char *path_str = g_strconcat("top/", han->str, NULL);
		g_auto(GStrv) path = naming_folder_path(path_str, '/', ns);

		check_component_safe(name);
		g_assert_cmpuint(strlen(name), >=, 253);
		g_assert_true(g_str_has_prefix(han->str, name));
		check_component_safe(v1);
		check_component_safe(v2);
		check_component_safe(v12);
		g_assert_true(g_str_has_suffix(v2, "~2"));
		g_assert_true(g_str_has_suffix(v12, "~12"));
		g_assert_cmpstr(v1, !=, name);
		g_assert_cmpstr(v2, !=, v12);
		g_assert_cmpuint(g_strv_length(path), ==, 2);
		g_assert_cmpstr(path[1], ==, name);
		g_string_prepend_c(han, 'x');
	}
	/* short names keep their variants short */
	{
		g_autofree char *v = naming_component_variant("Sent", 3);

		g_assert_cmpstr(v, ==, "Sent~3");
	}
	g_string_free(han, TRUE);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/naming/slash-layout", test_slash_layout);
	g_test_add_func("/naming/dot-layout", test_dot_layout);
	g_test_add_func("/naming/nil-delimiter", test_nil_delim);
	g_test_add_func("/naming/message-names", test_message_names);
	g_test_add_func("/naming/long-subject", test_long_subject);
	g_test_add_func("/naming/order", test_order);
	g_test_add_func("/naming/probes", test_probes);
	g_test_add_func("/naming/folder-names-long-and-bidi", test_folder_names_long_and_bidi);
	return g_test_run();
}
