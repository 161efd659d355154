/*
 * Files a daemon creates in a directory that others may write (the shared state directory is group-writable for
 * all three daemons): the lock file, the ballast, the metrics file.  Such a file is opened without following a
 * symbolic link, without blocking on a planted FIFO, and only if it is a regular file with one link that belongs
 * to the daemon's own user.  Anything else was put there by someone else, and writing through it would create or
 * clobber a file elsewhere.
 */
#ifndef RTOPACKS_OWNFILE_H
#define RTOPACKS_OWNFILE_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * open(2) with O_CREAT implied and O_NOFOLLOW, O_CLOEXEC, O_NOCTTY added; flags must not hold O_TRUNC (truncate
 * after the checks with ftruncate).  Returns the descriptor, or -1 with *cause naming the file and what to do.
 */
int ownfile_open(const char *path, int flags, mode_t mode, char **cause);
/* Whether path is a regular file of ours (lstat: a link is not followed); for deleting only what is ours. */
bool ownfile_is_ours(const char *path);

#endif
