/*
 * link: each current course's VET National Code against tga-sync's tga_components (the cross-daemon contract in
 * docs/CONTRIBUTING-DAEMONS.md: code TEXT PRIMARY KEY, component_type, title, deleted_at).  The result is
 * cricos_courses.tga_link: matched (a current component), deleted (the component is removed on TGA), unmatched,
 * or NULL (no code).  Until tga-sync has created its table every code counts as unmatched, and the step and the
 * summary say why.  One statement over ~27,000 courses: a bounded step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cricos.h"
#include "cycle.h"
#include "db.h"
#include "log.h"
#include "xmalloc.h"

/* Both columns the link needs must be there: a table of another shape is not the contract. */
static const char SQL_TGA_READY[] =
    "SELECT count(*) FROM pragma_table_info('tga_components', 'corpus') WHERE name IN ('code', 'deleted_at')";
static const char SQL_LINK[] =
    "UPDATE cricos_courses SET link_cycle = ?1, tga_link = CASE"
    " WHEN vet_national_code IS NULL THEN NULL"
    " WHEN EXISTS (SELECT 1 FROM tga_components t WHERE t.code = cricos_courses.vet_national_code"
    " AND t.deleted_at IS NULL) THEN 'matched'"
    " WHEN EXISTS (SELECT 1 FROM tga_components t WHERE t.code = cricos_courses.vet_national_code) THEN 'deleted'"
    " ELSE 'unmatched' END"
    " WHERE removed_cycle IS NULL AND tga_link IS NOT (CASE"
    " WHEN vet_national_code IS NULL THEN NULL"
    " WHEN EXISTS (SELECT 1 FROM tga_components t WHERE t.code = cricos_courses.vet_national_code"
    " AND t.deleted_at IS NULL) THEN 'matched'"
    " WHEN EXISTS (SELECT 1 FROM tga_components t WHERE t.code = cricos_courses.vet_national_code) THEN 'deleted'"
    " ELSE 'unmatched' END)";
static const char SQL_LINK_NONE[] =
    "UPDATE cricos_courses SET link_cycle = ?1,"
    " tga_link = CASE WHEN vet_national_code IS NULL THEN NULL ELSE 'unmatched' END"
    " WHERE removed_cycle IS NULL AND tga_link IS NOT (CASE WHEN vet_national_code IS NULL THEN NULL"
    " ELSE 'unmatched' END)";
static const char SQL_LINK_COUNTS[] =
    "SELECT tga_link, count(*), count(DISTINCT vet_national_code) FROM cricos_courses"
    " WHERE removed_cycle IS NULL AND vet_national_code IS NOT NULL GROUP BY tga_link";
static const char SQL_UNMATCHED[] =
    "SELECT vet_national_code, count(*) FROM cricos_courses WHERE removed_cycle IS NULL AND tga_link = 'unmatched'"
    " GROUP BY vet_national_code ORDER BY vet_national_code LIMIT ?1";

static const char NOTE_NO_TGA[] =
    "tga_components does not exist yet (tga-sync has not created it): every VET National Code is counted as "
    "unmatched";

void
phase_link(struct step *st)
{
	struct cricos *c = step_job(st);
	cJSON *cs = step_cycle_state(st), *link, *codes;
	struct db *db;
	sqlite3_stmt *q;
	char *cause = NULL;
	bool ready;
	int64_t matched = 0, deleted = 0, unmatched = 0, unmatched_codes = 0, with_code = 0;

	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cs, "new_edition"))) {
		step_set_status(st, "complete", "skipped: no new edition");
		step_done(st, STEP_PHASE_DONE);
		return;
	}
	if ((db = step_db(st, &cause)) == NULL || (q = db_stmt(db, SQL_TGA_READY, &cause)) == NULL)
		goto fail;
	if (sqlite3_step(q) != SQLITE_ROW) {
		db_error(db, &cause, "look for tga_components");
		sqlite3_reset(q);
		goto fail;
	}
	ready = sqlite3_column_int(q, 0) == 2;
	sqlite3_reset(q);
	/* Prepared only when the table exists: a statement naming a missing table does not compile. */
	if ((q = db_stmt(db, ready ? SQL_LINK : SQL_LINK_NONE, &cause)) == NULL)
		goto fail;
	db_bind_text(q, 1, step_cycle_id(st));	/* the stamp the publish phase reads (corpus migration 0006) */
	if (db_step_done(db, q, &cause) == -1)
		goto fail;

	if ((q = db_stmt(db, SQL_LINK_COUNTS, &cause)) == NULL)
		goto fail;
	while (sqlite3_step(q) == SQLITE_ROW) {
		const char *kind = db_col_text(q, 0);
		int64_t n = sqlite3_column_int64(q, 1);

		with_code += n;
		if (strcmp(kind, "matched") == 0)
			matched = n;
		else if (strcmp(kind, "deleted") == 0)
			deleted = n;
		else if (strcmp(kind, "unmatched") == 0) {
			unmatched = n;
			unmatched_codes = sqlite3_column_int64(q, 2);
		}
	}
	sqlite3_reset(q);

	cJSON_DeleteItemFromObjectCaseSensitive(cs, "link");
	link = cJSON_AddObjectToObject(cs, "link");
	cJSON_AddBoolToObject(link, "tga_available", ready);
	if (!ready)
		cJSON_AddStringToObject(link, "note", NOTE_NO_TGA);
	cJSON_AddNumberToObject(link, "courses_with_code", (double)with_code);
	cJSON_AddNumberToObject(link, "matched", (double)matched);
	cJSON_AddNumberToObject(link, "deleted", (double)deleted);
	cJSON_AddNumberToObject(link, "unmatched", (double)unmatched);
	cJSON_AddNumberToObject(link, "unmatched_codes", (double)unmatched_codes);
	codes = cJSON_AddArrayToObject(link, "unmatched_list");
	if ((q = db_stmt(db, SQL_UNMATCHED, &cause)) == NULL)
		goto fail;
	sqlite3_bind_int(q, 1, c->summary_max);
	while (sqlite3_step(q) == SQLITE_ROW)
		cJSON_AddItemToArray(codes, cJSON_CreateString(db_col_text(q, 0)));
	sqlite3_reset(q);

	step_detail_add(st, "matched", matched);
	step_detail_add(st, "deleted", deleted);
	step_detail_add(st, "unmatched", unmatched);
	step_detail_add(st, "unmatched_codes", unmatched_codes);
	step_count(st, with_code, matched);
	if (!ready) {
		log_notice("link: %s", NOTE_NO_TGA);
		step_set_status(st, "complete", NOTE_NO_TGA);
	} else
		log_info("link: %lld courses with a VET National Code: %lld matched, %lld deleted on TGA, %lld unmatched "
		    "(%lld codes)", (long long)with_code, (long long)matched, (long long)deleted, (long long)unmatched,
		    (long long)unmatched_codes);
	step_done(st, STEP_PHASE_DONE);
	return;
fail:
	step_fail(st, STEP_RETRY, "%s", cause);
	free(cause);
}
