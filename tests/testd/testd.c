/*
 * test-sync: a small daemon built on the cycle engine, for the engine's own tests.  It syncs "items" from a local
 * JSON test server (tests/kit/items_server.py) into rtopacks.db, page by page, the way a real job syncs an upstream:
 *
 *   init          GET /meta: how many pages; remember it in the cycle state            (ops.db only)
 *   fetch_items   GET /items?page=N: upsert a page per step, cursor "page=N"            (rtopacks.db)
 *   aggregate     totals per group, in one step                                          (rtopacks.db)
 *   write_snapshot  the change summary (added / updated items), from the rows' stamps   (ops.db only)
 *   notify        the completion mail
 *
 * Rows carry the cycle that created them and the cycle that last changed them, so the summary is derived from the
 * data (a page replayed after a crash changes nothing and counts nothing twice).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "buf.h"
#include "config.h"
#include "cycle.h"
#include "daemon.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "xmalloc.h"

struct testd {
	struct http_client *http;
	char *url;
};

static const struct cfg_key testd_keys[] = {
	{ "url", CFG_URL, NULL, 0, 0, NULL, CFG_REQUIRED, "Base URL of the items test server." },
	{ "page_size", CFG_INT, "10", 1, 1000, NULL, 0, "Items per page." },
	{ NULL, 0, NULL, 0, 0, NULL, 0, NULL },
};

static const char DDL[] =
    "CREATE TABLE IF NOT EXISTS corpus.test_items (id INTEGER PRIMARY KEY, grp TEXT NOT NULL, name TEXT NOT NULL,"
    " value INTEGER NOT NULL, created_cycle TEXT NOT NULL, changed_cycle TEXT NOT NULL, run_id TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS corpus.test_totals (grp TEXT PRIMARY KEY, items INTEGER NOT NULL,"
    " total INTEGER NOT NULL, run_id TEXT NOT NULL);";

static const char SQL_UPSERT[] =
    "INSERT INTO test_items (id, grp, name, value, created_cycle, changed_cycle, run_id) VALUES (?1, ?2, ?3, ?4,"
    " ?5, ?5, ?6) ON CONFLICT (id) DO UPDATE SET grp = excluded.grp, name = excluded.name, value = excluded.value,"
    " changed_cycle = excluded.changed_cycle, run_id = excluded.run_id"
    " WHERE grp IS NOT excluded.grp OR name IS NOT excluded.name OR value IS NOT excluded.value";
static const char SQL_TOTALS_CLEAR[] = "DELETE FROM test_totals";
static const char SQL_TOTALS[] =
    "INSERT INTO test_totals (grp, items, total, run_id) SELECT grp, count(*), sum(value), ? FROM test_items"
    " GROUP BY grp";
static const char SQL_SUMMARY[] =
    "SELECT (SELECT count(*) FROM test_items WHERE created_cycle = ?1),"
    " (SELECT count(*) FROM test_items WHERE changed_cycle = ?1 AND created_cycle <> ?1)";
static const char SQL_ADDED[] = "SELECT id, name FROM test_items WHERE created_cycle = ? ORDER BY id LIMIT 50";

/* --- init --------------------------------------------------------------------------------------------------- */

static void
init_done(struct http_request *req, const struct http_result *r, void *arg)
{
	struct step *st = arg;
	cJSON *meta, *pages;

	if (r->cancelled) {
		step_fail(st, STEP_RETRY, "cancelled");
		return;
	}
	if (r->error != NULL) {
		step_fail(st, STEP_RETRY, "%s", r->error);
		return;
	}
	if ((meta = cJSON_ParseWithLength(r->body, r->body_len)) == NULL ||
	    !cJSON_IsNumber(pages = cJSON_GetObjectItem(meta, "pages"))) {
		cJSON_Delete(meta);
		step_fail(st, STEP_RETRY, "test server: /meta is not {\"pages\": N}");
		return;
	}
	cJSON_DeleteItemFromObject(step_cycle_state(st), "pages");
	cJSON_AddNumberToObject(step_cycle_state(st), "pages", pages->valuedouble);
	cJSON_Delete(meta);
	step_done(st, STEP_PHASE_DONE);
}

static void
phase_init(struct step *st)
{
	struct testd *t = step_job(st);
	struct http_req_opts o;
	char *url;

	xasprintf(&url, "%s/meta?size=%lld", t->url,
	    (long long)config_int(step_daemon(st)->cfg, "test-sync", "page_size"));
	memset(&o, 0, sizeof o);
	o.url = url;
	o.accept_types = "application/json";
	o.on_done = init_done;
	o.arg = st;
	o.what = "GET /meta";
	o.group = step_http(st);
	http_request(t->http, &o);
	free(url);
}

