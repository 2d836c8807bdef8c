/* Unit tests for src/smtp/smtp_data.c: end of DATA, dot-unstuffing, the
 * smuggling octets, and that no way of splitting the input into chunks
 * changes what is decoded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/smtp_data.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define S(lit) (lit), sizeof(lit) - 1

#define MAX_MSGS 16

/* What one decoded message looked like when its end was seen. */
struct msg_result {
	size_t out_end;		/* where its octets end in stream_result.out */
	size_t in_end;		/* where its ".\r\n" ends in the input */
	bool bare_cr, bare_lf, nul;
	uint64_t size;
};

/* Decoding a stream of back-to-back DATA bodies; after each end a new
 * decoder takes the rest, as the session does. */
struct stream_result {
	char out[4096];
	size_t outlen;
	struct msg_result msgs[MAX_MSGS];
	size_t nmsgs;
	struct smtp_data_decoder tail;	/* the unfinished last message */
};

/* Feeds in[pos..end) until it is used up, recording ends. The output
 * buffer is exactly len + 2 octets, so ASan sees any overrun. */
static void
feed_chunk(struct smtp_data_decoder *d, const char *in, size_t *pos,
    size_t end, struct stream_result *r)
{
	do {
		size_t len = end - *pos, outlen = 0, used = 0;
		char *out = malloc(len + 2);
		enum smtp_data_status st;

		assert_non_null(out);
		st = smtp_data_feed(d, in + *pos, len, out, &outlen, &used);
		assert_true(outlen <= len + 2);
		assert_true(used <= len);
		assert_true(r->outlen + outlen <= sizeof(r->out));
		memcpy(r->out + r->outlen, out, outlen);
		r->outlen += outlen;
		free(out);
		*pos += used;
		if (st == SMTP_DATA_MORE) {
			assert_int_equal(used, len);
			continue;
		}
		assert_true(r->nmsgs < MAX_MSGS);
		r->msgs[r->nmsgs++] = (struct msg_result){
			r->outlen, *pos, d->bare_cr, d->bare_lf, d->nul,
			d->size };
		smtp_data_init(d);
	} while (*pos < end);
}

/* cuts[] are increasing offsets where the input is split into chunks. */
static void
decode_stream(const char *in, size_t n, const size_t *cuts, size_t ncuts,
    struct stream_result *r)
{
	struct smtp_data_decoder d;
	size_t pos = 0;

	memset(r, 0, sizeof(*r));
	smtp_data_init(&d);
	for (size_t c = 0; c <= ncuts; c++)
		feed_chunk(&d, in, &pos, c < ncuts ? cuts[c] : n, r);
	assert_int_equal(pos, n);
	r->tail = d;
}

static void
assert_same_result(const struct stream_result *a,
    const struct stream_result *b)
{
	assert_int_equal(a->outlen, b->outlen);
	assert_memory_equal(a->out, b->out, a->outlen);
	assert_int_equal(a->nmsgs, b->nmsgs);
	for (size_t i = 0; i < a->nmsgs; i++) {
		const struct msg_result *x = &a->msgs[i], *y = &b->msgs[i];

		assert_int_equal(x->out_end, y->out_end);
		assert_int_equal(x->in_end, y->in_end);
		assert_int_equal(x->bare_cr, y->bare_cr);
		assert_int_equal(x->bare_lf, y->bare_lf);
		assert_int_equal(x->nul, y->nul);
		assert_true(x->size == y->size);
	}
	assert_int_equal(a->tail.state, b->tail.state);
	assert_int_equal(a->tail.bare_cr, b->tail.bare_cr);
	assert_int_equal(a->tail.bare_lf, b->tail.bare_lf);
	assert_int_equal(a->tail.nul, b->tail.nul);
	assert_true(a->tail.size == b->tail.size);
}

/* Decodes one DATA body fed whole. */
static enum smtp_data_status
decode_whole(struct smtp_data_decoder *d, const char *in, size_t n,
    char *out, size_t *outlen, size_t *consumed)
{
	smtp_data_init(d);
	return smtp_data_feed(d, in, n, out, outlen, consumed);
}

