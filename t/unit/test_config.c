/*
 * test_config.c - relayd.conf parsing: every default, each value type,
 * error reporting (all of them, with FILE:LINE), the line syntax, the
 * dump, etc/relayd.conf against config_sample, and a deterministic
 * mutation loop that feeds config_load_buffer garbage (run it under
 * ASan/UBSan to make that loop mean something).
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "t/tap.h"

/* Load len bytes of text (SIZE_MAX: up to its NUL) as "name"; *errs
 * gets everything reported. */
static int load_named(struct config *cfg, const char *name, const char *text,
		      size_t len, char **errs)
{
	size_t sz;

	if (len == SIZE_MAX)
		len = strlen(text);
	FILE *f = open_memstream(errs, &sz);
	int n;

	n = config_load_buffer(cfg, name, text, len, f);
	fclose(f);
	return n;
}

static int load(struct config *cfg, const char *text, char **errs)
{
	return load_named(cfg, "relayd.conf", text, strlen(text), errs);
}

/* Load a one-key config; returns its error count, frees everything. */
static int load_errors(const char *text)
{
	struct config cfg;
	char *errs;
	int n = load(&cfg, text, &errs);

	config_free(&cfg);
	free(errs);
	return n;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static char *dump(const struct config *cfg)
{
	char *buf;
	size_t sz;
	FILE *f = open_memstream(&buf, &sz);

	config_dump(cfg, f);
	fclose(f);
	return buf;
}

static char *sample(size_t *len)
{
	char *buf;
	FILE *f = open_memstream(&buf, len);

	config_sample(f);
	fclose(f);
	return buf;
}

static int in_list(const struct config_cidr_list *l, const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	return config_cidr_match(l, (struct sockaddr *)&ss);
}

static void test_defaults(void)
{
	struct config c;
	char *errs, host[256] = "", cwd[4096], want[4200];
	int n = load(&c, "", &errs);

	is_int(n, 0, "empty config: no errors");
	is_str(errs, "", "empty config: nothing reported");
	gethostname(host, sizeof(host) - 1);
	is_str(c.hostname, host[0] ? host : "localhost", "hostname = gethostname()");
	ok(getcwd(cwd, sizeof(cwd)) != NULL, "getcwd");
	snprintf(want, sizeof(want), "%s/relayd.conf", cwd);
	is_str(c.path, want, "path is absolute");
	is_int(c.smtp_listen.n, 2, "smtp_listen: two listeners");
	is_str(c.smtp_listen.v[0].host, "0.0.0.0", "smtp_listen[0] host");
	is_int(c.smtp_listen.v[0].port, 25, "smtp_listen[0] port");
	is_int(c.smtp_listen.v[0].ss.ss_family, AF_INET, "smtp_listen[0] AF_INET");
	is_int(c.smtp_listen.v[0].sslen, sizeof(struct sockaddr_in), "smtp_listen[0] sslen");
	is_str(c.smtp_listen.v[1].host, "::", "smtp_listen[1] host");
	is_int(c.smtp_listen.v[1].port, 25, "smtp_listen[1] port");
	is_int(c.smtp_listen.v[1].ss.ss_family, AF_INET6, "smtp_listen[1] AF_INET6");
	is_int(ntohs(((struct sockaddr_in6 *)&c.smtp_listen.v[1].ss)->sin6_port), 25,
	       "smtp_listen[1] sockaddr port");
	is_int(c.submission_listen.n, 2, "submission_listen: two");
	is_int(c.submission_listen.v[0].port, 587, "submission_listen port 587");
	is_int(c.submission_listen.v[1].port, 587, "submission_listen [::] port 587");
	is_int(c.submissions_listen.n, 0, "submissions_listen empty");
	is_str(c.queue_dir, "/var/spool/relayd", "queue_dir");
	is_int(c.queue_map_size, 8ULL << 30, "queue_map_size 8G");
	is_int(c.trusted_networks.n, 2, "trusted_networks: two blocks");
	is_int(c.trusted_networks.v[0].family, AF_INET, "trusted[0] v4");
	is_int(c.trusted_networks.v[0].prefix, 8, "trusted[0] /8");
	is_int(c.trusted_networks.v[1].family, AF_INET6, "trusted[1] v6");
	is_int(c.trusted_networks.v[1].prefix, 128, "trusted[1] /128");
	ok(c.tls_cert_file == NULL, "tls_cert_file NULL");
	ok(c.tls_key_file == NULL, "tls_key_file NULL");
	is_str(c.auth_users_file, "/etc/relayd/passwd", "auth_users_file");
	ok(c.sender_login_map == NULL, "sender_login_map NULL");
	is_int(c.message_size_limit, 36700160, "message_size_limit");
	is_int(c.recipient_limit, 1000, "recipient_limit");
	is_int(c.smtpd_timeout, 300, "smtpd_timeout 300s");
	is_int(c.client_connection_limit, 50, "client_connection_limit");
	is_int(c.smtpd_session_limit, 10000, "smtpd_session_limit");
	is_int(c.dns_servers.n, 0, "dns_servers empty");
	is_int(c.delivery_port, 25, "delivery_port");
	ok(c.relayhost.host == NULL, "relayhost empty");
	ok(c.relayhost_auth == NULL, "relayhost_auth NULL");
	is_int(c.tls_outbound, TLS_LEVEL_MAY, "tls_outbound may");
	ok(c.tls_ca_file == NULL, "tls_ca_file NULL");
	is_int(c.retry_min, 300, "retry_min 5m");
	is_int(c.retry_max, 3600, "retry_max 1h");
	is_int(c.queue_lifetime, 2 * 86400, "queue_lifetime 2d");
	is_int(c.bounce_lifetime, 86400, "bounce_lifetime 1d");
	is_int(c.delay_warning, 4 * 3600, "delay_warning 4h");
	is_int(c.destination_concurrency, 20, "destination_concurrency");
	is_int(c.destination_recipient_limit, 50, "destination_recipient_limit");
	is_int(c.delivery_concurrency, 200, "delivery_concurrency");
	is_str(c.control_socket, "/var/spool/relayd/control", "control_socket");
	is_str(c.syslog_name, "relayd", "syslog_name");
	is_str(c.user, "relayd", "user");
	is_int(c.sender_login_policy, SENDER_POLICY_MAP, "sender_login_policy map");
	is_int(c.inet_protocols, INET_ALL, "inet_protocols all");
	ok(c.smtp_bind_address == NULL, "smtp_bind_address NULL");
	ok(c.tls_policy == NULL, "tls_policy NULL");
	is_int(c.destination_rate, 0, "destination_rate");
	ok(c.bounce_notice_recipient == NULL, "bounce_notice_recipient NULL");
	ok(c.metrics_listen.host == NULL, "metrics_listen empty");
	is_int(c.log_format, LOG_FORMAT_POSTFIX, "log_format postfix");
	ok(c.dkim_keys == NULL, "dkim_keys NULL");
	is_int(c.dkim_expire, 0, "dkim_expire 0");
	config_free(&c);
	free(errs);
}

static void test_durations(void)
{
	static const struct { const char *s; uint64_t v; } good[] = {
		{ "5m", 300 }, { "2d", 172800 }, { "10", 10 }, { "1h", 3600 },
		{ "0", 0 }, { "30s", 30 }, { "7D", 604800 },
		{ "18446744073709551615", UINT64_MAX },
	};
	static const char *const bad[] = {
		"5x", "-1", "", "5 m", "m", "1.5h", "+5", " 5", "5m ", "5ms",
		"18446744073709551616", "999999999999999999d", "0x10",
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		ok(config_parse_duration(good[i].s, &v) == 0 && v == good[i].v,
		   "duration '%s' = %llu", good[i].s, (unsigned long long)good[i].v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(config_parse_duration(bad[i], &v) < 0, "duration '%s' refused", bad[i]);
	is_int(load_errors("smtpd_timeout = 3650d\n"), 0, "ten years is allowed");
	is_int(load_errors("smtpd_timeout = 3651d\n"), 1, "over ten years refused");
	is_int(load_errors("smtpd_timeout = 0\n"), 1, "smtpd_timeout 0 refused");
	is_int(load_errors("smtpd_timeout =\n"), 1, "empty duration refused");
	is_int(load_errors("smtpd_timeout = 5x\n"), 1, "smtpd_timeout 5x refused");
	is_int(load_errors("delay_warning = 0\n"), 0, "delay_warning 0 allowed");
}

static void test_sizes(void)
{
	static const struct { const char *s; uint64_t v; } good[] = {
		{ "8G", 8ULL << 30 }, { "35M", 36700160 }, { "1K", 1024 },
		{ "12", 12 }, { "2k", 2048 }, { "0", 0 },
		{ "17179869183G", 17179869183ULL << 30 },
	};
	static const char *const bad[] = {
		"12Q", "", "K", "-5", "1.5M", "1 M", "8GB", "17179869184G",
		"18446744073709551616",
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		ok(config_parse_size(good[i].s, &v) == 0 && v == good[i].v,
		   "size '%s' = %llu", good[i].s, (unsigned long long)good[i].v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(config_parse_size(bad[i], &v) < 0, "size '%s' refused", bad[i]);
	is_int(load_errors("queue_map_size = 512K\n"), 1, "map size below 1M refused");
	is_int(load_errors("message_size_limit = 0\n"), 1, "message_size_limit 0 refused");
	is_int(load_errors("message_size_limit = 10M\n"), 0, "message_size_limit 10M");
	/* The limit is bounded by what the queue can hold: half the map. */
	is_int(load_errors("message_size_limit = 4G\n"), 0, "message_size_limit 4G with the 8G map");
	is_int(load_errors("message_size_limit = 4097M\n"), 1, "message_size_limit over half the map");
	is_int(load_errors("message_size_limit = 18446744073709551615\n"), 1,
	       "message_size_limit of 2^64-1 refused");
	is_int(load_errors("message_size_limit = 17179869183G\n"), 1,
	       "message_size_limit just below 2^64 in G refused");
	is_int(load_errors("queue_map_size = 64M\nmessage_size_limit = 32M\n"), 0,
	       "32M limit in a 64M map");
	is_int(load_errors("queue_map_size = 64M\nmessage_size_limit = 33M\n"), 1,
	       "33M limit in a 64M map refused");
	is_int(load_errors("queue_map_size = 64M\n"), 1,
	       "a 64M map refuses the default 35M limit");
	is_int(load_errors("queue_map_size = 18446744073709551615\n"
			   "message_size_limit = 9223372036854775807\n"), 0,
	       "the largest limit the largest map allows: 2^63-1");
	{
		struct config c;
		char *errs;
		load(&c, "queue_map_size = 64M\nhostname = h\nmessage_size_limit = 40M\n", &errs);
		ok(strstr(errs, ":3: message_size_limit (41943040) exceeds what the queue can hold: "
			  "at most half of queue_map_size (67108864)") != NULL,
		   "the error names the later line and both values (%s)", errs);
		config_free(&c);
		free(errs);
		load(&c, "message_size_limit = 40M\nhostname = h\nqueue_map_size = 64M\n", &errs);
		ok(strstr(errs, ":3: message_size_limit") != NULL,
		   "... whichever of the two keys comes later (%s)", errs);
		config_free(&c);
		free(errs);
	}
	is_int(load_errors("recipient_limit = 0\n"), 1, "recipient_limit 0 refused");
	is_int(load_errors("recipient_limit = 1\n"), 0, "recipient_limit 1");
	is_int(load_errors("recipient_limit = 5K\n"), 1, "counts take no suffix");
	is_int(load_errors("delivery_port = 65536\n"), 1, "delivery_port 65536 refused");
	is_int(load_errors("delivery_port = 2525\n"), 0, "delivery_port 2525");
}

static void test_addr_helper(void)
{
	struct config_addr a;

	ok(config_parse_addr("0.0.0.0:25", 0, &a) == 0 && a.port == 25 &&
	   a.ss.ss_family == AF_INET && !strcmp(a.host, "0.0.0.0"), "addr 0.0.0.0:25");
	free(a.host);
	ok(config_parse_addr("[::]:587", 0, &a) == 0 && a.port == 587 &&
	   a.ss.ss_family == AF_INET6 && !strcmp(a.host, "::") &&
	   a.sslen == sizeof(struct sockaddr_in6), "addr [::]:587");
	free(a.host);
	ok(config_parse_addr("[::1]", 25, &a) == 0 && a.port == 25, "addr [::1] default port");
	free(a.host);
	ok(config_parse_addr("127.0.0.1", 53, &a) == 0 && a.port == 53 &&
	   ntohs(((struct sockaddr_in *)&a.ss)->sin_port) == 53, "addr default port in sockaddr");
	free(a.host);
	ok(config_parse_addr("mail.example.org:2525", 0, &a) == 0 &&
	   a.ss.ss_family == AF_UNSPEC && a.sslen == 0 &&
	   !strcmp(a.host, "mail.example.org"), "addr host name left unresolved");
	free(a.host);
	ok(config_parse_addr("[smtp.example.com]:587", 0, &a) == 0 &&
	   !strcmp(a.host, "smtp.example.com") && a.port == 587, "addr [name]:port");
	free(a.host);
	ok(config_parse_addr("[::1:25", 0, &a) < 0 && a.host == NULL, "addr '[::1:25' refused");
	ok(config_parse_addr("host:99999", 0, &a) < 0, "addr 'host:99999' refused");
	ok(config_parse_addr("host:0", 0, &a) < 0, "addr port 0 refused");
	ok(config_parse_addr("host:", 0, &a) < 0, "addr empty port refused");
	ok(config_parse_addr("1.2.3.4", 0, &a) < 0, "addr missing port refused");
	ok(config_parse_addr("::1", 25, &a) < 0, "bare IPv6 refused");
	ok(config_parse_addr(":25", 0, &a) < 0, "addr missing host refused");
	ok(config_parse_addr("[]:25", 0, &a) < 0, "addr empty brackets refused");
	ok(config_parse_addr("1.2.3.4:25x", 0, &a) < 0, "addr port junk refused");
	ok(config_parse_addr("[::1]x", 0, &a) < 0, "addr junk after ] refused");
	ok(config_parse_addr("a b:25", 0, &a) < 0, "addr blank in host refused");
	ok(config_parse_addr("", 25, &a) < 0, "addr empty refused");
}

static void test_addr_config(void)
{
	struct config c;
	char *errs;
	int n;

	n = load(&c, "smtp_listen = 0.0.0.0:2525 [::1]:2526,127.0.0.1\n"
		 "submissions_listen = 127.0.0.1\n", &errs);
	is_int(n, 0, "listener lists load");
	is_int(c.smtp_listen.n, 3, "three smtp listeners");
	is_int(c.smtp_listen.v[1].port, 2526, "second listener port");
	is_int(c.smtp_listen.v[2].port, 25, "third listener default port");
	is_int(c.submissions_listen.v[0].port, 465, "submissions default port 465");
	config_free(&c);
	free(errs);

	n = load(&c, "smtp_listen = localhost:25\n", &errs);
	is_int(n, 1, "listener must be numeric");
	ok(strstr(errs, "relayd.conf:1: smtp_listen: 'localhost:25' is not an IP address") != NULL,
	   "numeric listener message");
	is_int(c.smtp_listen.n, 2, "bad value keeps the default");
	config_free(&c);
	free(errs);

	n = load(&c, "smtp_listen =\n", &errs);
	is_int(n, 0, "empty listener list allowed");
	is_int(c.smtp_listen.n, 0, "empty list: no listeners");
	config_free(&c);
	free(errs);

	n = load(&c, "smtp_listen = 0.0.0.0:25, [::1:25\n", &errs);
	is_int(n, 1, "bad item in a list refused");
	ok(strstr(errs, "bad address '[::1:25': missing ']'") != NULL, "bad item named");
	config_free(&c);
	free(errs);

	n = load(&c, "relayhost = [smtp.example.com]:587\nmetrics_listen = 127.0.0.1:9100\n", &errs);
	is_int(n, 0, "relayhost by name");
	is_str(c.relayhost.host, "smtp.example.com", "relayhost host");
	is_int(c.relayhost.port, 587, "relayhost port");
	is_int(c.metrics_listen.port, 9100, "metrics_listen port");
	config_free(&c);
	free(errs);

	is_int(load_errors("metrics_listen = 127.0.0.1\n"), 1, "metrics_listen needs a port");
	is_int(load_errors("relayhost = a:1 b:2\n"), 1, "relayhost is one address");
	is_int(load_errors("dns_servers = 127.0.0.1:5300, ::1\n"), 1, "dns v6 needs brackets");
	is_int(load_errors("smtp_bind_address = 192.0.2.1\n"), 0, "bind address v4");
	is_int(load_errors("smtp_bind_address = 2001:db8::1\n"), 0, "bind address v6");
	is_int(load_errors("smtp_bind_address = example.org\n"), 1, "bind address name refused");
}

static void test_cidr(void)
{
	struct config_cidr cb;
	struct config c;
	char *errs;
	int n;

	ok(config_parse_cidr("127.0.0.0/8", &cb) == 0 && cb.family == AF_INET &&
	   cb.prefix == 8 && cb.addr[0] == 127, "cidr 127.0.0.0/8");
	ok(config_parse_cidr("::1/128", &cb) == 0 && cb.family == AF_INET6 &&
	   cb.prefix == 128 && cb.addr[15] == 1, "cidr ::1/128");
	ok(config_parse_cidr("10.1.2.3", &cb) == 0 && cb.prefix == 32, "bare v4 is /32");
	ok(config_parse_cidr("2001:db8::1", &cb) == 0 && cb.prefix == 128, "bare v6 is /128");
	ok(config_parse_cidr("[2001:db8::]/32", &cb) == 0 && cb.prefix == 32, "bracketed v6");
	ok(config_parse_cidr("10.1.2.3/8", &cb) == 0 && cb.addr[0] == 10 &&
	   cb.addr[1] == 0 && cb.addr[3] == 0, "host bits masked");
	ok(config_parse_cidr("10.255.0.0/9", &cb) == 0 && cb.addr[1] == 0x80, "partial byte masked");
	ok(config_parse_cidr("0.0.0.0/0", &cb) == 0 && cb.prefix == 0, "cidr /0");
	ok(config_parse_cidr("10.0.0.0/33", &cb) < 0, "v4 /33 refused");
	ok(config_parse_cidr("::/129", &cb) < 0, "v6 /129 refused");
	ok(config_parse_cidr("1.2.3/8", &cb) < 0, "short v4 refused");
	ok(config_parse_cidr("10.0.0.0/", &cb) < 0, "empty prefix refused");
	ok(config_parse_cidr("/8", &cb) < 0, "empty address refused");
	ok(config_parse_cidr("10.0.0.0/8x", &cb) < 0, "prefix junk refused");
	ok(config_parse_cidr("10.0.0.0/-1", &cb) < 0, "negative prefix refused");
	ok(config_parse_cidr("example.org/8", &cb) < 0, "name refused");

	n = load(&c, "", &errs);
	ok(in_list(&c.trusted_networks, "127.0.0.1"), "127.0.0.1 trusted");
	ok(in_list(&c.trusted_networks, "127.255.255.254"), "127.255.255.254 trusted");
	ok(!in_list(&c.trusted_networks, "128.0.0.1"), "128.0.0.1 not trusted");
	ok(in_list(&c.trusted_networks, "::1"), "::1 trusted");
	ok(!in_list(&c.trusted_networks, "::2"), "::2 not trusted");
	ok(in_list(&c.trusted_networks, "::ffff:127.0.0.1"), "::ffff:127.0.0.1 trusted (mapped)");
	ok(!in_list(&c.trusted_networks, "::ffff:10.0.0.1"), "::ffff:10.0.0.1 not trusted");
	ok(!in_list(&c.trusted_networks, "::127.0.0.1"), "v4-compatible is not v4-mapped");
	config_free(&c);
	free(errs);

	n = load(&c, "trusted_networks = 2001:db8::/32 192.168.0.0/16,::ffff:0:0/96\n", &errs);
	is_int(n, 0, "v6 and mapped blocks load");
	ok(in_list(&c.trusted_networks, "2001:db8:1::5"), "2001:db8:1::5 in 2001:db8::/32");
	ok(!in_list(&c.trusted_networks, "2001:db9::1"), "2001:db9::1 outside");
	ok(in_list(&c.trusted_networks, "192.168.3.4"), "192.168.3.4 in /16");
	ok(in_list(&c.trusted_networks, "8.8.8.8"), "any v4 matches ::ffff:0:0/96");
	ok(in_list(&c.trusted_networks, "127.0.0.1"), "127.0.0.1 matches the mapped block");
	config_free(&c);
	free(errs);

	n = load(&c, "trusted_networks =\n", &errs);
	is_int(c.trusted_networks.n, 0, "empty trusted_networks");
	ok(!in_list(&c.trusted_networks, "127.0.0.1"), "empty list matches nothing");
	ok(!config_cidr_match(NULL, NULL), "NULL list matches nothing");
	config_free(&c);
	free(errs);

	n = load(&c, "trusted_networks = 10.0.0.0/8, 300.0.0.0/8\n", &errs);
	is_int(n, 1, "bad block refused");
	ok(strstr(errs, "relayd.conf:1: trusted_networks: bad network '300.0.0.0/8': bad address") != NULL,
	   "bad block named");
	config_free(&c);
	free(errs);
}

static void test_enums(void)
{
	struct config c;
	char *errs;
	int n;

	n = load(&c, "tls_outbound = verify\ninet_protocols = ipv6\n"
		 "sender_login_policy = any\nlog_format = json\n", &errs);
	is_int(n, 0, "enums load");
	is_int(c.tls_outbound, TLS_LEVEL_VERIFY, "tls_outbound verify");
	is_int(c.inet_protocols, INET_IPV6, "inet_protocols ipv6");
	is_int(c.sender_login_policy, SENDER_POLICY_ANY, "sender_login_policy any");
	is_int(c.log_format, LOG_FORMAT_JSON, "log_format json");
	config_free(&c);
	free(errs);
	is_int(load_errors("tls_outbound = none\n"), 0, "tls_outbound none");
	is_int(load_errors("tls_outbound = encrypt\n"), 0, "tls_outbound encrypt");
	is_int(load_errors("inet_protocols = ipv4\n"), 0, "inet_protocols ipv4");

	n = load(&c, "tls_outbound = maybe\nlog_format =\nlog_format2 = x\n", &errs);
	is_int(n, 3, "bad enums refused");
	ok(strstr(errs, "relayd.conf:1: tls_outbound: 'maybe' is not one of: none, may, encrypt, verify") != NULL,
	   "enum message lists the choices");
	ok(strstr(errs, "relayd.conf:2: log_format: a value is required") != NULL,
	   "empty enum refused");
	config_free(&c);
	free(errs);
	is_int(load_errors("log_format = JSON\n"), 1, "enums are case-sensitive");
}

static void test_strings(void)
{
	is_int(load_errors("hostname =\n"), 1, "empty hostname refused");
	is_int(load_errors("hostname = mail example\n"), 1, "hostname with a blank refused");
	is_int(load_errors("syslog_name =\n"), 1, "empty syslog_name refused");
	is_int(load_errors("user =\n"), 1, "empty user refused");
	is_int(load_errors("relayhost_auth = user:pass word\n"), 0, "relayhost_auth free text");
	is_int(load_errors("queue_dir =\n"), 1, "empty queue_dir refused");
	is_int(load_errors("control_socket =\n"), 1, "empty control_socket refused");
	is_int(load_errors("auth_users_file =\n"), 0, "empty auth_users_file allowed");
}

static void test_errors(void)
{
	struct config c;
	char *errs;
	int n;

	n = load(&c, "foo = bar\n", &errs);
	is_int(n, 1, "unknown key: one error");
	is_str(errs, "relayd.conf:1: unknown parameter 'foo'\n", "unknown key message");
	config_free(&c);
	free(errs);

	n = load(&c, "# c\nhostname = a.example\n\nhostname = b.example\n", &errs);
	is_int(n, 1, "duplicate key: one error");
	is_str(errs, "relayd.conf:4: duplicate parameter 'hostname' (first set on line 2)\n",
	       "duplicate names the first line");
	is_str(c.hostname, "a.example", "first value kept");
	config_free(&c);
	free(errs);

	n = load(&c, "hostname mail.example.org\n", &errs);
	is_int(n, 1, "missing '=': one error");
	is_str(errs, "relayd.conf:1: missing '=' (expected 'key = value')\n", "missing '=' message");
	config_free(&c);
	free(errs);

	n = load(&c, "= x\n", &errs);
	is_int(n, 1, "missing key: one error");
	config_free(&c);
	free(errs);

	n = load(&c, "hostname = ok.example\n"
		 "foo = 1\n"
		 "smtpd_timeout = 5x\n"
		 "# fine\n"
		 "recipient_limit\n"
		 "hostname = again\n"
		 "message_size_limit = 12Q\n"
		 "relayhost = [::1:25\n"
		 "dkim_expire = 1d\n", &errs);
	is_int(n, 6, "six errors, all counted");
	ok(strstr(errs, "relayd.conf:2: unknown parameter 'foo'\n") != NULL, "error at line 2");
	ok(strstr(errs, "relayd.conf:3: smtpd_timeout: bad duration '5x'") != NULL, "error at line 3");
	ok(strstr(errs, "relayd.conf:5: missing '='") != NULL, "error at line 5");
	ok(strstr(errs, "relayd.conf:6: duplicate parameter 'hostname' (first set on line 1)") != NULL,
	   "error at line 6");
	ok(strstr(errs, "relayd.conf:7: message_size_limit: bad size '12Q'") != NULL, "error at line 7");
	ok(strstr(errs, "relayd.conf:8: relayhost: bad address '[::1:25': missing ']'") != NULL,
	   "error at line 8");
	ok(strstr(errs, "warning: relayd.conf:9: dkim_expire: not implemented yet") != NULL,
	   "warning for line 9");
	is_int(count_lines(errs), 7, "six errors and one warning reported");
	config_free(&c);
	free(errs);

	n = load(&c, "retry_min = 2h\nretry_max = 1h\n", &errs);
	is_int(n, 1, "retry_min > retry_max refused");
	ok(strstr(errs, "relayd.conf:2: retry_min must not exceed retry_max") != NULL,
	   "cross check names the later line");
	config_free(&c);
	free(errs);

	n = load(&c, "tls_cert_file = /etc/ssl/cert.pem\n", &errs);
	is_int(n, 1, "certificate without key refused");
	config_free(&c);
	free(errs);
	is_int(load_errors("tls_cert_file = c.pem\ntls_key_file = k.pem\n"), 0,
	       "certificate with key");

	n = load(&c, "queue_dir = /a/very/long/path/that/goes/on/and/on/and/on/and/on/and/on/"
		 "and/on/and/on/and/on/and/on/and/on/and/on/and/on/for/the/socket\n", &errs);
	is_int(n, 1, "control socket path too long for sun_path");
	ok(strstr(errs, "relayd.conf:1: control_socket:") != NULL, "reported at queue_dir's line");
	config_free(&c);
	free(errs);
}

static void test_lines(void)
{
	static const char nul[] = "hostname = a\0b\nrecipient_limit = 9\n# x\0y\n";
	char *errs, *long_line, *d;
	struct config c;
	int n;

	n = load(&c, "trusted_networks = 10.0.0.0/8,\n"
		 "  192.168.0.0/16\n"
		 "    # an indented comment inside the value\n"
		 "\n"
		 "\t::1/128\n"
		 "hostname = x.example\n", &errs);
	is_int(n, 0, "continuation lines load");
	is_int(c.trusted_networks.n, 3, "continuations joined");
	d = dump(&c);
	ok(strstr(d, "\ntrusted_networks = 10.0.0.0/8, 192.168.0.0/16, ::1/128\n") != NULL,
	   "list normalised in the dump");
	free(d);
	config_free(&c);
	free(errs);

	n = load(&c, "  hostname = x\n", &errs);
	is_int(n, 1, "leading continuation refused");
	ok(strstr(errs, "relayd.conf:1: continuation line without a parameter") != NULL,
	   "continuation message");
	config_free(&c);
	free(errs);

	n = load(&c, "hostname = a.example\r\nrecipient_limit = 5\r\n\r\n# c\r\n"
		 "smtp_listen = 127.0.0.1:25,\r\n  [::1]:25\r\n", &errs);
	is_int(n, 0, "CRLF loads");
	is_str(c.hostname, "a.example", "CR stripped");
	is_int(c.recipient_limit, 5, "CRLF number");
	is_int(c.smtp_listen.n, 2, "CRLF continuation");
	config_free(&c);
	free(errs);

	n = load(&c, "hostname = a\rb\n", &errs);
	is_int(n, 1, "bare CR refused");
	config_free(&c);
	free(errs);

	n = load(&c, "# hostname = bar\n   # indented\n#\nhostname=x\t\n", &errs);
	is_int(n, 0, "comments ignored");
	is_str(c.hostname, "x", "no blanks needed; trailing tab trimmed");
	config_free(&c);
	free(errs);

	n = load(&c, "recipient_limit = 7", &errs);
	is_int(n, 0, "no trailing newline");
	is_int(c.recipient_limit, 7, "last line without newline used");
	config_free(&c);
	free(errs);

	n = load_named(&c, "relayd.conf", nul, sizeof(nul) - 1, &errs);
	is_int(n, 1, "embedded NUL: one error");
	is_str(errs, "relayd.conf:1: NUL byte\n", "NUL reported at its line");
	is_int(c.recipient_limit, 9, "parsing goes on after a NUL");
	ok(c.hostname && strcmp(c.hostname, "a") != 0, "truncated value not used");
	config_free(&c);
	free(errs);

	long_line = malloc(70100);
	memcpy(long_line, "hostname = ", 11);
	memset(long_line + 11, 'a', 70000);
	strcpy(long_line + 70011, "\n  more\nrecipient_limit = 3\n");
	n = load(&c, long_line, &errs);
	is_int(n, 1, "overlong line: one error");
	is_str(errs, "relayd.conf:1: line too long (over 65536 bytes)\n", "overlong line message");

	/* A list whose written-out form (", " separators) would not load
	 * back is refused: every dump must be a loadable file. */
	{
		size_t k = strlen("trusted_networks = ");
		char *lst = malloc(65600);
		memcpy(lst, "trusted_networks = ", k);
		while (k < 65000) {
			memcpy(lst + k, "::,", 3);
			k += 3;
		}
		strcpy(lst + k, "::\n");
		struct config c2;
		char *e2;
		int n2 = load(&c2, lst, &e2);
		is_int(n2, 1, "list too long once written out: one error");
		ok(e2 && strstr(e2, "trusted_networks: value too long once written out") != NULL,
		   "... saying so");
		config_free(&c2);
		free(e2);
		free(lst);
		/* The same for a relative path, which the dump makes absolute. */
		char *pth = malloc(65600);
		k = strlen("dkim_keys = ");
		memcpy(pth, "dkim_keys = ", k);
		memset(pth + k, 'x', 65532 - k);
		strcpy(pth + 65532, "\n");
		n2 = load_named(&c2, "/srv/relayd-test-directory/relayd.conf", pth,
				strlen(pth), &e2);
		is_int(n2, 1, "relative path too long once made absolute: one error");
		config_free(&c2);
		free(e2);
		free(pth);
	}
	is_int(c.recipient_limit, 3, "parsing goes on after an overlong line");
	config_free(&c);
	free(errs);
	free(long_line);

	/* 20 continuation lines of 4000 bytes each: over the 64K cap. */
	long_line = malloc(20 * 4003 + 64);
	strcpy(long_line, "relayhost_auth = x\n");
	for (n = 0; n < 20; n++) {
		d = long_line + strlen(long_line);
		d[0] = ' ';
		memset(d + 1, 'b', 4000);
		strcpy(d + 4001, "\n");
	}
	strcat(long_line, "recipient_limit = 4\n");
	n = load(&c, long_line, &errs);
	is_int(n, 1, "overlong value: one error");
	ok(strstr(errs, "relayd.conf:18: value too long (over 65536 bytes)") != NULL,
	   "overlong value reported where it overflows");
	ok(c.relayhost_auth == NULL, "overlong value not used");
	is_int(c.recipient_limit, 4, "parsing goes on after an overlong value");
	config_free(&c);
	free(errs);
	free(long_line);
}

static void test_warnings(void)
{
	struct config c;
	char *errs;
	int n;

	n = load(&c, "dkim_expire = 1d\nhostname = h.example\n", &errs);
	is_int(n, 0, "not-implemented key is no error");
	is_str(errs, "warning: relayd.conf:1: dkim_expire: not implemented yet\n",
	       "one warning, for dkim_expire only");
	config_free(&c);
	free(errs);
}

static void test_paths(void)
{
	struct config c;
	char *errs, *d;
	int n;

	n = load_named(&c, "/srv/relayd/etc/relayd.conf",
		       "queue_dir = spool\nauth_users_file = ./passwd\n"
		       "tls_cert_file = /etc/ssl/c.pem\ntls_key_file = ../k.pem\n",
		       SIZE_MAX, &errs);
	is_int(n, 0, "paths load");
	is_str(c.path, "/srv/relayd/etc/relayd.conf", "path kept");
	is_str(c.queue_dir, "/srv/relayd/etc/spool", "relative queue_dir resolved");
	is_str(c.control_socket, "/srv/relayd/etc/spool/control", "control_socket follows queue_dir");
	is_str(c.auth_users_file, "/srv/relayd/etc/passwd", "./ stripped");
	is_str(c.tls_cert_file, "/etc/ssl/c.pem", "absolute path kept");
	is_str(c.tls_key_file, "/srv/relayd/etc/../k.pem", "../ kept");
	d = dump(&c);
	ok(strstr(d, "\nqueue_dir = /srv/relayd/etc/spool\n") != NULL, "dump shows resolved path");
	ok(strstr(d, "\ncontrol_socket = /srv/relayd/etc/spool/control\n") != NULL,
	   "dump shows computed control_socket");
	free(d);
	config_free(&c);
	free(errs);

	n = load_named(&c, "/relayd.conf", "queue_dir = q\ncontrol_socket = ctl\n", SIZE_MAX,
		       &errs);
	is_int(n, 0, "config in /");
	is_str(c.queue_dir, "/q", "path under /");
	is_str(c.control_socket, "/ctl", "explicit control_socket resolved");
	config_free(&c);
	free(errs);

	n = load_named(&c, "/etc/relayd/relayd.conf", "queue_dir = .\n", SIZE_MAX, &errs);
	is_str(c.queue_dir, "/etc/relayd", "'.' is the config's directory");
	ok(config_parse_addr(NULL, 25, NULL) < 0 && config_parse_cidr(NULL, NULL) < 0,
	   "helpers refuse NULL");
	config_free(&c);
	free(errs);
}

static void test_dump(void)
{
	struct config c, c2;
	char *errs, *errs2, *d, *d2, line[300];
	int n;

	n = load(&c, "", &errs);
	d = dump(&c);
	ok(strstr(d, "\nmessage_size_limit = 36700160\n") != NULL, "dump: message_size_limit = 36700160");
	ok(strstr(d, "\nqueue_map_size = 8G\n") != NULL, "dump: queue_map_size = 8G");
	ok(strstr(d, "\nsmtpd_timeout = 300s\n") != NULL, "dump: smtpd_timeout = 300s");
	ok(strstr(d, "\nsmtp_listen = 0.0.0.0:25, [::]:25\n") != NULL, "dump: smtp_listen");
	ok(strstr(d, "\nsubmissions_listen =\n") != NULL, "dump: empty value");
	snprintf(line, sizeof(line), "hostname = %s\n", c.hostname);
	ok(strncmp(d, line, strlen(line)) == 0, "dump starts with the effective hostname");
	is_int(count_lines(d), 51, "dump: 51 keys");
	n = load(&c2, d, &errs2);
	is_int(n, 0, "the dump loads back");
	d2 = dump(&c2);
	is_str(d2, d, "and dumps the same");
	free(d2);
	free(d);
	free(errs2);
	config_free(&c2);
	config_free(&c);
	free(errs);

	n = load(&c, "smtpd_timeout = 5m\nqueue_map_size = 1024M\nhostname = h.example\n"
		 "trusted_networks = 10.0.0.0/8\t  ,,  ::1\n", &errs);
	d = dump(&c);
	ok(strstr(d, "\nsmtpd_timeout = 5m\n") != NULL, "dump: value as written");
	ok(strstr(d, "\nqueue_map_size = 1024M\n") != NULL, "dump: size as written");
	ok(strncmp(d, "hostname = h.example\n", 21) == 0, "dump: hostname as set");
	ok(strstr(d, "\ntrusted_networks = 10.0.0.0/8, ::1\n") != NULL, "dump: list normalised");
	free(d);
	config_free(&c);
	free(errs);
}

/* relayd -n never prints the relayhost password, and its output loads. */
static void test_dump_secret(void)
{
	struct config c, c2;
	char *errs, *errs2, *d, *d2;

	load(&c, "relayhost_auth = bob:s3cr:et\n", &errs);
	is_str(c.relayhost_auth, "bob:s3cr:et", "relayhost_auth loaded whole");
	d = dump(&c);
	ok(strstr(d, "\nrelayhost_auth = bob:********\n") != NULL, "dump: the user, the password masked");
	ok(!strstr(d, "s3cr") && !strstr(d, ":et"), "dump: no part of the password");
	is_int(load(&c2, d, &errs2), 0, "the masked dump loads without errors");
	ok(strstr(errs2, "relayhost_auth: the password is the mask relayd -n prints") != NULL,
	   "... and warns that the password is the mask (%s)", errs2);
	d2 = dump(&c2);
	is_str(d2, d, "... and dumps the same");
	free(d2);
	free(d);
	free(errs2);
	free(errs);
	config_free(&c2);
	config_free(&c);

	load(&c, "relayhost_auth = tokenonly\n", &errs);
	d = dump(&c);
	ok(strstr(d, "\nrelayhost_auth = ********\n") && !strstr(d, "tokenonly"),
	   "dump: a value without ':' is all password");
	ok(!strstr(errs, "the mask"), "a real password does not warn");
	free(d);
	free(errs);
	config_free(&c);

	load(&c, "", &errs);
	d = dump(&c);
	ok(strstr(d, "\nrelayhost_auth =\n") != NULL, "dump: empty relayhost_auth stays empty");
	free(d);
	free(errs);
	config_free(&c);
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t cap = 1 << 20;

	if (!f)
		return NULL;
	buf = malloc(cap);
	*len = fread(buf, 1, cap, f);
	fclose(f);
	return buf;
}

static void test_sample(void)
{
	const char *top = getenv("top_srcdir");
	char path[4096], *s, *file, *d, *k, *errs;
	size_t slen, flen = 0;
	struct config c;
	int n, missing = 0;

	s = sample(&slen);
	snprintf(path, sizeof(path), "%s/etc/relayd.conf", top ? top : ".");
	file = read_all(path, &flen);
	ok(file != NULL, "read %s", path);
	ok(file && flen == slen && memcmp(file, s, slen) == 0,
	   "etc/relayd.conf is config_sample's output (if not: make sample)");
	free(file);

	n = load_named(&c, "relayd.conf", s, slen, &errs);
	is_int(n, 0, "the sample loads");
	is_str(errs, "", "the sample sets nothing (no warnings)");
	d = dump(&c);
	for (k = d; *k; k = strchr(k, '\n') + 1) {
		char want[128];

		snprintf(want, sizeof(want), "\n#%.*s =", (int)strcspn(k, " "), k);
		if (!strstr(s, want)) {
			diag("%s missing from the sample", want + 1);
			missing++;
		}
	}
	is_int(missing, 0, "every key is in the sample");
	ok(strstr(s, "\n#queue_map_size = 8G\n") != NULL, "sample shows defaults");
	ok(strstr(s, "\n#message_size_limit = 36700160\n") != NULL, "sample: message_size_limit");
	free(d);
	config_free(&c);
	free(errs);
	free(s);
}

static void test_load_file(void)
{
	char tmpl[] = "/tmp/test_config.XXXXXX", *errs;
	struct config c;
	size_t sz;
	FILE *f, *e;
	int fd, n;

	fd = mkstemp(tmpl);
	ok(fd >= 0, "mkstemp");
	f = fdopen(fd, "w");
	fputs("recipient_limit = 42\nbogus = 1\n", f);
	fclose(f);
	e = open_memstream(&errs, &sz);
	n = config_load(&c, tmpl, e);
	fclose(e);
	is_int(n, 1, "config_load counts errors");
	is_int(c.recipient_limit, 42, "config_load reads the file");
	ok(strstr(errs, ":2: unknown parameter 'bogus'") && strncmp(errs, tmpl, strlen(tmpl)) == 0,
	   "config_load names the file");
	config_free(&c);
	free(errs);
	unlink(tmpl);

	e = open_memstream(&errs, &sz);
	n = config_load(&c, "/nonexistent/relayd.conf", e);
	fclose(e);
	is_int(n, -1, "missing file: -1");
	ok(strstr(errs, "/nonexistent/relayd.conf: cannot read") != NULL, "missing file reported");
	config_free(&c);
	free(errs);
}

/* ---- robustness: deterministic mutations of a rich config ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static const char seed_conf[] =
	"# seed\nhostname = mx.example.org\n"
	"smtp_listen = 0.0.0.0:25, [::]:25\n"
	"submission_listen = 127.0.0.1:587,\n  [::1]:587\n"
	"queue_dir = spool\nqueue_map_size = 1G\n"
	"trusted_networks = 10.0.0.0/8 ::ffff:0:0/96, 2001:db8::/32\n"
	"tls_cert_file = c.pem\ntls_key_file = k.pem\n"
	"message_size_limit = 35M\nrecipient_limit = 100\r\n"
	"smtpd_timeout = 5m\ndns_servers = 127.0.0.1:5300\n"
	"relayhost = [relay.example]:587\ntls_outbound = verify\n"
	"retry_min = 1m\nretry_max = 2h\nlog_format = json\n"
	"smtp_bind_address = ::1\nmetrics_listen = 127.0.0.1:9100\n";

static const char interesting[] = "\n\r\t \0=#,[]:/.-09azKMGsmhd";

static void mutate(char *buf, size_t *len, size_t cap)
{
	size_t pos = *len ? rng() % *len : 0, n;

	switch (rng() % 6) {
	case 0:		/* overwrite a byte */
		if (*len)
			buf[pos] = (char)rng();
		break;
	case 1:		/* insert an interesting byte */
		if (*len < cap) {
			memmove(buf + pos + 1, buf + pos, *len - pos);
			buf[pos] = interesting[rng() % (sizeof(interesting) - 1)];
			(*len)++;
		}
		break;
	case 2:		/* delete a range */
		n = rng() % 16;
		if (pos + n > *len)
			n = *len - pos;
		memmove(buf + pos, buf + pos + n, *len - pos - n);
		*len -= n;
		break;
	case 3:		/* insert a long run */
		n = rng() % 6000;
		if (*len + n <= cap) {
			memmove(buf + pos + n, buf + pos, *len - pos);
			memset(buf + pos, rng() % 2 ? 'a' : ' ', n);
			*len += n;
		}
		break;
	case 4:		/* truncate */
		*len = pos;
		break;
	default:	/* duplicate a range */
		n = rng() % 64;
		if (pos + n > *len)
			n = *len - pos;
		if (*len + n <= cap) {
			memmove(buf + pos + n, buf + pos, *len - pos);
			memcpy(buf + pos + n, buf + pos, n);	/* repeat it */
			*len += n;
		}
	}
}

static void test_robustness(void)
{
	enum { ROUNDS = 2000, CAP = 1 << 16 };
	char *work = malloc(CAP), *exact, *errs, *d;
	size_t len, sz, i, j, m;
	struct config c;
	int n, bad = 0;
	FILE *e;

	for (i = 0; i < ROUNDS; i++) {
		if (i % 10 == 9) {	/* pure noise */
			len = rng() % 512;
			for (j = 0; j < len; j++)
				work[j] = (char)rng();
		} else {
			len = sizeof(seed_conf) - 1;
			memcpy(work, seed_conf, len);
			for (m = 1 + rng() % 8; m; m--)
				mutate(work, &len, CAP);
		}
		/* An exact-size copy, not NUL-terminated, so ASan sees any
		 * read past the end. */
		exact = malloc(len ? len : 1);
		memcpy(exact, work, len);
		e = i % 2 ? open_memstream(&errs, &sz) : NULL;
		n = config_load_buffer(&c, "fuzz.conf", exact, len, e);
		if (e)
			fclose(e);
		if (n < 0)
			bad++;
		d = dump(&c);
		free(d);
		config_free(&c);
		if (e)
			free(errs);
		free(exact);
	}
	free(work);
	is_int(bad, 0, "2000 mutated buffers: no crash, no negative count");
}

int main(void)
{
	test_defaults();
	test_durations();
	test_sizes();
	test_addr_helper();
	test_addr_config();
	test_cidr();
	test_enums();
	test_strings();
	test_errors();
	test_lines();
	test_warnings();
	test_paths();
	test_dump();
	test_dump_secret();
	test_sample();
	test_load_file();
	test_robustness();
	return done_testing();
}
