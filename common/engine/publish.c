/*
 * The publish phase: a daemon's corpus tables into D1's corpus database (publish.h has the stages and the cursor;
 * docs/d1-design.md the reasons).
 *
 * Reads go to the daemon's connection outside any transaction (a step must not hold one across the network: the
 * engine rolls back one that does); the step's transaction is opened only when D1 has answered, for the cursor, the
 * state and the counters, which step_done commits together.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "cursorkv.h"
#include "cycle.h"
#include "d1-sql.h"
#include "d1.h"
#include "db.h"
#include "log.h"
#include "publish.h"
#include "timeutil.h"
#include "xmalloc.h"

#define PUB_BYTES_SOFT (D1_REQUEST_BUDGET - 64 * 1024)	/* stop adding rows past this: the request stays < 1 MB */
#define PUB_PARENTS PUB_ROWS_MAX	/* parents read at a time for a delta through parents (then the rows decide) */
#define PUB_FAST_MS 5000.0	/* a request faster than this inside D1: double the rows */
#define PUB_SLOW_MS 15000.0	/* slower: halve them */
#define PUB_VERIFY_RANGE 500000	/* rows per verification SELECT at most: a larger table is checked in key ranges */
#define PUB_VERIFY_RANGES_PER_REQUEST 4

enum stage { S_PREP, S_SCHEMA, S_DATA, S_VERIFY, S_END };
static const char *const stage_names[] = { "prep", "schema", "data", "verify", "end" };

struct tinfo {
	size_t ncols, npk;
	char **cols;		/* the primary key's columns first, in key order, then the others */
	char **types;
	bool *notnull;
};

/* What one statement of the request in flight is, to read its meta.changes back. */
struct stmt_kind {
	int table;
	bool del;
};

struct tcount {
	int64_t upserted, deleted;
};

struct publisher {
	struct ev_loop *loop;
	struct db *db;
	const struct pub_def *def;
	bool enabled;
	struct d1 *d1;
	struct d1_db *corpus;
	struct tinfo *ti;	/* per table, read once (a reload makes a new publisher) */
	int verify_range;	/* PUB_VERIFY_RANGE; tests make it small (RTOPACKS_TEST_VERIFY_RANGE) */
	int rows_max;		/* PUB_ROWS_MAX; tests make it small (RTOPACKS_TEST_PUBLISH_ROWS) */
	bool ti_loaded;

	/* The step in flight. */
	struct step *st;
	enum stage stage;
	struct stmt_kind *kinds;
	size_t nkinds;
	struct tcount *counts;	/* per table, this request */
	cJSON *next_key;	/* data: the key to resume after, if this request commits */
	int next_table;
	int64_t rows;		/* data: rows in this request */
	size_t bytes;
	double *local;		/* verify: n, lengths, numbers per check of the request (kinds[i].table) */
};

/* --- small helpers ------------------------------------------------------------------------------------------- */

static cJSON *
obj(cJSON *parent, const char *key)
{
	cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, key);

	if (cJSON_IsObject(o))
		return o;
	cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
	return cJSON_AddObjectToObject(parent, key);
}

static const char *
str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double
num(const cJSON *o, const char *key, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static void
set_str(cJSON *o, const char *key, const char *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	if (v != NULL)
		cJSON_AddStringToObject(o, key, v);
}

static void
set_num(cJSON *o, const char *key, double v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	cJSON_AddNumberToObject(o, key, v);
}

static void
set_item(cJSON *o, const char *key, cJSON *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	if (v != NULL)
		cJSON_AddItemToObject(o, key, v);
}

/* A literal of a text from the program or a local row (no NUL: sqlite3_column_text stops at one anyway). */
static void
lit_text(struct buf *b, const char *s)
{
	struct d1_value v = D1_TEXT(s);
	char why[128];

	if (d1_sql_literal(b, &v, why, sizeof why) == -1)
		buf_adds(b, "NULL");
}

static void
free_tinfo(struct publisher *p)
{
	size_t t, i;

	if (p->ti == NULL)
		return;
	for (t = 0; t < p->def->ntables; t++) {
		for (i = 0; i < p->ti[t].ncols; i++) {
			free(p->ti[t].cols[i]);
			free(p->ti[t].types[i]);
		}
		free(p->ti[t].cols);
		free(p->ti[t].types);
		free(p->ti[t].notnull);
	}
	free(p->ti);
	p->ti = NULL;
	p->ti_loaded = false;
}

static const char SQL_TABLE_INFO[] =
    "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1, 'corpus') ORDER BY pk = 0, pk, cid";

/* The published tables' columns and keys, as the local schema has them now. */
static int
load_tinfo(struct publisher *p, char **cause)
{
	sqlite3_stmt *q;
	size_t t;
	int rc;

	if (p->ti_loaded)
		return 0;
	free_tinfo(p);
	p->ti = xcalloc(p->def->ntables, sizeof *p->ti);
	for (t = 0; t < p->def->ntables; t++) {
		struct tinfo *ti = &p->ti[t];

		if ((q = db_stmt(p->db, SQL_TABLE_INFO, cause)) == NULL)
			goto fail;
		db_bind_text(q, 1, p->def->tables[t].name);
		while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
			ti->cols = xreallocarray(ti->cols, ti->ncols + 1, sizeof *ti->cols);
			ti->types = xreallocarray(ti->types, ti->ncols + 1, sizeof *ti->types);
			ti->notnull = xreallocarray(ti->notnull, ti->ncols + 1, sizeof *ti->notnull);
			ti->cols[ti->ncols] = xstrdup(db_col_text(q, 0));
			ti->types[ti->ncols] = xstrdup(db_col_text(q, 1));
			ti->notnull[ti->ncols] = sqlite3_column_int(q, 2) != 0;
			if (sqlite3_column_int(q, 3) > 0)
				ti->npk++;
			ti->ncols++;
		}
		sqlite3_reset(q);
		if (rc != SQLITE_DONE) {
			db_error(p->db, cause, "read the published tables' columns");
			goto fail;
		}
		if (ti->ncols == 0 || ti->npk == 0) {
			xasprintf(cause, "publish: the local table %s %s", p->def->tables[t].name,
			    ti->ncols == 0 ? "does not exist" : "has no primary key");
			goto fail;
		}
	}
	p->ti_loaded = true;
	return 0;
fail:
	free_tinfo(p);
	return -1;
}

static void
list_cols(struct buf *b, const struct tinfo *ti, size_t from, size_t to)
{
	size_t i;

	for (i = from; i < to; i++)
		buf_printf(b, "%s\"%s\"", i > from ? ", " : "", ti->cols[i]);
}

/* D1's copy of a table: the local columns, types, NOT NULL and primary key (no comments, no CHECKs). */
static void
add_create(struct buf *b, const char *name, const struct tinfo *ti)
{
	size_t i;

	buf_printf(b, "CREATE TABLE IF NOT EXISTS \"%s\" (", name);
	for (i = 0; i < ti->ncols; i++)
		buf_printf(b, "%s\"%s\" %s%s", i > 0 ? ", " : "", ti->cols[i], ti->types[i],
		    ti->notnull[i] ? " NOT NULL" : "");
	buf_adds(b, ", PRIMARY KEY (");
	list_cols(b, ti, 0, ti->npk);
	buf_adds(b, "));\n");
}

