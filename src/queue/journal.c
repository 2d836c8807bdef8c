/* The delivery journal: see journal.h. Threads: the writer (records,
 * fdatasync, links) and the checkpointer (syncfs, then the segment is
 * invalidated and free again); both share J under J.mu. */
#include "queue/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <linux/aio_abi.h>

#include "core/fs.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "queue/journal_record.h"
#include "store/maildir.h"

#define JOURNAL_NAME_MAX 256
/* Batches are written in whole blocks, with O_DIRECT where the file
 * system has it: the journal is never read back but after a crash, so
 * it need not pass through (and double) the page cache. */
#define JOURNAL_BLOCK	4096
#define JOURNAL_ZEROS	(1u << 20)
/* While the writer has nothing to do, it writes the active segment ahead
 * of its records with zeros, so that a record's fdatasync has no new file
 * length to commit (an inode write less per delivery while segments are
 * not prepared; 10% more mail per second for one SMTP session here): to
 * the next JOURNAL_GROW boundary while the file is small, the next
 * JOURNAL_ZEROS one after, one JOURNAL_GROW write at a time. */
#define JOURNAL_GROW	(64u << 10)
/* Blank spool files the writer keeps made while it has nothing to do
 * (spool_blank_make): the inode is found then, not while a client waits
 * for its 250. */
#define JOURNAL_STOCK	16

/* PREPARING: the checkpointer is writing zeros over it to its full
 * length, so that a later fdatasync has no file size to commit. */
enum seg_state { SEG_FREE, SEG_ACTIVE, SEG_CLOSED, SEG_PREPARING };

struct jseg {
	int fd;
	uint64_t gen;
	uint64_t size;		/* octets of records written */
	uint64_t disk;		/* the file's length */
	bool prep_failed;	/* zeros could not be written: leave it */
	struct timespec first;	/* when the first record was written */
	enum seg_state state;
};

struct jitem {
	struct local_delivery *ld;
	pool_done_fn done;
	void *arg;
	bool journaled;
	char (*names)[JOURNAL_NAME_MAX];
	struct jitem *next;
};

struct jlist {
	struct jitem *head, *tail;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t work_cv, ckpt_cv;
	struct jlist in, done;
	unsigned pending;		/* loop thread only */
	bool inited, started, stopping, ckpt_stop, writing;
	/* A checkpoint's syncfs failed. Since Linux 5.8 syncfs reports a
	 * writeback error once; a later success proves nothing about the
	 * pages that failed. So the segments are never spent in this run
	 * (the next start replays them) and every delivery takes the fsync
	 * path from then on. */
	bool broken;
	int cur;			/* the ACTIVE segment, or -1 */
	struct jseg seg[JOURNAL_NSEG];
	int qfd;			/* data_dir/queue/tmp, for syncfs */
	int efd;
	struct event *ev;
	pthread_t writer, ckpt;
	uint64_t next_gen;
	unsigned char *buf;		/* the writer's batch */
	size_t cap;
	unsigned char *zeros;		/* JOURNAL_ZEROS, aligned */
	char *data_dir;
	/* The writer's alone: */
	struct spool_blank stock[JOURNAL_STOCK];
	unsigned nstock;
	aio_context_t aio;		/* 0: batches written with pwrite */
	bool stock_failed, grow_failed;	/* until the next batch */
	struct journal_stats stats;
} J = { .mu = PTHREAD_MUTEX_INITIALIZER, .work_cv = PTHREAD_COND_INITIALIZER,
	.ckpt_cv = PTHREAD_COND_INITIALIZER, .cur = -1, .qfd = -1, .efd = -1 };

static void
jlist_push(struct jlist *l, struct jitem *it)
{
	it->next = NULL;
	if (l->tail)
		l->tail->next = it;
	else
		l->head = it;
	l->tail = it;
}

static struct jitem *
jlist_take(struct jlist *l)
{
	struct jitem *it = l->head;
	l->head = l->tail = NULL;
	return it;
}

