/* One-shot timers over libevent. */
#include "core/timer.h"

#include <stdlib.h>

#include <event2/event.h>

#include "core/log.h"
#include "core/xmalloc.h"

struct timer {
	struct event *ev;
	void (*fn)(void *arg);
	void *arg;
};

static struct event_base *timer_base;

void
timer_set_base(struct event_base *base)
{
	timer_base = base;
}

static void
timer_fire(evutil_socket_t fd, short what, void *arg)
{
	struct timer *t = arg;
	(void)fd;
	(void)what;
	t->fn(t->arg);
}

struct timer *
timer_new(void (*fn)(void *arg), void *arg)
{
	if (timer_base == NULL)
		panic("timer_new before timer_set_base");
	struct timer *t = x_calloc(1, sizeof(*t));
	t->fn = fn;
	t->arg = arg;
	t->ev = evtimer_new(timer_base, timer_fire, t);
	if (t->ev == NULL)
		fatalx("evtimer_new failed");
	return t;
}

void
timer_start(struct timer *t, unsigned ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(t->ev, &tv);
}

void
timer_stop(struct timer *t)
{
	evtimer_del(t->ev);
}

void
timer_free(struct timer **t)
{
	if (*t == NULL)
		return;
	event_free((*t)->ev);
	x_free(t);
}
