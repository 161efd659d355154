/*
 * tga-sync-selftest: the protocol and parser layers on their own (ctest: unit.tga-sync-selftest).
 * DateTimeOffset and instants; request envelopes (XSD order, escaping, WS-Security); the streaming parsers on good
 * responses and on hostile ones (DTD, deep nesting, huge text, undefined entities, truncation, too many results).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "buf.h"
#include "check.h"
#include "parse.h"
#include "soap.h"
#include "stage.h"
#include "tga.h"
#include "tgatime.h"
#include "xmalloc.h"
#include "xml.h"

#define NS_DISPATCHER "http://schemas.microsoft.com/net/2005/12/windowscommunicationfoundation/dispatcher"

#define ENV_HEAD "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Header><o:Security " \
	"xmlns:o=\"x\"><Code>HEADER-IS-SKIPPED</Code></o:Security></s:Header><s:Body>"
#define ENV_TAIL "</s:Body></s:Envelope>"
#define NS "xmlns=\"http://training.gov.au/services/13/\""
#define I "xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\""
#define DTO(name, dt, off) "<" name " xmlns:a=\"http://schemas.datacontract.org/2004/07/System\"><a:DateTime>" dt \
	"</a:DateTime><a:OffsetMinutes>" off "</a:OffsetMinutes></" name ">"

static void
test_ticks(void)
{
	static const char *const same[] = { "2019-03-04T05:06:07.1234567Z", "2019-03-04T05:06:07.5Z",
	    "2019-03-04T05:06:07Z", "1999-12-31T23:59:59.0000001Z", "2026-01-05T00:00:00Z" };
	char out[TICKS_LEN];
	int64_t a, b;
	bool zone;
	size_t i;

	for (i = 0; i < sizeof same / sizeof same[0]; i++) {
		CHECK_MSG(ticks_parse(same[i], strlen(same[i]), &a, &zone) && zone, "%s", same[i]);
		CHECK_MSG(strcmp(ticks_format(a, out), same[i]) == 0, "%s -> %s", same[i], out);
	}
	CHECK_MSG(ticks_parse("2019-03-04T05:06:07.500Z", 24, &a, &zone), "trailing zeros");
	CHECK_MSG(strcmp(ticks_format(a, out), "2019-03-04T05:06:07.5Z") == 0, "%s", out);
	CHECK_MSG(ticks_parse("2026-01-05T11:00:00+11:00", 25, &a, &zone) && zone, "offset");
	CHECK_MSG(strcmp(ticks_format(a, out), "2026-01-05T00:00:00Z") == 0, "%s", out);
	CHECK_MSG(ticks_parse(" 2026-01-05T11:00:00.25-02:30\n", 30, &a, &zone), "spaces and a negative offset");
	CHECK_MSG(strcmp(ticks_format(a, out), "2026-01-05T13:30:00.25Z") == 0, "%s", out);
	CHECK_MSG(ticks_parse("2026-01-05T11:00:00", 19, &a, &zone) && !zone, "no zone");
	/* A DateTimeOffset: with Z it is that instant; without, local time at OffsetMinutes. */
	CHECK_MSG(ticks_from_dto("2026-01-05T11:00:00", 19, "660", 3, &a), "dto");
	CHECK_MSG(strcmp(ticks_format(a, out), "2026-01-05T00:00:00Z") == 0, "%s", out);
	CHECK_MSG(ticks_from_dto("2026-01-05T11:00:00Z", 20, "660", 3, &a), "dto utc");
	CHECK_MSG(strcmp(ticks_format(a, out), "2026-01-05T11:00:00Z") == 0, "%s", out);
	CHECK_MSG(!ticks_from_dto("2026-01-05T11:00:00Z", 20, "9999", 4, &a), "offset out of range");
	CHECK_MSG(!ticks_from_dto("2026-01-05T11:00:00Z", 20, "", 0, &a), "no offset");
	/* Fractions do not sort as text; ticks do. */
	CHECK_MSG(ticks_parse("2019-03-04T05:06:07.5Z", 22, &a, &zone) && ticks_parse("2019-03-04T05:06:07Z", 20, &b, &zone)
	    && a > b, "07.5Z after 07Z");
	CHECK_MSG(!ticks_parse("2019-02-30T00:00:00Z", 20, &a, &zone), "no 30 February");
	CHECK_MSG(!ticks_parse("2019-03-04 05:06:07Z", 20, &a, &zone), "a space for T");
	CHECK_MSG(!ticks_parse("2019-03-04T05:06:07.Z", 21, &a, &zone), "an empty fraction");
	CHECK_MSG(!ticks_parse("2019-03-04T05:06:07+1100", 24, &a, &zone), "an offset without colon");
	CHECK_MSG(!ticks_parse("garbage", 7, &a, &zone), "garbage");
	CHECK_MSG(ticks_parse("1900-01-01T00:00:00Z", 20, &a, &zone) && a < 0 &&
	    strcmp(ticks_format(a, out), "1900-01-01T00:00:00Z") == 0, "before 1970: %s", out);
	CHECK_MSG(strcmp(ticks_format_sec(ticks_from_time(0) + 5, out), "1970-01-01T00:00:00Z") == 0, "%s", out);
}

