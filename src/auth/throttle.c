/* Failed-authentication throttling: two bounded hash tables of failure
 * counts, one keyed by client address, one by account name.
 * Untrusted input: account names as clients typed them, and client
 * addresses; both only ever become hash keys.
 *
 * The hash is SipHash-2-4 with a random key, so that a client choosing
 * account names cannot pile them into one bucket. Entries sit on a list
 * in order of their last failure, which makes both expiry and "evict the
 * oldest when full" a look at the list's head. */
#include "auth/throttle.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/log.h"
#include "core/xmalloc.h"

#define THROTTLE_MAX_ENTRIES	65536
#define THROTTLE_BUCKETS	16384	/* a power of two */
#define THROTTLE_KEY_MAX	320	/* longer keys are cut: bounded memory */
#define THROTTLE_FREE_FAILURES	2
#define THROTTLE_MAX_DELAY_S	16

struct throttle_entry {
	struct throttle_entry *hnext;		/* same bucket */
	struct throttle_entry *older, *newer;	/* by last failure */
	long long last;
	unsigned failures;
	char key[];
};

struct throttle_table {
	struct throttle_entry **buckets;
	struct throttle_entry *oldest, *newest;
	size_t n;
	unsigned block_after;
};

static struct throttle_table throttle_by_ip = {
	.block_after = THROTTLE_BLOCK_AFTER,
};
static struct throttle_table throttle_by_account = {
	.block_after = THROTTLE_ACCOUNT_BLOCK_AFTER,
};
static long long (*throttle_clock)(void);
static uint64_t throttle_k0, throttle_k1;
static bool throttle_keyed;

/* ---- time and hashing ------------------------------------------------------ */

static long long
throttle_now(void)
{
	struct timespec ts;

	if (throttle_clock != NULL)
		return throttle_clock();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec;
}

void
throttle_set_clock(long long (*now_s)(void))
{
	throttle_clock = now_s;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do { \
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
} while (0)

static uint64_t
throttle_siphash(const unsigned char *p, size_t n)
{
	uint64_t v0 = throttle_k0 ^ 0x736f6d6570736575ULL;
	uint64_t v1 = throttle_k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = throttle_k0 ^ 0x6c7967656e657261ULL;
	uint64_t v3 = throttle_k1 ^ 0x7465646279746573ULL;
	uint64_t b = (uint64_t)n << 56;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t m = 0;
		for (int j = 7; j >= 0; j--)
			m = (m << 8) | p[i + (size_t)j];
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; i + j < n; j++)
		b |= (uint64_t)p[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	for (int r = 0; r < 4; r++)
		SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static size_t
throttle_bucket(const char *key)
{
	if (!throttle_keyed) {
		uint64_t k[2];
		if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k))
			fatal("throttle: getrandom");
		throttle_k0 = k[0];
		throttle_k1 = k[1];
		throttle_keyed = true;
	}
	return (size_t)(throttle_siphash((const unsigned char *)key,
	    strlen(key)) & (THROTTLE_BUCKETS - 1));
}

/* The table's form of a key: cut to THROTTLE_KEY_MAX, and for accounts
 * ASCII-lowercased like the userdb does, so "Demo@X" counts as demo@x. */
static void
throttle_key(const char *in, bool fold, char out[THROTTLE_KEY_MAX + 1])
{
	size_t n = strnlen(in, THROTTLE_KEY_MAX);

	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		out[i] = fold && c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') :
		    c;
	}
	out[n] = '\0';
}

/* ---- the tables ------------------------------------------------------------ */

static void
throttle_list_unlink(struct throttle_table *t, struct throttle_entry *e)
{
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		t->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		t->newest = e->older;
	e->older = e->newer = NULL;
}

static void
throttle_list_append(struct throttle_table *t, struct throttle_entry *e)
{
	e->older = t->newest;
	e->newer = NULL;
	if (t->newest != NULL)
		t->newest->newer = e;
	else
		t->oldest = e;
	t->newest = e;
}

