/* syncctl status [DAEMON]: what each daemon is doing now (asks the daemons over their sockets). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sctl.h"

static void
print_human(const char *name, const cJSON *r)
{
	const cJSON *state = cJSON_GetObjectItem(r, "state"), *run = cJSON_GetObjectItem(r, "run");
	const cJSON *cur = cJSON_GetObjectItem(r, "cursor"), *v;
	char n1[32], n2[32];

	if (cJSON_IsObject(run)) {
		printf("%-13s running  %s: phase %s (%d/%d), %s in, %s out, %.0f/s, %.0fs%s\n", name,
		    cJSON_GetObjectItem(run, "run_id")->valuestring, cJSON_GetObjectItem(run, "phase")->valuestring,
		    cJSON_GetObjectItem(run, "phase_index")->valueint, cJSON_GetObjectItem(run, "phases")->valueint,
		    fmt_count((long long)cJSON_GetObjectItem(run, "records_in")->valuedouble, n1, sizeof n1),
		    fmt_count((long long)cJSON_GetObjectItem(run, "records_out")->valuedouble, n2, sizeof n2),
		    cJSON_GetObjectItem(run, "rate")->valuedouble, cJSON_GetObjectItem(run, "elapsed")->valuedouble,
		    cJSON_GetObjectItem(run, "stopping") ? " (stopping)" : "");
	} else {
		printf("%-13s %-8s last run: %s", name, cJSON_IsString(state) ? state->valuestring : "?",
		    (v = cJSON_GetObjectItem(r, "last_status")) ? v->valuestring : "?");
		if ((v = cJSON_GetObjectItem(r, "last_error")) != NULL)
			printf(" (%s)", v->valuestring);
		if (cJSON_IsObject(cur) && (v = cJSON_GetObjectItem(cur, "cycle_phase")) != NULL &&
		    strcmp(v->valuestring, "done") != 0)
			printf("; unfinished cycle at %s '%s' (the next trigger resumes it)", v->valuestring,
			    cJSON_GetObjectItem(cur, "phase_cursor")->valuestring);
		printf("\n");
	}
	/* Daemon-specific lines (e.g. missed runs, QuickBooks connection). */
	if ((v = cJSON_GetObjectItem(r, "notes")) != NULL && cJSON_IsArray(v)) {
		const cJSON *note;

		cJSON_ArrayForEach(note, v)
			if (cJSON_IsString(note))
				printf("%-13s   %s\n", "", note->valuestring);
	}
}

static int
cmd_status_exec(struct sctl *s, int argc, char **argv)
{
	const struct sctl_daemon *one = NULL, *d;
	cJSON *all = cJSON_CreateArray(), *reply;
	int rc = SCTL_OK, ch;

	static const struct option longopts[] = { { "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch != 'j')
			return SCTL_USAGE;
		s->json = true;
	}
	if (optind < argc) {
		if ((one = sctl_find_daemon(argv[optind])) == NULL) {
			fprintf(stderr, "syncctl: unknown daemon '%s'\n", argv[optind]);
			cJSON_Delete(all);
			return SCTL_USAGE;
		}
	}
	for (d = one ? one : sctl_daemons; d->name != NULL; d++) {
		struct sctl_conn *c;
		int ec = 0;

		if (one == NULL && d->hidden)
			continue;	/* the test daemon: only when named */
		if ((c = sctl_connect(s, d->name, &ec)) == NULL) {
			cJSON *o = cJSON_CreateObject();

			cJSON_AddStringToObject(o, "daemon", d->name);
			cJSON_AddStringToObject(o, "state", ec == SCTL_DENIED ? "denied" : "not running");
			cJSON_AddItemToArray(all, o);
			if (!s->json)
				printf("%-13s %s\n", d->name, ec == SCTL_DENIED ? "permission denied" : "not running");
			if (one)
				rc = ec;
		} else {
			if (sctl_send(c, "status", NULL) == 0 && (reply = sctl_recv(c, 30000)) != NULL) {
				if (cJSON_IsTrue(cJSON_GetObjectItem(reply, "ok"))) {
					cJSON *res = cJSON_DetachItemFromObject(reply, "result");

					if (!s->json)
						print_human(d->name, res);
					cJSON_AddItemToArray(all, res);
				} else if (one)
					rc = sctl_reply_error(d->name, reply);
				cJSON_Delete(reply);
			} else if (one)
				rc = SCTL_UNREACHABLE;
			sctl_close(c);
		}
		if (one)
			break;
	}
	if (s->json)
		print_json(one ? cJSON_GetArrayItem(all, 0) : all);
	cJSON_Delete(all);
	return rc;
}

const struct sctl_cmd sctl_cmd_status = { "status", "[DAEMON] [--json]",
	"Show what each daemon (or one) is doing: the run in progress, or how the last one ended.", cmd_status_exec,
	NULL };
