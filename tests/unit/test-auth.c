/* WWW-Authenticate parsing, base64, config.json and helper replies, token
 * replies: the pure parts of auth.c, fed with well-formed and hostile input. */
#include "harness.h"

#include "chrun/auth.h"

static void test_challenge_bearer(void)
{
    struct chrun_auth_challenge c;
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(chrun_auth_parse_challenge(
                     &c,
                     "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                     "scope=\"repository:library/redis:pull\"",
                     &err),
                 0);
    CHECK_INT_EQ(c.scheme, CHRUN_AUTH_BEARER);
    CHECK_STR_EQ(c.realm, "https://auth.docker.io/token");
    CHECK_STR_EQ(c.service, "registry.docker.io");
    CHECK_STR_EQ(c.scope, "repository:library/redis:pull");
    /* case-insensitive scheme, spaces, token values, escapes, unknown keys */
    CHECK_INT_EQ(chrun_auth_parse_challenge(
                     &c, "bearer  realm=\"http://a/t\" , service=reg.io, x=\"q\\\"uote\", error=insufficient_scope",
                     &err),
                 0);
    CHECK_STR_EQ(c.realm, "http://a/t");
    CHECK_STR_EQ(c.service, "reg.io");
}

static void test_challenge_basic_and_multi(void)
{
    struct chrun_auth_challenge c;
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(chrun_auth_parse_challenge(&c, "Basic realm=\"Registry Realm\"", &err), 0);
    CHECK_INT_EQ(c.scheme, CHRUN_AUTH_BASIC);
    CHECK_STR_EQ(c.realm, "Registry Realm");
    /* Bearer wins over Basic whatever the order */
    CHECK_INT_EQ(chrun_auth_parse_challenge(&c, "Basic realm=\"x\", Bearer realm=\"https://t/\"", &err),
                 0);
    CHECK_INT_EQ(c.scheme, CHRUN_AUTH_BEARER);
    CHECK_STR_EQ(c.realm, "https://t/");
}

static void expect_bad_challenge(const char *h)
{
    struct chrun_auth_challenge c;
    struct chrun_err err = CHRUN_ERR_INIT;
    if (chrun_auth_parse_challenge(&c, h, &err) != -1) {
        fprintf(stderr, "# accepted '%s'\n", h);
        harness_failed_checks++;
        return;
    }
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(strstr(err.msg, "malformed WWW-Authenticate header") != NULL);
}

static void test_challenge_hostile(void)
{
    char big[8192];
    expect_bad_challenge("");
    expect_bad_challenge("Bearer");
    expect_bad_challenge("Bearer service=\"x\"");
    expect_bad_challenge("Bearer realm=\"https://unterminated");
    expect_bad_challenge("Bearer realm=\"a\\");
    expect_bad_challenge("Bearer realm=");
    expect_bad_challenge("Bearer realm=\"a\" junk junk2=");
    expect_bad_challenge("realm=\"x\"");
    expect_bad_challenge("Negotiate abc");
    expect_bad_challenge("Bearer realm=\"a\r\nX-Injected: 1\"");
    expect_bad_challenge("Bearer realm=\"a\"\"b\"");
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "Bearer realm=\"", 14);
    expect_bad_challenge(big);
}

