/* Raw I/O: full reads and writes over short counts and EINTR, bounded reads. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "chrun/err.h"
#include "chrun/io.h"

static void fill(char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char) ('A' + (i * 7) % 61);
}

static int make_file(const char *path, size_t len)
{
    char *buf = malloc(len + 1);
    int fd, rc = -1;
    if (buf == NULL)
        return -1;
    fill(buf, len);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0 && write(fd, buf, len) == (ssize_t) len)
        rc = 0;
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

static void expect_bounded(size_t len, size_t max, bool ok)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    char *buf = NULL, *want;
    size_t got = 12345;
    int fd, rc;

    CHECK(make_file("f", len) == 0);
    fd = open("f", O_RDONLY | O_CLOEXEC);
    rc = chrun_io_read_bounded(fd, max, &buf, &got, &err);
    close(fd);
    if (!ok) {
        if (rc == 0)
            fprintf(stderr, "# %zu bytes under cap %zu accepted\n", len, max);
        CHECK_INT_EQ(rc, -1);
        CHECK_INT_EQ(err.code, CHRUN_E_SYS);
        CHECK_INT_EQ(err.errnum, EFBIG);
        CHECK(buf == NULL);
        CHECK_INT_EQ(got, 12345);
        return;
    }
    if (rc < 0)
        fprintf(stderr, "# %zu bytes under cap %zu: %s\n", len, max, err.msg);
    CHECK_INT_EQ(rc, 0);
    CHECK_INT_EQ(got, len);
    want = malloc(len + 1);
    if (buf != NULL && want != NULL) {
        fill(want, len);
        CHECK(memcmp(buf, want, len) == 0);
        CHECK_INT_EQ(buf[len], '\0');
    }
    free(want);
    free(buf);
}

static void test_read_bounded_caps(void)
{
    static const size_t caps[] = {0, 1, 100, 16383, 16384, 16385, 32768, 100000, 262145};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        expect_bounded(caps[i], caps[i], true);
        expect_bounded(caps[i] + 1, caps[i], false);
        if (caps[i] > 0)
            expect_bounded(caps[i] - 1, caps[i], true);
        expect_bounded(caps[i] * 3 + 5, caps[i], false);
    }
}

/* A child writes LEN bytes into a pipe in odd-sized pieces. */
static pid_t slow_writer(int fd, size_t len)
{
    pid_t pid = fork();
    if (pid == 0) {
        char *buf = malloc(len);
        size_t off = 0, piece = 1;
        if (buf == NULL)
            _exit(2);
        fill(buf, len);
        while (off < len) {
            size_t n = piece < len - off ? piece : len - off;
            if (write(fd, buf + off, n) != (ssize_t) n)
                _exit(1);
            off += n;
            piece = piece % 997 + 13;
        }
        _exit(0);
    }
    return pid;
}

static void test_read_full_pipe_short_writes(void)
{
    enum { LEN = 300000 };
    struct chrun_err err = CHRUN_ERR_INIT;
    char *buf = malloc(LEN + 10), *want = malloc(LEN);
    int p[2], status = -1;
    pid_t pid;

    CHECK(pipe2(p, O_CLOEXEC) == 0);
    pid = slow_writer(p[1], LEN);
    close(p[1]);
    /* Asks for more than will come: stops at EOF with the exact count. */
    CHECK_INT_EQ(chrun_io_read_full(p[0], buf, LEN + 10, &err), LEN);
    fill(want, LEN);
    CHECK(memcmp(buf, want, LEN) == 0);
    CHECK_INT_EQ(chrun_io_read_full(p[0], buf, 10, &err), 0);
    close(p[0]);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* read_bounded over the same kind of pipe */
    char *got = NULL;
    size_t len = 0;
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    pid = slow_writer(p[1], LEN);
    close(p[1]);
    CHECK_INT_EQ(chrun_io_read_bounded(p[0], LEN, &got, &len, &err), 0);
    CHECK_INT_EQ(len, LEN);
    if (got != NULL)
        CHECK(memcmp(got, want, LEN) == 0);
    free(got);
    close(p[0]);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(buf);
    free(want);
}

static volatile sig_atomic_t signals_seen;