static struct tga_settings
settings(void)
{
	struct tga_settings s;

	memset(&s, 0, sizeof s);
	s.base_url = (char *)"https://ws.example/Deewr.Tga.Webservices";
	s.version = 13;
	s.ns = (char *)"http://training.gov.au/services/13/";
	s.username = (char *)"WebService.Read";
	s.ws_timestamp = true;
	s.page_size = 500;
	s.tc_types = TCT_QUALIFICATION | TCT_UNIT;
	s.tc_flags = (1u << tc_flag_index("ShowReleases")) | (1u << tc_flag_index("ShowUnitGrid"));
	s.org_flags = 1u << org_flag_index("ShowExplicitScope");
	s.tc_info_element = (char *)"InformationRequest";
	s.org_info_element = (char *)"InformationRequested";
	s.legacy = -1;
	return s;
}

/* Each needle appears, in this order. */
static bool
in_order(const char *hay, const char *const *needles)
{
	const char *p = hay;

	for (; *needles != NULL; needles++) {
		if ((p = strstr(p, *needles)) == NULL) {
			fprintf(stderr, "  missing or out of order: %s\n", *needles);
			return false;
		}
		p += strlen(*needles);
	}
	return true;
}

static void
test_envelopes(void)
{
	struct tga_settings s = settings();
	struct buf b;
	char *url, *h;
	const char *order_tc[] = { "<wsse:Security", "<wsu:Timestamp", "<wsse:Username>WebService.Read</wsse:Username>",
	    "#PasswordText\">p&amp;w&lt;d&gt;&quot;&apos;</wsse:Password>", "<s:Body>",
	    "<GetDetails xmlns=\"http://training.gov.au/services/13/\"", "<request><Code>BSB&amp;40920</Code>",
	    "<InformationRequest><ShowClassifications>false</ShowClassifications>",
	    "<ShowCompletionMapping>false", "<ShowComponents>false", "<ShowContacts>false", "<ShowCurrencyPeriods>false",
	    "<ShowDataManagers>false", "<ShowFiles>false", "<ShowMappingInformation>false",
	    "<ShowRecognitionManagers>false", "<ShowReleases>true", "<ShowUnitGrid>true",
	    "<ShowUsageRecommendation>false</ShowUsageRecommendation></InformationRequest></request></GetDetails>",
	    NULL };
	const char *order_org[] = { "<Code>0275</Code><InformationRequested><ShowCodes>false", "<ShowExplicitScope>true",
	    "<ShowUrls>false</ShowUrls></InformationRequested>", NULL };
	const char *order_search[] = { "<request><PageNumber>3</PageNumber><PageSize>500</PageSize>",
	    "<EndDate><a:DateTime>2026-01-05T00:00:00Z</a:DateTime><a:OffsetMinutes>0</a:OffsetMinutes></EndDate>",
	    "<IncludeLegacyData>false</IncludeLegacyData>",
	    "<StartDate><a:DateTime>2026-01-04T00:00:00.5Z</a:DateTime>",
	    "<TrainingComponentTypes><IncludeAccreditedCourse>false", "<IncludeQualification>true",
	    "<IncludeUnit>true", "<IncludeUnitContextualisation>false</IncludeUnitContextualisation>"
	    "</TrainingComponentTypes></request>", NULL };
	int64_t from, to;
	bool zone;

	buf_init(&b);
	soap_get_details(&b, &s, "p&w<d>\"'", SVC_TRAINING, "BSB&40920");
	CHECK_MSG(in_order(b.data, order_tc), "GetDetails envelope");
	CHECK_MSG(strstr(b.data, "IncludeLegacyData") == NULL, "omitted unless configured");
	buf_reset(&b);
	soap_get_details(&b, &s, "x", SVC_ORGANISATION, "0275");
	CHECK_MSG(in_order(b.data, order_org), "organisation GetDetails");
	buf_reset(&b);
	s.legacy = 0;
	ticks_parse("2026-01-04T00:00:00.5Z", 22, &from, &zone);
	ticks_parse("2026-01-05T00:00:00Z", 20, &to, &zone);
	soap_search_modified(&b, &s, "x", SVC_TRAINING, from, to, 3, 500);
	CHECK_MSG(in_order(b.data, order_search), "SearchByModifiedDate in XSD order");
	buf_reset(&b);
	soap_search_modified(&b, &s, "x", SVC_ORGANISATION, from, to, 1, 500);
	CHECK_MSG(strstr(b.data, "TrainingComponentTypes") == NULL && strstr(b.data, "IncludeLegacyData") == NULL,
	    "organisation search has neither");
	buf_reset(&b);
	s.ws_timestamp = false;
	soap_server_time(&b, &s, "x");
	CHECK_MSG(strstr(b.data, "Timestamp") == NULL && strstr(b.data, "<GetServerTime xmlns=\"http://training.gov.au/"
	    "services/13/\"></GetServerTime>") != NULL, "%s", b.data);
	buf_free(&b);

	url = soap_url(&s, SVC_ORGANISATION);
	CHECK_MSG(strcmp(url, "https://ws.example/Deewr.Tga.Webservices/OrganisationServiceV13.svc/Organisation") == 0, "%s",
	    url);
	free(url);
	s.version = 1;
	url = soap_url(&s, SVC_TRAINING);
	CHECK_MSG(strcmp(url, "https://ws.example/Deewr.Tga.Webservices/TrainingComponentService.svc/Training") == 0, "%s",
	    url);
	free(url);
	h = soap_action_header(&s, SVC_TRAINING, "GetDetails");
	CHECK_MSG(strcmp(h, "SOAPAction: \"http://training.gov.au/services/13/ITrainingComponentService/GetDetails\"") == 0,
	    "%s", h);
	free(h);

	{
		/* Cut short (an error body is bounded to 64 KiB): the fault code was read, that is enough. */
		static const char cut[] = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>"
		    "<s:Fault><faultcode>a:X</faultcode><faultstring>A";

		CHECK_MSG(!soap_should_retry(500, "text/xml", cut, sizeof cut - 1, NULL), "a fault is an answer");
	}
	CHECK_MSG(soap_should_retry(500, "text/html", "<html>500 - Internal server error.</html>", 41, NULL), "IIS page");
	CHECK_MSG(soap_should_retry(503, "text/xml", "<s:Envelope><faultcode>", 23, NULL), "503 is transient");
	{
		/* The service's own failure is retried; a fault about the request is not (issue 12). */
		static const struct {
			const char *code;
			bool retry;
		} faults[] = {
			{ "<faultcode xmlns:a=\"" NS_DISPATCHER "\">a:InternalServiceFault</faultcode>", true },
			{ "<faultcode>s:Server</faultcode>", true },
			{ "<faultcode xmlns:a=\"" NS_DISPATCHER "\">a:DeserializationFailed</faultcode>", false },
			{ "<faultcode xmlns:a=\"http://schemas.microsoft.com/ws/2005/05/addressing/none\">"
			    "a:ActionNotSupported</faultcode>", false },
			{ "<faultcode xmlns:a=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0"
			    ".xsd\">a:InvalidSecurity</faultcode>", false },
			{ "<faultcode>s:Client</faultcode>", false },
		};
		size_t i;

		for (i = 0; i < sizeof faults / sizeof faults[0]; i++) {
			char *doc;

			xasprintf(&doc, "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault>"
			    "%s<faultstring xml:lang=\"en-US\">text</faultstring></s:Fault></s:Body></s:Envelope>",
			    faults[i].code);
			CHECK_MSG(soap_should_retry(500, "text/xml", doc, strlen(doc), NULL) == faults[i].retry, "%s",
			    faults[i].code);
			free(doc);
		}
	}
}

