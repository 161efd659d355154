#include <sys/queue.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "d1-sql.h"
#include "d1.h"
#include "http.h"
#include "jsonlimit.h"
#include "log.h"
#include "timeutil.h"
#include "xmalloc.h"

#define D1_ANSWER_MAX (64u * 1024 * 1024)	/* a SELECT's answer; our writes get a few KB */
#define D1_ANSWER_NODES 4000000			/* JSON values in one answer */
#define D1_MESSAGE_MAX 400			/* bytes of D1's message kept in ours */
#define D1_BLOCK_CAP 3600			/* seconds: honour Retry-After, up to an hour */

struct d1_req {
	TAILQ_ENTRY(d1_req) entry;
	struct d1_db *db;
	char *body;
	size_t body_len;
	char tables[256];
	char *what;
	bool raw;
	d1_done_fn on_done;
	void *arg;
	int attempts, blocks, timeouts;
	double started;
	ev_timer timer;			/* waiting: a retry's back-off or the rate limit's block */
	struct http_request *http;	/* sent (or queued in http.c) */
	bool dropped;			/* its owner cancelled it while it was on the wire: its answer is ignored */
	char reason[768];		/* why the last attempt failed */
	long last_status;
	int last_code;
};
TAILQ_HEAD(d1_reqs, d1_req);

struct d1_db {
	struct d1 *d1;
	char *id;
	const char *label;		/* "corpus" or "ops" */
	const char *key;		/* its [d1] key, for messages */
	char *url_query, *url_raw;
};

struct d1 {
	struct ev_loop *loop;
	struct http_client *hc;
	struct http_group *group;
	struct d1_settings s;
	char *auth_header;		/* "Authorization: Bearer …": the only copy of the token here */
	struct d1_db *corpus, *ops;
	struct d1_reqs reqs;
	double blocked_until;		/* mono_now() time */
	double blocked_wall;
	struct d1_stats stats;
};

/* --- settings -------------------------------------------------------------------------------------------------- */

static bool
all_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return s[n] == '\0';
}

/* A UUID as D1 takes it: 8-4-4-4-12 hex digits, with or without the dashes. */
static bool
is_uuid(const char *s)
{
	static const int groups[] = { 8, 4, 4, 4, 12 };
	size_t i, g;

	if (strlen(s) == 32)
		return all_hex(s, 32);
	for (g = 0; g < 5; g++) {
		for (i = 0; i < (size_t)groups[g]; i++, s++)
			if (!isxdigit((unsigned char)*s))
				return false;
		if (g < 4 && *s++ != '-')
			return false;
	}
	return *s == '\0';
}

/* The token's shape (reference §5: 6003/6111 come from stray quotes, spaces and newlines).  Never echoes it. */
static const char *
token_problem(const char *t, char *msg, size_t len)
{
	size_t i;

	if (strncasecmp(t, "Bearer ", 7) == 0)
		return "starts with \"Bearer \": write the token alone";
	for (i = 0; t[i] != '\0'; i++) {
		unsigned char c = (unsigned char)t[i];

		if (c <= ' ' || c >= 0x7f) {
			snprintf(msg, len, "has white space or a control or non-ASCII byte at character %zu: write the "
			    "token alone on one line", i + 1);
			return msg;
		}
		if (c == '"' || c == '\'') {
			snprintf(msg, len, "has a quote at character %zu: write the token without quotes", i + 1);
			return msg;
		}
	}
	if (i < 20)
		return "is shorter than 20 characters: not a Cloudflare API token?";
	return NULL;
}

static void add_problem(struct buf *, const struct config *, const char *, const char *, ...)
    __attribute__((format(printf, 4, 5)));

