/*
 * write_snapshot: the cycle's change summary, derived from the rows' stamps (added_in / changed_in / deleted_in /
 * removed_in = this cycle's number), stored on the run row; then the high-water marks advance to the plan's end.
 * Nothing here counts: a page written twice (a resume) stamps the same rows with the same cycle.
 *
 *   {"window": {"from", "to"},
 *    "components": {"Qualification": {"added", "updated", "removed", "added_list": [{"code", "title"}], ...}, ...},
 *    "rtos": {"added", "updated", "removed", "added_list": [{"code", "name"}], ...},
 *    "organisations": {...the same, for organisations that are not RTOs, with "kind" in each list entry...},
 *    "scope": {"rows_added", "rows_removed", "rows_changed", "rtos", "list": [{"code", "name", "added", ...}]},
 *    "tombstones": {"new", "applied"}, "list_max": N}
 * and with source = rest: "source": "rest", "data_sync" (the API's data export sync time), "no_change": true when
 * init found it unmoved (nothing was read), "completeness" (phase-rest.c: what was read against the announced
 * totals, shortfalls named); the next cycle's probe compares with job_state "rest_sync".
 * Lists hold at most summary_list_max entries each (ordered by code); the counts are complete.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cycle.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "plan.h"
#include "tga.h"
#include "tgatime.h"

static const char SQL_CYCLE_N[] = "SELECT cycle_n FROM tga_runs WHERE cycle_id = ? ORDER BY n LIMIT 1";
static const char SQL_TC_COUNTS[] =
    "SELECT component_type, sum(added_in = ?1 AND deleted_at IS NULL),"
    " sum(changed_in = ?1 AND added_in <> ?1 AND deleted_at IS NULL), sum(deleted_in = ?1 AND added_in <> ?1)"
    " FROM tga_components WHERE changed_in = ?1 OR deleted_in = ?1 GROUP BY component_type";
static const char SQL_TC_ADDED[] =
    "SELECT code, title FROM tga_components WHERE changed_in = ?1 AND component_type = ?2 AND added_in = ?1"
    " AND deleted_at IS NULL ORDER BY code LIMIT ?3";
static const char SQL_TC_UPDATED[] =
    "SELECT code, title FROM tga_components WHERE changed_in = ?1 AND component_type = ?2 AND added_in <> ?1"
    " AND deleted_at IS NULL ORDER BY code LIMIT ?3";
static const char SQL_TC_REMOVED[] =
    "SELECT code, title FROM tga_components WHERE deleted_in = ?1 AND component_type = ?2 AND added_in <> ?1"
    " ORDER BY code LIMIT ?3";
/* RTOs (?2 = 1) or the other organisations (?2 = 0), which OrganisationService lists too (kind Organisation2). */
static const char SQL_RTO_COUNTS[] =
    "SELECT coalesce(sum(added_in = ?1 AND deleted_at IS NULL), 0),"
    " coalesce(sum(changed_in = ?1 AND added_in <> ?1 AND deleted_at IS NULL), 0),"
    " coalesce(sum(deleted_in = ?1 AND added_in <> ?1), 0) FROM tga_rtos WHERE (changed_in = ?1 OR deleted_in = ?1)"
    " AND (kind = 'RTO') = ?2";
static const char SQL_RTO_ADDED[] =
    "SELECT code, legal_name, kind FROM tga_rtos WHERE changed_in = ?1 AND added_in = ?1 AND deleted_at IS NULL"
    " AND (kind = 'RTO') = ?2 ORDER BY code LIMIT ?3";
static const char SQL_RTO_UPDATED[] =
    "SELECT code, legal_name, kind FROM tga_rtos WHERE changed_in = ?1 AND added_in <> ?1 AND deleted_at IS NULL"
    " AND (kind = 'RTO') = ?2 ORDER BY code LIMIT ?3";
static const char SQL_RTO_REMOVED[] =
    "SELECT code, legal_name, kind FROM tga_rtos WHERE deleted_in = ?1 AND added_in <> ?1 AND (kind = 'RTO') = ?2"
    " ORDER BY code LIMIT ?3";
/* Per RTO, the counts its writer took from its scope rows' stamps (store-orgs.c): no 6.2-million-row scan. */
static const char SQL_SCOPE[] =
    "SELECT code, legal_name, scope_added, scope_removed, scope_changed FROM tga_rtos WHERE scope_changed_in = ?1"
    " ORDER BY code";
