/* Plain descriptor I/O that stdio does not do for us. */
#ifndef RTOPACKS_FDIO_H
#define RTOPACKS_FDIO_H

#include <stddef.h>

/* write(2) all of p[0..len), again after EINTR and short writes; 0, or -1 with errno set. */
int write_full(int fd, const void *p, size_t len);

#endif
