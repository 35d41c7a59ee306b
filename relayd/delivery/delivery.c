/*
 * delivery.c - one delivery: the recipients of one destination claimed
 * together, routed, carried over one connection at a time through the
 * next-hop list, each message's result handed to apply.c.
 *
 * A recipient deferred by one hop while the policy allows the next
 * (try_next) is carried to the next hop in the same attempt; an IPv6 hop
 * that failed for IPv6's sake (no connection, or a reply naming reverse
 * DNS) is followed by the same host's IPv4 address.  A message that meets
 * a dead reused connection before MAIL was answered goes again on a fresh
 * one, without counting as an attempt (as Postfix does).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "log.h"
#include "sched_int.h"

static void connect_hop(struct job *j);
static void send_next(struct job *j);

/* ---- lists ---- */

static void push_tail(struct dmsg **h, struct dmsg **t, struct dmsg *m)
{
	m->next = NULL;
	if (*t)
		(*t)->next = m;
	else
		*h = m;
	*t = m;
}

static struct dmsg *pop(struct dmsg **h, struct dmsg **t)
{
	struct dmsg *m = *h;
	if (m) {
		*h = m->next;
		if (!*h)
			*t = NULL;
		m->next = NULL;
	}
	return m;
}

/* carry goes before what is left to send, keeping the order */
static void carry_to_todo(struct job *j)
{
	if (!j->carry)
		return;
	j->carry_tail->next = j->todo;
	if (!j->todo)
		j->todo_tail = j->carry_tail;
	j->todo = j->carry;
	j->carry = j->carry_tail = NULL;
}

void dmsg_free(struct dmsg *m)
{
	if (!m)
		return;
	queue_msg_clear(&m->m);
	free(m->r);
	free(m->cr);
	free(m->map);
	free(m);
}

/* ---- the end ---- */

static void maybe_end(struct job *j)
{
	if (j->state != JOB_END || j->cl || j->dj)
		return;
	sched__job_end(j);
}

static void hand_over(struct job *j, struct dmsg *m)
{
	j->open_msgs--;
	m->j = NULL;
	apply_msg(j->s, m);
}

/* Every recipient still undecided in m gets out (NULL: give the claim
 * back without an attempt). */
static void decide_rest(struct dmsg *m, const struct delivery_outcome *out,
			const struct smtp_client_relay *relay, int remote)
{
	for (size_t i = 0; i < m->n; i++) {
		struct drcpt *r = &m->r[i];
		if (r->decided)
			continue;
		r->decided = 1;
		if (!out) {
			r->release = 1;
			continue;
		}
		if (r->out.status != DELIVERY_RETRY || !r->out.dsn[0])
			r->out = *out;    /* keep a hop's own deferral of it */
		if (relay && relay->ip[0] && !r->has_relay) {
			r->relay = *relay;
			r->has_relay = 1;
			r->remote = remote;
		}
	}
}

/* What is left goes with out (NULL: released), and the delivery ends. */
static void finish(struct job *j, const struct delivery_outcome *out,
		   const struct smtp_client_relay *relay, int remote)
{
	struct dmsg *m;
	carry_to_todo(j);
	if (j->cur) {
		push_tail(&j->todo, &j->todo_tail, j->cur);
		j->cur = NULL;
	}
	while ((m = pop(&j->todo, &j->todo_tail))) {
		decide_rest(m, out, relay, remote);
		hand_over(j, m);
	}
	j->state = JOB_END;
	maybe_end(j);
}

/* ---- claims ---- */

struct job *delivery_new(struct sched *s, struct dest *d, const char *dest,
			 const struct queue_due *items, size_t n)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j || !(j->items = malloc(n * sizeof(*items)))) {
		free(j);
		return NULL;
	}
	memcpy(j->items, items, n * sizeof(*items));
	j->nitems = n;
	j->s = s;
	j->d = d;
	j->cfg = s->cfg;
	config_ref(j->cfg);
	snprintf(j->dest, sizeof(j->dest), "%s", dest);
	j->state = JOB_CLAIM;
	sched__job_add(s, j);
	return j;
}

