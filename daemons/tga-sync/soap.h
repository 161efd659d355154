/*
 * The TGA SOAP 1.1 "basicHttp" protocol (../shared/reference/tga-web-services.md, the WSDL/XSD in
 * ../shared/samples/tga/): endpoints, SOAPAction, the WS-Security UsernameToken header, request bodies with their
 * members in xs:sequence order (WCF silently ignores an element out of order), DateTimeOffset, and what a SOAP
 * fault means for the caller.
 */
#ifndef TGA_SOAP_H
#define TGA_SOAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tga.h"

struct buf;
struct xml_fault;

/* "TrainingComponentService" / "OrganisationService". */
const char *soap_service_name(enum tga_service);
/* {base}/TrainingComponentServiceV13.svc/Training (new string). */
char *soap_url(const struct tga_settings *, enum tga_service);
/* "SOAPAction: \"http://training.gov.au/services/13/ITrainingComponentService/GetDetails\"" (new string). */
char *soap_action_header(const struct tga_settings *, enum tga_service, const char *op);

/* Request bodies.  password is only ever written into the body (which is never logged). */
void soap_server_time(struct buf *, const struct tga_settings *, const char *password);
void soap_search_modified(struct buf *, const struct tga_settings *, const char *password, enum tga_service,
    int64_t from, int64_t to, int page, int page_size);
void soap_search_deleted(struct buf *, const struct tga_settings *, const char *password, int64_t from, int64_t to,
    int page, int page_size);
void soap_get_details(struct buf *, const struct tga_settings *, const char *password, enum tga_service,
    const char *code);

void xml_escape(struct buf *, const char *);

/* The SOAP fault in an (error) body, if it holds one: true and *out filled. */
bool soap_parse_fault(const char *body, size_t len, struct xml_fault *out);
/* http_req_opts.should_retry: a 500 that carries a SOAP fault about the request is an answer, not a transient
 * failure; one of the service itself (FAULT_SERVER) is retried like any 5xx. */
bool soap_should_retry(long status, const char *content_type, const char *body, size_t len, void *arg);

enum soap_fault_class {
	FAULT_CREDENTIALS,	/* InvalidSecurity / FailedAuthentication: the account was refused */
	FAULT_CLIENT,		/* the request was refused (ValidationFault, contract mismatch): retrying cannot help */
	FAULT_SERVER,		/* the service failed (s:Server, InternalServiceFault): may pass */
};
enum soap_fault_class soap_fault_class(const struct xml_fault *);

#endif
