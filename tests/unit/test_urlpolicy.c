/*
 * The URL policy (common/urlpolicy.c): the ways round "plain http only to loopback" that a prefix match let through
 * (issue 13, item 1), what must still pass, and origins for the redirect check.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "urlpolicy.h"

static bool
passes(const char *url, enum url_use use)
{
	char msg[512];
	const char *err = url_policy_check(url, use, msg, sizeof msg);

	if (err != NULL)
		fprintf(stderr, "  %s: %s\n", url, err);
	return err == NULL;
}

static bool
refused_with(const char *url, enum url_use use, const char *needle)
{
	char msg[512];
	const char *err = url_policy_check(url, use, msg, sizeof msg);

	if (err == NULL || strstr(err, needle) == NULL) {
		fprintf(stderr, "  %s: expected a refusal with \"%s\", got %s\n", url, needle, err ? err : "a pass");
		return false;
	}
	return true;
}

int
main(void)
{
	static const char *const good_http[] = {
		"https://ws.training.gov.au/Deewr.Tga.Webservices", "https://192.0.2.2:8443/x", "HTTPS://Example.COM",
		"http://127.0.0.1:8080/x", "http://127.255.1.2/", "http://localhost:1/", "http://LOCALHOST/",
		"http://[::1]:9000/x", "http://127.0.0.1", NULL,
	};
	static const char *const plain_elsewhere[] = {
		"http://192.0.2.2:8080/oauth2/v1/tokens/bearer", "http://127.evil.example/", "http://127.0.0.1.nip.io/",
		"http://localhost.evil.example/", "http://localhost.:1/", "http://[::2]/", "http://[::ffff:192.0.2.2]/",
		"http://10.0.0.1/", "http://example.com/", NULL,
	};
	const char *const *u;
	struct url_origin a, b;
	char msg[512];

	curl_global_init(CURL_GLOBAL_DEFAULT);

	for (u = good_http; *u != NULL; u++)
		CHECK(passes(*u, URL_HTTP));
	for (u = plain_elsewhere; *u != NULL; u++)
		CHECK(refused_with(*u, URL_HTTP, "must be https://"));

	/* Userinfo: the host is what follows the '@'.  The message names that host and never echoes the password. */
	CHECK(refused_with("http://127.0.0.1@192.0.2.2:8080/x", URL_HTTP, "user name or password"));
	CHECK(refused_with("http://127.0.0.1@192.0.2.2:8080/x", URL_HTTP, "go to 192.0.2.2"));
	CHECK(refused_with("https://user:pa55word@ws.example/x", URL_HTTP, "user name or password"));
	CHECK(url_policy_check("https://user:pa55word@ws.example/x", URL_HTTP, msg, sizeof msg) != NULL &&
	    strstr(msg, "pa55word") == NULL);
	CHECK(refused_with("http://localhost:x@192.0.2.2/", URL_HTTP, "user name or password"));
	CHECK(refused_with("smtp://mailer:pw@mail.example:587", URL_SMTP, "user name or password"));
	/* Whatever else is wrong, a URL with userinfo is never echoed. */
	CHECK(url_policy_check("ftp://user:pa55word@ws.example/x", URL_HTTP, msg, sizeof msg) != NULL &&
	    strstr(msg, "pa55word") == NULL && strstr(msg, "user name or password") != NULL);

	/* Other schemes, queries and fragments, junk. */
	CHECK(refused_with("ftp://127.0.0.1/", URL_HTTP, "expected an https:// URL"));
	CHECK(refused_with("file:///etc/passwd", URL_HTTP, "expected an https:// URL"));
	CHECK(refused_with("smtps://mail.example", URL_HTTP, "expected an https:// URL"));
	CHECK(refused_with("https://ws.example/x?a=1", URL_HTTP, "query"));
	CHECK(refused_with("http://127.0.0.1#@192.0.2.2/", URL_HTTP, "fragment"));
	CHECK(refused_with("ws.training.gov.au/x", URL_HTTP, "not a valid URL"));
	CHECK(refused_with("https://", URL_HTTP, "not a valid URL"));

	/* SMTP: both schemes pass here; plain text is for url_policy_plain_ok (with [smtp] tls = none). */
	CHECK(passes("smtp://mail.example:587", URL_SMTP));
	CHECK(passes("smtps://mail.example:465", URL_SMTP));
	CHECK(refused_with("https://mail.example", URL_SMTP, "smtp:// or smtps://"));
	CHECK(url_policy_plain_ok("smtp://127.0.0.1:25"));
	CHECK(url_policy_plain_ok("smtp://[::1]:25"));
	CHECK(!url_policy_plain_ok("smtp://127.0.0.1.example:25"));
	CHECK(!url_policy_plain_ok("smtp://mail.example:25"));

	/* Loopback hosts are literal. */
	CHECK(url_host_loopback("127.0.0.2"));
	CHECK(url_host_loopback("[::1]"));
	CHECK(!url_host_loopback("127.example"));
	CHECK(!url_host_loopback("localhost.example"));
	CHECK(!url_host_loopback("128.0.0.1"));

	/* Origins: scheme, host and port (explicit or default). */
	CHECK(url_origin("https://ws.example/a", &a, msg, sizeof msg) == 0);
	CHECK(url_origin("HTTPS://WS.example:443/b?c", &b, msg, sizeof msg) == 0);
	CHECK(url_same_origin(&a, &b));
	CHECK(a.port == 443);
	CHECK(url_origin("http://ws.example/a", &b, msg, sizeof msg) == 0);
	CHECK(!url_same_origin(&a, &b));
	CHECK(url_origin("https://ws.example:8443/a", &b, msg, sizeof msg) == 0);
	CHECK(!url_same_origin(&a, &b));
	CHECK(url_origin("http://127.0.0.1:5000/", &a, msg, sizeof msg) == 0);
	CHECK(url_origin("http://127.0.0.2:5000/", &b, msg, sizeof msg) == 0);
	CHECK(!url_same_origin(&a, &b));
	CHECK(url_origin("file:///etc/passwd", &b, msg, sizeof msg) == -1 || !url_same_origin(&a, &b));

	curl_global_cleanup();
	CHECK_DONE();
}
