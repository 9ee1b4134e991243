/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * resp.c: typed decoders from one parsed ImapResponse to the public data types of imap.h
 * (capabilities, namespaces, LIST, STATUS, FETCH items, SEARCH/ESEARCH, VANISHED, QUOTA,
 * response codes), and the free functions of those types. Every decoder checks the shape
 * of the tree against the grammar and fails with IMAP_ERROR_PROTOCOL instead of guessing;
 * unknown extension items are skipped by grammar. No I/O, no state.
 */
#define G_LOG_DOMAIN "imapfs-imap"

#include "config.h"

#include <string.h>

#include "resp.h"

/* ---- free functions of the public data types --------------------------------------- */

static void
namespace_free(gpointer p)
{
	ImapNamespace *ns = p;

	if (!ns)
		return;
	g_free(ns->prefix);
	g_free(ns);
}

void
imap_namespaces_free(ImapNamespaces *ns)
{
	if (!ns)
		return;
	g_clear_pointer(&ns->personal, g_ptr_array_unref);
	g_clear_pointer(&ns->other, g_ptr_array_unref);
	g_clear_pointer(&ns->shared, g_ptr_array_unref);
	g_free(ns);
}

void
imap_mailbox_info_free(ImapMailboxInfo *info)
{
	if (!info)
		return;
	g_free(info->name);
	g_free(info);
}

static void
address_free(gpointer p)
{
	ImapAddress *a = p;

	if (!a)
		return;
	g_free(a->name);
	g_free(a->mailbox);
	g_free(a->host);
	g_free(a);
}

void
imap_envelope_free(ImapEnvelope *env)
{
	if (!env)
		return;
	g_free(env->date);
	g_free(env->subject);
	g_clear_pointer(&env->from, g_ptr_array_unref);
	g_clear_pointer(&env->sender, g_ptr_array_unref);
	g_clear_pointer(&env->reply_to, g_ptr_array_unref);
	g_clear_pointer(&env->to, g_ptr_array_unref);
	g_clear_pointer(&env->cc, g_ptr_array_unref);
	g_clear_pointer(&env->bcc, g_ptr_array_unref);
	g_free(env->in_reply_to);
	g_free(env->message_id);
	g_free(env);
}

void
imap_message_free(ImapMessage *msg)
{
	if (!msg)
		return;
	g_strfreev(msg->flags);
	imap_envelope_free(msg->envelope);
	if (msg->header)
		g_bytes_unref(msg->header);
	g_free(msg->bodystructure);
	g_free(msg->references);
	g_free(msg);
}

void
imap_select_info_free(ImapSelectInfo *info)
{
	if (!info)
		return;
	g_strfreev(info->flags);
	g_strfreev(info->permanentflags);
	imap_uidset_free(info->vanished);
	if (info->changed) {
		/* whoever built it: the elements are ImapMessage* owned by the array */
		g_ptr_array_set_free_func(info->changed, (GDestroyNotify)imap_message_free);
		g_ptr_array_unref(info->changed);
	}
	g_free(info);
}

/* ---- helpers ----------------------------------------------------------------------- */

static gboolean proto(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static gboolean
proto(GError **error, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *msg = NULL;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL, "bad server response: %s", msg);
	return FALSE;
}

static const ImapArg *
arg_nth(const ImapResponse *resp, guint i)
{
	if (!resp->args || i >= resp->args->len)
		return NULL;
	return g_ptr_array_index(resp->args, i);
}

static guint
n_args(const ImapResponse *resp)
{
	return resp->args ? resp->args->len : 0;
}

/* An untagged data response "* WORD ..." (args[0] is WORD). */
static gboolean
is_untagged(const ImapResponse *resp, const char *word)
{
	return resp->kind == IMAP_RESP_UNTAGGED && resp->status == IMAP_STATUS_NONE &&
	       imap_arg_is_atom(arg_nth(resp, 0), word);
}

/* A string without embedded NULs (a literal may hold them), or NULL. */
static const char *
clean_astring(const ImapArg *a)
{
	const char *s = imap_arg_astring(a);

	if (s && strlen(s) != a->len)
		return NULL;
	return s;
}

/* nstring: *out gets a copy or NULL for NIL. FALSE if the arg is neither. */
static gboolean
dup_nstring(const ImapArg *a, char **out)
{
	gboolean nil = FALSE;
	const char *s = imap_arg_nstring(a, &nil);

	if (nil) {
		*out = NULL;
		return TRUE;
	}
	if (!s || strlen(s) != a->len)
		return FALSE; /* not a string, or one with a NUL (only literal8 may hold NULs) */
	*out = g_strndup(s, a->len);
	return TRUE;
}

/* A mailbox name: modified UTF-7 decoded (unless @utf8); a name that is not valid
 * modified UTF-7 but valid UTF-8 is kept as it is; anything else is an error. */
static char *
mailbox_name(const ImapArg *a, gboolean utf8, GError **error)
{
	const char *raw = clean_astring(a);
	char *name;

	if (!raw) {
		proto(error, "mailbox name is not a string");
		return NULL;
	}
	if (g_ascii_strcasecmp(raw, "INBOX") == 0)
		return g_strdup("INBOX");
	if (!utf8) {
		g_autoptr(GError) local = NULL;

		name = imap_utf7_decode(raw, &local);
		if (name)
			return name;
	}
	if (!g_utf8_validate(raw, -1, NULL)) {
		proto(error, "mailbox name is neither modified UTF-7 nor UTF-8");
		return NULL;
	}
	return g_strdup(raw);
}

/* A hierarchy delimiter: a one-character string or NIL (0). */
static gboolean
delimiter(const ImapArg *a, char *out, GError **error)
{
	const char *s;

	if (a && a->type == IMAP_ARG_NIL) {
		*out = 0;
		return TRUE;
	}
	s = clean_astring(a);
	if (!s || a->len != 1 || (guchar)s[0] >= 0x80)
		return proto(error, "bad hierarchy delimiter");
	*out = s[0];
	return TRUE;
}

