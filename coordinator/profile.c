/*
 * Sanitization profiles (see profile.h).
 */
#include "coordinator/profile.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/ini.h"

typedef struct settings {
    char *description;
    char *sanitizer;
    char *sanitizer_database;
    ini_src src;
} settings;

#define SE(f) offsetof(settings, f)

static const ini_key profile_keys[] = {
    {"description", INI_STRING, 0, NULL, 0, 0, NULL, SE(description)},
    {"sanitizer", INI_STRING, 0, NULL, 0, 0, NULL, SE(sanitizer)},
    {"sanitizer_database", INI_STRING, 0, NULL, 0, 0, NULL, SE(sanitizer_database)},
};

static const ini_section profile_spec = {"profile", 0, 0, profile_keys,
                                         sizeof(profile_keys) / sizeof(profile_keys[0]),
                                         sizeof(settings), 0, SE(src)};

int profile_sql_check(const char *what, const char *text, size_t len, pgs_error *e)
{
    if (len > PROFILE_SQL_MAX)
        return pgs_fail(e, PGS_ELIMIT, "%s: %zu bytes, more than the %u allowed", what, len,
                        PROFILE_SQL_MAX);
    if (memchr(text, '\0', len) != NULL)
        return pgs_fail(e, PGS_EFORMAT, "%s: contains a NUL byte (not SQL text)", what);
    /* jansson checks UTF-8 as it makes the string the JOB frame will carry anyway */
    json_t *j = json_stringn(text, len);
    if (j == NULL)
        return pgs_fail(e, PGS_EFORMAT, "%s: not valid UTF-8", what);
    json_decref(j);
    return 0;
}

int profile_parse_settings(const char *file, const char *text, size_t len, profile *out,
                           pgs_error *e)
{
    settings st = {0};
    ini_target t = {.one = &st};
    int rc = ini_parse_buffer(file, text, len, &profile_spec, 1, &t, e);
    if (rc == 0 && st.description != NULL && strlen(st.description) > PROFILE_DESCRIPTION_MAX)
        rc = pgs_fail(e, PGS_ELIMIT, "%s: [profile] description: at most %d bytes", file,
                      PROFILE_DESCRIPTION_MAX);
    if (rc == 0 && st.sanitizer != NULL && !catalog_name_valid(st.sanitizer))
        rc = pgs_fail(e, PGS_EINVAL, "%s: [profile] sanitizer: not an agent name", file);
    if (rc == 0 && st.sanitizer_database != NULL && !catalog_name_valid(st.sanitizer_database))
        rc = pgs_fail(e, PGS_EINVAL, "%s: [profile] sanitizer_database: not a database name",
                      file);
    if (rc == 0 && (st.sanitizer == NULL) != (st.sanitizer_database == NULL))
        rc = pgs_fail(e, PGS_EINVAL,
                      "%s: [profile] sanitizer and sanitizer_database go together: the agent "
                      "that sanitizes at the source and its scratch database",
                      file);
    if (rc == 0) {
        snprintf(out->description, sizeof(out->description), "%s",
                 st.description ? st.description : "");
        snprintf(out->sanitizer, sizeof(out->sanitizer), "%s", st.sanitizer ? st.sanitizer : "");
        snprintf(out->sanitizer_database, sizeof(out->sanitizer_database), "%s",
                 st.sanitizer_database ? st.sanitizer_database : "");
    }
    ini_free(&profile_spec, 1, &t);
    return rc;
}

/* Reads dir/name/file (at most max bytes) into a malloc'd NUL-terminated buffer. 1 when the
 * file does not exist, 0 when read, or a negative code. */
static int read_small(const char *path, size_t max, char **out, size_t *len, pgs_error *e)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        return pgs_fail(e, PGS_EIO, "%s: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return pgs_fail(e, PGS_EINVAL, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > max) {
        close(fd);
        return pgs_fail(e, PGS_ELIMIT, "%s: %lld bytes, more than the %zu allowed", path,
                        (long long)sb.st_size, max);
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got != (size_t)sb.st_size) {
        free(buf);
        return pgs_fail(e, PGS_EIO, "%s: short read", path);
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

int profile_load(const char *dir, const char *name, profile *out, pgs_error *e)
{
    memset(out, 0, sizeof(*out));
    if (!catalog_name_valid(name) || strlen(name) > CATALOG_PROFILE_MAX)
        return pgs_fail(e, PGS_EINVAL,
                        "\"%.64s\" is not a profile name (1-63 of A-Z a-z 0-9 . _ -)", name);
    snprintf(out->name, sizeof(out->name), "%s", name);
    char path[4096];
    size_t len = 0;
    char *text = NULL;

    snprintf(path, sizeof(path), "%s/%s/sanitize.sql", dir, name);
    int rc = read_small(path, PROFILE_SQL_MAX, &out->sanitize_sql, &len, e);
    if (rc == 1) {
        struct stat sb;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (stat(path, &sb) != 0)
            return pgs_fail(e, PGS_ENOTFOUND, "no profile %s (no directory %s)", name, path);
        return pgs_fail(e, PGS_ENOTFOUND, "profile %s has no sanitize.sql in %s", name, path);
    }
    if (rc == 0)
        rc = profile_sql_check(path, out->sanitize_sql, len, e);
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/%s/check.sql", dir, name);
        rc = read_small(path, PROFILE_SQL_MAX, &out->check_sql, &len, e);
        if (rc == 1)
            rc = 0;
        else if (rc == 0)
            rc = profile_sql_check(path, out->check_sql, len, e);
    }
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/%s/profile.ini", dir, name);
        rc = read_small(path, 64u << 10, &text, &len, e);
        if (rc == 1)
            rc = 0;
        else if (rc == 0)
            rc = profile_parse_settings(path, text, len, out, e);
        free(text);
    }
    if (rc != 0)
        profile_clear(out);
    return rc;
}

void profile_clear(profile *p)
{
    free(p->sanitize_sql);
    free(p->check_sql);
    memset(p, 0, sizeof(*p));
}
