/* Locating pg_dump and friends by version (see pgbin.h). */
#include "agent/pgbin.h"

#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/spawn.h"

#define PGBIN_MAX_CANDIDATES 64

int pgbin_parse_version(const char *text, char *version, size_t cap, int *major)
{
    const char *p = strstr(text, "(PostgreSQL) ");
    if (p == NULL)
        return -1;
    p += strlen("(PostgreSQL) ");
    size_t n = strspn(p, "0123456789.");
    if (n == 0 || n >= cap || p[0] == '.')
        return -1;
    memcpy(version, p, n);
    version[n] = '\0';
    char *end = NULL;
    long m = strtol(version, &end, 10);
    if (m < 7 || m > 999)
        return -1;
    *major = (int)m;
    return 0;
}

typedef struct cand {
    char path[PATH_MAX];
    char real[PATH_MAX];
} cand;

static size_t add_candidate(cand *c, size_t n, const char *path)
{
    if (n >= PGBIN_MAX_CANDIDATES || access(path, X_OK) != 0)
        return n;
    char real[PATH_MAX];
    if (realpath(path, real) == NULL)
        return n;
    for (size_t i = 0; i < n; i++)
        if (strcmp(c[i].real, real) == 0)
            return n;
    snprintf(c[n].path, sizeof(c[n].path), "%s", path);
    snprintf(c[n].real, sizeof(c[n].real), "%s", real);
    return n + 1;
}

int pgbin_find(const char *prog, int server_major, const char *bindir, pgbin *out, pgs_error *e)
{
    cand *c = calloc(PGBIN_MAX_CANDIDATES, sizeof(*c));
    if (c == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    size_t n = 0;
    char path[PATH_MAX + 64];
    char where[1024];
    if (bindir != NULL) {
        snprintf(path, sizeof(path), "%s/%s", bindir, prog);
        n = add_candidate(c, n, path);
        snprintf(where, sizeof(where), "%s", bindir);
    } else {
        /* Versioned installations first: they are real binaries, where PATH may hold wrappers. */
        glob_t g;
        snprintf(path, sizeof(path), "/usr/lib/postgresql/*/bin/%s", prog);
        if (glob(path, 0, NULL, &g) == 0) {
            for (size_t i = 0; i < g.gl_pathc; i++)
                n = add_candidate(c, n, g.gl_pathv[i]);
            globfree(&g);
        }
        const char *env = getenv("PATH");
        char pathvar[4096];
        snprintf(pathvar, sizeof(pathvar), "%s", env ? env : "/usr/bin:/bin");
        char *save = NULL;
        for (char *d = strtok_r(pathvar, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
            snprintf(path, sizeof(path), "%s/%s", d[0] ? d : ".", prog);
            n = add_candidate(c, n, path);
        }
        snprintf(where, sizeof(where), "/usr/lib/postgresql/*/bin and PATH (%.900s)",
                 env ? env : "unset");
    }

    int best = -1, best_major = 0;
    char best_version[64] = "", found[1024] = "";
    for (size_t i = 0; i < n; i++) {
        const char *argv[] = {c[i].path, "--version", NULL};
        char text[512], version[64];
        int major = 0;
        if (spawn_capture(argv, text, sizeof(text), NULL) != 0 ||
            pgbin_parse_version(text, version, sizeof(version), &major) != 0)
            continue;
        size_t fl = strlen(found);
        snprintf(found + fl, sizeof(found) - fl, "%s%s at %s", fl ? ", " : "", version,
                 c[i].path);
        if (major >= server_major && (best < 0 || major < best_major)) {
            best = (int)i;
            best_major = major;
            snprintf(best_version, sizeof(best_version), "%s", version);
        }
    }
    int rc = 0;
    if (best < 0) {
        rc = pgs_fail(e, PGS_ENOTFOUND,
                      "no %s of major version %d or later found; looked in %s; found: %s", prog,
                      server_major, where, found[0] ? found : "none");
    } else {
        snprintf(out->path, sizeof(out->path), "%s", c[best].path);
        snprintf(out->dir, sizeof(out->dir), "%s", c[best].path);
        char *slash = strrchr(out->dir, '/');
        if (slash)
            *slash = '\0';
        snprintf(out->version, sizeof(out->version), "%s", best_version);
        out->major = best_major;
    }
    free(c);
    return rc;
}
