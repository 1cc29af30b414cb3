/* Logging to stderr (see log.h). */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "pgship";
static enum log_level log_level_cur = LOG_INFO;
static int log_daemon;

void log_set_daemon(int on)
{
    log_daemon = on;
}

void log_init(const char *progname)
{
    log_prog = progname;
}

void log_set_level(enum log_level level)
{
    log_level_cur = level;
}

int log_enabled(enum log_level level)
{
    return level <= log_level_cur;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    if (!log_enabled(level))
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One write per line so concurrent writers do not interleave within a line. */
    if (log_daemon) {
        struct timeval tv;
        struct tm tm;
        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        char ts[32];
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03dZ %s[%d] %s: %s\n", ts, (int)(tv.tv_usec / 1000), log_prog,
                (int)getpid(), names[level], line);
        return;
    }
    fprintf(stderr, "%s: %s: %s\n", log_prog, names[level], line);
}
