/*
 * ctl_client.c - a blocking client of the control socket (ctl_client.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "control/control_proto.h"
#include "ctl_client.h"

/* A bulk request commits up to CONTROL_IDS_MAX changes: seconds on a
 * slow disk, never minutes. */
#define CALL_TIMEOUT_MS 120000

int ctl_client_open(struct ctl_client *c, const char *path, char *err,
		    size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: path too long for a socket", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (!(c->buf = malloc(CONTROL_REPLY_MAX))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		snprintf(err, errlen, "cannot connect to the daemon at %s: %s", path,
			 strerror(errno));
		ctl_client_close(c);
		return -1;
	}
	return 0;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read until a whole line is buffered; its length (without "\n"), or -1. */
static ssize_t read_line(struct ctl_client *c, char *err, size_t errlen)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl)
			return nl - c->buf;
		if (c->len == CONTROL_REPLY_MAX) {
			snprintf(err, errlen, "reply too long");
			return -1;
		}
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int pr = poll(&p, 1, CALL_TIMEOUT_MS);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0) {
			snprintf(err, errlen, "no reply from the daemon");
			return -1;
		}
		ssize_t r = pr < 0 ? -1 : read(c->fd, c->buf + c->len,
					       CONTROL_REPLY_MAX - c->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "the daemon closed the connection");
			return -1;
		}
		c->len += (size_t)r;
	}
}

json_t *ctl_client_call(struct ctl_client *c, json_t *req, char *err,
			size_t errlen)
{
	char *s = json_dumps(req, JSON_COMPACT);
	int rc = s ? send_all(c->fd, s, strlen(s)) || send_all(c->fd, "\n", 1) : -1;
	free(s);
	if (rc) {
		snprintf(err, errlen, "cannot send to the daemon: %s", strerror(errno));
		return NULL;
	}
	ssize_t n = read_line(c, err, errlen);
	if (n < 0)
		return NULL;
	json_error_t jerr;
	json_t *o = json_loadb(c->buf, (size_t)n, 0, &jerr);
	memmove(c->buf, c->buf + n + 1, c->len - (size_t)n - 1);
	c->len -= (size_t)n + 1;
	if (!json_is_object(o)) {
		json_decref(o);
		snprintf(err, errlen, "unreadable reply from the daemon");
		return NULL;
	}
	return o;
}

void ctl_client_close(struct ctl_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
}
