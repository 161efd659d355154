/* status: what the daemon is doing, where its cursor is, how the last run ended. */
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "cycle.h"
#include "d1-mirror.h"
#include "daemon.h"
#include "monitor.h"
#include "outbox.h"

static enum ctl_retval
cmd_status_exec(struct ctl_client *c, const cJSON *args, char **cause)
{
	struct daemon *d = ctl_daemon(c);
	cJSON *r = cJSON_CreateObject();

	cJSON_AddStringToObject(r, "daemon", d->job->daemon);
	cJSON_AddStringToObject(r, "sync_type", d->job->sync_type);
	cJSON_AddStringToObject(r, "version", RTOPACKS_VERSION);
	cJSON_AddNumberToObject(r, "pid", (double)getpid());
	cJSON_AddStringToObject(r, "config", config_path(d->cfg));
	cJSON_AddBoolToObject(r, "stopping", d->stopping);
	cJSON_AddNumberToObject(r, "mail_in_flight", outbox_busy(d->outbox));
	cJSON_AddNumberToObject(r, "housekeeping_passes", d->housekeeping_passes);
	cycle_status(d->cycle, r);
	if (d->job->status != NULL)
		d->job->status(d, r);
	d1_mirror_status(d->mirror, r);
	monitor_status(d, r);	/* after the job's: it appends to the job's "notes" */
	ctl_reply(c, r);
	return CTL_DONE;
}

const struct ctl_cmd ctl_cmd_status = { "status", "", cmd_status_exec };
