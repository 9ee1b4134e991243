/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * options.c: the command line (URL, mountpoint, -o options of imapfs, the rest for
 * libfuse) and the password sources in their documented order. Every failure prints one
 * "imapfs: ..." line. Secrets never come from argv and are wiped when freed.
 */
#define G_LOG_DOMAIN "imapfs"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "fs.h"

/* clang-format off */
#define OPT(t, field) {t, offsetof(FsOptions, field), 1}
/* clang-format on */

enum { KEY_MOUNT_ONLY = 1 };

static const struct fuse_opt opt_spec[] = {
	OPT("password_command=%s", password_command),
	OPT("password_file=%s", password_file),
	OPT("cafile=%s", cafile),
	OPT("tls_fingerprint=%s", tls_fingerprint),
	OPT("tls=%s", tls),
	OPT("allow_insecure_auth", allow_insecure_auth),
	OPT("max_conns=%s", max_conns_opt),
	OPT("timeout=%s", timeout_opt),
	OPT("names=%s", names_opt),
	OPT("mark_seen", mark_seen),
	OPT("debug_imap", debug_imap),
	OPT("trace_file=%s", trace_file),
	OPT("cache_dir=%s", cache_dir),
	OPT("cache_size=%s", cache_size_opt),
	OPT("no_cache", no_cache),
	OPT("offline", offline),
	OPT("sync=%s", sync_opt),
	OPT("dir_max_age=%s", dir_max_age_opt),
	OPT("flags_max_age=%s", flags_max_age_opt),
	OPT("folders_max_age=%s", folders_max_age_opt),
	OPT("offline_retry=%s", offline_retry_opt),
	OPT("live=%s", live_opt),
	OPT("idle_max=%s", idle_max_opt),
	OPT("poll=%s", poll_opt),
	OPT("allow_coredump", allow_coredump),
	OPT("oauth_token_command=%s", oauth_token_command),
	/* what mount(8) and fstab put in -o that means nothing to a FUSE mount (mount.fuse3
	 * drops most of them; run by hand, "imapfs NAME DIR -o noauto,user" must work too) */
	FUSE_OPT_KEY("auto", KEY_MOUNT_ONLY),
	FUSE_OPT_KEY("noauto", KEY_MOUNT_ONLY),
	FUSE_OPT_KEY("user", KEY_MOUNT_ONLY),
	FUSE_OPT_KEY("user=", KEY_MOUNT_ONLY),
	FUSE_OPT_KEY("nouser", KEY_MOUNT_ONLY),
	FUSE_OPT_KEY("users", KEY_MOUNT_ONLY),
	FUSE_OPT_KEY("owner", KEY_MOUNT_ONLY),
	FUSE_OPT_KEY("group", KEY_MOUNT_ONLY),
	FUSE_OPT_KEY("_netdev", KEY_MOUNT_ONLY),
	FUSE_OPT_KEY("nofail", KEY_MOUNT_ONLY),
	FUSE_OPT_KEY("defaults", KEY_MOUNT_ONLY),
	FUSE_OPT_KEY("comment=", KEY_MOUNT_ONLY),
	OPT("ro", read_only),
	FUSE_OPT_KEY("ro", FUSE_OPT_KEY_KEEP), /* and libfuse mounts read-only */
	OPT("expunge=%s", expunge_opt),
	OPT("expunge_delay=%s", expunge_delay_opt),
	OPT("-h", show_help),
	OPT("--help", show_help),
	OPT("-V", show_version),
	OPT("--version", show_version),
	FUSE_OPT_END,
};

/* fuse_opt_parse() hands the option struct itself to the callback. */
static int
opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	FsOptions *o = data;

	if (key == KEY_MOUNT_ONLY || (key == FUSE_OPT_KEY_OPT && g_str_has_prefix(arg, "x-")))
		return 0; /* mount(8)'s own (x-systemd.automount, ...): dropped */
	if (key != FUSE_OPT_KEY_NONOPT)
		return 1;
	if (o->url == NULL)
		o->url = g_strdup(arg);
	else if (o->mountpoint == NULL)
		o->mountpoint = g_strdup(arg);
	else
		o->extra_args++;
	return 0;
}