static int
parse_mem(const struct xml_handler *hd, void *ctx, const char *doc, struct xml_fault *fault, char *err,
    size_t errlen)
{
	struct xml_parser *p = xml_parser_new(hd, ctx);
	int rc = xml_parse_mem(p, doc, strlen(doc));

	if (fault != NULL)
		*fault = *xml_fault(p);
	snprintf(err, errlen, "%s", rc == -1 ? xml_error(p) : "");
	xml_parser_free(p);
	return rc;
}

static void
test_search(void)
{
	static const char page[] = ENV_HEAD "<SearchByModifiedDateResponse " NS "><SearchByModifiedDateResult " I ">"
	    "<Count>1234</Count><PageNumber>1</PageNumber><PageSize>3</PageSize><Results>"
	    "<TrainingComponentSummary i:type=\"TrainingComponentSummary3\"><Code>BSB40920</Code>"
	    "<ComponentType>Qualification</ComponentType>" DTO("CreatedDate", "2011-01-01T00:00:00Z", "660")
	    "<IsCurrent>true</IsCurrent><Title>Certificate IV in Food &amp; Beverage</Title>"
	    DTO("UpdatedDate", "2026-01-05T11:00:00.1200000", "660")
	    "<UsageReccomendation>Current</UsageReccomendation><IsLegacyData>false</IsLegacyData>"
	    "<CurrencyStatus i:nil=\"true\"/></TrainingComponentSummary>"
	    "<TrainingComponentSummary><ComponentType>Unit</ComponentType><Title>No code</Title>"
	    DTO("UpdatedDate", "2026-01-05T00:00:00Z", "600") "</TrainingComponentSummary>"
	    "<TrainingComponentSummary><Code> BSBOPS404 </Code><IsCurrent>false</IsCurrent>"
	    "<UsageRecommendation>Superseded</UsageRecommendation></TrainingComponentSummary>"
	    "</Results></SearchByModifiedDateResult></SearchByModifiedDateResponse>" ENV_TAIL;
	static const char tombs[] = ENV_HEAD "<SearchDeletedByDeletedDateResponse " NS ">"
	    "<SearchDeletedByDeletedDateResult " I "><DeletedOrganisation><Operation>PhysicalDelete</Operation>"
	    "<OrganisationCode>12345</OrganisationCode>" DTO("UpdatedDate", "2026-01-05T00:00:00Z", "660")
	    "</DeletedOrganisation><DeletedOrganisation><Operation>LogicalDelete</Operation>"
	    "<OrganisationCode i:nil=\"true\"/></DeletedOrganisation></SearchDeletedByDeletedDateResult>"
	    "</SearchDeletedByDeletedDateResponse>" ENV_TAIL;
	static const char stime[] = ENV_HEAD "<GetServerTimeResponse " NS "><GetServerTimeResult>"
	    "2026-01-05T11:00:00.5+11:00</GetServerTimeResult></GetServerTimeResponse>" ENV_TAIL;
	struct src_page pg;
	struct src_tombs tb;
	struct ps_ctx c;
	char err[512], t[TICKS_LEN];
	int64_t now = 0;

	memset(&pg, 0, sizeof pg);
	ps_init(&c, PS_MODIFIED, SVC_TRAINING, 3);
	c.page = &pg;
	CHECK_MSG(parse_mem(&ps_handler, &c, page, NULL, err, sizeof err) == 0, "%s", err);
	CHECK_MSG(ps_check(&c, err, sizeof err) == 0, "%s", err);
	CHECK_MSG(pg.count == 1234 && pg.n == 2 && pg.returned == 3, "count %lld n %zu returned %d", (long long)pg.count,
	    pg.n, pg.returned);
	CHECK_MSG(pg.n >= 1 && strcmp(pg.items[0].code, "BSB40920") == 0 && pg.items[0].is_current == 1 &&
	    strcmp(pg.items[0].usage, "Current") == 0, "first item");
	CHECK_MSG(pg.n >= 1 && strcmp(pg.items[0].updated, "2026-01-05T00:00:00.12Z") == 0, "local time at the offset: %s",
	    pg.items[0].updated);
	CHECK_MSG(pg.n >= 2 && strcmp(pg.items[1].code, "BSBOPS404") == 0 && pg.items[1].is_current == 0 &&
	    strcmp(pg.items[1].usage, "Superseded") == 0, "trimmed code, the other spelling");
	CHECK_MSG(pg.rejects.n == 1 && strstr(pg.rejects.msg[0], "TrainingComponentSummary #2 of the page has no Code "
	    "(Title 'No code', UpdatedDate 2026-01-05T00:00:00Z)") != NULL, "%s", pg.rejects.n ? pg.rejects.msg[0] : "");
	src_page_clear(&pg);

	ps_init(&c, PS_MODIFIED, SVC_TRAINING, 2);
	c.page = &pg;
	CHECK_MSG(parse_mem(&ps_handler, &c, page, NULL, err, sizeof err) == -1 && strstr(err, "more results than the page "
	    "size") != NULL, "page overflow: %s", err);
	src_page_clear(&pg);

	memset(&tb, 0, sizeof tb);
	ps_init(&c, PS_DELETED, SVC_ORGANISATION, 10);
	c.tombs = &tb;
	CHECK_MSG(parse_mem(&ps_handler, &c, tombs, NULL, err, sizeof err) == 0 && ps_check(&c, err, sizeof err) == 0,
	    "%s", err);
	CHECK_MSG(tb.n == 1 && tb.returned == 2 && strcmp(tb.items[0].code, "12345") == 0 &&
	    strcmp(tb.items[0].operation, "PhysicalDelete") == 0 && strcmp(tb.items[0].updated,
	    "2026-01-05T00:00:00Z") == 0 && tb.rejects.n == 1, "tombstones");
	src_tombs_clear(&tb);

	ps_init(&c, PS_TIME, SVC_TRAINING, 1);
	c.time_out = &now;
	CHECK_MSG(parse_mem(&ps_handler, &c, stime, NULL, err, sizeof err) == 0 && ps_check(&c, err, sizeof err) == 0,
	    "%s", err);
	CHECK_MSG(strcmp(ticks_format(now, t), "2026-01-05T00:00:00.5Z") == 0, "%s", t);

	/* The wrong result element is not an answer. */
	ps_init(&c, PS_MODIFIED, SVC_TRAINING, 3);
	memset(&pg, 0, sizeof pg);
	c.page = &pg;
	CHECK_MSG(parse_mem(&ps_handler, &c, stime, NULL, err, sizeof err) == 0 && ps_check(&c, err, sizeof err) == -1 &&
	    strstr(err, "no SearchByModifiedDateResult") != NULL, "%s", err);
	src_page_clear(&pg);
}

