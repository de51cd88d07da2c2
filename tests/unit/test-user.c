/* -u specs and their resolution against an image's passwd and group. */
#include "harness.h"

#include "chrun/user.h"

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

int main(void)
{
    RUN_TEST(test_user_spec_parse);
    RUN_TEST(test_user_resolve);
    RUN_TEST(test_user_home);
    return harness_done();
}