int
fs_options_kind(const char *key)
{
	gsize n = strlen(key);

	for (const struct fuse_opt *s = opt_spec; s->templ != NULL; s++) {
		if (s->offset == (unsigned long)-1 || s->templ[0] == '-' || strncmp(s->templ, key, n) != 0)
			continue;
		if (s->templ[n] == '\0')
			return 1;
		if (!strcmp(s->templ + n, "=%s"))
			return 2;
	}
	return 0;
}

void
fs_options_print_help(const char *progname)
{
	g_autofree char *config = fs_config_path();

	printf("usage: %s [options] URL MOUNTPOINT\n"
	       "       %s [options] ACCOUNT MOUNTPOINT\n"
	       "\n"
	       "URL: imaps://[user@]host[:port][/root]  (implicit TLS, port 993)\n"
	       "     imap://[user@]host[:port][/root]   (STARTTLS required, port 143)\n"
	       "ACCOUNT: an [account NAME] section of %s\n"
	       "     (url = URL and any option below as key = value; the command line wins)\n"
	       "\n"
	       "imapfs options:\n"
	       "    -o password_command=CMD  run CMD, use the first line of its output\n"
	       "    -o password_file=PATH    read the password from PATH (mode 0600 or stricter)\n"
	       "                             (else $IMAPFS_PASSWORD, else the account's password\n"
	       "                             key, else a prompt on the tty)\n"
	       "    -o oauth_token_command=CMD  log in with OAuth2 (OAUTHBEARER or XOAUTH2):\n"
	       "                             the first line of CMD's output is the access token;\n"
	       "                             CMD runs again at every (re)connection\n"
	       "    -o cafile=PATH           trust the CA certificates in PATH\n"
	       "    -o tls_fingerprint=SHA256:HEX  pin the server certificate\n"
	       "    -o tls=none              no TLS (loopback hosts only)\n"
	       "    -o allow_insecure_auth   allow tls=none to other hosts\n"
	       "    -o max_conns=N           IMAP connections (default: 4)\n"
	       "    -o timeout=SECONDS       network timeout (default: 30)\n"
	       "    -o names=readable|uid    message file names (default: readable)\n"
	       "    -o mark_seen             reading a message sets \\Seen (default: off)\n"
	       "    -o debug_imap            protocol trace (secrets redacted) to stderr\n"
	       "    -o trace_file=PATH       protocol trace to PATH instead\n"
	       "    -o cache_dir=PATH        header and body cache (default:\n"
	       "                             $XDG_CACHE_HOME/imapfs/USER@HOST:PORT)\n"
	       "    -o cache_size=BYTES      body cache cap, K/M/G suffixes (default: 1G)\n"
	       "    -o no_cache              no on-disk cache\n"
	       "    -o offline               no network: serve what the cache holds\n"
	       "    -o sync=POLICY           bodies kept on disk: none (headers only), headers\n"
	       "                             (the bodies read; default), new (also download\n"
	       "                             new mail in the background), all (every body)\n"
	       "    -o dir_max_age=SECONDS   re-list a folder on opendir when its listing is\n"
	       "                             older (default: 10; 0: every time)\n"
	       "    -o flags_max_age=SECONDS re-check flags on getxattr when older (default: 10)\n"
	       "    -o folders_max_age=SECONDS  re-LIST the folders on opendir when older\n"
	       "                             (default: 30)\n"
	       "    -o offline_retry=SECONDS when offline because the server was unreachable,\n"
	       "                             try it again at most this often (default: 15)\n"
	       "    -o expunge=POLICY        when messages removed with rm are expunged (only\n"
	       "                             ours, UID EXPUNGE): close (default: once no file\n"
	       "                             or listing of the folder is open and it was quiet\n"
	       "                             for expunge_delay, and at unmount), immediate,\n"
	       "                             never (only \\Deleted)\n"
	       "    -o expunge_delay=SECONDS quiet time before expunge=close acts (default: 2)\n"
	       "    -o live=MODE             follow changes on the server: auto (NOTIFY for\n"
	       "                             every folder when offered, else IDLE on the\n"
	       "                             folders in use and polling; default), idle (no\n"
	       "                             NOTIFY), poll (polling only), off\n"
	       "    -o idle_max=N            IDLE connections at most (default: 2; 0: none)\n"
	       "    -o poll=SECONDS          polling interval for folders no push covers\n"
	       "                             (default: 60; 0: never)\n"
	       "    -o allow_coredump        for debugging: allow core dumps and debuggers to\n"
	       "                             attach (they can see the password; default: off)\n"
	       "    -h, --help               this help\n"
	       "    -V, --version            the version\n"
	       "\n"
	       "FUSE options:\n",
	       progname, progname, config);
	fflush(stdout);
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

static gboolean
is_loopback(const char *host)
{
	return !g_ascii_strcasecmp(host, "localhost") || g_str_has_prefix(host, "127.") ||
	       !strcmp(host, "::1") || !strcmp(host, "[::1]");
}

/* Does @s hold a C0 control character or DEL (a %-escape decoded or not)? */
static gboolean
has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return TRUE;
	return FALSE;
}

