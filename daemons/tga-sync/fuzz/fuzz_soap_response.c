/*
 * tga-sync's SOAP response parsers on arbitrary bodies: every input goes through each of the response handlers the
 * daemon uses (GetServerTime, SearchByModifiedDate and SearchDeletedByDeletedDate of both services, GetDetails of a
 * training component and of an organisation), with the framework's fault capture and DateTimeOffset reading, as
 * source-soap.c drives them: streamed from a spool file (xml_parse_fd), except GetServerTime from memory
 * (xml_parse_mem, the path of an error body).  A GetDetails answer that parses is closed into the stage and read
 * back, as the writer does.  A registered secret quoted in a fault must not survive into the captured fault.  The
 * daemon's own sources (fuzz/soap_response.sources) are linked, not copies.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "log.h"

#include "../parse.h"
#include "../soap.h"
#include "../tgatime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__ubsan_default_options(void);

/* Undefined behaviour is a finding like a crash (the ASan test build has -fno-sanitize-recover too). */
const char *
__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

/* A registered secret, as the daemon's password is: a captured fault must never hold it (masked first). */
#define SECRET "TgaFuzzSecret-4711"

static int spool = -1;
static struct stage *stage;

/* After a parse: what source-soap.c looks at (the fault's class, the checks, the error text). */
static int
outcome(struct xml_parser *p, int rc)
{
	const struct xml_fault *f = xml_fault(p);
	char msg[64];

	if (strstr(f->code, SECRET) != NULL || strstr(f->string, SECRET) != NULL || strstr(f->detail, SECRET) != NULL)
		abort();
	if (rc == 0 && f->present) {
		snprintf(msg, sizeof msg, "%d %s", (int)soap_fault_class(f), f->detail);
		return 1;
	}
	if (rc == -1)
		snprintf(msg, sizeof msg, "%s", xml_error(p));
	return rc;
}

static int
parse(const struct xml_handler *hd, void *ctx, const uint8_t *data, size_t size, bool from_fd)
{
	struct xml_parser *p = xml_parser_new(hd, ctx);
	int rc;

	if (from_fd) {
		lseek(spool, 0, SEEK_SET);
		rc = xml_parse_fd(p, spool);
	} else
		rc = xml_parse_mem(p, (const char *)data, size);
	rc = outcome(p, rc);
	xml_parser_free(p);
	return rc;
}

static void
search(enum ps_kind kind, enum tga_service svc, int page_size, const uint8_t *data, size_t size)
{
	struct src_page pg;
	struct src_tombs tb;
	struct ps_ctx c;
	int64_t now = 0;
	char msg[256], t[TICKS_LEN];
	size_t i;

	memset(&pg, 0, sizeof pg);
	memset(&tb, 0, sizeof tb);
	ps_init(&c, kind, svc, page_size);
	c.page = &pg;
	c.tombs = &tb;
	c.time_out = &now;
	if (parse(&ps_handler, &c, data, size, kind != PS_TIME) == 0 && ps_check(&c, msg, sizeof msg) == 0) {
		/* What the phases do with a page: the codes as keys, the times through ticks. */
		for (i = 0; i < pg.n; i++) {
			int64_t ticks;
			bool zone;

			if (ticks_parse(pg.items[i].updated, strlen(pg.items[i].updated), &ticks, &zone))
				ticks_format(ticks, t);
			if (!tga_code_valid(pg.items[i].code, strlen(pg.items[i].code)))
				abort();	/* the parser promised a valid code */
		}
		for (i = 0; i < tb.n; i++)
			if (!tga_code_valid(tb.items[i].code, strlen(tb.items[i].code)))
				abort();
		if (kind == PS_TIME)
			ticks_format_sec(now, t);
	}
	src_page_clear(&pg);
	src_tombs_clear(&tb);
}

static void
details(enum tga_service svc, const uint8_t *data, size_t size)
{
	struct pd_ctx pd;
	struct rec head, r;
	char msg[256], *cause = NULL;
	int rc;

	stage_reset(stage);
	pd_init(&pd, svc, ~0u, stage, svc == SVC_TRAINING ? "BSB40920" : "0275");
	stage_entity_begin(stage);
	rc = parse(svc == SVC_TRAINING ? &pd_tc_handler : &pd_org_handler, &pd, data, size, true);
	if (rc == 0)
		rc = pd_check(&pd, msg, sizeof msg);
	if (rc == 0 && stage_entity_end(stage, pd.code, 0, pd.nil ? NULL : &pd.head, &cause) == 0) {
		/* Read it back as the writer does: the head, then the children. */
		const struct stage_entity *e = &stage->ents[0];

		rec_init(&head);
		rec_init(&r);
		if (!e->nil && (stage_seek(stage, e->head, &cause) == -1 || stage_next(stage, e->end, &head, &cause) != 1))
			abort();	/* what was just written must read back */
		if (stage_seek(stage, e->children, &cause) == 0)
			while ((rc = stage_next(stage, e->head, &r, &cause)) == 1)
				(void)rec_str(&r, 0);
		if (rc == -1)
			abort();
		rec_free(&head);
		rec_free(&r);
	} else
		stage_entity_abort(stage, NULL);
	free(cause);
	pd_free(&pd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *cause = NULL;

	if (spool == -1) {
		log_init("fuzz", 0);
		secret_register(SECRET);
		xmlInitParser();
		if ((spool = memfd_create("fuzz-soap", 0)) == -1 || (stage = stage_new("/tmp", &cause)) == NULL) {
			fprintf(stderr, "fuzz_soap_response: setup: %s\n", cause ? cause : "memfd_create");
			abort();
		}
	}
	if (ftruncate(spool, 0) == -1 || pwrite(spool, data, size, 0) != (ssize_t)size)
		return 0;

	search(PS_TIME, SVC_TRAINING, 1, data, size);
	search(PS_MODIFIED, SVC_TRAINING, 3, data, size);
	search(PS_MODIFIED, SVC_ORGANISATION, 1000, data, size);
	search(PS_DELETED, SVC_TRAINING, 1000, data, size);
	search(PS_DELETED, SVC_ORGANISATION, 2, data, size);
	details(SVC_TRAINING, data, size);
	details(SVC_ORGANISATION, data, size);
	(void)soap_should_retry(500, "text/xml", (const char *)data, size, NULL);
	return 0;
}
