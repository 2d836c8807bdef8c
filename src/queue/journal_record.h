/* The records of the delivery journal (queue/journal/N): one per message
 * accepted for local mailboxes only, written and fdatasync'd before the
 * 250, so that the Maildir links need no fsync of their own.
 *
 * A record, every integer little-endian, its length a multiple of 8:
 *   0  magic "CRJ1"          4  reserved (0)
 *   8  generation            16 record length (header included, padded)
 *   24 content length        32 number of targets
 *   36 target table length   40 hash of the fields above and of every
 *                               octet from 48 to the end
 *   48 targets: u16 length, Maildir path, u16 length, file name; each
 *   then the message, then zeros to the next multiple of 8 (or further:
 *   the last record of a batch pads it to a whole disk block).
 * A segment file holds records of one generation from offset 0; the first
 * record that does not check, or is of another generation, ends it. */
#ifndef QUEUE_JOURNAL_RECORD_H
#define QUEUE_JOURNAL_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define JOURNAL_MAGIC		0x314a5243u	/* "CRJ1" */
#define JOURNAL_HDR_SIZE	48
#define JOURNAL_MAX_TARGETS	100000

struct journal_target {
	char *path;		/* the Maildir */
	char *name;		/* the file name in new/ */
};

/* A record read back (journal_rec_next); content points into the
 * segment's buffer, the targets are owned (journal_rec_free). */
struct journal_rec {
	uint64_t gen;
	const unsigned char *content;
	uint64_t content_len;
	struct journal_target *targets;
	size_t ntargets;
};

/* 64-bit hash of n octets (not cryptographic: it finds torn writes). */
uint64_t journal_hash(uint64_t seed, const void *p, size_t n);

/* Length of the record for these targets and content_len octets, or 0
 * when a name or path is too long for the format. */
size_t journal_rec_size(const struct journal_target *t, size_t nt,
    uint64_t content_len);
/* Writes the header and target table to dst (journal_rec_size octets);
 * returns the offset where the content goes. */
size_t journal_rec_begin(unsigned char *dst, uint64_t gen,
    const struct journal_target *t, size_t nt, uint64_t content_len);
/* Once the content is in place: zero padding and the hash. */
void journal_rec_seal(unsigned char *dst);
/* Makes the record total octets long (more than journal_rec_size, a
 * multiple of 8: the zeros that align a batch); seal it again after. */
void journal_rec_extend(unsigned char *dst, size_t total);

/* Reads the record at p (avail octets). *gen is the segment's generation,
 * 0 when p is its first record (it is set then). Returns the record's
 * length, or 0 at the end of the segment (nothing valid at p). */
size_t journal_rec_next(const unsigned char *p, size_t avail, uint64_t *gen,
    struct journal_rec *r);
void journal_rec_free(struct journal_rec *r);

#endif
