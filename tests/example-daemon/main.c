/*
 * example-sync: the smallest daemon on the cycle engine (a template; see CMakeLists.txt here).  One phase, which
 * logs its greeting [example-sync] greeting times ([example-sync] repeat) and ends the cycle.
 */
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "cycle.h"
#include "daemon.h"
#include "log.h"

#define SECTION "example-sync"

static const struct cfg_key example_keys[] = {
	{ "greeting", CFG_STR, "hello", 0, 0, NULL, 0, "What the one phase logs." },
	{ "repeat", CFG_INT, "1", 1, 10, NULL, 0, "How many times it logs it." },
	{ NULL, 0, NULL, 0, 0, NULL, 0, NULL },
};

static void
phase_greet(struct step *st)
{
	const struct config *cfg = step_daemon(st)->cfg;
	int64_t i, n = config_int(cfg, SECTION, "repeat");

	for (i = 0; i < n; i++)
		log_info("%s", config_str(cfg, SECTION, "greeting"));
	step_count(st, n, 0);
	step_done(st, STEP_PHASE_DONE);
}

static const struct phase_def example_phases[] = {
	{ "greet", phase_greet, 0 },
};

static const struct job_def example_job = {
	.daemon = SECTION,
	.sync_type = "example_sync",
	.description = "The example daemon: one phase that logs a greeting.",
	.phases = example_phases,
	.nphases = sizeof example_phases / sizeof example_phases[0],
	.config_keys = example_keys,
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &example_job);
}
