/* Reading ops.db for run history, and the plain-text tables syncctl prints. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "fmt.h"
#include "sctl.h"
#include "timeutil.h"
#include "xmalloc.h"

/* Whether a read works; false only for the case immutable=1 is for: a WAL database without its -wal file. */
static bool
readable(struct db *db, const char *path)
{
	char *wal;
	int rc, code;
	bool no_wal;

	rc = sqlite3_exec(db_handle(db), "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
	code = sqlite3_extended_errcode(db_handle(db)) & 0xff;
	if (rc == SQLITE_OK || (code != SQLITE_READONLY && code != SQLITE_CANTOPEN))
		return true;
	xasprintf(&wal, "%s-wal", path);
	no_wal = access(wal, F_OK) == -1 && errno == ENOENT;
	free(wal);
	return !no_wal;
}

static char *
ops_path(struct sctl *s)
{
	const char *ops = config_str(s->cfg, "paths", "ops_db");
	char *path;

	if (ops != NULL)
		return xstrdup(ops);
	xasprintf(&path, "%s/ops.db", config_str(s->cfg, "paths", "state_dir"));
	return path;
}

struct db *
sctl_open_ops(struct sctl *s, int *exitcode)
{
	char *path = ops_path(s), *uri, *enc, *cause = NULL;
	struct db *db;

	/* Read-only: history commands never take a write lock, so they work while a daemon writes. */
	enc = path;
	xasprintf(&uri, "file:%s?mode=ro", enc);
	if ((db = db_open(uri, DB_READONLY, 5000, &cause)) != NULL && !readable(db, path)) {
		/*
		 * An operator may read ops.db, its -wal and -shm, but not create them (the state directory is the
		 * daemons').  With no daemon running there is no -wal, and SQLite cannot set up a read without
		 * creating one; with no -wal, the database file holds every commit, so read it as it stands.
		 */
		db_close(db);
		free(uri);
		xasprintf(&uri, "file:%s?immutable=1", enc);
		db = db_open(uri, DB_READONLY, 5000, &cause);
	}
	if (db == NULL) {
		fprintf(stderr, "syncctl: %s\n(is [paths] state_dir right, and may you read it?)\n", cause);
		free(cause);
		*exitcode = SCTL_FAILED;
	}
	free(uri);
	free(path);
	return db;
}

/*
 * A fresh install: tmpfiles.d makes ops.db an empty file, and the tables appear when a daemon first starts.  No run
 * has happened yet: that is a state the commands describe, not an error about SQL.  No file at all is an error (a
 * wrong [paths] state_dir looks like that), as sctl_open_ops reports it.
 */
struct db *
sctl_open_history(struct sctl *s, bool *fresh, int *exitcode)
{
	static const char sql[] = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sync_runs'";
	struct db *db;
	sqlite3_stmt *st;
	int rc;

	*fresh = false;
	if ((db = sctl_open_ops(s, exitcode)) == NULL)
		return NULL;
	if (sqlite3_prepare_v2(db_handle(db), sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "syncctl: reading ops.db: %s\n(may you read ops.db? see docs/install.md, operators)\n",
		    sqlite3_errmsg(db_handle(db)));
		db_close(db);
		*exitcode = SCTL_FAILED;
		return NULL;
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE) {
		db_close(db);
		*fresh = true;
		*exitcode = SCTL_OK;
		return NULL;
	}
	if (rc != SQLITE_ROW) {
		fprintf(stderr, "syncctl: reading ops.db: %s\n", sqlite3_errmsg(db_handle(db)));
		db_close(db);
		*exitcode = SCTL_FAILED;
		return NULL;
	}
	return db;
}

const char *
fmt_count(long long v, char *buf, size_t len)
{
	return fmt_thousands(v, buf, len);
}

const char *
fmt_duration(const char *from, const char *to, char *buf, size_t len)
{
	time_t a, b;
	long long s;

	if (from == NULL || to == NULL || !iso8601_parse(from, &a) || !iso8601_parse(to, &b) || b < a) {
		snprintf(buf, len, "-");
		return buf;
	}
	s = (long long)(b - a);
	if (s >= 3600)
		snprintf(buf, len, "%lldh %02lldm %02llds", s / 3600, s / 60 % 60, s % 60);
	else if (s >= 60)
		snprintf(buf, len, "%lldm %02llds", s / 60, s % 60);
	else
		snprintf(buf, len, "%llds", s);
	return buf;
}

void
print_json(const cJSON *j)
{
	char *s = cJSON_Print(j);

	printf("%s\n", s);
	free(s);
}

struct sctl_table {
	int ncols;
	const char *const *headers;
	const bool *numeric;
	char ***rows;
	size_t nrows;
};

struct sctl_table *
table_new(const char *const *headers, const bool *numeric, int ncols)
{
	struct sctl_table *t = xcalloc(1, sizeof *t);

	t->ncols = ncols;
	t->headers = headers;
	t->numeric = numeric;
	return t;
}

void
table_add(struct sctl_table *t, const char *const *cells)
{
	int i;

	t->rows = xreallocarray(t->rows, t->nrows + 1, sizeof *t->rows);
	t->rows[t->nrows] = xcalloc((size_t)t->ncols, sizeof(char *));
	for (i = 0; i < t->ncols; i++)
		t->rows[t->nrows][i] = xstrdup(cells[i] ? cells[i] : "");
	t->nrows++;
}

void
table_print(struct sctl_table *t)
{
	size_t *w = xcalloc((size_t)t->ncols, sizeof *w), r;
	int i;

	for (i = 0; i < t->ncols; i++)
		w[i] = strlen(t->headers[i]);
	for (r = 0; r < t->nrows; r++)
		for (i = 0; i < t->ncols; i++)
			if (strlen(t->rows[r][i]) > w[i])
				w[i] = strlen(t->rows[r][i]);
	for (i = 0; i < t->ncols; i++) {
		if (i + 1 == t->ncols)
			printf("%s\n", t->headers[i]);
		else
			printf(t->numeric[i] ? "%*s  " : "%-*s  ", (int)w[i], t->headers[i]);
	}
	for (r = 0; r < t->nrows; r++)
		for (i = 0; i < t->ncols; i++) {
			if (i + 1 == t->ncols)
				printf("%s\n", t->rows[r][i]);
			else
				printf(t->numeric[i] ? "%*s  " : "%-*s  ", (int)w[i], t->rows[r][i]);
		}
	free(w);
}

void
table_free(struct sctl_table *t)
{
	size_t r;
	int i;

	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++)
			free(t->rows[r][i]);
		free(t->rows[r]);
	}
	free(t->rows);
	free(t);
}
