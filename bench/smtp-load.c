/*
 * smtp-load.c - SMTP load generator with per-message latency, plain or
 * STARTTLS (+ AUTH PLAIN); also holds idle sessions for memory checks.
 *
 *   smtp-load [options] HOST:PORT
 *
 * Load mode (default): SESSIONS threads, each a blocking client, share a
 * budget of MESSAGES messages.  A thread connects, reads the greeting,
 * sends EHLO (then STARTTLS, EHLO, AUTH PLAIN with -S / -a), sends up to
 * PER_CONN messages (MAIL, RCPT, DATA, content: no pipelining, like
 * smtp-source), QUITs and starts a new session, until the budget or the
 * time limit is spent.  For each message it measures the time from just
 * before writing the terminating ".\r\n" (the body's last line and its
 * CRLF were written just before, so this is the client sending
 * "\r\n.\r\n") to the end of the server's reply, and prints one line:
 *
 *   smtp-load: mode=plain sessions=20 messages=5000 errors=0 connections=5000
 *     seconds=2.512 rate=1990.4 p50_ms=7.911 p90_ms=.. p99_ms=.. max_ms=..
 *
 * (one line, key=value).  rate counts messages that got a 250 after DATA,
 * over the wall time of the whole run.
 *
 * Idle mode (-i N): opens N sessions one after the other, reads each
 * greeting (with -S also EHLO, STARTTLS, the TLS handshake and EHLO again),
 * prints "smtp-load: ready idle=N tls=0|1" and holds them until SIGTERM /
 * SIGINT or -w seconds, then closes them all and exits.
 *
 * Options:
 *   -s SESSIONS   concurrent sessions (default 20)
 *   -m MESSAGES   messages in all (default 1000)
 *   -k PER_CONN   messages per session before QUIT (default 1; 0: no limit)
 *   -l LENGTH     payload bytes after the headers (default 5120)
 *   -f FROM, -t TO  envelope (default from@example.org, to@example.net)
 *   -H NAME       EHLO name (default smtp-load.localhost)
 *   -S            STARTTLS (certificate not verified: loopback benchmark)
 *   -a USER:PASS  AUTH PLAIN after STARTTLS
 *   -T SECONDS    start no new message after this long (default 120)
 *   -o SECONDS    I/O timeout per read or write (default 30)
 *   -i N          idle mode with N sessions
 *   -w SECONDS    idle mode: hold at most this long (default 60)
 *
 * Exit status: 0 when every message got its 250 (idle mode: every session
 * was opened), 1 otherwise, 2 on usage errors.
 *
 * Build: gcc -O2 -pthread -o smtp-load smtp-load.c -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#define LINE_MAX_LEN 4096
#define ERR_REPORT_MAX 5          /* error messages printed, per run */

struct opts {
	int sessions;
	long messages;
	long per_conn;
	long length;
	const char *from, *to, *helo;
	int starttls;
	const char *auth;           /* user:pass */
	double time_limit;
	int io_timeout;
	long idle;
	double idle_wait;
	struct sockaddr_in addr;
};

/* One client session: a socket, optionally TLS, and a read buffer. */
struct sess {
	int fd;
	SSL *ssl;
	char buf[8192];
	size_t off, len;
};

static struct opts O;
static SSL_CTX *ssl_ctx;
static char *content;            /* headers and payload, without the final "." */
static size_t content_len;
static char *auth_cmd;           /* "AUTH PLAIN base64\r\n" */

