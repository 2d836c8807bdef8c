/* IMAP sessions: greeting, reading commands with their literals, dispatch
 * by state, the commands that need no store (CAPABILITY, LOGOUT, STARTTLS,
 * ENABLE, ID, NAMESPACE) and the job plumbing the others use.
 *
 * Untrusted input: every octet of every command line and literal. */
#include "imap/imap_session.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/sasl.h"
#include "core/pool.h"
#include "core/timer.h"
#include "core/util.h"
#include "core/version.h"
#include "core/xmalloc.h"
#include "net/tls.h"
#include "store/notify.h"

static void imap_process(struct imap_session *s);

static const char *const imap_state_names[] = {
	[IMAP_ST_NOT_AUTH] = "not-authenticated",
	[IMAP_ST_AUTH] = "authenticated",
	[IMAP_ST_SELECTED] = "selected",
	[IMAP_ST_LOGOUT] = "logout",
};

void
imap_enter_state(struct imap_session *s, enum imap_state st)
{
	if (s->state != st)
		log_debug("session=%llu state=%s->%s",
		    (unsigned long long)s->id, imap_state_names[s->state],
		    imap_state_names[st]);
	s->state = st;
	if (st == IMAP_ST_AUTH || st == IMAP_ST_SELECTED)
		conn_set_timeout(s->conn, IMAP_TIMEOUT_S);
}

/* ---- output ---- */

void
imap_send(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	buf_puts(&s->out, "\r\n");
	imap_flush(s);
}

static void
imap_vtagged(struct imap_session *s, struct buf *out, const char *status,
    const char *fmt, va_list ap)
{
	buf_printf(out, "%s %s ", s->cmd_tag[0] ? s->cmd_tag : "*", status);
	buf_vprintf(out, fmt, ap);
	buf_puts(out, "\r\n");
	if (strcmp(status, "BAD") == 0)
		s->errors++;
}

void
imap_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	imap_vtagged(s, &s->out, status, fmt, ap);
	va_end(ap);
	imap_flush(s);
}

void
imap_out_tagged(struct imap_session *s, const char *status,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	imap_vtagged(s, &s->out, status, fmt, ap);
	va_end(ap);
}

/* Writes what s->out holds to the connection (loop thread). */
void
imap_flush(struct imap_session *s)
{
	if (s->out.len == 0)
		return;
	if (s->conn && !conn_is_closing(s->conn))
		conn_write(s->conn, s->out.data, s->out.len);
	buf_reset(&s->out);
}

void
imap_close(struct imap_session *s)
{
	imap_flush(s);
	imap_enter_state(s, IMAP_ST_LOGOUT);
	if (s->conn)
		conn_close(s->conn);
}

/* ---- capabilities ---- */

const char *
imap_capabilities(const struct imap_session *s)
{
	static _Thread_local char caps[1024];
	bool tls = conn_is_tls(s->conn);

	if (s->state == IMAP_ST_NOT_AUTH) {
		int n = snprintf(caps, sizeof(caps), "IMAP4rev1 IMAP4rev2 "
		    "SASL-IR LITERAL+ ID ENABLE");
		if (!tls) {
			if (tls_available())
				snprintf(caps + n, sizeof(caps) - (size_t)n,
				    " STARTTLS LOGINDISABLED");
			else
				snprintf(caps + n, sizeof(caps) - (size_t)n,
				    " LOGINDISABLED");
			return caps;
		}
		char mechs[256];
		snprintf(mechs, sizeof(mechs), "%s", sasl_mechanisms(true));
		for (char *save, *m = strtok_r(mechs, " ", &save); m;
		    m = strtok_r(NULL, " ", &save)) {
			size_t used = strlen(caps);
			snprintf(caps + used, sizeof(caps) - used, " AUTH=%s", m);
		}
		return caps;
	}
	snprintf(caps, sizeof(caps), "IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ "
	    "ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE CONDSTORE QRESYNC "
	    "SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED LIST-STATUS "
	    "CHILDREN ESEARCH SEARCHRES WITHIN SAVEDATE STATUS=SIZE "
	    "MULTIAPPEND BINARY UTF8=ACCEPT APPENDLIMIT=%llu",
	    (unsigned long long)s->cfg->max_message_size);
	return caps;
}