static void test_base64(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    char out[64];
    size_t len;
    CHECK_INT_EQ(chrun_auth_base64_encode("user:pass", 9, out, sizeof(out), &err), 12);
    CHECK_STR_EQ(out, "dXNlcjpwYXNz");
    CHECK_INT_EQ(chrun_auth_base64_encode("a", 1, out, sizeof(out), &err), 4);
    CHECK_STR_EQ(out, "YQ==");
    CHECK_INT_EQ(chrun_auth_base64_encode("ab", 2, out, sizeof(out), &err), 4);
    CHECK_STR_EQ(out, "YWI=");
    CHECK_INT_EQ(chrun_auth_base64_encode("", 0, out, sizeof(out), &err), 0);
    CHECK_INT_EQ(chrun_auth_base64_encode("abcdef", 6, out, 8, &err), -1);
    CHECK_INT_EQ(chrun_auth_base64_decode("dXNlcjpwYXNz", out, sizeof(out), &len, &err), 0);
    CHECK_INT_EQ(len, 9);
    CHECK_STR_EQ(out, "user:pass");
    CHECK_INT_EQ(chrun_auth_base64_decode("YQ==", out, sizeof(out), &len, &err), 0);
    CHECK_INT_EQ(len, 1);
    CHECK_INT_EQ(chrun_auth_base64_decode("YQ", out, sizeof(out), &len, &err), 0);
    CHECK_INT_EQ(len, 1);
    CHECK_INT_EQ(chrun_auth_base64_decode("YWI=", out, sizeof(out), &len, &err), 0);
    CHECK_STR_EQ(out, "ab");
    CHECK_INT_EQ(chrun_auth_base64_decode("Y", out, sizeof(out), &len, &err), -1);
    CHECK_INT_EQ(chrun_auth_base64_decode("Y===", out, sizeof(out), &len, &err), -1);
    CHECK_INT_EQ(chrun_auth_base64_decode("YQ=", out, sizeof(out), &len, &err), -1);
    CHECK_INT_EQ(chrun_auth_base64_decode("a b=", out, sizeof(out), &len, &err), -1);
    CHECK_INT_EQ(chrun_auth_base64_decode("dXNlcjpwYXNz", out, 4, &len, &err), -1);
}

static void test_config_auths(void)
{
    struct chrun_auth_source s;
    struct chrun_err err = CHRUN_ERR_INIT;
    const char *cfg = "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"dXNlcjpwYXNz\"},"
                      "\"localhost:5000\":{\"username\":\"u2\",\"password\":\"p:2\"},"
                      "\"http://reg.example/v2/\":{\"identitytoken\":\"tok\"}}}";
    CHECK_INT_EQ(chrun_auth_config_parse(cfg, strlen(cfg), "docker.io", &s, &err), 0);
    CHECK(s.found_inline);
    CHECK_STR_EQ(s.creds.username, "user");
    CHECK_STR_EQ(s.creds.secret, "pass");
    CHECK_STR_EQ(s.server_url, "https://index.docker.io/v1/");
    CHECK_STR_EQ(s.helper, "");
    CHECK_INT_EQ(chrun_auth_config_parse(cfg, strlen(cfg), "localhost:5000", &s, &err), 0);
    CHECK(s.found_inline);
    CHECK_STR_EQ(s.creds.username, "u2");
    CHECK_STR_EQ(s.creds.secret, "p:2");
    CHECK_STR_EQ(s.server_url, "localhost:5000");
    CHECK_INT_EQ(chrun_auth_config_parse(cfg, strlen(cfg), "reg.example", &s, &err), 0);
    CHECK(s.found_inline && s.creds.identity_token);
    CHECK_STR_EQ(s.creds.secret, "tok");
    CHECK_INT_EQ(chrun_auth_config_parse(cfg, strlen(cfg), "other:1", &s, &err), 0);
    CHECK(!s.found_inline);
}

static void test_config_helpers(void)
{
    struct chrun_auth_source s;
    struct chrun_err err = CHRUN_ERR_INIT;
    const char *cfg = "{\"credsStore\":\"desktop\",\"credHelpers\":{\"gcr.io\":\"gcloud\"},"
                      "\"auths\":{\"gcr.io\":{}}}";
    CHECK_INT_EQ(chrun_auth_config_parse(cfg, strlen(cfg), "gcr.io", &s, &err), 0);
    CHECK_STR_EQ(s.helper, "gcloud");
    CHECK(!s.found_inline);
    CHECK_INT_EQ(chrun_auth_config_parse(cfg, strlen(cfg), "quay.io", &s, &err), 0);
    CHECK_STR_EQ(s.helper, "desktop");
}

