#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libxml/parser.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ballast.h"
#include "config.h"
#include "control.h"
#include "ctl-proto.h"
#include "cycle.h"
#include "d1-mirror.h"
#include "d1.h"
#include "daemon.h"
#include "db.h"
#include "evcurl.h"
#include "http.h"
#include "log.h"
#include "mail.h"
#include "monitor.h"
#include "outbox.h"
#include "ownfile.h"
#include "sdnotify.h"
#include "timeutil.h"
#include "xmalloc.h"

/* --once exit codes, the same as `syncctl trigger --wait` (documented in both --help texts). */
#define EXIT_RUN_COMPLETE 0
#define EXIT_RUN_FAILED 1
#define EXIT_USAGE 2
#define EXIT_RUN_PARTIAL 3
#define EXIT_RUN_CANCELLED 4
#define EXIT_CANNOT_START 5
#define EXIT_RUN_DEGRADED 10	/* the cycle completed, but something needs the operator (the run's error) */

/* The control commands every daemon has (a job adds its own: job->ctl_cmds). */
static const struct ctl_cmd *const common_cmds[] = {
	&ctl_cmd_status, &ctl_cmd_trigger, &ctl_cmd_cancel, &ctl_cmd_watch, NULL,
};

static void
usage(const struct job_def *job, FILE *fp)
{
	fprintf(fp,
	    "usage: %s [-fnv] [-c file] [--once]\n"
	    "%s\n\n"
	    "  -c FILE        configuration file (default %s)\n"
	    "  -f             stay in the foreground (as under systemd)\n"
	    "  -n             check the configuration, print \"configuration OK\" and exit\n"
	    "  --once         run one cycle (resuming an unfinished one) and exit with its status\n"
	    "  -v             more log output (debug)\n"
	    "  --help-config  print every configuration key of this daemon with its default\n"
	    "  -V, --version  print the version\n\n"
	    "Exit status with --once: 0 complete, 1 failed, 3 partial (records rejected), 4 cancelled or stopped,\n"
	    "5 cannot start (configuration, database, another instance), 10 degraded (the cycle completed but\n"
	    "something needs the operator: the run's error says what); 2 usage.\n"
	    "Signals: TERM/INT finish the current step, commit and exit 0; HUP reloads the configuration\n"
	    "between runs.\n",
	    job->daemon, job->description, CONFIG_DEFAULT_PATH);
}

void
daemon_config_sections(const struct job_def *job, struct cfg_section *own, const struct cfg_section *list[7])
{
	own->name = job->daemon;
	own->keys = cfg_job_common_keys;
	own->more = job->config_keys;
	list[0] = &cfg_paths;
	list[1] = &cfg_control;
	list[2] = &cfg_smtp;
	list[3] = &cfg_http;
	list[4] = &cfg_d1;
	list[5] = own;
	list[6] = NULL;
}

static char *
socket_path_for(const struct daemon *d)
{
	const char *own = config_str(d->cfg, d->section, "socket");

	return own != NULL ? xstrdup(own) : ctl_socket_path(d->cfg, d->job->daemon);
}

static void
db_paths(struct daemon *d)
{
	const char *state = config_str(d->cfg, "paths", "state_dir"), *v;

	free(d->ops_path);
	free(d->corpus_path);
	if ((v = config_str(d->cfg, "paths", "ops_db")) != NULL)
		d->ops_path = xstrdup(v);
	else
		xasprintf(&d->ops_path, "%s/ops.db", state);
	if ((v = config_str(d->cfg, "paths", "corpus_db")) != NULL)
		d->corpus_path = xstrdup(v);
	else
		xasprintf(&d->corpus_path, "%s/rtopacks.db", state);
}

/* --- databases ----------------------------------------------------------------------------------------------- */

static int
open_databases(struct daemon *d, char **cause)
{
	struct db *corpus;
	int busy = (int)config_ms(d->cfg, "paths", "busy_timeout");

	if (d->job->uses_corpus) {
		/* Migrate the corpus on a connection of its own, where it is "main". */
		if ((corpus = db_open(d->corpus_path, 0, busy, cause)) == NULL)
			return -1;
		if (db_migrate(corpus, corpus_migrations, cause) == -1) {
			db_close(corpus);
			return -1;
		}
		db_close(corpus);
	}
	if ((d->db = db_open(d->ops_path, 0, busy, cause)) == NULL)
		return -1;
	if (db_migrate(d->db, ops_migrations, cause) == -1)
		return -1;
	if (d->job->uses_corpus && db_attach(d->db, d->corpus_path, "corpus", cause) == -1)
		return -1;
	return 0;
}

