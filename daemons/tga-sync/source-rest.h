/*
 * The register over the public training.gov.au REST API ("NTR Web API", no credentials; reference
 * tga-web-services.md section 6): the second source of tga-sync (issue 8, [tga-sync] source = rest).
 *
 * The SOAP source (source.h) answers "what changed since" (modified-date windows, tombstones); the REST API has no
 * such filter, so this source offers what a full crawl needs instead, with the same result types:
 *
 *   rest_metadata   GET /api/metadata: dataExportSyncDateTime, the cheap "did anything change" probe;
 *   rest_search     one page of /api/search/training (one component type) or /api/search/organisation, ordered
 *                   by code, optionally only the codes after one (how a crawl goes on past the offset cap): the
 *                   codes, as a src_page;
 *   rest_details    one record into a stage, in the stage records of stage.h that the SOAP GetDetails parser
 *                   fills, so the same store code writes the same tables: a component from /api/training/{code}
 *                   and the unit grid of every release (/releases/{n}/unitgrid), or an RTO from
 *                   /api/organisation/{code}?include=all and its scope (/scopesummary, then /scope paged per
 *                   component type: an unfiltered scope omits the granted qualifications).
 *
 * Errors are src_error classes as in source.h (SRC_TRANSIENT is retried by the step, SRC_FAULT is fatal), plus the
 * HTTP status for the caller's own decisions (417: the page is too large; 400 past offset 0: the offset cap).
 * The REST quirks answered here: 417 and repeated 5xx/429 on a scope page halve its page size (growing back after
 * a run of good pages), 429 waits its Retry-After (http.c), an offset at the cap goes on by code instead, and
 * scope filters never select explicit rows with isImplicit==false (the API's HTTP 500): explicit-only is
 * includeImplicitItems=false.
 */
#ifndef TGA_SOURCE_REST_H
#define TGA_SOURCE_REST_H

#include <stdbool.h>
#include <stdint.h>

#include "source.h"
#include "stage.h"
#include "tga.h"
#include "tgatime.h"

struct http_group;
struct rest_source;

/* The smallest page a halving goes down to; below it a failing page fails its step. */
#define REST_MIN_PAGE 10

typedef void (*rest_done_fn)(void *arg, const struct src_error *, long http_status);

struct rest_source *rest_source_new(struct tga *);
void rest_source_free(struct rest_source *);

/* *ticks = dataExportSyncDateTime. */
void rest_metadata(struct rest_source *, struct http_group *, int64_t *ticks, rest_done_fn, void *arg);

/* The search's partition: one component type (its ComponentType name; NULL for organisations), the codes after
 * `after` ("" for all), from `offset`, `page_size` results, ordered by code, with the total count. */
struct rest_query {
	enum tga_service svc;
	const char *type;
	const char *after;
	int64_t offset;
	int page_size;
};
/* out: items (code, is_current from status.isCurrent, usage ""), count = totalCount (-1 if not given), returned =
 * data elements, rejects = elements without a valid code. */
void rest_search(struct rest_source *, struct http_group *, const struct rest_query *, struct src_page *out,
    rest_done_fn, void *arg);

/* One record to fetch (the caller owns it until done runs). */
struct rest_fetch {
	enum tga_service svc;
	char code[TGA_CODE_MAX];
	int item;			/* the stage entity's item (the caller's index) */
	char known_updated[TICKS_LEN];	/* the stored UpdatedDate ("" none): equal to the upstream one, the record is
					 * unchanged and nothing more is fetched or staged (as SOAP skips it) */
	/* results */
	bool unchanged;			/* known_updated matched: no entity staged */
	bool gone;			/* 404: a nil entity staged */
	int64_t requests, scope_rows, halvings, restarts;
	/* the scope's completeness (an RTO whose scope was read): rows the scopesummary and first pages announced,
	 * and how many of them were still missing after the restarts (staged as a rejected record naming them) */
	bool scope_checked;
	int64_t scope_expected, scope_short;
};
/*
 * Appends one entity to the stage (nil if the record is gone), or nothing when unchanged or on error.  The
 * entity is written as its pages arrive (an RTO's 30,000 scope rows never sit in memory), so a stage takes one
 * rest_details at a time: the phase gives each request lane its own stage.
 */
void rest_details(struct rest_source *, struct http_group *, struct rest_fetch *, struct stage *, rest_done_fn,
    void *arg);

#endif
