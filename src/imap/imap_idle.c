/* IDLE (RFC 2177, RFC 9051 6.3.13): the client waits, the server sends
 * what changes. Changes made through this process (SMTP delivery, other
 * IMAP and POP3 sessions) arrive at once through store/notify; changes by
 * other programs are found by a poll every IMAP_IDLE_POLL_MS. */
#include <stdlib.h>
#include <string.h>

#include "core/timer.h"
#include "imap/imap_session.h"
#include "store/notify.h"

static void imap_idle_sync(struct imap_session *s);

static void
imap_idle_sync_work(struct imap_session *s)
{
	if (s->state == IMAP_ST_SELECTED && imap_view_sync(s, true) < 0)
		log_warnx("session=%llu event=idle-sync error=\"%s\"",
		    (unsigned long long)s->id, s->error ? s->error : "?");
}

static void
imap_idle_sync_done(struct imap_session *s)
{
	s->idle_sync_running = false;
	if (s->input != IMAP_IN_IDLE)
		return;
	/* a change that came while the sync ran */
	if (s->changed)
		imap_idle_sync(s);
	else if (s->idle_timer)
		timer_start(s->idle_timer, IMAP_IDLE_POLL_MS);
}

static void
imap_idle_sync(struct imap_session *s)
{
	if (s->busy || s->idle_sync_running || s->input != IMAP_IN_IDLE)
		return;
	s->changed = false;
	s->idle_sync_running = true;
	imap_job(s, imap_idle_sync_work, imap_idle_sync_done);
}

static void
imap_idle_timer_fired(void *arg)
{
	struct imap_session *s = arg;
	imap_idle_sync(s);
}

static void
imap_watch_fired(void *arg)
{
	struct imap_session *s = arg;

	s->changed = true;
	if (s->input == IMAP_IN_IDLE && s->state == IMAP_ST_SELECTED)
		imap_idle_sync(s);
}

void
imap_watch_start(struct imap_session *s)
{
	if (s->watch == NULL && s->root)
		s->watch = notify_watch_add(s->root, imap_watch_fired, s);
}

void
imap_watch_stop(struct imap_session *s)
{
	notify_watch_remove(s->watch);
	s->watch = NULL;
	if (s->idle_timer)
		timer_free(&s->idle_timer);
}

void
imap_cmd_idle(struct imap_session *s)
{
	s->input = IMAP_IN_IDLE;
	imap_send(s, "+ idling");
	if (s->state != IMAP_ST_SELECTED)
		return;
	if (s->idle_timer == NULL)
		s->idle_timer = timer_new(imap_idle_timer_fired, s);
	/* what changed since the last command is sent at once */
	s->changed = true;
	imap_idle_sync(s);
}

void
imap_idle_input(struct imap_session *s, const char *line)
{
	if (s->idle_timer)
		timer_stop(s->idle_timer);
	s->input = IMAP_IN_COMMAND;
	if (!imap_is_done(line, strlen(line)))
		imap_tagged(s, "BAD", "Expected DONE");
	else
		imap_tagged(s, "OK", "IDLE terminated");
	imap_command_end(s);
}
