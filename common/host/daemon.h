/*
 * The daemon skeleton every sync daemon shares: command line (-c FILE, -f, -n, --once), config, databases,
 * instance lock, control socket, signals (TERM/INT: finish the step and exit 0; HUP: reload between runs),
 * sd_notify (READY, STATUS, WATCHDOG, STOPPING) and the housekeeping timer.  A daemon's main() is one call:
 *
 *	int main(int argc, char **argv) { return daemon_main(argc, argv, &tga_sync_job); }
 */
#ifndef RTOPACKS_DAEMON_H
#define RTOPACKS_DAEMON_H

#include <ev.h>
#include <stdbool.h>

#include "config.h"
#include "cycle.h"

struct config;
struct control;
struct d1;
struct db;
struct evcurl;
struct mailer;
struct monitor;
struct outbox;

struct daemon {
	const struct job_def *job;
	const char *section;		/* = job->daemon: the config section */
	struct ev_loop *loop;
	char *config_path;
	struct config *cfg;
	struct db *db;			/* ops.db as main, rtopacks.db attached as "corpus" if the job uses it */
	char *ops_path, *corpus_path;
	struct evcurl *ec;
	struct mailer *mailer;
	struct outbox *outbox;
	/*
	 * The daemon's one D1 client (NULL without [d1]): the observatory mirror, the publish phase and qb-reconcile's
	 * billing all send through it, so one budget ([d1] requests_per_5min, else job->d1_budget) paces every D1
	 * request of the daemon and a 429 block stops them all.  Made before job->init; [d1] changes take effect at
	 * restart.  Each user cancels its own queries (d1_cancel_for) before it goes away.
	 */
	struct d1 *d1;
	struct d1_mirror *mirror;	/* runs, steps and cursor to D1's ops database (off without [d1]) */
	struct cycle *cycle;
	struct cycle_host engine;	/* what the cycle engine sees of this (engine_host() in daemon.c keeps it current) */
	struct control *control;
	void *job_ctx;			/* the job's own state (set by job->init) */
	struct monitor *monitor;	/* schedule, missed runs, metrics (monitor.c) */

	bool once;			/* --once: run one cycle and exit with its status */
	int exit_code;
	bool stopping;
	bool reload_pending;
	int lock_fd;
	char *socket_path;

	ev_signal sigterm, sigint, sighup;
	ev_timer watchdog, housekeeping, drain;
	ev_prepare tx_check;
	double drain_started, drain_limit;
	double last_status_notify;
	double housekeeping_passes;	/* completed passes; in `status`, so a test can wait for one to have run */
};

int daemon_main(int argc, char **argv, const struct job_def *);
/* The sections a job's configuration file has: the shared ones and [<daemon>] (own, filled here); list ends NULL.
 * The daemons load their file with it, and so does fuzz/fuzz_config.c. */
void daemon_config_sections(const struct job_def *, struct cfg_section *own, const struct cfg_section *list[7]);

/*
 * Queue a mail that must reach the operator once per occurrence of (kind, key): e.g. ("missed",
 * "2026-12-05T16:00:00Z").  Returns 1 if queued now, 0 if it was sent before, -1 on error.
 */
int daemon_alert_once(struct daemon *, const char *kind, const char *key, const char *subject, const char *body,
    char **cause);

#endif
