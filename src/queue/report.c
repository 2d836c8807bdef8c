/* Storing reports to envelope senders. */
#include "queue/report.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/userdb.h"
#include "core/log.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "queue/deliver.h"
#include "queue/spool.h"

bool
report_route(struct userdb *db, const char *data_dir, const char *sender,
    struct report_dest *d)
{
	struct strlist local = STRLIST_INIT, remote = STRLIST_INIT;
	enum userdb_resolve_result rr = userdb_resolve(db, sender, &local,
	    &remote);
	bool ok = true;

	if (rr == RESOLVE_NOT_LOCAL)
		d->remote = true;
	else if (rr == RESOLVE_OK) {
		for (size_t i = 0; i < local.n; i++) {
			char *p = userdb_maildir_path(data_dir, local.v[i]);
			strlist_add(&d->maildirs, p);
			free(p);
		}
		d->remote = remote.n > 0;
	} else
		ok = false;
	strlist_free(&local);
	strlist_free(&remote);
	return ok;
}

/* The queue envelope of a report for a sender elsewhere. */
static struct queue_envelope *
report_envelope(const struct spool_file *sf, const char *sender,
    const struct dsn_compose_info *info)
{
	struct queue_envelope *env = x_calloc(1, sizeof(*env));

	str_copy(env->id, sf->id, sizeof(env->id));
	env->created = time(NULL);
	env->size = info->size;
	env->from = x_strdup("");
	strlist_add(&env->rcpts, sender);
	env->smtputf8 = info->global;
	env->eightbit = info->eightbit;
	return env;
}

int
report_store(const char *data_dir, const char *id,
    const struct dsn_report *rep, const char *msg_path,
    struct report_dest *d)
{
	struct spool_file sf;
	struct dsn_compose_info info;
	const char *err = NULL;

	if (spool_create(data_dir, &sf) < 0) {
		log_warn("event=dsn id=%s spool", id);
		return -1;
	}
	if (dsn_compose_path(rep, msg_path, sf.fd, &info, &err) < 0) {
		log_warnx("event=dsn id=%s error=\"%s\"", id, err ? err : "?");
		spool_discard(&sf);
		return -1;
	}
	sf.size = info.size;
	struct local_delivery ld = {
		.spool = &sf,
		.data_dir = data_dir,
		.remote = d->remote ? report_envelope(&sf, rep->sender, &info) :
		    NULL,
		.maildirs = d->maildirs,
	};
	local_delivery_run(&ld);
	d->maildirs = ld.maildirs;
	int e = ld.commit_error ? ld.commit_error : ld.first_error;
	d->queued = ld.remote && e == 0;
	if (e)
		log_warnx("event=dsn id=%s report=%s error=\"%s\"", id, sf.id,
		    strerror(e));
	else
		log_info("event=dsn id=%s report=%s to=<%s> action=%s", id,
		    sf.id, rep->sender, dsn_action_name(rep->rcpts[0].action));
	if (ld.remote) {
		queue_envelope_free(ld.remote);
		free(ld.remote);
	}
	spool_discard(&sf);
	return e ? -1 : 0;
}

void
report_dest_free(struct report_dest *d)
{
	strlist_free(&d->maildirs);
}
