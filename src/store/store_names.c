/* Names: mailbox names (from clients: untrusted) and how they map to
 * Maildir++ folders, message file names (from the Maildir: untrusted)
 * and their flag letters, keywords (from clients). */
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/util.h"
#include "core/xmalloc.h"

/* ---- mailbox names ------------------------------------------------------ */

/* Length of the UTF-8 sequence at s (n octets left), 0 when malformed,
 * overlong or a surrogate. */
static size_t
store_utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned cp, min;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, min = 0x80, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, min = 0x800, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, min = 0x10000, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static bool
store_is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* C0, DEL, and C1 (U+0080..U+009F, "\xc2\x80".."\xc2\x9f"). */
static bool
store_is_control_seq(const unsigned char *p, size_t len)
{
	if (len == 1)
		return store_is_control(p[0]);
	return len == 2 && p[0] == 0xc2 && p[1] < 0xa0;
}

/* Octets of a level's character in the folder name. */
static size_t
store_escaped_len(unsigned char c, size_t len)
{
	return c == '.' || c == '%' ? 3 : len;
}

bool
store_mailbox_name_ok(const char *name)
{
	if (name == NULL)
		return false;
	if (str_iequal(name, "INBOX"))
		return true;
	size_t n = strlen(name), level = 0, folder = 1;
	if (n == 0 || n > STORE_NAME_MAX)
		return false;
	const unsigned char *p = (const unsigned char *)name;
	for (size_t i = 0; i <= n;) {
		if (i == n || p[i] == '/') {
			/* Empty levels: "a//b", a leading or trailing "/". */
			if (level == 0)
				return false;
			level = 0;
			folder++;
			i++;
			continue;
		}
		/* ".x", "a/../b", "a/./b": no level looks like a dot file. */
		if (level == 0 && p[i] == '.')
			return false;
		size_t k = store_utf8_len(p + i, n - i);
		if (k == 0 || store_is_control_seq(p + i, k))
			return false;
		folder += store_escaped_len(p[i], k);
		level += k;
		i += k;
	}
	/* The folder name (".a.b", the last "." counted above is not
	 * written) must be a file name. */
	return folder - 1 <= STORE_NAME_MAX;
}

bool
store_name_is_inbox(const char *name)
{
	return str_iequal(name, "INBOX");
}

char *
store_name_normalize(const char *name)
{
	const char *slash = strchr(name, '/');
	size_t first = slash != NULL ? (size_t)(slash - name) : strlen(name);

	if (first == 5 && strncasecmp(name, "INBOX", 5) == 0)
		return x_asprintf("INBOX%s", name + 5);
	return x_strdup(name);
}