static const char SQL_TOMBS[] =
    "SELECT count(*), coalesce(sum(applied), 0) FROM tga_deletions WHERE added_in = ?1";

/* The types in the order of the mail. */
static const char *const order[] = { "TrainingPackage", "Qualification", "Unit", "SkillSet", "AccreditedCourse",
	"AccreditedCourseModule", "UnitContextualisation" };

/* type: the component type (?2); NULL for tga_rtos, where rtos (?2) chooses RTOs or the other organisations. */
static int
list(struct db *db, const char *sql, int64_t cycle, const char *type, bool rtos, int max, const char *name_key,
    cJSON *out, char **cause)
{
	sqlite3_stmt *q;
	int rc;

	if ((q = db_stmt(db, sql, cause)) == NULL)
		return -1;
	sqlite3_bind_int64(q, 1, cycle);
	if (type != NULL)
		db_bind_text(q, 2, type);
	else
		sqlite3_bind_int(q, 2, rtos);
	sqlite3_bind_int(q, 3, max);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "code", db_col_text(q, 0));
		cJSON_AddStringToObject(o, name_key, db_col_text(q, 1));
		if (type == NULL && !rtos)
			cJSON_AddStringToObject(o, "kind", db_col_text(q, 2));
		cJSON_AddItemToArray(out, o);
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : db_error(db, cause, "summary list");
}

static cJSON *
kind_object(int64_t a, int64_t u, int64_t r)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "added", (double)a);
	cJSON_AddNumberToObject(o, "updated", (double)u);
	cJSON_AddNumberToObject(o, "removed", (double)r);
	cJSON_AddArrayToObject(o, "added_list");
	cJSON_AddArrayToObject(o, "updated_list");
	cJSON_AddArrayToObject(o, "removed_list");
	return o;
}

/* The RTOs (rtos) or the other organisations: counts and lists, as sum[key]; their changes added to *changes. */
static int
organisations(struct db *db, int64_t cycle, bool rtos, int max, cJSON *sum, const char *key, int64_t *changes,
    char **cause)
{
	int64_t a = 0, u = 0, r = 0;
	sqlite3_stmt *q;
	cJSON *o;

	if (cycle >= 0) {
		if ((q = db_stmt(db, SQL_RTO_COUNTS, cause)) == NULL)
			return -1;
		sqlite3_bind_int64(q, 1, cycle);
		sqlite3_bind_int(q, 2, rtos);
		if (sqlite3_step(q) != SQLITE_ROW) {
			sqlite3_reset(q);
			return db_error(db, cause, "summary counts");
		}
		a = sqlite3_column_int64(q, 0);
		u = sqlite3_column_int64(q, 1);
		r = sqlite3_column_int64(q, 2);
		sqlite3_reset(q);
	}
	*changes += a + u + r;
	o = kind_object(a, u, r);
	cJSON_AddItemToObject(sum, key, o);
	if (cycle >= 0 && (list(db, SQL_RTO_ADDED, cycle, NULL, rtos, max, "name", cJSON_GetObjectItem(o, "added_list"),
	    cause) == -1 || list(db, SQL_RTO_UPDATED, cycle, NULL, rtos, max, "name", cJSON_GetObjectItem(o,
	    "updated_list"), cause) == -1 || list(db, SQL_RTO_REMOVED, cycle, NULL, rtos, max, "name",
	    cJSON_GetObjectItem(o, "removed_list"), cause) == -1))
		return -1;
	return 0;
}

