/* Internal to src/store/store*.c: the store's handle, its index
 * statements, and the helpers the store's files share. Nothing outside
 * src/store includes this.
 *
 * Conventions: int functions return 0 or -1 with *error_r (allocated) and
 * errno set (EIO for index errors); lookups return 1 found, 0 not found,
 * -1 error. Functions named *_locked run inside a BEGIN IMMEDIATE
 * transaction of the caller's. */
#ifndef STORE_STORE_INT_H
#define STORE_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "core/log.h"
#include "store/store.h"

#define STORE_SCHEMA_VERSION	4
#define STORE_NAME_MAX		255	/* octets of a file name */
#define STORE_SCAN_TRIES	3
#define STORE_KEYWORDS_MAX	64	/* per mailbox */
#define STORE_KEYWORD_LEN_MAX	128
#define STORE_F_ALL	(STORE_F_SEEN | STORE_F_ANSWERED | \
			 STORE_F_FLAGGED | STORE_F_DELETED | STORE_F_DRAFT)
/* A deleted folder is renamed to this prefix before it is removed: a
 * name with an empty first level is never a mailbox, so a crash in the
 * middle leaves nothing a client can see. */
#define STORE_TRASH_PREFIX	"..correo-deleted."

enum store_sql {
	SQL_MBOX_GET,
	SQL_MBOX_INSERT,
	SQL_MBOX_UPDATE,
	SQL_MBOX_SPECIAL,
	SQL_MBOX_RENAME,
	SQL_MBOX_ALL,
	SQL_MBOX_DROP_MSGS,
	SQL_MBOX_DROP_VANISHED,
	SQL_MBOX_DROP_KEYWORDS,
	SQL_MBOX_DROP,
	SQL_UIDVALIDITY_LAST,
	SQL_UIDVALIDITY_SET,
	SQL_MSG_LIST,
	SQL_MSG_GET,
	SQL_MSG_UIDS,
	SQL_MSG_INSERT,
	SQL_MSG_FLAGS,
	SQL_MSG_UPDATE,
	SQL_MSG_DELETE,
	SQL_SUMMARY_GET,
	SQL_SUMMARY_BY_NAME,
	SQL_SUMMARY_SET,
	SQL_HDRSEARCH_SET,
	SQL_HDRSEARCH_LIST,
	SQL_MBOX_DELTA,
	SQL_MBOX_STAMP_GET,
	SQL_MBOX_STAMP_SET,
	SQL_MSG_CHANGED,
	SQL_VANISHED_ADD,
	SQL_VANISHED_LIST,
	SQL_KW_LIST,
	SQL_KW_ADD,
	SQL_SUB_LIST,
	SQL_SUB_ADD,
	SQL_SUB_DELETE,
	SQL_COUNT
};

/* A mailbox's row in the index. */
struct store_mbox {
	int64_t id;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	unsigned special;
};

/* How much of an index file SQLite reads through mmap (256 MiB: the
 * index of some 100,000 messages), for the PRAGMA and for store_vfs.c. */
#define STORE_MMAP_SIZE		"268435456"
#define STORE_MMAP_BYTES	((int64_t)268435456)

/* store_vfs.c: the VFS that index files are opened with (one mapping
 * per file for the process, see there); store_vfs_init registers it and
 * may be called any number of times. */
#define STORE_VFS_NAME		"correo-index"
void store_vfs_init(void);

/* Folders a store keeps open between calls: enough for COPY's two and
 * a few STATUS targets. */
#define STORE_FOLDERS		4

/* A mailbox's Maildir, kept open in struct store between calls (so that
 * the per-message calls, summaries above all, make no system call to
 * find it). A caller gets a pointer to the store's slot and must not
 * keep it past the call: another get may reuse the slot, except that
 * the one most recently got is never taken for a different mailbox, so
 * two folders may be held at once (COPY). */
struct store_folder {
	char *name;		/* as in the index: "INBOX" or "a/b"; NULL:
				 * the slot is free */
	char *dir;
	char *curpath;		/* dir/cur, dir/new: for the checks */
	char *newpath;
	int curfd;
	int newfd;
	struct stat cur_st;	/* cur/ and new/ as of the last check */
	struct stat new_st;
	uint64_t used;		/* LRU: st->tick of the last get */
};

/* The result of the last full load of one mailbox, handed out again as
 * long as neither its folder's cur/ and new/ nor its index row changed
 * (see store_scan.c: store_snap_hit for why that is safe). */
