/*
 * libFuzzer target: retention (coordinator/retention.c). The first byte picks what the rest is:
 *
 *   even  a duration's text for retention_duration_parse (an accepted one must format and parse
 *         back to itself, and retention_duration_before must not overflow at the time limits)
 *   odd   a policy (7 bytes: six counts, 255 meaning unlimited, and a duration's four parts
 *         from the next 8 bytes) and then backups of 8 bytes each (a time step, flags, an id),
 *         for retention_plan, whose promises are checked: the newest complete and every pinned
 *         backup are kept, every kept backup has a reason, a deleted one has none but "failed".
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/retention.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ITEMS 4096

static void fuzz_duration(const uint8_t *data, size_t size)
{
    char text[RETENTION_DURATION_TEXT_MAX + 8];
    if (size >= sizeof(text))
        size = sizeof(text) - 1;
    memcpy(text, data, size);
    text[size] = '\0';
    retention_duration d;
    pgs_error e = {0};
    if (retention_duration_parse(text, &d, &e) != 0)
        return;
    char canon[64];
    retention_duration_format(&d, canon, sizeof(canon));
    retention_duration d2;
    if (retention_duration_parse(canon, &d2, &e) != 0 || memcmp(&d, &d2, sizeof(d)) != 0)
        __builtin_trap();
    int64_t a = retention_duration_before(&d, RETENTION_TIME_MAX);
    int64_t b = retention_duration_before(&d, RETENTION_TIME_MIN);
    if (a >= RETENTION_TIME_MAX || b >= RETENTION_TIME_MIN)
        __builtin_trap();
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void fuzz_plan(const uint8_t *data, size_t size)
{
    if (size < 14)
        return;
    retention_policy p;
    int *counts[6] = {&p.keep_last,   &p.keep_hourly,  &p.keep_daily,
                      &p.keep_weekly, &p.keep_monthly, &p.keep_yearly};
    for (int i = 0; i < 6; i++)
        *counts[i] = data[i] == 255 ? RETENTION_UNLIMITED : data[i] % 12;
    uint32_t w = get_u32(data + 6);
    p.keep_within = (retention_duration){(int)(w % 4), (int)(w / 4 % 16), (int)(w / 64 % 64),
                                         (int)(w / 4096 % 100)};
    if (data[10] & 1)
        p.keep_within = (retention_duration){0};
    int64_t t = (int64_t)(get_u32(data + 10) % 2000000000u);
    data += 14;
    size -= 14;

    static retention_item items[MAX_ITEMS];
    static char ids[MAX_ITEMS][8];
    size_t n = 0;
    for (; size >= 8 && n < MAX_ITEMS; data += 8, size -= 8, n++) {
        /* steps from seconds to years, and backwards, so times repeat and interleave */
        int32_t step = (int32_t)get_u32(data);
        int shift = data[4] & 7;
        t += (int64_t)step * (shift == 7 ? 1 : (int64_t)1 << (shift * 2));
        if (t < RETENTION_TIME_MIN)
            t = RETENTION_TIME_MIN;
        if (t > RETENTION_TIME_MAX)
            t = RETENTION_TIME_MAX;
        snprintf(ids[n], sizeof(ids[n]), "%02x%02x", data[6], data[7]);
        items[n] = (retention_item){.id = (data[5] & 8) ? NULL : ids[n],
                                    .time = t,
                                    .complete = (data[5] & 3) != 0,
                                    .pinned = (data[5] & 4) != 0};
    }
    pgs_error e = {0};
    if (retention_plan(&p, items, n, &e) != 0)
        return;
    size_t newest = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        const retention_item *it = &items[i];
        const char *id = it->id ? it->id : "";
        if (it->complete && (newest == SIZE_MAX || it->time > items[newest].time ||
                             (it->time == items[newest].time &&
                              strcmp(id, items[newest].id ? items[newest].id : "") > 0)))
            newest = i;
        if (it->pinned && !it->keep)
            __builtin_trap();
        if (it->keep && it->reasons[0] == '\0')
            __builtin_trap();
        if (!it->keep && strcmp(it->reasons, it->complete ? "" : "failed") != 0)
            __builtin_trap();
        if (strnlen(it->reasons, sizeof(it->reasons)) == sizeof(it->reasons))
            __builtin_trap();
    }
    if (newest != SIZE_MAX && !items[newest].keep)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0)
        fuzz_duration(data + 1, size - 1);
    else
        fuzz_plan(data + 1, size - 1);
    return 0;
}