/* "(a, b)" = (literals of key): a key range's bound, the same text on both sides. */
static void
add_bound(struct buf *b, const struct tinfo *ti, const cJSON *key, const char *op)
{
	struct d1_value v;
	const cJSON *e;
	char why[128];
	size_t i;

	buf_adds(b, "(");
	list_cols(b, ti, 0, ti->npk);
	buf_printf(b, ") %s (", op);
	for (i = 0; i < ti->npk; i++) {
		e = cJSON_GetArrayItem(key, (int)i);
		memset(&v, 0, sizeof v);
		if (cJSON_IsString(e))
			v = D1_TEXT(e->valuestring);
		else if (cJSON_IsNumber(e) && e->valuedouble == floor(e->valuedouble))
			v = D1_INT((int64_t)e->valuedouble);
		else if (cJSON_IsNumber(e))
			v = D1_REAL(e->valuedouble);
		else
			v = D1_NULL;
		if (i > 0)
			buf_adds(b, ", ");
		if (d1_sql_literal(b, &v, why, sizeof why) == -1)
			buf_adds(b, "NULL");
	}
	buf_adds(b, ")");
}

/*
 * The verification SELECT, the same text on both sides: over the whole table, or the key range (lo, hi] (a NULL
 * bound is open), so that no single D1 statement reads millions of rows.
 */
static void
add_verify(struct buf *b, const char *name, const struct tinfo *ti, const cJSON *lo, const cJSON *hi)
{
	size_t i;

	buf_adds(b, "SELECT count(*) AS n, ");
	for (i = 0; i < ti->ncols; i++)
		buf_printf(b, "%stotal(length(\"%s\"))", i > 0 ? " + " : "", ti->cols[i]);
	buf_adds(b, " AS l, ");
	for (i = 0; i < ti->ncols; i++)
		buf_printf(b, "%stotal(CASE WHEN typeof(\"%s\") IN ('integer', 'real') THEN \"%s\" END)", i > 0 ? " + " : "",
		    ti->cols[i], ti->cols[i]);
	buf_printf(b, " AS s FROM \"%s\"", name);
	if (cJSON_IsArray(lo)) {
		buf_adds(b, " WHERE ");
		add_bound(b, ti, lo, ">");
	}
	if (cJSON_IsArray(hi)) {
		buf_adds(b, cJSON_IsArray(lo) ? " AND " : " WHERE ");
		add_bound(b, ti, hi, "<=");
	}
}

static void
row_values(sqlite3_stmt *st, struct d1_value *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		memset(&v[i], 0, sizeof v[i]);
		switch (sqlite3_column_type(st, (int)i)) {
		case SQLITE_INTEGER:
			v[i] = D1_INT(sqlite3_column_int64(st, (int)i));
			break;
		case SQLITE_FLOAT:
			v[i] = D1_REAL(sqlite3_column_double(st, (int)i));
			break;
		case SQLITE_TEXT:
			v[i].type = D1V_TEXT;
			v[i].p = sqlite3_column_text(st, (int)i);
			v[i].len = (size_t)sqlite3_column_bytes(st, (int)i);
			break;
		case SQLITE_BLOB:
			v[i].type = D1V_BLOB;
			v[i].p = sqlite3_column_blob(st, (int)i);
			v[i].len = (size_t)sqlite3_column_bytes(st, (int)i);
			break;
		default:
			v[i] = D1_NULL;
			break;
		}
	}
}

/* The first n columns of the current row as a JSON array (a key for the cursor). */
static cJSON *
row_key(sqlite3_stmt *st, size_t n)
{
	cJSON *k = cJSON_CreateArray();
	size_t i;

	for (i = 0; i < n; i++) {
		switch (sqlite3_column_type(st, (int)i)) {
		case SQLITE_INTEGER:
		case SQLITE_FLOAT:
			cJSON_AddItemToArray(k, cJSON_CreateNumber(sqlite3_column_double(st, (int)i)));
			break;
		case SQLITE_NULL:
			cJSON_AddItemToArray(k, cJSON_CreateNull());
			break;
		default:
			cJSON_AddItemToArray(k, cJSON_CreateString(db_col_text(st, (int)i)));
			break;
		}
	}
	return k;
}

static void
bind_json(sqlite3_stmt *q, int idx, const cJSON *v)
{
	if (cJSON_IsString(v))
		db_bind_text(q, idx, v->valuestring);
	else if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9.0e15)
		sqlite3_bind_int64(q, idx, (sqlite3_int64)v->valuedouble);
	else if (cJSON_IsNumber(v))
		sqlite3_bind_double(q, idx, v->valuedouble);
	else
		sqlite3_bind_null(q, idx);
}

static void
bind_mark(const struct publisher *p, sqlite3_stmt *q, int idx, const char *since)
{
	if (p->def->mark_int)
		sqlite3_bind_int64(q, idx, strtoll(since, NULL, 10));
	else
		db_bind_text(q, idx, since);
}

/* --- lifetime -------------------------------------------------------------------------------------------------- */

struct publisher *
publish_new(struct ev_loop *loop, struct d1 *d1, struct db *db, const struct pub_def *def)
{
	struct publisher *p;
	const char *env;

	p = xcalloc(1, sizeof *p);
	p->loop = loop;
	p->db = db;
	p->def = def;
	p->enabled = d1 != NULL && d1_corpus(d1) != NULL;
	p->verify_range = PUB_VERIFY_RANGE;
	if ((env = getenv("RTOPACKS_TEST_VERIFY_RANGE")) != NULL && atoi(env) > 0)
		p->verify_range = atoi(env);	/* tests: key ranges at the small scale */
	p->rows_max = PUB_ROWS_MAX;
	if ((env = getenv("RTOPACKS_TEST_PUBLISH_ROWS")) != NULL && atoi(env) > 0)
		p->rows_max = atoi(env);	/* tests: many small requests at the small scale */
	if (p->enabled) {
		p->d1 = d1;
		p->corpus = d1_corpus(p->d1);
	} else if (d1 != NULL)
		log_info("[d1] has no corpus_database_id: the publish phase is skipped");
	return p;
}

static void
clear_request(struct publisher *p)
{
	free(p->kinds);
	p->kinds = NULL;
	p->nkinds = 0;
	free(p->counts);
	p->counts = NULL;
	cJSON_Delete(p->next_key);
	p->next_key = NULL;
	free(p->local);
	p->local = NULL;
	p->rows = 0;
	p->bytes = 0;
}

void
publish_free(struct publisher *p)
{
	if (p == NULL)
		return;
	if (p->d1 != NULL)
		d1_cancel_for(p->d1, p);	/* a request in flight ends cancelled */
	clear_request(p);
	free_tinfo(p);
	free(p);
}

