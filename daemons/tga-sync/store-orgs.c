/*
 * An RTO and its whole scope, from one staged GetDetails answer, in the step's one transaction.  Organisations
 * that are not RTOs (Organisation2) are written here too, with their kind: they have no scope.
 *
 * Scope rows are keyed by (RTO, NRT code, implicit).  Three ways to write a scope, cheapest first:
 *   unchanged  the scope hash of the answer equals the stored one: no scope row is touched (a trading name
 *              changed on an RTO with 30,000 scope rows costs one row);
 *   fresh      the RTO has no live scope rows: upsert every row (the first cycle: 6.2 million of them);
 *   diff       upsert every row (only differences are written) while noting the keys seen in a temp table, then
 *              mark live rows that were not seen as removed (removed_in = this cycle).
 * If the answer had scope rows without NrtCode (skipped and counted as rejected), nothing is removed and the hash
 * is not stored, and the RTO is fetched again next cycle: a row we could not read is not a row that went away.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cycle.h"
#include "db.h"
#include "log.h"
#include "store.h"
#include "xmalloc.h"

#define RTO_DIFFERS                                                                                               \
	"legal_name IS NOT excluded.legal_name OR abn IS NOT excluded.abn OR acn IS NOT excluded.acn OR"           \
	" registration_status IS NOT excluded.registration_status OR is_legacy IS NOT excluded.is_legacy OR"       \
	" created_date IS NOT excluded.created_date OR kind IS NOT excluded.kind"

static const char SQL_RTO_GET[] =
    "SELECT scope_rows, scope_hash, deleted_at IS NOT NULL FROM tga_rtos WHERE code = ?";
static const char SQL_RTO_UPSERT[] =
    "INSERT INTO tga_rtos (code, legal_name, abn, acn, registration_status, is_legacy, created_date, updated_date,"
    " scope_rows, scope_hash, added_in, changed_in, scope_changed_in, run, scope_added, scope_removed,"
    " scope_changed, kind) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, CASE WHEN ?13 THEN ?11 END,"
    " ?12, ?15, ?16, ?17, ?18)"
    " ON CONFLICT (code) DO UPDATE SET legal_name = excluded.legal_name, abn = excluded.abn, acn = excluded.acn,"
    " kind = excluded.kind,"
    " registration_status = excluded.registration_status, is_legacy = excluded.is_legacy,"
    " created_date = excluded.created_date, updated_date = excluded.updated_date, scope_rows = excluded.scope_rows,"
    " scope_hash = excluded.scope_hash,"
    " added_in = CASE WHEN deleted_at IS NOT NULL THEN excluded.added_in ELSE added_in END,"
    " changed_in = CASE WHEN ?14 OR deleted_at IS NOT NULL OR " RTO_DIFFERS " THEN excluded.changed_in"
    " ELSE changed_in END,"
    " scope_changed_in = CASE WHEN ?13 THEN excluded.added_in ELSE scope_changed_in END,"
    " scope_added = CASE WHEN ?13 THEN excluded.scope_added ELSE scope_added END,"
    " scope_removed = CASE WHEN ?13 THEN excluded.scope_removed ELSE scope_removed END,"
    " scope_changed = CASE WHEN ?13 THEN excluded.scope_changed ELSE scope_changed END,"
    " deleted_at = NULL, deleted_operation = NULL, deleted_in = NULL, run = excluded.run"
    " WHERE ?13 OR ?14 OR deleted_at IS NOT NULL OR updated_date IS NOT excluded.updated_date OR"
    " scope_rows IS NOT excluded.scope_rows OR scope_hash IS NOT excluded.scope_hash OR " RTO_DIFFERS;

static const char SQL_SCOPE_UPSERT[] =
    "INSERT INTO tga_rto_scope (rto_code, nrt_code, is_implicit, component_type, extent_code, is_refused,"
    " decision_type, start_date, end_date, updated_date, added_in, changed_in, run)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)"
    " ON CONFLICT (rto_code, nrt_code, is_implicit) DO UPDATE SET component_type = excluded.component_type,"
    " extent_code = excluded.extent_code, is_refused = excluded.is_refused, decision_type = excluded.decision_type,"
    " start_date = excluded.start_date, end_date = excluded.end_date, updated_date = excluded.updated_date,"
    " added_in = CASE WHEN removed_in IS NOT NULL THEN excluded.added_in ELSE added_in END,"
    " changed_in = excluded.changed_in, removed_in = NULL, run = excluded.run"
    " WHERE removed_in IS NOT NULL OR component_type IS NOT excluded.component_type OR"
    " extent_code IS NOT excluded.extent_code OR is_refused IS NOT excluded.is_refused OR"
    " decision_type IS NOT excluded.decision_type OR start_date IS NOT excluded.start_date OR"
    " end_date IS NOT excluded.end_date";
static const char SQL_SEEN_CLEAR[] = "DELETE FROM temp.tga_scope_seen";
static const char SQL_SEEN_ADD[] = "INSERT OR IGNORE INTO temp.tga_scope_seen (nrt_code, is_implicit) VALUES (?, ?)";
static const char SQL_SCOPE_REMOVE[] =
    "UPDATE tga_rto_scope SET removed_in = ?2, updated_date = ?3, run = ?4 WHERE rto_code = ?1 AND"
    " removed_in IS NULL AND ((is_implicit = 0 AND ?5) OR (is_implicit = 1 AND ?6)) AND NOT EXISTS"
    " (SELECT 1 FROM temp.tga_scope_seen s WHERE s.nrt_code = tga_rto_scope.nrt_code AND"
    " s.is_implicit = tga_rto_scope.is_implicit)";
/* The RTO's scope counts, recounted from the rows' stamps (a page written twice counts the same). */
static const char SQL_SCOPE_COUNT[] =
    "SELECT coalesce(sum(removed_in IS NULL), 0), coalesce(sum(added_in = ?2 AND removed_in IS NULL), 0),"
    " coalesce(sum(removed_in = ?2 AND added_in <> ?2), 0),"
    " coalesce(sum(changed_in = ?2 AND added_in <> ?2 AND removed_in IS NULL), 0)"
    " FROM tga_rto_scope WHERE rto_code = ?1";

