/*
 * smtpc_drive - run the delivery client (relayd/delivery/smtp_client) for
 * real against a next hop and print what it reports, one line per fact,
 * with the failure policy's decision: the integration tests' window on a
 * session.  The scheduler is not involved.
 *
 *   smtpc_drive -s IP:PORT [-n HOST] [-H HELO] [-t none|may|encrypt|verify]
 *               [-c CAFILE] [-a USER:PASS] [-b BINDIP] [-T C,H,CMD,X,D ms]
 *               [-A MS] [-I MS] [-F] [-C CONFIG]
 *               -m FILE [-f SENDER] [-S SIZE] [-8] [-u] [-R FULL|HDRS]
 *               [-E ENVID] [-X OFFSET] -r RCPT [-N NOTIFY] [-O ORCPT] ...
 *               [-m FILE ...]
 *
 * -m starts a message (content from FILE, as stored: CRLF, no stuffing);
 * the options after it apply to it, -N/-O to the last -r; -X makes its
 * content source fail from OFFSET on (a queue read error).  Messages go
 * over one connection, in order.  -A abandons the session after MS ms
 * (the SIGTERM path); -I keeps the session idle MS ms between messages.  -F: when a `may` session reports that TLS failed,
 * retry once in clear, as the scheduler will.  -C takes the EHLO name,
 * tls_outbound, relayhost_auth, smtp_bind_address and the smtp_*_timeout
 * keys from a relayd.conf (smtp_client_opts_config); options given after
 * it override them.
 *
 * Output (stdout), per message M and recipient I:
 *   ready
 *   rcpt M I <ADDR> kind=K stage=ST code=C enh=E accepted=A status=W dsn=D next=N reason=TEXT
 *   msg M dot=0|1 dsn_passed=0|1 setup=S xfer=S
 *   closed kind=K stage=ST code=C tls=0|1 fallback=0|1 messages=N relay=H[IP]:PORT maxrss_kb=N text=TEXT
 * Diagnostics (the TLS line) and the mail log record of each recipient
 * (relayd/smtp: ID: to=<...>, relay=..., delays=..., dsn=..., status=...)
 * go to stderr.  Exit 0 unless the options
 * are wrong (2) or something local failed (1).
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include "delivery/failure_policy.h"
#include "delivery/smtp_client.h"
#include "config.h"
#include "log.h"
#include "maillog.h"
#include "queue.h"
#include "tls.h"

#define MAX_MSGS 16
#define MAX_RCPTS 64

struct drive_msg {
	struct smtp_client_msg m;
	struct smtp_client_rcpt rcpt[MAX_RCPTS];
	int fd;
	int size_set;
	long long fail_at;       /* -X: reads from here on fail; -1: never */
};

static struct drive_msg msgs[MAX_MSGS];
static int nmsgs, next_msg;
static struct smtp_client_opts opts;
static struct smtp_client *cur;
static int fallback_retry, retried;
static uv_loop_t *loop;
static uv_timer_t abandon_timer;
static uv_timer_t idle_timer;
static uint64_t idle_ms;
static uint64_t abandon_ms;
static struct config cfg;
static int cfg_loaded;

static ssize_t body_read(void *arg, uint64_t off, char *buf, size_t len)
{
	struct drive_msg *d = arg;

	if (d->fail_at >= 0 && off >= (uint64_t)d->fail_at)
		return -1;
	return pread(d->fd, buf, len, (off_t)off);
}

static void send_next(struct smtp_client *s)
{
	if (next_msg < nmsgs) {
		/* Counted before the call: a message refused before MAIL is
		 * reported (and the next one sent) from inside it. */
		int i = next_msg++;
		if (smtp_client_send(s, &msgs[i].m) == 0)
			return;
		next_msg--;
	}
	smtp_client_quit(s);
}

static void on_ready(void *arg, struct smtp_client *s)
{
	printf("ready\n");
	fflush(stdout);
	send_next(s);
}

/* The mail log record the scheduler will write for this outcome (the
 * queue's delays a and b are not known here: 0). */
static void log_record(int idx, const struct smtp_client_msg *m,
		       const struct smtp_client_rcpt *r,
		       const struct smtp_client_relay *relay,
		       const struct delivery_outcome *o)
{
	char id[16];
	struct maillog_delivery d = {
		.id = id, .rcpt = r->addr, .relay_host = relay->host,
		.relay_ip = relay->ip, .relay_port = relay->port,
		.delay = m->setup_time + m->xfer_time,
		.delays = { 0, 0, m->setup_time, m->xfer_time },
		.dsn = o->dsn, .status = delivery_status_name(o->status),
		.reason = o->reason,
	};

	snprintf(id, sizeof(id), "DRIVE%07d", idx);
	maillog_delivery(&d);
}

