#include "chrun/exec-cli.h"

#include <limits.h>
#include <string.h>

#include "chrun/user.h"
#include "util.h"

void chrun_exec_cli_init(struct chrun_exec_cli *cli, unsigned flags)
{
    memset(cli, 0, sizeof(*cli));
    cli->opts.flags = flags;
    cli->opts.env = cli->env;
    cli->opts.volumes = cli->volumes;
}

void chrun_exec_cli_release(struct chrun_exec_cli *cli)
{
    for (size_t i = 0; i < cli->opts.n_volumes; i++)
        chrun_volume_release(&cli->volumes[i]);
    cli->opts.n_volumes = 0;
}

int chrun_exec_cli_option(struct chrun_exec_cli *cli, int c, const char *arg,
                          struct chrun_err *err)
{
    struct chrun_exec_opts *o = &cli->opts;
    switch (c) {
    case 'e':
        if (arg[0] == '\0' || arg[0] == '=')
            return chrun_err_set(err, CHRUN_E_USAGE, "-e '%s': empty variable name", arg);
        if (o->n_env >= ARRAY_SIZE(cli->env))
            return chrun_err_set(err, CHRUN_E_USAGE, "too many -e options");
        cli->env[o->n_env++] = arg;
        return 1;
    case 'u': {
        struct chrun_user_spec spec;
        if (chrun_user_spec_parse(&spec, arg, err) < 0)
            return -1;
        o->user = arg;
        return 1;
    }
    case 'w':
        if (arg[0] != '/')
            return chrun_err_set(err, CHRUN_E_USAGE, "-w '%s': must be an absolute path", arg);
        o->cwd = arg;
        return 1;
    case 'v':
        if (o->n_volumes >= ARRAY_SIZE(cli->volumes))
            return chrun_err_set(err, CHRUN_E_USAGE, "too many -v options");
        if (chrun_volume_parse(&cli->volumes[o->n_volumes], arg, err) < 0)
            return -1;
        o->n_volumes++;
        return 1;
    case CHRUN_EXEC_OPT_READ_ONLY: o->flags |= CHRUN_EXEC_READ_ONLY; return 1;
    case CHRUN_EXEC_OPT_NO_MOUNTS: o->flags |= CHRUN_EXEC_NO_MOUNTS; return 1;
    case CHRUN_EXEC_OPT_HOSTNAME:
        if (arg[0] == '\0' || strlen(arg) > HOST_NAME_MAX)
            return chrun_err_set(err, CHRUN_E_USAGE, "--hostname '%s': bad length", arg);
        o->hostname = arg;
        o->ns |= CHRUN_EXEC_NS_UTS;
        return 1;
    case CHRUN_EXEC_OPT_PID: o->ns |= CHRUN_EXEC_NS_PID; return 1;
    case CHRUN_EXEC_OPT_NET: o->ns |= CHRUN_EXEC_NS_NET; return 1;
    case CHRUN_EXEC_OPT_IPC: o->ns |= CHRUN_EXEC_NS_IPC; return 1;
    case CHRUN_EXEC_OPT_UTS: o->ns |= CHRUN_EXEC_NS_UTS; return 1;
    case CHRUN_EXEC_OPT_ISOLATE: o->ns |= CHRUN_EXEC_NS_ALL; return 1;
    default: return 0;
    }
}