static int
take_lock(struct daemon *d, char **cause)
{
	char *path, *lock_cause = NULL;

	xasprintf(&path, "%s/%s.lock", config_str(d->cfg, "paths", "state_dir"), d->job->daemon);
	/* The state directory is group-writable: a link or a file planted under this name is refused, not used. */
	if ((d->lock_fd = ownfile_open(path, O_RDWR, 0640, &lock_cause)) == -1) {
		xasprintf(cause, "the lock file: %s", lock_cause);
		free(lock_cause);
		free(path);
		return -1;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			xasprintf(cause, "another %s is already running (it holds %s); use `syncctl status %s`",
			    d->job->daemon, path, d->job->daemon);
		else
			xasprintf(cause, "cannot lock %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	return 0;
}

/* --- events -------------------------------------------------------------------------------------------------- */

static int
status_exit_code(const char *status)
{
	if (strcmp(status, "complete") == 0)
		return EXIT_RUN_COMPLETE;
	if (strcmp(status, "partial") == 0)
		return EXIT_RUN_PARTIAL;
	if (strcmp(status, "cancelled") == 0)
		return EXIT_RUN_CANCELLED;
	if (strcmp(status, "degraded") == 0)
		return EXIT_RUN_DEGRADED;
	return EXIT_RUN_FAILED;
}

static void reload_config(struct daemon *);

/*
 * Fill in what the engine sees of the daemon (cycle.h: struct cycle_host): before cycle_new(), and again after a
 * reload (the configuration, the paths' copies and the job's state may have been replaced).
 */
static void
engine_host(struct daemon *d)
{
	struct cycle_host *h = &d->engine;

	h->daemon = d;
	h->job = d->job;
	h->section = d->section;
	h->loop = d->loop;
	h->cfg = d->cfg;
	h->db = d->db;
	h->ops_path = d->ops_path;
	h->corpus_path = d->corpus_path;
	h->outbox = d->outbox;
	h->job_ctx = d->job_ctx;
	h->stopping = &d->stopping;
}

static void
drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon *d = w->data;

	/* --once: let a queued failure mail go out before exiting, but never wait for ever. */
	if ((outbox_busy(d->outbox) == 0 && !d1_mirror_busy(d->mirror)) ||
	    ev_now(loop) - d->drain_started > d->drain_limit)
		ev_break(loop, EVBREAK_ALL);
}

static void
on_cycle_event(const char *event, const cJSON *data, void *arg)
{
	struct daemon *d = arg;
	const cJSON *status;

	if (d->control != NULL)
		control_broadcast(d->control, event, data);
	/* The observatory in D1: the run starting, each phase ending, the run ending. */
	if (strcmp(event, "run_start") == 0 || strcmp(event, "phase") == 0 || strcmp(event, "run_end") == 0)
		d1_mirror_kick(d->mirror, strcmp(event, "run_end") == 0);
	if (strcmp(event, "progress") == 0 || strcmp(event, "phase") == 0 || strcmp(event, "run_start") == 0) {
		double now = mono_now();

		if (now - d->last_status_notify >= 1.0 || strcmp(event, "progress") != 0) {
			d->last_status_notify = now;
			sd_notifyf("STATUS=%s: %s (%d/%d), %.0f records in, %.0f out",
			    cJSON_GetObjectItem(data, "run_id")->valuestring,
			    cJSON_GetObjectItem(data, "phase")->valuestring,
			    cJSON_GetObjectItem(data, "phase_index")->valueint,
			    cJSON_GetObjectItem(data, "phases")->valueint,
			    cJSON_GetObjectItem(data, "records_in")->valuedouble,
			    cJSON_GetObjectItem(data, "records_out")->valuedouble);
		}
		return;
	}
	if (strcmp(event, "run_end") != 0)
		return;
	status = cJSON_GetObjectItem(data, "status");
	sd_notifyf("STATUS=idle; last run %s: %s", cJSON_GetObjectItem(data, "run_id")->valuestring,
	    status ? status->valuestring : "?");
	monitor_run_end(d);
	if (d->once) {
		d->exit_code = status_exit_code(status ? status->valuestring : "failed");
		d->drain_started = ev_now(d->loop);
		d->drain_limit = 2.0 * (double)config_ms(d->cfg, "smtp", "timeout") / 1000.0;
		ev_timer_init(&d->drain, drain_cb, 0.0, 0.2);
		d->drain.data = d;
		ev_timer_start(d->loop, &d->drain);
		return;
	}
	if (d->stopping) {
		ev_break(d->loop, EVBREAK_ALL);
		return;
	}
	if (d->reload_pending)
		reload_config(d);
}

/* --- signals and timers -------------------------------------------------------------------------------------- */

static void
stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct daemon *d = w->data;

	if (d->stopping) {
		log_info("signal %d again: stopping now", w->signum);
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	log_info("signal %d: stopping", w->signum);
	d->stopping = true;
	sd_notify_msg("STOPPING=1");
	if (cycle_running(d->cycle)) {
		cycle_stop(d->cycle);
		if (d->once)
			d->exit_code = EXIT_RUN_CANCELLED;
	} else
		ev_break(loop, EVBREAK_ALL);
}

/*
 * -n: every check of the configuration that start-up makes, secrets included, so that "configuration OK" means
 * the daemon will start (as far as its configuration goes: the databases and the socket are not opened).  The
 * mailer is made and dropped (it reads the SMTP password), then the job checks its own section.
 */
static int
check_startup(struct daemon *d, char **cause)
{
	struct mailer *m;

	struct d1_settings d1s;

	if ((m = mailer_new(NULL, d->cfg, cause)) == NULL)
		return -1;
	mailer_free(m);
	/* [d1]: off when account_id is unset; else every id, table name and the token's shape. */
	if (d1_settings_load(&d1s, d->cfg, d->job->sync_type, 0, cause) == -1)
		return -1;
	d1_settings_clear(&d1s);
	if (d->job->check != NULL && d->job->check(d->cfg, d->section, cause) == -1)
		return -1;
	return 0;
}

static void
reload_config(struct daemon *d)
{
	struct cfg_section own;
	const struct cfg_section *list[7];
	struct config *cfg;
	struct mailer *m;
	char *cause = NULL, *sock;

	d->reload_pending = false;
	daemon_config_sections(d->job, &own, list);
	if ((cfg = config_load(d->config_path, list, &cause)) == NULL) {
		log_warnx("reload: the new configuration is not valid, keeping the old one:\n%s", cause);
		free(cause);
		return;
	}
	if ((m = mailer_new(d->ec, cfg, &cause)) == NULL) {
		log_warnx("reload: %s; keeping the old configuration", cause);
		free(cause);
		config_free(cfg);
		return;
	}
	sock = NULL;
	{
		struct config *old = d->cfg;
		char *old_ops = xstrdup(d->ops_path), *old_corpus = xstrdup(d->corpus_path);

		d->cfg = cfg;
		db_paths(d);
		sock = socket_path_for(d);
		if (strcmp(old_ops, d->ops_path) != 0 || strcmp(old_corpus, d->corpus_path) != 0 ||
		    strcmp(sock, d->socket_path) != 0)
			log_warnx("reload: database paths and the socket only change on restart");
		free(d->ops_path);
		free(d->corpus_path);
		d->ops_path = old_ops;
		d->corpus_path = old_corpus;
		config_free(old);
	}
	free(sock);
	mailer_free(d->mailer);
	d->mailer = m;
	outbox_reconfigure(d->outbox, m, d->cfg);
	engine_host(d);
	cycle_reconfigure(d->cycle);
	if (d->job->reload != NULL && d->job->reload(d, &cause) == -1) {
		log_warnx("reload: %s", cause);
		free(cause);
	}
	engine_host(d);
	log_info("configuration reloaded from %s", d->config_path);
}

static void
hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct daemon *d = w->data;

	if (cycle_running(d->cycle)) {
		log_info("SIGHUP: the configuration is reloaded when the current run ends");
		d->reload_pending = true;
		return;
	}
	reload_config(d);
}

