/*
 * GetServerTime, SearchByModifiedDate and SearchDeletedByDeletedDate responses:
 *
 *   GetServerTimeResponse/GetServerTimeResult                       xs:dateTime with offset (Canberra local)
 *   SearchByModifiedDateResponse/SearchByModifiedDateResult/{Count, PageNumber, PageSize,
 *       Results/TrainingComponentSummary/{Code, UpdatedDate, IsCurrent, UsageReccomendation, Title, ...}
 *       Results/OrganisationSearchResultItem/{Code, UpdatedDate, LegalPersonName, ...}}
 *   SearchDeletedByDeletedDateResponse/SearchDeletedByDeletedDateResult (a bare array, no Count)
 *       /DeletedTrainingComponent/{NationalCode, Operation, UpdatedDate}
 *       /DeletedOrganisation/{Operation, OrganisationCode, UpdatedDate}
 *
 * A result without its code is skipped and reported (the phase counts it as rejected).  More results than the
 * page size asked for means the answer is not what we think it is: an error, not a truncation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "tgatime.h"
#include "xmalloc.h"

void
ps_init(struct ps_ctx *c, enum ps_kind kind, enum tga_service svc, int page_size)
{
	memset(c, 0, sizeof *c);
	c->kind = kind;
	c->svc = svc;
	c->page_size = page_size;
	c->result_depth = -1;
}

static bool
is_item(const struct ps_ctx *c, int id)
{
	if (c->kind == PS_MODIFIED)
		return id == (c->svc == SVC_TRAINING ? XN_TrainingComponentSummary : XN_OrganisationSearchResultItem);
	return id == (c->svc == SVC_TRAINING ? XN_DeletedTrainingComponent : XN_DeletedOrganisation);
}

static int
result_id(const struct ps_ctx *c)
{
	switch (c->kind) {
	case PS_TIME:
		return XN_GetServerTimeResult;
	case PS_MODIFIED:
		return XN_SearchByModifiedDateResult;
	default:
		return XN_SearchDeletedByDeletedDateResult;
	}
}

static enum xml_mode
ps_start(struct xml_parser *p, void *h, int id, int parent, int depth, bool nil)
{
	struct ps_ctx *c = h;

	if (depth == 1 && id != XN_Body)
		return XM_SKIP;		/* the s:Header (WS-Security timestamp) */
	if (id == result_id(c) && depth == 3) {
		c->saw_result = true;
		c->result_depth = depth;
		return XM_TEXT;
	}
	if (c->result_depth < 0 || depth <= c->result_depth)
		return XM_TEXT;
	if (is_item(c, id) && (parent == XN_Results || parent == result_id(c))) {
		int returned = c->kind == PS_MODIFIED ? c->page->returned : c->tombs->returned;

		if (returned >= c->page_size) {
			xml_fail(p, "more results than the page size asked for (%d)", c->page_size);
			return XM_SKIP;
		}
		c->in_item = true;
		c->item_code = false;
		c->code_raw[0] = c->title[0] = '\0';
		memset(&c->item, 0, sizeof c->item);
		c->item.is_current = -1;
		memset(&c->tomb, 0, sizeof c->tomb);
		return XM_TEXT;
	}
	if (c->in_item && (id == XN_UpdatedDate || id == XN_CreatedDate))
		return XM_DTO;
	return XM_TEXT;
}

static void
set_code(struct ps_ctx *c, const char *text, size_t len)
{
	parse_trim(&text, &len);
	parse_token_copy(c->code_raw, sizeof c->code_raw, text, len);
	if (tga_code_valid(text, len)) {
		parse_token_copy(c->kind == PS_MODIFIED ? c->item.code : c->tomb.code, TGA_CODE_MAX, text, len);
		c->item_code = true;
	}
}

