#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "buf.h"
#include "config.h"
#include "control.h"
#include "ctl-proto.h"
#include "daemon.h"
#include "log.h"
#include "xmalloc.h"

#define CTL_OUT_MAX (1024 * 1024)	/* a client that lets this much pile up is dropped */
#define CTL_IDLE_TIMEOUT 60.0		/* no request for this long (not watching): closed */
#define CTL_PARTIAL_TIMEOUT 10.0	/* an unfinished line for this long: closed (one byte a second...) */
#define CTL_MAX_GROUPS 256

struct ctl_client {
	struct control *ctl;
	uint64_t id;
	int fd;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	char name[96];
	ev_io rio, wio;
	ev_timer timer;
	struct buf in, out;
	bool watching;
	bool closing;		/* flush what is queued, then close */
	bool dropped;		/* it stopped reading: close without another word */
	bool authorized;
	double last_activity, partial_since;
	TAILQ_ENTRY(ctl_client) entry;
};

struct control {
	struct daemon *d;
	const struct ctl_cmd *const *cmds;	/* the common commands (the daemon's table: control_new) */
	char *path;
	int fd;
	ev_io accept_io;
	ev_timer accept_pause;
	TAILQ_HEAD(, ctl_client) clients;
	int nclients;
	uint64_t next_id;
	gid_t ops_gid;
	bool have_ops_gid;
	int max_clients, max_per_uid;
};

static void client_close(struct ctl_client *);
static void client_write_cb(struct ev_loop *, ev_io *, int);

/* --- output ------------------------------------------------------------------------------------------------ */

static void
client_send_json(struct ctl_client *c, cJSON *msg)
{
	char *line;

	if (c->dropped)
		return;
	cJSON_AddNumberToObject(msg, "v", CTL_PROTO_VERSION);
	if ((line = cJSON_PrintUnformatted(msg)) == NULL)
		return;
	if (c->out.len + strlen(line) + 1 > CTL_OUT_MAX) {
		/* It does not read what we send: never wait for it.  Its timer closes it (callers still hold c). */
		if (!c->closing)
			log_warnx("control: %s is not reading its replies; disconnecting it", c->name);
		free(line);
		c->out.len = 0;
		c->closing = c->dropped = true;
		c->watching = false;
		ev_io_stop(c->ctl->d->loop, &c->rio);
		ev_io_stop(c->ctl->d->loop, &c->wio);
		shutdown(c->fd, SHUT_RDWR);
		return;
	}
	buf_adds(&c->out, line);
	buf_addc(&c->out, '\n');
	free(line);
	if (!ev_is_active(&c->wio))
		ev_io_start(c->ctl->d->loop, &c->wio);
}

void
ctl_reply(struct ctl_client *c, cJSON *result)
{
	cJSON *msg = cJSON_CreateObject();

	cJSON_AddBoolToObject(msg, "ok", 1);
	cJSON_AddItemToObject(msg, "result", result ? result : cJSON_CreateObject());
	client_send_json(c, msg);
	cJSON_Delete(msg);
}

void
ctl_reply_error(struct ctl_client *c, const char *code, const char *error, cJSON *extra)
{
	cJSON *msg = cJSON_CreateObject(), *it, *next;

	cJSON_AddBoolToObject(msg, "ok", 0);
	cJSON_AddStringToObject(msg, "code", code);
	cJSON_AddStringToObject(msg, "error", error);
	if (extra != NULL) {
		for (it = extra->child; it != NULL; it = next) {
			next = it->next;
			cJSON_AddItemToObject(msg, it->string, cJSON_DetachItemViaPointer(extra, it));
		}
		cJSON_Delete(extra);
	}
	client_send_json(c, msg);
	cJSON_Delete(msg);
}

/* Errors that end the conversation: reply, then close once the reply is out. */
static void
reply_and_close(struct ctl_client *c, const char *code, const char *error)
{
	ctl_reply_error(c, code, error, NULL);
	c->closing = true;
	ev_io_stop(c->ctl->d->loop, &c->rio);
	if (c->out.len == 0)
		client_close(c);
}

/* --- accessors ----------------------------------------------------------------------------------------------- */