static void
add_problem(struct buf *b, const struct config *cfg, const char *key, const char *fmt, ...)
{
	char where[512];
	va_list ap;

	if (b->len > 0)
		buf_addc(b, '\n');
	buf_printf(b, "%s: ", config_where(cfg, "d1", key, where, sizeof where));
	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

int
d1_settings_load(struct d1_settings *s, const struct config *cfg, const char *sync_type, int default_budget,
    char **cause)
{
	static const char *const tables[] = { "steps_table", "runs_table", "cursor_table", NULL };
	const char *v, *account = config_str(cfg, "d1", "account_id");
	const char *corpus = config_str(cfg, "d1", "corpus_database_id"), *ops = config_str(cfg, "d1", "ops_database_id");
	char msg[256], *p;
	struct buf errs;
	size_t i;

	memset(s, 0, sizeof *s);
	if (account == NULL) {
		if (corpus != NULL || ops != NULL || config_isset(cfg, "d1", "token_file")) {
			xasprintf(cause, "%s: [d1] has database ids or a token_file but no account_id: set account_id "
			    "(32 hex digits, from the Cloudflare dashboard) or remove the section", config_path(cfg));
			return -1;
		}
		return 0;
	}
	buf_init(&errs);
	if (!all_hex(account, 32))
		add_problem(&errs, cfg, "account_id", "expected 32 hex digits (the account id in the Cloudflare "
		    "dashboard's URL)");
	if (corpus == NULL && ops == NULL)
		add_problem(&errs, cfg, "ops_database_id", "neither corpus_database_id nor ops_database_id is set: "
		    "nothing to publish to");
	if (corpus != NULL && !is_uuid(corpus))
		add_problem(&errs, cfg, "corpus_database_id", "expected a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx; "
		    "`wrangler d1 list` shows it), not a database name");
	if (ops != NULL && !is_uuid(ops))
		add_problem(&errs, cfg, "ops_database_id", "expected a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx; "
		    "`wrangler d1 list` shows it), not a database name");
	if (corpus != NULL && ops != NULL && strcasecmp(corpus, ops) == 0)
		add_problem(&errs, cfg, "ops_database_id", "is the corpus database: the corpus and the operations "
		    "tables go to two databases");
	for (i = 0; tables[i] != NULL; i++)
		if ((v = config_str(cfg, "d1", tables[i])) != NULL && !d1_sql_identifier(v))
			add_problem(&errs, cfg, tables[i], "'%s' is not a plain table name ([A-Za-z_][A-Za-z0-9_]*)", v);
	if (errs.len > 0) {
		*cause = buf_release(&errs);
		return -1;
	}
	buf_free(&errs);

	s->enabled = true;
	s->account_id = xstrdup(account);
	s->corpus_id = corpus ? xstrdup(corpus) : NULL;
	s->ops_id = ops ? xstrdup(ops) : NULL;
	s->api_base = xstrdup(config_str(cfg, "d1", "api_base"));
	for (p = s->api_base + strlen(s->api_base); p > s->api_base && p[-1] == '/'; p--)
		p[-1] = '\0';
	s->budget = config_isset(cfg, "d1", "requests_per_5min") ? (int)config_int(cfg, "d1", "requests_per_5min") :
	    (default_budget > 0 ? default_budget : D1_DEFAULT_BUDGET);
	s->window_ms = (long)config_ms(cfg, "d1", "rate_window");
	s->block_ms = (long)config_ms(cfg, "d1", "rate_block");
	s->retries = (int)config_int(cfg, "d1", "retries");
	s->backoff_ms = (long)config_ms(cfg, "d1", "backoff");
	s->backoff_max_ms = (long)config_ms(cfg, "d1", "backoff_max");
	s->timeout_ms = (long)config_ms(cfg, "d1", "timeout");
	s->steps_table = xstrdup(config_str(cfg, "d1", "steps_table"));
	s->runs_table = xstrdup(config_str(cfg, "d1", "runs_table"));
	if ((v = config_str(cfg, "d1", "cursor_table")) != NULL)
		s->cursor_table = xstrdup(v);
	else {
		xasprintf(&s->cursor_table, "%s_cursor", sync_type);
		for (p = s->cursor_table; *p != '\0'; p++)
			if (*p == '-')
				*p = '_';
		if (!d1_sql_identifier(s->cursor_table)) {
			xasprintf(cause, "%s: [d1] cursor_table: the default '%s' is not a plain table name: set it",
			    config_path(cfg), s->cursor_table);
			d1_settings_clear(s);
			return -1;
		}
	}
	if ((s->token = secret_load(cfg, "d1", "token_file", "d1-api-token", cause)) == NULL) {
		char *c = *cause;

		xasprintf(cause, "D1 publishing is configured ([d1] account_id) but its API token (credential "
		    "d1-api-token, or [d1] token_file) cannot be read: %s", c);
		free(c);
		d1_settings_clear(s);
		return -1;
	}
	if ((v = token_problem(s->token, msg, sizeof msg)) != NULL) {
		xasprintf(cause, "the D1 API token (credential d1-api-token, or [d1] token_file) %s; D1 would refuse it "
		    "(codes 6003/6111)", v);
		d1_settings_clear(s);
		return -1;
	}
	return 0;
}

void
d1_settings_clear(struct d1_settings *s)
{
	free(s->account_id);
	free(s->corpus_id);
	free(s->ops_id);
	free(s->api_base);
	secret_free(s->token);
	free(s->steps_table);
	free(s->runs_table);
	free(s->cursor_table);
	memset(s, 0, sizeof *s);
}

/* --- client ---------------------------------------------------------------------------------------------------- */

static struct d1_db *
db_new(struct d1 *d1, const char *id, const char *label, const char *key)
{
	struct d1_db *db;

	if (id == NULL)
		return NULL;
	db = xcalloc(1, sizeof *db);
	db->d1 = d1;
	db->id = xstrdup(id);
	db->label = label;
	db->key = key;
	xasprintf(&db->url_query, "%s/accounts/%s/d1/database/%s/query", d1->s.api_base, d1->s.account_id, id);
	xasprintf(&db->url_raw, "%s/accounts/%s/d1/database/%s/raw", d1->s.api_base, d1->s.account_id, id);
	return db;
}

static void
db_free(struct d1_db *db)
{
	if (db == NULL)
		return;
	free(db->id);
	free(db->url_query);
	free(db->url_raw);
	free(db);
}

struct d1 *
d1_new(struct evcurl *ec, struct ev_loop *loop, const struct d1_settings *s)
{
	struct http_settings hs;
	struct d1 *d1;

	d1 = xcalloc(1, sizeof *d1);
	d1->loop = loop;
	TAILQ_INIT(&d1->reqs);
	d1->s = *s;
	d1->s.account_id = xstrdup(s->account_id);
	d1->s.corpus_id = s->corpus_id ? xstrdup(s->corpus_id) : NULL;
	d1->s.ops_id = s->ops_id ? xstrdup(s->ops_id) : NULL;
	d1->s.api_base = xstrdup(s->api_base);
	d1->s.token = NULL;	/* kept only inside the header */
	d1->s.steps_table = s->steps_table ? xstrdup(s->steps_table) : NULL;
	d1->s.runs_table = s->runs_table ? xstrdup(s->runs_table) : NULL;
	d1->s.cursor_table = s->cursor_table ? xstrdup(s->cursor_table) : NULL;
	xasprintf(&d1->auth_header, "Authorization: Bearer %s", s->token);

	memset(&hs, 0, sizeof hs);
	hs.name = "D1";
	hs.connect_timeout_ms = 10000;
	hs.low_speed_limit = 1024;
	hs.low_speed_time_ms = 20000;
	hs.total_timeout_ms = s->timeout_ms > 0 ? s->timeout_ms : 60000;
	hs.retries = 0;			/* d1.c decides what is retried (a 504 is; a 7500 is not) */
	hs.max_in_flight = 1;
	/* The pacing: one start per window / budget, so no window can hold more than the budget, retries included. */
	hs.min_interval_ms = s->budget > 0 ? (s->window_ms + s->budget - 1) / s->budget : 0;
	snprintf(hs.user_agent, sizeof hs.user_agent, "rtopacks-sync/%s (D1)", RTOPACKS_VERSION);
	d1->hc = http_client_new(ec, loop, &hs);
	d1->group = http_group_new();
	d1->corpus = db_new(d1, d1->s.corpus_id, "corpus", "corpus_database_id");
	d1->ops = db_new(d1, d1->s.ops_id, "ops", "ops_database_id");
	return d1;
}

void
d1_free(struct d1 *d1)
{
	if (d1 == NULL)
		return;
	d1_cancel_all(d1);
	http_group_free(d1->group);
	http_client_free(d1->hc);
	db_free(d1->corpus);
	db_free(d1->ops);
	explicit_bzero(d1->auth_header, strlen(d1->auth_header));
	free(d1->auth_header);
	free(d1->s.account_id);
	free(d1->s.corpus_id);
	free(d1->s.ops_id);
	free(d1->s.api_base);
	free(d1->s.steps_table);
	free(d1->s.runs_table);
	free(d1->s.cursor_table);
	free(d1);
}

struct d1_db *
d1_corpus(struct d1 *d1)
{
	return d1->corpus;
}

struct d1_db *
d1_ops(struct d1 *d1)
{
	return d1->ops;
}

double
d1_blocked_until(const struct d1 *d1)
{
	return d1->blocked_until > mono_now() ? d1->blocked_wall : 0;
}

void
d1_get_stats(const struct d1 *d1, struct d1_stats *st)
{
	*st = d1->stats;
}

/* JSON string escaping for the body (the SQL is UTF-8, checked by d1-sql.c for the values it writes). */
static void
json_string(struct buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	buf_addc(b, '"');
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			buf_addc(b, '\\');
			buf_addc(b, (char)c);
		} else if (c == '\n')
			buf_adds(b, "\\n");
		else if (c == '\t')
			buf_adds(b, "\\t");
		else if (c < 0x20 || c == 0x7f) {
			buf_adds(b, "\\u00");
			buf_addc(b, hex[c >> 4]);
			buf_addc(b, hex[c & 0xf]);
		} else
			buf_addc(b, (char)c);
	}
	buf_addc(b, '"');
}

