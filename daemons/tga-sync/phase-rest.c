/*
 * The phases over the public REST API (source = rest): the same phases, stage records and tables as the SOAP
 * source, but the REST API cannot say what changed, so every cycle is a crawl of the whole register.
 *
 *   init             GET /api/metadata: the data export sync time.  Unchanged since the last complete cycle (and
 *                    not --full): the cycle is "no change" and the sync phases skip (nothing else is requested).
 *   sync_training    per component type, the search pages ordered by code; each page's components in full
 *                    (detail, and the unit grid of every release); one page per step.
 *   sync_orgs        the same over the organisation search: each RTO with include=all and its scope.
 *   sweep_deletions  nothing left to do: what the crawl no longer finds is handled page by page (below).
 *   write_snapshot   shared with SOAP (phase-snapshot.c).
 *
 * Partitions and the offset cap.  A partition is one component type (or all organisations), ordered by code.  The
 * API refuses offsets from rest_offset_cap on (50,000; the 75,000 units cannot be paged under one filter), so when
 * the next page would reach it the crawl goes on with a new partition, "the same type, codes after the last one
 * read" (filter Code gt '...'), from offset 0.  A cap lower than configured shows as a 400 past offset 0: the same
 * split, and the lower cap is kept for the rest of the cycle.
 *
 * Cursor (tga_sync_cursor.phase_cursor), committed with each page's rows:
 *     "t=<type> a=<codes after this one> o=<offset> s=<page size> g=<good pages at it> l=<highest code read>"
 * e.g. "t=Unit a=BSBXTE401 o=1000 s=500 g=3 l=BSBXYZ999" (an empty a= or l= is none); t=Organisation in sync_orgs.
 * A kill resumes at the page in flight: at most one page is read twice.
 *
 * Page size.  A 417 halves the page size at once; a page still failing after http.c's retries (5xx, 429,
 * connection errors) halves it too, down to REST_MIN_PAGE, and past offset 0 at the smallest size it is taken as
 * the offset cap.  After four good pages the size doubles again, up to rest_page_size.  The size is in the cursor.
 *
 * Removals.  A page lists the codes in (l, highest on the page] of its partition (to the end on its last page);
 * a stored live record of that range that the page does not list is a candidate, fetched like the page's records:
 * a 404 soft-deletes it (store_removed), a record that is still there is written (the page was shifted by a
 * deletion upstream while the crawl paged).  Nothing is soft-deleted without its own 404, and a cycle that would
 * soft-delete more than rest_max_removals records fails instead (a changed API answering 404 to everything).
 *
 * Unchanged records.  The search has no UpdatedDate, so every record's detail is read; when its updatedDate is the
 * stored one (and the cycle is not --full), its unit grids or its scope are not requested and nothing is written,
 * as the SOAP source skips it.  A candidate is never skipped: its stored row disagrees with the listing.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursorkv.h"
#include "cycle.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "plan.h"
#include "parse-rest.h"
#include "source-rest.h"
#include "stage.h"
#include "store.h"
#include "tga.h"
#include "tgatime.h"
#include "timeutil.h"
#include "xmalloc.h"

#define MAX_LANES 64
#define GROW_AFTER 4

/* Component types in crawl order, as the SOAP source walks them (ComponentType names). */
static const char *const crawl_types[] = { "TrainingPackage", "Qualification", "Unit", "SkillSet", "AccreditedCourse",
	"AccreditedCourseModule" };
#define NCRAWL (int)(sizeof crawl_types / sizeof crawl_types[0])

static bool
type_configured(const struct tga_settings *set, int i)
{
	int k;

	for (k = 0; k < TCT_COUNT; k++)
		if (strcmp(tct_names[k], crawl_types[i]) == 0)
			return (set->tc_types & (1u << k)) != 0;
	return false;
}

/* --- init ------------------------------------------------------------------------------------------------------ */

struct rinit {
	struct step *st;
	int64_t sync;
};

static bool
cs_true(struct step *st, const char *key)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(step_cycle_state(st), key));
}

static void
cs_set_bool(cJSON *o, const char *key, bool v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	cJSON_AddBoolToObject(o, key, v);
}

static void
cs_set_str(cJSON *o, const char *key, const char *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	cJSON_AddStringToObject(o, key, v);
}

