/*
 * write_snapshot: close the edition.  Rows of a table read in this cycle that the edition no longer has are
 * soft-deleted; the change summary (new, changed, removed institutions, courses and locations by code and name,
 * course-location counts, the TGA link, unparseable values, the edition watch) is derived from the rows' stamps
 * and stored on the run; the edition's fingerprints become the job state that the next init compares with.
 * One step, one transaction: run again after a crash it computes the same result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cricos.h"
#include "cycle.h"
#include "db.h"
#include "log.h"
#include "timeutil.h"
#include "xmalloc.h"

static const char *const SQL_REMOVE[T_COUNT] = {
	"UPDATE cricos_institutions SET removed_cycle = ?1, deleted_at = ?2, updated_at = ?2"
	" WHERE removed_cycle IS NULL AND seen_cycle IS NOT ?1",
	"UPDATE cricos_courses SET removed_cycle = ?1, deleted_at = ?2, updated_at = ?2"
	" WHERE removed_cycle IS NULL AND seen_cycle IS NOT ?1",
	"UPDATE cricos_locations SET removed_cycle = ?1, deleted_at = ?2, updated_at = ?2"
	" WHERE removed_cycle IS NULL AND seen_cycle IS NOT ?1",
	"UPDATE cricos_course_locations SET removed_cycle = ?1, deleted_at = ?2, updated_at = ?2"
	" WHERE removed_cycle IS NULL AND seen_cycle IS NOT ?1",
};

/* new: (re)appeared in this cycle; changed: content changed, not new; removed: gone in this cycle. */
#define COUNTS(T)                                                                                                \
	"SELECT coalesce(sum(added_cycle = ?1 AND removed_cycle IS NULL), 0),"                                       \
	" coalesce(sum(changed_cycle = ?1 AND added_cycle IS NOT ?1 AND removed_cycle IS NULL), 0),"                 \
	" coalesce(sum(removed_cycle = ?1 AND added_cycle IS NOT ?1), 0),"                                           \
	" coalesce(sum(removed_cycle IS NULL), 0) FROM " T
static const char *const SQL_COUNTS[T_COUNT] = {
	COUNTS("cricos_institutions"), COUNTS("cricos_courses"), COUNTS("cricos_locations"),
	COUNTS("cricos_course_locations"),
};

#define W_NEW_ " WHERE added_cycle = ?1 AND removed_cycle IS NULL"
#define W_CHANGED_ " WHERE changed_cycle = ?1 AND added_cycle IS NOT ?1 AND removed_cycle IS NULL"
#define W_REMOVED_ " WHERE removed_cycle = ?1 AND added_cycle IS NOT ?1"
/* Items listed: code, name, detail.  Course locations are counted, not listed. */
#define INST_ "SELECT provider_code, institution_name, NULL FROM cricos_institutions"
#define COURSE_ "SELECT course_code, course_name, provider_code FROM cricos_courses"
#define LOC_ "SELECT provider_code, location_name, trim(coalesce(city, '') || ' ' || coalesce(state, '')) FROM " \
	"cricos_locations"
static const char *const SQL_ITEMS[3][3] = {
	{ INST_ W_NEW_ " ORDER BY 1 LIMIT ?2", INST_ W_CHANGED_ " ORDER BY 1 LIMIT ?2",
	    INST_ W_REMOVED_ " ORDER BY 1 LIMIT ?2" },
	{ COURSE_ W_NEW_ " ORDER BY 1 LIMIT ?2", COURSE_ W_CHANGED_ " ORDER BY 1 LIMIT ?2",
	    COURSE_ W_REMOVED_ " ORDER BY 1 LIMIT ?2" },
	{ LOC_ W_NEW_ " ORDER BY 1, 2, 3 LIMIT ?2", LOC_ W_CHANGED_ " ORDER BY 1, 2, 3 LIMIT ?2",
	    LOC_ W_REMOVED_ " ORDER BY 1, 2, 3 LIMIT ?2" },
};
static const char *const KINDS[3] = { "new", "changed", "removed" };

