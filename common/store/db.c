#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "db.h"
#include "log.h"
#include "xmalloc.h"

struct stmt_cache_entry {
	const char *sql;	/* identity: the literal's address */
	sqlite3_stmt *stmt;
};

struct db {
	sqlite3 *h;
	char *path;
	struct stmt_cache_entry *cache;
	size_t ncache;
};

/*
 * Errors come from the connection, named after its main file; with rtopacks.db attached to ops.db a message such as
 * "readonly database" or "disk is full" must say which file it means and what to do.
 */
static void
explain(struct db *db, struct buf *b)
{
	int code = sqlite3_extended_errcode(db->h) & 0xff, i;
	const char *name, *file;

	if (code != SQLITE_READONLY && code != SQLITE_FULL && code != SQLITE_BUSY && code != SQLITE_CANTOPEN)
		return;
	for (i = 0; (name = sqlite3_db_name(db->h, i)) != NULL; i++) {
		if (strcmp(name, "temp") == 0 || (file = sqlite3_db_filename(db->h, name)) == NULL || *file == '\0')
			continue;
		if (code == SQLITE_READONLY && sqlite3_db_readonly(db->h, name) == 1)
			buf_printf(b, " (%s is read-only: check the file's owner, mode and attributes)", file);
	}
	if (code == SQLITE_FULL)
		buf_adds(b, " (the file system holding the databases is full)");
	else if (code == SQLITE_BUSY)
		buf_adds(b, " (another process holds the write lock longer than [paths] busy_timeout)");
}

int
db_error(struct db *db, char **cause, const char *context)
{
	struct buf b;

	if (cause != NULL) {
		buf_init(&b);
		buf_printf(&b, "%s: %s: %s", db->path, context, sqlite3_errmsg(db->h));
		explain(db, &b);
		*cause = buf_release(&b);
	}
	return -1;
}

/*
 * SQLITE_OPEN_NOFOLLOW refuses a symbolic link anywhere in the path, not only the file itself: a state directory
 * that an administrator moved to another disk behind a link (/var/lib/rtopacks-sync -> /srv/...) would stop every
 * daemon.  The directories above the file are root's, so they are resolved first; only the file's own name, in the
 * shared directory, is held to NOFOLLOW.  A URI or a bare name is opened as given.
 */
static char *
path_to_open(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir, *real, *out;

	if (slash == NULL || strncmp(path, "file:", 5) == 0)
		return xstrdup(path);
	dir = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
	real = realpath(dir, NULL);
	free(dir);
	if (real == NULL)
		return xstrdup(path);	/* SQLite says what is wrong with it */
	xasprintf(&out, "%s/%s", strcmp(real, "/") == 0 ? "" : real, slash + 1);
	free(real);
	return out;
}

struct db *
db_open(const char *path, int flags, int busy_timeout_ms, char **cause)
{
	struct db *db;
	char *open_path;
	int oflags, rc;

	db = xcalloc(1, sizeof *db);
	db->path = xstrdup(path);
	oflags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
	/* A writer never opens a database through a link: the state directory is shared by three users. */
	oflags |= (flags & DB_READONLY) ? SQLITE_OPEN_READONLY :
	    (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW);
	open_path = (flags & DB_READONLY) ? xstrdup(path) : path_to_open(path);
	rc = sqlite3_open_v2(open_path, &db->h, oflags, NULL);
	free(open_path);
	if (rc != SQLITE_OK) {
		if (db->h == NULL)
			xasprintf(cause, "%s: cannot open: out of memory", path);
		else if (sqlite3_extended_errcode(db->h) == SQLITE_CANTOPEN_SYMLINK)
			xasprintf(cause, "%s: cannot open: it is a symbolic link (a database is never opened through one; "
			    "set [paths] ops_db / corpus_db to the real file)", path);
		else
			xasprintf(cause, "%s: cannot open: %s", path, sqlite3_errmsg(db->h));
		db_close(db);
		return NULL;
	}
	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, busy_timeout_ms);
	if (!(flags & DB_READONLY)) {
		/* WAL lets syncctl and the web side read while a daemon writes. */
		if (db_exec(db, "PRAGMA journal_mode=WAL", cause) == -1 ||
		    db_exec(db, "PRAGMA synchronous=FULL", cause) == -1) {
			db_close(db);
			return NULL;
		}
	}
	if (db_exec(db, "PRAGMA foreign_keys=ON", cause) == -1) {
		db_close(db);
		return NULL;
	}
	return db;
}

void
db_close(struct db *db)
{
	size_t i;

	if (db == NULL)
		return;
	for (i = 0; i < db->ncache; i++)
		sqlite3_finalize(db->cache[i].stmt);
	free(db->cache);
	if (db->h != NULL && sqlite3_close(db->h) != SQLITE_OK)
		log_warnx("%s: close: %s", db->path, sqlite3_errmsg(db->h));
	free(db->path);
	free(db);
}

sqlite3 *
db_handle(struct db *db)
{
	return db->h;
}

const char *
db_path(const struct db *db)
{
	return db->path;
}

