/*
 * driver.c - replay mode for the fuzz targets under t/fuzz.
 *
 * Linked with one fuzz_*.c instead of libFuzzer, it runs
 * LLVMFuzzerTestOneInput once over every file named on the command line
 * and over every regular file in the directories named (one level, in
 * name order), so the targets build with any C compiler and the seed
 * corpus and the saved crashes become regression tests:
 *
 *	gcc -g -D_GNU_SOURCE -I. -Irelayd -Iqueue -o replay \
 *	    t/fuzz/driver.c t/fuzz/fuzz_smtp_data.c relayd/smtp_data.c
 *	./replay t/fuzz/corpus/smtp_data
 *
 * Arguments that start with '-' are ignored, so a libFuzzer command line
 * (-runs=0 and the like) replays too.  A property violation aborts, as
 * under libFuzzer; otherwise the exit status is 0, or 1 when a file could
 * not be read.  Each input is copied into a buffer of exactly its size,
 * so a sanitizer build still catches reads past its end.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1	/* asprintf */
#endif
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read a whole file into a malloc'd buffer of exactly its size. */
static int slurp(const char *path, uint8_t **bufp, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL, *nbuf;
	size_t len = 0, cap = 0, got;

	if (!f)
		return -1;
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			nbuf = realloc(buf, cap);
			if (!nbuf)
				goto fail;
			buf = nbuf;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
	} while (got);
	if (ferror(f))
		goto fail;
	fclose(f);
	/* Shrink to the exact size (at least one byte for malloc). */
	nbuf = malloc(len ? len : 1);
	if (!nbuf) {
		free(buf);
		return -1;
	}
	memcpy(nbuf, buf, len);
	free(buf);
	*bufp = nbuf;
	*lenp = len;
	return 0;
fail:
	fclose(f);
	free(buf);
	return -1;
}

/* Run the target over one file; 0 or -1 when it cannot be read. */
static int run_file(const char *path)
{
	uint8_t *buf;
	size_t len;

	if (slurp(path, &buf, &len) < 0) {
		fprintf(stderr, "driver: %s: %s\n", path, strerror(errno));
		return -1;
	}
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run the target over the regular files of dir, in name order. */
static int run_dir(const char *dir, size_t *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL, **nn;
	size_t n = 0, cap = 0, i;
	int rc = 0;

	if (!d) {
		fprintf(stderr, "driver: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			nn = realloc(names, cap * sizeof(*names));
			if (!nn)
				break;
			names = nn;
		}
		if (asprintf(&names[n], "%s/%s", dir, e->d_name) < 0)
			break;
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), by_name);
	for (i = 0; i < n; i++) {
		struct stat st;

		if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
			if (run_file(names[i]) < 0)
				rc = -1;
			else
				(*count)++;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	int i, rc = 0;

	for (i = 1; i < argc; i++) {
		struct stat st;

		if (argv[i][0] == '-')
			continue;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "driver: %s: %s\n", argv[i], strerror(errno));
			rc = 1;
		} else if (S_ISDIR(st.st_mode)) {
			if (run_dir(argv[i], &count) < 0)
				rc = 1;
		} else if (run_file(argv[i]) < 0) {
			rc = 1;
		} else {
			count++;
		}
	}
	fprintf(stderr, "driver: %zu input%s replayed, no property violated\n",
		count, count == 1 ? "" : "s");
	return rc;
}