/* Atoms of @args[first..] (or of a list), upper-cased, NULL-terminated. */
static char **
atoms_upper(const GPtrArray *args, guint first, GError **error)
{
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();

	for (guint i = first; args && i < args->len; i++) {
		const char *s = imap_arg_atom(g_ptr_array_index(args, i));
		g_autofree char *up = NULL;

		if (!s) {
			proto(error, "capability is not an atom");
			return NULL;
		}
		up = g_ascii_strup(s, -1);
		g_strv_builder_add(b, up);
	}
	return g_strv_builder_end(b);
}

/* ---- untagged kinds ---------------------------------------------------------------- */

ImapUntaggedKind
imap_resp_untagged_kind(const ImapResponse *resp)
{
	static const struct {
		const char *word;
		ImapUntaggedKind kind;
	} words[] =
		{
			{"CAPABILITY", IMAP_UNTAGGED_CAPABILITY},
			{"ENABLED", IMAP_UNTAGGED_ENABLED},
			{"NAMESPACE", IMAP_UNTAGGED_NAMESPACE},
			{"LIST", IMAP_UNTAGGED_LIST},
			{"LSUB", IMAP_UNTAGGED_LSUB},
			{"STATUS", IMAP_UNTAGGED_STATUS_DATA},
			{"FLAGS", IMAP_UNTAGGED_FLAGS},
			{"SEARCH", IMAP_UNTAGGED_SEARCH},
			{"ESEARCH", IMAP_UNTAGGED_ESEARCH},
			{"VANISHED", IMAP_UNTAGGED_VANISHED},
			{"QUOTA", IMAP_UNTAGGED_QUOTA},
			{"QUOTAROOT", IMAP_UNTAGGED_QUOTAROOT},
			{"ID", IMAP_UNTAGGED_ID},
		},
	  numbered[] = {
		  {"EXISTS", IMAP_UNTAGGED_EXISTS},
		  {"RECENT", IMAP_UNTAGGED_RECENT},
		  {"EXPUNGE", IMAP_UNTAGGED_EXPUNGE},
		  {"FETCH", IMAP_UNTAGGED_FETCH},
	  };
	const ImapArg *first;

	if (!resp || resp->kind != IMAP_RESP_UNTAGGED)
		return IMAP_UNTAGGED_OTHER;
	if (resp->status != IMAP_STATUS_NONE)
		return IMAP_UNTAGGED_STATUS;
	first = arg_nth(resp, 0);
	if (imap_arg_number(first, NULL)) {
		for (gsize i = 0; i < G_N_ELEMENTS(numbered); i++) {
			if (imap_arg_is_atom(arg_nth(resp, 1), numbered[i].word))
				return numbered[i].kind;
		}
		return IMAP_UNTAGGED_OTHER;
	}
	for (gsize i = 0; i < G_N_ELEMENTS(words); i++) {
		if (imap_arg_is_atom(first, words[i].word))
			return words[i].kind;
	}
	return IMAP_UNTAGGED_OTHER;
}

/* ---- CAPABILITY, ENABLED ----------------------------------------------------------- */

char **
imap_resp_capability(const ImapResponse *resp, GError **error)
{
	if (resp->code && strcmp(resp->code, "CAPABILITY") == 0)
		return atoms_upper(resp->code_args, 0, error);
	if (is_untagged(resp, "CAPABILITY"))
		return atoms_upper(resp->args, 1, error);
	proto(error, "not a CAPABILITY response");
	return NULL;
}

char **
imap_resp_enabled(const ImapResponse *resp, GError **error)
{
	if (!is_untagged(resp, "ENABLED")) {
		proto(error, "not an ENABLED response");
		return NULL;
	}
	return atoms_upper(resp->args, 1, error);
}

/* ---- NAMESPACE --------------------------------------------------------------------- */

static GPtrArray *
namespace_list(const ImapArg *a, gboolean utf8, GError **error)
{
	g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(namespace_free);

	if (a && a->type == IMAP_ARG_NIL)
		return g_steal_pointer(&out);
	if (!a || a->type != IMAP_ARG_LIST) {
		proto(error, "namespace is neither NIL nor a list");
		return NULL;
	}
	for (guint i = 0; i < a->list->len; i++) {
		const ImapArg *d = g_ptr_array_index(a->list, i);
		ImapNamespace *ns;
		char delim;
		char *prefix;

		/* (prefix delim *(SP extension-name SP (values))): extensions are ignored */
		if (imap_arg_list_len(d) < 2 || (imap_arg_list_len(d) % 2) != 0) {
			proto(error, "bad namespace description");
			return NULL;
		}
		if (!delimiter(imap_arg_list_nth(d, 1), &delim, error))
			return NULL;
		prefix = mailbox_name(imap_arg_list_nth(d, 0), utf8, error);
		if (!prefix)
			return NULL;
		ns = g_new0(ImapNamespace, 1);
		ns->prefix = prefix;
		ns->delim = delim;
		g_ptr_array_add(out, ns);
	}
	return g_steal_pointer(&out);
}

ImapNamespaces *
imap_resp_namespace(const ImapResponse *resp, gboolean utf8, GError **error)
{
	g_autoptr(ImapNamespaces) ns = NULL;

	if (!is_untagged(resp, "NAMESPACE") || n_args(resp) != 4) {
		proto(error, "not a NAMESPACE response");
		return NULL;
	}
	ns = g_new0(ImapNamespaces, 1);
	if (!(ns->personal = namespace_list(arg_nth(resp, 1), utf8, error)) ||
	    !(ns->other = namespace_list(arg_nth(resp, 2), utf8, error)) ||
	    !(ns->shared = namespace_list(arg_nth(resp, 3), utf8, error)))
		return NULL;
	return g_steal_pointer(&ns);
}

/* ---- LIST / LSUB ------------------------------------------------------------------- */