/* A whole decimal number in [@min, @max], else one line naming the option and FALSE. */
static gboolean
parse_int(const char *name, const char *value, guint min, guint max, const char *unit, int *out)
{
	guint64 v;

	if (value == NULL)
		return TRUE; /* not given: the default stays */
	if (!g_ascii_string_to_unsigned(value, 10, min, max, &v, NULL)) {
		fprintf(stderr, "imapfs: bad %s=%s: a whole number from %u to %u%s expected\n",
			name, has_control(value) ? "..." : value, min, max, unit);
		return FALSE;
	}
	*out = (int)v;
	return TRUE;
}

static gboolean
parse_url(FsOptions *o)
{
	const char *u = o->url, *auth, *slash, *at, *hostp, *colon;
	g_autofree char *authority = NULL;
	ImapConfig *c = &o->imap;
	guint default_port;

	/* the URL goes into one-line messages (and the user into LOGIN): no line breaks */
	if (has_control(u)) {
		fprintf(stderr, "imapfs: bad URL: it contains a control character (CR, LF, ...)\n");
		return FALSE;
	}
	if (g_str_has_prefix(u, "imaps://")) {
		c->tls = IMAP_TLS_IMPLICIT;
		default_port = 993;
		auth = u + 8;
	} else if (g_str_has_prefix(u, "imap://")) {
		c->tls = IMAP_TLS_STARTTLS;
		default_port = 143;
		auth = u + 7;
	} else {
		fprintf(stderr,
			"imapfs: bad URL '%s': expected imaps://[user@]host[:port][/root] "
			"or imap://...\n",
			u);
		return FALSE;
	}
	slash = strchr(auth, '/');
	authority = slash ? g_strndup(auth, slash - auth) : g_strdup(auth);
	if (slash != NULL && slash[1] != '\0') {
		o->root = g_uri_unescape_string(slash, NULL);
		if (o->root == NULL) {
			fprintf(stderr, "imapfs: bad URL '%s': invalid %%-escape in the path\n", u);
			return FALSE;
		}
	}
	at = strrchr(authority, '@');
	if (at != NULL) {
		g_autofree char *user = g_strndup(authority, at - authority);

		c->user = g_uri_unescape_string(user, NULL);
		hostp = at + 1;
	} else {
		c->user = g_strdup(g_get_user_name());
		hostp = authority;
	}
	if (c->user == NULL || *c->user == '\0') {
		fprintf(stderr, "imapfs: bad URL '%s': empty user name\n", u);
		return FALSE;
	}
	if (has_control(c->user) || !g_utf8_validate(c->user, -1, NULL)) {
		fprintf(stderr,
			"imapfs: bad URL '%s': the user name has a control character or "
			"is not UTF-8\n",
			u);
		return FALSE;
	}
	if (o->root != NULL && (has_control(o->root) || !g_utf8_validate(o->root, -1, NULL))) {
		fprintf(stderr,
			"imapfs: bad URL '%s': the folder path has a control character or "
			"is not UTF-8\n",
			u);
		return FALSE;
	}
	if (*hostp == '[') {
		const char *end = strchr(hostp, ']');

		if (end == NULL) {
			fprintf(stderr, "imapfs: bad URL '%s': unclosed '['\n", u);
			return FALSE;
		}
		c->host = g_strndup(hostp + 1, end - hostp - 1);
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL) {
			fprintf(stderr, "imapfs: bad URL '%s': junk after the host\n", u);
			return FALSE;
		}
	} else {
		colon = strchr(hostp, ':');
		c->host = colon ? g_strndup(hostp, colon - hostp) : g_strdup(hostp);
	}
	if (*c->host == '\0' || strpbrk(c->host, " \t\r\n@?#") != NULL) {
		fprintf(stderr, "imapfs: bad URL '%s': missing or invalid host\n", u);
		return FALSE;
	}
	c->port = default_port;
	if (colon != NULL) {
		char *end;
		unsigned long p = strtoul(colon + 1, &end, 10);

		if (colon[1] == '\0' || *end != '\0' || p == 0 || p > 65535) {
			fprintf(stderr, "imapfs: bad URL '%s': invalid port\n", u);
			return FALSE;
		}
		c->port = p;
	}
	return TRUE;
}