/* One dmsg per destination_recipient_limit recipients of a message. */
static int add_msg(struct job *j, struct queue_read *r, const struct queue_due *it,
		   const uint64_t *gens, size_t n)
{
	size_t limit = j->cfg->destination_recipient_limit;
	for (size_t off = 0; off < n; off += limit) {
		size_t k = n - off < limit ? n - off : limit;
		struct dmsg *m = calloc(1, sizeof(*m));
		if (!m)
			return -1;
		m->r = calloc(k, sizeof(*m->r));
		m->cr = calloc(k, sizeof(*m->cr));
		m->map = calloc(k, sizeof(*m->map));
		int rc = m->r && m->cr && m->map ? queue_msg_get(r, it[0].id.s, &m->m)
						 : QUEUE_ENOMEM;
		if (rc) {
			dmsg_free(m);
			return rc;
		}
		m->j = j;
		m->n = k;
		for (size_t i = 0; i < k; i++) {
			m->r[i].idx = it[off + i].rcpt;
			m->r[i].gen = gens[off + i];
			if (m->r[i].idx >= m->m.nrcpt) {
				dmsg_free(m);
				return QUEUE_ECORRUPT;
			}
		}
		sched__fm_ref(j->s, m->m.id.s);
		j->open_msgs++;
		push_tail(&j->todo, &j->todo_tail, m);
	}
	return 0;
}

/* The items of one message [a, b) that were granted. */
static void load_msgs(struct job *j, const uint64_t *gens)
{
	struct queue_read *r;
	if (queue_read_begin(j->s->q, &r))
		return;
	struct queue_due *it = j->items;
	uint64_t *g = malloc(j->nitems * sizeof(*g));
	struct queue_due *granted = malloc(j->nitems * sizeof(*granted));
	for (size_t a = 0, b; g && granted && a < j->nitems; a = b) {
		size_t k = 0;
		for (b = a; b < j->nitems && strcmp(it[b].id.s, it[a].id.s) == 0; b++)
			if (gens[b]) {
				granted[k] = it[b];
				g[k++] = gens[b];
			}
		if (k && add_msg(j, r, granted, g, k)) {
			/* gone meanwhile, or unreadable: the lease brings it back */
			for (size_t x = 0; x < k; x++)
				sched__fl_del(j->s, granted[x].id.s, granted[x].rcpt);
		}
	}
	free(g);
	free(granted);
	queue_read_end(r);
}

static void on_route(void *arg, const struct dns_route *rt);
static void route_ready(struct job *j);

void delivery_claimed(struct job *j, const uint64_t *gens, size_t n)
{
	struct sched *s = j->s;
	if (gens && n == j->nitems)
		load_msgs(j, gens);
	/* what was refused or not loaded is not ours */
	for (size_t i = 0; i < j->nitems; i++)
		if (!gens || n != j->nitems || !gens[i])
			sched__fl_del(s, j->items[i].id.s, j->items[i].rcpt);
	if (!j->todo || s->stopping) {
		finish(j, NULL, NULL, 0);
		return;
	}
	j->claimed_at = time(NULL);
	j->state = JOB_ROUTE;
	j->in_route = 1;
	struct dns_job *dj = dns_route(s->dns, j->dest, &s->rc.route, on_route, j);
	j->in_route = 0;
	if (j->routed)
		route_ready(j);     /* answered from the cache */
	else
		j->dj = dj;
}

/* ---- routing ---- */

static void route_ready(struct job *j)
{
	if (j->route_status != DNS_OK || j->nhops == 0) {
		struct delivery_outcome out;
		memset(&out, 0, sizeof(out));
		out.status = j->route_status == DNS_FAIL ? DELIVERY_FAIL : DELIVERY_RETRY;
		snprintf(out.dsn, sizeof(out.dsn), "%s", j->route_dsn[0] ? j->route_dsn :
			 j->route_status == DNS_FAIL ? "5.4.4" : "4.4.3");
		snprintf(out.reason, sizeof(out.reason), "%s", j->route_text[0] ?
			 j->route_text : "no route to the destination");
		finish(j, j->route_nomem ? NULL : &out, NULL, 0);
		return;
	}
	j->tls = tls_policy_lookup(j->s->policy, j->dest, j->cfg->tls_outbound);
	j->state = JOB_CONNECT;
	connect_hop(j);
}

