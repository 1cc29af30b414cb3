/*
 * A strict, table-driven INI layer for pgship's configuration files, built on inih.
 *
 * A caller describes each section it accepts with an ini_section (its name, whether it repeats as
 * `[kind NAME]`, its keys with their types, defaults and checks, and where each key's value goes
 * in a caller's struct). The layer fills those structs and refuses, with "file:line: message",
 * anything it was not told about: unknown sections and keys, duplicate keys and sections, bad
 * values, missing required keys. Input is bounded: INI_FILE_MAX bytes, INI_LINE_MAX bytes a line,
 * INI_VALUE_MAX bytes a value, INI_SECTIONS_MAX named sections.
 *
 * The syntax is inih's with its surprises turned off: `key = value` only (no `key: value`),
 * comments are whole lines starting with '#' or ';' (a ';' or '#' inside a value is part of the
 * value), no continuation lines, no text after a section's ']'. A UTF-8 byte order mark at the
 * start and CRLF line ends are accepted; NUL bytes and other control characters than tab are not.
 *
 * Ownership: strings and lists the layer stores in a caller's struct are malloc'd and released by
 * ini_free; arrays of named sections are malloc'd by the layer and released the same way. Parsing
 * sets inih's process-wide options, under a lock; it is meant for start-up, not for a hot path.
 */
#ifndef PGSHIP_COMMON_INI_H
#define PGSHIP_COMMON_INI_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/error.h"

#define INI_FILE_MAX (1u << 20) /* bytes in a configuration file */
#define INI_LINE_MAX 8192       /* bytes in one line, without its line end */
#define INI_VALUE_MAX 4096      /* bytes in one value */
#define INI_SECTIONS_MAX 4096   /* named sections ([agent NAME] ...) in one file, all kinds */
#define INI_KEYS_MAX 32         /* keys in one section spec */
#define INI_LIST_MAX 32         /* items in one list value */
#define INI_NAME_MAX 63         /* bytes in the NAME of a named section */

enum ini_type {
    INI_STRING, /* char *: any non-empty text */
    INI_BOOL,   /* int: true/false, yes/no, on/off, 1/0 (any case) */
    INI_UINT,   /* uint64_t: decimal, within [min, max] */
    INI_SIZE,   /* uint64_t bytes: decimal with an optional unit B, K/KiB, M/MiB, G/GiB, T/TiB
                   (powers of 1024), within [min, max] bytes */
    INI_ENUM,   /* int: the index of the value in choices */
    INI_PATH,   /* char *: an absolute path */
    INI_PATHS,  /* ini_list: comma-separated absolute paths, 1..INI_LIST_MAX of them */
    INI_URL,    /* char *: scheme://..., with the scheme one of choices (see ini_url_parse) */
};

/*
 * Key flags. INI_REQUIRED: the key must be given (def must be NULL). INI_SECRET: the value itself
 * is secret: printed as "(set)", never quoted in messages, wiped when freed. INI_FILE (PATH,
 * PATHS): each path must name a regular file we can open for reading. INI_PRIVATE (PATH): like
 * INI_FILE, and the file must have no group or other permission bits (mode & 077 == 0) because it
 * holds a secret. INI_OFF (URL): the literal value "off" is accepted too.
 */
#define INI_REQUIRED 0x01u
#define INI_SECRET 0x02u
#define INI_FILE 0x04u
#define INI_PRIVATE 0x08u
#define INI_OFF 0x10u

typedef struct ini_key {
    const char *name;
    enum ini_type type;
    unsigned flags;
    const char *def;            /* default in file syntax, or NULL for none */
    uint64_t min, max;          /* INI_UINT, INI_SIZE */
    const char *const *choices; /* INI_ENUM values, INI_URL schemes; NULL-terminated */
    size_t offset;              /* of the value's field in the section's struct */
} ini_key;

typedef struct ini_list {
    char **items;
    size_t n;
} ini_list;

/* Where a section instance came from: its header's line (0 when the section is not in the file
 * and holds only defaults) and the line of each key, in spec order (0: defaulted or unset). */
typedef struct ini_src {
    int line;
    int key_line[INI_KEYS_MAX];
} ini_src;

