/* The split-commit crash hook: see splitcrash.h. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "crashpoint.h"
#include "splitcrash.h"

struct sc_file {
	sqlite3_file base;
	sqlite3_file *real;	/* the underlying VFS's file, allocated right after this struct */
	bool wal;
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs shim_vfs;
static sqlite3_io_methods shim_io;
static const sqlite3_io_methods *real_io;
static bool armed, fired;
static const struct sc_file *first_wal;	/* the first WAL file written in this commit window: ops.db's */
static char label[96];

void
splitcrash_begin(const char *l)
{
	if (real_vfs == NULL)
		return;
	snprintf(label, sizeof label, "split_commit@%s", l);
	armed = true;
	fired = false;
	first_wal = NULL;
}

void
splitcrash_end(void)
{
	armed = false;
	first_wal = NULL;
}

#define REAL(f) (((struct sc_file *)(f))->real)

static int
sc_close(sqlite3_file *f)
{
	int rc = REAL(f)->pMethods != NULL ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;

	if (first_wal == (struct sc_file *)f)
		first_wal = NULL;
	return rc;
}

static int
sc_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}

static int
sc_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	struct sc_file *s = (struct sc_file *)f;

	if (armed && s->wal && !fired) {
		if (first_wal == NULL)
			first_wal = s;
		else if (first_wal != s) {
			/* ops.db's commit frame is written; rtopacks.db's is not. */
			fired = true;
			crashpoint("split_commit");
			crashpoint(label);
		}
	}
	return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
}

static int
sc_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int
sc_sync(sqlite3_file *f, int flags)
{
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int
sc_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int
sc_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}

static int
sc_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}

static int
sc_check_lock(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int
sc_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int
sc_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int
sc_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int
sc_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int
sc_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void
sc_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int
sc_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int
sc_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}

static int
sc_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static int
sc_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags, int *out)
{
	struct sc_file *s = (struct sc_file *)f;
	int rc;

	(void)vfs;
	memset(s, 0, sizeof *s);
	s->real = (sqlite3_file *)(s + 1);
	s->wal = (flags & SQLITE_OPEN_WAL) != 0;
	rc = real_vfs->xOpen(real_vfs, name, s->real, flags, out);
	if (s->real->pMethods == NULL)
		return rc;	/* nothing to close */
	if (real_io == NULL) {
		/* Every wrapper forwards to its own file's methods: one table serves them all. */
		real_io = s->real->pMethods;
		shim_io = *real_io;
		shim_io.xClose = sc_close;
		shim_io.xRead = sc_read;
		shim_io.xWrite = sc_write;
		shim_io.xTruncate = sc_truncate;
		shim_io.xSync = sc_sync;
		shim_io.xFileSize = sc_size;
		shim_io.xLock = sc_lock;
		shim_io.xUnlock = sc_unlock;
		shim_io.xCheckReservedLock = sc_check_lock;
		shim_io.xFileControl = sc_fcntl;
		shim_io.xSectorSize = sc_sector;
		shim_io.xDeviceCharacteristics = sc_devchar;
		if (real_io->iVersion >= 2) {
			shim_io.xShmMap = sc_shm_map;
			shim_io.xShmLock = sc_shm_lock;
			shim_io.xShmBarrier = sc_shm_barrier;
			shim_io.xShmUnmap = sc_shm_unmap;
		}
		if (real_io->iVersion >= 3) {
			shim_io.xFetch = sc_fetch;
			shim_io.xUnfetch = sc_unfetch;
		}
	}
	f->pMethods = &shim_io;
	return rc;
}

__attribute__((constructor)) static void
splitcrash_init(void)
{
	const char *env = getenv("RTOPACKS_CRASH_AT");

	if (env == NULL || strstr(env, "split_commit") == NULL)
		return;
	if ((real_vfs = sqlite3_vfs_find(NULL)) == NULL)
		return;
	shim_vfs = *real_vfs;
	shim_vfs.zName = "rtopacks-splitcrash";
	shim_vfs.szOsFile = (int)sizeof(struct sc_file) + real_vfs->szOsFile;
	shim_vfs.xOpen = sc_open;
	shim_vfs.pNext = NULL;
	if (sqlite3_vfs_register(&shim_vfs, 1) != SQLITE_OK)
		real_vfs = NULL;
}
