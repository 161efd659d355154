/*
 * d1-probe: the D1 client (common/net/d1.c) on a libev loop, driven from the command line with a configuration
 * file's [d1] section (the token from its token_file or $CREDENTIALS_DIRECTORY/d1-api-token, as a daemon reads it),
 * its outcome printed as one JSON line.  tests/foundation/test_d1_client.py runs it against tests/fakes/fake_d1.py.
 *
 *   d1-probe -c FILE [--db ops|corpus] [--raw] query SQL
 *   d1-probe -c FILE [--db ...] repeat N SQL              N queries one after the other (pacing)
 *   d1-probe -c FILE [--db ...] batch SQL PARAMS_JSON ...   the batch form: each SQL with its JSON array of params
 *   d1-probe -c FILE [--db ...] [--stmt-max B] upsert TABLE ROWS TEXT_BYTES
 *        ROWS rows (id, v TEXT of about TEXT_BYTES with quotes and non-ASCII, n, r, b BLOB) as multi-row upserts,
 *        one request per D1_REQUEST_BUDGET bytes of SQL
 *   d1-probe -c FILE check                                 d1_settings_load only (as -n does)
 *
 * Exit status: 0 when everything succeeded, 1 when D1 (or the settings) failed, 2 usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <curl/curl.h>

#include "buf.h"
#include "config.h"
#include "d1-sql.h"
#include "d1.h"
#include "evcurl.h"
#include "log.h"
#include "timeutil.h"
#include "xmalloc.h"

static const char *const status_names[] = { "ok", "auth", "sql", "request", "transient", "rate", "cancelled" };

static struct {
	struct d1_db *db;
	bool raw;
	int todo, done;			/* repeat */
	const char *sql;
	cJSON *batch;
	char **chunks;			/* upsert: one request each */
	size_t nchunks, next;
	cJSON *out;
	int rc;
	double t0;
	int attempts, blocks, timeouts;
	double rows_written;
} P;

static void send_next(void);

static void
finish(const struct d1_result *r)
{
	char *s;

	cJSON_AddStringToObject(P.out, "status", status_names[r ? r->status : D1_OK]);
	if (r != NULL && r->error != NULL)
		cJSON_AddStringToObject(P.out, "error", r->error);
	else
		cJSON_AddNullToObject(P.out, "error");
	if (r != NULL) {
		cJSON_AddNumberToObject(P.out, "http_status", (double)r->http_status);
		cJSON_AddNumberToObject(P.out, "code", r->code);
		cJSON_AddNumberToObject(P.out, "statements", r->statements);
		if (r->result != NULL)
			cJSON_AddItemToObject(P.out, "result", cJSON_Duplicate(r->result, 1));
	}
	cJSON_AddNumberToObject(P.out, "attempts", P.attempts);
	cJSON_AddNumberToObject(P.out, "blocks", P.blocks);
	cJSON_AddNumberToObject(P.out, "timeouts", P.timeouts);
	cJSON_AddNumberToObject(P.out, "rows_written", P.rows_written);
	cJSON_AddNumberToObject(P.out, "elapsed", mono_now() - P.t0);
	s = cJSON_PrintUnformatted(P.out);
	printf("%s\n", s);
	free(s);
	P.rc = r == NULL || r->status == D1_OK ? 0 : 1;
	ev_break(EV_DEFAULT, EVBREAK_ALL);
}

static void
on_done(const struct d1_result *r, void *arg)
{
	P.attempts += r->attempts;
	P.blocks += r->blocks;
	P.timeouts += r->timeouts;
	P.rows_written += r->rows_written;
	if (r->status != D1_OK) {
		finish(r);
		return;
	}
	P.done++;
	if (P.chunks != NULL ? P.next < P.nchunks : P.done < P.todo) {
		send_next();
		return;
	}
	cJSON_AddNumberToObject(P.out, "queries", P.done);
	finish(r);
}

static void
send_next(void)
{
	struct d1_query q;

	memset(&q, 0, sizeof q);
	q.sql = P.chunks != NULL ? P.chunks[P.next++] : P.sql;
	q.batch = P.batch;
	q.raw = P.raw;
	q.on_done = on_done;
	d1_query(P.db, &q);
}

