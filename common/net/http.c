#include <sys/queue.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "timeutil.h"
#include "urlpolicy.h"
#include "xmalloc.h"

#define ERROR_BODY_MAX (64 * 1024)
/* Buffered bodies stay in memory: a request that expects more names its own limit (see http.h, max_body). */
#define DEFAULT_MAX_BODY (8u * 1024 * 1024)
#define RETRY_AFTER_CAP 3600		/* seconds: honour Retry-After, but not beyond an hour */
#define SPOOL_MEM_MAX (1024 * 1024)	/* spooled bodies up to this size stay in memory */
#define SPOOL_MAX ((size_t)4 << 30)
#define MAX_REDIRECTS 5		/* followed redirects per attempt (follow_redirects = yes) */

static char spool_dir[512] = "/var/tmp";

void
http_set_spool_dir(const char *dir)
{
	snprintf(spool_dir, sizeof spool_dir, "%s", dir);
}

enum req_state { REQ_PENDING, REQ_ACTIVE, REQ_WAITING, REQ_DONE };

struct http_request {
	struct http_client *hc;
	struct http_group *group;
	TAILQ_ENTRY(http_request) q;		/* client's pending queue */
	TAILQ_ENTRY(http_request) gq;		/* group membership */
	enum req_state state;

	char *method, *url, *body, *accept_types, *capture_header, *what;
	size_t body_len, max_body;
	bool spool;
	int spool_fd;
	size_t spooled;
	struct curl_slist *headers;
	http_data_fn on_data;
	http_done_fn on_done;
	http_retry_fn should_retry;
	void *arg;
	int retries;
	/* Where the request was configured to go: a redirect is followed only within it (credentials stay there). */
	struct url_origin origin;
	bool origin_ok;
	int redirects;			/* followed in this attempt */
	bool redirect_pending;		/* the next start follows a redirect: not a new attempt */
	char *refused;			/* the URL fails the URL policy: the request ends with this, unsent */

	CURL *easy;
	int attempt;
	double started;
	ev_timer retry_timer;

	/* Per attempt. */
	struct buf body_buf;
	size_t delivered;		/* bytes handed to on_data: after the first, no transparent retry */
	bool checked, rejected, consumer_aborted, too_big;
	bool error_cut;			/* an error body reached ERROR_BODY_MAX: the rest was not read */
	long status;
	char *content_type;
	char *captured;
	char errbuf[CURL_ERROR_SIZE];
	char reject_reason[256];
	char spool_error[256];
};

TAILQ_HEAD(req_list, http_request);

struct http_client {
	struct evcurl *ec;
	struct ev_loop *loop;
	struct http_settings s;
	struct req_list pending;
	int in_flight;
	double last_start;
	double paused_until;
	ev_timer pump_timer;
	struct http_stats stats;
};

struct http_group {
	struct req_list reqs;
	int active;
};

static void pump(struct http_client *);
static void finish(struct http_request *, const char *error);

void
http_settings_from_config(struct http_settings *s, const struct config *cfg, const char *section, const char *name)
{
	const char *v;

	memset(s, 0, sizeof *s);
	s->name = name;
	s->connect_timeout_ms = config_job_ms(cfg, section, "connect_timeout");
	s->low_speed_limit = config_job_int(cfg, section, "low_speed_limit");
	s->low_speed_time_ms = config_job_ms(cfg, section, "low_speed_time");
	s->total_timeout_ms = config_job_ms(cfg, section, "total_timeout");
	s->retries = (int)config_job_int(cfg, section, "retries");
	s->backoff_ms = config_job_ms(cfg, section, "backoff");
	s->backoff_max_ms = config_job_ms(cfg, section, "backoff_max");
	s->max_in_flight = (int)config_job_int(cfg, section, "max_in_flight");
	s->min_interval_ms = config_job_ms(cfg, section, "min_interval");
	s->follow_redirects = config_isset(cfg, section, "follow_redirects") ?
	    config_bool(cfg, section, "follow_redirects") : config_bool(cfg, "http", "follow_redirects");
	v = config_job_str(cfg, section, "http_version");
	s->http2 = v != NULL && strcmp(v, "2") == 0;
	s->default_429_wait_ms = 60000;
	if ((v = config_job_str(cfg, section, "ca_file")) != NULL)
		snprintf(s->ca_file, sizeof s->ca_file, "%s", v);
	snprintf(s->user_agent, sizeof s->user_agent, "rtopacks-sync/%s", RTOPACKS_VERSION);
}

