#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "ctl-proto.h"

int
ctl_parse_request(const char *line, size_t len, struct ctl_request *req, const char **code, char *msg,
    size_t msglen)
{
	const cJSON *v, *name, *args;

	memset(req, 0, sizeof *req);
	if (len > CTL_LINE_MAX) {
		*code = "line_too_long";
		snprintf(msg, msglen, "request line longer than %d bytes", CTL_LINE_MAX);
		return -1;
	}
	if ((req->doc = cJSON_ParseWithLength(line, len)) == NULL || !cJSON_IsObject(req->doc)) {
		*code = "bad_request";
		snprintf(msg, msglen, "the request is not a JSON object");
		goto fail;
	}
	v = cJSON_GetObjectItemCaseSensitive(req->doc, "v");
	if (!cJSON_IsNumber(v) || v->valuedouble != CTL_PROTO_VERSION) {
		*code = "bad_version";
		snprintf(msg, msglen, "protocol version %s is not supported (this daemon speaks %d): use the syncctl of "
		    "the same release", cJSON_IsNumber(v) ? "given" : "missing", CTL_PROTO_VERSION);
		goto fail;
	}
	name = cJSON_GetObjectItemCaseSensitive(req->doc, "cmd");
	if (!cJSON_IsString(name) || name->valuestring == NULL) {
		*code = "bad_request";
		snprintf(msg, msglen, "the request has no \"cmd\" string");
		goto fail;
	}
	args = cJSON_GetObjectItemCaseSensitive(req->doc, "args");
	if (args != NULL && !cJSON_IsObject(args)) {
		*code = "bad_request";
		snprintf(msg, msglen, "\"args\" must be an object");
		goto fail;
	}
	req->cmd = name->valuestring;
	req->args = args;
	return 0;
fail:
	cJSON_Delete(req->doc);
	req->doc = NULL;
	return -1;
}

void
ctl_request_free(struct ctl_request *req)
{
	cJSON_Delete(req->doc);
	req->doc = NULL;
}

void
ctl_sanitize(const char *s, char *out, size_t len)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < len && i < 64; i++)
		out[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	out[i] = '\0';
}