static int
summarise(struct step *st, struct db *db, int64_t cycle, cJSON *sum, int64_t *changes, char **cause)
{
	struct tga *t = step_job(st);
	int max = t->set.summary_list_max;
	cJSON *comps = cJSON_AddObjectToObject(sum, "components"), *o, *scope, *slist, *tombs;
	int64_t a, u, r, sa = 0, sr = 0, sc = 0, nrtos = 0;
	sqlite3_stmt *q;
	size_t i;
	int rc;

	/* Every configured type appears, with zeros when nothing changed. */
	for (i = 0; i < sizeof order / sizeof order[0]; i++) {
		int k;

		for (k = 0; k < TCT_COUNT; k++)
			if (strcmp(tct_names[k], order[i]) == 0 && (t->set.tc_types & (1u << k)))
				cJSON_AddItemToObject(comps, order[i], kind_object(0, 0, 0));
	}
	if (cycle >= 0) {
		if ((q = db_stmt(db, SQL_TC_COUNTS, cause)) == NULL)
			return -1;
		sqlite3_bind_int64(q, 1, cycle);
		while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
			const char *type = db_col_text(q, 0);

			a = sqlite3_column_int64(q, 1);
			u = sqlite3_column_int64(q, 2);
			r = sqlite3_column_int64(q, 3);
			*changes += a + u + r;
			/* In place, so that the order of the mail stays the configured one. */
			if (cJSON_GetObjectItemCaseSensitive(comps, type) != NULL)
				cJSON_ReplaceItemInObjectCaseSensitive(comps, type, kind_object(a, u, r));
			else
				cJSON_AddItemToObject(comps, type, kind_object(a, u, r));
		}
		sqlite3_reset(q);
		if (rc != SQLITE_DONE)
			return db_error(db, cause, "summary counts");
		cJSON_ArrayForEach(o, comps) {
			if (list(db, SQL_TC_ADDED, cycle, o->string, false, max, "title",
			    cJSON_GetObjectItem(o, "added_list"), cause) == -1 || list(db, SQL_TC_UPDATED, cycle,
			    o->string, false, max, "title", cJSON_GetObjectItem(o, "updated_list"), cause) == -1 ||
			    list(db, SQL_TC_REMOVED, cycle, o->string, false, max, "title",
			    cJSON_GetObjectItem(o, "removed_list"), cause) == -1)
				return -1;
		}
	}

	if (organisations(db, cycle, true, max, sum, "rtos", changes, cause) == -1 ||
	    organisations(db, cycle, false, max, sum, "organisations", changes, cause) == -1)
		return -1;

	scope = cJSON_AddObjectToObject(sum, "scope");
	slist = cJSON_CreateArray();
	if (cycle >= 0) {
		if ((q = db_stmt(db, SQL_SCOPE, cause)) == NULL) {
			cJSON_Delete(slist);
			return -1;
		}
		sqlite3_bind_int64(q, 1, cycle);
		while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
			int64_t ra = sqlite3_column_int64(q, 2), rr = sqlite3_column_int64(q, 3),
			    rc2 = sqlite3_column_int64(q, 4);

			if (ra + rr + rc2 == 0)
				continue;
			sa += ra;
			sr += rr;
			sc += rc2;
			if (nrtos++ < max) {
				cJSON *e = cJSON_CreateObject();

				cJSON_AddStringToObject(e, "code", db_col_text(q, 0));
				cJSON_AddStringToObject(e, "name", db_col_text(q, 1));
				cJSON_AddNumberToObject(e, "added", (double)ra);
				cJSON_AddNumberToObject(e, "removed", (double)rr);
				cJSON_AddNumberToObject(e, "changed", (double)rc2);
				cJSON_AddItemToArray(slist, e);
			}
		}
		sqlite3_reset(q);
		if (rc != SQLITE_DONE) {
			cJSON_Delete(slist);
			return db_error(db, cause, "summary of scope changes");
		}
	}
	cJSON_AddNumberToObject(scope, "rows_added", (double)sa);
	cJSON_AddNumberToObject(scope, "rows_removed", (double)sr);
	cJSON_AddNumberToObject(scope, "rows_changed", (double)sc);
	cJSON_AddNumberToObject(scope, "rtos", (double)nrtos);
	cJSON_AddItemToObject(scope, "list", slist);
	*changes += sa + sr + sc;

	tombs = cJSON_AddObjectToObject(sum, "tombstones");
	a = r = 0;
	if (cycle >= 0) {
		if ((q = db_stmt(db, SQL_TOMBS, cause)) == NULL)
			return -1;
		sqlite3_bind_int64(q, 1, cycle);
		if (sqlite3_step(q) == SQLITE_ROW) {
			a = sqlite3_column_int64(q, 0);
			r = sqlite3_column_int64(q, 1);
		}
		sqlite3_reset(q);
	}
	cJSON_AddNumberToObject(tombs, "new", (double)a);
	cJSON_AddNumberToObject(tombs, "applied", (double)r);
	cJSON_AddNumberToObject(sum, "list_max", max);
	return 0;
}

