/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store.c: the account object: its lifecycle (pool, folder table, cancellation of every
 * call), the opening of the on-disk caches (hcache.c, bodycache.c) with the folder list and
 * namespaces they remember for offline mounts, the offline state, the folder LIST,
 * namespaces, quota and the event hook, and the accessors of folders. Messages live in
 * message.c, folder listings in resync.c, bodies in body.c, the background downloader in
 * downloader.c; this file calls them only to start and stop them (store_open_cache,
 * store_free). No FUSE, no errno, no file names here (STYLE.md §1).
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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
	g_clear_pointer(&f->msgs, g_ptr_array_unref);
	g_clear_pointer(&f->pins, g_hash_table_unref);
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

/* A pool connection heard an unsolicited EXISTS, EXPUNGE, VANISHED or FETCH for
 * @mailbox: its listing is due for a resync at the next request whatever its age (the
 * resync's merge then emits the events). */
static void
heard_change(const char *mailbox, guint32 uidvalidity, guint changed, gpointer data)
{
	Store *store = data;
	StoreFolder *f;

	g_mutex_lock(&store->lock);
	f = g_hash_table_lookup(store->folders, mailbox);
	if (f != NULL && f->loaded && f->uidvalidity == uidvalidity) {
		g_debug("%s: the server announced changes (%#x): resync due", mailbox, changed);
		f->loaded_at = STORE_STALE;
	} else {
		f = NULL;
	}
	g_mutex_unlock(&store->lock);
	if (f != NULL) /* and with a watcher, soon, not at the next opendir */
		store_watch_heard(store, mailbox);
}

Store *
store_new(const ImapConfig *cfg)
{
	Store *store = g_new0(Store, 1);

	store_mime_init();
	store->pool = imap_pool_new(cfg);
	imap_pool_set_changed_handler(store->pool, heard_change, store);
	store->inflight = store_inflight_group_new();
	store->idle_us = (gint64)(cfg->timeout_ms ? cfg->timeout_ms : 30000) * 1000;
	g_mutex_init(&store->lock);
	g_mutex_init(&store->folders_emit);
	g_cond_init(&store->cond);
	store->folders = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					       (GDestroyNotify)store_folder_unref);
	store->bodies = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_queue_init(&store->body_lru);
	store->retry_us = 15 * G_USEC_PER_SEC;
	store->crash_at = g_strdup(g_getenv("IMAPFS_TEST_CRASH_AT"));
	return store;
}

void
store_free(Store *store)
{
	if (store == NULL)
		return;
	store_cancel_all(store);
	/* the watcher resyncs (shared loads), which flush rm's write-behind */
	store_watch_stop(store);
	/* rm's flusher and expunger threads use the pool and the caches */
	store_batch_free(store);
	store_expunge_free(store);
	g_clear_pointer(&store->rehide, g_hash_table_unref);
	/* the shared operations' workers feed the downloader's queue: end them first (the
	 * downloader's own starts then fail at once) */
	store_inflight_group_join(store->inflight);
	/* the downloader uses the pool, the committer's writer path and the caches */
	store_sync_stop(store);
	g_clear_pointer(&store->inflight, store_inflight_group_free);
	store_body_cache_clear(store);
	g_hash_table_unref(store->bodies);
	g_hash_table_unref(store->folders);
	g_free(store->quota.root);
	imap_pool_free(store->pool);
	g_clear_pointer(&store->committer, store_body_committer_free);
	g_clear_pointer(&store->bc, bodycache_close);
	g_clear_pointer(&store->hc, hcache_close);
	g_mutex_clear(&store->lock);
	g_mutex_clear(&store->folders_emit);
	g_cond_clear(&store->cond);
	g_free(store->crash_at);
	g_free(store);
}

void
store_set_offline_retry(Store *store, gint64 us)
{
	store->retry_us = us;
}

