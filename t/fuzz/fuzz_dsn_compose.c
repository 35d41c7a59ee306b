/*
 * fuzz_dsn_compose.c - fuzz target for the report composer
 * (relayd/bounce/dsn_compose.h): every field a client or a remote server
 * controls, and the original itself, come from the input.
 *
 * Input: byte 0 holds flags (bit 0 SMTPUTF8 original, bit 1 RET=FULL,
 * bits 2-3 the kind, bit 4 a delayed/relayed action); then NUL-separated
 * fields: sender, recipient, ORCPT, status, remote MTA, reply, ENVID;
 * the rest is the original.  Checked, beyond the absence of crashes:
 *  - composing succeeds; the report has CRLF lines only, none over 998
 *    octets;
 *  - its header section (up to the first blank line) is printable
 *    (7-bit unless SMTPUTF8), folded at 78 octets unless a line is one
 *    word that cannot be folded;
 *  - 8-bit bytes only when SMTPUTF8 or in the returned original, and
 *    then the result says so (eightbit);
 *  - the boundary occurs only on delimiter lines, and the last line is
 *    the close delimiter.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bounce/dsn_compose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_dsn_compose: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

struct mem {
	const uint8_t *p;
	size_t len;
};

static int read_mem(void *arg, uint64_t off, void *buf, size_t len, size_t *got)
{
	struct mem *m = arg;
	size_t n = off < m->len ? m->len - (size_t)off : 0;
	*got = n < len ? n : len;
	memcpy(buf, m->p + off, *got);
	return 0;
}

/* Next NUL-terminated field of the input (copied), or "" at its end. */
static char *next_field(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *z = memchr(*p, 0, (size_t)(end - *p));
	size_t n = z ? (size_t)(z - *p) : (size_t)(end - *p);
	char *s = malloc(n + 1);
	CHECK(s != NULL);
	memcpy(s, *p, n);
	s[n] = '\0';
	*p += n + (z ? 1 : 0);
	return s;
}

static void check_lines(const char *s, size_t len)
{
	size_t col = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r') {
			CHECK(i + 1 < len && s[i + 1] == '\n');
			i++;
			col = 0;
		} else {
			CHECK(s[i] != '\n');
			CHECK(++col <= 998);
		}
	}
	CHECK(col == 0);
}

/* A header line over the folding width must be one word that could not
 * be folded: nothing but the field name or the indentation before it. */
static int one_word(const char *line, size_t len)
{
	size_t i = 0;
	if (line[0] == ' ') {
		while (i < len && line[i] == ' ')
			i++;
	} else {
		const char *c = memchr(line, ':', len);
		CHECK(c != NULL);
		i = (size_t)(c - line) + 2;
	}
	return i <= len && memchr(line + i, ' ', len - i) == NULL;
}

static void check_head(const char *s, size_t hlen, int utf8)
{
	size_t col = 0, start = 0;
	for (size_t i = 0; i < hlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r') {
			CHECK(col <= 78 || one_word(s + start, col));
			i++;
			col = 0;
			start = i + 1;
			continue;
		}
		CHECK(c >= 0x20 && c != 0x7f);
		CHECK(utf8 || c < 0x80);
		col++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *p = data + 1, *end = data + size;
	char *f[7];
	for (size_t i = 0; i < 7; i++)
		f[i] = next_field(&p, end);
	struct mem orig = { p, (size_t)(end - p) };
	unsigned fl = data[0];
	struct dsn_rcpt rc = {
		.addr = f[1], .orcpt = f[2][0] ? f[2] : NULL,
		.action = (fl & 16) ? ((fl >> 2 & 3) == 2 ? DSN_ACTION_RELAYED :
				       DSN_ACTION_DELAYED) : DSN_ACTION_FAILED,
		.status = f[3], .remote_mta = f[4][0] ? f[4] : NULL, .diag_type = "smtp",
		.reply = f[5], .last_attempt = 1790000000, .will_retry_until = 1790086400,
	};
	struct dsn_report r = {
		.kind = (enum dsn_kind)((fl >> 2 & 3) % 3), .hostname = "relay.example.net",
		.queue_id = "0ORIGINAL001", .report_id = "0REPORT00001", .to = f[0],
		.envid = f[6][0] ? f[6] : NULL, .arrival = 1789990000, .now = 1790003600,
		.ret_full = (fl & 2) != 0, .utf8 = fl & 1, .orig_size = orig.len,
		.size_limit = 1u << 20, .read = read_mem, .read_arg = &orig,
		.rcpt = &rc, .nrcpt = 1,
	};
	struct dsn_result res;
	CHECK(dsn_compose(&r, &res) == 0);
	check_lines(res.data, res.len);
	const char *he = memmem(res.data, res.len, "\r\n\r\n", 4);
	CHECK(he != NULL);
	check_head(res.data, (size_t)(he - res.data) + 2, r.utf8);
	static const char ct[] = "Content-Type: multipart/report; report-type=delivery-status;"
				 "\r\n    boundary=\"";
	const char *bq = memmem(res.data, (size_t)(he - res.data), ct, sizeof(ct) - 1);
	CHECK(bq != NULL);
	bq += sizeof(ct) - 1;
	const char *bend = memchr(bq, '"', (size_t)(he - bq));
	CHECK(bend != NULL && bend > bq && bend - bq <= 70);
	char delim[80] = "\r\n--";
	memcpy(delim + 4, bq, (size_t)(bend - bq));
	size_t dl = 4 + (size_t)(bend - bq), nb = 0, nd = 0;
	for (const char *s = res.data; (s = memmem(s, res.len - (size_t)(s - res.data),
						 delim + 4, dl - 4)); s++)
		nb++;
	for (const char *s = res.data; (s = memmem(s, res.len - (size_t)(s - res.data),
						 delim, dl)); s++)
		nd++;
	CHECK(nb == nd + 1);    /* the header's parameter, then delimiter lines only */
	CHECK(res.len >= dl + 4 && !memcmp(res.data + res.len - dl - 4, delim, dl) &&
	      !memcmp(res.data + res.len - 4, "--\r\n", 4));
	/* Without SMTPUTF8, 8-bit bytes only in the returned original (the
	 * part after the third delimiter). */
	const char *third = res.data;
	for (int k = 0; k < 3 && third; k++)
		third = memmem(third + 1, res.len - (size_t)(third + 1 - res.data), delim, dl);
	int any8 = 0;
	for (size_t i = 0; i < res.len; i++) {
		int hi = (unsigned char)res.data[i] >= 0x80;
		CHECK(!hi || r.utf8 || (third && res.data + i > third));
		any8 |= hi;
	}
	CHECK(any8 == res.eightbit);
	dsn_result_free(&res);
	for (size_t i = 0; i < 7; i++)
		free(f[i]);
	return 0;
}
