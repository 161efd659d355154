/* Crash points for tests: see crashpoint.h. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crashpoint.h"
#include "log.h"
#include "xmalloc.h"

void
crashpoint(const char *name)
{
	static char *spec;
	static bool parsed;
	static struct {
		char name[64];
		long at, seen;
	} points[16];
	static int npoints;
	int i;

	if (!parsed) {
		const char *env = getenv("RTOPACKS_CRASH_AT");
		char *tok, *save;

		parsed = true;
		if (env != NULL && *env != '\0') {
			spec = xstrdup(env);
			for (tok = strtok_r(spec, ",", &save); tok != NULL && npoints < 16;
			    tok = strtok_r(NULL, ",", &save)) {
				char *colon = strrchr(tok, ':');

				if (colon == NULL)
					continue;
				*colon = '\0';
				snprintf(points[npoints].name, sizeof points[npoints].name, "%s", tok);
				points[npoints].at = strtol(colon + 1, NULL, 10);
				npoints++;
			}
		}
	}
	for (i = 0; i < npoints; i++) {
		if (strcmp(points[i].name, name) == 0 && ++points[i].seen == points[i].at) {
			log_warnx("crash point %s:%ld reached: killing the process (test)", name, points[i].at);
			raise(SIGKILL);
		}
	}
}
