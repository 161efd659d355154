/*
 * init: is there a new edition?  One package_show gives every resource's last_modified and hash; a configured
 * resource missing from the package is asked for with resource_show (it may have moved to another package).  A
 * resource counts as changed when its hash differs, or, if CKAN gives no hash, when its last_modified does: a
 * re-upload of identical bytes (same hash, new last_modified) is not a new edition.  Only changed resources are
 * read by the sync phases; when none changed the cycle is a "no new edition" run and the edition watch decides
 * what comes next (watch.c).
 *
 * Errors about one resource name it the way the operator fixes it: its config key (resource_courses), what it is
 * (CRICOS Courses.csv) and the id configured, and say which way out there is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckan.h"
#include "cricos.h"
#include "cycle.h"
#include "http.h"
#include "jsonlimit.h"
#include "log.h"
#include "timeutil.h"
#include "xmalloc.h"

#define META_MAX_BODY (1024 * 1024)	/* package_show of the CRICOS package is about 60 KB */
#define META_MAX_NODES 50000		/* ... and a few thousand values */

struct init_req {
	struct step *st;
	struct res_req *asks[T_COUNT];
	struct ckan_resource res[T_COUNT];
	bool have[T_COUNT];
	int pending;
	char *error;
	bool fatal;
	bool cancelled;
};

/* One resource_show: which table's resource it asks for. */
struct res_req {
	struct init_req *ir;
	size_t t;
};

static void evaluate(struct init_req *);

static void
set_error(struct init_req *ir, char *msg, bool fatal)
{
	/* Keep the first error: it is the cause, later ones are usually its consequences. */
	if (ir->error == NULL) {
		ir->error = msg;
		ir->fatal = fatal;
	} else
		free(msg);
}

static void
finish(struct init_req *ir)
{
	struct step *st = ir->st;
	size_t i;

	if (--ir->pending > 0)
		return;
	if (ir->cancelled)
		step_fail(st, STEP_RETRY, "cancelled");
	else if (ir->error != NULL)
		step_fail(st, ir->fatal ? STEP_FATAL : STEP_RETRY, "%s", ir->error);
	else {
		evaluate(ir);
		/* evaluate reported: ir is ours to free. */
	}
	free(ir->error);
	for (i = 0; i < T_COUNT; i++)
		free(ir->asks[i]);
	free(ir);
}

/* Parse a small CKAN answer; NULL with the error recorded. */
static cJSON *
small_answer(struct init_req *ir, const struct http_result *r, const char *what, const cJSON **result)
{
	char why[160];
	cJSON *doc;
	char *msg;
	bool fatal;

	if (r->cancelled) {
		ir->cancelled = true;
		return NULL;
	}
	if (r->error != NULL) {
		msg = ckan_failure(r, what, &fatal);
		set_error(ir, msg, fatal);
		return NULL;
	}
	if ((doc = json_parse_bounded(r->body, r->body_len, META_MAX_NODES, why, sizeof why)) == NULL) {
		xasprintf(&msg, "%s: the answer is not usable JSON (%zu bytes): %s", what, r->body_len, why);
		set_error(ir, msg, false);
		return NULL;
	}
	if ((msg = ckan_envelope_check(doc, what, result, &fatal)) != NULL) {
		set_error(ir, msg, fatal);
		cJSON_Delete(doc);
		return NULL;
	}
	return doc;
}

static void
resource_done(struct http_request *req, const struct http_result *r, void *arg)
{
	struct res_req *rq = arg;
	struct init_req *ir = rq->ir;
	struct cricos *c = step_job(ir->st);
	const struct table_def *t = &cricos_tables[rq->t];
	const cJSON *result;
	struct ckan_resource res;
	char what[400], *msg, *list;
	cJSON *doc;
	size_t i;
	bool fatal;

	snprintf(what, sizeof what, "resource_%s: %s (id %s) is not in package %s, and resource_show", t->name,
	    t->default_resource_name, c->resource_id[rq->t], c->package_id);
	if (!r->cancelled && r->error != NULL) {
		msg = ckan_failure(r, what, &fatal);
		if (fatal) {
			/* Gone (404) or refused: it was removed or replaced upstream, and only the config can follow it. */
			char *m2;

			list = ckan_url(c->base, "package_show", NULL);
			xasprintf(&m2, "%s; the resource was removed or replaced: set [cricos-sync] resource_%s to the id of "
			    "the current %s (%s?id=%s lists the package's resources)", msg, t->name,
			    t->default_resource_name, list, c->package_id);
			free(list);
			free(msg);
			msg = m2;
		}
		set_error(ir, msg, fatal);
	} else if ((doc = small_answer(ir, r, what, &result)) != NULL) {
		if (!ckan_resource_read(result, &res)) {
			xasprintf(&msg, "%s: the answer's result has no id", what);
			set_error(ir, msg, false);
		} else {
			for (i = 0; i < T_COUNT; i++) {
				if (strcmp(c->resource_id[i], res.id) == 0) {
					ir->res[i] = res;
					ir->have[i] = true;
				}
			}
		}
		cJSON_Delete(doc);
	}
	finish(ir);
}

