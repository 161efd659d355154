/* A growable byte buffer, always NUL-terminated so text can be used as a C string. */
#ifndef RTOPACKS_BUF_H
#define RTOPACKS_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

void buf_init(struct buf *);
void buf_free(struct buf *);
void buf_reset(struct buf *);
void buf_add(struct buf *, const void *, size_t);
void buf_adds(struct buf *, const char *);
void buf_addc(struct buf *, char);
void buf_printf(struct buf *, const char *, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *, const char *, va_list) __attribute__((format(printf, 2, 0)));
/* Remove the first n bytes. */
void buf_consume(struct buf *, size_t n);
/* Hand over the data (the buffer is left empty). */
char *buf_release(struct buf *);

#endif