void
store_cancel_all(Store *store)
{
	GCancellable *sync_cancel;

	store_inflight_group_close(store->inflight);
	g_mutex_lock(&store->lock);
	sync_cancel = store->sync_cancel ? g_object_ref(store->sync_cancel) : NULL;
	g_mutex_unlock(&store->lock);
	if (sync_cancel != NULL) {
		g_cancellable_cancel(sync_cancel);
		g_object_unref(sync_cancel);
	}
}

void
store_cancel_running(Store *store)
{
	store_inflight_group_cancel_running(store->inflight);
}

GCancellable *
store_call_begin(Store *store, GCancellable *cancel, GError **error)
{
	return store_inflight_group_call_begin(store->inflight, cancel, error);
}

void
store_call_end(Store *store, GCancellable *call)
{
	store_inflight_group_call_end(store->inflight, call);
}

void
store_set_event_handler(Store *store, StoreEventFn fn, gpointer data)
{
	store->event_fn = fn;
	store->event_data = data;
}

void
store_folder_open_handle(Store *store, StoreFolder *folder)
{
	g_atomic_int_inc(&folder->handles);
	g_mutex_lock(&store->lock);
	folder->used_at = g_get_monotonic_time();
	g_mutex_unlock(&store->lock);
}

void
store_folder_close_handle(Store *store, StoreFolder *folder)
{
	g_atomic_int_dec_and_test(&folder->handles);
	g_mutex_lock(&store->lock);
	folder->used_at = g_get_monotonic_time();
	g_mutex_unlock(&store->lock);
}

gboolean
store_folder_is_open(StoreFolder *folder)
{
	return g_atomic_int_get(&folder->handles) > 0;
}

void
store_crash_point(Store *store, const char *where)
{
	if (store->crash_at != NULL && strcmp(store->crash_at, where) == 0) {
		g_message("IMAPFS_TEST_CRASH_AT=%s: aborting here", where);
		abort();
	}
}

guint64
store_ticket(Store *store)
{
	return __atomic_add_fetch(&store->ticket, 1, __ATOMIC_SEQ_CST);
}

static void
emit(Store *store, StoreEventKind kind, StoreFolder *folder, StoreMessage *msg,
     const char *old_name, gboolean local)
{
	StoreEvent ev = {
		.kind = kind,
		.folder = folder,
		.msg = msg,
		.old_name = old_name,
		.local = local,
	};

	if (store->event_fn != NULL)
		store->event_fn(&ev, store->event_data);
}

void
store_emit(Store *store, StoreEventKind kind, StoreFolder *folder, StoreMessage *msg,
	   const char *old_name)
{
	emit(store, kind, folder, msg, old_name, FALSE);
}

void
store_emit_local(Store *store, StoreEventKind kind, StoreFolder *folder, StoreMessage *msg)
{
	emit(store, kind, folder, msg, NULL, TRUE);
}

/* The folder object of @name, created if new. A folder object lives as long as the
 * store: its attributes are those of the first LIST (a later LIST only adds folders). */
static StoreFolder *
folder_get_locked(Store *store, const char *name, char delim, guint attrs)
{
	StoreFolder *f = g_hash_table_lookup(store->folders, name);

	if (f == NULL) {
		f = g_new0(StoreFolder, 1);
		f->ref = 1;
		f->name = g_strdup(name);
		f->delim = delim;
		f->attrs = attrs;
		g_hash_table_replace(store->folders, f->name, f);
	}
	return f;
}

/* After a LIST: folders that appeared or vanished since the previous one become events
 * (the first LIST is the initial tree, no events). */
