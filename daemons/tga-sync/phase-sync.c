/*
 * sync_training and sync_orgs: walk [from, to) of the plan in modified-date windows, page by page; fetch the
 * details of what changed (GetDetails, max_in_flight at a time, min_interval apart); write a page per step.
 *
 * Cursor (tga_sync_cursor.phase_cursor), committed with each page's rows:
 *     "w=<window start>+<window seconds> p=<page> n=<Count seen on page 1>"      e.g.
 *     "w=2026-01-04T23:00:00Z+86400 p=2 n=431"
 *  or "refetch" while the codes carried over from the last cycle are fetched.
 * A resume repeats at most the page that was in flight.
 *
 * Windows.  A window is [start, min(start + length, to)).  The length starts at `window` (a day); after a window
 * with fewer matches than a quarter page it doubles (up to max_window), after one with more than four pages it
 * halves: the first cycle walks years of sparse history in a few hundred searches, a weekly cycle in a day or two.
 * Empty windows cost no commit: a step searches on (up to 64 windows) until it finds work.  If a request then fails
 * for good (after the HTTP layer's retries), the empty windows are committed as progress before the step retry, so
 * that the retry starts at the window that failed instead of searching them all again.
 *
 * Paging is stable because every window ends in the past (by the server's own clock): records can only leave a
 * window (when changed again), never enter it.  A record leaving shifts later records one place towards page 1,
 * which would hide one behind a page already read; so when Count on a later page differs from page 1's, the window
 * is read again from page 1 (at most 5 times; the upserts make re-reading free).
 *
 * Unchanged records (the search's UpdatedDate equals the stored one) are not fetched again, except on --full
 * cycles: an incremental cycle with nothing changed makes only search requests.
 */
#include <errno.h>
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
#include "source.h"
#include "stage.h"
#include "store.h"
#include "tga.h"
#include "tgatime.h"
#include "timeutil.h"
#include "xmalloc.h"

#define MAX_EMPTY_WINDOWS 64
#define MAX_RESTARTS 5

struct sync {
	struct step *st;
	struct tga *t;
	enum tga_service svc;
	int64_t to;
	int64_t wstart, wlen;		/* ticks, seconds */
	int64_t wstart0;		/* the window the step started at */
	int empty;			/* empty windows searched in this step */
	int page;
	int64_t count;			/* Count from page 1 of the window, -1 before */
	int restarts;
	int searches;
	bool refetch;
	int refetch_n;
	struct src_page pg;
	struct stage *stage;
	int pending;
	struct src_error err;
	int64_t requested, skipped;
	double t_start;			/* for the debug log: where a step's time goes */
};

static void search(struct sync *);
static void write_page(struct sync *);

static const char *
svc_key(enum tga_service svc)
{
	return svc == SVC_TRAINING ? "training" : "organisation";
}

static const char *
crash_name(enum tga_service svc)
{
	return svc == SVC_TRAINING ? "tga_training_written" : "tga_orgs_written";
}

static void
sync_free(struct sync *y)
{
	src_page_clear(&y->pg);
	stage_free(y->stage);
	free(y);
}

static int64_t
wend(const struct sync *y)
{
	int64_t e = y->wstart + y->wlen * TICKS_PER_SEC;

	return e < y->to ? e : y->to;
}

/* "w=<window start>+<its length in seconds> p=<page> n=<the window's count, -1 before its first search>". */
static void
set_cursor(struct sync *y)
{
	struct ckv_builder b;
	char t[TICKS_LEN], w[TICKS_LEN + 32];

	snprintf(w, sizeof w, "%s+%lld", ticks_format(y->wstart, t), (long long)y->wlen);
	ckv_init(&b);
	ckv_put(&b, "w", w);
	ckv_put_i64(&b, "p", y->page);
	ckv_put_i64(&b, "n", y->count);
	step_set_cursor(y->st, "%s", ckv_str(&b));
}

