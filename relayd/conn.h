/*
 * conn.h - one SMTP connection, either direction: a libuv TCP stream with
 * bounded input and output buffers and optional TLS (STARTTLS or implicit)
 * through the tls module's memory BIOs.  Protocol code sees plaintext
 * only.  The server accepts (conn_accept); the delivery client connects
 * (conn_connect) and starts TLS as a client (conn_starttls_client).
 *
 * Memory: an idle connection holds no buffers; input is appended to a
 * per-connection buffer only while unconsumed, output only while unsent.
 * Reading pauses when either buffer passes its bound, so a client that
 * floods commands or never reads replies costs a bounded amount.
 *
 * Ownership: the conn owns its uv_tcp_t and frees itself after its close
 * callback, which it reports through cb->on_closed; the owner must not
 * touch it afterwards.
 */
#ifndef RELAYD_CONN_H
#define RELAYD_CONN_H

#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

struct tls_ctx;
struct conn;

struct conn_cb {
	void (*on_input)(void *arg);      /* new plaintext input, or EOF */
	void (*on_closed)(void *arg);     /* the conn is gone */
	/* conn_connect only: the connection is up (status 0) or failed (a
	 * libuv error code; the conn then closes by itself, on_closed
	 * follows).  Not called after conn_abort. */
	void (*on_connected)(void *arg, int status);
};

/* Accept a pending connection on `server`; NULL on failure. */
struct conn *conn_accept(uv_stream_t *server);
/*
 * conn_connect - open a connection to peer (AF_INET/AF_INET6), from the
 * source address `source` when not NULL (smtp_bind_address).  Callbacks
 * get `arg`; reading starts once connected (no conn_start).  Returns 0
 * and *out, or a negative libuv error code (nothing to close then).  The
 * connect itself has no deadline here: the owner bounds it with its own
 * timer and conn_abort, as it bounds every other wait.
 */
int conn_connect(struct conn **out, uv_loop_t *loop,
		 const struct sockaddr *peer, const struct sockaddr *source,
		 const struct conn_cb *cb, void *arg);

/* Start reading; callbacks get `arg`. */
void conn_start(struct conn *c, const struct conn_cb *cb, void *arg);

const struct sockaddr_storage *conn_peer(const struct conn *c);
const char *conn_peer_ip(const struct conn *c);       /* text form */
const struct sockaddr_storage *conn_local(const struct conn *c);

/* Unconsumed plaintext input (not NUL-terminated). */
const char *conn_input(struct conn *c, size_t *len);
void conn_consume(struct conn *c, size_t n);
/* 1 once the peer has closed its side (after the input is consumed). */
int conn_eof(const struct conn *c);
/* Stop / restart delivering input (the session waits for a commit). */
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);

/* Queue output; sent on conn_flush (replies to pipelined commands go out
 * in one write).  0 or -1 (closed, or TLS failure). */
int conn_write(struct conn *c, const void *buf, size_t len);
void conn_flush(struct conn *c);

/* Switch to TLS as server: buffered plaintext input is discarded (text
 * pipelined after STARTTLS must not be honoured).  0 or -1. */
int conn_starttls(struct conn *c, struct tls_ctx *ctx);
/*
 * conn_starttls_client - switch to TLS as a client, after the next hop's
 * 220 to STARTTLS: buffered plaintext input is discarded (CVE-2011-0411,
 * the client side), the handshake starts at once.  servername goes in
 * SNI; verify_name / verify_required as tls_conn_set_verify.  on_input is
 * called as handshake records arrive: the owner checks
 * conn_tls_handshake_done; a failed handshake closes the conn with
 * conn_error set.  0 or -1 (nothing changed).
 */
int conn_starttls_client(struct conn *c, struct tls_ctx *ctx,
			 const char *servername, const char *verify_name,
			 int verify_required);
int conn_tls_handshake_done(const struct conn *c);
/* The TLS session for what this module does not wrap (peer trust,
 * cipher bits), NULL without TLS.  Owned by the conn. */
struct tls_conn *conn_tls(struct conn *c);
int conn_is_tls(const struct conn *c);
/* "(using TLSv1.3 with cipher ...)" for Received:, "" without TLS. */
void conn_tls_info(const struct conn *c, char *buf, size_t len);
const char *conn_tls_version(const struct conn *c);
const char *conn_tls_cipher(const struct conn *c);

/* Send what is queued, then close.  Idempotent.  Before a TLS handshake
 * has completed, the close waits for it, so the queued output can be
 * sent encrypted; the owner bounds that wait with conn_abort. */
void conn_close(struct conn *c);
int conn_closing(const struct conn *c);
/* 1 when unsent output has reached the bound: the owner should stop
 * producing replies; cb->on_input is called once it has drained. */
int conn_output_full(struct conn *c);
/* Close now, dropping unsent output. */
void conn_abort(struct conn *c);
/* Why TLS failed ("" when it did not), valid until on_closed returns. */
const char *conn_error(const struct conn *c);

#endif
