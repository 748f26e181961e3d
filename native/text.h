/*
 * text.h - the few ways the native entry points write text (paths, messages, the CPU words):
 * into a buffer bounded by END, always NUL-terminated, so END must leave room for the NUL.
 * Always inline: each lands in the section of its caller (the hook's no-image path, hook.ld).
 */
#ifndef RESIDENT_TEXT_H
#define RESIDENT_TEXT_H

#include "sys.h"

RS_INLINE char *rs_put(char *to, char *end, const char *s)
{
	while (*s && to < end)
		*to++ = *s++;
	*to = 0;
	return to;
}

/* V in BASE (10 or 16, lowercase), no padding. */
RS_INLINE char *rs_put_number(char *to, char *end, rs_u64 v, unsigned base)
{
	char digits[20];
	int n = 0;
	do {
		digits[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n && to < end)
		*to++ = digits[--n];
	*to = 0;
	return to;
}

#endif
