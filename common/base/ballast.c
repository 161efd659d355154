#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ballast.h"
#include "log.h"
#include "ownfile.h"

static void
ballast_path(const char *dir, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/.%s.ballast", dir, name);
}

void
ballast_create(const char *dir, const char *name)
{
	char path[4096], *cause = NULL;
	int fd, rc;

	ballast_path(dir, name, path, sizeof path);
	/* The state directory is group-writable: never write through a link or into a file someone else made. */
	if ((fd = ownfile_open(path, O_WRONLY, 0600, &cause)) == -1) {
		log_warnx("no ballast file (the space it reserves for recording a failure on a full disk): %s", cause);
		free(cause);
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
	/* Only our own ballast: never delete a file another user put under its name. */
	if (!ownfile_is_ours(path) || unlink(path) == -1)
		return false;
	log_warnx("released the ballast file %s to record a failure: free some space on that file system", path);
	return true;
}
