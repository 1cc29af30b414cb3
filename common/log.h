/*
 * Logging for operators. One-shot commands print "PROG: LEVEL: message" to stderr; daemons (later)
 * switch to a timestamped line (log_set_daemon). Messages are lowercase without a final period, and never carry a
 * key, a password or a conninfo string.
 */
#ifndef PGSHIP_COMMON_LOG_H
#define PGSHIP_COMMON_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_init(const char *progname);
/* Daemon lines: "2026-11-21T16:05:29.123Z pgship-coordinator[1234] info: message" (UTC, ms),
 * one write per line (docs/runbook.md, "Logs"). One-shot commands keep "PROG: LEVEL: message". */
void log_set_daemon(int on);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)                                                                             \
    do {                                                                                          \
        if (log_enabled(LOG_INFO))                                                                \
            log_msg(LOG_INFO, __VA_ARGS__);                                                       \
    } while (0)
#define log_debug(...)                                                                            \
    do {                                                                                          \
        if (log_enabled(LOG_DEBUG))                                                               \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                                      \
    } while (0)

#endif
