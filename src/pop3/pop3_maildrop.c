/* POP3 TRANSACTION and UPDATE states over the store's INBOX. The maildrop
 * is loaded and updated on the thread pool; message files are read in
 * chunks as output drains, never whole. */
#include "pop3/pop3_session.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/userdb.h"
#include "core/pool.h"
#include "core/xmalloc.h"
#include "pop3/pop3_parse.h"
#include "store/notify.h"

#define POP3_READ_CHUNK	(16 * 1024)

struct pop3_lock {
	char *user;
	struct pop3_lock *next;
};

bool
pop3_lock_take(struct pop3_server *srv, const char *user)
{
	for (struct pop3_lock *l = srv->locks; l; l = l->next)
		if (strcmp(l->user, user) == 0)
			return false;
	struct pop3_lock *l = x_calloc(1, sizeof(*l));
	l->user = x_strdup(user);
	l->next = srv->locks;
	srv->locks = l;
	return true;
}

void
pop3_lock_release(struct pop3_server *srv, const char *user)
{
	for (struct pop3_lock **p = &srv->locks; *p; p = &(*p)->next) {
		if (strcmp((*p)->user, user) == 0) {
			struct pop3_lock *l = *p;
			*p = l->next;
			free(l->user);
			free(l);
			return;
		}
	}
}

void
pop3_release_maildrop(struct pop3_session *s)
{
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	if (s->store) {
		store_mailbox_free(&s->mb);
		store_close(s->store);
		s->store = NULL;
	}
	x_free(&s->deleted);
	x_free(&s->error);
	if (s->locked) {
		pop3_lock_release(s->srv, s->user);
		s->locked = false;
	}
}

/* ---- opening (pool) ---- */

static void
pop3_open_work(void *arg)
{
	struct pop3_session *s = arg;
	s->store = store_open(s->cfg->data_dir, s->user, &s->error);
	if (s->store == NULL) {
		s->job_status = -1;
		return;
	}
	s->job_status = store_mailbox_load(s->store, "INBOX", &s->mb,
	    &s->error);
}

static uint64_t
pop3_total_size(const struct pop3_session *s, size_t *count)
{
	uint64_t total = 0;
	*count = 0;
	for (size_t i = 0; i < s->mb.count; i++) {
		if (s->deleted[i])
			continue;
		total += s->mb.msgs[i].size;
		(*count)++;
	}
	return total;
}

static void
pop3_open_done(void *arg)
{
	struct pop3_session *s = arg;
	size_t n;

	s->busy = false;
	if (s->gone) {
		pop3_session_release(s);
		return;
	}
	if (s->job_status < 0) {
		log_warnx("session=%llu user=%s event=maildrop-error error=\"%s\"",
		    (unsigned long long)s->id, s->user,
		    s->error ? s->error : "?");
		pop3_release_maildrop(s);
		x_free(&s->user);
		pop3_enter_state(s, POP3_ST_AUTHORIZATION);
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot open the mailbox");
	} else {
		s->deleted = x_calloc(s->mb.count ? s->mb.count : 1, 1);
		uint64_t total = pop3_total_size(s, &n);
		pop3_enter_state(s, POP3_ST_TRANSACTION);
		pop3_reply(s, "+OK Logged in, %zu messages (%llu octets)", n,
		    (unsigned long long)total);
	}
	conn_resume(s->conn);
	pop3_process(s);
}

void
pop3_open_maildrop(struct pop3_session *s)
{
	s->busy = true;
	conn_pause(s->conn);
	pool_submit(pop3_open_work, pop3_open_done, s);
}

/* ---- commands ---- */

/* The message a "n" argument names, or NULL after an -ERR reply. */
static struct store_msg *
pop3_msg(struct pop3_session *s, const char *args, size_t *idx)
{
	uint32_t n;
	if (!pop3_parse_msgno(args, &n)) {
		pop3_reply_error(s, "-ERR Invalid message number");
		return NULL;
	}
	if (n > s->mb.count || s->deleted[n - 1]) {
		pop3_reply(s, "-ERR No such message");
		return NULL;
	}
	*idx = n - 1;
	return &s->mb.msgs[n - 1];
}

