/*
 * relay-sendmail.c - sendmail-compatible injection: a message on standard
 * input, recipients as arguments or (-t) from its header, into relayd.
 *
 * No queue access: the message goes over SMTP to relayd's own port-25
 * listener on loopback, which relays for trusted_networks without AUTH,
 * so any local user can send without write access to the queue, and the
 * daemon's checks and its durability apply unchanged.  Exit 0 only after
 * relayd's "250 ... queued as ID" to the final dot: the message is then
 * on disk.
 *
 * The whole message is read before connecting (see sendmail_input.h);
 * memory holds at most the header section and SM_SPOOL_MEM of body.
 * Exit codes are sysexits(3), as sendmail's; messages go to stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "config.h"
#include "text.h"
#include "sendmail_addr.h"
#include "sendmail_headers.h"
#include "sendmail_input.h"
#include "sendmail_smtp.h"

#define DEFAULT_CONFIG "/etc/relayd/relayd.conf"
#define HEAD_MAX (1024 * 1024)
#define RCPT_MAX 100000          /* addresses in all, a bound on memory */
#define CONNECT_TIMEOUT 30
#define DATA_DONE_TIMEOUT 600    /* the 250 waits for the queue's fsync */

static const char *prog = "relay-sendmail";

struct opts {
	int extract;             /* -t */
	int ignore_dots;         /* -i, -oi */
	int verbose;             /* -v */
	const char *sender;      /* -f, -r */
	const char *fullname;    /* -F */
	const char *config;      /* -C */
	char notify[40];         /* -N, as NOTIFY= wants it */
	const char *ret;         /* -R: FULL or HDRS */
	char envid[101];         /* -V, xtext-encoded */
	char **rcpt;
	int nrcpt;
};

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* s made safe to print (untrusted: arguments, headers, replies). */
static const char *esc(char *buf, size_t size, const char *s)
{
	text_escape(buf, size, s, strlen(s));
	return buf;
}

static int usage(const char *why)
{
	if (why)
		msg("%s", why);
	fprintf(stderr, "usage: %s [-t] [-i] [-f SENDER] [-F NAME] [-C FILE] "
		"[-N DSN] [-R RET] [-V ENVID] [-v] [RCPT...]\n", prog);
	return EX_USAGE;
}

/* -N never | success,failure,delay (any of them) */
static int parse_notify(const char *arg, char *out, size_t size)
{
	static const char *const words[] = { "SUCCESS", "FAILURE", "DELAY" };
	char buf[64];
	out[0] = 0;
	if (strlen(arg) >= sizeof(buf))
		return -1;
	if (!strcasecmp(arg, "never")) {
		snprintf(out, size, "NEVER");
		return 0;
	}
	strcpy(buf, arg);
	int seen = 0;
	for (char *save, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		size_t i = 0;
		while (i < 3 && strcasecmp(w, words[i]))
			i++;
		if (i == 3 || (seen & (1 << i)))
			return -1;
		seen |= 1 << i;
		size_t n = strlen(out);
		snprintf(out + n, size - n, "%s%s", n ? "," : "", words[i]);
	}
	return seen ? 0 : -1;
}

/* -V: RFC 3461 §4 xtext. */
static int encode_envid(const char *arg, char *out, size_t size)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)arg; *p; p++) {
		if (*p < 33 || *p > 126 || *p == '+' || *p == '=') {
			if (n + 3 >= size)
				return -1;
			n += (size_t)snprintf(out + n, size - n, "+%02X", *p);
		} else {
			if (n + 1 >= size)
				return -1;
			out[n++] = (char)*p;
		}
	}
	out[n] = 0;
	return n ? 0 : -1;
}

/* -o OPTION: sendmail's long option letters; only "i" means anything. */
static void option_o(struct opts *o, const char *arg)
{
	if (!strcmp(arg, "i"))
		o->ignore_dots = 1;
}

/* -b MODE: deliver (m) is the one mode; -bi (newaliases) has nothing
 * to rebuild.  0 go on, -1 usage error, 1 done. */
