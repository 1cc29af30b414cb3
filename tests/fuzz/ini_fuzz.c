/*
 * Fuzzes the INI layer with the coordinator's spec: coordinator_config_parse runs inih, our line
 * reader and section handling, every value type, defaults, and the coordinator's cross-key checks,
 * without touching the file system or the environment. A file that loads must print, and must
 * load again to the same effective values after a second parse of the same bytes (nothing may
 * depend on state left by the previous run).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "coordinator/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
        __builtin_trap();
    coordinator_config a, b;
    pgs_error ea = {0}, eb = {0};
    int ra = coordinator_config_parse("fuzz.conf", (const char *)data, size, &a, &ea);
    int rb = coordinator_config_parse("fuzz.conf", (const char *)data, size, &b, &eb);
    if (ra != rb || strcmp(ea.msg, eb.msg) != 0)
        __builtin_trap();
    if (ra == 0) {
        coordinator_config_print(devnull, &a);
        if (a.nagents != b.nagents || strcmp(a.coordinator.listen, b.coordinator.listen) != 0 ||
            a.storage.type != b.storage.type)
            __builtin_trap();
        for (size_t i = 0; i < a.nagents; i++)
            if (strcmp(a.agents[i].name, b.agents[i].name) != 0 ||
                memcmp(&a.agents[i].key, &b.agents[i].key, sizeof(a.agents[i].key)) != 0)
                __builtin_trap();
    } else if (ea.msg[0] == '\0' || ea.code != ra) {
        __builtin_trap(); /* every failure says why */
    }
    coordinator_config_free(&a);
    coordinator_config_free(&b);
    return 0;
}
