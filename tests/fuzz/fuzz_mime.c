/* libFuzzer harness for src/store/mime*.c. The input is a message file.
 * Checks: ENVELOPE/BODY/BODYSTRUCTURE are one well-formed IMAP list each;
 * section ranges stay in the file and a part's MIME header ends where
 * its body starts, a message's HEADER and TEXT make up the whole of it;
 * BINARY never grows a part; HEADER.FIELDS and
 * HEADER.FIELDS.NOT split the header between them; the header search
 * cache matches as a search of the file does. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/buf.h"
#include "store/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
	    #cond); abort(); } } while (0)

/* Skips one IMAP value (atom, quoted, literal, list) at s[*i]. */
static bool
imap_value(const char *s, size_t len, size_t *i, int depth)
{
	if (*i >= len || depth > 200)
		return false;
	if (s[*i] == '(') {
		(*i)++;
		bool first = true;
		while (*i < len && s[*i] != ')') {
			if (!first && s[*i] == ' ')
				(*i)++;
			if (!imap_value(s, len, i, depth + 1))
				return false;
			first = false;
		}
		if (*i >= len)
			return false;
		(*i)++;
		return true;
	}
	if (s[*i] == '"') {
		for ((*i)++; *i < len && s[*i] != '"'; (*i)++) {
			if (s[*i] == '\\')
				(*i)++;
			if (*i < len && (s[*i] == '\r' || s[*i] == '\n' ||
			    s[*i] == '\0'))
				return false;
		}
		if (*i >= len)
			return false;
		(*i)++;
		return true;
	}
	if (s[*i] == '{') {
		char *end;
		unsigned long n = strtoul(s + *i + 1, &end, 10);
		if (*end != '}' || end[1] != '\r' || end[2] != '\n')
			return false;
		*i = (size_t)(end + 3 - s);
		if (n > len - *i || memchr(s + *i, '\0', n) != NULL)
			return false;
		*i += n;
		return true;
	}
	size_t start = *i;
	while (*i < len && s[*i] != ' ' && s[*i] != '(' && s[*i] != ')' &&
	    s[*i] != '"')
		(*i)++;
	return *i > start;
}

static void
check_list(const char *s)
{
	size_t i = 0, len = strlen(s);

	CHECK(len > 0 && s[0] == '(');
	CHECK(imap_value(s, len, &i, 0));
	CHECK(i == len);
}

static void
check_sections(int fd, size_t size, const uint32_t *path, size_t n)
{
	struct mime_range all, mime, hdr, text;
	struct buf out = BUF_INIT;
	char *err = NULL;

	CHECK(mime_section_range(fd, path, n, MIME_SECTION_ALL, &all,
	    &err) == 0);
	CHECK(mime_section_range(fd, path, n, MIME_SECTION_MIME, &mime,
	    &err) == 0);
	CHECK(all.offset + all.length <= size);
	CHECK(mime.offset + mime.length <= size);
	if (n > 0 && all.length > 0)
		CHECK(mime.offset + mime.length == all.offset);
	CHECK(mime_section_range(fd, path, n, MIME_SECTION_HEADER, &hdr,
	    &err) == 0);
	CHECK(mime_section_range(fd, path, n, MIME_SECTION_TEXT, &text,
	    &err) == 0);
	/* A message's header and text are its octets, back to back. */
	if (n == 0 || hdr.length + text.length > 0) {
		CHECK(hdr.offset == all.offset);
		CHECK(hdr.offset + hdr.length == text.offset);
		CHECK(text.offset + text.length == all.offset + all.length);
	}
	if (mime_section_decode(fd, path, n, &out, &err) == 0)
		CHECK(n == 0 ? out.len == size : out.len <= all.length);
	else
		free(err);
	buf_free(&out);
}

static void
check_filter(int fd, size_t size)
{
	static const char *const fields[] = { "Subject", "from", "X-A" };
	struct mime_range h;
	char *err = NULL;

	CHECK(mime_section_range(fd, NULL, 0, MIME_SECTION_HEADER, &h,
	    &err) == 0);
	CHECK(h.offset == 0 && h.length <= size);
	char *hdr = malloc(h.length + 1);
	CHECK(hdr != NULL);
	CHECK(pread(fd, hdr, h.length, 0) == (ssize_t)h.length);
	struct buf in = BUF_INIT, out = BUF_INIT, all = BUF_INIT;
	mime_header_filter(hdr, h.length, fields, 3, false, &in);
	mime_header_filter(hdr, h.length, fields, 3, true, &out);
	mime_header_filter(hdr, h.length, fields, 0, true, &all);
	CHECK(in.len + out.len == all.len + 2);
	buf_free(&in);
	buf_free(&out);
	buf_free(&all);
	free(hdr);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static const uint32_t paths[][3] = { { 1, 0, 0 }, { 2, 0, 0 },
	    { 1, 1, 0 }, { 1, 2, 0 }, { 2, 1, 0 }, { 3, 0, 0 },
	    { 1, 1, 1 }, { 2, 1, 2 }, { 1, 2, 1 } };
	static const size_t plen[] = { 1, 1, 2, 2, 2, 1, 3, 3, 3 };
	struct mime_summary s;
	char *err = NULL;
	bool match;

	if (fd < 0) {
		mime_init();
		fd = memfd_create("fuzz_mime", 0);
		CHECK(fd >= 0);
	}
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(size == 0 || pwrite(fd, data, size, 0) == (ssize_t)size);

	CHECK(mime_summarize(fd, &s, &err) == 0);
	check_list(s.envelope);
	check_list(s.body);
	check_list(s.bodystructure);
	CHECK(strlen(s.body) <= strlen(s.bodystructure));
	/* The header search cache answers as the file does, for needles
	 * taken from the input. */
	if (s.hdrcache != NULL) {
		static const char *const fields[] = { "From", "to", "CC",
		    "Bcc", "Subject" };
		for (size_t i = 0; i < 5; i++) {
			size_t nl = size > 16 ? i : 0;
			const char *nd = (const char *)data +
			    (size > 16 ? size / 3 + i : 0);
			CHECK(mime_search_header(fd, fields[i], nd, nl, &match,
			    &err) == 0);
			CHECK(mime_hdrcache_match(s.hdrcache, s.hdrcache_len,
			    fields[i], nd, nl) == (match ? 1 : 0));
		}
		CHECK(mime_hdrcache_match(s.hdrcache, s.hdrcache_len,
		    "Date", "x", 1) == -1);
	}
	mime_summary_free(&s);

	check_sections(fd, size, NULL, 0);
	for (size_t i = 0; i < sizeof(plen) / sizeof(plen[0]); i++)
		check_sections(fd, size, paths[i], plen[i]);
	check_filter(fd, size);

	/* A needle from the input itself, so matches happen. */
	size_t nlen = size > 8 ? 4 : size;
	const char *needle = (const char *)data + (size > 8 ? size / 2 : 0);
	CHECK(mime_search_body(fd, needle, nlen, true, &match, &err) == 0);
	CHECK(mime_search_body(fd, "\xc3\xa4rger", 6, false, &match,
	    &err) == 0);
	CHECK(mime_search_header(fd, "subject", needle, nlen, &match,
	    &err) == 0);
	return 0;
}
