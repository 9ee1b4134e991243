/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * node.c: the node table (see node.h). Nodes are in two maps: by inode number (every
 * node) and, for messages not gone, by (folder object, UID). A node is freed when the
 * kernel's lookups and the mount's holds are both zero and, for a directory, it is no
 * longer linked in the tree. A message node holds its directory, so a directory removed
 * from the tree lives until its last open message is forgotten.
 */
#include "config.h"

#include <string.h>

#include "node.h"

#define ROOT_INO 1 /* FUSE_ROOT_ID: only ever given by fs_node_set_ino() */

struct _FsNodeTable {
	GHashTable *by_ino; /* set of FsNode*, hashed on ino */
	GHashTable *by_msg; /* FsNode* (hashed on folder, uid) -> FsNode* */
	guint count[2];	    /* live nodes by kind */
};

static guint
ino_hash(gconstpointer p)
{
	return g_int64_hash(&((const FsNode *)p)->ino);
}

static gboolean
ino_equal(gconstpointer a, gconstpointer b)
{
	return ((const FsNode *)a)->ino == ((const FsNode *)b)->ino;
}

static guint
msg_hash(gconstpointer p)
{
	const FsNode *n = p;

	return g_direct_hash(n->parent->folder) ^ (n->uid * 2654435761u);
}

static gboolean
msg_equal(gconstpointer a, gconstpointer b)
{
	const FsNode *x = a, *y = b;

	return x->parent->folder == y->parent->folder && x->uid == y->uid;
}

FsNodeTable *
fs_node_table_new(void)
{
	FsNodeTable *t = g_new0(FsNodeTable, 1);

	t->by_ino = g_hash_table_new(ino_hash, ino_equal);
	t->by_msg = g_hash_table_new(msg_hash, msg_equal);
	return t;
}

static void
node_free(FsNode *n)
{
	if (n->kind == FS_NODE_DIR) {
		g_free(n->name);
		g_clear_pointer(&n->subdirs, g_hash_table_unref);
		g_clear_pointer(&n->index, fs_dir_index_free);
		g_clear_pointer(&n->folder, store_folder_unref);
	} else {
		g_clear_pointer(&n->msg, store_message_unref);
	}
	g_free(n);
}

void
fs_node_table_free(FsNodeTable *t)
{
	GHashTableIter it;
	gpointer v;

	if (t == NULL)
		return;
	g_hash_table_iter_init(&it, t->by_ino);
	while (g_hash_table_iter_next(&it, NULL, &v))
		node_free(v);
	g_hash_table_unref(t->by_msg);
	g_hash_table_unref(t->by_ino);
	g_free(t);
}

FsNode *
fs_node_table_get(FsNodeTable *t, guint64 ino)
{
	FsNode key = {.ino = ino};

	return g_hash_table_lookup(t->by_ino, &key);
}

guint
fs_node_table_count(FsNodeTable *t, FsNodeKind kind)
{
	return t->count[kind];
}

static void
insert(FsNodeTable *t, FsNode *n, guint64 ino)
{
	while (ino <= ROOT_INO || fs_node_table_get(t, ino) != NULL)
		ino++;
	n->ino = ino;
	g_hash_table_add(t->by_ino, n);
	t->count[n->kind]++;
}

void
fs_node_set_ino(FsNodeTable *t, FsNode *n, guint64 ino)
{
	g_hash_table_remove(t->by_ino, n);
	n->ino = ino;
	g_hash_table_add(t->by_ino, n);
}

FsNode *
fs_node_dir_new(FsNodeTable *t, FsNode *parent, const char *name, guint64 ino)
{
	FsNode *n = g_new0(FsNode, 1);

	n->kind = FS_NODE_DIR;
	n->name = g_strdup(name);
	n->subdirs = g_hash_table_new(g_str_hash, g_str_equal);
	n->attached = TRUE;
	insert(t, n, ino);
	if (parent != NULL) {
		n->parent = parent;
		fs_node_hold(parent);
		g_hash_table_insert(parent->subdirs, n->name, n);
	}
	return n;
}

