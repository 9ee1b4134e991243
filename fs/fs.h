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
#include "node.h"
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
	/* freshness timers, seconds (tests set them short instead of sleeping): */
	int dir_max_age;     /* a folder's listing, re-checked on opendir */
	int flags_max_age;   /* flags, re-checked on getxattr */
	int folders_max_age; /* the folder list, re-LISTed on opendir */
	int offline_retry;   /* reconnect attempts while offline */
	char *dir_max_age_opt, *flags_max_age_opt, *folders_max_age_opt, *offline_retry_opt;
	/* following the server (-o live=, idle_max=, poll=; store/watch.c): */
	char *live_opt, *idle_max_opt, *poll_opt;
	StoreLive live; /* default STORE_LIVE_AUTO */
	int idle_max;	/* IDLE connections at most */
	int poll;	/* seconds between polling rounds, 0: never */
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

/* ---- the tree (tree.c) and its nodes (node.c) ---------------------------------------- */

typedef struct _FsNotify FsNotify;
typedef struct _FsInval FsInval; /* notify.c */

typedef struct {
	FsOptions *opts; /* immutable after start-up */
	Store *store;
	struct fuse_session *se;
	FsNotify *notify;
	GMutex lock;
	FsNodeTable *nodes;	  /* every node the kernel or the mount holds; protected by lock */
	GHashTable *dir_handles;  /* the snapshots handed out by opendir; protected by lock */
	gint freed;		  /* atomic: records freed since the last malloc_trim */
	GHashTable *dirs;	  /* StoreFolder* -> FsNode* directory in the tree; protected by
				   * lock */
	FsNode *tree_root;	  /* the account's top; protected by lock */
	FsNode *root;		  /* the node shown as the mount's root (FUSE_ROOT_ID) */
	GPtrArray *namespaces;	  /* StoreNamespace*, immutable after start-up */
	gint64 tree_time;	  /* when the folder list was last fetched; protected by lock */
	gboolean tree_refreshing; /* protected by lock */
	time_t mount_time;
	uid_t uid;
	gid_t gid;
} Fs;

Fs *fs_new(FsOptions *opts, Store *store);
void fs_free(Fs *fs);
/* Lists the account and builds the directory tree; selects the mount root (opts->root).
 * From then on the store's events keep the tree current (events.c). */
gboolean fs_tree_build_sync(Fs *fs, GError **error);
/* Re-LISTs the folders when the last LIST is older than @max_age_us; what appeared or
 * vanished comes back as store events. */
gboolean fs_tree_refresh_sync(Fs *fs, gint64 max_age_us, GCancellable *cancel, GError **error);
/* Under fs->lock: adds the directories of @folder (and any missing parents); returns the
 * topmost directory it created, or NULL when all existed. */
FsNode *fs_tree_add_folder_locked(Fs *fs, StoreFolder *folder);
/* The node of @ino, or NULL. Valid while the kernel holds @ino (or the caller a hold). */
FsNode *fs_node_get(Fs *fs, fuse_ino_t ino);
/* The child @name of directory @dir, with one kernel lookup counted on it, or NULL.
 * Touches the network only when @name could be a message and the folder was never
 * listed. Sets @error only on a network failure. */
FsNode *fs_dir_lookup_sync(Fs *fs, FsNode *dir, const char *name, GCancellable *cancel,
			   GError **error);
/* Refreshes the message list of @dir when older than @max_age_us, applying the diff to
 * its index. */
gboolean fs_dir_refresh_sync(Fs *fs, FsNode *dir, gint64 max_age_us, GCancellable *cancel,
			     GError **error);
/* The inode number a message has (or will have) in @dir, without creating its node. */
fuse_ino_t fs_msg_ino_locked(Fs *fs, FsNode *dir, StoreMessage *msg);
/* Under fs->lock: message @uid (named @name) left directory @dir: its node, if any, is
 * gone, and the kernel is told through @inval. */
void fs_dir_msg_gone_locked(Fs *fs, FsNode *dir, guint32 uid, const char *name, FsInval *inval);
/* The file name of @msg. */
char *fs_msg_name(Fs *fs, StoreMessage *msg);

/* A directory listing as it was at opendir, held by the directory handle. */
typedef struct {
	char *name;	   /* ".", "..", subdirectories (owned); NULL for a message */
	FsNode *node;	   /* "." / ".." / subdirectories (held), or NULL */
	StoreMessage *msg; /* messages (ref), or NULL */
} FsDirEntry;
typedef struct {
	FsNode *dir;	 /* held */
	GArray *entries; /* FsDirEntry: ".", "..", subdirectories by name, messages by UID */
	StoreFolder *folder; /* ref, or NULL: the folder this handle keeps open */
} FsDirSnapshot;

/* An open file (fi->fh). */
typedef struct {
	StoreBody *body;     /* a message's content (read-only) */
	StoreFolder *folder; /* ref, or NULL: the folder this handle keeps open */
} FsFile;
/* The name of entry @e of @snap (owned): a message's from the directory index, or made
 * again from the message when it left the index since. */
char *fs_dir_entry_name(Fs *fs, FsDirSnapshot *snap, const FsDirEntry *e);

FsDirSnapshot *fs_dir_snapshot_new(Fs *fs, FsNode *dir);
/* Frees a snapshot (releasedir). Those never released (a lazy unmount ends the session
 * without RELEASEDIR) are freed by fs_free(). */
void fs_dir_snapshot_free(Fs *fs, FsDirSnapshot *snap);

/* @n records (nodes, index entries, messages) were just freed: after enough of them the
 * freed heap is handed back to the system (malloc_trim), so that RSS follows what the
 * kernel and the server hold, not the high-water mark. */
void fs_memory_freed(Fs *fs, guint n);

/* Attributes of a node (no network). */
void fs_node_stat(Fs *fs, FsNode *node, struct stat *st);
double fs_node_entry_timeout(FsNode *node);
double fs_node_attr_timeout(FsNode *node);

/* ---- change events (events.c): the one place store changes reach the tree ---------- */

/* The StoreEventFn of the mount: updates directories and indexes, queues kernel
 * invalidations (never under a lock). */
void fs_apply_event(const StoreEvent *event, gpointer fs);

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
/* The entry @name (inode @child) of @parent is gone: inotify watchers see a deletion. */
void fs_notify_delete(FsNotify *n, fuse_ino_t parent, fuse_ino_t child, const char *name);

/* Invalidations collected under fs->lock and queued after the unlock. */
struct _FsInval {
	GArray *items; /* private */
};
void fs_inval_init(FsInval *v);
/* @child 0: invalidate the entry @name of @parent; else tell its deletion. */
void fs_inval_add(FsInval *v, fuse_ino_t parent, fuse_ino_t child, const char *name);
/* Queues everything (call with no lock held) and clears @v. */
void fs_inval_flush(FsInval *v, FsNotify *n);

/* ---- operations (ops.c) ----------------------------------------------------------- */

extern const struct fuse_lowlevel_ops fs_ops;
