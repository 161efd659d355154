/*
 * publish: the CRICOS tables into D1's corpus database (common/engine/publish.c does the work; docs/cricos-sync.md,
 * "Publishing to D1").  A row is in the change set when one of its cycle stamps is later than the cycle D1 is
 * complete through: cycle ids are "cricos_sync-<ISO-8601 start>", so they sort as the cycles ran.  seen_cycle is a
 * stamp too (D1 mirrors it exactly, so a table read in a new edition is sent whole: ~77,000 rows, ~20 requests a
 * month); link_cycle (corpus migration 0006) catches the link phase's tga_link in cycles that did not read courses.
 */
#include "cricos.h"
#include "cycle.h"
#include "publish.h"

#include <stdio.h>

#define STAMPS "added_cycle > ?1 OR changed_cycle > ?1 OR seen_cycle > ?1 OR removed_cycle > ?1"

static const struct pub_table cricos_pub_tables[] = {
	{ "cricos_institutions", STAMPS, "removed_cycle", -1, NULL, NULL, NULL },
	{ "cricos_courses", STAMPS " OR link_cycle > ?1", "removed_cycle", -1, NULL, NULL, NULL },
	{ "cricos_locations", STAMPS, "removed_cycle", -1, NULL, NULL, NULL },
	{ "cricos_course_locations", STAMPS, "removed_cycle", -1, NULL, NULL, NULL },
	{ "cricos_editions", "cycle_id > ?1", NULL, -1, NULL, NULL, NULL },
};

static int
cricos_mark(struct step *st, struct db *db, char *out, size_t len, char **cause)
{
	snprintf(out, len, "%s", step_cycle_id(st));
	return 0;
}

const struct pub_def cricos_publish = {
	.scope = "cricos_sync",
	.schema_version = 1,
	.schema_name = "cricos tables (corpus 0003, 0006)",
	.tables = cricos_pub_tables,
	.ntables = sizeof cricos_pub_tables / sizeof cricos_pub_tables[0],
	.mark_int = false,
	.mark = cricos_mark,
};

void
phase_publish(struct step *st)
{
	struct cricos *c = step_job(st);

	publish_step(c->pub, st);
}