static const char SQL_PERIOD_UPSERT[] =
    "INSERT INTO tga_rto_registration_periods (rto_code, seq, start_date, end_date, end_reason_code,"
    " end_reason_comments, exerciser, legal_authority, updated_date, run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
    " ?9, ?10) ON CONFLICT (rto_code, seq) DO UPDATE SET start_date = excluded.start_date,"
    " end_date = excluded.end_date, end_reason_code = excluded.end_reason_code,"
    " end_reason_comments = excluded.end_reason_comments, exerciser = excluded.exerciser,"
    " legal_authority = excluded.legal_authority, updated_date = excluded.updated_date, run = excluded.run"
    " WHERE start_date IS NOT excluded.start_date OR end_date IS NOT excluded.end_date OR"
    " end_reason_code IS NOT excluded.end_reason_code OR end_reason_comments IS NOT excluded.end_reason_comments"
    " OR exerciser IS NOT excluded.exerciser OR legal_authority IS NOT excluded.legal_authority";
static const char SQL_TRADING_UPSERT[] =
    "INSERT INTO tga_rto_trading_names (rto_code, seq, name, start_date, end_date, updated_date, run)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (rto_code, seq) DO UPDATE SET name = excluded.name,"
    " start_date = excluded.start_date, end_date = excluded.end_date, updated_date = excluded.updated_date,"
    " run = excluded.run WHERE name IS NOT excluded.name OR start_date IS NOT excluded.start_date OR"
    " end_date IS NOT excluded.end_date";
static const char SQL_URL_UPSERT[] =
    "INSERT INTO tga_rto_urls (rto_code, seq, link, start_date, end_date, updated_date, run)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (rto_code, seq) DO UPDATE SET link = excluded.link,"
    " start_date = excluded.start_date, end_date = excluded.end_date, updated_date = excluded.updated_date,"
    " run = excluded.run WHERE link IS NOT excluded.link OR start_date IS NOT excluded.start_date OR"
    " end_date IS NOT excluded.end_date";
