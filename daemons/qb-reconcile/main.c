/*
 * qb-reconcile: the job.  Phases heartbeat, push, reconcile, summary (see qbr.h for the modules), the daemon's
 * config keys, and init/reload/fini.
 */
#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "control.h"
#include "d1.h"
#include "cycle.h"
#include "daemon.h"
#include "db.h"
#include "health-qb.h"
#include "http.h"
#include "log.h"
#include "qbr.h"
#include "timeutil.h"
#include "xmalloc.h"

#define SANDBOX_API "https://sandbox-quickbooks.api.intuit.com"
#define PRODUCTION_API "https://quickbooks.api.intuit.com"

/* --- configuration ------------------------------------------------------------------------------------------ */

static void
free_items(struct qbr *q)
{
	size_t i;

	for (i = 0; i < q->nitems; i++) {
		free(q->items[i].plan);
		free(q->items[i].item_id);
	}
	free(q->items);
	q->items = NULL;
	q->nitems = 0;
}

static bool
item_id_ok(const char *s)
{
	return *s != '\0' && strlen(s) <= 20 && strspn(s, "0123456789") == strlen(s);
}

static int
parse_item_map(struct qbr *q, const char *spec, char **cause)
{
	char *copy, *tok, *save, *eq;

	free_items(q);
	if (spec == NULL)
		return 0;
	copy = xstrdup(spec);
	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if ((eq = strchr(tok, '=')) == NULL || eq == tok || !item_id_ok(eq + 1)) {
			xasprintf(cause, "[qb-reconcile] item_map: '%s' is not plan=ItemId (digits)", tok);
			free(copy);
			return -1;
		}
		*eq = '\0';
		q->items = xreallocarray(q->items, q->nitems + 1, sizeof *q->items);
		q->items[q->nitems].plan = xstrdup(tok);
		q->items[q->nitems].item_id = xstrdup(eq + 1);
		q->nitems++;
	}
	free(copy);
	return 0;
}

static void
free_config(struct qbr *q)
{
	free(q->client_id);
	if (q->client_secret != NULL)
		secret_free(q->client_secret);
	if (q->basic_auth != NULL) {
		explicit_bzero(q->basic_auth, strlen(q->basic_auth));
		free(q->basic_auth);
	}
	free(q->redirect_uri);
	free(q->api_base);
	free(q->token_url);
	free(q->authorize_url);
	free(q->scope);
	free(q->token_file);
	free(q->lock_file);
	free(q->currency);
	free(q->default_item);
	free_items(q);
	q->client_id = q->client_secret = q->basic_auth = q->redirect_uri = q->api_base = NULL;
	q->token_url = q->authorize_url = q->scope = q->token_file = q->lock_file = q->currency = NULL;
	q->default_item = NULL;
}

static char *
strip_slash(const char *s)
{
	char *c = xstrdup(s);
	size_t n = strlen(c);

	while (n > 0 && c[n - 1] == '/')
		c[--n] = '\0';
	return c;
}

static void
http_settings(struct qbr *q, const struct config *cfg)
{
	struct http_settings hs;
	int64_t rpm = config_int(cfg, QBR_SECTION, "requests_per_minute");

	http_settings_from_config(&hs, cfg, QBR_SECTION, "QuickBooks");
	/* QuickBooks: 10 concurrent, 10/s, 500/min per company; 429 -> wait 60 s for the whole company. */
	if (hs.max_in_flight > 10)
		hs.max_in_flight = 10;
	if (!config_isset(cfg, QBR_SECTION, "min_interval"))
		hs.min_interval_ms = (60000 + rpm - 1) / rpm;
	if (hs.min_interval_ms < 100)
		hs.min_interval_ms = 100;	/* never more than 10 starts a second, whatever the config says */
	hs.pause_on_429 = true;
	hs.default_429_wait_ms = q->throttle_wait_ms;
	if (q->api == NULL)
		q->api = http_client_new(q->d->ec, q->d->loop, &hs);
	else
		http_client_settings(q->api, &hs);
	http_settings_from_config(&hs, cfg, QBR_SECTION, "Intuit OAuth");
	hs.max_in_flight = 2;
	hs.min_interval_ms = 0;
	if (q->oauth == NULL)
		q->oauth = http_client_new(q->d->ec, q->d->loop, &hs);
	else
		http_client_settings(q->oauth, &hs);
}

