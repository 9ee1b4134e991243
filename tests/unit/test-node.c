/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-node.c: unit tests of fs/node.c against store objects made in memory (no server):
 * lookup and forget counting, nodes freed when the kernel drops them, a directory that
 * outlives its removal while a message in it is held, and re-pointing a moved message.
 */
#include "config.h"

#include <string.h>

#include "node.h"
#include "store-private.h"

static StoreFolder *
folder_new(const char *name)
{
	StoreFolder *f = g_new0(StoreFolder, 1);

	f->ref = 1;
	f->name = g_strdup(name);
	f->delim = '/';
	return f;
}

static StoreMessage *
message_new(const char *mailbox, guint32 uid)
{
	ImapMessage m = {0};

	m.uid = uid;
	return store_message_new_from_imap(mailbox, 1, &m);
}

typedef struct {
	FsNodeTable *t;
	FsNode *root, *inbox, *work;
} Tree;

static void
tree_init(Tree *tr)
{
	tr->t = fs_node_table_new();
	tr->root = fs_node_dir_new(tr->t, NULL, "", 100);
	fs_node_set_ino(tr->t, tr->root, 1);
	tr->inbox = fs_node_dir_new(tr->t, tr->root, "INBOX", 200);
	tr->inbox->folder = folder_new("INBOX");
	tr->work = fs_node_dir_new(tr->t, tr->root, "work", 300);
	tr->work->folder = folder_new("work");
}

static void
test_lookup_and_forget(void)
{
	Tree tr;
	g_autoptr(StoreMessage) m = message_new("INBOX", 5);
	FsNode *n;

	tree_init(&tr);
	g_assert_cmpuint(fs_node_table_count(tr.t, FS_NODE_DIR), ==, 3);
	n = fs_node_msg_get(tr.t, tr.inbox, m, 5000);
	g_assert_cmpuint(n->ino, ==, 5000);
	fs_node_ref_lookup(n);
	/* a second lookup finds the same node */
	g_assert_true(fs_node_msg_get(tr.t, tr.inbox, m, 5000) == n);
	fs_node_ref_lookup(n);
	g_assert_true(fs_node_table_get(tr.t, 5000) == n);
	g_assert_false(fs_node_forget(tr.t, n, 1));
	g_assert_true(fs_node_forget(tr.t, n, 1));
	g_assert_null(fs_node_table_get(tr.t, 5000));
	g_assert_null(fs_node_msg_find(tr.t, tr.inbox, 5));
	g_assert_cmpuint(fs_node_table_count(tr.t, FS_NODE_MSG), ==, 0);
	/* a node the kernel never took (readdirplus entry that did not fit) */
	n = fs_node_msg_get(tr.t, tr.inbox, m, 5000);
	g_assert_true(fs_node_forget(tr.t, n, 0));
	/* the same identity comes back with the same number */
	n = fs_node_msg_get(tr.t, tr.inbox, m, 5000);
	g_assert_cmpuint(n->ino, ==, 5000);
	fs_node_ref_lookup(n);
	fs_node_table_free(tr.t);
}

static void
test_collision_and_root(void)
{
	Tree tr;
	g_autoptr(StoreMessage) a = message_new("INBOX", 1);
	g_autoptr(StoreMessage) b = message_new("INBOX", 2);
	FsNode *x, *y;

	tree_init(&tr);
	g_assert_true(fs_node_table_get(tr.t, 1) == tr.root);
	x = fs_node_msg_get(tr.t, tr.inbox, a, 7000);
	y = fs_node_msg_get(tr.t, tr.inbox, b, 7000);
	g_assert_cmpuint(x->ino, ==, 7000);
	g_assert_cmpuint(y->ino, !=, 7000);
	/* FUSE_ROOT_ID and 0 are never handed out */
	g_assert_cmpuint(fs_node_msg_get(tr.t, tr.work, a, 0)->ino, >, 1);
	fs_node_table_free(tr.t);
}

static void
test_removed_dir_lives_while_held(void)
{
	Tree tr;
	g_autoptr(StoreMessage) m = message_new("work", 9);
	FsNode *n;

	tree_init(&tr);
	n = fs_node_msg_get(tr.t, tr.work, m, 9000);
	fs_node_ref_lookup(n);
	fs_node_ref_lookup(tr.work);
	fs_node_dir_detach(tr.t, tr.work);
	g_assert_null(g_hash_table_lookup(tr.root->subdirs, "work"));
	/* still there: the kernel holds it and a message in it */
	g_assert_true(fs_node_table_get(tr.t, 300) == tr.work);
	g_assert_false(fs_node_forget(tr.t, tr.work, 1));
	g_assert_true(fs_node_table_get(tr.t, 300) == tr.work);
	/* forgetting the message frees both */
	g_assert_true(fs_node_forget(tr.t, n, 1));
	g_assert_null(fs_node_table_get(tr.t, 300));
	g_assert_cmpuint(fs_node_table_count(tr.t, FS_NODE_DIR), ==, 2);
	fs_node_table_free(tr.t);
}

static void
test_repoint_keeps_inode(void)
{
	Tree tr;
	g_autoptr(StoreMessage) m = message_new("INBOX", 4);
	g_autoptr(StoreMessage) moved = message_new("work", 77);
	FsNode *n;

	tree_init(&tr);
	n = fs_node_msg_get(tr.t, tr.inbox, m, 4000);
	fs_node_ref_lookup(n);
	fs_node_msg_repoint(tr.t, n, tr.work, moved);
	g_assert_cmpuint(n->ino, ==, 4000);
	g_assert_null(fs_node_msg_find(tr.t, tr.inbox, 4));
	g_assert_true(fs_node_msg_find(tr.t, tr.work, 77) == n);
	g_assert_true(fs_node_msg_get(tr.t, tr.work, moved, 12345) == n);
	g_assert_cmpstr(store_message_get_info(n->msg)->mailbox, ==, "work");
	g_assert_cmpuint(tr.inbox->holds, ==, 0);
	g_assert_cmpuint(tr.work->holds, ==, 1);
	/* gone: out of the map, readable by inode until forgotten */
	fs_node_msg_gone(tr.t, n);
	g_assert_null(fs_node_msg_find(tr.t, tr.work, 77));
	g_assert_true(fs_node_table_get(tr.t, 4000) == n);
	g_assert_true(fs_node_forget(tr.t, n, 1));
	g_assert_cmpuint(tr.work->holds, ==, 0);
	fs_node_table_free(tr.t);
}

static void
test_dir_move(void)
{
	Tree tr;

	tree_init(&tr);
	fs_node_dir_move(tr.t, tr.work, tr.inbox, "job");
	g_assert_null(g_hash_table_lookup(tr.root->subdirs, "work"));
	g_assert_true(g_hash_table_lookup(tr.inbox->subdirs, "job") == tr.work);
	g_assert_cmpuint(tr.work->ino, ==, 300);
	g_assert_cmpuint(tr.root->holds, ==, 1);
	g_assert_cmpuint(tr.inbox->holds, ==, 1);
	fs_node_table_free(tr.t);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/node/lookup-and-forget", test_lookup_and_forget);
	g_test_add_func("/node/collision-and-root", test_collision_and_root);
	g_test_add_func("/node/removed-dir-lives-while-held", test_removed_dir_lives_while_held);
	g_test_add_func("/node/repoint-keeps-inode", test_repoint_keeps_inode);
	g_test_add_func("/node/dir-move", test_dir_move);
	return g_test_run();
}
