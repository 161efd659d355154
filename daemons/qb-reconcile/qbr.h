/*
 * qb-reconcile: the daily QuickBooks Online heartbeat (OAuth token refresh), exactly-once invoice push,
 * reconciliation, retry and reconnect.  One header for the daemon's modules:
 *
 *   main.c             the job (phases, config keys, hooks), init/fini/reload
 *   tokens.c           the token store: one JSON file written atomically, and the cross-process refresh lock
 *   oauth.c            the Intuit OAuth 2.0 client: refresh (serialised, rotation stored before use), code exchange
 *   qbo.c              the QuickBooks API client: auth, limits, intuit_tid, 401-refresh-retry, error parser
 *   mapping.c          billing rows <-> QuickBooks JSON: validation, requestids, money
 *   conn.c             the qb_connection row
 *   pusher.c           pushing a set of invoices (used by the push phase and `qb retry`)
 *   phase-*.c          heartbeat, push, reconcile, summary
 *   ctl-qb.c           control commands qb-retry and qb-connect
 */
#ifndef QBR_H
#define QBR_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <ev.h>

#include "config.h"

struct daemon;
struct db;
struct http_client;
struct http_group;
struct buf;
struct step;

#define QBR_SECTION "qb-reconcile"
#define QBR_DOC_MAX 21			/* QuickBooks DocNumber limit */
#define QBR_REQUESTID_MAX 50		/* QuickBooks requestid limit */
#define QBR_ACCESS_MAX 4096		/* documented access token limit */
/*
 * D1 requests per 5 minutes when [d1] names none: the observatory mirror and, with billing_source = d1, the pull and
 * the write-backs (10,000 invoices take about 440 requests over a run that QuickBooks' own limits make 25 minutes
 * long).  With tga-sync's 800 and cricos-sync's 200, 1,120 of the account's 1,200 (docs/d1-design.md, Pacing).
 */
#define QBR_D1_BUDGET 120
#define QBR_REFRESH_MAX 512		/* documented refresh token limit */
#define QBR_MONEY_MAX_CENTS 100000000000LL	/* 1,000,000,000.00: anything larger is a bug, not an invoice */

/* --- tokens.c ------------------------------------------------------------------------------------------------ */

struct qbr_tokens {
	char *realm_id;
	char *access_token;
	char *refresh_token;
	time_t obtained_at;
	time_t access_expires_at;
	time_t refresh_expires_at;
	time_t refresh_hard_expires_at;	/* 0: not known */
	int64_t generation;		/* +1 per code exchange (a new connection) */
	int64_t refreshes;		/* refreshes within this generation */
};

void tokens_clear(struct qbr_tokens *);
/* A token as Intuit issues them and the store keeps them: 8 to max bytes of printable ASCII without spaces, quotes
 * or backslashes (anything else is a corrupt store, a bad response or an attack). */
bool tokens_text_ok(const char *, size_t max);
void tokens_copy(struct qbr_tokens *dst, const struct qbr_tokens *src);
/* Read the store: 1 loaded, 0 no store (not connected), -1 error (*cause). Secrets are registered for redaction. */
int tokens_load(const char *path, struct qbr_tokens *, char **cause);
/* Write the store atomically: temp file (0600), fsync, rename, fsync the directory. */
int tokens_store(const char *path, const struct qbr_tokens *, char **cause);

struct token_lock;
/* Take the refresh lock without blocking: 1 taken, 0 held by another process, -1 error. */
int token_lock_try(const char *lock_path, struct token_lock **, char **cause);
void token_lock_release(struct token_lock *);

/* --- the daemon's state ---------------------------------------------------------------------------------------- */

struct item_map {
	char *plan;
	char *item_id;
};

struct refresh;
struct pusher;

struct qbr {
	struct daemon *d;
	struct http_client *api;	/* QuickBooks API: paced under QuickBooks' limits */
	struct http_client *oauth;	/* Intuit's token endpoint */

