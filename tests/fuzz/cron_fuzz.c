/*
 * Fuzzes cron expressions: cron_parse on arbitrary text (zones come from the system's zoneinfo,
 * so "CRON_TZ=Europe/Berlin ..." in the corpus reaches the DST paths), then cron_next from a few
 * fixed instants. A parsed expression must give runs that are strictly later than the instant
 * asked about and increase when asked again from the answer; its normalized text must parse to
 * the same schedule. Every failure must say why.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[CRON_TEXT_MAX + 8];
    if (size >= sizeof(text))
        size = sizeof(text) - 1;
    memcpy(text, data, size);
    text[size] = '\0';

    cron_expr *c = NULL, *c2 = NULL;
    pgs_error e = {0};
    int rc = cron_parse(text, &c, &e);
    if (rc != 0) {
        if (rc != e.code || e.msg[0] == '\0' || c != NULL)
            __builtin_trap();
        return 0;
    }
    if (cron_parse(cron_text(c), &c2, &e) != 0)
        __builtin_trap();
    /* 2024-03-30 (before Europe's spring-forward), 2024-10-26 (before its fall-back), 2099-12-31 */
    static const int64_t starts[] = {1711756800, 1729900800, 4102358400};
    for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
        int64_t t = starts[i];
        for (int k = 0; k < 8; k++) {
            int64_t n1, n2;
            int r1 = cron_next(c, t, &n1, &e);
            int r2 = cron_next(c2, t, &n2, &e);
            if (r1 != r2 || (r1 == 0 && n1 != n2))
                __builtin_trap();
            if (r1 != 0) {
                if (e.msg[0] == '\0')
                    __builtin_trap();
                break;
            }
            if (n1 <= t || n1 > CRON_TIME_MAX)
                __builtin_trap();
            t = n1;
        }
    }
    cron_free(c);
    cron_free(c2);
    return 0;
}
