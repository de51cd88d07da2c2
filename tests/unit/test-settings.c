/* The settings struct: defaults, the one environment reader (bad numbers,
 * overflow, empty values, each error naming its variable), and which hosts
 * may be spoken to in plain HTTP. */
#include "harness.h"

#include <errno.h>

#include "chrun/settings.h"

static const char *const vars[] = {
    "CHRUN_STALL_TIMEOUT",    "CHRUN_CONNECT_TIMEOUT",  "CHRUN_REQUEST_TIMEOUT",
    "CHRUN_BLOB_STALL_LIMIT", "CHRUN_FETCH_TIMEOUT",    "CHRUN_FETCH_MAX_BYTES",
    "CHRUN_PUSH_CHUNK_SIZE",  "CHRUN_REGISTRY_MIRRORS", "CHRUN_INSECURE_REGISTRIES",
    "CHRUN_SIGN_PASSWORD",    "DOCKER_CONFIG",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    setenv("HOME", "/home/u", 1);
}

static void test_defaults(void)
{
    struct chrun_settings s;
    struct chrun_err err = CHRUN_ERR_INIT;
    clear_env();
    CHECK_INT_EQ(chrun_settings_from_env(&s, &err), 0);
    CHECK_INT_EQ(s.stall_timeout_s, CHRUN_SETTINGS_STALL_TIMEOUT_S);
    CHECK_INT_EQ(s.connect_timeout_s, CHRUN_SETTINGS_CONNECT_TIMEOUT_S);
    CHECK_INT_EQ(s.request_timeout_s, CHRUN_SETTINGS_REQUEST_TIMEOUT_S);
    CHECK_INT_EQ(s.blob_stall_limit_s, CHRUN_SETTINGS_BLOB_STALL_LIMIT_S);
    CHECK_INT_EQ(s.fetch_timeout_s, CHRUN_SETTINGS_FETCH_TIMEOUT_S);
    CHECK(s.fetch_max_bytes == CHRUN_SETTINGS_FETCH_MAX_BYTES);
    CHECK(s.push_chunk_bytes == CHRUN_SETTINGS_PUSH_CHUNK_BYTES);
    CHECK(s.mirrors == NULL && s.insecure_registries == NULL && s.sign_password == NULL);
    CHECK_STR_EQ(s.docker_config_dir, "/home/u/.docker");
    CHECK_INT_EQ(chrun_settings_or_defaults(NULL)->stall_timeout_s, CHRUN_SETTINGS_STALL_TIMEOUT_S);
    CHECK(chrun_settings_or_defaults(&s) == &s);
    unsetenv("HOME");
    CHECK_INT_EQ(chrun_settings_from_env(&s, &err), 0);
    CHECK_STR_EQ(s.docker_config_dir, "");
}

static void test_values(void)
{
    struct chrun_settings s;
    struct chrun_err err = CHRUN_ERR_INIT;
    clear_env();
    setenv("CHRUN_STALL_TIMEOUT", "2", 1);
    setenv("CHRUN_CONNECT_TIMEOUT", "86399", 1);
    setenv("CHRUN_REQUEST_TIMEOUT", "", 1); /* empty: the default, as if unset */
    setenv("CHRUN_BLOB_STALL_LIMIT", "5", 1);
    setenv("CHRUN_FETCH_TIMEOUT", "7", 1);
    setenv("CHRUN_FETCH_MAX_BYTES", "18446744073709551615", 1);
    setenv("CHRUN_PUSH_CHUNK_SIZE", "256K", 1);
    setenv("CHRUN_REGISTRY_MIRRORS", "m.example,127.0.0.1:5000", 1);
    setenv("CHRUN_INSECURE_REGISTRIES", "", 1);
    setenv("CHRUN_SIGN_PASSWORD", "", 1); /* an empty password is still one */
    setenv("DOCKER_CONFIG", "/etc/dc", 1);
    CHECK_INT_EQ(chrun_settings_from_env(&s, &err), 0);
    CHECK_INT_EQ(s.stall_timeout_s, 2);
    CHECK_INT_EQ(s.connect_timeout_s, 86399);
    CHECK_INT_EQ(s.request_timeout_s, CHRUN_SETTINGS_REQUEST_TIMEOUT_S);
    CHECK_INT_EQ(s.blob_stall_limit_s, 5);
    CHECK_INT_EQ(s.fetch_timeout_s, 7);
    CHECK(s.fetch_max_bytes == UINT64_MAX);
    CHECK(s.push_chunk_bytes == 256 * 1024);
    CHECK_STR_EQ(s.mirrors, "m.example,127.0.0.1:5000");
    CHECK(s.insecure_registries == NULL);
    CHECK_STR_EQ(s.sign_password, "");
    CHECK_STR_EQ(s.docker_config_dir, "/etc/dc");
    clear_env();
}

