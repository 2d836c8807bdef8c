/* The connection's line reader: limits, terminators, every split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/buf.h"
#include "net/conn.h"

struct pair {
	struct event_base *base;
	struct conn *c;
	int peer;
};

static void
pair_open(struct pair *p)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	p->base = event_base_new();
	net_init(p->base, 10, 10);
	p->c = conn_new(sv[0], SVC_SMTP, "127.0.0.1");
	assert_non_null(p->c);
	p->peer = sv[1];
}

static void
pair_close(struct pair *p)
{
	close(p->peer);
	net_close_all();
	event_base_free(p->base);
}

/* Sends s from the peer and lets the loop read it into the input buffer. */
static void
pair_send(struct pair *p, const char *s, size_t n)
{
	assert_int_equal(write(p->peer, s, n), (ssize_t)n);
	for (int i = 0; i < 4; i++)
		event_base_loop(p->base, EVLOOP_NONBLOCK);
}

static void
test_terminators(void **state)
{
	struct pair p;
	struct buf line = BUF_INIT;
	(void)state;
	pair_open(&p);
	pair_send(&p, "NOOP\r\nA\nB\r\n\r\nTAIL", 17);
	assert_int_equal(conn_read_line(p.c, 100, &line), CONN_LINE_OK);
	assert_string_equal(buf_cstr(&line), "NOOP");
	assert_int_equal(conn_read_line(p.c, 100, &line), CONN_LINE_OK);
	assert_string_equal(buf_cstr(&line), "A");
	assert_int_equal(conn_read_line(p.c, 100, &line), CONN_LINE_OK);
	assert_string_equal(buf_cstr(&line), "B");
	assert_int_equal(conn_read_line(p.c, 100, &line), CONN_LINE_OK);
	assert_string_equal(buf_cstr(&line), "");
	assert_int_equal(conn_read_line(p.c, 100, &line), CONN_LINE_NONE);
	assert_int_equal(conn_input_length(p.c), 4);
	buf_free(&line);
	pair_close(&p);
}

static void
test_every_split(void **state)
{
	static const char input[] = "EHLO x\r\nMAIL FROM:<a@b>\r\n\r\n"
	    "RCPT TO:<c@d> NOTIFY=NEVER\r\nQUIT\r\n";
	static const char *const want[] = { "EHLO x", "MAIL FROM:<a@b>", "",
	    "RCPT TO:<c@d> NOTIFY=NEVER", "QUIT" };
	size_t n = sizeof(input) - 1;
	(void)state;

	for (size_t cut = 0; cut <= n; cut++) {
		struct pair p;
		struct buf line = BUF_INIT;
		size_t got = 0;
		pair_open(&p);
		pair_send(&p, input, cut);
		while (conn_read_line(p.c, 64, &line) == CONN_LINE_OK)
			assert_string_equal(buf_cstr(&line), want[got++]);
		pair_send(&p, input + cut, n - cut);
		while (conn_read_line(p.c, 64, &line) == CONN_LINE_OK)
			assert_string_equal(buf_cstr(&line), want[got++]);
		assert_int_equal(got, 5);
		assert_int_equal(conn_input_length(p.c), 0);
		buf_free(&line);
		pair_close(&p);
	}
}

static void
test_limit(void **state)
{
	struct pair p;
	struct buf line = BUF_INIT;
	(void)state;
	pair_open(&p);
	/* Exactly the limit is fine; one more is too long. */
	pair_send(&p, "0123456789\r\n0123456789A\r\nNEXT\r\n", 31);
	assert_int_equal(conn_read_line(p.c, 10, &line), CONN_LINE_OK);
	assert_string_equal(buf_cstr(&line), "0123456789");
	assert_int_equal(conn_read_line(p.c, 10, &line), CONN_LINE_TOO_LONG);
	assert_int_equal(conn_read_line(p.c, 10, &line), CONN_LINE_OK);
	assert_string_equal(buf_cstr(&line), "NEXT");
	buf_free(&line);
	pair_close(&p);
}

static void
test_long_line_not_buffered(void **state)
{
	struct pair p;
	struct buf line = BUF_INIT;
	char junk[4096];
	(void)state;
	memset(junk, 'x', sizeof(junk));
	pair_open(&p);
	pair_send(&p, junk, sizeof(junk));
	assert_int_equal(conn_read_line(p.c, 100, &line), CONN_LINE_TOO_LONG);
	assert_int_equal(conn_input_length(p.c), 0);
	/* The rest of the line is discarded silently, without buffering. */
	for (int i = 0; i < 64; i++) {
		pair_send(&p, junk, sizeof(junk));
		assert_int_equal(conn_read_line(p.c, 100, &line),
		    CONN_LINE_NONE);
		assert_int_equal(conn_input_length(p.c), 0);
	}
	pair_send(&p, "tail\r\nQUIT\r\n", 12);
	assert_int_equal(conn_read_line(p.c, 100, &line), CONN_LINE_OK);
	assert_string_equal(buf_cstr(&line), "QUIT");
	buf_free(&line);
	pair_close(&p);
}

static void
test_raw_reads(void **state)
{
	struct pair p;
	char b[8];
	(void)state;
	pair_open(&p);
	pair_send(&p, "abcdef", 6);
	assert_int_equal(conn_peek(p.c, b, 3), 3);
	assert_memory_equal(b, "abc", 3);
	assert_int_equal(conn_input_length(p.c), 6);
	conn_drain(p.c, 2);
	assert_int_equal(conn_read(p.c, b, sizeof(b)), 4);
	assert_memory_equal(b, "cdef", 4);
	pair_close(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_terminators),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_long_line_not_buffered),
		cmocka_unit_test(test_raw_reads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
