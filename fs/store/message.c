/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * message.c: one message of a folder (StoreMessage): built from a FETCH or from a header
 * cache row, turned back into a row, updated from later FETCHes, and its accessors (info,
 * envelope read back from the header cache, inode number, state). It holds no listing and
 * no body and never touches the network; it uses only the account's cache accessors and
 * store->lock (store.c) and the RFC 2047 decoding of mime.c.
 */
#define G_LOG_DOMAIN "imapfs-store"

#include "config.h"

#include <string.h>

#include "store-private.h"

/* The flags as the user sees them, joined by ' ' (flags are atoms, without spaces), as an
 * interned GRefString: the messages of an account have a handful of distinct flag sets, so
 * they share a few strings instead of holding a vector and a copy of each flag apiece.
 * \Recent is a per-session marker that can be neither set nor cleared (and is gone in
 * IMAP4rev2), so it is left out. */
static char *
intern_flags(char *const *flags)
{
	GString *s = g_string_new(NULL);
	char *out;

	for (guint i = 0; flags != NULL && flags[i]; i++)
		if (g_ascii_strcasecmp(flags[i], "\\Recent") != 0) {
			if (s->len > 0)
				g_string_append_c(s, ' ');
			g_string_append(s, flags[i]);
		}
	out = g_ref_string_new_intern(s->str);
	g_string_free(s, TRUE);
	return out;
}

/* The vector of interned @flags (owned, never NULL). */
static char **
split_flags(const char *flags)
{
	if (flags == NULL || *flags == '\0')
		return g_new0(char *, 1);
	return g_strsplit(flags, " ", -1);
}

char **
store_message_dup_flags_locked(StoreMessage *msg)
{
	return split_flags(msg->flags);
}

void
store_message_set_flags_locked(StoreMessage *msg, char *const *flags)
{
	char *now = intern_flags(flags);

	g_ref_string_release(msg->flags);
	msg->flags = now;
}

StoreMessage *
store_message_new_from_imap(const char *mailbox, guint32 uidvalidity, const ImapMessage *m)
{
	StoreMessage *msg = g_new0(StoreMessage, 1);
	StoreMessageInfo *i = &msg->info;

	msg->ref = 1;
	i->mailbox = g_ref_string_new_intern(mailbox); /* one copy per folder */
	i->uidvalidity = uidvalidity;
	i->uid = m->uid;
	i->internaldate = m->internaldate;
	i->internaldate_tz = m->internaldate_tz;
	/* A server may send NIL for INTERNALDATE (or ENVELOPE, RFC822.SIZE): the message is
	 * shown anyway, dated by its Date: header, else the epoch; a missing size stays
	 * inexact (0) and is learnt when the body is first opened. */
	if (!(m->have & IMAP_FETCH_INTERNALDATE) &&
	    (m->envelope == NULL ||
	     !store_mime_parse_date(m->envelope->date, &i->internaldate, &i->internaldate_tz))) {
		i->internaldate = 0;
		i->internaldate_tz = 0;
	}
	if (m->envelope != NULL) {
		ImapEnvelope *e = m->envelope;

		i->subject = store_mime_decode_text(e->subject);
		msg->fetched = g_new0(StoreFetched, 1);
		msg->fetched->env.from = store_mime_format_addresses(e->from);
		msg->fetched->env.to = store_mime_format_addresses(e->to);
		msg->fetched->env.date = store_mime_decode_text(e->date);
		msg->fetched->env.message_id = store_mime_decode_text(e->message_id);
		msg->fetched->in_reply_to = g_strdup(e->in_reply_to ? e->in_reply_to : "");
	}
	if (m->have & IMAP_FETCH_REFERENCES) {
		if (msg->fetched == NULL)
			msg->fetched = g_new0(StoreFetched, 1);
		msg->fetched->references = g_strdup(m->references ? m->references : "");
	}
	msg->size = (m->have & IMAP_FETCH_SIZE) ? m->size : 0;
	msg->modseq = m->modseq;
	msg->flags = intern_flags(m->flags);
	return msg;
}

StoreMessage *
store_message_new_from_hcache(const char *mailbox, guint32 uidvalidity, gint64 hc_id,
			      HcacheMessage *row)
{
	StoreMessage *msg = g_new0(StoreMessage, 1);
	StoreMessageInfo *i = &msg->info;

	msg->ref = 1;
	msg->hc_id = hc_id;
	msg->ino = row->ino;
	i->mailbox = g_ref_string_new_intern(mailbox); /* one copy per folder */
	i->uidvalidity = uidvalidity;
	i->uid = row->uid;
	i->internaldate = row->internaldate;
	i->internaldate_tz = row->internaldate_tz;
	i->subject = g_steal_pointer(&row->subject);
	/* from, to, date, message_id stay in the cache (store_message_get_envelope) */
	msg->size = row->true_size ? row->true_size : row->size;
	msg->size_exact = row->true_size != 0;
	msg->modseq = row->modseq;
	msg->flags = intern_flags(row->flags);
	return msg;
}

