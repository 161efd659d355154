/*
 * syncctl qb status | retry INVOICE_ID | connect [--code C --realm R --state S | --url REDIRECT_URL]
 *
 * status reads ops.db read-only (it works while qb-reconcile is stopped); retry and connect go through
 * qb-reconcile's control socket (qb-retry, qb-connect) and wait for the outcome.  Nothing printed here is ever a
 * token or the client secret: the daemon never sends them and the database never holds them.
 *
 * Also qb-reconcile's doctor check (the hooks at the end, linked into syncctl through CTL_SOURCES):
 *   quickbooks  the connection needs reconnecting, either refresh-token expiry is near or past, or the last
 *               heartbeat failed (ops.db table qb_connection)
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "health-qb.h"
#include "sctl.h"
#include "timeutil.h"
#include "xmalloc.h"

static const char SQL_CONN[] =
    "SELECT state, environment, realm_id, connection_generation, connected_at, access_expires_at,"
    " refresh_expires_at, refresh_hard_expires_at, last_refresh_at, last_heartbeat_at, last_heartbeat_ok,"
    " last_error, last_intuit_tid FROM qb_connection WHERE id = 1";
static const char SQL_COUNTS[] =
    "SELECT qb_sync_status, count(*) FROM billing_invoices GROUP BY qb_sync_status";
/* billing_source = d1: outcomes not yet written back to D1 (schema/ops/0006). */
static const char SQL_WRITEBACKS[] =
    "SELECT count(*), min(queued_at), max(attempts),"
    " (SELECT last_error FROM qb_d1_writeback WHERE last_error IS NOT NULL ORDER BY attempts DESC LIMIT 1),"
    " (SELECT mode FROM qb_d1_state WHERE id = 1) FROM qb_d1_writeback";
static const char SQL_ISSUES[] = "SELECT count(*) FROM qb_reconcile_issues WHERE resolved_at IS NULL";
static const char SQL_LAST[] =
    "SELECT run_id, status, summary, finished_at, error FROM sync_runs WHERE sync_type = 'qb_reconcile'"
    " ORDER BY started_at DESC, run_id DESC LIMIT 1";
/* The invoices that wait for the operator, with why (the reason says what to do). */
#define PROBLEMS_SHOWN 20
static const char SQL_PROBLEMS[] =
    "SELECT id, doc_number, qb_sync_status AS status, qb_attempts AS attempts, qb_last_error AS error"
    " FROM billing_invoices WHERE qb_sync_status IN ('failed', 'abandoned') ORDER BY id LIMIT ?";
static const char SQL_LAST_RESULT[] =
    "SELECT run_id, summary FROM sync_runs WHERE sync_type = 'qb_reconcile' AND summary IS NOT NULL"
    " ORDER BY started_at DESC, run_id DESC LIMIT 1";

static void
add_col(cJSON *o, sqlite3_stmt *st, int i)
{
	const char *name = sqlite3_column_name(st, i);

	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		cJSON_AddNullToObject(o, name);
	else if (sqlite3_column_type(st, i) == SQLITE_INTEGER)
		cJSON_AddNumberToObject(o, name, (double)sqlite3_column_int64(st, i));
	else
		cJSON_AddStringToObject(o, name, db_col_text(st, i));
}

static const char *
str_or(const cJSON *o, const char *key, const char *dflt)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);

	return cJSON_IsString(v) ? v->valuestring : dflt;
}