static void
rinit_done(void *arg, const struct src_error *e, long status)
{
	struct rinit *in = arg;
	struct step *st = in->st;
	struct tga *t = step_job(st);
	const struct tga_settings *set = &t->set;
	cJSON *js = step_job_state(st), *cs = step_cycle_state(st), *rf;
	const cJSON *v;
	char *cause = NULL, a[TICKS_LEN], b[TICKS_LEN];
	int64_t last = 0, from;
	bool have_last, empty = false, zone, no_change, refetch;
	const char *why = NULL;
	int i;

	if (e->status != SRC_OK) {
		phase_fail(st, e);
		free(in);
		return;
	}
	if (store_is_empty(step_daemon(st)->db, &empty, &cause) == -1) {
		step_fail(st, STEP_RETRY, "%s", cause);
		free(cause);
		free(in);
		return;
	}
	v = cJSON_GetObjectItemCaseSensitive(js, "rest_sync");
	have_last = cJSON_IsString(v) && ticks_parse(v->valuestring, strlen(v->valuestring), &last, &zone);
	rf = cJSON_GetObjectItemCaseSensitive(js, "refetch");
	refetch = rf != NULL && cJSON_GetArraySize(rf) > 0;
	if (step_full(st))
		why = "a full cycle was asked for";
	else if (!set->rest_probe)
		why = "rest_probe = no";
	else if (!have_last)
		why = "no complete REST cycle before";
	else if (empty)
		why = "rtopacks.db holds no TGA rows (new or replaced file)";
	else if (refetch)
		why = "records left to read again from the last cycle";
	else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(js, "rest_shortfall")))
		why = "the last cycle read less than the API announced";
	else if (last != in->sync)
		why = "the register changed";
	no_change = why == NULL;
	/* The window of the summary: since the last complete cycle's export, or the epoch. */
	from = have_last && !step_full(st) && last <= in->sync ? last : set->epoch_ticks;
	plan_set(st, "server_time", in->sync);
	plan_set(st, "to", in->sync);
	plan_set(st, "from", from);
	plan_set(st, "del_from", from);
	cs_set_str(cs, "source", "rest");
	cs_set_str(cs, "rest_sync", ticks_format(in->sync, a));
	/* Every REST cycle reads the whole register (what differs is what gets written). */
	cs_set_bool(cs, "read_all", true);
	cs_set_bool(cs, "no_change", no_change);
	cJSON_DeleteItemFromObjectCaseSensitive(cs, "refetch");
	if (!no_change && (rf = cJSON_DetachItemFromObjectCaseSensitive(js, "refetch")) != NULL)
		cJSON_AddItemToObject(cs, "refetch", rf);
	for (i = 0; i < TCT_COUNT; i++)
		if ((set->tc_types & (1u << i)) && rest_type_id(tct_names[i]) < 0)
			log_warnx("component type %s has no filter in the REST search: not synced with source = rest",
			    tct_names[i]);
	if (no_change) {
		log_info("cycle plan: no change: the data export sync time is still %s, as at the last complete cycle; "
		    "nothing to read", a);
		step_set_status(st, "complete", "no change upstream: the data export sync time is the last cycle's");
	} else
		log_info("cycle plan: read the whole register from the REST API, data export sync time %s (%s; last "
		    "complete cycle's: %s)", a, why, have_last ? ticks_format(last, b) : "none");
	step_done(st, STEP_PHASE_DONE);
	free(in);
}

void
phase_rest_init_run(struct step *st)
{
	struct tga *t = step_job(st);
	struct rinit *in = xcalloc(1, sizeof *in);

	in->st = st;
	rest_metadata(t->rest, step_http(st), &in->sync, rinit_done, in);
}

/* --- the crawl ------------------------------------------------------------------------------------------------- */

struct job {
	struct rest_fetch f;
	struct src_item sum;		/* what store_component takes from a search result */
};

struct crawl;

struct lane {
	struct crawl *c;
	struct stage *stage;
	struct job *busy;
};

struct crawl {
	struct step *st;
	struct tga *t;
	enum tga_service svc;
	/* the position (the cursor) */
	int ti;				/* crawl_types index (training) */
	char after[TGA_CODE_MAX];
	int64_t offset;
	int size, good;
	char last[TGA_CODE_MAX];
	/* this page */
	struct src_page pg;
	char hi[TGA_CODE_MAX];		/* the highest code on the page */
	bool last_page;
	struct job *jobs;
	size_t njobs, next, nitems;
	struct lane lanes[MAX_LANES];
	int nlanes, busy;
	struct src_error err;
	int searches, halvings, splits, empty_tries;
	int64_t candidates;
	double t_start;
};

static void crawl_search(struct crawl *);
static void write_page(struct crawl *);

