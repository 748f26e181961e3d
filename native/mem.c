/*
 * mem.c - the four functions a freestanding C compiler may call on its own
 * (for struct copies and initializers) even with -fno-builtin. Hidden: the
 * hook must not export them or interpose on anyone's. Never called from the
 * takeover routine (make check rejects calls out of its section).
 */
#define RS_MEM __attribute__((visibility("hidden"), section(".text.noimage"))) /* hook.ld: with the no-image path */

typedef unsigned long size_t;

RS_MEM void *memcpy(void *to, const void *from, size_t n)
{
	unsigned char *d = to;
	const unsigned char *s = from;
	while (n--)
		*d++ = *s++;
	return to;
}

RS_MEM void *memmove(void *to, const void *from, size_t n)
{
	unsigned char *d = to;
	const unsigned char *s = from;
	if (d < s)
		while (n--)
			*d++ = *s++;
	else
		while (n--)
			d[n] = s[n];
	return to;
}

RS_MEM void *memset(void *to, int c, size_t n)
{
	unsigned char *d = to;
	while (n--)
		*d++ = (unsigned char)c;
	return to;
}

RS_MEM int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}
