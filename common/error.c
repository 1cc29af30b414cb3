/* Error values and their messages (see error.h). */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int pgs_fail(pgs_error *e, int code, const char *fmt, ...)
{
    if (e != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return code;
}

int pgs_wrap(pgs_error *e, const char *fmt, ...)
{
    if (e == NULL)
        return PGS_EINVAL;
    char prefix[256];
    char old[sizeof(e->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof(old));
    snprintf(e->msg, sizeof(e->msg), "%s: %s", prefix, old);
    return e->code;
}

const char *pgs_strerror(int code)
{
    switch (code) {
    case PGS_OK: return "success";
    case PGS_ENOMEM: return "out of memory";
    case PGS_EIO: return "input/output error";
    case PGS_EINVAL: return "invalid argument";
    case PGS_EFORMAT: return "malformed input";
    case PGS_EAUTH: return "authentication failed";
    case PGS_ETRUNC: return "truncated input";
    case PGS_EVERSION: return "unsupported version";
    case PGS_ENOKEY: return "no matching key";
    case PGS_ELIMIT: return "limit exceeded";
    case PGS_EORDER: return "out of order";
    case PGS_EEXIST: return "already exists";
    case PGS_ECHILD: return "child process failed";
    case PGS_EINTR: return "interrupted";
    case PGS_ESUM: return "checksum mismatch";
    case PGS_ETRAIL: return "trailing data";
    case PGS_ENOTFOUND: return "not found";
    case PGS_EDENIED: return "refused by policy";
    default: return "unknown error";
    }
}
