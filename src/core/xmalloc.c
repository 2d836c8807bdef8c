/* Allocation wrappers: out of memory is fatal, never a NULL to check. */
#include "core/xmalloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *
x_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		fatalx("out of memory (%zu bytes)", n);
	return p;
}

void *
x_calloc(size_t nmemb, size_t n)
{
	void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);
	if (p == NULL)
		fatalx("out of memory (%zu x %zu bytes)", nmemb, n);
	return p;
}

void *
x_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		fatalx("out of memory (%zu bytes)", n);
	return q;
}

void *
x_reallocarray(void *p, size_t nmemb, size_t n)
{
	if (n != 0 && nmemb > SIZE_MAX / n)
		fatalx("allocation overflow (%zu x %zu)", nmemb, n);
	return x_realloc(p, nmemb * n);
}

char *
x_strdup(const char *s)
{
	return x_strndup(s, strlen(s));
}

char *
x_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = x_malloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
x_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	int n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatalx("out of memory (asprintf)");
	return p;
}

void
x_free_ptr(void *pp)
{
	void **p = pp;
	free(*p);
	*p = NULL;
}
