/*
 * syncctl: the operator's command line for the sync daemons.  Commands that act on a daemon talk to its control
 * socket; run-history commands read ops.db read-only (they work while a daemon writes, and when none runs).
 * One file per command (cmd-*.c), gathered in ctl_table[] in syncctl.c.
 */
#ifndef RTOPACKS_SYNCCTL_H
#define RTOPACKS_SYNCCTL_H

#include <cJSON.h>
#include <stdbool.h>

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
};

extern const struct sctl_cmd sctl_cmd_status, sctl_cmd_trigger, sctl_cmd_cancel, sctl_cmd_runs, sctl_cmd_steps,
    sctl_cmd_cursor;

/* The daemons syncctl knows, by name and sync_type. */
struct sctl_daemon {
	const char *name;
	const char *sync_type;
};
extern const struct sctl_daemon sctl_daemons[];
const struct sctl_daemon *sctl_find_daemon(const char *name_or_type);

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
struct db;
struct db *sctl_open_ops(struct sctl *, int *exitcode);
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
