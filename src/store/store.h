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
	time_t savedate;	/* when it entered this mailbox (RFC 8514) */
	char *path;		/* absolute or data_dir-relative path to open */
	char *keywords;		/* IMAP keywords, space-separated, in the
				 * order first set; NULL when none */
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

/* True for a mailbox name that maps to a safe Maildir++ folder (see
 * "Mailbox names" below): "INBOX" (any case), or valid UTF-8 of at most
 * 255 octets, "/" between hierarchy levels, with no empty level (so no
 * leading, trailing or doubled "/"), no level starting with "." (so
 * neither "." nor ".."), no control characters (C0, DEL, C1), and a
 * folder name (escapes included) that fits in a file name. */
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

/* What changed in a mailbox since a MODSEQ (a session's last look), read
 * from the index alone: no scan of cur/ (10,000 entries), no copy of
 * every message. Only when the index is known to match the Maildir: the
 * stamps of cur/ and new/ are those the last writer through a store (or
 * the last full scan) recorded, and a full scan ran less than
 * STORE_RESCAN_SECS ago. 1 with *out; 0 when the caller must load the
 * mailbox (store_mailbox_load) instead: the Maildir changed behind the
 * index, a scan is due, or uidvalidity is not the mailbox's; -1 with
 * *error_r. Free *out with store_changes_free. */
#define STORE_RESCAN_SECS	10
struct store_changes {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	struct store_msg *msgs;	/* changed or new, ascending UID */
	size_t count;
	uint32_t *vanished;	/* expunged since, ascending */
	size_t nvanished;
};
int store_mailbox_changes(struct store *st, const char *mailbox,
    uint32_t uidvalidity, uint64_t since, struct store_changes *out,
    char **error_r);
void store_changes_free(struct store_changes *ch);

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

/* ---- added for IMAP ----
 *
 * Mailbox names: UTF-8, "/" separates hierarchy levels ("Archive/2026"),
 * "INBOX" in any case is the inbox. On disk a name maps to the Maildir++
 * folder root/.LEVEL.LEVEL where "." and "%" inside a level are written
 * "%2E" and "%25" (so a "." in a client's name never makes a level), and
 * store_mailbox_name_ok refuses what cannot map safely. */

/* Special-use attributes (RFC 6154) of a mailbox. */
#define STORE_USE_SENT		0x01
#define STORE_USE_DRAFTS	0x02
#define STORE_USE_TRASH		0x04
#define STORE_USE_JUNK		0x08
#define STORE_USE_ARCHIVE	0x10
#define STORE_USE_ALL		0x20	/* not created by correo */
#define STORE_USE_FLAGGED	0x40

/* Sent, Drafts, Trash, Junk and Archive with their attributes exist for
 * every user: store_open creates the missing ones once, when it creates
 * the index (a user may delete them later). */

struct store_mailbox_info {
	char *name;		/* UTF-8, "/" hierarchy */
	unsigned special;	/* STORE_USE_* */
	bool subscribed;
	bool exists;		/* false: subscribed only (\NonExistent) */
	bool has_children;	/* an existing mailbox below it */
};

/* Every mailbox (existing, or subscribed), INBOX first, then by name.
 * Folders found on disk but not in the index are added to it. The caller
 * frees with store_mailbox_list_free. 0 or -1 with *error_r. */
int store_mailbox_list(struct store *st, struct store_mailbox_info **out,
    size_t *n, char **error_r);
void store_mailbox_list_free(struct store_mailbox_info *v, size_t n);

/* store_mailbox_create with special-use attributes (0: none). */
int store_mailbox_create_special(struct store *st, const char *name,
    unsigned special, char **error_r);

/* Deletes a mailbox: its messages, folder and index rows (RFC 9051
 * 6.3.4). Mailboxes below it stay (Maildir++ folders do not need their
 * parent; LIST shows the parent as \NonExistent / \Noselect). INBOX is
 * refused (errno EPERM); errno ENOENT when it does not exist. 0 or -1. */
int store_mailbox_delete(struct store *st, const char *name, char **error_r);

/* Renames a mailbox and every mailbox below it (their UIDVALIDITY is
 * kept). Renaming INBOX moves all its messages to the new mailbox (new
 * UIDs there) and leaves INBOX empty (RFC 9051 6.3.6). errno EEXIST when
 * the new name exists, ENOENT when the old does not. 0 or -1. */
int store_mailbox_rename(struct store *st, const char *from, const char *to,
    char **error_r);

/* Adds or removes a subscription (a name need not exist). 0 or -1. */
int store_subscribe(struct store *st, const char *name, bool on,
    char **error_r);

struct store_status {
	uint32_t messages;
	uint32_t unseen;
	uint32_t deleted;
	uint32_t uidnext;
	uint32_t uidvalidity;
	uint64_t size;		/* sum of RFC822.SIZE */
	uint64_t highestmodseq;
};

/* The STATUS figures of a mailbox, after bringing its index up to date
 * with the Maildir (like store_mailbox_load). errno ENOENT for no such
 * mailbox. 0 or -1 with *error_r. */
int store_mailbox_status(struct store *st, const char *name,
    struct store_status *out, char **error_r);

/* Changing flags of many messages in one transaction (IMAP STORE). */
enum store_flag_op {
	STORE_FLAGS_SET,
	STORE_FLAGS_ADD,
	STORE_FLAGS_REMOVE
};

struct store_flag_update {
	enum store_flag_op op;
	unsigned flags;				/* STORE_F_* */
	const char *const *keywords;		/* as given by the client */
	size_t nkeywords;
	uint64_t unchangedsince;		/* RFC 7162; 0: none */
	bool has_unchangedsince;
};

