/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs.h: the FUSE binding's internal header: the one context struct (reached through
 * fuse_req_userdata(), no mutable globals), the inode table's nodes, and the seams between
 * the files of fs/. Only fs/ includes it; it includes the store facade and nothing below.
 *
 * Lock order: fs->lock (inode table and every FsNode field marked so) -> store->lock ->
 * body locks. No lock is held across a store *_sync() call, a fuse_reply_*() or a
 * fuse_lowlevel_notify_*() call.
 */
#pragma once

#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>
#include <glib.h>
#include <sys/stat.h>

#include "naming.h"
#include "store.h"

/* ---- options (options.c) ----------------------------------------------------------- */

typedef struct {
	char *url;
	char *mountpoint; /* absolute (realpath) */
	char *root;	  /* "/root" subtree from the URL, decoded, or NULL */
	ImapConfig imap;  /* host, port, tls, user, password, ... */
	NamingMode names;
	gboolean foreground;
	gboolean debug_fuse;
	gboolean debug_imap;
	char *trace_file;
	char *password_command;
	char *password_file;
	char *cafile;
	char *tls_fingerprint;
	char *tls;
	char *names_opt;
	char *max_conns_opt; /* -o max_conns= (as given) */
	char *timeout_opt;   /* -o timeout= (as given) */
	int max_conns;
	int timeout; /* seconds */
	int mark_seen;
	int allow_insecure_auth;
	char *cache_dir;      /* -o cache_dir= (as given) */
	char *cache_size_opt; /* -o cache_size= */
	guint64 cache_size;   /* bytes, 0 = default */
	int no_cache;
	int offline;
	char *sync_opt;	 /* -o sync= */
	StoreSync sync;	 /* parsed, default STORE_SYNC_HEADERS */
	int allow_coredump; /* -o allow_coredump: stay dumpable and ptrace-able */
	int show_help;
	int show_version;
	int extra_args;		    /* non-option arguments beyond the two */
	struct fuse_args fuse_args; /* what remains for libfuse */
} FsOptions;

/* Parses argv. Prints one "imapfs: ..." line and returns FALSE on a bad command line;
 * --help and --version set the fields and return TRUE. */
gboolean fs_options_parse(FsOptions *opts, int argc, char **argv);
/* Fetches the password (password_command, password_file, IMAPFS_PASSWORD, tty prompt).
 * Prints one line and returns FALSE on failure. Call before forking. */
gboolean fs_options_get_password(FsOptions *opts);
void fs_options_print_help(const char *progname);
void fs_options_clear(FsOptions *opts);

/* ---- nodes (inode.c) -------------------------------------------------------------- */

typedef enum {
	FS_NODE_DIR,
	FS_NODE_MSG,
} FsNodeKind;

typedef struct _FsNode FsNode;
struct _FsNode {
	fuse_ino_t ino;	 /* immutable */
	FsNodeKind kind; /* immutable */
	FsNode *parent;	 /* immutable; NULL for the tree root */
	char *name;	 /* immutable */
	/* directories: */
	StoreFolder *folder;  /* immutable; NULL for a directory no mailbox backs */
	GHashTable *subdirs;  /* name -> FsNode*; protected by fs->lock */
	GHashTable *msgs;     /* name -> FsNode*, NULL until listed; protected by fs->lock */
	GPtrArray *msg_order; /* FsNode* by UID; protected by fs->lock */
	/* messages: */
	StoreMessage *msg; /* immutable ref */
	gboolean gone;	   /* expunged; protected by fs->lock */
};

/* Nodes are never freed while the filesystem is mounted (they are small); forget() is a
 * no-op. Issue 5 (stable inodes from the cache) can add real lookup counting. */

typedef struct _FsNotify FsNotify;

typedef struct {
	FsOptions *opts; /* immutable after start-up */
	Store *store;
	struct fuse_session *se;
	FsNotify *notify;
	GMutex lock;
	GHashTable *inodes;	  /* &ino -> FsNode*; protected by lock */
	FsNode *tree_root;	  /* the account's top; protected by lock */
	FsNode *root;		  /* the node shown as the mount's root (FUSE_ROOT_ID) */
	GPtrArray *namespaces;	  /* StoreNamespace*, immutable after start-up */
	gint64 tree_time;	  /* when the folder list was last fetched; protected by lock */
	gboolean tree_refreshing; /* protected by lock */
	GHashTable *dir_handles; /* set of the snapshots handed out by opendir; protected by lock */
	time_t mount_time;
	uid_t uid;
	gid_t gid;
} Fs;

Fs *fs_new(FsOptions *opts, Store *store);
void fs_free(Fs *fs);
/* Lists the account and builds the directory tree; selects the mount root (opts->root). */
gboolean fs_tree_build_sync(Fs *fs, GError **error);
/* Adds folders created on the server since the last LIST older than @max_age_us. */
gboolean fs_tree_refresh_sync(Fs *fs, gint64 max_age_us, GCancellable *cancel, GError **error);
/* The node of @ino, or NULL. Nodes stay valid for the life of @fs. */
FsNode *fs_node_lookup(Fs *fs, fuse_ino_t ino);
/* The child @name of directory @dir, or NULL. Touches the network only when @name could be
 * a message and the folder was never listed. Sets @error only on a network failure. */
FsNode *fs_dir_find_sync(Fs *fs, FsNode *dir, const char *name, GCancellable *cancel,
			 GError **error);
/* Refreshes the message list of @dir when older than @max_age_us. */
gboolean fs_dir_refresh_sync(Fs *fs, FsNode *dir, gint64 max_age_us, GCancellable *cancel,
			     GError **error);

typedef struct {
	char *name;
	fuse_ino_t ino;
	FsNode *node;
} FsDirEntry;
/* Snapshot of a directory: ".", "..", subdirectories, then messages by UID. Owning array
 * of FsDirEntry*. */
GPtrArray *fs_dir_snapshot(Fs *fs, FsNode *dir);
/* Frees a snapshot (releasedir). Those never released (a lazy unmount ends the session
 * without RELEASEDIR) are freed by fs_free(). */
void fs_dir_snapshot_free(Fs *fs, GPtrArray *snapshot);

/* Attributes of a node (no network). */
void fs_node_stat(Fs *fs, FsNode *node, struct stat *st);
double fs_node_entry_timeout(FsNode *node);
double fs_node_attr_timeout(FsNode *node);

/* ---- xattrs (xattr.c) ------------------------------------------------------------- */

/* 0 and the value (owned) of xattr @name of @node, or a positive errno. */
int fs_xattr_get(Fs *fs, FsNode *node, const char *name, GBytes **value, GCancellable *cancel);
/* The NUL-separated name list of @node. */
GBytes *fs_xattr_list(Fs *fs, FsNode *node);

/* ---- errors (errmap.c): the only GError -> errno mapping ------------------------- */

int fs_errno_from_error(const GError *error);
/* One line for a start-up failure ("cannot connect to ...: ..."). */
char *fs_describe_startup_error(const FsOptions *opts, const GError *error);

/* ---- kernel cache invalidation (notify.c) ----------------------------------------- */

FsNotify *fs_notify_new(struct fuse_session *se);
void fs_notify_free(FsNotify *n);
/* Queue an invalidation; done later on the notify thread, never under a lock. */
void fs_notify_inval_inode(FsNotify *n, fuse_ino_t ino);
void fs_notify_inval_entry(FsNotify *n, fuse_ino_t parent, const char *name);

/* ---- operations (ops.c) ----------------------------------------------------------- */

extern const struct fuse_lowlevel_ops fs_ops;