static void
end_item(struct xml_parser *p, struct ps_ctx *c)
{
	const char *what = c->kind == PS_MODIFIED ? (c->svc == SVC_TRAINING ? "TrainingComponentSummary" :
	    "OrganisationSearchResultItem") : (c->svc == SVC_TRAINING ? "DeletedTrainingComponent" :
	    "DeletedOrganisation");
	const char *keyname = c->kind == PS_MODIFIED ? "Code" : (c->svc == SVC_TRAINING ? "NationalCode" :
	    "OrganisationCode");
	const char *updated = c->kind == PS_MODIFIED ? c->item.updated : c->tomb.updated;

	c->in_item = false;
	if (c->kind == PS_MODIFIED) {
		struct src_page *pg = c->page;

		pg->returned++;
		if (!c->item_code) {
			src_rejects_add(&pg->rejects, "%s #%d of the page has %s %s%s%s (Title '%s', UpdatedDate %s)",
			    what, pg->returned, c->code_raw[0] ? "an invalid" : "no", keyname,
			    c->code_raw[0] ? " " : "", c->code_raw, c->title, updated[0] ? updated : "?");
			return;
		}
		if (pg->n == pg->cap) {
			pg->cap = pg->cap ? pg->cap * 2 : 64;
			pg->items = xreallocarray(pg->items, pg->cap, sizeof *pg->items);
		}
		pg->items[pg->n++] = c->item;
	} else {
		struct src_tombs *tb = c->tombs;

		tb->returned++;
		if (!c->item_code) {
			src_rejects_add(&tb->rejects, "%s #%d of the page has %s %s%s%s (Operation %s, UpdatedDate %s)",
			    what, tb->returned, c->code_raw[0] ? "an invalid" : "no", keyname, c->code_raw[0] ? " " : "",
			    c->code_raw, c->tomb.operation[0] ? c->tomb.operation : "?", updated[0] ? updated : "?");
			return;
		}
		if (tb->n == tb->cap) {
			tb->cap = tb->cap ? tb->cap * 2 : 64;
			tb->items = xreallocarray(tb->items, tb->cap, sizeof *tb->items);
		}
		tb->items[tb->n++] = c->tomb;
	}
}

static void
ps_end(struct xml_parser *p, void *h, int id, int parent, int grandparent, int depth, const char *text, size_t len,
    bool nil)
{
	struct ps_ctx *c = h;
	int64_t t;
	bool zone, b;

	if (c->result_depth < 0)
		return;
	if (depth == c->result_depth && id == result_id(c)) {
		if (c->kind == PS_TIME) {
			/* GetServerTimeResult: Canberra local time with its offset (a value without one is taken as UTC). */
			if (nil || !ticks_parse(text, len, &t, &zone)) {
				xml_fail(p, "GetServerTimeResult '%.*s' is not an xs:dateTime", (int)(len < 64 ? len : 64), text);
				return;
			}
			*c->time_out = t;
		}
		c->result_depth = -1;
		return;
	}
	if (c->in_item && is_item(c, id)) {
		end_item(p, c);
		return;
	}
	if (c->in_item && is_item(c, parent)) {
		if (c->kind == PS_MODIFIED) {
			switch (id) {
			case XN_Code:
				if (!nil)
					set_code(c, text, len);
				break;
			case XN_UpdatedDate:
				if (!nil)
					parse_token_copy(c->item.updated, sizeof c->item.updated, text, len);
				break;
			case XN_IsCurrent:
				if (!nil && xml_bool(text, len, &b))
					c->item.is_current = b;
				break;
			case XN_UsageReccomendation:	/* sic: the contract's spelling */
			case XN_UsageRecommendation:
				if (!nil)
					parse_token_copy(c->item.usage, sizeof c->item.usage, text, len);
				break;
			case XN_Title:
			case XN_LegalPersonName:
				parse_token_copy(c->title, sizeof c->title, text, len);
				break;
			}
		} else {
			switch (id) {
			case XN_NationalCode:
			case XN_OrganisationCode:
				if (!nil)
					set_code(c, text, len);
				break;
			case XN_Operation:
				parse_token_copy(c->tomb.operation, sizeof c->tomb.operation, text, len);
				break;
			case XN_UpdatedDate:
				if (!nil)
					parse_token_copy(c->tomb.updated, sizeof c->tomb.updated, text, len);
				break;
			}
		}
		return;
	}
	if (c->kind == PS_MODIFIED && parent == XN_SearchByModifiedDateResult && id == XN_Count && !nil) {
		char num[32];
		char *e;

		parse_trim(&text, &len);
		parse_token_copy(num, sizeof num, text, len);
		c->page->count = strtoll(num, &e, 10);
		if (len == 0 || *e != '\0' || c->page->count < 0) {
			xml_fail(p, "Count '%s' is not a number", num);
			return;
		}
		c->have_count = true;
	}
}

const struct xml_handler ps_handler = { ps_start, ps_end };

int
ps_check(const struct ps_ctx *c, char *msg, size_t len)
{
	static const char *const names[] = { "GetServerTimeResult", "SearchByModifiedDateResult",
	    "SearchDeletedByDeletedDateResult" };

	if (!c->saw_result) {
		snprintf(msg, len, "the response has no %s", names[c->kind]);
		return -1;
	}
	if (c->kind == PS_MODIFIED && !c->have_count) {
		snprintf(msg, len, "SearchByModifiedDateResult has no Count");
		return -1;
	}
	return 0;
}
