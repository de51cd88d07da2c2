/* The runtime's pure parsers: -v and -u specs, passwd/group lookups, env merge. */
#include "harness.h"

#include "chrun/runtime.h"

static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "# a comment\n"
                             "broken line without fields\n"
                             "app:x:1000:1001:App:/home/app:/bin/sh\n"
                             "nohome:x:1002:1002::relative:/bin/sh\n"
                             "redis:x:999:999::/var/lib/redis:/usr/sbin/nologin";
static const char group[] = "root:x:0:\n"
                            "app:x:1001:\n"
                            "extra:x:2000:nobody,app\n"
                            "more:x:2001:app\n"
                            "dup:x:2000:app\n"
                            "bad:x:notanumber:app\n"
                            "redis:x:999:";

static void test_volume_parse(void)
{
    struct chrun_volume v;
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(chrun_volume_parse(&v, "/data:/mnt/data", &err), 0);
    CHECK_STR_EQ(v.host, "/data");
    CHECK_STR_EQ(v.ctr, "/mnt/data");
    CHECK(!v.ro);
    chrun_volume_release(&v);
    CHECK_INT_EQ(chrun_volume_parse(&v, "rel/dir:/x:ro", &err), 0);
    CHECK_STR_EQ(v.host, "rel/dir");
    CHECK(v.ro);
    chrun_volume_release(&v);
    CHECK_INT_EQ(chrun_volume_parse(&v, "/a:/b:rw", &err), 0);
    CHECK(!v.ro);
    chrun_volume_release(&v);
    CHECK_INT_EQ(chrun_volume_parse(&v, "/a", &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_USAGE);
    CHECK_INT_EQ(chrun_volume_parse(&v, "/a:rel", &err), -1);
    CHECK(strstr(err.msg, "absolute") != NULL);
    CHECK_INT_EQ(chrun_volume_parse(&v, ":/b", &err), -1);
    CHECK_INT_EQ(chrun_volume_parse(&v, "/a:/b:rx", &err), -1);
    CHECK(strstr(err.msg, "'rx'") != NULL);
    CHECK_INT_EQ(chrun_volume_parse(&v, "/a:/b:ro:x", &err), -1);
    CHECK(v.host == NULL && v.ctr == NULL);
    chrun_volume_release(&v);
}

static void test_user_spec_parse(void)
{
    struct chrun_user_spec s;
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(chrun_user_spec_parse(&s, "app", &err), 0);
    CHECK_STR_EQ(s.user, "app");
    CHECK_STR_EQ(s.group, "");
    CHECK_INT_EQ(chrun_user_spec_parse(&s, "1000:2000", &err), 0);
    CHECK_STR_EQ(s.user, "1000");
    CHECK_STR_EQ(s.group, "2000");
    CHECK_INT_EQ(chrun_user_spec_parse(&s, "", &err), -1);
    CHECK_INT_EQ(chrun_user_spec_parse(&s, ":g", &err), -1);
    CHECK_INT_EQ(chrun_user_spec_parse(&s, "u:", &err), -1);
    CHECK_INT_EQ(chrun_user_spec_parse(&s, "u:g:h", &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_USAGE);
}

static struct chrun_exec_user resolve(const char *spec_text, int want_rc)
{
    struct chrun_user_spec spec;
    struct chrun_exec_user u;
    struct chrun_err err = CHRUN_ERR_INIT;
    memset(&u, 0, sizeof(u));
    CHECK_INT_EQ(chrun_user_spec_parse(&spec, spec_text, &err), 0);
    CHECK_INT_EQ(chrun_exec_user_resolve(&u, &spec, passwd, group, &err), want_rc);
    return u;
}

static void test_user_resolve(void)
{
    struct chrun_exec_user u;
    struct chrun_user_spec spec;
    struct chrun_err err = CHRUN_ERR_INIT;

    u = resolve("app", 0);
    CHECK_INT_EQ(u.uid, 1000);
    CHECK_INT_EQ(u.gid, 1001);
    CHECK_STR_EQ(u.home, "/home/app");
    CHECK_INT_EQ(u.n_groups, 2); /* extra, more; dup repeats 2000 */
    CHECK_INT_EQ(u.groups[0], 2000);
    CHECK_INT_EQ(u.groups[1], 2001);

    u = resolve("1000", 0); /* a number finds its entry too */
    CHECK_INT_EQ(u.gid, 1001);
    CHECK_INT_EQ(u.n_groups, 2);

    u = resolve("4242", 0); /* unknown number: gid 0, home / */
    CHECK_INT_EQ(u.uid, 4242);
    CHECK_INT_EQ(u.gid, 0);
    CHECK_STR_EQ(u.home, "/");
    CHECK_INT_EQ(u.n_groups, 0);

    u = resolve("app:redis", 0); /* explicit group: no supplementary ones */
    CHECK_INT_EQ(u.gid, 999);
    CHECK_INT_EQ(u.n_groups, 0);

    u = resolve("redis:77", 0);
    CHECK_INT_EQ(u.uid, 999);
    CHECK_INT_EQ(u.gid, 77);

    u = resolve("nohome", 0);
    CHECK_STR_EQ(u.home, "/");

    resolve("ghost", -1);
    resolve("app:ghosts", -1);
    resolve("99999999999", -1);

    CHECK_INT_EQ(chrun_user_spec_parse(&spec, "app", &err), 0);
    CHECK_INT_EQ(chrun_exec_user_resolve(&u, &spec, NULL, NULL, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NOTFOUND);
    CHECK(strstr(err.msg, "'app'") != NULL);
    CHECK_INT_EQ(chrun_user_spec_parse(&spec, "0", &err), 0);
    CHECK_INT_EQ(chrun_exec_user_resolve(&u, &spec, NULL, NULL, &err), 0);
    CHECK_INT_EQ(u.uid, 0);
}

static void test_user_home(void)
{
    char home[64];
    chrun_exec_user_home(passwd, 999, home, sizeof(home));
    CHECK_STR_EQ(home, "/var/lib/redis");
    chrun_exec_user_home(passwd, 5, home, sizeof(home));
    CHECK_STR_EQ(home, "/");
    chrun_exec_user_home(NULL, 0, home, sizeof(home));
    CHECK_STR_EQ(home, "/");
}

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

static void test_cli_options(void)
{
    struct chrun_exec_cli cli;
    struct chrun_err err = CHRUN_ERR_INIT;
    chrun_exec_cli_init(&cli, CHRUN_EXEC_REPLACE);
    CHECK_INT_EQ(chrun_exec_cli_option(&cli, 'e', "A=1", &err), 1);
    CHECK_INT_EQ(chrun_exec_cli_option(&cli, 'v', "/a:/b:ro", &err), 1);
    CHECK_INT_EQ(chrun_exec_cli_option(&cli, 'v', "/a", &err), -1);
    CHECK_INT_EQ(chrun_exec_cli_option(&cli, 'w', "rel", &err), -1);
    CHECK_INT_EQ(chrun_exec_cli_option(&cli, 'u', "a:b:c", &err), -1);
    CHECK_INT_EQ(chrun_exec_cli_option(&cli, CHRUN_EXEC_OPT_HOSTNAME, "h", &err), 1);
    CHECK_INT_EQ(chrun_exec_cli_option(&cli, CHRUN_EXEC_OPT_ISOLATE, NULL, &err), 1);
    CHECK_INT_EQ(chrun_exec_cli_option(&cli, 'x', NULL, &err), 0);
    CHECK_INT_EQ(cli.opts.n_env, 1);
    CHECK_INT_EQ(cli.opts.n_volumes, 1);
    CHECK_INT_EQ(cli.opts.ns, CHRUN_EXEC_NS_ALL);
    CHECK_STR_EQ(cli.opts.volumes[0].ctr, "/b");
    chrun_exec_cli_release(&cli);
}

int main(void)
{
    RUN_TEST(test_volume_parse);
    RUN_TEST(test_user_spec_parse);
    RUN_TEST(test_user_resolve);
    RUN_TEST(test_user_home);
    RUN_TEST(test_env_build);
    RUN_TEST(test_cli_options);
    return harness_done();
}