	/* Configuration. */
	bool production;
	const char *environment;
	char *client_id;
	char *client_secret;		/* registered for redaction */
	char *basic_auth;		/* "Basic base64(id:secret)": also registered */
	char *redirect_uri, *api_base, *token_url, *authorize_url, *scope;
	char *token_file, *lock_file;
	char *currency;
	char *default_item;
	struct item_map *items;
	size_t nitems;
	int minor_version, max_attempts, push_batch, cdc_max_objects, query_batch;
	int64_t throttle_wait_ms, cdc_margin_s, lock_timeout_ms, hard_warn_s, state_lifetime_s;
	int64_t grant_recheck_ms;	/* invalid_grant_recheck: confirm an invalid_grant this much later */
	bool digest;

	/* Tokens in memory (a copy of the store). */
	struct qbr_tokens tok;
	bool have_tokens;
	struct refresh *refresh;	/* the refresh in progress, if any (others wait for it) */
	struct refresh *refresh_all;	/* every live refresh object (waiters can be forgotten in any of them) */
	char *refused_refresh;		/* a refresh token Intuit refused (invalid_grant): only a heartbeat retries it */

	/* Invoices being pushed right now (by the push phase or `qb retry`): never two pushes of one invoice. */
	int64_t *busy;
	size_t nbusy, busy_cap;

	/* [qb-reconcile] billing_source = d1: the contract tables live in D1's ops database (d1billing.c). */
	bool billing_d1;
	struct qbd1 *d1b;

	/* Result of the last cycle, printed by --once. */
	char *last_result;
};

/* --- conn.c: the qb_connection row --------------------------------------------------------------------------- */

struct conn_info {
	char state[24];
	char realm_id[64];
	char install_id[32];
	int64_t generation;
};
int conn_read(struct db *, struct conn_info *, char **cause);
/* Record a token event in its own transaction (never inside a step's transaction). */
int conn_tokens_stored(struct qbr *, const struct qbr_tokens *, bool new_connection, const char *tid, char **cause);
int conn_set_state(struct qbr *, const char *state, const char *error, const char *tid, char **cause);
/* Heartbeat fields, inside the caller's transaction. */
int conn_heartbeat(struct db *, bool ok, const char *error, char **cause);

/* --- oauth.c ------------------------------------------------------------------------------------------------- */

enum refresh_result {
	REFRESH_OK,			/* tokens refreshed (or another process's fresh ones adopted) and stored */
	REFRESH_NOT_CONNECTED,		/* no token store: `syncctl qb connect` first */
	REFRESH_INVALID_GRANT,		/* the refresh token is dead: reconnect required */
	REFRESH_FAILED,			/* transient (network, 5xx, lock timeout, cannot store) */
};
typedef void (*refresh_done_fn)(enum refresh_result, const char *error, void *arg);
/*
 * Refresh the tokens, one refresh at a time across processes (flock) and within this one (callers of a refresh in
 * progress wait for it).  force: always ask the token endpoint (the heartbeat).  Otherwise (a 401): only if the
 * store's access token is still stale_access or about to expire; a newer one written by another process is used.
 * done runs later, never from inside this call.
 */
void qbr_refresh(struct qbr *, bool force, const char *stale_access, refresh_done_fn, void *arg);
/* Forget a waiter (its owner is going away); done will not be called for it. */
void qbr_refresh_forget(struct qbr *, refresh_done_fn, void *arg);
/* Exchange an authorization code, exactly once, and store the new connection's tokens. */
typedef void (*connect_done_fn)(bool ok, const char *error, void *arg);
void qbr_connect_exchange(struct qbr *, const char *code, const char *realm_id, connect_done_fn, void *arg);
/* The authorize URL for a state. */
char *qbr_authorize_url(struct qbr *, const char *state);
bool qbr_access_usable(const struct qbr *);
/* The token endpoint's answers: a 200 into tokens (NULL, or why it is unusable; nothing is stored), and the
 * "error" code of an error answer into buf ("" if none). */
const char *qbr_parse_token_answer(const char *body, size_t len, struct qbr_tokens *);
const char *qbr_oauth_error_code(const char *body, size_t bodylen, char *buf, size_t len);
/* Its "error_description" (redacted, cut to fit, control characters escaped; "" if none). */
const char *qbr_oauth_error_desc(const char *body, size_t bodylen, char *buf, size_t len);
/* May a phase talk to QuickBooks in this cycle?  Not when never connected, nor when reconnect_required and this
 * cycle's heartbeat failed (every call would only collect another invalid_grant). */
