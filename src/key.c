/* Signing keys: PEM and cosign-encrypted loading, sign and verify over
 * OpenSSL 3's EVP API, NaCl secretbox from libsodium. */
#include "chrun/key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include "chrun/io.h"
#include "cleanup.h"
#include "util.h"

#define PEM_ENCRYPTED_SIGSTORE "ENCRYPTED SIGSTORE PRIVATE KEY"
#define PEM_ENCRYPTED_COSIGN "ENCRYPTED COSIGN PRIVATE KEY"
#define RSA_BITS_MIN 2048
/* secretbox key and nonce sizes (NaCl: XSalsa20-Poly1305) */
#define BOX_KEY_LEN 32
#define BOX_NONCE_LEN 24
#define SALT_MAX 1024

enum key_type { KEY_ECDSA_P256 = 1, KEY_RSA, KEY_ED25519 };

struct chrun_key {
    EVP_PKEY *pkey;
    enum key_type type;
    char desc[32];
};

static void cleanup_bio_fn(BIO **b)
{
    if (*b != NULL)
        BIO_free(*b);
}
static void cleanup_pkey_fn(EVP_PKEY **p)
{
    if (*p != NULL)
        EVP_PKEY_free(*p);
}
static void cleanup_mdctx_fn(EVP_MD_CTX **c)
{
    if (*c != NULL)
        EVP_MD_CTX_free(*c);
}
#define cleanup_bio __attribute__((cleanup(cleanup_bio_fn)))
#define cleanup_pkey __attribute__((cleanup(cleanup_pkey_fn)))
#define cleanup_mdctx __attribute__((cleanup(cleanup_mdctx_fn)))

/* A buffer of secret bytes, wiped before it is freed. */
struct secret {
    unsigned char *p;
    size_t len;
};
static void cleanup_secret_fn(struct secret *s)
{
    if (s->p != NULL) {
        OPENSSL_cleanse(s->p, s->len);
        free(s->p);
    }
}
#define cleanup_secret __attribute__((cleanup(cleanup_secret_fn)))

/* The text of OpenSSL's last error, and the queue cleared. */
static const char *ssl_reason(char *buf, size_t size)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        snprintf(buf, size, "unknown error");
    else
        ERR_error_string_n(e, buf, size);
    ERR_clear_error();
    return buf;
}

/* Read the key file PATH (bounded). A directory or an empty file is named. */
static int read_key_file(const char *path, struct secret *ret, struct chrun_err *err)
{
    cleanup_close int fd = TEMP_FAILURE_RETRY_INT(open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY));
    struct stat sb;
    char *buf = NULL;
    size_t len = 0;

    if (fd < 0)
        return chrun_err_sys(err, errno, "key '%s'", path);
    if (fstat(fd, &sb) < 0)
        return chrun_err_sys(err, errno, "key '%s'", path);
    if (S_ISDIR(sb.st_mode))
        return chrun_err_set(err, CHRUN_E_INPUT, "key '%s' is a directory", path);
    if (chrun_io_read_bounded(fd, CHRUN_KEY_FILE_MAX, &buf, &len, err) < 0)
        return chrun_err_prefix(err, "key '%s'", path);
    ret->p = (unsigned char *) buf;
    ret->len = len;
    if (len == 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "key '%s' is empty", path);
    return 0;
}

static int key_adopt(EVP_PKEY **pkey, const char *path, struct chrun_key **ret,
                     struct chrun_err *err)
{
    struct chrun_key *k;
    enum key_type type;
    char desc[32];
    int bits = EVP_PKEY_get_bits(*pkey);

    if (EVP_PKEY_is_a(*pkey, "EC")) {
        char group[64] = "";
        size_t glen = 0;
        if (EVP_PKEY_get_utf8_string_param(*pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                           sizeof(group), &glen) != 1 ||
            !streq(group, "prime256v1")) {
            ERR_clear_error();
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "key '%s': EC curve '%.60s' is not supported (want P-256)", path,
                                 group[0] ? group : "?");
        }
        type = KEY_ECDSA_P256;
        snprintf(desc, sizeof(desc), "ecdsa-p256");
    } else if (EVP_PKEY_is_a(*pkey, "RSA")) {
        if (bits < RSA_BITS_MIN)
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "key '%s': RSA key of %d bits is too weak (want >= %d)", path,
                                 bits, RSA_BITS_MIN);
        type = KEY_RSA;
        snprintf(desc, sizeof(desc), "rsa-%d", bits);
    } else if (EVP_PKEY_is_a(*pkey, "ED25519")) {
        type = KEY_ED25519;
        snprintf(desc, sizeof(desc), "ed25519");
    } else {
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                             "key '%s': key type '%.40s' is not supported (want ECDSA P-256, "
                             "RSA or Ed25519)",
                             path, EVP_PKEY_get0_type_name(*pkey));
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL)
        return chrun_err_sys(err, ENOMEM, "key '%s'", path);
    k->pkey = take_ptr(*pkey);
    k->type = type;
    memcpy(k->desc, desc, sizeof(desc));
    *ret = k;
    return 0;
}

