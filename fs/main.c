/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Placeholder entry point until the mount lands (issue 4): --version and --help only. */
#include "config.h"
#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
			printf("imapfs %s\n", IMAPFS_VERSION);
			return 0;
		}
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: imapfs [options] URL MOUNTPOINT\n");
			return 0;
		}
	}
	fprintf(stderr, "imapfs: mounting is not implemented yet\n");
	return 1;
}
