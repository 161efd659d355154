#include <arpa/inet.h>
#include <netinet/in.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "urlpolicy.h"

/* A part of a parsed URL, or NULL if it is absent. */
static char *
part(CURLU *h, CURLUPart what, unsigned flags)
{
	char *v = NULL;

	if (curl_url_get(h, what, &v, flags) != CURLUE_OK)
		return NULL;
	return v;
}

static CURLU *
parse(const char *url, char *msg, size_t len)
{
	CURLU *h;
	CURLUcode rc;

	if ((h = curl_url()) == NULL) {
		snprintf(msg, len, "cannot parse the URL (out of memory)");
		return NULL;
	}
	/* No default scheme, no guessing: "ws.training.gov.au/x" is not a URL. */
	if ((rc = curl_url_set(h, CURLUPART_URL, url, 0)) != CURLUE_OK) {
		snprintf(msg, len, "not a valid URL (%s)", curl_url_strerror(rc));
		curl_url_cleanup(h);
		return NULL;
	}
	return h;
}

int
url_origin(const char *url, struct url_origin *o, char *msg, size_t len)
{
	char *scheme, *host, *port, *end;
	CURLU *h;
	int rc = -1;

	memset(o, 0, sizeof *o);
	if ((h = parse(url, msg, len)) == NULL)
		return -1;
	scheme = part(h, CURLUPART_SCHEME, 0);
	host = part(h, CURLUPART_HOST, 0);
	port = part(h, CURLUPART_PORT, CURLU_DEFAULT_PORT);
	if (scheme == NULL || host == NULL || *host == '\0')
		snprintf(msg, len, "the URL has no host");
	else if (strlen(scheme) >= sizeof o->scheme || strlen(host) >= sizeof o->host)
		snprintf(msg, len, "the URL's host name is too long");
	else {
		size_t i;

		for (i = 0; scheme[i] != '\0'; i++)
			o->scheme[i] = (char)(scheme[i] >= 'A' && scheme[i] <= 'Z' ? scheme[i] + 32 : scheme[i]);
		snprintf(o->host, sizeof o->host, "%s", host);
		o->port = port != NULL ? strtol(port, &end, 10) : 0;
		rc = 0;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(h);
	return rc;
}

bool
url_same_origin(const struct url_origin *a, const struct url_origin *b)
{
	return strcmp(a->scheme, b->scheme) == 0 && strcasecmp(a->host, b->host) == 0 && a->port == b->port;
}

bool
url_host_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	char inner[64];
	size_t n = strlen(host);

	if (strcasecmp(host, "localhost") == 0)
		return true;
	/* inet_pton takes only the dotted quad: "127.1", "0x7f.1" and "127.0.0.1.example" are refused here. */
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (n >= 3 && n - 2 < sizeof inner && host[0] == '[' && host[n - 1] == ']') {
		memcpy(inner, host + 1, n - 2);
		inner[n - 2] = '\0';
		return inet_pton(AF_INET6, inner, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	}
	return false;
}

static const char *
check(const char *url, enum url_use use, bool base, char *msg, size_t len)
{
	struct url_origin o;
	char *v;
	CURLU *h;
	bool userinfo, extra;

	if ((h = parse(url, msg, len)) == NULL)
		return msg;
	/* Userinfo first, and without echoing the URL: what stands before '@' may be a password. */
	userinfo = false;
	if ((v = part(h, CURLUPART_USER, 0)) != NULL)
		userinfo = true, curl_free(v);
	if ((v = part(h, CURLUPART_PASSWORD, 0)) != NULL)
		userinfo = true, curl_free(v);
	if ((v = part(h, CURLUPART_OPTIONS, 0)) != NULL)
		userinfo = true, curl_free(v);
	if (userinfo) {
		v = part(h, CURLUPART_HOST, 0);
		snprintf(msg, len, "the URL holds a user name or password before '@' (it would go to %s, not to what "
		    "stands before the '@'): write the URL without it; credentials come from their own keys and files",
		    v != NULL && *v != '\0' ? v : "(no host)");
		curl_free(v);
		curl_url_cleanup(h);
		return msg;
	}
	/* The scheme before the host: "file:///etc/passwd" is the wrong kind of URL, not one without a host. */
	if ((v = part(h, CURLUPART_SCHEME, 0)) != NULL) {
		bool ok = use == URL_SMTP ? strcasecmp(v, "smtp") == 0 || strcasecmp(v, "smtps") == 0 :
		    strcasecmp(v, "http") == 0 || strcasecmp(v, "https") == 0;

		curl_free(v);
		if (!ok) {
			curl_url_cleanup(h);
			if (use == URL_SMTP)
				snprintf(msg, len, "expected an smtp:// or smtps:// URL, got '%s'", url);
			else
				snprintf(msg, len, "expected an https:// URL, got '%s'", url);
			return msg;
		}
	}
	extra = false;
	if (base && (v = part(h, CURLUPART_QUERY, 0)) != NULL)
		extra = true, curl_free(v);
	if (base && (v = part(h, CURLUPART_FRAGMENT, 0)) != NULL)
		extra = true, curl_free(v);
	curl_url_cleanup(h);
	if (url_origin(url, &o, msg, len) == -1)
		return msg;
	if (extra) {
		snprintf(msg, len, "'%s' has a query (?) or a fragment (#): give the base URL only", url);
		return msg;
	}
	if (use == URL_SMTP || strcmp(o.scheme, "https") == 0)
		return NULL;
	if (!url_host_loopback(o.host)) {
		snprintf(msg, len, "'%s' must be https://: plain http only to a loopback address (127.0.0.0/8, ::1 or "
		    "localhost), as credentials and data would cross the network in clear", url);
		return msg;
	}
	return NULL;
}

const char *
url_policy_check(const char *url, enum url_use use, char *msg, size_t len)
{
	return check(url, use, true, msg, len);
}

const char *
url_policy_request(const char *url, char *msg, size_t len)
{
	return check(url, URL_HTTP, false, msg, len);
}

bool
url_policy_plain_ok(const char *url)
{
	struct url_origin o;
	char msg[256];

	return url_origin(url, &o, msg, sizeof msg) == 0 && url_host_loopback(o.host);
}
