/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * arg.c: the typed argument tree that parser.c builds (ImapArg, ImapResponse) and its
 * checked accessors. Accessors never trust the shape of server data: a wrong type, an
 * out-of-range index or a number that does not fit gives NULL/FALSE, never a crash.
 */
#define G_LOG_DOMAIN "imapfs-imap"

#include "config.h"

#include <string.h>

#include "parser.h"

void
imap_arg_free(ImapArg *arg)
{
	if (!arg)
		return;
	g_free(arg->str);
	if (arg->list)
		g_ptr_array_unref(arg->list);
	g_free(arg);
}

void
imap_response_free(ImapResponse *resp)
{
	if (!resp)
		return;
	g_free(resp->tag);
	g_free(resp->code);
	if (resp->code_args)
		g_ptr_array_unref(resp->code_args);
	g_free(resp->text);
	if (resp->args)
		g_ptr_array_unref(resp->args);
	g_free(resp);
}

gboolean
imap_arg_is_atom(const ImapArg *arg, const char *word)
{
	if (!arg || arg->type != IMAP_ARG_ATOM || !word)
		return FALSE;
	return strlen(word) == arg->len && g_ascii_strcasecmp(arg->str, word) == 0;
}

const char *
imap_arg_atom(const ImapArg *arg)
{
	if (!arg || arg->type != IMAP_ARG_ATOM)
		return NULL;
	return arg->str;
}

const char *
imap_arg_string(const ImapArg *arg)
{
	if (!arg)
		return NULL;
	if (arg->type == IMAP_ARG_QUOTED)
		return arg->str;
	if (arg->type == IMAP_ARG_LITERAL && !arg->streamed)
		return arg->str;
	return NULL;
}

const char *
imap_arg_astring(const ImapArg *arg)
{
	if (arg && arg->type == IMAP_ARG_ATOM)
		return arg->str;
	return imap_arg_string(arg);
}

const char *
imap_arg_nstring(const ImapArg *arg, gboolean *is_nil)
{
	gboolean nil = arg && arg->type == IMAP_ARG_NIL;

	if (is_nil)
		*is_nil = nil;
	return nil ? NULL : imap_arg_string(arg);
}

gboolean
imap_arg_number64(const ImapArg *arg, guint64 *out)
{
	guint64 v = 0;

	if (!arg || arg->type != IMAP_ARG_ATOM || arg->len == 0 || arg->len > 20)
		return FALSE;
	for (gsize i = 0; i < arg->len; i++) {
		char c = arg->str[i];

		if (c < '0' || c > '9')
			return FALSE;
		if (v > (G_MAXUINT64 - (guint64)(c - '0')) / 10)
			return FALSE;
		v = v * 10 + (guint64)(c - '0');
	}
	if (out)
		*out = v;
	return TRUE;
}

gboolean
imap_arg_number(const ImapArg *arg, guint32 *out)
{
	guint64 v;

	if (!imap_arg_number64(arg, &v) || v > G_MAXUINT32)
		return FALSE;
	if (out)
		*out = (guint32)v;
	return TRUE;
}

const GPtrArray *
imap_arg_list(const ImapArg *arg)
{
	if (!arg || arg->type != IMAP_ARG_LIST)
		return NULL;
	return arg->list;
}

guint
imap_arg_list_len(const ImapArg *arg)
{
	const GPtrArray *l = imap_arg_list(arg);

	return l ? l->len : 0;
}

const ImapArg *
imap_arg_list_nth(const ImapArg *arg, guint i)
{
	const GPtrArray *l = imap_arg_list(arg);

	if (!l || i >= l->len)
		return NULL;
	return g_ptr_array_index(l, i);
}
