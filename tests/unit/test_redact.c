/* Secrets registered with the log are replaced in every text that leaves the process. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "check.h"
#include "log.h"

int
main(void)
{
	char *s, buf[128];

	log_init("test", 0);
	s = redact_dup("nothing to hide");
	CHECK_STR(s, "nothing to hide");
	free(s);

	secret_register("hunter2-secret");
	secret_register("abc");			/* too short to register: ordinary words would vanish */
	secret_register("tok-ABCDEFGHIJKLMNOP");
	s = redact_dup("password=hunter2-secret token=tok-ABCDEFGHIJKLMNOP again hunter2-secret abc");
	CHECK_STR(s, "password=[REDACTED] token=[REDACTED] again [REDACTED] abc");
	free(s);
	/* Many short secrets in a short string: the worst case of growth. */
	secret_register("abcd");
	s = redact_dup("abcdabcdabcdabcd");
	CHECK_STR(s, "[REDACTED][REDACTED][REDACTED][REDACTED]");
	free(s);
	CHECK(redact_dup(NULL) == NULL);

	strcpy(buf, "x hunter2-secret y");
	redact(buf);
	CHECK_STR(buf, "x ************** y");

	/* A secret that straddles the end of a log line's buffer is redacted before the line is cut. */
	{
		char path[] = "/tmp/rs-redact-XXXXXX", line[8192], pad[4090];
		FILE *fp;
		int fd = mkstemp(path), saved = dup(2);

		memset(pad, 'x', sizeof pad - 1);
		pad[sizeof pad - 1] = '\0';
		dup2(fd, 2);
		log_warnx("%s hunter2-secret tail", pad);
		fflush(stderr);
		dup2(saved, 2);
		fp = fopen(path, "r");
		CHECK(fgets(line, sizeof line, fp) != NULL);
		CHECK(strstr(line, "hunt") == NULL);	/* not even the first letters */
		CHECK(strstr(line, "...") != NULL);
		fclose(fp);
		close(fd);
		unlink(path);
	}

	secret_forget_all();
	s = redact_dup("hunter2-secret");
	CHECK_STR(s, "hunter2-secret");
	free(s);
	CHECK_DONE();
}
