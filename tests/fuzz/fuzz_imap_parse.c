/* libFuzzer: the IMAP command parser over arbitrary lines, and the
 * modified UTF-7 decoder over the same octets.
 *
 * The input is cut into lines the way the session collects a command:
 * each line gets its CRLF, a literal announced at the end of a line is
 * followed by that many octets inline, and in an APPEND the larger
 * literals go to "files" as the session would spool them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "imap/imap_parse.h"
#include "imap/imap_utf7.h"

#define FILES_MAX	16
#define SPOOL_MIN	16	/* literals this large in APPEND are files */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct wire {
	char *data;
	size_t len;
	struct imap_file_literal files[FILES_MAX];
	size_t nfiles;
};

static void
wire_put(struct wire *w, const void *p, size_t n)
{
	memcpy(w->data + w->len, p, n);
	w->len += n;
}

/* A literal of n octets announced at the end of the last line. */
static size_t
wire_literal(struct wire *w, bool append, const uint8_t *p, size_t avail,
    uint64_t n)
{
	size_t take = n < avail ? (size_t)n : avail;

	if (append && n >= SPOOL_MIN && w->nfiles < FILES_MAX) {
		w->files[w->nfiles].offset = w->len;
		w->files[w->nfiles].size = n;
		w->files[w->nfiles].ref = (int)w->nfiles;
		w->nfiles++;
		return take;
	}
	wire_put(w, p, take);
	return take;
}

static void
build_wire(struct wire *w, const uint8_t *data, size_t size)
{
	char tag[IMAP_TAG_MAX + 1], name[32];
	bool uid, append = false, first = true, sync, binary;
	size_t i = 0;
	uint64_t n;

	while (i < size) {
		const uint8_t *nl = memchr(data + i, '\n', size - i);
		size_t end = nl != NULL ? (size_t)(nl - data) : size;
		size_t len = end - i;
		const char *line = (const char *)data + i;

		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (first && imap_peek_command(line, len, tag, name, &uid))
			append = strcmp(name, "APPEND") == 0;
		first = false;
		wire_put(w, line, len);
		wire_put(w, "\r\n", 2);
		i = nl != NULL ? end + 1 : size;
		if (imap_literal_at_end(line, len, &n, &sync, &binary))
			i += wire_literal(w, append, data + i, size - i, n);
	}
}

static void
check_string(const struct imap_string *s)
{
	if (s->file_ref >= 0)
		return;
	if (s->data == NULL || s->data[s->len] != '\0')
		abort();
}

static void
check_key(const struct imap_search_key *k, unsigned depth)
{
	size_t i;

	if (depth > IMAP_DEPTH_MAX + 1)
		abort();
	if ((k->kind == IMAP_SK_OR && k->nchildren != 2) ||
	    (k->kind == IMAP_SK_NOT && k->nchildren != 1) ||
	    k->set.count > IMAP_SEQ_RANGES_MAX)
		abort();
	check_string(&k->str);
	check_string(&k->field);
	for (i = 0; i < k->nchildren; i++)
		check_key(&k->children[i], depth + 1);
}

static void
check_atts(const struct imap_command *c)
{
	char big[4096], small[5];
	size_t i, n;

	if (c->natts > IMAP_LIST_MAX)
		abort();
	for (i = 0; i < c->natts; i++) {
		n = imap_fetch_att_name(&c->atts[i], big, sizeof(big));
		if (n == 0 || (n < sizeof(big) && strlen(big) != n))
			abort();
		if (imap_fetch_att_name(&c->atts[i], small, sizeof(small)) !=
		    n || strlen(small) != (n < sizeof(small) ? n :
		    sizeof(small) - 1))
			abort();
	}
}

static void
check_command(const struct imap_command *c, const struct wire *w)
{
	size_t i;

	if (c->tag[0] == '\0' || strlen(c->tag) > IMAP_TAG_MAX ||
	    c->cmd >= IMAP_CMD_COUNT || c->set.count > IMAP_SEQ_RANGES_MAX)
		abort();
	check_string(&c->mailbox);
	check_string(&c->mailbox2);
	check_string(&c->user);
	check_string(&c->password);
	check_atts(c);
	if (c->search != NULL)
		check_key(c->search, 0);
	for (i = 0; i < c->nappend; i++) {
		const struct imap_string *m = &c->append[i].message;

		check_string(m);
		if (m->file_ref >= (int)w->nfiles ||
		    (m->file_ref >= 0 && m->len !=
		    w->files[m->file_ref].size))
			abort();
	}
}

/* Strict decoding means one wire form per name: what decodes encodes
 * back to the same octets. */
static void
check_utf7(const uint8_t *data, size_t size)
{
	struct buf dec = BUF_INIT, enc = BUF_INIT, dec2 = BUF_INIT;

	if (imap_utf7_decode((const char *)data, size, &dec) == 0) {
		if (!imap_utf8_is_valid(buf_cstr(&dec), dec.len) ||
		    memchr(buf_cstr(&dec), '\0', dec.len) != NULL)
			abort();
		imap_utf7_encode(buf_cstr(&dec), dec.len, &enc);
		if (enc.len != size || memcmp(buf_cstr(&enc), data, size) != 0)
			abort();
		if (imap_utf7_decode(buf_cstr(&enc), enc.len, &dec2) != 0 ||
		    dec2.len != dec.len ||
		    memcmp(buf_cstr(&dec2), buf_cstr(&dec), dec.len) != 0)
			abort();
	}
	/* Anything the encoder writes decodes (a NUL has no name form),
	 * and valid UTF-8 comes back unchanged. */
	buf_reset(&enc);
	buf_reset(&dec2);
	imap_utf7_encode((const char *)data, size, &enc);
	if (memchr(data, '\0', size) == NULL) {
		if (imap_utf7_decode(buf_cstr(&enc), enc.len, &dec2) != 0)
			abort();
		if (imap_utf8_is_valid((const char *)data, size) &&
		    (dec2.len != size ||
		    memcmp(buf_cstr(&dec2), data, size) != 0))
			abort();
	}
	buf_free(&dec);
	buf_free(&enc);
	buf_free(&dec2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire w;
	struct imap_input in;
	struct imap_command c;
	const char *err;

	memset(&w, 0, sizeof(w));
	/* Each input octet gives at most itself plus a CRLF. */
	w.data = malloc(size * 3 + 1);
	if (w.data == NULL)
		return 0;
	build_wire(&w, data, size);
	in.data = w.data;
	in.len = w.len;
	in.files = w.files;
	in.nfiles = w.nfiles;
	if (imap_parse_command(&in, &c, &err) == IMAP_PARSE_OK) {
		check_command(&c, &w);
		imap_command_free(&c);
	} else if (err == NULL || err[0] == '\0') {
		abort();
	}
	free(w.data);
	check_utf7(data, size);
	return 0;
}
