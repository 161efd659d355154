#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "sctl.h"

extern const struct sctl_cmd sctl_cmd_doctor;	/* cmd-doctor.c: health of every job */

/* The common commands; each daemon's own (sctl_hooks.cmds) come after them, and doctor last. */
static const struct sctl_cmd *const common_cmds[] = {
	&sctl_cmd_status, &sctl_cmd_trigger, &sctl_cmd_cancel, &sctl_cmd_runs, &sctl_cmd_steps, &sctl_cmd_cursor,
	NULL,
};

/* Call fn for every command, in the order --help lists them. */
static const struct sctl_cmd *
each_cmd(const struct sctl_cmd *(*fn)(const struct sctl_cmd *, void *), void *arg)
{
	const struct sctl_cmd *const *c, *found;
	const struct sctl_daemon *d;

	for (c = common_cmds; *c != NULL; c++)
		if ((found = fn(*c, arg)) != NULL)
			return found;
	for (d = sctl_daemons; d->name != NULL; d++)
		if (!d->hidden && d->hooks != NULL && d->hooks->cmds != NULL)
			for (c = d->hooks->cmds; *c != NULL; c++)
				if ((found = fn(*c, arg)) != NULL)
					return found;
	return fn(&sctl_cmd_doctor, arg);
}

static const struct sctl_cmd *
print_cmd(const struct sctl_cmd *c, void *arg)
{
	fprintf(arg, "  %s %s\n      ", c->name, c->usage);
	if (c->help_fn != NULL)
		c->help_fn(arg);
	else
		fputs(c->help, arg);
	fputc('\n', arg);
	return NULL;
}

static const struct sctl_cmd *
match_cmd(const struct sctl_cmd *c, void *arg)
{
	return strcmp(c->name, arg) == 0 ? c : NULL;
}

static void
usage(FILE *fp)
{
	const struct sctl_daemon *d;

	fprintf(fp, "usage: syncctl [-c FILE] [--json] COMMAND [ARGS]\n\n"
	    "Operate the rtopacks-sync daemons (");
	sctl_print_daemons(fp, false, ", ");
	fprintf(fp, ") and read their run history.\n\n"
	    "Commands:\n");
	each_cmd(print_cmd, fp);
	fprintf(fp,
	    "\nOptions:\n"
	    "  -c FILE   configuration file (default %s, or $RTOPACKS_SYNC_CONFIG)\n"
	    "  --json    print JSON instead of tables (status, runs, steps, cursor)\n"
	    "  -h        this help\n\n"
	    "DAEMON is ", CONFIG_DEFAULT_PATH);
	sctl_print_daemons(fp, false, " or ");
	fputs(" (or ", fp);
	sctl_print_daemons(fp, true, ", ");
	fprintf(fp, ").\n\n"
	    "Exit status:\n"
	    "  0  success; for trigger --wait: the run completed\n"
	    "  1  the run failed, or the command failed\n"
	    "  2  usage error\n"
	    "  3  trigger --wait: the run completed but rejected records (partial)\n"
	    "  4  trigger --wait: the run was cancelled, or the daemon stopped\n"
	    "  5  the daemon does not answer (not running?)\n"
	    "  6  trigger: a run is already in progress (its id is printed)\n"
	    "  7  the daemon refused the request (permission denied)\n"
	    "  8  doctor: something needs attention soon (warnings only)\n"
	    "  9  doctor: something needs action now (a missed, overrunning or stuck run, or a daemon's own check)\n"
	    "  10 trigger --wait: the run completed degraded: something needs the operator (the run's error says\n"
	    "     what)\n");
	for (d = sctl_daemons; d->name != NULL; d++)
		if (!d->hidden && d->hooks != NULL && d->hooks->help != NULL)
			fprintf(fp, "\n%s", d->hooks->help);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct cfg_section *const sections[] = { &cfg_paths, &cfg_control, &cfg_smtp, &cfg_http, &cfg_d1,
	    NULL };
	const struct sctl_cmd *cmd;
	struct sctl s;
	char *cause = NULL;
	int ch, rc;

	memset(&s, 0, sizeof s);
	s.config_path = getenv("RTOPACKS_SYNC_CONFIG") ? getenv("RTOPACKS_SYNC_CONFIG") : CONFIG_DEFAULT_PATH;
	log_init("syncctl", 0);
	sctl_filter_output();
	/* Options stop at the command: its own options follow it. */
	while ((ch = getopt_long(argc, argv, "+c:jh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			s.config_path = optarg;
			break;
		case 'j':
			s.json = true;
			break;
		case 'h':
			usage(stdout);
			return SCTL_OK;
		default:
			usage(stderr);
			return SCTL_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return SCTL_USAGE;
	}
	if (strcmp(argv[0], "help") == 0) {
		usage(stdout);
		return SCTL_OK;
	}
	if ((cmd = each_cmd(match_cmd, argv[0])) == NULL) {
		fprintf(stderr, "syncctl: unknown command '%s' (syncctl --help lists them)\n", argv[0]);
		return SCTL_USAGE;
	}
	if ((s.cfg = config_load(s.config_path, sections, &cause)) == NULL) {
		fprintf(stderr, "%s\nsyncctl: configuration not valid\n", cause);
		free(cause);
		return SCTL_FAILED;
	}
	/* A fresh getopt for the command's own options (optind = 0 re-initialises glibc's getopt, permuting too). */
	optind = 0;
	rc = cmd->exec(&s, argc, argv);
	config_free(s.cfg);
	return rc;
}