bool
publish_enabled(const struct publisher *p)
{
	return p != NULL && p->enabled;
}

void
publish_status(const struct publisher *p, cJSON *out)
{
	struct d1_stats ds;
	cJSON *o, *notes;
	char when[ISO8601_LEN], line[256];
	double blocked;

	if (p == NULL)
		return;
	o = cJSON_AddObjectToObject(out, "publish");
	cJSON_AddBoolToObject(o, "enabled", p->enabled);
	if (!p->enabled)
		return;
	d1_get_stats(p->d1, &ds);
	cJSON_AddNumberToObject(o, "requests", (double)ds.requests);
	cJSON_AddNumberToObject(o, "retries", (double)ds.retries);
	cJSON_AddNumberToObject(o, "rate_blocks", (double)ds.blocks);
	if ((blocked = d1_blocked_until(p->d1)) > 0) {
		iso8601_fmt((time_t)ceil(blocked), when);
		cJSON_AddStringToObject(o, "blocked_until", when);
		snprintf(line, sizeof line, "publish: waiting for D1's rate limit until %s", when);
		if (!cJSON_IsArray(notes = cJSON_GetObjectItem(out, "notes"))) {
			cJSON_DeleteItemFromObject(out, "notes");
			notes = cJSON_AddArrayToObject(out, "notes");
		}
		cJSON_AddItemToArray(notes, cJSON_CreateString(line));
	}
}

/* --- the step's end -------------------------------------------------------------------------------------------- */

static void
set_cursor(struct step *st, enum stage s, const cJSON *ps)
{
	struct ckv_builder b;

	ckv_init(&b);
	ckv_put(&b, "s", stage_names[s]);
	ckv_put(&b, "m", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ps, "full")) ? "full" : "delta");
	if (s == S_DATA) {
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(ps, "k");
		char *key = cJSON_IsArray(k) ? cJSON_PrintUnformatted(k) : NULL;

		ckv_put_i64(&b, "t", (int64_t)num(ps, "t", 0));
		ckv_put_i64(&b, "n", (int64_t)num(ps, "sent", 0));
		/* The last key sent, for `syncctl cursor` (the cycle state's copy is the one resumed from). */
		if (key != NULL && strlen(key) < CKV_VAL_MAX / 2)
			ckv_put(&b, "k", key);
		free(key);
	}
	step_set_cursor(st, "%s", ckv_str(&b));
}

static void
fail_d1(struct publisher *p, struct step *st, const struct d1_result *r)
{
	enum step_error kind;

	switch (r->status) {
	case D1_ERR_AUTH:
	case D1_ERR_SQL:
	case D1_ERR_REQUEST:
		kind = STEP_FATAL;	/* a configuration or a statement D1 refuses: retrying cannot help */
		break;
	default:
		kind = STEP_RETRY;	/* transient, the rate limit met three times, cancelled: resumes here */
		break;
	}
	step_fail(st, kind, "publish (%s): %s", stage_names[p->stage], r->error ? r->error : "D1 request failed");
}

/* Every D1 answer starts here: the publisher is free for its next request; false (and the step failed as the
 * answer's status says) unless D1 said OK. */
static bool
answered(struct publisher *p, struct step *st, const struct d1_result *r)
{
	p->st = NULL;
	if (r->status == D1_OK)
		return true;
	fail_d1(p, st, r);
	return false;
}

/* The step's transaction on the local database (step_db); false, and the step to be retried, when it cannot be
 * opened. */
static bool
step_open(struct step *st)
{
	char *cause = NULL;

	if (step_db(st, &cause) != NULL)
		return true;
	step_fail(st, STEP_RETRY, "%s", cause);
	free(cause);
	return false;
}

/* Counters of a request that committed, into the step row's detail. */
static void
add_counters(struct step *st, const struct d1_result *r)
{
	step_detail_add(st, "d1_requests", r->attempts);
	step_detail_add(st, "d1_rows_written", (int64_t)r->rows_written);
	step_detail_add(st, "d1_ms", (int64_t)r->duration_ms);
	step_detail_add(st, "d1_wall_ms", (int64_t)(r->elapsed * 1000.0));
	if (r->blocks > 0)
		step_detail_add(st, "d1_rate_blocks", r->blocks);
	if (r->timeouts > 0)
		step_detail_add(st, "d1_timeouts_replayed", r->timeouts);
}

static void send_sql(struct publisher *, struct step *, struct buf *, const char *what, d1_done_fn);
static void run_stage(struct publisher *, struct step *, cJSON *ps);

/* --- prep: the bookkeeping tables, D1's schema version and state ----------------------------------------------- */

static const char SQL_BOOKKEEPING[] =
    "CREATE TABLE IF NOT EXISTS d1_schema_migrations (scope TEXT NOT NULL, version INTEGER NOT NULL, name TEXT,"
    " applied_at TEXT NOT NULL, PRIMARY KEY (scope, version));\n"
    "CREATE TABLE IF NOT EXISTS d1_publish_state (scope TEXT PRIMARY KEY, published_through TEXT, published_at TEXT,"
    " run_id TEXT, schema_version INTEGER);\n";
#define PREP_FIXED 2	/* the statements above */

static void
prep_done(const struct d1_result *r, void *arg)
{
	struct publisher *p = arg;
	struct step *st = p->st;
	cJSON *ps = obj(step_cycle_state(st), "publish"), *js = step_job_state(st);
	const cJSON *res, *row, *info;
	struct buf alter;
	const char *d1_through = NULL, *local_through;
	char now[ISO8601_LEN];
	int version = 0, missing = 0;
	size_t t, i;
	bool full;

	if (!answered(p, st, r))
		return;
	res = r->result;
	row = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(res, PREP_FIXED +
	    (int)p->def->ntables), "results"), 0);
	version = (int)num(row, "v", 0);
	row = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(res, PREP_FIXED +
	    (int)p->def->ntables + 1), "results"), 0);
	d1_through = str(row, "p");
	local_through = str(js, "d1_published_through");

	buf_init(&alter);
	for (t = 0; t < p->def->ntables; t++) {
		info = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(res, PREP_FIXED + (int)p->def->ntables + 2 +
		    (int)t), "results");
		for (i = 0; i < p->ti[t].ncols; i++) {
			const cJSON *c;
			bool found = false;

			cJSON_ArrayForEach(c, info) {
				const char *name = str(c, "name");

				if (name != NULL && strcmp(name, p->ti[t].cols[i]) == 0) {
					found = true;
					break;
				}
			}
			if (!found) {
				/* No NOT NULL: the rows D1 has get NULL until the republish that follows. */
				buf_printf(&alter, "ALTER TABLE \"%s\" ADD COLUMN \"%s\" %s;\n", p->def->tables[t].name,
				    p->ti[t].cols[i], p->ti[t].types[i]);
				missing++;
			}
		}
	}
	full = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ps, "full"));
	if (!full && (d1_through == NULL || local_through == NULL || strcmp(d1_through, local_through) != 0 ||
	    version < p->def->schema_version || missing > 0)) {
		log_info("publish: a full republish (%s)", d1_through == NULL ? "D1 has no published_through" :
		    local_through == NULL ? "nothing published from here yet" : version < p->def->schema_version ?
		    "D1's schema is older" : missing > 0 ? "D1's tables lack columns" :
		    "D1 and the local state disagree on what is published");
		full = true;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(ps, "full");
	cJSON_AddBoolToObject(ps, "full", full);
	set_str(ps, "since", full ? NULL : local_through);
	if (version < p->def->schema_version || missing > 0) {
		iso8601_now(now);
		buf_printf(&alter, "INSERT INTO d1_schema_migrations (scope, version, name, applied_at) VALUES (");
		lit_text(&alter, p->def->scope);
		buf_printf(&alter, ", %d, ", p->def->schema_version);
		lit_text(&alter, p->def->schema_name);
		buf_adds(&alter, ", ");
		lit_text(&alter, now);
		buf_adds(&alter, ") ON CONFLICT (scope, version) DO NOTHING");
		set_str(ps, "alter", alter.data);
		set_str(ps, "stage", "schema");
	} else
		set_str(ps, "stage", "data");
	buf_free(&alter);
	step_detail_add(st, "full", full ? 1 : 0);
	if (!step_open(st))
		return;
	add_counters(st, r);
	set_cursor(st, strcmp(str(ps, "stage"), "schema") == 0 ? S_SCHEMA : S_DATA, ps);
	step_done(st, STEP_MORE);
}

