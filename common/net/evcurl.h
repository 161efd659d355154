/*
 * libcurl's multi_socket interface driven by a libev loop: one ev_io per socket libcurl asks about and one ev_timer
 * for libcurl's timeout.  Modelled on Tarantool's src/curl.c rather than curl's evhiperfifo.c example, whose
 * timer callback divides milliseconds by 1000 in integers and so turns every sub-second timeout into 0.
 *
 * Users (http.c, mail.c) add configured easy handles with a completion callback; evcurl never calls libcurl from
 * inside libcurl's own callbacks.
 */
#ifndef RTOPACKS_EVCURL_H
#define RTOPACKS_EVCURL_H

#include <curl/curl.h>
#include <ev.h>

struct evcurl;

/* Called once per transfer when libcurl finishes it (result is CURLE_OK or the error). */
typedef void (*evcurl_done_fn)(CURL *easy, CURLcode result, void *arg);

struct evcurl *evcurl_new(struct ev_loop *loop);
void evcurl_free(struct evcurl *);
/* Start a transfer.  The easy handle stays owned by the caller; done runs exactly once unless evcurl_cancel. */
int evcurl_add(struct evcurl *, CURL *easy, evcurl_done_fn done, void *arg);
/* Stop a transfer without calling its done callback. */
void evcurl_cancel(struct evcurl *, CURL *easy);
int evcurl_active(const struct evcurl *);
CURLM *evcurl_multi(struct evcurl *);

#endif