static void send_req(struct d1_req *);

static void
finish(struct d1_req *r, enum d1_status st, const char *error, const cJSON *result)
{
	struct d1 *d1 = r->db->d1;
	struct d1_result res;
	const cJSON *e, *meta;

	TAILQ_REMOVE(&d1->reqs, r, entry);
	ev_timer_stop(d1->loop, &r->timer);
	memset(&res, 0, sizeof res);
	res.status = st;
	res.error = error;
	res.http_status = r->last_status;
	res.code = r->last_code;
	res.result = result;
	res.attempts = r->attempts;
	res.blocks = r->blocks;
	res.timeouts = r->timeouts;
	res.elapsed = mono_now() - r->started;
	cJSON_ArrayForEach(e, result) {
		res.statements++;
		if ((meta = cJSON_GetObjectItemCaseSensitive(e, "meta")) == NULL)
			continue;
		res.rows_read += cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(meta, "rows_read")) > 0 ?
		    cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(meta, "rows_read")) : 0;
		res.rows_written += cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(meta, "rows_written")) > 0 ?
		    cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(meta, "rows_written")) : 0;
		res.duration_ms += cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(meta, "duration")) > 0 ?
		    cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(meta, "duration")) : 0;
	}
	if (st != D1_OK && st != D1_ERR_CANCELLED)
		d1->stats.failures++;
	if (!r->dropped)
		r->on_done(&res, r->arg);
	free(r->body);
	free(r->what);
	free(r);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	send_req(w->data);
}

