/*
 * log.h - diagnostics: syslog (facility mail) with the tag
 * "<syslog_name>/<service>[pid]", and the same line on stderr in
 * foreground mode.  Every line relayd writes goes through log_msg, so the
 * format (Postfix's, or JSON) is decided in one place.
 *
 * Severities follow Postfix: info (no prefix), "warning: " for recoverable
 * trouble, "fatal: " for cannot-start (exits 1), "panic: " for a bug
 * (aborts with a core).
 *
 * The state is process-wide because syslog(3) itself is; it is set once by
 * log_open before any other thread starts and then only read (the sink
 * pointer is for tests).
 */
#ifndef RELAYD_LOG_H
#define RELAYD_LOG_H

#include <stdarg.h>
#include <syslog.h>

enum log_service {
	LOG_SVC_MASTER,          /* daemon life cycle */
	LOG_SVC_SMTPD,           /* the SMTP server */
	LOG_SVC_QMGR,            /* queue manager: arrivals, removals */
	LOG_SVC_SMTP,            /* the SMTP client: delivery records */
	LOG_SVC_BOUNCE,          /* DSN generation */
	LOG_SVC_CONTROL,         /* the control socket */
	LOG_SVC_POSTSUPER,       /* admin changes to the queue (hold, delete...) */
	LOG_SVC_COUNT
};

#define LOG_FLAG_STDERR 0x01u    /* also write to stderr (relayd -F) */
#define LOG_FLAG_JSON   0x02u    /* log_format = json */
#define LOG_FLAG_NOSYSLOG 0x04u  /* tools and tests: stderr only */

/* Set the tag prefix and destinations; callable again (SIGHUP) from the
 * loop thread. */
void log_open(const char *syslog_name, unsigned flags);

void log_msg(enum log_service svc, int prio, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_service svc, int prio, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#define log_info(svc, ...) log_msg((svc), LOG_INFO, __VA_ARGS__)
#define log_warn(svc, ...) log_msg((svc), LOG_WARNING, __VA_ARGS__)
#define log_err(svc, ...) log_msg((svc), LOG_ERR, __VA_ARGS__)

void log_fatal(enum log_service svc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
void log_panic(enum log_service svc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* Where syslogd listens (default /dev/log); for tests. */
void log_set_syslog_path(const char *path);

/* Tests: receive every formatted line ("relayd/smtpd[PID]: text" without
 * timestamp) instead of syslog/stderr.  NULL restores normal output. */
typedef void log_sink_fn(const char *line, void *arg);
void log_set_sink(log_sink_fn *fn, void *arg);

#endif
