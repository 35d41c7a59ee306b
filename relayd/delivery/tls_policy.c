/*
 * tls_policy.c - the tls_policy file (tls_policy.h).
 *
 * A handful of lines in practice: a sorted table would not pay for
 * itself; a linear scan at each attempt is cheaper than the handshake.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "tls_policy.h"

#define POLICY_MAX_LINES 100000

struct tls_rule {
	char *domain;            /* lower case; ".x" matches subdomains of x */
	enum config_tls_level level;
};

struct tls_policy {
	struct tls_rule *r;
	size_t n, cap;
};

static int parse_level(const char *w, enum config_tls_level *out)
{
	static const struct { const char *n; enum config_tls_level l; } t[] = {
		{ "none", TLS_LEVEL_NONE }, { "may", TLS_LEVEL_MAY },
		{ "encrypt", TLS_LEVEL_ENCRYPT }, { "verify", TLS_LEVEL_VERIFY },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcasecmp(w, t[i].n) == 0) {
			*out = t[i].l;
			return 0;
		}
	return -1;
}

static int add_rule(struct tls_policy *p, const char *dom,
		    enum config_tls_level l)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct tls_rule *r = realloc(p->r, cap * sizeof(*r));
		if (!r)
			return -1;
		p->r = r;
		p->cap = cap;
	}
	char *d = strdup(dom);
	if (!d)
		return -1;
	for (char *c = d; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	size_t len = strlen(d);
	if (len > 1 && d[len - 1] == '.')
		d[len - 1] = 0;
	p->r[p->n].domain = d;
	p->r[p->n].level = l;
	p->n++;
	return 0;
}

int tls_policy_load(struct tls_policy **out, const char *path, char *err,
		    size_t errlen)
{
	*out = NULL;
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct tls_policy *p = calloc(1, sizeof(*p));
	char line[1024];
	unsigned lineno = 0;
	int rc = p ? 0 : -1;
	if (!p)
		snprintf(err, errlen, "%s: out of memory", path);
	while (!rc && fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%u: line too long", path, lineno);
			rc = -1;
			break;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *save, *dom = strtok_r(line, " \t\r\n", &save);
		if (!dom)
			continue;
		char *lvl = strtok_r(NULL, " \t\r\n", &save);
		enum config_tls_level l;
		if (!lvl || strtok_r(NULL, " \t\r\n", &save) || parse_level(lvl, &l)) {
			snprintf(err, errlen, "%s:%u: expected 'domain none|may|encrypt|verify'",
				 path, lineno);
			rc = -1;
		} else if (strlen(dom) > 255 || p->n >= POLICY_MAX_LINES) {
			snprintf(err, errlen, "%s:%u: domain too long or too many lines",
				 path, lineno);
			rc = -1;
		} else if (add_rule(p, dom, l)) {
			snprintf(err, errlen, "%s: out of memory", path);
			rc = -1;
		}
	}
	if (!rc && ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		rc = -1;
	}
	fclose(f);
	if (rc) {
		tls_policy_free(p);
		return -1;
	}
	*out = p;
	return 0;
}

void tls_policy_free(struct tls_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->r[i].domain);
	free(p->r);
	free(p);
}

/* An exact line wins over a ".parent" line; the longest parent wins. */
enum config_tls_level tls_policy_lookup(const struct tls_policy *p,
					const char *dest,
					enum config_tls_level def)
{
	if (!p || !dest)
		return def;
	size_t dl = strlen(dest), best = 0;
	enum config_tls_level found = def;
	for (size_t i = 0; i < p->n; i++) {
		const char *d = p->r[i].domain;
		size_t l = strlen(d);
		if (d[0] != '.') {
			if (l == dl && strcasecmp(d, dest) == 0)
				return p->r[i].level;
		} else if (dl > l && strcasecmp(dest + dl - l, d) == 0 && l > best) {
			best = l;
			found = p->r[i].level;
		}
	}
	return found;
}
