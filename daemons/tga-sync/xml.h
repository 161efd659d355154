/*
 * Streaming XML for SOAP responses: libxml2's SAX2 push parser, so memory does not grow with the size of a response
 * (an RTO can carry 30,000 scope items).  A response handler sees elements by local name (namespaces and xsi:type
 * are ignored, as the reference advises for WCF's derived types: Rto3, Scope2, Release4, ...; a handler that must
 * tell an RTO from another organisation asks xml_xsi_type()), with their parent,
 * the i:nil flag and, at the end, their text.  The framework itself:
 *   - bounds everything external: depth (64, skipped levels included), text per element (64 KiB; 1 MiB in a row
 *     inside a skipped element), a tag or comment libxml2 holds whole (1 MiB), no DTD (SOAP 1.1 forbids it), no
 *     network;
 *   - escapes control characters in the fault's texts and in its own error messages (they reach logs and rows);
 *   - turns a DateTimeOffset element (<X><a:DateTime/><a:OffsetMinutes/></X>) into canonical text for the handler;
 *   - captures a SOAP Fault (faultcode, faultstring, detail/ValidationFault errors) wherever the handler is.
 */
#ifndef TGA_XML_H
#define TGA_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every element name a handler looks at; anything else is XN_OTHER. */
#define XML_NAMES(X)                                                                                                \
	X(Envelope) X(Body) X(Fault) X(faultcode) X(faultstring) X(detail) X(ValidationFault) X(Errors)          \
	X(ValidationError) X(Code) X(Message) X(DateTime) X(OffsetMinutes)                                         \
	X(GetServerTimeResponse) X(GetServerTimeResult) X(SearchByModifiedDateResponse)                           \
	X(SearchByModifiedDateResult) X(Count) X(PageNumber) X(PageSize) X(Results) X(TrainingComponentSummary)  \
	X(ComponentType) X(CreatedDate) X(IsConfidential) X(IsCurrent) X(Title) X(UpdatedDate)                     \
	X(UsageReccomendation) X(UsageRecommendation) X(IsLegacyData) X(CurrencyStatus)                            \
	X(OrganisationSearchResultItem) X(LegalPersonName) X(RegistrationStatus)                                   \
	X(SearchDeletedByDeletedDateResponse) X(SearchDeletedByDeletedDateResult) X(DeletedTrainingComponent)     \
	X(NationalCode) X(Operation) X(DeletedOrganisation) X(OrganisationCode) X(GetDetailsResponse)              \
	X(GetDetailsResult) X(Classifications) X(Classification) X(PurposeCode) X(SchemeCode) X(ValueCode)        \
	X(StartDate) X(EndDate) X(CurrencyPeriods) X(NrtCurrencyPeriod) X(Authority) X(EndComment)                 \
	X(EndReasonCode) X(MappingInformation) X(Mapping) X(IsEquivalent) X(MapsToCode) X(MapsToTitle) X(Notes)  \
	X(ParentCode) X(ParentTitle) X(IscOrganisationCode) X(Releases) X(Release) X(ApprovalProcess) X(Currency) \
	X(ReleaseDate) X(ReleaseNumber) X(UnitGrid) X(UnitGridEntry) X(IsEssential) X(UsageRecommendations)       \
	X(State) X(Locations) X(OrganisationLocation) X(Address) X(CountryCode) X(Line1) X(Line2) X(Postcode)     \
	X(StateCode) X(StateOverseas) X(Suburb) X(ResponsibleLegalPersons) X(ResponsibleLegalPerson) X(Abns)      \
	X(string) X(Acn) X(Name) X(TradingNames) X(TradingName) X(Urls) X(Url) X(Link) X(RegistrationPeriods)    \
	X(RegistrationPeriod) X(EndReasonComments) X(Exerciser) X(LegalAuthority) X(Scopes) X(Scope) X(Scope2)    \
	X(ExtentCode) X(IsImplicit) X(IsRefused) X(NrtCode) X(TrainingComponentType) X(ScopeDecisionType)

enum xml_id {
	XN_OTHER = 0,
#define XML_ENUM(n) XN_##n,
	XML_NAMES(XML_ENUM)
#undef XML_ENUM
	XN__COUNT
};

const char *xml_name(int id);

/* What the handler wants for an element it has just seen start. */
enum xml_mode {
	XM_TEXT,	/* descend; its text is handed to end() */
	XM_SKIP,	/* ignore the whole subtree (no callbacks for it, its end included) */
	XM_DTO,		/* a DateTimeOffset: end() gets its canonical UTC text (or the element is rejected) */
};

#define XML_MAX_DEPTH 64
#define XML_MAX_TEXT (64 * 1024)
#define XML_MAX_SKIPPED_TEXT (1024 * 1024)
#define XML_MAX_PENDING (1024 * 1024)
#define XML_MAX_ERRORS 5

struct xml_parser;

struct xml_handler {
	/* depth 0 is the document element (Envelope); parent is XN_OTHER for it. */
	enum xml_mode (*start)(struct xml_parser *, void *h, int id, int parent, int depth, bool nil);
	/* text is NUL-terminated (len excludes the NUL); nil: the element had i:nil="true" (text is then ""). */
	void (*end)(struct xml_parser *, void *h, int id, int parent, int grandparent, int depth, const char *text,
	    size_t len, bool nil);
};

struct xml_fault {
	bool present;
	char code[128];		/* faultcode, e.g. "a:InvalidSecurity", "s:Client" */
	char string[1024];	/* faultstring */
	char detail[1024];	/* ValidationFault errors "Code: Message; ..." */
};

/* Parse one whole response (from memory or from a file descriptor, streaming). */
struct xml_parser *xml_parser_new(const struct xml_handler *, void *h);
void xml_parser_free(struct xml_parser *);
int xml_parse_mem(struct xml_parser *, const char *data, size_t len);
int xml_parse_fd(struct xml_parser *, int fd);
/* After a -1: what was wrong (libxml2's message with the line, or a limit, or the handler's reason). */
const char *xml_error(const struct xml_parser *);
const struct xml_fault *xml_fault(const struct xml_parser *);
/* During a handler's start(): the element's xsi:type as a local name ("Rto3", "Organisation2"), "" if none. */
const char *xml_xsi_type(const struct xml_parser *);
/* The handler rejects the document: parsing stops and xml_parse_* returns -1 with this message. */
void xml_fail(struct xml_parser *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Helpers for handlers. */
bool xml_bool(const char *text, size_t len, bool *out);
int xml_depth_id(const struct xml_parser *, int depth);	/* the element id at a depth of the current path */

#endif
