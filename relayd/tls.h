/*
 * tls.h - TLS sessions over memory BIOs (OpenSSL 3), for the SMTP server
 * (STARTTLS, implicit TLS on 465) and the delivery client (STARTTLS).
 *
 * The module knows nothing of sockets, libuv or the rest of relayd: the
 * connection layer moves bytes in and out.  Per network read:
 *
 *	tls_conn_feed(t, ciphertext, n);
 *	while ((r = tls_conn_read(t, buf, sizeof(buf))) > 0)
 *		handle plaintext buf[0..r);
 *	r == 0: wait for more input; r == TLS_EOF: peer closed; r == -1: fatal
 *	while ((n = tls_conn_take_output(t, out, sizeof(out))) > 0)
 *		write out[0..n) to the socket;
 *
 * and after every tls_conn_write / tls_conn_shutdown, take the output the
 * same way.  Output can appear after any call that drives the protocol
 * (read, write, shutdown): the handshake, alerts, session tickets and
 * TLS 1.3 key updates all go out through tls_conn_take_output, so check
 * tls_conn_output_pending after each of them.
 *
 * Ownership.  A struct tls_ctx is reference counted: *_ctx_new returns it
 * with one reference, owned by the caller; every tls_conn takes its own.
 * SIGHUP builds a new ctx, swaps the caller's pointer and unrefs the old
 * one: sessions in progress keep the old certificate until they end.  A
 * struct tls_conn is owned by the caller and freed with tls_conn_free; the
 * strings returned by its getters live as long as the conn.
 *
 * Errors.  Functions return 0 / a count, or -1; a conn that returned -1 is
 * dead (every later call returns -1) and tls_conn_error() says why, as a
 * single line for the logs.  Every function leaves the calling thread's
 * OpenSSL error queue empty, so one session's failure never shows up as
 * another's.  Nothing here aborts or logs.
 *
 * Threads.  A tls_conn is used by one thread at a time.  tls_ctx_ref /
 * tls_ctx_unref and tls_ctx_rotate_keys may be called from any thread.
 *
 * Memory.  Ciphertext given to tls_conn_feed is held until tls_conn_read
 * consumes it, so the caller bounds it: feed what one socket read returned,
 * then call tls_conn_read until it returns 0 before feeding more (plaintext
 * can still be waiting inside even when no new bytes arrived).  Pause
 * socket reads while tls_conn_input_pending() is large.  tls_conn_read
 * never returns more than len bytes; OpenSSL holds at most one decrypted
 * record (16 KiB) beyond that.  Ciphertext output grows with what the
 * caller writes and is the caller's to pace (tls_conn_output_pending).
 *
 * STARTTLS: plaintext the caller had buffered after the STARTTLS command
 * (or after the server's 220 reply, on the client side) must be discarded,
 * never fed here (DESIGN §7, CVE-2011-0411).
 */
#ifndef RELAYD_TLS_H
#define RELAYD_TLS_H

#include <stddef.h>
#include <sys/types.h>

struct ssl_st;                   /* OpenSSL's SSL, for tls_conn_ssl only */

#define TLS_EOF (-2)             /* tls_conn_read: the peer sent close_notify */

/* Session ticket keys are replaced after this long (see tls_ctx_rotate_keys). */
#define TLS_TICKET_KEY_LIFETIME (12 * 3600)

/* ---- contexts ---- */

struct tls_ctx;

/*
 * tls_server_ctx_new - a server context for cert_file (PEM, the leaf
 * followed by its intermediates) and key_file (PEM, unencrypted: a key with
 * a passphrase is refused rather than prompted for).  The key must match
 * the certificate.
 *
 * Policy: TLS 1.2 minimum, 1.3 preferred; the server's cipher order wins;
 * no compression; no renegotiation; no 0-RTT; DHE groups chosen by OpenSSL
 * for TLS 1.2 DHE suites.  Resumption uses stateless session tickets only
 * (no server-side session cache to grow).
 *
 * Ticket keys: OpenSSL 3 draws its ticket keys once in SSL_CTX_new and
 * never rotates them (checked in ssl/ssl_lib.c), so this module keeps its
 * own: a current key that encrypts new tickets and the previous key that
 * still decrypts (tickets it opens are renewed).  The current key is
 * replaced once it is TLS_TICKET_KEY_LIFETIME old, checked whenever a
 * ticket is issued, so no timer is required; a ticket thus stays valid
 * 12-24h, more than the 2h session lifetime.  Keys exist only in memory:
 * a restart or a SIGHUP (new ctx) invalidates outstanding tickets, which
 * only costs a full handshake.
 *
 * Returns 0 and *out, or -1 with a one-line reason in err (naming the file
 * and giving OpenSSL's reason, e.g. "/etc/relayd/key.pem: private key does
 * not match certificate /etc/relayd/cert.pem (key values mismatch)").
 */
int tls_server_ctx_new(struct tls_ctx **out, const char *cert_file,
		       const char *key_file, char *err, size_t errlen);

/*
 * tls_client_ctx_new - a client context (delivery side): TLS 1.2 minimum,
 * no compression, no renegotiation; certificates are checked against
 * ca_file (PEM bundle) or, when ca_file is NULL or "", the system store.
 * Verification is off by default and chosen per connection
 * (tls_conn_set_verify).  Returns 0 or -1 with a reason in err.
 */
int tls_client_ctx_new(struct tls_ctx **out, const char *ca_file,
		       char *err, size_t errlen);

/* Take / drop a reference; the last unref frees the context.  NULL is ignored. */
void tls_ctx_ref(struct tls_ctx *ctx);
void tls_ctx_unref(struct tls_ctx *ctx);