static void
run_prep(struct publisher *p, struct step *st, cJSON *ps)
{
	struct buf sql;
	size_t t;

	buf_init(&sql);
	buf_adds(&sql, SQL_BOOKKEEPING);
	for (t = 0; t < p->def->ntables; t++)
		add_create(&sql, p->def->tables[t].name, &p->ti[t]);
	buf_adds(&sql, "SELECT coalesce(max(version), 0) AS v FROM d1_schema_migrations WHERE scope = ");
	lit_text(&sql, p->def->scope);
	buf_adds(&sql, ";\nSELECT published_through AS p FROM d1_publish_state WHERE scope = ");
	lit_text(&sql, p->def->scope);
	buf_adds(&sql, ";\n");
	for (t = 0; t < p->def->ntables; t++)
		buf_printf(&sql, "PRAGMA table_info(\"%s\");\n", p->def->tables[t].name);
	send_sql(p, st, &sql, "publish: prepare", prep_done);
	buf_free(&sql);
}

/* --- schema: the columns D1 lacks, and the version row --------------------------------------------------------- */

static void
schema_done(const struct d1_result *r, void *arg)
{
	struct publisher *p = arg;
	struct step *st = p->st;
	cJSON *ps = obj(step_cycle_state(st), "publish");

	if (!answered(p, st, r))
		return;
	if (!step_open(st))
		return;
	log_info("publish: D1's corpus schema is at version %d for %s", p->def->schema_version, p->def->scope);
	set_str(ps, "alter", NULL);
	set_str(ps, "stage", "data");
	add_counters(st, r);
	step_detail_add(st, "schema_migrated", 1);
	set_cursor(st, S_DATA, ps);
	step_done(st, STEP_MORE);
}

static void
run_schema(struct publisher *p, struct step *st, cJSON *ps)
{
	struct buf sql;
	const char *alter = str(ps, "alter");

	buf_init(&sql);
	buf_adds(&sql, alter != NULL ? alter : "SELECT 1");
	send_sql(p, st, &sql, "publish: migrate D1's schema", schema_done);
	buf_free(&sql);
}

/* --- data: the change set -------------------------------------------------------------------------------------- */

static bool
table_wanted(const cJSON *ps, size_t t)
{
	const cJSON *only = cJSON_GetObjectItemCaseSensitive(ps, "only"), *e;

	if (!cJSON_IsArray(only))
		return true;
	cJSON_ArrayForEach(e, only)
		if (cJSON_IsNumber(e) && (size_t)e->valueint == t)
			return true;
	return false;
}

static void
push_kind(struct publisher *p, int table, bool del)
{
	p->kinds = xreallocarray(p->kinds, p->nkinds + 1, sizeof *p->kinds);
	p->kinds[p->nkinds].table = table;
	p->kinds[p->nkinds].del = del;
	p->nkinds++;
}

/*
 * Rows of table t into seg (upserts) after key (NULL: from the start), at most max: the change set (since != NULL)
 * or every row.  *exhausted when the table has no more.  Returns the rows added, or -1 with *cause.
 */
static int64_t
add_rows(struct publisher *p, struct step *st, size_t t, const char *since, const cJSON *key, int64_t max,
    struct d1_upsert *u, struct buf *seg, size_t total_len, bool *exhausted, char **cause)
{
	const struct pub_table *tb = &p->def->tables[t];
	const struct tinfo *ti = &p->ti[t];
	struct d1_value *v = xcalloc(ti->ncols, sizeof *v);
	struct buf q;
	sqlite3_stmt *s = NULL;
	int64_t n = 0;
	char why[256];
	int rc, idx = 1;
	size_t i;
	const char *conj = " WHERE ";

	buf_init(&q);
	buf_adds(&q, "SELECT ");
	list_cols(&q, ti, 0, ti->ncols);
	buf_printf(&q, " FROM \"%s\"", tb->name);
	if (since != NULL && tb->changed != NULL) {
		buf_printf(&q, " WHERE (%s)", tb->changed);
		conj = " AND ";
		idx = 2;
	}
	if (key != NULL) {
		buf_printf(&q, "%s(", conj);
		list_cols(&q, ti, 0, ti->npk);
		buf_adds(&q, ") > (");
		for (i = 0; i < ti->npk; i++)
			buf_printf(&q, "%s?%d", i > 0 ? ", " : "", idx + (int)i);
		buf_adds(&q, ")");
	}
	buf_adds(&q, " ORDER BY ");
	list_cols(&q, ti, 0, ti->npk);
	buf_printf(&q, " LIMIT %" PRId64, max);
	if (sqlite3_prepare_v2(db_handle(p->db), q.data, -1, &s, NULL) != SQLITE_OK) {
		db_error(p->db, cause, tb->name);
		n = -1;
		goto done;
	}
	if (since != NULL && tb->changed != NULL)
		bind_mark(p, s, 1, since);
	if (key != NULL)
		for (i = 0; i < ti->npk; i++)
			bind_json(s, idx + (int)i, cJSON_GetArrayItem(key, (int)i));
	*exhausted = true;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row_values(s, v, ti->ncols);
		if (d1_upsert_row(u, seg, v, why, sizeof why) == -1)
			step_reject(st, 1, "%s: a row not published: %s", tb->name, why);
		else {
			n++;
			if (tb->deleted_col != NULL)
				for (i = 0; i < ti->ncols; i++)
					if (strcmp(ti->cols[i], tb->deleted_col) == 0 && v[i].type != D1V_NULL)
						p->counts[t].deleted++;
		}
		cJSON_Delete(p->next_key);
		p->next_key = row_key(s, ti->npk);
		if (n >= max || total_len + seg->len >= PUB_BYTES_SOFT) {
			*exhausted = n < max && sqlite3_step(s) != SQLITE_ROW;
			break;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		db_error(p->db, cause, tb->name);
		n = -1;
	} else if (n >= max)
		*exhausted = false;
done:
	sqlite3_finalize(s);
	buf_free(&q);
	free(v);
	return n;
}