static gboolean
unused(const FsNode *n)
{
	return n->nlookup == 0 && n->holds == 0 && !(n->kind == FS_NODE_DIR && n->attached);
}

/* Frees @n if nothing holds it, then its parent likewise. */
static gboolean
collect(FsNodeTable *t, FsNode *n)
{
	FsNode *parent;

	if (!unused(n))
		return FALSE;
	if (n->kind == FS_NODE_MSG && !n->gone)
		g_hash_table_remove(t->by_msg, n);
	g_hash_table_remove(t->by_ino, n);
	t->count[n->kind]--;
	parent = n->parent;
	node_free(n);
	if (parent != NULL)
		fs_node_unhold(t, parent);
	return TRUE;
}

void
fs_node_dir_detach(FsNodeTable *t, FsNode *dir)
{
	if (!dir->attached || dir->parent == NULL)
		return;
	g_hash_table_remove(dir->parent->subdirs, dir->name);
	dir->attached = FALSE;
	collect(t, dir);
}

void
fs_node_dir_move(FsNodeTable *t, FsNode *dir, FsNode *parent, const char *name)
{
	FsNode *old = dir->parent;

	if (dir->attached)
		g_hash_table_remove(old->subdirs, dir->name);
	g_free(dir->name);
	dir->name = g_strdup(name);
	dir->parent = parent;
	fs_node_hold(parent);
	g_hash_table_insert(parent->subdirs, dir->name, dir);
	dir->attached = TRUE;
	fs_node_unhold(t, old);
}

FsNode *
fs_node_msg_find(FsNodeTable *t, FsNode *dir, guint32 uid)
{
	FsNode key = {.parent = dir, .uid = uid};

	if (dir->folder == NULL)
		return NULL;
	return g_hash_table_lookup(t->by_msg, &key);
}

FsNode *
fs_node_msg_get(FsNodeTable *t, FsNode *dir, StoreMessage *msg, guint64 ino)
{
	guint32 uid = store_message_get_info(msg)->uid;
	FsNode *n = fs_node_msg_find(t, dir, uid);

	if (n != NULL)
		return n;
	n = g_new0(FsNode, 1);
	n->kind = FS_NODE_MSG;
	n->parent = dir;
	fs_node_hold(dir);
	n->msg = store_message_ref(msg);
	n->uid = uid;
	insert(t, n, ino);
	g_hash_table_add(t->by_msg, n);
	return n;
}

void
fs_node_msg_repoint(FsNodeTable *t, FsNode *n, FsNode *dir, StoreMessage *msg)
{
	FsNode *old = n->parent;

	if (!n->gone)
		g_hash_table_remove(t->by_msg, n);
	n->gone = FALSE;
	n->parent = dir;
	fs_node_hold(dir);
	store_message_unref(n->msg);
	n->msg = store_message_ref(msg);
	n->uid = store_message_get_info(msg)->uid;
	/* a node already there for the destination keeps its place; this one is found by
	 * its inode number until the kernel forgets it */
	if (!g_hash_table_contains(t->by_msg, n))
		g_hash_table_add(t->by_msg, n);
	else
		n->gone = TRUE;
	fs_node_unhold(t, old);
}

void
fs_node_msg_gone(FsNodeTable *t, FsNode *n)
{
	if (n->gone)
		return;
	g_hash_table_remove(t->by_msg, n);
	n->gone = TRUE;
}

void
fs_node_ref_lookup(FsNode *n)
{
	n->nlookup++;
}

gboolean
fs_node_forget(FsNodeTable *t, FsNode *n, guint64 nlookup)
{
	n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
	return collect(t, n);
}

void
fs_node_hold(FsNode *n)
{
	n->holds++;
}

void
fs_node_unhold(FsNodeTable *t, FsNode *n)
{
	g_return_if_fail(n->holds > 0);
	n->holds--;
	collect(t, n);
}