static const struct {
	const char *name;
	guint attr;
} mbox_attrs[] = {
	{"\\Noselect", IMAP_MBOX_NOSELECT},
	{"\\NoInferiors", IMAP_MBOX_NOINFERIORS},
	{"\\NonExistent", IMAP_MBOX_NONEXISTENT},
	{"\\HasChildren", IMAP_MBOX_HASCHILDREN},
	{"\\HasNoChildren", IMAP_MBOX_HASNOCHILDREN},
	{"\\Marked", IMAP_MBOX_MARKED},
	{"\\Unmarked", IMAP_MBOX_UNMARKED},
	{"\\Subscribed", IMAP_MBOX_SUBSCRIBED},
	{"\\Remote", IMAP_MBOX_REMOTE},
	{"\\All", IMAP_MBOX_ALL},
	{"\\Archive", IMAP_MBOX_ARCHIVE},
	{"\\Drafts", IMAP_MBOX_DRAFTS},
	{"\\Flagged", IMAP_MBOX_FLAGGED},
	{"\\Junk", IMAP_MBOX_JUNK},
	{"\\Sent", IMAP_MBOX_SENT},
	{"\\Trash", IMAP_MBOX_TRASH},
	{"\\Important", IMAP_MBOX_IMPORTANT},
};

ImapMailboxInfo *
imap_resp_list(const ImapResponse *resp, gboolean utf8, GError **error)
{
	g_autoptr(ImapMailboxInfo) info = NULL;
	gboolean lsub = is_untagged(resp, "LSUB");
	const ImapArg *attrs, *ext;

	if ((!lsub && !is_untagged(resp, "LIST")) || n_args(resp) < 4 || n_args(resp) > 5) {
		proto(error, "not a LIST response");
		return NULL;
	}
	attrs = arg_nth(resp, 1);
	if (attrs->type != IMAP_ARG_LIST) {
		proto(error, "LIST attributes are not a list");
		return NULL;
	}
	info = g_new0(ImapMailboxInfo, 1);
	for (guint i = 0; i < attrs->list->len; i++) {
		const char *s = imap_arg_atom(g_ptr_array_index(attrs->list, i));

		if (!s) {
			proto(error, "LIST attribute is not an atom");
			return NULL;
		}
		for (gsize k = 0; k < G_N_ELEMENTS(mbox_attrs); k++) {
			if (g_ascii_strcasecmp(s, mbox_attrs[k].name) == 0)
				info->attrs |= mbox_attrs[k].attr;
		}
	}
	if (lsub)
		info->attrs |= IMAP_MBOX_SUBSCRIBED;
	if (!delimiter(arg_nth(resp, 2), &info->delim, error))
		return NULL;
	info->name = mailbox_name(arg_nth(resp, 3), utf8, error);
	if (!info->name)
		return NULL;
	/* LIST-EXTENDED: (tag value tag value ...); CHILDINFO, OLDNAME, ... are skipped */
	ext = arg_nth(resp, 4);
	if (ext) {
		if (ext->type != IMAP_ARG_LIST || ext->list->len % 2 != 0) {
			proto(error, "bad LIST extended data");
			return NULL;
		}
		for (guint i = 0; i < ext->list->len; i += 2) {
			if (!clean_astring(g_ptr_array_index(ext->list, i))) {
				proto(error, "bad LIST extended item");
				return NULL;
			}
		}
	}
	return g_steal_pointer(&info);
}

/* ---- STATUS ------------------------------------------------------------------------ */

gboolean
imap_resp_status(const ImapResponse *resp, gboolean utf8, char **mailbox, ImapStatus *out,
		 GError **error)
{
	static const struct {
		const char *name;
		guint bit;
	} items[] = {
		{"MESSAGES", IMAP_STATUS_MESSAGES}, {"RECENT", IMAP_STATUS_RECENT},
		{"UIDNEXT", IMAP_STATUS_UIDNEXT},   {"UIDVALIDITY", IMAP_STATUS_UIDVALIDITY},
		{"UNSEEN", IMAP_STATUS_UNSEEN},	    {"HIGHESTMODSEQ", IMAP_STATUS_HIGHESTMODSEQ},
		{"SIZE", IMAP_STATUS_SIZE},
	};
	ImapStatus st = {0};
	const ImapArg *list;
	g_autofree char *name = NULL;

	if (!is_untagged(resp, "STATUS") || n_args(resp) != 3)
		return proto(error, "not a STATUS response");
	list = arg_nth(resp, 2);
	if (list->type != IMAP_ARG_LIST || list->list->len % 2 != 0)
		return proto(error, "bad STATUS data");
	for (guint i = 0; i < list->list->len; i += 2) {
		const ImapArg *key = g_ptr_array_index(list->list, i);
		const ImapArg *val = g_ptr_array_index(list->list, i + 1);
		guint64 n;

		if (!imap_arg_atom(key))
			return proto(error, "bad STATUS item");
		for (gsize k = 0; k < G_N_ELEMENTS(items); k++) {
			if (!imap_arg_is_atom(key, items[k].name))
				continue;
			if (!imap_arg_number64(val, &n))
				return proto(error, "STATUS %s is not a number", items[k].name);
			if (items[k].bit != IMAP_STATUS_HIGHESTMODSEQ &&
			    items[k].bit != IMAP_STATUS_SIZE && n > G_MAXUINT32)
				return proto(error, "STATUS %s out of range", items[k].name);
			st.have |= items[k].bit;
			switch (items[k].bit) {
			case IMAP_STATUS_MESSAGES:
				st.messages = (guint32)n;
				break;
			case IMAP_STATUS_RECENT:
				st.recent = (guint32)n;
				break;
			case IMAP_STATUS_UIDNEXT:
				st.uidnext = (guint32)n;
				break;
			case IMAP_STATUS_UIDVALIDITY:
				st.uidvalidity = (guint32)n;
				break;
			case IMAP_STATUS_UNSEEN:
				st.unseen = (guint32)n;
				break;
			case IMAP_STATUS_HIGHESTMODSEQ:
				st.highestmodseq = n;
				break;
			case IMAP_STATUS_SIZE:
				st.size = n;
				break;
			default:
				break;
			}
		}
	}
	name = mailbox_name(arg_nth(resp, 1), utf8, error);
	if (!name)
		return FALSE;
	if (mailbox)
		*mailbox = g_steal_pointer(&name);
	if (out)
		*out = st;
	return TRUE;
}

