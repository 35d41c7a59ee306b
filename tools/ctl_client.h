/*
 * ctl_client.h - relayctl's side of the control socket (protocol in
 * relayd/control/control_proto.h): connect, send a request, read the
 * reply.  Blocking, with a timeout; replies are bounded in size.
 */
#ifndef RELAYD_CTL_CLIENT_H
#define RELAYD_CTL_CLIENT_H

#include <stddef.h>
#include <jansson.h>

struct ctl_client {
	int fd;
	char *buf;
	size_t len;
};

/* 0, or -1 with the reason in err. */
int ctl_client_open(struct ctl_client *c, const char *path, char *err,
		    size_t errlen);
/* Send req (not taken over) and return the reply object ("ok" checked by
 * the caller), or NULL with the reason in err. */
json_t *ctl_client_call(struct ctl_client *c, json_t *req, char *err,
			size_t errlen);
void ctl_client_close(struct ctl_client *c);

#endif
