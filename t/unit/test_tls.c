/*
 * test_tls.c - the TLS module over memory BIOs: a server and a client
 * session paired in memory (the output of each fed to the other), plus a
 * raw OpenSSL client for what the module's own client refuses to do (old
 * protocol versions).  Certificates are made with the openssl command at
 * start, in a temporary directory removed at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "tls.h"
#include "t/tap.h"

static char dir[64];
static char cert[128], key[128];         /* the server's pair */
static char cert2[128], key2[128];       /* another pair, for the mismatch */
static char cert3[128], key3[128];       /* a passphrase-protected key */
static char junk[128];                   /* not PEM at all */

static int run(const char *cmd)
{
	return system(cmd) == 0 ? 0 : -1;
}

static int make_certs(void)
{
	char cmd[1024];
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/test_tls.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cert2, sizeof(cert2), "%s/cert2.pem", dir);
	snprintf(key2, sizeof(key2), "%s/key2.pem", dir);
	snprintf(cert3, sizeof(cert3), "%s/cert3.pem", dir);
	snprintf(key3, sizeof(key3), "%s/key3.pem", dir);
	snprintf(junk, sizeof(junk), "%s/junk.pem", dir);
	for (int i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey rsa:2048 -nodes "
			 "-subj /CN=localhost -days 2 -keyout %s -out %s 2>/dev/null",
			 i ? key2 : key, i ? cert2 : cert);
		if (run(cmd) < 0)
			return -1;
	}
	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey rsa:2048 -passout pass:secret "
		 "-subj /CN=localhost -days 2 -keyout %s -out %s 2>/dev/null", key3, cert3);
	if (run(cmd) < 0 || (f = fopen(junk, "w")) == NULL)
		return -1;
	fputs("this is not a certificate\n", f);
	fclose(f);
	return 0;
}

static void remove_certs(void)
{
	const char *files[] = { cert, key, cert2, key2, cert3, key3, junk };

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(files[i]);
	rmdir(dir);
}

/* ---- an in-memory pair ---- */

/* One end: its session and everything it has received. */
struct end {
	struct tls_conn *t;
	char *got;
	size_t len, cap;
	size_t read_len;     /* buffer size given to tls_conn_read */
	size_t max_read;     /* largest count one tls_conn_read returned */
	int eof, err;        /* tls_conn_read returned TLS_EOF / -1 */
};

static void end_init(struct end *e, struct tls_conn *t, size_t read_len)
{
	memset(e, 0, sizeof(*e));
	e->t = t;
	e->read_len = read_len;
}

static void end_free(struct end *e)
{
	tls_conn_free(e->t);
	free(e->got);
	memset(e, 0, sizeof(*e));
}

/* Read all the plaintext available now. */
static void drain(struct end *e)
{
	char *buf = malloc(e->read_len);

	for (;;) {
		ssize_t r = tls_conn_read(e->t, buf, e->read_len);
		if (r <= 0) {
			if (r == TLS_EOF)
				e->eof = 1;
			else if (r == -1)
				e->err = 1;
			break;
		}
		if ((size_t)r > e->max_read)
			e->max_read = (size_t)r;
		if (e->len + (size_t)r > e->cap) {
			e->cap = (e->len + (size_t)r) * 2;
			e->got = realloc(e->got, e->cap);
		}
		memcpy(e->got + e->len, buf, (size_t)r);
		e->len += (size_t)r;
	}
	free(buf);
}

/* Move from's ciphertext into to, in odd-sized pieces that split records. */
static size_t move(struct end *from, struct end *to)
{
	unsigned char buf[5003];
	size_t n, total = 0;

	while ((n = tls_conn_take_output(from->t, buf, sizeof(buf))) > 0) {
		if (tls_conn_feed(to->t, buf, n) != 0)
			to->err = 1;
		total += n;
	}
	return total;
}

/* Shuttle bytes both ways until both ends are quiet.  Returns the number
 * of rounds, or -1 if they never went quiet. */
static int pump(struct end *a, struct end *b)
{
	for (int i = 0; i < 10000; i++) {
		drain(a);
		drain(b);
		if (move(a, b) + move(b, a) == 0)
			return i;
	}
	return -1;
}