struct daemon *
ctl_daemon(struct ctl_client *c)
{
	return c->ctl->d;
}

uint64_t
ctl_client_id(const struct ctl_client *c)
{
	return c->id;
}

struct ctl_client *
ctl_client_find(struct control *ctl, uint64_t id)
{
	struct ctl_client *c;

	TAILQ_FOREACH(c, &ctl->clients, entry)
		if (c->id == id && !c->closing)
			return c;
	return NULL;
}

uid_t
ctl_peer_uid(const struct ctl_client *c)
{
	return c->uid;
}

const char *
ctl_peer_name(const struct ctl_client *c)
{
	return c->name;
}

void
ctl_set_watching(struct ctl_client *c, bool on)
{
	c->watching = on;
}

int
control_clients(const struct control *ctl)
{
	return ctl->nclients;
}

void
control_broadcast(struct control *ctl, const char *event, const cJSON *data)
{
	struct ctl_client *c, *next;
	bool end = strcmp(event, "run_end") == 0;

	for (c = TAILQ_FIRST(&ctl->clients); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (!c->watching || c->closing)
			continue;
		cJSON *msg = cJSON_CreateObject();

		cJSON_AddStringToObject(msg, "event", event);
		cJSON_AddItemToObject(msg, "data", cJSON_Duplicate(data, 1));
		/* After run_end a watch is over; the client may send more requests. */
		if (end)
			c->watching = false;
		client_send_json(c, msg);
		cJSON_Delete(msg);
	}
}

/* --- commands ------------------------------------------------------------------------------------------------ */

static const struct ctl_cmd *
find_cmd(struct control *ctl, const char *name)
{
	const struct ctl_cmd *const *p;

	for (p = ctl->cmds; *p != NULL; p++)
		if (strcmp((*p)->name, name) == 0)
			return *p;
	for (p = ctl->d->job->ctl_cmds; p != NULL && *p != NULL; p++)
		if (strcmp((*p)->name, name) == 0)
			return *p;
	return NULL;
}

static void
handle_line(struct ctl_client *c, const char *line, size_t len)
{
	struct ctl_request req;
	const struct ctl_cmd *cmd;
	const char *code;
	char *cause = NULL, safe[80], msg[256];
	enum ctl_retval rv;

	if (len == 0)
		return;
	if (ctl_parse_request(line, len, &req, &code, msg, sizeof msg) == -1) {
		reply_and_close(c, code, msg);
		return;
	}
	if ((cmd = find_cmd(c->ctl, req.cmd)) == NULL) {
		ctl_sanitize(req.cmd, safe, sizeof safe);
		snprintf(msg, sizeof msg, "unknown command '%s'", safe);
		ctl_request_free(&req);
		reply_and_close(c, "unknown_command", msg);
		return;
	}
	log_debug("control: %s: %s", c->name, cmd->name);
	rv = cmd->exec(c, req.args, &cause);
	if (rv == CTL_ERROR) {
		ctl_reply_error(c, "failed", cause ? cause : "command failed", NULL);
		free(cause);
	}
	ctl_request_free(&req);
}

/* --- input --------------------------------------------------------------------------------------------------- */

static void
client_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_client *c = w->data;
	char chunk[8192], *nl;
	ssize_t n;
	uint64_t id = c->id;
	struct control *ctl = c->ctl;

	n = read(c->fd, chunk, sizeof chunk);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		client_close(c);
		return;
	}
	if (n == -1)
		return;
	buf_add(&c->in, chunk, (size_t)n);
	c->last_activity = ev_now(loop);
	while (!c->closing && (nl = memchr(c->in.data, '\n', c->in.len)) != NULL) {
		size_t len = (size_t)(nl - c->in.data);

		*nl = '\0';
		handle_line(c, c->in.data, len > 0 && c->in.data[len - 1] == '\r' ? len - 1 : len);
		/* The command may have closed the client. */
		if (ctl_client_find(ctl, id) == NULL)
			return;
		buf_consume(&c->in, len + 1);
	}
	if (c->closing)
		return;
	if (c->in.len > CTL_LINE_MAX) {
		reply_and_close(c, "line_too_long", "request line longer than 65536 bytes");
		return;
	}
	c->partial_since = c->in.len > 0 ? (c->partial_since > 0 ? c->partial_since : ev_now(loop)) : 0;
}

