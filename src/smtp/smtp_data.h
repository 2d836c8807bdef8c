/* The DATA decoder: finds the end of data (only <CRLF>.<CRLF>), undoes
 * dot-stuffing, and notes bare CR, bare LF and NUL octets (RFC 5321 2.3.8,
 * 4.5.2; SMTP smuggling, CVE-2023-51764), which make the message refused.
 * Also scans BDAT chunks (RFC 3030), which are not stuffed, for the same
 * octets. Pure: no I/O, no allocation.
 *
 * Untrusted input: every octet a client sends after DATA or BDAT. */
#ifndef SMTP_DATA_H
#define SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smtp_data_decoder {
	int state;		/* private */
	bool bare_cr;		/* a CR not followed by LF was seen */
	bool bare_lf;		/* an LF not preceded by CR was seen */
	bool nul;		/* a NUL octet was seen */
	uint64_t size;		/* decoded octets so far */
};

enum smtp_data_status {
	SMTP_DATA_MORE,		/* all input consumed, end not seen yet */
	SMTP_DATA_END		/* the end <CRLF>.<CRLF> was consumed */
};

void smtp_data_init(struct smtp_data_decoder *d);

/* Decodes in[0..n) (DATA wire form). Writes the message octets to out, which
 * must have room for n + 2 octets, and their number to *outlen. *consumed is
 * n for SMTP_DATA_MORE, or the input used up to and including the final
 * ".\r\n" for SMTP_DATA_END (the rest is the next command). The CRLF before
 * the final dot belongs to the message. */
enum smtp_data_status smtp_data_feed(struct smtp_data_decoder *d,
    const char *in, size_t n, char *out, size_t *outlen, size_t *consumed);

/* Scans a BDAT chunk (raw octets, no stuffing) for bare CR, bare LF and
 * NUL, keeping state across chunks; adds n to size. Call
 * smtp_data_bdat_finish() after the LAST chunk: a CR at the very end is
 * bare. */
void smtp_data_bdat_scan(struct smtp_data_decoder *d, const char *in,
    size_t n);
void smtp_data_bdat_finish(struct smtp_data_decoder *d);

/* True when the message must be refused (bare CR/LF or NUL seen). */
bool smtp_data_is_tainted(const struct smtp_data_decoder *d);

#endif
