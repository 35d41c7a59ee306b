/*
 * dns_query.c - run librelaydns lookups in one process, so that tests can
 * watch its cache and its sharing of queries against a real server:
 *
 *   dns_query IP:PORT OP...
 *
 * OPs, in order: NAME/TYPE (a lookup: A, AAAA, MX, PTR, TLSA), xN:NAME/TYPE
 * (N lookups of it started at once), sleep:MS.  Each answer prints
 * "NAME TYPE RCODE n=N ttl=T"; at the end "queries=Q hits=H".
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include "dns.h"

static const char *const rcodes[] = { "NOERROR", "NODATA", "NXDOMAIN", "TEMPFAIL" };
static int pending;

static void on_answer(void *arg, const struct dns_answer *a)
{
	printf("%s %s %s n=%zu ttl=%u\n", a->qname, (const char *)arg,
	       rcodes[a->rcode], a->n, a->ttl);
	pending--;
}

static int type_of(const char *s)
{
	static const struct { const char *n; int t; } v[] = {
		{ "A", DNS_T_A }, { "AAAA", DNS_T_AAAA }, { "MX", DNS_T_MX },
		{ "PTR", DNS_T_PTR }, { "TLSA", DNS_T_TLSA },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (!strcmp(s, v[i].n))
			return v[i].t;
	return -1;
}

/* Start n lookups of "NAME/TYPE" and run the loop until all answered. */
static int lookup(uv_loop_t *loop, struct dns_resolver *r, char *op, int n)
{
	char *slash = strchr(op, '/');
	int type = slash ? type_of(slash + 1) : -1;
	if (type < 0)
		return -1;
	*slash = '\0';
	for (int i = 0; i < n; i++) {
		pending++;
		dns_lookup(r, op, (enum dns_type)type, on_answer, slash + 1);
	}
	while (pending > 0)
		uv_run(loop, UV_RUN_ONCE);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	char ip[64], err[256];
	unsigned port;
	memset(&ss, 0, sizeof(ss));
	if (argc < 2 || sscanf(argv[1], "%63[0-9.]:%u", ip, &port) != 2 ||
	    inet_pton(AF_INET, ip, &sin->sin_addr) != 1) {
		fprintf(stderr, "usage: dns_query IP:PORT OP...\n");
		return 2;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	uv_loop_t *loop = uv_default_loop();
	struct dns_options o = { .servers = &ss, .nservers = 1, .timeout_ms = 3000 };
	struct dns_resolver *r;
	if (dns_resolver_new(&r, loop, &o, err, sizeof(err))) {
		fprintf(stderr, "dns_query: %s\n", err);
		return 1;
	}
	int rc = 0;
	for (int i = 2; i < argc && !rc; i++) {
		int n = 1;
		char *op = argv[i];
		if (!strncmp(op, "sleep:", 6)) {
			usleep((useconds_t)atoi(op + 6) * 1000);
			uv_update_time(loop);
			continue;
		}
		if (op[0] == 'x' && strchr(op, ':')) {
			n = atoi(op + 1);
			op = strchr(op, ':') + 1;
		}
		if (lookup(loop, r, op, n)) {
			fprintf(stderr, "dns_query: bad op '%s'\n", argv[i]);
			rc = 2;
		}
	}
	struct dns_stats st;
	dns_resolver_stats(r, &st);
	printf("queries=%llu hits=%llu\n", st.queries, st.hits);
	dns_resolver_free(r);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	return rc;
}
