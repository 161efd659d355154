/*
 * The cycle engine: the cursor/phase state machine every daemon runs.
 *
 * A job is an ordered table of phases.  A phase runs as a sequence of steps; a step does one bounded unit of work
 * (one page, one batch), possibly asynchronously (HTTP on the event loop), and ends with step_done() (more to do
 * in this phase, or the phase is done) or step_fail() (retryable or fatal).
 *
 * Durability: a step's data writes, its new cursor (phase, position inside the phase, cycle and job state) and
 * its step row commit in ONE SQLite transaction.  The transaction is opened by step_db() and committed by
 * step_done(); it must not span a wait for the network (the engine rolls back and fails a step that leaves one
 * open across the event loop), so a step fetches first and writes at the end.  A crash, kill or stop therefore
 * resumes exactly at the last committed step: the cursor table (<sync_type>_cursor in ops.db) says where.  A job
 * that writes rtopacks.db also writes a copy of the cursor there (sync_checkpoint) in every cursor commit, with the
 * same seq: the two files can then differ by one commit only, and start-up knows which (cycle-corpus.c).
 *
 * Failure: a failing step is rolled back and retried with backoff up to [daemon] step_retries times, then the run
 * ends 'failed' with the error on the run and step rows, the cursor left in place, and a failure mail queued; the
 * next trigger resumes there.  Cancel stops at the next step boundary; SIGTERM lets the current step finish (up to
 * stop_grace, then rolls it back) and stops.
 */
#ifndef RTOPACKS_CYCLE_H
#define RTOPACKS_CYCLE_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "crashpoint.h"

struct buf;
struct cfg_key;
struct config;
struct ctl_cmd;
struct daemon;
struct db;
struct ev_loop;
struct http_group;
struct outbox;
struct step;
struct cycle;

enum step_result {
	STEP_MORE,		/* committed; run another step of this phase */
	STEP_PHASE_DONE,	/* committed; the phase is complete, go on to the next */
};

enum step_error {
	STEP_RETRY,		/* transient: retry the step (same cursor) after a backoff */
	STEP_FATAL,		/* retrying cannot help (e.g. credentials rejected): fail the run now */
};

/*
 * The phase writes rows into rtopacks.db (a phase without it must not): a kill that splits one of its commits
 * between the two files loses those rows, and start-up undoes the commit; any other commit of a corpus job carries
 * only the checkpoint into rtopacks.db and stands (cycle-corpus.c).
 */
#define PHASE_CORPUS 0x1

struct phase_def {
	const char *name;
	void (*run)(struct step *);	/* start one step; must end it with step_done or step_fail */
	unsigned flags;
};

struct job_def {
	const char *daemon;		/* "tga-sync": config section, socket name, program name */
	const char *sync_type;		/* "tga_sync": observatory sync_type, cursor table <sync_type>_cursor */
	const char *description;	/* one line for --help */
	const struct phase_def *phases;
	size_t nphases;
	bool uses_corpus;		/* attach rtopacks.db (needed by PHASE_CORPUS phases) */
	const struct cfg_key *config_keys;	/* the daemon's own keys in its section (besides the common ones) */
	/*
	 * The daemon's share of the account's D1 API limit (requests per 5 minutes) when [d1] requests_per_5min names
	 * none; 0: D1_DEFAULT_BUDGET.  Every D1 request of the daemon (the observatory mirror and its own work) goes
	 * through one client paced by it (daemon.h).
	 */
	int d1_budget;

	/* Optional hooks. */
	/*
	 * Check the job's own settings and secrets the way init will, without side effects: `-n` runs it (after the
	 * shared checks), so that "configuration OK" means the daemon will start.  init must refuse nothing this lets
	 * through, so it should call the same validation.
	 */
	int (*check)(const struct config *, const char *section, char **cause);
	int (*init)(struct daemon *, char **cause);	/* after config and databases: set daemon->job_ctx */
	void (*fini)(struct daemon *);
	int (*reload)(struct daemon *, char **cause);	/* SIGHUP, between runs, after the new config is in */
	/* Render a run's summary JSON (set by step_set_summary) as the change summary text of the mail. */
	void (*format_summary)(const cJSON *summary, struct buf *out);
	void (*housekeeping)(struct daemon *);		/* every housekeeping_interval */
	void (*status)(struct daemon *, cJSON *out);	/* extra fields for `status` */
	/*
	 * Append the job's own series to its metrics textfile, after the shared ones (metrics.h has the helpers).
	 * On error return -1 with *cause having written nothing: the monitor logs it and writes the shared ones.
	 */
	int (*metrics)(struct daemon *, struct buf *out, char **cause);
	const struct ctl_cmd *const *ctl_cmds;		/* extra control commands (NULL-terminated) */
};

/* --- what a phase's step may do ------------------------------------------------------------------------------- */

struct daemon *step_daemon(struct step *);	/* the host's (cycle_host.daemon), for the daemon's own code */
void *step_job(struct step *);			/* the job's state (cycle_host.job_ctx) */
const char *step_phase(struct step *);
const char *step_cursor(struct step *);		/* position inside the phase at the start of this step; "" first */
const char *step_run_id(struct step *);
const char *step_cycle_id(struct step *);
bool step_full(struct step *);			/* the cycle was triggered with --full */
bool step_flag(struct step *, const char *flag);	/* flags.<flag> in the cycle state (cycle_set_trigger_flag) */
int step_attempt(struct step *);		/* 0 on the first try of this step, 1 on the first retry, ... */
bool step_stopping(struct step *);		/* a stop or cancel is pending: finish this step quickly */
/* JSON state saved with the step's commit: per cycle, and across cycles.  Modify freely; dropped on failure. */
cJSON *step_cycle_state(struct step *);
cJSON *step_job_state(struct step *);
/*
 * The step's HTTP requests go in this group, so the engine can cancel them when it must abort the step (stop
 * grace expired): each then ends with on_done(cancelled).  A phase reports (step_done/step_fail) exactly once, after
 * its last request has ended (count them): the step, and its group, are freed by the report.  Other waits register
 * an abort hook that ends them and reports back.
 */
