/*
 * What the REST source needs of the tables beyond what both sources share: the live codes in a range of a crawl
 * partition (to find the records a page no longer lists), and the soft delete of a record that is gone (the REST
 * API has no tombstones: a detail that answers 404 is the only evidence, and it is kept in tga_deletions with the
 * operation "NotFound" and the data export sync time of the cycle).
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

static const char SQL_REMOVED[] =
    "INSERT INTO tga_deletions (service, code, operation, updated_date, applied, added_in, run)"
    " VALUES (?1, ?2, 'NotFound', ?3, 1, ?4, ?5) ON CONFLICT (service, code, updated_date) DO UPDATE SET applied = 1,"
    " run = excluded.run";
/* BINARY order and comparisons, as the crawl compares codes (strcmp). */
static const char SQL_TC_RANGE[] =
    "SELECT code FROM tga_components WHERE component_type = ?1 AND deleted_at IS NULL AND code > ?2"
    " AND (?3 IS NULL OR code <= ?3) ORDER BY code";
static const char SQL_RTO_RANGE[] =
    "SELECT code FROM tga_rtos WHERE deleted_at IS NULL AND code > ?2 AND (?3 IS NULL OR code <= ?3) ORDER BY code";

int
store_removed(struct store *s, enum tga_service svc, const char *code, int64_t at_ticks, char **cause)
{
	const char *service = svc == SVC_TRAINING ? "training" : "organisation";
	char at[TICKS_LEN];
	sqlite3_stmt *q;
	int n;

	if ((n = store_soft_delete(s, svc, code, at_ticks, "NotFound", cause)) <= 0)
		return n;
	if ((q = db_stmt(s->db, SQL_REMOVED, cause)) == NULL)
		return -1;
	db_bind_text(q, 1, service);
	db_bind_text(q, 2, code);
	db_bind_text(q, 3, ticks_format(at_ticks, at));
	sqlite3_bind_int64(q, 4, s->cycle_n);
	sqlite3_bind_int64(q, 5, s->run_n);
	if (db_step_done(s->db, q, cause) == -1)
		return -1;
	step_detail_add(s->st, "soft_deleted", 1);
	log_info("%s %s is gone from the REST API (404, no longer listed): soft-deleted", service, code);
	return 1;
}

int
store_live_codes(struct db *db, const char *type, const char *after, const char *upto, char ***codes, size_t *n,
    char **cause)
{
	sqlite3_stmt *q;
	size_t cap = 0;
	int rc;

	*codes = NULL;
	*n = 0;
	if ((q = db_stmt(db, type != NULL ? SQL_TC_RANGE : SQL_RTO_RANGE, cause)) == NULL)
		return -1;
	if (type != NULL)
		db_bind_text(q, 1, type);
	db_bind_text(q, 2, after != NULL ? after : "");
	db_bind_text(q, 3, upto);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*codes = xreallocarray(*codes, cap, sizeof **codes);
		}
		(*codes)[(*n)++] = xstrdup(db_col_text(q, 0));
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE) {
		while (*n > 0)
			free((*codes)[--*n]);
		free(*codes);
		*codes = NULL;
		return db_error(db, cause, "list stored codes");
	}
	return 0;
}
