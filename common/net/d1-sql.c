#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "d1-sql.h"
#include "log.h"
#include "xmalloc.h"

#define IDENT_MAX 64

struct d1_upsert {
	char *prefix;		/* INSERT INTO t (a, b) VALUES  */
	char *suffix;		/*  ON CONFLICT(a) DO UPDATE SET b = excluded.b;\n */
	size_t ncols, max_stmt;
	bool open;
	size_t cur;		/* bytes of the open statement so far (prefix and rows) */
	struct buf row;		/* scratch: one row's literals */
	struct d1_upsert_stats st;
};

bool
d1_sql_identifier(const char *s)
{
	size_t i;

	if (s == NULL || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (i = 1; s[i] != '\0'; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_') || i >= IDENT_MAX)
			return false;
	return true;
}

int
d1_sql_literal(struct buf *out, const struct d1_value *v, char *why, size_t whylen)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = v->p;
	size_t i, n;
	unsigned cp;
	char num[64];

	switch (v->type) {
	case D1V_NULL:
		buf_adds(out, "NULL");
		return 0;
	case D1V_INT:
		buf_printf(out, "%" PRId64, v->i);
		return 0;
	case D1V_REAL:
		if (!isfinite(v->r)) {
			snprintf(why, whylen, "a REAL value that is not finite has no SQL literal");
			return -1;
		}
		snprintf(num, sizeof num, "%.17g", v->r);
		if (strpbrk(num, ".eE") == NULL)
			strcat(num, ".0");	/* 3.0, not 3: keep it a REAL in a column without affinity */
		buf_adds(out, num);
		return 0;
	case D1V_BLOB:
		buf_adds(out, "X'");
		for (i = 0; i < v->len; i++) {
			buf_addc(out, hex[p[i] >> 4]);
			buf_addc(out, hex[p[i] & 0xf]);
		}
		buf_addc(out, '\'');
		return 0;
	case D1V_TEXT:
		/* Check first, so that a refused value leaves out as it was. */
		for (i = 0; i < v->len; i += n) {
			if (p[i] == '\0') {
				snprintf(why, whylen, "text with a NUL byte at offset %zu has no SQL literal", i);
				return -1;
			}
			if ((n = text_utf8_seq((const char *)p + i, v->len - i, &cp)) == 0) {
				snprintf(why, whylen, "text that is not UTF-8 (byte 0x%02x at offset %zu)", p[i], i);
				return -1;
			}
		}
		buf_addc(out, '\'');
		for (i = 0; i < v->len; i++) {
			if (p[i] == '\'')
				buf_addc(out, '\'');
			buf_addc(out, (char)p[i]);
		}
		buf_addc(out, '\'');
		return 0;
	}
	snprintf(why, whylen, "unknown value type %d", (int)v->type);
	return -1;
}

struct d1_upsert *
d1_upsert_new(const char *table, const char *const *cols, size_t ncols, size_t npk, size_t max_stmt)
{
	struct d1_upsert *u;
	struct buf b;
	size_t i;

	if (!d1_sql_identifier(table) || ncols == 0 || npk == 0 || npk > ncols)
		return NULL;
	for (i = 0; i < ncols; i++)
		if (!d1_sql_identifier(cols[i]))
			return NULL;
	u = xcalloc(1, sizeof *u);
	u->ncols = ncols;
	u->max_stmt = max_stmt != 0 ? max_stmt : D1_STATEMENT_BUDGET;
	buf_init(&u->row);

	buf_init(&b);
	buf_printf(&b, "INSERT INTO %s (", table);
	for (i = 0; i < ncols; i++)
		buf_printf(&b, "%s%s", i ? ", " : "", cols[i]);
	buf_adds(&b, ") VALUES ");
	u->prefix = buf_release(&b);

	buf_init(&b);
	buf_adds(&b, " ON CONFLICT(");
	for (i = 0; i < npk; i++)
		buf_printf(&b, "%s%s", i ? ", " : "", cols[i]);
	if (npk == ncols)
		buf_adds(&b, ") DO NOTHING");
	else {
		buf_adds(&b, ") DO UPDATE SET ");
		for (i = npk; i < ncols; i++)
			buf_printf(&b, "%s%s = excluded.%s", i > npk ? ", " : "", cols[i], cols[i]);
	}
	buf_adds(&b, ";\n");
	u->suffix = buf_release(&b);
	return u;
}

void
d1_upsert_free(struct d1_upsert *u)
{
	if (u == NULL)
		return;
	free(u->prefix);
	free(u->suffix);
	buf_free(&u->row);
	free(u);
}

int
d1_upsert_row(struct d1_upsert *u, struct buf *out, const struct d1_value *row, char *why, size_t whylen)
{
	size_t i, fixed = strlen(u->prefix) + strlen(u->suffix);

	buf_reset(&u->row);
	buf_addc(&u->row, '(');
	for (i = 0; i < u->ncols; i++) {
		if (i > 0)
			buf_addc(&u->row, ',');
		if (d1_sql_literal(&u->row, &row[i], why, whylen) == -1)
			return -1;
	}
	buf_addc(&u->row, ')');
	if (fixed + u->row.len > u->max_stmt) {
		snprintf(why, whylen, "one row is %zu bytes of SQL, more than a statement may hold (%zu)",
		    fixed + u->row.len, u->max_stmt);
		return -1;
	}
	if (u->open && u->cur + 1 + u->row.len + strlen(u->suffix) > u->max_stmt)
		d1_upsert_end(u, out);
	if (!u->open) {
		buf_adds(out, u->prefix);
		u->cur = strlen(u->prefix);
		u->open = true;
		u->st.statements++;
	} else {
		buf_addc(out, ',');
		u->cur++;
	}
	buf_add(out, u->row.data, u->row.len);
	u->cur += u->row.len;
	u->st.rows++;
	return 0;
}

void
d1_upsert_end(struct d1_upsert *u, struct buf *out)
{
	if (!u->open)
		return;
	buf_adds(out, u->suffix);
	u->cur += strlen(u->suffix);
	if (u->cur > u->st.max_statement)
		u->st.max_statement = u->cur;
	u->open = false;
	u->cur = 0;
}

void
d1_upsert_stats(const struct d1_upsert *u, struct d1_upsert_stats *st)
{
	*st = u->st;
}

/* The word at s (identifier characters), or 0. */
static size_t
word_len(const char *s, size_t len)
{
	size_t n = 0;

	while (n < len && (isalnum((unsigned char)s[n]) || s[n] == '_'))
		n++;
	return n;
}

static void
add_table(char *out, size_t outlen, const char *name, size_t n)
{
	char tmp[IDENT_MAX + 1];
	const char *p;
	size_t have = strlen(out);

	if (n == 0 || n > IDENT_MAX)
		return;
	memcpy(tmp, name, n);
	tmp[n] = '\0';
	/* Already listed? */
	for (p = out; (p = strstr(p, tmp)) != NULL; p += n)
		if ((p == out || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
			return;
	if (have + n + 3 > outlen)
		return;
	snprintf(out + have, outlen - have, "%s%s", have ? ", " : "", tmp);
}

static bool
is_word(const char *s, size_t n, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strlen(*list) == n && strncasecmp(s, *list, n) == 0)
			return true;
	return false;
}

char *
d1_sql_tables(const char *sql, size_t len, char *out, size_t outlen)
{
	static const char *const kw[] = { "INTO", "UPDATE", "FROM", "TABLE", "EXISTS", NULL };
	/* Words between a keyword and the name: IF NOT EXISTS, UPDATE OR IGNORE; DO UPDATE SET names no table. */
	static const char *const skip[] = { "IF", "NOT", "EXISTS", "OR", "IGNORE", "REPLACE", "ABORT", "FAIL",
	    "ROLLBACK", NULL };
	size_t i = 0, n;
	bool want = false;

	if (outlen == 0)
		return out;
	out[0] = '\0';
	while (i < len) {
		char c = sql[i];

		if (c == '\'' || c == '"' || c == '`') {
			/* A literal or quoted name: skip it (a doubled quote stays inside). */
			for (i++; i < len; i++)
				if (sql[i] == c) {
					if (i + 1 < len && sql[i + 1] == c)
						i++;
					else
						break;
				}
			i++;
			want = false;
			continue;
		}
		if (c == '-' && i + 1 < len && sql[i + 1] == '-') {
			while (i < len && sql[i] != '\n')
				i++;
			continue;
		}
		if ((n = word_len(sql + i, len - i)) == 0) {
			if (!isspace((unsigned char)c))
				want = false;
			i++;
			continue;
		}
		if (n == 3 && strncasecmp(sql + i, "SET", 3) == 0)
			want = false;		/* ON CONFLICT … DO UPDATE SET */
		else if (want && !is_word(sql + i, n, skip)) {
			add_table(out, outlen, sql + i, n);
			want = false;
		} else
			want = is_word(sql + i, n, kw) || (want && is_word(sql + i, n, skip));
		i += n;
	}
	if (out[0] == '\0')
		snprintf(out, outlen, "?");
	return out;
}
