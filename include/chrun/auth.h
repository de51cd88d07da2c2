/* Registry authentication: WWW-Authenticate challenges, bearer-token replies,
 * base64, and credentials from docker's config.json (auths, credHelpers,
 * credsStore through `docker-credential-NAME get`).
 *
 * The parsing functions are pure (no I/O) so unit tests can drive them with
 * hostile input; chrun_auth_creds_get reads the config file and runs helpers. */
#ifndef CHRUN_AUTH_H
#define CHRUN_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "chrun/err.h"

/* Caps on what a registry, token server or credential helper may send us. */
#define CHRUN_TOKEN_MAX (256 * 1024)
#define CHRUN_AUTH_CONFIG_MAX (4 * 1024 * 1024)
#define CHRUN_AUTH_HELPER_OUTPUT_MAX (256 * 1024)
#define CHRUN_AUTH_URL_MAX 2048
#define CHRUN_AUTH_USER_MAX 512
#define CHRUN_AUTH_SECRET_MAX 8192

enum chrun_auth_scheme {
    CHRUN_AUTH_NONE = 0,
    CHRUN_AUTH_BASIC = 1,
    CHRUN_AUTH_BEARER = 2,
};

/* One parsed WWW-Authenticate challenge. */
struct chrun_auth_challenge {
    enum chrun_auth_scheme scheme;
    char realm[CHRUN_AUTH_URL_MAX];
    char service[512];
    char scope[1024];
};

/* Parse the value of a WWW-Authenticate header (RFC 7235: scheme, then
 * comma-separated key=value or key="quoted" parameters; several challenges
 * may follow each other). The first Bearer challenge wins, else the first
 * Basic one. Bearer needs a realm. Unknown parameters are ignored; anything
 * malformed (unterminated quote, missing '=', control characters, oversized
 * values, no usable scheme) fails with CHRUN_E_INPUT. Returns 0 or -1. */
int chrun_auth_parse_challenge(struct chrun_auth_challenge *ret, const char *header,
                               struct chrun_err *err);

/* Credentials for one registry. */
struct chrun_auth_creds {
    char username[CHRUN_AUTH_USER_MAX];
    char secret[CHRUN_AUTH_SECRET_MAX]; /* password, or an identity (refresh) token */
    bool identity_token;                /* secret is an OAuth2 refresh token */
};

/* Standard base64 with padding. Encode LEN bytes of DATA into OUT (SIZE
 * bytes, NUL-terminated). Returns the encoded length or -1 with ENOBUFS. */
int chrun_auth_base64_encode(const void *data, size_t len, char *out, size_t size,
                             struct chrun_err *err);

/* Decode S (padding optional, no whitespace) into OUT (SIZE bytes); the
 * result is NUL-terminated when room allows. *RET_LEN gets the byte count.
 * Invalid input: CHRUN_E_INPUT; too small OUT: ENOBUFS. Returns 0 or -1. */
int chrun_auth_base64_decode(const char *s, void *out, size_t size, size_t *ret_len,
                             struct chrun_err *err);

/* Where config.json says the credentials for a registry come from. */
struct chrun_auth_source {
    bool found_inline;          /* creds holds them (auths entry) */
    struct chrun_auth_creds creds;
    char helper[128];           /* "" or NAME of docker-credential-NAME */
    char server_url[CHRUN_AUTH_URL_MAX]; /* what to ask the helper for */
};

/* Look up REGISTRY (a ref domain such as "docker.io" or "localhost:5000") in
 * the LEN bytes of config.json at BUF. Precedence as in docker: credHelpers
 * entry, then credsStore, then auths (base64 "auth" or username/password,
 * "identitytoken"). Keys match with or without scheme and path
 * ("https://index.docker.io/v1/" is docker.io). The helper, if any, is kept
 * in RET->helper and RET->found_inline tells whether auths also had an entry.
 * Malformed JSON or fields: CHRUN_E_INPUT. Returns 0 or -1. */
int chrun_auth_config_parse(const char *buf, size_t len, const char *registry,
                            struct chrun_auth_source *ret, struct chrun_err *err);

/* Parse a credential helper's `get` reply ({"Username":..,"Secret":..});
 * Username "<token>" marks an identity token. Returns 0 or -1. */
int chrun_auth_helper_parse(const char *buf, size_t len, struct chrun_auth_creds *ret,
                            struct chrun_err *err);

/* Credentials for REGISTRY from CONFIG_DIR/config.json (the tools pass
 * $DOCKER_CONFIG, else ~/.docker: settings->docker_config_dir), running a
 * credential helper found on PATH when configured. CONFIG_DIR NULL or "",
 * no config file or no entry: 0 with *RET_FOUND false. A helper that says
 * "credentials not found" counts as no entry. Returns 0 or -1. */
int chrun_auth_creds_get(const char *registry, const char *config_dir,
                         struct chrun_auth_creds *ret, bool *ret_found, struct chrun_err *err);

/* Build the token request URL: REALM with service= and scope= appended
 * (URL-encoded); several space-separated scopes in SCOPE ("repository:a:pull,push
 * repository:b:pull") become one scope= parameter each, as docker sends them. The realm must be an http(s) URL. *RET_URL is malloc'ed and
 * owned by the caller. Returns 0 or -1. */
int chrun_auth_token_url(const struct chrun_auth_challenge *c, const char *scope, char **ret_url,
                         struct chrun_err *err);

/* Parse a token server reply: "token" or "access_token", which must be
 * non-empty and consist of visible ASCII only (it goes into an HTTP header).
 * *RET_TOKEN is malloc'ed and owned by the caller. Returns 0 or -1. */
int chrun_auth_token_parse(const char *buf, size_t len, char **ret_token, struct chrun_err *err);

/* Percent-encode S (unreserved characters kept) into a malloc'ed string, or
 * NULL with ENOMEM. */
char *chrun_auth_url_encode(const char *s, struct chrun_err *err);

#endif