static void
pop3_uidl_of(const struct pop3_session *s, size_t i, char *out, size_t n)
{
	/* UIDVALIDITY and UID: what IMAP knows the message by. */
	snprintf(out, n, "%08x%08x", s->mb.uidvalidity, s->mb.msgs[i].uid);
}

static void
pop3_cmd_list(struct pop3_session *s, const char *args, bool uidl)
{
	char id[32];
	size_t i, n;

	if (*args) {
		struct store_msg *m = pop3_msg(s, args, &i);
		if (m == NULL)
			return;
		pop3_uidl_of(s, i, id, sizeof(id));
		if (uidl)
			pop3_reply(s, "+OK %zu %s", i + 1, id);
		else
			pop3_reply(s, "+OK %zu %llu", i + 1,
			    (unsigned long long)m->size);
		return;
	}
	uint64_t total = pop3_total_size(s, &n);
	pop3_reply(s, "+OK %zu messages (%llu octets)", n,
	    (unsigned long long)total);
	for (i = 0; i < s->mb.count; i++) {
		if (s->deleted[i])
			continue;
		pop3_uidl_of(s, i, id, sizeof(id));
		if (uidl)
			pop3_reply(s, "%zu %s", i + 1, id);
		else
			pop3_reply(s, "%zu %llu", i + 1,
			    (unsigned long long)s->mb.msgs[i].size);
	}
	pop3_reply(s, ".");
}

static void
pop3_cmd_retr(struct pop3_session *s, const char *args, bool top)
{
	uint32_t n, lines = 0;
	size_t i;
	struct store_msg *m;

	if (top) {
		if (!pop3_parse_two(args, &n, &lines)) {
			pop3_reply_error(s, "-ERR Syntax: TOP msg n");
			return;
		}
		char num[16];
		snprintf(num, sizeof(num), "%u", n);
		m = pop3_msg(s, num, &i);
	} else {
		m = pop3_msg(s, args, &i);
	}
	if (m == NULL)
		return;
	s->fd = store_msg_open(m->path);
	if (s->fd < 0) {
		log_warn("session=%llu open %s", (unsigned long long)s->id,
		    m->path);
		pop3_reply(s, "-ERR [SYS/TEMP] Message is not available");
		return;
	}
	if (top)
		pop3_reply(s, "+OK");
	else
		pop3_reply(s, "+OK %llu octets", (unsigned long long)m->size);
	s->top = top;
	s->body_lines_left = lines;
	s->in_body = false;
	s->at_line_start = true;
	s->line_len = 0;
	s->ended_with_lf = true;
	pop3_enter_state(s, POP3_ST_SENDING);
}

static void
pop3_end_sending(struct pop3_session *s)
{
	close(s->fd);
	s->fd = -1;
	conn_puts(s->conn, s->ended_with_lf ? ".\r\n" : "\r\n.\r\n");
	pop3_enter_state(s, POP3_ST_TRANSACTION);
}

/* Byte-stuffs in[0..n) into out (room 2n); returns the octets written and
 * sets *stop when TOP has sent its lines. */
static size_t
pop3_stuff(struct pop3_session *s, const char *in, size_t n, char *out,
    bool *stop)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (s->at_line_start) {
			if (s->top && s->in_body && s->body_lines_left == 0) {
				*stop = true;
				break;
			}
			if (c == '.')
				out[o++] = '.';
			s->at_line_start = false;
		}
		out[o++] = c;
		if (c == '\n') {
			if (!s->in_body && s->line_len == 0)
				s->in_body = true;
			else if (s->in_body && s->body_lines_left > 0)
				s->body_lines_left--;
			s->at_line_start = true;
			s->line_len = 0;
		} else if (c != '\r') {
			s->line_len++;
		}
	}
	if (o > 0)
		s->ended_with_lf = out[o - 1] == '\n';
	return o;
}

