#include "chrun/digest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

bool chrun_digest_is_valid(const char *s)
{
    if (s == NULL || strncmp(s, "sha256:", 7) != 0)
        return false;
    s += 7;
    for (int i = 0; i < CHRUN_DIGEST_HEX_LEN; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return s[CHRUN_DIGEST_HEX_LEN] == '\0';
}

int chrun_digest_parse(struct chrun_digest *ret, const char *s, struct chrun_err *err)
{
    if (!chrun_digest_is_valid(s))
        return chrun_err_set(err, CHRUN_E_INPUT, "invalid digest '%.100s'", s ? s : "(null)");
    memcpy(ret->str, s, CHRUN_DIGEST_STR_MAX - 1);
    ret->str[CHRUN_DIGEST_STR_MAX - 1] = '\0';
    return 0;
}

static int openssl_fail(struct chrun_err *err, const char *what)
{
    char buf[256];
    unsigned long e = ERR_get_error();
    ERR_error_string_n(e, buf, sizeof(buf));
    return chrun_err_set(err, CHRUN_E_SYS, "sha256 %s: %s", what, e ? buf : "failed");
}

int chrun_digest_hasher_init(struct chrun_digest_hasher *h, struct chrun_err *err)
{
    EVP_MD_CTX *ctx = h->ctx;
    h->size_bytes = 0;
    if (ctx == NULL) {
        ctx = EVP_MD_CTX_new();
        if (ctx == NULL)
            return chrun_err_sys(err, ENOMEM, "sha256 init");
        h->ctx = ctx;
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        return openssl_fail(err, "init");
    return 0;
}

int chrun_digest_hasher_update(struct chrun_digest_hasher *h, const void *data, size_t len,
                               struct chrun_err *err)
{
    if (EVP_DigestUpdate(h->ctx, data, len) != 1)
        return openssl_fail(err, "update");
    h->size_bytes += len;
    return 0;
}

int chrun_digest_hasher_final(struct chrun_digest_hasher *h, struct chrun_digest *ret,
                              struct chrun_err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_DigestFinal_ex(h->ctx, md, &mdlen) != 1 || mdlen != 32)
        return openssl_fail(err, "final");
    memcpy(ret->str, "sha256:", 7);
    for (unsigned i = 0; i < 32; i++)
        snprintf(ret->str + 7 + 2 * i, 3, "%02x", md[i]);
    return 0;
}

void chrun_digest_hasher_release(struct chrun_digest_hasher *h)
{
    if (h->ctx != NULL)
        EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

int chrun_digest_of_buffer(struct chrun_digest *ret, const void *data, size_t len,
                           struct chrun_err *err)
{
    struct chrun_digest_hasher h = {0};
    int rc = -1;
    if (chrun_digest_hasher_init(&h, err) == 0 &&
        chrun_digest_hasher_update(&h, data, len, err) == 0 &&
        chrun_digest_hasher_final(&h, ret, err) == 0)
        rc = 0;
    chrun_digest_hasher_release(&h);
    return rc;
}
