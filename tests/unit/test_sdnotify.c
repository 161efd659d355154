/* sd_notify to a path socket and to an abstract one (whose address length must not be sizeof(sun)). */
#include <sys/socket.h>
#include <sys/un.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "sdnotify.h"

static int
listener(const char *name, bool abstract)
{
	struct sockaddr_un sun;
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (abstract) {
		memcpy(sun.sun_path + 1, name, strlen(name));
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	} else {
		strcpy(sun.sun_path, name);
		len = sizeof sun;
	}
	if (bind(fd, (struct sockaddr *)&sun, len) == -1)
		return -1;
	return fd;
}

static void
expect(int fd, const char *want)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);

	CHECK(n > 0);
	if (n > 0) {
		buf[n] = '\0';
		CHECK_STR(buf, want);
	}
}

int
main(void)
{
	char path[64], abs_name[64], env[80];
	int fd;

	unsetenv("NOTIFY_SOCKET");
	CHECK(sd_notify_msg("READY=1") == 0);	/* not under a service manager: nothing to do */

	snprintf(path, sizeof path, "/tmp/rs-notify-%d", (int)getpid());
	unlink(path);
	fd = listener(path, false);
	CHECK(fd != -1);
	setenv("NOTIFY_SOCKET", path, 1);
	CHECK(sd_notify_msg("READY=1") == 1);
	expect(fd, "READY=1");
	CHECK(sd_notifyf("STATUS=%s %d", "phase", 3) == 1);
	expect(fd, "STATUS=phase 3");
	close(fd);
	unlink(path);

	snprintf(abs_name, sizeof abs_name, "rs-notify-abstract-%d", (int)getpid());
	fd = listener(abs_name, true);
	CHECK(fd != -1);
	snprintf(env, sizeof env, "@%s", abs_name);
	setenv("NOTIFY_SOCKET", env, 1);
	CHECK(sd_notify_msg("WATCHDOG=1") == 1);
	expect(fd, "WATCHDOG=1");
	close(fd);

	setenv("NOTIFY_SOCKET", "relative/path", 1);
	CHECK(sd_notify_msg("READY=1") == -1);

	setenv("WATCHDOG_USEC", "60000000", 1);
	snprintf(env, sizeof env, "%d", (int)getpid());
	setenv("WATCHDOG_PID", env, 1);
	CHECK(sd_watchdog_usec() == 60000000);
	setenv("WATCHDOG_PID", "1", 1);
	CHECK(sd_watchdog_usec() == 0);		/* meant for another process */
	CHECK_DONE();
}
