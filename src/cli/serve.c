/* The daemon: bind, drop privileges, run the loop, stop cleanly. */
#include "cli/serve.h"

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/sasl.h"
#include "auth/userdb.h"
#include "cli/cli.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/sandbox.h"
#include "core/timer.h"
#include "core/xmalloc.h"
#include "imap/imap.h"
#include "net/conn.h"
#include "net/tls.h"
#include "odmr/odmr.h"
#include "queue/dns.h"
#include "queue/journal.h"
#include "queue/queue.h"
#include "queue/scheduler.h"
#include "queue/spool.h"
#include "pop3/pop3.h"
#include "smtp/smtp.h"
#include "store/mime.h"

#define SERVE_WORKERS	4
#define SHUTDOWN_GRACE_MS 5000

static struct {
	struct event_base *base;
	struct config *cfg;
	struct config *orig;	/* the caller's */
	struct config **old;	/* configs replaced by SIGHUP, freed at exit */
	size_t nold;
	struct smtp_server *smtp;
	struct pop3_server *pop3;
	struct imap_server *imap;
	struct odmr_server *odmr;
	struct dns_resolver *dns;
	struct userdb *db;
	struct event *sig_term, *sig_int, *sig_hup, *stop_timer;
	unsigned stop_ticks;
	bool stopping;
} srv;

int
check_config_main(const struct config *cfg)
{
	char *err = NULL;
	if (config_validate(cfg, &err) < 0) {
		fprintf(stderr, "correo: %s\n", err);
		free(err);
		return 1;
	}
	printf("correo: configuration OK (%s)\n",
	    cfg->path ? cfg->path : "embedded default");
	return 0;
}

static void
serve_on_stop_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	srv.stop_ticks++;
	/* Let deliveries in flight finish and their replies go out. */
	if ((pool_pending() == 0 && journal_pending() == 0 &&
	    srv.stop_ticks > 1) ||
	    srv.stop_ticks * 50 > SHUTDOWN_GRACE_MS)
		event_base_loopexit(srv.base, NULL);
}

static void
serve_on_stop(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	if (srv.stopping)
		return;
	srv.stopping = true;
	log_info("event=shutdown signal=%d connections=%u", (int)sig,
	    net_connection_count());
	net_close_listeners();
	struct timeval tv = { 0, 50000 };
	srv.stop_timer = event_new(srv.base, -1, EV_PERSIST,
	    serve_on_stop_timer, NULL);
	event_add(srv.stop_timer, &tv);
}

static void
serve_on_hup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	if (srv.cfg->path == NULL) {
		char *err = NULL;
		if (tls_load(srv.cfg, &err) < 0) {
			log_warnx("event=tls-reload result=failed error=\"%s\"",
			    err);
			free(err);
		}
		log_info("event=reload result=tls-only reason=embedded-default");
		return;
	}
	struct config *next = x_calloc(1, sizeof(*next));
	char *err = NULL;
	config_init_defaults(next);
	if (config_load(next, srv.cfg->path, &err) < 0 ||
	    config_validate(next, &err) < 0) {
		log_warnx("event=reload result=failed error=\"%s\"", err);
		free(err);
		config_free(next);
		free(next);
		return;
	}
	/* Listeners and data_dir stay as they were; limits, hostname and
	 * timeouts apply to new sessions. Old sessions keep their config. */
	if (srv.cfg != srv.orig) {
		srv.old = x_reallocarray(srv.old, srv.nold + 1,
		    sizeof(*srv.old));
		srv.old[srv.nold++] = srv.cfg;
	}
	if (tls_load(next, &err) < 0) {
		log_warnx("event=tls-reload result=failed error=\"%s\"", err);
		free(err);
	}
	srv.cfg = next;
	smtp_server_set_config(srv.smtp, next);
	pop3_server_set_config(srv.pop3, next);
	imap_server_set_config(srv.imap, next);
	odmr_server_set_config(srv.odmr, next);
	scheduler_set_config(next);
	net_init(srv.base, next->max_connections, next->max_connections_per_ip);
	log_info("event=reload result=ok path=%s", next->path);
}

static uid_t chown_uid;
static gid_t chown_gid;

static int
serve_chown_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (lchown(path, chown_uid, chown_gid) < 0)
		log_warn("chown %s", path);
	return 0;
}

