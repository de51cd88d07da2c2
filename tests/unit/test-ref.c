/* Reference parsing, checked against docker's documented normalization. */
#include "harness.h"

#include "chrun/ref.h"

static void expect_ref(const char *in, const char *full)
{
    struct chrun_ref r;
    struct chrun_err err = CHRUN_ERR_INIT;
    char buf[CHRUN_REF_STR_MAX];
    if (chrun_ref_parse(&r, in, &err) < 0) {
        fprintf(stderr, "# parse '%s' failed: %s\n", in, err.msg);
        harness_failed_checks++;
        return;
    }
    CHECK_STR_EQ(chrun_ref_format(&r, buf, sizeof(buf)), full);
}

static void expect_bad(const char *in, const char *why)
{
    struct chrun_ref r;
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(chrun_ref_parse(&r, in, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    if (strstr(err.msg, why) == NULL) {
        fprintf(stderr, "# '%s': message '%s' lacks '%s'\n", in, err.msg, why);
        harness_failed_checks++;
    }
}

#define D64 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_docker_hub_defaults(void)
{
    expect_ref("redis", "docker.io/library/redis:latest");
    expect_ref("redis:7", "docker.io/library/redis:7");
    expect_ref("user/app", "docker.io/user/app:latest");
    expect_ref("docker.io/redis", "docker.io/library/redis:latest");
    expect_ref("index.docker.io/library/redis:6", "docker.io/library/redis:6");
    expect_ref("docker.io/library/redis:latest", "docker.io/library/redis:latest");
}

static void test_registry_hosts(void)
{
    expect_ref("localhost/app", "localhost/app:latest");
    expect_ref("localhost:5000/app:1", "localhost:5000/app:1");
    expect_ref("127.0.0.1:5000/a/b/c:x", "127.0.0.1:5000/a/b/c:x");
    expect_ref("quay.io/coreos/etcd", "quay.io/coreos/etcd:latest");
    expect_ref("Registry.Example/app", "Registry.Example/app:latest");
    expect_ref("[::1]:5000/app", "[::1]:5000/app:latest");
    /* no dot, colon or localhost: a docker hub namespace */
    expect_ref("foo/bar/baz", "docker.io/foo/bar/baz:latest");
}

static void test_digests(void)
{
    expect_ref("redis@" D64, "docker.io/library/redis@" D64);
    expect_ref("redis:7@" D64, "docker.io/library/redis:7@" D64);
    expect_ref("localhost:5000/x@" D64, "localhost:5000/x@" D64);
}

static void test_separators(void)
{
    expect_ref("a_b/c__d/e-f/g---h/i.j", "docker.io/a_b/c__d/e-f/g---h/i.j:latest");
    expect_ref("x:v1.2_rc-3", "docker.io/library/x:v1.2_rc-3");
}

static void test_rejects(void)
{
    expect_bad("", "empty");
    expect_bad("Redis", "lowercase");
    expect_bad("user/App", "lowercase");
    expect_bad("redis:", "invalid tag");
    expect_bad("redis:-x", "invalid tag");
    expect_bad("redis@sha256:abc", "invalid digest");
    expect_bad("redis@md5:0123", "invalid digest");
    expect_bad("a//b", "invalid repository name");
    expect_bad("a/b/", "invalid repository name");
    expect_bad("-a", "invalid repository name");
    expect_bad("a___b", "invalid repository name");
    expect_bad("a..b", "invalid repository name");
    expect_bad("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
               "64-byte hexadecimal");
    expect_bad("host:99999x/app", "invalid registry host");
    expect_bad("../../etc/passwd", "invalid registry host");
    expect_bad("a/../../etc", "invalid repository name");
}

static void test_long_names(void)
{
    char name[400];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    expect_bad(name, "too long");
    char tag[200] = "x:";
    memset(tag + 2, 't', 129);
    tag[131] = '\0';
    expect_bad(tag, "invalid tag");
}

static void test_registry_host(void)
{
    struct chrun_ref r;
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(chrun_ref_parse(&r, "redis", &err), 0);
    CHECK_STR_EQ(chrun_ref_registry_host(&r), "registry-1.docker.io");
    CHECK_INT_EQ(chrun_ref_parse(&r, "localhost:5000/x", &err), 0);
    CHECK_STR_EQ(chrun_ref_registry_host(&r), "localhost:5000");
}

int main(void)
{
    RUN_TEST(test_docker_hub_defaults);
    RUN_TEST(test_registry_hosts);
    RUN_TEST(test_digests);
    RUN_TEST(test_separators);
    RUN_TEST(test_rejects);
    RUN_TEST(test_long_names);
    RUN_TEST(test_registry_host);
    return harness_done();
}