struct http_client *
http_client_new(struct evcurl *ec, struct ev_loop *loop, const struct http_settings *s)
{
	struct http_client *hc;

	hc = xcalloc(1, sizeof *hc);
	hc->ec = ec;
	hc->loop = loop;
	hc->s = *s;
	if (hc->s.max_in_flight < 1)
		hc->s.max_in_flight = 1;
	if (hc->s.user_agent[0] == '\0')
		snprintf(hc->s.user_agent, sizeof hc->s.user_agent, "rtopacks-sync/%s", RTOPACKS_VERSION);
	TAILQ_INIT(&hc->pending);
	ev_timer_init(&hc->pump_timer, NULL, 0.0, 0.0);
	hc->last_start = -1e9;
	return hc;
}

void
http_client_settings(struct http_client *hc, const struct http_settings *s)
{
	hc->s = *s;
	if (hc->s.max_in_flight < 1)
		hc->s.max_in_flight = 1;
}

void
http_client_free(struct http_client *hc)
{
	struct http_request *r;

	if (hc == NULL)
		return;
	/* Owners cancel their requests first; anything left is freed without callbacks. */
	while ((r = TAILQ_FIRST(&hc->pending)) != NULL) {
		TAILQ_REMOVE(&hc->pending, r, q);
		r->state = REQ_DONE;
	}
	ev_timer_stop(hc->loop, &hc->pump_timer);
	free(hc);
}

void
http_client_pause(struct http_client *hc, double seconds)
{
	double until = mono_now() + seconds;

	if (until > hc->paused_until)
		hc->paused_until = until;
}

void
http_client_stats(const struct http_client *hc, struct http_stats *st)
{
	*st = hc->stats;
}

char *
http_urlencode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b;

	buf_init(&b);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
			buf_addc(&b, (char)c);
		else {
			buf_addc(&b, '%');
			buf_addc(&b, hex[c >> 4]);
			buf_addc(&b, hex[c & 15]);
		}
	}
	return buf_release(&b);
}

/* --- groups ------------------------------------------------------------------------------------------------ */

struct http_group *
http_group_new(void)
{
	struct http_group *g = xcalloc(1, sizeof *g);

	TAILQ_INIT(&g->reqs);
	return g;
}

int
http_group_active(const struct http_group *g)
{
	return g->active;
}

static void free_request(struct http_request *);

/* Take a request out of its group and stop whatever it is doing (queued, in flight, waiting to retry). */
static void
detach(struct http_request *r)
{
	struct http_client *hc = r->hc;

	if (r->group != NULL) {
		TAILQ_REMOVE(&r->group->reqs, r, gq);
		r->group->active--;
		r->group = NULL;
	}
	switch (r->state) {
	case REQ_PENDING:
		TAILQ_REMOVE(&hc->pending, r, q);
		break;
	case REQ_ACTIVE:
		evcurl_cancel(hc->ec, r->easy);
		hc->in_flight--;
		break;
	case REQ_WAITING:
		ev_timer_stop(hc->loop, &r->retry_timer);
		break;
	case REQ_DONE:
		break;
	}
	r->state = REQ_DONE;
}