struct store_flag_result {
	uint32_t uid;
	bool gone;		/* no such message (expunged meanwhile) */
	bool modified;		/* UNCHANGEDSINCE test failed: untouched */
	bool changed;		/* flags or keywords changed (new modseq) */
	unsigned flags;		/* the flags after */
	char *keywords;		/* after; NULL when none (caller frees) */
	uint64_t modseq;	/* after */
};

/* Applies u to each of the n UIDs (ascending) of mailbox: one
 * transaction, one new MODSEQ for all messages changed, files renamed for
 * the standard flags. res has n entries; free with
 * store_flag_results_free. Keywords compare case-insensitively and are
 * limited to 64 per mailbox (more: -1 with errno ENOSPC). 0 or -1. */
int store_update_flags(struct store *st, const char *mailbox,
    const uint32_t *uids, size_t n, const struct store_flag_update *u,
    struct store_flag_result *res, char **error_r);
void store_flag_results_free(struct store_flag_result *res, size_t n);

/* The keywords defined in mailbox (every keyword ever set there, in the
 * spelling first used, in that order): for FLAGS and PERMANENTFLAGS.
 * *out (n entries) is freed with store_keywords_free. 0 or -1 with
 * *error_r (errno ENOENT for no such mailbox). */
int store_mailbox_keywords(struct store *st, const char *mailbox,
    char ***out, size_t *n, char **error_r);
void store_keywords_free(char **v, size_t n);

/* Expunged UIDs with their MODSEQ are remembered (RFC 7162 QRESYNC
 * VANISHED): the UIDs of mailbox expunged with a MODSEQ above
 * since_modseq, ascending, in *uids (caller frees). 0 or -1. */
int store_vanished(struct store *st, const char *mailbox,
    uint64_t since_modseq, uint32_t **uids, size_t *n, char **error_r);

/* APPEND: a new file in the user's tmp/ to write the message into (the
 * caller writes with CRLF line ends as received). An fd open for
 * writing and *path_r (caller frees), or -1 with *error_r. */
int store_append_begin(struct store *st, char **path_r, char **error_r);
/* The same in the user's Maildir root (data_dir/mail/DOMAIN/LOCAL), for a
 * caller that has no store open. */
int store_append_begin_at(const char *root, char **path_r, char **error_r);

/* Finishes an APPEND: fsyncs the file, sets its mtime to internaldate
 * (0: now), moves it into mailbox's cur/ with the flags in its name,
 * fsyncs cur/, and indexes it with the next UID and the keywords. The
 * message's MIME summary is cached as at delivery. *uidvalidity_r and
 * *uid_r for APPENDUID. On failure the tmp file is removed. errno ENOENT
 * for no such mailbox. 0 or -1 with *error_r. */
int store_append_commit(struct store *st, const char *mailbox,
    const char *tmp_path, unsigned flags, const char *const *keywords,
    size_t nkeywords, time_t internaldate, uint32_t *uidvalidity_r,
    uint32_t *uid_r, char **error_r);

/* Removes an APPEND file that will not be committed. */
void store_append_abort(const char *tmp_path);

/* COPY and MOVE: the n messages (ascending UIDs) of from go to to, in
 * order, with their flags, keywords and internal date (hard links, or a
 * copy across file systems; to's cur/ fsync'd before the index commit).
 * For MOVE they are then expunged from from (VANISHED records kept).
 * Messages already gone are skipped. src_uids/dst_uids (n entries each)
 * get the pairs of what was copied, *ncopied their count, and
 * *uidvalidity_r the destination's (COPYUID). errno ENOENT when to does
 * not exist. 0 or -1 with *error_r. */
int store_copy(struct store *st, const char *from, const char *to,
    const uint32_t *uids, size_t n, bool move, uint32_t *uidvalidity_r,
    uint32_t *src_uids, uint32_t *dst_uids, size_t *ncopied,
    char **error_r);

/* The message's cached summary (see store/mime.h: ENVELOPE, BODY,
 * BODYSTRUCTURE as IMAP text, the Date: header's time), computed from the
 * file and stored in the index the first time it is asked for (or when
 * the message is first indexed). The caller frees with
 * mime_summary_free. errno ENOENT for no such message. 0 or -1. */
struct mime_summary;
int store_msg_summary(struct store *st, const char *mailbox, uint32_t uid,
    struct mime_summary *out, char **error_r);

/* The header search caches (store/mime.h, mime_hdrcache_make) of a
 * mailbox's messages, read in one pass: open, then ask for UIDs in
 * ascending order. store_hdrs_get gives 1 with the cache (valid until the
 * next call), 0 when the message has none (or is not in the index), -1
 * on an error. Open fails with ESTALE when the mailbox's UIDVALIDITY is
 * no longer uidvalidity. The rows are read in batches, so st may be used
 * for anything else between calls. */
struct store_hdrs;
struct store_hdrs *store_hdrs_open(struct store *st, const char *mailbox,
    uint32_t uidvalidity, uint32_t first_uid, char **error_r);
int store_hdrs_get(struct store_hdrs *h, uint32_t uid, const void **cache,
    size_t *len);
void store_hdrs_close(struct store_hdrs *h);

/* Opens a message file read-only (no symlinks): path as given, or when
 * that is gone, the file of the same folder with the same base name (the
 * part before ':'), which is the same message under new flags. A file
 * descriptor, or -1 with errno (ENOENT: the message was expunged). */
int store_msg_open(const char *path);
/* path names a message's file as the index knows it (the base and our
 * flag letters); old, a path the same message had before, may carry
 * other programs' letters (keywords of another Maildir reader), which a
 * flag change keeps. The path with them kept (malloc'd), or NULL when
 * old is another message's or path needs nothing. */
char *store_path_keep_letters(const char *path, const char *old);

#endif
