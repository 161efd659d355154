/*
 * A pull tokenizer for one JSON text in memory (RFC 8259), for the REST source's hot path: an RTO's scope pages
 * (6.2 million rows a cycle) are read token by token into stage records, with no allocation per value.  cJSON,
 * which builds a tree of every value, is used for the small documents (details, searches, metadata).
 *
 * Bounded: nesting deeper than JSCAN_MAX_DEPTH and strings longer than JSCAN_MAX_STRING are errors, as are
 * control characters in strings, bytes that are not UTF-8, \u0000 (it would cut the value short as a C string), bad
 * escapes, lone surrogates, malformed numbers and trailing bytes.  Strings are
 * returned decoded as UTF-8 (\uXXXX escapes and surrogate pairs as cJSON decodes them); a string without escapes
 * points into the input, so the text must outlive the tokens.
 */
#ifndef TGA_JSCAN_H
#define TGA_JSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define JSCAN_MAX_DEPTH 64
#define JSCAN_MAX_STRING (64 * 1024)

enum jtok {
	JT_ERROR = -1,
	JT_EOF = 0,		/* the one value is complete and nothing but white space follows */
	JT_OBJECT,		/* { */
	JT_OBJECT_END,		/* } */
	JT_ARRAY,		/* [ */
	JT_ARRAY_END,		/* ] */
	JT_KEY,			/* a member name (val, len) */
	JT_STRING,		/* val, len: decoded */
	JT_NUMBER,		/* val, len: the number's text as written */
	JT_TRUE,
	JT_FALSE,
	JT_NULL,
};

struct jscan {
	const char *p, *end;
	int depth;
	char stack[JSCAN_MAX_DEPTH];	/* 'o' object, 'a' array */
	int state;
	bool first;			/* just after { or [: the container may close at once */
	const char *val;
	size_t len;
	struct buf str;			/* decoded strings with escapes */
	char err[160];
};

void jscan_init(struct jscan *, const char *text, size_t len);
void jscan_free(struct jscan *);
/* The next token; JT_ERROR with err set (and every later call JT_ERROR too). */
enum jtok jscan_next(struct jscan *);
/* After a token that began a value (JT_OBJECT or JT_ARRAY): skip to its end.  Scalars are already consumed. */
int jscan_skip(struct jscan *, enum jtok);
/* The current token's text equals s (for JT_KEY / JT_STRING). */
bool jscan_is(const struct jscan *, const char *s);
/* A JT_NUMBER as a non-negative integer that fits in int64; false otherwise. */
bool jscan_uint(const struct jscan *, int64_t *);

#endif
