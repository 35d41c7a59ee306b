/*
 * daemon.c - start-up, signals, reload and graceful stop.
 *
 * Start-up order matters: listeners are bound and the TLS key and the
 * password file read while still root; then the queue directory is handed
 * to `user` and privileges are dropped for good before the queue is opened
 * and the first connection accepted.
 *
 * SIGTERM/SIGINT: stop accepting, let sessions in DATA finish, let the
 * writer commit what it holds, close every handle, exit 0.  SIGHUP: reload
 * the configuration, the certificate and the credentials; whatever fails
 * to load keeps the running version and says why.
 *
 * A queue that turns unusable (QUEUE_EFATAL: LMDB panic, a failed fsync)
 * is logged at crit and stops the daemon with exit status 1, for the
 * service manager to restart it.
 *
 * Every minute a timer clears the queue's reader slots left by tools that
 * died inside a read snapshot: opening the queue clears them once, but the
 * daemon keeps it open for months.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "auth.h"
#include "control/control.h"
#include "control/control_sched.h"
#include "daemon.h"
#include "log.h"
#include "metrics_http.h"
#include "metrics_series.h"
#include "privs.h"
#include "service.h"
#include "resolver.h"
#include "delivery/sched.h"
#include "bounce/bounce.h"
#include "smtp_server.h"
#include "tls.h"

#define RELOAD_SETTLE_MS 1000   /* a passwd rewrite's time to finish */

/* Period of the stale reader check; RELAYD_READER_CHECK_MS (tests only,
 * not a configuration key) shortens it. */
#define READER_CHECK_MS 60000

static uint64_t reader_check_period(void)
{
	const char *e = getenv("RELAYD_READER_CHECK_MS");
	char *end;
	unsigned long ms = e ? strtoul(e, &end, 10) : 0;
	if (!e || *end || ms < 10 || ms > 3600000)
		return READER_CHECK_MS;
	return ms;
}

static void on_reader_check(uv_timer_t *h)
{
	struct daemon *d = h->data;
	int cleared = 0;
	int rc = queue_reader_check(d->queue, &cleared);
	if (rc)
		log_warn(LOG_SVC_MASTER, "queue reader check: %s", queue_strerror(rc));
	else if (cleared)
		log_warn(LOG_SVC_MASTER, "cleared %d queue reader slot%s left by dead processes",
			 cleared, cleared == 1 ? "" : "s");
}

