/* Unit tests for src/archive-error.c: libarchive failures translated once. */
#include <archive.h>
#include <errno.h>

#include "archive-error.h"
#include "harness.h"

/* Garbage where a tar header should be: damage in the stream, CHRUN_E_INPUT. */
static void test_damage_is_input(void)
{
    static const char junk[1024] = "this is not a tar header";
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    struct chrun_err err = CHRUN_ERR_INIT;
    archive_read_support_format_tar(a);
    /* libarchive finds out at open (no format) or at the first header */
    CHECK(archive_read_open_memory(a, junk, sizeof(junk)) < ARCHIVE_WARN ||
          archive_read_next_header(a, &e) < ARCHIVE_WARN);
    CHECK_INT_EQ(chrun_archive_error(&err, a, "layer %s", "sha256:x"), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(strncmp(err.msg, "layer sha256:x: ", 16) == 0);
    CHECK(strlen(err.msg) > 16);
    archive_read_free(a);
}

/* An errno from I/O stays an errno. */
static void test_errno_is_sys(void)
{
    struct archive *a = archive_read_new();
    struct chrun_err err = CHRUN_ERR_INIT;
    archive_set_error(a, ENOSPC, "write failed");
    CHECK_INT_EQ(chrun_archive_error(&err, a, "write '%s'", "out.tar"), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_SYS);
    CHECK_INT_EQ(err.errnum, ENOSPC);
    CHECK_STR_EQ(err.msg, "write 'out.tar': write failed");
    archive_read_free(a);
}

/* No text at all never reaches a %s as NULL. */
static void test_no_text(void)
{
    struct archive *a = archive_read_new();
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_STR_EQ(chrun_archive_text(a), "libarchive error");
    CHECK_STR_EQ(chrun_archive_text(NULL), "libarchive error");
    CHECK_INT_EQ(chrun_archive_error(&err, a, "read"), -1);
    CHECK_STR_EQ(err.msg, "read: libarchive error");
    archive_read_free(a);
}

int main(void)
{
    RUN_TEST(test_damage_is_input);
    RUN_TEST(test_errno_is_sys);
    RUN_TEST(test_no_text);
    return harness_done();
}
