/*
 * Phase heartbeat: refresh the QuickBooks tokens once per cycle, so the rolling refresh token (about 100 days)
 * never dies unused.  heartbeat is true only when the new pair has been stored (oauth.c stores before it reports).
 *
 * invalid_grant: no retry loop.  Once confirmed (oauth.c asks once more, invalid_grant_recheck later: outages say
 * invalid_grant too), the connection becomes reconnect_required, the cycle's heartbeat is false, the run ends
 * degraded (phase-summary.c), and the operator gets "[qb-reconcile] QuickBooks needs reconnecting" once per dead
 * connection (keyed on the connection generation, so a reconnect that dies again is reported again).  The next
 * cycle tries again the same way.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cycle.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "qbr.h"
#include "timeutil.h"
#include "xmalloc.h"

struct hb {
	struct step *st;
	struct qbr *q;
};

static void
reconnect_alert(struct qbr *q, const char *error)
{
	char key[64], *body = NULL, *cause = NULL;

	snprintf(key, sizeof key, "connection-%" PRId64, q->have_tokens ? q->tok.generation : (int64_t)0);
	xasprintf(&body,
	    "QuickBooks refused qb-reconcile's refresh token, so invoices are not being pushed and the daily\n"
	    "heartbeat fails until QuickBooks is connected again.%s\n\n"
	    "What was seen: %s\n\n"
	    "To reconnect (a few minutes):\n"
	    "  1. syncctl qb connect\n"
	    "     prints a QuickBooks authorize URL; open it, sign in as a QuickBooks admin, choose the company and\n"
	    "     approve.\n"
	    "  2. The browser lands on the redirect URI with ...?code=C&state=S&realmId=R in its address; run\n"
	    "     syncctl qb connect --code C --realm R --state S\n"
	    "  3. syncctl trigger qb-reconcile --wait   (the heartbeat should now be true)\n\n"
	    "Pending invoices stay pending and are pushed by the first run after the reconnect.\n"
	    "State: syncctl qb status\n", q->grant_recheck_ms > 0 ? "  (An Intuit outage can refuse a token too, so the\n"
	    "refusal was confirmed by asking again later: [qb-reconcile] invalid_grant_recheck.)" : "",
	    error ? error : "invalid_grant");
	if (daemon_alert_once(q->d, "reconnect", key, "[qb-reconcile] QuickBooks needs reconnecting", body,
	    &cause) == -1) {
		log_warnx("cannot queue the reconnect alert: %s", cause);
		free(cause);
	}
	free(body);
}

static void
hard_expiry_alert(struct qbr *q)
{
	char key[64], when[ISO8601_LEN], subject[160], *body = NULL, *cause = NULL;
	time_t hard = q->tok.refresh_hard_expires_at;

	if (hard == 0 || hard - clock_now() > q->hard_warn_s)
		return;
	iso8601_fmt(hard, when);
	snprintf(key, sizeof key, "hard-expiry-%" PRId64 "-%.10s", q->tok.generation, when);
	snprintf(subject, sizeof subject, "[qb-reconcile] QuickBooks connection expires on %.10s: reconnect before then",
	    when);
	xasprintf(&body,
	    "The QuickBooks refresh token reaches Intuit's hard (5-year) limit at %s.  After that no refresh\n"
	    "works and QuickBooks must be connected again.  Reconnect before then:\n\n"
	    "  syncctl qb connect    (then follow its instructions)\n", when);
	if (daemon_alert_once(q->d, "hard_expiry", key, subject, body, &cause) == -1) {
		log_warnx("cannot queue the expiry alert: %s", cause);
		free(cause);
	}
	free(body);
}

static void
hb_done(enum refresh_result res, const char *error, void *arg)
{
	struct hb *hb = arg;
	struct step *st = hb->st;
	struct qbr *q = hb->q;
	char *cause = NULL;
	struct db *db;
	bool ok = res == REFRESH_OK;

	free(hb);
	if (ok)
		hard_expiry_alert(q);
	else if (res == REFRESH_INVALID_GRANT)
		reconnect_alert(q, error);
	if (!ok)
		log_warnx("heartbeat: %s", error ? error : "failed");
	if ((db = step_db(st, &cause)) == NULL || conn_heartbeat(db, ok, ok ? NULL : error, &cause) == -1) {
		step_fail(st, STEP_RETRY, "%s", cause);
		free(cause);
		return;
	}
	cstate_set_bool(st, "heartbeat", ok);
	if (!ok) {
		/* For the run's verdict and the mail (summary), which may run in a later, resumed run. */
		cJSON_DeleteItemFromObject(step_cycle_state(st), "heartbeat_error");
		cJSON_AddStringToObject(step_cycle_state(st), "heartbeat_error", error ? error : "heartbeat failed");
		step_set_status(st, "failed", error ? error : "heartbeat failed");
	}
	step_count(st, 1, ok ? 1 : 0);
	step_done(st, STEP_PHASE_DONE);
}

static void
hb_abort(void *arg)
{
	struct hb *hb = arg;
	struct step *st = hb->st;

	qbr_refresh_forget(hb->q, hb_done, hb);
	free(hb);
	step_fail(st, STEP_RETRY, "stopped");
}

void
phase_heartbeat(struct step *st)
{
	struct hb *hb = xcalloc(1, sizeof *hb);

	hb->st = st;
	hb->q = step_job(st);
	cstate_set_bool(st, "heartbeat", false);
	step_on_abort(st, hb_abort, hb);
	qbr_refresh(hb->q, true, NULL, hb_done, hb);
}