static const char *
crash_name(enum tga_service svc)
{
	return svc == SVC_TRAINING ? "tga_training_written" : "tga_orgs_written";
}

static const char *
partition_name(const struct crawl *c)
{
	return c->svc == SVC_TRAINING ? crawl_types[c->ti] : "Organisation";
}

static void
crawl_free(struct crawl *c)
{
	int i;

	for (i = 0; i < c->nlanes; i++)
		stage_free(c->lanes[i].stage);
	src_page_clear(&c->pg);
	free(c->jobs);
	free(c);
}

static void
crawl_fail(struct crawl *c, enum step_error how, const char *msg)
{
	struct step *st = c->st;

	crawl_free(c);
	step_fail(st, how, "%s", msg);
}

/* The first configured partition at or after ti (training), or NCRAWL when there is none. */
static int
next_type(const struct crawl *c, int ti)
{
	while (ti < NCRAWL && (!type_configured(&c->t->set, ti) || rest_type_id(crawl_types[ti]) < 0))
		ti++;
	return ti;
}

/* "t=Unit a=X o=0 s=500 g=0 l=Y": the partition, the code the search goes on after, the offset, the page size,
 * the good pages since the last halving, the last code read. */
static void
set_cursor(struct crawl *c)
{
	struct ckv_builder b;

	ckv_init(&b);
	ckv_put(&b, "t", partition_name(c));
	ckv_put(&b, "a", c->after);
	ckv_put_i64(&b, "o", c->offset);
	ckv_put_i64(&b, "s", c->size);
	ckv_put_i64(&b, "g", c->good);
	ckv_put(&b, "l", c->last);
	step_set_cursor(c->st, "%s", ckv_str(&b));
}

static bool
code_or_empty(const char *v, size_t size)
{
	return v != NULL && strlen(v) < size && (v[0] == '\0' || tga_code_valid(v, strlen(v)));
}

/* Every key once (the codec's form of the cursor above). */
static bool
parse_cursor(struct crawl *c, const char *cur)
{
	struct ckv kv;
	const char *t, *a, *l;
	bool ok;
	int i;

	if (ckv_parse(&kv, cur) == -1 || ckv_count(&kv) != 6 || (t = ckv_get(&kv, "t")) == NULL)
		return false;
	if (c->svc == SVC_ORGANISATION)
		ok = strcmp(t, "Organisation") == 0;
	else {
		for (i = 0; i < NCRAWL && strcmp(crawl_types[i], t) != 0; i++)
			;
		ok = i < NCRAWL;
		c->ti = i;
	}
	a = ckv_get(&kv, "a");
	l = ckv_get(&kv, "l");
	ok = ok && code_or_empty(a, sizeof c->after) && code_or_empty(l, sizeof c->last) &&
	    ckv_get_i64(&kv, "o", 0, INT64_MAX, &c->offset) && ckv_get_int(&kv, "s", 1, INT_MAX, &c->size) &&
	    ckv_get_int(&kv, "g", 0, INT_MAX, &c->good);
	if (!ok)
		return false;
	snprintf(c->after, sizeof c->after, "%s", a);
	snprintf(c->last, sizeof c->last, "%s", l);
	/* A configuration changed since (a smaller rest_page_size) applies from the resumed page on. */
	if (c->size > c->t->set.rest_page_size)
		c->size = c->t->set.rest_page_size;
	return true;
}

/* The offset cap of this cycle: configured, or lower when the API refused an offset before. */
static int64_t
offset_cap(struct crawl *c)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(step_cycle_state(c->st), "rest_offset_cap");

	if (cJSON_IsNumber(v) && v->valuedouble > 0 && (c->t->set.rest_offset_cap == 0 ||
	    (int64_t)v->valuedouble < c->t->set.rest_offset_cap))
		return (int64_t)v->valuedouble;
	return c->t->set.rest_offset_cap;
}

static bool
in_refetch(struct step *st, enum tga_service svc, const char *code)
{
	const cJSON *rf = cJSON_GetObjectItemCaseSensitive(step_cycle_state(st), "refetch"), *it;

	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(rf, svc == SVC_TRAINING ? "training" :
	    "organisation"))
		if (cJSON_IsString(it) && strcmp(it->valuestring, code) == 0)
			return true;
	return false;
}

/* --- completeness ---------------------------------------------------------------------------------------------- */

