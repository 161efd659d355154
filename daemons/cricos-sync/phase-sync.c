/*
 * sync_institutions, sync_courses, sync_locations, sync_course_locations: page through datastore_search.
 *
 * One step = one page: fetch (spooled to disk), check the whole answer, then in one transaction write its records
 * and move the cursor to "offset=<next>".  Paging follows `total`, not short pages; `limit` is what CKAN echoes
 * (it silently clamps to its rows_max), and the next offset is the current one plus the records received, so a
 * clamp can never skip records.  A page is never half-written: a malformed answer is found by the checking pass
 * before anything is written, and any failure while writing rolls the page back.
 *
 * If `total` changes in the middle of a table, data.gov.au replaced the table under us: the table is read again
 * from offset 0 (its rows' seen stamps for this cycle are cleared, so the soft delete stays right).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckan-page.h"
#include "ckan.h"
#include "cricos.h"
#include "cursorkv.h"
#include "cycle.h"
#include "db.h"
#include "http.h"
#include "jsonlimit.h"
#include "log.h"
#include "timeutil.h"
#include "xmalloc.h"

#define MAX_TABLE_RESTARTS 3

static const char *const SQL_FORGET_SEEN[T_COUNT] = {
	"UPDATE cricos_institutions SET seen_cycle = NULL WHERE seen_cycle = ?1",
	"UPDATE cricos_courses SET seen_cycle = NULL WHERE seen_cycle = ?1",
	"UPDATE cricos_locations SET seen_cycle = NULL WHERE seen_cycle = ?1",
	"UPDATE cricos_course_locations SET seen_cycle = NULL WHERE seen_cycle = ?1",
};

static const char *const SQL_CURRENT_ROWS[T_COUNT] = {
	"SELECT count(*) FROM cricos_institutions WHERE removed_cycle IS NULL",
	"SELECT count(*) FROM cricos_courses WHERE removed_cycle IS NULL",
	"SELECT count(*) FROM cricos_locations WHERE removed_cycle IS NULL",
	"SELECT count(*) FROM cricos_course_locations WHERE removed_cycle IS NULL",
};

struct page {
	struct step *st;
	enum cricos_table t;
	long long offset;
	int limit;
	char what[160];

	/* While writing. */
	struct db *db;
	struct row row;
	char now[ISO8601_LEN];
	cJSON *unparseable;		/* the cycle state's counts, "<table>.<column>" */
	cJSON *rows;			/* the cycle state's row counts of this table */
	long long n_new, n_changed, n_same, n_blank, n_dup, n_conflict, n_reject;
	char *cause;
};

static void
page_free(struct page *p)
{
	row_free(&p->row);
	free(p->cause);
	free(p);
}

static long long
cursor_offset(const char *cur)
{
	struct ckv c;
	int64_t v;

	if (ckv_parse(&c, cur) == 0 && ckv_get_i64(&c, "offset", 0, INT64_MAX, &v))
		return v;
	return 0;
}

/* The cursor "offset=N": where the next page of the table starts. */
static void
set_offset(struct step *st, long long offset)
{
	struct ckv_builder b;

	ckv_init(&b);
	ckv_put_i64(&b, "offset", offset);
	step_set_cursor(st, "%s", ckv_str(&b));
}

static void sync_table(struct step *, enum cricos_table);

void
phase_sync_institutions(struct step *st)
{
	sync_table(st, T_INSTITUTIONS);
}

void
phase_sync_courses(struct step *st)
{
	sync_table(st, T_COURSES);
}

void
phase_sync_locations(struct step *st)
{
	sync_table(st, T_LOCATIONS);
}

void
phase_sync_course_locations(struct step *st)
{
	sync_table(st, T_COURSE_LOCATIONS);
}

/* --- writing one record -------------------------------------------------------------------------------------- */

/*
 * A record's DataStore _id, or -1 if it has none that is a whole number in range: the value is the upstream's, and
 * converting a double out of long long's range (1e300) is undefined behaviour.
 */
static long long
record_id(const cJSON *rec)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, "_id");

	return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 9e15 ? (long long)v->valuedouble : -1;
}

