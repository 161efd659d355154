/*
 * syncctl trigger DAEMON [--full] [--republish] [--wait]: start a run (resuming an unfinished cycle).  --republish
 * makes the publish phase send every row to D1 again.  With --wait it follows the run to its end (a live progress
 * line on a terminal) and exits with the run's result.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sctl.h"

static int
result_code(const char *status)
{
	if (strcmp(status, "complete") == 0)
		return SCTL_OK;
	if (strcmp(status, "partial") == 0)
		return SCTL_PARTIAL;
	if (strcmp(status, "cancelled") == 0)
		return SCTL_CANCELLED;
	if (strcmp(status, "degraded") == 0)
		return SCTL_DEGRADED;
	return SCTL_FAILED;
}

static void
progress_line(bool tty, const char *daemon, const cJSON *d)
{
	char n1[32], n2[32];
	double el = cJSON_GetObjectItem(d, "elapsed")->valuedouble;

	printf("%s%s: %s (%d/%d)  %s in  %s out  %.0f/s  %02d:%02d:%02d%s", tty ? "\r\033[K" : "", daemon,
	    cJSON_GetObjectItem(d, "phase")->valuestring, cJSON_GetObjectItem(d, "phase_index")->valueint,
	    cJSON_GetObjectItem(d, "phases")->valueint,
	    fmt_count((long long)cJSON_GetObjectItem(d, "records_in")->valuedouble, n1, sizeof n1),
	    fmt_count((long long)cJSON_GetObjectItem(d, "records_out")->valuedouble, n2, sizeof n2),
	    cJSON_GetObjectItem(d, "rate")->valuedouble, (int)(el / 3600), (int)fmod(el / 60, 60), (int)fmod(el, 60),
	    tty ? "" : "\n");
	fflush(stdout);
}

/* Follow events until our run ends. */
static int
follow(struct sctl_conn *c, const char *daemon, const char *run_id)
{
	bool tty = isatty(STDOUT_FILENO);
	const cJSON *ev, *data, *rid, *status, *err;
	cJSON *msg;
	int rc;

	for (;;) {
		if ((msg = sctl_recv(c, -1)) == NULL) {
			fprintf(stderr, "%ssyncctl: lost the connection to %s before the run ended (did it stop?)\n",
			    tty ? "\n" : "", daemon);
			return SCTL_UNREACHABLE;
		}
		ev = cJSON_GetObjectItem(msg, "event");
		data = cJSON_GetObjectItem(msg, "data");
		rid = cJSON_GetObjectItem(data, "run_id");
		if (!cJSON_IsString(ev) || !cJSON_IsString(rid) || strcmp(rid->valuestring, run_id) != 0) {
			cJSON_Delete(msg);
			continue;
		}
		if (strcmp(ev->valuestring, "progress") == 0) {
			if (tty)
				progress_line(tty, daemon, data);
		} else if (strcmp(ev->valuestring, "phase") == 0 || strcmp(ev->valuestring, "run_start") == 0) {
			if (tty)
				progress_line(tty, daemon, data);
			else
				printf("%s: phase %s\n", daemon, cJSON_GetObjectItem(data, "phase")->valuestring);
		} else if (strcmp(ev->valuestring, "retry") == 0) {
			printf("%s%s: %s: step failed, retry %d in %.0fs: %s\n", tty ? "\r\033[K" : "", daemon,
			    cJSON_GetObjectItem(data, "phase")->valuestring, cJSON_GetObjectItem(data, "attempt")->valueint,
			    cJSON_GetObjectItem(data, "delay")->valuedouble,
			    cJSON_GetObjectItem(data, "error")->valuestring);
		} else if (strcmp(ev->valuestring, "run_end") == 0) {
			char n1[32], n2[32];

			status = cJSON_GetObjectItem(data, "status");
			err = cJSON_GetObjectItem(data, "error");
			printf("%s%s: run %s %s after %.0fs: %s in, %s out%s%s\n", tty ? "\r\033[K" : "", daemon, run_id,
			    status->valuestring, cJSON_GetObjectItem(data, "elapsed")->valuedouble,
			    fmt_count((long long)cJSON_GetObjectItem(data, "records_in")->valuedouble, n1, sizeof n1),
			    fmt_count((long long)cJSON_GetObjectItem(data, "records_out")->valuedouble, n2, sizeof n2),
			    cJSON_IsString(err) ? "\n  " : "", cJSON_IsString(err) ? err->valuestring : "");
			rc = result_code(status->valuestring);
			cJSON_Delete(msg);
			return rc;
		}
		cJSON_Delete(msg);
	}
}

static int
cmd_trigger_exec(struct sctl *s, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "full", no_argument, NULL, 'F' },
		{ "republish", no_argument, NULL, 'R' },
		{ "wait", no_argument, NULL, 'w' },
		{ "trigger", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const struct sctl_daemon *d;
	bool full = false, wait = false, republish = false;
	const char *kind = NULL;
	struct sctl_conn *c;
	cJSON *args, *reply, *res;
	const cJSON *run;
	int ch, rc = SCTL_OK;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'F':
			full = true;
			break;
		case 'R':
			republish = true;
			break;
		case 'w':
			wait = true;
			break;
		case 't':
			kind = optarg;
			break;
		default:
			return SCTL_USAGE;
		}
	}
	if (optind + 1 != argc || (d = sctl_find_daemon(argv[optind])) == NULL) {
		fprintf(stderr, "usage: syncctl trigger DAEMON [--full] [--republish] [--wait]"
		    " [--trigger timer|manual|catchup]\n");
		return SCTL_USAGE;
	}
	if ((c = sctl_connect(s, d->name, &rc)) == NULL)
		return rc;
	args = cJSON_CreateObject();
	cJSON_AddBoolToObject(args, "full", full);
	if (republish)
		cJSON_AddBoolToObject(args, "republish", true);
	cJSON_AddBoolToObject(args, "watch", wait);
	if (kind != NULL)
		cJSON_AddStringToObject(args, "trigger", kind);
	if (sctl_send(c, "trigger", args) == -1 || (reply = sctl_recv(c, 30000)) == NULL) {
		sctl_close(c);
		return SCTL_UNREACHABLE;
	}
	if (cJSON_IsTrue(cJSON_GetObjectItem(reply, "ok"))) {
		res = cJSON_GetObjectItem(reply, "result");
		run = cJSON_GetObjectItem(res, "run_id");
		printf("%s: started run %s\n", d->name, run->valuestring);
	} else {
		const cJSON *code = cJSON_GetObjectItem(reply, "code");

		run = cJSON_GetObjectItem(reply, "run_id");
		if (wait && cJSON_IsString(code) && strcmp(code->valuestring, "already_running") == 0 &&
		    cJSON_IsString(run)) {
			printf("%s: already running: %s; following it\n", d->name, run->valuestring);
		} else {
			rc = sctl_reply_error(d->name, reply);
			if (rc == SCTL_ALREADY && cJSON_IsString(run))
				printf("%s\n", run->valuestring);
			cJSON_Delete(reply);
			sctl_close(c);
			return rc;
		}
	}
	fflush(stdout);
	if (wait)
		rc = follow(c, d->name, run->valuestring);
	cJSON_Delete(reply);
	sctl_close(c);
	return rc;
}

const struct sctl_cmd sctl_cmd_trigger = { "trigger", "DAEMON [--full] [--republish] [--wait]",
	"Start a run (resuming an unfinished cycle; --full starts a new full one; --republish sends every row to D1 "
	"again in the publish phase). --wait follows it to the end "
	"and exits with its result.",
	cmd_trigger_exec, NULL };