/* The result is the library's only during the call: copy it. */
static void on_route(void *arg, const struct dns_route *rt)
{
	struct job *j = arg;
	j->dj = NULL;
	j->route_status = rt->status;
	snprintf(j->route_dsn, sizeof(j->route_dsn), "%s", rt->dsn ? rt->dsn : "");
	snprintf(j->route_text, sizeof(j->route_text), "%s", rt->text ? rt->text : "");
	if (rt->status == DNS_OK && rt->n) {
		j->hops = calloc(rt->n, sizeof(*j->hops));
		for (size_t i = 0; j->hops && i < rt->n; i++) {
			j->hops[i] = rt->hop[i];
			j->hops[i].host = strdup(rt->hop[i].host ? rt->hop[i].host : "");
			if (!j->hops[i].host)
				break;
			j->nhops = i + 1;
		}
		if (j->nhops != rt->n) {
			j->route_status = DNS_RETRY;
			j->route_nomem = 1;
		}
	}
	j->routed = 1;
	if (!j->in_route)
		route_ready(j);
}

/* ---- the session ---- */

static void on_ready(void *arg, struct smtp_client *cl)
{
	struct job *j = arg;
	(void)cl;
	j->ready = 1;
	j->reached = 1;
	dest_conn_ok(j->d);
	send_next(j);
}

/* The hop failed because of IPv6: no connection, or a reply about
 * reverse DNS. */
static int v6_trouble(const struct job *j, const struct smtp_client_fact *f)
{
	if (j->hops[j->hop].addr.ss_family != AF_INET6)
		return 0;
	return f->kind == SMTPC_CONNECT_FAILED ||
	       (f->kind == SMTPC_REPLY && f->code >= 400 &&
		(strcasestr(f->text, "PTR") || strcasestr(f->text, "reverse")));
}

/* Bring the same host's next IPv4 address up next; 1 when there is one
 * (already next counts). */
static int v4_next(struct job *j)
{
	const struct dns_hop *h = &j->hops[j->hop];
	for (size_t k = j->hop + 1; k < j->nhops; k++)
		if (j->hops[k].addr.ss_family == AF_INET &&
		    strcmp(j->hops[k].host, h->host) == 0) {
			struct dns_hop v4 = j->hops[k];
			memmove(&j->hops[j->hop + 2], &j->hops[j->hop + 1],
				(k - j->hop - 1) * sizeof(v4));
			j->hops[j->hop + 1] = v4;
			return 1;
		}
	return 0;
}

static int v6_fallback(struct job *j, const struct smtp_client_fact *f)
{
	return v6_trouble(j, f) && v4_next(j);
}

static int dead_reuse(const struct smtp_client_msg *cm, unsigned before)
{
	if (!before || cm->dot_sent)
		return 0;
	for (size_t i = 0; i < cm->nrcpt; i++) {
		const struct smtp_client_fact *f = &cm->rcpt[i].result;
		if (cm->rcpt[i].accepted)
			return 0;
		if (f->kind != SMTPC_LOST && f->kind != SMTPC_BAD_REPLY &&
		    f->kind != SMTPC_TIMEOUT)
			return 0;
		if (f->stage != SMTPC_STAGE_MAIL && f->stage != SMTPC_STAGE_RSET &&
		    f->stage != SMTPC_STAGE_IDLE)
			return 0;
	}
	return 1;
}

static void on_message_done(void *arg, struct smtp_client *cl,
			    struct smtp_client_msg *cm)
{
	struct job *j = arg;
	struct dmsg *m = j->cur;
	unsigned before = j->sent_on_conn++;
	j->cur = NULL;
	m->sending = 0;
	const struct smtp_client_relay *relay = smtp_client_relay(cl);
	m->setup += cm->setup_time;
	m->xfer += cm->xfer_time;
	if (!m->fresh_retry && dead_reuse(cm, before)) {
		/* the hop had closed the idle connection: a fresh one */
		m->fresh_retry = 1;
		push_tail(&j->carry, &j->carry_tail, m);
		j->hop_again = 1;
		return;
	}
	int more_hops = j->hop + 1 < j->nhops, slowed = 0, carry = 0, v6_moved = -1;
	for (size_t k = 0; k < cm->nrcpt; k++) {
		struct drcpt *r = &m->r[m->map[k]];
		const struct smtp_client_fact *f = &cm->rcpt[k].result;
		if (f->kind == SMTPC_ABANDONED) {
			r->decided = 1;
			r->release = 1;
			continue;
		}
		failure_policy_decide(f, relay, &r->out);
		r->relay = *relay;
		r->has_relay = 1;
		r->remote = f->kind == SMTPC_REPLY;
		if (f->kind == SMTPC_REPLY && !slowed && dest_is_throttle(f->code, f->text)) {
			dest_slow_down(j->d, j->cfg, f->text);
			slowed = 1;
		}
		if (r->out.status == DELIVERY_OK)
			dest_success(j->d, j->cfg);
		/* one reorder per message: every recipient it concerns follows */
		int v6 = 0;
		if (!m->cancel && r->out.status != DELIVERY_OK && v6_trouble(j, f)) {
			if (v6_moved < 0)
				v6_moved = v4_next(j);
			v6 = v6_moved;
		}
		if (!m->cancel && more_hops &&
		    ((r->out.status == DELIVERY_RETRY && r->out.try_next) || v6)) {
			carry = 1;
			continue;    /* undecided: the next hop */
		}
		r->decided = 1;
	}
	if (carry)
		push_tail(&j->carry, &j->carry_tail, m);
	else
		hand_over(j, m);
	send_next(j);
}