/*
 * A rejected record, named as the operator finds it upstream: its DataStore _id (a position means nothing once
 * the table is sorted or reloaded) and its code, in the log and in the cycle state's "rejected" list, from which
 * the summary and the mail list them (at most summary_max_items; the count is always complete).
 */
static void
reject(struct page *p, const cJSON *rec, const char *why)
{
	struct cricos *c = step_job(p->st);
	const struct table_def *t = &cricos_tables[p->t];
	const struct val *code = &p->row.v[t->code_col];
	const cJSON *it;
	cJSON *list = cJSON_GetObjectItemCaseSensitive(step_cycle_state(p->st), "rejected"), *o;
	long long id = record_id(rec);
	char codebuf[100];

	snprintf(codebuf, sizeof codebuf, "%.*s", code->s != NULL ? (int)(code->len > 80 ? 80 : code->len) : 1,
	    code->s != NULL ? code->s : "-");
	step_reject(p->st, 1, "%s _id %lld (%s %s): %s", t->name, id, t->cols[t->code_col].header, codebuf, why);
	if (list == NULL)
		list = cJSON_AddArrayToObject(step_cycle_state(p->st), "rejected");
	/* A table read again from the start (it changed under us) meets the same records again. */
	cJSON_ArrayForEach(it, list)
		if (strcmp(json_str(it, "table"), t->name) == 0 && json_num(it, "_id", -2) == (double)id)
			return;
	if (cJSON_GetArraySize(list) >= c->summary_max)
		return;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "table", t->name);
	cJSON_AddNumberToObject(o, "_id", (double)id);
	cJSON_AddStringToObject(o, "code", codebuf);
	cJSON_AddStringToObject(o, "why", why);
	cJSON_AddItemToArray(list, o);
}

static int
write_record(const char *json, size_t len, size_t index, void *arg)
{
	struct page *p = arg;
	const struct table_def *t = &cricos_tables[p->t];
	struct step *st = p->st;
	char why[300], key[128];
	cJSON *rec;
	size_t i;

	if ((rec = json_parse_bounded(json, len, PAGE_MAX_RECORD_NODES, why, sizeof why)) == NULL) {
		xasprintf(&p->cause, "%s: record %lld: %s", p->what, p->offset + (long long)index, why);
		return -1;
	}
	if (!cJSON_IsObject(rec)) {
		cJSON_Delete(rec);
		xasprintf(&p->cause, "%s: record %lld is not a JSON object", p->what, p->offset + (long long)index);
		return -1;
	}
	switch (row_clean(t, rec, &p->row, why, sizeof why)) {
	case ROW_BLANK:
		p->n_blank++;
		cJSON_Delete(rec);
		return 0;
	case ROW_REJECT:
		p->n_reject++;
		reject(p, rec, why);
		cJSON_Delete(rec);
		return 0;
	case ROW_OK:
		break;
	}
	for (i = 0; i < t->ncols; i++) {
		if (!p->row.unparseable[i])
			continue;
		snprintf(key, sizeof key, "unparseable.%s", t->cols[i].header);
		step_detail_add(st, key, 1);
		snprintf(key, sizeof key, "%s.%s", t->name, t->cols[i].header);
		json_add_num(p->unparseable, key, 1);
		log_info("%s: record _id %lld: %s '%.*s' cannot be read: stored as NULL", t->phase, record_id(rec),
		    t->cols[i].header, (int)(p->row.v[i].len > 60 ? 60 : p->row.v[i].len), p->row.v[i].s ? p->row.v[i].s : "");
	}
	switch (row_write(p->db, &p->row, step_cycle_id(st), p->now, &p->cause)) {
	case W_NEW:
		p->n_new++;
		break;
	case W_CHANGED:
		p->n_changed++;
		break;
	case W_SAME:
		p->n_same++;
		break;
	case W_DUPLICATE:
		p->n_dup++;
		break;
	case W_CONFLICT: {
		char why2[300];

		row_describe(&p->row, key, sizeof key);
		p->n_conflict++;
		snprintf(why2, sizeof why2, "%s appears twice in this edition with different content; the first is kept",
		    key);
		reject(p, rec, why2);
		break;
	}
	case W_ERROR:
		cJSON_Delete(rec);
		return -1;
	}
	cJSON_Delete(rec);
	return 0;
}

