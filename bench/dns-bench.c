/*
 * dns-bench.c - librelaydns throughput and the loop's longest stall: N
 * distinct domains routed (MX, then A and AAAA of each MX host) with M
 * routes in flight against one DNS server, then the same N again from
 * the cache.  A 1 ms repeating timer measures how late the loop runs it:
 * the worst lateness is the longest the loop was held by our callbacks
 * (or anything else), which must stay small (DNS never blocks the loop).
 *
 *   dns-bench -s IP:PORT [-n DOMAINS] [-c INFLIGHT] [-d SUFFIX]
 *
 * Domain i is "d<i>.SUFFIX" (default suffix "bench.test").  Prints one
 * line per pass.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include "dns.h"

struct bench {
	uv_loop_t *loop;
	struct dns_resolver *r;
	struct dns_route_params p;
	const char *suffix;
	unsigned n, inflight, next, done, running, ok, retry, fail;
	uv_timer_t tick;
	uint64_t tick_due, worst_late;   /* ns */
};

static void start_next(struct bench *b);

static void on_route(void *arg, const struct dns_route *rt)
{
	struct bench *b = arg;
	b->running--;
	b->done++;
	if (rt->status == DNS_OK)
		b->ok++;
	else if (rt->status == DNS_RETRY)
		b->retry++;
	else
		b->fail++;
}

/* Keep `inflight` routes going.  A cache hit answers inside dns_route,
 * so this loops rather than recursing; at most `inflight` starts per
 * call, so that cached answers too leave the loop its turn. */
static void start_next(struct bench *b)
{
	for (unsigned k = 0; k < b->inflight && b->running < b->inflight &&
			     b->next < b->n; k++) {
		char name[256];
		snprintf(name, sizeof(name), "d%u.%s", b->next++, b->suffix);
		b->running++;
		dns_route(b->r, name, &b->p, on_route, b);
	}
}

static void on_tick(uv_timer_t *t)
{
	struct bench *b = t->data;
	uint64_t now = uv_hrtime();
	if (b->tick_due && now > b->tick_due && now - b->tick_due > b->worst_late)
		b->worst_late = now - b->tick_due;
	b->tick_due = now + 1000000;
	start_next(b);
	if (b->done == b->n)
		uv_timer_stop(t);
}

/* Refill at every loop iteration; an idle handle also keeps the loop
 * from sleeping in poll while cached answers are to be had. */
static void on_idle(uv_idle_t *h)
{
	start_next(h->data);
}

static void pass(struct bench *b, const char *what)
{
	uv_idle_t idle;
	b->next = b->done = b->running = b->ok = b->retry = b->fail = 0;
	b->worst_late = 0;
	b->tick_due = 0;
	uv_idle_init(b->loop, &idle);
	idle.data = b;
	uv_idle_start(&idle, on_idle);
	uint64_t t0 = uv_hrtime();
	uv_timer_start(&b->tick, on_tick, 0, 1);
	start_next(b);
	while (b->done < b->n)
		uv_run(b->loop, UV_RUN_ONCE);
	double secs = (double)(uv_hrtime() - t0) / 1e9;
	uv_timer_stop(&b->tick);
	uv_close((uv_handle_t *)&idle, NULL);
	uv_run(b->loop, UV_RUN_NOWAIT);
	struct dns_stats st;
	dns_resolver_stats(b->r, &st);
	printf("%-6s domains=%u inflight=%u ok=%u retry=%u fail=%u time=%.3fs "
	       "routes/s=%.0f longest_stall=%.2fms queries_total=%llu hits_total=%llu\n",
	       what, b->n, b->inflight, b->ok, b->retry, b->fail, secs,
	       b->n / secs, b->worst_late / 1e6, st.queries, st.hits);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct bench b = { .n = 10000, .inflight = 100, .suffix = "bench.test" };
	struct sockaddr_storage server;
	char err[256];
	const char *srv = NULL;
	int c;
	while ((c = getopt(argc, argv, "s:n:c:d:")) != -1) {
		switch (c) {
		case 's': srv = optarg; break;
		case 'n': b.n = (unsigned)atoi(optarg); break;
		case 'c': b.inflight = (unsigned)atoi(optarg); break;
		case 'd': b.suffix = optarg; break;
		default: goto usage;
		}
	}
	memset(&server, 0, sizeof(server));
	struct sockaddr_in *sin = (struct sockaddr_in *)&server;
	char ip[64];
	unsigned port;
	if (!srv || sscanf(srv, "%63[0-9.]:%u", ip, &port) != 2 ||
	    inet_pton(AF_INET, ip, &sin->sin_addr) != 1 || !b.n || !b.inflight)
		goto usage;
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	b.loop = uv_default_loop();
	struct dns_options o = {
		.servers = &server, .nservers = 1, .timeout_ms = 5000,
		.cache_size = (size_t)b.n * 4 + 1024, .prefer_ipv6 = 0,
	};
	if (dns_resolver_new(&b.r, b.loop, &o, err, sizeof(err))) {
		fprintf(stderr, "dns-bench: %s\n", err);
		return 1;
	}
	b.p.port = 25;
	b.p.family = DNS_INET_ALL;
	b.p.address_limit = 5;
	uv_timer_init(b.loop, &b.tick);
	b.tick.data = &b;
	pass(&b, "cold");
	pass(&b, "cached");
	uv_close((uv_handle_t *)&b.tick, NULL);
	dns_resolver_free(b.r);
	uv_run(b.loop, UV_RUN_DEFAULT);
	return 0;
usage:
	fprintf(stderr, "usage: dns-bench -s IP:PORT [-n DOMAINS] [-c INFLIGHT] [-d SUFFIX]\n");
	return 2;
}
