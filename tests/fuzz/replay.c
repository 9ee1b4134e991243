/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * replay.c: a main() for fuzz targets built without libFuzzer. Runs
 * LLVMFuzzerTestOneInput once over every file in the given directories (the committed
 * corpus), so every test run replays it under whatever sanitizers the build has.
 */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_dir(const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GDir) dir = g_dir_open(path, 0, &error);
	const char *name;
	int n = 0;

	if (!dir) {
		fprintf(stderr, "replay: %s\n", error->message);
		return -1;
	}
	while ((name = g_dir_read_name(dir))) {
		g_autofree char *file = g_build_filename(path, name, NULL);
		g_autofree char *data = NULL;
		gsize len = 0;

		if (g_file_test(file, G_FILE_TEST_IS_DIR))
			continue;
		if (!g_file_get_contents(file, &data, &len, &error)) {
			fprintf(stderr, "replay: %s\n", error->message);
			return -1;
		}
		LLVMFuzzerTestOneInput((const uint8_t *)data, len);
		n++;
	}
	return n;
}

int
main(int argc, char **argv)
{
	int total = 0;

	for (int i = 1; i < argc; i++) {
		int n = replay_dir(argv[i]);
		if (n < 0)
			return 1;
		total += n;
	}
	if (total == 0) {
		fprintf(stderr, "replay: no corpus files\n");
		return 1;
	}
	printf("replayed %d inputs\n", total);
	return 0;
}
