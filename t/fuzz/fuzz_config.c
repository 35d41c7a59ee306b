/*
 * fuzz_config.c - fuzz target for the relayd.conf parser
 * (config_load_buffer in relayd/config.h).
 *
 * Input: the bytes of a configuration file, loaded as
 * "/fuzz/relayd.conf" (relative paths resolve under /fuzz; nothing is
 * read or written on disk).  Checked, beyond the absence of crashes:
 *  - config_load_buffer returns the number of errors (>= 0; -1 is only
 *    for an unreadable file), and wrote exactly that many error lines,
 *    each "FILE:LINE: ..." or "FILE: ...", plus any "warning: " lines;
 *  - a configuration that loads without errors is coherent (hostname and
 *    control_socket set, retry_min <= retry_max, TLS files paired);
 *  - round trip: its config_dump, loaded again, loads without errors and
 *    dumps to the same text;
 *  - the dump never shows the relayhost_auth password (only "********");
 *  - message_size_limit is at most half of queue_map_size;
 *  - config_free releases everything (ASan's leak checker, which
 *    libFuzzer runs, reports the rest).
 * A violation aborts, which libFuzzer (or t/fuzz/driver.c) reports.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "/fuzz/relayd.conf"

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_config: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

/* Load buf; returns config_load_buffer's result, the messages in *errs
 * (malloc'd, NUL-terminated). */
static int load(struct config *cfg, const char *buf, size_t len, char **errs)
{
	size_t elen = 0;
	FILE *f = open_memstream(errs, &elen);
	int rc;

	CHECK(f != NULL);
	rc = config_load_buffer(cfg, NAME, buf, len, f);
	CHECK(fclose(f) == 0);
	return rc;
}

/* Every message is one line naming the file; the lines that are not
 * warnings are the errors counted. */
static void check_messages(const char *errs, int rc)
{
	const char *p = errs, *nl;
	int errors = 0;

	for (; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		CHECK(nl != NULL);
		if (!strncmp(p, "warning: ", 9))
			p += 9;
		else
			errors++;
		CHECK(!strncmp(p, NAME ":", sizeof(NAME)));
	}
	CHECK(errors == rc);
}

/* Show the error lines (not the warnings), each cut to 160 bytes. */
static void report_errors(const char *what, const char *errs)
{
	const char *p, *nl;

	fprintf(stderr, "fuzz_config: %s:\n", what);
	for (p = errs; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl)
			break;
		if (strncmp(p, "warning: ", 9))
			fprintf(stderr, "  %.*s\n",
				(int)(nl - p > 160 ? 160 : nl - p), p);
	}
}

/* Show the first line where two dumps differ. */
static void report_diff(const char *a, const char *b)
{
	size_t i = 0, start = 0, ea, eb;

	for (; a[i] && a[i] == b[i]; i++)
		if (a[i] == '\n')
			start = i + 1;
	ea = strcspn(a + start, "\n");
	eb = strcspn(b + start, "\n");
	fprintf(stderr, "fuzz_config: the dump changed on reload:\n"
		"  first:  %.*s\n  second: %.*s\n",
		(int)(ea > 160 ? 160 : ea), a + start,
		(int)(eb > 160 ? 160 : eb), b + start);
}

static char *dump(const struct config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	CHECK(f != NULL);
	config_dump(cfg, f);
	CHECK(fclose(f) == 0);
	return text;
}

static void check_coherent(const struct config *cfg)
{
	CHECK(cfg->path && !strcmp(cfg->path, NAME));
	CHECK(cfg->hostname && cfg->hostname[0]);
	CHECK(cfg->queue_dir && cfg->queue_dir[0] == '/');
	CHECK(cfg->control_socket && cfg->control_socket[0] == '/');
	CHECK(cfg->retry_min <= cfg->retry_max);
	CHECK(!cfg->tls_cert_file == !cfg->tls_key_file);
	CHECK(cfg->message_size_limit >= 1);
	CHECK(cfg->message_size_limit <= cfg->queue_map_size / 2);
	CHECK(cfg->recipient_limit >= 1);
	CHECK(cfg->delivery_port >= 1 && cfg->delivery_port <= 65535);
	CHECK(cfg->tls_outbound <= TLS_LEVEL_VERIFY);
	CHECK(cfg->log_format <= LOG_FORMAT_JSON);
}

/* The relayhost_auth line of the dump shows the user at most. */
static void check_masked(const struct config *cfg, const char *text)
{
	const char *v = cfg->relayhost_auth, *line, *colon;
	size_t user;

	line = strstr(text, "\nrelayhost_auth =");
	CHECK(line != NULL);
	line += strlen("\nrelayhost_auth =");
	if (!v) {
		CHECK(*line == '\n');
		return;
	}
	colon = strchr(v, ':');
	user = colon ? (size_t)(colon - v) + 1 : 0;
	CHECK(line[0] == ' ' && !strncmp(line + 1, v, user));
	CHECK(!strncmp(line + 1 + user, "********\n", 9));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg, again;
	char *errs = NULL, *errs2 = NULL, *text, *text2;
	int rc, rc2;

	rc = load(&cfg, (const char *)data, size, &errs);
	CHECK(rc >= 0);
	check_messages(errs, rc);
	free(errs);
	if (rc) {
		config_free(&cfg);
		return 0;
	}
	check_coherent(&cfg);

	text = dump(&cfg);
	check_masked(&cfg, text);
	rc2 = load(&again, text, strlen(text), &errs2);
	if (rc2)
		report_errors("the dump does not load", errs2);
	CHECK(rc2 == 0);
	check_messages(errs2, rc2);
	text2 = dump(&again);
	if (strcmp(text, text2))
		report_diff(text, text2);
	CHECK(!strcmp(text, text2));

	free(errs2);
	free(text);
	free(text2);
	config_free(&again);
	config_free(&cfg);
	return 0;
}
