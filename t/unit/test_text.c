/*
 * test_text.c - text_escape, the one escaping of untrusted text, and
 * text_utf8_len.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "text.h"
#include "t/tap.h"

static char out[512];

static const char *esc(const char *in, size_t n)
{
	text_escape(out, sizeof(out), in, n);
	return out;
}

#define ESC(in, want, name) is_str(esc(in, sizeof(in) - 1), want, name)

int main(void)
{
	ESC("mail.example.org", "mail.example.org", "printable ASCII unchanged");
	ESC("\"a\\\"b\"@example.org", "\"a\\\"b\"@example.org", "quoted pairs kept as written");
	ESC("\x1b[31mred\x1b[0m", "\\x1B[31mred\\x1B[0m", "ESC sequences escaped");
	ESC("a\r\nb\tc", "a\\x0D\\x0Ab\\x09c", "CR, LF, TAB escaped");
	ESC("a\0b", "a\\x00b", "NUL escaped, not an end");
	ESC("del\x7f", "del\\x7F", "DEL escaped");
	ESC("j\xc3\xb6rg@b\xc3\xbcro.example", "j\xc3\xb6rg@b\xc3\xbcro.example",
	    "legitimate UTF-8 stays readable");
	ESC("\xe7\x94\xa8\xe6\x88\xb7@\xf0\x9f\x93\xa7.example",
	    "\xe7\x94\xa8\xe6\x88\xb7@\xf0\x9f\x93\xa7.example", "CJK and 4-byte UTF-8 kept");
	ESC("user\xe2\x80\xae" "gpj.exe@x", "user\\u202Egpj.exe@x", "RLO U+202E escaped");
	ESC("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad",
	    "\\u202A\\u202B\\u202C\\u202D", "U+202A..U+202D escaped");
	ESC("\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9",
	    "\\u2066\\u2067\\u2068\\u2069", "isolates U+2066..U+2069 escaped");
	ESC("\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c", "\\u200E\\u200F\\u061C", "LRM, RLM, ALM escaped");
	ESC("a\xe2\x80\xa8" "b\xe2\x80\xa9", "a\\u2028b\\u2029", "line/paragraph separators escaped");
	ESC("\xc2\x85\xc2\x9b" "1m\xc2\x80\xc2\x9f", "\\u0085\\u009B1m\\u0080\\u009F",
	    "C1 controls (UTF-8 encoded) escaped");
	ESC("\xc2\xa0\xe2\x80\x8d", "\xc2\xa0\xe2\x80\x8d", "U+00A0 and U+200D are not controls");
	ESC("\x9b" "31m", "\\x9B31m", "a raw C1 byte (invalid UTF-8) escaped");
	ESC("\xc0\xaf", "\\xC0\\xAF", "overlong UTF-8 escaped byte by byte");
	ESC("\xed\xa0\x80", "\\xED\\xA0\\x80", "surrogate escaped");
	ESC("\xf4\x90\x80\x80", "\\xF4\\x90\\x80\\x80", "beyond U+10FFFF escaped");
	ESC("ab\xe2\x80", "ab\\xE2\\x80", "truncated sequence at the end escaped");
	ESC("\xff\xfe", "\\xFF\\xFE", "bytes never in UTF-8 escaped");

	/* Bounded output, cut between whole pieces. */
	char small[8];
	size_t n = text_escape(small, sizeof(small), "abc\x1b" "def", 7);
	is_str(small, "abc\\x1B", "cut after a whole escape");
	is_int(n, 7, "length returned");
	n = text_escape(small, sizeof(small), "abcd\x1b" "ef", 7);
	is_str(small, "abcd", "an escape that does not fit is left out whole");
	n = text_escape(small, sizeof(small), "abcde\xc3\xb6", 7);
	is_str(small, "abcde\xc3\xb6", "UTF-8 that fits is kept");
	n = text_escape(small, sizeof(small), "abcdef\xc3\xb6", 8);
	is_str(small, "abcdef", "UTF-8 is never cut in half");
	n = text_escape(small, 1, "abc", 3);
	is_int(n, 0, "outlen 1: empty");
	is_int(small[0], 0, "... and terminated");
	is_int(text_escape(small, 0, "abc", 3), 0, "outlen 0: nothing written");

	/* Every output byte is printable ASCII or part of kept UTF-8. */
	char all[256], big[2048];
	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	n = text_escape(big, sizeof(big), all, sizeof(all));
	int clean = 1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)big[i] < 0x20 || (unsigned char)big[i] >= 0x7f)
			clean = 0;
	ok(clean && n == 95 + 161 * 4, "all 256 single bytes: 95 kept, 161 escaped, no raw control");

	uint32_t cp = 0;
	is_int(text_utf8_len((const unsigned char *)"\xe2\x80\xae", 3, &cp), 3, "utf8_len of U+202E");
	is_int(cp, 0x202e, "its code point");
	is_int(text_utf8_len((const unsigned char *)"\xe2\x80\xae", 2, &cp), 0,
	       "a sequence longer than the bytes left: 0");
	is_int(text_utf8_len((const unsigned char *)"A", 1, &cp), 1, "ASCII: 1");
	return done_testing();
}
