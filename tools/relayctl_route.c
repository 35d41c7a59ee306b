/*
 * relayctl_route.c - "relayctl route ADDRESS|DOMAIN": the next hops
 * delivery would try, in order, one "PREF HOST IP:PORT" per line, worked
 * out by the same resolver set-up as the daemon's (resolver.h) on a loop
 * of its own, so it needs no running daemon.  A DNS failure goes to
 * stderr with its enhanced status code, and the exit code is 1.
 */
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include "relayctl.h"
#include "resolver.h"

struct route_wait {
	int done;
	int rc;
	const char *dest;
};

static void on_route(void *arg, const struct dns_route *rt)
{
	struct route_wait *w = arg;
	w->done = 1;
	if (rt->status != DNS_OK) {
		fprintf(stderr, "relayctl: %s: %s failure: %s %s\n", w->dest,
			rt->status == DNS_RETRY ? "temporary" : "permanent",
			rt->dsn, rt->text);
		w->rc = 1;
		return;
	}
	for (size_t i = 0; i < rt->n; i++) {
		char addr[80];
		dns_addr_text((const struct sockaddr *)&rt->hop[i].addr, addr,
			      sizeof(addr));
		printf("%u %s %s\n", rt->hop[i].pref, rt->hop[i].host, addr);
	}
	w->rc = fflush(stdout) ? 1 : 0;
}

int relayctl_route(struct relayctl *ctl, int argc, char **argv)
{
	struct resolver_conf rc;
	struct dns_resolver *r;
	struct route_wait w = { .dest = argv[0] };
	char err[256];
	uv_loop_t loop;
	if (uv_loop_init(&loop)) {
		fprintf(stderr, "relayctl: cannot start an event loop\n");
		return 1;
	}
	if (resolver_conf_init(&rc, &ctl->cfg)) {
		fprintf(stderr, "relayctl: out of memory\n");
		uv_loop_close(&loop);
		return 1;
	}
	if (dns_resolver_new(&r, &loop, &rc.opt, err, sizeof(err))) {
		fprintf(stderr, "relayctl: %s\n", err);
		resolver_conf_free(&rc);
		uv_loop_close(&loop);
		return 1;
	}
	dns_route(r, argv[0], &rc.route, on_route, &w);
	while (!w.done && uv_run(&loop, UV_RUN_ONCE))
		;
	dns_resolver_free(r);
	uv_run(&loop, UV_RUN_DEFAULT);      /* the close callbacks */
	uv_loop_close(&loop);
	resolver_conf_free(&rc);
	if (!w.done) {
		fprintf(stderr, "relayctl: %s: no answer\n", argv[0]);
		return 1;
	}
	return w.rc;
}
