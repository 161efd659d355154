/* The control socket's request framing (what any local user in the operators' group can send). */
#include <stddef.h>
#include <stdint.h>

#include "ctl-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_request req;
	const char *code;
	char msg[256], safe[80];

	if (ctl_parse_request((const char *)data, size, &req, &code, msg, sizeof msg) == 0) {
		ctl_sanitize(req.cmd, safe, sizeof safe);
		ctl_request_free(&req);
	}
	return 0;
}