/* ---- FLAGS, numbers ---------------------------------------------------------------- */

char **
imap_resp_flags(const ImapArg *list, GError **error)
{
	g_autoptr(GStrvBuilder) b = NULL;

	if (!list || list->type != IMAP_ARG_LIST) {
		proto(error, "flags are not a list");
		return NULL;
	}
	b = g_strv_builder_new();
	for (guint i = 0; i < list->list->len; i++) {
		const char *s = imap_arg_atom(g_ptr_array_index(list->list, i));

		if (!s || (s[0] == '\\' && s[1] == '\0')) {
			proto(error, "flag is not an atom");
			return NULL;
		}
		g_strv_builder_add(b, s);
	}
	return g_strv_builder_end(b);
}

gboolean
imap_resp_number(const ImapResponse *resp, guint32 *out, GError **error)
{
	ImapUntaggedKind k = imap_resp_untagged_kind(resp);

	if ((k != IMAP_UNTAGGED_EXISTS && k != IMAP_UNTAGGED_RECENT &&
	     k != IMAP_UNTAGGED_EXPUNGE) ||
	    n_args(resp) != 2)
		return proto(error, "not an EXISTS, RECENT or EXPUNGE response");
	if (!imap_arg_number(arg_nth(resp, 0), out))
		return proto(error, "bad number");
	return TRUE;
}

/* ---- FETCH ------------------------------------------------------------------------- */

static GPtrArray *
address_list(const ImapArg *a, GError **error)
{
	g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(address_free);

	if (a && a->type == IMAP_ARG_NIL)
		return g_steal_pointer(&out);
	if (!a || a->type != IMAP_ARG_LIST) {
		proto(error, "address list is neither NIL nor a list");
		return NULL;
	}
	for (guint i = 0; i < a->list->len; i++) {
		const ImapArg *ad = g_ptr_array_index(a->list, i);
		g_autofree char *name = NULL, *adl = NULL, *mailbox = NULL, *host = NULL;
		ImapAddress *addr;

		if (imap_arg_list_len(ad) != 4 || !dup_nstring(imap_arg_list_nth(ad, 0), &name) ||
		    !dup_nstring(imap_arg_list_nth(ad, 1), &adl) ||
		    !dup_nstring(imap_arg_list_nth(ad, 2), &mailbox) ||
		    !dup_nstring(imap_arg_list_nth(ad, 3), &host)) {
			proto(error, "bad address");
			return NULL;
		}
		if (!host && !mailbox)
			continue; /* end of a group */
		addr = g_new0(ImapAddress, 1);
		if (!host) {
			/* start of a group: (NIL NIL "group-name" NIL) */
			addr->name = g_steal_pointer(&mailbox);
		} else {
			addr->name = g_steal_pointer(&name);
			addr->mailbox = g_steal_pointer(&mailbox);
			addr->host = g_steal_pointer(&host);
		}
		g_ptr_array_add(out, addr);
	}
	return g_steal_pointer(&out);
}

static ImapEnvelope *
envelope(const ImapArg *a, GError **error)
{
	g_autoptr(GError) local = NULL;
	ImapEnvelope *env;
	GPtrArray **lists[6];

	if (imap_arg_list_len(a) != 10) {
		proto(error, "ENVELOPE is not a list of 10");
		return NULL;
	}
	env = g_new0(ImapEnvelope, 1);
	lists[0] = &env->from;
	lists[1] = &env->sender;
	lists[2] = &env->reply_to;
	lists[3] = &env->to;
	lists[4] = &env->cc;
	lists[5] = &env->bcc;
	for (guint i = 0; i < 6; i++) {
		if (!local)
			*lists[i] = address_list(imap_arg_list_nth(a, 2 + i), &local);
		if (!*lists[i])
			*lists[i] = g_ptr_array_new_with_free_func(address_free);
	}
	if (!local && (!dup_nstring(imap_arg_list_nth(a, 0), &env->date) ||
		       !dup_nstring(imap_arg_list_nth(a, 1), &env->subject) ||
		       !dup_nstring(imap_arg_list_nth(a, 8), &env->in_reply_to) ||
		       !dup_nstring(imap_arg_list_nth(a, 9), &env->message_id)))
		proto(&local, "bad ENVELOPE string");
	if (local) {
		g_propagate_error(error, g_steal_pointer(&local));
		imap_envelope_free(env);
		return NULL;
	}
	return env;
}

/* Writes @a back as IMAP text. FALSE for a string holding a NUL: BODYSTRUCTURE strings
 * are CHAR8 (RFC 3501 §9), and the result is a C string. */
static gboolean
serialize(GString *out, const ImapArg *a)
{
	switch (a->type) {
	case IMAP_ARG_ATOM:
		g_string_append_len(out, a->str, (gssize)a->len);
		break;
	case IMAP_ARG_NIL:
		g_string_append(out, "NIL");
		break;
	case IMAP_ARG_QUOTED:
	case IMAP_ARG_LITERAL:
		if (!a->str || memchr(a->str, '\0', a->len))
			return FALSE;
		if (memchr(a->str, '\r', a->len) || memchr(a->str, '\n', a->len)) {
			g_string_append_printf(out, "{%" G_GSIZE_FORMAT "}\r\n", a->len);
			g_string_append_len(out, a->str, (gssize)a->len);
			break;
		}
		g_string_append_c(out, '"');
		for (gsize i = 0; i < a->len; i++) {
			if (a->str[i] == '"' || a->str[i] == '\\')
				g_string_append_c(out, '\\');
			g_string_append_c(out, a->str[i]);
		}
		g_string_append_c(out, '"');
		break;
	case IMAP_ARG_LIST:
		g_string_append_c(out, '(');
		for (guint i = 0; i < a->list->len; i++) {
			if (i)
				g_string_append_c(out, ' ');
			if (!serialize(out, g_ptr_array_index(a->list, i)))
				return FALSE;
		}
		g_string_append_c(out, ')');
		break;
	}
	return TRUE;
}

