/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-flags.c: unit tests of the pure part of fs/store/flags.c: the tag <-> keyword
 * mapping (known encodings, the round trip both ways, tags that look like encodings,
 * keywords from other clients), the user.xdg.tags list and the user.imap.flags grammar.
 */
#include "config.h"

#include <string.h>

#include "store.h"

static void
check_tag(const char *tag, const char *keyword)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *kw = store_tag_to_keyword(tag, &error);
	g_autofree char *back = NULL;

	g_assert_no_error(error);
	g_assert_cmpstr(kw, ==, keyword);
	back = store_keyword_to_tag(kw);
	g_assert_cmpstr(back, ==, tag);
}

static void
test_known(void)
{
	check_tag("work", "work");
	check_tag("$Label1", "$Label1");
	check_tag("a[b", "a[b");
	check_tag("my tag", "$Tag:my=20tag");
	check_tag("M\xc3\xbcller", "$Tag:M=C3=BCller");
	check_tag("\\Seen", "$Tag:=5CSeen");
	check_tag("(x)", "$Tag:=28x=29");
	check_tag("a*b%c\"d]e{f", "$Tag:a=2Ab=25c=22d=5De=7Bf");
	check_tag("x=y z", "$Tag:x=3Dy=20z");
	/* a tag that is an encoding is encoded itself; one that is not stays as it is */
	check_tag("$Tag:my=20tag", "$Tag:=24Tag=3Amy=3D20tag");
	check_tag("$Tag:abc", "$Tag:abc");
	check_tag("$Tag:x=ZZ", "$Tag:x=ZZ");
	check_tag("$Tag:", "$Tag:");
}

static const char *const keywords[] = {
	"work",	    "$Junk",	    "$Tag:",	 "$Tag:abc", "$Tag:=41",    "$Tag:=2c",
	"$Tag:=2C", "$Tag:=20lead", "$Tag:=00",	 "$Tag:=FF", "$Tag:=C3=BC", "$Tag:=24Tag=3Aa=3D20",
	"a,b",	    "$tag:=20x",    "$Tag:a=20", "$Tag:=",   "$Tag:=5",	    "NonJunk",
};

/* Every keyword another client may have set reads as a tag that writes back as the same
 * keyword (a comma inside a keyword is the one exception: it splits the tag list). */
static void
test_keywords_round_trip(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(keywords); i++) {
		g_autofree char *tag = store_keyword_to_tag(keywords[i]);
		g_autoptr(GError) error = NULL;
		g_autofree char *kw = NULL;

		if (strchr(keywords[i], ',') != NULL)
			continue;
		kw = store_tag_to_keyword(tag, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(kw, ==, keywords[i]);
	}
}

/* Random tags: encode then decode gives the tag back, and the keyword is an atom. */
static void
test_random_round_trip(void)
{
	static const char *const pieces[] = {
		"a", "Z",  "0", " ", "=",  "$", "Tag:", "\\",	 "\xc3\xa4", "\xe2\x82\xac",
		"(", "]",  "%", "*", "\"", "{", "=20",	"$Tag:", "-",	     "_",
		".", "\t",
	};
	GRand *r = g_rand_new_with_seed(42);

	for (guint n = 0; n < 20000; n++) {
		g_autoptr(GString) t = g_string_new(NULL);
		g_autofree char *kw = NULL;
		g_autofree char *back = NULL;
		g_autoptr(GError) error = NULL;
		guint len = (guint)g_rand_int_range(r, 1, 6);

		for (guint i = 0; i < len; i++)
			g_string_append(t, pieces[g_rand_int_range(r, 0, G_N_ELEMENTS(pieces))]);
		g_strstrip(t->str);
		if (t->str[0] == '\0')
			continue;
		kw = store_tag_to_keyword(t->str, &error);
		g_assert_no_error(error);
		for (const char *p = kw; *p; p++)
			g_assert_true(*p > 0x20 && *p < 0x7f && !strchr("(){%*\"\\]", *p));
		back = store_keyword_to_tag(kw);
		g_assert_cmpstr(back, ==, t->str);
	}
	g_rand_free(r);
}

static void
test_invalid_tags(void)
{
	static const char *const bad[] = {"", "a,b", " lead", "trail ", "\xff\xfe"};

	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *kw = store_tag_to_keyword(bad[i], &error);

		g_assert_null(kw);
		g_assert_error(error, STORE_ERROR, STORE_ERROR_INVALID);
	}
}