/* --- the page ------------------------------------------------------------------------------------------------ */

/* Every column we store must be among the DataStore fields (by id, a BOM ignored); extra ones are ignored. */
static char *
check_fields(const struct table_def *t, const cJSON *fields, const char *what)
{
	bool seen[ROW_MAX_COLS] = { false };
	const cJSON *f;
	struct buf b;
	size_t i;
	int col;

	if (!cJSON_IsArray(fields)) {
		char *msg;

		xasprintf(&msg, "%s: the answer has no fields list", what);
		return msg;
	}
	cJSON_ArrayForEach(f, fields) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(f, "id");

		if (cJSON_IsString(id) && (col = table_col(t, id->valuestring)) >= 0)
			seen[col] = true;
	}
	buf_init(&b);
	for (i = 0; i < t->ncols; i++)
		if (!seen[i])
			buf_printf(&b, "%s'%s'", b.len ? ", " : "", t->cols[i].header);
	if (b.len == 0) {
		buf_free(&b);
		return NULL;
	}
	{
		char *msg;

		xasprintf(&msg, "%s: the DataStore table lacks the column%s %s: the CRICOS layout changed upstream, "
		    "cricos-sync needs updating", what, strchr(b.data, ',') ? "s" : "", b.data);
		buf_free(&b);
		return msg;
	}
}

