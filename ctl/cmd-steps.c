/* syncctl steps RUN_ID: the phases of one run, with their counts and errors. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "db.h"
#include "publish-detail.h"
#include "sctl.h"

static const char SQL_STEPS[] =
    "SELECT step, status, records_in, records_out, rejected, attempts, started_at, finished_at, error, detail"
    " FROM sync_steps WHERE run_id = ? ORDER BY started_at, rowid";
static const char SQL_RUN[] = "SELECT sync_type, status, error FROM sync_runs WHERE run_id = ?";

static int
cmd_steps_exec(struct sctl *s, int argc, char **argv)
{
	static const struct option longopts[] = { { "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	static const char *const headers[] = { "STEP", "STATUS", "IN", "OUT", "REJECTED", "ATTEMPTS", "STARTED",
		"DURATION", "ERROR" };
	static const bool numeric[] = { false, false, true, true, true, true, false, true, false };
	struct db *db;
	sqlite3_stmt *st;
	char *cause = NULL;
	bool fresh;
	int ch, rc = SCTL_OK, step;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch != 'j')
			return SCTL_USAGE;
		s->json = true;
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: syncctl steps RUN_ID [--json]\n");
		return SCTL_USAGE;
	}
	if ((db = sctl_open_history(s, &fresh, &rc)) == NULL) {
		if (!fresh)
			return rc;
		fprintf(stderr, "syncctl: no run %s: " SCTL_NO_HISTORY "\n", argv[optind]);
		return SCTL_FAILED;
	}
	if ((st = db_stmt(db, SQL_RUN, &cause)) == NULL)
		goto dberr;
	db_bind_text(st, 1, argv[optind]);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		fprintf(stderr, "syncctl: no run %s (syncctl runs lists them)\n", argv[optind]);
		db_close(db);
		return SCTL_FAILED;
	}
	sqlite3_reset(st);
	if ((st = db_stmt(db, SQL_STEPS, &cause)) == NULL)
		goto dberr;
	db_bind_text(st, 1, argv[optind]);
	if (s->json) {
		cJSON *arr = cJSON_CreateArray();

		while ((step = sqlite3_step(st)) == SQLITE_ROW) {
			cJSON *o = cJSON_CreateObject(), *detail;

			cJSON_AddStringToObject(o, "step", db_col_text(st, 0));
			cJSON_AddStringToObject(o, "status", db_col_text(st, 1));
			cJSON_AddNumberToObject(o, "records_in", (double)sqlite3_column_int64(st, 2));
			cJSON_AddNumberToObject(o, "records_out", (double)sqlite3_column_int64(st, 3));
			cJSON_AddNumberToObject(o, "rejected", (double)sqlite3_column_int64(st, 4));
			cJSON_AddNumberToObject(o, "attempts", (double)sqlite3_column_int64(st, 5));
			cJSON_AddStringToObject(o, "started_at", db_col_text(st, 6));
			if (sqlite3_column_type(st, 7) == SQLITE_NULL)
				cJSON_AddNullToObject(o, "finished_at");
			else
				cJSON_AddStringToObject(o, "finished_at", db_col_text(st, 7));
			if (sqlite3_column_type(st, 8) == SQLITE_NULL)
				cJSON_AddNullToObject(o, "error");
			else
				cJSON_AddStringToObject(o, "error", db_col_text(st, 8));
			if ((detail = cJSON_Parse(db_col_text(st, 9))) != NULL)
				cJSON_AddItemToObject(o, "detail", detail);
			else
				cJSON_AddNullToObject(o, "detail");
			cJSON_AddItemToArray(arr, o);
		}
		print_json(arr);
		cJSON_Delete(arr);
	} else {
		struct sctl_table *t = table_new(headers, numeric, 9);
		struct buf pub;

		buf_init(&pub);

		while ((step = sqlite3_step(st)) == SQLITE_ROW) {
			char in[32], out[32], rej[32], att[32], dur[32];
			const char *cells[9];

			cells[0] = db_col_text(st, 0);
			cells[1] = db_col_text(st, 1);
			cells[2] = fmt_count(sqlite3_column_int64(st, 2), in, sizeof in);
			cells[3] = fmt_count(sqlite3_column_int64(st, 3), out, sizeof out);
			cells[4] = fmt_count(sqlite3_column_int64(st, 4), rej, sizeof rej);
			cells[5] = fmt_count(sqlite3_column_int64(st, 5), att, sizeof att);
			cells[6] = db_col_text(st, 6);
			cells[7] = fmt_duration(db_col_text(st, 6), sqlite3_column_type(st, 7) == SQLITE_NULL ? NULL :
			    db_col_text(st, 7), dur, sizeof dur);
			cells[8] = db_col_text(st, 8);
			table_add(t, cells);
			/* The publish phase's detail: what went to D1 (publish-detail.h). */
			if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
				cJSON *detail = cJSON_Parse(db_col_text(st, 9));

				if (pubdetail_is(detail)) {
					buf_printf(&pub, "\n%s:\n", db_col_text(st, 0));
					pubdetail_format(detail, db_col_text(st, 1), &pub, "  ");
				}
				cJSON_Delete(detail);
			}
		}
		table_print(t);
		table_free(t);
		if (pub.len > 0)
			fputs(pub.data, stdout);
		buf_free(&pub);
	}
	sqlite3_reset(st);
	db_close(db);
	return rc;
dberr:
	fprintf(stderr, "syncctl: %s\n", cause);
	free(cause);
	db_close(db);
	return SCTL_FAILED;
}

const struct sctl_cmd sctl_cmd_steps = { "steps", "RUN_ID [--json]",
	"The phases of one run: status, records in and out, rejected records, retries, errors.", cmd_steps_exec, NULL };
