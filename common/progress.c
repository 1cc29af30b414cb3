/* Progress line on stderr (see progress.h). */
#include "common/progress.h"

#include <stdio.h>
#include <time.h>

#include "common/fsutil.h"

double progress_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_init(progress *p, int enabled, const char *label, uint64_t estimate)
{
    p->enabled = enabled;
    p->drawn = 0;
    p->start = progress_now();
    p->last = 0;
    p->estimate = estimate;
    p->label = label;
}

void progress_update(progress *p, uint64_t bytes, uint64_t out)
{
    if (!p->enabled)
        return;
    double now = progress_now();
    if (now - p->last < 0.25)
        return;
    p->last = now;
    double el = now - p->start;
    char b[32], r[32], o[32], est[64] = "", outs[64] = "";
    fs_human_bytes(bytes, b, sizeof(b));
    fs_human_bytes(el > 0 ? (uint64_t)((double)bytes / el) : 0, r, sizeof(r));
    if (out > 0)
        snprintf(outs, sizeof(outs), " -> %s", fs_human_bytes(out, o, sizeof(o)));
    if (p->estimate > 0) {
        char e[32];
        double pct = 100.0 * (double)bytes / (double)p->estimate;
        snprintf(est, sizeof(est), ", ~%.0f%% of %s (estimate)", pct > 99 ? 99 : pct,
                 fs_human_bytes(p->estimate, e, sizeof(e)));
    }
    int m = (int)el / 60, s = (int)el % 60;
    fprintf(stderr, "\r\033[K%s: %s%s, %s/s, %02d:%02d elapsed%s", p->label, b, outs, r, m, s,
            est);
    fflush(stderr);
    p->drawn = 1;
}

void progress_end(progress *p)
{
    if (p->enabled && p->drawn) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
    p->drawn = 0;
}
