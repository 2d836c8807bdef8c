/* Thread pool. Workers take jobs from a queue; finished jobs go to a done
 * list and an eventfd wakes the loop, which runs their done callbacks. */
#include "core/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/log.h"
#include "core/xmalloc.h"

struct job {
	pool_work_fn work;
	pool_done_fn done;
	void *arg;
	struct job *next;
};

struct jobq {
	struct job *head, *tail;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct jobq todo, done;
	pthread_t *threads;
	unsigned nthreads;
	unsigned pending;
	bool stopping;
	int efd;
	struct event *ev;
} pool = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
	   .efd = -1 };

static void
jobq_push(struct jobq *q, struct job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static struct job *
jobq_take_all(struct jobq *q)
{
	struct job *j = q->head;
	q->head = q->tail = NULL;
	return j;
}

static void *
pool_worker(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&pool.mu);
	for (;;) {
		while (pool.todo.head == NULL && !pool.stopping)
			pthread_cond_wait(&pool.cv, &pool.mu);
		struct job *j = pool.todo.head;
		if (j == NULL)
			break;
		pool.todo.head = j->next;
		if (pool.todo.head == NULL)
			pool.todo.tail = NULL;
		pthread_mutex_unlock(&pool.mu);

		j->work(j->arg);

		pthread_mutex_lock(&pool.mu);
		jobq_push(&pool.done, j);
		uint64_t one = 1;
		ssize_t w = write(pool.efd, &one, sizeof(one));
		(void)w;
	}
	pthread_mutex_unlock(&pool.mu);
	return NULL;
}

static void
pool_run_done(void)
{
	pthread_mutex_lock(&pool.mu);
	struct job *j = jobq_take_all(&pool.done);
	pthread_mutex_unlock(&pool.mu);
	while (j) {
		struct job *next = j->next;
		pool.pending--;
		if (j->done)
			j->done(j->arg);
		free(j);
		j = next;
	}
}

static void
pool_on_event(evutil_socket_t fd, short what, void *unused)
{
	uint64_t v;
	(void)what;
	(void)unused;
	ssize_t r = read(fd, &v, sizeof(v));
	(void)r;
	pool_run_done();
}

int
pool_init(struct event_base *base, unsigned nthreads)
{
	pool.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool.efd < 0)
		return -1;
	pool.ev = event_new(base, pool.efd, EV_READ | EV_PERSIST,
	    pool_on_event, NULL);
	if (pool.ev == NULL || event_add(pool.ev, NULL) < 0)
		return -1;
	pool.threads = x_calloc(nthreads, sizeof(*pool.threads));
	for (unsigned i = 0; i < nthreads; i++) {
		if (pthread_create(&pool.threads[i], NULL, pool_worker, NULL))
			fatalx("pthread_create failed");
		pool.nthreads++;
	}
	return 0;
}

void
pool_submit(pool_work_fn work, pool_done_fn done, void *arg)
{
	struct job *j = x_calloc(1, sizeof(*j));
	j->work = work;
	j->done = done;
	j->arg = arg;
	pool.pending++;
	pthread_mutex_lock(&pool.mu);
	jobq_push(&pool.todo, j);
	pthread_cond_signal(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
}

unsigned
pool_pending(void)
{
	return pool.pending;
}

void
pool_shutdown(void)
{
	pthread_mutex_lock(&pool.mu);
	pool.stopping = true;
	pthread_cond_broadcast(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
	for (unsigned i = 0; i < pool.nthreads; i++)
		pthread_join(pool.threads[i], NULL);
	pool_run_done();
	x_free(&pool.threads);
	pool.nthreads = 0;
	if (pool.ev) {
		event_free(pool.ev);
		pool.ev = NULL;
	}
	if (pool.efd >= 0) {
		close(pool.efd);
		pool.efd = -1;
	}
	pool.stopping = false;
}