static atomic_long next_msg;     /* budget: the next message index */
static atomic_long n_ok, n_err, n_conn;
static atomic_int n_err_printed;
static double *lat;              /* per message index, seconds; < 0: none */
static double t_start;
static volatile sig_atomic_t stop_flag;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report_err(const char *fmt, ...)
{
	n_err++;
	if (atomic_fetch_add(&n_err_printed, 1) >= ERR_REPORT_MAX)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "smtp-load: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- I/O on a session, plain or TLS ---- */

static int sess_write(struct sess *s, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w;
		if (s->ssl) {
			int r = SSL_write(s->ssl, c, n > 1 << 30 ? 1 << 30 : (int)n);
			if (r <= 0)
				return -1;
			w = r;
		} else {
			w = send(s->fd, c, n, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int sess_fill(struct sess *s)
{
	if (s->off > 0 && s->off == s->len)
		s->off = s->len = 0;
	if (s->off > 0) {
		memmove(s->buf, s->buf + s->off, s->len - s->off);
		s->len -= s->off;
		s->off = 0;
	}
	if (s->len == sizeof(s->buf))
		return -1;
	for (;;) {
		ssize_t r;
		if (s->ssl) {
			int k = SSL_read(s->ssl, s->buf + s->len, (int)(sizeof(s->buf) - s->len));
			r = k > 0 ? k : -1;
		} else {
			r = recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len, 0);
			if (r < 0 && errno == EINTR)
				continue;
		}
		if (r <= 0)
			return -1;
		s->len += (size_t)r;
		return 0;
	}
}

/* One reply line without CRLF into line; 0 or -1. */
static int sess_line(struct sess *s, char *line, size_t cap)
{
	for (int guard = 0; guard < 1000; guard++) {
		char *lf = memchr(s->buf + s->off, '\n', s->len - s->off);
		if (lf) {
			size_t n = (size_t)(lf - (s->buf + s->off));
			size_t k = n > 0 && s->buf[s->off + n - 1] == '\r' ? n - 1 : n;
			if (k >= cap)
				k = cap - 1;
			memcpy(line, s->buf + s->off, k);
			line[k] = 0;
			s->off += n + 1;
			return 0;
		}
		if (sess_fill(s))
			return -1;
	}
	return -1;
}

/* A whole reply; its code (the last line's), or -1.  text gets the last
 * line, for error messages; ehlo_tls is set when a line says STARTTLS. */
static int sess_reply(struct sess *s, char *text, size_t cap, int *ehlo_tls)
{
	char line[LINE_MAX_LEN];
	for (int i = 0; i < 200; i++) {
		if (sess_line(s, line, sizeof(line)))
			return -1;
		if (strlen(line) < 3)
			return -1;
		if (ehlo_tls && strlen(line) >= 12 && !strncasecmp(line + 4, "STARTTLS", 8))
			*ehlo_tls = 1;
		if (line[3] != '-') {
			snprintf(text, cap, "%s", line);
			return atoi(line);
		}
	}
	return -1;
}

/* Send a command line and check the reply's code. */
static int command(struct sess *s, const char *cmd, int want, const char *what)
{
	char text[LINE_MAX_LEN];
	if (cmd && sess_write(s, cmd, strlen(cmd))) {
		report_err("%s: write failed", what);
		return -1;
	}
	int code = sess_reply(s, text, sizeof(text), NULL);
	if (code != want) {
		report_err("%s: %s", what, code < 0 ? "no reply (connection lost or timeout)" : text);
		return -1;
	}
	return 0;
}

static void sess_close(struct sess *s)
{
	if (s->ssl) {
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->off = s->len = 0;
}

/* Connect, greeting, EHLO, and STARTTLS / AUTH as asked. */
static int sess_open(struct sess *s)
{
	char cmd[512], text[LINE_MAX_LEN];
	s->ssl = NULL;
	s->off = s->len = 0;
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		report_err("socket: %s", strerror(errno));
		return -1;
	}
	struct timeval tv = { .tv_sec = O.io_timeout };
	int one = 1;
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s->fd, (struct sockaddr *)&O.addr, sizeof(O.addr))) {
		report_err("connect: %s", strerror(errno));
		goto fail;
	}
	n_conn++;
	if (command(s, NULL, 220, "greeting"))
		goto fail;
	snprintf(cmd, sizeof(cmd), "EHLO %s\r\n", O.helo);
	if (!O.starttls)
		return command(s, cmd, 250, "EHLO") ? (sess_close(s), -1) : 0;

	int have_tls = 0;
	if (sess_write(s, cmd, strlen(cmd)) || sess_reply(s, text, sizeof(text), &have_tls) != 250) {
		report_err("EHLO: %s", text);
		goto fail;
	}
	if (!have_tls) {
		report_err("EHLO: the server does not offer STARTTLS");
		goto fail;
	}
	if (command(s, "STARTTLS\r\n", 220, "STARTTLS"))
		goto fail;
	/* Anything buffered before the handshake would be a server bug. */
	s->off = s->len = 0;
	s->ssl = SSL_new(ssl_ctx);
	if (!s->ssl || !SSL_set_fd(s->ssl, s->fd) || SSL_connect(s->ssl) != 1) {
		unsigned long e = ERR_get_error();
		report_err("TLS handshake: %s", e ? ERR_error_string(e, NULL) : "failed");
		ERR_clear_error();
		goto fail;
	}
	if (command(s, cmd, 250, "EHLO after STARTTLS"))
		goto fail;
	if (auth_cmd && command(s, auth_cmd, 235, "AUTH PLAIN"))
		goto fail;
	return 0;
fail:
	sess_close(s);
	return -1;
}

/* One transaction; the latency goes to lat[idx].  0, or -1 when the
 * session is no longer usable. */
static int send_message(struct sess *s, long idx)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>\r\n", O.from);
	if (command(s, cmd, 250, "MAIL"))
		return -1;
	snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\n", O.to);
	if (command(s, cmd, 250, "RCPT"))
		return -1;
	if (command(s, "DATA\r\n", 354, "DATA"))
		return -1;
	if (sess_write(s, content, content_len)) {
		report_err("content: write failed");
		return -1;
	}
	double t0 = now();
	if (command(s, ".\r\n", 250, "end of DATA"))
		return -1;
	lat[idx] = now() - t0;
	n_ok++;
	return 0;
}

