/* d1-sql.c: SQL literals, the multi-row upsert builder's statement budget, and the table names for messages. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "d1-sql.h"
#include "log.h"

static const char *
lit(struct d1_value v)
{
	static struct buf b;
	char why[128];

	buf_free(&b);
	buf_init(&b);
	if (d1_sql_literal(&b, &v, why, sizeof why) == -1)
		return NULL;
	return b.data;
}

int
main(void)
{
	static const char *const cols[] = { "rto_code", "nrt_code", "status", "note" };
	static const char *const keys[] = { "a", "b" };
	unsigned char blob[] = { 0x00, 0xab, 0x27 };
	struct d1_value row[4];
	struct d1_upsert *u;
	struct d1_upsert_stats st;
	struct buf out;
	char why[256], tables[128], note[400], rto[16], nrt[16], *p, *stmt;
	size_t i, n;
	int rc = 0;

	log_init("test_d1_sql", 0);
	CHECK_STR(lit(D1_NULL), "NULL");
	CHECK_STR(lit(D1_INT(-9223372036854775807LL - 1)), "-9223372036854775808");
	CHECK_STR(lit(D1_REAL(3)), "3.0");
	CHECK_STR(lit(D1_REAL(0.1)), "0.10000000000000001");
	CHECK(lit(D1_REAL(NAN)) == NULL);
	CHECK(lit(D1_REAL(INFINITY)) == NULL);
	CHECK_STR(lit(D1_TEXT("it's")), "'it''s'");
	CHECK_STR(lit(D1_TEXT("caf\xc3\xa9 ''")), "'caf\xc3\xa9 '''''");
	CHECK_STR(lit(D1_TEXT("")), "''");
	CHECK(lit(D1_TEXT("bad \xc3 utf-8")) == NULL);
	CHECK(lit(((struct d1_value){ .type = D1V_TEXT, .p = "a\0b", .len = 3 })) == NULL);
	CHECK_STR(lit(D1_BLOB(blob, sizeof blob)), "X'00AB27'");
	CHECK_STR(lit(D1_BLOB(blob, 0)), "X''");

	CHECK(d1_sql_identifier("tga_sync_steps"));
	CHECK(!d1_sql_identifier("1x"));
	CHECK(!d1_sql_identifier("x;drop"));
	CHECK(!d1_sql_identifier(""));
	CHECK(d1_upsert_new("bad name", cols, 4, 2, 0) == NULL);
	CHECK(d1_upsert_new("t", cols, 4, 5, 0) == NULL);

	/* DO NOTHING when every column is a key. */
	buf_init(&out);
	u = d1_upsert_new("k", keys, 2, 2, 0);
	row[0] = D1_INT(1);
	row[1] = D1_TEXT("x");
	CHECK(d1_upsert_row(u, &out, row, why, sizeof why) == 0);
	d1_upsert_end(u, &out);
	CHECK_STR(out.data, "INSERT INTO k (a, b) VALUES (1,'x') ON CONFLICT(a, b) DO NOTHING;\n");
	d1_upsert_free(u);
	buf_free(&out);

	/* Many rows: every statement within the budget, the rows all there, in order. */
	buf_init(&out);
	u = d1_upsert_new("tga_rto_scope", cols, 4, 2, 2000);
	for (i = 0; i < 500; i++) {
		snprintf(rto, sizeof rto, "%05zu", i % 7);
		snprintf(nrt, sizeof nrt, "BSB%05zu", i);
		row[0] = D1_TEXT(rto);
		row[1] = D1_TEXT(nrt);
		row[2] = i % 3 ? D1_TEXT("current") : D1_NULL;
		row[3] = D1_TEXT("o'clock");
		if (d1_upsert_row(u, &out, row, why, sizeof why) != 0)
			rc = 1;
	}
	d1_upsert_end(u, &out);
	d1_upsert_stats(u, &st);
	CHECK(rc == 0);
	CHECK(st.rows == 500);
	CHECK(st.statements > 10);
	CHECK(st.max_statement <= 2000 && st.max_statement > 1800);
	for (n = 0, p = out.data; (stmt = strstr(p, "INSERT INTO")) != NULL; n++) {
		char *end = strstr(stmt, ";\n");

		CHECK(end != NULL && (size_t)(end + 2 - stmt) <= 2000);
		CHECK(strstr(stmt, " ON CONFLICT(rto_code, nrt_code) DO UPDATE SET status = excluded.status, "
		    "note = excluded.note;\n") == end - strlen(" ON CONFLICT(rto_code, nrt_code) DO UPDATE SET status = "
		    "excluded.status, note = excluded.note"));
		p = end + 2;
	}
	CHECK(n == st.statements);
	CHECK(*p == '\0');
	CHECK(strstr(out.data, "('00002','BSB00499','current','o''clock')") != NULL);

	/* A row no statement can hold, and a refused value: out stays as it was. */
	n = out.len;
	memset(note, 'x', sizeof note - 1);
	note[sizeof note - 1] = '\0';
	row[3] = D1_TEXT(note);
	d1_upsert_free(u);
	u = d1_upsert_new("t", cols, 4, 2, 300);
	CHECK(d1_upsert_row(u, &out, row, why, sizeof why) == -1 && strstr(why, "more than a statement") != NULL);
	row[3] = D1_TEXT("nul \xff");
	CHECK(d1_upsert_row(u, &out, row, why, sizeof why) == -1 && strstr(why, "UTF-8") != NULL);
	CHECK(out.len == n);
	d1_upsert_free(u);
	buf_free(&out);

	/* Table names for messages. */
#define TABLES(sql) d1_sql_tables(sql, strlen(sql), tables, sizeof tables)
	CHECK_STR(TABLES("INSERT INTO a (x) VALUES ('FROM b') ON CONFLICT(x) DO UPDATE SET y = excluded.y"), "a");
	CHECK_STR(TABLES("DELETE FROM c WHERE k = 1;\nINSERT OR REPLACE INTO d VALUES (1); UPDATE c SET v = 2"),
	    "c, d");
	CHECK_STR(TABLES("CREATE TABLE IF NOT EXISTS e (x); -- FROM f\nSELECT count(*) FROM \"g\""), "e");
	CHECK_STR(TABLES("SELECT 1"), "?");
	CHECK_DONE();
}
