/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store.c: the account object (pool, folder table, namespaces, quota) and the accessors
 * of folders and messages. Folder listings live in mailbox.c, bodies in body.c. No FUSE,
 * no errno, no file names here (STYLE.md §1).
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <string.h>

#include "store-private.h"

G_DEFINE_QUARK(store - error - quark, store_error)

void
store_namespace_free(StoreNamespace *ns)
{
	if (ns == NULL)
		return;
	g_free(ns->prefix);
	g_free(ns);
}

static void
folder_free(StoreFolder *f)
{
	g_free(f->name);
	g_clear_pointer(&f->by_uid, g_hash_table_unref);
	g_clear_pointer(&f->sorted, g_ptr_array_unref);
	g_free(f);
}

StoreFolder *
store_folder_ref(StoreFolder *folder)
{
	g_atomic_int_inc(&folder->ref);
	return folder;
}

void
store_folder_unref(StoreFolder *folder)
{
	if (folder != NULL && g_atomic_int_dec_and_test(&folder->ref))
		folder_free(folder);
}

Store *
store_new(const ImapConfig *cfg)
{
	Store *store = g_new0(Store, 1);

	store_mime_init();
	store->pool = imap_pool_new(cfg);
	g_mutex_init(&store->lock);
	g_cond_init(&store->cond);
	store->folders = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					       (GDestroyNotify)store_folder_unref);
	store->bodies = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_queue_init(&store->body_lru);
	return store;
}

void
store_free(Store *store)
{
	if (store == NULL)
		return;
	store_body_cache_clear(store);
	g_hash_table_unref(store->bodies);
	g_hash_table_unref(store->folders);
	g_free(store->quota.root);
	imap_pool_free(store->pool);
	g_mutex_clear(&store->lock);
	g_cond_clear(&store->cond);
	g_free(store);
}

gboolean
store_connect_sync(Store *store, GCancellable *cancel, GError **error)
{
	if (!imap_pool_connect_sync(store->pool, cancel, error))
		return FALSE;
	store->condstore = imap_pool_has_capability(store->pool, "CONDSTORE") ||
			   imap_pool_has_capability(store->pool, "QRESYNC");
	return TRUE;
}

void
store_get_stats(Store *store, ImapStats *out)
{
	imap_pool_get_stats(store->pool, out);
}

static void
add_namespaces(GPtrArray *out, GPtrArray *list, StoreNsKind kind)
{
	if (list == NULL)
		return;
	for (guint i = 0; i < list->len; i++) {
		ImapNamespace *in = g_ptr_array_index(list, i);
		StoreNamespace *ns = g_new0(StoreNamespace, 1);

		ns->kind = kind;
		ns->index = i;
		ns->prefix = g_strdup(in->prefix ? in->prefix : "");
		ns->delim = in->delim;
		g_ptr_array_add(out, ns);
	}
}

/* The account's namespaces (NAMESPACE, or one personal namespace guessed from LIST). */
static GPtrArray *
get_namespaces(Store *store, GPtrArray *infos, GCancellable *cancel, GError **error)
{
	g_autoptr(GPtrArray) nss =
		g_ptr_array_new_with_free_func((GDestroyNotify)store_namespace_free);
	g_autoptr(ImapNamespaces) ins = NULL;
	g_autoptr(GError) ns_error = NULL;

	if (imap_pool_has_capability(store->pool, "NAMESPACE")) {
		if (!imap_namespace_sync(store->pool, &ins, cancel, &ns_error)) {
			if (g_error_matches(ns_error, IMAP_ERROR, IMAP_ERROR_DISCONNECTED) ||
			    g_error_matches(ns_error, IMAP_ERROR, IMAP_ERROR_TIMEOUT)) {
				g_propagate_error(error, g_steal_pointer(&ns_error));
				return NULL;
			}
			g_message("NAMESPACE failed, assuming one personal namespace: %s",
				  ns_error->message);
		}
	}
	if (ins != NULL) {
		add_namespaces(nss, ins->personal, STORE_NS_PERSONAL);
		add_namespaces(nss, ins->other, STORE_NS_OTHER);
		add_namespaces(nss, ins->shared, STORE_NS_SHARED);
	}
	if (nss->len == 0 ||
	    ((StoreNamespace *)g_ptr_array_index(nss, 0))->kind != STORE_NS_PERSONAL) {
		StoreNamespace *ns = g_new0(StoreNamespace, 1);

		ns->kind = STORE_NS_PERSONAL;
		ns->prefix = g_strdup("");
		ns->delim = '/';
		for (guint i = 0; i < infos->len; i++) {
			ImapMailboxInfo *mi = g_ptr_array_index(infos, i);

			if (mi->delim) {
				ns->delim = mi->delim;
				break;
			}
		}
		g_ptr_array_insert(nss, 0, ns);
	}
	return g_steal_pointer(&nss);
}