static void
page_done(struct http_request *req, const struct http_result *r, void *arg)
{
	struct page *p = arg;
	struct step *st = p->st;
	const struct table_def *t = &cricos_tables[p->t];
	cJSON *cs = step_cycle_state(st), *env = NULL, *env2 = NULL, *tstate;
	const cJSON *result;
	struct page_src src;
	char *msg = NULL, cp[64];
	size_t n = 0, n2 = 0;
	long long total, echoed_offset, next;
	int echoed_limit;
	bool fatal, estimated, done;

	if (r->cancelled) {
		step_fail(st, STEP_RETRY, "%s: cancelled", p->what);
		page_free(p);
		return;
	}
	if (r->error != NULL) {
		msg = ckan_failure(r, p->what, &fatal);
		step_fail(st, fatal ? STEP_FATAL : STEP_RETRY, "%s", msg);
		goto out;
	}
	src.fd = r->spool_fd;
	src.mem = r->body;
	src.memlen = r->body_len;

	/* Pass 1: the whole answer must be well-formed before a record is written. */
	if (ckan_page_scan(&src, NULL, NULL, &env, &n, &msg) == -1) {
		char *m2;

		xasprintf(&m2, "%s: %s", p->what, msg);
		step_fail(st, STEP_RETRY, "%s", m2);
		free(m2);
		goto out;
	}
	free(msg);
	msg = NULL;
	if ((msg = ckan_envelope_check(env, p->what, &result, &fatal)) != NULL) {
		step_fail(st, fatal ? STEP_FATAL : STEP_RETRY, "%s", msg);
		goto out;
	}
	if ((msg = check_fields(t, cJSON_GetObjectItemCaseSensitive(result, "fields"), p->what)) != NULL) {
		step_fail(st, STEP_FATAL, "%s", msg);
		goto out;
	}
	if ((total = ckan_count(result, "total", -1, CKAN_COUNT_MAX)) < 0) {
		step_fail(st, STEP_RETRY, "%s: the answer has no total (cannot page without it)", p->what);
		goto out;
	}
	estimated = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "total_was_estimated"));
	/* CKAN echoes the validated request; an offset it did not echo cannot be checked, one it did must match. */
	echoed_offset = ckan_count(result, "offset", p->offset, CKAN_COUNT_MAX);
	echoed_limit = (int)ckan_count(result, "limit", -1, INT_MAX);
	if (echoed_offset != p->offset) {
		step_fail(st, STEP_RETRY, "%s: CKAN answered offset %lld to a request for offset %lld", p->what,
		    echoed_offset, p->offset);
		goto out;
	}
	if (echoed_limit < 0 || (long long)n > echoed_limit) {
		step_fail(st, STEP_RETRY, "%s: %zu records under limit %d: not a datastore_search page", p->what, n,
		    echoed_limit);
		goto out;
	}
	tstate = json_obj(json_obj(cs, "tables"), t->name);
	if (echoed_limit > 0 && echoed_limit < p->limit) {
		log_notice("%s: CKAN clamped the page size to %d records (asked %d); paging by %d", t->phase,
		    echoed_limit, p->limit, echoed_limit);
		json_set_num(tstate, "limit", echoed_limit);
	}
	if (echoed_limit == 0) {
		step_fail(st, STEP_FATAL, "%s: CKAN applied limit 0: no records can be read", p->what);
		goto out;
	}

	/* The table changed under us (a new upload mid-sync): read it again from the start. */
	if (p->offset > 0 && !estimated && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(tstate, "total")) &&
	    (long long)json_num(tstate, "total", 0) != total) {
		struct db *db;
		sqlite3_stmt *q;
		char *cause = NULL;
		int restarts = (int)json_num(tstate, "restarts", 0) + 1;

		if (restarts > MAX_TABLE_RESTARTS) {
			step_fail(st, STEP_FATAL, "%s: the table keeps changing while it is read (total %lld, then %lld; "
			    "%d restarts): try again later", p->what, (long long)json_num(tstate, "total", 0), total,
			    restarts - 1);
			goto out;
		}
		log_warnx("%s: the table changed while it was read (total was %lld, now %lld): reading it again from "
		    "the start", t->phase, (long long)json_num(tstate, "total", 0), total);
		if ((db = step_db(st, &cause)) == NULL || (q = db_stmt(db, SQL_FORGET_SEEN[p->t], &cause)) == NULL) {
			step_fail(st, STEP_RETRY, "%s", cause);
			free(cause);
			goto out;
		}
		db_bind_text(q, 1, step_cycle_id(st));
		if (db_step_done(db, q, &cause) == -1) {
			step_fail(st, STEP_RETRY, "%s", cause);
			free(cause);
			goto out;
		}
		json_set_num(tstate, "restarts", restarts);
		json_set_num(tstate, "total", (double)total);
		step_detail_add(st, "table_restarts", 1);
		set_offset(st, 0);
		step_done(st, STEP_MORE);
		goto out;
	}
	/*
	 * A table that had rows and now reads as empty is far more likely a DataStore table being reloaded than a
	 * register without courses: never let it soft-delete everything.
	 */
	if (p->offset == 0 && total == 0) {
		struct db *db;
		sqlite3_stmt *q;
		char *cause = NULL;
		long long had = 0;

		if ((db = step_db(st, &cause)) == NULL || (q = db_stmt(db, SQL_CURRENT_ROWS[p->t], &cause)) == NULL) {
			step_fail(st, STEP_RETRY, "%s", cause);
			free(cause);
			goto out;
		}
		if (sqlite3_step(q) == SQLITE_ROW)
			had = sqlite3_column_int64(q, 0);
		sqlite3_reset(q);
		if (had > 0) {
			step_fail(st, STEP_RETRY, "%s: CKAN reports the table empty (total 0) but %lld rows are current: not "
			    "removing them all; the DataStore table may be reloading", p->what, had);
			goto out;
		}
	}
	if (n == 0 && p->offset < total && !estimated) {
		step_fail(st, STEP_RETRY, "%s: an empty page at offset %lld of %lld records", p->what, p->offset, total);
		goto out;
	}

	/* Pass 2: write the records, in the step's transaction. */
	if ((p->db = step_db(st, &p->cause)) == NULL) {
		step_fail(st, STEP_RETRY, "%s", p->cause);
		goto out;
	}
	iso8601_now(p->now);
	p->unparseable = json_obj(cs, "unparseable");
	p->rows = json_obj(json_obj(cs, "rows"), t->name);
	row_init(&p->row);
	if (ckan_page_scan(&src, write_record, p, &env2, &n2, &msg) == -1 || n2 != n) {
		step_fail(st, STEP_RETRY, "%s", p->cause ? p->cause : msg ? msg :
		    "the spooled answer changed between two reads");
		goto out;
	}
	snprintf(cp, sizeof cp, "cricos_page_%s", t->name);
	crashpoint(cp);

	json_add_num(p->rows, "records", (double)n);
	json_add_num(p->rows, "new", (double)p->n_new);
	json_add_num(p->rows, "changed", (double)p->n_changed);
	json_add_num(p->rows, "blank", (double)p->n_blank);
	json_add_num(p->rows, "duplicates", (double)p->n_dup);
	json_add_num(p->rows, "rejected", (double)(p->n_reject + p->n_conflict));
	if (p->n_blank > 0)
		step_detail_add(st, "blank_rows", p->n_blank);
	if (p->n_dup > 0)
		step_detail_add(st, "duplicate_rows", p->n_dup);
	if (p->n_new > 0)
		step_detail_add(st, "new", p->n_new);
	if (p->n_changed > 0)
		step_detail_add(st, "changed", p->n_changed);
	step_count(st, (int64_t)n, p->n_new + p->n_changed);

	next = p->offset + (long long)n;
	json_set_num(tstate, "total", (double)total);
	json_set_num(tstate, "estimated", estimated);
	/* An estimated total cannot end the table: only an empty page can. */
	done = estimated ? n == 0 : next >= total;
	if (!done)
		set_offset(st, next);
	log_debug("%s: offset %lld: %zu records (%lld new, %lld changed), total %lld", t->phase, p->offset, n,
	    p->n_new, p->n_changed, total);
	step_done(st, done ? STEP_PHASE_DONE : STEP_MORE);
