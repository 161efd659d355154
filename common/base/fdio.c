#include <errno.h>
#include <unistd.h>

#include "fdio.h"

int
write_full(int fd, const void *p, size_t len)
{
	const char *s = p;

	while (len > 0) {
		ssize_t n = write(fd, s, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {
			/* write(2) of a non-zero length never returns 0 on a file or pipe; do not spin on it. */
			errno = EIO;
			return -1;
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}
