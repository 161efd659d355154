/*
 * http-probe: one request through common/http.c on a libev loop, its outcome printed as JSON.  The data-driven
 * HTTP tests (tests/http/) run it against a faulty test server to check timeouts, retries, Retry-After, redirects
 * and HTML pages the way the daemons see them.
 *
 *   http-probe URL [--accept TYPES] [--retries N] [--connect-timeout MS] [--low-speed-time MS]
 *              [--total-timeout MS] [--backoff MS] [--follow] [--spool] [--stream] [--secret S]
 *              [--post BODY] [--header "Name: value"]... [--ca-file FILE]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "evcurl.h"
#include "http.h"
#include "log.h"
#include "timeutil.h"

static size_t streamed;

static int
on_data(const char *data, size_t len, void *arg)
{
	streamed += len;
	return 0;
}

static void
on_done(struct http_request *req, const struct http_result *r, void *arg)
{
	cJSON *o = cJSON_CreateObject();
	char *s;
	size_t spooled = 0;

	cJSON_AddNumberToObject(o, "status", (double)r->status);
	if (r->error != NULL)
		cJSON_AddStringToObject(o, "error", r->error);
	else
		cJSON_AddNullToObject(o, "error");
	cJSON_AddNumberToObject(o, "attempts", r->attempts);
	cJSON_AddNumberToObject(o, "elapsed", r->elapsed);
	cJSON_AddNumberToObject(o, "retry_after", (double)r->retry_after);
	cJSON_AddNumberToObject(o, "body_len", (double)(r->body_len + streamed));
	if (r->spool_fd != -1) {
		char buf[65536];
		ssize_t n;

		while ((n = read(r->spool_fd, buf, sizeof buf)) > 0)
			spooled += (size_t)n;
		close(r->spool_fd);
		cJSON_AddNumberToObject(o, "spooled", (double)spooled);
	}
	if (r->content_type != NULL)
		cJSON_AddStringToObject(o, "content_type", r->content_type);
	s = cJSON_PrintUnformatted(o);
	printf("%s\n", s);
	free(s);
	cJSON_Delete(o);
	ev_break(EV_DEFAULT, EVBREAK_ALL);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "accept", required_argument, NULL, 'a' },
		{ "retries", required_argument, NULL, 'r' },
		{ "connect-timeout", required_argument, NULL, 'c' },
		{ "low-speed-time", required_argument, NULL, 'l' },
		{ "total-timeout", required_argument, NULL, 't' },
		{ "backoff", required_argument, NULL, 'b' },
		{ "follow", no_argument, NULL, 'f' },
		{ "spool", no_argument, NULL, 's' },
		{ "stream", no_argument, NULL, 'S' },
		{ "secret", required_argument, NULL, 'x' },
		{ "post", required_argument, NULL, 'p' },
		{ "header", required_argument, NULL, 'H' },
		{ "ca-file", required_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	struct http_settings s;
	struct http_req_opts o;
	struct http_client *hc;
	struct evcurl *ec;
	const char *headers[9];
	int ch, nheaders = 0;

	log_init("http-probe", 0);
	memset(&s, 0, sizeof s);
	memset(&o, 0, sizeof o);
	s.name = "probe";
	s.connect_timeout_ms = 2000;
	s.low_speed_limit = 1;
	s.low_speed_time_ms = 2000;
	s.total_timeout_ms = 30000;
	s.retries = 2;
	s.backoff_ms = 100;
	s.backoff_max_ms = 5000;
	s.max_in_flight = 2;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			o.accept_types = optarg;
			break;
		case 'r':
			s.retries = atoi(optarg);
			break;
		case 'c':
			s.connect_timeout_ms = atol(optarg);
			break;
		case 'l':
			s.low_speed_time_ms = atol(optarg);
			break;
		case 't':
			s.total_timeout_ms = atol(optarg);
			break;
		case 'b':
			s.backoff_ms = atol(optarg);
			break;
		case 'f':
			s.follow_redirects = true;
			break;
		case 's':
			o.spool = true;
			break;
		case 'S':
			o.on_data = on_data;
			break;
		case 'x':
			secret_register(optarg);	/* as a daemon registers what it loads */
			break;
		case 'p':
			o.body = optarg;
			o.body_len = strlen(optarg);
			break;
		case 'H':
			if (nheaders < 8)
				headers[nheaders++] = optarg;
			break;
		case 'C':
			snprintf(s.ca_file, sizeof s.ca_file, "%s", optarg);
			break;
		default:
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: http-probe URL [options]\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	http_set_spool_dir("/tmp");
	ec = evcurl_new(EV_DEFAULT);
	hc = http_client_new(ec, EV_DEFAULT, &s);
	headers[nheaders] = NULL;
	o.headers = headers;
	o.url = argv[optind];
	o.on_done = on_done;
	o.what = o.body != NULL ? "POST" : "GET";
	o.retries = s.retries == 0 ? -1 : s.retries;
	http_request(hc, &o);
	ev_run(EV_DEFAULT, 0);
	http_client_free(hc);
	evcurl_free(ec);
	curl_global_cleanup();
	return 0;
}
