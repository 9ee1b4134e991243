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
 * become U+FFFD, "." and ".." become full-width dots, "" becomes "_". Never NULL. */
char *naming_component(const char *raw);

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