HcacheMessage *
store_message_to_hcache(Store *store, StoreMessage *msg)
{
	HcacheMessage *row = hcache_message_new();
	const StoreMessageInfo *i = &msg->info;

	row->uid = i->uid;
	row->internaldate = i->internaldate;
	row->internaldate_tz = i->internaldate_tz;
	row->subject = g_strdup(i->subject);
	if (msg->fetched != NULL) {
		row->from = g_strdup(msg->fetched->env.from);
		row->to = g_strdup(msg->fetched->env.to);
		row->date = g_strdup(msg->fetched->env.date);
		row->message_id = g_strdup(msg->fetched->env.message_id);
		row->references = g_strdup(msg->fetched->references);
		row->in_reply_to = g_strdup(msg->fetched->in_reply_to);
	}
	g_mutex_lock(&store->lock);
	row->size = msg->size;
	row->true_size = msg->size_exact ? msg->size : 0;
	row->modseq = msg->modseq;
	row->flags = split_flags(msg->flags);
	g_mutex_unlock(&store->lock);
	return row;
}

void
store_message_update_locked(StoreMessage *msg, const ImapMessage *m)
{
	if (m->have & IMAP_FETCH_FLAGS) {
		g_ref_string_release(msg->flags);
		msg->flags = intern_flags(m->flags);
	}
	if (m->have & IMAP_FETCH_MODSEQ)
		msg->modseq = m->modseq;
	if ((m->have & IMAP_FETCH_SIZE) && !msg->size_exact)
		msg->size = m->size;
}

void
store_message_copy_flags_locked(StoreMessage *msg, const StoreMessage *from)
{
	char *flags = g_ref_string_acquire(from->flags);

	g_ref_string_release(msg->flags);
	msg->flags = flags;
	msg->modseq = from->modseq;
}

void
store_message_drop_fetched(StoreMessage *msg, gboolean keep_envelope)
{
	StoreFetched *f = msg->fetched;

	if (f == NULL)
		return;
	g_clear_pointer(&f->references, g_free);
	g_clear_pointer(&f->in_reply_to, g_free);
	if (keep_envelope)
		return;
	store_envelope_clear(&f->env);
	g_clear_pointer(&msg->fetched, g_free);
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
	g_ref_string_release((char *)i->mailbox);
	g_free((char *)i->subject);
	store_message_drop_fetched(msg, FALSE);
	g_ref_string_release(msg->flags);
	g_free(msg);
}

void
store_envelope_clear(StoreEnvelope *env)
{
	g_clear_pointer(&env->from, g_free);
	g_clear_pointer(&env->to, g_free);
	g_clear_pointer(&env->date, g_free);
	g_clear_pointer(&env->message_id, g_free);
}

void
store_message_get_envelope(Store *store, StoreMessage *msg, StoreEnvelope *out)
{
	g_autoptr(HcacheMessage) row = NULL;
	g_autoptr(GError) error = NULL;
	Hcache *hc;

	memset(out, 0, sizeof(*out));
	if (msg->fetched != NULL) {
		out->from = g_strdup(msg->fetched->env.from);
		out->to = g_strdup(msg->fetched->env.to);
		out->date = g_strdup(msg->fetched->env.date);
		out->message_id = g_strdup(msg->fetched->env.message_id);
		return;
	}
	hc = store_hc(store);
	if (hc == NULL || msg->hc_id == 0)
		return;
	row = hcache_message_get(hc, msg->hc_id, msg->info.uidvalidity, msg->info.uid, &error);
	if (row == NULL) {
		if (error != NULL)
			store_cache_error(store, error);
		return;
	}
	out->from = g_steal_pointer(&row->from);
	out->to = g_steal_pointer(&row->to);
	out->date = g_steal_pointer(&row->date);
	out->message_id = g_steal_pointer(&row->message_id);
}

const StoreMessageInfo *
store_message_get_info(StoreMessage *msg)
{
	return &msg->info;
}

guint64
store_message_get_ino(StoreMessage *msg)
{
	return msg->ino;
}

guint64
store_hash_dir(const char *path)
{
	return hcache_hash_dir(path);
}

guint64
store_hash_message(const StoreMessageInfo *info)
{
	return hcache_hash_message(info->mailbox, info->uidvalidity, info->uid);
}

void
store_message_get_state(Store *store, StoreMessage *msg, StoreMessageState *out)
{
	g_mutex_lock(&store->lock);
	out->size = msg->size;
	out->size_exact = msg->size_exact;
	out->modseq = msg->modseq;
	out->flags = split_flags(msg->flags);
	g_mutex_unlock(&store->lock);
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
