/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz-flags.c: libFuzzer target for the parsers of fs/store/flags.c, fed the bytes a
 * setxattr value can hold. As user.imap.flags: a parse either fails or gives flags that
 * normalize to themselves, no flag both added and removed. As user.xdg.tags: every
 * keyword is an atom whose tag encodes back to it, and the tag list read back from the
 * keywords parses to the same keywords. As one keyword: its tag encodes back to it.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_flags(const char *const *flags)
{
	for (guint i = 0; flags != NULL && flags[i]; i++) {
		g_autofree char *n = imap_flag_normalize(flags[i], NULL);

		if (n == NULL || strcmp(n, flags[i]) != 0)
			g_error("parse gave a flag that does not normalize to itself: %s",
				flags[i]);
	}
}

static void
fuzz_flags(const char *text, gsize len)
{
	StoreFlagsChange c;

	if (!store_flags_parse(text, len, &c, NULL))
		return;
	check_flags((const char *const *)c.set);
	check_flags((const char *const *)c.add);
	check_flags((const char *const *)c.remove);
	for (guint i = 0; c.add != NULL && c.add[i]; i++)
		for (guint j = 0; c.remove[j]; j++)
			if (g_ascii_strcasecmp(c.add[i], c.remove[j]) == 0)
				g_error("%s both added and removed", c.add[i]);
	store_flags_change_clear(&c);
}

static void
fuzz_tags(const char *text, gsize len)
{
	g_auto(GStrv) kw = store_tags_to_keywords(text, len, NULL);
	g_auto(GStrv) again = NULL;
	g_autofree char *list = NULL;

	if (kw == NULL)
		return;
	for (guint i = 0; kw[i]; i++) {
		g_autofree char *n = imap_flag_normalize(kw[i], NULL);
		g_autofree char *tag = store_keyword_to_tag(kw[i]);
		g_autofree char *back = store_tag_to_keyword(tag, NULL);

		if (n == NULL || kw[i][0] == '\\')
			g_error("a tag became no keyword: %s", kw[i]);
		if (back == NULL || strcmp(back, kw[i]) != 0)
			g_error("tag/keyword mismatch: %s -> %s -> %s", kw[i], tag,
				back ? back : "(null)");
	}
	list = store_tags_from_flags((const char *const *)kw);
	again = store_tags_to_keywords(list, strlen(list), NULL);
	if (again == NULL || !g_strv_equal((const char *const *)again, (const char *const *)kw))
		g_error("the tag list read back parses differently: %s", list);
}

static void
fuzz_keyword(const char *kw)
{
	g_autofree char *tag = NULL;
	g_autofree char *back = NULL;
	g_autofree char *n = imap_flag_normalize(kw, NULL);

	if (n == NULL || kw[0] == '\\' || strchr(kw, ',') != NULL)
		return; /* not a keyword a server could send (or one the tag list splits) */
	tag = store_keyword_to_tag(kw);
	back = store_tag_to_keyword(tag, NULL);
	if (back == NULL || strcmp(back, kw) != 0)
		g_error("keyword/tag mismatch: %s -> %s -> %s", kw, tag, back ? back : "(null)");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *in = g_strndup((const char *)data, size); /* stops at a NUL */

	fuzz_flags((const char *)data, size);
	fuzz_tags((const char *)data, size);
	fuzz_keyword(in);
	return 0;
}