/*
 * cycle_state "completeness", committed with each page (a resumed cycle goes on counting where it stopped):
 *   {"search": {"<type>|Organisation": {"total": <the type's first page's total, -1 unknown>, "read": <results>}},
 *    "scope": {"rtos": <RTOs whose scope was read>, "rows_expected": <scopesummary / first pages>,
 *              "rows_missing": <still missing after the restarts>, "short_rtos": <RTOs short>},
 *    "shortfalls": [<what was missing, named>, ... at most MAX_SHORTFALLS], "n_shortfalls": <all of them>}
 * write_snapshot copies it onto the run row's summary, and the mail prints it.  cycle_state "phase_shortfalls"
 * {"<phase>": [the same messages of that phase]} names them on the phase's step row.
 */
#define MAX_SHORTFALLS 20

static cJSON *
cs_obj(cJSON *parent, const char *key)
{
	cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, key);

	if (!cJSON_IsObject(o)) {
		cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
		o = cJSON_AddObjectToObject(parent, key);
	}
	return o;
}

static int64_t
cs_num(const cJSON *o, const char *key, int64_t dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : dflt;
}

static void
cs_add(cJSON *o, const char *key, int64_t n)
{
	int64_t v = cs_num(o, key, 0) + n;

	cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	cJSON_AddNumberToObject(o, key, (double)v);
}

static void
add_capped(cJSON *parent, const char *key, const char *msg)
{
	cJSON *l = cJSON_GetObjectItemCaseSensitive(parent, key);

	if (!cJSON_IsArray(l)) {
		cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
		l = cJSON_AddArrayToObject(parent, key);
	}
	if (cJSON_GetArraySize(l) < MAX_SHORTFALLS)
		cJSON_AddItemToArray(l, cJSON_CreateString(msg));
}

static void
shortfall(struct step *st, const char *msg)
{
	cJSON *cs = step_cycle_state(st), *cp = cs_obj(cs, "completeness");

	add_capped(cp, "shortfalls", msg);
	cs_add(cp, "n_shortfalls", 1);
	add_capped(cs_obj(cs, "phase_shortfalls"), step_phase(st), msg);
}

/* A partition's page is in: count its results against the type's total (taken from its first page). */
static void
count_search(struct crawl *c)
{
	cJSON *t = cs_obj(cs_obj(cs_obj(step_cycle_state(c->st), "completeness"), "search"), partition_name(c));

	if (c->after[0] == '\0' && c->offset == 0) {
		cJSON_DeleteItemFromObjectCaseSensitive(t, "total");
		cJSON_AddNumberToObject(t, "total", (double)c->pg.count);
		cJSON_DeleteItemFromObjectCaseSensitive(t, "read");
	}
	cs_add(t, "read", c->pg.returned);
}

/* The type's last page is written: fewer results than its total is a shortfall, named (the run ends partial). */
static void
check_search(struct crawl *c)
{
	const cJSON *cp = cJSON_GetObjectItemCaseSensitive(step_cycle_state(c->st), "completeness");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cp, "search"),
	    partition_name(c));
	int64_t total = cs_num(t, "total", -1), read = cs_num(t, "read", 0);
	char msg[300];

	if (total < 0 || read >= total)
		return;
	snprintf(msg, sizeof msg, "search [%s]: %lld of %lld records listed, %lld missing (the API stopped serving "
	    "them; they are read again next cycle)", partition_name(c), (long long)read, (long long)total,
	    (long long)(total - read));
	step_reject(c->st, total - read, "%s", msg);
	shortfall(c->st, msg);
}

/* The phase's last step: its step row names the phase's shortfalls (its rejected count makes the run partial). */
static void
phase_shortfalls(struct step *st)
{
	const cJSON *l = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(step_cycle_state(st),
	    "phase_shortfalls"), step_phase(st)), *it;
	char msg[1024];
	size_t n;

	if (cJSON_GetArraySize(l) == 0)
		return;
	n = (size_t)snprintf(msg, sizeof msg, "shortfall:");
	cJSON_ArrayForEach(it, l)
		if (n < sizeof msg && cJSON_IsString(it))
			n += (size_t)snprintf(msg + n, sizeof msg - n, " %s;", it->valuestring);
	if (n < sizeof msg && cJSON_GetArraySize(l) >= MAX_SHORTFALLS)
		snprintf(msg + n, sizeof msg - n, " ... (the run summary's completeness has them all)");
	step_set_status(st, "partial", msg);
}

/* --- fetching the page's records, one lane per request in flight ------------------------------------------------- */

static void dispatch(struct crawl *);