static int got_is(const struct end *e, const char *want)
{
	return e->len == strlen(want) && memcmp(e->got, want, e->len) == 0;
}

static void make_pair(struct end *s, struct end *c, struct tls_ctx *sctx,
		      struct tls_ctx *cctx, const char *sni)
{
	end_init(s, tls_conn_new(sctx, 1, NULL), 4096);
	end_init(c, tls_conn_new(cctx, 0, sni), 4096);
}

/* A pair that has completed its handshake (or not: the caller checks). */
static int handshake_pair(struct end *s, struct end *c, struct tls_ctx *sctx,
			  struct tls_ctx *cctx)
{
	make_pair(s, c, sctx, cctx, "localhost");
	if (s->t == NULL || c->t == NULL)
		return -1;
	return pump(s, c) >= 0 && tls_conn_handshake_done(s->t)
		&& tls_conn_handshake_done(c->t) ? 0 : -1;
}

/* ---- tests ---- */

static void test_contexts(struct tls_ctx **sctx, struct tls_ctx **cctx)
{
	char err[512] = "";
	struct tls_ctx *sys = NULL;

	is_int(tls_server_ctx_new(sctx, cert, key, err, sizeof(err)), 0, "server ctx from cert + key");
	is_str(err, "", "no error text");
	is_int(tls_client_ctx_new(cctx, cert, err, sizeof(err)), 0, "client ctx with a CA file");
	is_int(tls_client_ctx_new(&sys, NULL, err, sizeof(err)), 0, "client ctx with the system store");
	tls_ctx_unref(sys);
	ok(ERR_peek_error() == 0, "error queue empty after creating contexts");
}

static void test_ctx_errors(void)
{
	struct tls_ctx *ctx = (struct tls_ctx *)&ctx;   /* must come back NULL */
	char err[512];

	err[0] = 0;
	is_int(tls_server_ctx_new(&ctx, cert, key2, err, sizeof(err)), -1, "mismatched key/cert refused");
	ok(ctx == NULL, "no ctx on failure");
	ok(strstr(err, key2) != NULL && strstr(err, "does not match") != NULL,
	   "mismatch message names the key file");
	diag("%s", err);

	err[0] = 0;
	is_int(tls_server_ctx_new(&ctx, "/nonexistent/cert.pem", key, err, sizeof(err)), -1,
	       "missing certificate file refused");
	ok(strstr(err, "/nonexistent/cert.pem") != NULL && strstr(err, "No such file") != NULL,
	   "message names the missing certificate file and says why");
	diag("%s", err);

	err[0] = 0;
	is_int(tls_server_ctx_new(&ctx, cert, "/nonexistent/key.pem", err, sizeof(err)), -1,
	       "missing key file refused");
	ok(strstr(err, "/nonexistent/key.pem") != NULL, "message names the missing key file");
	diag("%s", err);

	err[0] = 0;
	is_int(tls_server_ctx_new(&ctx, junk, key, err, sizeof(err)), -1, "non-PEM certificate refused");
	ok(strstr(err, junk) != NULL, "message names the bad certificate file");
	diag("%s", err);

	err[0] = 0;
	is_int(tls_server_ctx_new(&ctx, cert3, key3, err, sizeof(err)), -1,
	       "passphrase-protected key refused without prompting");
	ok(strstr(err, key3) != NULL, "message names the protected key file");
	diag("%s", err);

	is_int(tls_server_ctx_new(&ctx, "", key, err, sizeof(err)), -1, "empty certificate name refused");

	err[0] = 0;
	is_int(tls_client_ctx_new(&ctx, "/nonexistent/ca.pem", err, sizeof(err)), -1, "missing CA file refused");
	ok(strstr(err, "/nonexistent/ca.pem") != NULL, "message names the CA file");
	diag("%s", err);
	ok(ctx == NULL, "still no ctx");
	ok(ERR_peek_error() == 0, "error queue empty after failed contexts");
}