/* The first deliveries of l, JOURNAL_BATCH_MAX octets of messages at most
 * (one at least): a batch is written from memory. */
static struct jitem *
jlist_take_batch(struct jlist *l)
{
	struct jitem *first = l->head, *last = first;
	uint64_t size = first ? first->ld->spool->size : 0;

	if (first == NULL)
		return NULL;
	while (last->next != NULL && size + last->next->ld->spool->size <=
	    JOURNAL_BATCH_MAX) {
		last = last->next;
		size += last->ld->spool->size;
	}
	l->head = last->next;
	if (l->head == NULL)
		l->tail = NULL;
	last->next = NULL;
	return first;
}

static long long
elapsed_ms(const struct timespec *since)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(now.tv_sec - since->tv_sec) * 1000 +
	    (now.tv_nsec - since->tv_nsec) / 1000000;
}

static unsigned char *
aligned_alloc_or_die(size_t n)
{
	void *p;
	if (posix_memalign(&p, JOURNAL_BLOCK, n) != 0)
		fatalx("out of memory");
	return p;
}

static unsigned long long
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000 +
	    (unsigned long long)ts.tv_nsec / 1000;
}

/* ---- segments (J.mu held) ---- */

static void
seg_activate(int i)
{
	J.seg[i].state = SEG_ACTIVE;
	J.seg[i].size = 0;
	J.seg[i].gen = J.next_gen++;
	if (J.next_gen == 0)
		J.next_gen = 1;
	J.cur = i;
}

static int
seg_find_free(int after)
{
	for (int k = 1; k <= JOURNAL_NSEG; k++) {
		int i = (after + k) % JOURNAL_NSEG;
		if (J.seg[i].state == SEG_FREE && J.seg[i].fd >= 0)
			return i;
	}
	return -1;
}

static void
seg_close_cur(void)
{
	if (J.cur < 0)
		return;
	J.seg[J.cur].state = J.seg[J.cur].size ? SEG_CLOSED : SEG_FREE;
	J.cur = -1;
	pthread_cond_signal(&J.ckpt_cv);
}

/* The segment for the next batch, or -1 (classic path). */
static int
seg_pick(void)
{
	int c = J.cur;
	if (J.broken)
		return -1;
	if (c >= 0) {
		struct jseg *s = &J.seg[c];
		bool full = s->size >= JOURNAL_SEG_MAX || (s->size > 0 &&
		    elapsed_ms(&s->first) >= JOURNAL_CLOSE_MS);
		if (!full)
			return c;
		int n = seg_find_free(c);
		if (n < 0)	/* the checkpoint is behind: grow, up to a point */
			return s->size < 4 * (uint64_t)JOURNAL_SEG_MAX ? c : -1;
		seg_close_cur();
		seg_activate(n);
		return n;
	}
	int n = seg_find_free(JOURNAL_NSEG - 1);
	if (n >= 0)
		seg_activate(n);
	return n;
}

/* ---- the writer ---- */

/* A batch's O_DIRECT write is handed to the kernel with Linux AIO, so the
 * writer makes the batch's spool files while the disk works (60 us of a
 * 100 KB message's 880 here); then it waits for it. Where AIO is missing
 * (no io_setup, a seccomp filter, a buffered segment on tmpfs: then
 * io_submit writes at once) it is a plain pwrite. */
static void
journal_aio_setup(void)
{
#if defined(__NR_io_setup) && defined(__NR_io_getevents)
	aio_context_t ctx = 0;
	if (syscall(__NR_io_setup, 1, &ctx) == 0)
		J.aio = ctx;
#endif
}

static void
journal_aio_teardown(void)
{
#ifdef __NR_io_destroy
	if (J.aio != 0)
		syscall(__NR_io_destroy, J.aio);	/* waits for it */
#endif
	J.aio = 0;
}

/* Starts writing n octets of p at off: 1 when the kernel has the write,
 * 0 when it was not taken (nothing is written then). */