/* The name of the first PEM block in S, into NAME (64 bytes); "" if none. */
static void first_pem_name(const struct secret *s, char *name, size_t size)
{
    const char *begin = memmem(s->p, s->len, "-----BEGIN ", 11);
    const char *end;
    size_t n;
    name[0] = '\0';
    if (begin == NULL)
        return;
    begin += 11;
    end = memmem(begin, s->len - (size_t) (begin - (const char *) s->p), "-----", 5);
    if (end == NULL)
        return;
    n = (size_t) (end - begin);
    if (n >= size)
        n = size - 1;
    memcpy(name, begin, n);
    name[n] = '\0';
    chrun_sanitize(name);
}

/* Read the PEM file PATH into FILE, its first block's name into NAME (64
 * bytes) and a memory BIO over it into *RET_BIO. Returns 0 or -1. */
static int open_pem(const char *path, struct secret *file, char *name, size_t size,
                    BIO **ret_bio, struct chrun_err *err)
{
    if (read_key_file(path, file, err) < 0)
        return -1;
    first_pem_name(file, name, size);
    if (name[0] == '\0')
        return chrun_err_set(err, CHRUN_E_INPUT, "key '%s' is not a PEM file", path);
    *ret_bio = BIO_new_mem_buf(file->p, (int) file->len);
    if (*ret_bio == NULL)
        return chrun_err_sys(err, ENOMEM, "key '%s'", path);
    return 0;
}

int chrun_key_load_public(const char *path, struct chrun_key **ret, struct chrun_err *err)
{
    cleanup_secret struct secret file = {0};
    cleanup_bio BIO *bio = NULL;
    cleanup_pkey EVP_PKEY *pkey = NULL;
    char name[64], why[256];

    if (open_pem(path, &file, name, sizeof(name), &bio, err) < 0)
        return -1;
    if (!streq(name, "PUBLIC KEY"))
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "key '%s' holds a '%s' PEM block, not a PUBLIC KEY", path, name);
    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (pkey == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "key '%s': invalid public key: %s", path,
                             ssl_reason(why, sizeof(why)));
    return key_adopt(&pkey, path, ret, err);
}

/* Never asked: an encrypted PKCS#8 or legacy-encrypted PEM key is refused. */
static int no_password_cb(char *buf, int size, int rwflag, void *u)
{
    (void) buf, (void) size, (void) rwflag, (void) u;
    return -1;
}

/* The password of an encrypted key: PASSWORD (the caller's, e.g.
 * $CHRUN_SIGN_PASSWORD), else a prompt on the controlling terminal with
 * echo off. */
static int get_password(const char *path, const char *password, struct secret *ret,
                        struct chrun_err *err)
{
    const char *env = password;
    cleanup_close int tty = -1;
    struct termios old, quiet;
    char prompt[512];
    size_t len = 0;
    int n;

