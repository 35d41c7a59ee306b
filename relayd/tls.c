/*
 * tls.c - TLS sessions over memory BIOs (see tls.h for the contract).
 *
 * Each conn owns an SSL with two BIO_s_mem: `in` holds ciphertext from the
 * network until OpenSSL consumes it, `out` collects what OpenSSL writes
 * for the network.  A memory BIO never blocks, so the only "want" OpenSSL
 * can report is WANT_READ (more input needed); WANT_WRITE is treated the
 * same for safety.  Plaintext written before the handshake completes, or
 * left over when SSL_write asks for a retry, waits in t->pend and is
 * written, in order, by conn_flush on the next call that makes progress.
 *
 * Error-queue discipline: every entry point clears the thread's OpenSSL
 * error queue before an SSL call (SSL_get_error needs that) and drains it
 * before returning, turning what was there into t->err or err[].
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "tls.h"
#include "metrics.h"

/* One session ticket key: AES-256-CBC + HMAC-SHA256, OpenSSL's own scheme. */
struct ticket_key {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
	int valid;
};

struct tls_ctx {
	atomic_int refs;
	int is_server;
	SSL_CTX *ssl_ctx;
	/* Server only: keys[cur] encrypts new tickets, keys[cur ^ 1] (the
	 * previous key) still decrypts.  In the secure heap when OpenSSL has
	 * one.  Guarded by lock, with cur and key_born. */
	CRYPTO_RWLOCK *lock;
	struct ticket_key *keys;
	int cur;
	long long key_born;          /* CLOCK_MONOTONIC seconds */
};

struct tls_conn {
	struct tls_ctx *ctx;         /* one reference */
	SSL *ssl;
	BIO *in, *out;               /* owned by ssl */
	unsigned char *pend;         /* retained plaintext: pend[pend_off..pend_len) */
	size_t pend_off, pend_len, pend_cap;
	unsigned is_server : 1;
	unsigned hs_done : 1;        /* handshake completed (sticky) */
	unsigned failed : 1;         /* fatal error: every call returns -1 */
	unsigned eof : 1;            /* close_notify received */
	unsigned shut : 1;           /* tls_conn_shutdown called */
	unsigned verify_set : 1;     /* tls_conn_set_verify called */
	unsigned verify_required : 1;
	unsigned verify_name : 1;    /* a host name / IP was set to check */
	char err[256];
};

/* ---- error text ---- */

static void errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * err_take - drain the thread's OpenSSL error queue: the earliest error's
 * reason (the root cause: "No such file or directory", "unsupported
 * protocol") into buf, or fallback if the queue was empty.  *mismatch is
 * set if any entry says a private key does not match its certificate.
 */
static void err_take(char *buf, size_t len, const char *fallback, int *mismatch)
{
	unsigned long e, first = 0;
	char text[256];
	const char *reason = text;

	while ((e = ERR_get_error()) != 0) {
		if (first == 0)
			first = e;
		if (mismatch != NULL && ERR_GET_LIB(e) == ERR_LIB_X509
		    && (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH
			|| ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH))
			*mismatch = 1;
	}
	if (first == 0) {
		snprintf(buf, len, "%s", fallback);
		return;
	}
	/* "error:0A000102:SSL routines:func:reason": keep the reason, which
	 * also covers system errors (their text is strerror's). */
	ERR_error_string_n(first, text, sizeof(text));
	for (int colons = 0; colons < 4; colons++) {
		const char *c = strchr(reason, ':');
		if (c == NULL) {
			reason = text;
			break;
		}
		reason = c + 1;
	}
	snprintf(buf, len, "%s", *reason ? reason : text);
}

/* ---- session ticket keys ---- */

static long long mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec;
}

/* Fill k with fresh random material.  0 or -1. */
static int key_generate(struct ticket_key *k)
{
	k->valid = 0;
	if (RAND_bytes(k->name, sizeof(k->name)) <= 0
	    || RAND_priv_bytes(k->aes, sizeof(k->aes)) <= 0
	    || RAND_priv_bytes(k->hmac, sizeof(k->hmac)) <= 0) {
		OPENSSL_cleanse(k, sizeof(*k));
		return -1;
	}
	k->valid = 1;
	return 0;
}

/* Make a new current key, the current one becoming the previous.  The
 * caller holds the write lock.  On failure the current key stays and the
 * previous one is gone, which only forces full handshakes. */