GPtrArray *
store_list_folders_sync(Store *store, GPtrArray **namespaces, GCancellable *cancel, GError **error)
{
	g_autoptr(GPtrArray) infos = NULL;
	g_autoptr(GPtrArray) nss = NULL;
	GPtrArray *out;

	infos = imap_list_all_sync(store->pool, FALSE, cancel, error);
	if (infos == NULL)
		return NULL;
	if (namespaces != NULL) {
		nss = get_namespaces(store, infos, cancel, error);
		if (nss == NULL)
			return NULL;
	}
	out = g_ptr_array_new_with_free_func((GDestroyNotify)store_folder_unref);
	g_mutex_lock(&store->lock);
	for (guint i = 0; i < infos->len; i++) {
		ImapMailboxInfo *mi = g_ptr_array_index(infos, i);
		StoreFolder *f;

		if (mi->name == NULL)
			continue;
		/* A folder object lives as long as the store: its attributes are those
		 * of the first LIST (a later LIST only adds folders). */
		f = g_hash_table_lookup(store->folders, mi->name);
		if (f == NULL) {
			f = g_new0(StoreFolder, 1);
			f->ref = 1;
			f->name = g_strdup(mi->name);
			f->delim = mi->delim;
			f->attrs = mi->attrs;
			g_hash_table_replace(store->folders, f->name, f);
		}
		g_ptr_array_add(out, store_folder_ref(f));
	}
	g_mutex_unlock(&store->lock);
	if (namespaces != NULL)
		*namespaces = g_steal_pointer(&nss);
	return out;
}

gboolean
store_quota_sync(Store *store, ImapQuota *out, GCancellable *cancel, GError **error)
{
	ImapQuota q = {0};
	gint64 now = g_get_monotonic_time();

	g_mutex_lock(&store->lock);
	if (store->quota_valid && now - store->quota_time < 60 * G_USEC_PER_SEC) {
		*out = store->quota;
		out->root = g_strdup(store->quota.root);
		g_mutex_unlock(&store->lock);
		return TRUE;
	}
	g_mutex_unlock(&store->lock);
	if (!imap_pool_has_capability(store->pool, "QUOTA")) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED, "no QUOTA");
		return FALSE;
	}
	if (!imap_quota_sync(store->pool, "INBOX", &q, cancel, error))
		return FALSE;
	g_mutex_lock(&store->lock);
	g_free(store->quota.root);
	store->quota = q;
	store->quota_valid = TRUE;
	store->quota_time = now;
	*out = q;
	out->root = g_strdup(q.root);
	g_mutex_unlock(&store->lock);
	return TRUE;
}

const char *
store_folder_get_name(StoreFolder *folder)
{
	return folder->name;
}

char
store_folder_get_delim(StoreFolder *folder)
{
	return folder->delim;
}

guint
store_folder_get_attrs(StoreFolder *folder)
{
	return folder->attrs;
}

gboolean
store_folder_is_selectable(StoreFolder *folder)
{
	return !(folder->attrs & (IMAP_MBOX_NOSELECT | IMAP_MBOX_NONEXISTENT));
}

const char *
store_folder_get_special_use(StoreFolder *folder)
{
	static const struct {
		guint bit;
		const char *name;
	} uses[] = {
		{IMAP_MBOX_ALL, "\\All"},	{IMAP_MBOX_ARCHIVE, "\\Archive"},
		{IMAP_MBOX_DRAFTS, "\\Drafts"}, {IMAP_MBOX_FLAGGED, "\\Flagged"},
		{IMAP_MBOX_JUNK, "\\Junk"},	{IMAP_MBOX_SENT, "\\Sent"},
		{IMAP_MBOX_TRASH, "\\Trash"},	{IMAP_MBOX_IMPORTANT, "\\Important"},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(uses); i++)
		if (folder->attrs & uses[i].bit)
			return uses[i].name;
	return NULL;
}

