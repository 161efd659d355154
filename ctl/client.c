#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "ctl-proto.h"
#include "sctl.h"
#include "xmalloc.h"

struct sctl_conn {
	int fd;
	char *daemon;
	struct buf in;
};

/*
 * Whom a socket may belong to: root, the daemon's own user (the units run each daemon as the user named after it)
 * and whoever runs syncctl (nobody can fool you with your own socket).  Anyone else who managed to put a socket
 * under the daemon's name would be answering in its place: never trust that.
 */
static bool
trusted_owner(const char *daemon, uid_t uid)
{
	struct passwd *pw;

	if (uid == 0 || uid == geteuid())
		return true;
	return (pw = getpwnam(daemon)) != NULL && pw->pw_uid == uid;
}

static void
untrusted(const char *daemon, const char *path, uid_t uid, const char *what)
{
	struct passwd *pw = getpwuid(uid);

	fprintf(stderr, "syncctl: %s: %s uid %u (%s), not root or %s's own user: it is not %s's socket, so syncctl "
	    "does not talk to it; ask root to remove it and to check who can write %s (docs/install.md)\n", path, what,
	    (unsigned)uid, pw != NULL ? pw->pw_name : "?", daemon, daemon, path);
}

/* Before trusting what answers: the socket file and the process listening on it belong to the daemon's user. */
static int
check_socket_owner(int fd, const char *daemon, const char *path)
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	struct stat st;

	if (lstat(path, &st) == -1 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "syncctl: %s is not a socket\n", path);
		return -1;
	}
	if (!trusted_owner(daemon, st.st_uid)) {
		untrusted(daemon, path, st.st_uid, "belongs to");
		return -1;
	}
	/* The file could have been swapped since: the listener's credentials are what the kernel says. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		fprintf(stderr, "syncctl: %s: cannot identify the daemon: %s\n", path, strerror(errno));
		return -1;
	}
	if (!trusted_owner(daemon, cred.uid)) {
		untrusted(daemon, path, cred.uid, "is served by a process of");
		return -1;
	}
	return 0;
}

struct sctl_conn *
sctl_connect(struct sctl *s, const char *daemon, int *exitcode)
{
	struct sockaddr_un sun;
	struct sctl_conn *c;
	char *path;
	int fd;

	path = ctl_socket_path(s->cfg, daemon);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		fprintf(stderr, "syncctl: socket path too long: %s\n", path);
		free(path);
		*exitcode = SCTL_USAGE;
		return NULL;
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		int e = errno;

		if (e == ENOENT || e == ECONNREFUSED)
			fprintf(stderr, "syncctl: %s is not running (no one answers on %s)\n", daemon, path);
		else if (e == EACCES)
			fprintf(stderr, "syncctl: %s: permission denied: ask to be added to the operators group\n",
			    path);
		else
			fprintf(stderr, "syncctl: %s: %s\n", path, strerror(e));
		if (fd != -1)
			close(fd);
		free(path);
		*exitcode = e == EACCES ? SCTL_DENIED : SCTL_UNREACHABLE;
		return NULL;
	}
	if (check_socket_owner(fd, daemon, path) == -1) {
		close(fd);
		free(path);
		*exitcode = SCTL_FAILED;
		return NULL;
	}
	free(path);
	c = xcalloc(1, sizeof *c);
	c->fd = fd;
	c->daemon = xstrdup(daemon);
	buf_init(&c->in);
	return c;
}

int
sctl_send(struct sctl_conn *c, const char *cmd, cJSON *args)
{
	cJSON *req = cJSON_CreateObject();
	char *line;
	size_t len, off = 0;
	ssize_t n;

	cJSON_AddNumberToObject(req, "v", CTL_PROTO_VERSION);
	cJSON_AddStringToObject(req, "cmd", cmd);
	if (args != NULL)
		cJSON_AddItemToObject(req, "args", args);
	line = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	len = strlen(line);
	line[len++] = '\n';	/* replaces the NUL: the buffer had room for it */
	while (off < len) {
		n = send(c->fd, line + off, len - off, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EPIPE || errno == ECONNRESET)) {
			/*
			 * The daemon answered at accept time (permission_denied, busy) and closed: its reply is waiting to
			 * be read, and sctl_recv() reads it (or reports the lost connection if there is none).
			 */
			free(line);
			return 0;
		}
		if (n <= 0) {
			fprintf(stderr, "syncctl: %s: cannot send: %s\n", c->daemon, strerror(errno));
			free(line);
			return -1;
		}
		off += (size_t)n;
	}
	free(line);
	return 0;
}

cJSON *
sctl_recv(struct sctl_conn *c, int timeout_ms)
{
	struct pollfd pfd;
	char chunk[8192], *nl;
	cJSON *msg;
	ssize_t n;

	for (;;) {
		if (c->in.len > 0 && (nl = memchr(c->in.data, '\n', c->in.len)) != NULL) {
			size_t len = (size_t)(nl - c->in.data);

			msg = cJSON_ParseWithLength(c->in.data, len);
			buf_consume(&c->in, len + 1);
			if (msg == NULL) {
				fprintf(stderr, "syncctl: %s sent a line that is not JSON\n", c->daemon);
				return NULL;
			}
			return msg;
		}
		if (c->in.len > CTL_LINE_MAX * 16) {
			fprintf(stderr, "syncctl: %s sent an over-long line\n", c->daemon);
			return NULL;
		}
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		n = poll(&pfd, 1, timeout_ms);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0) {
			fprintf(stderr, "syncctl: %s did not answer in %d s\n", c->daemon, timeout_ms / 1000);
			return NULL;
		}
		if ((n = read(c->fd, chunk, sizeof chunk)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			return NULL;
		}
		buf_add(&c->in, chunk, (size_t)n);
	}
}

void
sctl_close(struct sctl_conn *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	buf_free(&c->in);
	free(c->daemon);
	free(c);
}

int
sctl_reply_error(const char *daemon, const cJSON *reply)
{
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(reply, "code");
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(reply, "error");
	const char *c = cJSON_IsString(code) ? code->valuestring : "failed";

	fprintf(stderr, "syncctl: %s: %s\n", daemon, cJSON_IsString(err) ? err->valuestring : "error");
	if (strcmp(c, "permission_denied") == 0)
		return SCTL_DENIED;
	if (strcmp(c, "already_running") == 0)
		return SCTL_ALREADY;
	return SCTL_FAILED;
}
