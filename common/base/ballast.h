/*
 * A ballast file: 1 MiB of reserved space beside the databases.  When the file system fills up, the failure of the
 * run could not be written either, and the run would stop silently.  So a daemon creates the ballast at start-up
 * and, when it cannot record a failure, gives the ballast up and tries once more: the operator sees "disk is full"
 * in the run row and the mail, not a run that quietly stays 'running'.
 */
#ifndef RTOPACKS_BALLAST_H
#define RTOPACKS_BALLAST_H

#include <stdbool.h>

#define BALLAST_BYTES (1024 * 1024)

/* Create (or keep) dir/.<name>.ballast; a failure is only logged (nothing else depends on it). */
void ballast_create(const char *dir, const char *name);
/* Delete it; true if there was one to give up. */
bool ballast_release(const char *dir, const char *name);

#endif