static int
journal_write_start(int fd, const void *p, size_t n, uint64_t off)
{
#if defined(__NR_io_submit) && defined(__NR_io_getevents)
	struct iocb cb;
	struct iocb *cbs[1] = { &cb };

	if (J.aio == 0)
		return 0;
	memset(&cb, 0, sizeof(cb));
	cb.aio_lio_opcode = IOCB_CMD_PWRITE;
	cb.aio_fildes = (uint32_t)fd;
	cb.aio_buf = (uint64_t)(uintptr_t)p;
	cb.aio_nbytes = n;
	cb.aio_offset = (int64_t)off;
	if (syscall(__NR_io_submit, J.aio, 1, cbs) == 1)
		return 1;
	journal_aio_teardown();		/* refused: pwrite from now on */
#else
	(void)fd;
	(void)p;
	(void)n;
	(void)off;
#endif
	return 0;
}

/* Waits for the write journal_write_start gave the kernel: 0 when all n
 * octets are written. */
static int
journal_write_wait(size_t n)
{
#if defined(__NR_io_submit) && defined(__NR_io_getevents)
	struct io_event ev;
	long r;

	do
		r = syscall(__NR_io_getevents, J.aio, 1, 1, &ev, NULL);
	while (r < 0 && errno == EINTR);
	if (r != 1) {
		/* Cannot happen with a live context; io_destroy waits for
		 * the write, which is then taken as failed. */
		journal_aio_teardown();
		errno = EIO;
		return -1;
	}
	if (ev.res < 0 || (uint64_t)ev.res != n) {
		errno = ev.res < 0 ? (int)-ev.res : EIO;
		return -1;
	}
	return 0;
#else
	(void)n;
	errno = ENOSYS;
	return -1;
#endif
}

/* The classic path: fsync of the spool file and of new/. */
static void
journal_classic(struct jitem *it)
{
	it->journaled = false;
	local_delivery_run(it->ld);
	pthread_mutex_lock(&J.mu);
	J.stats.fallbacks++;
	pthread_mutex_unlock(&J.mu);
}

/* Appends it's record to J.buf at *len (*last: where it starts); false:
 * it takes the classic path. */
static bool
journal_add_record(struct jitem *it, uint64_t gen, size_t *len,
    size_t *last)
{
	struct local_delivery *ld = it->ld;
	struct spool_file *sf = ld->spool;
	size_t n = ld->maildirs.n;

	if (n == 0 || sf->size > JOURNAL_MAX_MESSAGE || sf->error)
		return false;
	struct journal_target *t = x_calloc(n, sizeof(*t));
	it->names = x_calloc(n, sizeof(*it->names));
	for (size_t i = 0; i < n; i++) {
		maildir_unique_name(it->names[i], JOURNAL_NAME_MAX, sf->size);
		t[i].path = ld->maildirs.v[i];
		t[i].name = it->names[i];
	}
	size_t rsz = journal_rec_size(t, n, sf->size);
	bool ok = rsz != 0;
	if (ok && *len + rsz + JOURNAL_BLOCK > J.cap) {
		size_t cap = J.cap ? J.cap : 1 << 20;
		while (cap < *len + rsz + JOURNAL_BLOCK)
			cap *= 2;
		unsigned char *nb = aligned_alloc_or_die(cap);
		if (*len > 0)
			memcpy(nb, J.buf, *len);
		free(J.buf);
		J.buf = nb;
		J.cap = cap;
	}
	if (ok) {
		unsigned char *rec = J.buf + *len;
		size_t off = journal_rec_begin(rec, gen, t, n, sf->size);
		if (sf->fd < 0)		/* all in memory still */
			memcpy(rec + off, sf->buf, (size_t)sf->size);
		else
			ok = fs_pread_all(sf->fd, rec + off, (size_t)sf->size,
			    0) == 0;
		if (ok) {
			journal_rec_seal(rec);
			*last = *len;
			*len += rsz;
		} else {
			log_warn("qid=%s event=journal-read", sf->id);
		}
	}
	free(t);
	return ok;
}