static void
test_basic(void **state)
{
	struct smtp_data_decoder d;
	char out[256];
	size_t outlen, used;

	(void)state;
	assert_int_equal(decode_whole(&d, S("Hello\r\n.\r\n"), out, &outlen,
	    &used), SMTP_DATA_END);
	assert_int_equal(used, 10);
	assert_int_equal(outlen, 7);
	assert_memory_equal(out, "Hello\r\n", 7);
	assert_true(d.size == 7);
	assert_false(smtp_data_is_tainted(&d));

	/* The end right after DATA: an empty message. */
	assert_int_equal(decode_whole(&d, S(".\r\nQUIT\r\n"), out, &outlen,
	    &used), SMTP_DATA_END);
	assert_int_equal(used, 3);
	assert_int_equal(outlen, 0);
	assert_true(d.size == 0);

	/* An empty line then the end: the message is that CRLF. */
	assert_int_equal(decode_whole(&d, S("\r\n.\r\n"), out, &outlen,
	    &used), SMTP_DATA_END);
	assert_int_equal(used, 5);
	assert_int_equal(outlen, 2);
	assert_memory_equal(out, "\r\n", 2);

	/* What follows the end is the next command, not consumed. */
	assert_int_equal(decode_whole(&d, S("a\r\n.\r\nMAIL FROM:<>\r\n"), out,
	    &outlen, &used), SMTP_DATA_END);
	assert_int_equal(used, 6);
	assert_int_equal(outlen, 3);

	assert_int_equal(decode_whole(&d, S("no end yet\r\n"), out, &outlen,
	    &used), SMTP_DATA_MORE);
	assert_int_equal(used, 12);
	assert_int_equal(outlen, 12);
	assert_int_equal(smtp_data_feed(&d, "", 0, out, &outlen, &used),
	    SMTP_DATA_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(outlen, 0);
	assert_int_equal(smtp_data_feed(&d, S(".\r\n"), out, &outlen, &used),
	    SMTP_DATA_END);
	assert_int_equal(used, 3);
	assert_int_equal(outlen, 0);
	assert_true(d.size == 12);
}

static void
test_dot_unstuffing(void **state)
{
	static const char in[] =
	    "..a\r\n"
	    "..\r\n"
	    "...\r\n"
	    "a.b.\r\n"
	    ".x\r\n"
	    " .\r\n"
	    "..\r\n"
	    ".\r\n";
	static const char want[] =
	    ".a\r\n"
	    ".\r\n"
	    "..\r\n"
	    "a.b.\r\n"
	    "x\r\n"
	    " .\r\n"
	    ".\r\n";
	struct smtp_data_decoder d;
	char out[256];
	size_t outlen, used;

	(void)state;
	assert_int_equal(decode_whole(&d, in, sizeof(in) - 1, out, &outlen,
	    &used), SMTP_DATA_END);
	assert_int_equal(used, sizeof(in) - 1);
	assert_int_equal(outlen, sizeof(want) - 1);
	assert_memory_equal(out, want, outlen);
	assert_true(d.size == sizeof(want) - 1);
	assert_false(smtp_data_is_tainted(&d));

	/* A stuffed dot at the very start of the data. */
	assert_int_equal(decode_whole(&d, S("..\r\n.\r\n"), out, &outlen,
	    &used), SMTP_DATA_END);
	assert_int_equal(outlen, 3);
	assert_memory_equal(out, ".\r\n", 3);
}

struct smuggle_case {
	const char *in;
	size_t len;
	bool bare_cr, bare_lf, nul;
};

#define SMUGGLE(lit, cr, lf, nul) { S(lit), cr, lf, nul }

/* Each would end the data, or start a new message, for a receiver that
 * takes a bare CR or LF as a line end. None may end it here. */
static const struct smuggle_case smuggle_cases[] = {
	SMUGGLE("a\n.\n", false, true, false),
	SMUGGLE("a\n.\r\n", false, true, false),
	SMUGGLE("a\r\n.\n", false, true, false),
	SMUGGLE("a\r.\r", true, false, false),
	SMUGGLE("a\r.\r\n", true, false, false),
	SMUGGLE("a\r.\rx", true, false, false),
	SMUGGLE("a\r\n.\rx", true, false, false),
	SMUGGLE("a\r\n.\r.\r\n", true, false, false),
	SMUGGLE("a\r\n.\r\r", true, false, false),
	SMUGGLE("a\r\n.\n\r\n", false, true, false),
	SMUGGLE("a\r\r\n.\r\r\n", true, false, false),
	SMUGGLE("a\n\r\n.\n", false, true, false),
	SMUGGLE("a\r\n\n.\r\n", false, true, false),
	SMUGGLE("\n.\n", false, true, false),
	SMUGGLE("\n.\r\n", false, true, false),
	SMUGGLE("\r.\r\n", true, false, false),
	SMUGGLE(".\n", false, true, false),
	SMUGGLE(".\rx", true, false, false),
	SMUGGLE(".\r.\r\n", true, false, false),
	SMUGGLE("a\r\n.\0\r\n", false, false, true),
	SMUGGLE("a\r\n\0.\r\n", false, false, true),
	SMUGGLE("a\0\r\n", false, false, true),
	SMUGGLE("a\r\n.\n.\r\n", false, true, false),
};

static void
check_smuggle(const struct smuggle_case *c)
{
	struct smtp_data_decoder d;
	char in[64], out[80];
	size_t outlen, used;

	/* Alone: the data goes on, and the octet is noted. */
	assert_int_equal(decode_whole(&d, c->in, c->len, out, &outlen, &used),
	    SMTP_DATA_MORE);
	assert_int_equal(used, c->len);
	assert_int_equal(d.bare_cr, c->bare_cr);
	assert_int_equal(d.bare_lf, c->bare_lf);
	assert_int_equal(d.nul, c->nul);
	assert_int_equal(smtp_data_is_tainted(&d),
	    c->bare_cr || c->bare_lf || c->nul);

	/* Followed by a real end: that, and only that, ends the data. */
	assert_true(c->len + 5 <= sizeof(in));
	memcpy(in, c->in, c->len);
	memcpy(in + c->len, "\r\n.\r\n", 5);
	assert_int_equal(decode_whole(&d, in, c->len + 5, out, &outlen, &used),
	    SMTP_DATA_END);
	assert_int_equal(used, c->len + 5);
	assert_int_equal(d.bare_cr, c->bare_cr);
	assert_int_equal(d.bare_lf, c->bare_lf);
	assert_int_equal(d.nul, c->nul);
}

static void
test_smuggling(void **state)
{
	struct smtp_data_decoder d;
	char out[64];
	size_t outlen, used;

	(void)state;
	for (size_t i = 0; i < NELEM(smuggle_cases); i++) {
		print_message("smuggle case %zu\n", i);
		check_smuggle(&smuggle_cases[i]);
	}
	/* A real end followed by what looks like more: the first one ends. */
	assert_int_equal(decode_whole(&d, S("a\r\n.\r\n.\r"), out, &outlen,
	    &used), SMTP_DATA_END);
	assert_int_equal(used, 6);

	/* Bare octets are kept, not turned into line ends. */
	assert_int_equal(decode_whole(&d, S("a\n.\nb\r.\rc\r\n.\r\n"), out,
	    &outlen, &used), SMTP_DATA_END);
	assert_int_equal(outlen, 11);
	assert_memory_equal(out, "a\n.\nb\r.\rc\r\n", 11);
	assert_true(d.bare_cr && d.bare_lf && !d.nul);

	/* A NUL is data too. */
	assert_int_equal(decode_whole(&d, S("a\0b\r\n.\r\n"), out, &outlen,
	    &used), SMTP_DATA_END);
	assert_int_equal(outlen, 5);
	assert_memory_equal(out, "a\0b\r\n", 5);
	assert_true(d.nul && !d.bare_cr && !d.bare_lf);
}

/* A CR at the end of a chunk is held back until the next octet. */
static void
test_pending_cr(void **state)
{
	struct smtp_data_decoder d;
	char out[16];
	size_t outlen, used;

	(void)state;
	assert_int_equal(decode_whole(&d, S("abc\r"), out, &outlen, &used),
	    SMTP_DATA_MORE);
	assert_int_equal(outlen, 3);
	assert_false(d.bare_cr);
	assert_int_equal(smtp_data_feed(&d, S("\n"), out, &outlen, &used),
	    SMTP_DATA_MORE);
	assert_int_equal(outlen, 2);
	assert_memory_equal(out, "\r\n", 2);
	assert_false(smtp_data_is_tainted(&d));

	assert_int_equal(smtp_data_feed(&d, S("x\r"), out, &outlen, &used),
	    SMTP_DATA_MORE);
	assert_int_equal(smtp_data_feed(&d, S("y"), out, &outlen, &used),
	    SMTP_DATA_MORE);
	assert_int_equal(outlen, 2);
	assert_memory_equal(out, "\ry", 2);
	assert_true(d.bare_cr);

	/* ".\r" at a chunk end, then the LF: the end. */
	assert_int_equal(decode_whole(&d, S("a\r\n.\r"), out, &outlen, &used),
	    SMTP_DATA_MORE);
	assert_int_equal(outlen, 3);
	assert_int_equal(smtp_data_feed(&d, S("\nNOOP"), out, &outlen, &used),
	    SMTP_DATA_END);
	assert_int_equal(used, 1);
	assert_int_equal(outlen, 0);
	assert_true(d.size == 3);
}

/* Streams of whole messages, each as DATA bodies back to back. */
static const struct {
	const char *in;
	size_t len;
} streams[] = {
	{ S("Subject: hi\r\n\r\nbody\r\n..stuffed\r\n.\r\nQUIT\r\n") },
	{ S(".\r\n.\r\n\r\n.\r\n..\r\n...\r\n.\r\n") },
	{ S("a\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n.\r\n") },
	{ S("line\r\r\n.\r\nx\r\n.\r\r\n.\r\n") },
	{ S("a\n.\nb\r\n.\r\nRSET\r\n.\n.\r\n.\r\n") },
	{ S("x\0y\r\n.\r\n\0\r\n.\r\nz\r") },
	{ S("\n.\r\n\r.\r\n.\r\r\n.\r\n.\n\r\n.\r\n") },
	{ S("...\r\n..\r\n.\r\nno end\r\n.\r") },
	{ S("\r\n\r\n.\r\n\r\n.\r\n.\r\n\r") },
	{ S("a\r\n.\rb\r\n.\r\n.\r\n") },
};

static void
check_every_split(const char *in, size_t n)
{
	struct stream_result whole, split;
	size_t cuts[256];

	assert_true(n < NELEM(cuts));
	decode_stream(in, n, NULL, 0, &whole);
	assert_true(whole.nmsgs > 0);

	for (size_t k = 0; k <= n; k++) {
		cuts[0] = k;
		decode_stream(in, n, cuts, 1, &split);
		assert_same_result(&whole, &split);
	}
	for (size_t j = 0; j <= n; j++) {
		for (size_t k = j; k <= n; k++) {
			cuts[0] = j;
			cuts[1] = k;
			decode_stream(in, n, cuts, 2, &split);
			assert_same_result(&whole, &split);
		}
	}
	/* One octet at a time. */
	for (size_t k = 1; k < n; k++)
		cuts[k - 1] = k;
	decode_stream(in, n, cuts, n ? n - 1 : 0, &split);
	assert_same_result(&whole, &split);
}

static void
test_split_everywhere(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(streams); i++) {
		print_message("stream %zu\n", i);
		check_every_split(streams[i].in, streams[i].len);
	}
}

