/*
 * A client for Cloudflare D1's HTTP API (../shared/reference/cloudflare-d1.md; our plan: docs/d1-design.md), on
 * http.c (libcurl multi on libev).  One struct d1 per daemon holds the account, the token and the request budget;
 * its two databases are two handles (d1_corpus, d1_ops), so no code path takes a database id from data.
 *
 * A request is POST {api_base}/accounts/{account}/d1/database/{uuid}/query (or /raw) with a Bearer token and the
 * body {"sql": "…"} (statements separated by ";\n": one D1 transaction), {"sql", "params"} (one statement) or
 * {"batch": [{"sql", "params"}, …]} (statements with their own parameters).  The
 * answer's envelope {success, errors[{code, message}], result[{results, success, meta}]} is parsed with a bound on
 * its size (jsonlimit.h), and the outcome is one of:
 *   - D1_OK: every statement succeeded (committed);
 *   - D1_ERR_AUTH: the token, the account or a database id was refused (400/403/404 with 9106, 6003/6111, 1000,
 *     10000, 7403, 7400, 7404): never retried, the message names D1 and what to check;
 *   - D1_ERR_SQL: 400 with 7500, the request was rolled back whole: never retried, the message names the tables of
 *     the statements;
 *   - D1_ERR_TRANSIENT: a connection error, a timeout, a 5xx (500 7500 "internal error", 502, 503, 520–524), a 504
 *     (D1 gave up after 30 s: the write MAY have committed) or D1's "overloaded" 429, still failing after
 *     [d1] retries replays with back-off; replays are safe because every write we send is idempotent;
 *   - D1_ERR_RATE: the account's rate limit (429, code 971) met more than D1_MAX_BLOCKS times for one request.
 * A 429/971 stops every request of this struct d1 until its Retry-After (or [d1] rate_block) has passed: nothing is
 * sent during the block, and the request then goes out again.  Requests are spaced by rate_window /
 * requests_per_5min (0.375 s at 800 per 5 minutes), retries included, so the budget is never exceeded and there
 * are no bursts; one request is in flight at a time.
 *
 * The token goes into an Authorization header built in memory only; it is registered for redaction when loaded,
 * and no message here ever contains it.
 */
#ifndef RTOPACKS_D1_H
#define RTOPACKS_D1_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

#include "evcurl.h"

struct config;
struct d1;
struct d1_db;

#define D1_DEFAULT_BUDGET 800		/* requests per 5 minutes when the daemon names no share of its own */
#define D1_MAX_BLOCKS 3			/* 429 blocks met by one request before it fails */
#define D1_REQUEST_BUDGET (1024 * 1024)	/* bytes of SQL per request we aim for (docs/d1-design.md) */

struct d1_settings {
	bool enabled;			/* [d1] account_id is set */
	char *account_id;
	char *corpus_id, *ops_id;	/* NULL: that database is not configured */
	char *api_base;			/* without a trailing slash */
	char *token;			/* the secret */
	int budget;			/* requests per window */
	long window_ms, block_ms;
	int retries;
	long backoff_ms, backoff_max_ms, timeout_ms;
	char *steps_table, *runs_table, *cursor_table;
};

/*
 * Read and check [d1]: account id (32 hex digits), database ids (UUIDs), table names (identifiers), the token
 * (credential d1-api-token or token_file; no white space, quotes or "Bearer ").  With account_id unset: 0 and
 * enabled false (publishing off).  sync_type names the default cursor table (<sync_type>_cursor); default_budget
 * is used when requests_per_5min is not set (0: D1_DEFAULT_BUDGET).  Returns -1 with *cause for -n to print.
 */
int d1_settings_load(struct d1_settings *, const struct config *, const char *sync_type, int default_budget,
    char **cause);
void d1_settings_clear(struct d1_settings *);

enum d1_status { D1_OK, D1_ERR_AUTH, D1_ERR_SQL, D1_ERR_REQUEST, D1_ERR_TRANSIENT, D1_ERR_RATE, D1_ERR_CANCELLED };

struct d1_result {
	enum d1_status status;
	const char *error;		/* NULL on D1_OK; names D1 and the database, never holds the token */
	long http_status;		/* of the last attempt (0: no HTTP answer) */
	int code;			/* D1's errors[0].code, 0 if none */
	const cJSON *result;		/* D1_OK: the "result" array, one entry per statement (valid during on_done) */
	int statements;
	double rows_read, rows_written, duration_ms;	/* summed over the statements' meta */
	int attempts;			/* requests sent for this query */
	int blocks;			/* 429 blocks waited out */
	int timeouts;			/* 504s replayed */
	double elapsed;			/* seconds, from d1_query to on_done */
};

typedef void (*d1_done_fn)(const struct d1_result *, void *arg);

struct d1_query {
	const char *sql;
	size_t sql_len;			/* 0: strlen(sql) */
	const cJSON *params;		/* optional array of positional parameters (one statement only) */
	const cJSON *batch;		/* instead of sql: [{"sql", "params"}, …], the batch form (one transaction,
					 * reference §4 "inferred") */
	bool raw;			/* /raw: rows as arrays */
	const char *what;		/* for messages, e.g. "upsert tga_components"; default: the tables */
	d1_done_fn on_done;
	void *arg;
};

struct d1 *d1_new(struct evcurl *, struct ev_loop *, const struct d1_settings *);
void d1_free(struct d1 *);
/* The two databases; NULL when not configured. */
struct d1_db *d1_corpus(struct d1 *);
struct d1_db *d1_ops(struct d1 *);

/* Queue a query; on_done runs exactly once, later (never from inside this call). */
void d1_query(struct d1_db *, const struct d1_query *);
/* Drop every queued or waiting query; their on_done runs with D1_ERR_CANCELLED. */
void d1_cancel_all(struct d1 *);
/*
 * Drop the queries of one owner (the `arg` its d1_query gave), as a step's abort or an owner's teardown does: each
 * on_done runs now with D1_ERR_CANCELLED, and nothing else of the client is disturbed (a daemon's D1 work shares
 * one client, so that one budget paces it and one 429 block stops it: see daemon.h).  A query already on the wire
 * finishes there and its answer is dropped.
 */
void d1_cancel_for(struct d1 *, void *arg);
/* Wall-clock time (epoch seconds) until which D1's rate limit blocks us, or 0. */
double d1_blocked_until(const struct d1 *);

struct d1_stats {
	unsigned long requests, retries, blocks, failures, bytes_out;
};
void d1_get_stats(const struct d1 *, struct d1_stats *);

#endif
