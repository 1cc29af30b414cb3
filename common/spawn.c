/* Spawning programs with argv, and the signal guard (see spawn.h). */
#include "common/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fsutil.h"

extern char **environ;

#define SPAWN_MAX_CHILDREN 8

static atomic_int sig_stop = 0;
static atomic_int sig_children[SPAWN_MAX_CHILDREN];

struct spawn_proc {
    pid_t pid;
    int out_fd;
    int err_fd;
    int reaped;
    int status;
    pthread_t err_thread;
    int err_thread_started;
    char prog[256];
    pthread_mutex_t lock;
    char tail[SPAWN_STDERR_TAIL];
    size_t tail_len;
    char tail_out[SPAWN_STDERR_TAIL + 1];
};

static void sig_register(pid_t pid)
{
    for (int i = 0; i < SPAWN_MAX_CHILDREN; i++) {
        int expect = 0;
        if (atomic_compare_exchange_strong(&sig_children[i], &expect, (int)pid))
            break;
    }
    /* A stop requested before the child existed still reaches it. */
    if (atomic_load(&sig_stop) != 0)
        kill(-pid, SIGTERM);
}

static void sig_unregister(pid_t pid)
{
    for (int i = 0; i < SPAWN_MAX_CHILDREN; i++) {
        int expect = (int)pid;
        if (atomic_compare_exchange_strong(&sig_children[i], &expect, 0))
            break;
    }
}

static void *sig_thread(void *arg)
{
    sigset_t *set = arg;
    for (;;) {
        int sig = 0;
        if (sigwait(set, &sig) != 0)
            continue;
        atomic_store(&sig_stop, sig);
        for (int i = 0; i < SPAWN_MAX_CHILDREN; i++) {
            int pid = atomic_load(&sig_children[i]);
            if (pid > 0)
                kill(-pid, SIGTERM);
        }
    }
    return NULL;
}

int sig_guard_start(void)
{
    static sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    pthread_t t;
    if (pthread_create(&t, NULL, sig_thread, &set) != 0)
        return -1;
    pthread_detach(t);
    return 0;
}

static void sig_catch_handler(int sig)
{
    atomic_store(&sig_stop, sig);
}

