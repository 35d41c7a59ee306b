/*
 * fuzz_dns_msg.c - fuzz target for the DNS answer parser (dns/dns_msg.c):
 * every byte of an answer comes from the network.
 *
 * Input: a DNS message, parsed as the answer to "example.org" for each of
 * A, AAAA, MX, PTR and TLSA.  Checked, beyond the absence of crashes and
 * leaks:
 *  - the parser always returns a message (NULL only without memory);
 *  - no more than DNS_RR_MAX records, every one of the type asked for;
 *  - TTLs within the clamps (DNS_TTL_MAX, DNS_NEG_TTL_MAX), no TTL on a
 *    temporary failure, records only with NOERROR;
 *  - A/AAAA records carry their family, MX/PTR records a name and TLSA
 *    records their raw rdata.
 * A violation aborts, which libFuzzer (or t/fuzz/driver.c) reports.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dns_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_dns_msg: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

static void check_rr(const struct dns_rr *rr, uint16_t type)
{
	CHECK(rr->type == type);
	switch (type) {
	case DNS_T_A:
		CHECK(rr->family == AF_INET);
		break;
	case DNS_T_AAAA:
		CHECK(rr->family == AF_INET6);
		break;
	case DNS_T_MX:
	case DNS_T_PTR:
		CHECK(rr->name != NULL);
		break;
	default:
		CHECK(rr->data != NULL || rr->len == 0);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t types[] = {
		DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_PTR, DNS_T_TLSA,
	};
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		struct dns_msg *m = dns_msg_parse(data, size, "example.org", types[t]);
		CHECK(m != NULL);
		const struct dns_answer *a = &m->a;
		CHECK(a->n <= DNS_RR_MAX);
		CHECK(a->rcode == DNS_R_NOERROR || a->n == 0);
		CHECK(a->rcode != DNS_R_NOERROR || a->n > 0);
		if (a->rcode == DNS_R_NOERROR)
			CHECK(a->ttl <= DNS_TTL_MAX);
		else if (a->rcode == DNS_R_TEMPFAIL)
			CHECK(a->ttl == 0 && a->why && *a->why);
		else
			CHECK(a->ttl <= DNS_NEG_TTL_MAX);
		for (size_t i = 0; i < a->n; i++)
			check_rr(&a->rr[i], types[t]);
		dns_msg_free(m);
	}
	return 0;
}