typedef struct ini_section {
    const char *name; /* "coordinator", or "agent" for [agent NAME] */
    int named;        /* 1: appears as [name NAME], any number of times, NAMEs distinct */
    int required;     /* unnamed: the section must appear */
    const ini_key *keys;
    size_t nkeys;       /* <= INI_KEYS_MAX */
    size_t size;        /* of the struct one instance fills */
    size_t name_offset; /* named: the char * field that receives NAME */
    size_t src_offset;  /* the ini_src field */
} ini_section;

/* Where one section spec's values go. For an unnamed section, `one` is the caller's struct (it
 * gets the defaults when the section is absent). For a named one, the layer sets `many` to a
 * malloc'd array of `count` instances, in file order. */
typedef struct ini_target {
    void *one;
    void *many;
    size_t count;
} ini_target;

/*
 * Parses text (len bytes, not necessarily NUL-terminated) named `file` in messages into targets
 * (one per spec, zeroed by the caller), then applies defaults and checks required keys. Does not
 * touch the file system. On failure the targets may be partly filled: call ini_free either way.
 */
int ini_parse_buffer(const char *file, const char *text, size_t len, const ini_section *specs,
                     size_t nspecs, ini_target *targets, pgs_error *e);

/* Checks the INI_FILE / INI_PRIVATE keys of every instance (after ini_parse_buffer). */
int ini_check_files(const char *file, const ini_section *specs, size_t nspecs,
                    const ini_target *targets, pgs_error *e);

/* Reads a whole configuration file (a regular file of at most INI_FILE_MAX bytes) into a malloc'd
 * buffer; release it with ini_text_free, which wipes it (it may hold a password). */
int ini_read_file(const char *path, char **text, size_t *len, pgs_error *e);
void ini_text_free(char *text, size_t len);

/* ini_read_file, ini_parse_buffer and ini_check_files. */
int ini_load_file(const char *path, const ini_section *specs, size_t nspecs, ini_target *targets,
                  pgs_error *e);

/* Frees what the layer stored in targets (secret strings are wiped first) and zeroes them. */
void ini_free(const ini_section *specs, size_t nspecs, ini_target *targets);

/* Prints one instance as "key = value" lines under its header: defaults are marked, unset keys
 * say so, INI_SECRET values print as "(set)". */
void ini_print_section(FILE *out, const ini_section *spec, const void *inst);

const ini_key *ini_find_key(const ini_section *spec, const char *key);
/* The line of key in inst, or of the section header when the key came from a default (0 when
 * the section is not in the file). */
int ini_key_line(const ini_section *spec, const void *inst, const char *key);
/* 1 when key was written in the file (not defaulted). */
int ini_key_set(const ini_section *spec, const void *inst, const char *key);
/* "[coordinator]" or "[agent NAME]" into buf. */
const char *ini_section_label(const ini_section *spec, const void *inst, char *buf, size_t len);

/* Fails with "file:line: message" ("file: message" when line is 0). */
int ini_fail_at(pgs_error *e, int code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* "file:line: [section NAME] key: message", the line being the key's (or its section's); for the
 * loaders' own checks after parsing. */
int ini_vfail_key(pgs_error *e, int code, const char *path, const ini_section *s, const void *inst,
                  const char *key, const char *fmt, va_list ap);

/* True when name is 1..63 characters of [A-Za-z0-9._-] not starting with '.' or '-': the rule for
 * the NAME of named sections (they become parts of object keys and paths). */
int ini_name_valid(const char *name);

/* A URL as configuration files write them: tls+tcp://host:port, tcp://host:port, ipc:///path,
 * http://host[:port], https://host[:port]. host is a name or address of [A-Za-z0-9._-] or an IPv6
 * address in brackets; no user, path, query or fragment (except ipc's path). */
typedef struct ini_url {
    char scheme[16];
    char host[256];   /* without the brackets of an IPv6 address; empty for ipc */
    unsigned port;    /* 0 when absent (ipc, or http/https without a port) */
    const char *path; /* ipc: the path inside the URL string; otherwise NULL */
} ini_url;

/* Parses url (whose scheme must be one of schemes, NULL-terminated, or any of the five above when
 * schemes is NULL). tcp and tls+tcp need a port. */
int ini_url_parse(const char *url, const char *const *schemes, ini_url *out, pgs_error *e);

#endif