static int option_b(const char *arg)
{
	if (!strcmp(arg, "m"))
		return 0;
	if (!strcmp(arg, "i"))
		return 1;
	char e[256];
	msg("-b%s is not supported (only -bm: read a message and send it)",
	    esc(e, sizeof(e), arg));
	return -1;
}

/* Parse the command line.  EX_OK to go on, -1 to exit 0 at once, or an
 * exit code. */
static int parse_args(struct opts *o, int argc, char **argv)
{
	int c, rc;
	opterr = 0;
	while ((c = getopt(argc, argv, ":A:B:b:C:F:f:GL:h:iN:nmO:o:q:R:r:tUV:vX:")) != -1) {
		switch (c) {
		case 't': o->extract = 1; break;
		case 'i': o->ignore_dots = 1; break;
		case 'v': o->verbose = 1; break;
		case 'f': case 'r': o->sender = optarg; break;
		case 'F': o->fullname = optarg; break;
		case 'C': o->config = optarg; break;
		case 'o': option_o(o, optarg); break;
		case 'b':
			if ((rc = option_b(optarg)))
				return rc < 0 ? usage(NULL) : -1;
			break;
		case 'B':
			if (strcasecmp(optarg, "7BIT") && strcasecmp(optarg, "8BITMIME"))
				return usage("-B takes 7BIT or 8BITMIME");
			break;    /* 8-bit content is detected and declared anyway */
		case 'N':
			if (parse_notify(optarg, o->notify, sizeof(o->notify)))
				return usage("-N takes never, or success,failure,delay");
			break;
		case 'R':
			if (!strcasecmp(optarg, "full"))
				o->ret = "FULL";
			else if (!strcasecmp(optarg, "hdrs"))
				o->ret = "HDRS";
			else
				return usage("-R takes full or hdrs");
			break;
		case 'V':
			if (encode_envid(optarg, o->envid, sizeof(o->envid)))
				return usage("-V: envelope id empty or too long");
			break;
		case 'q':
			return usage("-q: queue runs are relayd's; see relayctl flush");
		case 'A': case 'G': case 'L': case 'h': case 'n': case 'm':
		case 'O': case 'U': case 'X':
			break;    /* accepted and ignored, as by sendmail */
		case ':':
			fprintf(stderr, "%s: option -%c needs an argument\n", prog, optopt);
			return usage(NULL);
		default:
			fprintf(stderr, "%s: unknown option -%c\n", prog, optopt);
			return usage(NULL);
		}
	}
	o->rcpt = argv + optind;
	o->nrcpt = argc - optind;
	return EX_OK;
}

/* Load the configuration; warnings are shown only with errors. */
static int load_config(struct config *cfg, const char *path)
{
	if (config_load_quiet(cfg, path, stderr) == 0)
		return 0;
	msg("%s: cannot use this configuration", path);
	return -1;
}

/* The first smtp_listen address that can be reached on loopback and
 * relays for it: a wildcard becomes the loopback address of its family.
 * Fills ss, returns 0; -1 when there is none. */
static int listener(const struct config *cfg, size_t *from,
		    struct sockaddr_storage *ss, socklen_t *len)
{
	for (size_t i = *from; i < cfg->smtp_listen.n; i++) {
		const struct config_addr *a = &cfg->smtp_listen.v[i];
		memset(ss, 0, sizeof(*ss));
		if (a->ss.ss_family == AF_INET || (a->ss.ss_family == AF_UNSPEC &&
						   !strcasecmp(a->host, "localhost"))) {
			struct sockaddr_in *sin = (struct sockaddr_in *)ss;
			const struct sockaddr_in *l = (const struct sockaddr_in *)&a->ss;
			sin->sin_family = AF_INET;
			sin->sin_addr.s_addr = a->ss.ss_family == AF_INET ?
					       l->sin_addr.s_addr : INADDR_ANY;
			if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
				sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127)
				continue;
			sin->sin_port = htons(a->port);
			*len = sizeof(*sin);
		} else if (a->ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
			*sin6 = *(const struct sockaddr_in6 *)&a->ss;
			if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
				sin6->sin6_addr = in6addr_loopback;
			if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
				continue;
			sin6->sin6_port = htons(a->port);
			*len = sizeof(*sin6);
		} else {
			continue;
		}
		if (!config_cidr_match(&cfg->trusted_networks, (struct sockaddr *)ss))
			continue;
		*from = i + 1;
		return 0;
	}
	return -1;
}