/* ---- jobs ---- */

static void imap_session_free(struct imap_session *s);

/* Ends the command unless something keeps it going. */
static void
imap_after_command(struct imap_session *s)
{
	if (s->busy || s->fetch || s->input == IMAP_IN_SASL ||
	    s->input == IMAP_IN_IDLE || s->auth.job)
		return;
	imap_command_end(s);
}

/* On the pool: false (the session then ends) when the store cannot be
 * opened again. */
static bool
imap_store_reopen(struct imap_session *s)
{
	char *err = NULL;

	s->store = store_open(s->cfg->data_dir, s->user, &err);
	if (s->store != NULL)
		return true;
	log_warnx("session=%llu event=store-open user=%s error=\"%s\"",
	    (unsigned long long)s->id, s->user, err ? err : "?");
	free(err);
	s->store_failed = true;
	return false;
}

static void
imap_job_work(void *arg)
{
	struct imap_session *s = arg;

	/* The store (an SQLite connection, its statements and cache) is
	 * opened by the first command that needs it, not held by every
	 * idle logged-in connection. */
	if (s->state >= IMAP_ST_AUTH && s->state != IMAP_ST_LOGOUT &&
	    s->store == NULL && !imap_store_reopen(s))
		return;
	s->job_work(s);
}

static void
imap_job_finished(void *arg)
{
	struct imap_session *s = arg;
	void (*done)(struct imap_session *) = s->job_done;

	s->busy = false;
	s->job_work = NULL;
	s->job_done = NULL;
	if (s->gone) {
		imap_session_free(s);
		return;
	}
	if (s->store_failed) {
		imap_send(s, "* BYE [UNAVAILABLE] Your mailbox cannot be "
		    "opened now");
		imap_close(s);
		return;
	}
	imap_flush(s);
	if (done)
		done(s);
	if (s->busy)
		return;
	if (s->conn)
		conn_resume(s->conn);
	imap_after_command(s);
}

void
imap_job(struct imap_session *s, void (*work)(struct imap_session *),
    void (*done)(struct imap_session *))
{
	s->busy = true;
	s->job_work = work;
	s->job_done = done;
	s->job_status = 0;
	x_free(&s->error);
	if (s->conn)
		conn_pause(s->conn);
	pool_submit(imap_job_work, imap_job_finished, s);
}

void
imap_resume(struct imap_session *s)
{
	imap_flush(s);
	if (s->busy)
		return;
	if (s->conn)
		conn_resume(s->conn);
	imap_after_command(s);
}

void
imap_append_files_free(struct imap_session *s)
{
	for (size_t i = 0; i < s->nfiles; i++) {
		if (s->afiles[i].fd >= 0)
			close(s->afiles[i].fd);
		if (s->afiles[i].path) {
			store_append_abort(s->afiles[i].path);
			free(s->afiles[i].path);
		}
	}
	x_free(&s->afiles);
	x_free(&s->files);
	s->nfiles = 0;
}

/* Forgets the command being collected (after its end or a refusal). */
static void
imap_input_reset(struct imap_session *s)
{
	buf_reset(&s->cmdbuf);
	if (s->cmdbuf.cap > IMAP_LINE_MAX) {
		buf_free(&s->cmdbuf);
		buf_init(&s->cmdbuf);
	}
	imap_append_files_free(s);
	s->literal_left = 0;
	s->literal_to_file = false;
	s->literal_discard = false;
	s->input = IMAP_IN_COMMAND;
}

void
imap_command_end(struct imap_session *s)
{
	if (s->have_cmd) {
		imap_command_free(&s->cmd);
		s->have_cmd = false;
	}
	imap_input_reset(s);
	s->cmd_tag[0] = '\0';
	imap_flush(s);
	if (s->state != IMAP_ST_LOGOUT && s->cfg->max_errors &&
	    s->errors >= s->cfg->max_errors) {
		imap_send(s, "* BYE Too many invalid commands");
		imap_close(s);
		return;
	}
	if (s->conn && !s->in_process && s->state != IMAP_ST_LOGOUT)
		imap_process(s);
}

/* ---- commands without the store ---- */

