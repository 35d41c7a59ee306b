/*
 * conn.c - buffered, optionally TLS-wrapped SMTP connection (conn.h),
 * accepted by the server or opened by the delivery client.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include "conn.h"
#include "tls.h"

#define READ_CHUNK (64 * 1024)
#define IN_MAX (128 * 1024)      /* unconsumed input that pauses reading */
#define OUT_MAX (256 * 1024)     /* unsent output that pauses reading */

struct conn {
	uv_tcp_t tcp;                /* first: the handle's data is the conn */
	const struct conn_cb *cb;
	void *arg;
	struct sockaddr_storage peer, local;
	char peer_ip[INET6_ADDRSTRLEN];

	char *in;                    /* plaintext input */
	size_t in_len, in_cap;
	char *out;                   /* wire bytes not yet handed to libuv */
	size_t out_len, out_cap;
	size_t in_flight;            /* bytes in uv_write requests */

	struct tls_conn *tls;
	int paused;                  /* by the owner */
	int reading;
	int eof;
	int closing;                 /* close requested */
	int close_after_handshake;   /* close requested before TLS was up */
	int closed;                  /* uv_close called */
	int out_blocked;             /* the owner stopped at the output bound */
	char error[160];             /* why TLS failed, for the owner's log */
	uv_connect_t connect_req;    /* conn_connect: pending while connecting */
};

/* A write in flight owns the output buffer it was handed: the conn
 * starts a fresh one, so nothing is copied. */
struct write_req {
	uv_write_t req;
	struct conn *c;
	size_t len;
	char *data;
};

/* libuv reads one stream at a time, and the read callback consumes the
 * buffer before the next allocation: one loop-wide buffer serves all. */
static char read_buf[READ_CHUNK];

static void update_reading(struct conn *c);

static int buf_append(char **buf, size_t *len, size_t *cap, const void *p,
		      size_t n)
{
	if (*cap - *len < n) {
		size_t ncap = *cap ? *cap : 1024;
		while (ncap - *len < n)
			ncap *= 2;
		char *nb = realloc(*buf, ncap);
		if (!nb)
			return -1;
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	return 0;
}

static void on_close(uv_handle_t *h)
{
	struct conn *c = h->data;
	if (c->cb && c->cb->on_closed)
		c->cb->on_closed(c->arg);
	if (c->tls)
		tls_conn_free(c->tls);
	free(c->in);
	free(c->out);
	free(c);
}

static void do_close(struct conn *c)
{
	if (c->closed)
		return;
	c->closed = 1;
	c->closing = 1;
	uv_read_stop((uv_stream_t *)&c->tcp);
	uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_write(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct conn *c = w->c;
	c->in_flight -= w->len;
	free(w->data);
	free(w);
	if (status < 0) {
		do_close(c);
		return;
	}
	if (c->out_len)
		conn_flush(c);
	else if (c->closing && !c->in_flight)
		do_close(c);
	else
		update_reading(c);
	/* The owner stopped answering at the output bound: it may go on. */
	if (c->out_blocked && !c->closed && !c->closing &&
	    c->out_len + c->in_flight < OUT_MAX / 2) {
		c->out_blocked = 0;
		if (c->cb && c->cb->on_input)
			c->cb->on_input(c->arg);
	}
}

void conn_flush(struct conn *c)
{
	if (c->closed)
		return;
	if (c->tls) {
		char tmp[16384];
		size_t n;
		while ((n = tls_conn_take_output(c->tls, tmp, sizeof(tmp))) > 0)
			if (buf_append(&c->out, &c->out_len, &c->out_cap, tmp, n)) {
				do_close(c);
				return;
			}
	}
	if (!c->out_len) {
		if (c->closing && !c->in_flight)
			do_close(c);
		return;
	}
	struct write_req *w = malloc(sizeof(*w));
	if (!w) {
		do_close(c);
		return;
	}
	w->c = c;
	w->len = c->out_len;
	w->data = c->out;
	c->out = NULL;
	c->out_len = c->out_cap = 0;
	uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
	c->in_flight += w->len;
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write)) {
		c->in_flight -= w->len;
		free(w->data);
		free(w);
		do_close(c);
	}
}

int conn_write(struct conn *c, const void *buf, size_t len)
{
	if (c->closed)
		return -1;
	if (c->tls)
		return tls_conn_write(c->tls, buf, len);
	return buf_append(&c->out, &c->out_len, &c->out_cap, buf, len);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	buf->base = read_buf;
	buf->len = sizeof(read_buf);
}

