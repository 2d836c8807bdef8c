/* A list of owned strings. */
#include "core/strlist.h"

#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"

void
strlist_add(struct strlist *l, const char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = x_reallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->n++] = x_strdup(s);
}

bool
strlist_contains(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i], s) == 0)
			return true;
	return false;
}

void
strlist_add_unique(struct strlist *l, const char *s)
{
	if (!strlist_contains(l, s))
		strlist_add(l, s);
}

void
strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		x_free(&l->v[i]);
	x_free(&l->v);
	l->n = l->cap = 0;
}