static int keys_rotate_locked(struct tls_ctx *ctx)
{
	struct ticket_key *next = &ctx->keys[ctx->cur ^ 1];

	if (key_generate(next) < 0)
		return -1;
	ctx->cur ^= 1;
	ctx->key_born = mono_now();
	return 0;
}

static int key_set_mac(EVP_MAC_CTX *hctx, struct ticket_key *k)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[3];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
						      k->hmac, sizeof(k->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     digest, 0);
	params[2] = OSSL_PARAM_construct_end();
	return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

/*
 * ticket_key_cb - OpenSSL's ticket hook (SSL_CTX_set_tlsext_ticket_key_evp_cb).
 * Encrypt: current key (rotated first if it is too old), fresh IV; returns
 * 1.  Decrypt: 1 for the current key, 2 (use, then issue a new ticket) for
 * the previous one, 0 (unknown key: full handshake) otherwise.  -1 on
 * internal failure.
 */
static int ticket_key_cb(SSL *s, unsigned char name[16],
			 unsigned char iv[EVP_MAX_IV_LENGTH],
			 EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls_ctx *ctx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(s));
	const EVP_CIPHER *cipher = EVP_aes_256_cbc();
	int ret = -1;

	if (ctx == NULL || ctx->keys == NULL)
		return -1;
	if (enc) {
		if (!CRYPTO_THREAD_write_lock(ctx->lock))
			return -1;
		if (mono_now() - ctx->key_born >= TLS_TICKET_KEY_LIFETIME)
			(void)keys_rotate_locked(ctx);   /* failure: keep using the old key */
		struct ticket_key *k = &ctx->keys[ctx->cur];
		memcpy(name, k->name, sizeof(k->name));
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) > 0
		    && key_set_mac(hctx, k)
		    && EVP_EncryptInit_ex(cctx, cipher, NULL, k->aes, iv) == 1)
			ret = 1;
		CRYPTO_THREAD_unlock(ctx->lock);
		return ret;
	}
	if (!CRYPTO_THREAD_read_lock(ctx->lock))
		return -1;
	ret = 0;
	for (int age = 0; age < 2; age++) {
		struct ticket_key *k = &ctx->keys[ctx->cur ^ age];
		if (!k->valid || CRYPTO_memcmp(name, k->name, sizeof(k->name)) != 0)
			continue;
		if (key_set_mac(hctx, k)
		    && EVP_DecryptInit_ex(cctx, cipher, NULL, k->aes, iv) == 1)
			ret = age == 0 ? 1 : 2;
		else
			ret = -1;
		break;
	}
	CRYPTO_THREAD_unlock(ctx->lock);
	return ret;
}

int tls_ctx_rotate_keys(struct tls_ctx *ctx)
{
	int ret;

	if (ctx == NULL || ctx->keys == NULL)
		return -1;
	if (!CRYPTO_THREAD_write_lock(ctx->lock)) {
		ERR_clear_error();
		return -1;
	}
	ret = keys_rotate_locked(ctx);
	CRYPTO_THREAD_unlock(ctx->lock);
	ERR_clear_error();
	return ret;
}

/* ---- contexts ---- */

/* Refuse to prompt for a key passphrase: a daemon has no terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf, (void)size, (void)rwflag, (void)arg;
	return 0;
}

static void ctx_free(struct tls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	SSL_CTX_free(ctx->ssl_ctx);
	if (ctx->keys != NULL)
		OPENSSL_secure_clear_free(ctx->keys, 2 * sizeof(*ctx->keys));
	CRYPTO_THREAD_lock_free(ctx->lock);
	free(ctx);
}

/* A context with the policy common to both sides (see tls.h). */
static struct tls_ctx *ctx_alloc(int is_server)
{
	struct tls_ctx *ctx = calloc(1, sizeof(*ctx));

