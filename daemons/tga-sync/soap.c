#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "soap.h"
#include "tgatime.h"
#include "timeutil.h"
#include "xmalloc.h"
#include "xml.h"

#define NS_SOAP "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_WSSE "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
#define NS_WSU "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
#define PASSWORD_TEXT \
	"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
#define NS_SYSTEM "http://schemas.datacontract.org/2004/07/System"

static const char *const service_names[] = { "TrainingComponentService", "OrganisationService" };
static const char *const port_names[] = { "Training", "Organisation" };

const char *
soap_service_name(enum tga_service svc)
{
	return service_names[svc];
}

char *
soap_url(const struct tga_settings *s, enum tga_service svc)
{
	char *url, v[16] = "";

	if (s->version > 1)
		snprintf(v, sizeof v, "V%d", s->version);
	/* The basicHttp (SOAP 1.1) port; "...12" would be the SOAP 1.2 wsHttp port, not version 12. */
	xasprintf(&url, "%s/%s%s.svc/%s", s->base_url, service_names[svc], v, port_names[svc]);
	return url;
}

char *
soap_action_header(const struct tga_settings *s, enum tga_service svc, const char *op)
{
	char *h;

	/* Quoted, as the hand-written Go client sends it; WCF accepts both forms. */
	xasprintf(&h, "SOAPAction: \"%sI%s/%s\"", s->ns, service_names[svc], op);
	return h;
}

void
xml_escape(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':
			buf_adds(b, "&amp;");
			break;
		case '<':
			buf_adds(b, "&lt;");
			break;
		case '>':
			buf_adds(b, "&gt;");
			break;
		case '"':
			buf_adds(b, "&quot;");
			break;
		case '\'':
			buf_adds(b, "&apos;");
			break;
		default:
			buf_addc(b, *s);
		}
	}
}

/* Envelope, WS-Security header, and the operation element opened with the service namespace as default. */
static void
begin(struct buf *b, const struct tga_settings *s, const char *password, const char *op, bool has_request)
{
	char created[ISO8601_LEN], expires[ISO8601_LEN];
	time_t now = clock_now();

	buf_adds(b, "<s:Envelope xmlns:s=\"" NS_SOAP "\"><s:Header>"
	    "<wsse:Security s:mustUnderstand=\"1\" xmlns:wsse=\"" NS_WSSE "\" xmlns:wsu=\"" NS_WSU "\">");
	if (s->ws_timestamp) {
		/* The policy advertises IncludeTimestamp; five minutes is WCF's default MaxClockSkew. */
		buf_printf(b, "<wsu:Timestamp wsu:Id=\"TS-1\"><wsu:Created>%s</wsu:Created><wsu:Expires>%s</wsu:Expires>"
		    "</wsu:Timestamp>", iso8601_fmt(now, created), iso8601_fmt(now + 300, expires));
	}
	buf_adds(b, "<wsse:UsernameToken wsu:Id=\"UsernameToken-1\"><wsse:Username>");
	xml_escape(b, s->username);
	buf_adds(b, "</wsse:Username><wsse:Password Type=\"" PASSWORD_TEXT "\">");
	xml_escape(b, password);
	buf_adds(b, "</wsse:Password></wsse:UsernameToken></wsse:Security></s:Header><s:Body>");
	buf_printf(b, "<%s xmlns=\"", op);
	xml_escape(b, s->ns);
	buf_printf(b, "\"%s>", has_request ? " xmlns:a=\"" NS_SYSTEM "\"" : "");
	if (has_request)
		buf_adds(b, "<request>");
}

static void
end(struct buf *b, const char *op, bool has_request)
{
	if (has_request)
		buf_adds(b, "</request>");
	buf_printf(b, "</%s></s:Body></s:Envelope>", op);
}

/* A DateTimeOffset member: UTC with OffsetMinutes 0 (both children qualified in the System namespace). */
static void
dto(struct buf *b, const char *name, int64_t ticks)
{
	char t[TICKS_LEN];

	buf_printf(b, "<%s><a:DateTime>%s</a:DateTime><a:OffsetMinutes>0</a:OffsetMinutes></%s>", name,
	    ticks_format(ticks, t), name);
}

static void
page(struct buf *b, int number, int size)
{
	/* AbstractPageRequest: base members first. */
	buf_printf(b, "<PageNumber>%d</PageNumber><PageSize>%d</PageSize>", number, size);
}

void
soap_server_time(struct buf *b, const struct tga_settings *s, const char *password)
{
	begin(b, s, password, "GetServerTime", false);
	end(b, "GetServerTime", false);
}

