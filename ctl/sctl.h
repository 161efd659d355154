/*
 * sctl.h: what every syncctl command and each daemon's syncctl hooks use.  syncctl is the operator's command line
 * for the sync daemons.  Commands that act on a daemon talk to its control socket; run-history commands read ops.db
 * read-only (they work while a daemon writes, and when none runs).
 * One file per command (cmd-*.c), listed in syncctl.c; each daemon adds its own (struct sctl_hooks) from its folder.
 */
#ifndef RTOPACKS_SCTL_H
#define RTOPACKS_SCTL_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

struct config;

/* Exit codes (documented in --help and the README). */
#define SCTL_OK 0
#define SCTL_FAILED 1		/* the run failed, or the command did */
#define SCTL_USAGE 2
#define SCTL_PARTIAL 3		/* the run completed with rejected records */
#define SCTL_CANCELLED 4	/* the run was cancelled or the daemon stopped */
#define SCTL_UNREACHABLE 5	/* the daemon does not answer (not running?) */
#define SCTL_ALREADY 6		/* trigger: a run is already in progress */
#define SCTL_DENIED 7		/* the daemon refused us (permissions) */
#define SCTL_DEGRADED 10	/* the run completed degraded: something needs the operator (its error says what) */

struct sctl {
	struct config *cfg;
	const char *config_path;
	bool json;
};

struct sctl_cmd {
	const char *name;
	const char *usage;	/* arguments */
	const char *help;	/* one line */
	int (*exec)(struct sctl *, int argc, char **argv);
	void (*help_fn)(FILE *);	/* prints the line instead of help (a help made from the daemons' hooks) */
};

extern const struct sctl_cmd sctl_cmd_status, sctl_cmd_trigger, sctl_cmd_cancel, sctl_cmd_runs, sctl_cmd_steps,
    sctl_cmd_cursor;

/*
 * What a daemon adds to syncctl, from its own folder (the CTL_SOURCES of its rtopacks_daemon() call define
 * `const struct sctl_hooks sctl_hooks_<sync_type>`).  Every member may be NULL.
 */
struct sctl_daemon;
struct sctl_report;
struct db;
struct sctl_hooks {
	const struct sctl_cmd *const *cmds;	/* its subcommands (NULL-terminated), listed after the common ones */
	/*
	 * Its own doctor checks on ops.db (read-only), after the common ones: findings with sctl_finding(), extra
	 * JSON in sctl_report_json().  warn_s: --token-warn, how far ahead an expiry is worth a warning.
	 */
	void (*doctor)(struct sctl_report *, const struct sctl_daemon *, struct db *, time_t now, int64_t warn_s);
	const char *doctor_help;	/* what those checks look for, for doctor's help ("a late CRICOS edition") */
	const char *help;		/* a note for `syncctl --help` (its exit codes, say), or NULL */
};

/* The daemons syncctl knows, generated from the daemons' folders at build time (generated/syncctl-daemons.c). */
struct sctl_daemon {
	const char *name;
	const char *sync_type;
	bool hidden;			/* reachable by name, not listed (the engine's test daemon) */
	const struct sctl_hooks *hooks;	/* NULL: nothing of its own */
};
extern const struct sctl_daemon sctl_daemons[];	/* terminated by name NULL */
const struct sctl_daemon *sctl_find_daemon(const char *name_or_type);
/* Print the listed daemons' names (sync types if type) as "a, b<last_sep>c". */
void sctl_print_daemons(FILE *, bool type, const char *last_sep);

/* Doctor findings (cmd-doctor.c), for a daemon's doctor hook. */
enum sctl_level { SCTL_LEVEL_OK = 0, SCTL_LEVEL_WARN = 1, SCTL_LEVEL_PROBLEM = 2 };
void sctl_finding(struct sctl_report *, enum sctl_level, const char *check, const char *action, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
cJSON *sctl_report_json(struct sctl_report *);	/* the job's object in `doctor --json` */
void sctl_json_time(cJSON *o, const char *key, time_t t);	/* ISO 8601 UTC, or null for 0 */

/* Control-socket client (client.c). */
struct sctl_conn;
struct sctl_conn *sctl_connect(struct sctl *, const char *daemon, int *exitcode);
/* Send a request; args may be NULL (ownership taken). */
int sctl_send(struct sctl_conn *, const char *cmd, cJSON *args);
/* Next message (reply or event); NULL on EOF/timeout/error (timeout_ms -1: wait as long as it takes). */
cJSON *sctl_recv(struct sctl_conn *, int timeout_ms);
void sctl_close(struct sctl_conn *);
/* Print an error reply and map its code to an exit code. */
int sctl_reply_error(const char *daemon, const cJSON *reply);

/* Run history (history.c). */
struct db *sctl_open_ops(struct sctl *, int *exitcode);
/*
 * ops.db for the history commands (runs, steps, cursor, doctor).  On a fresh install no daemon has started yet and
 * there is no history: ops.db is the empty file tmpfiles.d made, with no tables.  Then NULL with *fresh set and
 * *exitcode SCTL_OK, and the command says so in its own words; NULL with *fresh false is an error (printed).
 */
struct db *sctl_open_history(struct sctl *, bool *fresh, int *exitcode);
/* The sentence syncctl prints for that case. */
#define SCTL_NO_HISTORY "no daemon has started with this configuration yet ([paths] state_dir has no run history)"
/* Print rows as a table (header + rows of strings); numeric columns right-aligned. */
struct sctl_table;
struct sctl_table *table_new(const char *const *headers, const bool *numeric, int ncols);
void table_add(struct sctl_table *, const char *const *cells);
void table_print(struct sctl_table *);
void table_free(struct sctl_table *);
/* "12345" -> "12,345" */
const char *fmt_count(long long v, char *buf, size_t len);
/* Seconds between two ISO times, formatted "1h 02m 03s"; "-" if either is missing. */
const char *fmt_duration(const char *from, const char *to, char *buf, size_t len);
void print_json(const cJSON *);

/* Make stdout and stderr escape control characters (output.c): nothing read from a row or a socket drives the
 * terminal. */
void sctl_filter_output(void);

#endif