/* "512M", "1G", "1048576" -> bytes; FALSE when malformed or zero. */
static gboolean
parse_size(const char *s, guint64 *out)
{
	const char *units = "KMGT", *u;
	char *end;
	guint64 v, mult = 1;

	if (!g_ascii_isdigit(*s))
		return FALSE;
	errno = 0;
	v = g_ascii_strtoull(s, &end, 10);
	if (errno != 0)
		return FALSE;
	u = *end ? strchr(units, g_ascii_toupper(*end)) : NULL;
	if (u != NULL) {
		mult = 1ULL << (10 * (u - units + 1));
		end++;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0' || v == 0 || v > G_MAXUINT64 / mult)
		return FALSE;
	*out = v * mult;
	return TRUE;
}

gboolean
fs_options_parse(FsOptions *o, int argc, char **argv)
{
	struct fuse_cmdline_opts cl = {0};
	struct stat st;
	char *real;

	if (!fs_config_apply(o, &argc, &argv))
		return FALSE;
	o->fuse_args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	o->max_conns = 4;
	o->timeout = 30;
	o->dir_max_age = 10;
	o->flags_max_age = 10;
	o->folders_max_age = 30;
	o->offline_retry = 15;
	o->expunge_delay_us = 2 * G_USEC_PER_SEC;
	o->idle_max = 2;
	o->poll = 60;
	o->imap.trace_fd = -1;
	if (fuse_opt_parse(&o->fuse_args, o, opt_spec, opt_proc) != 0)
		return FALSE; /* libfuse printed why */
	if (o->show_help || o->show_version)
		return TRUE;
	if (fuse_parse_cmdline(&o->fuse_args, &cl) != 0)
		return FALSE;
	o->foreground = cl.foreground;
	o->debug_fuse = cl.debug;
	if (cl.show_help || cl.show_version) {
		o->show_help = cl.show_help;
		o->show_version = cl.show_version;
		free(cl.mountpoint);
		return TRUE;
	}
	free(cl.mountpoint);
	if (o->extra_args) {
		fprintf(stderr, "imapfs: too many arguments (usage: imapfs [options] URL "
				"MOUNTPOINT)\n");
		return FALSE;
	}
	if (o->url == NULL || o->mountpoint == NULL) {
		fprintf(stderr, "imapfs: missing %s (usage: imapfs [options] URL MOUNTPOINT)\n",
			o->url == NULL ? "URL and MOUNTPOINT" : "MOUNTPOINT");
		return FALSE;
	}
	if (!parse_url(o))
		return FALSE;
	if (o->tls != NULL) {
		if (strcmp(o->tls, "none") != 0) {
			fprintf(stderr,
				"imapfs: unknown tls=%s (only tls=none; TLS is the "
				"default)\n",
				o->tls);
			return FALSE;
		}
		if (!is_loopback(o->imap.host) && !o->allow_insecure_auth) {
			fprintf(stderr,
				"imapfs: tls=none is refused for %s (not a loopback "
				"address) unless -o allow_insecure_auth is given\n",
				o->imap.host);
			return FALSE;
		}
		o->imap.tls = IMAP_TLS_NONE;
	}
	o->names = NAMING_READABLE;
	if (o->names_opt != NULL) {
		if (!strcmp(o->names_opt, "uid"))
			o->names = NAMING_UID;
		else if (strcmp(o->names_opt, "readable") != 0) {
			fprintf(stderr, "imapfs: unknown names=%s (readable or uid)\n",
				o->names_opt);
			return FALSE;
		}
	}
	if (!parse_int("max_conns", o->max_conns_opt, 1, 64, "", &o->max_conns) ||
	    !parse_int("timeout", o->timeout_opt, 1, 3600, " (seconds)", &o->timeout))
		return FALSE;
	if (!parse_int("dir_max_age", o->dir_max_age_opt, 0, 86400, " (seconds)",
		       &o->dir_max_age) ||
	    !parse_int("flags_max_age", o->flags_max_age_opt, 0, 86400, " (seconds)",
		       &o->flags_max_age) ||
	    !parse_int("folders_max_age", o->folders_max_age_opt, 0, 86400, " (seconds)",
		       &o->folders_max_age) ||
	    !parse_int("offline_retry", o->offline_retry_opt, 1, 86400, " (seconds)",
		       &o->offline_retry))
		return FALSE;
	if (o->expunge_opt != NULL) {
		if (!strcmp(o->expunge_opt, "close"))
			o->expunge = STORE_EXPUNGE_CLOSE;
		else if (!strcmp(o->expunge_opt, "immediate"))
			o->expunge = STORE_EXPUNGE_IMMEDIATE;
		else if (!strcmp(o->expunge_opt, "never"))
			o->expunge = STORE_EXPUNGE_NEVER;
		else {
			fprintf(stderr, "imapfs: bad expunge=%s (close, immediate or never)\n",
				o->expunge_opt);
			return FALSE;
		}
	}
	if (o->expunge_delay_opt != NULL) {
		char *end = NULL;
		double v = g_ascii_strtod(o->expunge_delay_opt, &end);

		if (end == o->expunge_delay_opt || *end != '\0' || !(v >= 0 && v <= 86400)) {
			fprintf(stderr, "imapfs: bad expunge_delay=%s (seconds, 0 to 86400)\n",
				o->expunge_delay_opt);
			return FALSE;
		}
		o->expunge_delay_us = (gint64)(v * G_USEC_PER_SEC);
	}
	if (!parse_int("idle_max", o->idle_max_opt, 0, 16, "", &o->idle_max) ||
	    !parse_int("poll", o->poll_opt, 0, 86400, " (seconds)", &o->poll))
		return FALSE;
	if (o->live_opt != NULL) {
		static const struct {
			const char *name;
			StoreLive live;
		} modes[] = {
			{"auto", STORE_LIVE_AUTO},
			{"idle", STORE_LIVE_IDLE},
			{"poll", STORE_LIVE_POLL},
			{"off", STORE_LIVE_OFF},
		};
		guint i;

		for (i = 0; i < G_N_ELEMENTS(modes); i++)
			if (!strcmp(o->live_opt, modes[i].name))
				break;
		if (i == G_N_ELEMENTS(modes)) {
			fprintf(stderr, "imapfs: bad live=%s (auto, idle, poll or off)\n", o->live_opt);
			return FALSE;
		}
		o->live = modes[i].live;
	}
	if (o->cache_size_opt != NULL && !parse_size(o->cache_size_opt, &o->cache_size)) {
		fprintf(stderr, "imapfs: bad cache_size=%s (bytes, with K, M or G suffix)\n",
			o->cache_size_opt);
		return FALSE;
	}
	if (o->sync_opt != NULL) {
		static const struct {
			const char *name;
			StoreSync sync;
		} policies[] = {
			{"none", STORE_SYNC_NONE},
			{"headers", STORE_SYNC_HEADERS},
			{"new", STORE_SYNC_NEW},
			{"all", STORE_SYNC_ALL},
		};
		gsize i;

		for (i = 0; i < G_N_ELEMENTS(policies); i++)
			if (!strcmp(o->sync_opt, policies[i].name))
				break;
		if (i == G_N_ELEMENTS(policies)) {
			fprintf(stderr, "imapfs: bad sync=%s (none, headers, new or all)\n",
				o->sync_opt);
			return FALSE;
		}
		o->sync = policies[i].sync;
	}
	if ((o->sync == STORE_SYNC_NEW || o->sync == STORE_SYNC_ALL) && o->no_cache) {
		fprintf(stderr, "imapfs: -o sync=%s needs the cache\n", o->sync_opt);
		return FALSE;
	}
	if ((o->sync == STORE_SYNC_NEW || o->sync == STORE_SYNC_ALL) && o->mark_seen) {
		fprintf(stderr,
			"imapfs: -o sync=%s with mark_seen would mark every downloaded message "
			"seen\n",
			o->sync_opt);
		return FALSE;
	}
	if (o->no_cache && o->offline) {
		fprintf(stderr, "imapfs: offline needs the cache (drop no_cache)\n");
		return FALSE;
	}
	if (o->cache_dir != NULL) {
		/* the daemon runs in "/" */
		char *abs = g_canonicalize_filename(o->cache_dir, NULL);

		free(o->cache_dir);
		o->cache_dir = strdup(abs);
		g_free(abs);
	}
	if (stat(o->mountpoint, &st) != 0) {
		fprintf(stderr, "imapfs: mountpoint %s: %s\n", o->mountpoint, g_strerror(errno));
		return FALSE;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "imapfs: mountpoint %s is not a directory\n", o->mountpoint);
		return FALSE;
	}
	real = realpath(o->mountpoint, NULL);
	if (real != NULL) {
		g_free(o->mountpoint);
		o->mountpoint = g_strdup(real);
		free(real);
	}
	/* the daemon runs in "/": relative paths are resolved now */
	o->imap.cafile = o->cafile ? g_canonicalize_filename(o->cafile, NULL) : NULL;
	o->imap.tls_fingerprint = g_strdup(o->tls_fingerprint);
	o->imap.allow_insecure_auth = o->allow_insecure_auth;
	o->imap.timeout_ms = o->timeout * 1000;
	o->imap.max_conns = o->max_conns;
	o->imap.mark_seen = o->mark_seen;
	if (o->trace_file != NULL) {
		o->imap.trace_fd =
			open(o->trace_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (o->imap.trace_fd < 0) {
			fprintf(stderr, "imapfs: trace_file %s: %s\n", o->trace_file,
				g_strerror(errno));
			return FALSE;
		}
	} else if (o->debug_imap) {
		o->imap.trace_fd = dup(STDERR_FILENO);
	}
	return TRUE;
}

static char *
first_line(const char *s, gsize len)
{
	gsize n = 0;

	while (n < len && s[n] != '\n' && s[n] != '\r' && s[n] != '\0')
		n++;
	return g_strndup(s, n);
}

static char *
from_command(const char *cmd)
{
	const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	g_autofree char *out = NULL;
	g_autoptr(GError) error = NULL;
	int status = 0;
	char *line;

	if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, &out,
			  NULL, &status, &error)) {
		fprintf(stderr, "imapfs: password_command: %s\n", error->message);
		return NULL;
	}
	if (!g_spawn_check_wait_status(status, &error)) {
		fprintf(stderr, "imapfs: password_command failed: %s\n", error->message);
		if (out)
			explicit_bzero(out, strlen(out));
		return NULL;
	}
	line = first_line(out, strlen(out));
	explicit_bzero(out, strlen(out));
	return line;
}