static void test_handshake(struct tls_ctx *sctx, struct tls_ctx *cctx)
{
	struct end s, c;
	char info[256];
	SSL *ssl;

	make_pair(&s, &c, sctx, cctx, "localhost");
	ok(s.t != NULL && c.t != NULL, "conns created");
	is_str(tls_conn_version(s.t), "(none)", "no version before the handshake");
	tls_conn_received_info(s.t, info, sizeof(info));
	is_str(info, "", "no received info before the handshake");
	ok(tls_conn_new(sctx, 0, NULL) == NULL, "client conn on a server ctx refused");
	ok(tls_conn_new(cctx, 1, NULL) == NULL, "server conn on a client ctx refused");

	ok(pump(&s, &c) >= 0, "pair goes quiet");
	ok(tls_conn_handshake_done(s.t) && tls_conn_handshake_done(c.t), "handshake completes");
	is_str(tls_conn_version(s.t), "TLSv1.3", "server: TLSv1.3");
	is_str(tls_conn_version(c.t), "TLSv1.3", "client: TLSv1.3");
	is_str(tls_conn_cipher(s.t), "TLS_AES_256_GCM_SHA384", "server's preferred cipher");
	is_int(tls_conn_cipher_bits(s.t), 256, "256 bits");
	tls_conn_received_info(s.t, info, sizeof(info));
	is_str(info, "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))", "received info");
	tls_conn_received_info(s.t, info, 10);
	is_str(info, "(using TL", "received info truncated to the buffer");
	is_str(tls_conn_error(s.t), "", "no error on the server");
	is_str(tls_conn_error(c.t), "", "no error on the client");
	ok(!tls_conn_session_reused(s.t), "a first handshake is not a resumption");

	ssl = tls_conn_ssl(s.t);
	is_str(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), "localhost", "server saw the SNI");
	ok((SSL_get_options(ssl) & SSL_OP_NO_RENEGOTIATION) != 0, "renegotiation off");
	ok((SSL_get_options(ssl) & SSL_OP_CIPHER_SERVER_PREFERENCE) != 0, "server cipher preference");
	ok((SSL_get_options(ssl) & SSL_OP_NO_COMPRESSION) != 0, "compression off");
	is_int(SSL_get_min_proto_version(ssl), TLS1_2_VERSION, "TLS 1.2 minimum");
	ok((SSL_get_options(tls_conn_ssl(c.t)) & SSL_OP_NO_RENEGOTIATION) != 0, "client: renegotiation off");
	is_int(SSL_get_min_proto_version(tls_conn_ssl(c.t)), TLS1_2_VERSION, "client: TLS 1.2 minimum");

	/* Both ways. */
	is_int(tls_conn_write(c.t, "EHLO client.example\r\n", 21), 0, "client writes");
	pump(&s, &c);
	ok(got_is(&s, "EHLO client.example\r\n"), "server receives it");
	is_int(tls_conn_write(s.t, "250-relayd\r\n", 12), 0, "server writes");
	is_int(tls_conn_write(s.t, "250 8BITMIME\r\n", 14), 0, "server writes again");
	pump(&s, &c);
	ok(got_is(&c, "250-relayd\r\n250 8BITMIME\r\n"), "client receives both, in order");
	is_int(tls_conn_write(s.t, "", 0), 0, "empty write is a no-op");
	end_free(&s);
	end_free(&c);

	/* IP literals are not sent as SNI (RFC 6066). */
	make_pair(&s, &c, sctx, cctx, "127.0.0.1");
	pump(&s, &c);
	ok(tls_conn_handshake_done(s.t), "handshake with an IP literal as the name");
	ok(SSL_get_servername(tls_conn_ssl(s.t), TLSEXT_NAMETYPE_host_name) == NULL, "no SNI for an IP literal");
	end_free(&s);
	end_free(&c);
}

static void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 31 + seed + (i >> 10)) & 0xff);
}

