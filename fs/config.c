/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * config.c: accounts in $XDG_CONFIG_HOME/imapfs/config, a GLib key file with one
 * [account NAME] section per account: `url` and any -o option of imapfs by the same name
 * (flags as true/false), plus `password`, which only the file can hold (never argv).
 *
 * "imapfs NAME MOUNTPOINT [options]" becomes "imapfs -o KEY=VALUE... URL MOUNTPOINT
 * [options]": the file's options come first, so the command line, parsed after them by
 * options.c, overrides them (a key given on the command line is not taken from the file
 * at all). The whole file is checked before anything is used: a syntax error, an unknown
 * section or key, a bad value, or a password in a file that others may read is refused
 * with one line "imapfs: FILE:LINE: KEY: why". GKeyFile knows no line numbers, so the
 * file is also scanned here line by line. Values are never echoed for secret keys.
 */
#define G_LOG_DOMAIN "imapfs"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"

#define CONFIG_MAX	 (1024 * 1024)
#define ACCOUNT_PREFIX	 "account "

typedef enum {
	V_FLAG,	  /* true/false: "-o key" when true */
	V_STRING, /* any text without control characters */
	V_PATH,	  /* ~/ expanded, relative to the file's directory */
	V_INT,	  /* whole number in [min, max] */
	V_SIZE,	  /* bytes with K/M/G/T suffix */
	V_CHOICE, /* one of choices */
	V_URL,	  /* imaps://... or imap://... (the url key) */
	V_SECRET, /* the password key: never echoed, never in argv */
} ValueKind;

typedef struct {
	const char *key;
	ValueKind kind;
	guint min, max;
	const char *choices; /* "a|b|c" */
} KeySpec;

/* The keys whose values can be checked here (the ranges are those of options.c); any
 * other -o option of imapfs is taken as a flag or a string, as options.c declares it. */
static const KeySpec specs[] = {
	{"url", V_URL},
	{"password", V_SECRET},
	{"password_file", V_PATH},
	{"cafile", V_PATH},
	{"trace_file", V_PATH},
	{"cache_dir", V_PATH},
	{"max_conns", V_INT, 1, 64},
	{"timeout", V_INT, 1, 3600},
	{"dir_max_age", V_INT, 0, 86400},
	{"flags_max_age", V_INT, 0, 86400},
	{"folders_max_age", V_INT, 0, 86400},
	{"offline_retry", V_INT, 1, 86400},
	{"cache_size", V_SIZE},
	{"names", V_CHOICE, 0, 0, "readable|uid"},
	{"sync", V_CHOICE, 0, 0, "none|headers|new|all"},
	{"tls", V_CHOICE, 0, 0, "none"},
	/* FUSE mount options worth keeping with an account */
	{"ro", V_FLAG},
	{"allow_other", V_FLAG},
	{"allow_root", V_FLAG},
	{"default_permissions", V_FLAG},
	{"auto_unmount", V_FLAG},
};

char *
fs_config_path(void)
{
	return g_build_filename(g_get_user_config_dir(), "imapfs", "config", NULL);
}

/* The kind of @key, FALSE when unknown. */
static gboolean
key_kind(const char *key, KeySpec *out)
{
	for (gsize i = 0; i < G_N_ELEMENTS(specs); i++) {
		if (!strcmp(specs[i].key, key)) {
			*out = specs[i];
			return TRUE;
		}
	}
	switch (fs_options_kind(key)) {
	case 1:
		*out = (KeySpec){key, V_FLAG};
		return TRUE;
	case 2:
		*out = (KeySpec){key, V_STRING};
		return TRUE;
	default:
		return FALSE;
	}
}

static gboolean
has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return TRUE;
	return FALSE;
}

/* TRUE/FALSE in *@out, or FALSE when @v is no boolean. */
static gboolean
parse_flag(const char *v, gboolean *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (gsize i = 0; i < G_N_ELEMENTS(yes); i++) {
		if (!g_ascii_strcasecmp(v, yes[i])) {
			*out = TRUE;
			return TRUE;
		}
		if (!g_ascii_strcasecmp(v, no[i])) {
			*out = FALSE;
			return TRUE;
		}
	}
	return FALSE;
}

static gboolean
size_ok(const char *v)
{
	const char *p = v;
	guint64 n;

	if (!g_ascii_isdigit(*p))
		return FALSE;
	while (g_ascii_isdigit(*p))
		p++;
	n = g_ascii_strtoull(v, NULL, 10);
	if (*p && strchr("KMGTkmgt", *p))
		p++;
	if (*p == 'B' || *p == 'b')
		p++;
	return *p == '\0' && n > 0;
}