/* What relay-sendmail hands to relayd. */
struct envelope {
	char sender[SM_ADDR_MAX + 1];   /* "" for the null sender */
	struct sm_addr_list rcpt;
	int utf8;                       /* an address needs SMTPUTF8 */
	char user_addr[SM_ADDR_MAX + 1];
	char fullname[256];
};

/* One address (-f, a login name): exactly one mailbox. */
static int one_address(const char *arg, const char *domain, char *out,
		       size_t size, const char *what)
{
	struct sm_addr_list l = { .limit = 2 };
	const char *err = NULL;
	int rc = sm_addr_parse_list(arg, strlen(arg), domain, &l, &err);
	if (!rc && l.n != 1) {
		rc = -1;
		err = "not exactly one address";
	}
	char e[512];
	if (!rc)
		snprintf(out, size, "%s", l.v[0]);
	else
		msg("%s <%s>: %s", what, esc(e, sizeof(e), arg), err);
	sm_addr_free(&l);
	return rc;
}

/* Who runs this: user@hostname, and a full name from the password file. */
static int whoami(struct envelope *env, const struct config *cfg)
{
	struct passwd *pw = getpwuid(getuid());
	if (!pw) {
		msg("cannot find the invoking user (uid %u) in the password database",
		    (unsigned)getuid());
		return EX_NOUSER;
	}
	/* Through the parser: a login name that is no dot-atom gets quoted. */
	if (one_address(pw->pw_name, cfg->hostname, env->user_addr,
			sizeof(env->user_addr), "login name"))
		return EX_NOUSER;
	const char *g = pw->pw_gecos ? pw->pw_gecos : "";
	snprintf(env->fullname, sizeof(env->fullname), "%.*s",
		 (int)strcspn(g, ","), g);
	return EX_OK;
}

static int build_envelope(struct envelope *env, const struct opts *o,
			  const struct config *cfg, struct sm_input *in)
{
	int rc = whoami(env, cfg);
	if (rc)
		return rc;
	env->rcpt.limit = RCPT_MAX;
	if (!o->sender)
		snprintf(env->sender, sizeof(env->sender), "%s", env->user_addr);
	else if (strcmp(o->sender, "") && strcmp(o->sender, "<>") &&
		 one_address(o->sender, cfg->hostname, env->sender,
			     sizeof(env->sender), "sender"))
		return EX_NOUSER;
	const char *err = NULL;
	char e[512];
	for (int i = 0; i < o->nrcpt; i++) {
		if (sm_addr_parse_list(o->rcpt[i], strlen(o->rcpt[i]), cfg->hostname,
				       &env->rcpt, &err)) {
			msg("recipient <%s>: %s", esc(e, sizeof(e), o->rcpt[i]), err);
			return EX_NOUSER;
		}
	}
	if (o->extract) {
		const char *field = "header";
		if (sm_hdr_recipients(in->head, in->head_len, cfg->hostname,
				      &env->rcpt, &err, &field)) {
			msg("%s: %s", field, err);
			return EX_DATAERR;
		}
	}
	if (sm_addr_dedup(&env->rcpt)) {
		msg("out of memory");
		return EX_TEMPFAIL;
	}
	if (!env->rcpt.n) {
		msg("no recipients found in the message header");
		return EX_DATAERR;
	}
	env->utf8 = sm_addr_is_utf8(env->sender);
	for (size_t i = 0; i < env->rcpt.n; i++)
		env->utf8 |= sm_addr_is_utf8(env->rcpt.v[i]);
	return EX_OK;
}

/* A display name as an RFC 5322 phrase: as it is when it is atoms and
 * spaces, a quoted string otherwise; control characters become spaces
 * so that -F cannot add a header line. */