    ret->p = malloc(CHRUN_KEY_PASSWORD_MAX + 1);
    ret->len = CHRUN_KEY_PASSWORD_MAX + 1;
    if (ret->p == NULL)
        return chrun_err_sys(err, ENOMEM, "password");
    if (env != NULL) {
        len = strlen(env);
        if (len > CHRUN_KEY_PASSWORD_MAX)
            return chrun_err_set(err, CHRUN_E_INPUT, "CHRUN_SIGN_PASSWORD is longer than %d bytes",
                                 CHRUN_KEY_PASSWORD_MAX);
        memcpy(ret->p, env, len + 1);
        return 0;
    }
    tty = TEMP_FAILURE_RETRY_INT(open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY));
    if (tty < 0 || tcgetattr(tty, &old) < 0)
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "key '%s' is encrypted: set CHRUN_SIGN_PASSWORD (no terminal to ask "
                             "on)",
                             path);
    quiet = old;
    quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    n = snprintf(prompt, sizeof(prompt), "Enter password for private key '%.400s': ", path);
    /* TCSANOW, not TCSAFLUSH: a password typed ahead of the prompt is kept */
    if (tcsetattr(tty, TCSANOW, &quiet) < 0)
        return chrun_err_sys(err, errno, "password prompt");
    if (chrun_io_write_full(tty, prompt, (size_t) n, err) < 0) {
        tcsetattr(tty, TCSANOW, &old);
        return -1;
    }
    while (len < CHRUN_KEY_PASSWORD_MAX) {
        ssize_t r = read(tty, ret->p + len, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || ret->p[len] == '\n')
            break;
        len++;
    }
    ret->p[len] = '\0';
    tcsetattr(tty, TCSANOW, &old);
    if (chrun_io_write_full(tty, "\n", 1, err) < 0)
        return -1;
    return 0;
}

/* Decode the base64 string field NAME of OBJ into a new buffer. */
static int json_b64(json_t *obj, const char *name, const char *path, struct secret *ret,
                    size_t max, struct chrun_err *err)
{
    const char *s = json_string_value(json_object_get(obj, name));
    if (s == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "key '%s': encrypted key has no '%s'", path,
                             name);
    if (strlen(s) / 4 * 3 > max)
        return chrun_err_set(err, CHRUN_E_INPUT, "key '%s': '%s' is too long", path, name);
    ret->p = malloc(max + 1);
    ret->len = max + 1;
    if (ret->p == NULL)
        return chrun_err_sys(err, ENOMEM, "key '%s'", path);
    if (chrun_key_b64_decode(s, ret->p, max, &ret->len, err) < 0)
        return chrun_err_prefix(err, "key '%s': '%s'", path, name);
    return 0;
}

static int scrypt_param(json_t *params, const char *name, unsigned long max, const char *path,
                        uint64_t *ret, struct chrun_err *err)
{
    json_t *v = json_object_get(params, name);
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        (unsigned long long) json_integer_value(v) > max)
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "key '%s': scrypt parameter %s is missing or outside 1..%lu", path,
                             name, max);
    *ret = (uint64_t) json_integer_value(v);
    return 0;
}

/* go-securesystemslib "encrypted": {"kdf":{"name":"scrypt","params":{N,r,p},
 * "salt"},"cipher":{"name":"nacl/secretbox","nonce"},"ciphertext"}. */