void
http_group_cancel(struct http_group *g)
{
	struct http_request *r;
	struct http_result res;

	while ((r = TAILQ_FIRST(&g->reqs)) != NULL) {
		struct http_client *hc = r->hc;

		detach(r);
		memset(&res, 0, sizeof res);
		res.cancelled = true;
		res.error = "cancelled";
		res.url = r->url;
		res.body = "";
		res.retry_after = -1;
		res.spool_fd = -1;
		res.attempts = r->attempt;
		r->on_done(r, &res, r->arg);
		free_request(r);
		pump(hc);
	}
}

void
http_group_free(struct http_group *g)
{
	struct http_request *r;

	if (g == NULL)
		return;
	while ((r = TAILQ_FIRST(&g->reqs)) != NULL) {
		struct http_client *hc = r->hc;

		detach(r);
		log_warnx("%s: a request (%s) was dropped unfinished: its owner ended without waiting for it",
		    hc->s.name, r->what ? r->what : r->url);
		free_request(r);
		pump(hc);
	}
	free(g);
}

/* --- one attempt ------------------------------------------------------------------------------------------- */

static bool
type_matches(const char *accept, const char *ctype)
{
	size_t tlen;
	const char *p = accept;

	if (ctype == NULL)
		return false;
	tlen = strcspn(ctype, "; \t");
	while (*p != '\0') {
		size_t len;

		while (*p == ',' || *p == ' ')
			p++;
		len = strcspn(p, ", ");
		if (len > 0 && len == tlen && strncasecmp(p, ctype, len) == 0)
			return true;
		p += len;
	}
	return false;
}

static bool
looks_like_html(const char *data, size_t len)
{
	size_t i = 0;

	while (i < len && isspace((unsigned char)data[i]))
		i++;
	if (len - i >= 9 && strncasecmp(data + i, "<!doctype", 9) == 0)
		return len - i >= 14 && strncasecmp(data + i + 10, "html", 4) == 0;
	return len - i >= 5 && strncasecmp(data + i, "<html", 5) == 0;
}

/* Decide, at the first body byte of a 2xx answer, whether the body is what we asked for. */
static void
check_body_start(struct http_request *r, const char *data, size_t len)
{
	char *ct = NULL;

	r->checked = true;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct);
	free(r->content_type);
	r->content_type = ct != NULL ? xstrdup(ct) : NULL;
	if (r->status < 200 || r->status > 299)
		return;		/* error bodies are buffered for on_done */
	if (ct != NULL && strncasecmp(ct, "text/html", 9) == 0) {
		snprintf(r->reject_reason, sizeof r->reject_reason, "an HTML page (Content-Type %s) instead of data", ct);
		r->rejected = true;
	} else if (looks_like_html(data, len)) {
		snprintf(r->reject_reason, sizeof r->reject_reason, "an HTML page instead of data");
		r->rejected = true;
	} else if (r->accept_types != NULL && !type_matches(r->accept_types, ct)) {
		snprintf(r->reject_reason, sizeof r->reject_reason, "unexpected Content-Type '%s' (expected %s)",
		    ct ? ct : "(none)", r->accept_types);
		r->rejected = true;
	}
}