static void test_bulk(struct tls_ctx *sctx, struct tls_ctx *cctx)
{
	const size_t total = 1024 * 1024;
	unsigned char *data = malloc(total);
	struct end s, c;
	size_t off = 0, piece = 1;
	int writes = 0, bad = 0;

	if (handshake_pair(&s, &c, sctx, cctx) < 0) {
		ok(0, "bulk pair handshake");
		return;
	}
	s.read_len = 1000;   /* the server reads in small bites */
	fill_pattern(data, total, 7);
	while (off < total) {
		size_t n = piece < total - off ? piece : total - off;
		if (tls_conn_write(c.t, data + off, n) != 0)
			bad++;
		off += n;
		piece = (piece * 7 + 13) % 9000 + 1;
		if (++writes % 16 == 0)
			pump(&s, &c);
	}
	ok(pump(&s, &c) >= 0, "1 MiB client to server in pieces: pair goes quiet");
	is_int(bad, 0, "every write accepted");
	is_int(s.len, total, "server received 1 MiB");
	ok(s.len == total && memcmp(s.got, data, total) == 0, "... intact and in order");
	ok(s.max_read <= 1000, "no read returned more than asked (%zu <= 1000)", s.max_read);
	ok(tls_conn_input_pending(s.t) == 0, "all input consumed");

	/* One big write the other way, read in 4 KiB bites. */
	fill_pattern(data, total, 99);
	is_int(tls_conn_write(s.t, data, total), 0, "server writes 1 MiB at once");
	ok(tls_conn_output_pending(s.t) > total, "ciphertext waiting (%zu bytes)",
	   tls_conn_output_pending(s.t));
	pump(&s, &c);
	ok(c.len == total && memcmp(c.got, data, total) == 0, "client received 1 MiB intact");
	ok(c.max_read <= 4096, "client reads bounded too");
	is_int(tls_conn_output_pending(s.t), 0, "nothing left to send");
	end_free(&s);
	end_free(&c);
	free(data);
}

static void test_early_writes(struct tls_ctx *sctx, struct tls_ctx *cctx)
{
	struct end s, c;

	make_pair(&s, &c, sctx, cctx, "localhost");
	is_int(tls_conn_write(s.t, "220 relayd ESMTP\r\n", 18), 0, "server writes before the handshake");
	is_int(tls_conn_output_pending(s.t), 0, "... nothing goes out before the ClientHello");
	is_int(tls_conn_write(c.t, "EHLO a\r\n", 8), 0, "client writes before the handshake");
	ok(tls_conn_output_pending(c.t) > 0, "... which sends the ClientHello");
	is_int(tls_conn_write(c.t, "MAIL FROM:<a@b>\r\n", 17), 0, "client writes more");
	ok(!tls_conn_handshake_done(c.t), "handshake not done yet");
	pump(&s, &c);
	ok(tls_conn_handshake_done(s.t) && tls_conn_handshake_done(c.t), "handshake completes");
	ok(got_is(&s, "EHLO a\r\nMAIL FROM:<a@b>\r\n"), "server gets the early writes, in order");
	ok(got_is(&c, "220 relayd ESMTP\r\n"), "client gets the server's early write");
	is_int(tls_conn_write(c.t, "RCPT TO:<c@d>\r\n", 15), 0, "write after the handshake");
	pump(&s, &c);
	ok(got_is(&s, "EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"), "... follows them");
	end_free(&s);
	end_free(&c);
}