static void print_rcpts(int idx, const struct smtp_client_msg *m,
			const struct smtp_client_relay *relay)
{
	for (size_t i = 0; i < m->nrcpt; i++) {
		const struct smtp_client_rcpt *r = &m->rcpt[i];
		struct delivery_outcome o;
		failure_policy_decide(&r->result, relay, &o);
		log_record(idx, m, r, relay, &o);
		printf("rcpt %d %zu <%s> kind=%s stage=%s code=%d enh=%s accepted=%d "
		       "status=%s dsn=%s next=%d reason=%s\n", idx, i, r->addr,
		       smtp_client_kind_name(r->result.kind),
		       smtp_client_stage_name(r->result.stage), r->result.code,
		       *r->result.enh ? r->result.enh : "-", r->accepted,
		       delivery_status_name(o.status), o.dsn, o.try_next, o.reason);
	}
}

static void on_idle_done(uv_timer_t *t)
{
	if (cur)
		send_next(cur);
}

static void on_message_done(void *arg, struct smtp_client *s, struct smtp_client_msg *m)
{
	int idx = (int)(((struct drive_msg *)m->body.arg) - msgs);

	print_rcpts(idx, m, smtp_client_relay(s));
	printf("msg %d dot=%d dsn_passed=%d setup=%.3f xfer=%.3f\n", idx, m->dot_sent,
	       m->dsn_passed, m->setup_time, m->xfer_time);
	fflush(stdout);
	/* -I: keep the session idle between messages, as a scheduler with
	 * nothing due yet would. */
	if (idle_ms && s == cur && next_msg < nmsgs)
		uv_timer_start(&idle_timer, on_idle_done, idle_ms, 0);
	else
		send_next(s);
}

static const struct smtp_client_cb cb;

/* The peak resident size of this process image (VmHWM): getrusage's
 * ru_maxrss would include the parent's peak from before exec. */
static long peak_rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static void on_closed(void *arg, const struct smtp_client_result *r)
{
	uv_timer_stop(&idle_timer);
	/* What the scheduler does with messages the session never took:
	 * the session's fact applies to each of their recipients. */
	for (int i = next_msg; i < nmsgs; i++) {
		struct smtp_client_msg *m = &msgs[i].m;
		for (size_t k = 0; k < m->nrcpt; k++)
			m->rcpt[k].result = r->fact;
		print_rcpts(i, m, &r->relay);
		printf("msg %d dot=0 dsn_passed=0 setup=%.3f xfer=0.000 unsent=1\n", i,
		       r->setup_time);
	}
	printf("closed kind=%s stage=%s code=%d tls=%d fallback=%d messages=%u "
	       "relay=%s[%s]:%u maxrss_kb=%ld text=%s\n", smtp_client_kind_name(r->fact.kind),
	       smtp_client_stage_name(r->fact.stage), r->fact.code, r->tls,
	       r->tls_fallback, r->messages, r->relay.host, r->relay.ip, r->relay.port,
	       peak_rss_kb(), r->fact.text);
	fflush(stdout);
	cur = NULL;
	if (r->tls_fallback && fallback_retry && !retried) {
		retried = 1;
		printf("retry in clear\n");
		opts.tls = TLS_LEVEL_NONE;
		next_msg = 0;
		cur = smtp_client_start(loop, &opts, &cb, NULL);
		return;
	}
	if (!uv_is_closing((uv_handle_t *)&abandon_timer)) {
		uv_close((uv_handle_t *)&abandon_timer, NULL);
		uv_close((uv_handle_t *)&idle_timer, NULL);
	}
}

static const struct smtp_client_cb cb = {
	.on_ready = on_ready,
	.on_message_done = on_message_done,
	.on_closed = on_closed,
};

static void on_abandon(uv_timer_t *t)
{
	if (cur)
		smtp_client_abandon(cur);
}

static int usage(void)
{
	fprintf(stderr, "usage: smtpc_drive -s IP:PORT [options] -m FILE -r RCPT ...\n");
	return 2;
}

static int parse_hostport(const char *s, struct sockaddr_storage *ss)
{
	char host[64];
	const char *colon = strrchr(s, ':');

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	int port = atoi(colon + 1);
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
		return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss);
	}
	return uv_ip4_addr(host, port, (struct sockaddr_in *)ss);
}

static unsigned parse_notify(const char *s)
{
	unsigned v = 0;

	if (strstr(s, "NEVER"))
		v |= QUEUE_NOTIFY_NEVER;
	if (strstr(s, "SUCCESS"))
		v |= QUEUE_NOTIFY_SUCCESS;
	if (strstr(s, "FAILURE"))
		v |= QUEUE_NOTIFY_FAILURE;
	if (strstr(s, "DELAY"))
		v |= QUEUE_NOTIFY_DELAY;
	return v;
}

static int parse_timeouts(const char *s)
{
	unsigned long long v[5];

	if (sscanf(s, "%llu,%llu,%llu,%llu,%llu", &v[0], &v[1], &v[2], &v[3], &v[4]) != 5)
		return -1;
	opts.connect_ms = v[0];
	opts.helo_ms = v[1];
	opts.command_ms = v[2];
	opts.data_xfer_ms = v[3];
	opts.data_done_ms = v[4];
	return 0;
}