static void
imap_cmd_capability(struct imap_session *s)
{
	imap_send(s, "* CAPABILITY %s", imap_capabilities(s));
	imap_tagged(s, "OK", "CAPABILITY completed");
}

static void
imap_cmd_logout(struct imap_session *s)
{
	imap_send(s, "* BYE correo logging out");
	imap_tagged(s, "OK", "LOGOUT completed");
	imap_close(s);
}

static void
imap_cmd_starttls(struct imap_session *s)
{
	if (conn_is_tls(s->conn)) {
		imap_tagged(s, "BAD", "TLS is already active");
		return;
	}
	if (!tls_available()) {
		imap_tagged(s, "NO", "[UNAVAILABLE] TLS is not available");
		return;
	}
	imap_tagged(s, "OK", "Begin TLS negotiation now");
	/* RFC 9051 6.2.1: what the client sent after the command line is
	 * thrown away (conn_start_tls), and it must ask CAPABILITY again. */
	imap_input_reset(s);
	if (conn_start_tls(s->conn) < 0)
		imap_close(s);
}

static void
imap_cmd_enable(struct imap_session *s)
{
	struct buf on = BUF_INIT;

	for (size_t i = 0; i < s->cmd.ncaps; i++) {
		const char *c = s->cmd.caps[i];
		bool *flag = NULL;
		if (str_iequal(c, "CONDSTORE"))
			flag = &s->condstore;
		else if (str_iequal(c, "QRESYNC"))
			flag = &s->qresync;
		else if (str_iequal(c, "IMAP4rev2"))
			flag = &s->rev2;
		else if (str_iequal(c, "UTF8=ACCEPT"))
			flag = &s->utf8;
		if (flag == NULL || *flag)
			continue;
		*flag = true;
		if (flag == &s->qresync)
			s->condstore = true;	/* RFC 7162 3.2.3 */
		buf_printf(&on, " %s", c);
	}
	imap_send(s, "* ENABLED%s", buf_cstr(&on));
	buf_free(&on);
	imap_tagged(s, "OK", "ENABLE completed");
}

static void
imap_cmd_id(struct imap_session *s)
{
	for (size_t i = 0; i < s->cmd.nid && i < 30; i++) {
		const struct imap_string *f = &s->cmd.id_fields[i];
		const struct imap_string *v = &s->cmd.id_values[i];
		if (str_iequal(f->data, "name") || str_iequal(f->data, "version"))
			log_info("session=%llu event=id %s=\"%.64s\"",
			    (unsigned long long)s->id,
			    str_iequal(f->data, "name") ? "name" : "version",
			    v->is_nil || v->has_nul ? "" : v->data);
	}
	imap_send(s, "* ID (\"name\" \"correo\" \"version\" \"%s\")",
	    CORREO_VERSION);
	imap_tagged(s, "OK", "ID completed");
}

