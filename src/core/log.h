/* Logging: one line per event, key=value fields, to standard error. */
#ifndef CORE_LOG_H
#define CORE_LOG_H

#include <stdarg.h>
#include <stdnoreturn.h>

#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

/* Sets the program name and whether debug lines are written. */
void log_init(const char *progname, int verbose);

void log_debug(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_info(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* log_warn appends ": strerror(errno)"; log_warnx does not. */
void log_warn(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_warnx(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* The environment failed: log (fatal adds errno) and exit(1). */
noreturn void fatal(const char *fmt, ...) PRINTF_LIKE(1, 2);
noreturn void fatalx(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* A bug: log and abort(). */
noreturn void panic(const char *fmt, ...) PRINTF_LIKE(1, 2);

#endif
