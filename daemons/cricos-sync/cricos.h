/*
 * cricos-sync: the monthly CRICOS sync from data.gov.au (issue 4, docs/cricos-sync.md).
 *
 *   init                    package_show (resource_show for a resource not in the package): each resource's
 *                           last_modified and hash against the last synced edition.  None changed: "no new
 *                           edition", the sync phases are skipped and the edition watch is armed.
 *   sync_institutions       datastore_search pages, offset in the cursor, paging on `total`     (rtopacks.db)
 *   sync_courses            ... only the resources that changed are read
 *   sync_locations
 *   sync_course_locations
 *   link                    courses' VET National Code -> tga_components (tga-sync's table)      (rtopacks.db)
 *   write_snapshot          soft-delete what the edition no longer has; the change summary       (rtopacks.db)
 *   publish                 the changed rows into D1's corpus database (common/engine/publish.c)
 *   notify                  the completion mail (common)
 *
 * State.  Cycle state (one cycle): "edition" {table: fingerprint + "sync"}, "new_edition", "tables" {table:
 * total, limit}, "unparseable", "rows", "link", "watch".  Job state (across cycles): "edition" (the fingerprints
 * of the last synced edition), "watch" (the edition watch, when armed).
 */
#ifndef CRICOS_H
#define CRICOS_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "tables.h"

struct daemon;
struct http_client;
struct pub_def;
struct publisher;
struct step;

struct cricos {
	struct daemon *d;
	struct http_client *http;
	struct publisher *pub;		/* the publish phase (off without [d1]) */
	char *base;			/* CKAN root, e.g. https://data.gov.au/data */
	char *package_id;
	char *resource_id[T_COUNT];
	int page_size;
	char *page_sort;		/* "" = none */
	int64_t max_page_bytes;
	int summary_max;
	long tz_offset;			/* seconds east of UTC: what "the 1st" and "the 10th" mean */
	bool watch_enabled;
	int64_t watch_interval_ms;
	int late_day;

	/* The edition watch, in memory (its state proper is in the job state). */
	char watch_run_id[128];		/* the run the watch started last (its init marks it a re-check) */
	time_t watch_last_trigger;
	char late_sent[16];		/* month whose "late" alert is known to be queued */
};

#define CRICOS_SECTION "cricos-sync"
#define CRICOS_D1_BUDGET 200		/* D1 requests per 5 minutes when [d1] names none (docs/d1-design.md) */

/* Phases. */
void phase_init(struct step *);
void phase_sync_institutions(struct step *);
void phase_sync_courses(struct step *);
void phase_sync_locations(struct step *);
void phase_sync_course_locations(struct step *);
void phase_link(struct step *);
void phase_snapshot(struct step *);
void phase_publish(struct step *);
extern const struct pub_def cricos_publish;

/* Edition watch (watch.c). */
void watch_housekeeping(struct daemon *);
/* Update the watch in the job state after init's decision; fills info (for the summary). */
void watch_after_init(struct cricos *, struct step *, bool new_edition, time_t newest, cJSON *info);
/* "YYYY-MM" of a time in the configured zone. */
void local_month(const struct cricos *, time_t, char out[8]);
void local_date(const struct cricos *, time_t, char out[11]);

/* The mail's change summary (summary.c). */
void cricos_format_summary(const cJSON *summary, struct buf *out);

/* Small cJSON helpers (main.c). */
cJSON *json_obj(cJSON *parent, const char *key);		/* get or create an object member */
const char *json_str(const cJSON *o, const char *key);		/* "" if absent */
double json_num(const cJSON *o, const char *key, double def);
void json_set_str(cJSON *o, const char *key, const char *v);
void json_set_num(cJSON *o, const char *key, double v);
void json_add_num(cJSON *o, const char *key, double v);	/* o[key] += v */

/* CKAN last_modified ("2026-05-04T13:23:11.107628", maybe with Z) as a time; false if unreadable. */
bool ckan_time(const char *s, time_t *t);

/* The [cricos-sync] keys (keys.c). */
extern const struct cfg_key cricos_config_keys[];

#endif
