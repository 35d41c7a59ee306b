/*
 * fault_shim.c - an LD_PRELOAD library for the queue fault tests
 * (t/integration/queue_faults.py).  It watches and perturbs relayd's
 * system calls from outside, so the tests judge the real binary.
 *
 * Environment:
 *   RELAYD_SHIM_LOG=FILE        append one line per event to FILE:
 *                               "SEQ EVENT ARGS", SEQ a process-wide
 *                               counter, so lines order events across
 *                               threads.  Events:
 *        sync-begin KIND FD     a durable sync starts: fsync, fdatasync,
 *        sync-end KIND FD RC    msync(MS_SYNC), or a write to a file opened
 *                               O_DSYNC/O_SYNC (KIND dsync-write)
 *        dirsync PATH           fsync of a directory
 *        create PATH            open with O_CREAT
 *        dot FD                 a socket read completed "<CRLF>.<CRLF>"
 *        ack FD                 a socket write carried "250 2.0.0 Ok: queued"
 *   RELAYD_SHIM_SLOW_SPILL_MS=N each write to a spill file (opened with
 *                               O_TMPFILE, or named spool.*) first sleeps
 *                               N ms: a slow disk.
 *   RELAYD_SHIM_FAIL_SYNC=FILE  while FILE exists, fsync, fdatasync and
 *                               msync fail with EIO: a dying disk.
 *
 * The log is opened in the constructor, before relayd drops privileges.
 * Its own writes go through syscall(2) so they are not seen again.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAXFD 4096
#define FD_DSYNC 0x01
#define FD_SPILL 0x02

static int log_fd = -1;
static unsigned long seq;
static unsigned char fd_kind[MAXFD];
static char fd_tail[MAXFD][4];   /* last bytes read from each socket */
static long slow_ms;
static const char *fail_path;

static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_msync)(void *, size_t, int);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);