int sig_catch_start(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = sig_catch_handler;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0 ||
        sigaction(SIGHUP, &sa, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int sig_stop_requested(void)
{
    return atomic_load(&sig_stop);
}

static void *drain_stderr(void *arg)
{
    spawn_proc *p = arg;
    char buf[SPAWN_STDERR_TAIL / 2];
    for (;;) {
        ssize_t n = read(p->err_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        pthread_mutex_lock(&p->lock);
        /* Keep the last SPAWN_STDERR_TAIL bytes: the end of a failing program's output says why. */
        size_t k = (size_t)n; /* buf is smaller than the tail, so k always fits */
        if (p->tail_len + k > sizeof(p->tail)) {
            size_t drop = p->tail_len + k - sizeof(p->tail);
            memmove(p->tail, p->tail + drop, p->tail_len - drop);
            p->tail_len -= drop;
        }
        memcpy(p->tail + p->tail_len, buf, k);
        p->tail_len += k;
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}

int spawn_start(spawn_proc **out, const spawn_opts *o, pgs_error *e)
{
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, exec_pipe[2] = {-1, -1};
    int devnull = -1;
    spawn_proc *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    p->out_fd = p->err_fd = -1;
    p->pid = -1;
    pthread_mutex_init(&p->lock, NULL);
    snprintf(p->prog, sizeof(p->prog), "%s", o->argv[0]);

    if ((o->stdout_mode == SPAWN_OUT_PIPE && pipe2(out_pipe, O_CLOEXEC) != 0) ||
        pipe2(err_pipe, O_CLOEXEC) != 0 || pipe2(exec_pipe, O_CLOEXEC) != 0 ||
        (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
        int err = errno;
        pgs_fail(e, PGS_EIO, "cannot create pipes for %s: %s", p->prog, strerror(err));
        goto fail;
    }
    char *const *envp = o->envp ? o->envp : environ;
    int child_out = devnull;
    if (o->stdout_mode == SPAWN_OUT_PIPE)
        child_out = out_pipe[1];
    else if (o->stdout_mode == SPAWN_OUT_FD)
        child_out = o->stdout_fd;
    else if (o->stdout_mode == SPAWN_OUT_INHERIT)
        child_out = STDOUT_FILENO;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        pgs_fail(e, PGS_EIO, "cannot start %s: fork: %s", p->prog, strerror(err));
        goto fail;
    }
    if (pid == 0) {
        /* Child: only async-signal-safe calls until execve. */
        sigset_t none;
        sigemptyset(&none);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (dup2(devnull, STDIN_FILENO) < 0 || dup2(child_out, STDOUT_FILENO) < 0 ||
            dup2(err_pipe[1], STDERR_FILENO) < 0)
            _exit(127);
        execve(o->argv[0], (char *const *)o->argv, envp);
        int err = errno;
        ssize_t w = write(exec_pipe[1], &err, sizeof(err));
        (void)w;
        _exit(127);
    }
    p->pid = pid;
    sig_register(pid);
    close(exec_pipe[1]);
    exec_pipe[1] = -1;
    close(err_pipe[1]);
    err_pipe[1] = -1;
    if (out_pipe[1] >= 0) {
        close(out_pipe[1]);
        out_pipe[1] = -1;
    }
    close(devnull);
    devnull = -1;

    int child_err = 0;
    ssize_t n;
    do {
        n = read(exec_pipe[0], &child_err, sizeof(child_err));
    } while (n < 0 && errno == EINTR);
    close(exec_pipe[0]);
    exec_pipe[0] = -1;
    if (n == (ssize_t)sizeof(child_err)) {
        waitpid(pid, NULL, 0);
        sig_unregister(pid);
        p->pid = -1;
        pgs_fail(e, PGS_ECHILD, "cannot run %s: %s", p->prog, strerror(child_err));
        goto fail;
    }
    p->out_fd = out_pipe[0];
    p->err_fd = err_pipe[0];
    if (pthread_create(&p->err_thread, NULL, drain_stderr, p) != 0) {
        spawn_kill(p, SIGKILL);
        spawn_wait(p, NULL);
        spawn_free(p);
        return pgs_fail(e, PGS_EIO, "cannot start a thread for %s", o->argv[0]);
    }
    p->err_thread_started = 1;
    *out = p;
    return 0;

fail:
    for (int i = 0; i < 2; i++) {
        if (out_pipe[i] >= 0)
            close(out_pipe[i]);
        if (err_pipe[i] >= 0)
            close(err_pipe[i]);
        if (exec_pipe[i] >= 0)
            close(exec_pipe[i]);
    }
    if (devnull >= 0)
        close(devnull);
    pthread_mutex_destroy(&p->lock);
    free(p);
    return e ? e->code : PGS_EIO;
}

int spawn_stdout_fd(const spawn_proc *p)
{
    return p->out_fd;
}

void spawn_close_stdout(spawn_proc *p)
{
    if (p->out_fd >= 0) {
        close(p->out_fd);
        p->out_fd = -1;
    }
}

pid_t spawn_pid(const spawn_proc *p)
{
    return p->pid;
}

void spawn_kill(spawn_proc *p, int sig)
{
    if (p->pid > 0 && !p->reaped)
        kill(-p->pid, sig);
}

int spawn_running(spawn_proc *p)
{
    if (p->reaped || p->pid <= 0)
        return 0;
    int status = 0;
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == p->pid) {
        p->status = status;
        p->reaped = 1;
        sig_unregister(p->pid);
        return 0;
    }
    return 1;
}

int spawn_wait(spawn_proc *p, pgs_error *e)
{
    if (!p->reaped && p->pid > 0) {
        int status = 0;
        pid_t r;
        do {
            r = waitpid(p->pid, &status, 0);
        } while (r < 0 && errno == EINTR);
        p->status = status;
        p->reaped = 1;
        sig_unregister(p->pid);
    }
    if (p->err_thread_started) {
        pthread_join(p->err_thread, NULL);
        p->err_thread_started = 0;
    }
    if (WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0)
        return 0;
    if (WIFSIGNALED(p->status))
        return pgs_fail(e, PGS_ECHILD, "killed by signal %d", WTERMSIG(p->status));
    return pgs_fail(e, PGS_ECHILD, "exited with status %d", WEXITSTATUS(p->status));
}

const char *spawn_stderr_tail(spawn_proc *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->tail_len;
    memcpy(p->tail_out, p->tail, n);
    pthread_mutex_unlock(&p->lock);
    while (n > 0 && (p->tail_out[n - 1] == '\n' || p->tail_out[n - 1] == '\r'))
        n--;
    p->tail_out[n] = '\0';
    return p->tail_out;
}

void spawn_free(spawn_proc *p)
{
    if (p == NULL)
        return;
    if (!p->reaped && p->pid > 0) {
        spawn_kill(p, SIGKILL);
        spawn_wait(p, NULL);
    }
    if (p->err_thread_started)
        pthread_join(p->err_thread, NULL);
    spawn_close_stdout(p);
    if (p->err_fd >= 0)
        close(p->err_fd);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int spawn_capture(const char *const *argv, char *out, size_t cap, pgs_error *e)
{
    spawn_proc *p = NULL;
    spawn_opts o = {.argv = argv, .stdout_mode = SPAWN_OUT_PIPE};
    int rc = spawn_start(&p, &o, e);
    if (rc != 0)
        return rc;
    size_t got = 0;
    char sink[4096];
    for (;;) {
        char *dst = got + 1 < cap ? out + got : sink;
        size_t room = got + 1 < cap ? cap - 1 - got : sizeof(sink);
        ssize_t n = read(p->out_fd, dst, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (dst != sink)
            got += (size_t)n;
    }
    out[got] = '\0';
    rc = spawn_wait(p, e);
    spawn_free(p);
    return rc;
}
