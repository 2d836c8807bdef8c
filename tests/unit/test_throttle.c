/* Unit tests for src/auth/throttle.c with an injected clock: growing
 * delays, blocking per address and per account, expiry, clearing on
 * success, the bound on memory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "auth/throttle.h"

static long long fake_now;

static long long
fake_clock(void)
{
	return fake_now;
}

static int
setup(void **state)
{
	(void)state;
	fake_now = 1000000;
	throttle_set_clock(fake_clock);
	throttle_reset();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	throttle_reset();
	throttle_set_clock(NULL);
	return 0;
}

static void
fail_n(const char *ip, const char *account, int n)
{
	for (int i = 0; i < n; i++)
		throttle_failure(ip, account);
}

static void
test_delays_grow(void **state)
{
	/* Delay after F failures: free, free, 1, 2, 4, 8, 16, 16 s. */
	static const unsigned want[] = {
		0, 0, 1000, 2000, 4000, 8000, 16000, 16000, 16000,
	};

	(void)state;
	for (size_t f = 0; f < sizeof(want) / sizeof(want[0]); f++) {
		assert_int_equal(throttle_delay_ms("192.0.2.1", NULL), want[f]);
		assert_int_equal(throttle_delay_ms("192.0.2.1", "a@b"),
		    want[f]);
		throttle_failure("192.0.2.1", NULL);
	}
	/* Another address is not slowed down. */
	assert_int_equal(throttle_delay_ms("192.0.2.2", NULL), 0);
	assert_int_equal(throttle_delay_ms(NULL, NULL), 0);
}

static void
test_block_address(void **state)
{
	(void)state;
	fail_n("2001:db8::1", "x@example.org", THROTTLE_BLOCK_AFTER - 1);
	assert_false(throttle_blocked("2001:db8::1", NULL));
	throttle_failure("2001:db8::1", "y@example.org");
	assert_true(throttle_blocked("2001:db8::1", NULL));
	assert_true(throttle_blocked("2001:db8::1", "other@example.org"));
	assert_false(throttle_blocked("2001:db8::2", NULL));
	/* The accounts tried were not blocked by one address. */
	assert_false(throttle_blocked("2001:db8::2", "x@example.org"));
}

static void
test_block_account(void **state)
{
	char ip[32];

	(void)state;
	/* Guessing one account from many addresses, each below its limit. */
	for (int i = 0; i < THROTTLE_ACCOUNT_BLOCK_AFTER; i++) {
		snprintf(ip, sizeof(ip), "198.51.100.%d", i);
		assert_false(throttle_blocked(ip, "Victim@Example.org"));
		throttle_failure(ip, i % 2 ? "victim@example.org" :
		    "VICTIM@example.ORG");
	}
	assert_true(throttle_blocked("203.0.113.9", "victim@example.org"));
	assert_true(throttle_blocked(NULL, "victim@EXAMPLE.org"));
	assert_int_equal(throttle_delay_ms("203.0.113.9",
	    "victim@example.org"), 16000);
	assert_false(throttle_blocked("203.0.113.9", "other@example.org"));
	assert_int_equal(throttle_delay_ms("203.0.113.9", NULL), 0);
}

static void
test_expiry(void **state)
{
	(void)state;
	fail_n("192.0.2.7", "e@example.org", THROTTLE_BLOCK_AFTER);
	assert_true(throttle_blocked("192.0.2.7", NULL));
	fake_now += THROTTLE_WINDOW_S - 1;
	assert_true(throttle_blocked("192.0.2.7", NULL));
	/* A new failure restarts the window. */
	throttle_failure("192.0.2.7", NULL);
	fake_now += THROTTLE_WINDOW_S - 1;
	assert_true(throttle_blocked("192.0.2.7", NULL));
	fake_now += 1;
	assert_false(throttle_blocked("192.0.2.7", NULL));
	assert_int_equal(throttle_delay_ms("192.0.2.7", "e@example.org"), 0);
	/* And counting starts again from nothing. */
	fail_n("192.0.2.7", NULL, 2);
	assert_int_equal(throttle_delay_ms("192.0.2.7", NULL), 1000);
}

static void
test_success_clears_address(void **state)
{
	(void)state;
	fail_n("192.0.2.8", "s@example.org", 5);
	assert_int_equal(throttle_delay_ms("192.0.2.8", NULL), 8000);
	throttle_success("192.0.2.8", "s@example.org");
	assert_int_equal(throttle_delay_ms("192.0.2.8", NULL), 0);
	/* The account's count, gathered over all addresses, stays. */
	assert_int_equal(throttle_delay_ms(NULL, "s@example.org"), 8000);
	throttle_success(NULL, NULL);
	throttle_success("192.0.2.99", NULL);
}

static void
test_bounded(void **state)
{
	char ip[32];

	(void)state;
	fail_n("first", NULL, 3);
	fake_now++;
	/* 70000 more addresses: the table keeps the newest 65536. */
	for (int i = 0; i < 70000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16,
		    (i >> 8) & 255, i & 255);
		throttle_failure(ip, NULL);
	}
	assert_int_equal(throttle_delay_ms("first", NULL), 0);
	assert_int_equal(throttle_delay_ms("10.0.0.0", NULL), 0);
	throttle_failure("10.1.17.111", NULL);	/* the last one, again */
	assert_int_equal(throttle_delay_ms("10.1.17.111", NULL), 1000);
	/* An absurdly long account name is cut, not stored whole. */
	static char big[4096];
	for (size_t i = 0; i + 1 < sizeof(big); i++)
		big[i] = 'a';
	fail_n(NULL, big, 2);
	assert_int_equal(throttle_delay_ms(NULL, big), 1000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_delays_grow),
		T(test_block_address),
		T(test_block_account),
		T(test_expiry),
		T(test_success_clears_address),
		T(test_bounded),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