/* The message's spool file, written (into a blank file made ahead when
 * it was all in memory still); may run before its record is durable:
 * the spool file is no delivery until linked. */
static int
journal_materialize(struct spool_file *sf)
{
	if (sf->fd < 0 && J.nstock > 0 &&
	    spool_adopt(sf, &J.stock[J.nstock - 1]) == 0)
		J.nstock--;
	return spool_materialize(sf);
}

/* The record is durable: links into every Maildir, no fsync; the last
 * one takes the spool file's name over (one call for link and unlink).
 * A link that fails takes the classic delivery for that mailbox. */
static void
journal_link(struct jitem *it)
{
	struct local_delivery *ld = it->ld;
	struct spool_file *sf = ld->spool;
	char dst[PATH_MAX], name[JOURNAL_NAME_MAX];
	bool synced = false, moved = false;

	if (journal_materialize(sf) < 0) {
		ld->first_error = errno;
		return;
	}
	for (size_t i = 0; i < ld->maildirs.n; i++) {
		int n = snprintf(dst, sizeof(dst), "%s/new/%s",
		    ld->maildirs.v[i], it->names[i]);
		bool fits = n > 0 && (size_t)n < sizeof(dst);
		if (fits && !synced && i + 1 == ld->maildirs.n &&
		    renameat2(AT_FDCWD, sf->path, AT_FDCWD, dst,
		    RENAME_NOREPLACE) == 0) {
			ld->delivered++;
			moved = true;
			continue;
		}
		if (fits && link(sf->path, dst) == 0) {
			ld->delivered++;
			continue;
		}
		if (!synced && fsync(sf->fd) < 0) {
			if (ld->first_error == 0)
				ld->first_error = errno;
			continue;
		}
		synced = true;
		if (maildir_deliver(ld->maildirs.v[i], sf->path, sf->size,
		    name, sizeof(name)) < 0) {
			if (ld->first_error == 0)
				ld->first_error = errno;
			continue;
		}
		ld->delivered++;
	}
	close(sf->fd);
	sf->fd = -1;
	if (!moved)
		unlink(sf->path);
	sf->path[0] = '\0';
}

static void
journal_run_batch(struct jitem *batch, int s)
{
	size_t len = 0, last = 0;
	unsigned records = 0;

	if (s < 0) {
		for (struct jitem *it = batch; it; it = it->next)
			journal_classic(it);
		return;
	}
	struct jseg *seg = &J.seg[s];
	unsigned long long t0 = now_us();
	for (struct jitem *it = batch; it; it = it->next) {
		it->journaled = journal_add_record(it, seg->gen, &len, &last);
		records += it->journaled;
	}
	if (len % JOURNAL_BLOCK != 0) {
		/* The last record takes the zeros up to the block's end. */
		size_t pad = JOURNAL_BLOCK - len % JOURNAL_BLOCK;
		journal_rec_extend(J.buf + last, len - last + pad);
		journal_rec_seal(J.buf + last);
		len += pad;
	}
	int wr = 0, async = 0;
	if (len > 0) {
		async = journal_write_start(seg->fd, J.buf, len, seg->size);
		if (!async)
			wr = fs_pwrite_all(seg->fd, J.buf, len, seg->size);
	}
	/* The spool files while the disk writes the records (their errors
	 * are the links' to report). */
	for (struct jitem *it = batch; it; it = it->next)
		if (it->journaled)
			(void)journal_materialize(it->ld->spool);
	if (async)
		wr = journal_write_wait(len);
	if (len > 0 && (wr < 0 || fdatasync(seg->fd) < 0)) {
		log_warn("event=journal-write-failed segment=%d", s);
		pthread_mutex_lock(&J.mu);
		/* Unsure what reached the disk: never write it again before
		 * a checkpoint has invalidated it. */
		seg->size += len;
		seg_close_cur();
		pthread_mutex_unlock(&J.mu);
		for (struct jitem *it = batch; it; it = it->next)
			it->journaled = false;
		records = 0;
		len = 0;
	}
	if (len > 0) {
		pthread_mutex_lock(&J.mu);
		if (seg->size == 0)
			clock_gettime(CLOCK_MONOTONIC, &seg->first);
		seg->size += len;
		if (seg->disk < seg->size)
			seg->disk = seg->size;
		J.stats.sync_us += now_us() - t0;
		if (len > J.stats.max_batch)
			J.stats.max_batch = len;
		J.stats.records += records;
		J.stats.batches++;
		J.stats.async_writes += async;
		J.stats.buffer = J.cap;
		pthread_mutex_unlock(&J.mu);
	}
	for (struct jitem *it = batch; it; it = it->next) {
		if (it->journaled)
			journal_link(it);
		else
			journal_classic(it);
	}
}