static int
read_entity(struct stage *sg, const struct stage_entity *e, struct rec *head, int *types, int max)
{
	struct rec r;
	char *cause = NULL;
	int n = 0;

	rec_init(&r);
	if (stage_seek(sg, e->head, &cause) == -1 || stage_next(sg, e->end, head, &cause) != 1)
		return -1;
	if (stage_seek(sg, e->children, &cause) == -1)
		return -1;
	while (stage_next(sg, e->head, &r, &cause) == 1 && n < max)
		types[n++] = r.type;
	rec_free(&r);
	free(cause);
	return n;
}

static void
test_details(void)
{
	static const char tc[] = ENV_HEAD "<GetDetailsResponse " NS "><GetDetailsResult " I " i:type=\"TrainingComponent4\">"
	    "<Classifications><Classification><EndDate i:nil=\"true\"/><StartDate>2011-01-01</StartDate>"
	    "<PurposeCode>1</PurposeCode><SchemeCode>01</SchemeCode><ValueCode>351311</ValueCode></Classification>"
	    "</Classifications><Code>BSB40920</Code><ComponentType>Qualification</ComponentType>"
	    DTO("CreatedDate", "2011-01-01T00:00:00Z", "660")
	    "<Contacts><Contact><Email>skip@me</Email></Contact></Contacts>"
	    "<MappingInformation><Mapping><Code>BSB40920</Code><IsEquivalent>true</IsEquivalent>"
	    "<MapsToCode>BSB40915</MapsToCode><MapsToTitle i:nil=\"true\"/><Notes>Supersedes</Notes><Title>T</Title>"
	    "</Mapping></MappingInformation><ParentCode>BSB</ParentCode>"
	    "<Releases><Release i:type=\"Release4\"><ApprovalProcess>Standard</ApprovalProcess>"
	    "<Components><ReleaseComponent><Code>NOT-A-GRID</Code></ReleaseComponent></Components>"
	    "<Currency>Current</Currency><Files><ReleaseFile><RelativePath>a\\b.pdf</RelativePath></ReleaseFile></Files>"
	    "<ReleaseDate>2020-01-01</ReleaseDate><ReleaseNumber>2</ReleaseNumber><UnitGrid>"
	    "<UnitGridEntry i:type=\"UnitGridEntry3\"><Code>BSBOPS404</Code><Title>Unit &lt;one&gt;</Title>"
	    "<IsEssential>true</IsEssential></UnitGridEntry><UnitGridEntry><Code>BSBOPS405</Code>"
	    "<Title i:nil=\"true\"/><IsEssential>false</IsEssential></UnitGridEntry></UnitGrid></Release></Releases>"
	    "<Title>Certificate IV</Title>" DTO("UpdatedDate", "2026-01-05T00:00:00.1Z", "660")
	    "<UsageRecommendations><UsageRecommendation><EndDate>2020-01-01</EndDate><StartDate>2011-01-01</StartDate>"
	    "<State>Superseded</State></UsageRecommendation><UsageRecommendation><StartDate>2020-01-01</StartDate>"
	    "<State>Current</State></UsageRecommendation></UsageRecommendations>"
	    "<IsLegacyData>false</IsLegacyData><CurrencyStatus>Current</CurrencyStatus>"
	    "</GetDetailsResult></GetDetailsResponse>" ENV_TAIL;
	static const char org_a[] = ENV_HEAD "<GetDetailsResponse " NS "><GetDetailsResult " I " i:type=\"Rto3\">"
	    DTO("CreatedDate", "2011-01-01T00:00:00Z", "660")
	    "<Locations><OrganisationLocation><EndDate i:nil=\"true\"/><StartDate>2012-01-01</StartDate><Address>"
	    "<CountryCode>1101</CountryCode><Line1>1 George St</Line1><Postcode>2000</Postcode><StateCode>01</StateCode>"
	    "<Suburb>Sydney</Suburb></Address></OrganisationLocation></Locations>"
	    "<ResponsibleLegalPersons><ResponsibleLegalPerson><EndDate>2015-01-01</EndDate><StartDate>2011-01-01"
	    "</StartDate><Abns xmlns:b=\"arr\"><b:string>111</b:string></Abns><Name>Old Pty Ltd</Name>"
	    "</ResponsibleLegalPerson><ResponsibleLegalPerson><StartDate>2015-01-01</StartDate><Abns xmlns:b=\"arr\">"
	    "<b:string>222</b:string><b:string>333</b:string></Abns><Acn>999</Acn><Name>New Pty Ltd</Name>"
	    "</ResponsibleLegalPerson></ResponsibleLegalPersons>"
	    DTO("UpdatedDate", "2026-01-05T00:00:00Z", "660") "<IsLegacyData>false</IsLegacyData>"
	    "<RegistrationStatus>Current</RegistrationStatus><Scopes>"
	    "<Scope2><StartDate>2012-01-01</StartDate><ExtentCode>01</ExtentCode><IsImplicit>false</IsImplicit>"
	    "<IsRefused>false</IsRefused><NrtCode>BSB40920</NrtCode><TrainingComponentType>Qualification"
	    "</TrainingComponentType><ScopeDecisionType>Granted</ScopeDecisionType></Scope2>"
	    "<Scope2><IsImplicit>true</IsImplicit><NrtCode>BSBOPS404</NrtCode><ScopeDecisionType>Granted"
	    "</ScopeDecisionType></Scope2>"
	    "<Scope2><IsImplicit>false</IsImplicit><TrainingComponentType>Unit</TrainingComponentType></Scope2>"
	    "</Scopes></GetDetailsResult></GetDetailsResponse>" ENV_TAIL;
	/* The same scope in another order: the same hash. */
	static const char org_b[] = ENV_HEAD "<GetDetailsResponse " NS "><GetDetailsResult " I " i:type=\"Rto3\">"
	    DTO("UpdatedDate", "2026-01-05T00:00:00Z", "660") "<Scopes>"
	    "<Scope2><IsImplicit>true</IsImplicit><NrtCode>BSBOPS404</NrtCode><ScopeDecisionType>Granted"
	    "</ScopeDecisionType></Scope2>"
	    "<Scope><StartDate>2012-01-01</StartDate><ExtentCode>01</ExtentCode><IsImplicit>false</IsImplicit>"
	    "<IsRefused>false</IsRefused><NrtCode>BSB40920</NrtCode><TrainingComponentType>Qualification"
	    "</TrainingComponentType><ScopeDecisionType>Granted</ScopeDecisionType></Scope>"
	    "</Scopes></GetDetailsResult></GetDetailsResponse>" ENV_TAIL;
	/* Not an RTO: the base Organisation members and IsLegacyData (the prefix of the i:type is dropped). */
	static const char org_other[] = ENV_HEAD "<GetDetailsResponse " NS "><GetDetailsResult " I
	    " i:type=\"b:Organisation2\" xmlns:b=\"http://training.gov.au/services/13/\">"
	    DTO("UpdatedDate", "2026-01-05T00:00:00Z", "660") "<IsLegacyData>false</IsLegacyData>"
	    "</GetDetailsResult></GetDetailsResponse>" ENV_TAIL;
	static const char nil[] = ENV_HEAD "<GetDetailsResponse " NS "><GetDetailsResult " I " i:nil=\"true\"/>"
	    "</GetDetailsResponse>" ENV_TAIL;
	struct stage *sg;
	struct pd_ctx pd;
	struct rec head;
	char err[512], *cause = NULL, hash_a[32] = "", hash_b[32] = "";
	int types[64], n;

	if ((sg = stage_new("/tmp", &cause)) == NULL) {
		CHECK_MSG(0, "stage: %s", cause);
		return;
	}
	rec_init(&head);

	pd_init(&pd, SVC_TRAINING, ~0u, sg, "BSB40920");
	stage_entity_begin(sg);
	CHECK_MSG(parse_mem(&pd_tc_handler, &pd, tc, NULL, err, sizeof err) == 0 && pd_check(&pd, err, sizeof err) == 0,
	    "%s", err);
	CHECK_MSG(stage_entity_end(sg, "BSB40920", 0, &pd.head, &cause) == 0, "end");
	pd_free(&pd);
	n = read_entity(sg, &sg->ents[0], &head, types, 64);
	CHECK_MSG(n == 7, "records %d", n);
	if (n == 7) {
		/* Classification, Mapping, grid, grid, Release (grid rows come inside it), usage, usage. */
		CHECK_MSG(types[0] == REC_TC_CLASS && types[1] == REC_TC_MAPPING && types[2] == REC_TC_GRID &&
		    types[3] == REC_TC_GRID && types[4] == REC_TC_RELEASE && types[5] == REC_TC_USAGE &&
		    types[6] == REC_TC_USAGE, "record order");
	}
	CHECK_MSG(head.type == REC_TC_HEAD && strcmp(rec_str(&head, TC_CODE), "BSB40920") == 0 &&
	    strcmp(rec_str(&head, TC_UPDATED), "2026-01-05T00:00:00.1Z") == 0 &&
	    strcmp(rec_str(&head, TC_USAGE_CURRENT), "Current") == 0 && strcmp(rec_str(&head, TC_PARENT_CODE), "BSB") == 0
	    && rec_str(&head, TC_PARENT_TITLE) == NULL && strcmp(rec_str(&head, TC_LEGACY), "0") == 0, "head");

	pd_init(&pd, SVC_TRAINING, ~0u, sg, "X");
	stage_entity_begin(sg);
	CHECK_MSG(parse_mem(&pd_tc_handler, &pd, nil, NULL, err, sizeof err) == 0 && pd.nil, "nil result");
	pd_free(&pd);
	stage_entity_abort(sg, NULL);

	pd_init(&pd, SVC_ORGANISATION, ~0u, sg, "0275");
	stage_entity_begin(sg);
	CHECK_MSG(parse_mem(&pd_org_handler, &pd, org_a, NULL, err, sizeof err) == 0, "%s", err);
	CHECK_MSG(pd.rejects == 1 && pd.scope_count == 2, "rejects %d rows %lld", pd.rejects, (long long)pd.scope_count);
	CHECK_MSG(strcmp(rec_str(&pd.head, ORG_LEGAL_NAME), "New Pty Ltd") == 0 && strcmp(rec_str(&pd.head, ORG_ABN),
	    "222") == 0 && strcmp(rec_str(&pd.head, ORG_ACN), "999") == 0, "the legal person in office");
	CHECK_MSG(rec_str(&pd.head, ORG_KIND) != NULL && strcmp(rec_str(&pd.head, ORG_KIND), "Rto3") == 0, "kind Rto3");
	snprintf(hash_a, sizeof hash_a, "%s", rec_str(&pd.head, ORG_SCOPE_HASH));
	CHECK_MSG(stage_entity_end(sg, "0275", -1, &pd.head, &cause) == 0, "end");
	pd_free(&pd);
	n = read_entity(sg, &sg->ents[1], &head, types, 64);
	CHECK_MSG(n == 4 && types[0] == REC_ORG_LOCATION && types[1] == REC_ORG_SCOPE && types[2] == REC_ORG_SCOPE &&
	    types[3] == REC_REJECT, "organisation records (%d)", n);

	pd_init(&pd, SVC_ORGANISATION, ~0u, sg, "0275");
	stage_entity_begin(sg);
	CHECK_MSG(parse_mem(&pd_org_handler, &pd, org_b, NULL, err, sizeof err) == 0, "%s", err);
	snprintf(hash_b, sizeof hash_b, "%s", rec_str(&pd.head, ORG_SCOPE_HASH));
	CHECK_MSG(strcmp(hash_a, hash_b) == 0, "order-independent scope hash %s %s", hash_a, hash_b);
	pd_free(&pd);
	stage_entity_abort(sg, NULL);

	pd_init(&pd, SVC_ORGANISATION, ~0u, sg, "9999");
	stage_entity_begin(sg);
	CHECK_MSG(parse_mem(&pd_org_handler, &pd, org_other, NULL, err, sizeof err) == 0, "%s", err);
	CHECK_MSG(rec_str(&pd.head, ORG_KIND) != NULL && strcmp(rec_str(&pd.head, ORG_KIND), "Organisation2") == 0 &&
	    rec_str(&pd.head, ORG_STATUS) == NULL && pd.scope_count == 0, "an organisation that is not an RTO");
	pd_free(&pd);
	stage_entity_abort(sg, NULL);

	rec_free(&head);
	stage_free(sg);
	free(cause);
}