	if (ctx == NULL)
		return NULL;
	atomic_init(&ctx->refs, 1);
	ctx->is_server = is_server;
	ctx->ssl_ctx = SSL_CTX_new(is_server ? TLS_server_method()
				   : TLS_client_method());
	if (ctx->ssl_ctx == NULL
	    || !SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_2_VERSION))
		goto fail;
	SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_NO_COMPRESSION
			    | SSL_OP_NO_RENEGOTIATION
			    | (is_server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
	/* Partial writes let a retried SSL_write report progress; the retry
	 * buffer (t->pend) may move when it grows; idle sessions give their
	 * 34 KiB of record buffers back. */
	SSL_CTX_set_mode(ctx->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
			 | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
			 | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_default_passwd_cb(ctx->ssl_ctx, no_passphrase);
	SSL_CTX_set_app_data(ctx->ssl_ctx, ctx);
	return ctx;
fail:
	ctx_free(ctx);
	return NULL;
}

/* Server: stateless tickets under our rotating keys, no session cache. */
static int ctx_setup_tickets(struct tls_ctx *ctx)
{
	static const unsigned char sid_ctx[] = "relayd";

	ctx->lock = CRYPTO_THREAD_lock_new();
	ctx->keys = OPENSSL_secure_zalloc(2 * sizeof(*ctx->keys));
	if (ctx->lock == NULL || ctx->keys == NULL
	    || key_generate(&ctx->keys[0]) < 0)
		return -1;
	ctx->cur = 0;
	ctx->key_born = mono_now();
	if (!SSL_CTX_set_session_id_context(ctx->ssl_ctx, sid_ctx, sizeof(sid_ctx) - 1))
		return -1;
	SSL_CTX_set_session_cache_mode(ctx->ssl_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx->ssl_ctx, ticket_key_cb);
	return 0;
}

int tls_server_ctx_new(struct tls_ctx **out, const char *cert_file,
		       const char *key_file, char *err, size_t errlen)
{
	struct tls_ctx *ctx = NULL;
	char why[256];
	int mismatch = 0;

	*out = NULL;
	ERR_clear_error();
	if (cert_file == NULL || *cert_file == 0 || key_file == NULL || *key_file == 0) {
		errf(err, errlen, "TLS needs both a certificate file and a key file");
		return -1;
	}
	if ((ctx = ctx_alloc(1)) == NULL) {
		err_take(why, sizeof(why), "out of memory", NULL);
		errf(err, errlen, "cannot create a TLS context: %s", why);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx->ssl_ctx, cert_file) != 1) {
		err_take(why, sizeof(why), "unknown error", NULL);
		errf(err, errlen, "%s: cannot load certificate: %s", cert_file, why);
		goto fail;
	}
	/* OpenSSL compares the key with the certificate while loading it;
	 * SSL_CTX_check_private_key repeats the check in case it did not. */
	if (SSL_CTX_use_PrivateKey_file(ctx->ssl_ctx, key_file, SSL_FILETYPE_PEM) != 1
	    || SSL_CTX_check_private_key(ctx->ssl_ctx) != 1) {
		err_take(why, sizeof(why), "unknown error", &mismatch);
		if (mismatch)
			errf(err, errlen, "%s: private key does not match certificate %s (%s)",
			     key_file, cert_file, why);
		else
			errf(err, errlen, "%s: cannot load private key: %s", key_file, why);
		goto fail;
	}
	SSL_CTX_set_dh_auto(ctx->ssl_ctx, 1);
	if (ctx_setup_tickets(ctx) < 0) {
		err_take(why, sizeof(why), "out of memory", NULL);
		errf(err, errlen, "cannot set up TLS session tickets: %s", why);
		goto fail;
	}
	ERR_clear_error();
	*out = ctx;
	return 0;
fail:
	ctx_free(ctx);
	ERR_clear_error();
	return -1;
}

int tls_client_ctx_new(struct tls_ctx **out, const char *ca_file,
		       char *err, size_t errlen)
{
	struct tls_ctx *ctx;
	char why[256];

	*out = NULL;
	ERR_clear_error();
	if ((ctx = ctx_alloc(0)) == NULL) {
		err_take(why, sizeof(why), "out of memory", NULL);
		errf(err, errlen, "cannot create a TLS context: %s", why);
		goto fail;
	}
	if (ca_file != NULL && *ca_file != 0) {
		if (SSL_CTX_load_verify_locations(ctx->ssl_ctx, ca_file, NULL) != 1) {
			err_take(why, sizeof(why), "unknown error", NULL);
			errf(err, errlen, "%s: cannot load CA certificates: %s", ca_file, why);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx->ssl_ctx) != 1) {
		err_take(why, sizeof(why), "unknown error", NULL);
		errf(err, errlen, "cannot load the system CA store: %s", why);
		goto fail;
	}
	/* Verification runs anyway and is recorded; tls_conn_set_verify
	 * decides per connection whether a failure aborts. */
	SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_NONE, NULL);
	ERR_clear_error();
	*out = ctx;
	return 0;