static void test_tls12(struct tls_ctx *sctx, struct tls_ctx *cctx)
{
	struct end s, c;
	char info[256];

	make_pair(&s, &c, sctx, cctx, "localhost");
	SSL_set_max_proto_version(tls_conn_ssl(c.t), TLS1_2_VERSION);
	pump(&s, &c);
	ok(tls_conn_handshake_done(s.t) && tls_conn_handshake_done(c.t), "TLS 1.2 client: handshake completes");
	is_str(tls_conn_version(s.t), "TLSv1.2", "TLSv1.2 negotiated");
	is_str(tls_conn_cipher(s.t), "ECDHE-RSA-AES256-GCM-SHA384", "server's preferred TLS 1.2 cipher");
	tls_conn_received_info(s.t, info, sizeof(info));
	is_str(info, "(using TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits))",
	       "TLS 1.2 received info");
	tls_conn_write(c.t, "NOOP\r\n", 6);
	pump(&s, &c);
	ok(got_is(&s, "NOOP\r\n"), "TLS 1.2 data");

	/* Renegotiation: our client refuses to start one; a client that
	 * insists gets the server's no_renegotiation alert. */
	SSL *cs = tls_conn_ssl(c.t);
	ERR_clear_error();
	is_int(SSL_renegotiate(cs), 0, "client refuses to renegotiate");
	ERR_clear_error();
	SSL_clear_options(cs, SSL_OP_NO_RENEGOTIATION);
	if (SSL_renegotiate(cs) == 1)
		(void)SSL_do_handshake(cs);
	ERR_clear_error();
	ok(tls_conn_output_pending(c.t) > 0, "insisting client sends a new ClientHello");
	pump(&s, &c);
	ok(strstr(tls_conn_error(c.t), "no renegotiation") != NULL,
	   "server refused the renegotiation: \"%s\"", tls_conn_error(c.t));
	ok(ERR_peek_error() == 0, "error queue empty after the renegotiation attempt");
	end_free(&s);
	end_free(&c);
}

/* A raw OpenSSL client limited to TLS 1.1, talking to a relayd server conn. */
static void test_old_protocol_refused(struct tls_ctx *sctx)
{
	SSL_CTX *raw_ctx = SSL_CTX_new(TLS_client_method());
	SSL *raw = NULL;
	BIO *rin = BIO_new(BIO_s_mem()), *rout = BIO_new(BIO_s_mem());
	struct tls_conn *s = tls_conn_new(sctx, 1, NULL);
	unsigned char buf[16384];
	char plain[64];
	int n, r;

	/* Security level 0 so that OpenSSL 3 will speak TLS 1.1 at all. */
	SSL_CTX_set_security_level(raw_ctx, 0);
	SSL_CTX_set_cipher_list(raw_ctx, "DEFAULT:@SECLEVEL=0");
	SSL_CTX_set_min_proto_version(raw_ctx, TLS1_VERSION);
	SSL_CTX_set_max_proto_version(raw_ctx, TLS1_1_VERSION);
	raw = SSL_new(raw_ctx);
	BIO_set_mem_eof_return(rin, -1);
	BIO_set_mem_eof_return(rout, -1);
	SSL_set_bio(raw, rin, rout);
	SSL_set_connect_state(raw);

	r = SSL_do_handshake(raw);
	ok(r <= 0 && SSL_get_error(raw, r) == SSL_ERROR_WANT_READ, "raw TLS 1.1 client sent its hello");
	ERR_clear_error();
	n = BIO_read(rout, buf, sizeof(buf));
	ok(n > 0, "ClientHello is %d bytes", n);
	tls_conn_feed(s, buf, (size_t)n);
	is_int(tls_conn_read(s, plain, sizeof(plain)), -1, "server refuses TLS 1.1");
	ok(strstr(tls_conn_error(s), "unsupported protocol") != NULL, "error says why: \"%s\"",
	   tls_conn_error(s));
	ok(ERR_peek_error() == 0, "server failure left the error queue empty");
	ok(tls_conn_output_pending(s) > 0, "an alert waits for the client");
	n = (int)tls_conn_take_output(s, buf, sizeof(buf));
	BIO_write(rin, buf, n);
	r = SSL_do_handshake(raw);
	ok(r <= 0 && SSL_get_error(raw, r) == SSL_ERROR_SSL, "raw client's handshake fails on the alert");
	ERR_clear_error();
	is_int(tls_conn_read(s, plain, sizeof(plain)), -1, "dead conn keeps returning -1");
	is_int(tls_conn_write(s, "x", 1), -1, "dead conn refuses writes");
	is_int(tls_conn_feed(s, "x", 1), -1, "dead conn refuses input");
	ok(!tls_conn_handshake_done(s), "no handshake");
	tls_conn_free(s);
	SSL_free(raw);
	SSL_CTX_free(raw_ctx);
}