static void
test_faults(void)
{
	static const char creds[] = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault>"
	    "<faultcode xmlns:a=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\">"
	    "a:InvalidSecurity</faultcode><faultstring xml:lang=\"en-US\">An error occurred when verifying security for "
	    "the message.</faultstring></s:Fault></s:Body></s:Envelope>";
	static const char client[] = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>"
	    "<s:Fault><faultcode>s:Client</faultcode><faultstring>Code is required.</faultstring><detail>"
	    "<ValidationFault " NS "><Errors><ValidationError><Code>CodeRequired</Code><Message>Code is required."
	    "</Message></ValidationError><ValidationError><Code>Second</Code><Message>Also.</Message>"
	    "</ValidationError></Errors></ValidationFault></detail></s:Fault></s:Body></s:Envelope>";
	struct pd_ctx pd;
	struct xml_fault f;
	struct stage *sg;
	char err[512], *cause = NULL;

	if ((sg = stage_new("/tmp", &cause)) == NULL) {
		CHECK_MSG(0, "stage: %s", cause);
		return;
	}
	pd_init(&pd, SVC_TRAINING, ~0u, sg, "X");
	CHECK_MSG(parse_mem(&pd_tc_handler, &pd, creds, &f, err, sizeof err) == 0 && f.present, "%s", err);
	CHECK_MSG(soap_fault_class(&f) == FAULT_CREDENTIALS && strcmp(f.code, "a:InvalidSecurity") == 0 &&
	    strcmp(f.string, "An error occurred when verifying security for the message.") == 0, "%s / %s", f.code,
	    f.string);
	pd_free(&pd);
	pd_init(&pd, SVC_TRAINING, ~0u, sg, "X");
	CHECK_MSG(parse_mem(&pd_tc_handler, &pd, client, &f, err, sizeof err) == 0 && f.present, "%s", err);
	CHECK_MSG(soap_fault_class(&f) == FAULT_CLIENT && strcmp(f.detail, "CodeRequired: Code is required.; Second: Also.")
	    == 0, "%s", f.detail);
	pd_free(&pd);
	stage_free(sg);
}

