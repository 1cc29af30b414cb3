/*
 * Errors are values: functions return 0 or a negative PGS_E* code, and fill a pgs_error with a
 * sentence an operator can act on. The code lets callers branch (and tests assert); the message
 * names the thing that was wrong (a file, a key id, a chunk number).
 */
#ifndef PGSHIP_COMMON_ERROR_H
#define PGSHIP_COMMON_ERROR_H

#include <stddef.h>

enum {
    PGS_OK = 0,
    PGS_ENOMEM = -1,   /* out of memory */
    PGS_EIO = -2,      /* read/write/system call failed */
    PGS_EINVAL = -3,   /* bad argument or bad input from a user */
    PGS_EFORMAT = -4,  /* bytes are not in the expected format */
    PGS_EAUTH = -5,    /* authentication failed: modified data */
    PGS_ETRUNC = -6,   /* input ended too early */
    PGS_EVERSION = -7, /* unsupported format version */
    PGS_ENOKEY = -8,   /* none of our keys opens this */
    PGS_ELIMIT = -9,   /* a field exceeds its documented limit */
    PGS_EORDER = -10,  /* chunks or members out of order, missing or duplicated */
    PGS_EEXIST = -11,  /* would overwrite something */
    PGS_ECHILD = -12,  /* a spawned program failed */
    PGS_EINTR = -13,   /* interrupted by a signal */
    PGS_ESUM = -14,    /* checksum mismatch */
    PGS_ETRAIL = -15,  /* data after the end */
    PGS_ENOTFOUND = -16,
    PGS_EDENIED = -17, /* refused by policy (a prod overwrite, an unsanitized prod copy) */
};

typedef struct pgs_error {
    int code;
    char msg[512];
} pgs_error;

/* Formats msg into e (if e is not NULL) and returns code, so callers can `return pgs_fail(...)`. */
int pgs_fail(pgs_error *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an existing message, keeping the code. Returns the code. */
int pgs_wrap(pgs_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *pgs_strerror(int code);

#endif
