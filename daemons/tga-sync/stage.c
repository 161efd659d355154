#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stage.h"
#include "xmalloc.h"

#define WBUF_MAX (256 * 1024)
#define RBUF_SIZE (256 * 1024)

/* --- records ------------------------------------------------------------------------------------------------ */

void
rec_init(struct rec *r)
{
	memset(r, 0, sizeof *r);
	buf_init(&r->arena);
}

void
rec_free(struct rec *r)
{
	buf_free(&r->arena);
}

void
rec_begin(struct rec *r, int type, int nfields)
{
	int i;

	r->type = type;
	r->n = nfields;
	buf_reset(&r->arena);
	for (i = 0; i < REC_MAX_FIELDS; i++)
		r->len[i] = -1;
}

void
rec_set(struct rec *r, int i, const char *s, size_t len)
{
	if (i < 0 || i >= r->n)
		return;
	if (len > REC_FIELD_MAX - 1)
		len = REC_FIELD_MAX - 1;
	r->off[i] = r->arena.len;
	r->len[i] = (int32_t)len;
	if (r->arena.len + len + 1 < r->arena.cap) {
		/* Fields are short and the arena has grown already: no call per field (6.2 million scope rows). */
		memcpy(r->arena.data + r->arena.len, s, len);
		r->arena.len += len + 1;
		r->arena.data[r->arena.len - 1] = '\0';
		return;
	}
	buf_add(&r->arena, s, len);
	buf_addc(&r->arena, '\0');
}

void
rec_set_str(struct rec *r, int i, const char *s)
{
	if (s == NULL) {
		if (i >= 0 && i < r->n)
			r->len[i] = -1;
		return;
	}
	rec_set(r, i, s, strlen(s));
}

void
rec_set_bool(struct rec *r, int i, bool v)
{
	rec_set(r, i, v ? "1" : "0", 1);
}

const char *
rec_str(const struct rec *r, int i)
{
	if (i < 0 || i >= r->n || r->len[i] < 0)
		return NULL;
	return r->arena.data + r->off[i];
}

bool
rec_isset(const struct rec *r, int i)
{
	return i >= 0 && i < r->n && r->len[i] >= 0;
}

/* --- the stage file ----------------------------------------------------------------------------------------- */

struct stage *
stage_new(const char *dir, char **cause)
{
	struct stage *s = xcalloc(1, sizeof *s);

	/* An unlinked file only this process can see: nothing is left behind by a crash. */
	if ((s->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) == -1) {
		xasprintf(cause, "cannot create a stage file in %s: %s", dir, strerror(errno));
		free(s);
		return NULL;
	}
	buf_init(&s->wbuf);
	s->rbuf = xmalloc(RBUF_SIZE);
	return s;
}

void
stage_free(struct stage *s)
{
	if (s == NULL)
		return;
	close(s->fd);
	buf_free(&s->wbuf);
	free(s->ents);
	free(s->rbuf);
	free(s);
}

static int
flush(struct stage *s, char **cause)
{
	off_t at = s->pos - (off_t)s->wbuf.len;
	size_t done = 0;

	while (done < s->wbuf.len) {
		ssize_t n = pwrite(s->fd, s->wbuf.data + done, s->wbuf.len - done, at + (off_t)done);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			xasprintf(cause, "cannot write the stage file: %s", n == 0 ? "no progress" : strerror(errno));
			return -1;
		}
		done += (size_t)n;
	}
	buf_reset(&s->wbuf);
	return 0;
}

void
stage_reset(struct stage *s)
{
	buf_reset(&s->wbuf);
	s->pos = 0;
	s->n = 0;
	s->in_entity = false;
	s->rlen = s->roff = 0;
	if (ftruncate(s->fd, 0) == -1) {
		/* Not fatal: the file is rewritten from offset 0 and read only up to the entities' offsets. */
	}
}

void
stage_entity_begin(struct stage *s)
{
	s->entity_start = s->pos;
	s->in_entity = true;
}