static void
wait_then_send(struct d1_req *r, double seconds)
{
	ev_timer_stop(r->db->d1->loop, &r->timer);
	ev_timer_set(&r->timer, seconds > 0 ? seconds : 0, 0.0);
	ev_timer_start(r->db->d1->loop, &r->timer);
}

static void http_done(struct http_request *, const struct http_result *, void *);

static void
send_req(struct d1_req *r)
{
	struct d1 *d1 = r->db->d1;
	struct http_req_opts o;
	const char *headers[] = { d1->auth_header, "Content-Type: application/json", "Accept: application/json",
	    NULL };
	double now = mono_now();

	/* Nothing goes out while D1's rate limit blocks us: an early call would only keep the block. */
	if (d1->blocked_until > now) {
		wait_then_send(r, d1->blocked_until - now);
		return;
	}
	memset(&o, 0, sizeof o);
	o.method = "POST";
	o.url = r->raw ? r->db->url_raw : r->db->url_query;
	o.headers = headers;
	o.body = r->body;
	o.body_len = r->body_len;
	o.accept_types = "application/json";
	o.max_body = D1_ANSWER_MAX;
	o.on_done = http_done;
	o.arg = r;
	o.what = r->what;
	o.retries = -1;
	o.group = d1->group;
	r->attempts++;
	d1->stats.requests++;
	d1->stats.bytes_out += r->body_len;
	r->http = http_request(d1->hc, &o);
}