/* Build the transaction of m's undecided recipients. */
static ssize_t body_read(void *arg, uint64_t off, char *buf, size_t len)
{
	struct dmsg *m = arg;
	size_t got = 0;
	if (queue_body_copy(m->j->s->q, m->m.id.s, off, buf, len, &got))
		return -1;
	return (ssize_t)got;
}

static void prepare_send(struct dmsg *m)
{
	size_t k = 0;
	for (size_t i = 0; i < m->n; i++) {
		struct drcpt *r = &m->r[i];
		if (r->decided)
			continue;
		const struct queue_rcpt *q = &m->m.rcpt[r->idx];
		memset(&m->cr[k], 0, sizeof(m->cr[k]));
		m->cr[k].addr = q->addr;
		m->cr[k].orcpt = q->orcpt;
		m->cr[k].notify = q->notify;
		m->map[k++] = i;
	}
	memset(&m->cm, 0, sizeof(m->cm));
	m->cm.sender = m->m.sender;
	m->cm.size = m->m.size;
	m->cm.flags = (queue_msg_8bit(m->m.flags) ? SMTPC_MSG_8BIT : 0) |
		      (m->m.flags & QUEUE_F_8BITMIME ? SMTPC_MSG_BODY8BIT : 0) |
		      (m->m.flags & QUEUE_F_SMTPUTF8 ? SMTPC_MSG_SMTPUTF8 : 0);
	m->cm.ret = m->m.ret;
	m->cm.envid = m->m.envid;
	m->cm.rcpt = m->cr;
	m->cm.nrcpt = k;
	m->cm.body.read = body_read;
	m->cm.body.arg = m;
}

/* A message the hop cannot take (over its SIZE, 8-bit or SMTPUTF8 it
 * lacks) is done inside smtp_client_send: j->cur is set before the call,
 * and the on_message_done it makes leaves the next message to this loop
 * (in_send) instead of recursing once per refused message. */
static void send_next(struct job *j)
{
	struct dmsg *m;
	if (!j->cl || j->cur || j->in_send)
		return;
	j->in_send = 1;
	while (!j->cur && (m = pop(&j->todo, &j->todo_tail))) {
		if (m->cancel || j->s->stopping) {
			decide_rest(m, NULL, NULL, 0);
			hand_over(j, m);
			continue;
		}
		prepare_send(m);
		m->sending = 1;
		j->cur = m;
		if (smtp_client_send(j->cl, &m->cm)) {
			/* the session is ending: on_closed takes it from here */
			m->sending = 0;
			j->cur = NULL;
			m->next = j->todo;
			j->todo = m;
			if (!j->todo_tail)
				j->todo_tail = m;
			j->in_send = 0;
			return;
		}
	}
	j->in_send = 0;
	if (!j->cur)
		smtp_client_quit(j->cl);
}

