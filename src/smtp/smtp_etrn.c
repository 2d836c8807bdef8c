/* ETRN (RFC 1985): a client asks that the mail queued for its domain be
 * sent now. Untrusted input: the node name after "ETRN ". */
#include "smtp/smtp_session.h"

#include <string.h>

#include "core/util.h"
#include "queue/scheduler.h"

#define ETRN_SYNTAX	"501 5.5.4 Syntax: ETRN [@]domain"

/* RFC 1985 5: "ETRN domain" asks for that domain, "ETRN @domain" for it
 * and its subdomains, "ETRN #queue" for a named queue (we have none). */
void
smtp_cmd_etrn(struct smtp_session *s, const char *arg)
{
	char domain[SMTP_DOMAIN_MAX + 1];

	if (s->submission) {
		/* A submission client sends mail, it does not collect it. */
		smtp_reply_error(s, "502 5.5.1 Error: command not "
		    "implemented");
		return;
	}
	if (*arg != ' ' || arg[1] == '\0') {
		smtp_reply_error(s, "%s", ETRN_SYNTAX);
		return;
	}
	const char *node = arg + 1;
	if (node[0] == '#') {
		smtp_reply_error(s, "501 5.5.4 Named queues are not supported; "
		    "use ETRN [@]domain");
		return;
	}
	bool subdomains = node[0] == '@';
	const char *d = subdomains ? node + 1 : node;
	/* Queued recipients never have address literals (RCPT refuses
	 * them), so a literal names nothing we could send. */
	if (d[0] == '[' || !smtp_valid_helo(d) ||
	    str_copy(domain, d, sizeof(domain)) < 0) {
		smtp_reply_error(s, "%s", ETRN_SYNTAX);
		return;
	}
	str_lower(domain);
	int n = scheduler_flush_domain(domain, subdomains);
	log_info("session=%llu event=etrn node=%s%s messages=%d",
	    (unsigned long long)s->id, subdomains ? "@" : "", domain, n);
	if (n > 0)
		smtp_reply(s, "250 2.0.0 Queuing for node <%s> started", node);
	else if (n == 0)
		smtp_reply(s, "251 2.0.0 OK, no messages waiting for node "
		    "<%s>", node);
	else
		smtp_reply(s, "458 4.3.0 Unable to queue messages for node "
		    "<%s>", node);
}