void
d1_query(struct d1_db *db, const struct d1_query *q)
{
	struct d1 *d1 = db->d1;
	struct d1_req *r;
	struct buf b, all;
	const cJSON *item;
	size_t len = q->sql == NULL ? 0 : q->sql_len ? q->sql_len : strlen(q->sql);
	char *params;

	r = xcalloc(1, sizeof *r);
	r->db = db;
	r->raw = q->raw;
	r->on_done = q->on_done;
	r->arg = q->arg;
	r->started = mono_now();
	buf_init(&b);
	if (q->batch != NULL) {
		/* The tables of every item's statement, for messages. */
		buf_init(&all);
		cJSON_ArrayForEach(item, q->batch)
			if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(item, "sql"))) {
				buf_adds(&all, cJSON_GetObjectItemCaseSensitive(item, "sql")->valuestring);
				buf_adds(&all, ";\n");
			}
		d1_sql_tables(all.data != NULL ? all.data : "", all.len, r->tables, sizeof r->tables);
		buf_free(&all);
		params = cJSON_PrintUnformatted(q->batch);
		buf_printf(&b, "{\"batch\":%s}", params != NULL ? params : "[]");
		free(params);
	} else {
		d1_sql_tables(q->sql, len, r->tables, sizeof r->tables);
		buf_adds(&b, "{\"sql\":");
		json_string(&b, q->sql, len);
		if (q->params != NULL && (params = cJSON_PrintUnformatted(q->params)) != NULL) {
			buf_printf(&b, ",\"params\":%s", params);
			free(params);
		}
		buf_addc(&b, '}');
	}
	if (q->what != NULL)
		r->what = xstrdup(q->what);
	else
		xasprintf(&r->what, "%s (%s)", q->raw ? "raw" : "query", r->tables);
	r->body_len = b.len;
	r->body = buf_release(&b);
	ev_timer_init(&r->timer, timer_cb, 0.0, 0.0);
	r->timer.data = r;
	TAILQ_INSERT_TAIL(&d1->reqs, r, entry);
	/* Never call back from inside: even a blocked client defers through the timer. */
	wait_then_send(r, 0);
}

void
d1_cancel_all(struct d1 *d1)
{
	struct d1_req *r;

	http_group_cancel(d1->group);	/* in flight or queued in http.c: their http_done finishes them */
	while ((r = TAILQ_FIRST(&d1->reqs)) != NULL)
		finish(r, D1_ERR_CANCELLED, "cancelled", NULL);
}

