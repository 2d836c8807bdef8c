/* Internal to src/store/mime*.c: the part tree of a message file and the
 * header helpers its users share. Not for other modules: use mime.h. */
#ifndef STORE_MIME_INTERNAL_H
#define STORE_MIME_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* More parts than this are not split out: the rest of the file stays in
 * the body of the part open when the limit is reached (as Dovecot). */
#define MIME_PARTS_MAX		10000

/* Header values longer than this are cut before they are parsed or
 * copied into a summary: no client needs a megabyte Subject. */
#define MIME_VALUE_MAX		(64 * 1024)

#define MIME_NONE		UINT32_MAX

/* A message file mapped (or read) into memory. */
struct mime_map {
	const char *data;
	size_t len;
	void *mem;		/* what to unmap or free */
	bool mapped;
};

int mime_map_open(int fd, struct mime_map *m, char **error_r);
void mime_map_close(struct mime_map *m);

enum mime_kind {
	MIME_KIND_LEAF,
	MIME_KIND_MULTIPART,	/* children are its parts (maybe none) */
	MIME_KIND_MESSAGE	/* message/rfc822 or message/global: one
				 * child, the encapsulated message */
};

/* One MIME entity. Offsets are octets of the file. The header is
 * [hdr_off, body_off) with its blank line when it has one; the body is
 * [body_off, end) without the line end that belongs to the next
 * boundary. */
struct mime_part {
	size_t hdr_off;
	size_t body_off;
	size_t end;
	size_t lines;		/* LFs in the body */
	size_t nl_body;		/* LFs in the file before body_off */
	uint32_t parent;
	uint32_t first_child;
	uint32_t last_child;
	uint32_t next;		/* next sibling */
	uint8_t kind;		/* enum mime_kind */
	uint8_t depth;
	bool is_message;	/* the root or an encapsulated message: its
				 * header is an RFC 5322 header */
	bool digest;		/* multipart/digest */
	bool in_digest;		/* default type message/rfc822 */
	bool opaque;		/* a container served as a leaf (limits) */
	bool unparsed_message;	/* message/rfc822 with an encoding that
				 * hides the message (base64...) */
};

struct mime_tree {
	struct mime_part *parts;	/* parts[0] is the message */
	size_t n;
	size_t cap;
};

/* Splits data into parts (never fails: any octets give a tree). */
void mime_tree_parse(const char *data, size_t len, struct mime_tree *t);
void mime_tree_free(struct mime_tree *t);

/* ---- header fields ---- */

struct mime_field {
	const char *name;	/* NULL for a line without a colon */
	size_t namelen;
	const char *value;	/* after the colon, folded, without the
				 * final line end */
	size_t vlen;
	const char *raw;	/* the whole field with its line ends */
	size_t rawlen;
};

/* Octets of the header at hdr with its blank line (len when none). */
size_t mime_header_size(const char *hdr, size_t len);
/* Steps through the fields of the header hdr[0..len): starts with
 * *pos = 0, false at the blank line or the end. */
bool mime_field_next(const char *hdr, size_t len, size_t *pos,
    struct mime_field *f);
bool mime_field_is(const struct mime_field *f, const char *name);
/* Appends the value unfolded (CR, LF dropped, leading blanks skipped,
 * NULs turned into spaces), at most MIME_VALUE_MAX octets. */
void mime_field_unfold(const struct mime_field *f, struct buf *out);
/* The first field named name: its unfolded value in out, true; or false
 * (out reset) when absent. */
bool mime_header_get(const char *hdr, size_t len, const char *name,
    struct buf *out);

/* Content-Type / Content-Disposition: a token ("type/subtype" or a
 * disposition type) and the parameters after it. */
struct mime_ctype {
	char *type;		/* NULL when missing or invalid */
	char *subtype;
	void *params;		/* GMimeParamList *, or NULL */
};

/* Parses the Content-Type of the header: *ct->type NULL when there is
 * none or it is invalid (the caller applies the default). */
void mime_ctype_parse(const char *hdr, size_t len, struct mime_ctype *ct);
/* The same without the parameters (params stays NULL): cheaper. */
void mime_ctype_parse_type(const char *hdr, size_t len,
    struct mime_ctype *ct);
/* Parses Content-Disposition; type NULL when absent/invalid. */
void mime_disposition_parse(const char *hdr, size_t len,
    struct mime_ctype *ct);
void mime_ctype_free(struct mime_ctype *ct);
const char *mime_ctype_param(const struct mime_ctype *ct, const char *name);

/* The content transfer encodings BINARY and SEARCH undo. */
enum mime_cte {
	MIME_CTE_IDENTITY,	/* absent, 7bit, 8bit, binary */
	MIME_CTE_BASE64,
	MIME_CTE_QP,
	MIME_CTE_UNKNOWN
};

enum mime_cte mime_cte_of(const char *hdr, size_t len);

/* The first RFC 2045 token of the field's value (allocated), or NULL. */
char *mime_header_token(const char *hdr, size_t len, const char *name);
/* Writes the comma-separated tokens of v as "(tok ...)", NIL if none. */
void mime_write_tokens(struct buf *out, const char *v);

/* The part that the section path names (RFC 9051 6.4.5), or MIME_NONE. */
uint32_t mime_tree_walk(const struct mime_tree *t, const uint32_t *path,
    size_t n);

/* ---- summaries (mime_struct.c, mime_addr.c) ---- */

void mime_write_envelope(struct buf *out, const char *hdr, size_t len);
void mime_write_body(struct buf *out, const struct mime_map *m,
    const struct mime_tree *t, uint32_t i, bool ext);
/* Appends the address list of value (unfolded) in ENVELOPE form:
 * "(addr...)", or nothing and false when it has no address. */
bool mime_write_addresses(struct buf *out, const char *value, size_t len);

#endif