static void expect_bad_config(const char *cfg, const char *why)
{
    struct chrun_auth_source s;
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(chrun_auth_config_parse(cfg, strlen(cfg), "r.io", &s, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    if (strstr(err.msg, why) == NULL) {
        fprintf(stderr, "# '%s': '%s' lacks '%s'\n", cfg, err.msg, why);
        harness_failed_checks++;
    }
}

static void test_config_hostile(void)
{
    expect_bad_config("{", "invalid JSON");
    expect_bad_config("[]", "not a JSON object");
    expect_bad_config("{\"credsStore\":\"../../bin/sh\"}", "invalid credential helper name");
    expect_bad_config("{\"credsStore\":1}", "credsStore is not a string");
    expect_bad_config("{\"auths\":{\"r.io\":{\"auth\":\"!!!!\"}}}", "invalid base64");
    expect_bad_config("{\"auths\":{\"r.io\":{\"auth\":\"bm9jb2xvbg==\"}}}", "user:password");
    expect_bad_config("{\"auths\":{\"r.io\":{\"auth\":\"YQB6OmI=\"}}}", "user:password");
}

static void test_helper_reply(void)
{
    struct chrun_auth_creds c;
    struct chrun_err err = CHRUN_ERR_INIT;
    const char *r1 = "{\"ServerURL\":\"x\",\"Username\":\"bob\",\"Secret\":\"s3\"}";
    const char *r2 = "{\"Username\":\"<token>\",\"Secret\":\"refresh\"}";
    CHECK_INT_EQ(chrun_auth_helper_parse(r1, strlen(r1), &c, &err), 0);
    CHECK_STR_EQ(c.username, "bob");
    CHECK_STR_EQ(c.secret, "s3");
    CHECK(!c.identity_token);
    CHECK_INT_EQ(chrun_auth_helper_parse(r2, strlen(r2), &c, &err), 0);
    CHECK(c.identity_token);
    CHECK_INT_EQ(chrun_auth_helper_parse("{}", 2, &c, &err), -1);
    CHECK_INT_EQ(chrun_auth_helper_parse("no", 2, &c, &err), -1);
}

static void test_token_reply_and_url(void)
{
    struct chrun_auth_challenge c = {.scheme = CHRUN_AUTH_BEARER};
    struct chrun_err err = CHRUN_ERR_INIT;
    char *s = NULL;
    const char *ok = "{\"token\":\"abc.def\",\"expires_in\":300}";
    const char *ok2 = "{\"access_token\":\"xyz\"}";
    const char *inj = "{\"token\":\"abc\\r\\nX-Evil: 1\"}";
    CHECK_INT_EQ(chrun_auth_token_parse(ok, strlen(ok), &s, &err), 0);
    CHECK_STR_EQ(s, "abc.def");
    free(s);
    CHECK_INT_EQ(chrun_auth_token_parse(ok2, strlen(ok2), &s, &err), 0);
    CHECK_STR_EQ(s, "xyz");
    free(s);
    CHECK_INT_EQ(chrun_auth_token_parse(inj, strlen(inj), &s, &err), -1);
    CHECK_INT_EQ(chrun_auth_token_parse("{\"token\":\"\"}", 12, &s, &err), -1);
    CHECK_INT_EQ(chrun_auth_token_parse("nope", 4, &s, &err), -1);

    strcpy(c.realm, "https://auth.example/token");
    strcpy(c.service, "reg istry");
    CHECK_INT_EQ(chrun_auth_token_url(&c, "repository:a/b:pull", &s, &err), 0);
    CHECK_STR_EQ(s, "https://auth.example/token?service=reg%20istry&scope=repository%3Aa%2Fb%3Apull");
    free(s);
    /* several scopes: one scope= each, as docker sends them */
    CHECK_INT_EQ(chrun_auth_token_url(&c, "repository:a:pull,push repository:b:pull", &s, &err),
                 0);
    CHECK_STR_EQ(s, "https://auth.example/token?service=reg%20istry"
                    "&scope=repository%3Aa%3Apull%2Cpush&scope=repository%3Ab%3Apull");
    free(s);
    strcpy(c.realm, "https://auth.example/token?x=1");
    c.service[0] = '\0';
    CHECK_INT_EQ(chrun_auth_token_url(&c, "s", &s, &err), 0);
    CHECK_STR_EQ(s, "https://auth.example/token?x=1&scope=s");
    free(s);
    strcpy(c.realm, "file:///etc/passwd");
    CHECK_INT_EQ(chrun_auth_token_url(&c, "s", &s, &err), -1);
}

int main(void)
{
    RUN_TEST(test_challenge_bearer);
    RUN_TEST(test_challenge_basic_and_multi);
    RUN_TEST(test_challenge_hostile);
    RUN_TEST(test_base64);
    RUN_TEST(test_config_auths);
    RUN_TEST(test_config_helpers);
    RUN_TEST(test_config_hostile);
    RUN_TEST(test_helper_reply);
    RUN_TEST(test_token_reply_and_url);
    return harness_done();
}