void
d1_cancel_for(struct d1 *d1, void *arg)
{
	struct d1_req *r;
	struct d1_result res;

again:
	TAILQ_FOREACH(r, &d1->reqs, entry) {
		if (r->arg != arg || r->dropped)
			continue;
		if (r->http == NULL) {
			/* Queued or waiting (a back-off, a rate-limit block): it simply never goes out. */
			finish(r, D1_ERR_CANCELLED, "cancelled", NULL);
			goto again;	/* on_done may have queued or cancelled others */
		}
		/*
		 * On the wire, in the client's one connection, which the other owners' requests share: it finishes
		 * there (a write is idempotent, so it may well commit) and its answer is dropped; its owner hears
		 * "cancelled" now, exactly once.
		 */
		r->dropped = true;
		memset(&res, 0, sizeof res);
		res.status = D1_ERR_CANCELLED;
		res.error = "cancelled";
		res.attempts = r->attempts;
		res.elapsed = mono_now() - r->started;
		r->on_done(&res, r->arg);
		goto again;
	}
}

/* D1's message, made safe to store and show: escaped, redacted, bounded. */
static void
d1_message(const cJSON *env, int *code, char *out, size_t len)
{
	const cJSON *errs, *e0, *c, *m;
	char raw[D1_MESSAGE_MAX + 1];

	*code = 0;
	out[0] = '\0';
	errs = cJSON_GetObjectItemCaseSensitive(env, "errors");
	if ((e0 = cJSON_GetArrayItem(errs, 0)) == NULL)
		return;
	if (cJSON_IsNumber(c = cJSON_GetObjectItemCaseSensitive(e0, "code")))
		*code = (int)cJSON_GetNumberValue(c);
	if (cJSON_IsString(m = cJSON_GetObjectItemCaseSensitive(e0, "message"))) {
		snprintf(raw, sizeof raw, "%s", cJSON_GetStringValue(m));
		redact(raw);
		text_escape(out, len, raw, strlen(raw), 0);
	}
	/* 6003 carries the useful part in its chain (6111 "Invalid format for Authorization header"). */
	if ((c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(e0, "error_chain"), 0)) != NULL &&
	    cJSON_IsString(m = cJSON_GetObjectItemCaseSensitive(c, "message"))) {
		size_t have = strlen(out);

		snprintf(raw, sizeof raw, "%s", cJSON_GetStringValue(m));
		redact(raw);
		if (have + 4 < len) {
			snprintf(out + have, len - have, " (");
			have += 2;
			have += text_escape(out + have, len - have - 1, raw, strlen(raw), 0);
			snprintf(out + have, len - have, ")");
		}
	}
}

static bool
auth_code(int code)
{
	return code == 1000 || code == 6003 || code == 6111 || code == 9106 || code == 10000 || code == 7403 ||
	    code == 7400 || code == 7404 || code == 9109;
}

static double
backoff(const struct d1 *d1, int attempt)
{
	double base = (double)d1->s.backoff_ms / 1000.0, cap = (double)d1->s.backoff_max_ms / 1000.0, d;

	d = base * pow(2.0, attempt - 1);
	if (d > cap)
		d = cap;
	return d / 2 + d / 2 * ((double)random() / (double)RAND_MAX);
}

static void
transient(struct d1_req *r)
{
	struct d1 *d1 = r->db->d1;
	char msg[1024];
	double delay;

	if (r->attempts <= d1->s.retries) {
		delay = backoff(d1, r->attempts);
		d1->stats.retries++;
		log_info("D1 %s database %s: %s; retry %d of %d in %.1fs", r->db->label, r->what, r->reason,
		    r->attempts, d1->s.retries, delay);
		wait_then_send(r, delay);
		return;
	}
	snprintf(msg, sizeof msg, "D1 %s database: %s: %s (after %d attempts; the request is idempotent and can be "
	    "sent again later)", r->db->label, r->what, r->reason, r->attempts);
	finish(r, D1_ERR_TRANSIENT, msg, NULL);
}

