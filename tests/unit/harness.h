/* A tiny TAP-style harness: each test is a function; checks print both values
 * and file:line; main lists the tests by hand. Output: "ok N - name" /
 * "not ok N - name", then "# passed=N failed=M" for tests/run to add up. */
#ifndef CHRUN_TEST_HARNESS_H
#define CHRUN_TEST_HARNESS_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int harness_failed_checks;
static int harness_passed, harness_failed, harness_number;
static char harness_dir[PATH_MAX];

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "# %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);             \
            harness_failed_checks++;                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_INT_EQ(a, b)                                                                         \
    do {                                                                                           \
        long long harness_a_ = (long long) (a), harness_b_ = (long long) (b);                      \
        if (harness_a_ != harness_b_) {                                                            \
            fprintf(stderr, "# %s:%d: %s == %s: %lld != %lld\n", __FILE__, __LINE__, #a, #b,       \
                    harness_a_, harness_b_);                                                       \
            harness_failed_checks++;                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                                         \
    do {                                                                                           \
        const char *harness_a_ = (a), *harness_b_ = (b);                                           \
        if (harness_a_ == NULL || harness_b_ == NULL || strcmp(harness_a_, harness_b_) != 0) {     \
            fprintf(stderr, "# %s:%d: %s == %s: '%s' != '%s'\n", __FILE__, __LINE__, #a, #b,       \
                    harness_a_ ? harness_a_ : "(null)", harness_b_ ? harness_b_ : "(null)");       \
            harness_failed_checks++;                                                               \
        }                                                                                          \
    } while (0)

/* Run FN in a fresh temporary directory (also $CHRUN_ROOT's parent). */
#define RUN_TEST(fn)                                                                               \
    do {                                                                                           \
        char harness_cwd_[PATH_MAX];                                                               \
        snprintf(harness_dir, sizeof(harness_dir), "/tmp/chrun-unit-XXXXXX");                      \
        if (getcwd(harness_cwd_, sizeof(harness_cwd_)) == NULL || mkdtemp(harness_dir) == NULL ||  \
            chdir(harness_dir) < 0) {                                                              \
            perror("# test setup");                                                                \
            exit(1);                                                                               \
        }                                                                                          \
        setenv("CHRUN_ROOT", "store", 1);                                                          \
        harness_failed_checks = 0;                                                                 \
        fn();                                                                                      \
        harness_number++;                                                                          \
        if (chdir(harness_cwd_) < 0)                                                               \
            exit(1);                                                                               \
        if (harness_failed_checks == 0) {                                                          \
            harness_passed++;                                                                      \
            printf("ok %d - %s\n", harness_number, #fn);                                           \
            harness_rm_rf(harness_dir);                                                            \
        } else {                                                                                   \
            harness_failed++;                                                                      \
            printf("not ok %d - %s (kept %s)\n", harness_number, #fn, harness_dir);                \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

static inline void harness_rm_rf(const char *dir)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "# could not remove %s\n", dir);
}

static inline int harness_done(void)
{
    printf("# passed=%d failed=%d\n", harness_passed, harness_failed);
    return harness_failed ? 1 : 0;
}

#endif
