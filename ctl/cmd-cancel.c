/* syncctl cancel DAEMON: stop the running run at the next step boundary (the next trigger resumes it). */
#include <stdio.h>

#include "sctl.h"

static int
cmd_cancel_exec(struct sctl *s, int argc, char **argv)
{
	const struct sctl_daemon *d;
	struct sctl_conn *c;
	cJSON *reply;
	int rc = SCTL_OK;

	if (argc != 2 || (d = sctl_find_daemon(argv[1])) == NULL) {
		fprintf(stderr, "usage: syncctl cancel DAEMON\n");
		return SCTL_USAGE;
	}
	if ((c = sctl_connect(s, d->name, &rc)) == NULL)
		return rc;
	if (sctl_send(c, "cancel", NULL) == -1 || (reply = sctl_recv(c, 30000)) == NULL) {
		sctl_close(c);
		return SCTL_UNREACHABLE;
	}
	if (cJSON_IsTrue(cJSON_GetObjectItem(reply, "ok")))
		printf("%s: cancelling %s at the next step boundary\n", d->name,
		    cJSON_GetObjectItem(cJSON_GetObjectItem(reply, "result"), "run_id")->valuestring);
	else
		rc = sctl_reply_error(d->name, reply);
	cJSON_Delete(reply);
	sctl_close(c);
	return rc;
}

const struct sctl_cmd sctl_cmd_cancel = { "cancel", "DAEMON",
	"Stop the running run at the next step boundary; the cursor stays, so the next trigger resumes it.",
	cmd_cancel_exec, NULL };