static int
qb_status(struct sctl *s)
{
	struct db *db;
	sqlite3_stmt *st;
	cJSON *out = cJSON_CreateObject(), *conn = cJSON_CreateObject(), *counts = cJSON_CreateObject(), *v;
	char *cause = NULL;
	int rc = SCTL_OK, i;
	static const char *const statuses[] = { "pending", "synced", "failed", "abandoned" };

	if ((db = sctl_open_ops(s, &rc)) == NULL) {
		cJSON_Delete(out);
		cJSON_Delete(conn);
		cJSON_Delete(counts);
		return rc;
	}
	if ((st = db_stmt(db, SQL_CONN, &cause)) == NULL) {
		fprintf(stderr, "syncctl: %s\n(has qb-reconcile ever started with this ops.db?)\n", cause);
		free(cause);
		db_close(db);
		cJSON_Delete(out);
		cJSON_Delete(conn);
		cJSON_Delete(counts);
		return SCTL_FAILED;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		for (i = 0; i < sqlite3_column_count(st); i++)
			add_col(conn, st, i);
	sqlite3_reset(st);
	for (i = 0; i < 4; i++)
		cJSON_AddNumberToObject(counts, statuses[i], 0);
	if ((st = db_stmt(db, SQL_COUNTS, &cause)) != NULL) {
		while (sqlite3_step(st) == SQLITE_ROW)
			cJSON_ReplaceItemInObject(counts, db_col_text(st, 0),
			    cJSON_CreateNumber((double)sqlite3_column_int64(st, 1)));
		sqlite3_reset(st);
	} else
		xfree(&cause);
	if ((st = db_stmt(db, SQL_ISSUES, &cause)) != NULL) {
		if (sqlite3_step(st) == SQLITE_ROW)
			cJSON_AddNumberToObject(out, "open_issues", (double)sqlite3_column_int64(st, 0));
		sqlite3_reset(st);
	} else
		xfree(&cause);
	if ((st = db_stmt(db, SQL_WRITEBACKS, &cause)) != NULL) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			cJSON *wb = cJSON_CreateObject();

			cJSON_AddStringToObject(wb, "billing_source", sqlite3_column_type(st, 4) == SQLITE_NULL ? "local" :
			    db_col_text(st, 4));
			cJSON_AddNumberToObject(wb, "waiting", (double)sqlite3_column_int64(st, 0));
			for (i = 1; i <= 3; i++)
				if (sqlite3_column_type(st, i) != SQLITE_NULL) {
					if (i == 2)
						cJSON_AddNumberToObject(wb, "attempts", (double)sqlite3_column_int64(st, i));
					else
						cJSON_AddStringToObject(wb, i == 1 ? "since" : "last_error", db_col_text(st, i));
				}
			cJSON_AddItemToObject(out, "d1_writeback", wb);
		}
		sqlite3_reset(st);
	} else
		xfree(&cause);
	cJSON_AddItemToObject(out, "connection", conn);
	cJSON_AddItemToObject(out, "invoices", counts);
	if ((st = db_stmt(db, SQL_LAST, &cause)) != NULL) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			cJSON *run = cJSON_CreateObject();

			cJSON_AddStringToObject(run, "run_id", db_col_text(st, 0));
			cJSON_AddStringToObject(run, "status", db_col_text(st, 1));
			add_col(run, st, 3);
			add_col(run, st, 4);
			cJSON_AddItemToObject(out, "last_run", run);
		}
		sqlite3_reset(st);
	} else
		xfree(&cause);
	if ((st = db_stmt(db, SQL_PROBLEMS, &cause)) != NULL) {
		cJSON *list = cJSON_CreateArray();

		db_bind_int(st, 1, PROBLEMS_SHOWN);
		while (sqlite3_step(st) == SQLITE_ROW) {
			cJSON *o = cJSON_CreateObject();

			for (i = 0; i < sqlite3_column_count(st); i++)
				add_col(o, st, i);
			cJSON_AddItemToArray(list, o);
		}
		sqlite3_reset(st);
		cJSON_AddItemToObject(out, "problems", list);
	} else
		xfree(&cause);
	if ((st = db_stmt(db, SQL_LAST_RESULT, &cause)) != NULL) {
		if (sqlite3_step(st) == SQLITE_ROW && (v = cJSON_Parse(db_col_text(st, 1))) != NULL) {
			cJSON_AddStringToObject(out, "last_result_run_id", db_col_text(st, 0));
			cJSON_AddItemToObject(out, "last_result", v);
		}
		sqlite3_reset(st);
	} else
		xfree(&cause);
	db_close(db);

	if (s->json) {
		print_json(out);
		cJSON_Delete(out);
		return SCTL_OK;
	}
	printf("QuickBooks connection: %s (%s, company %s, connection %.0f)\n", str_or(conn, "state", "?"),
	    str_or(conn, "environment", "-"), str_or(conn, "realm_id", "-"),
	    cJSON_IsNumber(v = cJSON_GetObjectItem(conn, "connection_generation")) ? v->valuedouble : 0);
	printf("  refresh token expires:  %s (rolling)\n", str_or(conn, "refresh_expires_at", "-"));
	printf("  refresh token hard cap: %s\n", str_or(conn, "refresh_hard_expires_at", "unknown"));
	printf("  access token expires:   %s\n", str_or(conn, "access_expires_at", "-"));
	printf("  last heartbeat:         %s (last good: %s)\n", str_or(conn, "last_heartbeat_at", "never"),
	    str_or(conn, "last_heartbeat_ok", "never"));
	if (cJSON_IsString(cJSON_GetObjectItem(conn, "last_error")))
		printf("  last error:             %s\n", str_or(conn, "last_error", ""));
	if (strcmp(str_or(conn, "state", ""), "connected") != 0)
		printf("  to connect:             syncctl qb connect\n");
	printf("Invoices: pending %.0f, synced %.0f, failed %.0f, abandoned %.0f; open reconcile issues %.0f\n",
	    cJSON_GetObjectItem(counts, "pending")->valuedouble, cJSON_GetObjectItem(counts, "synced")->valuedouble,
	    cJSON_GetObjectItem(counts, "failed")->valuedouble, cJSON_GetObjectItem(counts, "abandoned")->valuedouble,
	    cJSON_IsNumber(v = cJSON_GetObjectItem(out, "open_issues")) ? v->valuedouble : 0);
	if ((v = cJSON_GetObjectItem(out, "d1_writeback")) != NULL &&
	    strcmp(str_or(v, "billing_source", "local"), "d1") == 0) {
		const cJSON *n = cJSON_GetObjectItem(v, "waiting");

		printf("Billing in D1: ");
		if (cJSON_IsNumber(n) && n->valuedouble > 0)
			printf("%.0f write-back%s not yet delivered, waiting since %s%s%s%s\n", n->valuedouble,
			    n->valuedouble == 1 ? "" : "s", str_or(v, "since", "?"),
			    cJSON_IsString(cJSON_GetObjectItem(v, "last_error")) ? " (last error: " : "",
			    str_or(v, "last_error", ""), cJSON_IsString(cJSON_GetObjectItem(v, "last_error")) ? ")" : "");
		else
			printf("every write-back delivered\n");
	}
	if ((v = cJSON_GetObjectItem(out, "last_result")) != NULL) {
		char *j = cJSON_PrintUnformatted(v);

		printf("Last result (%s): %s\n", str_or(out, "last_result_run_id", "?"), j);
		free(j);
	}
	if ((v = cJSON_GetObjectItem(out, "problems")) != NULL && cJSON_GetArraySize(v) > 0) {
		const cJSON *p;

		printf("Invoices that need the operator (fix the cause, then syncctl qb retry ID):\n");
		cJSON_ArrayForEach(p, v) {
			const cJSON *id = cJSON_GetObjectItem(p, "id"), *att = cJSON_GetObjectItem(p, "attempts");

			printf("  %.0f  %s  %s, attempts %.0f\n      %s\n", cJSON_IsNumber(id) ? id->valuedouble : 0,
			    str_or(p, "doc_number", "?"), str_or(p, "status", "?"), cJSON_IsNumber(att) ? att->valuedouble : 0,
			    str_or(p, "error", "(no error recorded)"));
		}
		if (cJSON_GetArraySize(v) >= PROBLEMS_SHOWN)
			printf("  ... (the first %d)\n", PROBLEMS_SHOWN);
	}
	if ((v = cJSON_GetObjectItem(out, "last_run")) != NULL)
		printf("Last run: %s %s%s%s\n", str_or(v, "run_id", "?"), str_or(v, "status", "?"),
		    cJSON_IsString(cJSON_GetObjectItem(v, "error")) ? ": " : "", str_or(v, "error", ""));
	cJSON_Delete(out);
	return SCTL_OK;
}

