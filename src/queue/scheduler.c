/* The outbound scheduler: the queue in memory, scans of data_dir/queue,
 * the tick that starts due attempts, ETRN and `queue flush`. */
#include "queue/scheduler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/config.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/timer.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "queue/sched_int.h"

#define SCHED_TICK_MS		1000
#define SCHED_SCAN_INTERVAL_S	60

struct sched *sched_global;

/* A scan of the queue folder on the pool: the ids not known yet, with
 * their next attempt and first domain. */
struct sched_scan {
	char *data_dir;
	struct strlist known;		/* sorted */
	struct sched_msg *found;
	bool orphan;			/* the scheduler stopped meanwhile */
};

unsigned
sched_backoff(const struct config *cfg, unsigned n)
{
	uint64_t d = cfg->retry_min;

	for (unsigned i = 1; i < n && d < cfg->retry_max; i++)
		d *= 2;
	return d > cfg->retry_max ? cfg->retry_max : (unsigned)d;
}

static int
sched_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
sched_domain_of(const char *addr, char *out, size_t n)
{
	const char *at = strrchr(addr, '@');
	str_copy(out, at ? at + 1 : "", n);
	str_lower(out);
}

static void
sched_scan_work(void *arg)
{
	struct sched_scan *sc = arg;
	struct strlist ids = STRLIST_INIT;

	if (queue_list(sc->data_dir, &ids) < 0) {
		log_warn("event=queue-scan");
		return;
	}
	for (size_t i = 0; i < ids.n; i++) {
		if (sc->known.n && bsearch(&ids.v[i], sc->known.v, sc->known.n,
		    sizeof(*sc->known.v), sched_cmp_str))
			continue;
		struct queue_envelope env;
		if (queue_read(sc->data_dir, ids.v[i], &env) < 0) {
			log_warnx("event=queue-scan id=%s error=\"unreadable "
			    "envelope\"", ids.v[i]);
			continue;
		}
		struct sched_msg *m = x_calloc(1, sizeof(*m));
		str_copy(m->id, env.id, sizeof(m->id));
		m->due = env.next_attempt;
		if (env.rcpts.n)
			sched_domain_of(env.rcpts.v[0], m->domain,
			    sizeof(m->domain));
		m->next = sc->found;
		sc->found = m;
		queue_envelope_free(&env);
	}
	strlist_free(&ids);
}

static void sched_tick(void *arg);

static void
sched_scan_free(struct sched_scan *scan)
{
	while (scan->found) {
		struct sched_msg *m = scan->found;
		scan->found = m->next;
		free(m);
	}
	strlist_free(&scan->known);
	free(scan->data_dir);
	free(scan);
}

static void
sched_scan_done(void *arg)
{
	struct sched_scan *scan = arg;
	struct sched *sc = sched_global;

	if (scan->orphan || sc == NULL) {
		sched_scan_free(scan);
		return;
	}
	sc->scanning = false;
	unsigned added = 0;
	while (scan->found) {
		struct sched_msg *m = scan->found;
		scan->found = m->next;
		m->next = sc->msgs;
		sc->msgs = m;
		sc->nmsgs++;
		added++;
	}
	sched_scan_free(scan);
	if (added)
		log_debug("event=queue-scan added=%u queued=%u", added,
		    sc->nmsgs);
	if (sc->rescan) {
		sc->rescan = false;
		scheduler_kick();
		return;
	}
	sched_tick(sc);
}

static void
sched_scan_start(struct sched *sc)
{
	if (sc->scanning) {
		sc->rescan = true;
		return;
	}
	struct sched_scan *scan = x_calloc(1, sizeof(*scan));
	scan->data_dir = x_strdup(sc->cfg->data_dir);
	for (struct sched_msg *m = sc->msgs; m; m = m->next)
		strlist_add(&scan->known, m->id);
	if (scan->known.n > 1)
		qsort(scan->known.v, scan->known.n, sizeof(*scan->known.v),
		    sched_cmp_str);
	sc->scanning = true;
	sc->last_scan = time(NULL);
	pool_submit(sched_scan_work, sched_scan_done, scan);
}

