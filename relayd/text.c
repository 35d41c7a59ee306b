/*
 * text.c - UTF-8 decoding and the escaping of untrusted text (see text.h).
 */
#include <stdio.h>
#include <string.h>
#include "text.h"

size_t text_utf8_len(const unsigned char *p, size_t n, uint32_t *cpp)
{
	size_t len;
	uint32_t cp;
	if (p[0] < 0x80) {
		*cpp = p[0];
		return 1;
	}
	if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* Overlong forms, surrogates and out-of-range code points. */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cpp = cp;
	return len;
}

/* Code points that reorder or break what surrounds them when shown
 * (Unicode's Bidi_Control set, the line/paragraph separators) and the
 * C1 controls, which some terminals obey like ESC sequences. */
static int invisible_control(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x61c || cp == 0x200e ||
	       cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

size_t text_escape(char *out, size_t outlen, const char *in, size_t n)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0;
	if (outlen == 0)
		return 0;
	for (size_t i = 0; i < n;) {
		char piece[8];
		size_t plen, used;
		uint32_t cp = 0;
		size_t k = s[i] >= 0x80 ? text_utf8_len(s + i, n - i, &cp) : 1;
		if (s[i] < 0x20 || s[i] == 0x7f || k == 0) {
			plen = (size_t)snprintf(piece, sizeof(piece), "\\x%02X", s[i]);
			used = 1;
		} else if (k > 1 && invisible_control(cp)) {
			plen = (size_t)snprintf(piece, sizeof(piece), "\\u%04X", (unsigned)cp);
			used = k;
		} else {
			memcpy(piece, s + i, k);
			plen = used = k;
		}
		if (plen > outlen - 1 - o)
			break;
		memcpy(out + o, piece, plen);
		o += plen;
		i += used;
	}
	out[o] = 0;
	return o;
}
