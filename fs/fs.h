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
	int read_only;	    /* -o ro (also passed on to libfuse): every write is EROFS */
	char *expunge_opt;	  /* -o expunge=close|immediate|never */
	StoreExpunge expunge;	  /* parsed, default STORE_EXPUNGE_CLOSE */
	char *expunge_delay_opt;  /* -o expunge_delay=SECONDS (decimals allowed) */
	gint64 expunge_delay_us;  /* parsed, default 2 s */
	int show_help;
	int show_version;
	int extra_args;		    /* non-option arguments beyond the two */
	struct fuse_args fuse_args; /* what remains for libfuse */
	/* accounts and OAuth2 (config.c, command.c): */
	char *oauth_token_command; /* -o oauth_token_command= */
	char *account;		   /* "imapfs NAME MOUNTPOINT": the [account NAME] used */
	char *config_password;	   /* that account's password key (wiped when freed) */
	char **config_argv;	   /* argv with the account's options (fs_config_apply) */
} FsOptions;

/* Parses argv. Prints one "imapfs: ..." line and returns FALSE on a bad command line;
 * --help and --version set the fields and return TRUE. */
gboolean fs_options_parse(FsOptions *opts, int argc, char **argv);
/* Fetches the password (password_command, password_file, IMAPFS_PASSWORD, tty prompt).
 * Prints one line and returns FALSE on failure. Call before forking. */
gboolean fs_options_get_password(FsOptions *opts);
void fs_options_print_help(const char *progname);
void fs_options_clear(FsOptions *opts);
/* 0 when @key is no -o option of imapfs, 1 for a flag, 2 for "key=VALUE". */
int fs_options_kind(const char *key);

/* ---- accounts (config.c) and the secret-giving commands (command.c) ----------------- */

/* When the first non-option argument of @argv is no URL but an account NAME, reads
 * $XDG_CONFIG_HOME/imapfs/config, checks it whole, and replaces @argc and @argv with the
 * account's options (as -o arguments, before those of the command line, which so
 * override them) and its url (owned by @opts->config_argv); the password key goes to
 * @opts->config_password, never into argv. Prints one "imapfs: FILE:LINE: KEY: ..."
 * line and returns FALSE on a problem. */
gboolean fs_config_apply(FsOptions *opts, int *argc, char ***argv);
/* The account config file ($XDG_CONFIG_HOME/imapfs/config). */
char *fs_config_path(void);

#define FS_COMMAND_ERROR (fs_command_error_quark())
GQuark fs_command_error_quark(void);
/* Runs @cmd with /bin/sh -c (standard input inherited, standard error too) and returns
 * the first line of its output, or NULL and @error ("@what failed: ...") when it fails,
 * prints nothing, or runs longer than @timeout_s (then it is killed). Blocks. */
char *fs_command_first_line(const char *what, const char *cmd, guint timeout_s,
			    GError **error);
/* The ImapConfig.oauth_token_fn of the mount (@data: the FsOptions): runs
 * oauth_token_command, bounded by -o timeout. Thread-safe. */
char *fs_oauth_token(gpointer data, GError **error);

/* ---- the tree (tree.c) and its nodes (node.c) ---------------------------------------- */

typedef struct _FsNotify FsNotify;
typedef struct _FsInval FsInval; /* notify.c */
typedef struct _FsRenamer FsRenamer; /* rename.c */
typedef struct _FsNewFiles FsNewFiles; /* newfile.c */
typedef struct _FsNewFile FsNewFile;

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
	FsRenamer *renamer;	  /* rename.c's delayed invalidations, created on first use;
				   * protected by lock */
	FsNewFiles *newfiles;	  /* staged new files (newfile.c); protected by lock */
	GHashTable *own_changes;  /* "dir-ino/name" -> count: entries an operation running
				   * now changes itself (fs_own_change_begin); protected by lock */
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
	char *name;	   /* ".", "..", subdirectories, staged new files (owned); NULL for
			    * a message */
	FsNode *node;	   /* "." / ".." / subdirectories (held), or NULL */
	StoreMessage *msg; /* messages (ref), or NULL */
} FsDirEntry;		   /* a staged new file (newfile.c) has neither node nor msg */
typedef struct {
	FsNode *dir;	 /* held */
	GArray *entries; /* FsDirEntry: ".", "..", subdirectories by name, messages by UID */
	StoreFolder *folder; /* ref, or NULL: the folder this handle keeps open */
} FsDirSnapshot;

