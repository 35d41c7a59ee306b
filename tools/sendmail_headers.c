/*
 * sendmail_headers.c - fields of a header section (see sendmail_headers.h).
 */
#include <string.h>
#include <strings.h>
#include "sendmail_headers.h"

/* The end of the line starting at p (just past its LF, or len). */
static size_t line_end(const char *buf, size_t len, size_t p)
{
	const char *nl = memchr(buf + p, '\n', len - p);
	return nl ? (size_t)(nl - buf) + 1 : len;
}

int sm_hdr_next(const char *buf, size_t len, size_t *pos, struct sm_field *f)
{
	size_t p = *pos;
	if (p >= len)
		return 0;
	size_t e = line_end(buf, len, p);
	while (e < len && (buf[e] == ' ' || buf[e] == '\t'))
		e = line_end(buf, len, e);
	f->start = p;
	f->len = e - p;
	const char *colon = memchr(buf + p, ':', f->len);
	size_t n = colon ? (size_t)(colon - (buf + p)) : f->len;
	f->value = colon ? n + 1 : f->len;
	while (n && (buf[p + n - 1] == ' ' || buf[p + n - 1] == '\t'))
		n--;
	f->name_len = n;
	*pos = e;
	return 1;
}

int sm_hdr_is(const char *buf, const struct sm_field *f, const char *name)
{
	size_t k = strlen(name);
	return f->value < f->len && f->name_len == k &&
	       strncasecmp(buf + f->start, name, k) == 0;
}

void sm_hdr_info(const char *buf, size_t len, struct sm_hdr_info *info)
{
	struct sm_field f;
	size_t pos = 0;
	memset(info, 0, sizeof(*info));
	while (sm_hdr_next(buf, len, &pos, &f)) {
		info->from |= sm_hdr_is(buf, &f, "From");
		info->date |= sm_hdr_is(buf, &f, "Date");
		info->msgid |= sm_hdr_is(buf, &f, "Message-ID");
		info->sender |= sm_hdr_is(buf, &f, "Sender");
	}
}

static const char *const plain[] = { "To", "Cc", "Bcc", NULL };
static const char *const resent[] = { "Resent-To", "Resent-Cc", "Resent-Bcc", NULL };

static int is_one_of(const char *buf, const struct sm_field *f,
		     const char *const *names)
{
	for (; *names; names++)
		if (sm_hdr_is(buf, f, *names))
			return 1;
	return 0;
}

int sm_hdr_recipients(const char *buf, size_t len, const char *domain,
		      struct sm_addr_list *out, const char **err,
		      const char **field)
{
	struct sm_field f;
	size_t pos = 0;
	const char *const *names = plain;
	while (sm_hdr_next(buf, len, &pos, &f))
		if (is_one_of(buf, &f, resent))
			names = resent;
	pos = 0;
	while (sm_hdr_next(buf, len, &pos, &f)) {
		if (!is_one_of(buf, &f, names))
			continue;
		if (sm_addr_parse_list(buf + f.start + f.value, f.len - f.value,
				       domain, out, err)) {
			for (const char *const *n = names; *n; n++)
				if (sm_hdr_is(buf, &f, *n))
					*field = *n;
			return -1;
		}
	}
	return 0;
}

size_t sm_hdr_strip_bcc(char *buf, size_t len)
{
	struct sm_field f;
	size_t pos = 0, out = 0;
	while (sm_hdr_next(buf, len, &pos, &f)) {
		if (sm_hdr_is(buf, &f, "Bcc") || sm_hdr_is(buf, &f, "Resent-Bcc"))
			continue;
		memmove(buf + out, buf + f.start, f.len);
		out += f.len;
	}
	return out;
}
