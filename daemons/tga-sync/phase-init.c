/*
 * init: read the server's clock and choose what this cycle covers.
 *
 * The first cycle (or --full, or a corpus that has lost its rows) starts at the configured epoch; later cycles
 * start at the last complete cycle's high-water mark minus the overlap.  Everything ends at the server's time read
 * here: changes after it belong to the next cycle, so windows never move while they are paged through.  Times are
 * the server's, never ours, so our clock does not matter.  The codes the last cycle could not read whole are
 * moved from job_state into this cycle's plan, to be fetched first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cycle.h"
#include "daemon.h"
#include "log.h"
#include "plan.h"
#include "store.h"
#include "tga.h"
#include "tgatime.h"
#include "xmalloc.h"

struct init {
	struct step *st;
	int64_t now;
};

static bool
job_mark(struct step *st, const char *key, int64_t *ticks)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(step_job_state(st), key);
	bool zone;

	return cJSON_IsString(v) && ticks_parse(v->valuestring, strlen(v->valuestring), ticks, &zone);
}

static void
init_done(void *arg, const struct src_error *e)
{
	struct init *in = arg;
	struct step *st = in->st;
	struct tga *t = step_job(st);
	const struct tga_settings *set = &t->set;
	int64_t hwm, del_hwm, from, del_from, overlap = set->overlap_s * TICKS_PER_SEC;
	bool full = step_full(st), empty = false;
	char *cause = NULL, a[TICKS_LEN], b[TICKS_LEN], c[TICKS_LEN];
	cJSON *js = step_job_state(st), *cs = step_cycle_state(st), *rf;
	const char *why;

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
	if (full)
		why = "a full cycle was asked for";
	else if (!job_mark(st, "hwm", &hwm))
		why = "the first cycle";
	else if (empty)
		why = "rtopacks.db holds no TGA rows (new or replaced file)";
	else
		why = NULL;
	if (why != NULL) {
		from = del_from = set->epoch_ticks;
		cJSON_DeleteItemFromObjectCaseSensitive(cs, "read_all");
		cJSON_AddTrueToObject(cs, "read_all");
	} else {
		from = hwm - overlap;
		del_from = (job_mark(st, "del_hwm", &del_hwm) ? del_hwm : hwm) - overlap;
	}
	if (from > in->now)
		from = in->now;
	if (del_from > in->now)
		del_from = in->now;
	plan_set(st, "server_time", in->now);
	plan_set(st, "to", in->now);
	plan_set(st, "from", from);
	plan_set(st, "del_from", del_from);
	/* What the last cycle could not read whole is fetched first in this one. */
	cJSON_DeleteItemFromObjectCaseSensitive(cs, "refetch");
	if ((rf = cJSON_DetachItemFromObjectCaseSensitive(js, "refetch")) != NULL)
		cJSON_AddItemToObject(cs, "refetch", rf);
	log_info("cycle plan: changes from %s to %s (%s), tombstones from %s", ticks_format(from, a),
	    ticks_format(in->now, b), why != NULL ? why : "incremental", ticks_format(del_from, c));
	step_done(st, STEP_PHASE_DONE);
	free(in);
}

void
phase_init_run(struct step *st)
{
	struct tga *t = step_job(st);
	struct init *in = xcalloc(1, sizeof *in);

	in->st = st;
	src_server_time(t->src, step_http(st), &in->now, init_done, in);
}
