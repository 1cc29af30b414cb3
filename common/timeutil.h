/*
 * Clock readings and timed condition waits shared by the coordinator's threads, so that every
 * module converts a timespec the same way and waits the same way on a condition variable.
 */
#ifndef PGSHIP_COMMON_TIMEUTIL_H
#define PGSHIP_COMMON_TIMEUTIL_H

#include <pthread.h>
#include <stdint.h>

/* Wall-clock milliseconds since the epoch (CLOCK_REALTIME): for timestamps that are shown or
 * stored. */
int64_t time_now_ms(void);
/* Milliseconds on CLOCK_MONOTONIC: for durations, which a clock step must not change. */
int64_t time_mono_ms(void);
/* Waits on cv (mu held, as pthread_cond_timedwait) for at most ms milliseconds. The condition
 * variable must use the default clock (CLOCK_REALTIME); a wake-up may be spurious or early, so
 * the caller checks its own condition again. */
void time_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int ms);

#endif
