/*
 * sched_int.h - what the scheduler (sched.c), a delivery (delivery.c) and
 * the result path (apply.c) share.  Not for other modules.
 */
#ifndef RELAYD_DELIVERY_SCHED_INT_H
#define RELAYD_DELIVERY_SCHED_INT_H

#include "dest.h"
#include "failure_policy.h"
#include "resolver.h"
#include "sched.h"
#include "smtp_client.h"
#include "tls_policy.h"

#define FL_BUCKETS 4096
#define JOB_MAX_MSGS 100         /* messages one connection carries */

struct fl_item;                  /* a recipient in flight */
struct fl_msg;                   /* a message in flight (refcount) */

struct sched {
	uv_loop_t *loop;
	struct queue *q;
	struct dns_resolver *dns;
	struct config *cfg;
	struct resolver_conf rc;     /* route parameters of cfg */
	struct tls_policy *policy;   /* cfg->tls_policy, NULL: none */
	struct tls_ctx *tls;         /* client context of cfg->tls_ca_file */
	struct dest_table *dests;
	struct sched_report_ops report;
	int have_report;
	uv_timer_t timer;
	uv_timer_t wake;             /* 0 ms: coalesces wake-ups */
	uv_timer_t housekeeping;
	int wake_armed;
	struct job *jobs;
	unsigned njobs;
	unsigned pending_ops;        /* writer ops not yet called back */
	int started, stopping, closing;
	void (*stop_done)(void *arg);
	void *stop_arg;
	struct sched_stats st;
	int64_t lease;
	struct fl_item *fl[FL_BUCKETS];
	struct fl_msg *fm[FL_BUCKETS];
};

/* One recipient carried by a delivery. */
struct drcpt {
	uint32_t idx;
	uint64_t gen;
	int decided;
	int release;                 /* give the claim back, no attempt */
	struct delivery_outcome out;
	struct smtp_client_relay relay;
	int has_relay;
	int remote;                  /* out.reason is the hop's reply */
	int throttle;
};

/* One message (or a recipient-limit slice of it) in a delivery. */
struct dmsg {
	struct dmsg *next;
	struct job *j;
	struct queue_msg m;
	size_t n;
	struct drcpt *r;
	struct smtp_client_rcpt *cr; /* the undecided ones, for one send */
	size_t *map;                 /* cr index -> r index */
	struct smtp_client_msg cm;
	double setup, xfer;
	int fresh_retry;             /* already retried after a dead reuse */
	int cancel;                  /* sched_cancel_msg: abandon */
	int sending;
};

enum job_state { JOB_CLAIM, JOB_ROUTE, JOB_CONNECT, JOB_END };

struct job {
	struct job *next, *prev;
	struct sched *s;
	struct dest *d;
	struct config *cfg;          /* this attempt's snapshot */
	enum job_state state;
	char dest[QUEUE_DEST_MAX + 1];   /* domain, or the relayhost */
	struct queue_due *items;
	size_t nitems;
	struct dmsg *todo, *todo_tail;   /* for the current hop */
	struct dmsg *carry, *carry_tail; /* for the next hop */
	struct dmsg *cur;
	unsigned open_msgs;              /* dmsgs not yet applied */
	struct dns_job *dj;
	int in_route, routed, route_nomem;
	int route_status;            /* enum dns_status */
	char route_dsn[16];
	char route_text[512];
	struct dns_hop *hops;
	size_t nhops, hop;
	struct smtp_client *cl;
	int ready, reached, clear_retry, hop_again;
	int in_send;                  /* send_next is running */
	unsigned reconnects;          /* fresh connections to the same hop */
	unsigned sent_on_conn;
	enum config_tls_level tls;
	int64_t claimed_at;
	uv_timer_t pace;
	int pace_init;
	/* the last session-level outcome, for what is left at the end */
	struct delivery_outcome last;
	struct smtp_client_relay last_relay;
	int have_last, last_relay_set;
};

/* sched.c */
void sched__job_add(struct sched *s, struct job *j);
void sched__job_end(struct job *j);
void sched__op_done(struct sched *s);
int sched__fl_has(const struct sched *s, const char *id, uint32_t rcpt);
int sched__fl_add(struct sched *s, const char *id, uint32_t rcpt);
void sched__fl_del(struct sched *s, const char *id, uint32_t rcpt);
void sched__fm_ref(struct sched *s, const char *id);
int sched__fm_unref(struct sched *s, const char *id);   /* 1: last ref */

/* delivery.c */
struct job *delivery_new(struct sched *s, struct dest *d, const char *dest,
			 const struct queue_due *items, size_t n);
void delivery_claimed(struct job *j, const uint64_t *gens, size_t n);
void delivery_stop(struct job *j);
int delivery_cancel_msg(struct job *j, const char *id);
void delivery_free(struct job *j);
void dmsg_free(struct dmsg *m);

/* apply.c: commit one message's results (frees m when done) */
void apply_msg(struct sched *s, struct dmsg *m);

#endif