/* One request to qb-reconcile, waiting up to wait_ms for the (possibly late) reply. */
static cJSON *
ask(struct sctl *s, const char *cmd, cJSON *args, int wait_ms, int *rc)
{
	struct sctl_conn *c;
	cJSON *reply;

	if ((c = sctl_connect(s, "qb-reconcile", rc)) == NULL) {
		cJSON_Delete(args);
		return NULL;
	}
	if (sctl_send(c, cmd, args) == -1 || (reply = sctl_recv(c, wait_ms)) == NULL) {
		sctl_close(c);
		*rc = SCTL_UNREACHABLE;
		return NULL;
	}
	sctl_close(c);
	if (!cJSON_IsTrue(cJSON_GetObjectItem(reply, "ok"))) {
		*rc = sctl_reply_error("qb-reconcile", reply);
		cJSON_Delete(reply);
		return NULL;
	}
	return reply;
}

static int
qb_retry(struct sctl *s, const char *idstr)
{
	cJSON *args = cJSON_CreateObject(), *reply;
	const cJSON *res;
	char *end;
	long long id = strtoll(idstr, &end, 10);
	int rc = SCTL_OK;

	if (*idstr == '\0' || *end != '\0' || id < 1) {
		fprintf(stderr, "syncctl: qb retry wants an invoice id (a positive number), not '%s'\n", idstr);
		cJSON_Delete(args);
		return SCTL_USAGE;
	}
	cJSON_AddNumberToObject(args, "invoice_id", (double)id);
	/* A push may wait out QuickBooks' throttling (60 s) and retries: allow it time. */
	if ((reply = ask(s, "qb-retry", args, 600000, &rc)) == NULL)
		return rc;
	res = cJSON_GetObjectItem(reply, "result");
	if (s->json)
		print_json(res);
	else {
		printf("invoice %lld (%s): %s", id, str_or(res, "doc_number", "?"), str_or(res, "status", "?"));
		if (cJSON_IsString(cJSON_GetObjectItem(res, "qb_invoice_id")))
			printf(" (QuickBooks invoice %s)", str_or(res, "qb_invoice_id", ""));
		printf("\n");
		if (cJSON_IsString(cJSON_GetObjectItem(res, "error")))
			printf("  %s\n", str_or(res, "error", ""));
		if (cJSON_IsString(cJSON_GetObjectItem(res, "note")))
			printf("  %s\n", str_or(res, "note", ""));
	}
	/* billing_source = d1: the reset in D1 is the outcome (the next run pushes the invoice). */
	rc = strcmp(str_or(res, "status", ""), "synced") == 0 || cJSON_IsTrue(cJSON_GetObjectItem(res, "reset_in_d1")) ?
	    SCTL_OK : SCTL_FAILED;
	cJSON_Delete(reply);
	return rc;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The value of a query parameter of url, percent-decoded (bounded), or NULL. */
static char *
url_param(const char *url, const char *name)
{
	const char *q = strchr(url, '?'), *p;
	size_t n = strlen(name);
	char *out, *o;

	if (q == NULL)
		return NULL;
	for (p = q + 1; *p != '\0'; p += strcspn(p, "&"), p += *p == '&') {
		if (strncmp(p, name, n) != 0 || p[n] != '=')
			continue;
		p += n + 1;
		out = o = xmalloc(strcspn(p, "&#") + 1);
		while (*p != '\0' && *p != '&' && *p != '#') {
			if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
				*o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
				p += 3;
			} else
				*o++ = *p == '+' ? ' ' : *p, p++;
		}
		*o = '\0';
		return out;
	}
	return NULL;
}

