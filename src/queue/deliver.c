/* Local delivery job. */
#include "queue/deliver.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/maildir.h"

void
local_delivery_run(void *arg)
{
	struct local_delivery *ld = arg;
	char name[256];

	if (spool_commit(ld->spool) < 0) {
		ld->commit_error = errno;
		return;
	}
	for (size_t i = 0; i < ld->maildirs.n; i++) {
		if (maildir_deliver(ld->maildirs.v[i], ld->spool->path,
		    ld->spool->size, name, sizeof(name)) < 0) {
			if (ld->first_error == 0)
				ld->first_error = errno;
			continue;
		}
		ld->delivered++;
	}
	if (ld->remote && queue_add(ld->data_dir, ld->spool->path,
	    ld->remote) < 0 && ld->first_error == 0)
		ld->first_error = errno ? errno : EIO;
	if (ld->notice && ld->commit_error == 0 && ld->first_error == 0 &&
	    ld->delivered == ld->maildirs.n)
		report_store(ld->data_dir, ld->spool->id, &ld->notice->rep,
		    ld->spool->path, &ld->notice->dest);
	/* Every mailbox holds a durable link now; the spool name can go.
	 * (The queue takes over here once remote delivery exists.) */
	unlink(ld->spool->path);
	ld->spool->path[0] = '\0';
}

void
local_notice_free(struct local_notice *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n; i++)
		dsn_rcpt_free(&n->rcpts[i]);
	free(n->rcpts);
	free((char *)n->rep.reporting_mta);
	free((char *)n->rep.sender);
	free((char *)n->rep.envid);
	free((char *)n->rep.queue_id);
	report_dest_free(&n->dest);
	free(n);
}

void
local_delivery_free(struct local_delivery *ld)
{
	local_notice_free(ld->notice);
	ld->notice = NULL;
	strlist_free(&ld->maildirs);
	if (ld->remote) {
		queue_envelope_free(ld->remote);
		free(ld->remote);
		ld->remote = NULL;
	}
}
