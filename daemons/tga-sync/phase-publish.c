/*
 * publish: the register into D1's corpus database (common/engine/publish.c does the work; docs/tga-sync.md,
 * "Publishing to D1").  Every write of a row sets its `run` (tga_runs.n) and the stamps added_in, changed_in,
 * deleted_in/removed_in are tga_runs numbers too, so "published through run N" is one integer and a row is in the
 * change set when its run or a stamp is after it.  The child lists (releases, unit grid, …; names, locations, …)
 * are replaced with their parent; scope rows are reached through the RTOs whose scope or row changed (indexed by
 * scope_changed_in; the RTO table is 12,750 rows), then by the scope's primary-key prefix, so a delta never scans
 * the 6.2 million scope rows.
 */
#include <stdio.h>

#include "cycle.h"
#include "db.h"
#include "publish.h"
#include "tga.h"

#define COMPONENT_CHANGED "run > ?1 OR added_in > ?1 OR changed_in > ?1 OR deleted_in > ?1"
#define RTO_CHANGED "run > ?1 OR added_in > ?1 OR changed_in > ?1 OR deleted_in > ?1 OR scope_changed_in > ?1"
#define COMPONENT_LIST(name) { name, NULL, NULL, 1, "component_code", "seq", NULL }
#define RTO_LIST(name) { name, NULL, NULL, 8, "rto_code", "seq", NULL }

/* Parents before their children: the indexes 1 and 8 above are tga_components and tga_rtos. */
static const struct pub_table tga_pub_tables[] = {
	{ "tga_runs", "n > ?1", NULL, -1, NULL, NULL, NULL },
	{ "tga_components", COMPONENT_CHANGED, "deleted_at", -1, NULL, NULL, NULL },
	COMPONENT_LIST("tga_releases"),
	COMPONENT_LIST("tga_unit_grid"),
	COMPONENT_LIST("tga_mappings"),
	COMPONENT_LIST("tga_classifications"),
	COMPONENT_LIST("tga_usage_recommendations"),
	COMPONENT_LIST("tga_currency_periods"),
	{ "tga_rtos", RTO_CHANGED, "deleted_at", -1, NULL, NULL, NULL },
	RTO_LIST("tga_rto_registration_periods"),
	RTO_LIST("tga_rto_trading_names"),
	RTO_LIST("tga_rto_locations"),
	RTO_LIST("tga_rto_urls"),
	{ "tga_rto_scope", "run > ?1 OR added_in > ?1 OR changed_in > ?1 OR removed_in > ?1", "removed_in", 8,
	    "rto_code", NULL, "scope_changed_in > ?1 OR run > ?1 OR deleted_in > ?1" },
	{ "tga_deletions", "run > ?1 OR added_in > ?1", NULL, -1, NULL, NULL, NULL },
};

static const char SQL_MARK[] = "SELECT coalesce(max(n), 0) FROM tga_runs";

static int
tga_mark(struct step *st, struct db *db, char *out, size_t len, char **cause)
{
	sqlite3_stmt *q;

	if ((q = db_stmt(db, SQL_MARK, cause)) == NULL)
		return -1;
	if (sqlite3_step(q) != SQLITE_ROW) {
		sqlite3_reset(q);
		return db_error(db, cause, "tga_runs");
	}
	snprintf(out, len, "%lld", (long long)sqlite3_column_int64(q, 0));
	sqlite3_reset(q);
	return 0;
}

const struct pub_def tga_publish = {
	.scope = "tga_sync",
	.schema_version = 1,
	.schema_name = "tga tables (corpus 0002, 0005)",
	.tables = tga_pub_tables,
	.ntables = sizeof tga_pub_tables / sizeof tga_pub_tables[0],
	.mark_int = true,
	.mark = tga_mark,
};

void
phase_publish(struct step *st)
{
	struct tga *t = step_job(st);

	publish_step(t->pub, st);
}