static void phrase(char *out, size_t size, const char *name)
{
	char clean[256];
	size_t n = 0;
	int quote = 0;
	for (const unsigned char *p = (const unsigned char *)name; *p && n + 1 < sizeof(clean); p++) {
		unsigned char c = *p < 32 || *p == 127 ? ' ' : *p;
		if (c != ' ' && c < 128 && !strchr("!#$%&'*+-/=?^_`{|}~", c) &&
		    !(c >= '0' && c <= '9') && !((c | 32) >= 'a' && (c | 32) <= 'z'))
			quote = 1;
		clean[n++] = (char)c;
	}
	clean[n] = 0;
	if (!quote) {
		snprintf(out, size, "%s", clean);
		return;
	}
	size_t k = 0;
	out[k++] = '"';
	for (size_t i = 0; i < n && k + 3 < size; i++) {
		if (clean[i] == '"' || clean[i] == '\\')
			out[k++] = '\\';
		out[k++] = clean[i];
	}
	out[k++] = '"';
	out[k] = 0;
}

/* The From:, Date: and Message-ID: the message lacks, added as sendmail
 * adds them.  relayd would add the last two itself; From: only this side
 * can know.  Returns the length written (buf holds 2048 bytes: enough
 * for the bounded name, address and hostname). */
static size_t missing_headers(char *buf, size_t size, const struct sm_hdr_info *info,
			      const struct envelope *env, const struct opts *o,
			      const struct config *cfg)
{
	size_t n = 0;
	time_t now = time(NULL);
	struct tm tm;
	if (!info->from) {
		const char *addr = env->sender[0] ? env->sender : env->user_addr;
		const char *name = o->fullname ? o->fullname : env->fullname;
		char ph[600];
		phrase(ph, sizeof(ph), name);
		if (ph[0])
			n += (size_t)snprintf(buf + n, size - n, "From: %s <%s>\r\n", ph, addr);
		else
			n += (size_t)snprintf(buf + n, size - n, "From: %s\r\n", addr);
	}
	if (!info->date && n < size) {
		char date[64];
		localtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
		n += (size_t)snprintf(buf + n, size - n, "Date: %s\r\n", date);
	}
	if (!info->msgid && n < size) {
		char stamp[32];
		uint64_t r = 0;
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint64_t)now ^ ((uint64_t)getpid() << 32);
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
		n += (size_t)snprintf(buf + n, size - n, "Message-ID: <%s.%ld.%016llx@%s>\r\n",
				      stamp, (long)getpid(), (unsigned long long)r,
				      cfg->hostname);
	}
	return n < size ? n : size - 1;
}

/* What the message to send is made of. */
struct content {
	struct sm_input *in;
	const char *added;
	size_t added_len;
	uint64_t size;
};

/* The exit code for a failed reply (code) or I/O error (-1). */
static int failure(struct sm_smtp *c, int code, const char *step)
{
	if (code < 0) {
		msg("%s: %s", step, c->err);
		return EX_TEMPFAIL;
	}
	char e[SM_REPLY_MAX * 4];
	msg("%s: relayd said: %s", step, esc(e, sizeof(e), c->reply));
	return code >= 500 ? EX_DATAERR : EX_TEMPFAIL;
}

static int send_content(struct sm_smtp *c, struct content *m)
{
	char buf[65536];
	struct sm_input *in = m->in;
	if (sm_smtp_content(c, in->head, in->head_len) ||
	    sm_smtp_content(c, m->added, m->added_len) ||
	    sm_smtp_content(c, "\r\n", 2))
		return -1;
	uint64_t off = 0;
	const char *data;
	ssize_t n;
	while ((n = sm_spool_read(&in->body, &off, buf, sizeof(buf), &data)) > 0)
		if (sm_smtp_content(c, data, (size_t)n))
			return -1;
	if (n < 0) {
		c->err = strerror(errno);
		return -1;
	}
	return sm_smtp_content_end(c);
}

