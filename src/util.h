/* Small helpers shared inside libchrun and by tools; not installed. */
#ifndef CHRUN_UTIL_H
#define CHRUN_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

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

#endif
