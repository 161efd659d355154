#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jscan.h"
#include "log.h"

enum { S_VALUE, S_KEY, S_AFTER, S_DONE, S_FAILED };

void
jscan_init(struct jscan *j, const char *text, size_t len)
{
	memset(j, 0, sizeof *j);
	j->p = text;
	j->end = text + len;
	j->state = S_VALUE;
	buf_init(&j->str);
}

void
jscan_free(struct jscan *j)
{
	buf_free(&j->str);
}

static enum jtok fail(struct jscan *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static enum jtok
fail(struct jscan *j, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (j->state == S_FAILED)
		return JT_ERROR;
	va_start(ap, fmt);
	vsnprintf(j->err, sizeof j->err, fmt, ap);
	va_end(ap);
	n = strlen(j->err);
	snprintf(j->err + n, sizeof j->err - n, " (%zu bytes before the end)", (size_t)(j->end - j->p));
	j->state = S_FAILED;
	return JT_ERROR;
}

static void
skip_ws(struct jscan *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int
hex4(const char *s, unsigned *out)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static void
put_utf8(struct buf *b, unsigned cp)
{
	char u[4];

	if (cp < 0x80) {
		buf_addc(b, (char)cp);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		buf_add(b, u, 2);
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		buf_add(b, u, 3);
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		buf_add(b, u, 4);
	}
}

/* At a byte >= 0x80 in a string: a whole UTF-8 sequence, *q left on its last byte (the loops step past it). */
static int
utf8_ok(struct jscan *j, const char **q)
{
	unsigned cp;
	size_t n = text_utf8_seq(*q, (size_t)(j->end - *q), &cp);

	if (n == 0) {
		fail(j, "a string that is not UTF-8");
		return -1;
	}
	*q += n - 1;
	return 0;
}

/* At the opening quote: the string into val/len. */
static int
string(struct jscan *j)
{
	const char *s = ++j->p, *q;
	unsigned cp, lo;

	/* Fast path: no escape before the closing quote, the value points into the text. */
	for (q = s; q < j->end && *q != '"' && *q != '\\'; q++)
		if ((unsigned char)*q < 0x20) {
			fail(j, "a control character in a string");
			return -1;
		} else if ((unsigned char)*q >= 0x80 && utf8_ok(j, &q) == -1)
			return -1;
	if (q < j->end && *q == '"') {
		if ((size_t)(q - s) > JSCAN_MAX_STRING) {
			fail(j, "a string longer than %d bytes", JSCAN_MAX_STRING);
			return -1;
		}
		j->val = s;
		j->len = (size_t)(q - s);
		j->p = q + 1;
		return 0;
	}
	buf_reset(&j->str);
	buf_add(&j->str, s, (size_t)(q - s));
	j->p = q;
	while (j->p < j->end && *j->p != '"') {
		unsigned char c = (unsigned char)*j->p;

		if (j->str.len > JSCAN_MAX_STRING) {
			fail(j, "a string longer than %d bytes", JSCAN_MAX_STRING);
			return -1;
		}
		if (c < 0x20) {
			fail(j, "a control character in a string");
			return -1;
		}
		if (c >= 0x80) {
			const char *at = j->p;

			if (utf8_ok(j, &at) == -1)
				return -1;
			buf_add(&j->str, j->p, (size_t)(at - j->p) + 1);
			j->p = at + 1;
			continue;
		}
		if (c != '\\') {
			buf_addc(&j->str, (char)c);
			j->p++;
			continue;
		}
		if (j->end - j->p < 2) {
			fail(j, "a string cut short");
			return -1;
		}
		switch (j->p[1]) {
		case '"': buf_addc(&j->str, '"'); break;
		case '\\': buf_addc(&j->str, '\\'); break;
		case '/': buf_addc(&j->str, '/'); break;
		case 'b': buf_addc(&j->str, '\b'); break;
		case 'f': buf_addc(&j->str, '\f'); break;
		case 'n': buf_addc(&j->str, '\n'); break;
		case 'r': buf_addc(&j->str, '\r'); break;
		case 't': buf_addc(&j->str, '\t'); break;
		case 'u':
			if (j->end - j->p < 6 || hex4(j->p + 2, &cp) == -1) {
				fail(j, "a bad \\u escape");
				return -1;
			}
			if (cp == 0) {
				/* Decoded, it would end the value early wherever it is used as a C string. */
				fail(j, "a NUL escape (\\u0000) in a string");
				return -1;
			}
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				fail(j, "a lone low surrogate");
				return -1;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (j->end - j->p < 12 || j->p[6] != '\\' || j->p[7] != 'u' || hex4(j->p + 8, &lo) == -1 ||
				    lo < 0xdc00 || lo > 0xdfff) {
					fail(j, "a high surrogate without its low half");
					return -1;
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				j->p += 6;
			}
			put_utf8(&j->str, cp);
			j->p += 4;
			break;
		default:
			fail(j, "a bad escape \\%c", j->p[1]);
			return -1;
		}
		j->p += 2;
	}
	if (j->p >= j->end) {
		fail(j, "a string cut short");
		return -1;
	}
	j->p++;
	j->val = j->str.data ? j->str.data : "";
	j->len = j->str.len;
	return 0;
}

static int
number(struct jscan *j)
{
	const char *s = j->p, *q = s;

	if (q < j->end && *q == '-')
		q++;
	if (q < j->end && *q == '0')
		q++;
	else if (q < j->end && *q >= '1' && *q <= '9')
		while (q < j->end && *q >= '0' && *q <= '9')
			q++;
	else
		return fail(j, "a bad number"), -1;
	if (q < j->end && *q == '.') {
		const char *f = ++q;

		while (q < j->end && *q >= '0' && *q <= '9')
			q++;
		if (q == f)
			return fail(j, "a bad number"), -1;
	}
	if (q < j->end && (*q == 'e' || *q == 'E')) {
		const char *e;

		q++;
		if (q < j->end && (*q == '+' || *q == '-'))
			q++;
		e = q;
		while (q < j->end && *q >= '0' && *q <= '9')
			q++;
		if (q == e)
			return fail(j, "a bad number"), -1;
	}
	if (q - s > 64)
		return fail(j, "a number longer than 64 characters"), -1;
	j->val = s;
	j->len = (size_t)(q - s);
	j->p = q;
	return 0;
}

static bool
literal(struct jscan *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return false;
	j->p += n;
	return true;
}

static enum jtok
push(struct jscan *j, char kind)
{
	if (j->depth >= JSCAN_MAX_DEPTH)
		return fail(j, "nesting deeper than %d", JSCAN_MAX_DEPTH);
	j->stack[j->depth++] = kind;
	j->p++;
	j->first = true;
	j->state = kind == 'o' ? S_KEY : S_VALUE;
	return kind == 'o' ? JT_OBJECT : JT_ARRAY;
}

static enum jtok
pop(struct jscan *j)
{
	char kind = j->stack[--j->depth];

	j->p++;
	j->state = S_AFTER;
	j->first = false;
	return kind == 'o' ? JT_OBJECT_END : JT_ARRAY_END;
}

enum jtok
jscan_next(struct jscan *j)
{
	for (;;) {
		skip_ws(j);
		switch (j->state) {
		case S_FAILED:
			return JT_ERROR;
		case S_DONE:
			if (j->p != j->end)
				return fail(j, "bytes after the JSON value");
			return JT_EOF;
		case S_AFTER:
			if (j->depth == 0) {
				j->state = S_DONE;
				continue;
			}
			if (j->p >= j->end)
				return fail(j, "the text ends inside a %s", j->stack[j->depth - 1] == 'o' ? "object" :
				    "array");
			if (*j->p == ',') {
				j->p++;
				j->state = j->stack[j->depth - 1] == 'o' ? S_KEY : S_VALUE;
				j->first = false;
				continue;
			}
			if ((*j->p == '}' && j->stack[j->depth - 1] == 'o') || (*j->p == ']' &&
			    j->stack[j->depth - 1] == 'a'))
				return pop(j);
			return fail(j, "'%c' where ',' or the end of the %s belongs", *j->p,
			    j->stack[j->depth - 1] == 'o' ? "object" : "array");
		case S_KEY:
			if (j->p >= j->end)
				return fail(j, "the text ends inside an object");
			if (*j->p == '}' && j->first)
				return pop(j);
			if (*j->p != '"')
				return fail(j, "'%c' where a member name belongs", *j->p);
			if (string(j) == -1)
				return JT_ERROR;
			skip_ws(j);
			if (j->p >= j->end || *j->p != ':')
				return fail(j, "no ':' after a member name");
			j->p++;
			j->state = S_VALUE;
			j->first = false;
			return JT_KEY;
		case S_VALUE:
			if (j->p >= j->end)
				return fail(j, "the text ends where a value belongs");
			switch (*j->p) {
			case ']':
				if (j->first && j->depth > 0 && j->stack[j->depth - 1] == 'a')
					return pop(j);
				return fail(j, "']' where a value belongs");
			case '{':
				return push(j, 'o');
			case '[':
				return push(j, 'a');
			case '"':
				if (string(j) == -1)
					return JT_ERROR;
				j->state = S_AFTER;
				return JT_STRING;
			case 't':
				if (!literal(j, "true"))
					break;
				j->state = S_AFTER;
				return JT_TRUE;
			case 'f':
				if (!literal(j, "false"))
					break;
				j->state = S_AFTER;
				return JT_FALSE;
			case 'n':
				if (!literal(j, "null"))
					break;
				j->state = S_AFTER;
				return JT_NULL;
			default:
				if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) {
					if (number(j) == -1)
						return JT_ERROR;
					j->state = S_AFTER;
					return JT_NUMBER;
				}
				break;
			}
			return fail(j, "'%c' where a value belongs", *j->p);
		}
	}
}

int
jscan_skip(struct jscan *j, enum jtok t)
{
	int depth;

	if (t != JT_OBJECT && t != JT_ARRAY)
		return t == JT_ERROR ? -1 : 0;
	depth = j->depth;
	while (j->depth >= depth) {
		if (jscan_next(j) == JT_ERROR)
			return -1;
	}
	return 0;
}

bool
jscan_is(const struct jscan *j, const char *s)
{
	size_t n = strlen(s);

	return j->len == n && memcmp(j->val, s, n) == 0;
}

bool
jscan_uint(const struct jscan *j, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	if (j->len == 0 || j->len > 18)
		return false;
	for (i = 0; i < j->len; i++) {
		if (j->val[i] < '0' || j->val[i] > '9')
			return false;
		v = v * 10 + (j->val[i] - '0');
	}
	*out = v;
	return true;
}