/* A message option; -1 on a usage error. */
static int msg_opt(int c, const char *arg)
{
	struct drive_msg *d = nmsgs ? &msgs[nmsgs - 1] : NULL;
	struct smtp_client_rcpt *last = d && d->m.nrcpt ? &d->rcpt[d->m.nrcpt - 1] : NULL;

	if (c == 'm') {
		if (nmsgs == MAX_MSGS)
			return -1;
		d = &msgs[nmsgs++];
		if ((d->fd = open(arg, O_RDONLY)) < 0) {
			perror(arg);
			return -1;
		}
		d->m.sender = "sender@relayd.test";
		d->m.rcpt = d->rcpt;
		d->m.body.read = body_read;
		d->m.body.arg = d;
		d->fail_at = -1;
		return 0;
	}
	if (!d)
		return -1;
	switch (c) {
	case 'f': d->m.sender = arg; break;
	case 'S': d->m.size = strtoull(arg, NULL, 10); d->size_set = 1; break;
	case '8': d->m.flags |= SMTPC_MSG_8BIT; break;
	case 'u': d->m.flags |= SMTPC_MSG_SMTPUTF8; break;
	case 'R': d->m.ret = !strcmp(arg, "FULL") ? QUEUE_RET_FULL : QUEUE_RET_HDRS; break;
	case 'E': d->m.envid = arg; break;
	case 'X': d->fail_at = atoll(arg); break;
	case 'r':
		if (d->m.nrcpt == MAX_RCPTS)
			return -1;
		d->rcpt[d->m.nrcpt++].addr = arg;
		break;
	case 'N': if (!last) return -1; last->notify = parse_notify(arg); break;
	case 'O': if (!last) return -1; last->orcpt = arg; break;
	default: return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *ca = NULL, *level = "none";
	char err[512];
	int c, have_addr = 0;

	opts.helo_name = "relayd.test";
	opts.source.ss_family = AF_UNSPEC;
	parse_timeouts("5000,5000,5000,5000,5000");
	while ((c = getopt(argc, argv, "s:n:H:t:c:a:b:T:A:I:FC:m:f:S:8uR:E:X:r:N:O:")) != -1) {
		switch (c) {
		case 'C':
			if (cfg_loaded || config_load(&cfg, optarg, stderr) != 0 ||
			    smtp_client_opts_config(&opts, &cfg, 1))
				return usage();
			cfg_loaded = 1;
			level = NULL;
			break;
		case 's':
			if (parse_hostport(optarg, &opts.addr))
				return usage();
			have_addr = 1;
			break;
		case 'n': opts.host = optarg; break;
		case 'H': opts.helo_name = optarg; break;
		case 't': level = optarg; break;
		case 'c': ca = optarg; break;
		case 'a': opts.auth = optarg; break;
		case 'b':
			if (uv_ip4_addr(optarg, 0, (struct sockaddr_in *)&opts.source) &&
			    uv_ip6_addr(optarg, 0, (struct sockaddr_in6 *)&opts.source))
				return usage();
			break;
		case 'T': if (parse_timeouts(optarg)) return usage(); break;
		case 'A': abandon_ms = strtoull(optarg, NULL, 10); break;
		case 'I': idle_ms = strtoull(optarg, NULL, 10); break;
		case 'F': fallback_retry = 1; break;
		default:
			if (msg_opt(c, optarg))
				return usage();
		}
	}
	if (!have_addr || optind != argc)
		return usage();
	static const char *const levels[] = { "none", "may", "encrypt", "verify" };
	for (int i = 0; i < 4 && level; i++)
		if (!strcmp(level, levels[i]))
			opts.tls = (enum config_tls_level)i;
	for (int i = 0; i < nmsgs; i++) {
		if (!msgs[i].size_set) {
			off_t end = lseek(msgs[i].fd, 0, SEEK_END);
			msgs[i].m.size = end > 0 ? (uint64_t)end : 0;
		}
	}
	log_open("relayd", LOG_FLAG_STDERR | LOG_FLAG_NOSYSLOG);
	if (opts.tls != TLS_LEVEL_NONE &&
	    tls_client_ctx_new(&opts.tls_ctx, ca, err, sizeof(err))) {
		fprintf(stderr, "smtpc_drive: %s\n", err);
		return 1;
	}
	loop = uv_default_loop();
	uv_timer_init(loop, &abandon_timer);
	uv_timer_init(loop, &idle_timer);
	if (abandon_ms)
		uv_timer_start(&abandon_timer, on_abandon, abandon_ms, 0);
	cur = smtp_client_start(loop, &opts, &cb, NULL);
	if (!cur)
		return 1;
	uv_run(loop, UV_RUN_DEFAULT);
	tls_ctx_unref(opts.tls_ctx);
	for (int i = 0; i < nmsgs; i++)
		close(msgs[i].fd);
	uv_loop_close(loop);
	if (cfg_loaded)
		config_free(&cfg);
	return 0;
}
