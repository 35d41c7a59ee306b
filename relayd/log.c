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
#include <sys/stat.h>
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

/* Is stderr the journal (systemd's JOURNAL_STREAM names its device and
 * inode)?  Then syslog lines reach the journal already, and a copy on
 * stderr would show every line twice. */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void log_open(const char *syslog_name, unsigned flags)
{
	if ((flags & LOG_FLAG_STDERR) && !(flags & LOG_FLAG_NOSYSLOG) && stderr_is_journal())
		flags &= ~LOG_FLAG_STDERR;
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

/* ---- log_format = json ----
 * The same line as one JSON object: the syslog header's parts as fields
 * (time, host, ident, service, pid, severity), the text whole in
 * "message", and what a log pipeline filters on pulled out of the text
 * where the Postfix format makes that cheap: the queue id, the client of
 * connect/disconnect, and the key=value pairs of the mail records
 * (client=, from=, to=, relay=, dsn=, status=...). */

/* "0ABC123DEF45: " at the start: the queue id (12 of [0-9A-Z]). */
static size_t queue_id_prefix(const char *text)
{
	size_t n = strspn(text, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ");
	return n == 12 && text[12] == ':' && text[13] == ' ' ? n : 0;
}

static const char *const record_keys[] = {
	"client", "sasl_method", "sasl_username", "from", "to", "orig_to",
	"relay", "delay", "delays", "dsn", "status", "size", "nrcpt", NULL,
};

static int record_key(const char *k, size_t n)
{
	for (int i = 0; record_keys[i]; i++)
		if (strlen(record_keys[i]) == n && memcmp(record_keys[i], k, n) == 0)
			return i;
	return -1;
}

/* The end of a value starting at v: "<...>" to its '>', else up to ", ",
 * " (" or the end. */
static const char *value_end(const char *v)
{
	if (*v == '<') {
		const char *e = strchr(v, '>');
		if (e && (e[1] == 0 || e[1] == ',' || e[1] == ' '))
			return e + 1;
	}
	const char *e = v + strcspn(v, ", (");
	while (*e == ' ' && e[1] != '(' && e[1])
		e += 1 + strcspn(e + 1, ", (");
	return e;
}

static void set_str(json_t *o, const char *key, const char *v, size_t n)
{
	json_t *j = json_stringn(v, n);       /* NULL if not UTF-8: left out */
	if (j)
		json_object_set_new_nocheck(o, key, j);
}

/* key=value pairs of a mail record, after the queue id. */
static void record_fields(json_t *o, const char *p)
{
	while (*p) {
		size_t klen = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
		int k = klen && p[klen] == '=' ? record_key(p, klen) : -1;
		if (k < 0)
			return;
		const char *v = p + klen + 1, *e = value_end(v);
		const char *key = record_keys[k];
		int angled = *v == '<' && e > v + 1 && e[-1] == '>';
		if (angled)
			set_str(o, key, v + 1, (size_t)(e - v - 2));
		else if (!strcmp(key, "size") || !strcmp(key, "nrcpt"))
			json_object_set_new_nocheck(o, key, json_integer(strtoll(v, NULL, 10)));
		else if (!strcmp(key, "delay"))
			json_object_set_new_nocheck(o, key, json_real(strtod(v, NULL)));
		else
			set_str(o, key, v, (size_t)(e - v));
		if (!strcmp(key, "status") && e[0] == ' ' && e[1] == '(') {
			/* "status=sent (250 2.0.0 Ok)": the rest is the reason. */
			size_t n = strlen(e + 2);
			set_str(o, "reason", e + 2, n && e[2 + n - 1] == ')' ? n - 1 : n);
			return;
		}
		if (e[0] != ',' || e[1] != ' ')
			return;
		p = e + 2;
	}
}

static void text_fields(json_t *o, const char *text)
{
	size_t id = queue_id_prefix(text);
	if (id) {
		set_str(o, "queue_id", text, id);
		record_fields(o, text + id + 2);
		return;
	}
	const char *c = !strncmp(text, "connect from ", 13) ? text + 13 :
			!strncmp(text, "disconnect from ", 16) ? text + 16 : NULL;
	if (c)
		set_str(o, "client", c, strcspn(c, " "));
}

/* The JSON form of one line; malloc'd, or NULL. */
static char *json_line(enum log_service svc, const char *tag, int prio,
		       const char *text)
{
	char ts[64];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "time", ts,
			      "host", L.host, "ident", tag,
			      "service", service_names[svc], "pid", (int)getpid(),
			      "severity", severity(prio), "message", text);
	if (!o)
		return NULL;
	text_fields(o, text + strlen(prefix(prio)));
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
	char *json = L.flags & LOG_FLAG_JSON ? json_line(svc, tag, prio, text) : NULL;
	const char *body = json ? json : text;
	if (L.sink) {
		char line[2400];
		snprintf(line, sizeof(line), "%s[%d]: %s", tag, (int)getpid(), body);
		L.sink(line, L.sink_arg);
	} else {
		time_t now = time(NULL);
		if (!(L.flags & LOG_FLAG_NOSYSLOG))
			syslog_send(prio, tag, body, now);
		/* JSON on stderr is the bare object, one a line, for
		 * pipelines reading a container's output: it carries the
		 * header's fields itself. */
		if (json && (L.flags & (LOG_FLAG_STDERR | LOG_FLAG_NOSYSLOG)))
			fprintf(stderr, "%s\n", json);
		else if (L.flags & (LOG_FLAG_STDERR | LOG_FLAG_NOSYSLOG))
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