/*
 * Rows reached through their parents in a delta (publish.h, struct pub_table): the parents changed since `since`,
 * in key order, then each one's rows; a child list's followed by a DELETE of what lies past its end (into dels).
 * The key to resume after is [parent] when that parent's rows all went, or the last child row's primary key when a
 * parent's rows did not fit in one request (an RTO with 30,000 scope rows): the next request goes on inside that
 * parent, and a list's DELETE goes with its last part.  Returns rows added or -1.
 */
static int64_t
add_children(struct publisher *p, struct step *st, size_t t, const char *since, const cJSON *key, int64_t max,
    struct d1_upsert *u, struct buf *seg, struct buf *dels, int *ndels, size_t total_len, bool *exhausted,
    char **cause)
{
	const struct pub_table *tb = &p->def->tables[t], *pt = &p->def->tables[tb->parent];
	const struct tinfo *ti = &p->ti[t], *pi = &p->ti[tb->parent];
	struct d1_value *v = xcalloc(ti->ncols, sizeof *v);
	struct buf q, cq, cq2;
	sqlite3_stmt *s = NULL, *c = NULL, *c2 = NULL, *cs;
	int64_t n = 0, parents = 0;
	char why[256];
	int rc, crc = SQLITE_DONE, seq_idx = -1;
	size_t i;
	/* Inside a parent: the key is a child row's (more columns than the parent's one). */
	bool inside = key != NULL && (size_t)cJSON_GetArraySize(key) == ti->npk && ti->npk > 1;

	buf_init(&q);
	buf_init(&cq);
	buf_init(&cq2);
	buf_printf(&q, "SELECT \"%s\" FROM \"%s\" WHERE (%s)", pi->cols[0], pt->name,
	    tb->parent_changed != NULL ? tb->parent_changed : pt->changed);
	if (key != NULL)
		buf_printf(&q, " AND \"%s\" %s ?2", pi->cols[0], inside ? ">=" : ">");
	buf_printf(&q, " ORDER BY \"%s\" LIMIT %d", pi->cols[0], PUB_PARENTS);
	buf_adds(&cq, "SELECT ");
	list_cols(&cq, ti, 0, ti->ncols);
	buf_printf(&cq, " FROM \"%s\" WHERE \"%s\" = ?2", tb->name, tb->parent_col);
	if (tb->seq_col == NULL && tb->changed != NULL)
		buf_printf(&cq, " AND (%s)", tb->changed);
	/* The same, after a child key (?3, ?4, …): the rest of a parent begun in an earlier request. */
	buf_add(&cq2, cq.data, cq.len);
	buf_adds(&cq2, " AND (");
	list_cols(&cq2, ti, 0, ti->npk);
	buf_adds(&cq2, ") > (");
	for (i = 0; i < ti->npk; i++)
		buf_printf(&cq2, "%s?%d", i > 0 ? ", " : "", 3 + (int)i);
	buf_adds(&cq2, ")");
	buf_adds(&cq, " ORDER BY ");
	list_cols(&cq, ti, 0, ti->npk);
	buf_adds(&cq2, " ORDER BY ");
	list_cols(&cq2, ti, 0, ti->npk);
	if (sqlite3_prepare_v2(db_handle(p->db), q.data, -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db_handle(p->db), cq.data, -1, &c, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db_handle(p->db), cq2.data, -1, &c2, NULL) != SQLITE_OK) {
		db_error(p->db, cause, tb->name);
		n = -1;
		goto done;
	}
	for (i = 0; tb->seq_col != NULL && i < ti->ncols; i++)
		if (strcmp(ti->cols[i], tb->seq_col) == 0)
			seq_idx = (int)i;
	bind_mark(p, s, 1, since);
	if (key != NULL)
		bind_json(s, 2, cJSON_GetArrayItem(key, 0));
	*exhausted = true;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *parent = db_col_text(s, 0);
		int64_t last_seq = -1;
		bool any = false, cut = false;

		parents++;
		/* The parent the key is inside of: its rows after the key (a key of another parent: none here). */
		if (inside && parents == 1) {
			const cJSON *k0 = cJSON_GetArrayItem(key, 0);

			cs = c2;
			for (i = 0; i < ti->npk; i++)
				bind_json(c2, 3 + (int)i, cJSON_GetArrayItem(key, (int)i));
			if (!cJSON_IsString(k0) || strcmp(k0->valuestring, parent) != 0)
				cs = c;		/* that parent is no longer in the change set: from this one on */
			else if (seq_idx >= 0) {
				/* The list's DELETE needs its last seq: the part sent before ended at the key. */
				const cJSON *ks = cJSON_GetArrayItem(key, seq_idx);

				if (cJSON_IsNumber(ks)) {
					last_seq = (int64_t)ks->valuedouble;
					any = true;
				}
			}
		} else
			cs = c;
		bind_mark(p, cs, 1, since);
		sqlite3_bind_value(cs, 2, sqlite3_column_value(s, 0));
		while ((crc = sqlite3_step(cs)) == SQLITE_ROW) {
			row_values(cs, v, ti->ncols);
			if (d1_upsert_row(u, seg, v, why, sizeof why) == -1)
				step_reject(st, 1, "%s: a row not published: %s", tb->name, why);
			else {
				n++;
				if (tb->deleted_col != NULL)
					for (i = 0; i < ti->ncols; i++)
						if (strcmp(ti->cols[i], tb->deleted_col) == 0 && v[i].type != D1V_NULL)
							p->counts[t].deleted++;
			}
			if (seq_idx >= 0) {
				last_seq = sqlite3_column_int64(cs, seq_idx);
				any = true;
			}
			if (n >= max || total_len + seg->len + dels->len >= PUB_BYTES_SOFT) {
				/* The request is full: go on after this row next time, unless it was the parent's last. */
				cJSON_Delete(p->next_key);
				p->next_key = row_key(cs, ti->npk);
				if ((crc = sqlite3_step(cs)) == SQLITE_ROW)
					cut = true;
				break;
			}
		}
		sqlite3_reset(cs);
		if (crc != SQLITE_DONE && crc != SQLITE_ROW) {
			db_error(p->db, cause, tb->name);
			n = -1;
			goto done;
		}
		if (cut) {
			*exhausted = false;
			break;
		}
		if (tb->seq_col != NULL) {
			buf_printf(dels, "DELETE FROM \"%s\" WHERE \"%s\" = ", tb->name, tb->parent_col);
			lit_text(dels, parent);
			if (any)
				buf_printf(dels, " AND \"%s\" > %" PRId64, tb->seq_col, last_seq);
			buf_adds(dels, ";\n");
			(*ndels)++;
		}
		cJSON_Delete(p->next_key);
		p->next_key = cJSON_CreateArray();
		cJSON_AddItemToArray(p->next_key, cJSON_CreateString(parent));
		if (n >= max || total_len + seg->len + dels->len >= PUB_BYTES_SOFT) {
			*exhausted = false;
			break;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		db_error(p->db, cause, pt->name);
		n = -1;
	} else if (rc == SQLITE_DONE && parents >= PUB_PARENTS)
		*exhausted = false;
done:
	sqlite3_finalize(s);
	sqlite3_finalize(c);
	sqlite3_finalize(c2);
	buf_free(&q);
	buf_free(&cq);
	buf_free(&cq2);
	free(v);
	return n;
}

