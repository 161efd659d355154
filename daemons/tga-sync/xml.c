#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include "buf.h"
#include "log.h"
#include "tgatime.h"
#include "xmalloc.h"
#include "xml.h"

#define NAME_SLOTS 512		/* power of two, well over twice the number of names */
#define PTR_CACHE 256
#define CHUNK (64 * 1024)

static const char *const names[XN__COUNT] = {
	"(other)",
#define XML_STR(n) #n,
	XML_NAMES(XML_STR)
#undef XML_STR
};

static struct {
	const char *name;
	size_t len;
	int id;
} name_table[NAME_SLOTS];
static bool name_table_ready;

struct frame {
	uint8_t id;
	uint8_t mode;
	bool nil;
};

struct xml_parser {
	const struct xml_handler *hd;
	void *h;
	xmlParserCtxtPtr ctxt;
	int depth;
	struct frame stack[XML_MAX_DEPTH];
	int skip;			/* > 0: inside an ignored subtree, this many levels deep */
	size_t skipped_text;		/* text in a row inside an ignored subtree (bounded, though not kept) */
	struct buf text;
	int dto_level;			/* 1 + depth of the DateTimeOffset element being read, or 0 */
	char dto_dt[64], dto_off[16];
	size_t dto_dtlen, dto_offlen;
	int fault_level;		/* 1 + depth of the s:Fault element being read, or 0 */
	int fault_errors;
	struct xml_fault fault;
	char xsi_type[64];		/* the i:type of the element being started (local name), "" if none */
	bool failed;
	char err[512];
	struct {
		const xmlChar *p;
		int id;
	} cache[PTR_CACHE];
};

const char *
xml_name(int id)
{
	return id > 0 && id < XN__COUNT ? names[id] : "(other)";
}

static uint32_t
name_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static void
build_name_table(void)
{
	int id;

	for (id = 1; id < XN__COUNT; id++) {
		size_t len = strlen(names[id]);
		uint32_t slot = name_hash(names[id], len) & (NAME_SLOTS - 1);

		while (name_table[slot].name != NULL)
			slot = (slot + 1) & (NAME_SLOTS - 1);
		name_table[slot].name = names[id];
		name_table[slot].len = len;
		name_table[slot].id = id;
	}
	name_table_ready = true;
}

static int
lookup(struct xml_parser *p, const xmlChar *name)
{
	/* libxml2 interns names in the parser's dictionary: the same name is the same pointer for this document. */
	size_t c = ((uintptr_t)name >> 3) & (PTR_CACHE - 1), len;
	uint32_t slot;
	int id = XN_OTHER;

	if (p->cache[c].p == name)
		return p->cache[c].id;
	len = strlen((const char *)name);
	slot = name_hash((const char *)name, len) & (NAME_SLOTS - 1);
	while (name_table[slot].name != NULL) {
		if (name_table[slot].len == len && memcmp(name_table[slot].name, name, len) == 0) {
			id = name_table[slot].id;
			break;
		}
		slot = (slot + 1) & (NAME_SLOTS - 1);
	}
	p->cache[c].p = name;
	p->cache[c].id = id;
	return id;
}

void
xml_fail(struct xml_parser *p, const char *fmt, ...)
{
	va_list ap;

	if (p->failed)
		return;
	p->failed = true;
	va_start(ap, fmt);
	vsnprintf(p->err, sizeof p->err, fmt, ap);
	va_end(ap);
	/* The reason may quote the response (a date, a code): one line, no control characters. */
	text_escape_inplace(p->err, sizeof p->err, 0);
	if (p->ctxt != NULL)
		xmlStopParser(p->ctxt);
}

int
xml_depth_id(const struct xml_parser *p, int depth)
{
	return depth >= 0 && depth < p->depth ? p->stack[depth].id : XN_OTHER;
}

bool
xml_bool(const char *text, size_t len, bool *out)
{
	while (len > 0 && (*text == ' ' || *text == '\n' || *text == '\r' || *text == '\t'))
		text++, len--;
	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\n' || text[len - 1] == '\r' ||
	    text[len - 1] == '\t'))
		len--;
	if ((len == 4 && memcmp(text, "true", 4) == 0) || (len == 1 && *text == '1')) {
		*out = true;
		return true;
	}
	if ((len == 5 && memcmp(text, "false", 5) == 0) || (len == 1 && *text == '0')) {
		*out = false;
		return true;
	}
	return false;
}