static void
ask_resource(struct init_req *ir, size_t t)
{
	struct cricos *c = step_job(ir->st);
	struct http_req_opts o;
	const char *id = c->resource_id[t];
	char *q, *enc = http_urlencode(id), *url;
	struct res_req *rq = xcalloc(1, sizeof *rq);

	xasprintf(&q, "id=%s", enc);
	url = ckan_url(c->base, "resource_show", q);
	memset(&o, 0, sizeof o);
	o.url = url;
	o.accept_types = "application/json";
	o.max_body = META_MAX_BODY;
	rq->ir = ir;
	rq->t = t;
	ir->asks[t] = rq;
	o.on_done = resource_done;
	o.arg = rq;
	o.what = "resource_show";
	o.group = step_http(ir->st);
	ir->pending++;
	http_request(c->http, &o);
	free(url);
	free(q);
	free(enc);
}

static void
package_done(struct http_request *req, const struct http_result *r, void *arg)
{
	struct init_req *ir = arg;
	struct cricos *c = step_job(ir->st);
	const cJSON *result, *resources, *it;
	struct ckan_resource res;
	cJSON *doc;
	size_t i;

	if ((doc = small_answer(ir, r, "package_show", &result)) != NULL) {
		resources = cJSON_GetObjectItemCaseSensitive(result, "resources");
		if (!cJSON_IsArray(resources))
			set_error(ir, xstrdup("package_show: the package has no resources list"), false);
		cJSON_ArrayForEach(it, resources) {
			if (!ckan_resource_read(it, &res))
				continue;
			for (i = 0; i < T_COUNT; i++) {
				if (strcmp(c->resource_id[i], res.id) == 0) {
					ir->res[i] = res;
					ir->have[i] = true;
				}
			}
		}
		cJSON_Delete(doc);
		if (ir->error == NULL) {
			for (i = 0; i < T_COUNT; i++) {
				if (!ir->have[i]) {
					log_warnx("init: resource %s (%s) is not in package %s; asking resource_show",
					    c->resource_id[i], cricos_tables[i].name, c->package_id);
					ask_resource(ir, i);
				}
			}
		}
	}
	finish(ir);
}

void
phase_init(struct step *st)
{
	struct cricos *c = step_job(st);
	struct init_req *ir = xcalloc(1, sizeof *ir);
	struct http_req_opts o;
	char *q, *enc = http_urlencode(c->package_id), *url;

	ir->st = st;
	xasprintf(&q, "id=%s", enc);
	url = ckan_url(c->base, "package_show", q);
	memset(&o, 0, sizeof o);
	o.url = url;
	o.accept_types = "application/json";
	o.max_body = META_MAX_BODY;
	o.on_done = package_done;
	o.arg = ir;
	o.what = "package_show";
	o.group = step_http(st);
	ir->pending = 1;
	http_request(c->http, &o);
	free(url);
	free(q);
	free(enc);
}

/* --- the decision -------------------------------------------------------------------------------------------- */

static bool
resource_changed(const struct ckan_resource *now, const cJSON *before)
{
	const char *hash = json_str(before, "hash");

	if (before == NULL || strcmp(json_str(before, "id"), now->id) != 0)
		return true;
	if (now->hash[0] != '\0' && hash[0] != '\0')
		return strcmp(now->hash, hash) != 0;
	/* No hash on one side: the upload time is all there is. */
	return strcmp(now->last_modified, json_str(before, "last_modified")) != 0;
}