static const char SQL_LOCATION_UPSERT[] =
    "INSERT INTO tga_rto_locations (rto_code, seq, line1, line2, suburb, postcode, state_code, country_code,"
    " state_overseas, start_date, end_date, updated_date, run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
    " ?11, ?12, ?13) ON CONFLICT (rto_code, seq) DO UPDATE SET line1 = excluded.line1, line2 = excluded.line2,"
    " suburb = excluded.suburb, postcode = excluded.postcode, state_code = excluded.state_code,"
    " country_code = excluded.country_code, state_overseas = excluded.state_overseas,"
    " start_date = excluded.start_date, end_date = excluded.end_date, updated_date = excluded.updated_date,"
    " run = excluded.run WHERE line1 IS NOT excluded.line1 OR line2 IS NOT excluded.line2 OR"
    " suburb IS NOT excluded.suburb OR postcode IS NOT excluded.postcode OR state_code IS NOT excluded.state_code"
    " OR country_code IS NOT excluded.country_code OR state_overseas IS NOT excluded.state_overseas OR"
    " start_date IS NOT excluded.start_date OR end_date IS NOT excluded.end_date";

static const char SQL_PERIOD_TAIL[] = "DELETE FROM tga_rto_registration_periods WHERE rto_code = ?1 AND seq >= ?2";
static const char SQL_TRADING_TAIL[] = "DELETE FROM tga_rto_trading_names WHERE rto_code = ?1 AND seq >= ?2";
static const char SQL_URL_TAIL[] = "DELETE FROM tga_rto_urls WHERE rto_code = ?1 AND seq >= ?2";
static const char SQL_LOCATION_TAIL[] = "DELETE FROM tga_rto_locations WHERE rto_code = ?1 AND seq >= ?2";

static const struct store_child children[] = {
	{ REC_ORG_PERIOD, "ShowRegistrationPeriods", NULL, SQL_PERIOD_UPSERT, SQL_PERIOD_TAIL, 6, 0 },
	{ REC_ORG_TRADING, "ShowTradingNames", NULL, SQL_TRADING_UPSERT, SQL_TRADING_TAIL, 3, 0 },
	{ REC_ORG_URL, "ShowUrls", NULL, SQL_URL_UPSERT, SQL_URL_TAIL, 3, 0 },
	{ REC_ORG_LOCATION, "ShowLocations", NULL, SQL_LOCATION_UPSERT, SQL_LOCATION_TAIL, 9, 0 },
};
#define NCHILDREN (sizeof children / sizeof children[0])

enum scope_mode { SCOPE_NONE, SCOPE_UNCHANGED, SCOPE_FRESH, SCOPE_DIFF };

/*
 * tga_rtos.kind: 'RTO' for Rto, Rto2, Rto3, and when the source does not say (the REST source reads RTOs only);
 * otherwise the i:type TGA gave, e.g. 'Organisation2' (an organisation that is not an RTO).
 */
static const char *
org_kind(const struct rec *h)
{
	const char *k = rec_str(h, ORG_KIND);

	return k == NULL || k[0] == '\0' || strncmp(k, "Rto", 3) == 0 ? "RTO" : k;
}

static bool
flag(const struct tga_settings *set, const char *name)
{
	return (set->org_flags & (1u << org_flag_index(name))) != 0;
}

