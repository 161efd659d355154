/* cancel: stop the running run at the next step boundary; the cursor stays, so the next trigger resumes. */
#include "control.h"
#include "cycle.h"
#include "daemon.h"

static enum ctl_retval
cmd_cancel_exec(struct ctl_client *c, const cJSON *args, char **cause)
{
	struct daemon *d = ctl_daemon(c);
	cJSON *r;

	if (!cycle_running(d->cycle)) {
		ctl_reply_error(c, "not_running", "no run is in progress", NULL);
		return CTL_DONE;
	}
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "run_id", cycle_run_id(d->cycle));
	cycle_cancel(d->cycle, ctl_peer_name(c));
	ctl_reply(c, r);
	return CTL_DONE;
}

const struct ctl_cmd ctl_cmd_cancel = { "cancel", "", cmd_cancel_exec };