/* A CR, LF or NUL at every offset of a long line (the decoder skips
 * plain octets eight at a time): each is seen where it is. */
static void
test_special_at_every_offset(void **state)
{
	static const char special[] = { '\r', '\n', '\0', '.' };
	char in[128], out[sizeof(in) + 2];
	(void)state;

	for (size_t k = 0; k < 40; k++) {
		for (size_t s = 0; s < sizeof(special); s++) {
			struct smtp_data_decoder d;
			size_t outlen, used, n = 48;
			memset(in, 'a', n);
			in[k + 1] = special[s];
			memcpy(in + n, "\r\n.\r\n", 5);
			smtp_data_init(&d);
			assert_int_equal(smtp_data_feed(&d, in, n + 5, out,
			    &outlen, &used), SMTP_DATA_END);
			assert_int_equal(used, n + 5);
			/* Inside a line a dot is an ordinary octet; a CR
			 * before an 'a' is bare. Nothing else is dropped. */
			assert_int_equal(outlen, n + 2);
			assert_memory_equal(out, in, n + 2);
			assert_int_equal(d.bare_cr, special[s] == '\r');
			assert_int_equal(d.bare_lf, special[s] == '\n');
			assert_int_equal(d.nul, special[s] == '\0');
		}
	}
}

/* Where each message of a stream ends, as the session should see it. */
static void
test_stream_messages(void **state)
{
	struct stream_result r;
	static const char in[] = ".\r\n..x\r\n.\r\na\nb\r\n.\r\nrest";

	(void)state;
	decode_stream(in, sizeof(in) - 1, NULL, 0, &r);
	assert_int_equal(r.nmsgs, 3);
	assert_int_equal(r.msgs[0].out_end, 0);
	assert_int_equal(r.msgs[0].in_end, 3);
	assert_int_equal(r.msgs[1].out_end, 4);
	assert_int_equal(r.msgs[1].in_end, 11);
	assert_memory_equal(r.out, ".x\r\n", 4);
	assert_false(r.msgs[1].bare_lf);
	assert_int_equal(r.msgs[2].out_end, 9);
	assert_memory_equal(r.out + 4, "a\nb\r\n", 5);
	assert_true(r.msgs[2].bare_lf);
	assert_int_equal(r.msgs[2].in_end, 19);
	assert_int_equal(r.outlen, 13);
	assert_memory_equal(r.out + 9, "rest", 4);
}