/* --- fetch_items -------------------------------------------------------------------------------------------- */

struct fetch {
	struct step *st;
	int page;
};

static void
fetch_done(struct http_request *req, const struct http_result *r, void *arg)
{
	struct fetch *f = arg;
	struct step *st = f->st;
	cJSON *doc = NULL, *items, *it;
	sqlite3_stmt *q;
	struct db *db;
	char *cause = NULL;
	int pages, n = 0, changed = 0;

	if (r->cancelled || r->error != NULL) {
		step_fail(st, STEP_RETRY, "%s", r->cancelled ? "cancelled" : r->error);
		free(f);
		return;
	}
	pages = cJSON_GetObjectItem(step_cycle_state(st), "pages")->valueint;
	if ((doc = cJSON_ParseWithLength(r->body, r->body_len)) == NULL ||
	    !cJSON_IsArray(items = cJSON_GetObjectItem(doc, "items"))) {
		cJSON_Delete(doc);
		step_fail(st, STEP_RETRY, "test server: page %d is not {\"items\": [...]}", f->page);
		free(f);
		return;
	}
	if ((db = step_db(st, &cause)) == NULL)
		goto dberr;
	cJSON_ArrayForEach(it, items) {
		const cJSON *id = cJSON_GetObjectItem(it, "id"), *grp = cJSON_GetObjectItem(it, "group"),
		    *name = cJSON_GetObjectItem(it, "name"), *value = cJSON_GetObjectItem(it, "value");

		n++;
		if (!cJSON_IsNumber(id) || !cJSON_IsString(grp) || !cJSON_IsString(name) || !cJSON_IsNumber(value)) {
			step_reject(st, 1, "page %d: an item without id, group, name or value", f->page);
			continue;
		}
		if ((q = db_stmt(db, SQL_UPSERT, &cause)) == NULL)
			goto dberr;
		db_bind_int(q, 1, (int64_t)id->valuedouble);
		db_bind_text(q, 2, grp->valuestring);
		db_bind_text(q, 3, name->valuestring);
		db_bind_int(q, 4, (int64_t)value->valuedouble);
		db_bind_text(q, 5, step_cycle_id(st));
		db_bind_text(q, 6, step_run_id(st));
		if (db_step_done(db, q, &cause) == -1)
			goto dberr;
		changed += sqlite3_changes(db_handle(db));
	}
	crashpoint("testd_page_written");
	step_count(st, n, changed);
	cJSON_Delete(doc);
	step_set_cursor(st, "page=%d", f->page + 1);
	step_done(st, f->page >= pages ? STEP_PHASE_DONE : STEP_MORE);
	free(f);
	return;
dberr:
	cJSON_Delete(doc);
	step_fail(st, STEP_RETRY, "%s", cause);
	free(cause);
	free(f);
}

static void
phase_fetch(struct step *st)
{
	struct testd *t = step_job(st);
	struct http_req_opts o;
	struct fetch *f;
	const char *cur = step_cursor(st);
	char *url;
	int page = 1, pages = cJSON_GetObjectItem(step_cycle_state(st), "pages")->valueint;

	if (strncmp(cur, "page=", 5) == 0)
		page = atoi(cur + 5);
	if (page > pages || pages == 0) {
		step_done(st, STEP_PHASE_DONE);
		return;
	}
	f = xcalloc(1, sizeof *f);
	f->st = st;
	f->page = page;
	xasprintf(&url, "%s/items?page=%d&size=%lld", t->url, page,
	    (long long)config_int(step_daemon(st)->cfg, "test-sync", "page_size"));
	memset(&o, 0, sizeof o);
	o.url = url;
	o.accept_types = "application/json";
	o.on_done = fetch_done;
	o.arg = f;
	o.what = "GET /items";
	o.group = step_http(st);
	http_request(t->http, &o);
	free(url);
}

/* --- aggregate, write_snapshot ------------------------------------------------------------------------------ */

static void
phase_aggregate(struct step *st)
{
	char *cause = NULL;
	sqlite3_stmt *q;
	struct db *db;

	if ((db = step_db(st, &cause)) == NULL || (q = db_stmt(db, SQL_TOTALS_CLEAR, &cause)) == NULL ||
	    db_step_done(db, q, &cause) == -1 || (q = db_stmt(db, SQL_TOTALS, &cause)) == NULL)
		goto fail;
	db_bind_text(q, 1, step_run_id(st));
	if (db_step_done(db, q, &cause) == -1)
		goto fail;
	step_count(st, 0, sqlite3_changes(db_handle(db)));
	step_done(st, STEP_PHASE_DONE);
	return;
fail:
	step_fail(st, STEP_RETRY, "%s", cause);
	free(cause);
}

