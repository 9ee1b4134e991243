/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dirindex.h: the message names of one folder's directory, keyed by UID (name -> UID and
 * back), changed in place by diffs from listings and events, never rebuilt. Pure: no
 * FUSE, no store calls, no locking (the caller holds fs->lock); unit-tested in
 * tests/unit/test-dirindex.c.
 *
 * Local changes and tickets: a change the mount made itself (a message removed or added
 * locally) is applied at once and "held" with a ticket taken when it was made. A listing
 * carries the ticket taken before its command was sent; a listing older than a hold on a
 * UID does not touch that UID, so a listing in flight cannot undo a local change. A
 * listing newer than the hold settles it (the server's word wins again).
 */
#pragma once

#include <glib.h>

typedef struct _FsDirIndex FsDirIndex;

FsDirIndex *fs_dir_index_new(void);
void fs_dir_index_free(FsDirIndex *idx);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FsDirIndex, fs_dir_index_free)

/* Adds @uid under @name (a message's name never changes; putting a known UID again with
 * another name renames it). */
void fs_dir_index_put(FsDirIndex *idx, guint32 uid, const char *name);
/* Removes @uid; FALSE when it was not there. */
gboolean fs_dir_index_remove(FsDirIndex *idx, guint32 uid);
/* The UID of @name, 0 when none. */
guint32 fs_dir_index_find(const FsDirIndex *idx, const char *name);
/* The name of @uid, or NULL; valid until the next change of @idx. */
const char *fs_dir_index_name(const FsDirIndex *idx, guint32 uid);
guint fs_dir_index_size(const FsDirIndex *idx);
/* The UIDs in ascending order (owning GArray of guint32). */
GArray *fs_dir_index_uids(FsDirIndex *idx);
/* Drops every entry and hold (UIDVALIDITY reset). */
void fs_dir_index_clear(FsDirIndex *idx);

/* Records that the mount itself changed @uid (put or removed it) at @ticket. */
void fs_dir_index_hold(FsDirIndex *idx, guint32 uid, guint64 ticket);

/* A listing: @uids (ascending or not) is the whole folder as the server showed it to a
 * command sent after @ticket was taken. @name_of(uid, data) gives the name of a UID the
 * index does not know yet (newly allocated; the index frees it). UIDs that are added go
 * to @added, UIDs removed to @removed and their names (copies) to @removed_names (each
 * may be NULL); held UIDs newer than @ticket are left as they are. */
typedef char *(*FsDirIndexNameFn)(guint32 uid, gpointer data);
void fs_dir_index_sync(FsDirIndex *idx, const guint32 *uids, guint n, guint64 ticket,
		       FsDirIndexNameFn name_of, gpointer data, GArray *added, GArray *removed,
		       GPtrArray *removed_names);
