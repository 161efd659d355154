#include <stdlib.h>

#include "evcurl.h"
#include "log.h"
#include "xmalloc.h"

struct evcurl {
	struct ev_loop *loop;
	CURLM *multi;
	ev_timer timer;
	int active;		/* transfers added and not yet finished */
};

struct evcurl_sock {
	ev_io io;
	struct evcurl *ec;
	curl_socket_t fd;
	int events;
};

struct evcurl_xfer {
	evcurl_done_fn done;
	void *arg;
};

static void
check_multi_info(struct evcurl *ec)
{
	struct evcurl_xfer *x;
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(ec->multi, &left)) != NULL) {
		CURL *easy;
		CURLcode result;
		char *priv = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		easy = msg->easy_handle;
		result = msg->data.result;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		x = (struct evcurl_xfer *)priv;
		curl_multi_remove_handle(ec->multi, easy);
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		ec->active--;
		/* The callback may add new transfers or free this handle: nothing of msg is used after it. */
		if (x != NULL) {
			evcurl_done_fn done = x->done;
			void *arg = x->arg;

			free(x);
			done(easy, result, arg);
		}
	}
}

static void
socket_action(struct evcurl *ec, curl_socket_t fd, int action)
{
	CURLMcode rc;
	int running;

	/* Errors here cannot be handed to a request; log them (Tarantool: "we can't handle errors properly"). */
	do
		rc = curl_multi_socket_action(ec->multi, fd, action, &running);
	while (rc == CURLM_CALL_MULTI_PERFORM);
	if (rc != CURLM_OK)
		log_warnx("curl_multi_socket_action: %s", curl_multi_strerror(rc));
	check_multi_info(ec);
}

static void
io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct evcurl_sock *s = (struct evcurl_sock *)w;
	int action = 0;

	if (revents & EV_READ)
		action |= CURL_CSELECT_IN;
	if (revents & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	if (revents & EV_ERROR)
		action |= CURL_CSELECT_ERR;
	socket_action(s->ec, s->fd, action);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct evcurl *ec = w->data;

	socket_action(ec, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: watch, rewatch or forget one socket. */
static int
sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct evcurl *ec = userp;
	struct evcurl_sock *s = socketp;
	int events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			ev_io_stop(ec->loop, &s->io);
			free(s);
			/* No curl_multi_assign here: curl_multi_cleanup runs this callback (tarantool#10686). */
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EV_READ;
	if (what & CURL_POLL_OUT)
		events |= EV_WRITE;
	if (s == NULL) {
		s = xcalloc(1, sizeof *s);
		s->ec = ec;
		s->fd = fd;
		s->events = -1;
		ev_init(&s->io, io_cb);
		curl_multi_assign(ec->multi, fd, s);
	}
	if (s->events == events)
		return 0;
	ev_io_stop(ec->loop, &s->io);
	ev_io_set(&s->io, fd, events);
	s->events = events;
	if (events != 0)
		ev_io_start(ec->loop, &s->io);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: (re)arm our one timer.  Never call libcurl from here, even for timeout_ms == 0. */
static int
multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct evcurl *ec = userp;

	ev_timer_stop(ec->loop, &ec->timer);
	if (timeout_ms >= 0) {
		ev_timer_set(&ec->timer, (double)timeout_ms / 1000.0, 0.0);
		ev_timer_start(ec->loop, &ec->timer);
	}
	return 0;
}

struct evcurl *
evcurl_new(struct ev_loop *loop)
{
	struct evcurl *ec;

	ec = xcalloc(1, sizeof *ec);
	ec->loop = loop;
	if ((ec->multi = curl_multi_init()) == NULL)
		fatalx("curl_multi_init failed");
	ev_timer_init(&ec->timer, timer_cb, 0.0, 0.0);
	ec->timer.data = ec;
	curl_multi_setopt(ec->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(ec->multi, CURLMOPT_SOCKETDATA, ec);
	curl_multi_setopt(ec->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
	curl_multi_setopt(ec->multi, CURLMOPT_TIMERDATA, ec);
	return ec;
}

void
evcurl_free(struct evcurl *ec)
{
	if (ec == NULL)
		return;
	ev_timer_stop(ec->loop, &ec->timer);
	curl_multi_cleanup(ec->multi);
	free(ec);
}

int
evcurl_add(struct evcurl *ec, CURL *easy, evcurl_done_fn done, void *arg)
{
	struct evcurl_xfer *x;
	CURLMcode rc;

	x = xcalloc(1, sizeof *x);
	x->done = done;
	x->arg = arg;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)x);
	if ((rc = curl_multi_add_handle(ec->multi, easy)) != CURLM_OK) {
		log_warnx("curl_multi_add_handle: %s", curl_multi_strerror(rc));
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		free(x);
		return -1;
	}
	ec->active++;
	return 0;
}

void
evcurl_cancel(struct evcurl *ec, CURL *easy)
{
	char *priv = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
	if (priv == NULL)
		return;
	curl_multi_remove_handle(ec->multi, easy);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
	free(priv);
	ec->active--;
}

int
evcurl_active(const struct evcurl *ec)
{
	return ec->active;
}

CURLM *
evcurl_multi(struct evcurl *ec)
{
	return ec->multi;
}