/* NULL when @v suits @spec, else why not (owned). */
static char *
check_value(const KeySpec *spec, const char *v)
{
	gboolean b;
	guint64 n;

	if (has_control(v))
		return g_strdup("the value has a control character");
	switch (spec->kind) {
	case V_FLAG:
		if (!parse_flag(v, &b))
			return g_strdup_printf("'%s' is not true or false", v);
		return NULL;
	case V_INT:
		if (!g_ascii_string_to_unsigned(v, 10, spec->min, spec->max, &n, NULL))
			return g_strdup_printf("'%s' is not a whole number from %u to %u", v,
					       spec->min, spec->max);
		return NULL;
	case V_SIZE:
		if (!size_ok(v))
			return g_strdup_printf("'%s' is not a size (bytes, with K, M or G suffix)",
					       v);
		return NULL;
	case V_CHOICE: {
		g_auto(GStrv) c = g_strsplit(spec->choices, "|", -1);

		if (!g_strv_contains((const char *const *)c, v)) {
			g_autofree char *list = g_strjoinv(", ", c);

			return g_strdup_printf("'%s' is not one of %s", v, list);
		}
		return NULL;
	}
	case V_URL:
		if (!g_str_has_prefix(v, "imaps://") && !g_str_has_prefix(v, "imap://"))
			return g_strdup("expected imaps://[user@]host[:port][/root] or imap://...");
		return NULL;
	case V_STRING:
	case V_PATH:
	case V_SECRET:
		if (*v == '\0')
			return g_strdup("empty value");
		return NULL;
	}
	return NULL;
}

/* ---- the file, line by line (GKeyFile has no line numbers) ----------------------------- */

typedef struct {
	const char *path;
	GHashTable *lines; /* "group\n" -> header line, "group\nkey" -> line (the last) */
} Scan;

static guint
line_of(const Scan *sc, const char *group, const char *key)
{
	g_autofree char *k = g_strconcat(group, "\n", key ? key : "", NULL);

	return GPOINTER_TO_UINT(g_hash_table_lookup(sc->lines, k));
}

/* Fills @sc from @text; one line and FALSE on a line that is no comment, section or key. */
static gboolean
scan_lines(Scan *sc, const char *text)
{
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	g_autofree char *group = NULL;

	for (guint i = 0; lines[i] != NULL; i++) {
		char *l = g_strstrip(lines[i]);
		char *eq;

		if (*l == '\0' || *l == '#')
			continue;
		if (*l == '[') {
			char *end = strrchr(l, ']');

			if (end == NULL || end[1] != '\0') {
				fprintf(stderr, "imapfs: %s:%u: a section header must be [NAME]\n",
					sc->path, i + 1);
				return FALSE;
			}
			g_free(group);
			group = g_strndup(l + 1, end - l - 1);
			g_hash_table_insert(sc->lines, g_strconcat(group, "\n", NULL),
					    GUINT_TO_POINTER(i + 1));
			continue;
		}
		eq = strchr(l, '=');
		if (eq == NULL) {
			fprintf(stderr,
				"imapfs: %s:%u: not a 'key = value' line, a [section] or a # "
				"comment\n",
				sc->path, i + 1);
			return FALSE;
		}
		*eq = '\0';
		g_strchomp(l);
		if (group == NULL) {
			fprintf(stderr,
				"imapfs: %s:%u: %s: outside of an [account NAME] section\n",
				sc->path, i + 1, has_control(l) ? "?" : l);
			return FALSE;
		}
		g_hash_table_insert(sc->lines, g_strconcat(group, "\n", l, NULL),
				    GUINT_TO_POINTER(i + 1));
	}
	return TRUE;
}