static void
lane_done(void *arg, const struct src_error *e, long status)
{
	struct lane *l = arg;
	struct crawl *c = l->c;

	l->busy = NULL;
	c->busy--;
	if (src_status_rank(e->status) > src_status_rank(c->err.status))
		c->err = *e;
	dispatch(c);
}

static void
dispatch(struct crawl *c)
{
	char *cause = NULL;
	int i;

	/* A stop lets the page finish (stop_grace bounds it): its records are written with the cursor. */
	for (i = 0; i < c->nlanes && c->next < c->njobs && c->err.status == SRC_OK; i++) {
		struct lane *l = &c->lanes[i];

		if (l->busy != NULL)
			continue;
		if (l->stage == NULL && (l->stage = stage_new(c->t->spool_dir, &cause)) == NULL) {
			c->err.status = SRC_TRANSIENT;
			snprintf(c->err.msg, sizeof c->err.msg, "%s", cause);
			free(cause);
			break;
		}
		l->busy = &c->jobs[c->next++];
		c->busy++;
		rest_details(c->t->rest, step_http(c->st), &l->busy->f, l->stage, lane_done, l);
	}
	if (c->busy > 0)
		return;
	if (c->err.status != SRC_OK) {
		struct step *st = c->st;
		struct src_error err = c->err;

		crawl_free(c);
		phase_fail(st, &err);
		return;
	}
	write_page(c);
}