/* Spool: memory first, then (past SPOOL_MEM_MAX) an unlinked temp file that only this process can see. */
static int
spool_write(struct http_request *r, const char *data, size_t len)
{
	if (r->spooled + len > r->max_body) {
		r->too_big = true;
		return -1;
	}
	r->spooled += len;
	if (r->spool_fd == -1 && r->body_buf.len + len <= SPOOL_MEM_MAX) {
		buf_add(&r->body_buf, data, len);
		return 0;
	}
	if (r->spool_fd == -1) {
		if ((r->spool_fd = open(spool_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) == -1) {
			snprintf(r->spool_error, sizeof r->spool_error, "cannot create a spool file in %s: %s",
			    spool_dir, strerror(errno));
			return -1;
		}
		if (r->body_buf.len > 0 && write(r->spool_fd, r->body_buf.data, r->body_buf.len) !=
		    (ssize_t)r->body_buf.len) {
			snprintf(r->spool_error, sizeof r->spool_error, "cannot write the spool file in %s: %s",
			    spool_dir, strerror(errno));
			return -1;
		}
		buf_reset(&r->body_buf);
	}
	while (len > 0) {
		ssize_t n = write(r->spool_fd, data, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(r->spool_error, sizeof r->spool_error, "cannot write the spool file in %s: %s",
			    spool_dir, strerror(errno));
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
spool_discard(struct http_request *r)
{
	if (r->spool_fd != -1)
		close(r->spool_fd);
	r->spool_fd = -1;
	r->spooled = 0;
}

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_request *r = userp;
	size_t len = size * nmemb;

	if (!r->checked)
		check_body_start(r, data, len);
	r->hc->stats.bytes_in += len;
	if (r->status >= 200 && r->status <= 299 && !r->rejected && r->on_data != NULL) {
		if (r->delivered + len > r->max_body) {
			r->too_big = true;
			return 0;
		}
		r->delivered += len;
		if (r->on_data(data, len, r->arg) == -1) {
			r->consumer_aborted = true;
			return 0;
		}
		return len;
	}
	if (r->status >= 200 && r->status <= 299 && !r->rejected && r->spool)
		return spool_write(r, data, len) == 0 ? len : 0;
	/* Buffered: a 2xx body up to max_body; anything else (errors, rejected pages) only a bounded prefix. */
	if (r->status >= 200 && r->status <= 299 && !r->rejected) {
		if (r->body_buf.len + len > r->max_body) {
			r->too_big = true;
			return 0;
		}
		buf_add(&r->body_buf, data, len);
	} else {
		size_t room = ERROR_BODY_MAX - r->body_buf.len;

		buf_add(&r->body_buf, data, len < room ? len : room);
		if (len >= room) {
			/* Enough to classify it: stop here rather than read an endless error page until the timeout. */
			r->error_cut = true;
			return 0;
		}
	}
	return len;
}

static size_t
header_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_request *r = userp;
	size_t len = size * nmemb, nlen;

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new response (after 100 Continue, or a redirect): forget the previous one's headers. */
		free(r->captured);
		r->captured = NULL;
		return len;
	}
	if (r->capture_header == NULL)
		return len;
	nlen = strlen(r->capture_header);
	if (len > nlen + 1 && strncasecmp(data, r->capture_header, nlen) == 0 && data[nlen] == ':') {
		const char *v = data + nlen + 1;
		size_t vlen = len - nlen - 1;

		while (vlen > 0 && (*v == ' ' || *v == '\t'))
			v++, vlen--;
		while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
			vlen--;
		free(r->captured);
		r->captured = xstrndup(v, vlen < 512 ? vlen : 512);
	}
	return len;
}

static void attempt_done(CURL *easy, CURLcode rc, void *arg);

static void
start_attempt(struct http_request *r)
{
	struct http_client *hc = r->hc;
	const struct http_settings *s = &hc->s;
	CURL *e;

	if (r->refused != NULL) {
		finish(r, r->refused);
		return;
	}
	if (r->redirect_pending)
		r->redirect_pending = false;
	else {
		r->attempt++;
		r->redirects = 0;
	}
	r->state = REQ_ACTIVE;
	r->delivered = 0;
	r->checked = r->rejected = r->consumer_aborted = r->too_big = r->error_cut = false;
	r->status = 0;
	r->spool_error[0] = '\0';
	spool_discard(r);
	r->errbuf[0] = '\0';
	r->reject_reason[0] = '\0';
	buf_reset(&r->body_buf);
	free(r->content_type);
	r->content_type = NULL;
	free(r->captured);
	r->captured = NULL;

	if ((e = curl_easy_init()) == NULL)
		fatalx("curl_easy_init failed");
	r->easy = e;
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_USERAGENT, s->user_agent);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->total_timeout_ms);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, s->low_speed_limit);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (s->low_speed_time_ms + 999) / 1000);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, s->http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
	/*
	 * libcurl never follows a redirect itself: on a 307/308 it would send the body (a SOAP UsernameToken, a form
	 * with the client secret) to wherever Location points.  attempt_done follows one only within the origin.
	 */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L);
	if (s->ca_file[0] != '\0')
		curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	if (r->headers != NULL)
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	if (r->body != NULL) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	}
	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "POST") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	else if (strcmp(r->method, "POST") == 0 && r->body == NULL) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	hc->in_flight++;
	hc->stats.requests++;
	hc->last_start = mono_now();
	if (evcurl_add(hc->ec, e, attempt_done, r) == -1) {
		hc->in_flight--;
		finish(r, "cannot start the transfer (libcurl refused the handle)");
	}
}

