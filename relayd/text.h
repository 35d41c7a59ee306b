/*
 * text.h - untrusted text: UTF-8 well-formedness, and the one escaping
 * function every byte a client (or a remote server) controls goes
 * through before it reaches a log line, a header we write or a bounce.
 *
 * Pure functions over caller buffers, no allocation.
 */
#ifndef RELAYD_TEXT_H
#define RELAYD_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Length (1-4) of the well-formed UTF-8 sequence at p, reading at most n
 * bytes, with its code point in *cp; 0 when it is not well-formed
 * (overlong, surrogate, beyond U+10FFFF, truncated).  n must be >= 1. */
size_t text_utf8_len(const unsigned char *p, size_t n, uint32_t *cp);

/* Copy the n bytes at in into out (outlen bytes, NUL-terminated when
 * outlen > 0) so that nothing in it can act on a terminal, a log viewer
 * or a mail header, while legitimate UTF-8 stays readable:
 *   - C0 controls (CR, LF, TAB, ESC, NUL...) and DEL become \xHH;
 *   - a byte that does not start a well-formed UTF-8 sequence, \xHH;
 *   - C1 controls (U+0080..U+009F), the bidirectional controls (U+061C,
 *     U+200E, U+200F, U+202A..U+202E, U+2066..U+2069) and the line and
 *     paragraph separators (U+2028, U+2029), \uHHHH;
 *   - everything else (printable ASCII, other UTF-8) is copied.
 * The backslash itself is left alone: addresses with quoted pairs stay
 * as written, and the result is for reading, not for decoding.  Output
 * that does not fit is cut between two whole pieces.  Returns the
 * length written (without the NUL). */
size_t text_escape(char *out, size_t outlen, const char *in, size_t n);

#endif