static void
data_done(const struct d1_result *r, void *arg)
{
	struct publisher *p = arg;
	struct step *st = p->st;
	cJSON *ps = obj(step_cycle_state(st), "publish");
	char key[160];
	double rows = num(ps, "rows", PUB_ROWS_START);
	size_t i;

	if (!answered(p, st, r))
		return;
	/* Tail deletes of child lists: what D1 says they removed. */
	for (i = 0; i < p->nkinds; i++) {
		const cJSON *meta = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(r->result, (int)i), "meta");

		if (p->kinds[i].del)
			p->counts[p->kinds[i].table].deleted += (int64_t)num(meta, "changes", 0);
	}
	if (!step_open(st))
		return;
	for (i = 0; i < p->def->ntables; i++) {
		if (p->counts[i].upserted > 0) {
			snprintf(key, sizeof key, "%s.upserted", p->def->tables[i].name);
			step_detail_add(st, key, p->counts[i].upserted);
		}
		if (p->counts[i].deleted > 0) {
			snprintf(key, sizeof key, "%s.deleted", p->def->tables[i].name);
			step_detail_add(st, key, p->counts[i].deleted);
		}
	}
	add_counters(st, r);
	step_detail_add(st, "d1_bytes", (int64_t)p->bytes);
	step_count(st, 0, p->rows);
	/* The size of the next request (docs/d1-design.md, "Batching"). */
	if (r->timeouts > 0 || r->duration_ms > PUB_SLOW_MS)
		rows = fmax(rows / 2, 100);
	else if (r->duration_ms < PUB_FAST_MS && p->rows >= (int64_t)rows)
		rows = fmin(rows * 2, p->rows_max);
	set_num(ps, "rows", rows);
	set_num(ps, "t", p->next_table);
	set_num(ps, "sent", num(ps, "sent", 0) + (double)p->rows);
	set_item(ps, "k", p->next_key);
	p->next_key = NULL;
	if ((size_t)p->next_table >= p->def->ntables)
		set_str(ps, "stage", "verify");
	set_cursor(st, (size_t)p->next_table >= p->def->ntables ? S_VERIFY : S_DATA, ps);
	step_done(st, STEP_MORE);
}

static void
run_data(struct publisher *p, struct step *st, cJSON *ps)
{
	const char *since = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ps, "full")) ? NULL : str(ps, "since");
	int64_t max = (int64_t)fmin(num(ps, "rows", PUB_ROWS_START), p->rows_max), n;
	size_t t = (size_t)num(ps, "t", 0);
	cJSON *key = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(ps, "k"), 1);
	struct buf sql, seg, dels;
	struct d1_upsert *u;
	struct d1_upsert_stats us;
	char *cause = NULL;
	bool exhausted;
	int ndels, k;

	if (cJSON_IsNull(key)) {
		cJSON_Delete(key);
		key = NULL;
	}
	buf_init(&sql);
	p->counts = xcalloc(p->def->ntables, sizeof *p->counts);
	while (t < p->def->ntables && p->rows < max && sql.len < PUB_BYTES_SOFT) {
		const struct pub_table *tb = &p->def->tables[t];
		const struct tinfo *ti = &p->ti[t];
		bool child_delta = since != NULL && tb->parent >= 0;

		if (!table_wanted(ps, t) || (since != NULL && tb->changed == NULL && tb->parent < 0)) {
			t++;
			cJSON_Delete(key);
			key = NULL;
			continue;
		}
		u = d1_upsert_new(tb->name, (const char *const *)ti->cols, ti->ncols, ti->npk, 0);
		if (u == NULL) {
			step_fail(st, STEP_FATAL, "publish: %s has a column name that is not an identifier", tb->name);
			goto out;
		}
		buf_init(&seg);
		buf_init(&dels);
		ndels = 0;
		exhausted = false;
		cJSON_Delete(p->next_key);
		p->next_key = NULL;
		if (child_delta)
			n = add_children(p, st, t, since, key, max - p->rows, u, &seg, &dels, &ndels, sql.len, &exhausted,
			    &cause);
		else
			n = add_rows(p, st, t, since, key, max - p->rows, u, &seg, sql.len, &exhausted, &cause);
		d1_upsert_end(u, &seg);
		d1_upsert_stats(u, &us);
		d1_upsert_free(u);
		if (n == -1) {
			buf_free(&seg);
			buf_free(&dels);
			step_fail(st, STEP_RETRY, "publish: %s", cause);
			free(cause);
			goto out;
		}
		for (k = 0; k < (int)us.statements; k++)
			push_kind(p, (int)t, false);
		for (k = 0; k < ndels; k++)
			push_kind(p, (int)t, true);
		buf_add(&sql, seg.data != NULL ? seg.data : "", seg.len);
		buf_add(&sql, dels.data != NULL ? dels.data : "", dels.len);
		buf_free(&seg);
		buf_free(&dels);
		p->counts[t].upserted += n;
		p->rows += n;
		if (exhausted) {
			t++;
			cJSON_Delete(key);
			key = NULL;
			cJSON_Delete(p->next_key);
			p->next_key = NULL;
		} else {
			cJSON_Delete(key);
			key = p->next_key;
			p->next_key = NULL;
			break;
		}
	}
	p->next_table = (int)t;
	p->next_key = key;
	key = NULL;
	if (sql.len == 0) {
		/* Nothing (more) to send: on to the verification, without a request. */
		if (!step_open(st))
			goto out;
		set_str(ps, "stage", "verify");
		set_item(ps, "k", NULL);
		set_cursor(st, S_VERIFY, ps);
		clear_request(p);
		step_done(st, STEP_MORE);
		goto out;
	}
	p->bytes = sql.len;
	send_sql(p, st, &sql, "publish rows", data_done);
out:
	cJSON_Delete(key);
	buf_free(&sql);
}

/* --- verify: the same SELECT on both sides --------------------------------------------------------------------- */

static bool
same(double a, double b)
{
	return fabs(a - b) <= 1e-6 + 1e-12 * fmax(fabs(a), fabs(b));
}

/*
 * The checks of a verification, in the cycle state ("checks": [{"t": table, "lo": key|null, "hi": key|null}]): a
 * table of at most verify_range rows whole, a larger one in key ranges of that many rows (bounds read from the
 * local table: one keyset walk).
 */