static void
phase_snapshot(struct step *st)
{
	cJSON *sum = cJSON_CreateObject(), *added = cJSON_CreateArray();
	char *cause = NULL;
	sqlite3_stmt *q;
	struct db *db;
	int64_t a, u;

	if ((db = step_db(st, &cause)) == NULL || (q = db_stmt(db, SQL_SUMMARY, &cause)) == NULL)
		goto fail;
	db_bind_text(q, 1, step_cycle_id(st));
	if (sqlite3_step(q) != SQLITE_ROW) {
		sqlite3_reset(q);
		db_error(db, &cause, "summary");
		goto fail;
	}
	a = sqlite3_column_int64(q, 0);
	u = sqlite3_column_int64(q, 1);
	sqlite3_reset(q);
	if ((q = db_stmt(db, SQL_ADDED, &cause)) == NULL)
		goto fail;
	db_bind_text(q, 1, step_cycle_id(st));
	while (sqlite3_step(q) == SQLITE_ROW)
		cJSON_AddItemToArray(added, cJSON_CreateString(db_col_text(q, 1)));
	sqlite3_reset(q);
	cJSON_AddNumberToObject(sum, "added", (double)a);
	cJSON_AddNumberToObject(sum, "updated", (double)u);
	cJSON_AddItemToObject(sum, "added_names", added);
	step_set_summary(st, sum, a + u);
	cJSON_Delete(sum);
	step_done(st, STEP_PHASE_DONE);
	return;
fail:
	cJSON_Delete(sum);
	cJSON_Delete(added);
	step_fail(st, STEP_RETRY, "%s", cause);
	free(cause);
}

static void
format_summary(const cJSON *sum, struct buf *out)
{
	const cJSON *names = cJSON_GetObjectItem(sum, "added_names"), *n;

	buf_printf(out, "  items added:   %d\n  items updated: %d\n", cJSON_GetObjectItem(sum, "added")->valueint,
	    cJSON_GetObjectItem(sum, "updated")->valueint);
	cJSON_ArrayForEach(n, names)
		buf_printf(out, "    + %s\n", n->valuestring);
}

/* --- job ---------------------------------------------------------------------------------------------------- */

static int
testd_init(struct daemon *d, char **cause)
{
	struct testd *t = xcalloc(1, sizeof *t);
	struct http_settings hs;

	if (db_exec(d->db, DDL, cause) == -1) {
		free(t);
		return -1;
	}
	http_settings_from_config(&hs, d->cfg, "test-sync", "test server");
	t->http = http_client_new(d->ec, d->loop, &hs);
	t->url = xstrdup(config_str(d->cfg, "test-sync", "url"));
	d->job_ctx = t;
	return 0;
}

static int
testd_reload(struct daemon *d, char **cause)
{
	struct testd *t = d->job_ctx;
	struct http_settings hs;

	http_settings_from_config(&hs, d->cfg, "test-sync", "test server");
	http_client_settings(t->http, &hs);
	free(t->url);
	t->url = xstrdup(config_str(d->cfg, "test-sync", "url"));
	return 0;
}

static void
testd_fini(struct daemon *d)
{
	struct testd *t = d->job_ctx;

	if (t == NULL)
		return;
	http_client_free(t->http);
	free(t->url);
	free(t);
	d->job_ctx = NULL;
}

static const struct phase_def testd_phases[] = {
	{ "init", phase_init, 0 },
	{ "fetch_items", phase_fetch, PHASE_CORPUS },
	{ "aggregate", phase_aggregate, PHASE_CORPUS },
	{ "write_snapshot", phase_snapshot, 0 },
	{ "notify", phase_notify, 0 },
};

static const struct job_def testd_job = {
	.daemon = "test-sync",
	.sync_type = "test_sync",
	.description = "The cycle engine's test daemon: syncs items from a local JSON test server.",
	.uses_corpus = true,
	.config_keys = testd_keys,
	.init = testd_init,
	.fini = testd_fini,
	.reload = testd_reload,
	.format_summary = format_summary,
	.phases = testd_phases,
	.nphases = sizeof testd_phases / sizeof testd_phases[0],
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &testd_job);
}