static bool
parse_cursor(struct sync *y, const struct ckv *c)
{
	const char *w = ckv_get(c, "w"), *plus;
	char *end;
	long long len;
	int64_t n;
	int page;
	bool zone;

	if (ckv_count(c) != 3 || w == NULL || (plus = strchr(w, '+')) == NULL || (size_t)(plus - w) >= TICKS_LEN + 8 ||
	    !ticks_parse(w, (size_t)(plus - w), &y->wstart, &zone))
		return false;
	errno = 0;
	len = strtoll(plus + 1, &end, 10);
	if (errno != 0 || end == plus + 1 || *end != '\0' || len < 1 || !ckv_get_int(c, "p", 1, INT_MAX, &page) ||
	    !ckv_get_i64(c, "n", -1, INT64_MAX, &n))
		return false;
	y->wlen = len;
	y->page = page;
	y->count = n;
	return true;
}

/* The window is done: move on, sizing the next one by how full this one was. */
static void
next_window(struct sync *y, int64_t count)
{
	const struct tga_settings *set = &y->t->set;

	y->wstart = wend(y);
	if (count < set->page_size / 4 && y->wlen < set->max_window_s)
		y->wlen = y->wlen * 2 < set->max_window_s ? y->wlen * 2 : set->max_window_s;
	else if (count > 4 * (int64_t)set->page_size && y->wlen > set->window_s)
		y->wlen = y->wlen / 2 > set->window_s ? y->wlen / 2 : set->window_s;
	y->page = 1;
	y->count = -1;
	y->restarts = 0;
}

/*
 * A transient failure after empty windows: commit them as progress (the cursor moves to the start of the window
 * whose request failed, page 1) and go on with another step, which asks again.  Each such commit moves the cursor
 * forward, and a step that made no progress fails as before, so a persistent failure still ends in the step retries.
 * Returns false (the caller fails the step) if there is nothing to keep.
 */
static bool
keep_empty_windows(struct sync *y, const struct src_error *e)
{
	struct step *st = y->st;
	struct store s;
	char *cause = NULL, a[TICKS_LEN];

	if (e->status != SRC_TRANSIENT || y->refetch || y->wstart == y->wstart0)
		return false;
	if (store_begin(&s, st, y->t, &cause) == -1) {
		log_warnx("%s: cannot keep the empty windows searched: %s", step_phase(st), cause);
		free(cause);
		store_end(&s);
		return false;
	}
	y->page = 1;
	y->count = -1;
	set_cursor(y);
	step_count(st, 0, 0);
	step_detail_add(st, "search_requests", y->searches);
	step_detail_add(st, "details_requests", y->requested);
	step_detail_add(st, "empty_windows_kept", y->empty);
	log_warnx("%s: %s; the %d empty window%s searched before it are kept, the next step asks again from %s",
	    step_phase(st), e->msg, y->empty, y->empty == 1 ? "" : "s", ticks_format(y->wstart, a));
	store_end(&s);
	sync_free(y);
	step_done(st, STEP_MORE);
	return true;
}

/* --- GetDetails ---------------------------------------------------------------------------------------------- */

static void
details_done(void *arg, const struct src_error *e)
{
	struct sync *y = arg;

	/* Keep the most telling error: credentials over a fault over a timeout over a cancel. */
	if (src_status_rank(e->status) > src_status_rank(y->err.status))
		y->err = *e;
	if (--y->pending > 0)
		return;
	if (y->err.status != SRC_OK) {
		struct step *st = y->st;
		struct src_error err = y->err;

		if (keep_empty_windows(y, &err))
			return;
		sync_free(y);
		phase_fail(st, &err);
		return;
	}
	write_page(y);
}

static void
fetch(struct sync *y, const char *code, int item)
{
	y->pending++;
	y->requested++;
	src_get_details(y->t->src, step_http(y->st), y->svc, code, item, y->stage, details_done, y);
}

static void
fetch_page(struct sync *y)
{
	struct daemon *d = step_daemon(y->st);
	bool skip = y->t->set.skip_unchanged && !step_full(y->st);
	char stored[TICKS_LEN], *cause = NULL;
	size_t i;

	/* Hold a count while queuing, so that no answer can complete the step before all are queued. */
	y->pending = 1;
	for (i = 0; i < y->pg.n; i++) {
		const struct src_item *it = &y->pg.items[i];

		if (skip && it->updated[0] != '\0') {
			if (store_stored_updated(d->db, y->svc, it->code, stored, sizeof stored, &cause) == -1) {
				log_warnx("%s", cause);
				xfree(&cause);
			} else if (strcmp(stored, it->updated) == 0) {
				y->skipped++;
				continue;
			}
		}
		fetch(y, it->code, (int)i);
	}
	{
		struct src_error ok;

		memset(&ok, 0, sizeof ok);
		details_done(y, &ok);
	}
}

