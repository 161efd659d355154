/*
 * sd_notify without libsystemd: one datagram of KEY=VALUE lines to $NOTIFY_SOCKET.  A leading '@' names an
 * abstract socket, whose address length must be offsetof(sun_path) + name length: sizeof(struct sockaddr_un)
 * (as systemd's own self-contained example passes) is refused for abstract names.
 */
#ifndef RTOPACKS_SDNOTIFY_H
#define RTOPACKS_SDNOTIFY_H

#include <stdint.h>

/* Returns 1 if sent, 0 if not under a service manager, -1 on error. */
int sd_notify_msg(const char *msg);
int sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The watchdog interval systemd asked for ($WATCHDOG_USEC for this pid), in microseconds; 0 if none. */
uint64_t sd_watchdog_usec(void);

#endif
