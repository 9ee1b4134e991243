/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * node.h: the nodes the kernel knows, and their lifetime as libfuse's low-level contract
 * says (example/passthrough_ll.c): a node lives while the kernel holds lookups on it
 * (nlookup, dropped by forget) or the mount holds it (a directory linked in the tree, a
 * message node's link to its directory). Pure: no FUSE calls, no store _sync calls, no
 * locking of its own (the caller holds fs->lock); unit-tested in tests/unit/test-node.c.
 *
 * Identity: a directory is its StoreFolder (or nothing, for a namespace or \NonExistent
 * parent); a message node is found by (folder object, UID) and can be re-pointed to
 * another folder and UID (a moved message keeps its inode). Inode numbers come from the
 * caller (hashes of the identity, or the header cache's stored number) so they are the
 * same on every mount; a collision with another live node probes the next number.
 */
#pragma once

#include <glib.h>

#include "dirindex.h"
#include "store.h"

typedef enum {
	FS_NODE_DIR,
	FS_NODE_MSG,
} FsNodeKind;

typedef struct _FsNode FsNode;
struct _FsNode {
	guint64 ino;	 /* fixed while in the table */
	guint64 nlookup; /* lookups the kernel holds */
	FsNode *parent;	 /* directory it is in (held); NULL for the tree root */
	guint32 holds;	 /* the mount's own references (message nodes, snapshots) */
	FsNodeKind kind; /* immutable */
	/* One node per message the kernel holds (100,000 after a find of a big account):
	 * the fields of a kind share their room. Read a kind's fields only on that kind. */
	union {
		struct { /* FS_NODE_DIR */
			char *name;	     /* name in parent */
			StoreFolder *folder; /* ref, or NULL for a directory no mailbox backs */
			GHashTable *subdirs; /* name -> FsNode* (attached children) */
			FsDirIndex *index;   /* message names, NULL until first listed */
			gboolean attached;   /* linked in parent->subdirs (the tree holds it) */
		};
		struct {		   /* FS_NODE_MSG */
			StoreMessage *msg; /* ref; re-pointable */
			guint32 uid;	   /* with parent->folder: key in the message map */
			gboolean gone;	   /* expunged: no longer in the message map */
		};
	};
};

typedef struct _FsNodeTable FsNodeTable;

FsNodeTable *fs_node_table_new(void);
/* Frees every node. */
void fs_node_table_free(FsNodeTable *t);
FsNode *fs_node_table_get(FsNodeTable *t, guint64 ino);
/* Live nodes of @kind (for tests and the stats xattr). */
guint fs_node_table_count(FsNodeTable *t, FsNodeKind kind);

/* A new directory @name in @parent (NULL: the tree root), attached. */
FsNode *fs_node_dir_new(FsNodeTable *t, FsNode *parent, const char *name, guint64 ino);
/* Unlinks @dir from its parent (folder deleted); freed once the kernel forgets it. */
void fs_node_dir_detach(FsNodeTable *t, FsNode *dir);
/* Moves @dir under @parent as @name (folder renamed); keeps its inode number. */
void fs_node_dir_move(FsNodeTable *t, FsNode *dir, FsNode *parent, const char *name);
/* Gives @n the number @ino (the mount's root answers to FUSE_ROOT_ID). */
void fs_node_set_ino(FsNodeTable *t, FsNode *n, guint64 ino);

/* The node of message @uid in @dir's folder, or NULL. */
FsNode *fs_node_msg_find(FsNodeTable *t, FsNode *dir, guint32 uid);
/* The node of @msg in @dir: found, or created with nlookup 0 (drop it with
 * fs_node_forget(t, n, 0) when the kernel did not take it). */
FsNode *fs_node_msg_get(FsNodeTable *t, FsNode *dir, StoreMessage *msg, guint64 ino);
/* The message of @n is now @msg in @dir (moved); the inode number stays. */
void fs_node_msg_repoint(FsNodeTable *t, FsNode *n, FsNode *dir, StoreMessage *msg);
/* @n was expunged: out of the message map, still readable while the kernel holds it. */
void fs_node_msg_gone(FsNodeTable *t, FsNode *n);

/* Counts a lookup the kernel now holds. */
void fs_node_ref_lookup(FsNode *n);
/* The kernel forgot @nlookup lookups; frees @n when nothing holds it. TRUE if freed. */
gboolean fs_node_forget(FsNodeTable *t, FsNode *n, guint64 nlookup);
/* The mount's own reference (a snapshot, a child); fs_node_unhold() may free. */
void fs_node_hold(FsNode *n);
void fs_node_unhold(FsNodeTable *t, FsNode *n);
