/*
 * The control socket: a UNIX stream socket per daemon (default /run/rtopacks-sync/<daemon>.sock, mode 0660) that
 * speaks newline-delimited JSON.  Every message carries the protocol version "v".
 *
 *   request:  {"v":1,"cmd":"trigger","args":{"full":true,"watch":true}}
 *   reply:    {"v":1,"ok":true,"result":{...}}
 *   error:    {"v":1,"ok":false,"code":"already_running","error":"tga-sync is already running ...","run_id":"..."}
 *   event:    {"v":1,"event":"progress","data":{...}}          (to clients watching a run)
 *
 * Commands live in a table with one file per command (cmd-status.c, cmd-trigger.c, cmd-cancel.c, cmd-watch.c, plus
 * a daemon's own).  The peer is checked with SO_PEERCRED: root, the daemon's own user, or a member of
 * [control] operators_group.  A line over 64 KiB, bad JSON, a wrong version or an unknown command gets an error
 * reply and the connection is closed.  Output to a client is buffered and bounded: a slow or stuck client is
 * dropped, never waited for.
 */
#ifndef RTOPACKS_CONTROL_H
#define RTOPACKS_CONTROL_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctl-proto.h"		/* CTL_PROTO_VERSION, CTL_LINE_MAX */

struct daemon;
struct control;
struct ctl_client;

enum ctl_retval {
	CTL_DONE,	/* the command replied */
	CTL_ASYNC,	/* the command will reply later (ctl_client_find by id, then ctl_reply) */
	CTL_ERROR,	/* *cause holds the error; an error reply is sent and the connection stays open */
};

struct ctl_cmd {
	const char *name;
	const char *usage;	/* one line: the args it takes */
	enum ctl_retval (*exec)(struct ctl_client *, const cJSON *args, char **cause);
};

/* The common commands. */
extern const struct ctl_cmd ctl_cmd_status, ctl_cmd_trigger, ctl_cmd_cancel, ctl_cmd_watch;

/*
 * Create the socket: take over a stale socket file only after a probe connect fails (an instance that answers
 * means "already running").  cmds: the common commands (NULL-terminated; the daemon passes the table of the
 * ctl_cmd_* above, so that this file needs none of them), then the job's own.  NULL with *cause on failure.
 */
struct control *control_new(struct daemon *, const char *path, const struct ctl_cmd *const *cmds, char **cause);
void control_free(struct control *);
/* Send an event to every client watching. */
void control_broadcast(struct control *, const char *event, const cJSON *data);
int control_clients(const struct control *);

struct daemon *ctl_daemon(struct ctl_client *);
uint64_t ctl_client_id(const struct ctl_client *);
struct ctl_client *ctl_client_find(struct control *, uint64_t id);
uid_t ctl_peer_uid(const struct ctl_client *);
/* "uid 1000 (alice)" for run rows and logs. */
const char *ctl_peer_name(const struct ctl_client *);

/* Reply ok with result (ownership taken; NULL: an empty object). */
void ctl_reply(struct ctl_client *, cJSON *result);
/* Reply an error: code is a stable word (e.g. "already_running"), extra fields merged in (ownership taken). */
void ctl_reply_error(struct ctl_client *, const char *code, const char *error, cJSON *extra);
/* Watching clients get run events until the run ends. */
void ctl_set_watching(struct ctl_client *, bool);

#endif
