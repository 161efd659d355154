/*
 * Crash points for tests: RTOPACKS_CRASH_AT="name:N[,name:N...]" kills the process (SIGKILL) at the Nth pass of
 * crashpoint("name").  The variable is read once, at the first call.  The names the engine passes are listed in
 * cycle.h; store/splitcrash.c and the daemons add their own.
 */
#ifndef RTOPACKS_CRASHPOINT_H
#define RTOPACKS_CRASHPOINT_H

void crashpoint(const char *name);

#endif