/* An open file (fi->fh). */
typedef struct {
	StoreBody *body;     /* a message's content (read-only), or NULL for a new file */
	StoreFolder *folder; /* ref, or NULL: the folder this handle keeps open */
	FsNewFile *nf;	     /* a staged new file (ref), or NULL */
	gboolean active;     /* nf: written (or opened for writing) since its last flush */
} FsFile;
/* The name of entry @e of @snap (owned): a message's from the directory index, or made
 * again from the message when it left the index since. */
char *fs_dir_entry_name(Fs *fs, FsDirSnapshot *snap, const FsDirEntry *e);

FsDirSnapshot *fs_dir_snapshot_new(Fs *fs, FsNode *dir);
/* Frees a snapshot (releasedir). Those never released (a lazy unmount ends the session
 * without RELEASEDIR) are freed by fs_free(). */
void fs_dir_snapshot_free(Fs *fs, FsDirSnapshot *snap);

/* An unlink or rename of @name in directory @dir is running: when it succeeds the kernel
 * updates its own entry, so the store's events for that entry meanwhile queue no kernel
 * invalidation (a notify_delete would wait for the directory lock the operation holds,
 * and a crash in between would leave it stuck there). Pair with fs_own_change_end().
 * Under no lock. */
void fs_own_change_begin(Fs *fs, fuse_ino_t dir, const char *name);
void fs_own_change_end(Fs *fs, fuse_ino_t dir, const char *name);
/* Under fs->lock: is an operation changing @name of @dir itself? */
gboolean fs_own_change_locked(Fs *fs, fuse_ino_t dir, const char *name);

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

/* ---- new files (newfile.c) ---------------------------------------------------------- */

/* A file created in a folder is staged (its bytes in a private file of the store) and
 * sent (APPEND, or UID COPY for a cp within the mount) when its last writing handle is
 * flushed; see the top of newfile.c for the names that wait (temporary names, empty
 * files). Staged files have inodes of their own, outside the node table: the handlers
 * ask these functions first. Errors are positive errnos. */

/* A leading '.' or '#', or a trailing '~': a tool's temporary or backup name. */
gboolean fs_newfile_is_temp_name(const char *name);
/* The IMAP flags of a Maildir file name's ":2,<letters>" info (F R S D; T and the rest are
 * ignored); an owning NULL-terminated array, empty when none. */
char **fs_newfile_maildir_flags(const char *name);
/* create: stages @name in @dir; *@out (a ref for the handle) and @e (one lookup counted). */
int fs_newfile_create(Fs *fs, FsNode *dir, const char *name, FsNewFile **out,
		      struct fuse_entry_param *e);
/* The staged file with inode @ino (a ref), or NULL. */
FsNewFile *fs_newfile_get(Fs *fs, fuse_ino_t ino);
void fs_newfile_unref(Fs *fs, FsNewFile *nf);
/* TRUE and @e (one lookup counted) when @name in @dir is a staged file. */
gboolean fs_newfile_lookup(Fs *fs, FsNode *dir, const char *name, struct fuse_entry_param *e);
void fs_newfile_stat(Fs *fs, FsNewFile *nf, struct stat *st);
/* TRUE when @ino is a staged file's (its lookups dropped). */
gboolean fs_newfile_forget(Fs *fs, fuse_ino_t ino, guint64 nlookup);
int fs_newfile_open(Fs *fs, FsNewFile *nf, int flags, GCancellable *cancel);
/* The handle goes (@active: it was not flushed since its last write). */
void fs_newfile_release(Fs *fs, FsNewFile *nf, gboolean active);
/* Bytes written (>= 0) or a negative errno. *@reactivate: in TRUE when the handle was
 * flushed since (it counts as writing again); set FALSE once counted. */
