/*
 * Tombstones (SearchDeletedByDeletedDate): every one is kept in tga_deletions as received; the row it names is
 * soft-deleted (deleted_at, deleted_operation, deleted_in) unless the row is newer than the tombstone, which means
 * the code was deleted and later added again (the register keeps the old tombstone).  A deleted RTO's scope rows
 * leave with it (removed_in), so the scope tables only ever hold the scope of live RTOs as live rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cycle.h"
#include "db.h"
#include "log.h"
#include "store.h"
#include "tgatime.h"
#include "xmalloc.h"

static const char SQL_TOMB_INSERT[] =
    "INSERT INTO tga_deletions (service, code, operation, updated_date, applied, added_in, run)"
    " VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6) ON CONFLICT (service, code, updated_date) DO NOTHING";
static const char SQL_TOMB_APPLIED[] =
    "UPDATE tga_deletions SET applied = 1, run = ?4 WHERE service = ?1 AND code = ?2 AND updated_date = ?3"
    " AND applied = 0";
static const char SQL_TC_GET[] = "SELECT updated_date FROM tga_components WHERE code = ? AND deleted_at IS NULL";
static const char SQL_RTO_GET[] = "SELECT updated_date FROM tga_rtos WHERE code = ? AND deleted_at IS NULL";
static const char SQL_TC_DELETE[] =
    "UPDATE tga_components SET deleted_at = ?2, deleted_operation = ?3, deleted_in = ?4, run = ?5"
    " WHERE code = ?1 AND deleted_at IS NULL";
static const char SQL_RTO_DELETE[] =
    "UPDATE tga_rtos SET deleted_at = ?2, deleted_operation = ?3, deleted_in = ?4, run = ?5, scope_rows = 0,"
    " scope_hash = NULL WHERE code = ?1 AND deleted_at IS NULL";
/* The deleted RTO's scope counts of this cycle, recounted from the rows' stamps. */
static const char SQL_RTO_SCOPE_RECOUNT[] =
    "UPDATE tga_rtos SET scope_changed_in = ?2,"
    " scope_added = (SELECT coalesce(sum(added_in = ?2 AND removed_in IS NULL), 0) FROM tga_rto_scope"
    " WHERE rto_code = ?1),"
    " scope_removed = (SELECT coalesce(sum(removed_in = ?2 AND added_in <> ?2), 0) FROM tga_rto_scope"
    " WHERE rto_code = ?1),"
    " scope_changed = (SELECT coalesce(sum(changed_in = ?2 AND added_in <> ?2 AND removed_in IS NULL), 0)"
    " FROM tga_rto_scope WHERE rto_code = ?1) WHERE code = ?1";
static const char SQL_RTO_SCOPE_DELETE[] =
    "UPDATE tga_rto_scope SET removed_in = ?2, run = ?3 WHERE rto_code = ?1 AND removed_in IS NULL";

int
store_soft_delete(struct store *s, enum tga_service svc, const char *code, int64_t at_ticks, const char *operation,
    char **cause)
{
	char at[TICKS_LEN];
	sqlite3_stmt *q;
	int n;

	if ((q = db_stmt(s->db, svc == SVC_TRAINING ? SQL_TC_DELETE : SQL_RTO_DELETE, cause)) == NULL)
		return -1;
	db_bind_text(q, 1, code);
	db_bind_text(q, 2, ticks_format_sec(at_ticks, at));
	db_bind_text(q, 3, operation);
	sqlite3_bind_int64(q, 4, s->cycle_n);
	sqlite3_bind_int64(q, 5, s->run_n);
	if (db_step_done(s->db, q, cause) == -1)
		return -1;
	n = sqlite3_changes(db_handle(s->db));
	s->changed += n;
	if (svc == SVC_ORGANISATION) {
		if ((q = db_stmt(s->db, SQL_RTO_SCOPE_DELETE, cause)) == NULL)
			return -1;
		db_bind_text(q, 1, code);
		sqlite3_bind_int64(q, 2, s->cycle_n);
		sqlite3_bind_int64(q, 3, s->run_n);
		if (db_step_done(s->db, q, cause) == -1)
			return -1;
		if (sqlite3_changes(db_handle(s->db)) > 0) {
			if ((q = db_stmt(s->db, SQL_RTO_SCOPE_RECOUNT, cause)) == NULL)
				return -1;
			db_bind_text(q, 1, code);
			sqlite3_bind_int64(q, 2, s->cycle_n);
			if (db_step_done(s->db, q, cause) == -1)
				return -1;
		}
	}
	return n > 0;
}

int
store_tombstone(struct store *s, enum tga_service svc, const struct src_tomb *tb, char **cause)
{
	const char *service = svc == SVC_TRAINING ? "training" : "organisation";
	char stored[TICKS_LEN] = "";
	int64_t tomb_t = 0, row_t = 0;
	bool zone, live = false, newer;
	sqlite3_stmt *q;
	int rc;

	if ((q = db_stmt(s->db, SQL_TOMB_INSERT, cause)) == NULL)
		return -1;
	db_bind_text(q, 1, service);
	db_bind_text(q, 2, tb->code);
	db_bind_text(q, 3, tb->operation[0] ? tb->operation : NULL);
	db_bind_text(q, 4, tb->updated);
	sqlite3_bind_int64(q, 5, s->cycle_n);
	sqlite3_bind_int64(q, 6, s->run_n);
	if (db_step_done(s->db, q, cause) == -1)
		return -1;
	if (sqlite3_changes(db_handle(s->db)) > 0)
		step_detail_add(s->st, "tombstones_new", 1);

	if ((q = db_stmt(s->db, svc == SVC_TRAINING ? SQL_TC_GET : SQL_RTO_GET, cause)) == NULL)
		return -1;
	db_bind_text(q, 1, tb->code);
	if ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		live = true;
		snprintf(stored, sizeof stored, "%s", db_col_text(q, 0));
	}
	sqlite3_reset(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(s->db, cause, "look up a deleted record");
	if (!live)
		return 0;
	/* Upstream times compare as instants (ticks), never as text. */
	if (!ticks_parse(tb->updated, strlen(tb->updated), &tomb_t, &zone)) {
		log_warnx("%s tombstone of %s has no usable UpdatedDate ('%s'): not applied", service, tb->code,
		    tb->updated);
		return 0;
	}
	newer = stored[0] != '\0' && ticks_parse(stored, strlen(stored), &row_t, &zone) && row_t > tomb_t;
	if (newer) {
		log_info("%s %s was deleted at %s and added again at %s: the stored row stays", service, tb->code,
		    tb->updated, stored);
		return 0;
	}
	if (store_soft_delete(s, svc, tb->code, tomb_t, tb->operation[0] ? tb->operation : NULL, cause) == -1)
		return -1;
	if ((q = db_stmt(s->db, SQL_TOMB_APPLIED, cause)) == NULL)
		return -1;
	db_bind_text(q, 1, service);
	db_bind_text(q, 2, tb->code);
	db_bind_text(q, 3, tb->updated);
	sqlite3_bind_int64(q, 4, s->run_n);
	if (db_step_done(s->db, q, cause) == -1)
		return -1;
	step_detail_add(s->st, "soft_deleted", 1);
	log_info("%s %s deleted upstream at %s (%s): soft-deleted", service, tb->code, tb->updated,
	    tb->operation[0] ? tb->operation : "?");
	return 0;
}