/* MAIL FROM with the parameters the message needs. */
static int mail_from(struct sm_smtp *c, const struct envelope *env,
		     const struct opts *o, const struct content *m)
{
	char params[256] = "";
	size_t n = 0;
	if (c->ext_size)
		n += (size_t)snprintf(params + n, sizeof(params) - n, " SIZE=%llu",
				      (unsigned long long)m->size);
	if (m->in->eightbit && c->ext_8bitmime)
		n += (size_t)snprintf(params + n, sizeof(params) - n, " BODY=8BITMIME");
	if (env->utf8)
		n += (size_t)snprintf(params + n, sizeof(params) - n, " SMTPUTF8");
	if (c->ext_dsn && o->ret)
		n += (size_t)snprintf(params + n, sizeof(params) - n, " RET=%s", o->ret);
	if (c->ext_dsn && o->envid[0])
		snprintf(params + n, sizeof(params) - n, " ENVID=%s", o->envid);
	return sm_smtp_cmd(c, "MAIL FROM:<%s>%s", env->sender, params);
}

/* One transaction for the recipients from *next on: as many as relayd
 * takes (a "452 4.5.3" leaves the rest to the next transaction).
 * *refused counts the recipients refused for good.  EX_OK or a code. */
static int transaction(struct sm_smtp *c, const struct envelope *env,
		       const struct opts *o, struct content *m,
		       size_t *next, size_t *refused, unsigned timeout)
{
	int code = mail_from(c, env, o, m);
	if (code < 200 || code > 299)
		return failure(c, code, "MAIL FROM");
	size_t accepted = 0, i;
	for (i = *next; i < env->rcpt.n; i++) {
		const char *a = env->rcpt.v[i];
		code = o->notify[0] && c->ext_dsn ?
		       sm_smtp_cmd(c, "RCPT TO:<%s> NOTIFY=%s", a, o->notify) :
		       sm_smtp_cmd(c, "RCPT TO:<%s>", a);
		if (code >= 200 && code < 300) {
			accepted++;
		} else if (code == 452 && accepted && !strncmp(c->reply + 4, "4.5.3", 5)) {
			break;
		} else if (code >= 500) {
			char e[SM_REPLY_MAX * 4], ea[SM_ADDR_MAX * 4];
			msg("<%s>: recipient refused: %s", esc(ea, sizeof(ea), a),
			    esc(e, sizeof(e), c->reply));
			(*refused)++;
		} else {
			return failure(c, code, "RCPT TO");
		}
	}
	*next = i;
	if (!accepted) {
		code = sm_smtp_cmd(c, "RSET");
		return code == 250 ? EX_OK : failure(c, code, "RSET");
	}
	code = sm_smtp_cmd(c, "DATA");
	if (code != 354)
		return failure(c, code, "DATA");
	if (send_content(c, m))
		return failure(c, -1, "sending the message");
	sm_smtp_timeout(c, DATA_DONE_TIMEOUT);
	code = sm_smtp_reply(c);
	sm_smtp_timeout(c, timeout);
	if (code < 200 || code > 299)
		return failure(c, code, "end of data");
	if (o->verbose) {
		char e[SM_REPLY_MAX * 4];
		msg("%s", esc(e, sizeof(e), c->reply));
	}
	return EX_OK;
}