bool qbr_connection_usable(struct step *);
void qbr_oauth_fini(struct qbr *);
char *base64_encode(const void *, size_t);

/* --- qbo.c: the API client ----------------------------------------------------------------------------------- */

struct qbo_fault {
	char code[16];
	char type[48];
	char message[256];
	char detail[1024];
};

struct qbo_resp {
	long status;
	const char *error;		/* NULL: success (2xx, JSON, no Fault) */
	cJSON *json;			/* the parsed body (2xx), owned by the call */
	bool has_fault;
	struct qbo_fault fault;
	bool cancelled;
	bool auth_lost;			/* the connection is gone (invalid_grant / not connected): stop pushing */
	bool answered;			/* QuickBooks answered (a definite outcome), not a transport failure */
	const char *tid;		/* intuit_tid of the last response */
};
typedef void (*qbo_done_fn)(const struct qbo_resp *, void *arg);

struct qbo_req {
	const char *method;		/* GET or POST */
	const char *path;		/* after /v3/company/<realm>/, e.g. "invoice" or "query" */
	const char *query;		/* more query parameters, URL-encoded, or NULL */
	const char *requestid;		/* idempotency key for writes */
	const char *body;
	const char *content_type;	/* default application/json */
	const char *what;		/* for logs: "create invoice INV-1001" */
	struct http_group *group;
	qbo_done_fn done;
	void *arg;
};
struct qbo_call;
struct qbo_call *qbo_call(struct qbr *, const struct qbo_req *);
/* End a call now with cancelled set (from an abort hook); done runs before this returns. */
void qbo_call_cancel(struct qbo_call *);
bool qbo_call_in_flight(const struct qbo_call *);

/* Parse an error body: JSON Fault/fault (any case), XML <Fault>, or the OAuth {"error": ...}. */
bool qbo_parse_fault(const char *body, size_t len, const char *content_type, struct qbo_fault *);
/* 6140: "... DocNumber=X is assigned to TxnType=Invoice with TxnId=123" -> txn type and id. */
bool qbo_parse_6140(const char *detail, char *txn_type, size_t tlen, char *txn_id, size_t ilen);
/* Case-insensitive object member. */
const cJSON *json_get(const cJSON *obj, const char *name);
const char *json_str(const cJSON *obj, const char *name);
/* A JSON money number -> cents; false if absent or out of range. */
bool json_cents(const cJSON *obj, const char *name, int64_t *cents);
/* QuickBooks time ("2015-07-24T10:35:08-07:00") -> ISO-8601 UTC. */
bool qbo_time_utc(const char *s, char out[21]);

/* --- mapping.c ----------------------------------------------------------------------------------------------- */

struct inv_line {
	int64_t line_no, quantity, unit_price_cents, amount_cents;
	char *item, *description;
};

struct inv {
	int64_t id, customer_id, total_cents, attempts, gen;
	char *doc_number, *txn_date, *due_date, *currency, *memo, *status;
	char *qb_invoice_id, *qb_sync_token;
	bool is_test, cust_is_test;
	char *cust_name, *cust_email, *cust_qb_id;
	struct inv_line *lines;
	size_t nlines;
};

void inv_free(struct inv *);
/* Load one invoice with its lines and customer; 1 found, 0 not, -1 error. */
int inv_load(struct db *, int64_t id, struct inv *, char **cause);
/* Why an invoice must not be sent (NULL: valid).  Checked before anything goes to QuickBooks. */
const char *inv_invalid(const struct qbr *, const struct inv *, char *buf, size_t len);
bool inv_is_test(const struct inv *);
/* The QuickBooks JSON for a create (or a sparse update when id/sync_token are given). */
char *inv_json(const struct qbr *, const struct inv *, const char *qb_id, const char *sync_token);
char *customer_json(const struct inv *);
/* requestids: "qbr-<install>-<invoice id>-g<gen>", "qbr-<install>-c<customer id>-<name hash>" (≤ 50 chars). */
int inv_requestid(const char *install, const struct inv *, int64_t gen, char *out, size_t len);
int customer_requestid(const char *install, const struct inv *, char *out, size_t len);
/* A QuickBooks query string literal: 'text' with ' and \ escaped. */
void qbo_quote(struct buf *, const char *);
void cents_str(int64_t cents, char *buf, size_t len);
const char *item_for(const struct qbr *, const char *plan);