fail:
	ctx_free(ctx);
	ERR_clear_error();
	return -1;
}

void tls_ctx_ref(struct tls_ctx *ctx)
{
	if (ctx != NULL)
		atomic_fetch_add(&ctx->refs, 1);
}

void tls_ctx_unref(struct tls_ctx *ctx)
{
	if (ctx != NULL && atomic_fetch_sub(&ctx->refs, 1) == 1)
		ctx_free(ctx);
}

/* ---- sessions ---- */

static int is_ip_literal(const char *s)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int is_server,
			      const char *sni_or_null)
{
	struct tls_conn *t;
	BIO *in = NULL, *out = NULL;

	if (ctx == NULL || !is_server != !ctx->is_server)
		return NULL;
	ERR_clear_error();
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->is_server = !!is_server;
	t->ssl = SSL_new(ctx->ssl_ctx);
	in = BIO_new(BIO_s_mem());
	out = BIO_new(BIO_s_mem());
	if (t->ssl == NULL || in == NULL || out == NULL) {
		BIO_free(in);
		BIO_free(out);
		goto fail;
	}
	/* Empty means "try again later", never end of file. */
	BIO_set_mem_eof_return(in, -1);
	BIO_set_mem_eof_return(out, -1);
	SSL_set_bio(t->ssl, in, out);   /* t->ssl owns both from here */
	t->in = in;
	t->out = out;
	if (is_server) {
		SSL_set_accept_state(t->ssl);
	} else {
		SSL_set_connect_state(t->ssl);
		/* RFC 6066: no IP literals in SNI. */
		if (sni_or_null != NULL && *sni_or_null != 0 && !is_ip_literal(sni_or_null)
		    && !SSL_set_tlsext_host_name(t->ssl, sni_or_null))
			goto fail;
	}
	tls_ctx_ref(ctx);
	t->ctx = ctx;
	return t;
fail:
	SSL_free(t->ssl);
	free(t);
	ERR_clear_error();
	return NULL;
}

void tls_conn_free(struct tls_conn *t)
{
	struct tls_ctx *ctx;

	if (t == NULL)
		return;
	ctx = t->ctx;
	SSL_free(t->ssl);
	free(t->pend);
	free(t);
	tls_ctx_unref(ctx);
}

/* Mark t dead with "<what>: <OpenSSL's reason>" and drain the error queue. */
static void conn_fail(struct tls_conn *t, const char *what, const char *fallback)
{
	char why[200];
	long v;

	err_take(why, sizeof(why), fallback, NULL);
	v = SSL_get_verify_result(t->ssl);
	if (!t->is_server && t->verify_required && v != X509_V_OK)
		snprintf(t->err, sizeof(t->err), "%s: %s (%s)", what, why,
			 X509_verify_cert_error_string(v));
	else
		snprintf(t->err, sizeof(t->err), "%s: %s", what, why);
	t->failed = 1;
	free(t->pend);
	t->pend = NULL;
	t->pend_off = t->pend_len = t->pend_cap = 0;
}

/*
 * conn_result - classify what an SSL call returned (ret as from
 * SSL_do_handshake, SSL_read_ex, SSL_write_ex): 1 done, 0 more input
 * needed, TLS_EOF close_notify, -1 fatal (t is then dead).  The error
 * queue is empty afterwards.
 */
static int conn_result(struct tls_conn *t, int ret, const char *op)
{
	int e;

	if (ret > 0) {
		ERR_clear_error();
		return 1;
	}
	e = SSL_get_error(t->ssl, ret);
	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		ERR_clear_error();
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		t->eof = 1;
		ERR_clear_error();
		return TLS_EOF;
	default:
		conn_fail(t, t->hs_done ? op : "handshake failed",
			  e == SSL_ERROR_SYSCALL ? "unexpected end of input"
			  : "internal error");
		return -1;
	}
}