struct bdat_case {
	const char *in;
	size_t len;
	bool bare_cr, bare_lf, nul;
};

static const struct bdat_case bdat_cases[] = {
	{ S("a\r\nb\r\n"), false, false, false },
	{ S(""), false, false, false },
	{ S("\r\n.\r\n..\r\n"), false, false, false },
	{ S("a\rb"), true, false, false },
	{ S("a\nb"), false, true, false },
	{ S("\nb"), false, true, false },
	{ S("a\r"), true, false, false },
	{ S("a\r\r\n"), true, false, false },
	{ S("a\0b"), false, false, true },
	{ S("\r\0"), true, false, true },
	{ S("a\n\r\r\n\0"), true, true, true },
};

static void
bdat_chunks(struct smtp_data_decoder *d, const struct bdat_case *c,
    size_t j, size_t k)
{
	smtp_data_init(d);
	smtp_data_bdat_scan(d, c->in, j);
	smtp_data_bdat_scan(d, c->in + j, k - j);
	smtp_data_bdat_scan(d, c->in + k, c->len - k);
	smtp_data_bdat_finish(d);
}

static void
test_bdat_scan(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(bdat_cases); i++) {
		const struct bdat_case *c = &bdat_cases[i];

		print_message("bdat case %zu\n", i);
		for (size_t j = 0; j <= c->len; j++) {
			for (size_t k = j; k <= c->len; k++) {
				struct smtp_data_decoder d;

				bdat_chunks(&d, c, j, k);
				assert_int_equal(d.bare_cr, c->bare_cr);
				assert_int_equal(d.bare_lf, c->bare_lf);
				assert_int_equal(d.nul, c->nul);
				assert_true(d.size == c->len);
			}
		}
	}
}

