/* The store's common part: the step's transaction, run numbers, lookups, the re-fetch list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cycle.h"
#include "db.h"
#include "log.h"
#include "store.h"
#include "timeutil.h"
#include "xmalloc.h"

#define REFETCH_MAX 10000

static const char SQL_RUN_INSERT[] =
    "INSERT INTO tga_runs (run_id, cycle_id, cycle_n, started_at) VALUES (?1, ?2,"
    " coalesce((SELECT cycle_n FROM tga_runs WHERE cycle_id = ?2 ORDER BY n LIMIT 1),"
    " (SELECT coalesce(max(n), 0) + 1 FROM tga_runs)), ?3) ON CONFLICT (run_id) DO NOTHING";
static const char SQL_RUN_GET[] = "SELECT n, cycle_n FROM tga_runs WHERE run_id = ?";
static const char SQL_TC_UPDATED[] = "SELECT updated_date FROM tga_components WHERE code = ? AND deleted_at IS NULL";
static const char SQL_RTO_UPDATED[] = "SELECT updated_date FROM tga_rtos WHERE code = ? AND deleted_at IS NULL";
static const char SQL_EMPTY[] =
    "SELECT NOT EXISTS (SELECT 1 FROM tga_components) AND NOT EXISTS (SELECT 1 FROM tga_rtos)";

const struct store_child *
store_child_of(const struct store_child *children, size_t n, int type)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (children[i].type == type)
			return &children[i];
	return NULL;
}

void
store_bind_bool(void *stmt, int idx, const struct rec *r, int field)
{
	sqlite3_stmt *q = stmt;
	const char *v = rec_str(r, field);

	if (v == NULL)
		sqlite3_bind_null(q, idx);
	else
		sqlite3_bind_int(q, idx, v[0] == '1');
}

int
store_write_child(struct store *s, const struct store_child *c, const char *code, int64_t seq, const char *updated,
    int64_t *changes, char **cause)
{
	sqlite3_stmt *q;
	int i;

	if ((q = db_stmt(s->db, c->upsert, cause)) == NULL)
		return -1;
	sqlite3_bind_text(q, 1, code, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, seq);
	for (i = 0; i < c->nfields; i++) {
		if (c->bools & (1 << i))
			store_bind_bool(q, 3 + i, &s->r, i);
		else
			store_bind_field(q, 3 + i, &s->r, i);
	}
	db_bind_text(q, 3 + c->nfields, updated);
	sqlite3_bind_int64(q, 4 + c->nfields, s->run_n);
	if (db_step_done(s->db, q, cause) == -1)
		return -1;
	*changes += sqlite3_changes(db_handle(s->db));
	return 0;
}

int
store_begin(struct store *s, struct step *st, struct tga *t, char **cause)
{
	sqlite3_stmt *q;
	char now[ISO8601_LEN];

	memset(s, 0, sizeof *s);
	s->st = st;
	s->t = t;
	s->full = step_full(st);
	rec_init(&s->head);
	rec_init(&s->r);
	if ((s->db = step_db(st, cause)) == NULL)
		return -1;
	if ((q = db_stmt(s->db, SQL_RUN_INSERT, cause)) == NULL)
		return -1;
	db_bind_text(q, 1, step_run_id(st));
	db_bind_text(q, 2, step_cycle_id(st));
	db_bind_text(q, 3, iso8601_now(now));
	if (db_step_done(s->db, q, cause) == -1)
		return -1;
	if ((q = db_stmt(s->db, SQL_RUN_GET, cause)) == NULL)
		return -1;
	db_bind_text(q, 1, step_run_id(st));
	if (sqlite3_step(q) != SQLITE_ROW) {
		sqlite3_reset(q);
		return db_error(s->db, cause, "tga_runs");
	}
	s->run_n = sqlite3_column_int64(q, 0);
	s->cycle_n = sqlite3_column_int64(q, 1);
	sqlite3_reset(q);
	return 0;
}

void
store_end(struct store *s)
{
	rec_free(&s->head);
	rec_free(&s->r);
}

int
store_stored_updated(struct db *db, enum tga_service svc, const char *code, char *out, size_t len, char **cause)
{
	sqlite3_stmt *q;
	int rc;

	out[0] = '\0';
	if ((q = db_stmt(db, svc == SVC_TRAINING ? SQL_TC_UPDATED : SQL_RTO_UPDATED, cause)) == NULL)
		return -1;
	db_bind_text(q, 1, code);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		snprintf(out, len, "%s", db_col_text(q, 0));
	sqlite3_reset(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(db, cause, "look up a stored record");
	return 0;
}

int
store_is_empty(struct db *db, bool *empty, char **cause)
{
	sqlite3_stmt *q;

	if ((q = db_stmt(db, SQL_EMPTY, cause)) == NULL)
		return -1;
	if (sqlite3_step(q) != SQLITE_ROW) {
		sqlite3_reset(q);
		return db_error(db, cause, "check for stored records");
	}
	*empty = sqlite3_column_int(q, 0) != 0;
	sqlite3_reset(q);
	return 0;
}

void
store_refetch_add(struct step *st, enum tga_service svc, const char *code)
{
	cJSON *js = step_job_state(st), *rf, *list, *it;
	const char *key = svc == SVC_TRAINING ? "training" : "organisation";

	if ((rf = cJSON_GetObjectItemCaseSensitive(js, "refetch")) == NULL || !cJSON_IsObject(rf)) {
		cJSON_DeleteItemFromObjectCaseSensitive(js, "refetch");
		rf = cJSON_AddObjectToObject(js, "refetch");
	}
	if ((list = cJSON_GetObjectItemCaseSensitive(rf, key)) == NULL || !cJSON_IsArray(list)) {
		cJSON_DeleteItemFromObjectCaseSensitive(rf, key);
		list = cJSON_AddArrayToObject(rf, key);
	}
	cJSON_ArrayForEach(it, list)
		if (cJSON_IsString(it) && strcmp(it->valuestring, code) == 0)
			return;
	if (cJSON_GetArraySize(list) >= REFETCH_MAX) {
		log_warnx("the re-fetch list of %s is full (%d codes): %s is not added", key, REFETCH_MAX, code);
		return;
	}
	cJSON_AddItemToArray(list, cJSON_CreateString(code));
	log_info("%s %s will be fetched again next cycle", key, code);
}

void
store_bind_field(void *stmt, int idx, const struct rec *r, int field)
{
	sqlite3_stmt *q = stmt;

	if (!rec_isset(r, field))
		sqlite3_bind_null(q, idx);
	else
		/* The record outlives the step of the statement: no copy needed. */
		sqlite3_bind_text(q, idx, rec_str(r, field), r->len[field], SQLITE_STATIC);
}
