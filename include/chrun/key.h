/* Signing keys for cosign-format image signatures: PEM public keys, PEM
 * private keys (PKCS#8, SEC1 EC, PKCS#1 RSA) and cosign's encrypted private
 * key format, which is go-securesystemslib's "encrypted" JSON (scrypt key
 * derivation, NaCl secretbox) inside a PEM block named ENCRYPTED SIGSTORE
 * PRIVATE KEY (older cosign: ENCRYPTED COSIGN PRIVATE KEY), holding the
 * PKCS#8 DER of the key.
 *
 * Supported key types, each with the scheme cosign uses for it: ECDSA P-256
 * with SHA-256 (ASN.1 DER signatures), RSA (at least 2048 bits) with SHA-256
 * and PKCS#1 v1.5 (verification also accepts PSS), Ed25519 (pure, over the
 * message itself). */
#ifndef CHRUN_KEY_H
#define CHRUN_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include "chrun/err.h"

/* A key file is read into memory up to this size. */
#define CHRUN_KEY_FILE_MAX (64 * 1024)
/* Bounds on the scrypt parameters an encrypted key may ask for: cosign
 * writes N=32768, r=8, p=1; anything far beyond is a denial of service. */
#define CHRUN_KEY_SCRYPT_N_MAX (1UL << 20)
#define CHRUN_KEY_SCRYPT_R_MAX 32UL
#define CHRUN_KEY_SCRYPT_P_MAX 16UL
/* Longest password taken from CHRUN_SIGN_PASSWORD or the terminal. */
#define CHRUN_KEY_PASSWORD_MAX 1024
/* Longest signature any supported key makes (RSA-8192 is 1024 bytes). */
#define CHRUN_KEY_SIG_MAX 2048

struct chrun_key; /* opaque: one public or private key */

/* Load the PEM public key at PATH ("PUBLIC KEY" block, SubjectPublicKeyInfo).
 * A directory, an empty file, a certificate, a private key or an
 * unsupported key type fails with CHRUN_E_INPUT naming PATH. On success
 * *RET is a key to free with chrun_key_free. Returns 0 or -1. */
int chrun_key_load_public(const char *path, struct chrun_key **ret, struct chrun_err *err);

/* Load the private key at PATH: unencrypted PEM, or cosign's encrypted
 * format, whose password is PASSWORD (the tools pass $CHRUN_SIGN_PASSWORD,
 * settings->sign_password; "" is a password), or when NULL comes from a
 * prompt on the controlling terminal without echo; with neither it fails
 * (CHRUN_E_INPUT). A wrong password fails with CHRUN_E_INPUT ("wrong
 * password"). Key material is wiped from memory once parsed. On success
 * *RET is a key to free with chrun_key_free. Returns 0 or -1. */
int chrun_key_load_private(const char *path, const char *password, struct chrun_key **ret,
                           struct chrun_err *err);

/* NULL is fine. */
void chrun_key_free(struct chrun_key *k);

/* "ecdsa-p256", "rsa-3072", "ed25519": for messages. */
const char *chrun_key_describe(const struct chrun_key *k);

/* Sign LEN bytes of DATA with private key K into SIG (CHRUN_KEY_SIG_MAX
 * bytes); *RET_LEN gets the signature length. Returns 0 or -1. */
int chrun_key_sign(const struct chrun_key *k, const void *data, size_t len, unsigned char *sig,
                   size_t *ret_len, struct chrun_err *err);

/* Check signature SIG (SIG_LEN bytes) over DATA with K (a public key, or
 * the public half of a private one). Returns 1 if it verifies, 0 if it
 * does not, -1 on a library failure (ERR filled). */
int chrun_key_verify(const struct chrun_key *k, const void *data, size_t len,
                     const unsigned char *sig, size_t sig_len, struct chrun_err *err);

/* Standard base64 (RFC 4648, with padding), strict: any other character,
 * wrong padding or a length that is not a multiple of 4 fails. Decode S into
 * OUT (at most OUT_SIZE bytes); *RET_LEN gets the length. Returns 0 or -1
 * (CHRUN_E_INPUT "invalid base64"). */
int chrun_key_b64_decode(const char *s, unsigned char *out, size_t out_size, size_t *ret_len,
                         struct chrun_err *err);

/* Encode LEN bytes of DATA; the result (caller frees) is NUL-terminated, or
 * NULL when out of memory. */
char *chrun_key_b64_encode(const void *data, size_t len);

#endif
