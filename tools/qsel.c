/*
 * qsel.c - queue names, bulk-action filters and the paged walk shared by
 * relayq and relayctl (see qsel.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "qsel.h"

static const char *const state_names[QSEL_NSTATES] = {
	"incoming", "active", "deferred", "hold",
};

const char *qsel_state_name(enum qsel_state s)
{
	return s < QSEL_NSTATES ? state_names[s] : "unknown";
}

int qsel_rcpt_live(const struct queue_rcpt *r)
{
	return r->state == QUEUE_RCPT_PENDING || r->state == QUEUE_RCPT_DEFERRED;
}

int qsel_rcpt_active(const struct queue_rcpt *r, int64_t now)
{
	return qsel_rcpt_live(r) && r->claim_gen && r->claim_until > now;
}

enum qsel_state qsel_state_of(const struct queue_msg *m, int64_t now)
{
	int tried = 0;
	if (m->flags & QUEUE_F_HELD)
		return QSEL_HOLD;
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		if (qsel_rcpt_active(&m->rcpt[i], now))
			return QSEL_ACTIVE;
		tried |= m->rcpt[i].attempts > 0;
	}
	return tried ? QSEL_DEFERRED : QSEL_INCOMING;
}

int qsel_filter_reason(struct qsel_filter *f, const char *re, char *err,
		       size_t errlen)
{
	int rc = regcomp(&f->reason, re, REG_EXTENDED | REG_NOSUB);
	if (rc) {
		regerror(rc, &f->reason, err, errlen);
		return -1;
	}
	f->has_reason = 1;
	return 0;
}

void qsel_filter_free(struct qsel_filter *f)
{
	if (f->has_reason)
		regfree(&f->reason);
	f->has_reason = 0;
}

int qsel_filter_set(const struct qsel_filter *f)
{
	return f->from || f->to_domain || f->older_than || f->has_reason;
}

static const char *domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');
	return at ? at + 1 : "";
}

static int sender_match(const char *want, const char *sender)
{
	if (want[0] == '@')
		return strchr(sender, '@') &&
		       strcasecmp(domain_of(sender), want + 1) == 0;
	return strcasecmp(sender, want) == 0;
}

/* Some live recipient passes both the domain and the reason filter. */
static int rcpt_match(const struct qsel_filter *f, const struct queue_msg *m)
{
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		const struct queue_rcpt *r = &m->rcpt[i];
		if (!qsel_rcpt_live(r))
			continue;
		if (f->to_domain && strcasecmp(domain_of(r->addr), f->to_domain))
			continue;
		if (f->has_reason &&
		    regexec(&f->reason, r->reason ? r->reason : "", 0, NULL, 0))
			continue;
		return 1;
	}
	return 0;
}

int qsel_match(const struct qsel_filter *f, const struct queue_msg *m)
{
	if (f->from && !sender_match(f->from, m->sender))
		return 0;
	if (f->older_than &&
	    m->arrival / 1000000 > f->now - (int64_t)f->older_than)
		return 0;
	if ((f->to_domain || f->has_reason) && !rcpt_match(f, m))
		return 0;
	return 1;
}

int qsel_open(struct queue **q, const struct config *cfg, const char *prog)
{
	int rc = queue_open(q, cfg->queue_dir, (size_t)cfg->queue_map_size,
			    QUEUE_OPEN_RDONLY);
	if (rc) {
		fprintf(stderr, "%s: cannot read queue %s: %s\n", prog,
			cfg->queue_dir, rc == QUEUE_ESCHEMA ?
			"written by another version (start relayd once)" :
			rc == QUEUE_ENOENT ? "no queue there (has relayd run with this configuration?)" :
			queue_strerror(rc));
		return -1;
	}
	return 0;
}

int qsel_walk(struct queue *q, size_t page, qsel_fn *fn, void *arg)
{
	struct queue_msg *buf = calloc(page, sizeof(*buf));
	queue_id after;
	int have_after = 0, rc = 0;
	if (!buf)
		return QUEUE_ENOMEM;
	for (;;) {
		size_t n = 0;
		rc = queue_list_page(q, have_after ? after.s : NULL, buf, page, &n);
		if (rc || n == 0)
			break;
		for (size_t i = 0; i < n; i++) {
			if (!rc)
				rc = fn(&buf[i], arg);
			queue_msg_clear(&buf[i]);
		}
		after = buf[n - 1].id;
		have_after = 1;
		if (rc)         /* a short page is not the end: only an empty one */
			break;
	}
	free(buf);
	return rc;
}