/* Validates "* N FETCH (...)": *seq and the item list. */
static const ImapArg *
fetch_items(const ImapResponse *resp, guint32 *seq, GError **error)
{
	const ImapArg *list;

	if (imap_resp_untagged_kind(resp) != IMAP_UNTAGGED_FETCH || n_args(resp) != 3) {
		proto(error, "not a FETCH response");
		return NULL;
	}
	list = arg_nth(resp, 2);
	if (!imap_arg_number(arg_nth(resp, 0), seq) || list->type != IMAP_ARG_LIST ||
	    list->list->len % 2 != 0) {
		proto(error, "bad FETCH data");
		return NULL;
	}
	for (guint i = 0; i < list->list->len; i += 2) {
		if (!imap_arg_atom(g_ptr_array_index(list->list, i))) {
			proto(error, "FETCH item name is not an atom");
			return NULL;
		}
	}
	return list;
}

/* "BODY[HEADER.FIELDS (...)]": the only header field set this client asks for is
 * IMAP_FETCH_REFERENCES' (servers echo the list, with or without quotes). */
static gboolean
is_header_fields(const ImapArg *key)
{
	const char *s = imap_arg_atom(key);

	return s && g_ascii_strncasecmp(s, "BODY[HEADER.FIELDS ", 19) == 0;
}

/* The value of header field @name in the header block @text (@len bytes, not
 * NUL-terminated in general), unfolded: line breaks dropped, each run of white space made
 * one space, trimmed. NULL when the field is absent; the first one wins. */
static char *
header_field(const char *text, gsize len, const char *name)
{
	gsize nlen = strlen(name);
	const char *end = text + len;

	for (const char *p = text; p < end;) {
		const char *eol = memchr(p, '\n', end - p);
		const char *next = eol ? eol + 1 : end;

		if ((gsize)(end - p) > nlen && p[nlen] == ':' &&
		    g_ascii_strncasecmp(p, name, nlen) == 0) {
			GString *v = g_string_new(NULL);
			gboolean space = FALSE;

			/* the value runs on over continuation lines (starting with SP or HT) */
			for (const char *q = p + nlen + 1; q < end; q++) {
				if (*q == '\n' && !(q + 1 < end && (q[1] == ' ' || q[1] == '\t')))
					break;
				if (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n') {
					space = TRUE;
				} else if (*q != '\0') {
					if (space && v->len > 0)
						g_string_append_c(v, ' ');
					space = FALSE;
					g_string_append_c(v, *q);
				}
			}
			return g_string_free(v, FALSE);
		}
		p = next;
	}
	return NULL;
}

ImapMessage *
imap_resp_fetch(const ImapResponse *resp, guint32 *seq, GError **error)
{
	g_autoptr(ImapMessage) msg = NULL;
	const ImapArg *list;
	guint32 n;

	list = fetch_items(resp, &n, error);
	if (!list)
		return NULL;
	msg = g_new0(ImapMessage, 1);
	for (guint i = 0; i < list->list->len; i += 2) {
		const ImapArg *key = g_ptr_array_index(list->list, i);
		const ImapArg *val = g_ptr_array_index(list->list, i + 1);

		if (imap_arg_is_atom(key, "UID")) {
			if (!imap_arg_number(val, &msg->uid) || msg->uid == 0) {
				proto(error, "bad UID");
				return NULL;
			}
			msg->have |= IMAP_FETCH_UID;
		} else if (imap_arg_is_atom(key, "FLAGS")) {
			g_strfreev(msg->flags);
			msg->flags = imap_resp_flags(val, error);
			if (!msg->flags)
				return NULL;
			msg->have |= IMAP_FETCH_FLAGS;
		} else if (imap_arg_is_atom(key, "RFC822.SIZE")) {
			/* NIL where a number belongs (seen in the wild): no size, the reader
			 * learns it from the body (liberal in what we accept) */
			if (val->type == IMAP_ARG_NIL)
				continue;
			if (!imap_arg_number64(val, &msg->size)) {
				proto(error, "bad RFC822.SIZE");
				return NULL;
			}
			msg->have |= IMAP_FETCH_SIZE;
		} else if (imap_arg_is_atom(key, "INTERNALDATE")) {
			const char *s = imap_arg_string(val);

			if (val->type == IMAP_ARG_NIL)
				continue; /* no date: the caller falls back */
			if (!s || strlen(s) != val->len ||
			    !imap_parse_datetime(s, &msg->internaldate, &msg->internaldate_tz)) {
				proto(error, "bad INTERNALDATE");
				return NULL;
			}
			msg->have |= IMAP_FETCH_INTERNALDATE;
		} else if (imap_arg_is_atom(key, "ENVELOPE")) {
			if (val->type == IMAP_ARG_NIL)
				continue; /* no envelope: the caller shows the message without */
			imap_envelope_free(msg->envelope);
			msg->envelope = envelope(val, error);
			if (!msg->envelope)
				return NULL;
			msg->have |= IMAP_FETCH_ENVELOPE;
		} else if (imap_arg_is_atom(key, "MODSEQ")) {
			if (imap_arg_list_len(val) != 1 ||
			    !imap_arg_number64(imap_arg_list_nth(val, 0), &msg->modseq)) {
				proto(error, "bad MODSEQ");
				return NULL;
			}
			msg->have |= IMAP_FETCH_MODSEQ;
		} else if (imap_arg_is_atom(key, "BODY[HEADER]") ||
			   imap_arg_is_atom(key, "RFC822.HEADER")) {
			gboolean nil = FALSE;
			const char *s = imap_arg_nstring(val, &nil);

			if (val->type == IMAP_ARG_LITERAL && val->streamed)
				continue; /* went to the sink */
			if (!s && !nil) {
				proto(error, "bad BODY[HEADER]");
				return NULL;
			}
			if (msg->header)
				g_bytes_unref(msg->header);
			msg->header = g_bytes_new(s ? s : "", s ? val->len : 0);
			msg->have |= IMAP_FETCH_HEADER;
		} else if (imap_arg_is_atom(key, "BODYSTRUCTURE")) {
			GString *bs;

			if (val->type != IMAP_ARG_LIST) {
				proto(error, "BODYSTRUCTURE is not a list");
				return NULL;
			}
			bs = g_string_new(NULL);
			if (!serialize(bs, val)) {
				g_string_free(bs, TRUE);
				proto(error, "BODYSTRUCTURE holds a NUL or a streamed literal");
				return NULL;
			}
			g_free(msg->bodystructure);
			msg->bodystructure = g_string_free(bs, FALSE);
			msg->have |= IMAP_FETCH_BODYSTRUCTURE;
		} else if (is_header_fields(key)) {
			gboolean nil = FALSE;
			const char *s = imap_arg_nstring(val, &nil);

			if (val->type == IMAP_ARG_LITERAL && val->streamed)
				continue; /* went to the sink */
			if (!s && !nil) {
				proto(error, "bad BODY[HEADER.FIELDS]");
				return NULL;
			}
			g_free(msg->references);
			msg->references = s ? header_field(s, val->len, "References") : NULL;
			msg->have |= IMAP_FETCH_REFERENCES;
		}
		/* anything else (BODY[...], X-GM-*, EMAILID, ...) is skipped */
	}
	if (seq)
		*seq = n;
	return g_steal_pointer(&msg);
}