static void
imap_cmd_namespace(struct imap_session *s)
{
	imap_send(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_tagged(s, "OK", "NAMESPACE completed");
}

static void
imap_cmd_noop_any(struct imap_session *s)
{
	if (s->state == IMAP_ST_NOT_AUTH) {
		imap_tagged(s, "OK", "NOOP completed");
		return;
	}
	imap_cmd_noop(s);
}

/* ---- dispatch ---- */

enum imap_need {
	NEED_ANY,
	NEED_NOT_AUTH,
	NEED_AUTH,		/* authenticated or selected */
	NEED_AUTH_ONLY,		/* authenticated, nothing selected */
	NEED_SELECTED
};

struct imap_handler {
	enum imap_need need;
	void (*fn)(struct imap_session *s);
};

static const struct imap_handler imap_handlers[IMAP_CMD_COUNT] = {
	[IMAP_CMD_CAPABILITY] = { NEED_ANY, imap_cmd_capability },
	[IMAP_CMD_NOOP] = { NEED_ANY, imap_cmd_noop_any },
	[IMAP_CMD_LOGOUT] = { NEED_ANY, imap_cmd_logout },
	[IMAP_CMD_ID] = { NEED_ANY, imap_cmd_id },
	[IMAP_CMD_STARTTLS] = { NEED_NOT_AUTH, imap_cmd_starttls },
	[IMAP_CMD_AUTHENTICATE] = { NEED_NOT_AUTH, imap_cmd_authenticate },
	[IMAP_CMD_LOGIN] = { NEED_NOT_AUTH, imap_cmd_login },
	[IMAP_CMD_ENABLE] = { NEED_AUTH_ONLY, imap_cmd_enable },
	[IMAP_CMD_SELECT] = { NEED_AUTH, imap_cmd_select },
	[IMAP_CMD_EXAMINE] = { NEED_AUTH, imap_cmd_select },
	[IMAP_CMD_CREATE] = { NEED_AUTH, imap_cmd_create },
	[IMAP_CMD_DELETE] = { NEED_AUTH, imap_cmd_delete },
	[IMAP_CMD_RENAME] = { NEED_AUTH, imap_cmd_rename },
	[IMAP_CMD_SUBSCRIBE] = { NEED_AUTH, imap_cmd_subscribe },
	[IMAP_CMD_UNSUBSCRIBE] = { NEED_AUTH, imap_cmd_subscribe },
	[IMAP_CMD_LIST] = { NEED_AUTH, imap_cmd_list },
	[IMAP_CMD_LSUB] = { NEED_AUTH, imap_cmd_list },
	[IMAP_CMD_NAMESPACE] = { NEED_AUTH, imap_cmd_namespace },
	[IMAP_CMD_STATUS] = { NEED_AUTH, imap_cmd_status },
	[IMAP_CMD_APPEND] = { NEED_AUTH, imap_cmd_append },
	[IMAP_CMD_IDLE] = { NEED_AUTH, imap_cmd_idle },
	[IMAP_CMD_CHECK] = { NEED_SELECTED, imap_cmd_check },
	[IMAP_CMD_CLOSE] = { NEED_SELECTED, imap_cmd_close },
	[IMAP_CMD_UNSELECT] = { NEED_SELECTED, imap_cmd_close },
	[IMAP_CMD_EXPUNGE] = { NEED_SELECTED, imap_cmd_expunge },
	[IMAP_CMD_SEARCH] = { NEED_SELECTED, imap_cmd_search },
	[IMAP_CMD_FETCH] = { NEED_SELECTED, imap_cmd_fetch },
	[IMAP_CMD_STORE] = { NEED_SELECTED, imap_cmd_store },
	[IMAP_CMD_COPY] = { NEED_SELECTED, imap_cmd_copy },
	[IMAP_CMD_MOVE] = { NEED_SELECTED, imap_cmd_copy },
};

/* The reason a command may not run now, or NULL. */
static const char *
imap_state_refusal(const struct imap_session *s, enum imap_need need)
{
	switch (need) {
	case NEED_ANY:
		return NULL;
	case NEED_NOT_AUTH:
		return s->state == IMAP_ST_NOT_AUTH ? NULL :
		    "Already authenticated";
	case NEED_AUTH:
		return s->state == IMAP_ST_NOT_AUTH ? "Log in first" : NULL;
	case NEED_AUTH_ONLY:
		if (s->state == IMAP_ST_NOT_AUTH)
			return "Log in first";
		return s->state == IMAP_ST_SELECTED ?
		    "Not allowed with a mailbox selected" : NULL;
	case NEED_SELECTED:
		if (s->state == IMAP_ST_NOT_AUTH)
			return "Log in first";
		return s->state == IMAP_ST_SELECTED ? NULL :
		    "No mailbox selected";
	}
	return NULL;
}

static void
imap_dispatch(struct imap_session *s)
{
	struct imap_input in = {
		.data = s->cmdbuf.data ? s->cmdbuf.data : "",
		.len = s->cmdbuf.len,
		.files = s->files,
		.nfiles = s->nfiles,
	};
	const char *err = NULL;

	memset(&s->cmd, 0, sizeof(s->cmd));
	enum imap_parse_result r = imap_parse_command(&in, &s->cmd, &err);
	if (r != IMAP_PARSE_OK) {
		str_copy(s->cmd_tag, r == IMAP_PARSE_NO_TAG ? "*" : s->cmd.tag,
		    sizeof(s->cmd_tag));
		imap_tagged(s, "BAD", "%s", err ? err : "Syntax error");
		imap_command_end(s);
		return;
	}
	s->have_cmd = true;
	str_copy(s->cmd_tag, s->cmd.tag, sizeof(s->cmd_tag));
	const struct imap_handler *h = &imap_handlers[s->cmd.cmd];
	const char *why = imap_state_refusal(s, h->need);
	if (why) {
		imap_tagged(s, "BAD", "%s", why);
		imap_command_end(s);
		return;
	}
	log_debug("session=%llu command=%s%s", (unsigned long long)s->id,
	    s->cmd.uid ? "UID " : "", imap_cmd_name(s->cmd.cmd));
	h->fn(s);
	if (s->conn == NULL || s->state == IMAP_ST_LOGOUT)
		return;
	imap_after_command(s);
}

/* ---- reading commands and literals ---- */

static size_t
imap_command_max(const struct imap_session *s)
{
	return s->state == IMAP_ST_NOT_AUTH ? IMAP_COMMAND_MAX_PREAUTH :
	    IMAP_COMMAND_MAX;
}

/* Refuses the command being collected: the reply, then what the client
 * still sends of it is read and thrown away (a non-synchronizing literal
 * comes anyway). */
static void
imap_refuse_command(struct imap_session *s, bool sync, uint64_t size,
    const char *status, const char *text)
{
	imap_tagged(s, status, "%s", text);
	imap_input_reset(s);
	s->cmd_tag[0] = '\0';
	if (!sync) {
		s->literal_discard = true;
		s->literal_left = size;
		s->input = IMAP_IN_LITERAL;
	}
}

/* The NO text for an APPEND literal that could not be stored (err: its
 * errno): a full disk or quota is a limit the client can report as such
 * (RFC 9051 7.1, LIMIT), anything else our fault. */
static const char *
imap_literal_error_text(int err)
{
	if (err == ENOSPC || err == EDQUOT)
		return "[LIMIT] Not enough space to store the message";
	return "[SERVERBUG] Cannot store the message";
}

/* A file in the user's tmp/ for a big APPEND literal. 0, or -1 with
 * errno. */
static int
imap_literal_file(struct imap_session *s, uint64_t size)
{
	char *path = NULL, *err = NULL;
	int fd = store_append_begin_at(s->root, &path, &err);
	if (fd < 0) {
		int e = errno;
		log_warnx("session=%llu event=append-file error=\"%s\"",
		    (unsigned long long)s->id, err ? err : "?");
		free(err);
		errno = e;
		return -1;
	}
	s->afiles = x_reallocarray(s->afiles, s->nfiles + 1,
	    sizeof(*s->afiles));
	s->files = x_reallocarray(s->files, s->nfiles + 1, sizeof(*s->files));
	s->afiles[s->nfiles] = (struct imap_append_file){ path, fd, 0, 0 };
	s->files[s->nfiles] = (struct imap_file_literal){
		.offset = s->cmdbuf.len, .size = size, .ref = (int)s->nfiles };
	s->nfiles++;
	return 0;
}

/* A line of the command announced a literal of size octets. */
static void
imap_literal_start(struct imap_session *s, uint64_t size, bool sync)
{
	char tag[IMAP_TAG_MAX + 1], name[32];
	bool uid = false;
	bool append = imap_peek_command(s->cmdbuf.data, s->cmdbuf.len, tag,
	    name, &uid) && strcmp(name, "APPEND") == 0 &&
	    s->state != IMAP_ST_NOT_AUTH;

	str_copy(s->cmd_tag, tag, sizeof(s->cmd_tag));
	if (append && size > s->cfg->max_message_size) {
		imap_refuse_command(s, sync, size, "NO",
		    "[TOOBIG] Message exceeds the size limit");
		return;
	}
	s->literal_to_file = append && size > IMAP_MEM_LITERAL_MAX;
	if (!s->literal_to_file &&
	    s->cmdbuf.len + size > imap_command_max(s)) {
		imap_refuse_command(s, sync, size, "BAD",
		    "[TOOBIG] Command too long");
		return;
	}
	if (s->literal_to_file && imap_literal_file(s, size) < 0) {
		imap_refuse_command(s, sync, size, "NO",
		    imap_literal_error_text(errno));
		return;
	}
	s->literal_left = size;
	s->input = IMAP_IN_LITERAL;
	if (sync)
		conn_puts(s->conn, "+ Ready for literal data\r\n");
}

/* Reads literal octets that are buffered. */
static void
imap_literal_input(struct imap_session *s)
{
	char chunk[16384];

	while (s->literal_left > 0) {
		size_t want = s->literal_left < sizeof(chunk) ?
		    (size_t)s->literal_left : sizeof(chunk);
		size_t n = conn_read(s->conn, chunk, want);
		if (n == 0)
			return;
		s->literal_left -= n;
		if (s->literal_discard)
			continue;
		if (!s->literal_to_file) {
			buf_append(&s->cmdbuf, chunk, n);
			continue;
		}
		struct imap_append_file *f = &s->afiles[s->nfiles - 1];
		ssize_t w = f->fd >= 0 ? write(f->fd, chunk, n) : (ssize_t)n;
		if (w != (ssize_t)n) {
			/* A short write to a file: the disk is full. */
			f->error = w < 0 ? errno : ENOSPC;
			log_warn("session=%llu event=append-file write",
			    (unsigned long long)s->id);
			close(f->fd);
			f->fd = -1;
		}
		f->size += n;
	}
	if (s->literal_to_file) {
		struct imap_append_file *f = &s->afiles[s->nfiles - 1];
		if (f->fd >= 0 && close(f->fd) < 0)
			f->error = errno;
		f->fd = -1;
		s->literal_to_file = false;
		if (f->error != 0) {
			s->literal_discard = true;
			imap_tagged(s, "NO", "%s",
			    imap_literal_error_text(f->error));
		}
	}
	s->input = IMAP_IN_COMMAND;
}

/* One line of a command (the first, or one after a literal). */
static void
imap_command_line(struct imap_session *s, const struct buf *line)
{
	uint64_t size;
	bool sync, binary;

	if (s->literal_discard) {
		/* the rest of a refused command */
		if (imap_literal_at_end(line->data, line->len, &size, &sync,
		    &binary) && !sync) {
			s->literal_left = size;
			s->input = IMAP_IN_LITERAL;
			return;
		}
		imap_command_end(s);
		return;
	}
	if (s->cmdbuf.len + line->len + 2 > imap_command_max(s)) {
		bool lit = imap_literal_at_end(line->data, line->len, &size,
		    &sync, &binary);
		imap_peek_command(s->cmdbuf.len ? s->cmdbuf.data : line->data,
		    s->cmdbuf.len ? s->cmdbuf.len : line->len, s->cmd_tag,
		    (char[32]){0}, &binary);
		imap_refuse_command(s, !lit || sync, lit ? size : 0, "BAD",
		    "[TOOBIG] Command too long");
		if (!lit)
			imap_command_end(s);
		return;
	}
	buf_append(&s->cmdbuf, line->data ? line->data : "", line->len);
	buf_puts(&s->cmdbuf, "\r\n");
	if (imap_literal_at_end(line->data, line->len, &size, &sync, &binary)) {
		imap_literal_start(s, size, sync);
		return;
	}
	imap_dispatch(s);
}

static void
imap_line_too_long(struct imap_session *s)
{
	if (s->input == IMAP_IN_SASL) {
		imap_auth_reset(s);
		s->input = IMAP_IN_COMMAND;
		imap_tagged(s, "BAD", "Authentication line too long");
		imap_command_end(s);
		return;
	}
	imap_send(s, "* BAD [TOOBIG] Line too long");
	imap_send(s, "* BYE Line too long");
	imap_close(s);
}

static bool
imap_can_read(const struct imap_session *s)
{
	return s->conn && !s->busy && !s->fetch && !s->gone &&
	    s->state != IMAP_ST_LOGOUT && !conn_is_closing(s->conn) &&
	    conn_output_length(s->conn) <= IMAP_OUTPUT_HIGH;
}

static void
imap_read_input(struct imap_session *s)
{
	while (imap_can_read(s)) {
		if (s->input == IMAP_IN_LITERAL) {
			uint64_t before = s->literal_left;
			imap_literal_input(s);
			if (s->literal_left == before && before > 0)
				return;
			continue;
		}
		size_t max = s->state == IMAP_ST_NOT_AUTH ?
		    IMAP_LINE_MAX_PREAUTH : IMAP_LINE_MAX;
		switch (conn_read_line(s->conn, max, &s->line)) {
		case CONN_LINE_NONE:
			return;
		case CONN_LINE_TOO_LONG:
			imap_line_too_long(s);
			break;
		case CONN_LINE_OK:
			if (s->input == IMAP_IN_SASL)
				imap_sasl_input(s, buf_cstr(&s->line));
			else if (s->input == IMAP_IN_IDLE)
				imap_idle_input(s, buf_cstr(&s->line));
			else
				imap_command_line(s, &s->line);
			if (s->line.data)
				explicit_bzero(s->line.data, s->line.len);
			break;
		}
	}
}

static void
imap_process(struct imap_session *s)
{
	if (s->in_process)
		return;
	s->in_process = true;
	imap_read_input(s);
	s->in_process = false;
}

/* ---- connection callbacks ---- */

static void
imap_session_free(struct imap_session *s)
{
	imap_auth_reset(s);
	imap_watch_stop(s);
	imap_fetch_free(s);
	if (s->have_cmd)
		imap_command_free(&s->cmd);
	imap_append_files_free(s);
	imap_view_free(&s->view);
	if (s->store)
		store_close(s->store);
	buf_free(&s->line);
	buf_free(&s->cmdbuf);
	buf_free(&s->out);
	free(s->error);
	free(s->user);
	free(s->root);
	free(s);
}

static void
imap_on_input(struct conn *c, void *ctx)
{
	(void)c;
	imap_process(ctx);
}

static void
imap_on_drained(struct conn *c, void *ctx)
{
	struct imap_session *s = ctx;

	(void)c;
	if (s->busy || s->state == IMAP_ST_LOGOUT)
		return;
	if (s->fetch) {
		imap_fetch_continue(s);
		return;
	}
	imap_process(s);
}

static void
imap_on_timeout(struct conn *c, void *ctx)
{
	struct imap_session *s = ctx;

	(void)c;
	imap_send(s, "* BYE Autologout; idle for too long");
	imap_close(s);
}

static void
imap_on_closed(struct conn *c, void *ctx)
{
	struct imap_session *s = ctx;

	(void)c;
	log_info("session=%llu event=disconnect user=%s",
	    (unsigned long long)s->id, s->user ? s->user : "-");
	s->conn = NULL;
	imap_auth_reset(s);
	imap_watch_stop(s);
	if (s->busy) {
		s->gone = true;	/* the job's completion frees the session */
		return;
	}
	imap_session_free(s);
}

static const struct conn_handler imap_handler = {
	.on_input = imap_on_input,
	.on_drained = imap_on_drained,
	.on_timeout = imap_on_timeout,
	.on_closed = imap_on_closed,
};

void
imap_accept(struct conn *c, enum conn_refusal refusal, void *arg)
{
	struct imap_server *srv = arg;

	if (refusal != CONN_ACCEPTED) {
		conn_puts(c, "* BYE [UNAVAILABLE] Too many connections\r\n");
		conn_close(c);
		return;
	}
	struct imap_session *s = x_calloc(1, sizeof(*s));
	s->conn = c;
	s->srv = srv;
	s->cfg = srv->cfg;
	s->id = conn_id(c);
	s->state = IMAP_ST_NOT_AUTH;
	conn_set_handler(c, &imap_handler, s);
	conn_set_timeout(c, IMAP_TIMEOUT_PREAUTH_S);
	log_info("session=%llu event=connect service=%s ip=%s",
	    (unsigned long long)s->id, service_name(conn_service(c)),
	    conn_peer_addr(c));
	imap_send(s, "* OK [CAPABILITY %s] correo IMAP server ready",
	    imap_capabilities(s));
}

struct imap_server *
imap_server_new(const struct config *cfg, struct userdb *db)
{
	struct imap_server *srv = x_calloc(1, sizeof(*srv));
	srv->cfg = cfg;
	srv->db = db;
	return srv;
}

void
imap_server_set_config(struct imap_server *srv, const struct config *cfg)
{
	srv->cfg = cfg;
}

void
imap_server_free(struct imap_server *srv)
{
	free(srv);
}