/* ROWS rows in requests of at most D1_REQUEST_BUDGET bytes, each made of statements of at most stmt_max. */
static void
build_upsert(const char *table, long rows, long text_bytes, size_t stmt_max)
{
	static const char *const cols[] = { "id", "v", "n", "r", "b" };
	struct d1_upsert *u;
	struct d1_upsert_stats st;
	struct d1_value row[5];
	struct buf sql, text;
	unsigned char blob[4] = { 0x00, 0x27, 0xff, 0x10 };
	char why[256];
	long i;

	if ((u = d1_upsert_new(table, cols, 5, 1, stmt_max)) == NULL)
		fatalx("bad upsert table %s", table);
	buf_init(&sql);
	buf_init(&text);
	for (i = 0; i < rows; i++) {
		buf_reset(&text);
		buf_printf(&text, "row %ld: it's \"quoted\", caf\xc3\xa9; -- not a comment ", i);
		while ((long)text.len < text_bytes)
			buf_addc(&text, (char)('a' + text.len % 26));
		row[0] = D1_INT(i + 1);
		row[1] = (struct d1_value){ .type = D1V_TEXT, .p = text.data, .len = text.len };
		row[2] = i % 7 == 0 ? D1_NULL : D1_INT(i * 1000003);
		row[3] = D1_REAL((double)i / 4);
		row[4] = D1_BLOB(blob, sizeof blob);
		if (sql.len + text.len + 200 > D1_REQUEST_BUDGET) {
			d1_upsert_end(u, &sql);
			P.chunks = xreallocarray(P.chunks, P.nchunks + 1, sizeof *P.chunks);
			P.chunks[P.nchunks++] = buf_release(&sql);
			buf_init(&sql);
		}
		if (d1_upsert_row(u, &sql, row, why, sizeof why) == -1)
			fatalx("row %ld: %s", i, why);
	}
	d1_upsert_end(u, &sql);
	P.chunks = xreallocarray(P.chunks, P.nchunks + 1, sizeof *P.chunks);
	P.chunks[P.nchunks++] = buf_release(&sql);
	d1_upsert_stats(u, &st);
	cJSON_AddNumberToObject(P.out, "rows", (double)st.rows);
	cJSON_AddNumberToObject(P.out, "built_statements", (double)st.statements);
	cJSON_AddNumberToObject(P.out, "max_statement", (double)st.max_statement);
	cJSON_AddNumberToObject(P.out, "requests", (double)P.nchunks);
	d1_upsert_free(u);
	buf_free(&text);
}

static void
usage(void)
{
	fprintf(stderr, "usage: d1-probe -c FILE [--db ops|corpus] [--raw] [--stmt-max B] "
	    "query SQL | repeat N SQL | batch SQL PARAMS... | upsert TABLE ROWS TEXT_BYTES | check\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "raw", no_argument, NULL, 'r' },
		{ "stmt-max", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cfg_section *sections[] = { &cfg_d1, NULL };
	const char *conf = NULL, *which = "ops", *cmd;
	struct d1_settings s;
	struct config *cfg;
	struct evcurl *ec;
	struct d1 *d1;
	size_t stmt_max = 0, i;
	char *cause = NULL;
	int ch;

	log_init("d1-probe", 0);
	while ((ch = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'd':
			which = optarg;
			break;
		case 'r':
			P.raw = true;
			break;
		case 'm':
			stmt_max = (size_t)atol(optarg);
			break;
		default:
			usage();
		}
	}
	if (conf == NULL || optind >= argc)
		usage();
	cmd = argv[optind++];
	P.out = cJSON_CreateObject();
	P.t0 = mono_now();
	if ((cfg = config_load(conf, sections, &cause)) == NULL ||
	    d1_settings_load(&s, cfg, "test-sync", 0, &cause) == -1) {
		cJSON_AddStringToObject(P.out, "status", "config");
		cJSON_AddStringToObject(P.out, "error", cause);
		free(cause);
		cause = cJSON_PrintUnformatted(P.out);
		printf("%s\n", cause);
		free(cause);
		cJSON_Delete(P.out);
		config_free(cfg);
		return 1;
	}
	cJSON_AddBoolToObject(P.out, "enabled", s.enabled);
	cJSON_AddNumberToObject(P.out, "budget", s.budget);
	if (s.enabled)
		cJSON_AddStringToObject(P.out, "cursor_table", s.cursor_table);
	if (strcmp(cmd, "check") == 0) {
		finish(NULL);
		d1_settings_clear(&s);
		config_free(cfg);
		cJSON_Delete(P.out);
		return 0;
	}
	if (!s.enabled)
		fatalx("[d1] is not configured");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ec = evcurl_new(EV_DEFAULT);
	d1 = d1_new(ec, EV_DEFAULT, &s);
	d1_settings_clear(&s);
	if ((P.db = strcmp(which, "corpus") == 0 ? d1_corpus(d1) : d1_ops(d1)) == NULL)
		fatalx("no %s database in [d1]", which);
	if (strcmp(cmd, "query") == 0 && optind + 1 == argc) {
		P.sql = argv[optind];
		P.todo = 1;
	} else if (strcmp(cmd, "repeat") == 0 && optind + 2 == argc) {
		P.todo = atoi(argv[optind]);
		P.sql = argv[optind + 1];
	} else if (strcmp(cmd, "batch") == 0 && optind + 2 <= argc && (argc - optind) % 2 == 0) {
		P.batch = cJSON_CreateArray();
		for (; optind + 1 < argc; optind += 2) {
			cJSON *item = cJSON_CreateObject(), *params = cJSON_Parse(argv[optind + 1]);

			if (!cJSON_IsArray(params))
				fatalx("batch: '%s' is not a JSON array", argv[optind + 1]);
			cJSON_AddStringToObject(item, "sql", argv[optind]);
			cJSON_AddItemToObject(item, "params", params);
			cJSON_AddItemToArray(P.batch, item);
		}
		P.todo = 1;
	} else if (strcmp(cmd, "upsert") == 0 && optind + 3 == argc)
		build_upsert(argv[optind], atol(argv[optind + 1]), atol(argv[optind + 2]), stmt_max);
	else
		usage();
	send_next();
	ev_run(EV_DEFAULT, 0);
	d1_free(d1);
	evcurl_free(ec);
	for (i = 0; i < P.nchunks; i++)
		free(P.chunks[i]);
	free(P.chunks);
	cJSON_Delete(P.out);
	cJSON_Delete(P.batch);
	config_free(cfg);
	curl_global_cleanup();
	return P.rc;
}
