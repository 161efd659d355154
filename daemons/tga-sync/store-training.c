/*
 * A training component and its child lists (releases, unit grid, mappings, classifications, usage
 * recommendations, currency periods), from one staged GetDetails answer.  Child lists are keyed by position (seq):
 * each row is upserted only if it differs and rows beyond the new length are deleted, so an unchanged component
 * writes nothing, and a changed one shows up as changed_in = this cycle on the component row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cycle.h"
#include "db.h"
#include "log.h"
#include "store.h"
#include "xmalloc.h"

#define TC_DIFFERS                                                                                               \
	"component_type IS NOT excluded.component_type OR title IS NOT excluded.title OR parent_code IS NOT"      \
	" excluded.parent_code OR parent_title IS NOT excluded.parent_title OR usage_recommendation IS NOT"        \
	" excluded.usage_recommendation OR is_current IS NOT excluded.is_current OR currency_status IS NOT"        \
	" excluded.currency_status OR is_confidential IS NOT excluded.is_confidential OR is_legacy IS NOT"          \
	" excluded.is_legacy OR isc_organisation_code IS NOT excluded.isc_organisation_code OR created_date IS NOT" \
	" excluded.created_date"

static const char SQL_TC_UPSERT[] =
    "INSERT INTO tga_components (code, component_type, title, parent_code, parent_title, usage_recommendation,"
    " is_current, currency_status, is_confidential, is_legacy, isc_organisation_code, created_date, updated_date,"
    " added_in, changed_in, run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15)"
    " ON CONFLICT (code) DO UPDATE SET component_type = excluded.component_type, title = excluded.title,"
    " parent_code = excluded.parent_code, parent_title = excluded.parent_title,"
    " usage_recommendation = excluded.usage_recommendation, is_current = excluded.is_current,"
    " currency_status = excluded.currency_status, is_confidential = excluded.is_confidential,"
    " is_legacy = excluded.is_legacy, isc_organisation_code = excluded.isc_organisation_code,"
    " created_date = excluded.created_date, updated_date = excluded.updated_date,"
    " added_in = CASE WHEN deleted_at IS NOT NULL THEN excluded.added_in ELSE added_in END,"
    " changed_in = CASE WHEN ?16 OR deleted_at IS NOT NULL OR " TC_DIFFERS " THEN excluded.changed_in"
    " ELSE changed_in END,"
    " deleted_at = NULL, deleted_operation = NULL, deleted_in = NULL, run = excluded.run"
    " WHERE ?16 OR deleted_at IS NOT NULL OR updated_date IS NOT excluded.updated_date OR " TC_DIFFERS;

static const char SQL_REL_UPSERT[] =
    "INSERT INTO tga_releases (component_code, seq, release_number, release_date, currency, approval_process,"
    " updated_date, run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (component_code, seq) DO UPDATE SET"
    " release_number = excluded.release_number, release_date = excluded.release_date, currency = excluded.currency,"
    " approval_process = excluded.approval_process, updated_date = excluded.updated_date, run = excluded.run"
    " WHERE release_number IS NOT excluded.release_number OR release_date IS NOT excluded.release_date OR"
    " currency IS NOT excluded.currency OR approval_process IS NOT excluded.approval_process";
static const char SQL_GRID_UPSERT[] =
    "INSERT INTO tga_unit_grid (component_code, seq, release_number, unit_code, title, is_essential, updated_date,"
    " run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (component_code, seq) DO UPDATE SET"
    " release_number = excluded.release_number, unit_code = excluded.unit_code, title = excluded.title,"
    " is_essential = excluded.is_essential, updated_date = excluded.updated_date, run = excluded.run"
    " WHERE release_number IS NOT excluded.release_number OR unit_code IS NOT excluded.unit_code OR"
    " title IS NOT excluded.title OR is_essential IS NOT excluded.is_essential";
static const char SQL_MAP_UPSERT[] =
    "INSERT INTO tga_mappings (component_code, seq, code, title, maps_to_code, maps_to_title, is_equivalent, notes,"
    " updated_date, run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (component_code, seq) DO UPDATE"
    " SET code = excluded.code, title = excluded.title, maps_to_code = excluded.maps_to_code,"
    " maps_to_title = excluded.maps_to_title, is_equivalent = excluded.is_equivalent, notes = excluded.notes,"
    " updated_date = excluded.updated_date, run = excluded.run"
    " WHERE code IS NOT excluded.code OR title IS NOT excluded.title OR maps_to_code IS NOT excluded.maps_to_code"
    " OR maps_to_title IS NOT excluded.maps_to_title OR is_equivalent IS NOT excluded.is_equivalent OR"
    " notes IS NOT excluded.notes";
static const char SQL_CLASS_UPSERT[] =
    "INSERT INTO tga_classifications (component_code, seq, scheme_code, value_code, purpose_code, start_date,"
    " end_date, updated_date, run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (component_code, seq)"
    " DO UPDATE SET scheme_code = excluded.scheme_code, value_code = excluded.value_code,"
    " purpose_code = excluded.purpose_code, start_date = excluded.start_date, end_date = excluded.end_date,"
    " updated_date = excluded.updated_date, run = excluded.run"
    " WHERE scheme_code IS NOT excluded.scheme_code OR value_code IS NOT excluded.value_code OR"
    " purpose_code IS NOT excluded.purpose_code OR start_date IS NOT excluded.start_date OR"
    " end_date IS NOT excluded.end_date";
static const char SQL_USAGE_UPSERT[] =
    "INSERT INTO tga_usage_recommendations (component_code, seq, state, start_date, end_date, updated_date, run)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (component_code, seq) DO UPDATE SET state = excluded.state,"
    " start_date = excluded.start_date, end_date = excluded.end_date, updated_date = excluded.updated_date,"
    " run = excluded.run WHERE state IS NOT excluded.state OR start_date IS NOT excluded.start_date OR"
    " end_date IS NOT excluded.end_date";
static const char SQL_CURRENCY_UPSERT[] =
    "INSERT INTO tga_currency_periods (component_code, seq, authority, start_date, end_date, end_reason_code,"
    " end_comment, updated_date, run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (component_code, seq)"
    " DO UPDATE SET authority = excluded.authority, start_date = excluded.start_date, end_date = excluded.end_date,"
    " end_reason_code = excluded.end_reason_code, end_comment = excluded.end_comment,"
    " updated_date = excluded.updated_date, run = excluded.run WHERE authority IS NOT excluded.authority OR"
    " start_date IS NOT excluded.start_date OR end_date IS NOT excluded.end_date OR"
    " end_reason_code IS NOT excluded.end_reason_code OR end_comment IS NOT excluded.end_comment";

static const char SQL_TC_EXISTS[] = "SELECT 1 FROM tga_components WHERE code = ?";
static const char SQL_REL_TAIL[] = "DELETE FROM tga_releases WHERE component_code = ?1 AND seq >= ?2";
static const char SQL_GRID_TAIL[] = "DELETE FROM tga_unit_grid WHERE component_code = ?1 AND seq >= ?2";
static const char SQL_MAP_TAIL[] = "DELETE FROM tga_mappings WHERE component_code = ?1 AND seq >= ?2";
static const char SQL_CLASS_TAIL[] = "DELETE FROM tga_classifications WHERE component_code = ?1 AND seq >= ?2";
static const char SQL_USAGE_TAIL[] = "DELETE FROM tga_usage_recommendations WHERE component_code = ?1 AND seq >= ?2";
static const char SQL_CURRENCY_TAIL[] = "DELETE FROM tga_currency_periods WHERE component_code = ?1 AND seq >= ?2";

static const struct store_child children[] = {
	{ REC_TC_RELEASE, "ShowReleases", NULL, SQL_REL_UPSERT, SQL_REL_TAIL, 4, 0 },
	{ REC_TC_GRID, "ShowReleases", "ShowUnitGrid", SQL_GRID_UPSERT, SQL_GRID_TAIL, 4, 1 << 3 },
	{ REC_TC_MAPPING, "ShowMappingInformation", NULL, SQL_MAP_UPSERT, SQL_MAP_TAIL, 6, 1 << 4 },
	{ REC_TC_CLASS, "ShowClassifications", NULL, SQL_CLASS_UPSERT, SQL_CLASS_TAIL, 5, 0 },
	{ REC_TC_USAGE, "ShowUsageRecommendation", NULL, SQL_USAGE_UPSERT, SQL_USAGE_TAIL, 3, 0 },
	{ REC_TC_CURRENCY, "ShowCurrencyPeriods", NULL, SQL_CURRENCY_UPSERT, SQL_CURRENCY_TAIL, 5, 0 },
};
#define NCHILDREN (sizeof children / sizeof children[0])

static bool
managed(const struct tga_settings *set, const struct store_child *c)
{
	return (set->tc_flags & (1u << tc_flag_index(c->flag))) &&
	    (c->flag2 == NULL || (set->tc_flags & (1u << tc_flag_index(c->flag2))));
}

int
store_component(struct store *s, struct stage *sg, const struct stage_entity *e, const struct src_item *sum,
    char **cause)
{
	const struct tga_settings *set = &s->t->set;
	const struct store_child *c;
	struct rec *h = &s->head;
	int64_t seqs[NCHILDREN], changes = 0;
	const char *code, *updated, *cstatus;
	sqlite3_stmt *q;
	size_t i;
	int rc, is_current;
	bool exists;

	if (e->nil) {
		/* Deleted between the search and GetDetails: its tombstone comes with the sweep. */
		step_detail_add(s->st, "vanished", 1);
		log_info("TrainingComponentService.GetDetails %s: the record is gone (i:nil); the sweep handles it",
		    e->code);
		return 0;
	}
	if (stage_seek(sg, e->head, cause) == -1 || (rc = stage_next(sg, e->end, h, cause)) == -1)
		return -1;
	if (rc == 0 || h->type != REC_TC_HEAD) {
		xasprintf(cause, "stage file: no component head for %s", e->code);
		return -1;
	}
	code = rec_str(h, TC_CODE);
	if (code == NULL || strcmp(code, e->code) != 0) {
		step_reject(s->st, 1, "TrainingComponentService.GetDetails %s: the component %s%s%s; skipped", e->code,
		    code ? "came back as " : "has no Code", code ? code : "", code ? " (not the code asked for)" : "");
		store_refetch_add(s->st, SVC_TRAINING, e->code);
		return 0;
	}
	if (rec_str(h, TC_TYPE) == NULL) {
		step_reject(s->st, 1, "TrainingComponentService.GetDetails %s: the component has no ComponentType; "
		    "skipped", e->code);
		store_refetch_add(s->st, SVC_TRAINING, e->code);
		return 0;
	}
	updated = rec_str(h, TC_UPDATED);
	/* A component never stored has no child rows to trim (the first cycle: six statements saved per component). */
	if ((q = db_stmt(s->db, SQL_TC_EXISTS, cause)) == NULL)
		return -1;
	sqlite3_bind_text(q, 1, code, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(q)) != SQLITE_ROW && rc != SQLITE_DONE) {
		sqlite3_reset(q);
		return db_error(s->db, cause, "look up a component");
	}
	exists = rc == SQLITE_ROW;
	sqlite3_reset(q);

	memset(seqs, 0, sizeof seqs);
	if (stage_seek(sg, e->children, cause) == -1)
		return -1;
	while ((rc = stage_next(sg, e->head, &s->r, cause)) == 1) {
		if (s->r.type == REC_REJECT) {
			step_reject(s->st, 1, "%s", rec_str(&s->r, 0));
			continue;
		}
		if ((c = store_child_of(children, NCHILDREN, s->r.type)) == NULL || !managed(set, c))
			continue;
		if (store_write_child(s, c, code, seqs[c - children]++, updated, &changes, cause) == -1)
			return -1;
	}
	if (rc == -1)
		return -1;
	/* Lists asked for but shorter (or absent: WCF omits an empty array) lose their tail. */
	for (i = 0; i < NCHILDREN && exists; i++) {
		if (!managed(set, &children[i]))
			continue;
		if ((q = db_stmt(s->db, children[i].tail, cause)) == NULL)
			return -1;
		sqlite3_bind_text(q, 1, code, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, seqs[i]);
		if (db_step_done(s->db, q, cause) == -1)
			return -1;
		changes += sqlite3_changes(db_handle(s->db));
	}

	/* The summary's IsCurrent and UsageReccomendation when we have them, else what the details say. */
	cstatus = rec_str(h, TC_CURRENCY_STATUS);
	if (sum != NULL && sum->is_current >= 0)
		is_current = sum->is_current;
	else
		is_current = cstatus != NULL ? strcmp(cstatus, "Current") == 0 : -1;
	if ((q = db_stmt(s->db, SQL_TC_UPSERT, cause)) == NULL)
		return -1;
	sqlite3_bind_text(q, 1, code, -1, SQLITE_STATIC);
	store_bind_field(q, 2, h, TC_TYPE);
	store_bind_field(q, 3, h, TC_TITLE);
	store_bind_field(q, 4, h, TC_PARENT_CODE);
	store_bind_field(q, 5, h, TC_PARENT_TITLE);
	if (sum != NULL && sum->usage[0] != '\0')
		db_bind_text(q, 6, sum->usage);
	else
		store_bind_field(q, 6, h, TC_USAGE_CURRENT);
	if (is_current >= 0)
		sqlite3_bind_int(q, 7, is_current);
	store_bind_field(q, 8, h, TC_CURRENCY_STATUS);
	sqlite3_bind_int(q, 9, rec_str(h, TC_CONFIDENTIAL) != NULL && rec_str(h, TC_CONFIDENTIAL)[0] == '1');
	store_bind_bool(q, 10, h, TC_LEGACY);
	store_bind_field(q, 11, h, TC_ISC_CODE);
	store_bind_field(q, 12, h, TC_CREATED);
	store_bind_field(q, 13, h, TC_UPDATED);
	sqlite3_bind_int64(q, 14, s->cycle_n);
	sqlite3_bind_int64(q, 15, s->run_n);
	sqlite3_bind_int(q, 16, changes > 0);
	if (db_step_done(s->db, q, cause) == -1)
		return -1;
	if (changes > 0 || sqlite3_changes(db_handle(s->db)) > 0)
		s->changed++;
	return 0;
}