static void
emit_folder_changes(Store *store, GPtrArray *listed, guint64 ticket)
{
	g_autoptr(GPtrArray) added = g_ptr_array_new_with_free_func((GDestroyNotify)store_folder_unref);
	g_autoptr(GPtrArray) removed =
		g_ptr_array_new_with_free_func((GDestroyNotify)store_folder_unref);
	g_autoptr(GHashTable) now = g_hash_table_new(NULL, NULL);
	GHashTableIter it;
	gpointer v;
	gboolean first;

	for (guint i = 0; i < listed->len; i++)
		g_hash_table_add(now, g_ptr_array_index(listed, i));
	g_mutex_lock(&store->folders_emit);
	g_mutex_lock(&store->lock);
	if (ticket < store->folders_ticket) {
		/* a LIST sent after this one was merged already: this one is older news */
		g_mutex_unlock(&store->lock);
		g_mutex_unlock(&store->folders_emit);
		return;
	}
	store->folders_ticket = ticket;
	first = !store->folders_listed;
	store->folders_listed = TRUE;
	g_hash_table_iter_init(&it, store->folders);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		StoreFolder *f = v;
		gboolean is = g_hash_table_contains(now, f);

		if (is && !f->listed && !first)
			g_ptr_array_add(added, store_folder_ref(f));
		else if (!is && f->listed)
			g_ptr_array_add(removed, store_folder_ref(f));
		f->listed = is;
	}
	g_mutex_unlock(&store->lock);
	for (guint i = 0; i < removed->len; i++)
		store_emit(store, STORE_EVENT_FOLDER_REMOVED, g_ptr_array_index(removed, i), NULL,
			   NULL);
	for (guint i = 0; i < added->len; i++)
		store_emit(store, STORE_EVENT_FOLDER_ADDED, g_ptr_array_index(added, i), NULL, NULL);
	g_mutex_unlock(&store->folders_emit);
}

/* One personal namespace with an empty prefix (a server without NAMESPACE). */
static StoreNamespace *
guessed_personal(char delim)
{
	StoreNamespace *ns = g_new0(StoreNamespace, 1);

	ns->kind = STORE_NS_PERSONAL;
	ns->prefix = g_strdup("");
	ns->delim = delim;
	return ns;
}

/* ---- the on-disk cache ------------------------------------------------------------- */

char *
store_default_cache_dir(const char *user, const char *host, guint port, const char *root)
{
	g_autofree char *raw = g_strdup_printf("%s@%s:%u%s", user, host, port,
					       root && *root && strcmp(root, "/") ? root : "");
	GString *id = g_string_new(NULL);
	g_autofree char *name = NULL;

	/* readable and safe: keep [A-Za-z0-9@._:+-], '/' becomes '_', the rest %XX */
	for (const guchar *p = (const guchar *)raw; *p; p++) {
		if (g_ascii_isalnum(*p) || strchr("@._:+-", *p))
			g_string_append_c(id, *p);
		else if (*p == '/')
			g_string_append_c(id, '_');
		else
			g_string_append_printf(id, "%%%02X", *p);
	}
	if (id->str[0] == '.')
		g_string_prepend_c(id, '_');
	name = g_string_free(id, FALSE);
	return g_build_filename(g_get_user_cache_dir(), "imapfs", name, NULL);
}

Hcache *
store_hc(Store *store)
{
	return g_atomic_int_get(&store->cache_broken) ? NULL : store->hc;
}

Bodycache *
store_bc(Store *store)
{
	return g_atomic_int_get(&store->cache_broken) ? NULL : store->bc;
}

void
store_cache_error(Store *store, const GError *error)
{
	g_message("header cache: %s", error->message);
	if (!g_error_matches(error, HCACHE_ERROR, HCACHE_ERROR_CORRUPT) ||
	    !g_atomic_int_compare_and_exchange(&store->cache_broken, 0, 1))
		return;
	/* The database was rebuilt empty under us: the mailbox ids held in memory are
	 * stale and could name other mailboxes later. Run uncached until the next mount,
	 * and drop the bodies filed under those ids. */
	g_message("the cache was corrupt and has been reset; running uncached until remount");
	if (store->bc != NULL) {
		GHashTableIter it;
		gpointer v;
		GArray *list = g_array_new(FALSE, FALSE, sizeof(gint64));

		g_mutex_lock(&store->lock);
		g_hash_table_iter_init(&it, store->folders);
		while (g_hash_table_iter_next(&it, NULL, &v))
			if (((StoreFolder *)v)->hc_id != 0)
				g_array_append_val(list, ((StoreFolder *)v)->hc_id);
		g_mutex_unlock(&store->lock);
		for (guint i = 0; i < list->len; i++)
			bodycache_drop_mailbox(store->bc, g_array_index(list, gint64, i), 0);
		g_array_unref(list);
	}
}

