/*
 * sweep_deletions: SearchDeletedByDeletedDate of both services over [del_from, to), page by page (the answer is a
 * bare array without Count: a page shorter than the page size is the last).  Each page's tombstones are recorded
 * and soft-delete the rows they name (store-deleted.c), in the page's step.
 *
 * Cursor: "training p=<page>" then "organisation p=<page>".
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursorkv.h"
#include "cycle.h"
#include "log.h"
#include "plan.h"
#include "source.h"
#include "store.h"
#include "tga.h"
#include "xmalloc.h"

struct sweep {
	struct step *st;
	struct tga *t;
	enum tga_service svc;
	int page;
	struct src_tombs tb;
};

static void
sweep_free(struct sweep *w)
{
	src_tombs_clear(&w->tb);
	free(w);
}

/* "training p=<page>" or "organisation p=<page>": the service and the page of tombstones to read next. */
static void
set_cursor(struct step *st, enum tga_service svc, int page)
{
	struct ckv_builder b;

	ckv_init(&b);
	ckv_word(&b, svc == SVC_TRAINING ? "training" : "organisation");
	ckv_put_i64(&b, "p", page);
	step_set_cursor(st, "%s", ckv_str(&b));
}

static void
sweep_done(void *arg, const struct src_error *e)
{
	struct sweep *w = arg;
	struct step *st = w->st;
	struct store s;
	char *cause = NULL;
	size_t i;
	int k;
	bool last_page, done = false;

	if (e->status != SRC_OK) {
		sweep_free(w);
		phase_fail(st, e);
		return;
	}
	if (store_begin(&s, st, w->t, &cause) == -1)
		goto fail;
	for (k = 0; k < w->tb.rejects.n; k++)
		step_reject(st, 1, "%s", k < SRC_MAX_REJECT_MSGS ? w->tb.rejects.msg[k] : "(more of the same)");
	for (i = 0; i < w->tb.n; i++)
		if (store_tombstone(&s, w->svc, &w->tb.items[i], &cause) == -1)
			goto fail;
	step_count(st, w->tb.returned, s.changed);
	last_page = w->tb.returned < w->t->set.page_size;
	if (!last_page)
		set_cursor(st, w->svc, w->page + 1);
	else if (w->svc == SVC_TRAINING)
		set_cursor(st, SVC_ORGANISATION, 1);
	else
		done = true;
	store_end(&s);
	sweep_free(w);
	step_done(st, done ? STEP_PHASE_DONE : STEP_MORE);
	return;
fail:
	store_end(&s);
	sweep_free(w);
	step_fail(st, STEP_RETRY, "%s", cause ? cause : "cannot write");
	free(cause);
}

void
phase_sweep_run(struct step *st)
{
	struct tga *t = step_job(st);
	struct sweep *w = xcalloc(1, sizeof *w);
	const char *cur = step_cursor(st);
	int64_t from, to;
	struct ckv c;

	w->st = st;
	w->t = t;
	w->svc = SVC_TRAINING;
	w->page = 1;
	if (!plan_get(st, "del_from", &from) || !plan_get(st, "to", &to)) {
		free(w);
		step_fail(st, STEP_FATAL, "the cycle has no plan (cycle_state lacks del_from/to): start a new cycle "
		    "with `syncctl trigger tga-sync --full`");
		return;
	}
	if (ckv_parse(&c, cur) == 0 && ckv_count(&c) == 2 && ckv_get(&c, "p") != NULL &&
	    (ckv_has_word(&c, "organisation") || ckv_has_word(&c, "training"))) {
		if (ckv_has_word(&c, "organisation"))
			w->svc = SVC_ORGANISATION;
		if (!ckv_get_int(&c, "p", 1, INT_MAX, &w->page))
			w->page = 1;
	} else if (cur[0] != '\0') {
		free(w);
		step_fail(st, STEP_FATAL, "phase cursor '%s' is not understood: start a new cycle with "
		    "`syncctl trigger tga-sync --full`", cur);
		return;
	}
	if (w->page < 1)
		w->page = 1;
	src_search_deleted(t->src, step_http(st), w->svc, from, to, w->page, t->set.page_size, &w->tb, sweep_done, w);
}