void
pop3_continue_sending(struct pop3_session *s)
{
	char in[POP3_READ_CHUNK], out[2 * POP3_READ_CHUNK];
	bool stop = false;

	ssize_t r = read(s->fd, in, sizeof(in));
	if (r < 0 && errno == EINTR)
		return;
	if (r < 0) {
		/* Mid-message: the client cannot be told; end the session. */
		log_warn("session=%llu read", (unsigned long long)s->id);
		pop3_close(s);
		return;
	}
	if (r > 0) {
		size_t o = pop3_stuff(s, in, (size_t)r, out, &stop);
		conn_write(s->conn, out, o);
	}
	if (r == 0 || stop)
		pop3_end_sending(s);
}

/* ---- UPDATE ---- */

static void
pop3_update_work(void *arg)
{
	struct pop3_session *s = arg;
	uint32_t *uids = x_calloc(s->mb.count ? s->mb.count : 1,
	    sizeof(*uids));
	size_t n = 0;
	for (size_t i = 0; i < s->mb.count; i++)
		if (s->deleted[i])
			uids[n++] = s->mb.msgs[i].uid;
	s->job_status = store_expunge(s->store, "INBOX", uids, n, &s->error);
	if (s->job_status == 0)
		s->job_status = (int)n;
	free(uids);
}

static void
pop3_update_done(void *arg)
{
	struct pop3_session *s = arg;
	s->busy = false;
	if (s->job_status != 0 && s->user) {
		/* IMAP sessions on this maildrop see the deletions. */
		char *root = userdb_maildir_path(s->cfg->data_dir, s->user);
		if (root)
			notify_changed(root);
		free(root);
	}
	if (s->gone) {
		pop3_session_release(s);
		return;
	}
	if (s->job_status < 0)
		log_warnx("session=%llu user=%s event=update-failed "
		    "error=\"%s\"", (unsigned long long)s->id, s->user,
		    s->error ? s->error : "?");
	else
		log_info("session=%llu user=%s event=update deleted=%d",
		    (unsigned long long)s->id, s->user, s->job_status);
	/* The maildrop is free before the client reads the reply: it may
	 * log in again at once (fetchmail does). Releasing frees s->error,
	 * so after the log. */
	pop3_release_maildrop(s);
	if (s->job_status < 0)
		pop3_reply(s, "-ERR [SYS/TEMP] Some deleted messages were not "
		    "removed");
	else
		pop3_reply(s, "+OK Logging out, %d messages deleted",
		    s->job_status);
	pop3_close(s);
}

void
pop3_quit_update(struct pop3_session *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->mb.count; i++)
		n += s->deleted[i];
	if (n == 0) {
		pop3_release_maildrop(s);
		pop3_reply(s, "+OK Logging out");
		pop3_close(s);
		return;
	}
	s->busy = true;
	conn_pause(s->conn);
	pool_submit(pop3_update_work, pop3_update_done, s);
}

bool
pop3_transaction_command(struct pop3_session *s, const char *kw,
    const char *args)
{
	size_t i, n;

	if (strcmp(kw, "STAT") == 0) {
		uint64_t total = pop3_total_size(s, &n);
		pop3_reply(s, "+OK %zu %llu", n, (unsigned long long)total);
	} else if (strcmp(kw, "LIST") == 0) {
		pop3_cmd_list(s, args, false);
	} else if (strcmp(kw, "UIDL") == 0) {
		pop3_cmd_list(s, args, true);
	} else if (strcmp(kw, "RETR") == 0) {
		pop3_cmd_retr(s, args, false);
	} else if (strcmp(kw, "TOP") == 0) {
		pop3_cmd_retr(s, args, true);
	} else if (strcmp(kw, "DELE") == 0) {
		if (pop3_msg(s, args, &i) != NULL) {
			s->deleted[i] = true;
			pop3_reply(s, "+OK Message %zu deleted", i + 1);
		}
	} else if (strcmp(kw, "RSET") == 0) {
		memset(s->deleted, 0, s->mb.count);
		uint64_t total = pop3_total_size(s, &n);
		pop3_reply(s, "+OK %zu messages (%llu octets)", n,
		    (unsigned long long)total);
	} else if (strcmp(kw, "NOOP") == 0) {
		pop3_reply(s, "+OK");
	} else if (strcmp(kw, "QUIT") == 0) {
		pop3_quit_update(s);
	} else {
		return false;
	}
	return true;
}
