/* watch: stream the running run's events (phase, progress, retry) until it ends (run_end). */
#include "control.h"
#include "cycle.h"
#include "daemon.h"

static enum ctl_retval
cmd_watch_exec(struct ctl_client *c, const cJSON *args, char **cause)
{
	struct daemon *d = ctl_daemon(c);
	cJSON *r = cJSON_CreateObject();

	cycle_status(d->cycle, r);
	if (cycle_running(d->cycle))
		ctl_set_watching(c, true);
	ctl_reply(c, r);
	return CTL_DONE;
}

const struct ctl_cmd ctl_cmd_watch = { "watch", "", cmd_watch_exec };