static const char SQL_EDITION[] =
    "INSERT INTO cricos_editions (cycle_id, table_name, resource_id, resource_name, last_modified, hash, size,"
    " total, synced_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (cycle_id, table_name) DO UPDATE"
    " SET resource_id = excluded.resource_id, resource_name = excluded.resource_name,"
    " last_modified = excluded.last_modified, hash = excluded.hash, size = excluded.size, total = excluded.total,"
    " synced_at = excluded.synced_at";

static int
list_items(struct db *db, int table, int kind, const char *cycle, int max, cJSON *arr, char **cause)
{
	sqlite3_stmt *q;
	int rc;

	if ((q = db_stmt(db, SQL_ITEMS[table][kind], cause)) == NULL)
		return -1;
	db_bind_text(q, 1, cycle);
	db_bind_int(q, 2, max);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		cJSON *it = cJSON_CreateObject();

		cJSON_AddStringToObject(it, "code", db_col_text(q, 0));
		cJSON_AddStringToObject(it, "name", db_col_text(q, 1));
		if (sqlite3_column_type(q, 2) != SQLITE_NULL && db_col_text(q, 2)[0] != '\0')
			cJSON_AddStringToObject(it, table == 1 ? "provider" : "where", db_col_text(q, 2));
		cJSON_AddItemToArray(arr, it);
	}
	if (rc != SQLITE_DONE) {
		db_error(db, cause, "list the changes");
		sqlite3_reset(q);
		return -1;
	}
	sqlite3_reset(q);
	return 0;
}

static int
table_summary(struct step *st, struct db *db, int t, bool synced, cJSON *out, int64_t *changes, char **cause)
{
	struct cricos *c = step_job(st);
	const char *cycle = step_cycle_id(st);
	sqlite3_stmt *q;
	int64_t n[4];
	int k;

	if ((q = db_stmt(db, SQL_COUNTS[t], cause)) == NULL)
		return -1;
	db_bind_text(q, 1, cycle);
	if (sqlite3_step(q) != SQLITE_ROW) {
		db_error(db, cause, "count the changes");
		sqlite3_reset(q);
		return -1;
	}
	for (k = 0; k < 4; k++)
		n[k] = sqlite3_column_int64(q, k);
	sqlite3_reset(q);
	cJSON_AddBoolToObject(out, "synced", synced);
	cJSON_AddNumberToObject(out, "rows", (double)n[3]);
	for (k = 0; k < 3; k++) {
		cJSON_AddNumberToObject(out, KINDS[k], (double)n[k]);
		*changes += n[k];
	}
	if (t == T_COURSE_LOCATIONS || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(step_cycle_state(st),
	    "first_sync")))
		return 0;
	for (k = 0; k < 3; k++) {
		char key[24];
		cJSON *arr;

		if (n[k] == 0)
			continue;
		snprintf(key, sizeof key, "%s_items", KINDS[k]);
		arr = cJSON_AddArrayToObject(out, key);
		if (list_items(db, t, k, cycle, c->summary_max, arr, cause) == -1)
			return -1;
	}
	return 0;
}

