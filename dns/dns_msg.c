/*
 * dns_msg.c - turn one DNS answer into the records a lookup wants.
 *
 * c-ares matches the answer to its question and expands names
 * (ares_expand_name, which bounds compression loops); this file walks the
 * sections with checked lengths, follows the CNAME chain inside the answer
 * from the name asked for (as c-ares' own parsers do), keeps at most
 * DNS_RR_MAX records of the type asked for, and takes the TTLs:
 * the least TTL of the chain and the records for a positive answer, the
 * SOA's min(TTL, MINIMUM) for a negative one (RFC 2308 §5), both clamped.
 * A malformed or truncated answer is a temporary failure, never a crash.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dns_int.h"

#define SECTION_RR_MAX 4096   /* records walked per section, at most */

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

const char *dns_type_name(uint16_t type)
{
	switch (type) {
	case DNS_T_A: return "A";
	case DNS_T_AAAA: return "AAAA";
	case DNS_T_MX: return "MX";
	case DNS_T_PTR: return "PTR";
	case DNS_T_CNAME: return "CNAME";
	case DNS_T_TLSA: return "TLSA";
	default: return "?";
	}
}

/* One resource record's header, its rdata located in the buffer. */
struct raw_rr {
	char *owner;                  /* malloc'd by c-ares */
	uint16_t type, cls;
	uint32_t ttl;
	size_t rdpos, rdlen;
};

/* The expanded name at pos; its encoded length in *used. */
static char *expand(const unsigned char *buf, size_t len, size_t pos,
		    size_t *used)
{
	char *s = NULL;
	long enc = 0;
	if (pos >= len || ares_expand_name(buf + pos, buf, (int)len, &s, &enc) !=
			  ARES_SUCCESS)
		return NULL;
	if (enc <= 0 || (size_t)enc > len - pos) {
		ares_free_string(s);
		return NULL;
	}
	*used = (size_t)enc;
	return s;
}

static int read_rr(const unsigned char *buf, size_t len, size_t *pos,
		   struct raw_rr *rr)
{
	size_t used;
	rr->owner = expand(buf, len, *pos, &used);
	if (!rr->owner)
		return -1;
	size_t p = *pos + used;
	if (len - p < 10)
		goto bad;
	rr->type = get16(buf + p);
	rr->cls = get16(buf + p + 2);
	rr->ttl = get32(buf + p + 4);
	if (rr->ttl > 0x7fffffffu)
		rr->ttl = 0;                /* RFC 2181 §8 */
	rr->rdlen = get16(buf + p + 8);
	rr->rdpos = p + 10;
	if (rr->rdlen > len - rr->rdpos)
		goto bad;
	*pos = rr->rdpos + rr->rdlen;
	return 0;
bad:
	ares_free_string(rr->owner);
	rr->owner = NULL;
	return -1;
}

/* Walk state of one answer. */
struct walk {
	const unsigned char *buf;
	size_t len;
	uint16_t qtype;
	struct { char *owner, *target; uint32_t ttl; } cname[DNS_CNAME_HOPS * 2];
	size_t ncname;
	struct { char *owner; struct dns_rr rr; } keep[DNS_RR_MAX];
	size_t nkeep;
	uint32_t neg_ttl;
	int has_soa;
};

static void walk_free(struct walk *w)
{
	for (size_t i = 0; i < w->ncname; i++) {
		ares_free_string(w->cname[i].owner);
		ares_free_string(w->cname[i].target);
	}
	for (size_t i = 0; i < w->nkeep; i++) {
		ares_free_string(w->keep[i].owner);
		free((char *)w->keep[i].rr.name);
		free((void *)w->keep[i].rr.data);
	}
}

