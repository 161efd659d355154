/*
 * A streaming JSON scanner specialised for CKAN answers: validates the whole document, copies the envelope
 * (compact, white space outside strings dropped) and splits result.records into one JSON text per element.
 * It does not decode strings: it only has to find where each value ends, so escapes are checked for shape and
 * copied as they are, and cJSON decodes them later.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "ckan-page.h"
#include "jsonlimit.h"
#include "xmalloc.h"

#define READ_CHUNK (64 * 1024)
#define KEY_MAX 64		/* keys we look for ("result", "records") are short; longer ones are just copied */

struct scan {
	const struct page_src *src;
	/* Input window: data[pos..len) is unread; off is the document offset of data[0]. */
	const char *data;
	size_t pos, len;
	long long off;
	bool eof;
	char *chunk;

	struct buf env, rec;
	page_record_fn fn;
	void *arg;
	size_t nrec;
	int depth;
	bool seen_records;

	char err[200];
	long long err_at;
	bool stopped;		/* the callback asked to stop */
};

static int
fail(struct scan *s, const char *what)
{
	if (s->err[0] == '\0') {
		snprintf(s->err, sizeof s->err, "%s", what);
		s->err_at = s->off + (long long)s->pos;
	}
	return -1;
}

/* Make at least one unread byte available; false at the end of the document (or on a read error). */
static bool
fill(struct scan *s)
{
	ssize_t n;

	if (s->pos < s->len)
		return true;
	if (s->eof)
		return false;
	if (s->src->fd == -1) {
		s->eof = true;
		return false;
	}
	s->off += (long long)s->len;
	s->pos = s->len = 0;
	do
		n = pread(s->src->fd, s->chunk, READ_CHUNK, (off_t)s->off);
	while (n == -1 && errno == EINTR);
	if (n <= 0) {
		s->eof = true;
		if (n == -1) {
			snprintf(s->err, sizeof s->err, "cannot read the spooled answer: %s", strerror(errno));
			s->err_at = s->off;
		}
		return false;
	}
	s->data = s->chunk;
	s->len = (size_t)n;
	return true;
}

static int
peek(struct scan *s)
{
	return fill(s) ? (unsigned char)s->data[s->pos] : -1;
}

static bool
limit_ok(struct scan *s, struct buf *out)
{
	if (out == &s->rec && s->rec.len > PAGE_MAX_RECORD)
		return fail(s, "a record is larger than 1 MiB"), false;
	if (out == &s->env && s->env.len > PAGE_MAX_ENVELOPE)
		return fail(s, "the answer outside its records is larger than 1 MiB"), false;
	return true;
}

static void
skip_ws(struct scan *s)
{
	while (fill(s)) {
		char c = s->data[s->pos];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return;
		s->pos++;
	}
}

static void
put(struct buf *out, const char *p, size_t n)
{
	if (out != NULL)
		buf_add(out, p, n);
}