/* The first line of the password file, read from the descriptor that was checked: never
 * blocks on a FIFO or a device, never follows a symlink. */
static char *
from_file(const char *path)
{
	struct stat st;
	char buf[4096];
	gsize len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	char *line;

	if (fd < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "imapfs: password_file %s: %s\n", path, g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "imapfs: password_file %s is not a regular file\n", path);
		close(fd);
		return NULL;
	}
	if (st.st_mode & 077) {
		fprintf(stderr,
			"imapfs: password_file %s is accessible by others (mode %04o); "
			"chmod 600 it\n",
			path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return NULL;
	}
	while (len < sizeof(buf)) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "imapfs: password_file %s: %s\n", path, g_strerror(errno));
			close(fd);
			explicit_bzero(buf, sizeof(buf));
			return NULL;
		}
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	line = first_line(buf, len);
	explicit_bzero(buf, sizeof(buf));
	if (strlen(line) == sizeof(buf)) {
		fprintf(stderr, "imapfs: password_file %s: the first line is too long\n", path);
		explicit_bzero(line, strlen(line));
		g_free(line);
		return NULL;
	}
	return line;
}

static char *
from_tty(const FsOptions *o)
{
	struct termios old, noecho;
	char buf[1024];
	FILE *tty = fopen("/dev/tty", "r+");
	char *line = NULL;
	gboolean restore = FALSE;

	if (tty == NULL)
		return NULL;
	/* echo off first, then the prompt: what is typed after the prompt is kept */
	if (tcgetattr(fileno(tty), &old) == 0) {
		restore = TRUE;
		noecho = old;
		noecho.c_lflag &= ~ECHO;
		tcsetattr(fileno(tty), TCSAFLUSH, &noecho);
	}
	fprintf(tty, "Password for %s@%s: ", o->imap.user, o->imap.host);
	fflush(tty);
	if (fgets(buf, sizeof(buf), tty) != NULL)
		line = first_line(buf, strlen(buf));
	if (restore)
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fprintf(tty, "\n");
	fclose(tty);
	explicit_bzero(buf, sizeof(buf));
	return line;
}

