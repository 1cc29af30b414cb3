/*
 * A one-line progress display on stderr for long work, redrawn at most a few times a second and
 * only when stderr is a terminal (or when forced, for tests). Shows bytes, rate, elapsed time and,
 * given an estimate, a percentage marked as an estimate.
 */
#ifndef PGSHIP_COMMON_PROGRESS_H
#define PGSHIP_COMMON_PROGRESS_H

#include <stdint.h>

typedef struct progress {
    int enabled;
    int drawn;
    double start;
    double last;
    uint64_t estimate;
    const char *label;
} progress;

double progress_now(void);
void progress_init(progress *p, int enabled, const char *label, uint64_t estimate);
/* bytes: work done so far (input); out: bytes produced, or 0 to omit. */
void progress_update(progress *p, uint64_t bytes, uint64_t out);
/* Clears the line so that the next message starts clean. */
void progress_end(progress *p);

#endif