/* Load and check the configuration into q; check_only (-n) changes nothing on disk. */
static int
load_config(struct qbr *q, const struct config *cfg, bool check_only, char **cause)
{
	const char *v;
	char *idsecret;

	free_config(q);
	q->environment = strcmp(config_str(cfg, QBR_SECTION, "environment"), "production") == 0 ? "production" :
	    "sandbox";
	q->production = strcmp(q->environment, "production") == 0;
	q->client_id = xstrdup(config_str(cfg, QBR_SECTION, "client_id"));
	if ((q->client_secret = secret_load(cfg, QBR_SECTION, "client_secret_file", "qb-client-secret", cause)) ==
	    NULL)
		return -1;
	xasprintf(&idsecret, "%s:%s", q->client_id, q->client_secret);
	{
		char *b = base64_encode(idsecret, strlen(idsecret));

		xasprintf(&q->basic_auth, "Basic %s", b);
		secret_register(b);	/* the encoded secret is as secret as the secret */
		explicit_bzero(b, strlen(b));
		free(b);
	}
	explicit_bzero(idsecret, strlen(idsecret));
	free(idsecret);
	if ((v = config_str(cfg, QBR_SECTION, "redirect_uri")) != NULL)
		q->redirect_uri = xstrdup(v);
	v = config_str(cfg, QBR_SECTION, "api_base_url");
	q->api_base = strip_slash(v != NULL ? v : q->production ? PRODUCTION_API : SANDBOX_API);
	q->token_url = xstrdup(config_str(cfg, QBR_SECTION, "token_url"));
	q->authorize_url = xstrdup(config_str(cfg, QBR_SECTION, "authorize_url"));
	q->scope = xstrdup(config_str(cfg, QBR_SECTION, "scope"));
	if ((v = config_str(cfg, QBR_SECTION, "token_file")) != NULL)
		q->token_file = xstrdup(v);
	else {
		/*
		 * The shared state directory is writable by every daemon's user; the tokens live in qb-reconcile's own
		 * (systemd's StateDirectory=rtopacks-sync/qb-reconcile, mode 0700), which the daemon makes if it is missing.
		 */
		char *dir;

		xasprintf(&dir, "%s/qb-reconcile", config_str(cfg, "paths", "state_dir"));
		if (!check_only && mkdir(dir, 0700) == -1 && errno != EEXIST) {
			xasprintf(cause, "cannot create the token directory %s: %s", dir, strerror(errno));
			free(dir);
			return -1;
		}
		xasprintf(&q->token_file, "%s/qb-tokens.json", dir);
		free(dir);
	}
	xasprintf(&q->lock_file, "%s.lock", q->token_file);
	q->currency = xstrdup(config_str(cfg, QBR_SECTION, "currency"));
	q->default_item = xstrdup(config_str(cfg, QBR_SECTION, "default_item"));
	if (!item_id_ok(q->default_item)) {
		xasprintf(cause, "[qb-reconcile] default_item: '%s' is not a QuickBooks Item Id (digits)",
		    q->default_item);
		return -1;
	}
	if (parse_item_map(q, config_str(cfg, QBR_SECTION, "item_map"), cause) == -1)
		return -1;
	q->minor_version = (int)config_int(cfg, QBR_SECTION, "minor_version");
	q->max_attempts = (int)config_int(cfg, QBR_SECTION, "max_attempts");
	q->push_batch = (int)config_int(cfg, QBR_SECTION, "push_batch");
	q->query_batch = (int)config_int(cfg, QBR_SECTION, "query_batch");
	q->cdc_max_objects = (int)config_int(cfg, QBR_SECTION, "cdc_max_objects");
	q->throttle_wait_ms = config_ms(cfg, QBR_SECTION, "throttle_wait");
	q->cdc_margin_s = config_ms(cfg, QBR_SECTION, "cdc_margin") / 1000;
	q->lock_timeout_ms = config_ms(cfg, QBR_SECTION, "token_lock_timeout");
	q->grant_recheck_ms = config_ms(cfg, QBR_SECTION, "invalid_grant_recheck");
	q->hard_warn_s = config_ms(cfg, QBR_SECTION, "hard_expiry_warn") / 1000;
	q->state_lifetime_s = config_ms(cfg, QBR_SECTION, "connect_state_lifetime") / 1000;
	q->digest = config_bool(cfg, QBR_SECTION, "digest");
	q->billing_d1 = strcmp(config_str(cfg, QBR_SECTION, "billing_source"), "d1") == 0;
	if (q->billing_d1) {
		/* The billing tables are in D1's ops database: [d1] must name it (and be usable). */
		struct d1_settings ds;

		if (d1_settings_load(&ds, cfg, "qb_reconcile", 0, cause) == -1)
			return -1;
		if (!ds.enabled || ds.ops_id == NULL) {
			d1_settings_clear(&ds);
			xasprintf(cause, "[qb-reconcile] billing_source = d1 needs [d1] account_id, ops_database_id and its "
			    "token (the billing tables are in D1's ops database)");
			return -1;
		}
		d1_settings_clear(&ds);
	}
	if (q->production && strncmp(q->api_base, "https://", 8) != 0)
		log_warnx("[qb-reconcile] environment is production but api_base_url is not https: %s", q->api_base);
	return 0;
}