/* Append plaintext to t->pend.  0 or -1 (out of memory). */
static int pend_append(struct tls_conn *t, const void *buf, size_t len)
{
	if (t->pend_off == t->pend_len)
		t->pend_off = t->pend_len = 0;
	if (len > t->pend_cap - t->pend_len && t->pend_off > 0) {
		/* Moving the unsent bytes is allowed under
		 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER: a retried SSL_write
		 * only needs the same bytes at its (new) start. */
		memmove(t->pend, t->pend + t->pend_off, t->pend_len - t->pend_off);
		t->pend_len -= t->pend_off;
		t->pend_off = 0;
	}
	if (len > t->pend_cap - t->pend_len) {
		size_t need, cap = t->pend_cap ? t->pend_cap : 4096;
		unsigned char *p;

		if (len > SIZE_MAX / 2 - t->pend_len)
			return -1;
		need = t->pend_len + len;
		while (cap < need)
			cap *= 2;
		if ((p = realloc(t->pend, cap)) == NULL)
			return -1;
		t->pend = p;
		t->pend_cap = cap;
	}
	memcpy(t->pend + t->pend_len, buf, len);
	t->pend_len += len;
	return 0;
}

/* Encrypt the retained plaintext once the handshake is done.  Whatever
 * OpenSSL asks to retry stays for the next call.  0 or -1 (t dead). */
static int conn_flush(struct tls_conn *t)
{
	while (t->hs_done && t->pend_off < t->pend_len) {
		size_t n = 0;
		int r;

		ERR_clear_error();
		r = SSL_write_ex(t->ssl, t->pend + t->pend_off,
				 t->pend_len - t->pend_off, &n);
		r = conn_result(t, r, "write failed");
		if (r == -1)
			return -1;
		if (r != 1)
			return 0;
		t->pend_off += n;
	}
	if (t->pend_off == t->pend_len)
		t->pend_off = t->pend_len = 0;
	return 0;
}

/* Advance the handshake with what has been fed: 1 done, 0 not yet,
 * TLS_EOF, -1 fatal.  Retained plaintext goes out as soon as it is done. */
static int conn_handshake(struct tls_conn *t)
{
	int r;

	if (t->hs_done)
		return 1;
	ERR_clear_error();
	r = conn_result(t, SSL_do_handshake(t->ssl), "handshake failed");
	if (r != 1)
		return r;
	t->hs_done = 1;
	metric_inc_label(METRIC_TLS_SESSIONS, t->is_server ? METRIC_TLS_SERVER : METRIC_TLS_CLIENT);
	return conn_flush(t) < 0 ? -1 : 1;
}

int tls_conn_set_verify(struct tls_conn *t, const char *hostname, int required)
{
	int ok = 1;

	if (t == NULL || t->is_server || t->failed || !SSL_in_before(t->ssl))
		return -1;
	ERR_clear_error();
	if (hostname != NULL && *hostname != 0) {
		if (is_ip_literal(hostname)) {
			ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), hostname);
		} else {
			SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			ok = SSL_set1_host(t->ssl, hostname);
		}
	}
	ERR_clear_error();
	if (!ok)
		return -1;
	SSL_set_verify(t->ssl, required ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	t->verify_name = hostname != NULL && *hostname != 0;
	t->verify_set = 1;
	t->verify_required = !!required;
	return 0;
}

int tls_conn_peer_verified(const struct tls_conn *t)
{
	return t != NULL && t->verify_set && t->hs_done
		&& SSL_get0_peer_certificate(t->ssl) != NULL
		&& SSL_get_verify_result(t->ssl) == X509_V_OK;
}

enum tls_peer_trust tls_conn_peer_trust(const struct tls_conn *t)
{
	long v;

	if (t == NULL || !t->hs_done || SSL_get0_peer_certificate(t->ssl) == NULL)
		return TLS_PEER_ANONYMOUS;
	v = SSL_get_verify_result(t->ssl);
	if (v == X509_V_OK)
		return t->verify_name ? TLS_PEER_VERIFIED : TLS_PEER_TRUSTED;
	/* OpenSSL checks the name only once the chain is trusted. */
	if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
		return TLS_PEER_TRUSTED;
	return TLS_PEER_UNTRUSTED;
}

