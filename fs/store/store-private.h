/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store-private.h: the structures shared by store.c, mailbox.c and body.c. Nothing
 * outside fs/store/ includes this file.
 *
 * Locking: store->lock protects every field marked so below, in Store, StoreFolder and
 * StoreMessage. It is never held across a network call: a thread that needs the network
 * copies what it needs, unlocks, calls imap_*_sync(), relocks and merges. Refreshes of one
 * folder are serialized by folder->loading + store->cond, not by holding the lock.
 */
#pragma once

#include "store.h"

struct _Store {
	ImapPool *pool;	    /* immutable after store_new */
	gboolean condstore; /* immutable after connect */
	GMutex lock;
	GCond cond;	     /* signalled when a folder load or a body fetch ends */
	GHashTable *folders; /* server name -> StoreFolder* (owning); protected by lock */
	/* body cache: key "mailbox\n uidvalidity uid" -> StoreBody* (owning) */
	GHashTable *bodies; /* protected by lock */
	GQueue body_lru;    /* StoreBody* with refcount 1 (cache only), oldest first */
	guint64 body_bytes; /* bytes kept by the bodies in body_lru; protected by lock */
	gboolean quota_valid;
	gint64 quota_time;
	ImapQuota quota; /* protected by lock */
};

struct _StoreFolder {
	gint ref;    /* atomic */
	char *name;  /* immutable */
	char delim;  /* immutable */
	guint attrs; /* immutable */
	/* protected by store->lock: */
	gboolean loading; /* a thread is fetching the listing */
	gboolean loaded;
	gint64 loaded_at; /* monotonic us */
	guint32 uidvalidity, uidnext, exists;
	guint64 highestmodseq;
	GHashTable *by_uid; /* guint32 uid -> StoreMessage* (owning) */
	GPtrArray *sorted;  /* StoreMessage* refs ordered by UID */
};

struct _StoreMessage {
	gint ref;	       /* atomic */
	StoreMessageInfo info; /* immutable; strings owned */
	/* protected by store->lock: */
	guint64 size;
	gboolean size_exact;
	guint64 modseq;
	char **flags;
};

StoreMessage *store_message_new_from_imap(const char *mailbox, guint32 uidvalidity,
					  const ImapMessage *m);
/* Under store->lock: update the mutable fields from a fresh FETCH. */
void store_message_update_locked(StoreMessage *msg, const ImapMessage *m);
void store_body_cache_clear(Store *store);