/* waitpid that outlasts the test's own signals. */
static bool child_ok(pid_t pid)
{
    int status = -1;
    pid_t r;
    while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    return r == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void on_usr1(int sig)
{
    (void) sig;
    signals_seen++;
}

/* Signals without SA_RESTART interrupt blocked reads and writes with EINTR:
 * the data must still arrive whole. */
static void test_eintr(void)
{
    enum { LEN = 200000 };
    struct sigaction sa, old;
    struct chrun_err err = CHRUN_ERR_INIT;
    char *buf = malloc(LEN), *want = malloc(LEN);
    int p[2];
    pid_t pid, parent = getpid();

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART */
    CHECK(sigaction(SIGUSR1, &sa, &old) == 0);
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    pid = fork();
    if (pid == 0) {
        char *data = malloc(LEN);
        close(p[0]);
        if (data == NULL)
            _exit(2);
        fill(data, LEN);
        for (size_t off = 0; off < LEN; off += 1000) {
            kill(parent, SIGUSR1);
            if (write(p[1], data + off, 1000) != 1000)
                _exit(1);
        }
        _exit(0);
    }
    close(p[1]);
    CHECK_INT_EQ(chrun_io_read_full(p[0], buf, LEN, &err), LEN);
    fill(want, LEN);
    CHECK(memcmp(buf, want, LEN) == 0);
    close(p[0]);
    CHECK(child_ok(pid));

    /* The other direction: the parent writes, a child reads and signals. */
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    pid = fork();
    if (pid == 0) {
        char *data = malloc(LEN), *expect = malloc(LEN);
        size_t off = 0;
        close(p[1]);
        if (data == NULL || expect == NULL)
            _exit(2);
        while (off < LEN) {
            ssize_t n;
            kill(parent, SIGUSR1);
            n = read(p[0], data + off, LEN - off < 777 ? LEN - off : 777);
            if (n <= 0)
                _exit(1);
            off += (size_t) n;
        }
        fill(expect, LEN);
        _exit(memcmp(data, expect, LEN) == 0 ? 0 : 3);
    }
    close(p[0]);
    CHECK_INT_EQ(chrun_io_write_full(p[1], want, LEN, &err), 0);
    close(p[1]);
    CHECK(child_ok(pid));
    CHECK(sigaction(SIGUSR1, &old, NULL) == 0);
    free(buf);
    free(want);
}

static void test_write_errors(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
    char *buf = NULL;
    size_t len = 0;
    if (fd >= 0) {
        CHECK_INT_EQ(chrun_io_write_full(fd, "x", 1, &err), -1);
        CHECK_INT_EQ(err.errnum, ENOSPC);
        close(fd);
    }
    fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_io_write_full(fd, "x", 1, &err), -1);
    CHECK_INT_EQ(err.errnum, EBADF);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_io_read_full(fd, (char[4]){0}, 4, &err), -1);
    CHECK_INT_EQ(err.errnum, EISDIR);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_io_read_bounded(fd, 100, &buf, &len, &err), -1);
    CHECK_INT_EQ(err.errnum, EISDIR);
    CHECK(buf == NULL);
    close(fd);
    /* zero-length writes and reads are no-ops */
    CHECK_INT_EQ(chrun_io_write_full(-1, "", 0, &err), 0);
    CHECK_INT_EQ(chrun_io_read_full(-1, NULL, 0, &err), 0);
}

static void test_read_file_at(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    char *buf = NULL;
    size_t len = 0;
    int dfd;

    CHECK(make_file("doc", 50) == 0);
    CHECK(symlink("doc", "link") == 0);
    dfd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    CHECK_INT_EQ(chrun_io_read_file_at(dfd, "doc", 50, &buf, &len, &err), 0);
    CHECK_INT_EQ(len, 50);
    free(buf);
    buf = NULL;
    CHECK_INT_EQ(chrun_io_read_file_at(dfd, "doc", 49, &buf, &len, &err), -1);
    CHECK_INT_EQ(err.errnum, EFBIG);
    CHECK(strstr(err.msg, "'doc'") != NULL);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_io_read_file_at(dfd, "link", 50, &buf, &len, &err), -1);
    CHECK_INT_EQ(err.errnum, ELOOP);
    CHECK(strstr(err.msg, "'link'") != NULL);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_io_read_file_at(dfd, "missing", 50, &buf, &len, &err), -1);
    CHECK_INT_EQ(err.errnum, ENOENT);
    CHECK(strstr(err.msg, "'missing'") != NULL);
    CHECK(buf == NULL);
    close(dfd);
}

int main(void)
{
    RUN_TEST(test_read_bounded_caps);
    RUN_TEST(test_read_full_pipe_short_writes);
    RUN_TEST(test_eintr);
    RUN_TEST(test_write_errors);
    RUN_TEST(test_read_file_at);
    return harness_done();
}
