/*
 * dsn_make.c - compose one report with dsn_compose and write it to
 * stdout, for t/integration/dsn_check.py (which parses it back) and for
 * the golden files.
 *
 *   dsn_make [-k failure|delay|success] [-F] [-u] [-e ENVID] [-l LIMIT]
 *            [-o ORIGINAL] [-a ARRIVAL] [-n NOW] [-H HOSTNAME] [-q QID]
 *            [-i REPORTID] SENDER  ADDR ORCPT ACTION STATUS MTA DIAG REPLY ...
 *
 * Each recipient is seven arguments; "-" stands for NULL.  ACTION is
 * failed, delayed, delivered or relayed.  A delayed recipient retries
 * until NOW + 1 day.  Exit 0, or 1 when composing failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bounce/dsn_compose.h"

struct orig {
	FILE *f;
};

static int read_orig(void *arg, uint64_t off, void *buf, size_t len, size_t *got)
{
	struct orig *o = arg;
	if (fseek(o->f, (long)off, SEEK_SET))
		return -1;
	*got = fread(buf, 1, len, o->f);
	return ferror(o->f) ? -1 : 0;
}

static const char *opt(const char *s)
{
	return strcmp(s, "-") ? s : NULL;
}

static int usage(void)
{
	fprintf(stderr, "usage: dsn_make [options] SENDER {ADDR ORCPT ACTION STATUS MTA DIAG REPLY}...\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct dsn_report r = { .kind = DSN_KIND_FAILURE, .hostname = "relay.example.net",
				.queue_id = "0ABCDEFGH123", .report_id = "0ABCDEFGH456",
				.arrival = 1790000000, .now = 1790003600,
				.size_limit = 36700160 };
	struct orig o = { 0 };
	int c;
	while ((c = getopt(argc, argv, "k:Fue:l:o:a:n:H:q:i:")) != -1) {
		switch (c) {
		case 'k':
			r.kind = !strcmp(optarg, "delay") ? DSN_KIND_DELAY :
				 !strcmp(optarg, "success") ? DSN_KIND_SUCCESS : DSN_KIND_FAILURE;
			break;
		case 'F': r.ret_full = 1; break;
		case 'u': r.utf8 = 1; break;
		case 'e': r.envid = optarg; break;
		case 'l': r.size_limit = strtoull(optarg, NULL, 10); break;
		case 'o':
			if (!(o.f = fopen(optarg, "rb")))
				return 1;
			fseek(o.f, 0, SEEK_END);
			r.orig_size = (uint64_t)ftell(o.f);
			r.read = read_orig;
			r.read_arg = &o;
			break;
		case 'a': r.arrival = strtoll(optarg, NULL, 10); break;
		case 'n': r.now = strtoll(optarg, NULL, 10); break;
		case 'H': r.hostname = optarg; break;
		case 'q': r.queue_id = optarg; break;
		case 'i': r.report_id = optarg; break;
		default: return usage();
		}
	}
	if (argc - optind < 1 || (argc - optind - 1) % 7 != 0)
		return usage();
	r.to = argv[optind++];
	r.nrcpt = (size_t)(argc - optind) / 7;
	struct dsn_rcpt *rc = calloc(r.nrcpt + 1, sizeof(*rc));
	if (!rc)
		return 1;
	for (size_t i = 0; i < r.nrcpt; i++) {
		char **a = argv + optind + 7 * i;
		const char *act = a[2];
		rc[i] = (struct dsn_rcpt){
			.addr = a[0], .orcpt = opt(a[1]),
			.action = !strcmp(act, "delayed") ? DSN_ACTION_DELAYED :
				  !strcmp(act, "delivered") ? DSN_ACTION_DELIVERED :
				  !strcmp(act, "relayed") ? DSN_ACTION_RELAYED : DSN_ACTION_FAILED,
			.status = opt(a[3]), .remote_mta = opt(a[4]), .diag_type = opt(a[5]),
			.reply = opt(a[6]), .last_attempt = r.now - 60,
			.will_retry_until = r.now + 86400,
		};
	}
	r.rcpt = rc;
	struct dsn_result res;
	if (dsn_compose(&r, &res)) {
		fprintf(stderr, "dsn_make: compose failed\n");
		return 1;
	}
	fwrite(res.data, 1, res.len, stdout);
	fprintf(stderr, "eightbit=%d full=%d\n", res.eightbit, res.full);
	dsn_result_free(&res);
	free(rc);
	if (o.f)
		fclose(o.f);
	return 0;
}
