/*
 * Response parsers: xml.c handlers that map TGA's SOAP responses onto search items, tombstones and staged records.
 * They match local element names in their context (parent, grandparent), never positions, and tolerate absent
 * arrays, i:nil members and unknown elements (later contract versions add members).
 */
#ifndef TGA_PARSE_H
#define TGA_PARSE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "source.h"
#include "stage.h"
#include "xml.h"

enum ps_kind { PS_TIME, PS_MODIFIED, PS_DELETED };

/* parse-search.c: GetServerTime, SearchByModifiedDate, SearchDeletedByDeletedDate. */
struct ps_ctx {
	enum ps_kind kind;
	enum tga_service svc;
	int page_size;
	int64_t *time_out;
	struct src_page *page;
	struct src_tombs *tombs;
	bool saw_result, have_count;
	int result_depth;
	/* the result element being read */
	bool in_item;
	struct src_item item;
	bool item_code;
	char code_raw[80];
	char title[128];
	struct src_tomb tomb;
};
extern const struct xml_handler ps_handler;
void ps_init(struct ps_ctx *, enum ps_kind, enum tga_service, int page_size);
/* After a successful parse without a fault: is the response what was asked for?  -1 with msg. */
int ps_check(const struct ps_ctx *, char *msg, size_t len);

/* parse-details.c: GetDetails of a training component or an organisation, into a stage entity. */
struct pd_ctx {
	enum tga_service svc;
	unsigned flags;			/* the Show* flags that were asked for */
	struct stage *stage;
	const char *code;		/* as requested */
	bool saw_result, nil;
	int result_depth;
	struct rec head, child, rel;
	bool child_open;
	char release_number[64];
	bool release_has_number;
	/* organisation */
	uint64_t scope_hash;
	int64_t scope_count;
	bool scope_seen;
	bool legal_current;		/* the legal person kept is a current one (no end date) */
	bool legal_any;
	char abn_first[64];
	bool abn_seen;
	int rejects;
	char *cause;			/* a stage write error */
};
extern const struct xml_handler pd_tc_handler, pd_org_handler;
void pd_init(struct pd_ctx *, enum tga_service, unsigned flags, struct stage *, const char *code);
void pd_free(struct pd_ctx *);
int pd_check(const struct pd_ctx *, char *msg, size_t len);
/* The hash of one REC_ORG_SCOPE record; an RTO's scope hash is the sum over its rows (order-independent).  The
 * REST source (parse-rest.c) uses the same function, so both sources store the same scope_hash. */
uint64_t pd_scope_row_hash(const struct rec *);

/* Text helpers the parsers share: trim spaces, tabs and line ends off both ends; copy a token into a fixed buffer,
 * cut to fit (dstlen > 0). */
static inline void
parse_trim(const char **s, size_t *len)
{
	while (*len > 0 && (**s == ' ' || **s == '\n' || **s == '\r' || **s == '\t'))
		(*s)++, (*len)--;
	while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\n' || (*s)[*len - 1] == '\r' ||
	    (*s)[*len - 1] == '\t'))
		(*len)--;
}

static inline void
parse_token_copy(char *dst, size_t dstlen, const char *s, size_t len)
{
	if (len >= dstlen)
		len = dstlen - 1;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

/* An ABN as both sources store it, digits only ("12 345 678 901" -> "12345678901"): true with the digits in dst;
 * false for a value with anything but digits and blanks (or too long), which the caller keeps as sent. */
static inline bool
parse_abn(const char *s, size_t len, char *dst, size_t dstlen)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
			continue;
		if (s[i] < '0' || s[i] > '9' || n + 1 >= dstlen)
			return false;
		dst[n++] = s[i];
	}
	dst[n] = '\0';
	return n > 0;
}

#endif
