/* Unit tests for src/process.c: helper programs fed, captured, bounded. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>

#include "chrun/process.h"
#include "harness.h"

static int run(const char *const *argv, const char *input, size_t input_len, size_t max,
               int timeout_ms, unsigned flags, struct chrun_process_result *res,
               struct chrun_err *err)
{
    struct chrun_process_opts o = {.argv = argv,
                                   .input = input,
                                   .input_len = input_len,
                                   .output_max = max,
                                   .timeout_ms = timeout_ms,
                                   .flags = flags | CHRUN_PROCESS_SEARCH_PATH};
    return chrun_process_run(&o, res, err);
}

static void test_input_fed_output_captured(void)
{
    const char *argv[] = {"cat", NULL};
    struct chrun_process_result res = {0};
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(run(argv, "hello\n", 6, 64, 5000, 0, &res, &err), 0);
    CHECK_STR_EQ(res.out, "hello\n");
    CHECK_INT_EQ(res.out_len, 6);
    CHECK(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0);
    chrun_process_result_release(&res);
}

/* Input larger than a pipe while output comes back: fed in step with reading. */
static void test_large_input_no_deadlock(void)
{
    const char *argv[] = {"cat", NULL};
    size_t n = 1 << 20;
    char *big = malloc(n);
    struct chrun_process_result res = {0};
    struct chrun_err err = CHRUN_ERR_INIT;
    memset(big, 'x', n);
    CHECK_INT_EQ(run(argv, big, n, n, 20000, 0, &res, &err), 0);
    CHECK_INT_EQ(res.out_len, n);
    chrun_process_result_release(&res);
    free(big);
}

/* A program that never reads its input: EPIPE for us, no SIGPIPE, and the
 * caller's SIGPIPE disposition and mask are as before. */
static void test_unread_input_no_sigpipe(void)
{
    const char *argv[] = {"true", NULL};
    size_t n = 1 << 20;
    char *big = malloc(n);
    struct chrun_process_result res = {0};
    struct chrun_err err = CHRUN_ERR_INIT;
    struct sigaction before, after;
    sigset_t mask_before, mask_after, pending;
    memset(big, 'y', n);
    sigaction(SIGPIPE, NULL, &before);
    sigprocmask(SIG_SETMASK, NULL, &mask_before);
    CHECK_INT_EQ(run(argv, big, n, 64, 20000, 0, &res, &err), 0);
    CHECK(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0);
    sigaction(SIGPIPE, NULL, &after);
    sigprocmask(SIG_SETMASK, NULL, &mask_after);
    sigpending(&pending);
    CHECK(before.sa_handler == after.sa_handler);
    CHECK(sigismember(&mask_before, SIGPIPE) == sigismember(&mask_after, SIGPIPE));
    CHECK(!sigismember(&pending, SIGPIPE));
    chrun_process_result_release(&res);
    free(big);
}

static void test_output_cap(void)
{
    const char *argv[] = {"sh", "-c", "printf 0123456789", NULL};
    struct chrun_process_result res = {0};
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(run(argv, NULL, 0, 4, 5000, 0, &res, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(strstr(err.msg, "more than 4 bytes") != NULL);
    CHECK(res.out == NULL);
    CHECK_INT_EQ(run(argv, NULL, 0, 4, 5000, CHRUN_PROCESS_TRUNCATE, &res, &err), 0);
    CHECK_STR_EQ(res.out, "0123");
    chrun_process_result_release(&res);
}

static void test_stderr_capture_or_drop(void)
{
    const char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    struct chrun_process_result res = {0};
    struct chrun_err err = CHRUN_ERR_INIT;
    char how[64];
    CHECK_INT_EQ(run(argv, NULL, 0, 64, 5000, 0, &res, &err), 0);
    CHECK_STR_EQ(res.out, "out\n");
    CHECK_STR_EQ(chrun_process_describe_status(res.status, how, sizeof(how)), "exit status 3");
    chrun_process_result_release(&res);
    CHECK_INT_EQ(run(argv, NULL, 0, 64, 5000, CHRUN_PROCESS_STDERR_TOO, &res, &err), 0);
    CHECK_STR_EQ(res.out, "out\nerr\n");
    chrun_process_result_release(&res);
}

/* The deadline covers a program that never ends (even one holding the
 * output pipe open through a child): killed, reaped, an error. */
static void test_timeout_kills(void)
{
    const char *argv[] = {"sleep", "60", NULL};
    struct chrun_process_result res = {0};
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(run(argv, NULL, 0, 64, 200, 0, &res, &err), -1);
    CHECK(strstr(err.msg, "did not finish within 1 s") != NULL);
    CHECK_INT_EQ(waitpid(-1, NULL, WNOHANG), -1); /* nothing left to reap */
}

static void test_missing_program(void)
{
    const char *argv[] = {"chrun-no-such-program-here", NULL};
    struct chrun_process_result res = {0};
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(run(argv, "x", 1, 64, 5000, 0, &res, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_SYS);
    CHECK_INT_EQ(err.errnum, ENOENT);
    CHECK(strstr(err.msg, "run 'chrun-no-such-program-here'") != NULL);
}

/* The program starts with default dispositions even if we ignore a signal. */
static void test_child_gets_default_signals(void)
{
    const char *argv[] = {"sh", "-c", "kill -PIPE $$; echo survived", NULL};
    struct chrun_process_result res = {0};
    struct chrun_err err = CHRUN_ERR_INIT;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGPIPE, &ign, &old);
    CHECK_INT_EQ(run(argv, NULL, 0, 64, 5000, 0, &res, &err), 0);
    sigaction(SIGPIPE, &old, NULL);
    CHECK(WIFSIGNALED(res.status) && WTERMSIG(res.status) == SIGPIPE);
    CHECK_STR_EQ(res.out, "");
    chrun_process_result_release(&res);
}

int main(void)
{
    RUN_TEST(test_input_fed_output_captured);
    RUN_TEST(test_large_input_no_deadlock);
    RUN_TEST(test_unread_input_no_sigpipe);
    RUN_TEST(test_output_cap);
    RUN_TEST(test_stderr_capture_or_drop);
    RUN_TEST(test_timeout_kills);
    RUN_TEST(test_missing_program);
    RUN_TEST(test_child_gets_default_signals);
    return harness_done();
}