char *
store_name_folder(const char *name)
{
	struct buf b = BUF_INIT;
	char *out = NULL;

	buf_putc(&b, '.');
	for (const char *p = name; *p != '\0'; p++) {
		if (*p == '/')
			buf_putc(&b, '.');
		else if (*p == '.')
			buf_puts(&b, "%2E");
		else if (*p == '%')
			buf_puts(&b, "%25");
		else
			buf_putc(&b, *p);
	}
	if (b.len <= STORE_NAME_MAX)
		out = x_strdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

/* Undoes store_name_folder's escapes; -1 for a "%" that is not one. */
static int
store_folder_unescape(const char *entry, struct buf *b)
{
	for (const char *p = entry; *p != '\0'; p++) {
		if (*p == '.') {
			buf_putc(b, '/');
		} else if (*p != '%') {
			buf_putc(b, *p);
		} else if (strncmp(p, "%2E", 3) == 0) {
			buf_putc(b, '.');
			p += 2;
		} else if (strncmp(p, "%25", 3) == 0) {
			buf_putc(b, '%');
			p += 2;
		} else {
			return -1;
		}
	}
	return 0;
}

/* Only a name that maps back to the very same entry is a mailbox: two
 * folders never claim one name (".a%2e" against ".a%2E", ".inbox.x"
 * against ".INBOX.x"). */
char *
store_folder_name(const char *entry)
{
	struct buf b = BUF_INIT;
	char *name = NULL, *folder = NULL;

	if (entry[0] != '.' ||
	    store_folder_unescape(entry + 1, &b) < 0 ||
	    !store_mailbox_name_ok(buf_cstr(&b)) ||
	    store_name_is_inbox(buf_cstr(&b)))
		goto done;
	name = store_name_normalize(buf_cstr(&b));
	folder = store_name_folder(name);
	if (folder == NULL || strcmp(folder, entry) != 0)
		x_free(&name);
done:
	x_free(&folder);
	buf_free(&b);
	return name;
}

bool
store_name_is_below(const char *name, const char *parent)
{
	size_t n = strlen(parent);

	return strncmp(name, parent, n) == 0 && name[n] == '/';
}

/* ---- message file names ------------------------------------------------- */

/* A file name we are willing to index: bounded, no controls, not a
 * dotfile, with a non-empty unique part. */
bool
store_file_name_ok(const char *name)
{
	size_t n = strnlen(name, STORE_NAME_MAX + 1);

	if (n == 0 || n > STORE_NAME_MAX || name[0] == '.' || name[0] == ':')
		return false;
	for (size_t i = 0; i < n; i++)
		if (store_is_control((unsigned char)name[i]) || name[i] == '/')
			return false;
	return true;
}

unsigned
store_flags_parse(const char *letters)
{
	unsigned f = 0;

	for (const char *p = letters; *p != '\0'; p++) {
		switch (*p) {
		case 'D': f |= STORE_F_DRAFT; break;
		case 'F': f |= STORE_F_FLAGGED; break;
		case 'R': f |= STORE_F_ANSWERED; break;
		case 'S': f |= STORE_F_SEEN; break;
		case 'T': f |= STORE_F_DELETED; break;
		default: break;	/* P (passed), keywords: not ours */
		}
	}
	return f;
}

const char *
store_name_letters(const char *name)
{
	const char *colon = strchr(name, ':');

	if (colon == NULL || strncmp(colon, ":2,", 3) != 0)
		return NULL;
	return colon + 3;
}

/* The letters of flags plus those of keep (the old letters) that are not
 * ours, each once, in ASCII order as the Maildir specification asks. */
int
store_name_build(char *out, const char *base, size_t baselen,
    unsigned flags, const char *keep)
{
	static const struct { unsigned flag; char letter; } map[] = {
		{ STORE_F_DRAFT, 'D' }, { STORE_F_FLAGGED, 'F' },
		{ STORE_F_ANSWERED, 'R' }, { STORE_F_SEEN, 'S' },
		{ STORE_F_DELETED, 'T' },
	};
	bool have[256] = { false };
	char letters[257];
	size_t n = 0;

	for (const char *p = keep; p != NULL && *p != '\0'; p++)
		if (strchr("DFRST", *p) == NULL)
			have[(unsigned char)*p] = true;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (flags & map[i].flag)
			have[(unsigned char)map[i].letter] = true;
	for (unsigned c = 1; c < 256; c++)
		if (have[c])
			letters[n++] = (char)c;
	letters[n] = '\0';
	int w = snprintf(out, STORE_NAME_MAX + 1, "%.*s:2,%s", (int)baselen,
	    base, letters);
	return w < 0 || w > STORE_NAME_MAX ? -1 : 0;
}

char *
store_path_keep_letters(const char *path, const char *old)
{
	char name[STORE_NAME_MAX + 1];
	const char *slash = strrchr(path, '/'), *oslash = strrchr(old, '/');

	if (slash == NULL || oslash == NULL || slash - path != oslash - old ||
	    strncmp(path, old, (size_t)(slash - path)) != 0)
		return NULL;
	const char *base = slash + 1, *obase = oslash + 1;
	size_t baselen = strcspn(base, ":");
	const char *letters = store_name_letters(base);
	const char *oletters = store_name_letters(obase);
	if (strcspn(obase, ":") != baselen ||
	    strncmp(base, obase, baselen) != 0 || oletters == NULL ||
	    oletters[strspn(oletters, "DFRST")] == '\0')
		return NULL;
	unsigned flags = letters != NULL ? store_flags_parse(letters) : 0;
	if (store_name_build(name, base, baselen, flags, oletters) < 0 ||
	    strcmp(name, base) == 0)
		return NULL;
	return x_asprintf("%.*s/%s", (int)(slash - path), path, name);
}

/* ---- keywords ----------------------------------------------------------- */

/* RFC 9051 flag-keyword: an atom (no atom-specials), so never "\..." and
 * never a space, which separates keywords in the index. */
bool
store_keyword_ok(const char *kw)
{
	size_t n = strnlen(kw, STORE_KEYWORD_LEN_MAX + 1);

	if (n == 0 || n > STORE_KEYWORD_LEN_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)kw[i];
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}