/* One scope row: the prepared statements are fetched once per RTO (6.2 million rows go through here). */
static int
write_scope(struct store *s, sqlite3_stmt *up, sqlite3_stmt *seen, const char *code, const char *updated,
    int64_t *changes, char **cause)
{
	const struct rec *r = &s->r;
	int implicit = rec_str(r, 1)[0] == '1';

	sqlite3_reset(up);
	sqlite3_bind_text(up, 1, code, -1, SQLITE_STATIC);
	store_bind_field(up, 2, r, 0);
	sqlite3_bind_int(up, 3, implicit);
	store_bind_field(up, 4, r, 2);
	store_bind_field(up, 5, r, 3);
	sqlite3_bind_int(up, 6, rec_str(r, 4)[0] == '1');
	store_bind_field(up, 7, r, 5);
	store_bind_field(up, 8, r, 6);
	store_bind_field(up, 9, r, 7);
	if (updated != NULL)
		sqlite3_bind_text(up, 10, updated, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(up, 10);
	sqlite3_bind_int64(up, 11, s->cycle_n);
	sqlite3_bind_int64(up, 12, s->run_n);
	if (sqlite3_step(up) != SQLITE_DONE) {
		sqlite3_reset(up);
		return db_error(s->db, cause, "write a scope row");
	}
	*changes += sqlite3_changes(db_handle(s->db));
	if (seen != NULL) {
		sqlite3_reset(seen);
		store_bind_field(seen, 1, r, 0);
		sqlite3_bind_int(seen, 2, implicit);
		if (sqlite3_step(seen) != SQLITE_DONE) {
			sqlite3_reset(seen);
			return db_error(s->db, cause, "note a scope row");
		}
	}
	return 0;
}

int
store_rto(struct store *s, struct stage *sg, const struct stage_entity *e, char **cause)
{
	const struct tga_settings *set = &s->t->set;
	const struct store_child *c;
	struct rec *h = &s->head;
	const char *code = e->code, *updated;
	int64_t seqs[NCHILDREN], kid_changes = 0, scope_changes = 0, old_rows = 0, old_hash = 0, new_hash, rows;
	int64_t rejects = 0, counts[3] = { 0, 0, 0 };
	bool exists = false, deleted = false, has_hash = false, explicit_on, implicit_on, scope_on;
	enum scope_mode mode = SCOPE_NONE;
	sqlite3_stmt *q, *up = NULL, *seen = NULL;
	size_t i;
	int rc;

	if (e->nil) {
		step_detail_add(s->st, "vanished", 1);
		log_info("OrganisationService.GetDetails %s: the record is gone (i:nil); the sweep handles it", code);
		return 0;
	}
	if (stage_seek(sg, e->head, cause) == -1 || (rc = stage_next(sg, e->end, h, cause)) == -1)
		return -1;
	if (rc == 0 || h->type != REC_ORG_HEAD) {
		xasprintf(cause, "stage file: no organisation head for %s", code);
		return -1;
	}
	updated = rec_str(h, ORG_UPDATED);
	new_hash = strtoll(rec_str(h, ORG_SCOPE_HASH) ? rec_str(h, ORG_SCOPE_HASH) : "0", NULL, 10);
	explicit_on = flag(set, "ShowExplicitScope");
	implicit_on = flag(set, "ShowImplicitScope");
	scope_on = explicit_on || implicit_on;

	if ((q = db_stmt(s->db, SQL_RTO_GET, cause)) == NULL)
		return -1;
	db_bind_text(q, 1, code);
	if ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		exists = true;
		old_rows = sqlite3_column_int64(q, 0);
		has_hash = sqlite3_column_type(q, 1) != SQLITE_NULL;
		old_hash = sqlite3_column_int64(q, 1);
		deleted = sqlite3_column_int(q, 2) != 0;
	}
	sqlite3_reset(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(s->db, cause, "read an RTO");

	/* Count the rejected scope rows first: they decide whether rows may be removed. */
	if (stage_seek(sg, e->children, cause) == -1)
		return -1;
	while ((rc = stage_next(sg, e->head, &s->r, cause)) == 1)
		if (s->r.type == REC_REJECT)
			rejects++;
	if (rc == -1)
		return -1;

	if (scope_on) {
		if (exists && !deleted && has_hash && old_hash == new_hash && rejects == 0 && !s->full)
			mode = SCOPE_UNCHANGED;
		else if (!exists || deleted || old_rows == 0)
			mode = SCOPE_FRESH;
		else
			mode = SCOPE_DIFF;
	}
	if (mode == SCOPE_FRESH || mode == SCOPE_DIFF) {
		if ((up = db_stmt(s->db, SQL_SCOPE_UPSERT, cause)) == NULL)
			return -1;
	}
	if (mode == SCOPE_DIFF) {
		if ((q = db_stmt(s->db, SQL_SEEN_CLEAR, cause)) == NULL || db_step_done(s->db, q, cause) == -1)
			return -1;
		if ((seen = db_stmt(s->db, SQL_SEEN_ADD, cause)) == NULL)
			return -1;
	}

	memset(seqs, 0, sizeof seqs);
	if (stage_seek(sg, e->children, cause) == -1)
		return -1;
	while ((rc = stage_next(sg, e->head, &s->r, cause)) == 1) {
		if (s->r.type == REC_REJECT) {
			step_reject(s->st, 1, "%s", rec_str(&s->r, 0));
			continue;
		}
		if (s->r.type == REC_ORG_SCOPE) {
			if (mode != SCOPE_FRESH && mode != SCOPE_DIFF)
				continue;
			if (write_scope(s, up, seen, code, updated, &scope_changes, cause) == -1)
				return -1;
			s->scope_rows_written++;
			continue;
		}
		if ((c = store_child_of(children, NCHILDREN, s->r.type)) == NULL || !flag(set, c->flag))
			continue;
		if (store_write_child(s, c, code, seqs[c - children]++, updated, &kid_changes, cause) == -1)
			return -1;
	}
	if (rc == -1)
		return -1;
	if (rejects > 0)
		store_refetch_add(s->st, SVC_ORGANISATION, code);
	if (mode == SCOPE_DIFF && rejects == 0) {
		if ((q = db_stmt(s->db, SQL_SCOPE_REMOVE, cause)) == NULL)
			return -1;
		db_bind_text(q, 1, code);
		sqlite3_bind_int64(q, 2, s->cycle_n);
		db_bind_text(q, 3, updated);
		sqlite3_bind_int64(q, 4, s->run_n);
		sqlite3_bind_int(q, 5, explicit_on);
		sqlite3_bind_int(q, 6, implicit_on);
		if (db_step_done(s->db, q, cause) == -1)
			return -1;
		scope_changes += sqlite3_changes(db_handle(s->db));
	}
	for (i = 0; i < NCHILDREN && exists; i++) {	/* an RTO never stored has nothing to trim */
		if (!flag(set, children[i].flag))
			continue;
		if ((q = db_stmt(s->db, children[i].tail, cause)) == NULL)
			return -1;
		sqlite3_bind_text(q, 1, code, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, seqs[i]);
		if (db_step_done(s->db, q, cause) == -1)
			return -1;
		kid_changes += sqlite3_changes(db_handle(s->db));
	}

	rows = old_rows;
	if ((mode == SCOPE_FRESH || mode == SCOPE_DIFF) && scope_changes > 0) {
		if ((q = db_stmt(s->db, SQL_SCOPE_COUNT, cause)) == NULL)
			return -1;
		db_bind_text(q, 1, code);
		sqlite3_bind_int64(q, 2, s->cycle_n);
		if (sqlite3_step(q) != SQLITE_ROW) {
			sqlite3_reset(q);
			return db_error(s->db, cause, "count scope rows");
		}
		rows = sqlite3_column_int64(q, 0);
		counts[0] = sqlite3_column_int64(q, 1);
		counts[1] = sqlite3_column_int64(q, 2);
		counts[2] = sqlite3_column_int64(q, 3);
		sqlite3_reset(q);
	}

	if ((q = db_stmt(s->db, SQL_RTO_UPSERT, cause)) == NULL)
		return -1;
	db_bind_text(q, 1, code);
	store_bind_field(q, 2, h, ORG_LEGAL_NAME);
	store_bind_field(q, 3, h, ORG_ABN);
	store_bind_field(q, 4, h, ORG_ACN);
	store_bind_field(q, 5, h, ORG_STATUS);
	if (rec_isset(h, ORG_LEGACY))
		sqlite3_bind_int(q, 6, rec_str(h, ORG_LEGACY)[0] == '1');
	store_bind_field(q, 7, h, ORG_CREATED);
	store_bind_field(q, 8, h, ORG_UPDATED);
	sqlite3_bind_int64(q, 9, rows);
	if (mode == SCOPE_UNCHANGED || mode == SCOPE_NONE) {
		if (has_hash && exists)
			sqlite3_bind_int64(q, 10, old_hash);
	} else if (rejects == 0)
		sqlite3_bind_int64(q, 10, new_hash);
	sqlite3_bind_int64(q, 11, s->cycle_n);
	sqlite3_bind_int64(q, 12, s->run_n);
	sqlite3_bind_int(q, 13, scope_changes > 0);
	sqlite3_bind_int(q, 14, kid_changes > 0);
	sqlite3_bind_int64(q, 15, counts[0]);
	sqlite3_bind_int64(q, 16, counts[1]);
	sqlite3_bind_int64(q, 17, counts[2]);
	db_bind_text(q, 18, org_kind(h));
	if (db_step_done(s->db, q, cause) == -1)
		return -1;
	if (kid_changes > 0 || scope_changes > 0 || sqlite3_changes(db_handle(s->db)) > 0)
		s->changed++;
	return 0;
}