out:
	free(msg);
	cJSON_Delete(env);
	cJSON_Delete(env2);
	if (r->spool_fd != -1)
		close(r->spool_fd);
	page_free(p);
}

static void
sync_table(struct step *st, enum cricos_table t)
{
	struct cricos *c = step_job(st);
	const struct table_def *td = &cricos_tables[t];
	cJSON *cs = step_cycle_state(st), *ed, *tstate;
	struct http_req_opts o;
	struct page *p;
	char *q, *rid, *sort = NULL, *url;
	long long offset = cursor_offset(step_cursor(st)), total;

	ed = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cs, "edition"), td->name);
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cs, "new_edition"))) {
		step_set_status(st, "complete", "skipped: no new edition");
		step_done(st, STEP_PHASE_DONE);
		return;
	}
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ed, "sync"))) {
		char *note;

		xasprintf(&note, "skipped: %s unchanged since %s", json_str(ed, "name"), json_str(ed, "last_modified"));
		step_set_status(st, "complete", note);
		free(note);
		step_done(st, STEP_PHASE_DONE);
		return;
	}
	tstate = json_obj(json_obj(cs, "tables"), td->name);
	total = (long long)json_num(tstate, "total", -1);
	if (total >= 0 && offset >= total && json_num(tstate, "estimated", 0) == 0) {
		step_done(st, STEP_PHASE_DONE);
		return;
	}

	p = xcalloc(1, sizeof *p);
	p->st = st;
	p->t = t;
	p->offset = offset;
	p->limit = (int)json_num(tstate, "limit", c->page_size);
	if (p->limit > c->page_size)
		p->limit = c->page_size;
	snprintf(p->what, sizeof p->what, "datastore_search %s offset %lld", json_str(ed, "name"), offset);

	rid = http_urlencode(json_str(ed, "id"));
	if (c->page_sort[0] != '\0') {
		char *enc = http_urlencode(c->page_sort);

		xasprintf(&sort, "&sort=%s", enc);
		free(enc);
	}
	xasprintf(&q, "resource_id=%s&limit=%d&offset=%lld%s", rid, p->limit, offset, sort ? sort : "");
	url = ckan_url(c->base, "datastore_search", q);
	memset(&o, 0, sizeof o);
	o.url = url;
	o.accept_types = "application/json";
	o.spool = true;
	o.max_body = (size_t)c->max_page_bytes;
	o.on_done = page_done;
	o.arg = p;
	o.what = p->what;
	o.group = step_http(st);
	http_request(c->http, &o);
	free(url);
	free(q);
	free(rid);
	free(sort);
}