static void test_garbage(struct tls_ctx *sctx, struct tls_ctx *cctx)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: relay.example\r\n\r\n";
	static const unsigned char junk_record[] = {
		0x17, 0x03, 0x03, 0x00, 0x20,
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
		17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
	};
	struct end s, c, g;
	char buf[256];

	/* A good pair half-way through its handshake... */
	make_pair(&s, &c, sctx, cctx, "localhost");
	drain(&c);
	move(&c, &s);
	drain(&s);
	ok(!tls_conn_handshake_done(c.t), "good pair is mid-handshake");

	/* ...while another session on the same ctx is fed garbage. */
	end_init(&g, tls_conn_new(sctx, 1, NULL), 256);
	is_int(tls_conn_feed(g.t, http, sizeof(http) - 1), 0, "garbage accepted as input");
	is_int(tls_conn_read(g.t, buf, sizeof(buf)), -1, "garbage: fatal error");
	ok(strncmp(tls_conn_error(g.t), "handshake failed: ", 18) == 0 && strlen(tls_conn_error(g.t)) > 18,
	   "garbage: error text \"%s\"", tls_conn_error(g.t));
	ok(ERR_peek_error() == 0, "garbage left nothing in the error queue");

	/* The good pair finishes as if nothing happened. */
	ok(pump(&s, &c) >= 0 && tls_conn_handshake_done(s.t) && tls_conn_handshake_done(c.t),
	   "interleaved pair completes its handshake");
	is_str(tls_conn_error(s.t), "", "and has no error");
	tls_conn_write(c.t, "DATA\r\n", 6);
	pump(&s, &c);
	ok(got_is(&s, "DATA\r\n"), "and carries data");

	/* A forged record after the handshake. */
	tls_conn_feed(s.t, junk_record, sizeof(junk_record));
	is_int(tls_conn_read(s.t, buf, sizeof(buf)), -1, "forged record: fatal error");
	ok(strncmp(tls_conn_error(s.t), "read failed: ", 13) == 0, "forged record: \"%s\"", tls_conn_error(s.t));
	ok(ERR_peek_error() == 0, "error queue empty again");
	end_free(&s);
	end_free(&c);
	end_free(&g);

	/* A fresh pair on the same ctx. */
	ok(handshake_pair(&s, &c, sctx, cctx) == 0, "fresh pair after the failures: handshake");
	is_str(tls_conn_error(s.t), "", "fresh pair: no stale error");
	tls_conn_write(s.t, "250 ok\r\n", 8);
	pump(&s, &c);
	ok(got_is(&c, "250 ok\r\n"), "fresh pair carries data");
	end_free(&s);
	end_free(&c);
}

static void test_close_notify(struct tls_ctx *sctx, struct tls_ctx *cctx)
{
	struct end s, c;
	char buf[64];

	if (handshake_pair(&s, &c, sctx, cctx) < 0) {
		ok(0, "close_notify pair handshake");
		return;
	}
	tls_conn_write(c.t, "QUIT\r\n", 6);
	tls_conn_shutdown(c.t);
	ok(tls_conn_output_pending(c.t) > 0, "client's close_notify waits in the output");
	is_int(tls_conn_write(c.t, "late", 4), -1, "no writes after shutdown");
	is_str(tls_conn_error(c.t), "write after shutdown", "... and says so");
	pump(&s, &c);
	ok(got_is(&s, "QUIT\r\n"), "server got the data sent before close_notify");
	ok(s.eof, "server reads TLS_EOF");
	is_int(tls_conn_read(s.t, buf, sizeof(buf)), TLS_EOF, "TLS_EOF again on the next read");
	ok(!c.eof, "client has not seen the server's close_notify yet");
	tls_conn_write(s.t, "221 bye\r\n", 9);
	tls_conn_shutdown(s.t);
	pump(&s, &c);
	ok(got_is(&c, "221 bye\r\n"), "client got the server's last words");
	ok(c.eof, "client reads TLS_EOF");
	ok(!s.err && !c.err, "a clean close is not an error");
	end_free(&s);
	end_free(&c);

	/* Shutdown before any handshake: nothing to send, nothing breaks. */
	make_pair(&s, &c, sctx, cctx, "localhost");
	tls_conn_shutdown(s.t);
	is_int(tls_conn_output_pending(s.t), 0, "shutdown before the handshake sends nothing");
	ok(ERR_peek_error() == 0, "error queue empty after an early shutdown");
	end_free(&s);
	end_free(&c);
}

