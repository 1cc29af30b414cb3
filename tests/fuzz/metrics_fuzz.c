/*
 * Fuzz target of the label values that reach the /metrics text (coordinator/metrics.c): agent
 * and database names are chosen by others, and one bad byte in the text would make Prometheus
 * refuse the whole scrape. The input, split at NUL bytes, gives up to three label values. The
 * rendered text must be valid UTF-8 with exactly one sample line, and each value read back from
 * it (unescaped) must be at most METRICS_LABEL_VALUE_MAX bytes and equal to the input value
 * whenever that was valid UTF-8 short enough to keep whole (a prefix of it otherwise).
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int utf8_valid(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    if (j == NULL)
        return 0;
    json_decref(j);
    return 1;
}

/* Reads the quoted value at *p (just after the opening quote) into out; advances past the
 * closing quote. Aborts on anything the exposition format would not accept. */
static size_t read_value(const char **p, char *out)
{
    size_t n = 0;
    const char *s = *p;
    for (;;) {
        char c = *s++;
        if (c == '"')
            break;
        if (c == '\0' || c == '\n')
            abort();
        if (c == '\\') {
            c = *s++;
            if (c == 'n')
                c = '\n';
            else if (c != '\\' && c != '"')
                abort();
        }
        if (n >= METRICS_LABEL_VALUE_MAX)
            abort();
        out[n++] = c;
    }
    *p = s;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"agent", "database", "reason", NULL};
    char *vals[3] = {NULL, NULL, NULL};
    size_t lens[3] = {0, 0, 0};
    const char *start = (const char *)data;
    const char *end = start + size;
    for (int i = 0; i < 3; i++) {
        const char *z = start < end ? memchr(start, '\0', (size_t)(end - start)) : NULL;
        const char *stop = z != NULL ? z : end;
        lens[i] = start < end ? (size_t)(stop - start) : 0;
        vals[i] = malloc(lens[i] + 1);
        if (lens[i] > 0)
            memcpy(vals[i], start, lens[i]);
        vals[i][lens[i]] = '\0';
        start = stop < end ? stop + 1 : end;
    }

    metrics *m;
    if (metrics_new(&m) != 0)
        abort();
    if (metrics_declare(m, "f_total", METRICS_COUNTER, "fuzz", names) != 0)
        abort();
    const char *const lv[] = {vals[0], vals[1], vals[2], NULL};
    metrics_add(m, "f_total", lv, 1);
    metrics_add(m, "f_total", lv, 1);
    if (metrics_rejected(m) != 0 || metrics_series_count(m) != 1)
        abort();

    char *text;
    size_t len;
    if (metrics_render(m, &text, &len) != 0)
        abort();
    if (!utf8_valid(text, len))
        abort();
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    if (lines != 3)
        abort();

    const char *p = strstr(text, "\nf_total{");
    if (p == NULL)
        abort();
    p += strlen("\nf_total{");
    char got[METRICS_LABEL_VALUE_MAX];
    for (int i = 0; i < 3; i++) {
        size_t nl = strlen(names[i]);
        if (strncmp(p, names[i], nl) != 0 || p[nl] != '=' || p[nl + 1] != '"')
            abort();
        p += nl + 2;
        size_t n = read_value(&p, got);
        if (!utf8_valid(got, n))
            abort();
        if (utf8_valid(vals[i], lens[i])) {
            if (n > lens[i] || memcmp(got, vals[i], n) != 0)
                abort();
            if (lens[i] <= METRICS_LABEL_VALUE_MAX && n != lens[i])
                abort();
            if (lens[i] > METRICS_LABEL_VALUE_MAX && n + 3 < METRICS_LABEL_VALUE_MAX)
                abort(); /* cut only as much as one character needs */
        }
        if (*p != (i < 2 ? ',' : '}'))
            abort();
        p++;
    }
    if (strcmp(p, " 2\n") != 0)
        abort();

    free(text);
    metrics_free(m);
    for (int i = 0; i < 3; i++)
        free(vals[i]);
    return 0;
}