static struct job *
add_job(struct crawl *c, const char *code, int is_current)
{
	struct job *j;

	c->jobs = xreallocarray(c->jobs, c->njobs + 1, sizeof *c->jobs);
	j = &c->jobs[c->njobs];
	memset(j, 0, sizeof *j);
	j->f.svc = c->svc;
	j->f.item = (int)c->njobs;
	snprintf(j->f.code, sizeof j->f.code, "%s", code);
	snprintf(j->sum.code, sizeof j->sum.code, "%s", code);
	j->sum.is_current = is_current;
	c->njobs++;
	return j;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The page is in: what to fetch (its records, and the stored ones of its range it does not list). */
static void
plan_page(struct crawl *c)
{
	struct step *st = c->st;
	struct db *db = step_daemon(st)->db;
	bool skip = c->t->set.skip_unchanged && !step_full(st);
	char **page = NULL, **stored = NULL, *cause = NULL;
	size_t i, nstored = 0, unordered = 0;
	struct job *j;

	c->hi[0] = '\0';
	page = xcalloc(c->pg.n + 1, sizeof *page);
	for (i = 0; i < c->pg.n; i++) {
		const char *code = c->pg.items[i].code;

		if (i > 0 && strcmp(code, c->pg.items[i - 1].code) < 0)
			unordered++;
		if (strcmp(code, c->hi) > 0)
			snprintf(c->hi, sizeof c->hi, "%s", code);
		page[i] = c->pg.items[i].code;
		add_job(c, code, c->pg.items[i].is_current);
	}
	c->nitems = c->njobs;
	if (unordered > 0)
		log_warnx("%s search [%s] offset %lld: the results are not in code order (%zu out of place); the crawl "
		    "stays complete, at the price of extra requests", step_phase(st), partition_name(c),
		    (long long)c->offset, unordered);
	qsort(page, c->pg.n, sizeof *page, cmp_str);

	/* Stored live records of (last, hi] (to the end on the last page) that the page does not list. */
	if (store_live_codes(db, c->svc == SVC_TRAINING ? crawl_types[c->ti] : NULL, c->last,
	    c->last_page ? NULL : c->hi, &stored, &nstored, &cause) == -1) {
		log_warnx("%s", cause);
		xfree(&cause);
		c->err.status = SRC_TRANSIENT;
		snprintf(c->err.msg, sizeof c->err.msg, "cannot read the stored codes of %s", partition_name(c));
	}
	for (i = 0; i < nstored; i++) {
		if (c->pg.n == 0 || bsearch(&stored[i], page, c->pg.n, sizeof *page, cmp_str) == NULL) {
			add_job(c, stored[i], -1);
			c->candidates++;
		}
		free(stored[i]);
	}
	free(stored);
	free(page);

	/* Only the page's records may be skipped as unchanged: a candidate's stored row disagrees with the listing (it
	 * is gone, or stored under another partition), so it is read in full. */
	for (i = 0; i < c->nitems; i++) {
		j = &c->jobs[i];
		if (!skip || in_refetch(st, c->svc, j->f.code))
			continue;
		if (store_stored_updated(db, c->svc, j->f.code, j->f.known_updated, sizeof j->f.known_updated,
		    &cause) == -1) {
			log_warnx("%s", cause);
			xfree(&cause);
		}
	}
}

/* --- search ---------------------------------------------------------------------------------------------------- */

static void
halve(struct crawl *c, const char *why)
{
	int from = c->size;

	c->size = c->size / 2 > REST_MIN_PAGE ? c->size / 2 : REST_MIN_PAGE;
	c->good = 0;
	c->halvings++;
	log_warnx("%s [%s] offset %lld: %s; pages of %d from now on (was %d)", step_phase(c->st), partition_name(c),
	    (long long)c->offset, why, c->size, from);
}

/* Go on with the codes after the last one read, from offset 0 (the offset cap). */
static void
split(struct crawl *c, const char *why)
{
	log_info("%s [%s]: %s; going on with the codes after %s", step_phase(c->st), partition_name(c), why, c->last);
	snprintf(c->after, sizeof c->after, "%s", c->last);
	c->offset = 0;
	c->splits++;
}

static void
search_done(void *arg, const struct src_error *e, long status)
{
	struct crawl *c = arg;
	char why[600];
	bool trouble;

	if (e->status == SRC_CANCELLED || e->status == SRC_CREDENTIALS) {
		struct step *st = c->st;
		struct src_error err = *e;

		crawl_free(c);
		phase_fail(st, &err);
		return;
	}
	if (e->status != SRC_OK) {
		snprintf(why, sizeof why, "%s", e->msg);
		if (status == 417 && c->size > REST_MIN_PAGE) {
			halve(c, "HTTP 417 (the page is too large)");
			crawl_search(c);
			return;
		}
		if (status == 400 && c->offset > 0 && c->last[0] != '\0') {
			cJSON *cs = step_cycle_state(c->st);

			/* The API's offset cap is lower than rest_offset_cap: remember it for this cycle. */
			cJSON_DeleteItemFromObjectCaseSensitive(cs, "rest_offset_cap");
			cJSON_AddNumberToObject(cs, "rest_offset_cap", (double)c->offset);
			split(c, why);
			crawl_search(c);
			return;
		}
		/* Repeated failure (http.c has spent its retries): 429, 5xx, a connection error or timeout.  Not a 2xx
		 * that does not parse, nor a 404. */
		trouble = e->status == SRC_TRANSIENT && (status == 0 || status == 429 || status >= 500);
		if (trouble && c->size > REST_MIN_PAGE) {
			halve(c, why);
			crawl_search(c);
			return;
		}
		if (trouble && c->offset > 0 && c->last[0] != '\0') {
			split(c, why);
			crawl_search(c);
			return;
		}
		{
			struct step *st = c->st;
			struct src_error err = *e;

			crawl_free(c);
			phase_fail(st, &err);
		}
		return;
	}
	if (c->pg.returned == 0 && c->pg.count > c->offset) {
		/* An empty page before the total: asked again, then taken as an offset cap that answers 200 (go on after
		 * the last code read, from offset 0); at offset 0 the partition ends short (check_search names it). */
		if (c->empty_tries++ < c->t->set.parse_retries) {
			log_warnx("%s [%s] offset %lld: an empty page before the total (%lld); asking again",
			    step_phase(c->st), partition_name(c), (long long)c->offset, (long long)c->pg.count);
			crawl_search(c);
			return;
		}
		if (c->offset > 0 && c->last[0] != '\0') {
			cJSON *cs = step_cycle_state(c->st);

			snprintf(why, sizeof why, "an empty page at offset %lld before the total (%lld)",
			    (long long)c->offset, (long long)c->pg.count);
			cJSON_DeleteItemFromObjectCaseSensitive(cs, "rest_offset_cap");
			cJSON_AddNumberToObject(cs, "rest_offset_cap", (double)c->offset);
			c->empty_tries = 0;
			split(c, why);
			crawl_search(c);
			return;
		}
	}
	/* The end of a partition: its results reach its total, or (no total) an empty page.  A page shorter than
	 * asked is no end: a server may serve fewer rows than pageSize. */
	c->last_page = c->pg.returned == 0 || (c->pg.count >= 0 && c->offset + c->pg.returned >= c->pg.count);
	plan_page(c);
	dispatch(c);
}

static void
crawl_search(struct crawl *c)
{
	struct rest_query q;

	memset(&q, 0, sizeof q);
	q.svc = c->svc;
	q.type = c->svc == SVC_TRAINING ? crawl_types[c->ti] : NULL;
	q.after = c->after;
	q.offset = c->offset;
	q.page_size = c->size;
	c->searches++;
	rest_search(c->t->rest, step_http(c->st), &q, &c->pg, search_done, c);
}

/* --- write ----------------------------------------------------------------------------------------------------- */

static void
write_page(struct crawl *c)
{
	struct step *st = c->st;
	const struct tga_settings *set = &c->t->set;
	cJSON *cs = step_cycle_state(st);
	const cJSON *v;
	struct store s;
	char *cause = NULL, msg[512];
	int64_t sync = 0, removed, requests = 0, scope_rows = 0, unchanged = 0, halvings = c->halvings, gone = 0;
	int64_t restarts = 0, cap;
	double t_write = mono_now();
	bool done = false;
	size_t i;
	int k, li;

	v = cJSON_GetObjectItemCaseSensitive(cs, "removed");
	removed = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
	if (!plan_get(st, "to", &sync)) {
		crawl_fail(c, STEP_FATAL, "the cycle has no plan (cycle_state lacks to): start a new cycle with "
		    "`syncctl trigger tga-sync --full`");
		return;
	}
	if (store_begin(&s, st, c->t, &cause) == -1)
		goto fail;
	for (k = 0; k < c->pg.rejects.n; k++)
		step_reject(st, 1, "%s", k < SRC_MAX_REJECT_MSGS ? c->pg.rejects.msg[k] : "(more of the same)");
	for (i = 0; i < c->njobs; i++) {
		requests += c->jobs[i].f.requests;
		scope_rows += c->jobs[i].f.scope_rows;
		unchanged += c->jobs[i].f.unchanged;
		halvings += c->jobs[i].f.halvings;
		restarts += c->jobs[i].f.restarts;
	}
	for (li = 0; li < c->nlanes; li++) {
		struct stage *sg = c->lanes[li].stage;

		for (i = 0; sg != NULL && i < sg->n; i++) {
			const struct stage_entity *e = &sg->ents[i];
			struct job *j = &c->jobs[e->item];
			int rc;

			if (e->nil) {
				if ((rc = store_removed(&s, c->svc, e->code, sync, &cause)) == -1)
					goto fail;
				if (rc == 0) {
					step_detail_add(st, "vanished", 1);
					continue;
				}
				gone++;
				if (set->rest_max_removals > 0 && removed + gone > set->rest_max_removals) {
					snprintf(msg, sizeof msg, "the REST crawl has found %lld records gone (404) this cycle, "
					    "more than rest_max_removals = %lld: stopping rather than soft-deleting them (if the "
					    "API has changed, fix that first; if the removals are real, raise rest_max_removals "
					    "and trigger again); the last one: %s", (long long)(removed + gone),
					    (long long)set->rest_max_removals, e->code);
					store_end(&s);
					crawl_fail(c, STEP_FATAL, msg);
					return;
				}
				continue;
			}
			if (c->svc == SVC_TRAINING)
				rc = store_component(&s, sg, e, &j->sum, &cause);
			else
				rc = store_rto(&s, sg, e, &cause);
			if (rc == -1)
				goto fail;
		}
	}
	count_search(c);
	for (i = 0; i < c->njobs; i++) {
		struct rest_fetch *f = &c->jobs[i].f;
		cJSON *sc;

		if (!f->scope_checked)
			continue;
		sc = cs_obj(cs_obj(cs, "completeness"), "scope");
		cs_add(sc, "rtos", 1);
		cs_add(sc, "rows_expected", f->scope_expected);
		if (f->scope_short > 0) {
			snprintf(msg, sizeof msg, "RTO %s: %lld scope rows missing (of %lld announced)", f->code,
			    (long long)f->scope_short, (long long)f->scope_expected);
			cs_add(sc, "rows_missing", f->scope_short);
			cs_add(sc, "short_rtos", 1);
			shortfall(st, msg);
		}
	}
	if (c->last_page)
		check_search(c);
	crashpoint(crash_name(c->svc));
	cJSON_DeleteItemFromObjectCaseSensitive(cs, "removed");
	cJSON_AddNumberToObject(cs, "removed", (double)(removed + gone));
	step_count(st, c->pg.returned + (int64_t)(c->njobs - c->nitems), s.changed);
	step_detail_add(st, "search_requests", c->searches);
	step_detail_add(st, "details_requests", (int64_t)c->njobs);
	step_detail_add(st, "requests", requests + c->searches);
	step_detail_add(st, "unchanged_skipped", unchanged);
	step_detail_add(st, "candidates", c->candidates);
	step_detail_add(st, "removed", gone);
	if (halvings > 0)
		step_detail_add(st, "page_halvings", halvings);
	if (c->splits > 0)
		step_detail_add(st, "offset_splits", c->splits);
	if (restarts > 0)
		step_detail_add(st, "restarts", restarts);
	if (c->svc == SVC_ORGANISATION) {
		step_detail_add(st, "scope_rows_read", scope_rows);
		step_detail_add(st, "scope_rows_written", s.scope_rows_written);
	}

	/* The next position. */
	if (c->last_page) {
		c->ti = c->svc == SVC_TRAINING ? next_type(c, c->ti + 1) : NCRAWL;
		c->after[0] = c->last[0] = '\0';
		c->offset = 0;
		done = c->ti >= NCRAWL;
	} else {
		if (strcmp(c->hi, c->last) > 0)
			snprintf(c->last, sizeof c->last, "%s", c->hi);
		c->offset += c->pg.returned;
		if (++c->good >= GROW_AFTER && c->size < set->rest_page_size) {
			c->size = c->size * 2 < set->rest_page_size ? c->size * 2 : set->rest_page_size;
			c->good = 0;
		}
		cap = offset_cap(c);
		if (cap > 0 && c->offset + c->size > cap && c->last[0] != '\0') {
			snprintf(msg, sizeof msg, "the next page would pass the offset cap (%lld)", (long long)cap);
			split(c, msg);
			step_detail_add(st, "offset_splits", 1);
		}
	}
	if (done) {
		step_set_cursor(st, "done");
		phase_shortfalls(st);
	} else
		set_cursor(c);
	log_debug("%s: %d search%s, %zu details (%lld requests) in %.3fs; %zu record%s written in %.3fs",
	    step_phase(st), c->searches, c->searches == 1 ? "" : "es", c->njobs, (long long)requests,
	    t_write - c->t_start, c->njobs, c->njobs == 1 ? "" : "s", mono_now() - t_write);
	store_end(&s);
	crawl_free(c);
	step_done(st, done ? STEP_PHASE_DONE : STEP_MORE);
	return;
fail:
	store_end(&s);
	crawl_fail(c, STEP_RETRY, cause ? cause : "cannot write");
	free(cause);
}

/* --- the phases ------------------------------------------------------------------------------------------------ */

static void
crawl_run(struct step *st, enum tga_service svc)
{
	struct tga *t = step_job(st);
	struct crawl *c;
	const char *cur = step_cursor(st);
	int i;

	if (cs_true(st, "no_change")) {
		step_set_status(st, "complete", "skipped: no change upstream since the last complete cycle");
		step_done(st, STEP_PHASE_DONE);
		return;
	}
	c = xcalloc(1, sizeof *c);
	c->st = st;
	c->t = t;
	c->svc = svc;
	c->t_start = mono_now();
	c->size = t->set.rest_page_size;
	c->nlanes = t->rest_lanes < 1 ? 1 : t->rest_lanes > MAX_LANES ? MAX_LANES : t->rest_lanes;
	for (i = 0; i < c->nlanes; i++)
		c->lanes[i].c = c;
	if (strcmp(cur, "done") == 0) {
		crawl_free(c);
		step_done(st, STEP_PHASE_DONE);
		return;
	}
	if (cur[0] == '\0')
		c->ti = svc == SVC_TRAINING ? next_type(c, 0) : 0;
	else if (!parse_cursor(c, cur)) {
		crawl_fail(c, STEP_FATAL, "phase cursor is not understood: start a new cycle with "
		    "`syncctl trigger tga-sync --full`");
		return;
	}
	if (c->ti >= NCRAWL) {
		step_set_cursor(st, "done");
		crawl_free(c);
		step_done(st, STEP_PHASE_DONE);
		return;
	}
	crawl_search(c);
}

void
phase_rest_training_run(struct step *st)
{
	crawl_run(st, SVC_TRAINING);
}

void
phase_rest_orgs_run(struct step *st)
{
	crawl_run(st, SVC_ORGANISATION);
}

void
phase_rest_sweep_run(struct step *st)
{
	/* The REST API has no tombstones; the crawl pages found what is gone (by its own 404) as they went. */
	step_set_status(st, "complete", cs_true(st, "no_change") ? "skipped: no change upstream since the last "
	    "complete cycle" : "nothing to do: the REST crawl soft-deletes what it no longer finds, page by page");
	step_done(st, STEP_PHASE_DONE);
}