/* Move decrypted plaintext into the input buffer. */
static int tls_pump(struct conn *c)
{
	char tmp[16384];
	for (;;) {
		ssize_t n = tls_conn_read(c->tls, tmp, sizeof(tmp));
		if (n == 0)
			break;
		if (n < 0) {
			if (n == TLS_EOF)
				c->eof = 1;
			return n == TLS_EOF ? 0 : -1;
		}
		if (buf_append(&c->in, &c->in_len, &c->in_cap, tmp, (size_t)n))
			return -1;
		if (c->in_len >= IN_MAX)
			break;
	}
	/* Handshake messages may be waiting to go out. */
	conn_flush(c);
	return 0;
}

/* TLS failed: send what OpenSSL queued (the alert), then close. */
static void tls_failed(struct conn *c)
{
	snprintf(c->error, sizeof(c->error), "%s", tls_conn_error(c->tls));
	c->closing = 1;
	c->eof = 1;
	conn_flush(c);
	if (!c->closed && !c->in_flight && !c->out_len)
		do_close(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	if (n == 0)
		return;
	if (n < 0) {
		c->eof = 1;
		uv_read_stop(s);
		c->reading = 0;
		if (c->close_after_handshake) {
			do_close(c);
			return;
		}
	} else if (c->tls) {
		if (tls_conn_feed(c->tls, buf->base, (size_t)n) || tls_pump(c)) {
			tls_failed(c);
			return;
		}
		if (c->close_after_handshake) {
			if (tls_conn_handshake_done(c->tls)) {
				c->close_after_handshake = 0;
				conn_close(c);
			}
			return;
		}
	} else if (buf_append(&c->in, &c->in_len, &c->in_cap, buf->base, (size_t)n)) {
		do_close(c);
		return;
	}
	if (c->closing)
		return;
	if (c->cb->on_input)
		c->cb->on_input(c->arg);
	if (!c->closed)
		update_reading(c);
}

static void update_reading(struct conn *c)
{
	int want = (c->close_after_handshake ||
		    (!c->paused && !c->eof && !c->closing)) &&
		   c->in_len < IN_MAX && c->out_len + c->in_flight < OUT_MAX;
	if (want && !c->reading) {
		if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read) == 0)
			c->reading = 1;
	} else if (!want && c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = 0;
	}
}

struct conn *conn_accept(uv_stream_t *server)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	uv_tcp_init(server->loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
		c->closed = 1;
		uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
		return NULL;
	}
	int len = sizeof(c->peer);
	uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len);
	len = sizeof(c->local);
	uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&c->local, &len);
	if (c->peer.ss_family == AF_INET6)
		uv_ip6_name((struct sockaddr_in6 *)&c->peer, c->peer_ip, sizeof(c->peer_ip));
	else
		uv_ip4_name((struct sockaddr_in *)&c->peer, c->peer_ip, sizeof(c->peer_ip));
	uv_tcp_nodelay(&c->tcp, 1);
	return c;
}

void conn_start(struct conn *c, const struct conn_cb *cb, void *arg)
{
	c->cb = cb;
	c->arg = arg;
	update_reading(c);
}

static void set_peer_ip(struct conn *c)
{
	if (c->peer.ss_family == AF_INET6)
		uv_ip6_name((struct sockaddr_in6 *)&c->peer, c->peer_ip, sizeof(c->peer_ip));
	else
		uv_ip4_name((struct sockaddr_in *)&c->peer, c->peer_ip, sizeof(c->peer_ip));
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	/* conn_abort during the connect: libuv reports UV_ECANCELED before
	 * the close callback frees c; the owner asked for it, no report. */
	if (c->closed)
		return;
	if (status == 0) {
		int len = sizeof(c->local);
		uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&c->local, &len);
		uv_tcp_nodelay(&c->tcp, 1);
	}
	if (c->cb->on_connected)
		c->cb->on_connected(c->arg, status);
	if (status < 0)
		do_close(c);
	else if (!c->closed)
		update_reading(c);
}

int conn_connect(struct conn **out, uv_loop_t *loop,
		 const struct sockaddr *peer, const struct sockaddr *source,
		 const struct conn_cb *cb, void *arg)
{
	size_t plen = peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in);
	struct conn *c = calloc(1, sizeof(*c));
	int r;

	*out = NULL;
	if (!c)
		return UV_ENOMEM;
	if ((r = uv_tcp_init(loop, &c->tcp)) < 0) {
		free(c);
		return r;
	}
	c->tcp.data = c;
	memcpy(&c->peer, peer, plen);
	set_peer_ip(c);
	c->connect_req.data = c;
	if ((source && (r = uv_tcp_bind(&c->tcp, source, 0)) < 0) ||
	    (r = uv_tcp_connect(&c->connect_req, &c->tcp, peer, on_connect)) < 0) {
		/* cb stays NULL: the owner hears nothing more of it. */
		do_close(c);
		return r;
	}
	c->cb = cb;
	c->arg = arg;
	*out = c;
	return 0;
}

