/* Pure logic of the registry client: Retry-After, backoff, Content-Range,
 * origins for credentials on redirects, allowed URLs, mirror entries. */
#include "harness.h"

#include "chrun/registry.h"
#include "chrun/settings.h"

static void test_retry_after(void)
{
    time_t now = 1700000000;
    CHECK_INT_EQ(chrun_registry_retry_after("5", now), 5);
    CHECK_INT_EQ(chrun_registry_retry_after(" 0 ", now), 0);
    CHECK_INT_EQ(chrun_registry_retry_after("100000", now), CHRUN_RETRY_AFTER_MAX_S);
    CHECK_INT_EQ(chrun_registry_retry_after("99999999999999999999999", now), -1);
    CHECK_INT_EQ(chrun_registry_retry_after("-3", now), -1);
    CHECK_INT_EQ(chrun_registry_retry_after("5x", now), -1);
    CHECK_INT_EQ(chrun_registry_retry_after("", now), -1);
    /* 1700000000 = Tue, 14 Nov 2023 22:13:20 GMT */
    CHECK_INT_EQ(chrun_registry_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now), 10);
    CHECK_INT_EQ(chrun_registry_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now), 0);
    CHECK_INT_EQ(chrun_registry_retry_after("Wed, 15 Nov 2023 22:13:30 GMT", now),
                 CHRUN_RETRY_AFTER_MAX_S);
    CHECK_INT_EQ(chrun_registry_retry_after("garbage date", now), -1);
}

static void test_backoff(void)
{
    CHECK_INT_EQ(chrun_registry_backoff_ms(1), 250);
    CHECK_INT_EQ(chrun_registry_backoff_ms(2), 500);
    CHECK_INT_EQ(chrun_registry_backoff_ms(4), 2000);
    CHECK_INT_EQ(chrun_registry_backoff_ms(50), 8000);
}

static void test_content_range(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    uint64_t s, e;
    int64_t t;
    CHECK_INT_EQ(chrun_registry_parse_content_range("bytes 100-199/200", &s, &e, &t, &err), 0);
    CHECK_INT_EQ(s, 100);
    CHECK_INT_EQ(e, 199);
    CHECK_INT_EQ(t, 200);
    CHECK_INT_EQ(chrun_registry_parse_content_range("bytes 0-9/*", &s, &e, &t, &err), 0);
    CHECK_INT_EQ(t, -1);
    CHECK_INT_EQ(chrun_registry_parse_content_range("bytes 9-0/10", &s, &e, &t, &err), -1);
    CHECK_INT_EQ(chrun_registry_parse_content_range("bytes 0-10/10", &s, &e, &t, &err), -1);
    CHECK_INT_EQ(chrun_registry_parse_content_range("bytes */10", &s, &e, &t, &err), -1);
    CHECK_INT_EQ(chrun_registry_parse_content_range("bytes 0-1/2x", &s, &e, &t, &err), -1);
    CHECK_INT_EQ(chrun_registry_parse_content_range("items 0-1/2", &s, &e, &t, &err), -1);
}

static void test_same_origin(void)
{
    CHECK(chrun_registry_same_origin("https://r.io/v2/x", "https://r.io"));
    CHECK(chrun_registry_same_origin("https://R.IO:443/a", "https://r.io/b"));
    CHECK(chrun_registry_same_origin("http://127.0.0.1:5000/a", "http://127.0.0.1:5000"));
    CHECK(!chrun_registry_same_origin("http://127.0.0.1:5001/a", "http://127.0.0.1:5000"));
    CHECK(!chrun_registry_same_origin("http://localhost:5000/a", "http://127.0.0.1:5000"));
    CHECK(!chrun_registry_same_origin("http://r.io/a", "https://r.io"));
    CHECK(!chrun_registry_same_origin("https://r.io.evil.com/a", "https://r.io"));
    CHECK(!chrun_registry_same_origin("https://r.io@evil.com/a", "https://r.io"));
    CHECK(!chrun_registry_same_origin("not a url", "https://r.io"));
}

static void test_url_allowed(void)
{
    struct chrun_settings s;
    chrun_settings_init_defaults(&s);
    CHECK(chrun_registry_url_permitted("https://cdn.example/blob", NULL));
    CHECK(chrun_registry_url_permitted("http://127.0.0.1:5000/v2/", NULL));
    CHECK(chrun_registry_url_permitted("http://localhost/v2/", &s));
    CHECK(!chrun_registry_url_permitted("http://cdn.example/blob", &s));
    CHECK(!chrun_registry_url_permitted("ftp://127.0.0.1/x", NULL));
    CHECK(!chrun_registry_url_permitted("file:///etc/passwd", NULL));
    s.insecure_registries = "reg.lan:5000,other.lan";
    CHECK(chrun_registry_url_permitted("http://reg.lan:5000/v2/", &s));
    CHECK(chrun_registry_url_permitted("http://other.lan/v2/", &s));
    CHECK(!chrun_registry_url_permitted("http://reg.lan:5001/v2/", &s));
    CHECK(!chrun_registry_url_permitted("http://reg.lan:5000/v2/", NULL));
}

static void test_mirror_base(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    char base[512], host[300];
    CHECK_INT_EQ(chrun_registry_mirror_url("mirror.example", NULL, base, sizeof(base), host,
                                           sizeof(host), &err),
                 0);
    CHECK_STR_EQ(base, "https://mirror.example");
    CHECK_STR_EQ(host, "mirror.example");
    CHECK_INT_EQ(chrun_registry_mirror_url(" 127.0.0.1:5000 ", NULL, base, sizeof(base), host,
                                           sizeof(host), &err),
                 0);
    CHECK_STR_EQ(base, "http://127.0.0.1:5000");
    CHECK_INT_EQ(chrun_registry_mirror_url("https://m.example:8443/", NULL, base, sizeof(base), host,
                                           sizeof(host), &err),
                 0);
    CHECK_STR_EQ(base, "https://m.example:8443");
    CHECK_STR_EQ(host, "m.example:8443");
    CHECK_INT_EQ(chrun_registry_mirror_url("http://m.example", NULL, base, sizeof(base), host,
                                           sizeof(host), &err),
                 -1);
    CHECK_INT_EQ(chrun_registry_mirror_url("", NULL, base, sizeof(base), host, sizeof(host), &err),
                 -1);
    CHECK_INT_EQ(chrun_registry_mirror_url("ftp://x", NULL, base, sizeof(base), host,
                                           sizeof(host), &err),
                 -1);
}

static void test_platform_check(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(chrun_registry_platform_check(NULL, &err), 0);
    CHECK_INT_EQ(chrun_registry_platform_check("linux/amd64", &err), 0);
    CHECK_INT_EQ(chrun_registry_platform_check("linux/arm/v7", &err), 0);
    CHECK_INT_EQ(chrun_registry_platform_check("linux", &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_USAGE);
    CHECK_INT_EQ(chrun_registry_platform_check("linux/", &err), -1);
    CHECK_INT_EQ(chrun_registry_platform_check("/amd64", &err), -1);
    CHECK_INT_EQ(chrun_registry_platform_check("linux/arm/v7/x", &err), -1);
    CHECK_INT_EQ(chrun_registry_platform_check("linux/arm/", &err), -1);
}

int main(void)
{
    RUN_TEST(test_retry_after);
    RUN_TEST(test_backoff);
    RUN_TEST(test_content_range);
    RUN_TEST(test_same_origin);
    RUN_TEST(test_url_allowed);
    RUN_TEST(test_mirror_base);
    RUN_TEST(test_platform_check);
    return harness_done();
}