/* A REST cycle: its data export sync time on the summary, and in job_state for the next cycle's probe. */
static void
rest_summary(struct step *st, cJSON *sum)
{
	const cJSON *cs = step_cycle_state(st), *v = cJSON_GetObjectItemCaseSensitive(cs, "source");
	cJSON *js = step_job_state(st);

	if (!cJSON_IsString(v) || strcmp(v->valuestring, "rest") != 0)
		return;
	cJSON_AddStringToObject(sum, "source", "rest");
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cs, "no_change")))
		cJSON_AddTrueToObject(sum, "no_change");
	/* What the crawl read against the totals the API announced (phase-rest.c), shortfalls named. */
	if ((v = cJSON_GetObjectItemCaseSensitive(cs, "completeness")) != NULL)
		cJSON_AddItemToObject(sum, "completeness", cJSON_Duplicate(v, 1));
	/* A crawl that fell short must not let the next cycle's probe skip what it missed. */
	cJSON_DeleteItemFromObjectCaseSensitive(js, "rest_shortfall");
	if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(v, "n_shortfalls")) && v->valuedouble > 0)
		cJSON_AddTrueToObject(js, "rest_shortfall");
	if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(cs, "rest_sync"))) {
		cJSON_AddStringToObject(sum, "data_sync", v->valuestring);
		cJSON_DeleteItemFromObjectCaseSensitive(js, "rest_sync");
		cJSON_AddStringToObject(js, "rest_sync", v->valuestring);
	}
}

void
phase_snapshot_run(struct step *st)
{
	struct db *db = step_daemon(st)->db;
	cJSON *sum = cJSON_CreateObject(), *w, *js = step_job_state(st);
	char *cause = NULL, f[TICKS_LEN], t[TICKS_LEN], mark[TICKS_LEN];
	int64_t cycle = -1, changes = 0, from = 0, to = 0;
	sqlite3_stmt *q;

	if (!plan_get(st, "from", &from) || !plan_get(st, "to", &to)) {
		cJSON_Delete(sum);
		step_fail(st, STEP_FATAL, "the cycle has no plan: start a new cycle with `syncctl trigger tga-sync --full`");
		return;
	}
	/* A cycle that wrote nothing has no run number in rtopacks.db: then nothing changed. */
	if ((q = db_stmt(db, SQL_CYCLE_N, &cause)) == NULL)
		goto fail;
	db_bind_text(q, 1, step_cycle_id(st));
	if (sqlite3_step(q) == SQLITE_ROW)
		cycle = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);

	/*
	 * For the operator the window is in the project's own form, whole seconds (YYYY-MM-DDTHH:MM:SSZ), rounded
	 * outwards so it still covers every change.  The high-water marks below keep the plan's exact end: a mark
	 * rounded up would skip a change stamped between the end and the next whole second when overlap is 0.
	 */
	w = cJSON_AddObjectToObject(sum, "window");
	cJSON_AddStringToObject(w, "from", ticks_format_sec(from - from % TICKS_PER_SEC, f));
	cJSON_AddStringToObject(w, "to", ticks_format_sec(to % TICKS_PER_SEC ? to - to % TICKS_PER_SEC + TICKS_PER_SEC : to,
	    t));
	if (cJSON_IsTrue(cJSON_GetObjectItem(step_cycle_state(st), "read_all")))
		cJSON_AddTrueToObject(w, "read_all");
	if (summarise(st, db, cycle, sum, &changes, &cause) == -1)
		goto fail;
	rest_summary(st, sum);
	step_set_summary(st, sum, changes);
	/* The high-water marks move only here, when every phase before has completed. */
	ticks_format(to, mark);
	cJSON_DeleteItemFromObjectCaseSensitive(js, "hwm");
	cJSON_AddStringToObject(js, "hwm", mark);
	cJSON_DeleteItemFromObjectCaseSensitive(js, "del_hwm");
	cJSON_AddStringToObject(js, "del_hwm", mark);
	cJSON_DeleteItemFromObjectCaseSensitive(js, "last_cycle");
	cJSON_AddStringToObject(js, "last_cycle", step_cycle_id(st));
	log_info("cycle %s: %lld change%s; high-water mark now %s", step_cycle_id(st), (long long)changes,
	    changes == 1 ? "" : "s", mark);
	cJSON_Delete(sum);
	step_done(st, STEP_PHASE_DONE);
	return;
fail:
	cJSON_Delete(sum);
	step_fail(st, STEP_RETRY, "%s", cause ? cause : "cannot summarise");
	free(cause);
}
