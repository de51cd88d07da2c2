/* Running helper programs (include/chrun/process.h). */
#include "chrun/process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

extern char **environ;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_pair(int fds[2])
{
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

/* Spawn the program with stdin from IN_FD (or /dev/null when -1) and
 * stdout (+ stderr when asked) into OUT_FD. */
static int spawn(const struct chrun_process_opts *o, int in_fd, int out_fd, pid_t *ret_pid,
                 struct chrun_err *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    char *const *envp = o->envp ? (char *const *) o->envp : environ;
    int rc;

    if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
        return chrun_err_sys(err, rc, "run '%s'", o->argv[0]);
    if ((rc = posix_spawnattr_init(&attr)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return chrun_err_sys(err, rc, "run '%s'", o->argv[0]);
    }
    sigemptyset(&none);
    sigfillset(&all);
    /* the program starts clean, whatever signals our caller blocked or ignored */
    rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = in_fd >= 0 ? posix_spawn_file_actions_adddup2(&fa, in_fd, STDIN_FILENO)
                        : posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null",
                                                           O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    if (rc == 0 && (o->flags & CHRUN_PROCESS_STDERR_TOO))
        rc = posix_spawn_file_actions_adddup2(&fa, out_fd, STDERR_FILENO);
    else if (rc == 0 && !(o->flags & CHRUN_PROCESS_STDERR_INHERIT))
        rc = posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    if (rc == 0)
        rc = (o->flags & CHRUN_PROCESS_SEARCH_PATH)
                 ? posix_spawnp(ret_pid, o->argv[0], &fa, &attr, (char *const *) o->argv, envp)
                 : posix_spawn(ret_pid, o->argv[0], &fa, &attr, (char *const *) o->argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        return chrun_err_sys(err, rc, "run '%s'", o->argv[0]);
    return 0;
}

/* Write what is left of the input without ever taking SIGPIPE: the signal
 * is blocked in this thread, and one raised by our write is consumed before
 * unblocking (a SIGPIPE that was already pending stays pending). Returns
 * bytes written, or -1 with errno (EAGAIN, EPIPE, ...). */
static ssize_t write_no_sigpipe(int fd, const char *buf, size_t len)
{
    sigset_t pipe_set, old, pending;
    bool was_pending;
    ssize_t n;
    int saved;

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    n = write(fd, buf, len);
    saved = errno;
    if (n < 0 && saved == EPIPE && !was_pending) {
        static const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return n;
}

int chrun_process_run(const struct chrun_process_opts *o, struct chrun_process_result *ret,
                      struct chrun_err *err)
{
    int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1};
    cleanup_free char *buf = NULL;
    size_t len = 0, fed = 0, max = o->output_max;
    int64_t deadline = o->timeout_ms > 0 ? now_ms() + o->timeout_ms : 0;
    bool timed_out = false, too_big = false;
    int status = 0, rc = 0;
    pid_t pid;

    memset(ret, 0, sizeof(*ret));
    buf = malloc(max + 1);
    if (buf == NULL)
        return chrun_err_sys(err, ENOMEM, "run '%s'", o->argv[0]);
    if (o->input != NULL && pipe2(in_pipe, O_CLOEXEC) < 0)
        return chrun_err_sys(err, errno, "run '%s': pipe", o->argv[0]);
    if (pipe2(out_pipe, O_CLOEXEC) < 0) {
        rc = errno;
        close_pair(in_pipe);
        return chrun_err_sys(err, rc, "run '%s': pipe", o->argv[0]);
    }
    if (spawn(o, in_pipe[0], out_pipe[1], &pid, err) < 0) {
        close_pair(in_pipe);
        close_pair(out_pipe);
        return -1;
    }
    close(out_pipe[1]);
    out_pipe[1] = -1;
    if (in_pipe[0] >= 0) {
        close(in_pipe[0]);
        in_pipe[0] = -1;
        /* fed in step with reading, so neither side can fill a pipe and wait */
        if (fcntl(in_pipe[1], F_SETFL, O_NONBLOCK) < 0 || o->input_len == 0) {
            close(in_pipe[1]);
            in_pipe[1] = -1;
        }
    }
    while (out_pipe[0] >= 0) {
        struct pollfd pfd[2] = {{.fd = out_pipe[0], .events = POLLIN},
                                {.fd = in_pipe[1], .events = POLLOUT}};
        int timeout = -1;
        if (deadline) {
            int64_t left = deadline - now_ms();
            if (left <= 0) {
                timed_out = true;
                break;
            }
            timeout = left > INT32_MAX ? INT32_MAX : (int) left;
        }
        rc = poll(pfd, in_pipe[1] >= 0 ? 2 : 1, timeout);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0) {
            rc = errno;
            break;
        }
        rc = 0;
        if (in_pipe[1] >= 0 && pfd[1].revents) {
            ssize_t n = write_no_sigpipe(in_pipe[1], o->input + fed, o->input_len - fed);
            if (n > 0)
                fed += (size_t) n;
            /* a program that does not read its input is its own business */
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || fed == o->input_len) {
                close(in_pipe[1]);
                in_pipe[1] = -1;
            }
        }
        if (pfd[0].revents) {
            char drop[4096];
            bool keep = len < max;
            ssize_t n = read(out_pipe[0], keep ? buf + len : drop, keep ? max - len + 1
                                                                        : sizeof(drop));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                close(out_pipe[0]);
                out_pipe[0] = -1;
                continue;
            }
            if (keep)
                len += (size_t) n;
            if (len > max) {
                len = max;
                if (!(o->flags & CHRUN_PROCESS_TRUNCATE)) {
                    too_big = true;
                    break;
                }
            }
        }
    }
    close_pair(in_pipe);
    close_pair(out_pipe);
    if (timed_out || too_big || rc != 0)
        kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return chrun_err_sys(err, errno, "wait for '%s'", o->argv[0]);
    if (timed_out)
        return chrun_err_set(err, CHRUN_E_SYS, "'%s' did not finish within %d s", o->argv[0],
                             (o->timeout_ms + 999) / 1000);
    if (too_big)
        return chrun_err_set(err, CHRUN_E_INPUT, "'%s' wrote more than %zu bytes", o->argv[0],
                             max);
    if (rc != 0)
        return chrun_err_sys(err, rc, "'%s': poll", o->argv[0]);
    buf[len] = '\0';
    ret->out = take_ptr(buf);
    ret->out_len = len;
    ret->status = status;
    return 0;
}

void chrun_process_result_release(struct chrun_process_result *r)
{
    free(r->out);
    r->out = NULL;
    r->out_len = 0;
}

const char *chrun_process_describe_status(int status, char *buf, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(buf, size, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, size, "exit status %d", WEXITSTATUS(status));
    return buf;
}