static void
journal_wake_loop(void)
{
	uint64_t one = 1;
	ssize_t w = write(J.efd, &one, sizeof(one));
	(void)w;
}

/* How far the active segment s should be written ahead of its records
 * now (0: far enough). */
static uint64_t
journal_grow_target(const struct jseg *s)
{
	uint64_t chunk = s->disk < JOURNAL_ZEROS ? JOURNAL_GROW : JOURNAL_ZEROS;

	if (s->disk >= s->size + chunk / 2 ||
	    s->disk >= 4 * (uint64_t)JOURNAL_SEG_MAX)
		return 0;
	return (s->size + chunk / 2 + chunk - 1) / chunk * chunk;
}

/* One piece of what the writer does while no delivery waits (J.mu held;
 * released while it works): a blank spool file more, or the active
 * segment written further ahead. Returns whether there was any. */
static bool
journal_idle_step(void)
{
	if (J.nstock < JOURNAL_STOCK && !J.stock_failed) {
		pthread_mutex_unlock(&J.mu);
		int r = spool_blank_make(J.data_dir, &J.stock[J.nstock]);
		pthread_mutex_lock(&J.mu);
		if (r == 0)
			J.nstock++;
		else
			J.stock_failed = true;
		return true;
	}
	if (J.cur < 0 || J.broken || J.grow_failed)
		return false;
	struct jseg *s = &J.seg[J.cur];
	uint64_t target = journal_grow_target(s);
	if (target == 0)
		return false;
	/* One JOURNAL_GROW piece per step: a delivery that comes meanwhile
	 * waits for one such write at most. */
	uint64_t off = s->disk - s->disk % JOURNAL_BLOCK;
	uint64_t n = target - off < JOURNAL_GROW ? target - off : JOURNAL_GROW;
	/* Keeps the checkpointer from closing the segment meanwhile. */
	J.writing = true;
	pthread_mutex_unlock(&J.mu);
	int rc = fs_pwrite_all(s->fd, J.zeros, (size_t)n, off);
	pthread_mutex_lock(&J.mu);
	J.writing = false;
	if (rc < 0)
		J.grow_failed = true;	/* records still extend it */
	else if (s->disk < off + n)
		s->disk = off + n;
	return true;
}

/* Waits for work (J.mu held). A big batch buffer is kept while mail
 * comes (a new one cost the writer a page fault every 4 KiB, a fifth of
 * its time with 100 KB messages at 200 sessions) and given back after
 * JOURNAL_KEEP_MS without any. */
static void
journal_idle_wait(void)
{
	if (J.cap <= JOURNAL_BATCH_MAX / 2) {
		pthread_cond_wait(&J.work_cv, &J.mu);
		return;
	}
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += JOURNAL_KEEP_MS / 1000;
	until.tv_nsec += (JOURNAL_KEEP_MS % 1000) * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	if (pthread_cond_timedwait(&J.work_cv, &J.mu, &until) == ETIMEDOUT &&
	    J.in.head == NULL) {
		x_free(&J.buf);
		J.cap = 0;
		J.stats.buffer = 0;
	}
}

