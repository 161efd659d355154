/*
 * The one URL policy for every upstream URL (TGA SOAP and REST, CKAN, the QuickBooks API, Intuit's token and
 * authorize endpoints, the OAuth redirect URI, SMTP, and any key added later): a URL is parsed with libcurl's own URL
 * API, so that the host checked here is the host libcurl connects to, and
 *  - it carries no user name or password ("userinfo": http://127.0.0.1@192.0.2.2/ goes to 192.0.2.2), no query and
 *    no fragment (a base URL has neither, and a path appended to one must stay a path);
 *  - its scheme is https (smtps, or smtp with STARTTLS, for mail), except that plain http (or smtp without TLS) may
 *    go to a host that is literally a loopback address: 127.0.0.0/8, ::1 or "localhost".  "127.example.com" and
 *    "localhost.example.com" are names that DNS resolves anywhere: they are not loopback.
 *
 * http.c uses the origin (scheme, host, port) to keep every request, and so every credential, on the origin it was
 * configured for: a redirect elsewhere is refused, not followed.
 */
#ifndef RTOPACKS_URLPOLICY_H
#define RTOPACKS_URLPOLICY_H

#include <stdbool.h>
#include <stddef.h>

enum url_use {
	URL_HTTP,	/* an HTTP upstream: https://, or http:// to a loopback host */
	URL_SMTP,	/* a mail server: smtps:// or smtp:// (TLS: see url_policy_plain_ok) */
};

struct url_origin {
	char scheme[16];	/* lower case */
	char host[256];		/* as libcurl parsed it (IPv6 in brackets) */
	long port;		/* explicit or the scheme's default */
};

/* Parse url into its origin.  Returns 0, or -1 with msg (url is not echoed: it may hold a password). */
int url_origin(const char *url, struct url_origin *, char *msg, size_t len);
bool url_same_origin(const struct url_origin *, const struct url_origin *);
/* A host that is literally a loopback address: 127.0.0.0/8 (dotted quad), [::1] or localhost. */
bool url_host_loopback(const char *host);

/*
 * Check url against the policy for its use.  Returns NULL if it passes, else a message (in msg) that says what is
 * wrong and what to write instead.  For URL_SMTP, a plain smtp:// URL passes here; whether it is sent without TLS
 * depends on [smtp] tls, so the caller asks url_policy_plain_ok() for that case.
 */
const char *url_policy_check(const char *url, enum url_use, char *msg, size_t len);
/*
 * The same policy for a request URL, which is a checked base URL with a path and maybe a query appended: http.c
 * checks every request with it, so a URL that some day is built from upstream data cannot leave the rules either.
 */
const char *url_policy_request(const char *url, char *msg, size_t len);
/* May this (already checked) URL be used without TLS?  Only to a loopback host. */
bool url_policy_plain_ok(const char *url);

#endif