static int
qb_connect(struct sctl *s, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "code", required_argument, NULL, 'c' },
		{ "realm", required_argument, NULL, 'r' },
		{ "state", required_argument, NULL, 's' },
		{ "url", required_argument, NULL, 'u' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	char *code = NULL, *realm = NULL, *state = NULL;
	cJSON *args = cJSON_CreateObject(), *reply;
	const cJSON *res;
	int ch, rc = SCTL_OK;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			free(code);
			code = xstrdup(optarg);
			break;
		case 'r':
			free(realm);
			realm = xstrdup(optarg);
			break;
		case 's':
			free(state);
			state = xstrdup(optarg);
			break;
		case 'u':
			/* The address the browser landed on: ...?code=C&state=S&realmId=R */
			free(code);
			free(realm);
			free(state);
			code = url_param(optarg, "code");
			state = url_param(optarg, "state");
			realm = url_param(optarg, "realmId");
			break;
		case 'j':
			s->json = true;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc || ((code != NULL || realm != NULL || state != NULL) &&
	    (code == NULL || realm == NULL || state == NULL)))
		goto usage;
	if (code == NULL) {
		if ((reply = ask(s, "qb-connect", args, 30000, &rc)) == NULL)
			return rc;
		res = cJSON_GetObjectItem(reply, "result");
		if (s->json)
			print_json(res);
		else
			printf("Open this URL in a browser, sign in as a QuickBooks admin and approve the %s company:\n\n"
			    "  %s\n\n"
			    "The browser then lands on %s?code=...&state=...&realmId=...\n"
			    "Copy that address and run (before %s):\n\n"
			    "  syncctl qb connect --url 'ADDRESS'\n"
			    "or\n"
			    "  syncctl qb connect --code CODE --realm REALMID --state %s\n",
			    str_or(res, "environment", "?"), str_or(res, "url", "?"), str_or(res, "redirect_uri", "?"),
			    str_or(res, "expires_at", "?"), str_or(res, "state", "?"));
		cJSON_Delete(reply);
		return SCTL_OK;
	}
	cJSON_AddStringToObject(args, "code", code);
	cJSON_AddStringToObject(args, "realm", realm);
	cJSON_AddStringToObject(args, "state", state);
	free(code);
	free(realm);
	free(state);
	if ((reply = ask(s, "qb-connect", args, 120000, &rc)) == NULL)
		return rc;
	res = cJSON_GetObjectItem(reply, "result");
	if (s->json)
		print_json(res);
	else {
		printf("QuickBooks company %s connected (%s); refresh token expires %s, hard cap %s\n",
		    str_or(res, "realm_id", "?"), str_or(res, "environment", "?"), str_or(res, "refresh_expires_at", "?"),
		    str_or(res, "refresh_hard_expires_at", "unknown"));
		if (cJSON_IsString(cJSON_GetObjectItem(res, "warning")))
			printf("warning: %s\n", str_or(res, "warning", ""));
		printf("Next: syncctl trigger qb-reconcile --wait   (the heartbeat should be true)\n");
	}
	cJSON_Delete(reply);
	return SCTL_OK;