static int
plan_checks(struct publisher *p, cJSON *ps, char **cause)
{
	cJSON *checks = cJSON_CreateArray(), *c, *lo, *hi;
	struct buf q;
	sqlite3_stmt *s = NULL;
	size_t t;
	int rc;

	for (t = 0; t < p->def->ntables; t++) {
		const struct tinfo *ti = &p->ti[t];

		lo = NULL;
		do {
			/* The last key of the range after lo, if the table has that many rows after it. */
			buf_init(&q);
			buf_adds(&q, "SELECT ");
			list_cols(&q, ti, 0, ti->npk);
			buf_printf(&q, " FROM \"%s\"", p->def->tables[t].name);
			if (lo != NULL) {
				buf_adds(&q, " WHERE ");
				add_bound(&q, ti, lo, ">");
			}
			buf_adds(&q, " ORDER BY ");
			list_cols(&q, ti, 0, ti->npk);
			buf_printf(&q, " LIMIT 1 OFFSET %d", p->verify_range - 1);
			rc = sqlite3_prepare_v2(db_handle(p->db), q.data, -1, &s, NULL);
			buf_free(&q);
			if (rc != SQLITE_OK || ((rc = sqlite3_step(s)) != SQLITE_ROW && rc != SQLITE_DONE)) {
				db_error(p->db, cause, "publish: plan the verification");
				sqlite3_finalize(s);
				cJSON_Delete(lo);
				cJSON_Delete(checks);
				return -1;
			}
			hi = rc == SQLITE_ROW ? row_key(s, ti->npk) : NULL;	/* NULL: the rest, open above */
			sqlite3_finalize(s);
			c = cJSON_CreateObject();
			cJSON_AddNumberToObject(c, "t", (double)t);
			cJSON_AddItemToObject(c, "lo", lo != NULL ? lo : cJSON_CreateNull());
			cJSON_AddItemToObject(c, "hi", hi != NULL ? cJSON_Duplicate(hi, 1) : cJSON_CreateNull());
			cJSON_AddItemToArray(checks, c);
			lo = hi;
		} while (lo != NULL);
	}
	set_item(ps, "checks", checks);
	set_num(ps, "vi", 0);
	set_item(ps, "bad", NULL);
	return 0;
}

static void
verify_done(const struct d1_result *r, void *arg)
{
	struct publisher *p = arg;
	struct step *st = p->st;
	cJSON *ps = obj(step_cycle_state(st), "publish"), *only, *bad, *checks = cJSON_GetObjectItemCaseSensitive(ps,
	    "checks");
	struct buf msg;
	int i, vi = (int)num(ps, "vi", 0), n = (int)p->nkinds;
	const cJSON *e;
	size_t t, nbad = 0;

	if (!answered(p, st, r))
		return;
	if (!step_open(st))
		return;
	add_counters(st, r);
	if (!cJSON_IsArray(bad = cJSON_GetObjectItemCaseSensitive(ps, "bad"))) {
		set_item(ps, "bad", cJSON_CreateArray());
		bad = cJSON_GetObjectItemCaseSensitive(ps, "bad");
	}
	for (i = 0; i < n; i++) {
		const cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(r->result, i),
		    "results"), 0);
		double dn = num(row, "n", -1), dl = num(row, "l", -1), ds = num(row, "s", -1), *loc = &p->local[3 * i];
		char line[512];

		t = (size_t)p->kinds[i].table;
		step_detail_add(st, "verified_rows", (int64_t)loc[0]);
		if (dn == loc[0] && dl == loc[1] && same(ds, loc[2]))
			continue;
		snprintf(line, sizeof line, "%s (D1 %.0f rows, local %.0f%s)", p->kinds[i].del ? " in a key range" : "",
		    dn, loc[0], dn == loc[0] ? ", contents differ" : "");
		{
			cJSON *b = cJSON_CreateObject();

			cJSON_AddNumberToObject(b, "t", (double)t);
			cJSON_AddStringToObject(b, "what", line);
			cJSON_AddItemToArray(bad, b);
		}
	}
	vi += n;
	set_num(ps, "vi", vi);
	if (vi < cJSON_GetArraySize(checks)) {
		set_cursor(st, S_VERIFY, ps);
		step_done(st, STEP_MORE);
		return;
	}

	/* The last check: the verdict. */
	buf_init(&msg);
	only = cJSON_CreateArray();
	for (t = 0; t < p->def->ntables; t++) {
		bool any = false;

		cJSON_ArrayForEach(e, bad) {
			if ((size_t)num(e, "t", -1) != t)
				continue;
			if (!any)
				buf_printf(&msg, "%s%s", nbad > 0 ? ", " : "", p->def->tables[t].name);
			buf_printf(&msg, "%s", str(e, "what"));
			any = true;
		}
		if (any) {
			cJSON_AddItemToArray(only, cJSON_CreateNumber((double)t));
			nbad++;
		}
	}
	if (nbad > 0 && num(ps, "verify_round", 0) >= 1) {
		/* Nothing of this step is kept: the cursor stays at the verification's end, which fails again. */
		step_fail(st, STEP_FATAL, "publish: D1 differs from the local tables after a republish: %s; run "
		    "`syncctl trigger <daemon> --republish`", msg.data);
		buf_free(&msg);
		cJSON_Delete(only);
		return;
	}
	if (nbad > 0) {
		/* Republish those tables, then verify again (once). */
		log_warnx("publish: verification failed: %s; republishing %s", msg.data, nbad == 1 ? "it" : "them");
		step_detail_add(st, "verify_mismatches", (int64_t)nbad);
		set_item(ps, "only", only);
		set_num(ps, "verify_round", 1);
		cJSON_DeleteItemFromObjectCaseSensitive(ps, "full");
		cJSON_AddBoolToObject(ps, "full", true);
		set_num(ps, "t", 0);
		set_item(ps, "k", NULL);
		set_item(ps, "checks", NULL);
		set_str(ps, "stage", "data");
		set_cursor(st, S_DATA, ps);
	} else {
		cJSON_Delete(only);
		step_detail_add(st, "verified_tables", (int64_t)p->def->ntables);
		set_item(ps, "checks", NULL);
		set_str(ps, "stage", "end");
		set_cursor(st, S_END, ps);
	}
	buf_free(&msg);
	step_done(st, STEP_MORE);
}

