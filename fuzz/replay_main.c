/*
 * Replays inputs through a fuzz target without libFuzzer (any compiler): the seed corpus and every crash a fuzzer
 * ever found (regressions/<target>/ beside the target) run as ordinary tests in the ASan build.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (fp == NULL)
		return -1;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (n > 0 && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		fclose(fp);
		free(buf);
		return -1;
	}
	fclose(fp);
	LLVMFuzzerTestOneInput(buf, (size_t)(n > 0 ? n : 0));
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	int i, count = 0, bad = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...: replays every file through the fuzz target\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		struct stat sb;
		DIR *d;
		struct dirent *de;
		char path[4096];

		/* A folder named here that is missing is a broken test set-up, not "nothing to replay". */
		if (stat(argv[i], &sb) == -1) {
			fprintf(stderr, "%s: %s: %s\n", argv[0], argv[i], strerror(errno));
			bad++;
			continue;
		}
		if (!S_ISDIR(sb.st_mode)) {
			if (replay_file(argv[i]) == 0)
				count++;
			else {
				fprintf(stderr, "%s: cannot read %s\n", argv[0], argv[i]);
				bad++;
			}
			continue;
		}
		if ((d = opendir(argv[i])) == NULL) {
			fprintf(stderr, "%s: %s: %s\n", argv[0], argv[i], strerror(errno));
			bad++;
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "%s/%s", argv[i], de->d_name);
			if (replay_file(path) == 0)
				count++;
			else {
				fprintf(stderr, "%s: cannot read %s\n", argv[0], path);
				bad++;
			}
		}
		closedir(d);
	}
	printf("replayed %d inputs\n", count);
	if (count == 0) {
		fprintf(stderr, "%s: no inputs replayed: the seed corpus is empty\n", argv[0]);
		return 1;
	}
	return bad > 0 ? 1 : 0;
}