/* Copy a string (with its quotes) to out; if key != NULL, also keep up to KEY_MAX-1 raw bytes of it there. */
static int
string(struct scan *s, struct buf *out, char *key)
{
	size_t klen = 0;

	if (key != NULL)
		key[0] = '\0';
	s->pos++;	/* the opening quote, already peeked */
	put(out, "\"", 1);
	for (;;) {
		size_t start, i;

		if (!fill(s))
			return fail(s, "the answer ends inside a string (truncated?)");
		start = s->pos;
		for (i = start; i < s->len; i++) {
			unsigned char c = (unsigned char)s->data[i];

			if (c == '"' || c == '\\' || c < 0x20)
				break;
		}
		put(out, s->data + start, i - start);
		if (!limit_ok(s, out))
			return -1;	/* checked per chunk: one huge string must not grow memory without bound */
		if (key != NULL) {
			size_t n = i - start;

			if (klen + n >= KEY_MAX)
				n = KEY_MAX - 1 - klen;
			memcpy(key + klen, s->data + start, n);
			klen += n;
			key[klen] = '\0';
		}
		s->pos = i;
		if (i == s->len)
			continue;
		if (s->data[i] == '"') {
			s->pos++;
			put(out, "\"", 1);
			return limit_ok(s, out) ? 0 : -1;
		}
		if ((unsigned char)s->data[i] < 0x20)
			return fail(s, "a control character inside a string");
		/* A backslash: one escape, copied as it is. */
		s->pos++;
		put(out, "\\", 1);
		if (key != NULL && klen + 1 < KEY_MAX) {
			key[klen++] = '\\';
			key[klen] = '\0';
		}
		{
			int e = peek(s);

			if (e == -1)
				return fail(s, "the answer ends inside a string escape (truncated?)");
			if (strchr("\"\\/bfnrtu", e) == NULL || e == '\0')
				return fail(s, "an invalid escape in a string");
			s->pos++;
			{
				char ch = (char)e;

				put(out, &ch, 1);
			}
			if (e == 'u') {
				int k;

				for (k = 0; k < 4; k++) {
					int h = peek(s);
					char ch;

					if (h == -1 || !((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
						return fail(s, "an invalid \\u escape in a string");
					s->pos++;
					ch = (char)h;
					put(out, &ch, 1);
				}
			}
		}
	}
}

static int
expect_word(struct scan *s, struct buf *out, const char *word)
{
	size_t i, n = strlen(word);

	for (i = 0; i < n; i++) {
		if (peek(s) != (unsigned char)word[i])
			return fail(s, "an invalid literal (expected true, false or null)");
		s->pos++;
	}
	put(out, word, n);
	return 0;
}

/* JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
number(struct scan *s, struct buf *out)
{
	char tmp[64];
	size_t n = 0;
	int c, digits;

#define TAKE() do { if (n >= sizeof tmp) return fail(s, "a number too long"); tmp[n++] = (char)c; s->pos++; } while (0)
	c = peek(s);
	if (c == '-')
		TAKE();
	c = peek(s);
	if (c == '0')
		TAKE();
	else if (c >= '1' && c <= '9') {
		while ((c = peek(s)) >= '0' && c <= '9')
			TAKE();
	} else
		return fail(s, "an invalid number");
	if ((c = peek(s)) == '.') {
		TAKE();
		for (digits = 0; (c = peek(s)) >= '0' && c <= '9'; digits++)
			TAKE();
		if (digits == 0)
			return fail(s, "an invalid number (no digits after the point)");
	}
	if ((c = peek(s)) == 'e' || c == 'E') {
		TAKE();
		if ((c = peek(s)) == '+' || c == '-')
			TAKE();
		for (digits = 0; (c = peek(s)) >= '0' && c <= '9'; digits++)
			TAKE();
		if (digits == 0)
			return fail(s, "an invalid number (no exponent digits)");
	}
#undef TAKE
	put(out, tmp, n);
	return 0;
}

static int value(struct scan *, struct buf *);

/* Called with '{' or '[' peeked.  kind selects what happens to the members (see object_member). */
enum role { PLAIN, TOP, RESULT };

static int records(struct scan *);

static int
container(struct scan *s, struct buf *out, enum role role)
{
	char open = s->data[s->pos], close = open == '{' ? '}' : ']';
	char key[KEY_MAX];
	bool first = true;
	int c;

	if (++s->depth > PAGE_MAX_DEPTH)
		return fail(s, "nested too deeply");
	s->pos++;
	put(out, &open, 1);
	for (;;) {
		skip_ws(s);
		if ((c = peek(s)) == -1)
			return fail(s, "the answer ends inside an object or array (truncated?)");
		if (c == close) {
			s->pos++;
			put(out, &close, 1);
			s->depth--;
			return limit_ok(s, out) ? 0 : -1;
		}
		if (!first) {
			if (c != ',')
				return fail(s, open == '{' ? "expected ',' or '}' after a member" :
				    "expected ',' or ']' after an element");
			s->pos++;
			put(out, ",", 1);
			skip_ws(s);
			c = peek(s);
		}
		first = false;
		if (open == '[') {
			if (value(s, out) == -1)
				return -1;
			continue;
		}
		if (c != '"')
			return fail(s, "expected a member name");
		if (string(s, out, key) == -1)
			return -1;
		skip_ws(s);
		if (peek(s) != ':')
			return fail(s, "expected ':' after a member name");
		s->pos++;
		put(out, ":", 1);
		skip_ws(s);
		c = peek(s);
		if (role == TOP && strcmp(key, "result") == 0 && c == '{') {
			if (container(s, out, RESULT) == -1)
				return -1;
		} else if (role == RESULT && strcmp(key, "records") == 0 && c == '[') {
			if (s->seen_records)
				return fail(s, "result.records appears twice");
			s->seen_records = true;
			put(out, "[]", 2);
			if (records(s) == -1)
				return -1;
		} else if (value(s, out) == -1)
			return -1;
	}
}

/* result.records: each element goes to the record buffer and the callback, not to the envelope. */
static int
records(struct scan *s)
{
	bool first = true;
	int c;

	if (++s->depth > PAGE_MAX_DEPTH)
		return fail(s, "nested too deeply");
	s->pos++;	/* '[' */
	for (;;) {
		skip_ws(s);
		if ((c = peek(s)) == -1)
			return fail(s, "the answer ends inside result.records (truncated?)");
		if (c == ']') {
			s->pos++;
			s->depth--;
			return 0;
		}
		if (!first) {
			if (c != ',')
				return fail(s, "expected ',' or ']' after a record");
			s->pos++;
			skip_ws(s);
		}
		first = false;
		buf_reset(&s->rec);
		if (value(s, &s->rec) == -1)
			return -1;
		if (s->fn != NULL && s->fn(s->rec.data, s->rec.len, s->nrec, s->arg) == -1) {
			s->stopped = true;
			return -1;
		}
		s->nrec++;
	}
}

static int
value(struct scan *s, struct buf *out)
{
	int c;

	skip_ws(s);
	switch ((c = peek(s))) {
	case -1:
		return fail(s, "the answer ends where a value was expected (truncated?)");
	case '{':
	case '[':
		return container(s, out, PLAIN);
	case '"':
		return string(s, out, NULL);
	case 't':
		return expect_word(s, out, "true");
	case 'f':
		return expect_word(s, out, "false");
	case 'n':
		return expect_word(s, out, "null");
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return number(s, out);
		return fail(s, "an unexpected character where a value was expected");
	}
}

int
ckan_page_scan(const struct page_src *src, page_record_fn fn, void *arg, cJSON **envelope, size_t *nrecords,
    char **cause)
{
	struct scan s;
	char why[160];
	int rc = -1;

	memset(&s, 0, sizeof s);
	s.src = src;
	s.fn = fn;
	s.arg = arg;
	buf_init(&s.env);
	buf_init(&s.rec);
	if (src->fd == -1) {
		s.data = src->mem;
		s.len = src->memlen;
		s.eof = true;
	} else {
		s.chunk = xmalloc(READ_CHUNK);
		s.data = s.chunk;
	}
	*envelope = NULL;

	skip_ws(&s);
	if (peek(&s) != '{') {
		if (peek(&s) == -1)
			fail(&s, "the answer is empty");
		else
			fail(&s, "the answer is not a JSON object");
		goto out;
	}
	if (container(&s, &s.env, TOP) == -1)
		goto out;
	skip_ws(&s);
	if (peek(&s) != -1) {
		fail(&s, "more data after the JSON object");
		goto out;
	}
	if (s.err[0] != '\0')	/* a read error ends the input like EOF does */
		goto out;
	if ((*envelope = json_parse_bounded(s.env.data, s.env.len, PAGE_MAX_ENVELOPE_NODES, why, sizeof why)) == NULL) {
		fail(&s, why);		/* only its size or text can be wrong after the checks above */
		goto out;
	}
	*nrecords = s.nrec;
	rc = 0;
out:
	if (rc == -1 && cause != NULL && !s.stopped)
		xasprintf(cause, "malformed JSON at byte %lld: %s", s.err_at, s.err);
	buf_free(&s.env);
	buf_free(&s.rec);
	free(s.chunk);
	return rc;
}
