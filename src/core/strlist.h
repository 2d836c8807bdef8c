/* A list of owned C strings. */
#ifndef CORE_STRLIST_H
#define CORE_STRLIST_H

#include <stdbool.h>
#include <stddef.h>

struct strlist {
	char **v;
	size_t n;
	size_t cap;
};

#define STRLIST_INIT { NULL, 0, 0 }

void strlist_add(struct strlist *l, const char *s);
/* Adds s unless an equal string (case-insensitive) is present. */
void strlist_add_unique(struct strlist *l, const char *s);
bool strlist_contains(const struct strlist *l, const char *s);
void strlist_free(struct strlist *l);

#endif