static void
rate_block(struct d1_req *r, long retry_after, const char *dmsg)
{
	struct d1 *d1 = r->db->d1;
	char msg[1024], when[ISO8601_LEN];
	double wait;

	r->blocks++;
	d1->stats.blocks++;
	wait = retry_after > 0 ? (double)(retry_after > D1_BLOCK_CAP ? D1_BLOCK_CAP : retry_after) :
	    (double)d1->s.block_ms / 1000.0;
	if (mono_now() + wait > d1->blocked_until) {
		d1->blocked_until = mono_now() + wait;
		d1->blocked_wall = (double)time(NULL) + wait;
	}
	http_client_pause(d1->hc, wait);
	iso8601_fmt((time_t)ceil(d1->blocked_wall), when);
	if (r->blocks > D1_MAX_BLOCKS) {
		snprintf(msg, sizeof msg, "D1 %s database: %s: the account's API rate limit (HTTP 429, code %d: %s) "
		    "was hit %d times for one request: another client (wrangler, the dashboard, another daemon) uses "
		    "the token's 1,200 requests per 5 minutes, or [d1] requests_per_5min is too high", r->db->label,
		    r->what, r->last_code, dmsg, r->blocks);
		finish(r, D1_ERR_RATE, msg, NULL);
		return;
	}
	log_warnx("D1: the account's API rate limit (HTTP 429, code %d): no D1 request until %s (%.0f s)%s",
	    r->last_code, when, wait, retry_after > 0 ? "" : ", no Retry-After given");
	wait_then_send(r, d1->blocked_until - mono_now());
}