/* One request: the next checks, at most PUB_VERIFY_RANGES_PER_REQUEST of them key ranges of a large table. */
static void
run_verify(struct publisher *p, struct step *st, cJSON *ps)
{
	cJSON *checks = cJSON_GetObjectItemCaseSensitive(ps, "checks");
	struct buf sql, one;
	sqlite3_stmt *q;
	char *cause = NULL;
	int vi, n, ranged = 0;

	if (!cJSON_IsArray(checks)) {
		if (plan_checks(p, ps, &cause) == -1) {
			step_fail(st, STEP_RETRY, "%s", cause);
			free(cause);
			return;
		}
		checks = cJSON_GetObjectItemCaseSensitive(ps, "checks");
	}
	vi = (int)num(ps, "vi", 0);
	n = cJSON_GetArraySize(checks);
	buf_init(&sql);
	free(p->local);
	p->local = xcalloc(3 * (size_t)(n - vi + 1), sizeof *p->local);
	for (; vi < n && ranged < PUB_VERIFY_RANGES_PER_REQUEST; vi++) {
		const cJSON *c = cJSON_GetArrayItem(checks, vi);
		const cJSON *lo = cJSON_GetObjectItemCaseSensitive(c, "lo"), *hi = cJSON_GetObjectItemCaseSensitive(c, "hi");
		size_t t = (size_t)num(c, "t", 0), k = p->nkinds;
		bool is_range = cJSON_IsArray(lo) || cJSON_IsArray(hi);

		if (t >= p->def->ntables)
			continue;
		buf_init(&one);
		add_verify(&one, p->def->tables[t].name, &p->ti[t], lo, hi);
		if (sqlite3_prepare_v2(db_handle(p->db), one.data, -1, &q, NULL) != SQLITE_OK ||
		    sqlite3_step(q) != SQLITE_ROW) {
			db_error(p->db, &cause, "publish: verify");
			sqlite3_finalize(q);
			buf_free(&one);
			buf_free(&sql);
			step_fail(st, STEP_RETRY, "%s", cause);
			free(cause);
			return;
		}
		push_kind(p, (int)t, is_range);	/* .del marks a range here */
		p->local[3 * k] = sqlite3_column_double(q, 0);
		p->local[3 * k + 1] = sqlite3_column_double(q, 1);
		p->local[3 * k + 2] = sqlite3_column_double(q, 2);
		sqlite3_finalize(q);
		buf_add(&sql, one.data, one.len);
		buf_adds(&sql, ";\n");
		buf_free(&one);
		if (is_range)
			ranged++;
	}
	send_sql(p, st, &sql, "publish: verify", verify_done);
	buf_free(&sql);
}

/* --- end: published_through ------------------------------------------------------------------------------------ */

static void
end_done(const struct d1_result *r, void *arg)
{
	struct publisher *p = arg;
	struct step *st = p->st;
	cJSON *ps = obj(step_cycle_state(st), "publish"), *js = step_job_state(st);

	if (!answered(p, st, r))
		return;
	if (!step_open(st))
		return;
	add_counters(st, r);
	set_str(js, "d1_published_through", str(ps, "mark"));
	log_info("publish: D1 is complete through %s (%.0f rows sent)", str(ps, "mark"), num(ps, "sent", 0));
	set_str(ps, "stage", "done");
	step_done(st, STEP_PHASE_DONE);
}

static void
run_end(struct publisher *p, struct step *st, cJSON *ps)
{
	struct buf sql;
	char now[ISO8601_LEN];

	iso8601_now(now);
	buf_init(&sql);
	buf_adds(&sql, "INSERT INTO d1_publish_state (scope, published_through, published_at, run_id, schema_version)"
	    " VALUES (");
	lit_text(&sql, p->def->scope);
	buf_adds(&sql, ", ");
	lit_text(&sql, str(ps, "mark"));
	buf_adds(&sql, ", ");
	lit_text(&sql, now);
	buf_adds(&sql, ", ");
	lit_text(&sql, step_run_id(st));
	buf_printf(&sql, ", %d) ON CONFLICT (scope) DO UPDATE SET published_through = excluded.published_through,"
	    " published_at = excluded.published_at, run_id = excluded.run_id, schema_version = excluded.schema_version",
	    p->def->schema_version);
	send_sql(p, st, &sql, "publish: record published_through", end_done);
	buf_free(&sql);
}

/* --- the step -------------------------------------------------------------------------------------------------- */

static void
abort_cb(void *arg)
{
	struct publisher *p = arg;

	d1_cancel_for(p->d1, p);	/* on_done runs with D1_ERR_CANCELLED and fails the step */
}

static void
send_sql(struct publisher *p, struct step *st, struct buf *sql, const char *what, d1_done_fn done)
{
	struct d1_query q;

	memset(&q, 0, sizeof q);
	q.sql = sql->data;
	q.sql_len = sql->len;
	q.what = what;
	q.on_done = done;
	q.arg = p;
	p->st = st;
	step_on_abort(st, abort_cb, p);
	d1_query(p->corpus, &q);
}

static void
run_stage(struct publisher *p, struct step *st, cJSON *ps)
{
	const char *s = str(ps, "stage");

	p->stage = S_PREP;
	if (s == NULL || strcmp(s, "prep") == 0)
		run_prep(p, st, ps);
	else if (strcmp(s, "schema") == 0) {
		p->stage = S_SCHEMA;
		run_schema(p, st, ps);
	} else if (strcmp(s, "data") == 0) {
		p->stage = S_DATA;
		run_data(p, st, ps);
	} else if (strcmp(s, "verify") == 0) {
		p->stage = S_VERIFY;
		run_verify(p, st, ps);
	} else if (strcmp(s, "end") == 0) {
		p->stage = S_END;
		run_end(p, st, ps);
	} else
		step_fail(st, STEP_FATAL, "publish: the cycle state names stage '%s', which this version does not have", s);
}

void
publish_step(struct publisher *p, struct step *st)
{
	cJSON *cs = step_cycle_state(st), *ps;
	char *cause = NULL, mark[128];
	bool republish;

	clear_request(p);
	if (!publish_enabled(p)) {
		step_detail_add(st, "disabled", 1);
		step_set_status(st, "complete", "disabled: [d1] corpus_database_id is not configured");
		step_done(st, STEP_PHASE_DONE);
		return;
	}
	if (load_tinfo(p, &cause) == -1) {
		step_fail(st, STEP_FATAL, "%s", cause);
		free(cause);
		return;
	}
	republish = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cs, "flags"),
	    "republish"));
	ps = cJSON_GetObjectItemCaseSensitive(cs, "publish");
	if (!cJSON_IsObject(ps) || step_cursor(st)[0] == '\0' || (republish &&
	    !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ps, "republish_asked")))) {
		/* The phase's first step (or a republish asked for while the cycle was under way). */
		cJSON_DeleteItemFromObjectCaseSensitive(cs, "publish");
		ps = cJSON_AddObjectToObject(cs, "publish");
		if (p->def->mark(st, p->db, mark, sizeof mark, &cause) == -1) {
			step_fail(st, STEP_RETRY, "publish: %s", cause);
			free(cause);
			return;
		}
		cJSON_AddStringToObject(ps, "mark", mark);
		cJSON_AddStringToObject(ps, "stage", "prep");
		cJSON_AddBoolToObject(ps, "full", republish);
		cJSON_AddBoolToObject(ps, "republish_asked", republish);
		cJSON_AddNumberToObject(ps, "rows", PUB_ROWS_START);
	}
	run_stage(p, st, ps);
}
