/* Allocation that never returns NULL: failure aborts with a message. */
#ifndef CORE_XMALLOC_H
#define CORE_XMALLOC_H

#include <stddef.h>
#include "core/log.h"

void *x_malloc(size_t n);
void *x_calloc(size_t nmemb, size_t n);
void *x_realloc(void *p, size_t n);
/* Grows an array of nmemb elements of size n, checking for overflow. */
void *x_reallocarray(void *p, size_t nmemb, size_t n);
char *x_strdup(const char *s);
char *x_strndup(const char *s, size_t n);
char *x_asprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Frees *pp and sets it to NULL; pp is a pointer to any pointer. */
void x_free_ptr(void *pp);
#define x_free(pp) x_free_ptr(pp)

#endif
