/*
 * log.c - one writer for every log line (see log.h).
 *
 * Lines go to syslogd as RFC 3164 datagrams on /dev/log, written here
 * rather than through syslog(3): the tag changes per service, and
 * syslog(3) reopens for every tag change and blocks when the daemon's
 * socket buffer is full.  Here the socket is non-blocking, a missing
 * /dev/log is retried at most every few seconds, and a line that would
 * block is counted and dropped: the event loop never waits for syslogd.
 */
#include <errno.h>
#include <jansson.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include "log.h"
#include "text.h"

static const char *const service_names[LOG_SVC_COUNT] = {
	"master", "smtpd", "qmgr", "smtp", "bounce", "control", "postsuper",
};

/* syslog's openlog() keeps the ident pointer, so each tag lives here. */
static struct {
	char tags[LOG_SVC_COUNT][64];
	unsigned flags;
	char host[64];
	log_sink_fn *sink;
	void *sink_arg;
	int fd;                  /* the syslog socket, or -1 */
	char path[108];          /* its address, /dev/log */
	time_t fd_tried;         /* last connect attempt */
	unsigned long dropped;   /* lines syslogd had no room for */
	time_t stamp_at;         /* the second stamp[] shows */
	char stamp[32];
	pthread_mutex_t mu;      /* lines from several threads */
} L = { .fd = -1, .path = "/dev/log", .mu = PTHREAD_MUTEX_INITIALIZER };

#define SYSLOG_RETRY 5           /* seconds between connects to /dev/log */

/* "Nov 22 01:07:31", formatted once per second. */
static const char *stamp(time_t now)
{
	if (now != L.stamp_at) {
		struct tm tm;
		localtime_r(&now, &tm);
		strftime(L.stamp, sizeof(L.stamp), "%b %e %H:%M:%S", &tm);
		L.stamp_at = now;
	}
	return L.stamp;
}

static void syslog_connect(time_t now)
{
	if (L.fd >= 0 || now - L.fd_tried < SYSLOG_RETRY)
		return;
	L.fd_tried = now;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	memcpy(sun.sun_path, L.path, sizeof(L.path));
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		L.fd = fd;
		return;
	}
	if (fd >= 0)
		close(fd);
}

static int syslog_line(int prio, const char *tag, const char *body, time_t now);

static void syslog_send(int prio, const char *tag, const char *body, time_t now)
{
	syslog_connect(now);
	if (L.fd < 0)
		return;
	if (L.dropped) {
		char note[128];
		snprintf(note, sizeof(note),
			 "warning: %lu log lines dropped: syslogd was not reading",
			 L.dropped);
		unsigned long d = L.dropped;
		L.dropped = 0;
		if (syslog_line(LOG_WARNING, tag, note, now)) {
			L.dropped = d + 1;
			return;
		}
	}
	if (syslog_line(prio, tag, body, now))
		L.dropped++;
}

/* One datagram; -1 when syslogd had no room (the caller counts it). */
static int syslog_line(int prio, const char *tag, const char *body, time_t now)
{
	char line[2600];
	int n = snprintf(line, sizeof(line), "<%d>%s %s[%d]: %s", LOG_MAIL | prio,
			 stamp(now), tag, (int)getpid(), body);
	if (n < 0)
		return 0;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (send(L.fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
		return 0;
	if (errno == EAGAIN || errno == ENOBUFS)
		return -1;
	/* syslogd restarted: reconnect on the next line. */
	close(L.fd);
	L.fd = -1;
	L.fd_tried = 0;
	return 0;
}

void log_set_syslog_path(const char *path)
{
	pthread_mutex_lock(&L.mu);
	snprintf(L.path, sizeof(L.path), "%s", path);
	if (L.fd >= 0)
		close(L.fd);
	L.fd = -1;
	L.fd_tried = 0;
	pthread_mutex_unlock(&L.mu);
}

void log_open(const char *syslog_name, unsigned flags)
{
	pthread_mutex_lock(&L.mu);
	for (int i = 0; i < LOG_SVC_COUNT; i++)
		snprintf(L.tags[i], sizeof(L.tags[i]), "%s/%s",
			 syslog_name && *syslog_name ? syslog_name : "relayd",
			 service_names[i]);
	L.flags = flags;
	if (gethostname(L.host, sizeof(L.host) - 1) != 0)
		strcpy(L.host, "localhost");
	L.host[strcspn(L.host, ".")] = 0;
	pthread_mutex_unlock(&L.mu);
}

void log_set_sink(log_sink_fn *fn, void *arg)
{
	pthread_mutex_lock(&L.mu);
	L.sink = fn;
	L.sink_arg = arg;
	pthread_mutex_unlock(&L.mu);
}

static const char *prefix(int prio)
{
	switch (prio) {
	case LOG_WARNING: return "warning: ";
	case LOG_ERR: return "error: ";
	case LOG_CRIT: return "fatal: ";
	case LOG_ALERT: return "panic: ";
	default: return "";
	}
}

static const char *severity(int prio)
{
	switch (prio) {
	case LOG_WARNING: return "warning";
	case LOG_ERR: return "error";
	case LOG_CRIT: return "fatal";
	case LOG_ALERT: return "panic";
	default: return "info";
	}
}

/* The JSON form of one line; malloc'd, or NULL. */
static char *json_line(const char *tag, int prio, const char *text)
{
	char ts[64];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
	json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s}", "time", ts,
			      "host", L.host, "service", tag, "pid", (int)getpid(),
			      "severity", severity(prio), "message", text);
	if (!o)
		return NULL;
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

void log_vmsg(enum log_service svc, int prio, const char *fmt, va_list ap)
{
	char raw[2048], text[2048];
	int off = snprintf(raw, sizeof(raw), "%s", prefix(prio));
	vsnprintf(raw + off, sizeof(raw) - (size_t)off, fmt, ap);
	/* The arguments carry what clients and remote servers sent (HELO,
	 * addresses, user names, replies): escaped here, once for every
	 * line, they can neither forge a line nor drive the reader's
	 * terminal, whichever caller forgot. */
	text_escape(text, sizeof(text), raw, strlen(raw));
	if (svc < 0 || svc >= LOG_SVC_COUNT)
		svc = LOG_SVC_MASTER;

	pthread_mutex_lock(&L.mu);
	const char *tag = L.tags[svc][0] ? L.tags[svc] : service_names[svc];
	char *json = L.flags & LOG_FLAG_JSON ? json_line(tag, prio, text) : NULL;
	const char *body = json ? json : text;
	if (L.sink) {
		char line[2400];
		snprintf(line, sizeof(line), "%s[%d]: %s", tag, (int)getpid(), body);
		L.sink(line, L.sink_arg);
	} else {
		time_t now = time(NULL);
		if (!(L.flags & LOG_FLAG_NOSYSLOG))
			syslog_send(prio, tag, body, now);
		if (L.flags & (LOG_FLAG_STDERR | LOG_FLAG_NOSYSLOG))
			fprintf(stderr, "%s %s %s[%d]: %s\n", stamp(now), L.host, tag,
				(int)getpid(), body);
	}
	pthread_mutex_unlock(&L.mu);
	free(json);
}

void log_msg(enum log_service svc, int prio, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(svc, prio, fmt, ap);
	va_end(ap);
}

void log_fatal(enum log_service svc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(svc, LOG_CRIT, fmt, ap);
	va_end(ap);
	exit(1);
}

void log_panic(enum log_service svc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(svc, LOG_ALERT, fmt, ap);
	va_end(ap);
	abort();
}