static void
copy_text(char *dst, size_t dstlen, const char *src, size_t len)
{
	if (len >= dstlen)
		len = dstlen - 1;
	if (len > 0)	/* src is NULL for an empty element before any text (a buffer never grown) */
		memcpy(dst, src, len);
	dst[len] = '\0';
}

/* --- SAX callbacks ------------------------------------------------------------------------------------------ */

/* An xsi:type value ("Rto3", "a:Rto3"): its local name, kept only if it looks like a type name. */
static void
xsi_type_set(struct xml_parser *p, const char *v, size_t len)
{
	const char *colon = memchr(v, ':', len);
	size_t i;

	if (colon != NULL) {
		len -= (size_t)(colon + 1 - v);
		v = colon + 1;
	}
	if (len == 0 || len >= sizeof p->xsi_type)
		return;
	for (i = 0; i < len; i++)
		if (!((v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') ||
		    v[i] == '_'))
			return;
	memcpy(p->xsi_type, v, len);
	p->xsi_type[len] = '\0';
}

static void
on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri, int nb_namespaces,
    const xmlChar **namespaces, int nb_attributes, int nb_defaulted, const xmlChar **attrs)
{
	struct xml_parser *p = ctx;
	struct frame *f;
	int id, parent, i;
	bool nil = false;
	enum xml_mode mode = XM_TEXT;

	if (p->failed)
		return;
	/* The limit counts skipped levels too: unclosed tags in an ignored subtree would otherwise grow libxml2's
	 * stacks without bound (85 million of them took 3 GB and blocked the loop for 25 s). */
	if (p->depth + p->skip >= XML_MAX_DEPTH) {
		xml_fail(p, "elements nested more than %d deep", XML_MAX_DEPTH);
		return;
	}
	if (p->skip > 0) {
		p->skip++;
		p->skipped_text = 0;
		return;
	}
	if (p->depth >= XML_MAX_DEPTH) {
		xml_fail(p, "elements nested more than %d deep", XML_MAX_DEPTH);
		return;
	}
	id = lookup(p, localname);
	parent = p->depth > 0 ? p->stack[p->depth - 1].id : XN_OTHER;
	/* Attributes come as (localname, prefix, URI, value start, value end). */
	p->xsi_type[0] = '\0';
	for (i = 0; i < nb_attributes; i++) {
		const xmlChar **a = attrs + 5 * i;
		size_t vlen = (size_t)(a[4] - a[3]);

		if (a[2] == NULL || strcmp((const char *)a[2], "http://www.w3.org/2001/XMLSchema-instance") != 0)
			continue;
		if (strcmp((const char *)a[0], "nil") == 0)
			nil = (vlen == 4 && memcmp(a[3], "true", 4) == 0) || (vlen == 1 && a[3][0] == '1');
		else if (strcmp((const char *)a[0], "type") == 0)
			xsi_type_set(p, (const char *)a[3], vlen);
	}
	if (p->fault_level > 0 || p->dto_level > 0)
		mode = XM_TEXT;		/* read by the framework itself */
	else if (id == XN_Fault && parent == XN_Body) {
		p->fault.present = true;
		p->fault_level = p->depth + 1;
	} else
		mode = p->hd->start(p, p->h, id, parent, p->depth, nil);
	if (p->failed)
		return;
	if (mode == XM_SKIP) {
		p->skip = 1;
		p->skipped_text = 0;
		return;
	}
	f = &p->stack[p->depth++];
	f->id = (uint8_t)id;
	f->mode = (uint8_t)mode;
	f->nil = nil;
	if (mode == XM_DTO) {
		p->dto_level = p->depth;
		p->dto_dtlen = p->dto_offlen = 0;
		p->dto_dt[0] = p->dto_off[0] = '\0';
	}
	buf_reset(&p->text);
}

static void
fault_end(struct xml_parser *p, int id, int parent, const char *text, size_t len)
{
	struct xml_fault *fl = &p->fault;
	size_t have;

	/* The service's text goes into logs, rows and mails: escaped here, on the way in ("\n<0>" in a faultstring
	 * must not become a journal line of its own). */
	if (id == XN_faultcode && parent == XN_Fault)
		text_escape(fl->code, sizeof fl->code, text, len, 0);
	else if (id == XN_faultstring && parent == XN_Fault)
		text_escape(fl->string, sizeof fl->string, text, len, 0);
	else if ((id == XN_Code || id == XN_Message) && parent == XN_ValidationError &&
	    p->fault_errors < XML_MAX_ERRORS) {
		have = strlen(fl->detail);
		if (have + 4 < sizeof fl->detail) {
			have += (size_t)snprintf(fl->detail + have, sizeof fl->detail - have, "%s",
			    id == XN_Code ? (have > 0 ? "; " : "") : ": ");
			text_escape(fl->detail + have, sizeof fl->detail - have, text, len, 0);
		}
	} else if (id == XN_ValidationError)
		p->fault_errors++;
}

