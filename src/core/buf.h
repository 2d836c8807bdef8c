/* A growable, length-tracked byte buffer, always NUL-terminated. */
#ifndef CORE_BUF_H
#define CORE_BUF_H

#include <stddef.h>
#include "core/log.h"

struct buf {
	char *data;	/* NULL until the first append; see buf_cstr() */
	size_t len;
	size_t cap;
};

#define BUF_INIT { NULL, 0, 0 }

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);		/* len = 0, keeps memory */
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Makes room for n octets in total (plus the NUL) without changing len. */
void buf_reserve_total(struct buf *b, size_t n);
/* Removes the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Always a valid C string ("" when empty). */
const char *buf_cstr(const struct buf *b);

#endif