/* `correo queue flush` touched the flush file. */
static bool
sched_flush_requested(struct sched *sc)
{
	char p[PATH_MAX];
	struct stat st;

	if (snprintf(p, sizeof(p), "%s/%s", sc->cfg->data_dir,
	    SCHEDULER_FLUSH_FILE) >= (int)sizeof(p) || stat(p, &st) < 0)
		return false;
	if (st.st_mtim.tv_sec == sc->flush_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == sc->flush_mtime.tv_nsec)
		return false;
	/* at start the file's time is taken as it is (or stays zero when
	 * there is no file, so that its creation is a request) */
	sc->flush_mtime = st.st_mtim;
	return true;
}

static unsigned
sched_in_flight_to(struct sched *sc, const char *domain)
{
	unsigned n = 0;
	for (struct sched_msg *m = sc->msgs; m; m = m->next)
		if (m->busy && strcmp(m->domain, domain) == 0)
			n++;
	return n;
}

static void
sched_drop_gone(struct sched *sc)
{
	struct sched_msg **pp = &sc->msgs;
	while (*pp) {
		struct sched_msg *m = *pp;
		if (m->gone && !m->busy) {
			*pp = m->next;
			sc->nmsgs--;
			free(m);
			continue;
		}
		pp = &m->next;
	}
}

static void
sched_tick(void *arg)
{
	struct sched *sc = arg;
	time_t now = time(NULL);

	if (sched_flush_requested(sc)) {
		log_info("event=queue-flush");
		scheduler_flush_domain(NULL, false);
		sched_scan_start(sc);
	} else if (now - sc->last_scan >= SCHED_SCAN_INTERVAL_S)
		sched_scan_start(sc);
	sched_drop_gone(sc);
	for (struct sched_msg *m = sc->msgs; m; m = m->next) {
		if (sc->in_flight >= sc->cfg->max_deliveries)
			break;
		if (m->busy || m->gone || m->due > now)
			continue;
		if (sched_in_flight_to(sc, m->domain) >=
		    sc->cfg->max_per_destination)
			continue;
		m->busy = true;
		sc->in_flight++;
		sched_attempt_start(sc, m);
	}
	timer_start(sc->tick, SCHED_TICK_MS);
}

void
sched_attempt_finished(struct sched *sc, struct sched_msg *m,
    bool queued_more)
{
	m->busy = false;
	if (sc->in_flight > 0)
		sc->in_flight--;
	if (queued_more)
		scheduler_kick();
}

int
scheduler_start(const struct config *cfg, struct userdb *db,
    struct dns_resolver *dns)
{
	struct sched *sc = x_calloc(1, sizeof(*sc));

	sc->cfg = cfg;
	sc->db = db;
	sc->dns = dns;
	sc->tick = timer_new(sched_tick, sc);
	sched_global = sc;
	(void)sched_flush_requested(sc);	/* remember the file's time */
	sched_scan_start(sc);
	log_info("event=scheduler-start retry_min=%us retry_max=%us "
	    "max_lifetime=%us", cfg->retry_min, cfg->retry_max,
	    cfg->max_lifetime);
	return 0;
}

void
scheduler_set_config(const struct config *cfg)
{
	if (sched_global)
		sched_global->cfg = cfg;
}

void
scheduler_stop(void)
{
	struct sched *sc = sched_global;

	if (sc == NULL)
		return;
	sched_global = NULL;
	sched_attempt_abandon_all(sc);
	sched_odmr_stop_all(sc);
	timer_free(&sc->tick);
	while (sc->msgs) {
		struct sched_msg *m = sc->msgs;
		sc->msgs = m->next;
		free(m);
	}
	free(sc);
}

void
scheduler_kick(void)
{
	struct sched *sc = sched_global;

	if (sc == NULL)
		return;
	sched_scan_start(sc);
}

static bool
sched_domain_matches(const char *d, const char *want, bool subdomains)
{
	if (str_iequal(d, want))
		return true;
	size_t n = strlen(d), w = strlen(want);
	return subdomains && n > w && d[n - w - 1] == '.' &&
	    str_iequal(d + n - w, want);
}

int
scheduler_flush_domain(const char *domain, bool subdomains)
{
	struct sched *sc = sched_global;
	int n = 0;

	if (sc == NULL)
		return -1;
	for (struct sched_msg *m = sc->msgs; m; m = m->next) {
		if (m->gone)
			continue;
		if (domain && !sched_domain_matches(m->domain, domain,
		    subdomains))
			continue;
		m->due = 0;
		n++;
	}
	if (n > 0)
		timer_start(sc->tick, 0);
	return n;
}