usage:
	free(code);
	free(realm);
	free(state);
	cJSON_Delete(args);
	fprintf(stderr, "usage: syncctl qb connect [--code C --realm R --state S | --url REDIRECT_URL]\n");
	return SCTL_USAGE;
}

static int
cmd_qb_exec(struct sctl *s, int argc, char **argv)
{
	int i;

	if (argc >= 2 && strcmp(argv[1], "--json") == 0) {
		s->json = true;
		argv++;
		argc--;
	}
	for (i = 2; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0 && strcmp(argv[1], "connect") != 0)
			s->json = true;
	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return qb_status(s);
	if (argc >= 3 && strcmp(argv[1], "retry") == 0)
		return qb_retry(s, argv[2]);
	if (argc >= 2 && strcmp(argv[1], "connect") == 0)
		return qb_connect(s, argc - 1, argv + 1);
	fprintf(stderr, "usage: syncctl qb status | retry INVOICE_ID | connect [--code C --realm R --state S | "
	    "--url REDIRECT_URL]\n");
	return SCTL_USAGE;
}

static const struct sctl_cmd cmd_qb = { "qb", "status | retry INVOICE_ID | connect [--code C --realm R --state S]",
	"QuickBooks: connection state, token expiries, last heartbeat and invoice counts (status); push a failed or "
	"abandoned invoice again at once and print the outcome (retry); print the authorize URL, then exchange the "
	"code it gives (connect).",
	cmd_qb_exec, NULL };