/* Decode the rdata of a record of the type asked for; -1: skip it. */
static int decode(struct walk *w, const struct raw_rr *raw, struct dns_rr *rr)
{
	const unsigned char *rd = w->buf + raw->rdpos;
	size_t used;
	char *name;

	memset(rr, 0, sizeof(*rr));
	rr->type = raw->type;
	rr->ttl = raw->ttl;
	switch (raw->type) {
	case DNS_T_A:
	case DNS_T_AAAA: {
		size_t n = raw->type == DNS_T_A ? 4 : 16;
		if (raw->rdlen != n)
			return -1;
		rr->family = raw->type == DNS_T_A ? AF_INET : AF_INET6;
		memcpy(rr->addr, rd, n);
		return 0;
	}
	case DNS_T_MX:
		if (raw->rdlen < 3)
			return -1;
		rr->pref = get16(rd);
		name = expand(w->buf, w->len, raw->rdpos + 2, &used);
		if (!name || used > raw->rdlen - 2)
			goto bad_name;
		break;
	case DNS_T_PTR:
		name = expand(w->buf, w->len, raw->rdpos, &used);
		if (!name || used > raw->rdlen)
			goto bad_name;
		break;
	default:
		rr->len = raw->rdlen;
		rr->data = malloc(raw->rdlen ? raw->rdlen : 1);
		if (!rr->data)
			return -1;
		memcpy((void *)rr->data, rd, raw->rdlen);
		return 0;
	}
	rr->name = strdup(name);
	ares_free_string(name);
	return rr->name ? 0 : -1;
bad_name:
	if (name)
		ares_free_string(name);
	return -1;
}

/* Remember a record of the answer section; owner passes to w. */
static void keep_answer(struct walk *w, struct raw_rr *raw)
{
	if (raw->cls != 1) {
		ares_free_string(raw->owner);
		return;
	}
	if (raw->type == DNS_T_CNAME && raw->type != w->qtype &&
	    w->ncname < sizeof(w->cname) / sizeof(w->cname[0])) {
		size_t used;
		char *t = expand(w->buf, w->len, raw->rdpos, &used);
		if (t && used <= raw->rdlen) {
			w->cname[w->ncname].owner = raw->owner;
			w->cname[w->ncname].target = t;
			w->cname[w->ncname].ttl = raw->ttl;
			w->ncname++;
			return;
		}
		if (t)
			ares_free_string(t);
	} else if (raw->type == w->qtype && w->nkeep < DNS_RR_MAX &&
		   decode(w, raw, &w->keep[w->nkeep].rr) == 0) {
		w->keep[w->nkeep++].owner = raw->owner;
		return;
	}
	ares_free_string(raw->owner);
}

static void note_authority(struct walk *w, struct raw_rr *raw)
{
	/* SOA rdata ends with MINIMUM, the negative-caching TTL. */
	if (raw->type == 6 && raw->cls == 1 && raw->rdlen >= 22) {
		uint32_t min = get32(w->buf + raw->rdpos + raw->rdlen - 4);
		uint32_t ttl = raw->ttl < min ? raw->ttl : min;
		if (!w->has_soa || ttl < w->neg_ttl)
			w->neg_ttl = ttl;
		w->has_soa = 1;
	}
	ares_free_string(raw->owner);
}

/* Walk the sections; a reason when the message is malformed. */
static const char *walk_sections(struct walk *w)
{
	const unsigned char *buf = w->buf;
	size_t pos = 12, used;
	if (w->len < 12)
		return "short answer";
	if (buf[2] & 0x02)
		return "truncated answer";
	unsigned qd = get16(buf + 4), an = get16(buf + 6), ns = get16(buf + 8);
	if (qd > 1)
		return "malformed answer";
	for (unsigned i = 0; i < qd; i++) {
		char *q = expand(buf, w->len, pos, &used);
		if (!q)
			return "malformed answer";
		ares_free_string(q);
		pos += used;
		if (w->len - pos < 4)
			return "malformed answer";
		pos += 4;
	}
	for (unsigned i = 0; i < an && i < SECTION_RR_MAX; i++) {
		struct raw_rr raw;
		if (read_rr(buf, w->len, &pos, &raw))
			return "malformed answer";
		keep_answer(w, &raw);
	}
	for (unsigned i = 0; i < ns && i < SECTION_RR_MAX; i++) {
		struct raw_rr raw;
		if (read_rr(buf, w->len, &pos, &raw))
			break;          /* the answer section is what matters */
		note_authority(w, &raw);
	}
	return NULL;
}