static int decrypt_cosign(const char *path, const char *password, const unsigned char *json_text,
                          size_t json_len, struct secret *ret_der, struct chrun_err *err)
{
    json_auto_t *doc = NULL;
    json_t *kdf, *cipher, *params;
    json_error_t jerr;
    cleanup_secret struct secret salt = {0}, nonce = {0}, box = {0}, pw = {0}, key = {0};
    uint64_t n, r, p;
    const char *kdf_name, *cipher_name;

    doc = json_loadb((const char *) json_text, json_len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "key '%s': encrypted key is not JSON: %s", path,
                             jerr.text);
    kdf = json_object_get(doc, "kdf");
    cipher = json_object_get(doc, "cipher");
    params = json_object_get(kdf, "params");
    kdf_name = json_string_value(json_object_get(kdf, "name"));
    cipher_name = json_string_value(json_object_get(cipher, "name"));
    if (kdf_name == NULL || !streq(kdf_name, "scrypt"))
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED, "key '%s': kdf is not scrypt", path);
    if (cipher_name == NULL || !streq(cipher_name, "nacl/secretbox"))
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED, "key '%s': cipher is not nacl/secretbox",
                             path);
    if (scrypt_param(params, "N", CHRUN_KEY_SCRYPT_N_MAX, path, &n, err) < 0 ||
        scrypt_param(params, "r", CHRUN_KEY_SCRYPT_R_MAX, path, &r, err) < 0 ||
        scrypt_param(params, "p", CHRUN_KEY_SCRYPT_P_MAX, path, &p, err) < 0)
        return -1;
    if (n < 2 || (n & (n - 1)) != 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "key '%s': scrypt N is not a power of 2", path);
    if (json_b64(kdf, "salt", path, &salt, SALT_MAX, err) < 0 ||
        json_b64(cipher, "nonce", path, &nonce, BOX_NONCE_LEN, err) < 0 ||
        json_b64(doc, "ciphertext", path, &box, CHRUN_KEY_FILE_MAX, err) < 0)
        return -1;
    if (nonce.len != BOX_NONCE_LEN)
        return chrun_err_set(err, CHRUN_E_INPUT, "key '%s': nonce is not %d bytes", path,
                             BOX_NONCE_LEN);
    if (box.len < crypto_secretbox_MACBYTES)
        return chrun_err_set(err, CHRUN_E_INPUT, "key '%s': ciphertext is too short", path);
    if (get_password(path, password, &pw, err) < 0)
        return -1;
    key.p = malloc(BOX_KEY_LEN);
    key.len = BOX_KEY_LEN;
    if (key.p == NULL)
        return chrun_err_sys(err, ENOMEM, "key '%s'", path);
    /* scrypt needs 128 * r * (N + p + 2) bytes; allow exactly that and a page more */
    if (EVP_PBE_scrypt((const char *) pw.p, strlen((const char *) pw.p), salt.p,
                       salt.len, n, r, p, 128 * r * (n + p + 2) + 4096, key.p, BOX_KEY_LEN) != 1) {
        char why[256];
        return chrun_err_set(err, CHRUN_E_SYS, "key '%s': scrypt: %s", path,
                             ssl_reason(why, sizeof(why)));
    }
    if (sodium_init() < 0)
        return chrun_err_set(err, CHRUN_E_SYS, "libsodium initialisation failed");
    ret_der->len = box.len - crypto_secretbox_MACBYTES;
    ret_der->p = malloc(ret_der->len + 1);
    if (ret_der->p == NULL)
        return chrun_err_sys(err, ENOMEM, "key '%s'", path);
    if (crypto_secretbox_open_easy(ret_der->p, box.p, box.len, nonce.p, key.p) != 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "key '%s': wrong password (or a damaged key)",
                             path);
    return 0;
}

int chrun_key_load_private(const char *path, const char *password, struct chrun_key **ret,
                           struct chrun_err *err)
{
    cleanup_secret struct secret file = {0}, der = {0};
    cleanup_bio BIO *bio = NULL;
    cleanup_pkey EVP_PKEY *pkey = NULL;
    char name[64], why[256];

    if (open_pem(path, &file, name, sizeof(name), &bio, err) < 0)
        return -1;
    if (streq(name, PEM_ENCRYPTED_SIGSTORE) || streq(name, PEM_ENCRYPTED_COSIGN)) {
        char *pem_name = NULL, *header = NULL;
        unsigned char *data = NULL;
        long len = 0;
        int rc = 0;
        const unsigned char *q;
        if (PEM_read_bio(bio, &pem_name, &header, &data, &len) != 1)
            return chrun_err_set(err, CHRUN_E_INPUT, "key '%s': invalid PEM: %s", path,
                                 ssl_reason(why, sizeof(why)));
        rc = decrypt_cosign(path, password, data, (size_t) len, &der, err);
        OPENSSL_free(pem_name);
        OPENSSL_free(header);
        OPENSSL_clear_free(data, (size_t) len);
        if (rc < 0)
            return -1;
        q = der.p;
        pkey = d2i_AutoPrivateKey(NULL, &q, (long) der.len);
        if (pkey == NULL)
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "key '%s': decrypted key is not PKCS#8 DER: %s", path,
                                 ssl_reason(why, sizeof(why)));
        return key_adopt(&pkey, path, ret, err);
    }
    if (strstr(name, "PRIVATE KEY") == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "key '%s' holds a '%s' PEM block, not a private key", path, name);
    if (streq(name, "ENCRYPTED PRIVATE KEY"))
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                             "key '%s': password-protected PKCS#8 is not supported (use "
                             "cosign's encrypted format or an unencrypted key)",
                             path);
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password_cb, NULL);
    if (pkey == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "key '%s': invalid private key: %s", path,
                             ssl_reason(why, sizeof(why)));
    return key_adopt(&pkey, path, ret, err);
}