/* --- pusher.c ------------------------------------------------------------------------------------------------ */

enum push_outcome { PUSH_SYNCED, PUSH_FAILED, PUSH_ABANDONED, PUSH_HELD, PUSH_SKIPPED };

struct push_result {
	int64_t invoice_id;
	enum push_outcome outcome;
	char *error;
	char *qb_invoice_id, *qb_sync_token;
	int64_t qb_total_cents, qb_balance_cents;
	char *qb_updated_at;
	char *qb_customer_id;		/* found or created for the invoice's customer */
	int64_t customer_id;
	int64_t new_gen, attempts;
	bool count_attempt;		/* an attempt that failed (counts towards abandonment) */
	bool adopted;
	char *issue_kind, *issue_detail;	/* a reconcile issue to record with the result */
};

typedef void (*pusher_done_fn)(struct pusher *, void *arg);
/* Push these invoices (already loaded).  done runs once, after the last request; results stay in the pusher. */
struct pusher *pusher_start(struct qbr *, struct inv *invs, size_t n, struct http_group *, pusher_done_fn, void *arg);
size_t pusher_results(struct pusher *, struct push_result **);
bool pusher_auth_lost(struct pusher *);
/* Abort: every request ends as cancelled; done still runs (with results marked skipped). */
void pusher_cancel(struct pusher *);
void pusher_free(struct pusher *);
/* Write the results (inside the caller's transaction). */
int pusher_commit(struct qbr *, struct db *, struct pusher *, const char *cycle_id, int64_t *synced, int64_t *failed,
    int64_t *abandoned, char **cause);

/* Open (or refresh) a reconcile issue, inside the caller's transaction. */
int issue_open(struct db *, int64_t invoice_id, const char *qb_id, const char *kind, const char *detail, int64_t our,
    int64_t qb, bool have_cents, const char *cycle_id, char **cause);
int issue_resolve(struct db *, int64_t invoice_id, const char *kind, char **cause);

bool qbr_busy(struct qbr *, int64_t invoice_id);
void qbr_busy_add(struct qbr *, int64_t invoice_id);
void qbr_busy_del(struct qbr *, int64_t invoice_id);

/* --- d1billing.c: billing_source = d1 --------------------------------------------------------------------- */

struct ctl_client;
struct qbd1;
typedef void (*qbd1_flush_fn)(bool ok, const char *error, void *arg);
/* Record the mode in ops.db (the write-back triggers follow it); make the drain.  At start and reload. */
int qbd1_setup(struct qbr *, char **cause);
void qbd1_fini(struct qbr *);
/* Deliver the queued write-backs: soon (coalescing), or at once. */
void qbd1_kick(struct qbr *, bool now);
/* Deliver until none is left (ok) or a request fails (!ok, error); cb runs later, from the loop. */
void qbd1_flush(struct qbr *, qbd1_flush_fn, void *arg);
void qbd1_flush_forget(struct qbr *, void *arg);
/* Write-backs waiting in ops.db. */
int64_t qbd1_waiting(struct db *);
/* `syncctl qb retry` with billing in D1: reset the invoice there (the admin's Retry) and reply. */
void qbd1_retry(struct qbr *, struct ctl_client *, int64_t invoice_id);
void phase_pull(struct step *);

/* --- phases and control commands ------------------------------------------------------------------------------ */

struct step;
void phase_heartbeat(struct step *);
void phase_push(struct step *);
void phase_reconcile(struct step *);
void phase_summary(struct step *);
void qbr_print_result(struct qbr *);
cJSON *qbr_result_json(const cJSON *cycle_state);

extern const struct ctl_cmd qbr_cmd_retry, qbr_cmd_connect;

/* Cycle-state counters (committed with each step). */
int64_t cstate_get(struct step *, const char *key);
void cstate_add(struct step *, const char *key, int64_t n);
void cstate_set_bool(struct step *, const char *key, bool v);

/* The [qb-reconcile] keys (keys.c). */
extern const struct cfg_key qbr_config_keys[];

#endif
