/*
 * The token store: the QuickBooks token pair in one small JSON file in the daemon's state directory, mode 0600,
 * readable only by the daemon's user.  Every write is atomic (temp file, fsync, rename, fsync of the directory), so
 * a crash leaves the old pair or the new one, never half of each; a refresh writes the new pair BEFORE anything
 * uses it, because Intuit kills the previous refresh token as soon as it issues a new one.
 *
 * The refresh lock is a separate file (<store>.lock) held with flock(LOCK_EX) around a refresh or a code exchange,
 * so two processes never present the same refresh token (the second would get invalid_grant and may revoke the
 * chain).  It is a separate file because the store itself is replaced by rename.
 *
 * The file's key names match the token-state file of tests/fakes/fake_qbo.py, so a test can seed a store from it.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "fdio.h"
#include "log.h"
#include "qbr.h"
#include "timeutil.h"
#include "xmalloc.h"

#define STORE_MAX (64 * 1024)

static void
secret_zfree(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void
tokens_clear(struct qbr_tokens *t)
{
	free(t->realm_id);
	secret_zfree(t->access_token);
	secret_zfree(t->refresh_token);
	memset(t, 0, sizeof *t);
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

void
tokens_copy(struct qbr_tokens *dst, const struct qbr_tokens *src)
{
	tokens_clear(dst);
	*dst = *src;
	dst->realm_id = dup_or_null(src->realm_id);
	dst->access_token = dup_or_null(src->access_token);
	dst->refresh_token = dup_or_null(src->refresh_token);
}

static bool
get_time(const cJSON *o, const char *key, time_t *t)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	*t = 0;
	if (!cJSON_IsString(v))
		return false;
	return iso8601_parse(v->valuestring, t);
}

bool
tokens_text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n < 8 || n > max)
		return false;
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s > '~' || *s == '"' || *s == '\\')
			return false;
	return true;
}

static bool
realm_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32)
		return false;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

int
tokens_load(const char *path, struct qbr_tokens *t, char **cause)
{
	struct stat sb;
	char *data;
	cJSON *o = NULL;
	const cJSON *v;
	ssize_t n;
	size_t len = 0;
	int fd;

	tokens_clear(t);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno == ENOENT)
			return 0;
		xasprintf(cause, "token store %s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) || sb.st_size > STORE_MAX) {
		xasprintf(cause, "token store %s: not a regular file of at most %d bytes", path, STORE_MAX);
		close(fd);
		return -1;
	}
	if (sb.st_uid != geteuid()) {
		xasprintf(cause, "token store %s: owned by uid %u, not by this daemon's user (uid %u)", path,
		    (unsigned)sb.st_uid, (unsigned)geteuid());
		close(fd);
		return -1;
	}
	if ((sb.st_mode & 077) != 0) {
		/* Only the daemon's user may read the tokens: repair a store that someone loosened. */
		log_warnx("token store %s had mode %04o: set to 0600", path, (unsigned)(sb.st_mode & 07777));
		if (fchmod(fd, 0600) == -1)
			log_warn("chmod %s", path);
	}
	data = xmalloc((size_t)sb.st_size + 1);
	while (len < (size_t)sb.st_size && (n = read(fd, data + len, (size_t)sb.st_size - len)) > 0)
		len += (size_t)n;
	close(fd);
	data[len] = '\0';
	o = cJSON_ParseWithLength(data, len);
	explicit_bzero(data, len);
	free(data);
	if (o == NULL || !cJSON_IsObject(o)) {
		xasprintf(cause, "token store %s: not valid JSON (restore it from a backup or run `syncctl qb connect`)",
		    path);
		cJSON_Delete(o);
		return -1;
	}
	if (!cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(o, "access_token")) ||
	    !tokens_text_ok(v->valuestring, QBR_ACCESS_MAX)) {
		xasprintf(cause, "token store %s: no valid access_token", path);
		goto bad;
	}
	t->access_token = xstrdup(v->valuestring);
	if (!cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(o, "refresh_token")) ||
	    !tokens_text_ok(v->valuestring, QBR_REFRESH_MAX)) {
		xasprintf(cause, "token store %s: no valid refresh_token", path);
		goto bad;
	}
	t->refresh_token = xstrdup(v->valuestring);
	secret_register(t->access_token);
	secret_register(t->refresh_token);
	if (!cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(o, "realm_id")) || !realm_ok(v->valuestring)) {
		xasprintf(cause, "token store %s: no valid realm_id (digits)", path);
		goto bad;
	}
	t->realm_id = xstrdup(v->valuestring);
	get_time(o, "obtained_at", &t->obtained_at);
	get_time(o, "access_token_expires_at", &t->access_expires_at);
	get_time(o, "refresh_token_expires_at", &t->refresh_expires_at);
	get_time(o, "refresh_token_hard_expires_at", &t->refresh_hard_expires_at);
	if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, "generation")) && v->valuedouble >= 0 &&
	    v->valuedouble < 1e12)
		t->generation = (int64_t)v->valuedouble;
	if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, "refreshes")) && v->valuedouble >= 0 &&
	    v->valuedouble < 1e12)
		t->refreshes = (int64_t)v->valuedouble;
	cJSON_Delete(o);
	return 1;