static void on_closed(void *arg, const struct smtp_client_result *res)
{
	struct job *j = arg;
	struct sched *s = j->s;
	j->cl = NULL;
	s->st.connections--;
	if (j->cur) {        /* should not happen: message_done comes first */
		push_tail(&j->carry, &j->carry_tail, j->cur);
		j->cur = NULL;
	}
	struct delivery_outcome out;
	failure_policy_decide(&res->fact, &res->relay, &out);
	if (res->fact.kind != SMTPC_NONE) {
		j->last = out;
		j->last_relay = res->relay;
		j->have_last = 1;
	}
	if (s->stopping) {
		finish(j, NULL, NULL, 0);
		return;
	}
	if (!j->ready) {
		if (res->fact.kind == SMTPC_CONNECT_FAILED)
			dest_slow_down(j->d, j->cfg, "connection refused or failed");
		else if (res->fact.kind == SMTPC_REPLY &&
			 dest_is_throttle(res->fact.code, res->fact.text))
			dest_slow_down(j->d, j->cfg, res->fact.text);
		if (res->tls_fallback && !j->clear_retry) {
			j->clear_retry = 1;       /* tls=may: again in clear */
			connect_hop(j);
			return;
		}
	}
	/* messages never tried on this connection (the hop closed it while
	 * idle) go again to the same hop on a fresh one, a few times */
	int unsent = j->ready && j->todo != NULL;
	carry_to_todo(j);
	if (!j->todo) {
		j->state = JOB_END;
		maybe_end(j);
		return;
	}
	if ((j->hop_again || unsent) && j->reconnects < 3) {
		j->hop_again = 0;
		j->reconnects++;
		connect_hop(j);
		return;
	}
	j->hop_again = 0;
	int v6 = !j->ready && v6_fallback(j, &res->fact);
	if (j->hop + 1 < j->nhops && (out.try_next || v6 || j->ready)) {
		j->hop++;
		j->clear_retry = 0;
		connect_hop(j);
		return;
	}
	if (!j->reached) {
		int64_t until;
		dest_conn_failed(j->d, j->cfg, time(NULL), &until);
		if (!s->cfg->relayhost.host) {
			struct queue_op *op = queue_op_dest_block(j->dest, until);
			if (op && queue_writer_submit(s->q, op, NULL, NULL) == 0)
				op = NULL;
			queue_op_free(op);
		}
	}
	const struct delivery_outcome *o = j->have_last ? &j->last : &out;
	finish(j, o, j->last_relay.ip[0] ? &j->last_relay : NULL,
	       j->last_relay.ip[0] && res->fact.kind == SMTPC_REPLY);
}

static const struct smtp_client_cb client_cb = {
	.on_ready = on_ready,
	.on_message_done = on_message_done,
	.on_closed = on_closed,
};

static void connect_hop(struct job *j)
{
	struct sched *s = j->s;
	struct smtp_client_opts o;
	memset(&o, 0, sizeof(o));
	carry_to_todo(j);
	if (smtp_client_opts_config(&o, j->cfg, j->cfg->relayhost.host != NULL)) {
		struct delivery_outcome out = { .status = DELIVERY_RETRY, .dsn = "4.3.5" };
		snprintf(out.reason, sizeof(out.reason), "bad smtp_bind_address");
		finish(j, &out, NULL, 0);
		return;
	}
	const struct dns_hop *h = &j->hops[j->hop];
	o.host = h->host;
	memcpy(&o.addr, &h->addr, sizeof(o.addr));
	o.tls = j->clear_retry ? TLS_LEVEL_NONE : j->tls;
	o.tls_ctx = s->tls;
	j->ready = 0;
	j->sent_on_conn = 0;
	j->cl = smtp_client_start(s->loop, &o, &client_cb, j);
	if (!j->cl) {
		finish(j, NULL, NULL, 0);
		return;
	}
	s->st.connections++;
}

/* ---- control ---- */

void delivery_stop(struct job *j)
{
	if (j->state == JOB_ROUTE && j->dj) {
		dns_cancel(j->dj);
		j->dj = NULL;
		finish(j, NULL, NULL, 0);
	} else if (j->state == JOB_CONNECT && j->cl) {
		smtp_client_abandon(j->cl);
	}
}

int delivery_cancel_msg(struct job *j, const char *id)
{
	int found = 0;
	struct dmsg *lists[] = { j->todo, j->carry, j->cur };
	for (size_t i = 0; i < 3; i++)
		for (struct dmsg *m = lists[i]; m; m = i == 2 ? NULL : m->next)
			if (strcmp(m->m.id.s, id) == 0) {
				m->cancel = 1;
				found = 1;
			}
	if (j->cur && j->cur->cancel && j->cl)
		smtp_client_abandon(j->cl);
	return found;
}

void delivery_free(struct job *j)
{
	for (size_t i = 0; i < j->nhops; i++)
		free((char *)j->hops[i].host);
	free(j->hops);
	free(j->items);
	config_unref(j->cfg);
	free(j);
}