static void
evaluate(struct init_req *ir)
{
	struct step *st = ir->st;
	struct cricos *c = step_job(st);
	cJSON *cs = step_cycle_state(st), *js = step_job_state(st), *edition, *before, *e, *watch;
	time_t newest = 0, t;
	bool new_edition = false, new_data = false, changed[T_COUNT];
	int nchanged = 0;
	size_t i;

	before = cJSON_GetObjectItemCaseSensitive(js, "edition");
	cJSON_DeleteItemFromObjectCaseSensitive(cs, "edition");
	edition = cJSON_AddObjectToObject(cs, "edition");
	for (i = 0; i < T_COUNT; i++) {
		if (!ir->have[i]) {
			step_fail(st, STEP_FATAL, "resource_%s: %s (id %s) is neither in package %s nor known to "
			    "resource_show: set [cricos-sync] resource_%s to the id of the current %s",
			    cricos_tables[i].name, cricos_tables[i].default_resource_name, c->resource_id[i], c->package_id,
			    cricos_tables[i].name, cricos_tables[i].default_resource_name);
			return;
		}
	}
	for (i = 0; i < T_COUNT; i++) {
		const struct ckan_resource *r = &ir->res[i];

		/* --full reads everything, but only a changed fingerprint is new data (the watch waits for that). */
		if (resource_changed(r, cJSON_GetObjectItemCaseSensitive(before, cricos_tables[i].name)))
			new_data = true;
		changed[i] = step_full(st) || resource_changed(r, cJSON_GetObjectItemCaseSensitive(before,
		    cricos_tables[i].name));
		if (changed[i] && !r->datastore_active && !ckan_resource_loadable(r)) {
			/* A ZIP or a PDF is never loaded into the DataStore: retrying cannot help. */
			step_fail(st, STEP_FATAL, "resource_%s: %s (id %s, format %s) is not a DataStore resource: its "
			    "records cannot be read with datastore_search, now or later; set [cricos-sync] resource_%s to the "
			    "id of the %s resource", cricos_tables[i].name, r->name, r->id, r->format,
			    cricos_tables[i].name, cricos_tables[i].default_resource_name);
			return;
		}
		if (changed[i] && !r->datastore_active) {
			/* Not paged while XLoader reloads it; the next attempt (or trigger) finds it loaded. */
			step_fail(st, STEP_RETRY, "resource_%s: %s (id %s, last modified %s) has no active DataStore table: "
			    "cannot page it yet (being loaded?)", cricos_tables[i].name, r->name, r->id, r->last_modified);
			return;
		}
		e = cJSON_AddObjectToObject(edition, cricos_tables[i].name);
		cJSON_AddStringToObject(e, "id", r->id);
		cJSON_AddStringToObject(e, "name", r->name);
		cJSON_AddStringToObject(e, "last_modified", r->last_modified);	/* as CKAN wrote it: compared */
		if (ckan_time(r->last_modified, &t)) {
			char iso[ISO8601_LEN];

			cJSON_AddStringToObject(e, "last_modified_utc", iso8601_fmt(t, iso));	/* shown and stored */
		}
		cJSON_AddStringToObject(e, "hash", r->hash);
		cJSON_AddNumberToObject(e, "size", (double)r->size);
		cJSON_AddBoolToObject(e, "sync", changed[i]);
		if (changed[i])
			nchanged++;
		if (ckan_time(r->last_modified, &t) && t > newest)
			newest = t;
	}
	new_edition = nchanged > 0;
	cJSON_DeleteItemFromObjectCaseSensitive(cs, "new_edition");
	cJSON_AddBoolToObject(cs, "new_edition", new_edition);
	/* The first sync makes every row new: the summary then gives counts, not thousands of names. */
	cJSON_DeleteItemFromObjectCaseSensitive(cs, "first_sync");
	cJSON_AddBoolToObject(cs, "first_sync", before == NULL);
	cJSON_DeleteItemFromObjectCaseSensitive(cs, "watch_check");
	cJSON_AddBoolToObject(cs, "watch_check", strcmp(step_run_id(st), c->watch_run_id) == 0);
	cJSON_DeleteItemFromObjectCaseSensitive(cs, "watch");
	watch = cJSON_AddObjectToObject(cs, "watch");
	cJSON_DeleteItemFromObjectCaseSensitive(cs, "full");
	if (step_full(st))
		cJSON_AddBoolToObject(cs, "full", true);
	watch_after_init(c, st, new_data, newest, watch);

	if (new_edition) {
		log_info("init: %s: %d of %d resources changed%s", step_full(st) ? "full sync" : "new edition",
		    nchanged, T_COUNT, step_full(st) ? "" : " since the last synced edition");
		for (i = 0; i < T_COUNT; i++)
			if (changed[i])
				log_info("init: %s: %s, last modified %s, hash %s", cricos_tables[i].name,
				    ir->res[i].name, ir->res[i].last_modified, ir->res[i].hash);
	} else {
		char d[11];

		local_date(c, newest, d);
		log_info("init: no new edition: every resource is unchanged (newest upload %s)", d);
		step_set_status(st, "complete", "no new edition: every resource is unchanged since the last sync");
	}
	step_count(st, T_COUNT, nchanged);
	step_done(st, STEP_PHASE_DONE);
}
