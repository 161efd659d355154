#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "ownfile.h"
#include "xmalloc.h"

/* The checks on what open() returned: the name may have been anything when we opened it. */
static int
check_ours(int fd, const char *path, char **cause)
{
	struct stat st;

	if (fstat(fd, &st) == -1) {
		xasprintf(cause, "cannot stat %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		xasprintf(cause, "%s is not a regular file: someone else put it there; remove it", path);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		xasprintf(cause, "%s belongs to uid %u, not to this daemon's user (uid %u): someone else created it; "
		    "remove it", path, (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	if (st.st_nlink != 1) {
		xasprintf(cause, "%s has %lu hard links: it is not the daemon's own file; remove it", path,
		    (unsigned long)st.st_nlink);
		return -1;
	}
	return 0;
}

int
ownfile_open(const char *path, int flags, mode_t mode, char **cause)
{
	int fd, fl;

	if (flags & O_TRUNC) {
		xasprintf(cause, "%s: internal error: ownfile_open with O_TRUNC (truncate after the checks)", path);
		return -1;
	}
	/* O_NONBLOCK: opening a FIFO planted under this name for writing would block the daemon. */
	if ((fd = open(path, flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode)) == -1) {
		if (errno == ELOOP)
			xasprintf(cause, "%s is a symbolic link: someone else put it there (the daemon never follows "
			    "one in its directories); remove it", path);
		else
			xasprintf(cause, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (check_ours(fd, path, cause) == -1) {
		close(fd);
		return -1;
	}
	if ((fl = fcntl(fd, F_GETFL)) == -1 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
		xasprintf(cause, "cannot set the flags of %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

bool
ownfile_is_ours(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() && st.st_nlink == 1;
}
