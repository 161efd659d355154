/*
 * REST responses -> search items and stage records (the records of stage.h, filled exactly as parse-details.c
 * fills them from SOAP, so that both sources write the same rows).  See docs/tga-sync.md for the mapping and which
 * REST field names are the fake's guesses, to be checked against the live API.
 *
 * Documents are bounded before they get here (http max_body).  Small ones (details, searches, metadata, unit
 * grids) are read with cJSON; scope pages (up to 1,000 rows each, 6.2 million a cycle) with jscan, row by row into
 * the stage.  Every function returns 0, or -1 with msg saying what was wrong (the caller requests it again).
 */
#ifndef TGA_PARSE_REST_H
#define TGA_PARSE_REST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "source.h"
#include "stage.h"

/* Releases whose unit grid a component may have, oldest first. */
#define PR_MAX_RELEASES 256
struct pr_releases {
	int n;
	char number[PR_MAX_RELEASES][64];
};

/* /api/metadata -> dataExportSynchronisationDateTime (live) or dataExportSyncDateTime (reference); without either,
 * msg lists the keys there were. */
int pr_metadata(const char *body, size_t len, int64_t *ticks, char *msg, size_t msglen);

/* A search page.  expect_type: the REST type id every item must have ("unit"), or NULL.  out->count: totalCount,
 * else "count" when it exceeds the page's rows (else it may be the page's own count), else -1. */
int pr_search(const char *body, size_t len, enum tga_service, const char *expect_type, int page_size,
    struct src_page *out, char *msg, size_t msglen);

/* /api/training/{code}: the child records (not the unit grids) into the stage and the head into *head (rec_init'ed
 * by the caller); *updated = the canonical updatedDate ("" if none); rels = the releases that may have a grid. */
int pr_training(const cJSON *d, struct stage *, struct rec *head, char *updated, size_t updlen,
    struct pr_releases *rels, char *msg, size_t msglen);
/* A release's /unitgrid (a bare array) into REC_TC_GRID records (REC_REJECT for an entry without a code). */
int pr_grid(const cJSON *arr, const char *component, const char *release_number, struct stage *, char *msg,
    size_t msglen);

/* /api/organisation/{code}?include=all: child records into the stage, the head into *head (legal person only if
 * legal is set). */
int pr_org(const cJSON *o, bool legal, struct stage *, struct rec *head, char *updated, size_t updlen, char *msg,
    size_t msglen);

/* /scopesummary: the REST component types with rows (at most PR_MAX_TYPES), with their totals (totalCount or
 * count; explicitCount, implicitCount; -1 unknown). */
#define PR_MAX_TYPES 16
struct pr_types {
	int n;
	char name[PR_MAX_TYPES][64];
	int64_t total[PR_MAX_TYPES];
	int64_t explicit_n[PR_MAX_TYPES], implicit_n[PR_MAX_TYPES];
};
int pr_scopesummary(const char *body, size_t len, struct pr_types *, char *msg, size_t msglen);

/* One scope page into REC_ORG_SCOPE records (REC_REJECT for a row without a valid code), adding to the RTO's
 * order-independent hash and count.  Rows of a kind not asked for (explicit / implicit) are dropped. */
struct pr_scope {
	uint64_t hash;
	int64_t count;
	int rejects;
};
struct pr_scope_page {
	int64_t rows;			/* rows in "value" */
	int64_t total;			/* totalCount, else count, -1 if neither */
	int64_t count;			/* count, -1 if absent */
	char last[TGA_CODE_MAX];	/* the last row's code ("" none) */
};
int pr_scope_page(const char *body, size_t len, const char *rto, bool explicit_on, bool implicit_on,
    struct stage *, struct pr_scope *, struct pr_scope_page *, char *msg, size_t msglen);

/* REST ComponentType names <-> SOAP ones ("unit" <-> "Unit", "accreditedUnit" <-> "AccreditedCourseModule"). */
const char *rest_type_from_soap(const char *soap);
void rest_type_to_soap(const char *rest, size_t len, char *out, size_t outlen);
/* The Type/Id filter number of a SOAP ComponentType ([Flags] enum of the NRT), or -1 if the REST search has none. */
int rest_type_id(const char *soap);

/* A ProblemDetails or other error body, shortened for a message. */
void pr_error_text(const char *body, size_t len, char *out, size_t outlen);

#endif