static void
on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
	struct xml_parser *p = ctx;
	struct frame *f;
	int parent, grandparent;

	if (p->failed)
		return;
	if (p->skip > 0) {
		p->skip--;
		p->skipped_text = 0;
		return;
	}
	if (p->depth == 0)
		return;
	f = &p->stack[--p->depth];
	parent = p->depth > 0 ? p->stack[p->depth - 1].id : XN_OTHER;
	grandparent = p->depth > 1 ? p->stack[p->depth - 2].id : XN_OTHER;

	if (p->fault_level > 0) {
		if (p->depth + 1 == p->fault_level)
			p->fault_level = 0;
		else {
			/* A fault may quote what we sent: mask registered secrets before the text is cut to size (a
			 * secret cut in two is one that redaction further on no longer recognises). */
			if (p->text.data != NULL)
				redact(p->text.data);
			fault_end(p, f->id, parent, p->text.data ? p->text.data : "", p->text.len);
		}
		buf_reset(&p->text);
		return;
	}
	if (p->dto_level > 0 && p->depth + 1 > p->dto_level) {
		if (f->id == XN_DateTime && p->text.len < sizeof p->dto_dt) {
			copy_text(p->dto_dt, sizeof p->dto_dt, p->text.data, p->text.len);
			p->dto_dtlen = p->text.len;
		} else if (f->id == XN_OffsetMinutes && p->text.len < sizeof p->dto_off) {
			copy_text(p->dto_off, sizeof p->dto_off, p->text.data, p->text.len);
			p->dto_offlen = p->text.len;
		}
		buf_reset(&p->text);
		return;
	}
	if (p->dto_level > 0) {
		char canon[TICKS_LEN];
		int64_t t;

		p->dto_level = 0;
		if (f->nil) {
			p->hd->end(p, p->h, f->id, parent, grandparent, p->depth, "", 0, true);
		} else {
			if (!ticks_from_dto(p->dto_dt, p->dto_dtlen, p->dto_off, p->dto_offlen, &t)) {
				xml_fail(p, "<%s> is not a DateTimeOffset {DateTime '%s', OffsetMinutes '%s'}",
				    xml_name(f->id), p->dto_dt, p->dto_off);
				return;
			}
			ticks_format(t, canon);
			p->hd->end(p, p->h, f->id, parent, grandparent, p->depth, canon, strlen(canon), false);
		}
		buf_reset(&p->text);
		return;
	}
	if (f->nil)
		p->hd->end(p, p->h, f->id, parent, grandparent, p->depth, "", 0, true);
	else
		p->hd->end(p, p->h, f->id, parent, grandparent, p->depth, p->text.data ? p->text.data : "",
		    p->text.len, false);
	buf_reset(&p->text);
}

static void
on_chars(void *ctx, const xmlChar *ch, int len)
{
	struct xml_parser *p = ctx;

	if (p->failed || len <= 0)
		return;
	if (p->skip > 0) {
		/* Not kept, but no response of the service has a text this long: refuse it as the document it is. */
		p->skipped_text += (size_t)len;
		if (p->skipped_text > XML_MAX_SKIPPED_TEXT)
			xml_fail(p, "an ignored element has more than %d bytes of text", XML_MAX_SKIPPED_TEXT);
		return;
	}
	if (p->text.len + (size_t)len > XML_MAX_TEXT) {
		xml_fail(p, "element <%s> has more than %d bytes of text",
		    p->depth > 0 ? xml_name(p->stack[p->depth - 1].id) : "?", XML_MAX_TEXT);
		return;
	}
	/* The common case (a short value into a buffer that has grown already) without a call per chunk. */
	if (p->text.len + (size_t)len < p->text.cap) {
		memcpy(p->text.data + p->text.len, ch, (size_t)len);
		p->text.len += (size_t)len;
		p->text.data[p->text.len] = '\0';
		return;
	}
	buf_add(&p->text, ch, (size_t)len);
}

static void
on_dtd(void *ctx, const xmlChar *name, const xmlChar *external_id, const xmlChar *system_id)
{
	/* SOAP 1.1 (section 3) forbids a DTD; refusing it also rules out entity tricks. */
	xml_fail(ctx, "the response has a DTD (not allowed in SOAP)");
}