static void
check_list(const char *value, const char *const *expect)
{
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) kw = store_tags_to_keywords(value, strlen(value), &error);

	g_assert_no_error(error);
	g_assert_cmpstrv(kw, expect);
}

static void
test_tag_list(void)
{
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) none = NULL;
	g_autofree char *text = NULL;
	const char *const flags[] = {"\\Seen", "work", "$Tag:my=20tag", "\\Flagged", NULL};

	check_list("", (const char *const[]){NULL});
	check_list(" , ,", (const char *const[]){NULL});
	check_list("work,my tag", (const char *const[]){"work", "$Tag:my=20tag", NULL});
	check_list(" work , my tag ,work,", (const char *const[]){"work", "$Tag:my=20tag", NULL});
	check_list("\xc3\xa9t\xc3\xa9", (const char *const[]){"$Tag:=C3=A9t=C3=A9", NULL});
	none = store_tags_to_keywords("a\0b", 3, &error);
	g_assert_null(none);
	g_assert_error(error, STORE_ERROR, STORE_ERROR_INVALID);
	/* the read side: keywords only, decoded */
	text = store_tags_from_flags(flags);
	g_assert_cmpstr(text, ==, "work,my tag");
}

static void
check_parse(const char *value, gboolean replace, const char *const *set, const char *const *add,
	    const char *const *remove)
{
	g_autoptr(GError) error = NULL;
	StoreFlagsChange c;

	g_assert_true(store_flags_parse(value, strlen(value), &c, &error));
	g_assert_no_error(error);
	g_assert_cmpint(c.replace, ==, replace);
	if (replace) {
		g_assert_cmpstrv(c.set, set);
		g_assert_null(c.add);
	} else {
		g_assert_null(c.set);
		g_assert_cmpstrv(c.add, add);
		g_assert_cmpstrv(c.remove, remove);
	}
	store_flags_change_clear(&c);
}

#define V(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE   ((const char *const[]){NULL})

static void
test_parse(void)
{
	check_parse("", TRUE, NONE, NULL, NULL);
	check_parse("  \t\n", TRUE, NONE, NULL, NULL);
	check_parse("\\Seen \\Flagged $Label1", TRUE, V("\\Seen", "\\Flagged", "$Label1"), NULL,
		    NULL);
	check_parse("\\seen\t\\SEEN  \\Draft\n", TRUE, V("\\Seen", "\\Draft"), NULL, NULL);
	check_parse("a,b", TRUE, V("a,b"), NULL, NULL); /* a comma is part of a keyword */
	check_parse("+\\Seen +$Label1", FALSE, NULL, V("\\Seen", "$Label1"), NONE);
	check_parse("-\\Seen", FALSE, NULL, NONE, V("\\Seen"));
	check_parse("+\\Seen -$Junk +$NotJunk", FALSE, NULL, V("\\Seen", "$NotJunk"), V("$Junk"));
	check_parse("+-x", FALSE, NULL, V("-x"), NONE);
}

static void
check_parse_fails(const char *value, gsize len, GQuark domain, gint code)
{
	g_autoptr(GError) error = NULL;
	StoreFlagsChange c;

	g_assert_false(store_flags_parse(value, len, &c, &error));
	g_assert_error(error, domain, code);
}

static void
test_parse_invalid(void)
{
	static const char *const bad_flags[] = {
		"\\Recent", "\\Bogus",	"+\\Recent", "-\\Bogus",   "+",	   "-",
		"a(b",	    "\xc3\xa4", "*",	     "\\Seen \\*", "x\"y", "a]",
	};

	for (gsize i = 0; i < G_N_ELEMENTS(bad_flags); i++)
		check_parse_fails(bad_flags[i], strlen(bad_flags[i]), IMAP_ERROR,
				  IMAP_ERROR_INVALID);
	check_parse_fails("\\Seen +\\Flagged", 15, STORE_ERROR, STORE_ERROR_INVALID);
	check_parse_fails("+x -X", 5, STORE_ERROR, STORE_ERROR_INVALID);
	check_parse_fails("\\Seen\0x", 7, STORE_ERROR, STORE_ERROR_INVALID);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/flags/tags/known", test_known);
	g_test_add_func("/flags/tags/keywords-round-trip", test_keywords_round_trip);
	g_test_add_func("/flags/tags/random-round-trip", test_random_round_trip);
	g_test_add_func("/flags/tags/invalid", test_invalid_tags);
	g_test_add_func("/flags/tags/list", test_tag_list);
	g_test_add_func("/flags/parse", test_parse);
	g_test_add_func("/flags/parse-invalid", test_parse_invalid);
	return g_test_run();
}