/* "BODY[sec]<origin>" / "BINARY[sec]<origin>" (and .PEEK): section text and origin. */
static gboolean
section_atom(const char *s, char **section, gint64 *origin)
{
	const char *open = strchr(s, '[');
	const char *close;
	gsize plen;

	if (!open)
		return FALSE;
	plen = (gsize)(open - s);
	if (!((plen == 4 && g_ascii_strncasecmp(s, "BODY", 4) == 0) ||
	      (plen == 6 && g_ascii_strncasecmp(s, "BINARY", 6) == 0)))
		return FALSE;
	close = strrchr(open, ']');
	if (!close)
		return FALSE;
	*origin = -1;
	if (close[1] == '<') {
		const char *d = close + 2;
		gint64 v = 0;

		if (*d == '>')
			return FALSE;
		for (; *d >= '0' && *d <= '9'; d++) {
			if (v > (G_MAXINT64 - 9) / 10)
				return FALSE;
			v = v * 10 + (*d - '0');
		}
		if (d[0] != '>' || d[1] != '\0')
			return FALSE;
		*origin = v;
	} else if (close[1] != '\0') {
		return FALSE;
	}
	*section = g_strndup(open + 1, (gsize)(close - open - 1));
	return TRUE;
}

gboolean
imap_resp_fetch_section(const ImapResponse *resp, ImapFetchSection *out, GError **error)
{
	const ImapArg *list;
	guint32 seq;

	list = fetch_items(resp, &seq, error);
	if (!list)
		return FALSE;
	for (guint i = 0; i < list->list->len; i += 2) {
		const ImapArg *key = g_ptr_array_index(list->list, i);
		const ImapArg *val = g_ptr_array_index(list->list, i + 1);
		char *section = NULL;
		gint64 origin;

		if (!section_atom(imap_arg_atom(key), &section, &origin))
			continue;
		if (g_ascii_strcasecmp(section, "HEADER") == 0 && origin < 0) {
			g_free(section);
			continue; /* decoded by imap_resp_fetch() */
		}
		if (val->type != IMAP_ARG_QUOTED && val->type != IMAP_ARG_LITERAL &&
		    val->type != IMAP_ARG_NIL) {
			g_free(section);
			return proto(error, "FETCH section data is not an nstring");
		}
		if (out) {
			out->section = section;
			out->origin = origin;
			out->data = val;
		} else {
			g_free(section);
		}
		return TRUE;
	}
	return FALSE;
}

/* ---- SEARCH, ESEARCH, VANISHED ----------------------------------------------------- */

ImapUidSet *
imap_resp_search(const ImapResponse *resp, guint64 *modseq, GError **error)
{
	g_autoptr(ImapUidSet) set = NULL;
	guint64 ms = 0;
	guint n = n_args(resp);

	if (!is_untagged(resp, "SEARCH")) {
		proto(error, "not a SEARCH response");
		return NULL;
	}
	set = imap_uidset_new();
	for (guint i = 1; i < n; i++) {
		const ImapArg *a = arg_nth(resp, i);
		guint32 uid;

		if (a->type == IMAP_ARG_LIST && i == n - 1) {
			/* (MODSEQ n), RFC 7162 */
			if (imap_arg_list_len(a) != 2 ||
			    !imap_arg_is_atom(imap_arg_list_nth(a, 0), "MODSEQ") ||
			    !imap_arg_number64(imap_arg_list_nth(a, 1), &ms)) {
				proto(error, "bad SEARCH MODSEQ");
				return NULL;
			}
			continue;
		}
		if (!imap_arg_number(a, &uid) || uid == 0) {
			proto(error, "bad number in SEARCH");
			return NULL;
		}
		imap_uidset_add(set, uid);
	}
	if (modseq)
		*modseq = ms;
	return g_steal_pointer(&set);
}

static ImapUidSet *
parse_set(const ImapArg *a, GError **error)
{
	const char *s = imap_arg_atom(a);
	ImapUidSet *set;

	if (!s) {
		proto(error, "sequence set is not an atom");
		return NULL;
	}
	set = imap_uidset_parse(s, error);
	return set;
}