int
db_exec(struct db *db, const char *sql, char **cause)
{
	char *err = NULL;

	if (sqlite3_exec(db->h, sql, NULL, NULL, &err) != SQLITE_OK) {
		if (cause != NULL) {
			struct buf b;

			buf_init(&b);
			buf_printf(&b, "%s: %.200s: %s", db->path, sql, err ? err : sqlite3_errmsg(db->h));
			explain(db, &b);
			*cause = buf_release(&b);
		}
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

int
db_begin(struct db *db, char **cause)
{
	return db_exec(db, "BEGIN IMMEDIATE", cause);
}

int
db_commit(struct db *db, char **cause)
{
	return db_exec(db, "COMMIT", cause);
}

void
db_rollback(struct db *db)
{
	if (!sqlite3_get_autocommit(db->h) && db_exec(db, "ROLLBACK", NULL) == -1)
		log_warnx("%s: rollback: %s", db->path, sqlite3_errmsg(db->h));
}

bool
db_in_tx(struct db *db)
{
	return !sqlite3_get_autocommit(db->h);
}

int
db_schema_version(struct db *db, const char *schema, int *version, char **cause)
{
	sqlite3_stmt *st;
	char sql[128];
	int rc;

	/* PRAGMA takes no bound parameters; schema is one of our own constant names. */
	snprintf(sql, sizeof sql, "PRAGMA \"%s\".user_version", schema);
	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return db_error(db, cause, "read schema version");
	rc = sqlite3_step(st);
	*version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return db_error(db, cause, "read schema version");
	return 0;
}

int
db_migrate(struct db *db, const struct migration *m, char **cause)
{
	int have, want = 0, i;
	char sql[64];

	for (want = 0; m[want].sql != NULL; want++)
		;
	if (db_schema_version(db, "main", &have, cause) == -1)
		return -1;
	if (have > want) {
		xasprintf(cause, "%s: schema version %d is newer than this program knows (%d): run a newer version",
		    db->path, have, want);
		return -1;
	}
	for (i = have; i < want; i++) {
		if (db_begin(db, cause) == -1)
			return -1;
		if (db_exec(db, m[i].sql, cause) == -1) {
			char *inner = *cause;

			xasprintf(cause, "migration %s failed: %s", m[i].name, inner);
			free(inner);
			db_rollback(db);
			return -1;
		}
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d", i + 1);
		if (db_exec(db, sql, cause) == -1 || db_commit(db, cause) == -1) {
			db_rollback(db);
			return -1;
		}
		log_info("%s: applied migration %s", db->path, m[i].name);
	}
	return 0;
}

int
db_attach(struct db *db, const char *path, const char *schema, char **cause)
{
	sqlite3_stmt *st;
	char sql[128];

	snprintf(sql, sizeof sql, "ATTACH DATABASE ? AS \"%s\"", schema);
	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return db_error(db, cause, "attach");
	/* The attached file inherits the connection's NOFOLLOW: resolve the directories above it the same way. */
	sqlite3_bind_text(st, 1, path_to_open(path), -1, free);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		if (cause != NULL)
			xasprintf(cause, "%s: cannot attach %s: %s", db->path, path, sqlite3_errmsg(db->h));
		return -1;
	}
	sqlite3_finalize(st);
	snprintf(sql, sizeof sql, "PRAGMA \"%s\".journal_mode=WAL", schema);
	if (db_exec(db, sql, cause) == -1)
		return -1;
	snprintf(sql, sizeof sql, "PRAGMA \"%s\".synchronous=FULL", schema);
	return db_exec(db, sql, cause);
}

sqlite3_stmt *
db_stmt(struct db *db, const char *sql, char **cause)
{
	sqlite3_stmt *st;
	size_t i;

	for (i = 0; i < db->ncache; i++) {
		if (db->cache[i].sql == sql) {
			st = db->cache[i].stmt;
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return st;
		}
	}
	if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		if (cause != NULL)
			xasprintf(cause, "%s: prepare: %s (in: %.200s)", db->path, sqlite3_errmsg(db->h), sql);
		return NULL;
	}
	db->cache = xreallocarray(db->cache, db->ncache + 1, sizeof *db->cache);
	db->cache[db->ncache].sql = sql;
	db->cache[db->ncache].stmt = st;
	db->ncache++;
	return st;
}

int
db_step_done(struct db *db, sqlite3_stmt *st, char **cause)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE) {
		if (cause != NULL) {
			struct buf b;

			buf_init(&b);
			buf_printf(&b, "%s: %s (in: %.120s)", db->path, sqlite3_errmsg(db->h), sqlite3_sql(st));
			explain(db, &b);
			*cause = buf_release(&b);
		}
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}

int
db_bind_text(sqlite3_stmt *st, int idx, const char *s)
{
	if (s == NULL)
		return sqlite3_bind_null(st, idx);
	return sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
}

int
db_bind_int(sqlite3_stmt *st, int idx, int64_t v)
{
	return sqlite3_bind_int64(st, idx, v);
}

const char *
db_col_text(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	return s != NULL ? (const char *)s : "";
}