void
soap_search_modified(struct buf *b, const struct tga_settings *s, const char *password, enum tga_service svc,
    int64_t from, int64_t to, int pageno, int page_size)
{
	int i;

	begin(b, s, password, "SearchByModifiedDate", true);
	page(b, pageno, page_size);
	/* xs:sequence after the base: DataManagerFilter (not sent: all), EndDate, [IncludeLegacyData], StartDate,
	 * TrainingComponentTypes. */
	dto(b, "EndDate", to);
	if (svc == SVC_TRAINING && s->legacy >= 0 && s->version >= 2)
		buf_printf(b, "<IncludeLegacyData>%s</IncludeLegacyData>", s->legacy ? "true" : "false");
	dto(b, "StartDate", from);
	if (svc == SVC_TRAINING) {
		buf_adds(b, "<TrainingComponentTypes>");
		for (i = 0; i < TCT_COUNT; i++)
			buf_printf(b, "<%s>%s</%s>", tct_filter_names[i], (s->tc_types & (1u << i)) ? "true" : "false",
			    tct_filter_names[i]);
		buf_adds(b, "</TrainingComponentTypes>");
	}
	end(b, "SearchByModifiedDate", true);
}

void
soap_search_deleted(struct buf *b, const struct tga_settings *s, const char *password, int64_t from, int64_t to,
    int pageno, int page_size)
{
	begin(b, s, password, "SearchDeletedByDeletedDate", true);
	page(b, pageno, page_size);
	dto(b, "EndDate", to);
	dto(b, "StartDate", from);
	end(b, "SearchDeletedByDeletedDate", true);
}

void
soap_get_details(struct buf *b, const struct tga_settings *s, const char *password, enum tga_service svc,
    const char *code)
{
	const char *const *flags = svc == SVC_TRAINING ? tc_flag_names : org_flag_names;
	int n = svc == SVC_TRAINING ? TC_FLAG_COUNT : ORG_FLAG_COUNT, i;
	unsigned set = svc == SVC_TRAINING ? s->tc_flags : s->org_flags;
	const char *info = svc == SVC_TRAINING ? s->tc_info_element : s->org_info_element;

	begin(b, s, password, "GetDetails", true);
	buf_adds(b, "<Code>");
	xml_escape(b, code);
	buf_adds(b, "</Code>");
	if (s->legacy >= 0 && s->version >= 2)
		buf_printf(b, "<IncludeLegacyData>%s</IncludeLegacyData>", s->legacy ? "true" : "false");
	/* Every flag, in XSD order, so that nothing depends on the server's defaults. */
	buf_printf(b, "<%s>", info);
	for (i = 0; i < n; i++)
		buf_printf(b, "<%s>%s</%s>", flags[i], (set & (1u << i)) ? "true" : "false", flags[i]);
	buf_printf(b, "</%s>", info);
	end(b, "GetDetails", true);
}

/* A handler that reads nothing but lets the framework capture an s:Fault. */
static enum xml_mode
fault_start(struct xml_parser *p, void *h, int id, int parent, int depth, bool nil)
{
	return depth < 2 && !(depth == 1 && id != XN_Body) ? XM_TEXT : XM_SKIP;
}

static void
fault_end(struct xml_parser *p, void *h, int id, int parent, int grandparent, int depth, const char *text,
    size_t len, bool nil)
{
}

static const struct xml_handler fault_handler = { fault_start, fault_end };

bool
soap_parse_fault(const char *body, size_t len, struct xml_fault *out)
{
	struct xml_parser *p;
	bool found = false;

	if (len == 0 || memmem(body, len, "faultcode", 9) == NULL)
		return false;
	p = xml_parser_new(&fault_handler, NULL);
	/* An error body is cut at 64 KiB (http.c): a fault whose code was read counts even if the rest is missing. */
	if (xml_parse_mem(p, body, len) == 0 ? xml_fault(p)->present : xml_fault(p)->code[0] != '\0') {
		*out = *xml_fault(p);
		found = true;
	}
	xml_parser_free(p);
	return found;
}

bool
soap_should_retry(long status, const char *content_type, const char *body, size_t len, void *arg)
{
	struct xml_fault f;

	/*
	 * WCF answers every fault with HTTP 500 and a SOAP envelope.  A fault about the request (wrong password, a
	 * validation error, a contract mismatch) is an answer: sending the same request again gives the same one.  A
	 * fault of the service itself (s:Server, a:InternalServiceFault) is transient like an IIS or proxy error page.
	 */
	if (soap_parse_fault(body, len, &f))
		return soap_fault_class(&f) == FAULT_SERVER;
	return true;
}

enum soap_fault_class
soap_fault_class(const struct xml_fault *f)
{
	const char *local = strrchr(f->code, ':');

	local = local != NULL ? local + 1 : f->code;
	if (strcasecmp(local, "InvalidSecurity") == 0 || strcasecmp(local, "FailedAuthentication") == 0 ||
	    strcasecmp(local, "InvalidSecurityToken") == 0 || strcasestr(f->string, "verifying security") != NULL)
		return FAULT_CREDENTIALS;
	if (strcasecmp(local, "Server") == 0 || strcasecmp(local, "InternalServiceFault") == 0 ||
	    strcasecmp(local, "ServerTooBusy") == 0)
		return FAULT_SERVER;
	return FAULT_CLIENT;
}