/* VAR=VALUE must fail, naming VAR and VALUE. */
static void expect_refused(const char *var, const char *value, const char *why)
{
    struct chrun_settings s;
    struct chrun_err err = CHRUN_ERR_INIT;
    char want[256];
    clear_env();
    setenv(var, value, 1);
    CHECK_INT_EQ(chrun_settings_from_env(&s, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    snprintf(want, sizeof(want), "%s: invalid ", var);
    if (strncmp(err.msg, want, strlen(want)) != 0 || strstr(err.msg, value) == NULL ||
        strstr(err.msg, why) == NULL) {
        fprintf(stderr, "# %s='%s': '%s'\n", var, value, err.msg);
        harness_failed_checks++;
    }
    clear_env();
}

static void test_bad_values(void)
{
    expect_refused("CHRUN_STALL_TIMEOUT", "x", "want 1 to 86399 seconds");
    expect_refused("CHRUN_STALL_TIMEOUT", "0", "want 1 to 86399 seconds");
    expect_refused("CHRUN_CONNECT_TIMEOUT", "-5", "want 1 to 86399 seconds");
    expect_refused("CHRUN_CONNECT_TIMEOUT", " 5", "want 1 to 86399 seconds");
    expect_refused("CHRUN_REQUEST_TIMEOUT", "86400", "want 1 to 86399 seconds");
    expect_refused("CHRUN_REQUEST_TIMEOUT", "10s", "want 1 to 86399 seconds");
    expect_refused("CHRUN_BLOB_STALL_LIMIT", "99999999999999999999999", "want 1 to 86399");
    expect_refused("CHRUN_FETCH_TIMEOUT", "+3", "want a positive number");
    expect_refused("CHRUN_FETCH_MAX_BYTES", "18446744073709551616", "want a positive number");
    expect_refused("CHRUN_FETCH_MAX_BYTES", "0", "want a positive number");
    expect_refused("CHRUN_PUSH_CHUNK_SIZE", "lots", "want a number of bytes");
    expect_refused("CHRUN_PUSH_CHUNK_SIZE", "17179869184G", "want a number of bytes");
}

static void test_docker_config_too_long(void)
{
    struct chrun_settings s;
    struct chrun_err err = CHRUN_ERR_INIT;
    char *dir = malloc(PATH_MAX + 2);
    CHECK(dir != NULL);
    if (dir == NULL)
        return;
    clear_env();
    memset(dir, 'd', PATH_MAX + 1);
    dir[PATH_MAX + 1] = '\0';
    setenv("DOCKER_CONFIG", dir, 1);
    CHECK_INT_EQ(chrun_settings_from_env(&s, &err), -1);
    CHECK_INT_EQ(err.errnum, ENAMETOOLONG);
    CHECK(strstr(err.msg, "DOCKER_CONFIG") != NULL);
    free(dir);
    clear_env();
}

static void test_insecure_hosts(void)
{
    struct chrun_settings s;
    chrun_settings_init_defaults(&s);
    CHECK(chrun_settings_host_insecure(NULL, "localhost:5000"));
    CHECK(chrun_settings_host_insecure(&s, "127.0.0.1:8080"));
    CHECK(chrun_settings_host_insecure(&s, "[::1]:5000"));
    CHECK(!chrun_settings_host_insecure(&s, "registry-1.docker.io"));
    CHECK(!chrun_settings_host_insecure(&s, "127.example.com"));
    CHECK(!chrun_settings_host_insecure(&s, "[::2]:5000"));
    s.insecure_registries = "reg.lan:5000, other.lan";
    CHECK(chrun_settings_host_insecure(&s, "reg.lan:5000"));
    CHECK(chrun_settings_host_insecure(&s, "other.lan"));
    CHECK(!chrun_settings_host_insecure(&s, "reg.lan"));
    CHECK(!chrun_settings_host_insecure(NULL, "reg.lan:5000"));
}

int main(void)
{
    RUN_TEST(test_defaults);
    RUN_TEST(test_values);
    RUN_TEST(test_bad_values);
    RUN_TEST(test_docker_config_too_long);
    RUN_TEST(test_insecure_hosts);
    return harness_done();
}
