/*
 * cricos-sync's part of syncctl (linked into syncctl through CTL_SOURCES in this folder's CMakeLists.txt): its
 * doctor check
 *   edition  a "late edition" alert that is not cleared (sync_alerts, written by cricos-sync: watch.c)
 */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "db.h"
#include "sctl.h"

static const char SQL_LATE_EDITION[] =
    "SELECT kind, alert_key, created_at, detail FROM sync_alerts WHERE sync_type = ? AND kind LIKE '%late%'"
    " AND cleared_at IS NULL ORDER BY created_at";

static void
cricos_doctor(struct sctl_report *r, const struct sctl_daemon *d, struct db *db, time_t now, int64_t warn_s)
{
	sqlite3_stmt *st;
	char *cause = NULL;

	if ((st = db_stmt(db, SQL_LATE_EDITION, &cause)) == NULL) {
		sctl_finding(r, SCTL_LEVEL_WARN, "edition", "check that ops.db is readable", "%s", cause);
		free(cause);
		return;
	}
	db_bind_text(st, 1, d->sync_type);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *detail = db_col_text(st, 3);

		sctl_finding(r, SCTL_LEVEL_WARN, "edition",
		    "nothing to repair here: cricos-sync re-checks data.gov.au daily and syncs the edition as soon as it "
		    "is published (`syncctl trigger cricos-sync --wait` checks now); if it stays late, check "
		    "https://data.gov.au/dataset/cricos",
		    "%s (alerted %s)", detail[0] ? detail : "a new CRICOS edition is late", db_col_text(st, 2));
	}
	sqlite3_reset(st);
}

const struct sctl_hooks sctl_hooks_cricos_sync = {
	.doctor = cricos_doctor,
	.doctor_help = "a late CRICOS edition",
};
