/*
 * The restore's data loader: a custom-format dump's table data loaded over several connections
 * while the dump is still arriving.
 *
 * pgship's dumps come through a pipe, so their TOC has no data offsets and pg_restore -j N would
 * load one table after another (each worker would have to read the file from the start to find
 * its table). The loader reads the block boundaries as the dump is appended to the spool file
 * (agent/pgcustom.h), queues every TABLE DATA block in dump order, and N workers, each with its
 * own connection, COPY a block's rows from the spool file as soon as they are there: a worker that
 * catches up with the unpack waits for more bytes. Memory stays N read buffers whatever the size
 * of the dump.
 *
 * Each table is loaded in one transaction that first empties it (TRUNCATE ONLY of a table the
 * restore created minutes ago) and then COPYs with FREEZE: on wal_level = minimal the rows are not
 * WAL-logged, and the restored tables come out frozen and all-visible, so the first autovacuum
 * does not rewrite the whole database and index-only scans work at once. A block whose COPY
 * statement does not name its own table (--load-via-partition-root dumps) is loaded without
 * either.
 *
 * Whatever the loader does not load itself (sequence values, large objects, a block whose COPY
 * statement it does not recognise) is listed by loader_rest_list for one pg_restore -L run.
 *
 * The bytes are not verified yet when they are loaded (SHA256SUMS comes last): as with the rest of
 * the restore, they go into the temporary database, which is dropped if the unpack fails.
 */
#ifndef PGSHIP_AGENT_LOADER_H
#define PGSHIP_AGENT_LOADER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct loader_opts {
    const char *conninfo; /* the agent's conninfo for the database (a secret: never logged) */
    const char *dbname;   /* the temporary database to load into */
    const char *path;     /* the spool file the dump is being appended to */
    const char *role;     /* SET ROLE to this one, or NULL */
    const char *id;       /* the restore's id, for logs */
    int jobs;             /* connections, 1..64 */
    size_t toc_max;       /* bound of the header and TOC kept in memory */
} loader_opts;

typedef struct loader loader;

/* States of loader_feed's answer */
enum {
    LOADER_UNDECIDED = 0, /* the TOC is not complete yet */
    LOADER_PARALLEL = 1,  /* the TOC is read and the loader will load the table data */
    LOADER_DECLINED = 2   /* not a dump the loader can load (see loader_why): use pg_restore */
};

/* o is copied. Starts nothing yet. Returns 0 or PGS_ENOMEM/PGS_EINVAL. */
int loader_new(loader **out, const loader_opts *o, pgs_error *e);

/*
 * The next bytes of the dump, after they were appended to o->path. Returns 0 with *state set, or
 * the first error of a worker (e says which table and why).
 */
int loader_feed(loader *l, const void *buf, size_t len, int *state, pgs_error *e);

/* Why the loader declined the dump (a sentence for the log), or "". */
const char *loader_why(const loader *l);

/* The schema is in the temporary database: the workers connect and start loading. */
int loader_go(loader *l, pgs_error *e);

/*
 * The dump ended. ok: it was read to its verified end; the call waits for every queued block to
 * be loaded and returns the first error. !ok: the workers are stopped (their queries cancelled)
 * and the call returns 0 once they are gone. Idempotent.
 */
int loader_finish(loader *l, int ok, pgs_error *e);

/*
 * After a successful loader_finish: writes pg_restore's -L list of the data section's entries the
 * loader did not load to path and sets *n to their number (0: no pg_restore run is needed).
 */
int loader_rest_list(loader *l, const char *path, size_t *n, pgs_error *e);

/* After loader_finish: {"schema.table": rows, ...} of the blocks loaded, and totals. */
json_t *loader_report(const loader *l);

void loader_free(loader *l);

#endif