/* --- search -------------------------------------------------------------------------------------------------- */

static void
search_done(void *arg, const struct src_error *e)
{
	struct sync *y = arg;
	struct step *st = y->st;
	const struct tga_settings *set = &y->t->set;
	char a[TICKS_LEN], b[TICKS_LEN];

	if (e->status != SRC_OK) {
		if (keep_empty_windows(y, e))
			return;
		sync_free(y);
		phase_fail(st, e);
		return;
	}
	if (y->page > 1 && y->pg.count != y->count && y->restarts < MAX_RESTARTS) {
		log_info("%s window [%s, %s): Count went from %lld to %lld while paging: reading it again from page 1",
		    svc_key(y->svc), ticks_format(y->wstart, a), ticks_format(wend(y), b), (long long)y->count,
		    (long long)y->pg.count);
		step_detail_add(st, "window_restarts", 1);
		y->restarts++;
		y->page = 1;
		y->count = -1;
		search(y);
		return;
	}
	if (y->page > 1 && y->pg.count != y->count)
		log_warnx("%s window [%s, %s): Count keeps changing (now %lld) after %d re-reads; going on: a record "
		    "may be missed until it changes again", svc_key(y->svc), ticks_format(y->wstart, a),
		    ticks_format(wend(y), b), (long long)y->pg.count, y->restarts);
	y->count = y->pg.count;
	if (y->count == 0 && y->pg.returned == 0) {
		/* An empty window: nothing to write, go on searching (bounded) before committing the cursor. */
		next_window(y, 0);
		y->empty++;
		if (y->wstart >= y->to || y->searches >= MAX_EMPTY_WINDOWS || step_stopping(st)) {
			write_page(y);
			return;
		}
		search(y);
		return;
	}
	if (y->pg.returned > set->page_size) {
		struct src_error err;

		memset(&err, 0, sizeof err);
		err.status = SRC_TRANSIENT;
		snprintf(err.msg, sizeof err.msg, "TGA %s.SearchByModifiedDate returned %d results for a page of %d",
		    svc_key(y->svc), y->pg.returned, set->page_size);
		sync_free(y);
		phase_fail(st, &err);
		return;
	}
	fetch_page(y);
}

static void
search(struct sync *y)
{
	y->searches++;
	src_search_modified(y->t->src, step_http(y->st), y->svc, y->wstart, wend(y), y->page, y->t->set.page_size,
	    &y->pg, search_done, y);
}

/* --- write --------------------------------------------------------------------------------------------------- */

static cJSON *
refetch_list(struct step *st, enum tga_service svc)
{
	cJSON *rf = cJSON_GetObjectItemCaseSensitive(step_cycle_state(st), "refetch"), *list;

	if (rf == NULL || (list = cJSON_GetObjectItemCaseSensitive(rf, svc_key(svc))) == NULL || !cJSON_IsArray(list))
		return NULL;
	return list;
}