static void
on_error(void *ctx, xmlErrorPtr e)
{
	struct xml_parser *p = ctx;
	char msg[384];
	size_t n;

	if (e == NULL || e->level < XML_ERR_ERROR || p->failed)
		return;
	snprintf(msg, sizeof msg, "%s", e->message ? e->message : "XML error");
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	xml_fail(p, "not well-formed XML: %s (line %d, column %d)", msg, e->line, e->int2);
}

static xmlSAXHandler sax_handler = {
	.initialized = XML_SAX2_MAGIC,
	.startElementNs = on_start,
	.endElementNs = on_end,
	.characters = on_chars,
	.cdataBlock = on_chars,
	.ignorableWhitespace = on_chars,
	.internalSubset = on_dtd,
	.serror = on_error,
};

/* --- API ---------------------------------------------------------------------------------------------------- */

struct xml_parser *
xml_parser_new(const struct xml_handler *hd, void *h)
{
	struct xml_parser *p = xcalloc(1, sizeof *p);

	if (!name_table_ready)
		build_name_table();
	p->hd = hd;
	p->h = h;
	buf_init(&p->text);
	return p;
}

void
xml_parser_free(struct xml_parser *p)
{
	if (p == NULL)
		return;
	if (p->ctxt != NULL)
		xmlFreeParserCtxt(p->ctxt);
	buf_free(&p->text);
	free(p);
}

static int
begin(struct xml_parser *p)
{
	p->ctxt = xmlCreatePushParserCtxt(&sax_handler, p, NULL, 0, NULL);
	if (p->ctxt == NULL) {
		xml_fail(p, "cannot create an XML parser (out of memory)");
		return -1;
	}
	/* No network, no entity substitution, no DTD loading: the response is data, nothing else. */
	xmlCtxtUseOptions(p->ctxt, XML_PARSE_NONET | XML_PARSE_NOCDATA);
	return 0;
}

/*
 * libxml2's push parser holds a start tag, a comment or a processing instruction until its end arrives: a 200 MB
 * attribute would sit in its input buffer whole.  Nothing the service sends has one that long.
 */
static void
check_pending(struct xml_parser *p)
{
	xmlParserInputPtr in = p->ctxt != NULL ? p->ctxt->input : NULL;

	if (!p->failed && in != NULL && in->cur != NULL && in->end != NULL && in->end - in->cur > XML_MAX_PENDING)
		xml_fail(p, "a tag, comment or declaration longer than %d bytes", XML_MAX_PENDING);
}

static int
finish(struct xml_parser *p)
{
	if (!p->failed)
		xmlParseChunk(p->ctxt, NULL, 0, 1);
	if (!p->failed && !p->ctxt->wellFormed)
		xml_fail(p, "not well-formed XML");
	if (!p->failed && p->depth != 0)
		xml_fail(p, "the document ends inside <%s>", xml_name(p->stack[p->depth - 1].id));
	xmlFreeParserCtxt(p->ctxt);
	p->ctxt = NULL;
	return p->failed ? -1 : 0;
}

int
xml_parse_mem(struct xml_parser *p, const char *data, size_t len)
{
	if (begin(p) == -1)
		return -1;
	while (len > 0 && !p->failed) {
		size_t n = len < CHUNK ? len : CHUNK;

		if (xmlParseChunk(p->ctxt, data, (int)n, 0) != 0 && !p->failed)
			xml_fail(p, "not well-formed XML");
		check_pending(p);
		data += n;
		len -= n;
	}
	return finish(p);
}

int
xml_parse_fd(struct xml_parser *p, int fd)
{
	char *chunk = xmalloc(CHUNK);
	ssize_t n;

	if (begin(p) == -1) {
		free(chunk);
		return -1;
	}
	while (!p->failed) {
		n = read(fd, chunk, CHUNK);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			xml_fail(p, "cannot read the spooled response: %s", strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if (xmlParseChunk(p->ctxt, chunk, (int)n, 0) != 0 && !p->failed)
			xml_fail(p, "not well-formed XML");
		check_pending(p);
	}
	free(chunk);
	return finish(p);
}

const char *
xml_error(const struct xml_parser *p)
{
	return p->err[0] != '\0' ? p->err : "XML error";
}

const char *
xml_xsi_type(const struct xml_parser *p)
{
	return p->xsi_type;
}

const struct xml_fault *
xml_fault(const struct xml_parser *p)
{
	return &p->fault;
}