static void
throttle_remove(struct throttle_table *t, struct throttle_entry *e)
{
	struct throttle_entry **pp = &t->buckets[throttle_bucket(e->key)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	throttle_list_unlink(t, e);
	t->n--;
	x_free(&e);
}

static bool
throttle_is_expired(const struct throttle_entry *e, long long now)
{
	return now - e->last >= THROTTLE_WINDOW_S;
}

/* Drops expired entries from the old end of the list. */
static void
throttle_expire(struct throttle_table *t, long long now)
{
	while (t->oldest != NULL && throttle_is_expired(t->oldest, now))
		throttle_remove(t, t->oldest);
}

static struct throttle_entry *
throttle_find(struct throttle_table *t, const char *key, long long now)
{
	if (t->buckets == NULL)
		return NULL;
	throttle_expire(t, now);
	for (struct throttle_entry *e = t->buckets[throttle_bucket(key)];
	    e != NULL; e = e->hnext)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static struct throttle_entry *
throttle_insert(struct throttle_table *t, const char *key)
{
	size_t len = strlen(key);

	if (t->buckets == NULL)
		t->buckets = x_calloc(THROTTLE_BUCKETS, sizeof(*t->buckets));
	if (t->n >= THROTTLE_MAX_ENTRIES)
		throttle_remove(t, t->oldest);
	struct throttle_entry *e = x_calloc(1, sizeof(*e) + len + 1);
	memcpy(e->key, key, len + 1);
	size_t b = throttle_bucket(key);
	e->hnext = t->buckets[b];
	t->buckets[b] = e;
	t->n++;
	return e;
}

static unsigned
throttle_failures(struct throttle_table *t, const char *key, long long now)
{
	struct throttle_entry *e = throttle_find(t, key, now);

	return e != NULL ? e->failures : 0;
}

static void
throttle_count(struct throttle_table *t, const char *key, long long now)
{
	struct throttle_entry *e = throttle_find(t, key, now);

	if (e == NULL)
		e = throttle_insert(t, key);
	else
		throttle_list_unlink(t, e);
	if (e->failures < UINT32_MAX)
		e->failures++;
	e->last = now;
	throttle_list_append(t, e);
}

static void
throttle_clear_table(struct throttle_table *t)
{
	while (t->oldest != NULL)
		throttle_remove(t, t->oldest);
	x_free(&t->buckets);
}

/* ---- the interface --------------------------------------------------------- */

/* min(2^(F-2), 16) seconds; the first failures are free. */
static unsigned
throttle_delay_for(unsigned failures)
{
	if (failures < THROTTLE_FREE_FAILURES)
		return 0;
	unsigned shift = failures - THROTTLE_FREE_FAILURES;
	unsigned s = shift >= 4 ? THROTTLE_MAX_DELAY_S : 1u << shift;
	return (s > THROTTLE_MAX_DELAY_S ? THROTTLE_MAX_DELAY_S : s) * 1000;
}

/* Failure counts of ip and account (0 for NULL or unknown). */
static void
throttle_lookup(const char *ip, const char *account, unsigned *ip_f,
    unsigned *acct_f)
{
	char key[THROTTLE_KEY_MAX + 1];
	long long now = throttle_now();

	*ip_f = *acct_f = 0;
	if (ip != NULL) {
		throttle_key(ip, false, key);
		*ip_f = throttle_failures(&throttle_by_ip, key, now);
	}
	if (account != NULL) {
		throttle_key(account, true, key);
		*acct_f = throttle_failures(&throttle_by_account, key, now);
	}
}

unsigned
throttle_delay_ms(const char *ip, const char *account)
{
	unsigned ip_f, acct_f;

	throttle_lookup(ip, account, &ip_f, &acct_f);
	unsigned a = throttle_delay_for(ip_f), b = throttle_delay_for(acct_f);
	return a > b ? a : b;
}

bool
throttle_blocked(const char *ip, const char *account)
{
	unsigned ip_f, acct_f;

	throttle_lookup(ip, account, &ip_f, &acct_f);
	return ip_f >= throttle_by_ip.block_after ||
	    acct_f >= throttle_by_account.block_after;
}

void
throttle_failure(const char *ip, const char *account)
{
	char key[THROTTLE_KEY_MAX + 1];
	long long now = throttle_now();

	if (ip != NULL) {
		throttle_key(ip, false, key);
		throttle_count(&throttle_by_ip, key, now);
	}
	if (account != NULL) {
		throttle_key(account, true, key);
		throttle_count(&throttle_by_account, key, now);
	}
}

/* Only the address is cleared: the account's count gathers failures from
 * every address, and its owner logging in from home says nothing about
 * the guessing going on elsewhere. */
void
throttle_success(const char *ip, const char *account)
{
	char key[THROTTLE_KEY_MAX + 1];

	(void)account;
	if (ip == NULL)
		return;
	throttle_key(ip, false, key);
	struct throttle_entry *e = throttle_find(&throttle_by_ip, key,
	    throttle_now());
	if (e != NULL)
		throttle_remove(&throttle_by_ip, e);
}

void
throttle_reset(void)
{
	throttle_clear_table(&throttle_by_ip);
	throttle_clear_table(&throttle_by_account);
}
