/*
 * SQL text for Cloudflare D1 (docs/d1-design.md, "Literal encoding" and "Batching"): values as SQL literals and
 * multi-row upserts
 *
 *	INSERT INTO t (a, b, c) VALUES (…),(…),… ON CONFLICT(a) DO UPDATE SET b = excluded.b, c = excluded.c
 *
 * each statement at most max_stmt bytes (D1 refuses a statement over 100,000 bytes; we keep 90,000), so a chunk of
 * rows becomes as few statements as fit.  Literals, not bound parameters: there is no 100-parameter limit to meet,
 * and several statements can share one request's `sql` string (D1 leaves params with several statements
 * undocumented).  Identifiers come from the program (compiled-in names or checked configuration), never from data:
 * d1_upsert_new() refuses one that is not [A-Za-z_][A-Za-z0-9_]*.
 *
 * Sizes are the UTF-8 bytes of the SQL as D1 sees it (after the JSON body is decoded), statement separator included.
 */
#ifndef RTOPACKS_D1_SQL_H
#define RTOPACKS_D1_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"

#define D1_STATEMENT_MAX 100000		/* D1's limit per statement, bytes */
#define D1_STATEMENT_BUDGET 90000	/* what we write: a margin under it */
#define D1_PARAMS_MAX 100		/* bound parameters per statement */

enum d1_vtype { D1V_NULL, D1V_INT, D1V_REAL, D1V_TEXT, D1V_BLOB };

struct d1_value {
	enum d1_vtype type;
	int64_t i;
	double r;
	const void *p;		/* TEXT (UTF-8, no NUL) or BLOB bytes */
	size_t len;
};

/* Shorthands for rows built in C. */
#define D1_NULL ((struct d1_value){ .type = D1V_NULL })
#define D1_INT(v) ((struct d1_value){ .type = D1V_INT, .i = (v) })
#define D1_REAL(v) ((struct d1_value){ .type = D1V_REAL, .r = (v) })
#define D1_TEXT(s) ((struct d1_value){ .type = D1V_TEXT, .p = (s), .len = strlen(s) })
#define D1_BLOB(b, n) ((struct d1_value){ .type = D1V_BLOB, .p = (b), .len = (n) })

/* Is s a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 64 bytes)? */
bool d1_sql_identifier(const char *s);

/*
 * Append v to out as an SQL literal: TEXT as '…' with ' doubled, integers as %lld, REAL as %.17g (always with a
 * '.' or exponent, so it stays REAL), NULL, BLOB as X'hex'.  Returns 0, or -1 with why when the value has no
 * literal: TEXT with a NUL byte or bytes that are not UTF-8 (a JSON body cannot carry them), a REAL that is NaN or
 * infinite.  On -1, out is unchanged.
 */
int d1_sql_literal(struct buf *out, const struct d1_value *v, char *why, size_t whylen);

struct d1_upsert;

/*
 * An upsert builder for table (cols[0..ncols)), whose conflict target is the first npk columns; the others are
 * updated from excluded.  All columns keys: DO NOTHING.  max_stmt 0 means D1_STATEMENT_BUDGET.  NULL if a name is
 * not an identifier or the counts make no sense (a programming error: the caller fails loudly).
 */
struct d1_upsert *d1_upsert_new(const char *table, const char *const *cols, size_t ncols, size_t npk,
    size_t max_stmt);
void d1_upsert_free(struct d1_upsert *);

/*
 * Add a row (ncols values) to out, the SQL text of a request: into the open statement when it fits within
 * max_stmt, else the open statement is ended (";\n") and a new one begun.  Returns 0, or -1 with why (the row is
 * not added, out is unchanged): a value without a literal, or one row too large for any statement.
 */
int d1_upsert_row(struct d1_upsert *, struct buf *out, const struct d1_value *row, char *why, size_t whylen);
/* End the open statement, if any (call before sending out, or before another table's rows go into out). */
void d1_upsert_end(struct d1_upsert *, struct buf *out);

/* Since d1_upsert_new: statements begun, rows added, largest statement in bytes. */
struct d1_upsert_stats {
	size_t statements, rows, max_statement;
};
void d1_upsert_stats(const struct d1_upsert *, struct d1_upsert_stats *);

/*
 * The tables a request's SQL writes or reads (after INTO, UPDATE, FROM, TABLE, outside literals and comments), as
 * "a" or "a, b", for a message that names the statement's table.  Returns out ("?" when none is found).
 */
char *d1_sql_tables(const char *sql, size_t len, char *out, size_t outlen);

#endif
