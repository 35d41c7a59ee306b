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
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "auth.h"
#include "daemon.h"
#include "log.h"
#include "privs.h"
#include "smtp_server.h"
#include "tls.h"

static void close_signals(struct daemon *d)
{
	uv_close((uv_handle_t *)&d->sig_term, NULL);
	uv_close((uv_handle_t *)&d->sig_int, NULL);
	uv_close((uv_handle_t *)&d->sig_hup, NULL);
	/* libuv restores the default action on close; a second SIGTERM
	 * during the last commit must not kill the daemon mid-stop. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
}

/* Every session is gone: commit the rest and let the loop end. */
static void on_server_stopped(void *arg)
{
	struct daemon *d = arg;
	queue_writer_stop(d->queue);
	smtp_server_free(d->smtpd);
	d->smtpd = NULL;
	close_signals(d);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	if (d->stopping)
		return;
	d->stopping = 1;
	log_info(LOG_SVC_MASTER, "terminating on signal %d", signum);
	smtp_server_stop(d->smtpd, on_server_stopped, d);
}

/* Load the TLS context and the credentials named by cfg.  Each out
 * pointer is left NULL when the feature is off; -1 when a configured one
 * fails (logged). */
static int load_credentials(const struct config *cfg, struct tls_ctx **tls,
			    struct auth_db **auth)
{
	char err[512];
	*tls = NULL;
	*auth = NULL;
	if (!cfg->tls_cert_file)
		return 0;
	if (tls_server_ctx_new(tls, cfg->tls_cert_file, cfg->tls_key_file, err,
			       sizeof(err))) {
		log_err(LOG_SVC_MASTER, "TLS: %s", err);
		return -1;
	}
	if (access(cfg->auth_users_file, F_OK) != 0) {
		log_warn(LOG_SVC_MASTER, "%s does not exist: AUTH is not offered",
			 cfg->auth_users_file);
		return 0;
	}
	if (auth_db_load(auth, cfg->auth_users_file, cfg->sender_login_map, err,
			 sizeof(err))) {
		log_err(LOG_SVC_MASTER, "AUTH: %s", err);
		tls_ctx_unref(*tls);
		*tls = NULL;
		return -1;
	}
	if (!cfg->sender_login_map && cfg->sender_login_policy == SENDER_POLICY_MAP)
		log_warn(LOG_SVC_MASTER,
			 "sender_login_map is not set: any authenticated user may use any sender address (set sender_login_policy = any if that is intended)");
	return 0;
}

static void on_hup(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	struct config *fresh;
	if (config_new(&fresh, d->config_path, stderr) != 0) {
		log_warn(LOG_SVC_MASTER, "reload: %s has errors; keeping the running configuration",
			 d->config_path);
		return;
	}
	struct tls_ctx *tls;
	struct auth_db *auth;
	if (load_credentials(fresh, &tls, &auth)) {
		log_warn(LOG_SVC_MASTER, "reload: keeping the running configuration, certificate and credentials");
		config_unref(fresh);
		return;
	}
	log_open(fresh->syslog_name, d->log_flags);
	/* Listeners, queue_dir and user need a restart; the rest applies to
	 * new sessions now, and sessions in progress keep their snapshot. */
	smtp_server_set_config(d->smtpd, fresh);
	config_unref(d->cfg);
	d->cfg = fresh;
	smtp_server_set_tls(d->smtpd, tls);
	smtp_server_set_auth(d->smtpd, auth);
	log_info(LOG_SVC_MASTER, "reload: configuration %s", d->config_path);
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
	if (smtp_server_new(&d->smtpd, d->loop, d->cfg, NULL))
		return -1;
	struct tls_ctx *tls;
	struct auth_db *auth;
	if (load_credentials(d->cfg, &tls, &auth))
		return -1;
	smtp_server_set_tls(d->smtpd, tls);
	smtp_server_set_auth(d->smtpd, auth);
	if (root && (privs_own_dir(d->cfg->queue_dir, uid, gid, err, sizeof(err)) ||
		     privs_drop(uid, gid, err, sizeof(err)))) {
		log_err(LOG_SVC_MASTER, "%s", err);
		return -1;
	}
	if (root)
		log_info(LOG_SVC_MASTER, "running as user %s", d->cfg->user);
	return 0;
}

int daemon_start(struct daemon *d)
{
	d->loop = uv_default_loop();
	if (start_privileged(d))
		return -1;
	int rc = queue_open(&d->queue, d->cfg->queue_dir,
			    (size_t)d->cfg->queue_map_size, 0);
	if (rc) {
		log_err(LOG_SVC_MASTER, "cannot open queue %s: %s",
			d->cfg->queue_dir, queue_strerror(rc));
		return -1;
	}
	if ((rc = queue_writer_start(d->queue, d->loop))) {
		log_err(LOG_SVC_MASTER, "cannot start queue writer: %s",
			queue_strerror(rc));
		return -1;
	}
	smtp_server_set_queue(d->smtpd, d->queue);
	uv_signal_init(d->loop, &d->sig_term);
	uv_signal_init(d->loop, &d->sig_int);
	uv_signal_init(d->loop, &d->sig_hup);
	d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
	uv_signal_start(&d->sig_term, on_stop_signal, SIGTERM);
	uv_signal_start(&d->sig_int, on_stop_signal, SIGINT);
	uv_signal_start(&d->sig_hup, on_hup, SIGHUP);
	if (smtp_server_start(d->smtpd))
		return -1;
	log_info(LOG_SVC_MASTER, "daemon started -- version %s, configuration %s",
		 PACKAGE_VERSION, d->config_path);
	return 0;
}

int daemon_run(struct daemon *d)
{
	uv_run(d->loop, UV_RUN_DEFAULT);
	queue_close(d->queue);
	log_info(LOG_SVC_MASTER, "stopped");
	config_unref(d->cfg);
	d->cfg = NULL;
	uv_loop_close(d->loop);
	return 0;
}
