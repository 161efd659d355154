/*
 * HTTP requests on the event loop, with the project's rules built in:
 *  - every request has connect, low-speed and total timeouts, so none can hang;
 *  - connection errors, timeouts, 5xx and 429 are retried with exponential backoff and jitter, honouring
 *    Retry-After, a configurable number of times (before any body byte reached a streaming consumer);
 *  - redirects are an error unless configured (follow_redirects), and then followed only within the origin of the
 *    request (scheme, host, port), each one logged: a redirect to another origin, a downgrade to http or a file://
 *    URL is refused, so a credential in a header or body (UsernameToken, Basic, Bearer, a client secret) reaches no
 *    other host;
 *  - a 2xx body of an unexpected Content-Type (an HTML login or error page) is an error, never an empty result;
 *  - a client limits requests in flight and the interval between request starts.
 *
 * A request buffers its body (bounded), spools it (small bodies in memory, large ones in an unlinked temp file, so a
 * step can fetch now and parse later in one short transaction without holding memory), or streams it to on_data, in
 * every case up to the request's max_body.  Error bodies (non-2xx) are always buffered, bounded to 64 KiB (the rest
 * is not read), and handed to on_done for the caller to classify (e.g. a SOAP fault).
 */
#ifndef RTOPACKS_HTTP_H
#define RTOPACKS_HTTP_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "evcurl.h"

struct config;
struct http_client;
struct http_request;
struct http_group;

struct http_settings {
	const char *name;		/* upstream name for messages, e.g. "TGA" */
	long connect_timeout_ms;
	long low_speed_limit;		/* bytes/s */
	long low_speed_time_ms;
	long total_timeout_ms;
	int retries;
	long backoff_ms;
	long backoff_max_ms;
	int max_in_flight;
	long min_interval_ms;
	bool follow_redirects;
	bool http2;
	bool pause_on_429;		/* a 429 pauses the whole client (QuickBooks: wait 60 s), not just the request */
	long default_429_wait_ms;	/* the pause when a 429 carries no Retry-After */
	char ca_file[512];
	char user_agent[128];
};

/* Where spooled bodies go (default /var/tmp; private under systemd's PrivateTmp=). */
void http_set_spool_dir(const char *dir);

/* Fill settings from a daemon section (falling back to [http]). */
void http_settings_from_config(struct http_settings *, const struct config *, const char *section, const char *name);

struct http_result {
	long status;			/* 0: no HTTP response */
	const char *error;		/* NULL: a 2xx response that passed the checks */
	const char *url;
	const char *content_type;
	const char *body;		/* buffered body, or the (bounded) error body; NUL-terminated */
	size_t body_len;
	int spool_fd;			/* spooled 2xx body: a temp file at offset 0, owned by on_done; else -1 */
	const char *captured_header;	/* value of opts.capture_header, if present */
	long retry_after;		/* seconds, -1 if absent */
	int attempts;
	bool cancelled;			/* cancelled through its group: ignore the result */
	bool consumer_aborted;		/* on_data returned -1 */
	double elapsed;			/* seconds, all attempts */
};

typedef void (*http_done_fn)(struct http_request *, const struct http_result *, void *arg);
/* Streaming: a chunk of a 2xx body.  Return 0 to continue, -1 to abort the transfer. */
typedef int (*http_data_fn)(const char *data, size_t len, void *arg);
/* For a retryable status: may the request be retried given this (error) body?  E.g. not a SOAP fault. */
typedef bool (*http_retry_fn)(long status, const char *content_type, const char *body, size_t len, void *arg);

struct http_req_opts {
	const char *method;		/* default GET, or POST when body is set */
	const char *url;
	const char *const *headers;	/* NULL-terminated "Name: value" list */
	const char *body;
	size_t body_len;
	const char *accept_types;	/* comma-separated Content-Types accepted on 2xx; NULL: anything but HTML */
	/* The most this request accepts (decoded bytes, so a gzip bomb is bounded too), buffered, spooled or streamed:
	 * size it to what the real API sends.  Enforced while receiving (the transfer is aborted).  Default 8 MiB
	 * (spooled: 4 GiB). */
	size_t max_body;
	bool spool;			/* keep a large 2xx body in a temp file instead of memory (see spool_fd) */
	http_data_fn on_data;		/* streaming mode when set */
	http_done_fn on_done;
	http_retry_fn should_retry;
	void *arg;
	const char *capture_header;	/* e.g. "intuit_tid" */
	const char *what;		/* operation name for messages, e.g. "OrganisationService.GetDetails" */
	int retries;			/* 0: the client's setting; -1: no retry; N: up to N retries */
	struct http_group *group;	/* optional: cancel together */
};

struct http_client *http_client_new(struct evcurl *, struct ev_loop *, const struct http_settings *);
void http_client_free(struct http_client *);
void http_client_settings(struct http_client *, const struct http_settings *);
/* Hold back new request starts for this long (e.g. after a throttling answer). */
void http_client_pause(struct http_client *, double seconds);
/* Counters for benchmarks and status. */
struct http_stats {
	unsigned long requests, retries, failures, bytes_in;
};
void http_client_stats(const struct http_client *, struct http_stats *);

/* Queue a request.  on_done runs exactly once (later, never from inside this call). */
struct http_request *http_request(struct http_client *, const struct http_req_opts *);

/* Groups: a step's requests, cancelled together when the step is aborted (on_done runs with cancelled set). */
struct http_group *http_group_new(void);
void http_group_cancel(struct http_group *);
/* Free a group; requests still in it are dropped without their on_done (the owner broke its contract). */
void http_group_free(struct http_group *);
int http_group_active(const struct http_group *);

/* URL-encode s (for query strings and form bodies); returns a new string. */
char *http_urlencode(const char *s);

#endif
