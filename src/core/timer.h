/* One-shot timers on the event loop, so protocol code needs no libevent. */
#ifndef CORE_TIMER_H
#define CORE_TIMER_H

struct event_base;
struct timer;

/* The loop that timers use; set once at start. */
void timer_set_base(struct event_base *base);
struct timer *timer_new(void (*fn)(void *arg), void *arg);
/* (Re)arms the timer to fire once after ms milliseconds. */
void timer_start(struct timer *t, unsigned ms);
void timer_stop(struct timer *t);
void timer_free(struct timer **t);

#endif
