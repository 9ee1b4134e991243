/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of resolve.c: lookups that succeed, fail, and outlive their deadline. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "resolve.h"

static gint64
in_ms(int ms)
{
	return g_get_monotonic_time() + (gint64)ms * 1000;
}

static void
test_numeric(void)
{
	g_autoptr(GError) error = NULL;
	struct addrinfo *res = imap_resolve_sync("127.0.0.1", "143", in_ms(5000), -1, &error);

	g_assert_no_error(error);
	g_assert_nonnull(res);
	g_assert_cmpint(res->ai_family, ==, AF_INET);
	g_assert_cmpuint(ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port), ==, 143);
	freeaddrinfo(res);
}

static void
test_localhost(void)
{
	g_autoptr(GError) error = NULL;
	struct addrinfo *res = imap_resolve_sync("localhost", "993", in_ms(5000), -1, &error);

	g_assert_no_error(error);
	g_assert_nonnull(res);
	freeaddrinfo(res);
}

static void
test_unknown_name_is_connect_error(void)
{
	g_autoptr(GError) error = NULL;
	/* RFC 6761: .invalid never resolves. A resolver that cannot answer in time gives a
	 * timeout instead; both are clean errors. */
	struct addrinfo *res = imap_resolve_sync("no-such-host.invalid", "993", in_ms(5000), -1,
						 &error);

	g_assert_null(res);
	g_assert_true(g_error_matches(error, IMAP_ERROR, IMAP_ERROR_CONNECT) ||
		      g_error_matches(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT));
}

static void
test_deadline_passed_is_timeout(void)
{
	g_autoptr(GError) error = NULL;
	struct addrinfo *res = imap_resolve_sync("localhost", "993", in_ms(-1), -1, &error);

	g_assert_null(res);
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT);
	/* The abandoned lookup finishes on its own thread and frees itself. */
	g_usleep(300 * 1000);
}

static void
test_cancel_fd(void)
{
	g_autoptr(GError) error = NULL;
	int fds[2];
	struct addrinfo *res;

	g_assert_cmpint(pipe(fds), ==, 0);
	g_assert_cmpint(write(fds[1], "x", 1), ==, 1);
	/* Cancellation and completion may race; either outcome is clean. */
	res = imap_resolve_sync("localhost", "993", in_ms(5000), fds[0], &error);
	if (res)
		freeaddrinfo(res);
	else
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_CANCELLED);
	close(fds[0]);
	close(fds[1]);
	g_usleep(300 * 1000);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/resolve/numeric", test_numeric);
	g_test_add_func("/resolve/localhost", test_localhost);
	g_test_add_func("/resolve/unknown-name-is-connect-error", test_unknown_name_is_connect_error);
	g_test_add_func("/resolve/deadline-passed-is-timeout", test_deadline_passed_is_timeout);
	g_test_add_func("/resolve/cancel-fd", test_cancel_fd);
	return g_test_run();
}
