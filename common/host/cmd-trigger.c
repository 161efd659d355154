/*
 * trigger: start a run (or resume the unfinished cycle).  args: "full" (start a new full cycle), "republish" (the
 * publish phase sends every row again: the cycle flag "republish", publish.h), "watch" (stream
 * this run's events to the caller: registered before the run starts, so a fast run cannot slip past), "trigger"
 * (timer|manual|catchup, default manual).  A trigger while a run is in progress answers already_running with that
 * run's id: there are never two runs of one job.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "cycle.h"
#include "daemon.h"
#include "xmalloc.h"

static enum ctl_retval
cmd_trigger_exec(struct ctl_client *c, const cJSON *args, char **cause)
{
	struct daemon *d = ctl_daemon(c);
	const cJSON *full = cJSON_GetObjectItemCaseSensitive(args, "full");
	const cJSON *republish = cJSON_GetObjectItemCaseSensitive(args, "republish");
	const cJSON *watch = cJSON_GetObjectItemCaseSensitive(args, "watch");
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(args, "trigger");
	const char *trigger = "manual";
	char run_id[128], by[128];
	cJSON *r;

	if (kind != NULL) {
		if (!cJSON_IsString(kind) || (strcmp(kind->valuestring, "manual") != 0 &&
		    strcmp(kind->valuestring, "timer") != 0 && strcmp(kind->valuestring, "catchup") != 0)) {
			xasprintf(cause, "\"trigger\" must be manual, timer or catchup");
			return CTL_ERROR;
		}
		trigger = kind->valuestring;
	}
	if (d->stopping) {
		ctl_reply_error(c, "stopping", "the daemon is stopping; trigger again once it is back", NULL);
		return CTL_DONE;
	}
	snprintf(by, sizeof by, "%s", strcmp(trigger, "timer") == 0 ? "timer" : ctl_peer_name(c));
	/*
	 * The reply goes out before any event, and watching starts right after it: the run's first step is only
	 * scheduled on the loop, so nothing after run_start (which the reply stands for) can be missed.
	 */
	if (cJSON_IsTrue(republish))
		cycle_set_trigger_flag(d->cycle, "republish");
	switch (cycle_trigger(d->cycle, trigger, by, cJSON_IsTrue(full), run_id, sizeof run_id, cause)) {
	case TRIGGER_STARTED:
		r = cJSON_CreateObject();
		cJSON_AddStringToObject(r, "run_id", run_id);
		cJSON_AddBoolToObject(r, "watching", cJSON_IsTrue(watch));
		ctl_reply(c, r);
		ctl_set_watching(c, cJSON_IsTrue(watch));
		return CTL_DONE;
	case TRIGGER_ALREADY_RUNNING:
		r = cJSON_CreateObject();
		cJSON_AddStringToObject(r, "run_id", run_id);
		cJSON_AddBoolToObject(r, "watching", cJSON_IsTrue(watch));
		{
			char msg[256];

			snprintf(msg, sizeof msg, "already running: %s is in progress", run_id);
			ctl_reply_error(c, "already_running", msg, r);
		}
		ctl_set_watching(c, cJSON_IsTrue(watch));
		return CTL_DONE;
	case TRIGGER_ERROR:
	default:
		return CTL_ERROR;
	}
}

const struct ctl_cmd ctl_cmd_trigger = { "trigger",
	"{\"full\":bool, \"republish\":bool, \"watch\":bool, \"trigger\":\"manual|timer|catchup\"}",
	cmd_trigger_exec };