static void
pump_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	pump(w->data);
}

/* Start what may start now; if the interval or a pause holds requests back, come back when it ends. */
static void
pump(struct http_client *hc)
{
	struct http_request *r;
	double now, wait;

	while ((r = TAILQ_FIRST(&hc->pending)) != NULL && hc->in_flight < hc->s.max_in_flight) {
		now = mono_now();
		wait = 0;
		if (hc->paused_until > now)
			wait = hc->paused_until - now;
		if (hc->s.min_interval_ms > 0 && hc->last_start + (double)hc->s.min_interval_ms / 1000.0 - now > wait)
			wait = hc->last_start + (double)hc->s.min_interval_ms / 1000.0 - now;
		if (wait > 0) {
			if (!ev_is_active(&hc->pump_timer)) {
				ev_timer_init(&hc->pump_timer, pump_cb, wait, 0.0);
				hc->pump_timer.data = hc;
				ev_timer_start(hc->loop, &hc->pump_timer);
			}
			return;
		}
		TAILQ_REMOVE(&hc->pending, r, q);
		start_attempt(r);
	}
}

static void
free_request(struct http_request *r)
{
	spool_discard(r);
	if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	buf_free(&r->body_buf);
	free(r->method);
	free(r->url);
	free(r->body);
	free(r->accept_types);
	free(r->capture_header);
	free(r->what);
	free(r->content_type);
	free(r->captured);
	free(r->refused);
	free(r);
}

static void
finish(struct http_request *r, const char *error)
{
	struct http_client *hc = r->hc;
	struct http_result res;
	char *msg = NULL;
	long ra = -1;

	r->state = REQ_DONE;
	if (r->group != NULL) {
		TAILQ_REMOVE(&r->group->reqs, r, gq);
		r->group->active--;
		r->group = NULL;
	}
	memset(&res, 0, sizeof res);
	res.status = r->status;
	res.url = r->url;
	res.content_type = r->content_type;
	res.body = r->body_buf.data != NULL ? r->body_buf.data : "";
	res.body_len = r->body_buf.len;
	res.captured_header = r->captured;
	res.spool_fd = -1;
	if (error == NULL && r->spool_fd != -1) {
		/* The caller owns the file from here. */
		if (lseek(r->spool_fd, 0, SEEK_SET) == -1)
			error = "cannot rewind the spool file";
		else {
			res.spool_fd = r->spool_fd;
			r->spool_fd = -1;
		}
	}
	if (r->easy != NULL) {
		curl_off_t v = -1;

		if (curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &v) == CURLE_OK && v > 0)
			ra = (long)v;
	}
	res.retry_after = ra;
	res.attempts = r->attempt;
	res.consumer_aborted = r->consumer_aborted;
	res.elapsed = mono_now() - r->started;
	if (error != NULL) {
		hc->stats.failures++;
		xasprintf(&msg, "%s%s%s: %s: %s%s", hc->s.name, r->what ? " " : "", r->what ? r->what : "", r->url,
		    error, r->attempt > 1 ? "" : "");
		if (r->attempt > 1) {
			char *m2;

			xasprintf(&m2, "%s (after %d attempts)", msg, r->attempt);
			free(msg);
			msg = m2;
		}
		res.error = msg;
	}
	r->on_done(r, &res, r->arg);
	free(msg);
	free_request(r);
	pump(hc);
}