/*
 * tls_ctx_rotate_keys - server contexts: replace the ticket encryption key
 * now (the current key becomes the previous one, the previous one is
 * destroyed).  Optional: rotation also happens by itself (see
 * tls_server_ctx_new).  Returns 0, or -1 for a client context or if the
 * random generator failed (the current key stays).
 */
int tls_ctx_rotate_keys(struct tls_ctx *ctx);

/* ---- sessions ---- */

struct tls_conn;

/*
 * tls_conn_new - a session on ctx (which gains a reference).  is_server
 * must match the kind of ctx.  sni_or_null (clients only) is sent as the
 * server name.  NULL on allocation failure or mismatch.
 *
 * A server waits for the ClientHello.  A client's handshake starts at its
 * first tls_conn_read or tls_conn_write call: call tls_conn_read once
 * (it returns 0) and send the output.
 */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int is_server,
			      const char *sni_or_null);

/* Free the session and drop its ctx reference.  Sends nothing; call
 * tls_conn_shutdown first for a clean close (OpenSSL marks the session of
 * a conn freed without it as not resumable).  NULL is ignored. */
void tls_conn_free(struct tls_conn *t);

/*
 * tls_conn_set_verify - client only, before the handshake starts: check
 * the server's chain against the ctx's CAs and, if hostname is not NULL,
 * that the certificate names it (RFC 6125; a wildcard only as the whole
 * leftmost label).  required: a failed check aborts the handshake;
 * otherwise the handshake goes on and tls_conn_peer_verified() tells.
 * Returns 0 or -1.
 */
int tls_conn_set_verify(struct tls_conn *t, const char *hostname, int required);

/* 1 if the peer presented a certificate that passed tls_conn_set_verify's
 * checks (chain, and name if one was given), else 0. */
int tls_conn_peer_verified(const struct tls_conn *t);

/*
 * tls_conn_peer_trust - what the client knows of the server's certificate
 * once the handshake is done, in Postfix's words for its log line:
 * anonymous (no certificate), untrusted (the chain does not verify),
 * trusted (the chain verifies; the name was not checked or did not match),
 * verified (chain and the name given to tls_conn_set_verify).
 */
enum tls_peer_trust {
	TLS_PEER_ANONYMOUS, TLS_PEER_UNTRUSTED, TLS_PEER_TRUSTED, TLS_PEER_VERIFIED
};
enum tls_peer_trust tls_conn_peer_trust(const struct tls_conn *t);

/* Hand over ciphertext received from the network (copied).  Returns 0, or
 * -1 if the conn is dead or memory ran out.  Does not process it:
 * tls_conn_read does. */
int tls_conn_feed(struct tls_conn *t, const void *buf, size_t len);

/*
 * tls_conn_read - drive the handshake and decrypt: copy up to len bytes of
 * plaintext into buf.  Returns the count (> 0); 0 when nothing is
 * available now (more input needed, or the handshake is still running);
 * TLS_EOF once the peer has sent close_notify (then tls_conn_shutdown to
 * answer); -1 on a fatal error (bad record, failed handshake, refused
 * protocol version...): the conn is dead, an alert for the peer may be
 * waiting in the output (best effort to send it), tls_conn_error says why.
 */
ssize_t tls_conn_read(struct tls_conn *t, void *buf, size_t len);

/*
 * tls_conn_write - encrypt len bytes of plaintext; the records appear in
 * the output.  Plaintext written before the handshake has completed is
 * retained (copied) and encrypted, in order, as soon as it completes;
 * it is lost if the session fails or is shut down first.  Returns 0, or
 * -1 if the conn is dead, shut down, or memory ran out.
 */
int tls_conn_write(struct tls_conn *t, const void *buf, size_t len);

/* Copy up to len bytes of ciphertext waiting to be sent into buf, and
 * consume them.  Returns the count; 0 when there is nothing. */
size_t tls_conn_take_output(struct tls_conn *t, void *buf, size_t len);

/* Ciphertext waiting to be sent (plaintext retained during the handshake
 * is not counted). */
size_t tls_conn_output_pending(const struct tls_conn *t);

/* Ciphertext fed but not yet processed by tls_conn_read. */
size_t tls_conn_input_pending(const struct tls_conn *t);

/*
 * tls_conn_shutdown - begin a graceful close: queue close_notify in the
 * output (once the handshake is done; before that there is nothing to
 * close).  Later writes fail; reads still return what the peer sends
 * until its own close_notify (TLS_EOF).
 */
void tls_conn_shutdown(struct tls_conn *t);

/* 1 once the handshake has completed (stays 1 afterwards). */
int tls_conn_handshake_done(const struct tls_conn *t);

/* Protocol ("TLSv1.3"), cipher ("TLS_AES_256_GCM_SHA384") and its secret
 * bits (256); meaningful once the handshake is done, "(none)" / 0 before. */
const char *tls_conn_version(const struct tls_conn *t);
const char *tls_conn_cipher(const struct tls_conn *t);
int tls_conn_cipher_bits(const struct tls_conn *t);

/* 1 if the session was resumed from a ticket. */
int tls_conn_session_reused(const struct tls_conn *t);

/* The last fatal error ("handshake failed: unsupported protocol"), or ""
 * if there has been none. */
const char *tls_conn_error(const struct tls_conn *t);

/*
 * tls_conn_received_info - the Postfix-style Received: header fragment
 * "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))"
 * into buf (always NUL-terminated; "" before the handshake is done).
 */
void tls_conn_received_info(const struct tls_conn *t, char *buf, size_t len);

/* The underlying SSL, for what this module does not wrap (tests, session
 * reuse on the client side, DANE).  Owned by t; do not free, do not
 * change its BIOs. */
struct ssl_st *tls_conn_ssl(struct tls_conn *t);

#endif