gboolean
store_open_cache(Store *store, const char *dir, guint64 cap, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autoptr(Hcache) hc = NULL;
	g_autoptr(Bodycache) bc = NULL;

	hc = hcache_open(dir, &local);
	if (hc == NULL) {
		if (g_error_matches(local, HCACHE_ERROR, HCACHE_ERROR_IN_USE))
			g_set_error(error, STORE_ERROR, STORE_ERROR_CACHE_IN_USE, "%s",
				    local->message);
		else
			g_set_error(error, STORE_ERROR, STORE_ERROR_IO, "cache %s: %s", dir,
				    local->message);
		return FALSE;
	}
	bc = bodycache_open(dir, cap, &local);
	if (bc == NULL) {
		g_set_error(error, STORE_ERROR,
			    g_error_matches(local, BODYCACHE_ERROR, BODYCACHE_ERROR_IN_USE)
				    ? STORE_ERROR_CACHE_IN_USE
				    : STORE_ERROR_IO,
			    "body cache %s: %s", dir, local->message);
		return FALSE;
	}
	if (hcache_get_rebuilds(hc) > 0) /* bodies are keyed by ids of the lost database */
		bodycache_drop_all(bc);
	store->hc = g_steal_pointer(&hc);
	store->bc = g_steal_pointer(&bc);
	store->committer = store_body_committer_new(store);
	return TRUE;
}

gboolean
store_cache_has_data(Store *store)
{
	g_autoptr(GPtrArray) list = NULL;

	if (store_hc(store) == NULL)
		return FALSE;
	list = hcache_mailbox_list(store->hc, NULL);
	return list != NULL && list->len > 0;
}

void
store_go_offline(Store *store, gboolean retry)
{
	g_mutex_lock(&store->lock);
	store->offline_forced = !retry;
	store->probe_at = g_get_monotonic_time();
	g_mutex_unlock(&store->lock);
	g_atomic_int_set(&store->offline, 1);
}

gboolean
store_error_is_unreachable(const GError *error)
{
	return g_error_matches(error, IMAP_ERROR, IMAP_ERROR_CONNECT) ||
	       g_error_matches(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT) ||
	       g_error_matches(error, IMAP_ERROR, IMAP_ERROR_DISCONNECTED);
}

gboolean
store_is_offline(Store *store)
{
	return g_atomic_int_get(&store->offline) != 0;
}

gboolean
store_offline_check(Store *store)
{
	g_autoptr(GError) error = NULL;
	gint64 now = g_get_monotonic_time();
	gboolean ok;

	if (!store_is_offline(store))
		return FALSE;
	g_mutex_lock(&store->lock);
	if (store->offline_forced || store->probing || now - store->probe_at < store->retry_us) {
		g_mutex_unlock(&store->lock);
		return TRUE;
	}
	store->probing = TRUE;
	g_mutex_unlock(&store->lock);

	{
		GCancellable *call = store_call_begin(store, NULL, &error);

		ok = call != NULL && store_connect_sync(store, call, &error);
		store_call_end(store, call);
	}

	g_mutex_lock(&store->lock);
	store->probing = FALSE;
	store->probe_at = g_get_monotonic_time();
	g_mutex_unlock(&store->lock);
	if (!ok) {
		g_debug("still offline: %s", error->message);
		return TRUE;
	}
	g_message("the server answers again: online");
	g_atomic_int_set(&store->offline, 0);
	return FALSE;
}

static char *
namespaces_path(Store *store)
{
	return g_build_filename(hcache_get_dir(store->hc), "namespaces", NULL);
}

/* The namespaces are remembered next to the header cache (one per line: kind, index,
 * delimiter, escaped prefix) so that an offline mount maps names like an online one. */