static void
http_done(struct http_request *hreq, const struct http_result *res, void *arg)
{
	struct d1_req *r = arg;
	struct d1_db *db = r->db;
	cJSON *env = NULL;
	const cJSON *result, *e;
	char dmsg[D1_MESSAGE_MAX * 3], why[256], msg[2048];
	bool json, ok;
	int code = 0, i;

	r->http = NULL;
	if (res->cancelled || r->dropped) {
		/* A dropped query is not retried either: its owner has moved on (finish skips its on_done). */
		finish(r, D1_ERR_CANCELLED, "cancelled", NULL);
		return;
	}
	r->last_status = res->status;
	dmsg[0] = '\0';
	why[0] = '\0';
	json = res->body_len > 0 && ((res->content_type != NULL &&
	    strncasecmp(res->content_type, "application/json", 16) == 0) || res->body[0] == '{');
	if (json && (env = json_parse_bounded(res->body, res->body_len, D1_ANSWER_NODES, why, sizeof why)) != NULL)
		d1_message(env, &code, dmsg, sizeof dmsg);
	r->last_code = code;

	if (res->status == 0) {
		/* No answer: refused, reset, timed out.  The write may or may not have happened: replay it. */
		snprintf(r->reason, sizeof r->reason, "%s", res->error ? res->error : "no answer");
		goto retry;
	}
	if (res->status >= 200 && res->status <= 299 && res->error == NULL) {
		if (env == NULL) {
			/* A cut or spoiled answer to a request that may have committed: replay it (idempotent). */
			snprintf(r->reason, sizeof r->reason, "HTTP %ld but the answer is not D1's JSON envelope (%s)",
			    res->status, why[0] ? why : "empty");
			goto retry;
		}
		result = cJSON_GetObjectItemCaseSensitive(env, "result");
		ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(env, "success")) && cJSON_IsArray(result);
		i = 0;
		cJSON_ArrayForEach(e, result) {
			if (!ok)
				break;
			if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "success"))) {
				ok = false;
				break;
			}
			i++;
		}
		if (ok) {
			finish(r, D1_OK, NULL, result);
			cJSON_Delete(env);
			return;
		}
		if (code == 0) {
			snprintf(msg, sizeof msg, "D1 %s database: %s: HTTP %ld but %s (statement %d did not succeed)",
			    db->label, r->what, res->status, dmsg[0] ? dmsg : "success is not true", i + 1);
			finish(r, D1_ERR_REQUEST, msg, NULL);
			cJSON_Delete(env);
			return;
		}
	}
	if (res->status == 429) {
		/* D1's own overload (its queue is full) is brief: back off.  The account's limit (971) blocks us. */
		if (code != 971 && (code == 7429 || strstr(dmsg, "overloaded") != NULL ||
		    strstr(dmsg, "queued") != NULL)) {
			snprintf(r->reason, sizeof r->reason, "D1 is overloaded (HTTP 429, code %d: %s)", code, dmsg);
			goto retry;
		}
		rate_block(r, res->retry_after, dmsg[0] ? dmsg : "no message");
		cJSON_Delete(env);
		return;
	}
	if (auth_code(code) || res->status == 401 || res->status == 403) {
		const char *fix;
		char fixbuf[256];

		switch (code) {
		case 6003:
		case 6111:
			fix = "the credential d1-api-token must hold the token alone: no quotes, no \"Bearer \", no white "
			    "space";
			break;
		case 7403:
			fix = "check [d1] account_id, and that the token is for that account";
			break;
		case 7400:
		case 7404:
			snprintf(fixbuf, sizeof fixbuf, "check [d1] %s (the UUID `wrangler d1 list` shows) and that the "
			    "database exists in account %s", db->key, db->d1->s.account_id);
			fix = fixbuf;
			break;
		default:
			fix = "check the credential d1-api-token: a Cloudflare API token with the D1 Edit permission "
			    "on this account, not revoked or expired";
			break;
		}
		snprintf(msg, sizeof msg, "D1 %s database: %s refused (HTTP %ld, code %d: %s): %s; not retried",
		    db->label, code == 7400 || code == 7404 ? "the database id was" :
		    code == 7403 ? "the account was" : "the API token was", res->status, code,
		    dmsg[0] ? dmsg : "no message", fix);
		finish(r, D1_ERR_AUTH, msg, NULL);
		cJSON_Delete(env);
		return;
	}
	if (code == 7500 && res->status >= 400 && res->status < 500) {
		snprintf(msg, sizeof msg, "D1 %s database: SQL error in the statement%s on table%s %s (HTTP %ld, code "
		    "7500): %s; the request was rolled back whole and is not retried", db->label,
		    strchr(r->tables, ',') ? "s" : "", strchr(r->tables, ',') ? "s" : "", r->tables, res->status,
		    dmsg[0] ? dmsg : "no message");
		finish(r, D1_ERR_SQL, msg, NULL);
		cJSON_Delete(env);
		return;
	}
	if (res->status >= 500 || res->status == 408 || (res->status >= 200 && res->status <= 299)) {
		if (res->status == 504)
			r->timeouts++;
		if (res->status == 504)
			snprintf(r->reason, sizeof r->reason, "HTTP 504: D1 ran past its 30 s limit and the write may "
			    "have committed; replayed (idempotent)");
		else if (code != 0)
			snprintf(r->reason, sizeof r->reason, "HTTP %ld, code %d: %s", res->status, code, dmsg);
		else
			snprintf(r->reason, sizeof r->reason, "%s", res->error ? res->error : "HTTP error");
		goto retry;
	}
	snprintf(msg, sizeof msg, "D1 %s database: %s: HTTP %ld, code %d%s%s; not retried%s", db->label, r->what,
	    res->status, code, dmsg[0] ? ": " : "", dmsg, res->status == 404 || res->status == 405 ?
	    " (check [d1] api_base: https://api.cloudflare.com/client/v4)" : "");
	finish(r, D1_ERR_REQUEST, msg, NULL);
	cJSON_Delete(env);
	return;
retry:
	cJSON_Delete(env);
	transient(r);
}
