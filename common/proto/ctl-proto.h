/*
 * The control protocol, shared by the daemons' control server (host/control.c), syncctl (ctl/client.c) and the
 * fuzzer: the version, the line limit, where a daemon's socket is, and the request framing as a pure function (no
 * sockets, no daemon).  One request is one line of JSON: {"v":1,"cmd":"<name>","args":{...}}.
 */
#ifndef RTOPACKS_CTL_PROTO_H
#define RTOPACKS_CTL_PROTO_H

#include <cJSON.h>
#include <stddef.h>

#define CTL_PROTO_VERSION 1
#define CTL_LINE_MAX (64 * 1024)

struct config;

/* The default socket path of a daemon under a config: <[control] socket_dir>/<daemon>.sock (sockpath.c). */
char *ctl_socket_path(const struct config *, const char *daemon);

struct ctl_request {
	cJSON *doc;		/* owns everything below */
	const char *cmd;
	const cJSON *args;	/* an object, or NULL */
};

/*
 * Parse one request line (without its newline).  Returns 0 and fills req (free with ctl_request_free), or -1
 * with *code (a stable word: bad_request, bad_version, line_too_long) and msg (a sentence) set.
 */
int ctl_parse_request(const char *line, size_t len, struct ctl_request *req, const char **code, char *msg,
    size_t msglen);
void ctl_request_free(struct ctl_request *);
/* Copy untrusted text for an error message: printable ASCII only, at most 64 characters. */
void ctl_sanitize(const char *s, char *out, size_t len);

#endif
