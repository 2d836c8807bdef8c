/* A user's mail store: the Maildir++ tree data_dir/mail/DOMAIN/LOCAL and
 * its index, index.db (SQLite, WAL, synchronous=NORMAL) in the same
 * folder. The index is the authority for UIDVALIDITY, UIDs, UIDNEXT and
 * MODSEQ (RFC 9051, RFC 7162); the Maildir holds the messages and, in the
 * file names' ":2,FLAGS" suffix, the standard flags, so that other Maildir
 * readers (Dovecot, mutt) see them too.
 *
 * Every function here is blocking (directory scans, SQLite, fsync): call
 * them from the thread pool. One struct store is used by one thread at a
 * time; several stores (sessions) may be open on the same user at once,
 * in this process or another: SQLite transactions keep them consistent.
 *
 * Untrusted input: file names found in the Maildir (written by anyone with
 * access), mailbox names from clients (checked by store_mailbox_name_ok). */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The standard flags (RFC 9051 2.3.2) and their Maildir letters. */
#define STORE_F_SEEN		0x01	/* S */
#define STORE_F_ANSWERED	0x02	/* R */
#define STORE_F_FLAGGED		0x04	/* F */
#define STORE_F_DELETED		0x08	/* T */
#define STORE_F_DRAFT		0x10	/* D */

struct store;

struct store_msg {
	uint32_t uid;
	uint64_t size;		/* octets of the file: RFC822.SIZE */
	unsigned flags;		/* STORE_F_* */
	uint64_t modseq;
	time_t internaldate;	/* arrival: the file's mtime at first sight */
	char *path;		/* absolute or data_dir-relative path to open */
};

/* A path in struct store_msg is the file's name at load time. Another
 * session may rename the file since (store_set_flags, or a Maildir reader
 * like mutt), so opening it can fail with ENOENT while the message still
 * exists: open it with store_msg_open, which looks for the new name, or
 * load the mailbox again. After this store's own store_set_flags the path
 * is stale too. */

struct store_mailbox {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	size_t count;
	struct store_msg *msgs;	/* ascending UID */
};

/* Opens the store of a user (canonical address) under data_dir, creating
 * the Maildir, INBOX's index entry and index.db when missing. NULL with
 * *error_r (allocated) on failure. */
struct store *store_open(const char *data_dir, const char *address,
    char **error_r);
void store_close(struct store *st);

/* True for a mailbox name that maps to a safe Maildir++ folder: "INBOX"
 * (any case) or names without "/", "\\", control characters, a leading
 * ".", "..", an empty hierarchy level, or over 255 octets. Hierarchy
 * separator "." in the Maildir (".Sent", ".Archive.2026"), "/" for
 * clients is the caller's business: here names use "." already. */
bool store_mailbox_name_ok(const char *name);

/* Brings the index up to date with the Maildir of mailbox ("INBOX" or a
 * folder name): files in new/ move to cur/ (keeping their base name,
 * adding ":2,"), files not yet indexed get the next UIDs in order of
 * (mtime, name), flags are read from the file names, indexed files that
 * are gone are removed. Then fills *out with every message (the caller
 * frees it with store_mailbox_free). 0 or -1 with *error_r, also when a
 * folder other than INBOX does not exist ("no such mailbox"); *out is
 * then empty (store_mailbox_free is still safe). */
int store_mailbox_load(struct store *st, const char *mailbox,
    struct store_mailbox *out, char **error_r);
void store_mailbox_free(struct store_mailbox *mb);

/* Removes the messages with these UIDs: unlinks their files (then fsyncs
 * cur/) and deletes them from the index, raising HIGHESTMODSEQ. UIDs that
 * are already gone are skipped. 0 or -1 with *error_r. */
int store_expunge(struct store *st, const char *mailbox,
    const uint32_t *uids, size_t n, char **error_r);

/* Sets the flags of one message to flags (rename of its file, new modseq).
 * 0, or -1 with *error_r (also when the UID does not exist). */
int store_set_flags(struct store *st, const char *mailbox, uint32_t uid,
    unsigned flags, char **error_r);

/* Makes the mailbox name (store_mailbox_name_ok, not INBOX): the Maildir++
 * folder root/.NAME with cur/ new/ tmp/ and its index entry with a new
 * UIDVALIDITY. A folder that exists on disk but not in the index (moved
 * in) is indexed on its first store_mailbox_load, without this call.
 * 0, or -1 with *error_r; errno is EEXIST when the mailbox exists. */
int store_mailbox_create(struct store *st, const char *name, char **error_r);

/* Opens a message file read-only (no symlinks): path as given, or when
 * that is gone, the file of the same folder with the same base name (the
 * part before ':'), which is the same message under new flags. A file
 * descriptor, or -1 with errno (ENOENT: the message was expunged). */
int store_msg_open(const char *path);

#endif
