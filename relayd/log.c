/*
 * log.c - one writer for every log line (see log.h).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include "log.h"

static const char *const service_names[LOG_SVC_COUNT] = {
	"master", "smtpd", "qmgr", "smtp", "bounce", "control",
};

/* syslog's openlog() keeps the ident pointer, so each tag lives here. */
static struct {
	char tags[LOG_SVC_COUNT][64];
	unsigned flags;
	char host[64];
	log_sink_fn *sink;
	void *sink_arg;
	pthread_mutex_t mu;      /* openlog+syslog pairs are not atomic */
} L = { .mu = PTHREAD_MUTEX_INITIALIZER };

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
	char text[2048];
	int off = snprintf(text, sizeof(text), "%s", prefix(prio));
	vsnprintf(text + off, sizeof(text) - (size_t)off, fmt, ap);
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
		if (!(L.flags & LOG_FLAG_NOSYSLOG)) {
			openlog(tag, LOG_PID | LOG_NDELAY, LOG_MAIL);
			syslog(prio, "%s", body);
		}
		if (L.flags & (LOG_FLAG_STDERR | LOG_FLAG_NOSYSLOG)) {
			char ts[32];
			time_t now = time(NULL);
			struct tm tm;
			localtime_r(&now, &tm);
			strftime(ts, sizeof(ts), "%b %e %H:%M:%S", &tm);
			fprintf(stderr, "%s %s %s[%d]: %s\n", ts, L.host, tag,
				(int)getpid(), body);
		}
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
