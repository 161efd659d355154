/* syncctl cursor DAEMON: where the job's cycle stands (read from ops.db, so it works with the daemon down). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "sctl.h"

static int
cmd_cursor_exec(struct sctl *s, int argc, char **argv)
{
	static const struct option longopts[] = { { "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	static const char *const cols[] = { "cycle_phase", "phase_cursor", "run_id", "cycle_id", "full", "seq",
		"corpus_seq", "cycle_state", "job_state", "updated_at" };
	const struct sctl_daemon *d;
	struct db *db;
	sqlite3_stmt *st;
	char sql[512];
	bool fresh;
	int ch, rc = SCTL_OK, i;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch != 'j')
			return SCTL_USAGE;
		s->json = true;
	}
	if (optind + 1 != argc || (d = sctl_find_daemon(argv[optind])) == NULL) {
		fprintf(stderr, "usage: syncctl cursor DAEMON [--json]\n");
		return SCTL_USAGE;
	}
	if ((db = sctl_open_history(s, &fresh, &rc)) == NULL) {
		if (!fresh)
			return rc;
		fprintf(stderr, "syncctl: %s has no cursor yet: " SCTL_NO_HISTORY "\n", d->name);
		return SCTL_FAILED;
	}
	/* The table name comes from syncctl's own list of daemons, never from the command line as typed. */
	snprintf(sql, sizeof sql, "SELECT cycle_phase, phase_cursor, run_id, cycle_id, full, seq, corpus_seq,"
	    " cycle_state, job_state, updated_at FROM \"%s_cursor\" WHERE id = 1", d->sync_type);
	if (sqlite3_prepare_v2(db_handle(db), sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "syncctl: %s has no cursor yet (%s)\n", d->name, sqlite3_errmsg(db_handle(db)));
		db_close(db);
		return SCTL_FAILED;
	}
	if (sqlite3_step(st) != SQLITE_ROW) {
		fprintf(stderr, "syncctl: %s has no cursor yet (it has never started)\n", d->name);
		sqlite3_finalize(st);
		db_close(db);
		return SCTL_FAILED;
	}
	if (s->json) {
		cJSON *o = cJSON_CreateObject(), *j;

		cJSON_AddStringToObject(o, "daemon", d->name);
		for (i = 0; i < 10; i++) {
			if (sqlite3_column_type(st, i) == SQLITE_NULL)
				cJSON_AddNullToObject(o, cols[i]);
			else if (sqlite3_column_type(st, i) == SQLITE_INTEGER)
				cJSON_AddNumberToObject(o, cols[i], (double)sqlite3_column_int64(st, i));
			else if ((i == 7 || i == 8) && (j = cJSON_Parse(db_col_text(st, i))) != NULL)
				cJSON_AddItemToObject(o, cols[i], j);
			else
				cJSON_AddStringToObject(o, cols[i], db_col_text(st, i));
		}
		print_json(o);
		cJSON_Delete(o);
	} else {
		for (i = 0; i < 10; i++)
			printf("%-13s %s\n", cols[i], sqlite3_column_type(st, i) == SQLITE_NULL ? "-" :
			    db_col_text(st, i));
		if (strcmp(db_col_text(st, 0), "done") != 0)
			printf("\nThe cycle is unfinished: `syncctl trigger %s` resumes it at %s.\n", d->name,
			    db_col_text(st, 0));
	}
	sqlite3_finalize(st);
	db_close(db);
	return rc;
}

const struct sctl_cmd sctl_cmd_cursor = { "cursor", "DAEMON [--json]",
	"Where the daemon's cycle stands: its phase, the position inside it, and the run that holds it.",
	cmd_cursor_exec, NULL };