/* Checks every section and key; one line and FALSE on the first problem. */
static gboolean
check_file(const Scan *sc, GKeyFile *kf, const struct stat *st)
{
	g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);

	for (guint g = 0; groups[g] != NULL; g++) {
		const char *name = groups[g];
		g_auto(GStrv) keys = NULL;

		if (!g_str_has_prefix(name, ACCOUNT_PREFIX) ||
		    strspn(name + strlen(ACCOUNT_PREFIX), " \t") ==
			    strlen(name + strlen(ACCOUNT_PREFIX))) {
			fprintf(stderr,
				"imapfs: %s:%u: [%s]: unknown section (expected [account NAME])\n",
				sc->path, line_of(sc, name, NULL), has_control(name) ? "?" : name);
			return FALSE;
		}
		keys = g_key_file_get_keys(kf, name, NULL, NULL);
		for (guint k = 0; keys != NULL && keys[k] != NULL; k++) {
			g_autofree char *v = NULL;
			g_autofree char *why = NULL;
			KeySpec spec;
			guint line = line_of(sc, name, keys[k]);

			if (!key_kind(keys[k], &spec)) {
				fprintf(stderr, "imapfs: %s:%u: %s: unknown key (see imapfs --help)\n",
					sc->path, line, has_control(keys[k]) ? "?" : keys[k]);
				return FALSE;
			}
			v = g_key_file_get_string(kf, name, keys[k], NULL);
			if (v == NULL) {
				fprintf(stderr, "imapfs: %s:%u: %s: bad escape or encoding\n",
					sc->path, line, keys[k]);
				return FALSE;
			}
			if (spec.kind == V_SECRET && (st->st_mode & 077)) {
				fprintf(stderr,
					"imapfs: %s:%u: %s: the file holds a secret but others may "
					"read it (mode %04o); chmod 600 it\n",
					sc->path, line, keys[k], (unsigned)(st->st_mode & 07777));
				explicit_bzero(v, strlen(v));
				return FALSE;
			}
			why = check_value(&spec, v);
			explicit_bzero(v, strlen(v));
			if (why != NULL) {
				fprintf(stderr, "imapfs: %s:%u: %s: %s\n", sc->path, line, keys[k],
					spec.kind == V_SECRET ? "empty or bad value" : why);
				return FALSE;
			}
		}
		if (!g_key_file_has_key(kf, name, "url", NULL)) {
			fprintf(stderr, "imapfs: %s:%u: url: missing in [%s]\n", sc->path,
				line_of(sc, name, NULL), name);
			return FALSE;
		}
	}
	return TRUE;
}

/* The whole file, read from the descriptor that was checked (@st). NULL after one line. */
static char *
read_config(const char *path, const char *account, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	GString *s;

	if (fd < 0) {
		if (errno == ENOENT)
			fprintf(stderr,
				"imapfs: no account '%s': %s does not exist (a URL starts with "
				"imaps:// or imap://)\n",
				account, path);
		else
			fprintf(stderr, "imapfs: %s: %s\n", path, g_strerror(errno));
		return NULL;
	}
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_size > CONFIG_MAX) {
		fprintf(stderr, "imapfs: %s: not a regular file of at most %d bytes\n", path,
			CONFIG_MAX);
		close(fd);
		return NULL;
	}
	s = g_string_sized_new(st->st_size + 1);
	for (;;) {
		char buf[4096];
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "imapfs: %s: %s\n", path, g_strerror(errno));
			explicit_bzero(s->str, s->allocated_len);
			g_string_free(s, TRUE);
			close(fd);
			return NULL;
		}
		if (n == 0)
			break;
		g_string_append_len(s, buf, n);
		explicit_bzero(buf, sizeof(buf));
		if (s->len > CONFIG_MAX)
			break;
	}
	close(fd);
	return g_string_free(s, FALSE);
}

/* ---- the command line ----------------------------------------------------------------- */

/* Index of the first non-option argument of @argv, or 0. */
static int
first_operand(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o")) {
			i++;
			continue;
		}
		if (argv[i][0] == '-')
			continue;
		return i;
	}
	return 0;
}

/* The names of the -o options given on the command line. */
static GHashTable *
command_line_keys(int argc, char **argv)
{
	GHashTable *keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	for (int i = 1; i < argc; i++) {
		const char *opts = NULL;
		GString *name = g_string_new(NULL);
		gboolean in_value = FALSE;

		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			opts = argv[++i];
		else if (g_str_has_prefix(argv[i], "-o"))
			opts = argv[i] + 2;
		for (const char *p = opts; p != NULL; p++) {
			if (*p == '\\' && p[1] != '\0') {
				p++;
			} else if (*p == ',' || *p == '\0') {
				if (name->len)
					g_hash_table_add(keys, g_strdup(name->str));
				g_string_truncate(name, 0);
				in_value = FALSE;
				if (*p == '\0')
					break;
				continue;
			} else if (*p == '=') {
				in_value = TRUE;
			}
			if (!in_value)
				g_string_append_c(name, *p);
		}
		g_string_free(name, TRUE);
	}
	return keys;
}

/* "-o" argument text: ',' and '\' escaped for fuse_opt. */
static char *
escape_opt(const char *key, const char *value)
{
	GString *s = g_string_new(key);

	if (value == NULL)
		return g_string_free(s, FALSE);
	g_string_append_c(s, '=');
	for (const char *p = value; *p; p++) {
		if (*p == ',' || *p == '\\')
			g_string_append_c(s, '\\');
		g_string_append_c(s, *p);
	}
	return g_string_free(s, FALSE);
}

