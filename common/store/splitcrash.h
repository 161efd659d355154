/*
 * A test hook exactly between the two databases' commits (the split-commit window).
 *
 * A transaction that writes ops.db and the attached rtopacks.db commits in WAL mode file by file: ops.db (the main
 * database) writes its commit frame to ops.db-wal, then rtopacks.db writes its own to rtopacks.db-wal.  A power cut
 * or a SIGKILL between the two leaves ops.db one commit ahead.  With RTOPACKS_CRASH_AT naming "split_commit" (every
 * two-database commit counts) or "split_commit@<label>" (the commits of one phase, or "trigger"), the process is
 * killed at the first write to the SECOND WAL file of a commit window, that is after ops.db's commit frame was
 * written and before any of rtopacks.db's: the real mechanism, with no change to how SQLite commits.
 *
 * The hook is a pass-through VFS installed as the default only when the environment asks for a split crash point
 * (checked once, before any database is opened); otherwise nothing here runs.
 */
#ifndef RTOPACKS_SPLITCRASH_H
#define RTOPACKS_SPLITCRASH_H

/* Around a COMMIT: label names it for RTOPACKS_CRASH_AT ("trigger" or a phase name; copied). */
void splitcrash_begin(const char *label);
void splitcrash_end(void);

#endif
