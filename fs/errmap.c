/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * errmap.c: the only place that turns a GError into an errno (STYLE.md §1), and the one
 * line printed for a start-up failure. Connection-level failures (lost, refused, timed
 * out) are EIO: to a program reading a file, the server being gone is an I/O error.
 */
#define G_LOG_DOMAIN "imapfs"

#include "config.h"

#include <errno.h>

#include "fs.h"

int
fs_errno_from_error(const GError *error)
{
	if (error == NULL)
		return EIO;
	if (error->domain == IMAP_ERROR) {
		switch ((ImapErrorCode)error->code) {
		case IMAP_ERROR_NONEXISTENT:
		case IMAP_ERROR_EXPUNGEISSUED:
			return ENOENT;
		case IMAP_ERROR_NOPERM:
			return EACCES;
		case IMAP_ERROR_OVERQUOTA:
			return EDQUOT;
		case IMAP_ERROR_ALREADYEXISTS:
			return EEXIST;
		case IMAP_ERROR_INUSE:
			return EBUSY;
		case IMAP_ERROR_UNSUPPORTED:
		case IMAP_ERROR_CANNOT:
			return ENOTSUP;
		case IMAP_ERROR_INVALID:
			return EINVAL;
		case IMAP_ERROR_CANCELLED:
			return EINTR;
		case IMAP_ERROR_UIDVALIDITY:
			return ESTALE;
		case IMAP_ERROR_BUSY:
			/* every connection busy with other work until the deadline: this one
			 * request fails, the mount stays online */
			return EAGAIN;
		case IMAP_ERROR_LIMIT_SERVER:
			return EFBIG;
		case IMAP_ERROR_NOT_PERMANENT:
			/* the folder does not let this flag be kept (PERMANENTFLAGS): the
			 * name is supported, this value is not permitted there */
			return EPERM;
		default:
			return EIO;
		}
	}
	if (error->domain == STORE_ERROR) {
		switch ((StoreErrorCode)error->code) {
		case STORE_ERROR_NOT_FOUND:
			return ENOENT;
		case STORE_ERROR_INVALID:
			return EINVAL;
		case STORE_ERROR_STALE:
			return ESTALE;
		case STORE_ERROR_TOO_BIG:
			return EFBIG;
		case STORE_ERROR_READ_ONLY:
			return EROFS; /* offline: the mount is read-only until the server is back */
		case STORE_ERROR_DENIED:
			return EACCES; /* a read-only folder, a missing right, a NO */
		default:
			return EIO;
		}
	}
	if (error->domain == G_IO_ERROR) {
		switch (error->code) {
		case G_IO_ERROR_NOT_FOUND:
			return ENOENT;
		case G_IO_ERROR_NO_SPACE:
			return ENOSPC;
		case G_IO_ERROR_CANCELLED:
			return EINTR;
		case G_IO_ERROR_TIMED_OUT:
			return EIO;
		default:
			return EIO;
		}
	}
	return EIO;
}

char *
fs_describe_startup_error(const FsOptions *opts, const GError *error)
{
	const ImapConfig *c = &opts->imap;
	g_autofree char *msg = g_strdup(error ? error->message : "unknown error");

	g_strdelimit(msg, "\r\n", ' ');
	if (error != NULL && error->domain == IMAP_ERROR) {
		switch ((ImapErrorCode)error->code) {
		case IMAP_ERROR_CONNECT:
			return g_strdup_printf("cannot connect to %s:%u: %s", c->host, c->port,
					       msg);
		case IMAP_ERROR_TIMEOUT:
			return g_strdup_printf("%s:%u did not answer in time: %s", c->host, c->port,
					       msg);
		case IMAP_ERROR_TLS:
			return g_strdup_printf("TLS with %s:%u failed: %s", c->host, c->port, msg);
		case IMAP_ERROR_TLS_REQUIRED:
			return g_strdup_printf("%s:%u does not offer STARTTLS (required): %s",
					       c->host, c->port, msg);
		case IMAP_ERROR_AUTH:
			return g_strdup_printf("login as %s at %s failed: %s", c->user, c->host,
					       msg);
		case IMAP_ERROR_INSECURE:
			return g_strdup_printf(
				"refusing to send the password in cleartext to %s: %s", c->host,
				msg);
		case IMAP_ERROR_DISCONNECTED:
			return g_strdup_printf("%s:%u closed the connection: %s", c->host, c->port,
					       msg);
		default:
			break;
		}
	}
	return g_strdup_printf("%s:%u: %s", c->host, c->port, msg);
}