/* Hostile or broken documents fail cleanly with a message, never crash or grow without bound. */
static void
test_hostile(void)
{
	struct {
		const char *what, *expect;
		char *doc;
	} cases[8];
	struct ps_ctx c;
	struct src_page pg;
	struct buf b;
	char err[512];
	int i, n = 0;

	cases[n].what = "a DTD";
	cases[n].expect = "DTD";
	cases[n++].doc = strdup("<!DOCTYPE x [<!ENTITY a \"aaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><x>&b;</x>");
	cases[n].what = "an undefined entity";
	cases[n].expect = "not well-formed";
	cases[n++].doc = strdup(ENV_HEAD "<x>&undefined;</x>" ENV_TAIL);
	cases[n].what = "a cut-off document";
	cases[n].expect = "not well-formed";
	cases[n++].doc = strdup(ENV_HEAD "<SearchByModifiedDateResponse><SearchByModifiedDateResult><Count>1");
	cases[n].what = "garbage";
	cases[n].expect = "not well-formed";
	cases[n++].doc = strdup("<ValidationError><<&&>> </s:Envelope");
	cases[n].what = "an empty body";
	cases[n].expect = "";
	cases[n++].doc = strdup("");
	buf_init(&b);
	buf_adds(&b, ENV_HEAD "<SearchByModifiedDateResponse " NS "><SearchByModifiedDateResult><Results>");
	for (i = 0; i < 100; i++)
		buf_adds(&b, "<a>");
	cases[n].what = "deep nesting";
	cases[n].expect = "nested more than";
	cases[n++].doc = buf_release(&b);
	buf_init(&b);
	buf_adds(&b, ENV_HEAD "<SearchByModifiedDateResponse " NS "><SearchByModifiedDateResult><Count>");
	for (i = 0; i < 70000; i++)
		buf_addc(&b, '1');
	buf_adds(&b, "</Count></SearchByModifiedDateResult></SearchByModifiedDateResponse>" ENV_TAIL);
	cases[n].what = "a huge text";
	cases[n].expect = "more than 65536 bytes";
	cases[n++].doc = buf_release(&b);
	cases[n].what = "a bad DateTimeOffset";
	cases[n].expect = "is not a DateTimeOffset";
	cases[n++].doc = strdup(ENV_HEAD "<SearchByModifiedDateResponse " NS "><SearchByModifiedDateResult><Results>"
	    "<TrainingComponentSummary>" DTO("UpdatedDate", "yesterday", "600") "</TrainingComponentSummary></Results>"
	    "</SearchByModifiedDateResult></SearchByModifiedDateResponse>" ENV_TAIL);
	for (i = 0; i < n; i++) {
		memset(&pg, 0, sizeof pg);
		ps_init(&c, PS_MODIFIED, SVC_TRAINING, 10);
		c.page = &pg;
		CHECK_MSG(parse_mem(&ps_handler, &c, cases[i].doc, NULL, err, sizeof err) == -1 &&
		    strstr(err, cases[i].expect) != NULL, "%s: '%s'", cases[i].what, err);
		src_page_clear(&pg);
		free(cases[i].doc);
	}
}

int
main(void)
{
	xmlInitParser();
	test_ticks();
	test_envelopes();
	test_search();
	test_details();
	test_faults();
	test_hostile();
	xmlCleanupParser();
	CHECK_DONE();
}
