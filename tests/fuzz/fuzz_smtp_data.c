/* libFuzzer harness for src/smtp/smtp_data.c. The first input octet picks
 * how the rest is cut into chunks; the rest is what a client sends after
 * DATA (or BDAT). Cutting must never change the result, a clean message
 * must survive being stuffed again, and the output buffers are exactly the
 * documented n + 2 octets so ASan sees any overrun. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
	    #cond); abort(); } } while (0)

#define MAX_MSGS 64

struct msg_end {
	size_t out_end, in_end;
	bool bare_cr, bare_lf, nul;
	uint64_t size;
};

struct decoded {
	char *out;		/* every message's octets, back to back */
	size_t outlen;
	struct msg_end ends[MAX_MSGS];
	size_t nends;
	struct smtp_data_decoder tail;
};

/* Chunk sizes from a small generator seeded by the first octet: seeds
 * with the top bit set give 1-octet chunks, others mix 0 to 16. */
static size_t
next_chunk(uint32_t *rng, uint8_t seed)
{
	if (seed & 0x80)
		return 1;
	*rng = *rng * 1103515245u + 12345u;
	return (*rng >> 16) % 17;
}

static void
feed(struct smtp_data_decoder *d, const char *in, size_t len, size_t base,
    struct decoded *r)
{
	size_t pos = 0;

	do {
		size_t n = len - pos, outlen = 0, used = 0;
		char *out = malloc(n + 2);
		enum smtp_data_status st;

		CHECK(out != NULL);
		st = smtp_data_feed(d, in + pos, n, out, &outlen, &used);
		CHECK(used <= n && outlen <= n + 2);
		CHECK(st == SMTP_DATA_END || used == n);
		memcpy(r->out + r->outlen, out, outlen);
		r->outlen += outlen;
		free(out);
		pos += used;
		if (st == SMTP_DATA_END) {
			CHECK(used >= 1 && r->nends < MAX_MSGS);
			r->ends[r->nends++] = (struct msg_end){ r->outlen,
			    base + pos, d->bare_cr, d->bare_lf, d->nul,
			    d->size };
			smtp_data_init(d);
		}
	} while (pos < len && r->nends < MAX_MSGS);
}

/* Decodes a stream of DATA bodies; chunked when seed is given. */
static void
decode(const char *in, size_t n, bool chunked, uint8_t seed,
    struct decoded *r)
{
	struct smtp_data_decoder d;
	uint32_t rng = seed;
	size_t pos = 0;

	r->outlen = 0;
	r->nends = 0;
	smtp_data_init(&d);
	while (pos < n && r->nends < MAX_MSGS) {
		size_t len = chunked ? next_chunk(&rng, seed) : n - pos;

		if (len > n - pos)
			len = n - pos;
		feed(&d, in + pos, len, pos, r);
		pos += len;
	}
	r->tail = d;
}

static void
check_same(const struct decoded *a, const struct decoded *b)
{
	CHECK(a->nends == b->nends);
	CHECK(a->outlen == b->outlen);
	CHECK(memcmp(a->out, b->out, a->outlen) == 0);
	for (size_t i = 0; i < a->nends; i++) {
		const struct msg_end *x = &a->ends[i], *y = &b->ends[i];

		CHECK(x->out_end == y->out_end && x->in_end == y->in_end);
		CHECK(x->bare_cr == y->bare_cr && x->bare_lf == y->bare_lf);
		CHECK(x->nul == y->nul && x->size == y->size);
	}
	if (a->nends == MAX_MSGS)
		return;
	CHECK(a->tail.state == b->tail.state);
	CHECK(a->tail.bare_cr == b->tail.bare_cr);
	CHECK(a->tail.bare_lf == b->tail.bare_lf);
	CHECK(a->tail.nul == b->tail.nul);
	CHECK(a->tail.size == b->tail.size);
}

/* A clean message is CRLF lines; stuffed again and ended, it decodes to
 * itself and the end is exactly where it was put. */