/* Clears IMAPFS_PASSWORD from the environment, the original bytes included:
 * unsetenv() only drops the pointer, and /proc/PID/environ shows the process's initial
 * environment block, which would keep the password for the life of the daemon. */
static void
wipe_env_password(void)
{
	static const char name[] = "IMAPFS_PASSWORD=";

	for (char **e = environ; e != NULL && *e != NULL; e++)
		if (!strncmp(*e, name, sizeof(name) - 1))
			explicit_bzero(*e + sizeof(name) - 1, strlen(*e + sizeof(name) - 1));
	g_unsetenv("IMAPFS_PASSWORD");
}

gboolean
fs_options_get_password(FsOptions *o)
{
	const char *env = g_getenv("IMAPFS_PASSWORD");
	const char *source = NULL;
	char *pw = NULL;

	if (o->oauth_token_command != NULL) {
		/* OAuth2: the token command runs at each login; no password */
		wipe_env_password();
		return TRUE;
	}
	if (o->password_command != NULL) {
		source = "password_command";
		pw = from_command(o->password_command);
		if (pw == NULL) {
			wipe_env_password();
			return FALSE;
		}
	} else if (o->password_file != NULL) {
		source = "password_file";
		pw = from_file(o->password_file);
		if (pw == NULL) {
			wipe_env_password();
			return FALSE;
		}
	} else if (env != NULL) {
		source = "IMAPFS_PASSWORD";
		pw = g_strdup(env);
	} else if (o->config_password != NULL) {
		source = "the account's password key";
		pw = g_strdup(o->config_password);
	} else if (isatty(STDIN_FILENO)) {
		source = "the terminal";
		pw = from_tty(o);
	}
	/* children (password_command excepted, already done) never see it */
	wipe_env_password();
	if (pw == NULL) {
		fprintf(stderr, "imapfs: no password: use -o password_command=, -o password_file=, "
				"IMAPFS_PASSWORD, or run from a terminal\n");
		return FALSE;
	}
	if (*pw == '\0') {
		fprintf(stderr, "imapfs: the password from %s is empty\n", source);
		g_free(pw);
		return FALSE;
	}
	o->imap.password = pw;
	return TRUE;
}