static long claim(void)
{
	if (stop_flag || now() - t_start > O.time_limit)
		return -1;
	long i = atomic_fetch_add(&next_msg, 1);
	return i < O.messages ? i : -1;
}

static void *worker(void *arg)
{
	(void)arg;
	struct sess s = { .fd = -1 };
	long idx = claim();
	while (idx >= 0) {
		if (sess_open(&s)) {
			idx = claim();      /* that message counts as failed */
			continue;
		}
		long sent = 0;
		int usable = 1;
		while (idx >= 0) {
			if (send_message(&s, idx)) {
				usable = 0;
				idx = claim();
				break;
			}
			sent++;
			idx = claim();
			if (O.per_conn > 0 && sent >= O.per_conn)
				break;
		}
		if (usable) {
			char text[LINE_MAX_LEN];
			if (sess_write(&s, "QUIT\r\n", 6) == 0)
				sess_reply(&s, text, sizeof(text), NULL);
			if (s.ssl)
				SSL_shutdown(s.ssl);
		}
		sess_close(&s);
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p / 100.0 * (double)n);
	return v[i >= n ? n - 1 : i];
}

static int run_load(void)
{
	lat = malloc(sizeof(*lat) * (size_t)O.messages);
	if (!lat)
		return 1;
	for (long i = 0; i < O.messages; i++)
		lat[i] = -1;
	pthread_t *th = calloc((size_t)O.sessions, sizeof(*th));
	if (!th)
		return 1;
	t_start = now();
	int started = 0;
	for (int i = 0; i < O.sessions; i++) {
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 256 * 1024);
		if (pthread_create(&th[i], &a, worker, NULL) == 0)
			started++;
		else
			th[i] = 0;
		pthread_attr_destroy(&a);
	}
	for (int i = 0; i < O.sessions; i++)
		if (th[i])
			pthread_join(th[i], NULL);
	double secs = now() - t_start;

	size_t n = 0;
	for (long i = 0; i < O.messages; i++)
		if (lat[i] >= 0)
			lat[n++] = lat[i];
	qsort(lat, n, sizeof(*lat), cmp_double);
	long missing = O.messages - (long)n;
	printf("smtp-load: mode=%s sessions=%d messages=%zu errors=%ld connections=%ld "
	       "seconds=%.3f rate=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
	       O.auth ? "tls+auth" : O.starttls ? "tls" : "plain", started, n,
	       (long)n_err, (long)n_conn, secs, secs > 0 ? (double)n / secs : 0,
	       pct(lat, n, 50) * 1e3, pct(lat, n, 90) * 1e3, pct(lat, n, 99) * 1e3,
	       n ? lat[n - 1] * 1e3 : 0);
	fflush(stdout);
	free(lat);
	free(th);
	return n_err || missing ? 1 : 0;
}

