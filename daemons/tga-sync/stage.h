/*
 * The stage: what a step has fetched and parsed, waiting for the step's one short transaction.
 *
 * A step fetches first and writes at the end (the transaction must not span the event loop), and its GetDetails
 * answers arrive one by one, up to max_in_flight at a time.  Each answer is parsed as it arrives (streaming, so a
 * malformed one is known at once and re-requested) into compact records appended to an unlinked temp file; the
 * write phase then reads them back in order.  Memory stays bounded by one record, whatever the size of a response.
 *
 * The records are protocol-neutral (what the tables need), so a REST source can fill a stage too (issue 8).
 *
 * An entity (one GetDetails answer) is its child records followed by its head record; the index in memory (one
 * small entry per entity, at most a page of them) lets the writer read the head first, then the children.
 */
#ifndef TGA_STAGE_H
#define TGA_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

#define TGA_CODE_MAX 64

enum rec_type {
	REC_NONE = 0,
	/* TrainingComponentService.GetDetails */
	REC_TC_HEAD,		/* TC_* fields */
	REC_TC_CLASS,		/* scheme, value, purpose, start, end */
	REC_TC_CURRENCY,	/* authority, start, end, end_reason_code, end_comment */
	REC_TC_MAPPING,		/* code, title, maps_to_code, maps_to_title, is_equivalent, notes */
	REC_TC_RELEASE,		/* release_number, release_date, currency, approval_process */
	REC_TC_GRID,		/* release_number, unit_code, title, is_essential */
	REC_TC_USAGE,		/* state, start, end */
	/* OrganisationService.GetDetails */
	REC_ORG_HEAD,		/* ORG_* fields */
	REC_ORG_LOCATION,	/* line1, line2, suburb, postcode, state_code, country_code, state_overseas, start, end */
	REC_ORG_TRADING,	/* name, start, end */
	REC_ORG_URL,		/* link, start, end */
	REC_ORG_PERIOD,		/* start, end, end_reason_code, end_reason_comments, exerciser, legal_authority */
	REC_ORG_SCOPE,		/* nrt_code, is_implicit, component_type, extent_code, is_refused, decision_type, start, end */
	/* A sub-record the parser skipped (no key): field 0 says which, for the step's reject count and the log. */
	REC_REJECT,
	REC__COUNT
};

enum { TC_CODE, TC_TYPE, TC_TITLE, TC_PARENT_CODE, TC_PARENT_TITLE, TC_CONFIDENTIAL, TC_LEGACY, TC_CURRENCY_STATUS,
	TC_CREATED, TC_UPDATED, TC_USAGE_CURRENT, TC_ISC_CODE, TC__N };
/* ORG_KIND: the GetDetailsResult's i:type ("Rto3", "Organisation2"); unset when the source does not say. */
enum { ORG_CREATED, ORG_UPDATED, ORG_STATUS, ORG_LEGACY, ORG_LEGAL_NAME, ORG_ABN, ORG_ACN, ORG_SCOPE_HASH,
	ORG_SCOPE_COUNT, ORG_SCOPE_SEEN, ORG_KIND, ORG__N };

#define REC_MAX_FIELDS 16
#define REC_FIELD_MAX (128 * 1024)	/* fields are at most 64 KiB of XML text; more means a corrupt stage file */

/* One record being built or read: fields are NUL-terminated strings in an arena, or NULL. */
struct rec {
	int type;
	int n;
	struct buf arena;
	size_t off[REC_MAX_FIELDS];
	int32_t len[REC_MAX_FIELDS];	/* -1: NULL */
};

void rec_init(struct rec *);
void rec_free(struct rec *);
void rec_begin(struct rec *, int type, int nfields);
void rec_set(struct rec *, int i, const char *s, size_t len);
void rec_set_str(struct rec *, int i, const char *s);	/* NULL: SQL NULL */
void rec_set_bool(struct rec *, int i, bool v);
const char *rec_str(const struct rec *, int i);	/* NULL if NULL */
bool rec_isset(const struct rec *, int i);

struct stage_entity {
	char code[TGA_CODE_MAX];	/* the code asked for */
	int item;			/* index of the search result it came from, or -1 */
	bool nil;			/* GetDetailsResult i:nil: the record is gone upstream */
	off_t children, head, end;	/* children in [children, head), the head record at head */
};

struct stage {
	int fd;
	struct buf wbuf;		/* write buffer */
	off_t pos;			/* logical end (file + wbuf) */
	off_t entity_start;
	bool in_entity;
	struct stage_entity *ents;
	size_t n, cap;
	/* reading */
	off_t rpos;
	char *rbuf;
	size_t rlen, roff;
	off_t rbase;
};

struct stage *stage_new(const char *dir, char **cause);
void stage_free(struct stage *);
void stage_reset(struct stage *);

void stage_entity_begin(struct stage *);
int stage_put(struct stage *, const struct rec *, char **cause);
/* Close the entity with its head record (NULL for a nil result). */
int stage_entity_end(struct stage *, const char *code, int item, const struct rec *head, char **cause);
/* Drop what was written since stage_entity_begin (a response that turned out malformed). */
int stage_entity_abort(struct stage *, char **cause);

/* Read a record at an offset (then the next ones): returns 1, 0 at end (limit reached), -1 on error. */
int stage_seek(struct stage *, off_t, char **cause);
int stage_next(struct stage *, off_t limit, struct rec *, char **cause);

#endif