/* Take the configuration of src (loaded and checked) into q. */
static void
move_config(struct qbr *q, struct qbr *src)
{
	free_config(q);
	q->production = src->production;
	q->environment = src->environment;
	q->client_id = src->client_id;
	q->client_secret = src->client_secret;
	q->basic_auth = src->basic_auth;
	q->redirect_uri = src->redirect_uri;
	q->api_base = src->api_base;
	q->token_url = src->token_url;
	q->authorize_url = src->authorize_url;
	q->scope = src->scope;
	q->token_file = src->token_file;
	q->lock_file = src->lock_file;
	q->currency = src->currency;
	q->default_item = src->default_item;
	q->items = src->items;
	q->nitems = src->nitems;
	q->minor_version = src->minor_version;
	q->max_attempts = src->max_attempts;
	q->push_batch = src->push_batch;
	q->query_batch = src->query_batch;
	q->cdc_max_objects = src->cdc_max_objects;
	q->throttle_wait_ms = src->throttle_wait_ms;
	q->cdc_margin_s = src->cdc_margin_s;
	q->lock_timeout_ms = src->lock_timeout_ms;
	q->grant_recheck_ms = src->grant_recheck_ms;
	q->hard_warn_s = src->hard_warn_s;
	q->state_lifetime_s = src->state_lifetime_s;
	q->digest = src->digest;
	q->billing_d1 = src->billing_d1;
}

/* --- hooks -------------------------------------------------------------------------------------------------- */

/* -n: everything load_config refuses (the client secret included), with nothing kept or created. */
static int
qbr_check(const struct config *cfg, const char *section, char **cause)
{
	struct qbr tmp;
	int rc;

	memset(&tmp, 0, sizeof tmp);
	rc = load_config(&tmp, cfg, true, cause);
	free_config(&tmp);
	return rc;
}

static int
qbr_init(struct daemon *d, char **cause)
{
	struct qbr *q = xcalloc(1, sizeof *q);
	struct conn_info ci;
	char *err = NULL;
	int rc;

	q->d = d;
	d->job_ctx = q;
	if (load_config(q, d->cfg, false, cause) == -1)
		return -1;
	http_settings(q, d->cfg);
	if ((rc = tokens_load(q->token_file, &q->tok, &err)) == -1) {
		/* Not fatal: the heartbeat reports it (heartbeat false, a mail), and `syncctl qb connect` repairs it. */
		log_warnx("%s", err);
		free(err);
	}
	q->have_tokens = rc == 1;
	if (conn_read(d->db, &ci, cause) == -1)
		return -1;
	if (q->have_tokens && strcmp(ci.state, "not_connected") == 0 &&
	    conn_tokens_stored(q, &q->tok, false, NULL, cause) == -1)
		return -1;	/* a store seeded by hand: the row follows it */
	if (qbd1_setup(q, cause) == -1)
		return -1;
	log_info("QuickBooks %s, company %s, connection %s; token store %s", q->environment,
	    q->have_tokens ? q->tok.realm_id : "-", q->have_tokens ? "present" : "absent", q->token_file);
	return 0;
}

static int
qbr_reload(struct daemon *d, char **cause)
{
	struct qbr *q = d->job_ctx, tmp;

	if (q->refresh != NULL || q->nbusy > 0) {
		/* A token exchange or a `qb retry` is using the current settings: never pull them from under it. */
		xasprintf(cause, "qb-reconcile is talking to QuickBooks (a refresh, connect or retry): its settings stay "
		    "until the next reload");
		return -1;
	}
	/* Load the new configuration aside: a bad one leaves the running one untouched. */
	memset(&tmp, 0, sizeof tmp);
	tmp.d = d;
	if (load_config(&tmp, d->cfg, false, cause) == -1) {
		free_config(&tmp);
		return -1;
	}
	move_config(q, &tmp);
	http_settings(q, d->cfg);
	return qbd1_setup(q, cause);
}

static const char SQL_LAST_STATE[] = "SELECT cycle_state FROM qb_reconcile_cursor WHERE id = 1";