static void *
journal_writer(void *unused)
{
	(void)unused;
	journal_aio_setup();
	pthread_mutex_lock(&J.mu);
	for (;;) {
		while (J.in.head == NULL && !J.stopping)
			if (!journal_idle_step())
				journal_idle_wait();
		struct jitem *batch = jlist_take_batch(&J.in);
		if (batch == NULL)
			break;
		int s = seg_pick();
		J.writing = true;
		pthread_mutex_unlock(&J.mu);

		journal_run_batch(batch, s);

		pthread_mutex_lock(&J.mu);
		J.writing = false;
		J.stock_failed = J.grow_failed = false;
		while (batch) {
			struct jitem *next = batch->next;
			jlist_push(&J.done, batch);
			batch = next;
		}
		journal_wake_loop();
	}
	pthread_mutex_unlock(&J.mu);
	journal_aio_teardown();
	return NULL;
}

/* ---- the checkpointer ---- */

/* Zeros over the first record's magic: replay finds nothing there. */
static int
journal_invalidate(int fd)
{
	if (fs_pwrite_all(fd, J.zeros, JOURNAL_BLOCK, 0) < 0 ||
	    fdatasync(fd) < 0)
		return -1;
	return 0;
}

/* Writes zeros over segment i up to JOURNAL_SEG_MAX (J.mu held, and
 * released while it writes). */
static void
journal_prepare(int i)
{
	struct jseg *s = &J.seg[i];
	uint64_t off = s->disk - s->disk % JOURNAL_BLOCK;

	s->state = SEG_PREPARING;
	pthread_mutex_unlock(&J.mu);
	int rc = 0;
	while (rc == 0 && off < JOURNAL_SEG_MAX) {
		rc = fs_pwrite_all(s->fd, J.zeros, JOURNAL_ZEROS, off);
		off += JOURNAL_ZEROS;
	}
	if (rc == 0)
		rc = fdatasync(s->fd);
	if (rc < 0)
		log_warn("event=journal-prepare-failed segment=%d", i);
	pthread_mutex_lock(&J.mu);
	if (rc == 0)
		s->disk = off;
	else
		s->prep_failed = true;	/* usable, only not prepared */
	s->state = SEG_FREE;
}

/* A free segment shorter than its full length, or -1. Only once the
 * journal is busy (JOURNAL_PREPARE_AFTER records since the start): a
 * server that sees little mail keeps its segments small. */
static int
journal_unprepared(void)
{
	if (J.stats.records < JOURNAL_PREPARE_AFTER)
		return -1;
	for (int i = 0; i < JOURNAL_NSEG; i++)
		if (J.seg[i].state == SEG_FREE && !J.seg[i].prep_failed &&
		    J.seg[i].disk < JOURNAL_SEG_MAX)
			return i;
	return -1;
}

/* The links of the closed segments in mask are made durable (syncfs),
 * then those segments are invalidated; returns the ones freed (J.mu not
 * held). */
static unsigned
journal_checkpoint(unsigned mask)
{
	unsigned freed = 0;

	if (syncfs(J.qfd) < 0) {
		log_warn("event=journal-checkpoint-failed");
		log_warnx("event=journal-disabled reason=\"the segments stay "
		    "for the next start to replay; deliveries take the fsync "
		    "path\"");
		pthread_mutex_lock(&J.mu);
		J.broken = true;
		pthread_mutex_unlock(&J.mu);
		return 0;
	}
	for (int i = 0; i < JOURNAL_NSEG; i++)
		if ((mask & (1u << i)) && journal_invalidate(J.seg[i].fd) == 0)
			freed |= 1u << i;
	if (freed != mask)
		log_warn("event=journal-checkpoint-failed step=invalidate");
	return freed;
}

