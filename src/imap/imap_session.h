/* IMAP session internals shared by the files of src/imap.
 *
 * Threading: the session lives on the loop thread. A command that touches
 * the store runs its work on the thread pool (busy set, input paused);
 * while it runs only that job touches the session's store and view, and
 * the loop touches neither. The job's output goes to s->out, which the
 * core writes to the connection when the job is done.
 *
 * A command's life: imap_session.c parses it into s->cmd, checks the state
 * it is allowed in, and calls its imap_cmd_* handler on the loop. The
 * handler either answers at once (imap_send, imap_tagged) or starts a job
 * (imap_job). The command ends (imap_command_end: s->cmd freed, APPEND
 * files removed, input read on) after the handler or the job's done
 * callback returns, unless a job is running (s->busy), a FETCH continues
 * (s->fetch), or the session waits for input of its own (IDLE, SASL). */
#ifndef IMAP_SESSION_H
#define IMAP_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth_async.h"
#include "core/buf.h"
#include "imap/imap.h"
#include "imap/imap_parse.h"
#include "net/conn.h"
#include "store/store.h"

/* A command line, and the command with its literals, kept in memory;
 * tighter before login (RFC 9051 leaves limits to the server). */
#define IMAP_LINE_MAX_PREAUTH	8192
#define IMAP_LINE_MAX		(64 * 1024)
#define IMAP_COMMAND_MAX_PREAUTH (16 * 1024)
#define IMAP_COMMAND_MAX	(1024 * 1024)
/* APPEND literals above this go to a file, not to memory. */
#define IMAP_MEM_LITERAL_MAX	(64 * 1024)
#define IMAP_OUTPUT_HIGH	(256 * 1024)
/* One pool job writes at most about this much before yielding. */
#define IMAP_JOB_OUTPUT		(512 * 1024)
/* RFC 9051 5.4: at least 30 minutes once authenticated. */
#define IMAP_TIMEOUT_S		(30 * 60)
#define IMAP_TIMEOUT_PREAUTH_S	180
/* An IDLE client also learns of changes made by other processes. */
#define IMAP_IDLE_POLL_MS	30000

struct imap_server {
	const struct config *cfg;
	struct userdb *db;
};

enum imap_state {
	IMAP_ST_NOT_AUTH,
	IMAP_ST_AUTH,
	IMAP_ST_SELECTED,
	IMAP_ST_LOGOUT
};

/* What the next input line is. */
enum imap_input_mode {
	IMAP_IN_COMMAND,	/* a command line (or its continuation) */
	IMAP_IN_LITERAL,	/* octets of a literal */
	IMAP_IN_SASL,		/* an AUTHENTICATE response line */
	IMAP_IN_IDLE		/* "DONE" */
};

/* One message of the selected mailbox as this session knows it. */
struct imap_msg {
	uint32_t uid;
	unsigned flags;		/* STORE_F_* */
	uint64_t modseq;
	uint64_t size;
	time_t internaldate;
	time_t savedate;
	char *keywords;		/* space-separated or NULL */
	char *path;
	bool expunged;		/* gone, EXPUNGE not yet sent */
};

/* The selected mailbox: its messages in sequence order. */
struct imap_view {
	char *name;		/* store name */
	bool readonly;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint64_t synced_modseq;	/* the store's HIGHESTMODSEQ at the last
				 * sync: changes above it are news */
	struct imap_msg *msgs;
	size_t count;
	char *keywords;		/* keywords announced by FLAGS */
	uint32_t *saved;	/* SEARCHRES "$": UIDs */
	size_t nsaved;
};

/* A file literal of APPEND being received or waiting for the parse. */
struct imap_append_file {
	char *path;
	int fd;
	uint64_t size;
	int error;		/* errno of a failed write or close, or 0 */
};

struct imap_fetch_job;

struct imap_session {
	struct conn *conn;
	struct imap_server *srv;
	const struct config *cfg;
	uint64_t id;
	enum imap_state state;
	enum imap_input_mode input;
	unsigned errors;

	/* the command being collected */
	struct buf line;
	struct buf cmdbuf;
	struct imap_file_literal *files;
	struct imap_append_file *afiles;
	size_t nfiles;
	uint64_t literal_left;
	bool literal_to_file;
	bool literal_discard;	/* reading a refused non-sync literal */
	char cmd_tag[IMAP_TAG_MAX + 1];

	struct imap_command cmd;	/* the command being run */
	bool have_cmd;
	bool in_process;		/* inside the input loop */

	/* authentication */
	struct auth_session auth;
	char *user;			/* canonical, once logged in */
	char *root;			/* the user's Maildir root */

	/* ENABLE / client state */
	bool rev2;
	bool utf8;
	bool condstore;			/* CONDSTORE enabled or used */
	bool qresync;

	/* store work */
	bool busy;
	bool gone;
	struct store *store;
	struct imap_view view;
	bool selected;
	struct buf out;			/* a job's output */
	char *error;			/* a job's error text */
	int job_status;
	bool store_failed;	/* a job could not open the store */
	void (*job_work)(struct imap_session *s);
	void (*job_done)(struct imap_session *s);
	struct imap_fetch_job *fetch;	/* a FETCH in progress */

	/* IDLE and change notification */
	struct notify_watch *watch;
	bool changed;			/* a notification came */
	struct timer *idle_timer;
	bool idle_sync_running;
};