static void
save_namespaces(Store *store, GPtrArray *nss)
{
	g_autofree char *path = namespaces_path(store);
	g_autoptr(GError) error = NULL;
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < nss->len; i++) {
		StoreNamespace *ns = g_ptr_array_index(nss, i);
		g_autofree char *esc = g_strescape(ns->prefix, NULL);

		g_string_append_printf(s, "%d\t%u\t%d\t%s\n", ns->kind, ns->index, ns->delim, esc);
	}
	if (!g_file_set_contents_full(path, s->str, s->len, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
				      &error))
		g_message("cannot save the namespaces in the cache: %s", error->message);
	g_string_free(s, TRUE);
}

static GPtrArray *
load_namespaces(Store *store)
{
	g_autofree char *path = namespaces_path(store);
	g_autofree char *data = NULL;
	g_auto(GStrv) lines = NULL;
	GPtrArray *nss = g_ptr_array_new_with_free_func((GDestroyNotify)store_namespace_free);

	if (!g_file_get_contents(path, &data, NULL, NULL))
		return nss;
	lines = g_strsplit(data, "\n", -1);
	for (guint i = 0; lines[i]; i++) {
		g_auto(GStrv) f = g_strsplit(lines[i], "\t", 4);
		StoreNamespace *ns;

		if (g_strv_length(f) != 4)
			continue;
		ns = g_new0(StoreNamespace, 1);
		ns->kind = CLAMP(atoi(f[0]), STORE_NS_PERSONAL, STORE_NS_SHARED);
		ns->index = atoi(f[1]);
		ns->delim = atoi(f[2]);
		ns->prefix = g_strcompress(f[3]);
		g_ptr_array_add(nss, ns);
	}
	return nss;
}

/* Records the LIST result in the header cache (new rows, changed attributes; rows the
 * server no longer lists are forgotten) and gives each folder its cache id. */
static void
cache_folders(Store *store, GPtrArray *folders)
{
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GHashTable) by_name = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GHashTable) listed = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GError) error = NULL;

	rows = hcache_mailbox_list(store->hc, &error);
	if (rows == NULL) {
		store_cache_error(store, error);
		return;
	}
	for (guint i = 0; i < rows->len; i++) {
		HcacheMailbox *mb = g_ptr_array_index(rows, i);

		g_hash_table_insert(by_name, mb->name, mb);
	}
	for (guint i = 0; i < folders->len; i++) {
		StoreFolder *f = g_ptr_array_index(folders, i);
		HcacheMailbox *old = g_hash_table_lookup(by_name, f->name);
		gint64 id;

		g_hash_table_add(listed, f->name);
		if (old != NULL && old->delim == f->delim && old->attrs == f->attrs) {
			id = old->id;
		} else {
			HcacheMailbox mb = {
				.name = f->name,
				.delim = f->delim,
				.attrs = f->attrs,
				.special_use = (char *)store_folder_get_special_use(f),
				.uidnext = old ? old->uidnext : 0,
				.highestmodseq = old ? old->highestmodseq : 0,
			};

			if (!hcache_mailbox_put(store->hc, &mb, &error)) {
				store_cache_error(store, error);
				g_clear_error(&error);
				continue;
			}
			id = mb.id;
		}
		g_mutex_lock(&store->lock);
		f->hc_id = id;
		g_mutex_unlock(&store->lock);
	}
	for (guint i = 0; i < rows->len; i++) {
		HcacheMailbox *mb = g_ptr_array_index(rows, i);

		if (g_hash_table_contains(listed, mb->name))
			continue;
		if (store_bc(store) != NULL)
			bodycache_drop_mailbox(store->bc, mb->id, 0);
		if (!hcache_mailbox_delete(store->hc, mb->name, &error)) {
			store_cache_error(store, error);
			g_clear_error(&error);
		}
	}
}

