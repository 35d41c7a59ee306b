/*
 * client_name.c - a client's name with a bounded wait (client_name.h).
 *
 * The DNS job and a timer race; the first to finish calls back and the
 * other is stopped.  The struct embeds the timer, so it is freed in the
 * timer's close callback.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include "client_name.h"
#include "dns.h"
#include "log.h"

struct client_name {
	uv_timer_t timer;
	struct dns_job *job;
	client_name_cb *cb;
	void *arg;
	int done;
	int *fired;                  /* set while client_name_start runs */
	unsigned wait_ms;
	char ip[INET6_ADDRSTRLEN];
};

static void on_closed(uv_handle_t *h)
{
	free(h->data);
}

static void finish(struct client_name *c, const char *name)
{
	c->done = 1;
	if (c->fired)
		*c->fired = 1;
	if (c->cb)
		c->cb(c->arg, name);
	uv_close((uv_handle_t *)&c->timer, on_closed);
}

static void on_name(void *arg, const char *name, const char *why)
{
	struct client_name *c = arg;
	c->job = NULL;
	/* Postfix warns when a PTR name does not lead back to the address;
	 * a missing PTR is ordinary. */
	if (!name && !strncmp(why, "hostname ", 9))
		log_warn(LOG_SVC_SMTPD, "%s", why);
	finish(c, name ? name : "unknown");
}

static void on_timeout(uv_timer_t *t)
{
	struct client_name *c = t->data;
	dns_cancel(c->job);
	c->job = NULL;
	log_info(LOG_SVC_SMTPD, "%s: reverse name lookup still running after %u ms: using unknown",
		 c->ip, c->wait_ms);
	finish(c, "unknown");
}

struct client_name *client_name_start(uv_loop_t *loop,
				      struct dns_resolver *dns,
				      const struct sockaddr *sa,
				      unsigned wait_ms, client_name_cb *cb,
				      void *arg)
{
	struct client_name *c = calloc(1, sizeof(*c));
	int fired = 0;
	if (!c) {
		cb(arg, "unknown");
		return NULL;
	}
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	c->cb = cb;
	c->arg = arg;
	c->fired = &fired;
	c->wait_ms = wait_ms;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  c->ip, sizeof(c->ip));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
			  c->ip, sizeof(c->ip));
	c->job = dns_client_name(dns, sa, on_name, c);
	if (fired)
		return NULL;
	c->fired = NULL;
	uv_timer_start(&c->timer, on_timeout, wait_ms, 0);
	return c;
}

void client_name_cancel(struct client_name *c)
{
	if (!c || c->done)
		return;
	dns_cancel(c->job);
	c->job = NULL;
	c->cb = NULL;
	finish(c, NULL);
}
