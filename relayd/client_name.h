/*
 * client_name.h - the SMTP client's name for the logs and the queue
 * ("connect from HOST[IP]", "client=HOST[IP]"): its forward-confirmed
 * reverse name through librelaydns, or "unknown", found within a bounded
 * wait so that a slow PTR never holds the greeting for long.
 */
#ifndef RELAYD_CLIENT_NAME_H
#define RELAYD_CLIENT_NAME_H

#include <sys/socket.h>
#include <uv.h>

struct dns_resolver;
struct client_name;

/* name: the confirmed name, or "unknown"; valid during the call. */
typedef void client_name_cb(void *arg, const char *name);

/* Look the name of sa up; cb runs exactly once, within wait_ms.  Returns
 * NULL when cb has run already (answered from the cache). */
struct client_name *client_name_start(uv_loop_t *loop,
				      struct dns_resolver *dns,
				      const struct sockaddr *sa,
				      unsigned wait_ms, client_name_cb *cb,
				      void *arg);
/* Forget a lookup; cb will not run. */
void client_name_cancel(struct client_name *c);

#endif
