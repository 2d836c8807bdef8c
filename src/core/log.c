/* Logging to standard error, one line per event. */
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_progname = "correo";
static int log_verbose;

void
log_init(const char *progname, int verbose)
{
	log_progname = progname;
	log_verbose = verbose;
}

static void
log_vwrite(const char *level, const char *fmt, va_list ap, int errnum)
{
	char msg[2048], stamp[32];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* One write(2) per line so concurrent threads do not interleave. */
	char line[2300];
	int n;
	if (errnum)
		n = snprintf(line, sizeof(line), "%s.%03ldZ %s[%ld]: level=%s %s: %s\n",
		    stamp, ts.tv_nsec / 1000000, log_progname, (long)getpid(),
		    level, msg, strerror(errnum));
	else
		n = snprintf(line, sizeof(line), "%s.%03ldZ %s[%ld]: level=%s %s\n",
		    stamp, ts.tv_nsec / 1000000, log_progname, (long)getpid(),
		    level, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	ssize_t r = write(STDERR_FILENO, line, (size_t)n);
	(void)r;
}

#define LOG_BODY(level, errnum)		\
	va_list ap;			\
	va_start(ap, fmt);		\
	log_vwrite(level, fmt, ap, errnum); \
	va_end(ap)

void
log_debug(const char *fmt, ...)
{
	if (!log_verbose)
		return;
	LOG_BODY("debug", 0);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY("info", 0);
}

void
log_warn(const char *fmt, ...)
{
	int e = errno;
	LOG_BODY("warn", e);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY("warn", 0);
}

void
fatal(const char *fmt, ...)
{
	int e = errno;
	LOG_BODY("fatal", e);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY("fatal", 0);
	exit(1);
}

void
panic(const char *fmt, ...)
{
	LOG_BODY("panic", 0);
	abort();
}