static void test_refcount(void)
{
	struct tls_ctx *sctx = NULL, *cctx = NULL;
	char err[256];
	struct end s, c;

	tls_server_ctx_new(&sctx, cert, key, err, sizeof(err));
	tls_client_ctx_new(&cctx, NULL, err, sizeof(err));
	make_pair(&s, &c, sctx, cctx, "localhost");
	tls_ctx_ref(sctx);
	tls_ctx_unref(sctx);            /* balanced: still ours */
	tls_ctx_unref(sctx);            /* as SIGHUP does: the conns keep it alive */
	tls_ctx_unref(cctx);
	ok(pump(&s, &c) >= 0 && tls_conn_handshake_done(s.t) && tls_conn_handshake_done(c.t),
	   "handshake after the caller dropped its ctx references");
	tls_conn_write(c.t, "NOOP\r\n", 6);
	pump(&s, &c);
	ok(got_is(&s, "NOOP\r\n"), "data still flows");
	tls_conn_shutdown(c.t);
	pump(&s, &c);
	ok(s.eof, "and closes cleanly");
	end_free(&s);               /* the last references: ASan checks the ctx is freed */
	end_free(&c);
	tls_ctx_unref(NULL);
	tls_conn_free(NULL);
}

/* Handshake with the given session (NULL: none); returns the client's new
 * session and whether the server resumed. */
static SSL_SESSION *resume(struct tls_ctx *sctx, struct tls_ctx *cctx, SSL_SESSION *sess,
			   int max_version, int *reused, int *done)
{
	struct end s, c;
	SSL_SESSION *got;

	make_pair(&s, &c, sctx, cctx, "localhost");
	if (max_version)
		SSL_set_max_proto_version(tls_conn_ssl(c.t), max_version);
	if (sess != NULL)
		SSL_set_session(tls_conn_ssl(c.t), sess);
	pump(&s, &c);
	*done = tls_conn_handshake_done(s.t) && tls_conn_handshake_done(c.t);
	*reused = tls_conn_session_reused(s.t) && tls_conn_session_reused(c.t);
	/* Close cleanly: OpenSSL marks the session of an SSL freed without
	 * close_notify as not resumable. */
	tls_conn_shutdown(c.t);
	tls_conn_shutdown(s.t);
	pump(&s, &c);
	got = SSL_get1_session(tls_conn_ssl(c.t));
	end_free(&s);
	end_free(&c);
	return got;
}

static void test_tickets(struct tls_ctx *cctx)
{
	struct tls_ctx *sctx = NULL;
	char err[256];
	int reused, done;
	SSL_SESSION *first, *again;

	tls_server_ctx_new(&sctx, cert, key, err, sizeof(err));
	for (int v = 0; v < 2; v++) {
		const char *name = v ? "TLS 1.2" : "TLS 1.3";
		int maxv = v ? TLS1_2_VERSION : 0;

		first = resume(sctx, cctx, NULL, maxv, &reused, &done);
		ok(first != NULL && SSL_SESSION_is_resumable(first), "%s: client holds a ticket", name);
		again = resume(sctx, cctx, first, maxv, &reused, &done);
		ok(done && reused, "%s: session resumed with the ticket", name);
		SSL_SESSION_free(again);

		is_int(tls_ctx_rotate_keys(sctx), 0, "rotate the ticket key");
		again = resume(sctx, cctx, first, maxv, &reused, &done);
		ok(done && reused, "%s: ticket under the previous key still resumes", name);
		SSL_SESSION_free(again);

		tls_ctx_rotate_keys(sctx);
		again = resume(sctx, cctx, first, maxv, &reused, &done);
		ok(done && !reused, "%s: two rotations later: full handshake", name);
		SSL_SESSION_free(again);
		SSL_SESSION_free(first);
	}
	is_int(tls_ctx_rotate_keys(cctx), -1, "client ctx has no ticket keys");
	tls_ctx_unref(sctx);
	ok(ERR_peek_error() == 0, "error queue empty after the ticket tests");
}