ImapUidSet *
imap_resp_esearch(const ImapResponse *resp, char **tag, GError **error)
{
	g_autoptr(ImapUidSet) set = NULL;
	g_autofree char *t = NULL;
	guint i = 1, n = n_args(resp);
	const ImapArg *a;

	if (!is_untagged(resp, "ESEARCH")) {
		proto(error, "not an ESEARCH response");
		return NULL;
	}
	a = arg_nth(resp, i);
	if (a && a->type == IMAP_ARG_LIST) {
		/* search-correlator: (TAG "x" [MAILBOX m UIDVALIDITY n]) */
		if (imap_arg_list_len(a) < 2 || imap_arg_list_len(a) % 2 != 0 ||
		    !imap_arg_is_atom(imap_arg_list_nth(a, 0), "TAG") ||
		    !clean_astring(imap_arg_list_nth(a, 1))) {
			proto(error, "bad ESEARCH correlator");
			return NULL;
		}
		t = g_strdup(imap_arg_astring(imap_arg_list_nth(a, 1)));
		i++;
	}
	if (imap_arg_is_atom(arg_nth(resp, i), "UID"))
		i++;
	if ((n - i) % 2 != 0) {
		proto(error, "bad ESEARCH data");
		return NULL;
	}
	set = imap_uidset_new();
	for (; i < n; i += 2) {
		const ImapArg *key = arg_nth(resp, i);
		const ImapArg *val = arg_nth(resp, i + 1);
		guint32 v;

		if (!imap_arg_atom(key)) {
			proto(error, "bad ESEARCH item");
			return NULL;
		}
		if (imap_arg_is_atom(key, "ALL")) {
			g_autoptr(ImapUidSet) all = parse_set(val, error);

			if (!all)
				return NULL;
			imap_uidset_free(set);
			set = imap_uidset_dup(all);
		} else if (imap_arg_is_atom(key, "MIN") || imap_arg_is_atom(key, "MAX")) {
			if (!imap_arg_number(val, &v) || v == 0) {
				proto(error, "bad ESEARCH MIN/MAX");
				return NULL;
			}
			imap_uidset_add(set, v);
		} else if (imap_arg_is_atom(key, "COUNT")) {
			if (!imap_arg_number(val, &v)) {
				proto(error, "bad ESEARCH COUNT");
				return NULL;
			}
		}
		/* MODSEQ, PARTIAL, ... skipped */
	}
	if (tag)
		*tag = g_steal_pointer(&t);
	return g_steal_pointer(&set);
}

ImapUidSet *
imap_resp_vanished(const ImapResponse *resp, gboolean *earlier, GError **error)
{
	const ImapArg *a;
	gboolean e = FALSE;
	ImapUidSet *set;
	guint i = 1;

	if (!is_untagged(resp, "VANISHED")) {
		proto(error, "not a VANISHED response");
		return NULL;
	}
	a = arg_nth(resp, 1);
	if (a && a->type == IMAP_ARG_LIST) {
		if (imap_arg_list_len(a) != 1 ||
		    !imap_arg_is_atom(imap_arg_list_nth(a, 0), "EARLIER")) {
			proto(error, "bad VANISHED modifier");
			return NULL;
		}
		e = TRUE;
		i++;
	}
	if (n_args(resp) != i + 1) {
		proto(error, "bad VANISHED response");
		return NULL;
	}
	set = parse_set(arg_nth(resp, i), error);
	if (set && earlier)
		*earlier = e;
	return set;
}

/* ---- QUOTA ------------------------------------------------------------------------- */

gboolean
imap_resp_quota(const ImapResponse *resp, ImapQuota *out, GError **error)
{
	ImapQuota q = {0};
	const ImapArg *list;
	const char *root;

	if (!is_untagged(resp, "QUOTA") || n_args(resp) != 3)
		return proto(error, "not a QUOTA response");
	root = clean_astring(arg_nth(resp, 1));
	list = arg_nth(resp, 2);
	if (!root || list->type != IMAP_ARG_LIST || list->list->len % 3 != 0)
		return proto(error, "bad QUOTA data");
	q.storage_limit_kb = G_MAXUINT64;
	q.messages_limit = G_MAXUINT64;
	for (guint i = 0; i < list->list->len; i += 3) {
		const ImapArg *name = g_ptr_array_index(list->list, i);
		guint64 used, limit;

		if (!imap_arg_atom(name) ||
		    !imap_arg_number64(g_ptr_array_index(list->list, i + 1), &used) ||
		    !imap_arg_number64(g_ptr_array_index(list->list, i + 2), &limit))
			return proto(error, "bad QUOTA resource");
		if (imap_arg_is_atom(name, "STORAGE")) {
			q.storage_used_kb = used;
			q.storage_limit_kb = limit;
		} else if (imap_arg_is_atom(name, "MESSAGE")) {
			q.messages_used = used;
			q.messages_limit = limit;
		}
	}
	if (out) {
		q.root = g_strdup(root);
		*out = q;
	}
	return TRUE;
}

char **
imap_resp_quotaroot(const ImapResponse *resp, gboolean utf8, GError **error)
{
	g_autoptr(GStrvBuilder) b = NULL;
	g_autofree char *mbox = NULL;

	if (!is_untagged(resp, "QUOTAROOT") || n_args(resp) < 2) {
		proto(error, "not a QUOTAROOT response");
		return NULL;
	}
	mbox = mailbox_name(arg_nth(resp, 1), utf8, error);
	if (!mbox)
		return NULL;
	b = g_strv_builder_new();
	for (guint i = 2; i < n_args(resp); i++) {
		const char *s = clean_astring(arg_nth(resp, i));

		if (!s) {
			proto(error, "bad quota root");
			return NULL;
		}
		g_strv_builder_add(b, s);
	}
	return g_strv_builder_end(b);
}

/* ---- response codes ---------------------------------------------------------------- */

