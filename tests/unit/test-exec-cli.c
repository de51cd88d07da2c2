/* The command line shared by chrun-exec and `chrun run`. */
#include "harness.h"

#include "chrun/exec-cli.h"

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
    RUN_TEST(test_cli_options);
    return harness_done();
}
