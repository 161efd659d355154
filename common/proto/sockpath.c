/* Where a daemon's control socket is: see ctl-proto.h. */
#include <stddef.h>

#include "config.h"
#include "ctl-proto.h"
#include "xmalloc.h"

char *
ctl_socket_path(const struct config *cfg, const char *daemon)
{
	char *p;

	/* syncctl loads no daemon section, so it cannot ask for the override: only daemons consult it. */
	xasprintf(&p, "%s/%s.sock", config_str(cfg, "control", "socket_dir"), daemon);
	return p;
}