static const ImapArg *
code_arg(const ImapResponse *resp, const char *code, guint n_expected, guint i)
{
	if (!resp->code || g_ascii_strcasecmp(resp->code, code) != 0 ||
	    resp->code_args->len != n_expected)
		return NULL;
	return g_ptr_array_index(resp->code_args, i);
}

gboolean
imap_resp_code_appenduid(const ImapResponse *resp, guint32 *uidvalidity, guint32 *uid)
{
	guint32 v, u;

	if (!imap_arg_number(code_arg(resp, "APPENDUID", 2, 0), &v) || v == 0 ||
	    !imap_arg_number(code_arg(resp, "APPENDUID", 2, 1), &u) || u == 0)
		return FALSE;
	if (uidvalidity)
		*uidvalidity = v;
	if (uid)
		*uid = u;
	return TRUE;
}

gboolean
imap_resp_code_copyuid(const ImapResponse *resp, guint32 *uidvalidity, ImapUidSet **src,
		       ImapUidSet **dst)
{
	g_autoptr(ImapUidSet) s = NULL;
	g_autoptr(ImapUidSet) d = NULL;
	guint32 v;

	if (!imap_arg_number(code_arg(resp, "COPYUID", 3, 0), &v) || v == 0)
		return FALSE;
	s = parse_set(code_arg(resp, "COPYUID", 3, 1), NULL);
	d = parse_set(code_arg(resp, "COPYUID", 3, 2), NULL);
	if (!s || !d || imap_uidset_count(s) != imap_uidset_count(d) ||
	    imap_uidset_contains(s, G_MAXUINT32) || imap_uidset_contains(d, G_MAXUINT32) ||
	    imap_uidset_contains(s, 0) || imap_uidset_contains(d, 0))
		return FALSE;
	if (uidvalidity)
		*uidvalidity = v;
	if (src)
		*src = g_steal_pointer(&s);
	if (dst)
		*dst = g_steal_pointer(&d);
	return TRUE;
}

gboolean
imap_resp_code_number(const ImapResponse *resp, const char *code, guint64 *out)
{
	return imap_arg_number64(code_arg(resp, code, 1, 0), out);
}

ImapUidSet *
imap_resp_code_modified(const ImapResponse *resp)
{
	return parse_set(code_arg(resp, "MODIFIED", 1, 0), NULL);
}

ImapErrorCode
imap_resp_error_code(const ImapResponse *resp, ImapErrorCode fallback)
{
	if (!resp || (resp->status != IMAP_STATUS_NO && resp->status != IMAP_STATUS_BAD))
		return fallback;
	return imap_error_from_code(resp->code, fallback);
}

/* ---- date-time --------------------------------------------------------------------- */

static gboolean
digits(const char **p, guint n, gint *out)
{
	gint v = 0;

	for (guint i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return FALSE;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return TRUE;
}

gboolean
imap_parse_datetime(const char *text, gint64 *utc, gint *tz_minutes)
{
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	const char *p = text;
	gint day, month = 0, year, hour, min, sec, zh, zm, sign;
	g_autoptr(GDateTime) dt = NULL;

	if (!p)
		return FALSE;
	/* date-day-fixed: SP DIGIT / 2DIGIT (a single digit is accepted too) */
	if (*p == ' ')
		p++;
	if (!digits(&p, 2, &day) && !digits(&p, 1, &day))
		return FALSE;
	if (*p++ != '-')
		return FALSE;
	for (int i = 0; i < 12; i++) {
		if (g_ascii_strncasecmp(p, months[i], 3) == 0) {
			month = i + 1;
			break;
		}
	}
	if (!month)
		return FALSE;
	p += 3;
	if (*p++ != '-' || !digits(&p, 4, &year) || *p++ != ' ' || !digits(&p, 2, &hour) ||
	    *p++ != ':' || !digits(&p, 2, &min) || *p++ != ':' || !digits(&p, 2, &sec) ||
	    *p++ != ' ')
		return FALSE;
	if (*p == '+')
		sign = 1;
	else if (*p == '-')
		sign = -1;
	else
		return FALSE;
	p++;
	if (!digits(&p, 2, &zh) || !digits(&p, 2, &zm) || *p != '\0' || zm > 59 || hour > 23 ||
	    min > 59 || sec > 60 || year < 1)
		return FALSE;
	if (sec == 60)
		sec = 59; /* leap second */
	dt = g_date_time_new_utc(year, month, day, hour, min, sec);
	if (!dt)
		return FALSE;
	if (tz_minutes)
		*tz_minutes = sign * (zh * 60 + zm);
	if (utc)
		*utc = g_date_time_to_unix(dt) - (gint64)sign * (zh * 3600 + zm * 60);
	return TRUE;
}

gboolean
imap_resp_notify(const ImapResponse *resp, gboolean utf8, ImapNotifyKind *kind, char **mailbox,
		 ImapStatus *status, GError **error)
{
	*mailbox = NULL;
	memset(status, 0, sizeof(*status));
	switch (imap_resp_untagged_kind(resp)) {
	case IMAP_UNTAGGED_STATUS_DATA:
		*kind = IMAP_NOTIFY_STATUS;
		return imap_resp_status(resp, utf8, mailbox, status, error);
	case IMAP_UNTAGGED_LIST:
	case IMAP_UNTAGGED_LSUB: {
		ImapMailboxInfo *info = imap_resp_list(resp, utf8, error);

		if (info == NULL)
			return FALSE;
		*kind = IMAP_NOTIFY_MAILBOXES;
		*mailbox = g_steal_pointer(&info->name);
		imap_mailbox_info_free(info);
		return TRUE;
	}
	case IMAP_UNTAGGED_EXISTS:
	case IMAP_UNTAGGED_EXPUNGE:
	case IMAP_UNTAGGED_VANISHED:
	case IMAP_UNTAGGED_FETCH:
		*kind = IMAP_NOTIFY_SELECTED;
		return TRUE;
	default:
		return FALSE;
	}
}
