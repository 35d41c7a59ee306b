/*
 * smtp_dot.c - dot-stuffing and line ends for outbound content (smtp_dot.h).
 */
#include "smtp_dot.h"

void smtp_dot_init(struct smtp_dot *d)
{
	d->bol = 1;
	d->cr = 0;
}

size_t smtp_dot_encode(struct smtp_dot *d, const char *src, size_t len, char *dst)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = src[i];
		if (d->cr) {
			d->cr = 0;
			dst[o++] = '\n';
			d->bol = 1;
			if (c == '\n')
				continue;       /* the CRLF was complete */
		}
		if (c == '\r') {
			dst[o++] = '\r';
			d->cr = 1;
			d->bol = 0;
			continue;
		}
		if (c == '\n') {
			dst[o++] = '\r';
			dst[o++] = '\n';
			d->bol = 1;
			continue;
		}
		if (d->bol && c == '.')
			dst[o++] = '.';
		dst[o++] = c;
		d->bol = 0;
	}
	return o;
}

size_t smtp_dot_finish(struct smtp_dot *d, char *dst)
{
	size_t o = 0;

	if (d->cr) {
		dst[o++] = '\n';
	} else if (!d->bol) {
		dst[o++] = '\r';
		dst[o++] = '\n';
	}
	d->cr = 0;
	d->bol = 1;
	dst[o++] = '.';
	dst[o++] = '\r';
	dst[o++] = '\n';
	return o;
}