static void close_signals(struct daemon *d)
{
	uv_close((uv_handle_t *)&d->sig_term, NULL);
	uv_close((uv_handle_t *)&d->sig_int, NULL);
	uv_close((uv_handle_t *)&d->sig_hup, NULL);
	uv_close((uv_handle_t *)&d->settle_timer, NULL);
	/* libuv restores the default action on close; a second SIGTERM
	 * during the last commit must not kill the daemon mid-stop. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
}

/* Every session and every delivery is gone, their results committed:
 * commit the rest and let the loop end. */
static void on_part_stopped(void *arg)
{
	struct daemon *d = arg;
	if (--d->stop_waiting)
		return;
	queue_writer_stop(d->queue);
	sched_free(d->sched);
	d->sched = NULL;
	bounce_free(d->bounce);
	d->bounce = NULL;
	uv_close((uv_handle_t *)&d->reader_timer, NULL);
	smtp_server_free(d->smtpd);
	d->smtpd = NULL;
	dns_resolver_free(d->dns);   /* no session is left to use it */
	d->dns = NULL;
	metrics_http_free(d->metrics);
	d->metrics = NULL;
	close_signals(d);
}

static void stop(struct daemon *d)
{
	if (d->stopping)
		return;
	d->stopping = 1;
	control_stop(d->control);    /* its last requests commit before the writer stops */
	d->control = NULL;
	service_notify("STOPPING=1");
	/* deliveries stop first: abandoned before the final dot, their
	 * results still go through the writer */
	d->stop_waiting = d->sched ? 2 : 1;
	if (d->sched)
		sched_stop(d->sched, on_part_stopped, d);
	smtp_server_stop(d->smtpd, on_part_stopped, d);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	if (!d->stopping)
		log_info(LOG_SVC_MASTER, "terminating on signal %d", signum);
	stop(d);
}

/* The queue cannot be trusted any more: every write would answer 451
 * until someone noticed.  Stop the way SIGTERM does (sessions waiting on
 * a commit have their 451 already) and exit non-zero, so the service
 * manager restarts relayd and LMDB recovers the queue at open. */
static void on_queue_fatal(void *arg, const char *why)
{
	struct daemon *d = arg;
	log_msg(LOG_SVC_MASTER, LOG_CRIT, "queue %s is unusable (%s): exiting to be restarted",
		d->cfg->queue_dir, why);
	d->exit_code = 1;
	stop(d);
}

/* Why path, a secret relayd must read, cannot be read now: the access
 * check names the user and the permission; 0 when it can be read. */
static int explain_unreadable(const struct daemon *d, const char *path,
			      char *err, size_t errlen)
{
	return privs_check_access(path, R_OK, d->user, err, errlen);
}

/* At reload, refuse a passwd file caught in the middle of a rewrite
 * (truncate, then write): empty, or without its final newline.  0 when
 * it looks whole, with its identity in st for after_load_unchanged. */
static int passwd_settled(const char *path, struct stat *st, char *err,
			  size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char last = 0;
	if (fd < 0 || fstat(fd, st)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	int rc = st->st_size > 0 &&
		 pread(fd, &last, 1, st->st_size - 1) == 1 && last == '\n' ? 0 : -1;
	close(fd);
	if (rc)
		snprintf(err, errlen, "%s: %s (a rewrite in progress?)", path,
			 st->st_size == 0 ? "empty" : "no newline at the end");
	return rc;
}

static int after_load_unchanged(const char *path, const struct stat *before,
				char *err, size_t errlen)
{
	struct stat now;
	if (stat(path, &now) == 0 && now.st_ino == before->st_ino &&
	    now.st_size == before->st_size &&
	    now.st_mtim.tv_sec == before->st_mtim.tv_sec &&
	    now.st_mtim.tv_nsec == before->st_mtim.tv_nsec)
		return 0;
	snprintf(err, errlen, "%s: changed while being read (a rewrite in progress?)", path);
	return -1;
}

/* The passwd file named by cfg.  *auth stays NULL when the file does not
 * exist at start (AUTH is then not offered) or at a reload while AUTH is
 * off; once AUTH is on, a reload must load the file, whole, or the
 * running credentials are kept.  0 or -1 (logged); *settle is set when a
 * retry shortly may succeed (a rewrite in progress). */
static int load_auth(const struct daemon *d, const struct config *cfg,
		     int reload, struct auth_db **auth, int *settle)
{
	char err[512];
	struct stat st;
	const char *path = cfg->auth_users_file;
	*auth = NULL;
	int auth_on = reload && smtp_server_has_auth(d->smtpd);
	if (access(path, F_OK) != 0 && errno == ENOENT && !auth_on) {
		log_warn(LOG_SVC_MASTER, "%s does not exist: AUTH is not offered", path);
		return 0;
	}
	if (access(path, R_OK) != 0) {
		if (explain_unreadable(d, path, err, sizeof(err)))
			goto fail;
	}
	if (reload && passwd_settled(path, &st, err, sizeof(err))) {
		*settle = 1;
		goto fail;
	}
	if (auth_db_load(auth, path, cfg->sender_login_map, err, sizeof(err)))
		goto fail;
	if (reload && (after_load_unchanged(path, &st, err, sizeof(err)) ||
		       (auth_db_users(*auth) == 0 &&
			snprintf(err, sizeof(err), "%s: no users", path) > 0))) {
		auth_db_unref(*auth);
		*auth = NULL;
		*settle = 1;
		goto fail;
	}
	if (!cfg->sender_login_map && cfg->sender_login_policy == SENDER_POLICY_MAP)
		log_warn(LOG_SVC_MASTER,
			 "sender_login_map is not set: any authenticated user may use any sender address (set sender_login_policy = any if that is intended)");
	return 0;
fail:
	log_err(LOG_SVC_MASTER, "AUTH: %s", err);
	return -1;
}

/* Load the TLS context and the credentials named by cfg.  Each out
 * pointer is left NULL when the feature is off; -1 when a configured one
 * fails (logged). */
static int load_credentials(const struct daemon *d, const struct config *cfg,
			    int reload, struct tls_ctx **tls,
			    struct auth_db **auth, int *settle)
{
	char err[512];
	*tls = NULL;
	*auth = NULL;
	*settle = 0;
	if (!cfg->tls_cert_file) {
		if (reload && smtp_server_has_tls(d->smtpd))
			log_warn(LOG_SVC_MASTER, "reload: tls_cert_file is not set: STARTTLS and AUTH are now off");
		return 0;
	}
	if (tls_server_ctx_new(tls, cfg->tls_cert_file, cfg->tls_key_file, err,
			       sizeof(err))) {
		char why[512] = "";
		/* OpenSSL says "Permission denied"; say who and what to fix. */
		if (explain_unreadable(d, cfg->tls_cert_file, why, sizeof(why)) == 0)
			explain_unreadable(d, cfg->tls_key_file, why, sizeof(why));
		log_err(LOG_SVC_MASTER, "TLS: %s%s%s", err, why[0] ? ": " : "", why);
		return -1;
	}
	if (load_auth(d, cfg, reload, auth, settle)) {
		tls_ctx_unref(*tls);
		*tls = NULL;
		return -1;
	}
	return 0;
}

/* After the drop: a secret relayd cannot read now would make the next
 * SIGHUP fail; say so while the operator is watching. */
static void warn_unreloadable(const struct daemon *d)
{
	const struct config *cfg = d->cfg;
	const char *files[] = { cfg->path, cfg->tls_cert_file, cfg->tls_key_file,
				smtp_server_has_auth(d->smtpd) ? cfg->auth_users_file : NULL,
				cfg->sender_login_map };
	char err[512];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (files[i] && explain_unreadable(d, files[i], err, sizeof(err)))
			log_warn(LOG_SVC_MASTER, "SIGHUP will not be able to reload %s: %s",
				 files[i], err);
}

static void reload(struct daemon *d);

/* The endpoint is bound at start, as root, like the SMTP listeners. */
static int metrics_listen_changed(const struct config_addr *a,
				  const struct config_addr *b)
{
	if (!a->host || !b->host)
		return !a->host != !b->host;
	return a->port != b->port || strcmp(a->host, b->host) != 0;
}

static void on_settle(uv_timer_t *t)
{
	struct daemon *d = t->data;
	log_info(LOG_SVC_MASTER, "reload: trying again");
	reload(d);
}

/* SIGHUP: a new configuration snapshot and new credentials, or, when
 * anything configured fails to load, the running ones, untouched.  A
 * passwd file caught mid-rewrite gets one more try after RELOAD_SETTLE_MS. */
static void reload(struct daemon *d)
{
	struct config *fresh;
	/* The absolute path: without -F, daemon(3) has moved to "/". */
	const char *path = d->cfg->path;
	if (d->stopping)        /* too late to matter */
		return;
	if (config_new(&fresh, path, stderr) != 0) {
		char why[512];
		if (explain_unreadable(d, path, why, sizeof(why)))
			log_warn(LOG_SVC_MASTER, "reload: %s", why);
		log_warn(LOG_SVC_MASTER, "reload: %s has errors; keeping the running configuration",
			 path);
		return;
	}
	struct tls_ctx *tls;
	struct auth_db *auth;
	int settle;
	if (load_credentials(d, fresh, 1, &tls, &auth, &settle)) {
		config_unref(fresh);
		int retry = settle && !d->settle_tried;
		log_warn(LOG_SVC_MASTER, "reload: keeping the running configuration, certificate and credentials%s",
			 retry ? " (trying again in a second)" : "");
		if (retry) {
			d->settle_tried = 1;
			uv_timer_start(&d->settle_timer, on_settle, RELOAD_SETTLE_MS, 0);
		}
		return;
	}
	log_open(fresh->syslog_name, d->log_flags);
	/* Listeners, queue_dir and user need a restart; the rest applies to
	 * new sessions now, and sessions in progress keep their snapshot. */
	smtp_server_set_config(d->smtpd, fresh);
	if (d->sched)
		sched_set_config(d->sched, fresh);
	if (metrics_listen_changed(&d->cfg->metrics_listen, &fresh->metrics_listen))
		log_warn(LOG_SVC_MASTER, "reload: metrics_listen takes effect at the next restart");
	if (d->bounce)
		bounce_set_config(d->bounce, fresh);
	if (resolver_conf_changed(d->cfg, fresh))
		log_warn(LOG_SVC_MASTER, "reload: dns_servers and dns_timeout take effect at the next restart");
	config_unref(d->cfg);
	d->cfg = fresh;
	smtp_server_set_tls(d->smtpd, tls);
	smtp_server_set_auth(d->smtpd, auth);
	log_info(LOG_SVC_MASTER, "reload: configuration %s", d->config_path);
}

static void on_hup(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	(void)signum;
	d->settle_tried = 0;
	uv_timer_stop(&d->settle_timer);
	reload(d);
}

/* Can the daemon's user use queue_dir, or, when it does not exist yet,
 * make it (queue_open does, unprivileged too)?  0, or -1 with err naming
 * the path, the user and the permission to give. */
static int queue_dir_usable(const struct daemon *d, char *err, size_t errlen)
{
	const char *dir = d->cfg->queue_dir;
	char parent[PATH_MAX];
	if (access(dir, F_OK) == 0 || errno != ENOENT)
		return privs_check_access(dir, R_OK | W_OK | X_OK, d->user, err, errlen);
	snprintf(parent, sizeof(parent), "%s", dir);
	return privs_check_access(dirname(parent), W_OK | X_OK, d->user, err, errlen);
}

/* Bind, read secrets, drop root, open the queue. */
static int start_privileged(struct daemon *d)
{
	char err[512];
	unsigned uid = 0, gid = 0;
	int root = geteuid() == 0;
	if (root && privs_lookup(d->cfg->user, &uid, &gid, err, sizeof(err))) {
		log_err(LOG_SVC_MASTER, "%s", err);
		return -1;
	}
	if (root) {
		snprintf(d->user, sizeof(d->user), "%s", d->cfg->user);
	} else {
		struct passwd *pw = getpwuid(geteuid());
		snprintf(d->user, sizeof(d->user), "%s", pw ? pw->pw_name : "(this user)");
	}
	if (smtp_server_new(&d->smtpd, d->loop, d->cfg, NULL))
		return -1;
	if (d->cfg->metrics_listen.host &&
	    metrics_http_new(&d->metrics, d->loop, &d->cfg->metrics_listen, err,
			     sizeof(err))) {
		log_err(LOG_SVC_MASTER, "%s", err);
		return -1;
	}
	struct tls_ctx *tls;
	struct auth_db *auth;
	int settle;
	if (load_credentials(d, d->cfg, 0, &tls, &auth, &settle))
		return -1;
	smtp_server_set_tls(d->smtpd, tls);
	smtp_server_set_auth(d->smtpd, auth);
	if (privs_check_queue_owner(d->cfg->queue_dir, root ? uid : (unsigned)geteuid(),
				    d->user, err, sizeof(err)) ||
	    (root && (privs_own_dir(d->cfg->queue_dir, uid, gid, err, sizeof(err)) ||
		      privs_drop(d->cfg->user, uid, gid, err, sizeof(err))))) {
		log_err(LOG_SVC_MASTER, "%s", err);
		return -1;
	}
	if (root)
		log_info(LOG_SVC_MASTER, "running as user %s", d->cfg->user);
	if (queue_dir_usable(d, err, sizeof(err))) {
		log_err(LOG_SVC_MASTER, "cannot open queue %s: %s", d->cfg->queue_dir, err);
		return -1;
	}
	warn_unreloadable(d);
	return 0;
}

/* The resolver of client names (and of delivery, later). */
static int start_resolver(struct daemon *d)
{
	struct resolver_conf rc;
	char err[256];
	if (resolver_conf_init(&rc, d->cfg)) {
		log_err(LOG_SVC_MASTER, "cannot start the resolver: out of memory");
		return -1;
	}
	/* RELAYD_PREFER_IPV6=1 (tests only, not a configuration key): IPv6
	 * first, as on a host with a global IPv6 address. */
	const char *v6 = getenv("RELAYD_PREFER_IPV6");
	if (v6 && strcmp(v6, "1") == 0)
		rc.opt.prefer_ipv6 = 1;
	int rc_new = dns_resolver_new(&d->dns, d->loop, &rc.opt, err, sizeof(err));
	resolver_conf_free(&rc);
	if (rc_new) {
		log_err(LOG_SVC_MASTER, "%s", err);
		return -1;
	}
	smtp_server_set_dns(d->smtpd, d->dns);
	return 0;
}

/* The admin tools' socket, made after the privilege drop: it belongs to
 * relayd's user and group, 0660 (control_proto.h says who may connect). */
static int start_control(struct daemon *d)
{
	char err[512];
	if (control_start(&d->control, d->loop, d->cfg->control_socket, d->queue,
			  NULL, err, sizeof(err))) {
		log_err(LOG_SVC_MASTER, "%s", err);
		return -1;
	}
	return 0;
}

static void wake_sched(void *arg)
{
	sched_wake(arg);
}

int daemon_start(struct daemon *d)
{
	d->loop = uv_default_loop();
	if (start_privileged(d))
		return -1;
	int rc = queue_lock_acquire(d->cfg->queue_dir, &d->qlock);
	if (rc) {
		log_err(LOG_SVC_MASTER, "cannot lock queue %s: %s",
			d->cfg->queue_dir, rc == QUEUE_EBUSY ?
			"another relayd or a queue tool is using it" : queue_strerror(rc));
		return -1;
	}
	/* Reader slots: every delivery may stream a body at once, and tools
	 * read beside us. */
	uint64_t dc = d->cfg->delivery_concurrency;
	struct queue_open_opts qo = {
		.map_size = (size_t)d->cfg->queue_map_size,
		.max_readers = (unsigned)(dc > 65536 ? 65536 : dc) + 16 +
			       QUEUE_READERS_TOOLS,
	};
	rc = queue_open_opts(&d->queue, d->cfg->queue_dir, &qo);
	if (rc) {
		log_err(LOG_SVC_MASTER, "cannot open queue %s: %s",
			d->cfg->queue_dir, queue_strerror(rc));
		return -1;
	}
	/* We hold the lock: claims left by an earlier run are a dead
	 * process's, and must not hold up a flush or a requeue. */
	queue_claims_void(d->queue);
	if ((rc = queue_writer_start(d->queue, d->loop))) {
		log_err(LOG_SVC_MASTER, "cannot start queue writer: %s",
			queue_strerror(rc));
		return -1;
	}
	queue_writer_on_fatal(d->queue, on_queue_fatal, d);
	smtp_server_set_queue(d->smtpd, d->queue);
	if (start_control(d))
		return -1;
	if (start_resolver(d))
		return -1;
	uint64_t period = reader_check_period();
	uv_timer_init(d->loop, &d->reader_timer);
	d->reader_timer.data = d;
	uv_timer_start(&d->reader_timer, on_reader_check, period, period);
	uv_signal_init(d->loop, &d->sig_term);
	uv_signal_init(d->loop, &d->sig_int);
	uv_signal_init(d->loop, &d->sig_hup);
	uv_timer_init(d->loop, &d->settle_timer);
	d->settle_timer.data = d;
	d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
	uv_signal_start(&d->sig_term, on_stop_signal, SIGTERM);
	uv_signal_start(&d->sig_int, on_stop_signal, SIGINT);
	uv_signal_start(&d->sig_hup, on_hup, SIGHUP);
	if (sched_new(&d->sched, d->loop, d->queue, d->dns, d->cfg) ||
	    bounce_new(&d->bounce, d->loop, d->queue, d->cfg)) {
		log_err(LOG_SVC_MASTER, "cannot start the scheduler: out of memory");
		return -1;
	}
	sched_set_report_ops(d->sched, bounce_ops(d->bounce));
	smtp_server_set_on_queued(d->smtpd, wake_sched, d->sched);
	struct control_hooks hooks;
	control_hooks_sched(&hooks, d->sched);
	control_set_hooks(d->control, &hooks);
	if (smtp_server_start(d->smtpd))
		return -1;
	metrics_series_register(d);
	char err[256];
	if (d->metrics && metrics_http_start(d->metrics, err, sizeof(err))) {
		log_err(LOG_SVC_MASTER, "%s", err);
		return -1;
	}
	sched_start(d->sched);
	log_info(LOG_SVC_MASTER, "daemon started -- version %s, configuration %s",
		 PACKAGE_VERSION, d->config_path);
	return 0;
}

int daemon_run(struct daemon *d)
{
	uv_run(d->loop, UV_RUN_DEFAULT);
	queue_close(d->queue);
	queue_lock_release(d->qlock);
	log_info(LOG_SVC_MASTER, "stopped");
	config_unref(d->cfg);
	d->cfg = NULL;
	uv_loop_close(d->loop);
	return d->exit_code;
}