int tls_conn_feed(struct tls_conn *t, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	if (t == NULL || t->failed)
		return -1;
	while (len > 0) {
		int n = len > INT_MAX ? INT_MAX : (int)len;

		ERR_clear_error();
		if (BIO_write(t->in, p, n) != n) {
			conn_fail(t, "feed failed", "out of memory");
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t tls_conn_read(struct tls_conn *t, void *buf, size_t len)
{
	size_t n = 0;
	int r;

	if (t == NULL || t->failed)
		return -1;
	if (t->eof)
		return TLS_EOF;
	if ((r = conn_handshake(t)) != 1)
		return r;
	if (conn_flush(t) < 0)
		return -1;
	if (len == 0)
		return 0;
	if (len > INT_MAX)
		len = INT_MAX;
	ERR_clear_error();
	r = conn_result(t, SSL_read_ex(t->ssl, buf, len, &n), "read failed");
	return r == 1 ? (ssize_t)n : r;
}

int tls_conn_write(struct tls_conn *t, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	if (t == NULL || t->failed)
		return -1;
	if (t->shut) {
		snprintf(t->err, sizeof(t->err), "write after shutdown");
		return -1;
	}
	if (len == 0)
		return 0;
	if (!t->hs_done || t->pend_off < t->pend_len) {
		/* Keep the order: behind what is already waiting. */
		if (pend_append(t, buf, len) < 0) {
			conn_fail(t, "write failed", "out of memory");
			return -1;
		}
		/* Starts a client's handshake; flushes once it is done. */
		int r = conn_handshake(t);
		if (r == -1 || (r == 1 && conn_flush(t) < 0))
			return -1;
		return 0;
	}
	while (len > 0) {
		size_t n = 0;
		int r;

		ERR_clear_error();
		r = conn_result(t, SSL_write_ex(t->ssl, p, len, &n), "write failed");
		if (r == -1)
			return -1;
		if (r != 1) {
			/* Retry later with the same bytes, from t->pend. */
			if (pend_append(t, p, len) < 0) {
				conn_fail(t, "write failed", "out of memory");
				return -1;
			}
			return 0;
		}
		p += n;
		len -= n;
	}
	return 0;
}

size_t tls_conn_take_output(struct tls_conn *t, void *buf, size_t len)
{
	int n;

	if (t == NULL || len == 0)
		return 0;
	n = BIO_read(t->out, buf, len > INT_MAX ? INT_MAX : (int)len);
	return n > 0 ? (size_t)n : 0;
}

size_t tls_conn_output_pending(const struct tls_conn *t)
{
	return t != NULL ? BIO_ctrl_pending(t->out) : 0;
}

size_t tls_conn_input_pending(const struct tls_conn *t)
{
	return t != NULL ? BIO_ctrl_pending(t->in) : 0;
}

void tls_conn_shutdown(struct tls_conn *t)
{
	if (t == NULL || t->failed || t->shut)
		return;
	t->shut = 1;
	if (!t->hs_done)
		return;                 /* nothing to close; SSL_shutdown would fail */
	if (conn_flush(t) < 0)
		return;
	ERR_clear_error();
	(void)SSL_shutdown(t->ssl);     /* 0: sent ours; 1: both sent */
	ERR_clear_error();
}

int tls_conn_handshake_done(const struct tls_conn *t)
{
	return t != NULL && t->hs_done;
}

static const SSL_CIPHER *conn_cipher(const struct tls_conn *t)
{
	return t != NULL && t->hs_done ? SSL_get_current_cipher(t->ssl) : NULL;
}

const char *tls_conn_version(const struct tls_conn *t)
{
	return conn_cipher(t) != NULL ? SSL_get_version(t->ssl) : "(none)";
}

const char *tls_conn_cipher(const struct tls_conn *t)
{
	const SSL_CIPHER *c = conn_cipher(t);

	return c != NULL ? SSL_CIPHER_get_name(c) : "(none)";
}

int tls_conn_cipher_bits(const struct tls_conn *t)
{
	const SSL_CIPHER *c = conn_cipher(t);

	return c != NULL ? SSL_CIPHER_get_bits(c, NULL) : 0;
}

int tls_conn_session_reused(const struct tls_conn *t)
{
	return t != NULL && t->hs_done && SSL_session_reused(t->ssl);
}

const char *tls_conn_error(const struct tls_conn *t)
{
	return t != NULL ? t->err : "";
}

void tls_conn_received_info(const struct tls_conn *t, char *buf, size_t len)
{
	const SSL_CIPHER *c = conn_cipher(t);
	int alg_bits = 0, bits;

	if (buf == NULL || len == 0)
		return;
	buf[0] = 0;
	if (c == NULL)
		return;
	bits = SSL_CIPHER_get_bits(c, &alg_bits);
	snprintf(buf, len, "(using %s with cipher %s (%d/%d bits))",
		 SSL_get_version(t->ssl), SSL_CIPHER_get_name(c), bits, alg_bits);
}

struct ssl_st *tls_conn_ssl(struct tls_conn *t)
{
	return t != NULL ? t->ssl : NULL;
}