static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct http_request *r = w->data;

	r->state = REQ_PENDING;
	/* A retry goes to the front: it has waited its turn already. */
	TAILQ_INSERT_HEAD(&r->hc->pending, r, q);
	pump(r->hc);
}

static double
backoff_seconds(const struct http_settings *s, int attempt)
{
	double base = (double)s->backoff_ms / 1000.0, cap = (double)s->backoff_max_ms / 1000.0, d;

	d = base * pow(2.0, attempt - 1);
	if (d > cap)
		d = cap;
	/* Equal jitter: half fixed, half random, so retries of many clients spread but never collapse to zero. */
	return d / 2 + d / 2 * ((double)random() / (double)RAND_MAX);
}

static void
schedule_retry(struct http_request *r, double delay, const char *why)
{
	struct http_client *hc = r->hc;

	hc->stats.retries++;
	log_info("%s %s: %s; retry %d of %d in %.1fs", hc->s.name, r->what ? r->what : r->url, why, r->attempt,
	    r->retries, delay);
	if (r->easy != NULL) {
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	r->state = REQ_WAITING;
	ev_timer_init(&r->retry_timer, retry_cb, delay, 0.0);
	r->retry_timer.data = r;
	ev_timer_start(hc->loop, &r->retry_timer);
}

static bool
transport_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static const char *
transport_reason(struct http_request *r, CURLcode rc, char *buf, size_t len)
{
	const char *detail = r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(rc);

	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(buf, len, "timed out: %s", detail);
		break;
	case CURLE_PARTIAL_FILE:
		snprintf(buf, len, "truncated response: %s", detail);
		break;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		snprintf(buf, len, "connection failed: %s", detail);
		break;
	case CURLE_GOT_NOTHING:
		snprintf(buf, len, "the server closed the connection without answering");
		break;
	default:
		snprintf(buf, len, "%s", detail);
		break;
	}
	return buf;
}