/* A CR at the end of one chunk and LF at the start of the next is a line
 * end; the CR is bare only if no chunk follows. */
static void
test_bdat_boundary(void **state)
{
	struct smtp_data_decoder d;

	(void)state;
	smtp_data_init(&d);
	smtp_data_bdat_scan(&d, S("line\r"));
	assert_false(smtp_data_is_tainted(&d));
	smtp_data_bdat_scan(&d, S("\nnext\r\n"));
	smtp_data_bdat_finish(&d);
	assert_false(smtp_data_is_tainted(&d));
	assert_true(d.size == 12);

	smtp_data_init(&d);
	smtp_data_bdat_scan(&d, S("line\r"));
	smtp_data_bdat_scan(&d, S("next"));
	assert_true(d.bare_cr);

	smtp_data_init(&d);
	smtp_data_bdat_scan(&d, S("line\r\n"));
	smtp_data_bdat_scan(&d, S("\n"));
	assert_true(d.bare_lf);

	smtp_data_init(&d);
	smtp_data_bdat_scan(&d, S("last\r"));
	assert_false(d.bare_cr);
	smtp_data_bdat_finish(&d);
	assert_true(d.bare_cr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_dot_unstuffing),
		cmocka_unit_test(test_smuggling),
		cmocka_unit_test(test_pending_cr),
		cmocka_unit_test(test_split_everywhere),
		cmocka_unit_test(test_special_at_every_offset),
		cmocka_unit_test(test_stream_messages),
		cmocka_unit_test(test_bdat_scan),
		cmocka_unit_test(test_bdat_boundary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
