/* Watches are few per user and notifications rare next to the work they
 * cause (a mailbox sync each), so a flat list is enough; the deferral
 * through a zero timer keeps callers from re-entering each other. */
#include "store/notify.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/timer.h"
#include "core/xmalloc.h"

struct notify_watch {
	struct notify_watch *next;
	char *root;
	notify_fn fn;
	void *arg;
	bool pending;
	bool removed;
};

static struct notify_watch *watches;
static struct timer *notify_timer;
static unsigned notify_walking;

static void notify_run(void *arg);

struct notify_watch *
notify_watch_add(const char *root, notify_fn fn, void *arg)
{
	struct notify_watch *w = x_calloc(1, sizeof(*w));
	w->root = x_strdup(root);
	w->fn = fn;
	w->arg = arg;
	w->next = watches;
	watches = w;
	return w;
}

static void
notify_sweep(void)
{
	struct notify_watch **p = &watches;
	while (*p) {
		struct notify_watch *w = *p;
		if (w->removed) {
			*p = w->next;
			free(w->root);
			free(w);
		} else
			p = &w->next;
	}
}

void
notify_watch_remove(struct notify_watch *w)
{
	if (w == NULL)
		return;
	w->removed = true;
	if (notify_walking == 0)
		notify_sweep();
}

void
notify_changed(const char *root)
{
	bool any = false;
	for (struct notify_watch *w = watches; w; w = w->next) {
		if (!w->removed && strcmp(w->root, root) == 0) {
			w->pending = true;
			any = true;
		}
	}
	if (!any)
		return;
	if (notify_timer == NULL)
		notify_timer = timer_new(notify_run, NULL);
	timer_start(notify_timer, 0);
}

static void
notify_run(void *arg)
{
	(void)arg;
	notify_walking++;
	for (struct notify_watch *w = watches; w; w = w->next) {
		if (w->removed || !w->pending)
			continue;
		w->pending = false;
		w->fn(w->arg);
	}
	notify_walking--;
	notify_sweep();
}

unsigned
notify_watch_count(void)
{
	unsigned n = 0;
	for (struct notify_watch *w = watches; w; w = w->next)
		n += !w->removed;
	return n;
}