static void
qb_doctor(struct sctl_report *r, const struct sctl_daemon *d, struct db *db, time_t now, int64_t warn_s)
{
	struct qb_health q;
	char *cause = NULL, buf[128];
	cJSON *o;
	long long days;

	if (health_qb(db, &q, &cause) == -1) {
		sctl_finding(r, SCTL_LEVEL_WARN, "quickbooks", "check that ops.db is readable: syncctl qb status", "%s",
		    cause);
		free(cause);
		return;
	}
	if (!q.present)
		return;	/* no billing schema yet: qb-reconcile has not started with it */
	{
		sqlite3_stmt *st;

		if ((st = db_stmt(db, SQL_WRITEBACKS, NULL)) != NULL) {
			if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
				sctl_finding(r, SCTL_LEVEL_WARN, "quickbooks",
				    "check [d1] and D1's status; the next qb-reconcile run sends them first (`syncctl qb "
				    "status`)",
				    "%lld QuickBooks outcome%s not yet written back to the billing tables in D1, waiting since "
				    "%s%s%s%s: the admin panel shows an older sync status",
				    (long long)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 0) == 1 ? "" : "s",
				    db_col_text(st, 1), sqlite3_column_type(st, 3) != SQLITE_NULL ? " (last error: " : "",
				    db_col_text(st, 3), sqlite3_column_type(st, 3) != SQLITE_NULL ? ")" : "");
			sqlite3_reset(st);
		}
	}
	o = cJSON_AddObjectToObject(sctl_report_json(r), "quickbooks");
	cJSON_AddStringToObject(o, "state", q.state);
	sctl_json_time(o, "refresh_expires_at", q.refresh_expires);
	sctl_json_time(o, "refresh_hard_expires_at", q.refresh_hard_expires);
	sctl_json_time(o, "last_heartbeat_at", q.last_heartbeat);
	if (!health_qb_state_ok(q.state)) {
		sctl_finding(r, SCTL_LEVEL_PROBLEM, "quickbooks",
		    "run `syncctl qb connect`, open the URL it prints as the QuickBooks admin, then run the "
		    "`syncctl qb connect --code ... --realm ... --state ...` line it gives; `syncctl trigger qb-reconcile "
		    "--wait` then shows heartbeat true",
		    "the QuickBooks connection is '%s': invoices are not pushed and the token is not refreshed",
		    q.state[0] ? q.state : "unknown");
		return;
	}
	if (q.refresh_expires != 0) {
		days = (long long)((q.refresh_expires - now) / 86400);
		if (q.refresh_expires <= now)
			sctl_finding(r, SCTL_LEVEL_PROBLEM, "quickbooks",
			    "reconnect: `syncctl qb connect` (see `syncctl qb status`)",
			    "the rolling QuickBooks refresh token expired at %s", iso8601_fmt(q.refresh_expires, buf));
		else if (q.refresh_expires - now < warn_s)
			sctl_finding(r, SCTL_LEVEL_WARN, "quickbooks",
			    "each daily heartbeat renews this token, so heartbeats are failing: `syncctl qb status`, then "
			    "`syncctl trigger qb-reconcile --wait`; if the heartbeat stays false, `syncctl qb connect`",
			    "the rolling QuickBooks refresh token expires in %lld day%s (%s)", days, days == 1 ? "" : "s",
			    iso8601_fmt(q.refresh_expires, buf));
	}
	if (q.refresh_hard_expires != 0) {
		days = (long long)((q.refresh_hard_expires - now) / 86400);
		if (q.refresh_hard_expires <= now)
			sctl_finding(r, SCTL_LEVEL_PROBLEM, "quickbooks", "reconnect: `syncctl qb connect`",
			    "the QuickBooks refresh token reached its hard expiry at %s",
			    iso8601_fmt(q.refresh_hard_expires, buf));
		else if (q.refresh_hard_expires - now < warn_s)
			sctl_finding(r, SCTL_LEVEL_WARN, "quickbooks",
			    "no heartbeat can extend it: reconnect before then with `syncctl qb connect`",
			    "the QuickBooks refresh token reaches its hard (5-year) expiry in %lld day%s (%s)", days,
			    days == 1 ? "" : "s", iso8601_fmt(q.refresh_hard_expires, buf));
	}
	if (q.last_heartbeat_ok == 0)
		sctl_finding(r, SCTL_LEVEL_WARN, "quickbooks",
		    "`syncctl qb status` shows the error; `syncctl trigger qb-reconcile --wait` tries again",
		    "the last QuickBooks heartbeat (%s) did not refresh the token", iso8601_fmt(q.last_heartbeat, buf));
}

static const struct sctl_cmd *const qb_cmds[] = { &cmd_qb, NULL };

const struct sctl_hooks sctl_hooks_qb_reconcile = {
	.cmds = qb_cmds,
	.doctor = qb_doctor,
	.doctor_help = "QuickBooks token expiry",
	.help = "qb-reconcile: `syncctl qb retry` exits 1 when the invoice did not sync; doctor exits 9 when\n"
	    "QuickBooks is disconnected; trigger --wait exits 10 when the QuickBooks connection or heartbeat, or\n"
	    "invoices that did not sync, need the operator (the run's error says what).\n",
};