static struct dns_msg *msg_new(const char *qname, uint16_t qtype, size_t n)
{
	struct dns_msg *m = calloc(1, sizeof(*m) + n * sizeof(m->rr[0]));
	if (!m)
		return NULL;
	m->a.qname = strdup(qname);
	if (!m->a.qname) {
		free(m);
		return NULL;
	}
	m->a.qtype = qtype;
	m->a.rr = m->rr;
	m->a.why = "";
	return m;
}

struct dns_msg *dns_msg_empty(const char *qname, uint16_t qtype,
			      enum dns_rcode rcode, const char *why)
{
	struct dns_msg *m = msg_new(qname, qtype, 0);
	if (m) {
		m->a.rcode = rcode;
		m->a.why = why ? why : "";
	}
	return m;
}

void dns_msg_free(struct dns_msg *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->a.n; i++) {
		free((char *)m->rr[i].name);
		free((void *)m->rr[i].data);
	}
	free((char *)m->a.qname);
	free(m);
}

static const char *rcode_why(unsigned rcode)
{
	switch (rcode) {
	case 1: return "format error";
	case 2: return "server failure";
	case 4: return "not implemented";
	case 5: return "refused";
	default: return "unexpected response code";
	}
}

/* Follow the chain from qname; the final owner and the chain's least TTL. */
static const char *chase(const struct walk *w, const char *qname,
			 uint32_t *ttl)
{
	const char *cur = qname;
	for (int hop = 0; hop < DNS_CNAME_HOPS; hop++) {
		size_t i;
		for (i = 0; i < w->ncname; i++)
			if (!strcasecmp(w->cname[i].owner, cur))
				break;
		if (i == w->ncname)
			break;
		cur = w->cname[i].target;
		if (w->cname[i].ttl < *ttl)
			*ttl = w->cname[i].ttl;
	}
	return cur;
}

static struct dns_msg *build(struct walk *w, const char *qname,
			     uint16_t qtype, unsigned rcode)
{
	uint32_t ttl = DNS_TTL_MAX;
	const char *owner = chase(w, qname, &ttl);
	size_t n = 0;
	for (size_t i = 0; i < w->nkeep; i++)
		n += !strcasecmp(w->keep[i].owner, owner);
	if (rcode != 0 && rcode != 3)
		return dns_msg_empty(qname, qtype, DNS_R_TEMPFAIL, rcode_why(rcode));
	struct dns_msg *m = msg_new(qname, qtype, n);
	if (!m)
		return NULL;
	for (size_t i = 0; i < w->nkeep; i++) {
		if (strcasecmp(w->keep[i].owner, owner))
			continue;
		m->rr[m->a.n] = w->keep[i].rr;     /* the strings move to m */
		memset(&w->keep[i].rr, 0, sizeof(w->keep[i].rr));
		if (m->rr[m->a.n].ttl < ttl)
			ttl = m->rr[m->a.n].ttl;
		m->a.n++;
	}
	if (m->a.n) {
		m->a.rcode = DNS_R_NOERROR;
		m->a.ttl = ttl;
	} else {
		m->a.rcode = rcode == 3 ? DNS_R_NXDOMAIN : DNS_R_NODATA;
		/* Without an SOA a negative answer is not cached (§5). */
		m->a.ttl = w->has_soa ? w->neg_ttl : 0;
		if (m->a.ttl > DNS_NEG_TTL_MAX)
			m->a.ttl = DNS_NEG_TTL_MAX;
	}
	return m;
}

struct dns_msg *dns_msg_parse(const unsigned char *buf, size_t len,
			      const char *qname, uint16_t qtype)
{
	if (!buf || len > 65535)
		return dns_msg_empty(qname, qtype, DNS_R_TEMPFAIL, "no answer");
	struct walk *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->buf = buf;
	w->len = len;
	w->qtype = qtype;
	const char *bad = walk_sections(w);
	struct dns_msg *m = bad ? dns_msg_empty(qname, qtype, DNS_R_TEMPFAIL, bad)
				: build(w, qname, qtype, buf[3] & 0x0f);
	walk_free(w);
	free(w);
	return m;
}
