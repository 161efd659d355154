/*
 * What every source hands the phases, whichever backend filled it (source.h): pages of items, tombstones, and the
 * records it rejected with a message each.  A file of its own because the parsers of both backends add rejects
 * here and the sources call the parsers: neither has to call back into the other.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "source.h"
#include "xmalloc.h"

void
src_rejects_add(struct src_rejects *r, const char *fmt, ...)
{
	va_list ap;

	if (r->n < SRC_MAX_REJECT_MSGS) {
		va_start(ap, fmt);
		xvasprintf(&r->msg[r->n], fmt, ap);
		va_end(ap);
	}
	r->n++;
}

void
src_rejects_clear(struct src_rejects *r)
{
	int i;

	for (i = 0; i < r->n && i < SRC_MAX_REJECT_MSGS; i++)
		free(r->msg[i]);
	memset(r, 0, sizeof *r);
}

void
src_page_clear(struct src_page *p)
{
	free(p->items);
	src_rejects_clear(&p->rejects);
	memset(p, 0, sizeof *p);
}

void
src_tombs_clear(struct src_tombs *t)
{
	free(t->items);
	src_rejects_clear(&t->rejects);
	memset(t, 0, sizeof *t);
}
