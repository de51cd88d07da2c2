/* Error reporting and log lines: codes, errno, prefix chaining, sanitizing. */
#include "harness.h"

#include <errno.h>
#include <stdbool.h>

#include "chrun/err.h"
#include "chrun/log.h"

static void test_set_and_sys(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    char buf[256];

    CHECK_INT_EQ(err.code, CHRUN_E_OK);
    CHECK_INT_EQ(chrun_err_set(&err, CHRUN_E_INPUT, "bad %s at %d", "thing", 7), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK_INT_EQ(err.errnum, 0);
    CHECK_STR_EQ(err.msg, "bad thing at 7");
    CHECK_STR_EQ(chrun_err_format(&err, buf, sizeof(buf)), "bad thing at 7");

    CHECK_INT_EQ(chrun_err_sys(&err, ENOENT, "open '%s'", "x/y"), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_SYS);
    CHECK_INT_EQ(err.errnum, ENOENT);
    CHECK_STR_EQ(err.msg, "open 'x/y'");
    CHECK_STR_EQ(chrun_err_format(&err, buf, sizeof(buf)), "open 'x/y': No such file or directory");

    /* set after sys forgets the errno */
    chrun_err_set(&err, CHRUN_E_NOTFOUND, "gone");
    CHECK_INT_EQ(err.errnum, 0);
    CHECK_STR_EQ(chrun_err_format(&err, buf, sizeof(buf)), "gone");

    chrun_err_clear(&err);
    CHECK_INT_EQ(err.code, CHRUN_E_OK);
    CHECK_INT_EQ(err.errnum, 0);
    CHECK_STR_EQ(err.msg, "");
    CHECK_STR_EQ(chrun_err_format(&err, buf, sizeof(buf)), "unknown error");
    err.errnum = EIO;
    CHECK_STR_EQ(chrun_err_format(&err, buf, sizeof(buf)), "error: Input/output error");

    /* NULL err: still -1, no crash */
    CHECK_INT_EQ(chrun_err_set(NULL, CHRUN_E_INPUT, "x"), -1);
    CHECK_INT_EQ(chrun_err_sys(NULL, EIO, "x"), -1);
    CHECK_INT_EQ(chrun_err_prefix(NULL, "x"), -1);
}

static void test_prefix_chaining(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    char buf[256];

    chrun_err_sys(&err, EACCES, "open '%s'", "usr/bin/x");
    CHECK_INT_EQ(chrun_err_prefix(&err, "layer %u", 3u), -1);
    CHECK_INT_EQ(chrun_err_prefix(&err, "unpack '%s'", "redis"), -1);
    CHECK_STR_EQ(err.msg, "unpack 'redis': layer 3: open 'usr/bin/x'");
    CHECK_INT_EQ(err.code, CHRUN_E_SYS);
    CHECK_INT_EQ(err.errnum, EACCES);
    CHECK_STR_EQ(chrun_err_format(&err, buf, sizeof(buf)),
                 "unpack 'redis': layer 3: open 'usr/bin/x': Permission denied");

    chrun_err_set(&err, CHRUN_E_DIGEST, "digest mismatch");
    chrun_err_prefix(&err, "blob %s", "sha256:abc");
    CHECK_INT_EQ(err.code, CHRUN_E_DIGEST);
    CHECK_STR_EQ(err.msg, "blob sha256:abc: digest mismatch");
    /* A prefix made of the message itself (callers pass err->msg sometimes). */
    chrun_err_set(&err, CHRUN_E_INPUT, "abc");
    chrun_err_prefix(&err, "%s", err.msg);
    CHECK_STR_EQ(err.msg, "abc: abc");
}

static void test_long_messages(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    char big[3000], buf[CHRUN_ERR_MSG_MAX + 200], tiny[8];

    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    chrun_err_sys(&err, ENOENT, "%s", big);
    CHECK_INT_EQ(strlen(err.msg), CHRUN_ERR_MSG_MAX - 1);
    for (int i = 0; i < 5; i++)
        chrun_err_prefix(&err, "%s", big);
    CHECK_INT_EQ(strlen(err.msg), CHRUN_ERR_MSG_MAX - 1);
    CHECK_INT_EQ(err.errnum, ENOENT);
    chrun_err_format(&err, buf, sizeof(buf));
    CHECK(strlen(buf) < sizeof(buf));
    /* formatting into small buffers truncates, never overflows */
    CHECK_STR_EQ(chrun_err_format(&err, tiny, sizeof(tiny)), "mmmmmmm");
    CHECK_STR_EQ(chrun_err_format(&err, tiny, 1), "");
    tiny[0] = 'z';
    CHECK(chrun_err_format(&err, tiny, 0) == tiny);
    CHECK_INT_EQ(tiny[0], 'z');
}

static void test_sanitize(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    char buf[256];

    chrun_err_set(&err, CHRUN_E_INPUT, "entry '%s'", "a\nb\rc\x1b[31md\x7f" "e\tf");
    CHECK_STR_EQ(chrun_err_format(&err, buf, sizeof(buf)), "entry 'a?b?c?[31md?e?f'");
    /* the stored message is the raw text; only printing replaces */
    CHECK(strchr(err.msg, '\n') != NULL);
    chrun_err_prefix(&err, "reg\x07istry");
    chrun_err_format(&err, buf, sizeof(buf));
    CHECK(strncmp(buf, "reg?istry: entry", 16) == 0);
    /* UTF-8 passes through */
    chrun_err_set(&err, CHRUN_E_INPUT, "name '\xc3\xa9t\xc3\xa9'");
    CHECK_STR_EQ(chrun_err_format(&err, buf, sizeof(buf)), "name '\xc3\xa9t\xc3\xa9'");
    /* strerror text is sanitized too (the same pass) */
    chrun_err_sys(&err, ENOENT, "x\ny");
    CHECK_STR_EQ(chrun_err_format(&err, buf, sizeof(buf)), "x?y: No such file or directory");
}

/* ---- log lines ---- */

static char captured[8192];
static int lines;

static void capture(enum chrun_log_level level, const char *line, void *data)
{
    (void) level;
    (void) data;
    lines++;
    strncat(captured, line, sizeof(captured) - strlen(captured) - 1);
}

static void test_log_lines(void)
{
    char big[5000];
    captured[0] = '\0';
    lines = 0;
    chrun_log_set_prog("chrun-test");
    chrun_log_set_sink(capture, NULL);
    chrun_log_warn("odd entry '%s'", "a\nb\x1b");
    chrun_log_error("boom");
    chrun_log_info("hello %d", 1);
    chrun_log_set_quiet(true);
    chrun_log_info("silenced");
    chrun_log_warn("still here");
    chrun_log_set_quiet(false);
    CHECK_STR_EQ(captured, "chrun-test: warning: odd entry 'a?b?'\n"
                           "chrun-test: error: boom\n"
                           "chrun-test: hello 1\n"
                           "chrun-test: warning: still here\n");
    CHECK_INT_EQ(lines, 4);

    /* an overlong line is cut but still one line ending in a newline */
    captured[0] = '\0';
    lines = 0;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    chrun_log_warn("%s", big);
    CHECK_INT_EQ(lines, 1);
    CHECK(strlen(captured) > 100);
    CHECK_INT_EQ(captured[strlen(captured) - 1], '\n');
    CHECK(strchr(captured, '\n') == captured + strlen(captured) - 1);
    chrun_log_set_sink(NULL, NULL);
    chrun_log_set_prog("chrun");
}

int main(void)
{
    RUN_TEST(test_set_and_sys);
    RUN_TEST(test_prefix_chaining);
    RUN_TEST(test_long_messages);
    RUN_TEST(test_sanitize);
    RUN_TEST(test_log_lines);
    return harness_done();
}