struct store_snap {
	char *name;		/* NULL: none */
	struct store_mbox mb;	/* the row it matched */
	struct stat cur_st;
	struct stat new_st;
	struct store_msg *msgs;
	size_t count;
};

/* A folder a write transaction changes (store_touch). */
struct store_touched {
	int64_t mbox_id;
	int curfd, newfd;
	bool clean;		/* the index matched cur/ and new/ before */
	bool scan;		/* a full scan: it makes them match */
};

struct store {
	char *root;		/* the user's Maildir++ root */
	sqlite3 *db;
	sqlite3_stmt *sql[SQL_COUNT];
	struct store_folder folders[STORE_FOLDERS];
	uint64_t tick;
	char *name_in;		/* the last mailbox name resolved, as given */
	char *name_norm;	/* and normalized */
	struct store_snap snap;
	struct store_touched touched[STORE_FOLDERS];
	size_t ntouched;
};

/* A message file seen in cur/ (or new/, for lookups). */
struct store_ent {
	char *name;
	size_t baselen;		/* the unique part, before ':' */
	unsigned flags;
	bool in_new;
	bool stat_ok;		/* mtime and size below are known */
	struct timespec mtime;
	uint64_t size;
};

struct store_scan {
	struct store_ent *v;
	size_t n;
	size_t cap;
};

/* An index row of a message (SQL_MSG_LIST, SQL_MSG_GET). */
struct store_row {
	uint32_t uid;
	unsigned flags;
	char *base;
	size_t baselen;
	uint64_t modseq;
	uint64_t size;
	int64_t internaldate;
	int64_t savedate;
	char *keywords;		/* NULL when none */
};

/* The file of an indexed message, found by its name as the index knows
 * it and, when another program renamed it, by a scan of cur/ and new/
 * made once per operation. */
struct store_lookup {
	struct store_scan scan;
	bool done;
};

/* The keywords defined in one mailbox, in the order first used. */
struct store_kwset {
	int64_t mbox_id;
	char **v;
	size_t n;
};

/* ---- store.c: errors, statements, transactions -------------------------- */