/* Offline: the folders (and namespaces) the cache remembers. */
static GPtrArray *
list_cached_folders(Store *store, GPtrArray **namespaces, GError **error)
{
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GError) local = NULL;
	GPtrArray *out;
	char delim = 0;

	rows = store_hc(store) ? hcache_mailbox_list(store->hc, &local) : NULL;
	if (rows == NULL || rows->len == 0) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_OFFLINE,
			    "offline and the cache knows no folders%s%s", local ? ": " : "",
			    local ? local->message : "");
		return NULL;
	}
	out = g_ptr_array_new_with_free_func((GDestroyNotify)store_folder_unref);
	g_mutex_lock(&store->lock);
	for (guint i = 0; i < rows->len; i++) {
		HcacheMailbox *mb = g_ptr_array_index(rows, i);
		StoreFolder *f = folder_get_locked(store, mb->name, mb->delim, mb->attrs);

		if (delim == 0)
			delim = mb->delim;
		f->hc_id = mb->id;
		g_ptr_array_add(out, store_folder_ref(f));
	}
	g_mutex_unlock(&store->lock);
	if (namespaces != NULL) {
		GPtrArray *nss = load_namespaces(store);

		if (nss->len == 0)
			g_ptr_array_add(nss, guessed_personal(delim ? delim : '/'));
		*namespaces = nss;
	}
	return out;
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

void
store_get_cache_stats(Store *store, StoreCacheStats *out)
{
	BodycacheStats bs = {0};

	if (store->bc != NULL)
		bodycache_get_stats(store->bc, &bs);
	out->hits = bs.hits;
	out->misses = bs.misses;
	out->bytes = bs.bytes;
	out->files = bs.files;
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
			    g_error_matches(ns_error, IMAP_ERROR, IMAP_ERROR_TIMEOUT) ||
			    g_error_matches(ns_error, IMAP_ERROR, IMAP_ERROR_BUSY)) {
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
		char delim = '/';

		for (guint i = 0; i < infos->len; i++) {
			ImapMailboxInfo *mi = g_ptr_array_index(infos, i);

			if (mi->delim) {
				delim = mi->delim;
				break;
			}
		}
		g_ptr_array_insert(nss, 0, guessed_personal(delim));
	}
	return g_steal_pointer(&nss);
}

static GPtrArray *
list_folders(Store *store, GPtrArray **namespaces, GCancellable *cancel, GError **error)
{
	g_autoptr(GPtrArray) infos = NULL;
	g_autoptr(GPtrArray) nss = NULL;
	guint64 ticket = store_ticket(store);
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
		f = folder_get_locked(store, mi->name, mi->delim, mi->attrs);
		g_ptr_array_add(out, store_folder_ref(f));
	}
	g_mutex_unlock(&store->lock);
	emit_folder_changes(store, out, ticket);
	if (store_hc(store) != NULL) {
		cache_folders(store, out);
		if (nss != NULL)
			save_namespaces(store, nss);
	}
	if (namespaces != NULL)
		*namespaces = g_steal_pointer(&nss);
	return out;
}

GPtrArray *
store_list_folders_sync(Store *store, GPtrArray **namespaces, GCancellable *cancel, GError **error)
{
	GCancellable *call;
	GPtrArray *out;

	if (store_offline_check(store))
		return list_cached_folders(store, namespaces, error);
	call = store_call_begin(store, cancel, error);
	if (call == NULL)
		return NULL;
	out = list_folders(store, namespaces, call, error);
	store_call_end(store, call);
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
	if (store_is_offline(store)) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_OFFLINE, "offline");
		return FALSE;
	}
	if (!imap_pool_has_capability(store->pool, "QUOTA")) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED, "no QUOTA");
		return FALSE;
	}
	{
		GCancellable *call = store_call_begin(store, cancel, error);
		gboolean ok =
			call != NULL && imap_quota_sync(store->pool, "INBOX", &q, call, error);

		store_call_end(store, call);
		if (!ok)
			return FALSE;
	}
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
	if (store_is_offline(store)) {
		g_set_error(error, STORE_ERROR, STORE_ERROR_OFFLINE, "offline");
		return FALSE;
	}
	if (store->condstore)
		items |= IMAP_STATUS_HIGHESTMODSEQ;
	memset(out, 0, sizeof(*out));
	{
		GCancellable *call = store_call_begin(store, cancel, error);
		gboolean ok = call != NULL &&
			      imap_status_sync(store->pool, folder->name, items, out, call, error);

		store_call_end(store, call);
		return ok;
	}
}