static char *
expand_path(const char *v, const char *config_path)
{
	g_autofree char *dir = NULL;

	if (!strcmp(v, "~"))
		return g_strdup(g_get_home_dir());
	if (g_str_has_prefix(v, "~/"))
		return g_build_filename(g_get_home_dir(), v + 2, NULL);
	if (g_path_is_absolute(v))
		return g_strdup(v);
	dir = g_path_get_dirname(config_path);
	return g_build_filename(dir, v, NULL);
}

gboolean
fs_config_apply(FsOptions *o, int *argc, char ***argv)
{
	int pos = first_operand(*argc, *argv);
	const char *name;
	g_autofree char *path = NULL;
	g_autofree char *text = NULL;
	g_autofree char *group = NULL;
	g_autoptr(GKeyFile) kf = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GHashTable) given = NULL;
	g_autoptr(GPtrArray) out = NULL;
	g_auto(GStrv) keys = NULL;
	g_autofree char *url = NULL;
	Scan sc = {0};
	struct stat st;
	gboolean ok, pw_given;

	if (pos == 0 || strstr((*argv)[pos], "://") != NULL)
		return TRUE; /* no operand (options.c says so) or a URL */
	name = (*argv)[pos];
	if (has_control(name) || strpbrk(name, "[]") != NULL) {
		fprintf(stderr, "imapfs: bad account name (no control characters or brackets)\n");
		return FALSE;
	}
	path = fs_config_path();
	text = read_config(path, name, &st);
	if (text == NULL)
		return FALSE;
	sc.path = path;
	sc.lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	kf = g_key_file_new();
	ok = scan_lines(&sc, text);
	if (ok && !g_key_file_load_from_data(kf, text, -1, G_KEY_FILE_NONE, &error)) {
		fprintf(stderr, "imapfs: %s: %s\n", path, error->message);
		ok = FALSE;
	}
	explicit_bzero(text, strlen(text));
	if (ok)
		ok = check_file(&sc, kf, &st);
	group = g_strconcat(ACCOUNT_PREFIX, name, NULL);
	if (ok && !g_key_file_has_group(kf, group)) {
		fprintf(stderr, "imapfs: %s: no [%s] section (a URL starts with imaps:// or "
				"imap://)\n",
			path, group);
		ok = FALSE;
	}
	g_hash_table_unref(sc.lines);
	if (!ok)
		return FALSE;

	/* the command line wins: what it sets is not taken from the file */
	given = command_line_keys(*argc, *argv);
	pw_given = g_hash_table_contains(given, "password_command") ||
		   g_hash_table_contains(given, "password_file") ||
		   g_hash_table_contains(given, "oauth_token_command");
	out = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(out, g_strdup((*argv)[0]));
	keys = g_key_file_get_keys(kf, group, NULL, NULL);
	for (guint k = 0; keys[k] != NULL; k++) {
		g_autofree char *v = g_key_file_get_string(kf, group, keys[k], NULL);
		gboolean secret_source = !strcmp(keys[k], "password") ||
					 !strcmp(keys[k], "password_command") ||
					 !strcmp(keys[k], "password_file") ||
					 !strcmp(keys[k], "oauth_token_command");
		KeySpec spec = {0};
		gboolean b = FALSE;

		key_kind(keys[k], &spec);
		if (spec.kind == V_URL) {
			url = g_steal_pointer(&v);
			continue;
		}
		if (g_hash_table_contains(given, keys[k]) || (pw_given && secret_source)) {
			if (v != NULL)
				explicit_bzero(v, strlen(v));
			continue;
		}
		if (spec.kind == V_SECRET) {
			o->config_password = g_steal_pointer(&v);
			continue;
		}
		if (spec.kind == V_FLAG) {
			parse_flag(v, &b);
			if (b) {
				g_ptr_array_add(out, g_strdup("-o"));
				g_ptr_array_add(out, g_strdup(keys[k]));
			}
			continue;
		}
		if (spec.kind == V_PATH) {
			char *full = expand_path(v, path);

			g_free(v);
			v = full;
		}
		g_ptr_array_add(out, g_strdup("-o"));
		g_ptr_array_add(out, escape_opt(keys[k], v));
	}
	for (int i = 1; i < *argc; i++)
		g_ptr_array_add(out, g_strdup(i == pos ? url : (*argv)[i]));
	*argc = (int)out->len;
	g_ptr_array_add(out, NULL);
	o->account = g_strdup(name);
	o->config_argv = (char **)g_ptr_array_free(g_steal_pointer(&out), FALSE);
	*argv = o->config_argv;
	g_debug("account %s from %s", name, path);
	return TRUE;
}
