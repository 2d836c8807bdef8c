/* The IMAP command parser (RFC 9051, RFC 3501 and the extensions correo
 * serves). Pure: no I/O, no allocation outside the parsed command, no
 * global state; every function is safe on any input.
 *
 * Untrusted input: everything here comes from the client, before and after
 * authentication.
 *
 * The session collects one whole command before parsing it: the command
 * line and, for every literal the line announces ("{N}", "{N+}", "~{N}"),
 * the literal's octets and the next line. The result is the wire text of
 * the command in struct imap_input: lines with their CRLF, literals inline
 * after the CRLF of their announcement. A large APPEND literal is not kept
 * in memory: the session writes it to a file and records it in files[];
 * its octets are then absent from data (data continues straight after the
 * announcement's CRLF with the next line). */
#ifndef IMAP_PARSE_H
#define IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define IMAP_TAG_MAX		64	/* octets of a tag */
#define IMAP_DEPTH_MAX		16	/* nested parentheses / search NOT/OR */
#define IMAP_PART_DEPTH_MAX	16	/* numbers in a section part path */
#define IMAP_SEQ_RANGES_MAX	4096	/* ranges in one sequence set */
#define IMAP_LIST_MAX		256	/* items in a fetch/flag/field list */
#define IMAP_SEARCH_KEYS_MAX	1024	/* search nodes in one command */

/* A literal kept in a file by the session (APPEND). */
struct imap_file_literal {
	size_t offset;		/* in imap_input.data: just after the CRLF
				 * of the literal's announcement */
	uint64_t size;		/* octets in the file */
	int ref;		/* the session's handle, copied to the result */
};

struct imap_input {
	const char *data;
	size_t len;
	const struct imap_file_literal *files;
	size_t nfiles;
};

/* "What is the literal announced at the end of this line?", used by the
 * session while it collects a command. line is one line without its CRLF.
 * Returns true when it ends with {N}, {N+} (LITERAL+/LITERAL-), ~{N} or
 * ~{N+} (RFC 3516 literal8): *size_r, *sync_r (false for "+"),
 * *binary_r (literal8). A number over 2^63 or with a leading "+"/spaces is
 * not a literal announcement (the parser reports the error later). */
bool imap_literal_at_end(const char *line, size_t len, uint64_t *size_r,
    bool *sync_r, bool *binary_r);

/* The tag and command name of a (possibly incomplete) first line, for a
 * BAD reply that names the tag, and for the session's decision to spool an
 * APPEND literal to a file. Copies at most IMAP_TAG_MAX octets of tag into
 * tag (NUL-terminated) and the upper-cased command name (after "UID " when
 * present, which sets *uid_r) into name (size 32). Returns false when the
 * line does not start with a valid tag. */
bool imap_peek_command(const char *line, size_t len, char tag[IMAP_TAG_MAX + 1],
    char name[32], bool *uid_r);

/* ---- values ---- */

/* A string argument: atom, quoted string, literal or (where allowed) NIL.
 * data is NUL-terminated inside the command's storage; len excludes it.
 * has_nul: a literal held a NUL octet (a protocol error except in APPEND
 * message data and literal8). */
struct imap_string {
	const char *data;
	size_t len;
	bool is_nil;
	bool has_nul;
	bool is_literal8;	/* ~{N} */
	int file_ref;		/* >= 0: the octets are in the session's file
				 * with this ref (data is "", len the size) */
};

/* A sequence set (RFC 9051 9: sequence-set). "*" is stored as
 * UINT32_MAX; ranges are kept as written (a:b with a > b allowed: the
 * caller orders them when it resolves "*"). "$" (SEARCHRES) sets
 * is_saved with no ranges. */
struct imap_seq_range {
	uint32_t first;
	uint32_t last;
};
struct imap_seqset {
	struct imap_seq_range *ranges;
	size_t count;
	bool is_saved;
};

/* Standard system flags (also used by the store). */
#define IMAP_F_SEEN		0x01
#define IMAP_F_ANSWERED		0x02
#define IMAP_F_FLAGGED		0x04
#define IMAP_F_DELETED		0x08
#define IMAP_F_DRAFT		0x10
#define IMAP_F_RECENT		0x20	/* \Recent: only in SEARCH, refused
					 * in STORE/APPEND */

/* A flag list: system flags in mask, keywords (atoms, as written) in
 * keywords. "\*" or an unknown "\Flag" is an error in STORE/APPEND. */
