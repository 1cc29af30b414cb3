/*
 * libFuzzer target: database selectors (coordinator/select.c). The input is the selector text,
 * then optionally '\n' and agent, database and environment names separated by '\n'. Anything may
 * be refused; nothing may crash or leak, and an accepted selector's canonical text must parse
 * again to the same text and the same matches.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/select.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next '\n'-terminated piece of data as a C string in out (cut to cap - 1 bytes). */
static size_t next_piece(const uint8_t *data, size_t size, size_t at, char *out, size_t cap)
{
    size_t n = 0;
    while (at < size && data[at] != '\n') {
        if (n + 1 < cap)
            out[n++] = (char)data[at];
        at++;
    }
    out[n] = '\0';
    return at < size ? at + 1 : at;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > SELECT_TEXT_MAX + 1024)
        return 0;
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    char agent[128], database[128], environment[128];
    size_t at = next_piece(data, size, 0, text, size + 1);
    at = next_piece(data, size, at, agent, sizeof(agent));
    at = next_piece(data, size, at, database, sizeof(database));
    next_piece(data, size, at, environment, sizeof(environment));

    db_select *s = NULL;
    pgs_error e = {0};
    if (select_parse(text, &s, &e) == 0) {
        int m = select_match(s, agent, database, environment);
        select_match(s, agent, database, NULL);
        db_select *t = NULL;
        if (select_parse(select_text(s), &t, &e) != 0)
            __builtin_trap();
        if (strcmp(select_text(s), select_text(t)) != 0)
            __builtin_trap();
        if (select_match(t, agent, database, environment) != m)
            __builtin_trap();
        select_free(t);
    } else if (s != NULL || e.msg[0] == '\0') {
        __builtin_trap();
    }
    select_free(s);
    free(text);
    return 0;
}