static void
write_page(struct sync *y)
{
	struct step *st = y->st;
	struct store s;
	char *cause = NULL;
	size_t i;
	int k;
	bool done = false;

	double t_write = mono_now();

	if (store_begin(&s, st, y->t, &cause) == -1)
		goto fail;
	for (k = 0; k < y->pg.rejects.n; k++)
		step_reject(st, 1, "%s", k < SRC_MAX_REJECT_MSGS ? y->pg.rejects.msg[k] : "(more of the same)");
	for (i = 0; i < y->stage->n; i++) {
		const struct stage_entity *e = &y->stage->ents[i];
		int rc;

		if (y->svc == SVC_TRAINING)
			rc = store_component(&s, y->stage, e, e->item >= 0 ? &y->pg.items[e->item] : NULL, &cause);
		else
			rc = store_rto(&s, y->stage, e, &cause);
		if (rc == -1)
			goto fail;
	}
	crashpoint(crash_name(y->svc));
	step_count(st, y->refetch ? y->refetch_n : y->pg.returned, s.changed);
	step_detail_add(st, "search_requests", y->searches);
	step_detail_add(st, "details_requests", y->requested);
	step_detail_add(st, "unchanged_skipped", y->skipped);
	if (y->svc == SVC_ORGANISATION)
		step_detail_add(st, "scope_rows_written", s.scope_rows_written);

	if (y->refetch) {
		cJSON *list = refetch_list(st, y->svc);

		for (k = 0; k < y->refetch_n && list != NULL; k++)
			cJSON_DeleteItemFromArray(list, 0);
		if (list != NULL && cJSON_GetArraySize(list) > 0)
			step_set_cursor(st, "refetch");
		else
			set_cursor(y);		/* the first window of the plan */
	} else if (y->count > 0 && (int64_t)y->page * y->t->set.page_size < y->count) {
		y->page++;
		set_cursor(y);
	} else {
		/* Count -1: the window was empty and search_done already moved past it (next_window); moving again would
		 * skip the next window unsearched. */
		if (y->count != -1)
			next_window(y, y->count);
		set_cursor(y);
		done = y->wstart >= y->to;
	}
	log_debug("%s: %d search%s, %lld GetDetails in %.3fs; %zu record%s written in %.3fs", step_phase(st),
	    y->searches, y->searches == 1 ? "" : "es", (long long)y->requested, t_write - y->t_start, y->stage->n,
	    y->stage->n == 1 ? "" : "s", mono_now() - t_write);
	store_end(&s);
	sync_free(y);
	{
		double t_commit = mono_now();

		step_done(st, done ? STEP_PHASE_DONE : STEP_MORE);
		log_debug("commit in %.3fs", mono_now() - t_commit);
	}
	return;
fail:
	store_end(&s);
	sync_free(y);
	step_fail(st, STEP_RETRY, "%s", cause ? cause : "cannot write");
	free(cause);
}

/* --- the phase ----------------------------------------------------------------------------------------------- */

static void
sync_run(struct step *st, enum tga_service svc)
{
	struct tga *t = step_job(st);
	struct sync *y = xcalloc(1, sizeof *y);
	const char *cur = step_cursor(st);
	char *cause = NULL;
	int64_t from;
	cJSON *list;
	struct ckv cc;
	bool parsed;

	y->st = st;
	y->t = t;
	y->svc = svc;
	y->count = -1;
	y->t_start = mono_now();
	if (!plan_get(st, "from", &from) || !plan_get(st, "to", &y->to)) {
		free(y);
		step_fail(st, STEP_FATAL, "the cycle has no plan (cycle_state lacks from/to): start a new cycle with "
		    "`syncctl trigger tga-sync --full`");
		return;
	}
	if ((y->stage = stage_new(t->spool_dir, &cause)) == NULL) {
		free(y);
		step_fail(st, STEP_RETRY, "%s", cause);
		free(cause);
		return;
	}
	parsed = ckv_parse(&cc, cur) == 0;
	if (parsed && (ckv_count(&cc) == 0 || (ckv_count(&cc) == 1 && ckv_has_word(&cc, "refetch")))) {
		y->wstart = from;
		y->wlen = t->set.window_s;
		y->page = 1;
		list = refetch_list(st, svc);
		if (list != NULL && cJSON_GetArraySize(list) > 0) {
			const cJSON *it;

			y->refetch = true;
			y->pending = 1;
			cJSON_ArrayForEach(it, list) {
				if (y->refetch_n >= t->set.page_size)
					break;
				y->refetch_n++;
				if (cJSON_IsString(it) && tga_code_valid(it->valuestring, strlen(it->valuestring)))
					fetch(y, it->valuestring, -1);
			}
			log_info("%s: fetching %d record%s again that the last cycle could not read whole", step_phase(st),
			    y->refetch_n, y->refetch_n == 1 ? "" : "s");
			{
				struct src_error ok;

				memset(&ok, 0, sizeof ok);
				details_done(y, &ok);
			}
			return;
		}
	} else if (!parsed || !parse_cursor(y, &cc)) {
		sync_free(y);
		step_fail(st, STEP_FATAL, "phase cursor '%s' is not understood: start a new cycle with "
		    "`syncctl trigger tga-sync --full`", cur);
		return;
	}
	if (y->wstart >= y->to) {
		set_cursor(y);
		sync_free(y);
		step_done(st, STEP_PHASE_DONE);
		return;
	}
	y->wstart0 = y->wstart;
	search(y);
}

void
phase_training_run(struct step *st)
{
	sync_run(st, SVC_TRAINING);
}

void
phase_orgs_run(struct step *st)
{
	sync_run(st, SVC_ORGANISATION);
}