/* Drops root to [server] user; data_dir becomes that user's. */
static int
serve_drop_privileges(const struct config *cfg)
{
	if (cfg->user[0] == '\0') {
		if (geteuid() == 0)
			log_warnx("event=warning reason=\"running as root; set "
			    "[server] user\"");
		return 0;
	}
	struct passwd *pw = getpwnam(cfg->user);
	if (pw == NULL) {
		log_warnx("unknown [server] user \"%s\"", cfg->user);
		return -1;
	}
	if (geteuid() != 0) {
		if (geteuid() == pw->pw_uid)
			return 0;
		log_warnx("cannot switch to user %s: not root", cfg->user);
		return -1;
	}
	chown_uid = pw->pw_uid;
	chown_gid = pw->pw_gid;
	nftw(cfg->data_dir, serve_chown_one, 32, FTW_PHYS);
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		log_warn("cannot drop privileges to %s", cfg->user);
		return -1;
	}
	if (setuid(0) == 0)
		fatalx("privileges not dropped");
	log_info("event=privileges-dropped user=%s uid=%ld", cfg->user,
	    (long)pw->pw_uid);
	return 0;
}

static int
serve_listen(const struct config *cfg)
{
	char *err = NULL;
	for (int svc = 0; svc < SVC_COUNT; svc++) {
		if (cfg->listen[svc][0] == '\0')
			continue;
		conn_accept_fn fn = NULL;
		void *arg = NULL;
		switch ((enum service)svc) {
		case SVC_SMTP:
		case SVC_SUBMISSION:
		case SVC_SUBMISSIONS:
			fn = smtp_accept;
			arg = srv.smtp;
			break;
		case SVC_POP3:
		case SVC_POP3S:
			fn = pop3_accept;
			arg = srv.pop3;
			break;
		case SVC_IMAP:
		case SVC_IMAPS:
			fn = imap_accept;
			arg = srv.imap;
			break;
		case SVC_ODMR:
			fn = odmr_accept;
			arg = srv.odmr;
			break;
		default:
			break;
		}
		if (fn == NULL) {
			log_info("event=listener-unavailable service=%s "
			    "reason=\"not built yet\"",
			    service_name((enum service)svc));
			continue;
		}
		if (net_listen((enum service)svc, cfg->listen[svc], fn, arg,
		    &err) < 0) {
			log_warnx("%s", err);
			free(err);
			return -1;
		}
	}
	return 0;
}

static int
serve_prepare(struct config *cfg)
{
	char *err = NULL;

	if (config_validate(cfg, &err) < 0) {
		fprintf(stderr, "correo: %s\n", err);
		free(err);
		return -1;
	}
	if (fs_mkdir_p(cfg->data_dir, 0700) < 0) {
		fprintf(stderr, "correo: %s: %s\n", cfg->data_dir,
		    strerror(errno));
		return -1;
	}
	if (cfg->embedded && cli_ensure_demo_user(cfg) < 0)
		return -1;
	if (tls_load(cfg, &err) < 0) {
		fprintf(stderr, "correo: tls: %s\n", err);
		free(err);
		return -1;
	}
	if (spool_init(cfg->data_dir) < 0) {
		fprintf(stderr, "correo: %s/queue: %s\n", cfg->data_dir,
		    strerror(errno));
		return -1;
	}
	if (queue_init(cfg->data_dir) < 0) {
		fprintf(stderr, "correo: %s/queue: %s\n", cfg->data_dir,
		    strerror(errno));
		return -1;
	}
	int orphans = spool_clean_tmp(cfg->data_dir) +
	    queue_clean_orphans(cfg->data_dir);
	if (orphans > 0)
		log_info("event=spool-cleaned removed=%d reason=\"not "
		    "acknowledged before a crash\"", orphans);
	return 0;
}

static void
serve_cleanup(void)
{
	scheduler_stop();
	journal_stop();
	pool_shutdown();
	dns_resolver_free(srv.dns);
	srv.dns = NULL;
	net_close_all();
	if (srv.smtp)
		smtp_server_free(srv.smtp);
	if (srv.pop3)
		pop3_server_free(srv.pop3);
	if (srv.imap)
		imap_server_free(srv.imap);
	if (srv.odmr)
		odmr_server_free(srv.odmr);
	if (srv.db)
		userdb_close(srv.db);
	event_free(srv.sig_term);
	event_free(srv.sig_int);
	event_free(srv.sig_hup);
	if (srv.stop_timer)
		event_free(srv.stop_timer);
	event_base_free(srv.base);
	tls_free();
	sasl_deinit();
	for (size_t i = 0; i < srv.nold; i++) {
		config_free(srv.old[i]);
		free(srv.old[i]);
	}
	free(srv.old);
	if (srv.cfg != srv.orig) {
		config_free(srv.cfg);
		free(srv.cfg);
	}
	memset(&srv, 0, sizeof(srv));
}

