/* A tiny TAP-style harness: each test is a function; checks print both values
 * and file:line; main lists the tests by hand. Output: "ok N - name" /
 * "not ok N - name", then "# passed=N failed=M" for tests/run to add up.
 * A test that made no check at all fails: it proved nothing. */
#ifndef CHRUN_TEST_HARNESS_H
#define CHRUN_TEST_HARNESS_H

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int harness_failed_checks, harness_checks;
static int harness_passed, harness_failed, harness_number;
static char harness_dir[PATH_MAX];

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        harness_checks++;                                                                          \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "# %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);             \
            harness_failed_checks++;                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_INT_EQ(a, b)                                                                         \
    do {                                                                                           \
        harness_checks++;                                                                          \
        long long harness_a_ = (long long) (a), harness_b_ = (long long) (b);                      \
        if (harness_a_ != harness_b_) {                                                            \
            fprintf(stderr, "# %s:%d: %s == %s: %lld != %lld\n", __FILE__, __LINE__, #a, #b,       \
                    harness_a_, harness_b_);                                                       \
            harness_failed_checks++;                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                                         \
    do {                                                                                           \
        harness_checks++;                                                                          \
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
        harness_checks = 0;                                                                        \
        fn();                                                                                      \
        if (harness_checks == 0) {                                                                 \
            fprintf(stderr, "# %s checked nothing\n", #fn);                                        \
            harness_failed_checks++;                                                               \
        }                                                                                          \
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

/* Small file helpers shared by the tests. */

/* Read PATH into a new NUL-terminated buffer (caller frees); NULL on error. */
static inline char *slurp(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, len = 0, n;
    if (f == NULL)
        return NULL;
    do {
        if (len + 4096 + 1 > cap) {
            char *p;
            cap = (cap + 4096) * 2;
            p = realloc(buf, cap);
            if (p == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0);
    fclose(f);
    buf[len] = '\0';
    if (ret_len != NULL)
        *ret_len = len;
    return buf;
}

/* Write TEXT to PATH. Returns 0 or -1. */
static inline int spew(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* Entries of PATH except . and .. (-1 if it cannot be read). */
static inline int count_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static inline int harness_done(void)
{
    printf("# passed=%d failed=%d\n", harness_passed, harness_failed);
    return harness_failed ? 1 : 0;
}

#endif