static bool
status_retryable(long status)
{
	return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

/*
 * follow_redirects = yes: may the request go on to loc?  Only within the origin it was made for (scheme, host and
 * port), with no userinfo, and a few times: so the credentials a request carries (a UsernameToken in a SOAP body,
 * Basic or Bearer, a client secret in a form) never reach another host, an http:// downgrade or a file:// URL.
 */
static bool
redirect_refused(struct http_request *r, const char *loc, char *reason, size_t len)
{
	struct url_origin to;
	char msg[512];

	if (loc == NULL) {
		snprintf(reason, len, "redirect (HTTP %ld) without a usable Location; not followed", r->status);
		return true;
	}
	if (r->redirects >= MAX_REDIRECTS) {
		snprintf(reason, len, "redirect (HTTP %ld) to %s: more than %d redirects; not followed", r->status, loc,
		    MAX_REDIRECTS);
		return true;
	}
	if (!r->origin_ok || url_origin(loc, &to, msg, sizeof msg) == -1 || !url_same_origin(&r->origin, &to)) {
		snprintf(reason, len, "redirect (HTTP %ld) to %s refused: it leaves the configured origin %s://%s:%ld, "
		    "and credentials go nowhere else (nothing was sent there); if the upstream really moved, change "
		    "its URL in the configuration", r->status, loc, r->origin.scheme, r->origin.host, r->origin.port);
		return true;
	}
	if (url_policy_request(loc, msg, sizeof msg) != NULL) {
		snprintf(reason, len, "redirect (HTTP %ld) refused: %s", r->status, msg);
		return true;
	}
	return false;
}

/* Go on to loc within the origin, as browsers and libcurl do: 303 (and 301/302 after a POST) become a GET. */
static void
follow_redirect(struct http_request *r, const char *loc)
{
	struct http_client *hc = r->hc;
	char *to = xstrdup(loc);

	log_info("%s %s: following a redirect (HTTP %ld) from %s to %s (same origin)", hc->s.name,
	    r->what ? r->what : "request", r->status, r->url, to);
	if (r->status == 303 || ((r->status == 301 || r->status == 302) && strcmp(r->method, "POST") == 0)) {
		free(r->method);
		r->method = xstrdup("GET");
		if (r->body != NULL)
			explicit_bzero(r->body, r->body_len);
		free(r->body);
		r->body = NULL;
		r->body_len = 0;
	}
	free(r->url);
	r->url = to;
	r->redirects++;
	r->redirect_pending = true;
	curl_easy_cleanup(r->easy);
	r->easy = NULL;
	/* Through the queue, so the client's pacing holds; at the front, as it has waited its turn. */
	r->state = REQ_PENDING;
	TAILQ_INSERT_HEAD(&hc->pending, r, q);
	pump(hc);
}

static void
attempt_done(CURL *easy, CURLcode rc, void *arg)
{
	struct http_request *r = arg;
	struct http_client *hc = r->hc;
	char reason[CURL_ERROR_SIZE + 256];
	bool can_retry = r->attempt <= r->retries && r->delivered == 0;
	char *ct = NULL, *loc = NULL;
	curl_off_t ra = -1;

	hc->in_flight--;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->content_type == NULL && curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
		r->content_type = xstrdup(ct);

	if (r->consumer_aborted) {
		finish(r, "aborted while reading the response");
		return;
	}
	if (r->spool_error[0] != '\0') {
		finish(r, r->spool_error);
		return;
	}
	if (r->too_big) {
		/* Counted on the decoded bytes, so a gzip or deflate bomb stops here too. */
		snprintf(reason, sizeof reason, "the response is larger than %zu bytes, the most this request accepts; "
		    "not read further (a broken or hostile upstream)", r->max_body);
		finish(r, reason);
		return;
	}
	if (rc == CURLE_WRITE_ERROR && r->error_cut)
		rc = CURLE_OK;		/* we stopped reading the error body ourselves */
	if (rc != CURLE_OK) {
		transport_reason(r, rc, reason, sizeof reason);
		if (transport_retryable(rc) && can_retry) {
			schedule_retry(r, backoff_seconds(&hc->s, r->attempt), reason);
			return;
		}
		finish(r, reason);
		return;
	}
	if (r->status >= 300 && r->status <= 399) {
		curl_easy_getinfo(easy, CURLINFO_REDIRECT_URL, &loc);
		if (!hc->s.follow_redirects) {
			snprintf(reason, sizeof reason, "unexpected redirect (HTTP %ld) to %s; not followed (set "
			    "follow_redirects = yes if the upstream really moved)", r->status,
			    loc ? loc : "(no Location)");
			finish(r, reason);
			return;
		}
		if (redirect_refused(r, loc, reason, sizeof reason)) {
			finish(r, reason);
			return;
		}
		follow_redirect(r, loc);
		return;
	}
	if (status_retryable(r->status)) {
		double delay;

		curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &ra);
		if (r->status == 429 && hc->s.pause_on_429)
			http_client_pause(hc, ra > 0 ? (double)ra : (double)hc->s.default_429_wait_ms / 1000.0);
		if (can_retry && (r->should_retry == NULL ||
		    r->should_retry(r->status, r->content_type, r->body_buf.data ? r->body_buf.data : "",
		    r->body_buf.len, r->arg))) {
			delay = backoff_seconds(&hc->s, r->attempt);
			if (ra > 0)
				delay = ra > RETRY_AFTER_CAP ? RETRY_AFTER_CAP : (double)ra;
			snprintf(reason, sizeof reason, "HTTP %ld%s", r->status,
			    ra > 0 ? " with Retry-After" : "");
			schedule_retry(r, delay, reason);
			return;
		}
	}
	if (r->status < 200 || r->status > 299) {
		if (looks_like_html(r->body_buf.data ? r->body_buf.data : "", r->body_buf.len) ||
		    (r->content_type != NULL && strncasecmp(r->content_type, "text/html", 9) == 0))
			snprintf(reason, sizeof reason, "HTTP %ld with an HTML error page", r->status);
		else
			snprintf(reason, sizeof reason, "HTTP %ld", r->status);
		finish(r, reason);
		return;
	}
	if (!r->checked)
		check_body_start(r, "", 0);
	if (r->rejected) {
		char snippet[161 + 1024];
		size_t i, n = r->body_buf.len < sizeof snippet - 1 ? r->body_buf.len : sizeof snippet - 1;

		/* Mask secrets in more than we show, then cut: a page that quotes a secret must not leak half of it. */
		for (i = 0; i < n; i++) {
			char c = r->body_buf.data[i];
			snippet[i] = (c == '\n' || c == '\r' || c == '\t') ? ' ' : (isprint((unsigned char)c) ? c : '?');
		}
		snippet[n] = '\0';
		redact(snippet);
		snippet[n < 160 ? n : 160] = '\0';
		snprintf(reason, sizeof reason, "HTTP %ld but %s: \"%s\"", r->status, r->reject_reason, snippet);
		finish(r, reason);
		return;
	}
	finish(r, NULL);
}

