/* ATRN (RFC 2645 5.2.1): after AUTH, the client asks for the mail held
 * for some or all of its domains; when there is some, the reply is 250
 * and the connection turns around: the queue sends the mail over it
 * (queue/sched_odmr.h) and this session is over.
 * Untrusted input: the ATRN argument (a list of domain names). */
#include "odmr/odmr_atrn.h"
#include "odmr/odmr_session.h"

#include <string.h>

#include "auth/userdb.h"
#include "core/strlist.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "queue/sched_odmr.h"

static bool
odmr_domain_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/* The limit counts the names given, repeats too: "a,a,a..." is no
 * shorter a list than "a,b,c...". */
int
odmr_atrn_parse(const char *arg, struct strlist *out)
{
	if (*arg == '\0')
		return 0;
	if (*arg++ != ' ')
		return -1;
	for (size_t given = 0;; given++) {
		while (*arg == ' ')
			arg++;
		size_t n = 0;
		while (odmr_domain_char((unsigned char)arg[n]))
			n++;
		if (n == 0 || n > ODMR_ATRN_DOMAIN_MAX ||
		    given >= ODMR_ATRN_MAX_DOMAINS)
			return -1;
		char *d = str_lower(x_strndup(arg, n));
		strlist_add_unique(out, d);
		x_free(&d);
		arg += n;
		while (*arg == ' ')
			arg++;
		if (*arg == '\0')
			return 0;
		if (*arg++ != ',')
			return -1;
	}
}

void
odmr_atrn_reset(struct odmr_session *s)
{
	sched_odmr_cancel(s->pull);
	s->pull = NULL;
}

/* What the client sent after ATRN and before our 250 cannot be its
 * greeting as the server of the turned-around connection: it did not
 * know yet that the roles would turn. Read as the greeting (or as replies
 * to our EHLO, MAIL...), it would let a client script its own answers
 * ahead of time, as plaintext pipelined after STARTTLS would
 * (CVE-2011-0411). Reading has been paused since ATRN: what is
 * buffered came with the ATRN line. Octets that reached the socket
 * during the search stay unread, and cannot be told from a greeting
 * sent after the 250. */
static void
odmr_atrn_discard_early(struct odmr_session *s)
{
	size_t junk = conn_input_length(s->conn);
	if (junk == 0)
		return;
	log_info("session=%llu event=atrn-injection-discarded octets=%zu",
	    (unsigned long long)s->id, junk);
	conn_drain(s->conn, junk);
}

static void
odmr_atrn_found(struct sched_odmr *p, size_t n, void *arg)
{
	struct odmr_session *s = arg;

	s->busy = false;
	s->pull = NULL;
	log_info("session=%llu event=atrn user=%s messages=%zu",
	    (unsigned long long)s->id, s->user, n);
	if (n == 0) {
		sched_odmr_cancel(p);
		odmr_enter_state(s, ODMR_ST_READY);
		odmr_reply(s, "453 4.0.0 You have no mail");
		conn_resume(s->conn);
		odmr_process(s);
		return;
	}
	odmr_reply(s, "250 2.0.0 OK now reversing the connection");
	odmr_atrn_discard_early(s);
	if (sched_odmr_deliver(p, s->conn) < 0) {
		odmr_enter_state(s, ODMR_ST_QUIT);
		conn_close(s->conn);
		return;
	}
	odmr_session_detach(s);
}

/* The domains to pull: the ones asked for, each of them the user's, or
 * all of the user's. Replies and returns -1 when refused. */
static int
odmr_atrn_domains(struct odmr_session *s, const struct strlist *want,
    struct strlist *out)
{
	struct strlist mine = STRLIST_INIT;
	int r = -1;

	if (userdb_odmr_domains(s->srv->db, s->user, &mine) < 0)
		odmr_reply(s, "451 4.3.0 Unable to process ATRN request now");
	else if (mine.n == 0)
		odmr_reply(s, "450 4.7.1 ATRN request refused: no domain "
		    "is held for %s", s->user);
	else {
		const struct strlist *from = want->n ? want : &mine;
		r = 0;
		for (size_t i = 0; i < from->n && r == 0; i++) {
			if (strlist_contains(&mine, from->v[i]))
				strlist_add(out, from->v[i]);
			else {
				odmr_reply(s, "450 4.7.1 ATRN request refused: "
				    "access denied to node %s", from->v[i]);
				r = -1;
			}
		}
	}
	strlist_free(&mine);
	return r;
}

void
odmr_cmd_atrn(struct odmr_session *s, const char *arg)
{
	struct strlist want = STRLIST_INIT, domains = STRLIST_INIT;

	if (s->user == NULL) {
		odmr_reply_error(s, "530 5.7.0 Authentication required");
		return;
	}
	if (odmr_atrn_parse(arg, &want) < 0)
		odmr_reply_error(s, "501 5.5.4 Syntax: ATRN "
		    "[domain[,domain...]]");
	else if (odmr_atrn_domains(s, &want, &domains) == 0) {
		s->pull = sched_odmr_find(&domains, odmr_atrn_found, s);
		if (s->pull == NULL)
			odmr_reply(s, "451 4.3.0 Unable to process ATRN "
			    "request now");
		else {
			odmr_enter_state(s, ODMR_ST_ATRN);
			s->busy = true;
			conn_pause(s->conn);
		}
	}
	strlist_free(&want);
	strlist_free(&domains);
}
