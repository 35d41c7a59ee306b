/*
 * conn.h - one client connection: a libuv TCP stream with bounded input
 * and output buffers and optional TLS (STARTTLS or implicit) through the
 * tls module's memory BIOs.  Protocol code sees plaintext only.
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
};

/* Accept a pending connection on `server`; NULL on failure. */
struct conn *conn_accept(uv_stream_t *server);
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
