/* The unit harness itself: a test that makes no check fails (it proved
 * nothing), a test with a passing check passes, a failing check fails. Each
 * case runs the harness in a child process whose TAP output is read back. */
#include <sys/wait.h>

#include "harness.h"

static void checks_nothing(void)
{
}

static void checks_one(void)
{
    CHECK(1 + 1 == 2);
}

static void check_fails(void)
{
    CHECK_INT_EQ(1, 2);
}

/* Run case WHICH under a fresh harness in a child; its stdout and stderr
 * go to BUF. Returns the child's exit status, or -1. */
static int run_case(int which, char *buf, size_t size)
{
    int fds[2], status;
    size_t len = 0;
    ssize_t n;
    pid_t pid;
    int rc;

    if (pipe(fds) < 0)
        return -1;
    fflush(stdout);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (dup2(fds[1], STDOUT_FILENO) < 0 || dup2(fds[1], STDERR_FILENO) < 0)
            _exit(127);
        harness_passed = harness_failed = harness_number = 0;
        if (which == 0)
            RUN_TEST(checks_nothing);
        else if (which == 1)
            RUN_TEST(checks_one);
        else
            RUN_TEST(check_fails);
        rc = harness_done();
        fflush(stdout);
        _exit(rc);
    }
    close(fds[1]);
    while (len + 1 < size && (n = read(fds[0], buf + len, size - len - 1)) > 0)
        len += (size_t) n;
    buf[len] = '\0';
    close(fds[0]);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static void test_a_test_that_checks_nothing_fails(void)
{
    char out[4096];
    CHECK_INT_EQ(run_case(0, out, sizeof(out)), 1);
    CHECK(strstr(out, "not ok 1 - checks_nothing") != NULL);
    CHECK(strstr(out, "# checks_nothing checked nothing") != NULL);
    CHECK(strstr(out, "# passed=0 failed=1") != NULL);
}

static void test_a_passing_check_passes(void)
{
    char out[4096];
    CHECK_INT_EQ(run_case(1, out, sizeof(out)), 0);
    CHECK(strstr(out, "ok 1 - checks_one") != NULL);
    CHECK(strstr(out, "# passed=1 failed=0") != NULL);
}

static void test_a_failing_check_fails(void)
{
    char out[4096];
    CHECK_INT_EQ(run_case(2, out, sizeof(out)), 1);
    CHECK(strstr(out, "not ok 1 - check_fails") != NULL);
    CHECK(strstr(out, "1 == 2: 1 != 2") != NULL);
}

int main(void)
{
    RUN_TEST(test_a_test_that_checks_nothing_fails);
    RUN_TEST(test_a_passing_check_passes);
    RUN_TEST(test_a_failing_check_fails);
    return harness_done();
}