int
stage_put(struct stage *s, const struct rec *r, char **cause)
{
	size_t before = s->wbuf.len, need = 2;
	unsigned char *p;
	int i;

	for (i = 0; i < r->n; i++)
		need += 4 + (r->len[i] > 0 ? (size_t)r->len[i] : 0);
	if (s->wbuf.len + need + 1 > s->wbuf.cap) {
		/* Grow once for the whole record, then write it in place. */
		size_t cap = s->wbuf.cap ? s->wbuf.cap : 4096;

		while (cap < s->wbuf.len + need + 1)
			cap *= 2;
		s->wbuf.data = xreallocarray(s->wbuf.data, 1, cap);
		s->wbuf.cap = cap;
	}
	p = (unsigned char *)s->wbuf.data + before;
	*p++ = (unsigned char)r->type;
	*p++ = (unsigned char)r->n;
	for (i = 0; i < r->n; i++) {
		uint32_t v = r->len[i] < 0 ? 0xffffffffu : (uint32_t)r->len[i];

		p[0] = (unsigned char)(v >> 24);
		p[1] = (unsigned char)(v >> 16);
		p[2] = (unsigned char)(v >> 8);
		p[3] = (unsigned char)v;
		p += 4;
		if (r->len[i] > 0) {
			memcpy(p, r->arena.data + r->off[i], (size_t)r->len[i]);
			p += r->len[i];
		}
	}
	s->wbuf.len = before + need;
	s->wbuf.data[s->wbuf.len] = '\0';
	s->pos += (off_t)need;
	if (s->wbuf.len >= WBUF_MAX)
		return flush(s, cause);
	return 0;
}

int
stage_entity_end(struct stage *s, const char *code, int item, const struct rec *head, char **cause)
{
	struct stage_entity *e;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->ents = xreallocarray(s->ents, s->cap, sizeof *s->ents);
	}
	e = &s->ents[s->n];
	memset(e, 0, sizeof *e);
	snprintf(e->code, sizeof e->code, "%s", code);
	e->item = item;
	e->children = s->entity_start;
	e->head = s->pos;
	e->nil = head == NULL;
	if (head != NULL && stage_put(s, head, cause) == -1)
		return -1;
	e->end = s->pos;
	s->n++;
	s->in_entity = false;
	return 0;
}

int
stage_entity_abort(struct stage *s, char **cause)
{
	off_t flushed = s->pos - (off_t)s->wbuf.len;

	if (!s->in_entity)
		return 0;
	s->in_entity = false;
	if (s->entity_start >= flushed) {
		/* Everything since the start is still in the buffer. */
		s->wbuf.len = (size_t)(s->entity_start - flushed);
		s->pos = s->entity_start;
		return 0;
	}
	buf_reset(&s->wbuf);
	s->pos = s->entity_start;
	if (ftruncate(s->fd, s->pos) == -1) {
		xasprintf(cause, "cannot truncate the stage file: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* --- reading ------------------------------------------------------------------------------------------------ */

int
stage_seek(struct stage *s, off_t at, char **cause)
{
	if (s->wbuf.len > 0 && flush(s, cause) == -1)
		return -1;
	s->rpos = at;
	s->rbase = at;
	s->rlen = s->roff = 0;
	return 0;
}

/* Make n bytes available at rbuf+roff. */
static int
fill(struct stage *s, size_t n, char **cause)
{
	if (s->rlen - s->roff >= n)
		return 0;
	if (n > RBUF_SIZE) {
		xasprintf(cause, "stage file: a record of %zu bytes does not fit the read buffer", n);
		return -1;
	}
	memmove(s->rbuf, s->rbuf + s->roff, s->rlen - s->roff);
	s->rbase += (off_t)s->roff;
	s->rlen -= s->roff;
	s->roff = 0;
	while (s->rlen < n) {
		ssize_t got = pread(s->fd, s->rbuf + s->rlen, RBUF_SIZE - s->rlen, s->rbase + (off_t)s->rlen);

		if (got == -1 && errno == EINTR)
			continue;
		if (got <= 0) {
			xasprintf(cause, "stage file: short read (%s)", got == 0 ? "end of file" : strerror(errno));
			return -1;
		}
		s->rlen += (size_t)got;
	}
	return 0;
}

static uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int
stage_next(struct stage *s, off_t limit, struct rec *r, char **cause)
{
	unsigned char *p;
	int type, n, i;

	if (s->rpos >= limit)
		return 0;
	if (fill(s, 2, cause) == -1)
		return -1;
	p = (unsigned char *)s->rbuf + s->roff;
	type = p[0];
	n = p[1];
	if (type <= REC_NONE || type >= REC__COUNT || n > REC_MAX_FIELDS) {
		xasprintf(cause, "stage file: corrupt record at offset %lld", (long long)s->rpos);
		return -1;
	}
	s->roff += 2;
	s->rpos += 2;
	rec_begin(r, type, n);
	for (i = 0; i < n; i++) {
		uint32_t len;

		if (fill(s, 4, cause) == -1)
			return -1;
		len = get_u32((unsigned char *)s->rbuf + s->roff);
		s->roff += 4;
		s->rpos += 4;
		if (len == 0xffffffffu)
			continue;
		if (len >= REC_FIELD_MAX) {
			xasprintf(cause, "stage file: corrupt field length %u at offset %lld", len, (long long)s->rpos);
			return -1;
		}
		if (fill(s, len, cause) == -1)
			return -1;
		rec_set(r, i, s->rbuf + s->roff, len);
		s->roff += len;
		s->rpos += len;
	}
	return 1;
}