/* imap_session.c */
void imap_enter_state(struct imap_session *s, enum imap_state st);
/* Writes s->out to the connection (loop thread). */
void imap_flush(struct imap_session *s);
/* Writes a line (CRLF added) to the connection (loop thread). */
void imap_send(struct imap_session *s, const char *fmt, ...)
    PRINTF_LIKE(2, 3);
/* The tagged completion of the current command: "OK", "NO" or "BAD"
 * with text (which may start with a [CODE]), written to the connection
 * (loop thread). BAD counts as an error (max_errors). */
void imap_tagged(struct imap_session *s, const char *status,
    const char *fmt, ...) PRINTF_LIKE(3, 4);
/* Appends the tagged completion to s->out (pool or loop): like
 * imap_tagged, for job work functions. */
void imap_out_tagged(struct imap_session *s, const char *status,
    const char *fmt, ...) PRINTF_LIKE(3, 4);
/* Runs work on the pool, then (on the loop) writes s->out to the
 * connection and calls done (may be NULL); then the command ends unless
 * done started another job or left s->fetch set. */
void imap_job(struct imap_session *s, void (*work)(struct imap_session *),
    void (*done)(struct imap_session *));
void imap_close(struct imap_session *s);
/* Loop thread, after async work outside imap_job: writes s->out and, when
 * no job runs, reads on. */
void imap_resume(struct imap_session *s);
const char *imap_capabilities(const struct imap_session *s);
/* The command has finished: frees it, resumes reading. */
void imap_command_end(struct imap_session *s);
/* Removes APPEND literal files not committed (path still set). A handler
 * that committed s->afiles[i] frees and NULLs its path. */
void imap_append_files_free(struct imap_session *s);

/* imap_auth.c */
void imap_cmd_login(struct imap_session *s);
void imap_cmd_authenticate(struct imap_session *s);
void imap_sasl_input(struct imap_session *s, const char *line);
void imap_auth_reset(struct imap_session *s);

/* imap_mailbox.c: names and mailbox commands. */
/* The store name of a client's mailbox argument (mUTF-7 decoded unless
 * UTF-8 is on, INBOX normalised, a trailing "/" removed), allocated, or
 * NULL after the complete tagged reply ("tag NO/BAD ...\r\n") was
 * appended to err. */
char *imap_mailbox_from_client(struct imap_session *s,
    const struct imap_string *arg, struct buf *err);
/* Appends a store name as the client wants it (mUTF-7 or UTF-8), quoted
 * as an IMAP string. */
void imap_mailbox_to_client(struct imap_session *s, const char *name,
    struct buf *out);
void imap_cmd_select(struct imap_session *s);
void imap_cmd_create(struct imap_session *s);
void imap_cmd_delete(struct imap_session *s);
void imap_cmd_rename(struct imap_session *s);
void imap_cmd_subscribe(struct imap_session *s);
void imap_cmd_list(struct imap_session *s);
void imap_cmd_status(struct imap_session *s);
void imap_cmd_close(struct imap_session *s);
void imap_cmd_check(struct imap_session *s);
void imap_cmd_noop(struct imap_session *s);

/* imap_view.c: the selected mailbox and its updates. */
void imap_view_free(struct imap_view *v);
/* Pool thread: brings s->view up to date with the store and appends the
 * untagged responses for what changed to s->out; expunges are reported
 * only when allow_expunge (RFC 9051 7.5.1: not during FETCH, STORE,
 * SEARCH), otherwise kept as expunged entries. 0 or -1 (s->error). */
int imap_view_sync(struct imap_session *s, bool allow_expunge);
/* Appends "(FLAGS ...)" content: the flags of m as IMAP flag list. */
void imap_flags_write(struct buf *out, unsigned flags, const char *keywords);
/* Resolves a sequence set against the view: the indexes (0-based) of the
 * messages it names, ascending, in *idx (caller frees). by_uid: UIDs.
 * Returns -1 for message numbers beyond EXISTS ("BAD"), 0 otherwise. */
int imap_view_resolve(const struct imap_view *v, const struct imap_seqset *set,
    bool by_uid, size_t **idx, size_t *n);
/* Index of the message with this UID, or -1. */
long imap_view_find_uid(const struct imap_view *v, uint32_t uid);
void imap_view_write_seqset(struct buf *out, const uint32_t *uids, size_t n);
/* "* FLAGS" and "* OK [PERMANENTFLAGS]" for the view. */
void imap_view_send_flags(struct imap_session *s);
/* Keywords just set on a message: announces those the view's FLAGS did
 * not list yet. */
void imap_view_note_keywords(struct imap_session *s, const char *keywords);

/* cmd_fetch.c */
void imap_cmd_fetch(struct imap_session *s);
/* The loop continues a FETCH after output drained; true when one was in
 * progress. */
bool imap_fetch_continue(struct imap_session *s);
void imap_fetch_free(struct imap_session *s);

/* cmd_search.c */
void imap_cmd_search(struct imap_session *s);

/* cmd_store.c: STORE, COPY, MOVE, EXPUNGE, APPEND. */
void imap_cmd_store(struct imap_session *s);
void imap_cmd_copy(struct imap_session *s);
void imap_cmd_expunge(struct imap_session *s);
void imap_cmd_append(struct imap_session *s);

/* imap_idle.c */
void imap_cmd_idle(struct imap_session *s);
void imap_idle_input(struct imap_session *s, const char *line);
void imap_watch_start(struct imap_session *s);
void imap_watch_stop(struct imap_session *s);

#endif