void
fs_options_clear(FsOptions *o)
{
	if (o->imap.trace_fd > STDERR_FILENO)
		close(o->imap.trace_fd);
	o->imap.trace_fd = -1;
	imap_config_clear(&o->imap);
	g_free(o->url);
	g_free(o->mountpoint);
	g_free(o->root);
	free(o->trace_file);
	free(o->password_command);
	free(o->password_file);
	free(o->cafile);
	free(o->tls_fingerprint);
	free(o->tls);
	free(o->names_opt);
	free(o->cache_dir);
	free(o->cache_size_opt);
	free(o->sync_opt);
	free(o->expunge_opt);
	free(o->expunge_delay_opt);
	free(o->max_conns_opt);
	free(o->timeout_opt);
	free(o->dir_max_age_opt);
	free(o->flags_max_age_opt);
	free(o->folders_max_age_opt);
	free(o->offline_retry_opt);
	free(o->oauth_token_command);
	g_free(o->account);
	if (o->config_password != NULL)
		explicit_bzero(o->config_password, strlen(o->config_password));
	g_free(o->config_password);
	free(o->live_opt);
	free(o->idle_max_opt);
	free(o->poll_opt);
	fuse_opt_free_args(&o->fuse_args);
	g_strfreev(o->config_argv);
}
