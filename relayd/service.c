/*
 * service.c - start-up verdicts for the parent and for systemd
 * (service.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "service.h"

static int verdict_fd = -1;      /* the child's end of the pipe */

int service_detach(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		/* The parent: one byte ('1') means started; EOF means the
		 * child died or gave up first. */
		char c = 0;
		ssize_t n;
		close(p[1]);
		do
			n = read(p[0], &c, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 && c == '1' ? 0 : 1);
	}
	close(p[0]);
	verdict_fd = p[1];
	setsid();
	if (chdir("/") != 0)
		return -1;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	return 0;
}

void service_started(int ok)
{
	if (verdict_fd >= 0) {
		if (ok && write(verdict_fd, "1", 1) != 1) {
			/* The parent is gone: nobody to tell. */
		}
		close(verdict_fd);
		verdict_fd = -1;
	}
	if (ok)
		service_notify("READY=1");
}

void service_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len = path ? strlen(path) : 0;
	/* "/path" or "@abstract" (a leading NUL on the wire). */
	if (len < 2 || len >= sizeof(sun.sun_path) || (path[0] != '/' && path[0] != '@'))
		return;
	memcpy(sun.sun_path, path, len);
	if (path[0] == '@')
		sun.sun_path[0] = 0;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	/* A datagram to a local socket: it cannot block the loop for
	 * long, and a lost notification only delays systemd's view. */
	(void)sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun,
		     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	close(fd);
}