void store_set_error(char **error_r, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* store_set_error and errno = e. */
void store_fail(char **error_r, int e, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
/* Frees *error_r when error_r is given: before an error is set again. */
void store_clear_error(char **error_r);
/* "index: SQLite's message", errno EIO. */
void store_db_error(struct store *st, char **error_r);
/* A prepared statement, reset and with no bindings. */
sqlite3_stmt *store_sql(struct store *st, enum store_sql q);
void store_bind_int(sqlite3_stmt *s, int col, int64_t v);
/* A name or file name (at most STORE_NAME_MAX octets). */
void store_bind_text(sqlite3_stmt *s, int col, const char *p, size_t n);
/* Any string, NULL as NULL; s must live until the statement is reset. */
void store_bind_str(sqlite3_stmt *s, int col, const char *p);
/* A copy of a text column, NULL for NULL. */
char *store_column_str(sqlite3_stmt *s, int col);
void store_bind_blob(sqlite3_stmt *s, int col, const void *p, size_t n);
char *store_column_blob(sqlite3_stmt *s, int col, size_t *len_r);
/* Steps a statement that returns no rows, then resets it. */
int store_run(struct store *st, sqlite3_stmt *s, char **error_r);
int store_exec(struct store *st, const char *sql, char **error_r);
int store_begin(struct store *st, char **error_r);
void store_rollback(struct store *st);
int store_commit(struct store *st, char **error_r);
/* Commits when r is 0, else rolls back; errno is kept. 0 or -1. */
int store_finish(struct store *st, int r, char **error_r);
/* synchronous=FULL (on) or NORMAL; outside a transaction only. */
int store_durable(struct store *st, bool on, char **error_r);
/* qsort(), which must not be given NULL even for no elements. */
void store_sort(void *v, size_t n, size_t size,
    int (*cmp)(const void *, const void *));
/* Runs mime_init() once per process. */
void store_mime_init(void);

/* ---- store_names.c: mailbox names, file names, keywords ----------------- */

bool store_name_is_inbox(const char *name);
/* name (store_mailbox_name_ok) with a first level "INBOX" in any case
 * written "INBOX". Allocated. */
char *store_name_normalize(const char *name);
/* The Maildir++ folder (".a.b", escaped) of a normalized name other than
 * INBOX; NULL when longer than a file name may be. Allocated. */
char *store_name_folder(const char *name);
/* The mailbox name of a folder entry of the root (".a.b"), or NULL when
 * it is not one that store_name_folder makes (not a mailbox for us).
 * Allocated. */
char *store_folder_name(const char *entry);
/* True when name is below parent ("parent/..."). */
bool store_name_is_below(const char *name, const char *parent);
bool store_file_name_ok(const char *name);
unsigned store_flags_parse(const char *letters);
/* The flag letters of a name's ":2," info, or NULL when it has none. */
const char *store_name_letters(const char *name);
/* "base:2,LETTERS" into out (STORE_NAME_MAX + 1 octets). -1: too long. */
int store_name_build(char *out, const char *base, size_t baselen,
    unsigned flags, const char *keep);
/* A keyword as IMAP's flag-keyword: an atom, not a system flag. */
bool store_keyword_ok(const char *kw);

/* ---- store_keywords.c: keyword sets and lists --------------------------- */

int store_kwset_load(struct store *st, int64_t mbox_id,
    struct store_kwset *ks, char **error_r);
void store_kwset_free(struct store_kwset *ks);
/* The mailbox's spelling of kw (case-insensitive match), defining it
 * when add is set: 1 with *out (owned by ks), 0 unknown (add false), -1
 * (errno ENOSPC past STORE_KEYWORDS_MAX). */
int store_kwset_canon(struct store *st, struct store_kwset *ks,
    const char *kw, bool add, const char **out, char **error_r);
/* kws (n, from a client) each once in the mailbox's spelling, in *out
 * (allocated array of nout pointers into ks; free() it). Unknown ones
 * are defined when add is set, else left out. 0 or -1. */
int store_kwset_canon_all(struct store *st, struct store_kwset *ks,
    const char *const *kws, size_t n, bool add, const char ***out,
    size_t *nout, char **error_r);
/* A message's keyword list (space-separated, NULL when empty) with kw
 * canonicalized into ks: an allocated list or NULL; -1 on error. */
int store_kwlist_canon(struct store *st, struct store_kwset *ks,
    const char *list, char **out, char **error_r);
/* Applies op with kws (nkws canonical, distinct) to list: allocated
 * result, NULL when empty. */
char *store_kwlist_apply(const char *list, enum store_flag_op op,
    const char *const *kws, size_t nkws);
/* Equal lists (NULL is empty). */
bool store_kwlist_equal(const char *a, const char *b);

/* ---- store_scan.c: scans, loads, message files -------------------------- */

/* Frees the load snapshot. */
void store_snap_free(struct store_snap *sn);
/* The store's snapshot is of folder name with cur/ and new/ as stat'd
 * now (cur, new), and of the index row (id, UIDVALIDITY, UIDNEXT,
 * HIGHESTMODSEQ): its scan saw every change to the directories up to
 * now, so it proves the index matches them as well as a full scan would
 * (store_delta.c). */
bool store_snap_covers(const struct store *st, const char *name,
    const struct stat *cur, const struct stat *new, int64_t id,
    uint32_t uidvalidity, uint32_t uidnext, uint64_t highestmodseq);
/* store_mailbox_load that does not make its result the store's snapshot
 * (STATUS: the selected mailbox's stays). */
int store_mailbox_load_peek(struct store *st, const char *mailbox,
    struct store_mailbox *out, char **error_r);

void store_scan_free(struct store_scan *sc);
void store_lookup_free(struct store_lookup *lk);
/* Sets *dirfd and copies the file's name to out (STORE_NAME_MAX + 1).
 * 1 found, 0 gone, -1 error. */
int store_find_file(const struct store_folder *f, struct store_lookup *lk,
    const char *base, unsigned flags, int *dirfd, char *out);
/* The index row of uid: 1, 0 when no such row, -1. */
int store_msg_get(struct store *st, int64_t mbox_id, uint32_t uid,
    struct store_row *row, char **error_r);
void store_row_free(struct store_row *r);
/* rename(2) that never replaces an existing file. */
int store_rename_noreplace(int fromfd, const char *from, int tofd,
    const char *to);
/* Adds a vanished record (RFC 7162) for uid. */
int store_vanished_add(struct store *st, int64_t mbox_id, uint32_t uid,
    uint64_t modseq, char **error_r);
/* Caches the summary of these messages of mailbox mbox_id when it is
 * still missing: files read without the lock, one short transaction. */
void store_summaries_fill(struct store *st, int64_t mbox_id,
    const struct store_msg *msgs, size_t n);
/* Writes a computed summary to the index row (inside a transaction). */
int store_summary_set(struct store *st, int64_t mbox_id, uint32_t uid,
    const struct mime_summary *sum, char **error_r);

/* ---- store_delta.c: what changed since a MODSEQ ------------------------- */

/* The length of a directory stamp text, with its NUL. */
#define STORE_STAMP_MAX		128
/* Inside a write transaction, before its first change to f's cur/ or
 * new/ (mbox_id: f's row): notes whether the index matched them; at
 * commit the stamps after the change are recorded (or cleared when it
 * did not match). scan: the transaction is a full scan (which makes the
 * index match whatever it found). */
void store_touch(struct store *st, const struct store_folder *f,
    int64_t mbox_id, bool scan);
/* store_mbox_get and store_touch. */
int store_mbox_touch(struct store *st, const struct store_folder *f,
    struct store_mbox *mb, char **error_r);
/* The vanished UIDs of mailbox mbox_id above since, ascending, appended
 * to *uids (n of them). 0 or -1 (store_flags.c). */
int store_vanished_read(struct store *st, int64_t mbox_id, uint64_t since,
    uint32_t **uids, size_t *n, char **error_r);
/* Records the stamps of the touched folders (store_commit, before the
 * COMMIT). */
void store_stamps_save(struct store *st);

/* ---- store_mailboxes.c: mailbox rows and folders ------------------------ */

/* The row of a mailbox: 1, 0 when none, -1. */
int store_mbox_find(struct store *st, const char *name,
    struct store_mbox *mb, char **error_r);
/* The row of mailbox name, made when missing (a Maildir moved in). */
int store_mbox_get(struct store *st, const char *name,
    struct store_mbox *mb, char **error_r);
int store_mbox_update(struct store *st, const struct store_mbox *mb,
    char **error_r);
/* Removes a mailbox's rows: messages, vanished, keywords, itself. */
int store_mbox_drop(struct store *st, int64_t id, char **error_r);
/* mailbox (a client's name) checked and normalized: a string owned by
 * st, valid until the next call; NULL with EINVAL. */
const char *store_name_resolve(struct store *st, const char *mailbox,
    char **error_r);
/* Resolves mailbox (validated; ENOENT when its folder is missing) to its
 * Maildir, kept open in st: a cached folder is checked (a stat of cur/
 * and new/, whose results are left in f->cur_st and f->new_st) and
 * opened again when another process replaced or removed it. Missing
 * cur/, new/ and tmp/ are made (and INBOX's root). The folder or NULL. */
struct store_folder *store_folder_open(struct store *st, const char *mailbox,
    char **error_r);
/* store_folder_open without the check of a cached folder: for reading
 * a message the index just named. */
struct store_folder *store_folder_cached(struct store *st,
    const char *mailbox, char **error_r);
/* The header search cache of uid, made from its file (an index made
 * before schema version 3 has none): 0 with *cache_r (NULL when the
 * message's fields are too long for one), or -1. */
int store_hdrcache_compute(struct store *st, const struct store_folder *f,
    int64_t mbox_id, uint32_t uid, char **cache_r, size_t *len_r,
    char **error_r);
/* Closes every cached folder and drops the load snapshot: after this
 * store deleted or renamed folders. */
void store_folders_forget(struct store *st);
/* Makes the folder of name (normalized) and its missing superiors, and
 * their rows: errno EEXIST when name exists. */
int store_mailbox_create_locked(struct store *st, const char *name,
    unsigned special, char **error_r);
/* Adds (on) or removes a subscription of a normalized name. */
int store_subscribe_locked(struct store *st, const char *name, bool on,
    char **error_r);
/* Removes the directory entry name of dirfd and all below it; symlinks
 * are removed, never followed. 0 or -1 with errno. */
int store_rmtree(int dirfd, const char *name);

/* ---- store_copy.c ------------------------------------------------------- */

/* COPY/MOVE inside the caller's transaction: see store_copy. */
int store_copy_locked(struct store *st, const struct store_folder *src,
    const struct store_folder *dst, const uint32_t *uids, size_t n,
    bool move, uint32_t *uidvalidity_r, uint32_t *src_uids,
    uint32_t *dst_uids, size_t *ncopied, char **error_r);

#endif
