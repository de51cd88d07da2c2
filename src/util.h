/* Small helpers shared inside libchrun and by tools; not installed. */
#ifndef CHRUN_UTIL_H
#define CHRUN_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "chrun/err.h"

#define TEMP_FAILURE_RETRY_INT(expr)                                                               \
    ({                                                                                             \
        long retry_rc_;                                                                            \
        do                                                                                         \
            retry_rc_ = (long) (expr);                                                             \
        while (retry_rc_ == -1 && errno == EINTR);                                                 \
        retry_rc_;                                                                                 \
    })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic milliseconds, for the timing lines of CHRUN_DEBUG. */
static inline double monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static inline bool streq(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static inline bool str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Replace control characters in S with '?', in place: entry names and registry
 * replies are attacker-controlled and must not drive the terminal. */
void chrun_sanitize(char *s);

/* Sort the N strings of V in strcmp order, in place (V may be NULL when N is 0). */
void chrun_sort_strings(char **v, size_t n);

/* Make the array *PTR_TO_ARRAY (a `T **`, NULL when nothing is allocated yet)
 * hold at least NEED elements of ELEM_SIZE bytes; *CAP is its capacity in
 * elements, updated on growth. Capacity doubles (at least 8) so N appends cost
 * O(N); the byte count is overflow-checked. Elements past the old capacity are
 * uninitialized. The array stays owned by the caller (free). Returns 0, or -1
 * with ERR filled with ENOMEM (allocation failed or NEED * ELEM_SIZE does not
 * fit in size_t), the array and *CAP unchanged. ERR may be NULL. */
int chrun_grow(void *ptr_to_array, size_t *cap, size_t need, size_t elem_size,
               struct chrun_err *err);

#endif