static void *next(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static void shim_init(void);
/* Another library's constructor may call in before ours has run. */
#define RESOLVE(f) do { if (!real_##f) shim_init(); } while (0)

__attribute__((constructor)) static void shim_init(void)
{
	static int done;
	if (done++)
		return;
	real_read = next("read");
	real_write = next("write");
	real_writev = next("writev");
	real_pwrite = next("pwrite");
	real_pwrite64 = next("pwrite64");
	real_fsync = next("fsync");
	real_fdatasync = next("fdatasync");
	real_msync = next("msync");
	real_open = next("open");
	real_open64 = next("open64");
	real_openat = next("openat");
	real_openat64 = next("openat64");
	const char *p = getenv("RELAYD_SHIM_LOG");
	if (p)
		log_fd = (int)syscall(SYS_open, p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	if ((p = getenv("RELAYD_SHIM_SLOW_SPILL_MS")))
		slow_ms = atol(p);
	fail_path = getenv("RELAYD_SHIM_FAIL_SYNC");
}

__attribute__((format(printf, 1, 2))) static void event(const char *fmt, ...)
{
	if (log_fd < 0)
		return;
	char line[600];
	unsigned long n = __atomic_add_fetch(&seq, 1, __ATOMIC_SEQ_CST);
	int off = snprintf(line, sizeof(line), "%lu ", n);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + off, sizeof(line) - (size_t)off - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	off += m;
	if ((size_t)off > sizeof(line) - 2)
		off = sizeof(line) - 2;
	line[off++] = '\n';
	syscall(SYS_write, log_fd, line, (size_t)off);
}

static int is_socket(int fd)
{
	struct stat st;
	return fd >= 0 && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static unsigned kind(int fd)
{
	return fd >= 0 && fd < MAXFD ? fd_kind[fd] : 0;
}

static void opened(int fd, const char *path, int flags)
{
	if (fd < 0 || fd >= MAXFD)
		return;
	fd_kind[fd] = 0;
	if (flags & O_DSYNC)
		fd_kind[fd] |= FD_DSYNC;
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if ((flags & O_TMPFILE) == O_TMPFILE || !strncmp(base, "spool.", 6))
		fd_kind[fd] |= FD_SPILL;
	if (flags & O_CREAT)
		event("create %s", path);
}

static int failing(void)
{
	return fail_path && access(fail_path, F_OK) == 0;
}

static void slow(int fd)
{
	if (slow_ms > 0 && (kind(fd) & FD_SPILL)) {
		struct timespec ts = { slow_ms / 1000, (slow_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
}

static int get_mode(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
	RESOLVE(open);
	va_list ap;
	va_start(ap, flags);
	int mode = get_mode(flags, ap);
	va_end(ap);
	int fd = real_open(path, flags, mode);
	opened(fd, path, flags);
	return fd;
}

int open64(const char *path, int flags, ...)
{
	RESOLVE(open64);
	va_list ap;
	va_start(ap, flags);
	int mode = get_mode(flags, ap);
	va_end(ap);
	int fd = real_open64(path, flags, mode);
	opened(fd, path, flags);
	return fd;
}

int openat(int dirfd, const char *path, int flags, ...)
{
	RESOLVE(openat);
	va_list ap;
	va_start(ap, flags);
	int mode = get_mode(flags, ap);
	va_end(ap);
	int fd = real_openat(dirfd, path, flags, mode);
	opened(fd, path, flags);
	return fd;
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	RESOLVE(openat64);
	va_list ap;
	va_start(ap, flags);
	int mode = get_mode(flags, ap);
	va_end(ap);
	int fd = real_openat64(dirfd, path, flags, mode);
	opened(fd, path, flags);
	return fd;
}

/* A socket read: note when the bytes so far end a DATA section. */
static void saw_input(int fd, const char *buf, ssize_t n)
{
	if (n <= 0 || fd < 0 || fd >= MAXFD || !is_socket(fd))
		return;
	char joined[4 + 5];
	size_t k = n < 5 ? (size_t)n : 5;
	memcpy(joined, fd_tail[fd], 4);
	memcpy(joined + 4, buf + n - (ssize_t)k, k);
	int hit = memmem(buf, (size_t)n, "\r\n.\r\n", 5) != NULL ||
		  memmem(joined, 4 + k, "\r\n.\r\n", 5) != NULL;
	if (n >= 4) {
		memcpy(fd_tail[fd], buf + n - 4, 4);
	} else {
		memmove(fd_tail[fd], fd_tail[fd] + n, 4 - (size_t)n);
		memcpy(fd_tail[fd] + 4 - n, buf, (size_t)n);
	}
	if (hit)
		event("dot %d", fd);
}

static const char ACK[] = "250 2.0.0 Ok: queued";

ssize_t read(int fd, void *buf, size_t len)
{
	RESOLVE(read);
	ssize_t n = real_read(fd, buf, len);
	saw_input(fd, buf, n);
	return n;
}

static ssize_t dsync_write(int fd, const void *buf, size_t len, off_t off,
			   int positional)
{
	event("sync-begin dsync-write %d", fd);
	ssize_t n = positional ? real_pwrite(fd, buf, len, off) : real_write(fd, buf, len);
	event("sync-end dsync-write %d %zd", fd, n);
	return n;
}

ssize_t write(int fd, const void *buf, size_t len)
{
	RESOLVE(write);
	if (kind(fd) & FD_DSYNC)
		return dsync_write(fd, buf, len, 0, 0);
	slow(fd);
	ssize_t n = real_write(fd, buf, len);
	if (n > 0 && memmem(buf, (size_t)n, ACK, sizeof(ACK) - 1) && is_socket(fd))
		event("ack %d", fd);
	return n;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	RESOLVE(writev);
	slow(fd);
	ssize_t n = real_writev(fd, iov, cnt);
	if (n > 0 && is_socket(fd)) {
		for (int i = 0; i < cnt; i++)
			if (memmem(iov[i].iov_base, iov[i].iov_len, ACK, sizeof(ACK) - 1)) {
				event("ack %d", fd);
				break;
			}
	}
	return n;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	RESOLVE(pwrite);
	if (kind(fd) & FD_DSYNC)
		return dsync_write(fd, buf, len, off, 1);
	slow(fd);
	return real_pwrite(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	RESOLVE(pwrite64);
	if (kind(fd) & FD_DSYNC)
		return dsync_write(fd, buf, len, off, 1);
	slow(fd);
	return real_pwrite64(fd, buf, len, off);
}

static int do_sync(const char *what, int fd, int (*fn)(int))
{
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		char link[64], path[4096];
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, path, sizeof(path) - 1);
		path[n > 0 ? n : 0] = 0;
		event("dirsync %s", path);
		return fn(fd);
	}
	event("sync-begin %s %d", what, fd);
	int rc;
	if (failing()) {
		errno = EIO;
		rc = -1;
	} else {
		rc = fn(fd);
	}
	event("sync-end %s %d %d", what, fd, rc);
	return rc;
}

int fsync(int fd)
{
	RESOLVE(fsync);
	return do_sync("fsync", fd, real_fsync);
}

int fdatasync(int fd)
{
	RESOLVE(fdatasync);
	return do_sync("fdatasync", fd, real_fdatasync);
}

int msync(void *addr, size_t len, int flags)
{
	RESOLVE(msync);
	if (!(flags & MS_SYNC))
		return real_msync(addr, len, flags);
	event("sync-begin msync -1");
	int rc;
	if (failing()) {
		errno = EIO;
		rc = -1;
	} else {
		rc = real_msync(addr, len, flags);
	}
	event("sync-end msync -1 %d", rc);
	return rc;
}