struct imap_flags {
	unsigned mask;
	const char **keywords;
	size_t nkeywords;
};

/* ---- FETCH ---- */

enum imap_fetch_item {
	IMAP_FETCH_FLAGS,
	IMAP_FETCH_INTERNALDATE,
	IMAP_FETCH_RFC822_SIZE,
	IMAP_FETCH_ENVELOPE,
	IMAP_FETCH_BODYSTRUCTURE,
	IMAP_FETCH_BODY,		/* BODY without [ ]: the non-extensible
					 * structure */
	IMAP_FETCH_UID,
	IMAP_FETCH_MODSEQ,
	IMAP_FETCH_SAVEDATE,
	IMAP_FETCH_EMAILID,		/* not served: refused with BAD */
	IMAP_FETCH_RFC822,		/* = BODY[] (sets \Seen) */
	IMAP_FETCH_RFC822_HEADER,	/* = BODY.PEEK[HEADER] */
	IMAP_FETCH_RFC822_TEXT,		/* = BODY[TEXT] (sets \Seen) */
	IMAP_FETCH_BODY_SECTION,	/* BODY[...] and BODY.PEEK[...] */
	IMAP_FETCH_BINARY_SECTION,	/* BINARY[...] and BINARY.PEEK[...] */
	IMAP_FETCH_BINARY_SIZE		/* BINARY.SIZE[...] */
};

enum imap_section_text {
	IMAP_SECTION_ALL,		/* [] or [1.2]: the whole part */
	IMAP_SECTION_HEADER,
	IMAP_SECTION_HEADER_FIELDS,
	IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT,
	IMAP_SECTION_MIME		/* only after a part number */
};

struct imap_section {
	uint32_t part[IMAP_PART_DEPTH_MAX];	/* each >= 1 */
	size_t nparts;
	enum imap_section_text text;
	const char **fields;		/* HEADER.FIELDS[.NOT] names */
	size_t nfields;
};

struct imap_fetch_att {
	enum imap_fetch_item item;
	bool peek;			/* .PEEK (also RFC822.HEADER) */
	struct imap_section section;
	bool partial;			/* <offset.length> */
	uint32_t offset;
	uint32_t length;
};

/* The name of the item in the FETCH response, as RFC 9051 7.5.2 wants it
 * echoed: "BODY[1.2.HEADER.FIELDS (From To)]<10>" (for a partial only the
 * origin octet is echoed), "BINARY[1]", "BINARY.SIZE[2]", "RFC822",
 * "RFC822.HEADER", ... Field names are written as the client sent them,
 * as atoms or quoted strings. Writes at most size - 1 octets and a NUL;
 * returns the length it needed (like snprintf). */
size_t imap_fetch_att_name(const struct imap_fetch_att *att, char *out,
    size_t size);

/* ---- SEARCH ---- */

enum imap_search_kind {
	IMAP_SK_ALL,
	IMAP_SK_AND,		/* a parenthesized list or the top level */
	IMAP_SK_OR,		/* children: exactly two */
	IMAP_SK_NOT,		/* children: exactly one */
	IMAP_SK_SEQSET,		/* message sequence numbers */
	IMAP_SK_UID,
	IMAP_SK_FLAG,		/* flag set (mask: IMAP_F_*; RECENT too) */
	IMAP_SK_NOFLAG,		/* flag clear: UNSEEN, UNDELETED, ... */
	IMAP_SK_KEYWORD,
	IMAP_SK_UNKEYWORD,
	IMAP_SK_NEW,		/* RECENT UNSEEN */
	IMAP_SK_OLD,		/* NOT RECENT */
	IMAP_SK_BEFORE,		/* internal date, day granularity */
	IMAP_SK_ON,
	IMAP_SK_SINCE,
	IMAP_SK_SENTBEFORE,	/* Date: header, day granularity */
	IMAP_SK_SENTON,
	IMAP_SK_SENTSINCE,
	IMAP_SK_SAVEDBEFORE,	/* RFC 8514 */
	IMAP_SK_SAVEDON,
	IMAP_SK_SAVEDSINCE,
	IMAP_SK_SAVEDATESUPPORTED,
	IMAP_SK_OLDER,		/* RFC 5032 WITHIN: seconds */
	IMAP_SK_YOUNGER,
	IMAP_SK_LARGER,
	IMAP_SK_SMALLER,
	IMAP_SK_HEADER,		/* field, value ("" matches any with field) */
	IMAP_SK_BODY,
	IMAP_SK_TEXT,
	IMAP_SK_MODSEQ		/* RFC 7162; entry name/type parsed, ignored */
};

