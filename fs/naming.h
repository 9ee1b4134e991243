/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * naming.h: the one place that turns server mailbox names and messages into file names
 * (STYLE.md §1). Pure functions: no FUSE, no I/O, unit-tested in tests/unit/test-naming.c.
 */
#pragma once

#include <glib.h>

#include "store.h"

typedef enum {
	NAMING_READABLE, /* "YYYY-MM-DD_HHMM_<subject>_<UID>.eml" */
	NAMING_UID,	 /* "<UID>.eml" */
} NamingMode;

/* Fixed names of namespace directories whose prefix is empty (documented in the man page). */
#define NAMING_NS_OTHER_EMPTY	 "#users"
#define NAMING_NS_SHARED_EMPTY	 "#shared"
#define NAMING_NS_PERSONAL_EMPTY "#personal"

/* One path component from a server name component: '/' becomes U+2215, control characters
 * (and line/paragraph separators) become U+FFFD, invisible format characters (bidi
 * controls, zero-width characters) are dropped, invalid UTF-8 is repaired, the result is
 * cut to 255 bytes on a character boundary; "." and ".." become full-width dots, an empty
 * result becomes "_". Never NULL. Different server names may give the same component:
 * see naming_component_variant(). */
char *naming_component(const char *raw);

/* The @k-th variant of the component @name for a second server name that maps to it:
 * "name~" for @k == 1, else "name~K", with @name cut on a character boundary so that the
 * result is still at most 255 bytes. */
char *naming_component_variant(const char *name, guint k);

/* The directory path (NULL-terminated array of components, at least one) of a mailbox
 * whose server name is @mailbox and hierarchy delimiter @delim, given the account's
 * namespaces (@ns: StoreNamespace*, the first personal namespace first). */
char **naming_folder_path(const char *mailbox, char delim, GPtrArray *ns);

/* The file name of a message. UTF-8, at most 255 bytes, no '/', NUL or control chars,
 * unique per UID within a folder, stable for (UID, INTERNALDATE, subject). */
char *naming_message_name(NamingMode mode, guint32 uid, gint64 internaldate, const char *subject);

/* FALSE for names that can never be a message file in @mode (probes such as ".git",
 * "desktop.ini", "._x.eml"): those are answered ENOENT without asking the server. */
gboolean naming_could_be_message(NamingMode mode, const char *name);
