/*
 * The key=value phase cursor (cursorkv.h): building with escapes, parsing with bounds and typed getters.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursorkv.h"
#include "log.h"

static bool
key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool
key_valid(const char *k)
{
	size_t i;

	for (i = 0; k[i] != '\0'; i++)
		if (!key_char(k[i]))
			return false;
	return i > 0 && i < CKV_KEY_MAX;
}

/* The bytes a value cannot hold as they are: the field separator, the escape itself, control bytes. */
static bool
needs_escape(unsigned char c)
{
	return c == ' ' || c == '%' || c < 0x20 || c == 0x7f;
}

static void
append(struct ckv_builder *b, const char *s, size_t n)
{
	if (b->len + n >= sizeof b->s)
		fatalx("cursor too long (more than %zu bytes): %.64s...", sizeof b->s - 1, b->s);
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void
ckv_init(struct ckv_builder *b)
{
	b->s[0] = '\0';
	b->len = 0;
	b->n = 0;
}

static void
field(struct ckv_builder *b, const char *key, char sep, const char *val)
{
	static const char hex[] = "0123456789ABCDEF";
	char esc[3];
	size_t i;

	if (!key_valid(key))
		fatalx("cursor key \"%s\" is not [A-Za-z0-9_]{1,%d}", key, CKV_KEY_MAX - 1);
	if (++b->n > CKV_MAX_FIELDS)
		fatalx("cursor has more than %d fields", CKV_MAX_FIELDS);
	if (val != NULL && strlen(val) >= CKV_VAL_MAX)
		fatalx("cursor value of %s is longer than %d bytes", key, CKV_VAL_MAX - 1);
	if (b->len > 0)
		append(b, " ", 1);
	append(b, key, strlen(key));
	if (val == NULL)
		return;
	append(b, &sep, 1);
	for (i = 0; val[i] != '\0'; i++) {
		unsigned char c = (unsigned char)val[i];

		if (needs_escape(c)) {
			esc[0] = '%';
			esc[1] = hex[c >> 4];
			esc[2] = hex[c & 15];
			append(b, esc, 3);
		} else
			append(b, &val[i], 1);
	}
}

void
ckv_word(struct ckv_builder *b, const char *word)
{
	field(b, word, 0, NULL);
}

void
ckv_put(struct ckv_builder *b, const char *key, const char *val)
{
	field(b, key, '=', val);
}

void
ckv_tag(struct ckv_builder *b, const char *key, const char *val)
{
	field(b, key, ':', val);
}

static void
field_i64(struct ckv_builder *b, const char *key, char sep, int64_t val)
{
	char n[32];

	snprintf(n, sizeof n, "%" PRId64, val);
	field(b, key, sep, n);
}

void
ckv_put_i64(struct ckv_builder *b, const char *key, int64_t val)
{
	field_i64(b, key, '=', val);
}

void
ckv_tag_i64(struct ckv_builder *b, const char *key, int64_t val)
{
	field_i64(b, key, ':', val);
}

const char *
ckv_str(const struct ckv_builder *b)
{
	return b->s;
}

/* 0-15 of a hex digit, -1 if c is none. */
static int
hexval(char c)
{
	static const char digits[] = "0123456789abcdef";
	const char *p = c != '\0' ? strchr(digits, tolower((unsigned char)c)) : NULL;

	return p != NULL ? (int)(p - digits) : -1;
}

/* One field of n bytes at p. */
static int
parse_field(struct ckv_field *f, const char *p, size_t n)
{
	size_t k = 0, o = 0, i;
	int hi, lo;

	while (k < n && key_char(p[k]))
		k++;
	if (k == 0 || k >= CKV_KEY_MAX)
		return -1;
	memcpy(f->key, p, k);
	f->key[k] = '\0';
	f->val[0] = '\0';
	if (k == n) {
		f->form = CKV_WORD;
		return 0;
	}
	if (p[k] == '=')
		f->form = CKV_EQ;
	else if (p[k] == ':')
		f->form = CKV_TAG;
	else
		return -1;
	for (i = k + 1; i < n; i++) {
		char c = p[i];

		if ((unsigned char)c < 0x20 || c == 0x7f)
			return -1;
		if (c == '%') {
			if (i + 2 >= n || (hi = hexval(p[i + 1])) < 0 || (lo = hexval(p[i + 2])) < 0)
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (o + 1 >= CKV_VAL_MAX)
			return -1;
		f->val[o++] = c;
	}
	f->val[o] = '\0';
	return 0;
}

int
ckv_parse(struct ckv *c, const char *text)
{
	const char *p = text, *sp;
	size_t n;

	c->n = 0;
	if (strlen(text) >= CKV_LEN)
		return -1;
	if (*p == '\0')
		return 0;
	for (;;) {
		sp = strchr(p, ' ');
		n = sp != NULL ? (size_t)(sp - p) : strlen(p);
		if (c->n >= CKV_MAX_FIELDS || parse_field(&c->f[c->n], p, n) == -1) {
			c->n = 0;
			return -1;
		}
		c->n++;
		if (sp == NULL)
			return 0;
		p = sp + 1;
	}
}

const struct ckv_field *
ckv_field(const struct ckv *c, const char *key)
{
	int i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->f[i].key, key) == 0)
			return &c->f[i];
	return NULL;
}

bool
ckv_has_word(const struct ckv *c, const char *word)
{
	const struct ckv_field *f = ckv_field(c, word);

	return f != NULL && f->form == CKV_WORD;
}

const char *
ckv_get(const struct ckv *c, const char *key)
{
	const struct ckv_field *f = ckv_field(c, key);

	return f != NULL && f->form != CKV_WORD ? f->val : NULL;
}

bool
ckv_get_i64(const struct ckv *c, const char *key, int64_t min, int64_t max, int64_t *out)
{
	const char *v = ckv_get(c, key);
	char *end;
	long long n;

	if (v == NULL || v[0] == '\0' || (v[0] != '-' && (v[0] < '0' || v[0] > '9')))
		return false;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return false;
	*out = n;
	return true;
}

bool
ckv_get_int(const struct ckv *c, const char *key, int min, int max, int *out)
{
	int64_t v;

	if (!ckv_get_i64(c, key, min, max, &v))
		return false;
	*out = (int)v;
	return true;
}

int
ckv_count(const struct ckv *c)
{
	return c->n;
}
