#include <sys/queue.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "mail.h"
#include "timeutil.h"
#include "xmalloc.h"

struct delivery {
	struct mailer *m;
	TAILQ_ENTRY(delivery) entry;
	CURL *easy;
	struct curl_slist *rcpt;
	char *message;
	size_t len, off;
	char errbuf[CURL_ERROR_SIZE];
	mail_done_fn done;
	void *arg;
};

struct mailer {
	struct evcurl *ec;
	char *url, *tls, *from, *from_addr, *to, *username, *password, *ca_file;
	long timeout_ms;
	TAILQ_HEAD(, delivery) active;
};

/* "Name <addr@x>" -> "addr@x"; a bare address stays as it is. */
static char *
bare_address(const char *s)
{
	const char *lt = strrchr(s, '<'), *gt;

	if (lt != NULL && (gt = strchr(lt, '>')) != NULL)
		return xstrndup(lt + 1, (size_t)(gt - lt - 1));
	while (isspace((unsigned char)*s))
		s++;
	return xstrdup(s);
}

struct mailer *
mailer_new(struct evcurl *ec, const struct config *cfg, char **cause)
{
	struct mailer *m;
	const char *v;

	m = xcalloc(1, sizeof *m);
	m->ec = ec;
	TAILQ_INIT(&m->active);
	if ((v = config_str(cfg, "smtp", "url")) != NULL)
		m->url = xstrdup(v);
	m->tls = xstrdup(config_str(cfg, "smtp", "tls"));
	m->from = xstrdup(config_str(cfg, "smtp", "from"));
	m->from_addr = bare_address(m->from);
	m->to = xstrdup(config_str(cfg, "smtp", "to"));
	if ((v = config_str(cfg, "smtp", "username")) != NULL)
		m->username = xstrdup(v);
	if ((v = config_str(cfg, "smtp", "ca_file")) != NULL)
		m->ca_file = xstrdup(v);
	m->timeout_ms = (long)config_ms(cfg, "smtp", "timeout");
	if (m->username != NULL &&
	    (m->password = secret_load(cfg, "smtp", "password_file", "smtp-password", cause)) == NULL) {
		mailer_free(m);
		return NULL;
	}
	if (m->url != NULL && strcmp(m->tls, "none") == 0 && m->password != NULL)
		log_warnx("[smtp] tls = none with a password: the password would cross the network in clear");
	return m;
}

void
mailer_cancel_all(struct mailer *m)
{
	struct delivery *d;

	while ((d = TAILQ_FIRST(&m->active)) != NULL) {
		TAILQ_REMOVE(&m->active, d, entry);
		evcurl_cancel(m->ec, d->easy);
		curl_easy_cleanup(d->easy);
		curl_slist_free_all(d->rcpt);
		free(d->message);
		free(d);
	}
}

void
mailer_free(struct mailer *m)
{
	if (m == NULL)
		return;
	mailer_cancel_all(m);
	free(m->url);
	free(m->tls);
	free(m->from);
	free(m->from_addr);
	free(m->to);
	free(m->username);
	secret_free(m->password);
	free(m->ca_file);
	free(m);
}

bool
mailer_enabled(const struct mailer *m)
{
	return m->url != NULL;
}

const char *
mailer_url(const struct mailer *m)
{
	return m->url != NULL ? m->url : "(none)";
}

static bool
is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80 || *s == '\r' || *s == '\n')
			return false;
	return true;
}

/* RFC 2047 "B" encoded-words, each under 76 characters, split only between UTF-8 characters. */
static void
add_encoded_subject(struct buf *b, const char *s)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t len = strlen(s), pos = 0;
	bool first = true;

	while (pos < len) {
		size_t n = len - pos > 45 ? 45 : len - pos, i;

		/* Do not cut a multi-byte character: back up to its lead byte. */
		while (pos + n < len && n > 0 && ((unsigned char)s[pos + n] & 0xC0) == 0x80)
			n--;
		buf_adds(b, first ? "" : "\r\n ");
		buf_adds(b, "=?UTF-8?B?");
		for (i = 0; i < n; i += 3) {
			unsigned v = (unsigned char)s[pos + i] << 16;

			if (i + 1 < n)
				v |= (unsigned char)s[pos + i + 1] << 8;
			if (i + 2 < n)
				v |= (unsigned char)s[pos + i + 2];
			buf_addc(b, b64[(v >> 18) & 63]);
			buf_addc(b, b64[(v >> 12) & 63]);
			buf_addc(b, i + 1 < n ? b64[(v >> 6) & 63] : '=');
			buf_addc(b, i + 2 < n ? b64[v & 63] : '=');
		}
		buf_adds(b, "?=");
		pos += n;
		first = false;
	}
}

