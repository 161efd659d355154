#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "syncctl.h"

const struct sctl_daemon sctl_daemons[] = {
	{ "tga-sync", "tga_sync" },
	{ "cricos-sync", "cricos_sync" },
	{ "qb-reconcile", "qb_reconcile" },
	{ NULL, NULL },
};

extern const struct sctl_cmd sctl_cmd_qb;	/* cmd-qb.c: QuickBooks (qb-reconcile) */
extern const struct sctl_cmd sctl_cmd_doctor;	/* cmd-doctor.c: health of every job */

static const struct sctl_cmd *const ctl_table[] = {
	&sctl_cmd_status, &sctl_cmd_trigger, &sctl_cmd_cancel, &sctl_cmd_runs, &sctl_cmd_steps, &sctl_cmd_cursor,
	&sctl_cmd_qb, &sctl_cmd_doctor,
	NULL,
};

const struct sctl_daemon *
sctl_find_daemon(const char *name)
{
	const struct sctl_daemon *d;

	for (d = sctl_daemons; d->name != NULL; d++)
		if (strcmp(d->name, name) == 0 || strcmp(d->sync_type, name) == 0)
			return d;
	/* The engine's test daemon is reachable too, but not advertised. */
	if (strcmp(name, "test-sync") == 0 || strcmp(name, "test_sync") == 0) {
		static const struct sctl_daemon test = { "test-sync", "test_sync" };
		return &test;
	}
	return NULL;
}

static void
usage(FILE *fp)
{
	const struct sctl_cmd *const *c;

	fprintf(fp, "usage: syncctl [-c FILE] [--json] COMMAND [ARGS]\n\n"
	    "Operate the rtopacks-sync daemons (tga-sync, cricos-sync, qb-reconcile) and read their run history.\n\n"
	    "Commands:\n");
	for (c = ctl_table; *c != NULL; c++)
		fprintf(fp, "  %s %s\n      %s\n", (*c)->name, (*c)->usage, (*c)->help);
	fprintf(fp,
	    "\nOptions:\n"
	    "  -c FILE   configuration file (default %s, or $RTOPACKS_SYNC_CONFIG)\n"
	    "  --json    print JSON instead of tables (status, runs, steps, cursor)\n"
	    "  -h        this help\n\n"
	    "DAEMON is tga-sync, cricos-sync or qb-reconcile (or tga_sync, cricos_sync, qb_reconcile).\n\n"
	    "Exit status:\n"
	    "  0  success; for trigger --wait: the run completed\n"
	    "  1  the run failed, or the command failed (qb retry: the invoice did not sync)\n"
	    "  2  usage error\n"
	    "  3  trigger --wait: the run completed but rejected records (partial)\n"
	    "  4  trigger --wait: the run was cancelled, or the daemon stopped\n"
	    "  5  the daemon does not answer (not running?)\n"
	    "  6  trigger: a run is already in progress (its id is printed)\n"
	    "  7  the daemon refused the request (permission denied)\n"
	    "  8  doctor: something needs attention soon (warnings only)\n"
	    "  9  doctor: something needs action now (a missed, overrunning or stuck run, QuickBooks disconnected)\n"
	    "  10 trigger --wait: the run completed degraded: something needs the operator (qb-reconcile: the\n"
	    "     QuickBooks connection or heartbeat, or invoices that did not sync; the run's error says what)\n",
	    CONFIG_DEFAULT_PATH);
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
	const struct sctl_cmd *const *c, *cmd = NULL;
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
	for (c = ctl_table; *c != NULL; c++)
		if (strcmp((*c)->name, argv[0]) == 0)
			cmd = *c;
	if (cmd == NULL) {
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
