#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ballast.h"
#include "log.h"

static void
ballast_path(const char *dir, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/.%s.ballast", dir, name);
}

void
ballast_create(const char *dir, const char *name)
{
	char path[4096];
	int fd, rc;

	ballast_path(dir, name, path, sizeof path);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		log_warn("cannot create the ballast file %s", path);
		return;
	}
	/* posix_fallocate really allocates the blocks (a sparse file would reserve nothing). */
	if ((rc = posix_fallocate(fd, 0, BALLAST_BYTES)) != 0)
		log_warnx("cannot reserve %d bytes in %s: %s (the file system is nearly full)", BALLAST_BYTES, path,
		    strerror(rc));
	close(fd);
}

bool
ballast_release(const char *dir, const char *name)
{
	char path[4096];

	ballast_path(dir, name, path, sizeof path);
	if (unlink(path) == -1)
		return false;
	log_warnx("released the ballast file %s to record a failure: free some space on that file system", path);
	return true;
}
