/* example-sync's part of syncctl: a subcommand (syncctl example) and a doctor check, from this folder only. */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "sctl.h"

static int
cmd_example_exec(struct sctl *s, int argc, char **argv)
{
	printf("example-sync: hello from syncctl (%d argument%s)\n", argc - 1, argc == 2 ? "" : "s");
	return SCTL_OK;
}

static const struct sctl_cmd cmd_example = { "example", "[ARGS]", "The example daemon's own subcommand.",
	cmd_example_exec, NULL };
static const struct sctl_cmd *const example_cmds[] = { &cmd_example, NULL };

static void
example_doctor(struct sctl_report *r, const struct sctl_daemon *d, struct db *db, time_t now, int64_t warn_s)
{
	cJSON_AddStringToObject(sctl_report_json(r), "example", d->sync_type);
}

const struct sctl_hooks sctl_hooks_example_sync = {
	.cmds = example_cmds,
	.doctor = example_doctor,
	.doctor_help = "the example's own check",
};