void
qbr_print_result(struct qbr *q)
{
	sqlite3_stmt *s;
	cJSON *cs = NULL, *res;
	char *json, *cause = NULL;

	if (q->last_result != NULL) {
		printf("%s\n", q->last_result);
		fflush(stdout);
		return;
	}
	/* The run ended before its summary (it failed): the result so far, from the committed cycle state. */
	if ((s = db_stmt(q->d->db, SQL_LAST_STATE, &cause)) != NULL) {
		if (sqlite3_step(s) == SQLITE_ROW)
			cs = cJSON_Parse(db_col_text(s, 0));
		sqlite3_reset(s);
	}
	free(cause);
	res = qbr_result_json(cs);
	cJSON_ReplaceItemInObject(res, "status", cJSON_CreateString("degraded"));
	json = cJSON_PrintUnformatted(res);
	printf("%s\n", json);
	fflush(stdout);
	free(json);
	cJSON_Delete(res);
	cJSON_Delete(cs);
}

static void
qbr_fini(struct daemon *d)
{
	struct qbr *q = d->job_ctx;

	if (q == NULL)
		return;
	if (d->once && d->cycle != NULL)
		qbr_print_result(q);
	qbr_oauth_fini(q);
	qbd1_fini(q);
	http_client_free(q->api);
	http_client_free(q->oauth);
	tokens_clear(&q->tok);
	free_config(q);
	free(q->busy);
	free(q->last_result);
	free(q);
	d->job_ctx = NULL;
}

static void
qbr_status(struct daemon *d, cJSON *out)
{
	struct qbr *q = d->job_ctx;
	struct conn_info ci;
	char *cause = NULL;
	cJSON *o = cJSON_CreateObject();

	if (conn_read(d->db, &ci, &cause) == 0) {
		cJSON_AddStringToObject(o, "connection", ci.state);
		cJSON_AddStringToObject(o, "realm_id", ci.realm_id);
	} else
		free(cause);
	cJSON_AddStringToObject(o, "environment", q->environment);
	cJSON_AddStringToObject(o, "billing_source", q->billing_d1 ? "d1" : "local");
	if (q->billing_d1)
		cJSON_AddNumberToObject(o, "d1_writebacks_waiting", (double)qbd1_waiting(d->db));
	if (q->last_result != NULL)
		cJSON_AddItemToObject(o, "last_result", cJSON_Parse(q->last_result));
	cJSON_AddItemToObject(out, "quickbooks", o);
	/* One line for `syncctl status` (it prints "notes"). */
	{
		cJSON *notes = cJSON_GetObjectItem(out, "notes");
		char line[256];

		if (!cJSON_IsArray(notes)) {
			notes = cJSON_CreateArray();
			cJSON_AddItemToObject(out, "notes", notes);
		}
		snprintf(line, sizeof line, "QuickBooks (%s): %s%s%s; details: syncctl qb status", q->environment,
		    cJSON_IsString(cJSON_GetObjectItem(o, "connection")) ?
		    cJSON_GetObjectItem(o, "connection")->valuestring : "?",
		    q->have_tokens ? ", company " : "", q->have_tokens ? q->tok.realm_id : "");
		cJSON_AddItemToArray(notes, cJSON_CreateString(line));
	}
}

static void
qbr_housekeeping(struct daemon *d)
{
	struct qbr *q = d->job_ctx;

	/* Write-backs left by a failed delivery go out between runs too (with their back-off). */
	if (q != NULL && q->billing_d1 && qbd1_waiting(d->db) > 0)
		qbd1_kick(q, false);
}

static const struct phase_def qbr_phases[] = {
	{ "heartbeat", phase_heartbeat, 0 },
	{ "pull", phase_pull, 0 },
	{ "push", phase_push, 0 },
	{ "reconcile", phase_reconcile, 0 },
	{ "summary", phase_summary, 0 },
};

static const struct ctl_cmd *const qbr_cmds[] = { &qbr_cmd_retry, &qbr_cmd_connect, NULL };

static const struct job_def qbr_job = {
	.daemon = "qb-reconcile",
	.sync_type = "qb_reconcile",
	.description = "Daily QuickBooks Online heartbeat (token refresh), exactly-once invoice push and reconciliation.",
	.phases = qbr_phases,
	.nphases = sizeof qbr_phases / sizeof qbr_phases[0],
	.uses_corpus = false,
	.config_keys = qbr_config_keys,
	.d1_budget = QBR_D1_BUDGET,
	.check = qbr_check,
	.init = qbr_init,
	.fini = qbr_fini,
	.reload = qbr_reload,
	.status = qbr_status,
	.housekeeping = qbr_housekeeping,
	.metrics = qbr_metrics,
	.ctl_cmds = qbr_cmds,
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &qbr_job);
}