struct http_group *step_http(struct step *);
void step_on_abort(struct step *, void (*fn)(void *), void *arg);
/* Open (once) and return the step's transaction; NULL with *cause on error (then step_fail). */
struct db *step_db(struct step *, char **cause);
void step_set_cursor(struct step *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void step_count(struct step *, int64_t records_in, int64_t records_out);
/* Records skipped as invalid; what is logged names the record (e.g. the code). */
void step_reject(struct step *, int64_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Merge a JSON object into the step row's detail (numbers under the same key are added). */
void step_detail_add(struct step *, const char *key, int64_t n);
/* Store the cycle's change summary on the run row (with the number of changes) at this step's commit. */
void step_set_summary(struct step *, const cJSON *summary, int64_t changes);
/* The step row of this phase ends with this status (e.g. "failed" for a mail not delivered). */
void step_set_status(struct step *, const char *status, const char *error);
/*
 * End the run 'degraded', with this error on the run row, instead of 'complete' or 'partial': the cycle completed,
 * but something the operator must act on went wrong (qb-reconcile: a dead connection, a failed heartbeat).  It takes
 * effect only in the step that ends the cycle's last phase, so that phase decides it in each of its steps (a run that
 * resumes there decides it again from the cycle state).
 */
void step_set_run_degraded(struct step *, const char *error);

void step_done(struct step *, enum step_result);
void step_fail(struct step *, enum step_error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* --- the engine, as the daemon drives it ------------------------------------------------------------------- */

/*
 * What the engine gets from the process around it.  host/daemon.c fills it (in its struct daemon) before
 * cycle_new() and again after a reload (the configuration is replaced); the engine keeps a pointer to it and never
 * sees struct daemon, which it only hands, opaque, to the job's phases (step_daemon()).
 */
struct cycle_host {
	struct daemon *daemon;		/* opaque here: for the phases (step_daemon) */
	const struct job_def *job;
	const char *section;		/* the job's config section (= job->daemon) */
	struct ev_loop *loop;
	const struct config *cfg;	/* the current configuration */
	struct db *db;			/* ops.db as main, rtopacks.db attached as "corpus" if the job uses it */
	const char *ops_path, *corpus_path;	/* for messages */
	struct outbox *outbox;		/* failure and completion mails */
	void *job_ctx;			/* the job's own state (step_job) */
	const bool *stopping;		/* the process is stopping: a run started now ends at its first boundary */
};

enum trigger_result { TRIGGER_STARTED, TRIGGER_ALREADY_RUNNING, TRIGGER_ERROR };

struct cycle *cycle_new(const struct cycle_host *, char **cause);
void cycle_free(struct cycle *);
/* Re-read the engine's settings (step retries, backoff, stop grace) after a reload (from the host's cfg). */
void cycle_reconfigure(struct cycle *);
/*
 * At start-up, with the instance lock held: for a corpus job, make ops.db's cursor and rtopacks.db's checkpoint
 * agree again if a crash split the last commit (or refuse files that do not belong together: see cycle-corpus.c),
 * and mark runs left 'running' as 'stale'.  *resume is set when the cursor is not 'done'.
 */
int cycle_recover(struct cycle *, bool *resume, char **cause);
/*
 * Start a run: resume the cycle if the cursor is not 'done' (a full trigger abandons it and starts over), else a
 * new cycle.  trigger: timer|manual|catchup (resume is chosen by the engine).  run_id gets the run's id (also
 * the running one for TRIGGER_ALREADY_RUNNING).
 */
enum trigger_result cycle_trigger(struct cycle *, const char *trigger, const char *requested_by, bool full,
    char *run_id, size_t len, char **cause);
/*
 * A flag for the next cycle_trigger only (e.g. "republish"): that trigger writes flags.<flag> = true into the cycle
 * state it commits (a new cycle's or the resumed one's), where the phases read it (step_flag).
 */
void cycle_set_trigger_flag(struct cycle *, const char *flag);
void cycle_cancel(struct cycle *, const char *by);
/* SIGTERM: stop after the current step (rolled back after stop_grace). */
void cycle_stop(struct cycle *);
bool cycle_running(const struct cycle *);
const char *cycle_run_id(const struct cycle *);
/* Called by the daemon's prepare watcher: a transaction left open across the loop is rolled back and fails. */
void cycle_check_tx(struct cycle *);
/* Add the engine's state to a status object. */
void cycle_status(struct cycle *, cJSON *out);

/*
 * Events for watchers, sd_notify and --once: "run_start", "phase", "progress", "retry", "run_end".  data is a JSON
 * object owned by the engine (valid during the call).
 */
typedef void (*cycle_listener_fn)(const char *event, const cJSON *data, void *arg);
void cycle_set_listener(struct cycle *, cycle_listener_fn, void *arg);

/* The generic last phase, the completion mail: { "notify", phase_notify, 0 } in a job's phase table. */
void phase_notify(struct step *);

/*
 * Crash points for tests (crashpoint(), in base/crashpoint.h, RTOPACKS_CRASH_AT="name:N[,name:N...]").  The
 * engine's: step_begin, before_commit, after_commit (step commits), and per cursor commit, labelled "trigger" or
 * with the phase: before_commit@<label>, split_commit@<label> (ops.db committed, rtopacks.db not: splitcrash.h),
 * after_commit@<label>; split_commit counts every two-database commit.
 */

#endif