struct imap_search_key {
	enum imap_search_kind kind;
	unsigned flag;				/* FLAG / NOFLAG */
	struct imap_string str;			/* KEYWORD, BODY, TEXT, HEADER
						 * value */
	struct imap_string field;		/* HEADER field name; FROM,
						 * TO, CC, BCC, SUBJECT become
						 * HEADER with this set */
	uint64_t number;			/* LARGER, SMALLER, MODSEQ,
						 * OLDER, YOUNGER */
	int year, month, day;			/* date keys: month 1..12 */
	struct imap_seqset set;			/* SEQSET, UID */
	struct imap_search_key *children;	/* AND: n children; OR: 2;
						 * NOT: 1 */
	size_t nchildren;
};

#define IMAP_SEARCH_RET_MIN	0x01
#define IMAP_SEARCH_RET_MAX	0x02
#define IMAP_SEARCH_RET_ALL	0x04
#define IMAP_SEARCH_RET_COUNT	0x08
#define IMAP_SEARCH_RET_SAVE	0x10

/* ---- commands ---- */

enum imap_cmd {
	IMAP_CMD_CAPABILITY,
	IMAP_CMD_NOOP,
	IMAP_CMD_LOGOUT,
	IMAP_CMD_STARTTLS,
	IMAP_CMD_AUTHENTICATE,
	IMAP_CMD_LOGIN,
	IMAP_CMD_ENABLE,
	IMAP_CMD_ID,
	IMAP_CMD_SELECT,
	IMAP_CMD_EXAMINE,
	IMAP_CMD_CREATE,
	IMAP_CMD_DELETE,
	IMAP_CMD_RENAME,
	IMAP_CMD_SUBSCRIBE,
	IMAP_CMD_UNSUBSCRIBE,
	IMAP_CMD_LIST,
	IMAP_CMD_LSUB,
	IMAP_CMD_NAMESPACE,
	IMAP_CMD_STATUS,
	IMAP_CMD_APPEND,
	IMAP_CMD_IDLE,
	IMAP_CMD_CHECK,
	IMAP_CMD_CLOSE,
	IMAP_CMD_UNSELECT,
	IMAP_CMD_EXPUNGE,	/* with uid: UID EXPUNGE seqset */
	IMAP_CMD_SEARCH,
	IMAP_CMD_FETCH,
	IMAP_CMD_STORE,
	IMAP_CMD_COPY,
	IMAP_CMD_MOVE,
	IMAP_CMD_COUNT
};

/* The command's name as the parser matched it ("UID" excluded). */
const char *imap_cmd_name(enum imap_cmd cmd);

#define IMAP_STATUS_MESSAGES		0x001
#define IMAP_STATUS_RECENT		0x002
#define IMAP_STATUS_UIDNEXT		0x004
#define IMAP_STATUS_UIDVALIDITY		0x008
#define IMAP_STATUS_UNSEEN		0x010
#define IMAP_STATUS_DELETED		0x020
#define IMAP_STATUS_SIZE		0x040
#define IMAP_STATUS_HIGHESTMODSEQ	0x080
#define IMAP_STATUS_APPENDLIMIT		0x100

#define IMAP_LIST_SEL_SUBSCRIBED	0x01
#define IMAP_LIST_SEL_REMOTE		0x02
#define IMAP_LIST_SEL_RECURSIVEMATCH	0x04
#define IMAP_LIST_SEL_SPECIAL_USE	0x08
#define IMAP_LIST_RET_SUBSCRIBED	0x01
#define IMAP_LIST_RET_CHILDREN		0x02
#define IMAP_LIST_RET_SPECIAL_USE	0x04
#define IMAP_LIST_RET_STATUS		0x08

enum imap_store_mode {
	IMAP_STORE_SET,		/* FLAGS */
	IMAP_STORE_ADD,		/* +FLAGS */
	IMAP_STORE_REMOVE	/* -FLAGS */
};

struct imap_append_msg {
	struct imap_flags flags;
	bool has_flags;
	time_t internaldate;		/* 0: none given */
	struct imap_string message;	/* literal, literal8, or UTF8 (~{N}) */
	bool utf8;			/* UTF8 (literal8) form, RFC 6855 */
	bool has_internaldate;		/* a date-time was given (it may
					 * be the epoch, internaldate 0) */
};

