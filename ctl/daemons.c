/*
 * The daemons syncctl knows: the table the build generates from the rtopacks_daemon() calls
 * (generated/syncctl-daemons.c), looked up by name or sync type, and listed in help and error messages.  The
 * commands use it; syncctl.c's main() sits above them all.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "sctl.h"

const struct sctl_daemon *
sctl_find_daemon(const char *name)
{
	const struct sctl_daemon *d;

	/* Hidden daemons (the engine's test daemon) are reachable too, but not advertised. */
	for (d = sctl_daemons; d->name != NULL; d++)
		if (strcmp(d->name, name) == 0 || strcmp(d->sync_type, name) == 0)
			return d;
	return NULL;
}

void
sctl_print_daemons(FILE *fp, bool type, const char *last_sep)
{
	const struct sctl_daemon *d;
	size_t n = 0, i = 0;

	for (d = sctl_daemons; d->name != NULL; d++)
		n += !d->hidden;
	for (d = sctl_daemons; d->name != NULL; d++) {
		if (d->hidden)
			continue;
		if (i > 0)
			fputs(i == n - 1 ? last_sep : ", ", fp);
		fputs(type ? d->sync_type : d->name, fp);
		i++;
	}
}