struct http_request *
http_request(struct http_client *hc, const struct http_req_opts *o)
{
	struct http_request *r;
	const char *const *h;

	r = xcalloc(1, sizeof *r);
	r->hc = hc;
	r->url = xstrdup(o->url);
	{
		char msg[512];

		r->origin_ok = url_origin(o->url, &r->origin, msg, sizeof msg) == 0;
		if (url_policy_request(o->url, msg, sizeof msg) != NULL)
			xasprintf(&r->refused, "not sent: %s", msg);
	}
	r->method = xstrdup(o->method ? o->method : (o->body ? "POST" : "GET"));
	if (o->body != NULL) {
		r->body = xmalloc(o->body_len + 1);
		memcpy(r->body, o->body, o->body_len);
		r->body[o->body_len] = '\0';
		r->body_len = o->body_len;
	}
	for (h = o->headers; h != NULL && *h != NULL; h++)
		r->headers = curl_slist_append(r->headers, *h);
	r->accept_types = o->accept_types ? xstrdup(o->accept_types) : NULL;
	r->capture_header = o->capture_header ? xstrdup(o->capture_header) : NULL;
	r->what = o->what ? xstrdup(o->what) : NULL;
	r->spool = o->spool;
	r->spool_fd = -1;
	r->max_body = o->max_body ? o->max_body : (o->spool ? SPOOL_MAX : DEFAULT_MAX_BODY);
	r->on_data = o->on_data;
	r->on_done = o->on_done;
	r->should_retry = o->should_retry;
	r->arg = o->arg;
	r->retries = o->retries == 0 ? hc->s.retries : (o->retries < 0 ? 0 : o->retries);
	r->started = mono_now();
	buf_init(&r->body_buf);
	r->state = REQ_PENDING;
	if (o->group != NULL) {
		r->group = o->group;
		TAILQ_INSERT_TAIL(&o->group->reqs, r, gq);
		o->group->active++;
	}
	TAILQ_INSERT_TAIL(&hc->pending, r, q);
	/* Never start (and so never finish) from inside the caller: defer to the loop. */
	if (!ev_is_active(&hc->pump_timer)) {
		ev_timer_init(&hc->pump_timer, pump_cb, 0.0, 0.0);
		hc->pump_timer.data = hc;
		ev_timer_start(hc->loop, &hc->pump_timer);
	}
	return r;
}