static void
check_restuff(const char *msg, size_t n)
{
	char *wire = malloc(2 * n + 3), *out = malloc(2 * n + 5);
	struct smtp_data_decoder d;
	size_t w = 0, outlen, used;

	CHECK(wire != NULL && out != NULL);
	CHECK(n == 0 || (n >= 2 && memcmp(msg + n - 2, "\r\n", 2) == 0));
	for (size_t i = 0; i < n; i++) {
		if (msg[i] == '\r')
			CHECK(i + 1 < n && msg[i + 1] == '\n');
		if (msg[i] == '\n')
			CHECK(i > 0 && msg[i - 1] == '\r');
		CHECK(msg[i] != '\0');
		if (msg[i] == '.' && (i == 0 || msg[i - 1] == '\n'))
			wire[w++] = '.';
		wire[w++] = msg[i];
	}
	memcpy(wire + w, ".\r\n", 3);
	w += 3;
	smtp_data_init(&d);
	CHECK(smtp_data_feed(&d, wire, w, out, &outlen, &used) ==
	    SMTP_DATA_END);
	CHECK(used == w && outlen == n && memcmp(out, msg, n) == 0);
	CHECK(!smtp_data_is_tainted(&d) && d.size == n);
	free(wire);
	free(out);
}

static void
check_messages(const struct decoded *r, const char *in)
{
	size_t out_start = 0, in_start = 0;

	for (size_t i = 0; i < r->nends; i++) {
		const struct msg_end *e = &r->ends[i];

		/* Every end is ".\r\n" after a CRLF or at the very start. */
		CHECK(e->in_end >= in_start + 3);
		CHECK(memcmp(in + e->in_end - 3, ".\r\n", 3) == 0);
		CHECK(e->in_end == in_start + 3 ||
		    (e->in_end >= in_start + 5 &&
		    memcmp(in + e->in_end - 5, "\r\n", 2) == 0));
		CHECK(e->size == e->out_end - out_start);
		if (!e->bare_cr && !e->bare_lf && !e->nul)
			check_restuff(r->out + out_start,
			    e->out_end - out_start);
		out_start = e->out_end;
		in_start = e->in_end;
	}
}

static void
check_bdat(const char *in, size_t n, uint8_t seed)
{
	struct smtp_data_decoder whole, chunked;
	uint32_t rng = seed;
	size_t pos = 0;

	smtp_data_init(&whole);
	smtp_data_bdat_scan(&whole, in, n);
	smtp_data_bdat_finish(&whole);
	smtp_data_init(&chunked);
	while (pos < n) {
		size_t len = next_chunk(&rng, seed);

		if (len > n - pos)
			len = n - pos;
		smtp_data_bdat_scan(&chunked, in + pos, len);
		pos += len;
	}
	smtp_data_bdat_finish(&chunked);
	CHECK(whole.bare_cr == chunked.bare_cr);
	CHECK(whole.bare_lf == chunked.bare_lf);
	CHECK(whole.nul == chunked.nul);
	CHECK(whole.size == n && chunked.size == n);
	CHECK(whole.nul == (n > 0 && memchr(in, '\0', n) != NULL));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct decoded whole, chunked;
	const char *in = (const char *)data + 1;
	size_t n;
	uint8_t seed;

	if (size == 0)
		return 0;
	seed = data[0];
	n = size - 1;
	/* Each input octet gives at most one output octet overall. */
	whole.out = malloc(n + 1);
	chunked.out = malloc(n + 1);
	CHECK(whole.out != NULL && chunked.out != NULL);
	decode(in, n, false, 0, &whole);
	decode(in, n, true, seed, &chunked);
	check_same(&whole, &chunked);
	CHECK(whole.outlen <= n);
	check_messages(&whole, in);
	check_bdat(in, n, seed);
	free(whole.out);
	free(chunked.out);
	return 0;
}