bad:
	cJSON_Delete(o);
	tokens_clear(t);
	return -1;
}

static void
add_time(cJSON *o, const char *key, time_t t)
{
	char buf[ISO8601_LEN];

	if (t > 0)
		cJSON_AddStringToObject(o, key, iso8601_fmt(t, buf));
}

int
tokens_store(const char *path, const struct qbr_tokens *t, char **cause)
{
	cJSON *o = cJSON_CreateObject();
	char *json, *tmp, *dirbuf;
	int fd, dfd;

	cJSON_AddNumberToObject(o, "version", 1);
	cJSON_AddStringToObject(o, "realm_id", t->realm_id);
	cJSON_AddStringToObject(o, "access_token", t->access_token);
	cJSON_AddStringToObject(o, "refresh_token", t->refresh_token);
	add_time(o, "obtained_at", t->obtained_at);
	add_time(o, "access_token_expires_at", t->access_expires_at);
	add_time(o, "refresh_token_expires_at", t->refresh_expires_at);
	add_time(o, "refresh_token_hard_expires_at", t->refresh_hard_expires_at);
	cJSON_AddNumberToObject(o, "generation", (double)t->generation);
	cJSON_AddNumberToObject(o, "refreshes", (double)t->refreshes);
	json = cJSON_Print(o);
	cJSON_Delete(o);

	xasprintf(&tmp, "%s.tmp.%ld", path, (long)getpid());
	(void)unlink(tmp);	/* a leftover of a crashed write of ours (same pid reused): never follow it */
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) == -1) {
		xasprintf(cause, "token store: cannot create %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (fchmod(fd, 0600) == -1 || write_full(fd, json, strlen(json)) == -1 || write_full(fd, "\n", 1) == -1 ||
	    fsync(fd) == -1) {
		xasprintf(cause, "token store: cannot write %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		goto fail;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		xasprintf(cause, "token store: cannot replace %s: %s", path, strerror(errno));
		unlink(tmp);
		goto fail;
	}
	/* The rename itself must survive a power cut too. */
	dirbuf = xstrdup(path);
	if ((dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		if (fsync(dfd) == -1)
			log_warn("fsync of the token store's directory");
		close(dfd);
	}
	free(dirbuf);
	secret_register(t->access_token);
	secret_register(t->refresh_token);
	explicit_bzero(json, strlen(json));
	free(json);
	free(tmp);
	return 0;
fail:
	explicit_bzero(json, strlen(json));
	free(json);
	free(tmp);
	return -1;
}

struct token_lock {
	int fd;
};

int
token_lock_try(const char *lock_path, struct token_lock **out, char **cause)
{
	int fd;

	*out = NULL;
	if ((fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) == -1) {
		xasprintf(cause, "cannot open the token lock %s: %s", lock_path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		int e = errno;

		close(fd);
		if (e == EWOULDBLOCK)
			return 0;
		xasprintf(cause, "cannot lock %s: %s", lock_path, strerror(e));
		return -1;
	}
	*out = xcalloc(1, sizeof **out);
	(*out)->fd = fd;
	return 1;
}

void
token_lock_release(struct token_lock *l)
{
	if (l == NULL)
		return;
	flock(l->fd, LOCK_UN);
	close(l->fd);
	free(l);
}