static void *
journal_checkpointer(void *unused)
{
	bool failing = false;

	(void)unused;
	pthread_mutex_lock(&J.mu);
	for (;;) {
		/* A segment that has waited long enough is closed here when
		 * the writer is idle, so mail that stops coming is made
		 * durable in place too. */
		if (!J.writing && J.cur >= 0 && J.seg[J.cur].size > 0 &&
		    elapsed_ms(&J.seg[J.cur].first) >= JOURNAL_CLOSE_MS)
			seg_close_cur();
		unsigned mask = 0;
		for (int i = 0; i < JOURNAL_NSEG; i++)
			if (J.seg[i].state == SEG_CLOSED)
				mask |= 1u << i;
		if (J.broken)
			mask = 0;	/* kept for the next start's replay */
		if (mask == 0 || failing) {
			if (J.ckpt_stop && (mask == 0 || failing))
				break;
			int u = failing || J.broken ? -1 : journal_unprepared();
			if (u >= 0 && !J.ckpt_stop) {
				journal_prepare(u);
				continue;
			}
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += (failing ? 1000 : 250) * 1000000L;
			until.tv_sec += until.tv_nsec / 1000000000L;
			until.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&J.ckpt_cv, &J.mu, &until);
			failing = false;
			continue;
		}
		pthread_mutex_unlock(&J.mu);
		unsigned long long t0 = now_us();
		unsigned freed = journal_checkpoint(mask);
		pthread_mutex_lock(&J.mu);
		for (int i = 0; i < JOURNAL_NSEG; i++) {
			if (!(freed & (1u << i)))
				continue;
			J.seg[i].state = SEG_FREE;
			J.seg[i].size = 0;
			J.stats.checkpoints++;
		}
		J.stats.checkpoint_us += now_us() - t0;
		failing = freed != mask;
	}
	pthread_mutex_unlock(&J.mu);
	return NULL;
}

/* ---- the loop side ---- */

static void
journal_run_done(void)
{
	pthread_mutex_lock(&J.mu);
	struct jitem *it = jlist_take(&J.done);
	pthread_mutex_unlock(&J.mu);
	while (it) {
		struct jitem *next = it->next;
		J.pending--;
		it->done(it->arg);
		free(it->names);
		free(it);
		it = next;
	}
}

static void
journal_on_event(evutil_socket_t fd, short what, void *unused)
{
	uint64_t v;
	(void)what;
	(void)unused;
	ssize_t r = read(fd, &v, sizeof(v));
	(void)r;
	journal_run_done();
}

static int
journal_open_segments(const char *data_dir)
{
	char dir[PATH_MAX], p[PATH_MAX + 16];
	bool made = false;

	if (snprintf(dir, sizeof(dir), "%s/queue/journal", data_dir) >=
	    (int)sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (fs_mkdir_p(dir, 0700) < 0)
		return -1;
	for (int i = 0; i < JOURNAL_NSEG; i++) {
		struct stat sb;
		snprintf(p, sizeof(p), "%s/%d", dir, i);
		int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return -1;
		made |= fstat(fd, &sb) == 0 && sb.st_size == 0;
		close(fd);
		/* tmpfs and a few others refuse O_DIRECT: buffered then. */
		fd = open(p, O_RDWR | O_DIRECT | O_CLOEXEC);
		if (fd < 0 && errno == EINVAL)
			fd = open(p, O_RDWR | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &sb) < 0)
			return -1;
		J.seg[i].fd = fd;
		J.seg[i].disk = (uint64_t)sb.st_size;
		J.seg[i].prep_failed = false;
		J.seg[i].state = SEG_FREE;
	}
	/* The names must survive a crash before any record counts. */
	if (made && (fs_fsync_dir(dir) < 0 || fs_fsync_parent(dir) < 0))
		return -1;
	return 0;
}

