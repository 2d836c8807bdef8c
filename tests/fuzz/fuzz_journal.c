/* libFuzzer harness for src/queue/journal_record.c: what a journal
 * segment holds after a crash is whatever reached the disk. The first
 * octet picks the mode:
 *   even: the rest is a segment, read as replay reads it;
 *   odd:  the rest describes records ("path\0name\0message\0..."), which
 *         are built, read back and compared, then one octet of the
 *         segment is flipped and it is read again. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/journal_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
	    #cond); abort(); } } while (0)

/* Reads a segment; checks every record; returns how many. */
static size_t
read_segment(const unsigned char *p, size_t n)
{
	uint64_t gen = 0;
	size_t off = 0, k, count = 0;
	struct journal_rec r = { 0 };

	if (p == NULL)
		return 0;
	while ((k = journal_rec_next(p + off, n - off, &gen, &r)) > 0) {
		CHECK(k >= JOURNAL_HDR_SIZE && k % 8 == 0 && k <= n - off);
		CHECK(r.gen == gen && gen != 0);
		CHECK(r.content >= p + off + JOURNAL_HDR_SIZE);
		CHECK(r.content + r.content_len <= p + off + k);
		CHECK(r.ntargets > 0);
		for (size_t i = 0; i < r.ntargets; i++) {
			const char *name = r.targets[i].name;
			CHECK(r.targets[i].path[0] != '\0' && name[0] != '\0');
			CHECK(strchr(name, '/') == NULL);
			CHECK(strcmp(name, ".") != 0 && strcmp(name, "..") != 0);
		}
		journal_rec_free(&r);
		off += k;
		count++;
	}
	CHECK(r.targets == NULL);
	return count;
}

/* The next '\0'-ended field of in, or the rest. */
static const char *
field(const uint8_t **in, const uint8_t *end, size_t *len)
{
	const uint8_t *z = memchr(*in, 0, (size_t)(end - *in));
	const char *f = (const char *)*in;
	*len = (size_t)((z ? z : end) - *in);
	*in = z ? z + 1 : end;
	return f;
}

static void
build_and_compare(const uint8_t *in, size_t size)
{
	const uint8_t *end = in + size;
	unsigned char *seg = NULL;
	size_t len = 0, want = 0;
	char *keep[3 * 8];
	size_t nkeep = 0;
	struct { const char *c; size_t n; } content[8];

	while (in < end && want < 8 &&
	    nkeep + 2 <= sizeof(keep) / sizeof(keep[0])) {
		size_t pl, nl, cl;
		const char *p = field(&in, end, &pl);
		const char *nm = field(&in, end, &nl);
		const char *c = field(&in, end, &cl);
		char *path = strndup(p, pl), *name = strndup(nm, nl);
		keep[nkeep++] = path;
		keep[nkeep++] = name;
		struct journal_target t = { path, name };
		size_t rsz = journal_rec_size(&t, 1, cl);
		if (pl == 0 || nl == 0)
			CHECK(rsz == 0);
		if (rsz == 0)
			continue;
		seg = realloc(seg, len + rsz);
		size_t off = journal_rec_begin(seg + len, 42, &t, 1, cl);
		memcpy(seg + len + off, c, cl);
		journal_rec_seal(seg + len);
		bool legal = strchr(name, '/') == NULL && strcmp(name, ".") &&
		    strcmp(name, "..");
		len += rsz;
		if (!legal)
			break;		/* reading stops here */
		content[want].c = c;
		content[want].n = cl;
		want++;
	}
	CHECK(read_segment(seg, len) == want);
	uint64_t gen = 0;
	size_t off = 0;
	for (size_t i = 0; i < want; i++) {
		struct journal_rec r;
		size_t k = journal_rec_next(seg + off, len - off, &gen, &r);
		CHECK(k > 0 && r.content_len == content[i].n);
		CHECK(memcmp(r.content, content[i].c, content[i].n) == 0);
		journal_rec_free(&r);
		off += k;
	}
	if (len > 0) {
		/* A torn write: the records before it still read back. */
		size_t at = (size_t)(content[0].n * 131 + want) % len;
		seg[at] ^= 0x20;
		read_segment(seg, len);
	}
	for (size_t i = 0; i < nkeep; i++)
		free(keep[i]);
	free(seg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] % 2 == 0) {
		unsigned char *copy = malloc(size - 1 ? size - 1 : 1);
		memcpy(copy, data + 1, size - 1);
		read_segment(copy, size - 1);
		free(copy);
	} else {
		build_and_compare(data + 1, size - 1);
	}
	return 0;
}
