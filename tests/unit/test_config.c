/* The config parser: values, defaults, and every error as FILE:LINE: [section] key: what is wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "log.h"

static const struct cfg_key own_keys[] = {
	{ "url", CFG_URL, NULL, 0, 0, NULL, CFG_REQUIRED, "upstream" },
	{ "page_size", CFG_INT, "100", 1, 1000, NULL, 0, "page" },
	{ "mode", CFG_ENUM, "soap", 0, 0, "soap|rest", 0, "source" },
	{ "password_file", CFG_PATH, NULL, 0, 0, NULL, 0, "secret" },
	{ NULL, 0, NULL, 0, 0, NULL, 0, NULL },
};

static char dir[64];

static const char *
write_file(const char *name, const char *text, mode_t mode)
{
	static char path[256];
	FILE *fp;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	fp = fopen(path, "w");
	fputs(text, fp);
	fclose(fp);
	chmod(path, mode);
	return path;
}

int
main(void)
{
	struct cfg_section own = { "tga-sync", cfg_job_common_keys, own_keys };
	const struct cfg_section *sections[] = { &cfg_paths, &cfg_control, &cfg_smtp, &cfg_http, &own, NULL };
	struct config *cfg;
	char *cause = NULL, *secret, path[256], where[512];

	log_init("test", 0);
	snprintf(dir, sizeof dir, "/tmp/rs-config-%d", (int)getpid());
	mkdir(dir, 0700);

	/* A good file: values, defaults, [http] fall-backs, another daemon's section left alone. */
	snprintf(path, sizeof path, "%s", write_file("good.conf",
	    "# comment\n[paths]\nstate_dir = /var/lib/x\n\n[tga-sync]\nurl = https://ws.example/x\n"
	    "page_size = 500 ; inline comment\nretries = 7\nlow_speed_time = 90s\n\n[http]\nretries = 2\n"
	    "[cricos-sync]\nanything = goes here\n", 0600));
	cfg = config_load(path, sections, &cause);
	CHECK(cfg != NULL);
	if (cfg == NULL)
		fprintf(stderr, "%s\n", cause);
	else {
		CHECK_STR(config_str(cfg, "paths", "state_dir"), "/var/lib/x");
		CHECK(config_int(cfg, "tga-sync", "page_size") == 500);
		CHECK_STR(config_str(cfg, "tga-sync", "mode"), "soap");
		CHECK(config_job_int(cfg, "tga-sync", "retries") == 7);
		CHECK(config_job_ms(cfg, "tga-sync", "low_speed_time") == 90000);
		CHECK(config_job_ms(cfg, "tga-sync", "connect_timeout") == 15000);	/* [http] default */
		CHECK(config_int(cfg, "tga-sync", "step_retries") == 3);
		CHECK(!config_isset(cfg, "tga-sync", "password_file"));
		CHECK(strstr(config_where(cfg, "tga-sync", "page_size", where, sizeof where), "good.conf:7:") != NULL);
		config_free(cfg);
	}

	/* Every error, all at once, each with its line. */
	snprintf(path, sizeof path, "%s", write_file("bad.conf",
	    "[tga-sync]\npage_size = many\npage_size = 10\nmode = ftp\nunknown_key = 1\nlow_speed_time = 5 parsecs\n"
	    "[nonsense]\na = b\nstray line without equals\n[paths]\nstate_dir = relative/dir\n", 0600));
	cfg = config_load(path, sections, &cause);
	CHECK(cfg == NULL);
	if (cause != NULL) {
		CHECK(strstr(cause, "bad.conf:2: [tga-sync] page_size: expected an integer, got 'many'") != NULL);
		CHECK(strstr(cause, "bad.conf:3: [tga-sync] page_size: set twice (first on line 2)") != NULL);
		CHECK(strstr(cause, "bad.conf:4: [tga-sync] mode: expected one of soap|rest, got 'ftp'") != NULL);
		CHECK(strstr(cause, "bad.conf:5: [tga-sync] unknown_key: unknown key") != NULL);
		CHECK(strstr(cause, "bad.conf:6: [tga-sync] low_speed_time: expected a duration") != NULL);
		CHECK(strstr(cause, "bad.conf:8: [nonsense]: unknown section") != NULL);
		CHECK(strstr(cause, "bad.conf:9: syntax error") != NULL);
		CHECK(strstr(cause, "bad.conf:11: [paths] state_dir: expected an absolute path") != NULL);
		CHECK(strstr(cause, "[tga-sync] url: required but not set") != NULL);
		free(cause);
		cause = NULL;
	}

	/* Out of range and a too-long line. */
	{
		char big[6000];

		memset(big, 'x', sizeof big);
		{
			static const char head[] = "[tga-sync]\nurl = http://127.0.0.1/\npage_size = 5000\nx = ";

			memcpy(big, head, sizeof head - 1);
		}
		big[sizeof big - 2] = '\n';
		big[sizeof big - 1] = '\0';
		snprintf(path, sizeof path, "%s", write_file("long.conf", big, 0600));
		cfg = config_load(path, sections, &cause);
		CHECK(cfg == NULL);
		CHECK(cause && strstr(cause, "long.conf:3: [tga-sync] page_size: 5000 is out of range (1 to 1000)"));
		CHECK(cause && strstr(cause, "long.conf:4: line longer than"));
		free(cause);
		cause = NULL;
	}

	/* Long values are fine up to the limit (inih's default line buffer is only 200 bytes). */
	{
		char line[1200];

		memset(line, 'a', sizeof line);
		memcpy(line, "[paths]\nstate_dir = /", 21);
		memcpy(line + sizeof line - 2, "\n", 2);
		snprintf(path, sizeof path, "%s", write_file("longval.conf", line, 0600));
		cfg = config_load(path, sections, &cause);
		CHECK(cfg == NULL);	/* [tga-sync] url is required; the long line itself must be accepted */
		CHECK(cause && strstr(cause, "longer than") == NULL);
		CHECK(cause && strstr(cause, "[tga-sync] url: required but not set"));
		free(cause);
		cause = NULL;
	}

	/* Every URL key goes through the URL policy (urlpolicy.h), and mail without TLS only to a loopback relay. */
	snprintf(path, sizeof path, "%s", write_file("urls.conf",
	    "[tga-sync]\nurl = http://127.0.0.1@192.0.2.2:8080/x\n[smtp]\nurl = smtp://mail.example:25\ntls = none\n",
	    0600));
	cfg = config_load(path, sections, &cause);
	CHECK(cfg == NULL);
	CHECK(cause && strstr(cause, "urls.conf:2: [tga-sync] url: the URL holds a user name or password"));
	CHECK(cause && strstr(cause, "urls.conf:5: [smtp] tls: none sends the mails (and the SMTP password) in clear"));
	free(cause);
	cause = NULL;
	snprintf(path, sizeof path, "%s", write_file("urls-ok.conf",
	    "[tga-sync]\nurl = http://127.0.0.1:8080/x\n[smtp]\nurl = smtp://127.0.0.1:25\ntls = none\n", 0600));
	cfg = config_load(path, sections, &cause);
	CHECK(cfg != NULL);
	config_free(cfg);
	snprintf(path, sizeof path, "%s", write_file("urls-tls.conf",
	    "[tga-sync]\nurl = https://ws.example/x\n[smtp]\nurl = smtp://mail.example:587\n", 0600));
	cfg = config_load(path, sections, &cause);
	CHECK(cfg != NULL);
	config_free(cfg);

	/* Missing file. */
	CHECK(config_load("/nonexistent/sync.conf", sections, &cause) == NULL);
	CHECK(cause && strstr(cause, "/nonexistent/sync.conf: cannot open"));
	free(cause);
	cause = NULL;

	/* Secrets: from the file named in the config, or from $CREDENTIALS_DIRECTORY first. */
	write_file("pw", "s3cret-from-file\n", 0600);
	snprintf(where, sizeof where, "[tga-sync]\nurl = http://127.0.0.1/\npassword_file = %s/pw\n", dir);
	snprintf(path, sizeof path, "%s", write_file("secret.conf", where, 0600));
	cfg = config_load(path, sections, &cause);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		unsetenv("CREDENTIALS_DIRECTORY");
		secret = secret_load(cfg, "tga-sync", "password_file", "tga-password", &cause);
		CHECK_STR(secret, "s3cret-from-file");
		{
			char *r = redact_dup("the password is s3cret-from-file");
			CHECK_STR(r, "the password is [REDACTED]");
			free(r);
		}
		secret_free(secret);
		mkdir(strcat(strcpy(where, dir), "/creds"), 0700);
		write_file("creds/tga-password", "s3cret-from-systemd", 0400);
		setenv("CREDENTIALS_DIRECTORY", where, 1);
		secret = secret_load(cfg, "tga-sync", "password_file", "tga-password", &cause);
		CHECK_STR(secret, "s3cret-from-systemd");
		secret_free(secret);
		unsetenv("CREDENTIALS_DIRECTORY");
		write_file("pw", "", 0600);
		CHECK(secret_load(cfg, "tga-sync", "password_file", "tga-password", &cause) == NULL);
		CHECK(cause && strstr(cause, "is empty"));
		free(cause);
		cause = NULL;
		config_free(cfg);
	}
	snprintf(path, sizeof path, "%s", write_file("nosecret.conf", "[tga-sync]\nurl = http://127.0.0.1/\n", 0600));
	cfg = config_load(path, sections, &cause);
	CHECK(cfg != NULL && secret_load(cfg, "tga-sync", "password_file", "tga-password", &cause) == NULL);
	CHECK(cause && strstr(cause, "password_file is not set and there is no systemd credential 'tga-password'"));
	free(cause);
	config_free(cfg);
	CHECK_DONE();
}
