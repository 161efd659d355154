/* syncctl runs: run history from ops.db (read-only), newest first, filtered by type, status and date. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "sctl.h"
#include "timeutil.h"

static const char SQL_RUNS[] =
    "SELECT run_id, sync_type, cycle_id, trigger, requested_by, full, status, phase, started_at, finished_at,"
    " records_in, records_out, changes, error, host, pid, version, resumed_from, summary FROM sync_runs"
    " WHERE (?1 IS NULL OR sync_type = ?1) AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR started_at >= ?3)"
    " ORDER BY started_at DESC, run_id DESC LIMIT ?4";

static bool
valid_status(const char *s)
{
	static const char *const all[] = { "running", "complete", "partial", "degraded", "failed", "cancelled", "stale",
	    NULL };
	int i;

	for (i = 0; all[i] != NULL; i++)
		if (strcmp(all[i], s) == 0)
			return true;
	return false;
}

static int
cmd_runs_exec(struct sctl *s, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "sync-type", required_argument, NULL, 't' },
		{ "status", required_argument, NULL, 's' },
		{ "since", required_argument, NULL, 'S' },
		{ "limit", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const headers[] = { "RUN ID", "TRIGGER", "STATUS", "STARTED", "DURATION", "IN", "OUT",
		"CHANGES", "PHASE / ERROR" };
	static const bool numeric[] = { false, false, false, false, true, true, true, true, false };
	const struct sctl_daemon *d;
	const char *type = NULL, *status = NULL;
	char since[ISO8601_LEN], *end;
	bool have_since = false;
	long limit = 20;
	struct db *db;
	sqlite3_stmt *st;
	char *cause = NULL;
	bool fresh;
	int ch, rc = SCTL_OK, step;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 't':
			if ((d = sctl_find_daemon(optarg)) == NULL) {
				fprintf(stderr, "syncctl: unknown sync type '%s' (", optarg);
				sctl_print_daemons(stderr, true, ", ");
				fputs(")\n", stderr);
				return SCTL_USAGE;
			}
			type = d->sync_type;
			break;
		case 's':
			if (!valid_status(optarg)) {
				fprintf(stderr, "syncctl: unknown status '%s' (running, complete, partial, degraded, "
				    "failed, cancelled, stale)\n", optarg);
				return SCTL_USAGE;
			}
			status = optarg;
			break;
		case 'S': {
			time_t t;
			int64_t ms;

			/* An absolute date or time, or an age such as 7d or 12h. */
			if (iso8601_parse(optarg, &t))
				iso8601_fmt(t, since);
			else if (duration_parse(optarg, &ms))
				iso8601_fmt(clock_now() - (time_t)(ms / 1000), since);
			else {
				fprintf(stderr, "syncctl: --since wants a date (2026-11-01), a time "
				    "(2026-11-01T04:00:00Z) or an age (7d, 12h), not '%s'\n", optarg);
				return SCTL_USAGE;
			}
			have_since = true;
			break;
		}
		case 'l':
			limit = strtol(optarg, &end, 10);
			if (*end != '\0' || limit < 1 || limit > 100000) {
				fprintf(stderr, "syncctl: --limit wants a number from 1 to 100000\n");
				return SCTL_USAGE;
			}
			break;
		case 'j':
			s->json = true;
			break;
		default:
			return SCTL_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "usage: syncctl runs [--sync-type T] [--status S] [--since DATE] [--limit N] [--json]\n");
		return SCTL_USAGE;
	}
	if ((db = sctl_open_history(s, &fresh, &rc)) == NULL) {
		if (fresh) {
			/* No history is an empty list, not an error: a script reading --json gets []. */
			if (s->json)
				printf("[]\n");
			else
				printf("no runs: " SCTL_NO_HISTORY "\n");
		}
		return rc;
	}
	if ((st = db_stmt(db, SQL_RUNS, &cause)) == NULL) {
		fprintf(stderr, "syncctl: %s\n", cause);
		free(cause);
		db_close(db);
		return SCTL_FAILED;
	}
	db_bind_text(st, 1, type);
	db_bind_text(st, 2, status);
	db_bind_text(st, 3, have_since ? since : NULL);
	db_bind_int(st, 4, limit);
	if (s->json) {
		cJSON *arr = cJSON_CreateArray();

		while ((step = sqlite3_step(st)) == SQLITE_ROW) {
			cJSON *o = cJSON_CreateObject(), *sum;
			int i;

			for (i = 0; i < sqlite3_column_count(st); i++) {
				const char *name = sqlite3_column_name(st, i);

				switch (sqlite3_column_type(st, i)) {
				case SQLITE_NULL:
					cJSON_AddNullToObject(o, name);
					break;
				case SQLITE_INTEGER:
					if (strcmp(name, "full") == 0)
						cJSON_AddBoolToObject(o, name, sqlite3_column_int(st, i));
					else
						cJSON_AddNumberToObject(o, name, (double)sqlite3_column_int64(st, i));
					break;
				default:
					if (strcmp(name, "summary") == 0 && (sum = cJSON_Parse(db_col_text(st, i))) != NULL)
						cJSON_AddItemToObject(o, name, sum);
					else
						cJSON_AddStringToObject(o, name, db_col_text(st, i));
				}
			}
			cJSON_AddItemToArray(arr, o);
		}
		print_json(arr);
		cJSON_Delete(arr);
	} else {
		struct sctl_table *t = table_new(headers, numeric, 9);

		while ((step = sqlite3_step(st)) == SQLITE_ROW) {
			char dur[32], in[32], out[32], chg[32], what[96];
			const char *finished = sqlite3_column_type(st, 9) == SQLITE_NULL ? NULL : db_col_text(st, 9);
			const char *cells[9];
			char started[ISO8601_LEN];

			snprintf(started, sizeof started, "%s", db_col_text(st, 8));
			if (sqlite3_column_type(st, 13) != SQLITE_NULL)
				snprintf(what, sizeof what, "%.90s", db_col_text(st, 13));
			else
				snprintf(what, sizeof what, "%s", db_col_text(st, 7));
			what[strcspn(what, "\n")] = '\0';
			cells[0] = db_col_text(st, 0);
			cells[1] = db_col_text(st, 3);
			cells[2] = db_col_text(st, 6);
			cells[3] = started;
			if (finished != NULL)
				fmt_duration(started, finished, dur, sizeof dur);
			else {
				char now[ISO8601_LEN];

				fmt_duration(started, iso8601_now(now), dur, sizeof dur);
			}
			cells[4] = dur;
			cells[5] = fmt_count(sqlite3_column_int64(st, 10), in, sizeof in);
			cells[6] = fmt_count(sqlite3_column_int64(st, 11), out, sizeof out);
			cells[7] = fmt_count(sqlite3_column_int64(st, 12), chg, sizeof chg);
			cells[8] = what;
			table_add(t, cells);
		}
		table_print(t);
		table_free(t);
	}
	if (step != SQLITE_DONE) {
		fprintf(stderr, "syncctl: reading %s: %s\n", db_path(db), sqlite3_errmsg(db_handle(db)));
		rc = SCTL_FAILED;
	}
	sqlite3_reset(st);
	db_close(db);
	return rc;
}

const struct sctl_cmd sctl_cmd_runs = { "runs", "[--sync-type T] [--status S] [--since DATE] [--limit N] [--json]",
	"Run history from ops.db, newest first (default 20). --since takes a date, a time or an age (7d).",
	cmd_runs_exec, NULL };
