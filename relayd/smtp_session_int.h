/*
 * smtp_session_int.h - the session struct, shared by the session's
 * modules: smtp_session.c (I/O, state machine, envelope commands),
 * smtp_receive.c (DATA/BDAT and the queue hand-off) and smtp_auth.c
 * (STARTTLS and AUTH).  Not for use elsewhere.
 */
#ifndef RELAYD_SMTP_SESSION_INT_H
#define RELAYD_SMTP_SESSION_INT_H

#include <time.h>
#include "smtp_session.h"
#include "smtp_data.h"
#include "smtp_parse.h"

#define SMTP_LINE_MAX 512          /* RFC 5321 §4.5.3.1.4, with CRLF */
/* MAIL and RCPT grow by their parameters: RFC 3461 §5 adds up to 100
 * octets (RET, ENVID) and 500 (NOTIFY, ORCPT), RFC 4954 §5 an AUTH=,
 * RFC 1870 a SIZE=, so a DSN RCPT with an ORCPT of a long address is
 * legitimately longer than 512. */
#define SMTP_PARAM_LINE_MAX 2048
#define SMTP_AUTH_LINE_MAX 12288   /* RFC 4954 §4 */
#define SMTP_ERROR_LIMIT 20
#define SMTP_HOP_LIMIT 50
#define CLIENT_NAME_WAIT_MS 1500   /* the longest a banner waits for it */

enum smtp_state {
	SS_CMD,          /* reading commands */
	SS_DATA,         /* reading DATA content */
	SS_BDAT,         /* reading a BDAT chunk */
	SS_AUTH,         /* reading an AUTH continuation line */
	SS_WAIT,         /* waiting for a commit or a password check */
	SS_DONE,         /* closing */
};

/* Command counters for the "disconnect from" line, in Postfix order. */
enum smtp_count {
	C_HELO, C_EHLO, C_STARTTLS, C_AUTH, C_MAIL, C_RCPT, C_DATA, C_BDAT,
	C_RSET, C_NOOP, C_VRFY, C_HELP, C_QUIT, C_UNKNOWN, C_COUNT
};

struct smtp_txn {
	queue_id id;
	int64_t arrival_us;
	struct smtp_mail_args mail;
	struct queue_rcpt *rcpt;
	uint32_t nrcpt, cap;
	struct queue_spool *spool;
	struct smtp_data data;
	int data_started;
	uint64_t stored_size;          /* with our Received:, for the log */
	int bdat_failed;               /* a BDAT error: refuse until LAST */
	/* Waiting in SS_WAIT for a spill write (smtp_receive.c): */
	enum smtp_state spool_wait;    /* to go on in this state, or SS_CMD */
	int finish_waiting;            /* to submit the complete content */
	enum smtp_count finish_which;  /* C_DATA or C_BDAT, for finish_content */
	const char *bdat_reply;
	uint64_t content_end;          /* uv_hrtime() at its end, for metrics */
};

struct smtp_session {
	struct smtpd_env *env;
	struct config *cfg;            /* snapshot at session start (a ref) */
	struct conn *conn;
	struct smtp_session *next, **pprev;  /* server's list */
	enum smtp_listener_kind kind;
	enum smtp_state state;
	uv_timer_t timer;
	uint64_t started, last_input;  /* uv_now() milliseconds */
	int trusted;                   /* peer in trusted_networks */
	int esmtp;
	int quitting;                  /* close after the current reply */
	int discard_line;              /* dropping an overlong command line */
	int stop_requested;            /* graceful stop pending */
	int refs;                      /* conn + timer + pending async work */
	char client_name[256];         /* forward-confirmed, or "unknown" */
	char client_addr[46];
	struct sockaddr_storage peer;
	char *helo;
	struct tls_ctx *tls;           /* referenced at session start */
	char *auth_user;
	const char *auth_method;
	struct auth_db *auth_db;       /* what auth_user was checked against */
	struct smtp_auth_state *auth;  /* AUTH exchange in progress */
	unsigned errors;
	unsigned ok[C_COUNT], total[C_COUNT];
	struct smtp_txn *txn;          /* NULL outside a transaction */
	uint64_t bdat_left;
	int bdat_last;
};

/* smtp_session.c */
void smtp_reply(struct smtp_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void smtp_count(struct smtp_session *s, enum smtp_count c, int ok);
void smtp_txn_reset(struct smtp_session *s);
void smtp_process(struct smtp_session *s);
void smtp_session_unref(struct smtp_session *s);
void smtp_session_end(struct smtp_session *s);

/* smtp_receive.c */
void smtp_cmd_data(struct smtp_session *s, const char *arg);
void smtp_cmd_bdat(struct smtp_session *s, const char *arg);
/* Feed content input in SS_DATA / SS_BDAT; returns bytes consumed. */
size_t smtp_receive_input(struct smtp_session *s, const char *p, size_t n);

/* smtp_auth.c */
void smtp_cmd_starttls(struct smtp_session *s, const char *arg);
void smtp_cmd_auth(struct smtp_session *s, const char *arg);
void smtp_auth_line(struct smtp_session *s, const char *line, size_t len);
int smtp_auth_offered(const struct smtp_session *s);
/* At session start: take a TLS context reference, start implicit TLS on
 * 465, refuse throttled clients.  Non-zero: close the session. */
int smtp_auth_session_start(struct smtp_session *s);
/* MAIL FROM ownership (sender_login_map); non-zero after replying. */
int smtp_auth_sender_check(struct smtp_session *s, const char *sender);
void smtp_auth_free(struct smtp_session *s);

#endif
