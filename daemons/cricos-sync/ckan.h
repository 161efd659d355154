/*
 * The CKAN Action API as data.gov.au serves it (../shared/reference/cricos-data.md §2): URLs, the answer envelope
 * {"help", "success", "result"} and CKAN's error shape {"success": false, "error": {"__type", "message" | field
 * errors}}, turned into one clear message and a retry-or-not decision.  No table knowledge here.
 */
#ifndef CRICOS_CKAN_H
#define CRICOS_CKAN_H

#include <cJSON.h>
#include <stdbool.h>

#include "http.h"

/* "<base>/api/3/action/<action>?<query>"; query is already URL-encoded. */
char *ckan_url(const char *base, const char *action, const char *query);

/*
 * A request that ended with r->error set (transport failure, non-2xx, HTML page...): the message, with CKAN's own
 * error (from a JSON error body) when there is one.  *fatal when retrying the same request cannot help (our
 * request or configuration is wrong: 400, 403, 404, validation errors, a redirect to a login page).
 */
char *ckan_failure(const struct http_result *r, const char *what, bool *fatal);

/*
 * The envelope of an answer that arrived as 2xx: NULL if "success" is true and "result" is there (*result set),
 * else the message (and *fatal) of CKAN's error.
 */
char *ckan_envelope_check(const cJSON *doc, const char *what, const cJSON **result, bool *fatal);

/* CKAN's "error" object as text: "Validation Error: limit: Invalid integer". */
char *ckan_error_text(const cJSON *error);

/*
 * A count CKAN sends (result.total, offset, limit, a resource's size) as a C integer: def when absent or not a
 * number, -1 when outside 0..max (a negative, 1e300 or inf has no C value), else the number.
 */
#define CKAN_COUNT_MAX 9007199254740992LL	/* 2^53: every integer up to it is exact in a double */
long long ckan_count(const cJSON *obj, const char *key, long long def, long long max);

/* A resource's change fingerprint, from package_show or resource_show. */
struct ckan_resource {
	char id[64];
	char name[256];
	char last_modified[40];	/* as CKAN wrote it (naive UTC, microseconds, maybe "Z") */
	char hash[80];
	long long size;		/* -1 if absent */
	char format[32];	/* "CSV", "ZIP", "XLSX"... as the publisher typed it ("" if absent) */
	bool datastore_active;	/* false only when CKAN says so */
};

/* Read the fields of one resource dict; false if it has no id. */
bool ckan_resource_read(const cJSON *res, struct ckan_resource *out);
/*
 * Can the DataStore ever hold this resource's rows?  A resource without an active DataStore table whose format the
 * loaders (XLoader, DataPusher) never load (a ZIP, a PDF) never will: paging it cannot succeed.  A CSV or a
 * spreadsheet (or no format given) may just be being (re)loaded.
 */
bool ckan_resource_loadable(const struct ckan_resource *);

#endif