gboolean
store_folder_status_sync(Store *store, StoreFolder *folder, ImapStatus *out, GCancellable *cancel,
			 GError **error)
{
	guint items = IMAP_STATUS_MESSAGES | IMAP_STATUS_UNSEEN | IMAP_STATUS_UIDVALIDITY |
		      IMAP_STATUS_UIDNEXT;

	if (!store_folder_is_selectable(folder)) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_NOT_FOUND, "%s cannot hold messages",
			    folder->name);
		return FALSE;
	}
	if (store->condstore)
		items |= IMAP_STATUS_HIGHESTMODSEQ;
	memset(out, 0, sizeof(*out));
	return imap_status_sync(store->pool, folder->name, items, out, cancel, error);
}

/* ---- messages ---------------------------------------------------------------------- */

/* The flags as the user sees them: \Recent is a per-session marker that can be neither
 * set nor cleared (and is gone in IMAP4rev2), so it is left out. */
static char **
copy_flags(char **flags)
{
	GPtrArray *a = g_ptr_array_new();

	for (guint i = 0; flags != NULL && flags[i]; i++)
		if (g_ascii_strcasecmp(flags[i], "\\Recent") != 0)
			g_ptr_array_add(a, g_strdup(flags[i]));
	g_ptr_array_add(a, NULL);
	return (char **)g_ptr_array_free(a, FALSE);
}

StoreMessage *
store_message_new_from_imap(const char *mailbox, guint32 uidvalidity, const ImapMessage *m)
{
	StoreMessage *msg = g_new0(StoreMessage, 1);
	StoreMessageInfo *i = &msg->info;

	msg->ref = 1;
	i->mailbox = g_strdup(mailbox);
	i->uidvalidity = uidvalidity;
	i->uid = m->uid;
	i->internaldate = m->internaldate;
	i->internaldate_tz = m->internaldate_tz;
	if (m->envelope != NULL) {
		ImapEnvelope *e = m->envelope;

		i->subject = store_mime_decode_text(e->subject);
		i->from = store_mime_format_addresses(e->from);
		i->to = store_mime_format_addresses(e->to);
		i->date = store_mime_decode_text(e->date);
		i->message_id = store_mime_decode_text(e->message_id);
	}
	msg->size = m->size;
	msg->modseq = m->modseq;
	msg->flags = copy_flags(m->flags);
	return msg;
}

void
store_message_update_locked(StoreMessage *msg, const ImapMessage *m)
{
	if (m->have & IMAP_FETCH_FLAGS) {
		g_strfreev(msg->flags);
		msg->flags = copy_flags(m->flags);
	}
	if (m->have & IMAP_FETCH_MODSEQ)
		msg->modseq = m->modseq;
	if ((m->have & IMAP_FETCH_SIZE) && !msg->size_exact)
		msg->size = m->size;
}

StoreMessage *
store_message_ref(StoreMessage *msg)
{
	g_atomic_int_inc(&msg->ref);
	return msg;
}

void
store_message_unref(StoreMessage *msg)
{
	StoreMessageInfo *i;

	if (msg == NULL || !g_atomic_int_dec_and_test(&msg->ref))
		return;
	i = &msg->info;
	g_free((char *)i->mailbox);
	g_free((char *)i->subject);
	g_free((char *)i->from);
	g_free((char *)i->to);
	g_free((char *)i->date);
	g_free((char *)i->message_id);
	g_strfreev(msg->flags);
	g_free(msg);
}

const StoreMessageInfo *
store_message_get_info(StoreMessage *msg)
{
	return &msg->info;
}

void
store_message_get_state(Store *store, StoreMessage *msg, StoreMessageState *out)
{
	g_mutex_lock(&store->lock);
	out->size = msg->size;
	out->size_exact = msg->size_exact;
	out->modseq = msg->modseq;
	out->flags = g_strdupv(msg->flags);
	g_mutex_unlock(&store->lock);
	if (out->flags == NULL)
		out->flags = g_new0(char *, 1);
}

guint64
store_message_get_size(Store *store, StoreMessage *msg)
{
	guint64 size;

	g_mutex_lock(&store->lock);
	size = msg->size;
	g_mutex_unlock(&store->lock);
	return size;
}

void
store_message_state_clear(StoreMessageState *state)
{
	g_clear_pointer(&state->flags, g_strfreev);
}
