/* Content digests: a strict "sha256:" + 64 lowercase hex type and a streaming hasher. */
#ifndef CHRUN_DIGEST_H
#define CHRUN_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chrun/err.h"

#define CHRUN_DIGEST_HEX_LEN 64
/* "sha256:" + 64 hex + NUL */
#define CHRUN_DIGEST_STR_MAX 72

/* A validated digest. str is always "sha256:<64 lowercase hex>". */
struct chrun_digest {
    char str[CHRUN_DIGEST_STR_MAX];
};

/* Parse S strictly: anything but "sha256:" followed by exactly 64 lowercase hex
 * digits fails with CHRUN_E_INPUT ("invalid digest '<s>'"). A digest is never a
 * path. Returns 0 or -1. */
int chrun_digest_parse(struct chrun_digest *ret, const char *s, struct chrun_err *err);

/* True if S is a valid digest string. */
bool chrun_digest_is_valid(const char *s);

/* The 64 hex characters of D. */
static inline const char *chrun_digest_hex(const struct chrun_digest *d)
{
    return d->str + 7;
}

/* Streaming SHA-256. init/update/final may be interleaved with I/O. Not shared
 * between threads. */
struct chrun_digest_hasher {
    void *ctx; /* EVP_MD_CTX */
    uint64_t size_bytes;
};

int chrun_digest_hasher_init(struct chrun_digest_hasher *h, struct chrun_err *err);
int chrun_digest_hasher_update(struct chrun_digest_hasher *h, const void *data, size_t len,
                               struct chrun_err *err);
/* Finish into RET; the hasher can be re-initialised afterwards. */
int chrun_digest_hasher_final(struct chrun_digest_hasher *h, struct chrun_digest *ret,
                              struct chrun_err *err);
void chrun_digest_hasher_release(struct chrun_digest_hasher *h);

/* Digest of an in-memory buffer. Returns 0 or -1. */
int chrun_digest_of_buffer(struct chrun_digest *ret, const void *data, size_t len,
                           struct chrun_err *err);

#endif