void chrun_key_free(struct chrun_key *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

const char *chrun_key_describe(const struct chrun_key *k)
{
    return k->desc;
}

/* cosign's choices: SHA-256 for ECDSA and RSA, none (pure) for Ed25519. */
static const EVP_MD *key_md(const struct chrun_key *k)
{
    return k->type == KEY_ED25519 ? NULL : EVP_sha256();
}

int chrun_key_sign(const struct chrun_key *k, const void *data, size_t len, unsigned char *sig,
                   size_t *ret_len, struct chrun_err *err)
{
    cleanup_mdctx EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sig_len = CHRUN_KEY_SIG_MAX;
    char why[256];

    if (ctx == NULL)
        return chrun_err_sys(err, ENOMEM, "sign");
    if ((size_t) EVP_PKEY_get_size(k->pkey) > CHRUN_KEY_SIG_MAX)
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED, "sign: %s signatures are too long",
                             k->desc);
    if (EVP_DigestSignInit(ctx, NULL, key_md(k), NULL, k->pkey) != 1 ||
        EVP_DigestSign(ctx, sig, &sig_len, data, len) != 1)
        return chrun_err_set(err, CHRUN_E_SYS, "sign with %s key: %s", k->desc,
                             ssl_reason(why, sizeof(why)));
    *ret_len = sig_len;
    return 0;
}

static int verify_padding(const struct chrun_key *k, int padding, const void *data, size_t len,
                          const unsigned char *sig, size_t sig_len, struct chrun_err *err)
{
    cleanup_mdctx EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    char why[256];
    int rc;

    if (ctx == NULL)
        return chrun_err_sys(err, ENOMEM, "verify");
    if (EVP_DigestVerifyInit(ctx, &pctx, key_md(k), NULL, k->pkey) != 1)
        return chrun_err_set(err, CHRUN_E_SYS, "verify with %s key: %s", k->desc,
                             ssl_reason(why, sizeof(why)));
    if (padding == RSA_PKCS1_PSS_PADDING &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, padding) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1))
        return chrun_err_set(err, CHRUN_E_SYS, "verify with %s key: %s", k->desc,
                             ssl_reason(why, sizeof(why)));
    rc = EVP_DigestVerify(ctx, sig, sig_len, data, len);
    /* a malformed signature is as wrong as a mismatched one */
    ERR_clear_error();
    return rc == 1 ? 1 : 0;
}

int chrun_key_verify(const struct chrun_key *k, const void *data, size_t len,
                     const unsigned char *sig, size_t sig_len, struct chrun_err *err)
{
    int rc = verify_padding(k, RSA_PKCS1_PADDING, data, len, sig, sig_len, err);
    if (rc != 0 || k->type != KEY_RSA)
        return rc;
    return verify_padding(k, RSA_PKCS1_PSS_PADDING, data, len, sig, sig_len, err);
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int chrun_key_b64_decode(const char *s, unsigned char *out, size_t out_size, size_t *ret_len,
                         struct chrun_err *err)
{
    size_t len = strlen(s), o = 0;
    if (len % 4 != 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "invalid base64: length %zu", len);
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        size_t pad = 0;
        bool last = i + 4 == len;
        for (int j = 0; j < 4; j++) {
            unsigned char c = (unsigned char) s[i + (size_t) j];
            if (c == '=' && last && j >= 2 && (j == 3 || s[i + 3] == '=')) {
                v[j] = 0;
                pad++;
                continue;
            }
            v[j] = b64_value(c);
            if (v[j] < 0 || pad > 0)
                return chrun_err_set(err, CHRUN_E_INPUT, "invalid base64 at offset %zu",
                                     i + (size_t) j);
        }
        uint32_t w = (uint32_t) v[0] << 18 | (uint32_t) v[1] << 12 | (uint32_t) v[2] << 6 |
                     (uint32_t) v[3];
        unsigned char b[3] = {(unsigned char) (w >> 16), (unsigned char) (w >> 8),
                              (unsigned char) w};
        if (o + 3 - pad > out_size)
            return chrun_err_set(err, CHRUN_E_INPUT, "base64 value longer than %zu bytes",
                                 out_size);
        memcpy(out + o, b, 3 - pad);
        o += 3 - pad;
    }
    *ret_len = o;
    return 0;
}

char *chrun_key_b64_encode(const void *data, size_t len)
{
    size_t n = 4 * ((len + 2) / 3) + 1;
    char *out = malloc(n);
    if (out == NULL || len > INT32_MAX) {
        free(out);
        return NULL;
    }
    EVP_EncodeBlock((unsigned char *) out, data, (int) len);
    return out;
}
