/*
 * queue_lock.c - the daemon lock: queue_dir/relayd.lock, held with
 * flock(LOCK_EX) by the daemon (or by a tool writing to LMDB while the
 * daemon is down) for as long as it runs, released by the kernel when the
 * process dies, so a crash never leaves a stale lock.  The file holds the
 * holder's pid for tools to print; the lock itself is the truth.  The file
 * is readable by the daemon's group, so tools run by its members can probe
 * it (flock works on a read-only descriptor).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "queue_int.h"

struct queue_lock {
	int fd;
};

static int lock_path(char *p, size_t len, const char *dir)
{
	return (size_t)snprintf(p, len, "%s/relayd.lock", dir) >= len ? QUEUE_EINVAL : 0;
}

int queue_lock_acquire(const char *dir, struct queue_lock **lp)
{
	char path[4096], pid[32];
	*lp = NULL;
	if (lock_path(path, sizeof(path), dir))
		return QUEUE_EINVAL;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0 && errno == ENOENT && mkdir(dir, 0750) == 0)
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return errno == ENOENT ? QUEUE_ENOENT : QUEUE_EIO;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int busy = errno == EWOULDBLOCK;
		close(fd);
		return busy ? QUEUE_EBUSY : QUEUE_EIO;
	}
	struct queue_lock *l = malloc(sizeof(*l));
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (!l || ftruncate(fd, 0) || pwrite(fd, pid, (size_t)n, 0) != n) {
		free(l);
		close(fd);
		return l ? QUEUE_EIO : QUEUE_ENOMEM;
	}
	l->fd = fd;
	*lp = l;
	return 0;
}

void queue_lock_release(struct queue_lock *l)
{
	if (!l)
		return;
	/* Closing drops the lock; the pid left in the file is harmless. */
	close(l->fd);
	free(l);
}

int queue_lock_probe(const char *dir, long *pid)
{
	char path[4096], buf[32];
	*pid = 0;
	if (lock_path(path, sizeof(path), dir))
		return QUEUE_EINVAL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : QUEUE_EIO;
	int held = 0;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0)
		flock(fd, LOCK_UN);
	else if (errno == EWOULDBLOCK)
		held = 1;
	else {
		close(fd);
		return QUEUE_EIO;
	}
	ssize_t n = held ? pread(fd, buf, sizeof(buf) - 1, 0) : 0;
	if (n > 0) {
		buf[n] = 0;
		*pid = strtol(buf, NULL, 10);
	}
	close(fd);
	return held;
}