static void
client_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_client *c = w->data;
	ssize_t n;

	while (c->out.len > 0) {
		n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			c->out.len = 0;
			client_close(c);
			return;
		}
		buf_consume(&c->out, (size_t)n);
	}
	ev_io_stop(loop, &c->wio);
	if (c->closing)
		client_close(c);
}

static void
client_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctl_client *c = w->data;
	double now = ev_now(loop);

	if (c->closing) {
		/* It would not take the last reply in time. */
		c->out.len = 0;
		client_close(c);
		return;
	}
	if (c->partial_since > 0 && now - c->partial_since > CTL_PARTIAL_TIMEOUT) {
		reply_and_close(c, "timeout", "request line not finished in time");
		return;
	}
	if (!c->watching && c->in.len == 0 && now - c->last_activity > CTL_IDLE_TIMEOUT) {
		reply_and_close(c, "timeout", "idle connection closed");
		return;
	}
}

static void
client_close(struct ctl_client *c)
{
	struct control *ctl = c->ctl;
	struct ev_loop *loop = ctl->d->loop;

	if (c->out.len > 0 && c->fd != -1) {
		/* Let the last reply go out first. */
		c->closing = true;
		ev_io_stop(loop, &c->rio);
		return;
	}
	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	ev_timer_stop(loop, &c->timer);
	if (c->fd != -1) {
		char sink[4096];
		int i;

		/*
		 * Closing with unread input makes the peer's read fail with ECONNRESET and lose our last reply (e.g.
		 * "busy"): swallow what is waiting first (bounded, never blocking).
		 */
		for (i = 0; i < 16 && recv(c->fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
			;
		close(c->fd);
	}
	TAILQ_REMOVE(&ctl->clients, c, entry);
	ctl->nclients--;
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

/* --- peers --------------------------------------------------------------------------------------------------- */

static bool
peer_in_group(int fd, uid_t uid, gid_t gid, gid_t want)
{
	gid_t groups[CTL_MAX_GROUPS];
	socklen_t len = sizeof groups;
	struct passwd *pw;
	int n, i;

	if (gid == want)
		return true;
	/* SO_PEERGROUPS: the peer's supplementary groups as they were at connect time. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
		for (i = 0; i < (int)(len / sizeof(gid_t)); i++)
			if (groups[i] == want)
				return true;
		return false;
	}
	if ((pw = getpwuid(uid)) == NULL)
		return false;
	n = CTL_MAX_GROUPS;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) == -1)
		return false;
	for (i = 0; i < n; i++)
		if (groups[i] == want)
			return true;
	return false;
}

/* Names of peers for messages: getpwuid reads /etc/passwd, too slow for every connection of a flood. */
static const char *
uid_name(uid_t uid)
{
	static struct {
		uid_t uid;
		char name[64];
		bool used;
	} cache[16];
	static unsigned next;
	struct passwd *pw;
	unsigned i;

	for (i = 0; i < 16; i++)
		if (cache[i].used && cache[i].uid == uid)
			return cache[i].name;
	i = next++ % 16;
	cache[i].used = true;
	cache[i].uid = uid;
	pw = getpwuid(uid);
	snprintf(cache[i].name, sizeof cache[i].name, "%s", pw ? pw->pw_name : "?");
	return cache[i].name;
}

static void
accept_pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct control *ctl = w->data;

	ev_io_start(loop, &ctl->accept_io);
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct control *ctl = w->data;
	struct ctl_client *c, *o;
	struct ucred cred;
	socklen_t len = sizeof cred;
	int fd, same_uid, n;

	/* A batch per wake-up: a flood of connections must not keep the loop from the clients already in. */
	for (n = 0; n < 64; n++) {
		fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				/* Out of descriptors: stop accepting for a moment instead of spinning. */
				log_warnx("control: accept: %s; pausing accepts for 1s", strerror(errno));
				ev_io_stop(loop, &ctl->accept_io);
				ev_timer_set(&ctl->accept_pause, 1.0, 0.0);
				ev_timer_start(loop, &ctl->accept_pause);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("control: accept");
			return;
		}
		c = xcalloc(1, sizeof *c);
		c->ctl = ctl;
		c->fd = fd;
		c->id = ++ctl->next_id;
		buf_init(&c->in);
		buf_init(&c->out);
		c->last_activity = ev_now(loop);
		ev_io_init(&c->rio, client_read_cb, fd, EV_READ);
		ev_io_init(&c->wio, client_write_cb, fd, EV_WRITE);
		ev_timer_init(&c->timer, client_timer_cb, 1.0, 1.0);
		c->rio.data = c->wio.data = c->timer.data = c;
		TAILQ_INSERT_TAIL(&ctl->clients, c, entry);
		ctl->nclients++;
		ev_timer_start(loop, &c->timer);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
			log_warn("control: SO_PEERCRED");
			reply_and_close(c, "permission_denied", "cannot identify the peer");
			continue;
		}
		c->uid = cred.uid;
		c->gid = cred.gid;
		c->pid = cred.pid;
		snprintf(c->name, sizeof c->name, "uid %u (%s)", (unsigned)cred.uid, uid_name(cred.uid));
		if (!(cred.uid == 0 || cred.uid == geteuid() ||
		    (ctl->have_ops_gid && peer_in_group(fd, cred.uid, cred.gid, ctl->ops_gid)))) {
			char msg[256];

			log_warnx("control: refused %s (pid %ld): not root, the daemon's user or in the operators group",
			    c->name, (long)cred.pid);
			snprintf(msg, sizeof msg, "permission denied: %s is not root, the daemon's user or a member of "
			    "[control] operators_group", c->name);
			reply_and_close(c, "permission_denied", msg);
			continue;
		}
		/* Root and the daemon's own user are not held back by others' connections: they can always get in. */
		if (ctl->nclients > ctl->max_clients && cred.uid != 0 && cred.uid != geteuid()) {
			reply_and_close(c, "busy", "too many control connections; try again");
			continue;
		}
		same_uid = 0;
		TAILQ_FOREACH(o, &ctl->clients, entry)
			if (o->uid == c->uid && !o->closing)
				same_uid++;
		if (same_uid > ctl->max_per_uid) {
			reply_and_close(c, "busy", "too many control connections from this user; try again");
			continue;
		}
		c->authorized = true;
		ev_io_start(loop, &c->rio);
	}
}

/* --- socket -------------------------------------------------------------------------------------------------- */

/* The POSIX ACL extended attribute (linux/posix_acl_xattr.h), which libc does not declare. */
#define ACL_XATTR_VERSION 0x0002
#define ACL_TAG_GROUP 0x08
#define ACL_TAG_MASK 0x10

struct acl_xattr_entry {
	uint16_t tag, perm;
	uint32_t id;
};

/* Whether the socket's access ACL gives group gid read and write (its own entry, limited by the mask). */
static bool
acl_admits_group(const char *path, gid_t gid)
{
	unsigned char raw[4 + 64 * sizeof(struct acl_xattr_entry)];
	struct acl_xattr_entry e;
	unsigned group_perm = 0, mask = 7;
	bool found = false;
	uint32_t version;
	ssize_t n, off;

	if ((n = lgetxattr(path, "system.posix_acl_access", raw, sizeof raw)) < 4)
		return false;
	memcpy(&version, raw, 4);
	if (version != ACL_XATTR_VERSION)
		return false;
	for (off = 4; off + (ssize_t)sizeof e <= n; off += (ssize_t)sizeof e) {
		memcpy(&e, raw + off, sizeof e);
		if (e.tag == ACL_TAG_GROUP && e.id == gid) {
			group_perm = e.perm;
			found = true;
		} else if (e.tag == ACL_TAG_MASK)
			mask = e.perm;
	}
	return found && (group_perm & mask & 6) == 6;
}

/*
 * Let [control] operators_group connect, or say truly that it cannot.  Under the units nothing needs doing:
 * /run/rtopacks-sync is setgid and has a default ACL for the operators' group (tmpfiles.d), so the socket is born
 * with the right group or ACL, and the units' system call filter would refuse a chown anyway.  Elsewhere (a daemon
 * run by hand) the socket is given to the group if the daemon may, as root or a member of it.
 */
static void
ops_group_access(const char *path, const char *group, gid_t gid)
{
	struct stat st;

	if (lstat(path, &st) == -1) {
		log_warn("control: cannot stat %s", path);
		return;
	}
	if ((st.st_gid == gid && (st.st_mode & 060) == 060) || acl_admits_group(path, gid))
		return;
	if (lchown(path, (uid_t)-1, gid) == 0)
		return;
	log_warnx("[control] operators_group %s cannot connect to %s: the socket's group is gid %u, no ACL entry "
	    "admits %s, and the socket cannot be given to it (%s); create the socket directory with the tmpfiles.d "
	    "entry of docs/install.md (setgid, with a default ACL for the group)", group, path, (unsigned)st.st_gid,
	    group, strerror(errno));
}

struct control *
control_new(struct daemon *d, const char *path, const struct ctl_cmd *const *cmds, char **cause)
{
	struct sockaddr_un sun;
	struct control *ctl;
	const char *group;
	struct group *gr;
	mode_t old;
	int fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		xasprintf(cause, "control socket path too long (%zu bytes, at most %zu): %s", strlen(path),
		    sizeof sun.sun_path - 1, path);
		return NULL;
	}
	strcpy(sun.sun_path, path);

	/* Probe first: a socket that answers belongs to a running instance; never pull it from under it. */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		xasprintf(cause, "socket: %s", strerror(errno));
		return NULL;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0) {
		close(fd);
		xasprintf(cause, "another %s is already running: its control socket %s answers", d->job->daemon, path);
		return NULL;
	}
	close(fd);
	if (unlink(path) == -1 && errno != ENOENT) {
		xasprintf(cause, "cannot remove the stale socket %s: %s", path, strerror(errno));
		return NULL;
	}

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		xasprintf(cause, "socket: %s", strerror(errno));
		return NULL;
	}
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		umask(old);
		xasprintf(cause, "cannot bind the control socket %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	umask(old);
	if (listen(fd, SOMAXCONN) == -1) {
		xasprintf(cause, "listen on %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return NULL;
	}

	ctl = xcalloc(1, sizeof *ctl);
	ctl->d = d;
	ctl->cmds = cmds;
	ctl->path = xstrdup(path);
	ctl->fd = fd;
	ctl->max_clients = (int)config_int(d->cfg, "control", "max_clients");
	ctl->max_per_uid = (int)config_int(d->cfg, "control", "max_clients_per_uid");
	TAILQ_INIT(&ctl->clients);
	if ((group = config_str(d->cfg, "control", "operators_group")) != NULL) {
		if ((gr = getgrnam(group)) == NULL)
			log_warnx("[control] operators_group '%s' does not exist: only root and the daemon's user can "
			    "use %s", group, path);
		else {
			ctl->ops_gid = gr->gr_gid;
			ctl->have_ops_gid = true;
			ops_group_access(path, group, gr->gr_gid);
		}
	}
	ev_io_init(&ctl->accept_io, accept_cb, fd, EV_READ);
	ctl->accept_io.data = ctl;
	ev_timer_init(&ctl->accept_pause, accept_pause_cb, 1.0, 0.0);
	ctl->accept_pause.data = ctl;
	ev_io_start(d->loop, &ctl->accept_io);
	return ctl;
}

void
control_free(struct control *ctl)
{
	struct ctl_client *c;

	if (ctl == NULL)
		return;
	while ((c = TAILQ_FIRST(&ctl->clients)) != NULL) {
		/* Try once to hand over what is queued (e.g. the final run_end), without waiting. */
		if (c->out.len > 0)
			(void)!send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		c->out.len = 0;
		client_close(c);
	}
	ev_io_stop(ctl->d->loop, &ctl->accept_io);
	ev_timer_stop(ctl->d->loop, &ctl->accept_pause);
	close(ctl->fd);
	unlink(ctl->path);
	free(ctl->path);
	free(ctl);
}