/* After the privileges are dropped and the sandbox is on (a segment is
 * the server's own data), before anything is served: what a crash left
 * in the delivery journal goes back into the Maildirs. 0 when the
 * journal can be used. */
static int
serve_replay_journal(const struct config *cfg)
{
	struct journal_replay_stats js;

	if (journal_replay(cfg->data_dir, &js) < 0) {
		log_warn("event=journal-replay-failed restored=%u saved=%u "
		    "failed=%u reason=\"segments kept for the next start; "
		    "deliveries take the fsync path\"", js.restored, js.saved,
		    js.failed);
		return -1;
	}
	if (js.records > 0)
		log_info("event=journal-replayed segments=%u records=%u "
		    "restored=%u saved=%u", js.segments, js.records,
		    js.restored, js.saved);
	return 0;
}

/* The resolver (its own thread, started after the privilege drop) and
 * the outbound scheduler. */
static int
serve_start_delivery(const struct config *cfg)
{
	const char *err = NULL;
	struct dns_config dc = {
		.resolver = cfg->resolver,
		.trust_anchor = cfg->dnssec_trust_anchor[0] ?
		    cfg->dnssec_trust_anchor : NULL,
		.timeout_ms = 0,
	};

	srv.dns = dns_resolver_new(srv.base, &dc, &err);
	if (srv.dns == NULL) {
		log_warnx("event=resolver error=\"%s\"", err ? err : "?");
		return -1;
	}
	return scheduler_start(cfg, srv.db, srv.dns);
}

int
serve_main(struct config *cfg, int verbose)
{
	char *err = NULL;

	(void)verbose;
	if (serve_prepare(cfg) < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	srv.cfg = srv.orig = cfg;
	srv.base = event_base_new();
	if (srv.base == NULL)
		fatalx("event_base_new failed");
	srv.db = userdb_open(cfg->data_dir, &err);
	if (srv.db == NULL) {
		fprintf(stderr, "correo: %s\n", err);
		free(err);
		event_base_free(srv.base);
		return 1;
	}
	timer_set_base(srv.base);
	if (sasl_init() < 0) {
		fprintf(stderr, "correo: cannot start GNU SASL\n");
		userdb_close(srv.db);
		event_base_free(srv.base);
		return 1;
	}
	srv.smtp = smtp_server_new(cfg, srv.db);
	srv.pop3 = pop3_server_new(cfg, srv.db);
	srv.imap = imap_server_new(cfg, srv.db);
	srv.odmr = odmr_server_new(cfg, srv.db);
	mime_init();
	net_init(srv.base, cfg->max_connections, cfg->max_connections_per_ip);
	srv.sig_term = evsignal_new(srv.base, SIGTERM, serve_on_stop, NULL);
	srv.sig_int = evsignal_new(srv.base, SIGINT, serve_on_stop, NULL);
	srv.sig_hup = evsignal_new(srv.base, SIGHUP, serve_on_hup, NULL);
	event_add(srv.sig_term, NULL);
	event_add(srv.sig_int, NULL);
	event_add(srv.sig_hup, NULL);
	if (serve_listen(cfg) < 0 || serve_drop_privileges(cfg) < 0 ||
	    sandbox_apply(cfg) < 0 ||
	    pool_init(srv.base, SERVE_WORKERS) < 0 ||
	    serve_start_delivery(cfg) < 0) {
		serve_cleanup();
		return 1;
	}
	if (serve_replay_journal(cfg) == 0 &&
	    journal_start(cfg->data_dir, srv.base) < 0)
		log_warn("event=journal-unavailable reason=\"deliveries take "
		    "the fsync path\"");
	log_info("event=started hostname=%s data_dir=%s pid=%ld",
	    cfg->hostname, cfg->data_dir, (long)getpid());
	event_base_dispatch(srv.base);
	log_info("event=stopped");
	serve_cleanup();
	return 0;
}