void
phase_snapshot(struct step *st)
{
	cJSON *cs = step_cycle_state(st), *js = step_job_state(st), *sum = cJSON_CreateObject(), *ed, *tables, *e;
	const char *cycle = step_cycle_id(st);
	bool new_edition = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cs, "new_edition"));
	char now[ISO8601_LEN], *cause = NULL;
	struct db *db;
	sqlite3_stmt *q;
	int64_t changes = 0, removed_total = 0;
	size_t t;

	iso8601_now(now);
	ed = cJSON_GetObjectItemCaseSensitive(cs, "edition");
	if ((db = step_db(st, &cause)) == NULL)
		goto fail;
	cJSON_AddBoolToObject(sum, "new_edition", new_edition);
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cs, "first_sync")))
		cJSON_AddBoolToObject(sum, "first_sync", true);
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cs, "full")))
		cJSON_AddBoolToObject(sum, "full", true);
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cs, "watch_check")))
		cJSON_AddBoolToObject(sum, "watch_check", true);
	cJSON_AddItemToObject(sum, "edition", cJSON_Duplicate(ed, 1));
	if ((e = cJSON_GetObjectItemCaseSensitive(cs, "watch")) != NULL)
		cJSON_AddItemToObject(sum, "watch", cJSON_Duplicate(e, 1));

	if (new_edition) {
		tables = cJSON_AddObjectToObject(sum, "tables");
		for (t = 0; t < T_COUNT; t++) {
			const cJSON *te = cJSON_GetObjectItemCaseSensitive(ed, cricos_tables[t].name);
			bool synced = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(te, "sync"));

			if (synced) {
				/* Only a table read in full in this cycle can say what is gone. */
				if ((q = db_stmt(db, SQL_REMOVE[t], &cause)) == NULL)
					goto fail;
				db_bind_text(q, 1, cycle);
				db_bind_text(q, 2, now);
				if (db_step_done(db, q, &cause) == -1)
					goto fail;
				removed_total += sqlite3_changes(db_handle(db));
				if ((q = db_stmt(db, SQL_EDITION, &cause)) == NULL)
					goto fail;
				db_bind_text(q, 1, cycle);
				db_bind_text(q, 2, cricos_tables[t].name);
				db_bind_text(q, 3, json_str(te, "id"));
				db_bind_text(q, 4, json_str(te, "name"));
				db_bind_text(q, 5, json_str(te, "last_modified_utc")[0] ? json_str(te, "last_modified_utc") :
				    json_str(te, "last_modified"));
				db_bind_text(q, 6, json_str(te, "hash"));
				db_bind_int(q, 7, (int64_t)json_num(te, "size", -1));
				db_bind_int(q, 8, (int64_t)json_num(json_obj(json_obj(cs, "tables"),
				    cricos_tables[t].name), "total", -1));
				db_bind_text(q, 9, now);
				if (db_step_done(db, q, &cause) == -1)
					goto fail;
			}
			if (table_summary(st, db, (int)t, synced, cJSON_AddObjectToObject(tables, cricos_tables[t].name),
			    &changes, &cause) == -1)
				goto fail;
		}
		if ((e = cJSON_GetObjectItemCaseSensitive(cs, "link")) != NULL)
			cJSON_AddItemToObject(sum, "link", cJSON_Duplicate(e, 1));
		if ((e = cJSON_GetObjectItemCaseSensitive(cs, "unparseable")) != NULL && cJSON_GetArraySize(e) > 0)
			cJSON_AddItemToObject(sum, "unparseable", cJSON_Duplicate(e, 1));
		if ((e = cJSON_GetObjectItemCaseSensitive(cs, "rows")) != NULL)
			cJSON_AddItemToObject(sum, "records", cJSON_Duplicate(e, 1));
		if ((e = cJSON_GetObjectItemCaseSensitive(cs, "rejected")) != NULL && cJSON_GetArraySize(e) > 0)
			cJSON_AddItemToObject(sum, "rejected", cJSON_Duplicate(e, 1));
		json_set_str(js, "edition_synced_at", now);
		json_set_str(js, "edition_synced_cycle", cycle);
	}
	/* The fingerprints the next init compares with (also after a re-upload with the same hash). */
	cJSON_DeleteItemFromObjectCaseSensitive(js, "edition");
	if (ed != NULL) {
		cJSON *copy = cJSON_Duplicate(ed, 1), *it;

		cJSON_ArrayForEach(it, copy)
			cJSON_DeleteItemFromObjectCaseSensitive(it, "sync");
		cJSON_AddItemToObject(js, "edition", copy);
	}
	step_set_summary(st, sum, changes);
	step_count(st, 0, changes);
	if (removed_total > 0)
		step_detail_add(st, "removed", removed_total);
	log_info("write_snapshot: %s, %lld change%s", new_edition ? "new edition" : "no new edition",
	    (long long)changes, changes == 1 ? "" : "s");
	cJSON_Delete(sum);
	step_done(st, STEP_PHASE_DONE);
	return;
fail:
	cJSON_Delete(sum);
	step_fail(st, STEP_RETRY, "%s", cause);
	free(cause);
}