/* Connect to the first usable listener and submit.  The exit code. */
static int submit(const struct config *cfg, const struct envelope *env,
		  const struct opts *o, struct content *m)
{
	struct sm_smtp *c = calloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	socklen_t sslen;
	size_t from = 0;
	int rc = -1, tried = 0;
	if (!c) {
		msg("out of memory");
		return EX_TEMPFAIL;
	}
	c->fd = -1;
	c->verbose = o->verbose;
	while (rc && !listener(cfg, &from, &ss, &sslen)) {
		tried++;
		rc = sm_smtp_connect(c, (struct sockaddr *)&ss, sslen, CONNECT_TIMEOUT);
		if (rc) {
			char host[INET6_ADDRSTRLEN] = "?";
			const void *a = ss.ss_family == AF_INET ?
				(const void *)&((struct sockaddr_in *)&ss)->sin_addr :
				(const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
			inet_ntop(ss.ss_family, a, host, sizeof(host));
			msg("cannot connect to relayd at [%s]:%u: %s", host,
			    (unsigned)cfg->smtp_listen.v[from - 1].port, c->err);
		}
	}
	if (!tried) {
		msg("%s: no smtp_listen address on loopback inside trusted_networks "
		    "(relay-sendmail submits there; see relay-sendmail(1))", cfg->path);
		free(c);
		return EX_CONFIG;
	}
	if (rc) {
		free(c);
		return EX_TEMPFAIL;
	}
	unsigned timeout = cfg->smtpd_timeout ? (unsigned)cfg->smtpd_timeout : 300;
	sm_smtp_timeout(c, timeout);
	int code = sm_smtp_reply(c);
	if (code != 220) {
		rc = failure(c, code < 0 ? -1 : 400, "greeting");
	} else if ((code = sm_smtp_hello(c, cfg->hostname)) != 250) {
		/* nothing wrong with the message: relayd is not ready for it */
		rc = failure(c, code < 0 ? -1 : 400, "EHLO");
	} else if (env->utf8 && !c->ext_smtputf8) {
		msg("non-ASCII address, and relayd does not offer SMTPUTF8");
		rc = EX_DATAERR;
	}
	size_t next = 0, refused = 0;
	while (rc == EX_OK && next < env->rcpt.n)
		rc = transaction(c, env, o, m, &next, &refused, timeout);
	if (rc == EX_OK || rc == EX_DATAERR)
		sm_smtp_cmd(c, "QUIT");
	sm_smtp_close(c);
	free(c);
	if (rc == EX_OK && refused)
		rc = EX_NOUSER;
	return rc;
}

static int read_input(struct sm_input *in, const struct opts *o,
		      const struct config *cfg)
{
	in->ignore_dots = o->ignore_dots;
	in->head_max = HEAD_MAX;
	in->size_max = cfg->message_size_limit;
	sm_input_init(in);
	switch (sm_input_read(in, STDIN_FILENO)) {
	case SM_IN_OK:
		return EX_OK;
	case SM_IN_HEAD_TOO_BIG:
		msg("header section over %d bytes", HEAD_MAX);
		return EX_DATAERR;
	case SM_IN_TOO_BIG:
		msg("message over message_size_limit (%llu bytes)",
		    (unsigned long long)cfg->message_size_limit);
		return EX_DATAERR;
	case SM_IN_READ_ERROR:
		msg("reading the message: %s", strerror(errno));
		return EX_IOERR;
	case SM_IN_SPOOL_ERROR:
	default:
		msg("cannot hold the message (memory or temporary file): %s",
		    strerror(errno));
		return EX_TEMPFAIL;
	}
}

static int run(struct opts *o, struct config *cfg, struct sm_input *in,
	       struct envelope *env)
{
	if (load_config(cfg, o->config ? o->config : DEFAULT_CONFIG))
		return EX_CONFIG;
	int rc = read_input(in, o, cfg);
	if (rc == EX_OK)
		rc = build_envelope(env, o, cfg, in);
	if (rc != EX_OK)
		return rc;
	struct sm_hdr_info info;
	sm_hdr_info(in->head, in->head_len, &info);
	in->head_len = sm_hdr_strip_bcc(in->head, in->head_len);
	char added[2048];
	struct content m = { .in = in, .added = added };
	m.added_len = missing_headers(added, sizeof(added), &info, env, o, cfg);
	for (size_t i = 0; i < m.added_len && !in->eightbit; i++)
		in->eightbit = (unsigned char)added[i] >= 0x80;
	m.size = in->head_len + m.added_len + 2 + in->body.size;
	if (m.size > cfg->message_size_limit) {
		msg("message of %llu bytes over message_size_limit (%llu bytes)",
		    (unsigned long long)m.size,
		    (unsigned long long)cfg->message_size_limit);
		return EX_DATAERR;
	}
	return submit(cfg, env, o, &m);
}

int main(int argc, char **argv)
{
	struct opts o = { .ignore_dots = 0 };
	int rc = parse_args(&o, argc, argv);
	if (rc)
		return rc < 0 ? EX_OK : rc;
	if (!o.extract && !o.nrcpt)
		return usage("no recipients given (name them, or use -t)");
	struct config cfg = { .path = NULL };
	struct sm_input in = { .head = NULL };
	struct envelope env = { .rcpt = { .v = NULL } };
	in.body.fd = -1;
	rc = run(&o, &cfg, &in, &env);
	sm_input_free(&in);
	sm_addr_free(&env.rcpt);
	config_free(&cfg);
	return rc;
}