int fs_newfile_write(Fs *fs, FsNewFile *nf, const char *buf, size_t size, off_t off,
		     gboolean *reactivate, GCancellable *cancel);
gssize fs_newfile_read(Fs *fs, FsNewFile *nf, char *buf, size_t size, off_t off,
		       GCancellable *cancel);
/* truncate (the staged bytes), utimens (mtime: the INTERNALDATE), chmod/chown (ignored). */
int fs_newfile_setattr(Fs *fs, FsNewFile *nf, const struct stat *attr, int to_set,
		       GCancellable *cancel);
/* copy_file_range of the whole message @msg into the empty @nf: marks it a server copy;
 * EXDEV for anything else (the caller falls back to read and write). */
int fs_newfile_copy_from(Fs *fs, FsNewFile *nf, StoreMessage *msg, off_t off_in, off_t off_out,
			 size_t len, size_t *copied);
/* flush of a handle (*@active cleared): the last writing handle sends the file. */
int fs_newfile_flush(Fs *fs, FsNewFile *nf, gboolean *active, GCancellable *cancel);
/* For op_unlink and op_rename, called first: TRUE when @name in @dir is a staged file,
 * then *@err is the answer. A rename moves the staged file (to any folder); to a plain
 * name with no writer left it is sent now (the rename returns the send's error). */
gboolean fs_newfile_unlink(Fs *fs, FsNode *dir, const char *name, int *err);
gboolean fs_newfile_rename(Fs *fs, FsNode *dir, const char *name, FsNode *newdir,
			   const char *newname, unsigned int flags, int *err);
/* The staged names shown in @dir (owning array of strings). */
GPtrArray *fs_newfile_names(Fs *fs, FsNode *dir);
/* At fs_free(). */
void fs_newfile_free_all(Fs *fs);

/* ---- xattrs (xattr.c) ------------------------------------------------------------- */

/* 0 and the value (owned) of xattr @name of @node, or a positive errno. */
int fs_xattr_get(Fs *fs, FsNode *node, const char *name, GBytes **value, GCancellable *cancel);
/* The NUL-separated name list of @node. */
GBytes *fs_xattr_list(Fs *fs, FsNode *node);
/* setxattr: user.imap.flags and user.xdg.tags of a message change its flags on the server
 * (one STORE per mode); @flags are XATTR_CREATE/XATTR_REPLACE. 0 or a positive errno. */
int fs_xattr_set(Fs *fs, FsNode *node, const char *name, const char *value, size_t size,
		 int flags, GCancellable *cancel);
/* removexattr: user.imap.flags clears every flag, user.xdg.tags every keyword. */
int fs_xattr_remove(Fs *fs, FsNode *node, const char *name, GCancellable *cancel);

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

/* ---- mv and ln of messages (rename.c) ---------------------------------------------- */

/* rename(2) of @parent/@name to @newparent/@newname: a message moved to another folder
 * (store_message_move_sync); 0 or a positive errno. The kernel invalidations to queue
 * after the reply are added to @after. */
int fs_rename_sync(Fs *fs, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		   const char *newname, unsigned int flags, GCancellable *cancel, FsInval *after);
/* link(2) of message @ino as @newparent/@newname: UID COPY (store_message_copy_sync).
 * Returns the node of the new entry with one kernel lookup counted, or NULL with *@err. */
FsNode *fs_link_sync(Fs *fs, fuse_ino_t ino, fuse_ino_t newparent, const char *newname,
		     GCancellable *cancel, FsInval *after, int *err);
/* Stops rename.c's thread (pending invalidations are dropped): before the notifier goes. */
void fs_rename_stop(Fs *fs);

/* ---- operations (ops.c) ----------------------------------------------------------- */

extern const struct fuse_lowlevel_ops fs_ops;