static void test_verify(struct tls_ctx *sctx, struct tls_ctx *cctx)
{
	struct tls_ctx *sys = NULL;
	struct end s, c;
	char err[256];

	make_pair(&s, &c, sctx, cctx, "localhost");
	is_int(tls_conn_set_verify(c.t, "localhost", 1), 0, "require verification of localhost");
	is_int(tls_conn_set_verify(s.t, "localhost", 1), -1, "set_verify refused on a server conn");
	pump(&s, &c);
	ok(tls_conn_handshake_done(c.t), "verified handshake completes");
	is_int(tls_conn_peer_verified(c.t), 1, "peer verified");
	is_int(tls_conn_set_verify(c.t, "localhost", 1), -1, "set_verify refused after the handshake");
	end_free(&s);
	end_free(&c);

	make_pair(&s, &c, sctx, cctx, "mx.example.org");
	tls_conn_set_verify(c.t, "mx.example.org", 1);
	pump(&s, &c);
	ok(c.err && !tls_conn_handshake_done(c.t), "wrong name, required: handshake fails");
	ok(strstr(tls_conn_error(c.t), "certificate verify failed") != NULL
	   && strstr(tls_conn_error(c.t), "hostname mismatch") != NULL,
	   "client error: \"%s\"", tls_conn_error(c.t));
	ok(s.err && strstr(tls_conn_error(s.t), "handshake failed") != NULL,
	   "server sees the alert: \"%s\"", tls_conn_error(s.t));
	end_free(&s);
	end_free(&c);

	make_pair(&s, &c, sctx, cctx, "mx.example.org");
	tls_conn_set_verify(c.t, "mx.example.org", 0);
	pump(&s, &c);
	ok(tls_conn_handshake_done(c.t), "wrong name, opportunistic: handshake completes");
	is_int(tls_conn_peer_verified(c.t), 0, "but the peer is not verified");
	end_free(&s);
	end_free(&c);

	make_pair(&s, &c, sctx, cctx, "localhost");
	tls_conn_set_verify(c.t, "localhost", 0);
	pump(&s, &c);
	is_int(tls_conn_peer_verified(c.t), 1, "right name, opportunistic: verified");
	end_free(&s);
	end_free(&c);

	make_pair(&s, &c, sctx, cctx, "localhost");
	pump(&s, &c);
	is_int(tls_conn_peer_verified(c.t), 0, "no verification asked: not reported verified");
	end_free(&s);
	end_free(&c);

	tls_client_ctx_new(&sys, NULL, err, sizeof(err));
	make_pair(&s, &c, sctx, sys, "localhost");
	tls_conn_set_verify(c.t, "localhost", 1);
	pump(&s, &c);
	ok(c.err && strstr(tls_conn_error(c.t), "self-signed") != NULL,
	   "self-signed cert against the system store: \"%s\"", tls_conn_error(c.t));
	end_free(&s);
	end_free(&c);
	tls_ctx_unref(sys);
	ok(ERR_peek_error() == 0, "error queue empty after the verification tests");
}

int main(void)
{
	struct tls_ctx *sctx = NULL, *cctx = NULL;

	if (make_certs() < 0) {
		printf("1..0 # SKIP cannot make certificates with the openssl command\n");
		remove_certs();
		return 0;
	}
	test_contexts(&sctx, &cctx);
	if (sctx == NULL || cctx == NULL) {
		remove_certs();
		return done_testing();
	}
	test_ctx_errors();
	test_handshake(sctx, cctx);
	test_bulk(sctx, cctx);
	test_early_writes(sctx, cctx);
	test_tls12(sctx, cctx);
	test_old_protocol_refused(sctx);
	test_garbage(sctx, cctx);
	test_close_notify(sctx, cctx);
	test_refcount();
	test_tickets(cctx);
	test_verify(sctx, cctx);
	tls_ctx_unref(sctx);
	tls_ctx_unref(cctx);
	remove_certs();
	return done_testing();
}
