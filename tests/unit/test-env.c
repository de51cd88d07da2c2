/* The process environment: image Env, -e overrides, defaults. */
#include "harness.h"

#include "chrun/env.h"

static void test_env_build(void)
{
    const char *image[] = {"PATH=/bin", "A=1", "B=2", "A=3", "EMPTY="};
    const char *over[] = {"B=override", "C=new", "FROM_HOST", "NOT_IN_HOST", "EMPTY"};
    struct chrun_err err = CHRUN_ERR_INIT;
    char **env;

    setenv("FROM_HOST", "host value", 1);
    unsetenv("NOT_IN_HOST");
    unsetenv("EMPTY");
    env = chrun_env_build(image, 5, over, 5, "box", "/root", &err);
    CHECK(env != NULL);
    if (env == NULL)
        return;
    CHECK_STR_EQ(env[0], "PATH=/bin");
    CHECK_STR_EQ(env[1], "A=3");
    CHECK_STR_EQ(env[2], "B=override");
    CHECK_STR_EQ(env[3], "C=new");
    CHECK_STR_EQ(env[4], "FROM_HOST=host value");
    CHECK_STR_EQ(env[5], "HOSTNAME=box");
    CHECK_STR_EQ(env[6], "HOME=/root");
    CHECK(env[7] == NULL);
    CHECK(chrun_env_get(env, "EMPTY") == NULL); /* bare K unset here removes it */
    CHECK_STR_EQ(chrun_env_get(env, "A"), "3");
    chrun_env_free(env);
    unsetenv("FROM_HOST");

    env = chrun_env_build(NULL, 0, NULL, 0, NULL, NULL, &err);
    CHECK(env != NULL);
    if (env != NULL) {
        CHECK_STR_EQ(env[0], "PATH=" CHRUN_RUNTIME_DEFAULT_PATH);
        CHECK(env[1] == NULL);
    }
    chrun_env_free(env);

    {
        const char *img[] = {"HOME=/custom", "HOSTNAME=img"};
        env = chrun_env_build(img, 2, NULL, 0, "box", "/root", &err);
        CHECK_STR_EQ(chrun_env_get(env, "HOME"), "/custom");
        CHECK_STR_EQ(chrun_env_get(env, "HOSTNAME"), "img");
        chrun_env_free(env);
    }
    {
        const char *bad[] = {"NOEQUALS"};
        CHECK(chrun_env_build(bad, 1, NULL, 0, NULL, NULL, &err) == NULL);
        CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
        CHECK(strstr(err.msg, "NOEQUALS") != NULL);
    }
    {
        const char *bad[] = {"=x"};
        CHECK(chrun_env_build(NULL, 0, bad, 1, NULL, NULL, &err) == NULL);
    }
}

int main(void)
{
    RUN_TEST(test_env_build);
    return harness_done();
}
