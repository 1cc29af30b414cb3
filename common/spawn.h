/*
 * Running other programs (pg_dump, pg_dumpall, pg_restore) with an argv array, never a shell.
 *
 * The child gets its own process group and dies with us (PR_SET_PDEATHSIG), so a killed agent
 * does not leave a pg_dump writing into a spool directory. Its stderr is drained by a thread into a
 * bounded tail (the last SPAWN_STDERR_TAIL bytes), which callers show when the child fails: a
 * verbose child can never block on a full stderr pipe, and memory stays bounded.
 */
#ifndef PGSHIP_COMMON_SPAWN_H
#define PGSHIP_COMMON_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"

#define SPAWN_STDERR_TAIL 8192

enum spawn_stdout { SPAWN_OUT_NULL, SPAWN_OUT_PIPE, SPAWN_OUT_FD, SPAWN_OUT_INHERIT };

typedef struct spawn_opts {
    const char *const *argv;  /* argv[0] is the path of the program */
    char *const *envp;        /* full environment; NULL inherits ours */
    enum spawn_stdout stdout_mode;
    int stdout_fd;            /* with SPAWN_OUT_FD */
} spawn_opts;

typedef struct spawn_proc spawn_proc;

int spawn_start(spawn_proc **out, const spawn_opts *o, pgs_error *e);
/* The read end of the child's stdout with SPAWN_OUT_PIPE, else -1. Owned by p. */
int spawn_stdout_fd(const spawn_proc *p);
/* Closes our end of the stdout pipe early (the child then sees EPIPE). */
void spawn_close_stdout(spawn_proc *p);
pid_t spawn_pid(const spawn_proc *p);
/* Waits for the child and its stderr drain. Returns 0 when it exited with status 0, PGS_ECHILD
 * otherwise with a message saying how it ended ("exited with status 1"). */
int spawn_wait(spawn_proc *p, pgs_error *e);
/* 1 while the child runs, 0 once it has ended (then spawn_wait returns at once). */
int spawn_running(spawn_proc *p);
/* Sends sig to the child's process group. */
void spawn_kill(spawn_proc *p, int sig);
/* The last bytes the child wrote to stderr, NUL-terminated, trailing newlines removed. */
const char *spawn_stderr_tail(spawn_proc *p);
void spawn_free(spawn_proc *p);

/* Runs argv to completion and returns (at most cap-1 bytes of) its stdout, NUL-terminated. */
int spawn_capture(const char *const *argv, char *out, size_t cap, pgs_error *e);

/*
 * Process-wide handling of SIGINT, SIGTERM and SIGHUP for one-shot commands: the signals are
 * blocked in every thread and taken by one thread that records them and kills the registered
 * children, so the main flow sees its child end, unwinds through its normal cleanup (temporary
 * files and directories removed) and exits with 128+signal.
 */
int sig_guard_start(void);
/* For single-threaded commands with no child to kill: handlers (without SA_RESTART) that record
 * the signal, so a blocking read returns EINTR and the caller unwinds through its cleanup. */
int sig_catch_start(void);
/* 0, or the signal number that asked us to stop. */
int sig_stop_requested(void);

#endif