int
journal_start(const char *data_dir, struct event_base *base)
{
	char q[PATH_MAX];

	for (int i = 0; i < JOURNAL_NSEG; i++)
		J.seg[i].fd = -1;
	J.nstock = 0;
	J.stock_failed = J.grow_failed = false;
	J.data_dir = x_strdup(data_dir);
	J.inited = true;
	if (snprintf(q, sizeof(q), "%s/queue/tmp", data_dir) >=
	    (int)sizeof(q)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	J.zeros = aligned_alloc_or_die(JOURNAL_ZEROS);
	memset(J.zeros, 0, JOURNAL_ZEROS);
	if (journal_open_segments(data_dir) < 0)
		goto fail;
	if ((J.qfd = open(q, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		goto fail;
	J.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (J.efd < 0)
		goto fail;
	J.ev = event_new(base, J.efd, EV_READ | EV_PERSIST, journal_on_event,
	    NULL);
	if (J.ev == NULL || event_add(J.ev, NULL) < 0)
		goto fail;
	uint64_t g;
	if (getentropy(&g, sizeof(g)) < 0)
		goto fail;	/* a generation must not repeat an old one */
	J.next_gen = g | 1;
	J.stopping = J.ckpt_stop = J.broken = false;
	if (pthread_create(&J.writer, NULL, journal_writer, NULL) != 0)
		goto fail;
	if (pthread_create(&J.ckpt, NULL, journal_checkpointer, NULL) != 0)
		fatalx("pthread_create failed");
	J.started = true;
	return 0;
fail:;
	int e = errno;
	journal_stop();
	errno = e;
	return -1;
}

bool
journal_accepts(uint64_t size)
{
	return J.started && size <= JOURNAL_MAX_MESSAGE;
}

void
journal_submit(struct local_delivery *ld, pool_done_fn done, void *arg)
{
	struct jitem *it = x_calloc(1, sizeof(*it));
	it->ld = ld;
	it->done = done;
	it->arg = arg;
	J.pending++;
	pthread_mutex_lock(&J.mu);
	jlist_push(&J.in, it);
	pthread_cond_signal(&J.work_cv);
	pthread_mutex_unlock(&J.mu);
}

unsigned
journal_pending(void)
{
	return J.pending;
}

void
journal_get_stats(struct journal_stats *st)
{
	pthread_mutex_lock(&J.mu);
	*st = J.stats;
	pthread_mutex_unlock(&J.mu);
}

void
journal_stop(void)
{
	if (J.started) {
		/* Deliveries the done callbacks below start take the pool. */
		J.started = false;
		pthread_mutex_lock(&J.mu);
		J.stopping = true;
		pthread_cond_broadcast(&J.work_cv);
		pthread_mutex_unlock(&J.mu);
		pthread_join(J.writer, NULL);
		pthread_mutex_lock(&J.mu);
		seg_close_cur();
		J.ckpt_stop = true;
		pthread_cond_broadcast(&J.ckpt_cv);
		pthread_mutex_unlock(&J.mu);
		pthread_join(J.ckpt, NULL);
		journal_run_done();
		log_info("event=journal-stopped records=%lu batches=%lu "
		    "async=%lu fallbacks=%lu checkpoints=%lu sync_ms=%llu "
		    "checkpoint_ms=%llu", J.stats.records, J.stats.batches,
		    J.stats.async_writes, J.stats.fallbacks,
		    J.stats.checkpoints, J.stats.sync_us / 1000,
		    J.stats.checkpoint_us / 1000);
	}
	if (!J.inited)
		return;
	J.inited = false;
	if (J.ev) {
		event_free(J.ev);
		J.ev = NULL;
	}
	for (int i = 0; i < JOURNAL_NSEG; i++) {
		if (J.seg[i].fd >= 0)
			close(J.seg[i].fd);
		J.seg[i].fd = -1;
		J.seg[i].state = SEG_FREE;
	}
	int *fds[] = { &J.qfd, &J.efd };
	for (size_t i = 0; i < 2; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	while (J.nstock > 0)
		spool_blank_drop(&J.stock[--J.nstock]);
	x_free(&J.buf);
	x_free(&J.zeros);
	x_free(&J.data_dir);
	J.cap = 0;
	J.cur = -1;
}