static int run_idle(void)
{
	struct sess *ss = calloc((size_t)O.idle, sizeof(*ss));
	if (!ss)
		return 1;
	long opened = 0;
	for (long i = 0; i < O.idle && !stop_flag; i++) {
		ss[i].fd = -1;
		if (sess_open(&ss[i]) == 0)
			opened++;
	}
	printf("smtp-load: ready idle=%ld tls=%d errors=%ld\n", opened, O.starttls, (long)n_err);
	fflush(stdout);
	double until = now() + O.idle_wait;
	while (!stop_flag && now() < until)
		usleep(50 * 1000);
	for (long i = 0; i < O.idle; i++)
		sess_close(&ss[i]);
	free(ss);
	return opened == O.idle ? 0 : 1;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void make_content(void)
{
	char head[2048], date[64];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	int h = snprintf(head, sizeof(head),
			 "From: <%s>\r\nTo: <%s>\r\nSubject: smtp-load test\r\n"
			 "Date: %s\r\nMessage-ID: <%ld.%d@smtp-load.invalid>\r\n\r\n",
			 O.from, O.to, date, (long)t, (int)getpid());
	content = malloc((size_t)h + (size_t)O.length + 4);
	memcpy(content, head, (size_t)h);
	size_t n = (size_t)h;
	/* Payload: lines of up to 78 letters + CRLF, O.length bytes in all,
	 * always ending in CRLF (so the final ".\r\n" completes "\r\n.\r\n"). */
	long left = O.length;
	int k = 0;
	while (left > 0) {
		long line = left > 80 ? 80 : left;
		for (long j = 0; j < line - 2; j++)
			content[n++] = (char)('a' + (k++ % 26));
		if (line >= 2) {
			content[n++] = '\r';
			content[n++] = '\n';
		} else {
			content[n++] = 'x';
		}
		left -= line;
	}
	if (n < 2 || content[n - 1] != '\n') {
		content[n++] = '\r';
		content[n++] = '\n';
	}
	content_len = n;
}

static void make_auth(void)
{
	const char *colon = strchr(O.auth, ':');
	if (!colon) {
		fprintf(stderr, "smtp-load: -a wants USER:PASS\n");
		exit(2);
	}
	size_t ul = (size_t)(colon - O.auth), pl = strlen(colon + 1);
	unsigned char raw[600];
	if (ul + pl + 2 > sizeof(raw)) {
		fprintf(stderr, "smtp-load: -a too long\n");
		exit(2);
	}
	raw[0] = 0;
	memcpy(raw + 1, O.auth, ul);
	raw[1 + ul] = 0;
	memcpy(raw + 2 + ul, colon + 1, pl);
	size_t rl = ul + pl + 2;
	auth_cmd = malloc(4 * ((rl + 2) / 3) + 32);
	int off = sprintf(auth_cmd, "AUTH PLAIN ");
	off += EVP_EncodeBlock((unsigned char *)auth_cmd + off, raw, (int)rl);
	strcpy(auth_cmd + off, "\r\n");
}

static void usage(void)
{
	fprintf(stderr,
		"usage: smtp-load [-s SESSIONS] [-m MESSAGES] [-k PER_CONN] [-l LENGTH]\n"
		"                 [-f FROM] [-t TO] [-H HELO] [-S] [-a USER:PASS]\n"
		"                 [-T SECONDS] [-o SECONDS] [-i IDLE [-w SECONDS]] HOST:PORT\n");
	exit(2);
}

int main(int argc, char **argv)
{
	O = (struct opts){ .sessions = 20, .messages = 1000, .per_conn = 1, .length = 5120,
			   .from = "from@example.org", .to = "to@example.net",
			   .helo = "smtp-load.localhost", .time_limit = 120,
			   .io_timeout = 30, .idle_wait = 60 };
	int c;
	while ((c = getopt(argc, argv, "s:m:k:l:f:t:H:Sa:T:o:i:w:")) != -1) {
		switch (c) {
		case 's': O.sessions = atoi(optarg); break;
		case 'm': O.messages = atol(optarg); break;
		case 'k': O.per_conn = atol(optarg); break;
		case 'l': O.length = atol(optarg); break;
		case 'f': O.from = optarg; break;
		case 't': O.to = optarg; break;
		case 'H': O.helo = optarg; break;
		case 'S': O.starttls = 1; break;
		case 'a': O.auth = optarg; break;
		case 'T': O.time_limit = atof(optarg); break;
		case 'o': O.io_timeout = atoi(optarg); break;
		case 'i': O.idle = atol(optarg); break;
		case 'w': O.idle_wait = atof(optarg); break;
		default: usage();
		}
	}
	if (optind != argc - 1 || O.sessions < 1 || O.sessions > 10000 || O.messages < 1
	    || O.length < 0 || O.io_timeout < 1 || O.idle < 0)
		usage();
	if (O.auth && !O.starttls) {
		fprintf(stderr, "smtp-load: -a needs -S (AUTH is offered only under TLS)\n");
		return 2;
	}

	char host[256];
	snprintf(host, sizeof(host), "%s", argv[optind]);
	char *colon = strrchr(host, ':');
	if (!colon)
		usage();
	*colon = 0;
	O.addr.sin_family = AF_INET;
	O.addr.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &O.addr.sin_addr) != 1) {
		fprintf(stderr, "smtp-load: %s: want an IPv4 address\n", host);
		return 2;
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (O.starttls) {
		ssl_ctx = SSL_CTX_new(TLS_client_method());
		if (!ssl_ctx)
			return 1;
		SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
		/* Every session a full handshake, as for a fresh client. */
		SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
	}
	if (O.auth)
		make_auth();
	make_content();
	int rc = O.idle ? run_idle() : run_load();
	if (ssl_ctx)
		SSL_CTX_free(ssl_ctx);
	return rc;
}
