/* The ATRN argument (RFC 2645 5.2.1): a list of domain names. Pure: no
 * I/O, so that tests/fuzz/fuzz_atrn.c reaches it without a session.
 * Untrusted input: the ATRN argument an authenticated client sends. */
#ifndef ODMR_ATRN_H
#define ODMR_ATRN_H

#include "core/strlist.h"

/* More names than any client has: a longer list is a syntax error. */
#define ODMR_ATRN_MAX_DOMAINS	64
/* RFC 1035 2.3.4. */
#define ODMR_ATRN_DOMAIN_MAX	255

/* arg is what follows the verb: "" (no domain: all of the user's) or
 * " d1,d2, d3" (spaces allowed around the commas). Adds the names to
 * out, lowercase, without repeats: each is 1 to ODMR_ATRN_DOMAIN_MAX
 * octets of letters, digits, '-', '.' and '_'; at most
 * ODMR_ATRN_MAX_DOMAINS names may be given. Returns 0, or -1 on a
 * syntax error (out may then hold some names: the caller frees it). */
int odmr_atrn_parse(const char *arg, struct strlist *out);

#endif