static void
watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	sd_notify_msg("WATCHDOG=1");
}

static void
housekeeping_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon *d = w->data;

	outbox_kick(d->outbox, false);
	d1_mirror_kick(d->mirror, true);
	monitor_housekeeping(d);
	if (d->job->housekeeping != NULL)
		d->job->housekeeping(d);
	d->housekeeping_passes++;
}

static void
tx_check_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct daemon *d = w->data;

	cycle_check_tx(d->cycle);
}

/* --- main ---------------------------------------------------------------------------------------------------- */

static void
become_daemon(void)
{
	int fd;

	switch (fork()) {
	case -1:
		fatal("fork");
	case 0:
		break;
	default:
		_exit(0);
	}
	if (setsid() == -1)
		fatal("setsid");
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	if (chdir("/") == -1)
		fatal("chdir /");
}

/* The daemon's one D1 client (daemon.h), when [d1] is set; the job and the mirror use it. */
static int
d1_open(struct daemon *d, char **cause)
{
	struct d1_settings s;

	if (d1_settings_load(&s, d->cfg, d->job->sync_type, d->job->d1_budget, cause) == -1)
		return -1;
	if (s.enabled)
		d->d1 = d1_new(d->ec, d->loop, &s);
	d1_settings_clear(&s);
	return 0;
}