/* FNV-1a: a stable short hash for Message-IDs (not security relevant). */
static unsigned long long
fnv1a(const char *s)
{
	unsigned long long h = 1469598103934665603ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

char *
mail_compose(const struct mailer *m, const char *key, const char *subject, const char *body)
{
	char date[64], host[256] = "localhost";
	struct buf b;
	time_t now = clock_now();
	struct tm tm;
	const char *p;

	gethostname(host, sizeof host - 1);
	host[sizeof host - 1] = '\0';
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	buf_init(&b);
	buf_printf(&b, "From: %s\r\n", m->from);
	buf_printf(&b, "To: %s\r\n", m->to);
	buf_printf(&b, "Date: %s\r\n", date);
	buf_printf(&b, "Message-ID: <%016llx.%s@%s>\r\n", fnv1a(key), "rtopacks-sync", host);
	buf_adds(&b, "Subject: ");
	if (is_ascii(subject))
		buf_adds(&b, subject);
	else
		add_encoded_subject(&b, subject);
	buf_adds(&b, "\r\n");
	buf_adds(&b, "MIME-Version: 1.0\r\n");
	buf_adds(&b, "Content-Type: text/plain; charset=UTF-8\r\n");
	buf_adds(&b, "Content-Transfer-Encoding: 8bit\r\n");
	buf_printf(&b, "X-RTOpacks-Mail-Key: %s\r\n", key);
	buf_adds(&b, "\r\n");
	for (p = body; *p != '\0'; p++) {
		if (*p == '\n' && (p == body || p[-1] != '\r'))
			buf_addc(&b, '\r');
		buf_addc(&b, *p);
	}
	if (b.len < 2 || strcmp(b.data + b.len - 2, "\r\n") != 0)
		buf_adds(&b, "\r\n");
	return buf_release(&b);
}

static size_t
read_cb(char *ptr, size_t size, size_t nmemb, void *userp)
{
	struct delivery *d = userp;
	size_t room = size * nmemb, n = d->len - d->off;

	if (n > room)
		n = room;
	memcpy(ptr, d->message + d->off, n);
	d->off += n;
	return n;
}

static void
delivery_done(CURL *easy, CURLcode rc, void *arg)
{
	struct delivery *d = arg;
	struct mailer *m = d->m;
	char msg[CURL_ERROR_SIZE + 256];
	long code = 0;

	TAILQ_REMOVE(&m->active, d, entry);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
	if (rc != CURLE_OK && code != 0)
		snprintf(msg, sizeof msg, "mail to %s via %s failed: %s (SMTP %ld)", m->to, m->url,
		    d->errbuf[0] ? d->errbuf : curl_easy_strerror(rc), code);
	else if (rc != CURLE_OK)
		snprintf(msg, sizeof msg, "mail to %s via %s failed: %s", m->to, m->url,
		    d->errbuf[0] ? d->errbuf : curl_easy_strerror(rc));
	curl_easy_cleanup(d->easy);
	curl_slist_free_all(d->rcpt);
	free(d->message);
	{
		mail_done_fn done = d->done;
		void *darg = d->arg;

		free(d);
		done(rc == CURLE_OK ? NULL : msg, darg);
	}
}

int
mail_send(struct mailer *m, const char *message, mail_done_fn done, void *arg)
{
	struct delivery *d;
	char *list, *tok, *save;
	CURL *e;

	if (m->url == NULL)
		return -1;
	d = xcalloc(1, sizeof *d);
	d->m = m;
	d->message = xstrdup(message);
	d->len = strlen(message);
	d->done = done;
	d->arg = arg;
	list = xstrdup(m->to);
	for (tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		char *addr = bare_address(tok);

		if (*addr != '\0')
			d->rcpt = curl_slist_append(d->rcpt, addr);
		free(addr);
	}
	free(list);
	if ((e = curl_easy_init()) == NULL)
		fatalx("curl_easy_init failed");
	d->easy = e;
	curl_easy_setopt(e, CURLOPT_URL, m->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->errbuf);
	curl_easy_setopt(e, CURLOPT_MAIL_FROM, m->from_addr);
	curl_easy_setopt(e, CURLOPT_MAIL_RCPT, d->rcpt);
	curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(e, CURLOPT_READDATA, d);
	curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)d->len);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, m->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, m->timeout_ms < 15000 ? m->timeout_ms : 15000L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 30L);
	if (strcmp(m->tls, "none") == 0)
		curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_NONE);
	else
		curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	if (m->ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, m->ca_file);
	if (m->username != NULL) {
		curl_easy_setopt(e, CURLOPT_USERNAME, m->username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, m->password);
	}
	TAILQ_INSERT_TAIL(&m->active, d, entry);
	if (evcurl_add(m->ec, e, delivery_done, d) == -1) {
		TAILQ_REMOVE(&m->active, d, entry);
		curl_easy_cleanup(e);
		curl_slist_free_all(d->rcpt);
		free(d->message);
		free(d);
		return -1;
	}
	return 0;
}
