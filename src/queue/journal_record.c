/* Journal record format: see journal_record.h. */
#include "queue/journal_record.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

#define HASH_MUL 0x9e3779b97f4a7c15ULL

static uint64_t
get64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static void
put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

static void
put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t
mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * HASH_MUL;
	return h ^ (h >> 29);
}

uint64_t
journal_hash(uint64_t seed, const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = mix(seed, n);
	uint64_t lane[4] = { h, h ^ 1, h ^ 2, h ^ 3 };
	size_t i = 0;

	/* Four independent lanes, 32 octets a round: the multiplies of one
	 * round do not wait for each other. */
	for (; i + 32 <= n; i += 32) {
		for (int k = 0; k < 4; k++) {
			uint64_t w;
			memcpy(&w, s + i + 8 * k, 8);
			lane[k] = mix(lane[k], le64toh(w));
		}
	}
	for (int k = 0; k < 4; k++)
		h = mix(h, lane[k]);
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		h = mix(h, le64toh(w));
	}
	uint64_t w = 0;
	for (size_t k = 0; i + k < n; k++)
		w |= (uint64_t)s[i + k] << (8 * k);
	return mix(h, w) * HASH_MUL;
}

static size_t
pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static size_t
journal_meta_len(const struct journal_target *t, size_t nt)
{
	size_t n = 0;
	for (size_t i = 0; i < nt; i++) {
		size_t a = strlen(t[i].path), b = strlen(t[i].name);
		if (a == 0 || a > 0xffff || b == 0 || b > 0xffff)
			return 0;
		n += 4 + a + b;
	}
	return n;
}

size_t
journal_rec_size(const struct journal_target *t, size_t nt,
    uint64_t content_len)
{
	size_t meta = journal_meta_len(t, nt);
	if (nt == 0 || nt > JOURNAL_MAX_TARGETS || meta == 0 ||
	    meta > UINT32_MAX || content_len > SIZE_MAX / 2)
		return 0;
	return pad8(JOURNAL_HDR_SIZE + meta + (size_t)content_len);
}

size_t
journal_rec_begin(unsigned char *dst, uint64_t gen,
    const struct journal_target *t, size_t nt, uint64_t content_len)
{
	size_t meta = journal_meta_len(t, nt);
	size_t total = pad8(JOURNAL_HDR_SIZE + meta + (size_t)content_len);

	memset(dst, 0, JOURNAL_HDR_SIZE);
	put32(dst, JOURNAL_MAGIC);
	put64(dst + 8, gen);
	put64(dst + 16, total);
	put64(dst + 24, content_len);
	put32(dst + 32, (uint32_t)nt);
	put32(dst + 36, (uint32_t)meta);
	unsigned char *p = dst + JOURNAL_HDR_SIZE;
	for (size_t i = 0; i < nt; i++) {
		const char *f[2] = { t[i].path, t[i].name };
		for (int k = 0; k < 2; k++) {
			size_t n = strlen(f[k]);
			p[0] = (unsigned char)n;
			p[1] = (unsigned char)(n >> 8);
			memcpy(p + 2, f[k], n);
			p += 2 + n;
		}
	}
	return JOURNAL_HDR_SIZE + meta;
}

/* The hash of a record of total octets at p (its hash field skipped). */
static uint64_t
journal_rec_hash(const unsigned char *p, size_t total)
{
	uint64_t h = journal_hash(get64(p + 8), p, 40);
	return journal_hash(h, p + JOURNAL_HDR_SIZE, total - JOURNAL_HDR_SIZE);
}

void
journal_rec_extend(unsigned char *dst, size_t total)
{
	put64(dst + 16, total);
}

void
journal_rec_seal(unsigned char *dst)
{
	size_t total = (size_t)get64(dst + 16);
	size_t used = JOURNAL_HDR_SIZE + get32(dst + 36) +
	    (size_t)get64(dst + 24);
	memset(dst + used, 0, total - used);
	put64(dst + 40, journal_rec_hash(dst, total));
}

void
journal_rec_free(struct journal_rec *r)
{
	for (size_t i = 0; i < r->ntargets; i++) {
		free(r->targets[i].path);
		free(r->targets[i].name);
	}
	free(r->targets);
	memset(r, 0, sizeof(*r));
}

/* A name that stays in new/: no '/', not "." or "..", no NUL. */
static int
journal_name_ok(const unsigned char *s, size_t n)
{
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return 0;
	return memchr(s, '/', n) == NULL && memchr(s, '\0', n) == NULL;
}

static int
journal_parse_targets(const unsigned char *p, size_t meta, size_t nt,
    struct journal_rec *r)
{
	size_t off = 0;

	r->targets = x_calloc(nt, sizeof(*r->targets));
	for (size_t i = 0; i < nt; i++) {
		size_t len[2];
		const unsigned char *s[2];
		for (int k = 0; k < 2; k++) {
			if (meta - off < 2)
				return -1;
			len[k] = (size_t)p[off] | (size_t)p[off + 1] << 8;
			off += 2;
			if (len[k] == 0 || meta - off < len[k])
				return -1;
			s[k] = p + off;
			off += len[k];
		}
		if (memchr(s[0], '\0', len[0]) != NULL ||
		    !journal_name_ok(s[1], len[1]))
			return -1;
		r->targets[i].path = x_strndup((const char *)s[0], len[0]);
		r->targets[i].name = x_strndup((const char *)s[1], len[1]);
		r->ntargets = i + 1;
	}
	return off == meta ? 0 : -1;
}

size_t
journal_rec_next(const unsigned char *p, size_t avail, uint64_t *gen,
    struct journal_rec *r)
{
	memset(r, 0, sizeof(*r));
	if (avail < JOURNAL_HDR_SIZE || get32(p) != JOURNAL_MAGIC ||
	    get32(p + 4) != 0)
		return 0;
	uint64_t g = get64(p + 8), total = get64(p + 16);
	uint64_t clen = get64(p + 24);
	size_t nt = get32(p + 32), meta = get32(p + 36);
	if (g == 0 || (*gen != 0 && g != *gen))
		return 0;
	if (total > avail || clen > avail || meta > avail || nt == 0 ||
	    nt > JOURNAL_MAX_TARGETS || total % 8 != 0 ||
	    total < pad8(JOURNAL_HDR_SIZE + meta + (size_t)clen))
		return 0;
	if (get64(p + 40) != journal_rec_hash(p, (size_t)total))
		return 0;
	if (journal_parse_targets(p + JOURNAL_HDR_SIZE, meta, nt, r) < 0) {
		journal_rec_free(r);
		return 0;
	}
	r->gen = g;
	r->content = p + JOURNAL_HDR_SIZE + meta;
	r->content_len = clen;
	*gen = g;
	return (size_t)total;
}