/* Undo whatever start-up got to, in reverse order: the same for a clean stop and a failed start. */
static void
teardown(struct daemon *d)
{
	if (d->control != NULL)
		control_free(d->control);
	cycle_free(d->cycle);
	monitor_free(d);
	if (d->job->fini != NULL && d->job_ctx != NULL)
		d->job->fini(d);
	d1_mirror_free(d->mirror);
	d1_free(d->d1);		/* after its users, which cancelled their own queries */
	outbox_free(d->outbox);
	mailer_free(d->mailer);
	evcurl_free(d->ec);
	db_close(d->db);
	if (d->loop != NULL)
		ev_loop_destroy(d->loop);
	config_free(d->cfg);
	free(d->config_path);
	free(d->ops_path);
	free(d->corpus_path);
	free(d->socket_path);
	if (d->lock_fd != -1)
		close(d->lock_fd);
	secret_forget_all();
	xmlCleanupParser();
	curl_global_cleanup();
}

int
daemon_main(int argc, char **argv, const struct job_def *job)
{
	static const struct option longopts[] = {
		{ "once", no_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "help-config", no_argument, NULL, 'H' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct cfg_section own;
	const struct cfg_section *list[7];
	struct daemon dd, *d = &dd;
	bool foreground = false, check_only = false, resume = false;
	char *cause = NULL, run_id[128];
	int ch, verbose = 0;
	uint64_t wd;

	memset(d, 0, sizeof *d);
	d->job = job;
	d->section = job->daemon;
	d->lock_fd = -1;
	d->config_path = xstrdup(getenv("RTOPACKS_SYNC_CONFIG") ? getenv("RTOPACKS_SYNC_CONFIG") : CONFIG_DEFAULT_PATH);
	log_init(job->daemon, 0);
	daemon_config_sections(job, &own, list);

	while ((ch = getopt_long(argc, argv, "c:fnvhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			free(d->config_path);
			d->config_path = xstrdup(optarg);
			break;
		case 'f':
			foreground = true;
			break;
		case 'n':
			check_only = true;
			break;
		case 'o':
			d->once = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			usage(job, stdout);
			free(d->config_path);
			return 0;
		case 'H':
			config_print_sample(list);
			free(d->config_path);
			return 0;
		case 'V':
			printf("%s %s\n", job->daemon, RTOPACKS_VERSION);
			free(d->config_path);
			return 0;
		default:
			usage(job, stderr);
			free(d->config_path);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(job, stderr);
		free(d->config_path);
		return EXIT_USAGE;
	}
	log_setverbose(verbose);
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());

	if ((d->cfg = config_load(d->config_path, list, &cause)) == NULL) {
		fprintf(stderr, "%s\n", cause);
		fprintf(stderr, "%s: configuration not valid\n", job->daemon);
		free(cause);
		free(d->config_path);
		return EXIT_CANNOT_START;
	}
	if (check_only) {
		int rc = check_startup(d, &cause);

		if (rc == -1) {
			fprintf(stderr, "%s\n", cause);
			fprintf(stderr, "%s: configuration not valid\n", job->daemon);
			free(cause);
		} else
			printf("configuration OK\n");
		config_free(d->cfg);
		free(d->config_path);
		return rc == -1 ? EXIT_CANNOT_START : 0;
	}
	if (!foreground && !d->once)
		become_daemon();

	curl_global_init(CURL_GLOBAL_DEFAULT);
	xmlInitParser();
	d->loop = ev_default_loop(EVFLAG_AUTO);
	db_paths(d);
	http_set_spool_dir(config_str(d->cfg, "paths", "spool_dir"));
	if (mkdir(config_str(d->cfg, "paths", "state_dir"), 0750) == -1 && errno != EEXIST)
		log_warn("cannot create %s", config_str(d->cfg, "paths", "state_dir"));
	if (take_lock(d, &cause) == -1)
		goto cannot_start;
	if (open_databases(d, &cause) == -1)
		goto cannot_start;
	ballast_create(config_str(d->cfg, "paths", "state_dir"), job->daemon);
	d->ec = evcurl_new(d->loop);
	if ((d->mailer = mailer_new(d->ec, d->cfg, &cause)) == NULL)
		goto cannot_start;
	if (!mailer_enabled(d->mailer))
		log_warnx("[smtp] url is not set: completion and failure mails are queued in ops.db but not sent");
	d->outbox = outbox_new(d->loop, d->db, d->mailer, d->cfg, job->sync_type);
	if (d1_open(d, &cause) == -1)
		goto cannot_start;
	if (job->init != NULL && job->init(d, &cause) == -1)
		goto cannot_start;
	engine_host(d);
	if ((d->cycle = cycle_new(&d->engine, &cause)) == NULL)
		goto cannot_start;
	cycle_set_listener(d->cycle, on_cycle_event, d);
	/* After cycle_new, which makes the cursor table the mirror watches. */
	if ((d->mirror = d1_mirror_new(d->loop, d->d1, d->db, d->cfg, job->sync_type, &cause)) == NULL)
		goto cannot_start;
	if (cycle_recover(d->cycle, &resume, &cause) == -1)
		goto cannot_start;
	d->socket_path = socket_path_for(d);
	if ((d->control = control_new(d, d->socket_path, common_cmds, &cause)) == NULL)
		goto cannot_start;

	signal(SIGPIPE, SIG_IGN);
	ev_signal_init(&d->sigterm, stop_cb, SIGTERM);
	ev_signal_init(&d->sigint, stop_cb, SIGINT);
	ev_signal_init(&d->sighup, hup_cb, SIGHUP);
	d->sigterm.data = d->sigint.data = d->sighup.data = d;
	ev_signal_start(d->loop, &d->sigterm);
	ev_signal_start(d->loop, &d->sigint);
	ev_signal_start(d->loop, &d->sighup);
	if ((wd = sd_watchdog_usec()) > 0) {
		ev_timer_init(&d->watchdog, watchdog_cb, 0.0, (double)wd / 2e6);
		ev_timer_start(d->loop, &d->watchdog);
	}
	ev_timer_init(&d->housekeeping, housekeeping_cb, 1.0,
	    (double)config_ms(d->cfg, d->section, "housekeeping_interval") / 1000.0);
	d->housekeeping.data = d;
	ev_timer_start(d->loop, &d->housekeeping);
	ev_prepare_init(&d->tx_check, tx_check_cb);
	d->tx_check.data = d;
	ev_prepare_start(d->loop, &d->tx_check);

	log_info("%s %s started (config %s, ops %s%s%s, socket %s)", job->daemon, RTOPACKS_VERSION, d->config_path,
	    d->ops_path, job->uses_corpus ? ", corpus " : "", job->uses_corpus ? d->corpus_path : "",
	    d->socket_path);
	monitor_start(d);
	sd_notify_msg("READY=1\nSTATUS=idle");
	/* Mail queued by an earlier run (a mail server that was down) is tried now, --once included. */
	outbox_kick(d->outbox, true);

	if (resume || d->once) {
		if (resume)
			log_info("the last cycle did not finish: resuming it");
		if (cycle_trigger(d->cycle, "manual", d->once ? "--once" : "startup", false, run_id, sizeof run_id,
		    &cause) == TRIGGER_ERROR) {
			log_warnx("cannot start the run: %s", cause);
			xfree(&cause);
			if (d->once) {
				d->exit_code = EXIT_RUN_FAILED;
				goto out;
			}
		}
	}
	ev_run(d->loop, 0);
out:
	sd_notify_msg("STOPPING=1");
	log_info("%s stopped", job->daemon);
	teardown(d);
	return d->once ? d->exit_code : 0;

cannot_start:
	log_warnx("cannot start: %s", cause);
	free(cause);
	teardown(d);
	return EXIT_CANNOT_START;
}