struct imap_command {
	char tag[IMAP_TAG_MAX + 1];
	enum imap_cmd cmd;
	bool uid;			/* UID FETCH/STORE/COPY/MOVE/SEARCH/
					 * EXPUNGE */

	/* AUTHENTICATE: mech (atom), initial (optional, "=" for empty,
	 * is_nil when absent). LOGIN: user, password. */
	struct imap_string mech, initial;
	struct imap_string user, password;

	/* ENABLE: capability atoms as written. */
	const char **caps;
	size_t ncaps;

	/* ID: NIL (nid == 0) or field/value pairs (value may be NIL). */
	struct imap_string *id_fields, *id_values;
	size_t nid;

	/* Mailbox argument of SELECT, EXAMINE, CREATE, DELETE, RENAME (old),
	 * SUBSCRIBE, UNSUBSCRIBE, STATUS, APPEND, COPY, MOVE (destination).
	 * As sent: the session decodes modified UTF-7 when needed. */
	struct imap_string mailbox;
	struct imap_string mailbox2;	/* RENAME new name */

	/* SELECT/EXAMINE parameters. */
	bool condstore;
	bool qresync;
	uint32_t qr_uidvalidity;
	uint64_t qr_modseq;
	struct imap_seqset qr_known_uids;	/* count 0: absent */
	struct imap_seqset qr_seq_match, qr_uid_match;

	/* CREATE (USE (\Sent ...)): special-use flags as written. */
	const char **create_use;
	size_t ncreate_use;

	/* LIST / LSUB. */
	unsigned list_select;		/* IMAP_LIST_SEL_* */
	unsigned list_return;		/* IMAP_LIST_RET_* */
	unsigned list_status;		/* IMAP_STATUS_* for RETURN STATUS */
	struct imap_string reference;
	struct imap_string *patterns;
	size_t npatterns;

	/* STATUS items. */
	unsigned status_items;		/* IMAP_STATUS_* */

	/* APPEND (MULTIAPPEND: several). */
	struct imap_append_msg *append;
	size_t nappend;

	/* FETCH, STORE, COPY, MOVE, UID EXPUNGE: the set. */
	struct imap_seqset set;

	/* FETCH. Macros ALL, FAST, FULL are expanded. */
	struct imap_fetch_att *atts;
	size_t natts;
	uint64_t changedsince;		/* FETCH CHANGEDSINCE; 0: absent */
	bool vanished;			/* FETCH (... VANISHED) */

	/* STORE. */
	enum imap_store_mode store_mode;
	bool store_silent;
	struct imap_flags store_flags;
	uint64_t unchangedsince;	/* 0: absent */
	bool has_unchangedsince;

	/* SEARCH. */
	bool esearch;			/* RETURN (...) was given */
	unsigned search_return;		/* IMAP_SEARCH_RET_*; RETURN () is
					 * ALL */
	struct imap_string charset;	/* is_nil: none */
	struct imap_search_key *search;	/* the top-level AND */

	/* Storage owned by the command (arena). */
	void *arena;
};

enum imap_parse_result {
	IMAP_PARSE_OK,
	IMAP_PARSE_BAD,		/* syntax: "tag BAD <error>" */
	IMAP_PARSE_NO_TAG	/* no usable tag: "* BAD <error>" */
};

/* Parses one whole command. On IMAP_PARSE_OK *cmd is filled and must be
 * freed with imap_command_free; otherwise *error_r points to a static
 * message (no CRLF) and cmd->tag holds the tag when it was readable.
 * Limits above give BAD, never a crash. Strings point into the command's
 * arena, never into in->data. */
enum imap_parse_result imap_parse_command(const struct imap_input *in,
    struct imap_command *cmd, const char **error_r);
void imap_command_free(struct imap_command *cmd);

/* "DONE" (IDLE's end), case-insensitive, nothing else on the line. */
bool imap_is_done(const char *line, size_t len);

/* Parses an RFC 9051 date-time ("17-Jul-1996 02:44:25 -0700", with the
 * day possibly space-padded) into a time_t; 0 or -1. */
int imap_parse_date_time(const char *s, size_t len, time_t *out);

/* Writes t as an IMAP date-time in UTC ("01-Dec-2026 20:28:01 +0000")
 * into out (at least 27 octets). */
void imap_format_date_time(time_t t, char out[32]);

#endif