const struct sockaddr_storage *conn_peer(const struct conn *c)
{
	return &c->peer;
}

const struct sockaddr_storage *conn_local(const struct conn *c)
{
	return &c->local;
}

const char *conn_peer_ip(const struct conn *c)
{
	return c->peer_ip;
}

const char *conn_input(struct conn *c, size_t *len)
{
	/* Plaintext may wait inside TLS when an earlier read stopped at
	 * IN_MAX, with nothing more coming from the socket: take it now. */
	if (c->tls && !c->closed && !c->eof && c->in_len < IN_MAX && tls_pump(c))
		c->eof = 1;
	*len = c->in_len;
	return c->in;
}

void conn_consume(struct conn *c, size_t n)
{
	if (n >= c->in_len) {
		c->in_len = 0;
		/* Idle connections keep no input buffer. */
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	} else {
		memmove(c->in, c->in + n, c->in_len - n);
		c->in_len -= n;
	}
	if (!c->closed)
		update_reading(c);
}

int conn_eof(const struct conn *c)
{
	return c->eof;
}

void conn_pause(struct conn *c)
{
	c->paused = 1;
	if (!c->closed)
		update_reading(c);
}

void conn_resume(struct conn *c)
{
	c->paused = 0;
	if (!c->closed)
		update_reading(c);
}

int conn_starttls(struct conn *c, struct tls_ctx *ctx)
{
	if (c->tls || c->closed)
		return -1;
	/* CVE-2011-0411: bytes that arrived before the handshake were sent
	 * in the clear and must not be read as if protected. */
	c->in_len = 0;
	c->tls = tls_conn_new(ctx, 1, NULL);
	return c->tls ? 0 : -1;
}

int conn_starttls_client(struct conn *c, struct tls_ctx *ctx,
			 const char *servername, const char *verify_name,
			 int verify_required)
{
	if (c->tls || c->closed || c->closing)
		return -1;
	struct tls_conn *t = tls_conn_new(ctx, 0, servername);
	if (!t || tls_conn_set_verify(t, verify_name, verify_required)) {
		tls_conn_free(t);
		return -1;
	}
	/* What the next hop sent after its 220 was not protected by TLS. */
	c->in_len = 0;
	c->tls = t;
	/* The first read produces the ClientHello; tls_pump sends it. */
	if (tls_pump(c))
		tls_failed(c);
	return 0;
}

int conn_tls_handshake_done(const struct conn *c)
{
	return c->tls && tls_conn_handshake_done(c->tls);
}

struct tls_conn *conn_tls(struct conn *c)
{
	return c->tls;
}

int conn_is_tls(const struct conn *c)
{
	return c->tls != NULL;
}

void conn_tls_info(const struct conn *c, char *buf, size_t len)
{
	if (c->tls && tls_conn_handshake_done(c->tls))
		tls_conn_received_info(c->tls, buf, len);
	else if (len)
		buf[0] = 0;
}

const char *conn_tls_version(const struct conn *c)
{
	return c->tls ? tls_conn_version(c->tls) : NULL;
}

const char *conn_tls_cipher(const struct conn *c)
{
	return c->tls ? tls_conn_cipher(c->tls) : NULL;
}

void conn_close(struct conn *c)
{
	if (c->closing || c->close_after_handshake)
		return;
	if (c->tls && !tls_conn_handshake_done(c->tls) && !c->closed) {
		/* Output written so far (a 421 on port 465) can only leave once
		 * TLS is up: keep reading until the handshake is done.  The
		 * owner's timer bounds the wait (conn_abort). */
		c->close_after_handshake = 1;
		return;
	}
	c->closing = 1;
	if (c->tls)
		tls_conn_shutdown(c->tls);
	conn_flush(c);
	if (!c->closed && !c->in_flight && !c->out_len)
		do_close(c);
	else if (!c->closed)
		update_reading(c);
}

int conn_closing(const struct conn *c)
{
	return c->closing || c->close_after_handshake;
}

void conn_abort(struct conn *c)
{
	do_close(c);
}

int conn_output_full(struct conn *c)
{
	size_t pending = c->out_len + c->in_flight +
			 (c->tls ? tls_conn_output_pending(c->tls) : 0);
	if (pending < OUT_MAX)
		return 0;
	/* Push what is buffered, so on_write can report the drain. */
	conn_flush(c);
	c->out_blocked = 1;
	return 1;
}

const char *conn_error(const struct conn *c)
{
	return c->error;
}
