/* chrun: the front door. `chrun SUB ARGS` runs chrun-SUB (next to this program
 * first, then $PATH), as git runs git-SUB; `chrun run` chains unpack and exec
 * in-process, and runs chrun-pull first when the store lacks the image. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chrun/bundle.h"
#include "chrun/fs.h"
#include "chrun/io.h"
#include "chrun/log.h"
#include "chrun/runtime.h"
#include "chrun/store.h"
#include "chrun/tool.h"
#include "chrun/userns.h"
#include "util.h"

enum { OPT_RM = CHRUN_OPT_TOOL_BASE, OPT_PLATFORM };

static const char *const subcommands[][2] = {
    {"pull", "fetch an image from a registry into the store"},
    {"load", "import a docker save archive or an OCI layout"},
    {"unpack", "unpack an image into a runnable bundle"},
    {"exec", "chroot into a bundle and run its process"},
    {"run", "pull if missing, unpack (cached) and exec an image"},
    {"build", "build an image from a Dockerfile, offline"},
    {"save", "write images as a docker or OCI archive"},
    {"export", "write an image's or a bundle's root filesystem as one tar"},
    {"push", "upload an image to a registry"},
    {"sign", "sign an image as cosign does (key-based)"},
    {"verify", "check an image's cosign signatures offline"},
    {"images", "list named images"},
    {"inspect", "show an image's manifest and config"},
    {"tag", "name an image"},
    {"rmi", "remove image names"},
    {"gc", "remove blobs and bundles nothing uses"},
};

static int usage(FILE *out, int status)
{
    fprintf(out, "Usage: chrun [--help] [--version] COMMAND [ARGS...]\n"
                 "       chrun run [--rm] [-p OS/ARCH] [-q] [EXEC OPTIONS] IMAGE [CMD [ARG...]]\n\n"
                 "Commands (each is also the program chrun-COMMAND):\n");
    for (size_t i = 0; i < ARRAY_SIZE(subcommands); i++)
        fprintf(out, "  %-8s %s\n", subcommands[i][0], subcommands[i][1]);
    fprintf(out, "\n'chrun COMMAND --help' describes each one.\n");
    return status;
}

static int run_usage(FILE *out, int status)
{
    fprintf(out, "Usage: chrun run [OPTIONS] IMAGE [CMD [ARG...]]\n"
                 "Pull IMAGE if the store lacks it, unpack it (the cached bundle, or a\n"
                 "throwaway one with --rm) and run it as chrun-exec does. Exits with the\n"
                 "command's status.\n\n"
                 "      --rm              unpack into a temporary bundle, removed afterwards\n"
                 "  -p, --platform P      platform to pull and unpack (default: host)\n"
                 "  -q, --quiet           no progress bars or informational messages\n" CHRUN_EXEC_OPTIONS_HELP
                 "  -h, --help            show this help\n");
    return status;
}

/* Exec chrun-SUB from our own directory, then from $PATH (ARGV[0] is
 * replaced). Returns only on failure, with errno set. */
static void exec_sibling(const char *sub, char **argv)
{
    char self[PATH_MAX], path[PATH_MAX + 160], name[128];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    if (strchr(sub, '/') != NULL || snprintf(name, sizeof(name), "chrun-%s", sub) >= (int) sizeof(name)) {
        errno = ENOENT;
        return;
    }
    argv[0] = name;
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            if (snprintf(path, sizeof(path), "%s/%s", self, name) < (int) sizeof(path))
                execv(path, argv);
        }
    }
    execvp(name, argv);
}

static int dispatch(const char *sub, char **argv)
{
    exec_sibling(sub, argv);
    if (errno == ENOENT)
        return chrun_tool_usage_error("unknown command '%s'", sub);
    chrun_log_error("cannot run 'chrun-%s': %s", sub, strerror(errno));
    return 1;
}

/* Pull IMAGE with chrun-pull and read the manifest digest it prints. The
 * network client (libcurl and its thirty libraries) then loads only when a
 * pull is needed, not on every cached `chrun run`. Returns 0; or -1 with ERR
 * set, or with ERR's code CHRUN_E_OK when chrun-pull already said why. */
static int pull_with_sibling(const char *image, const char *platform, struct chrun_digest *ret,
                             struct chrun_err *err)
{
    char *argv[8];
    char line[CHRUN_DIGEST_STR_MAX + 2] = "";
    int fds[2], status, argc = 1;
    ssize_t n;
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return chrun_err_sys(err, errno, "pull '%s'", image);
    if (chrun_log_quiet())
        argv[argc++] = (char *) "-q";
    if (platform != NULL) {
        argv[argc++] = (char *) "--platform";
        argv[argc++] = (char *) platform;
    }
    argv[argc++] = (char *) "--";
    argv[argc++] = (char *) image;
    argv[argc] = NULL;
    pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return chrun_err_sys(err, e, "pull '%s'", image);
    }
    if (pid == 0) {
        if (dup2(fds[1], STDOUT_FILENO) < 0)
            _exit(127);
        exec_sibling("pull", argv);
        _exit(127);
    }
    close(fds[1]);
    n = chrun_io_read_full(fds[0], line, sizeof(line) - 1, err);
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status))
        return chrun_err_set(err, CHRUN_E_SYS, "pull '%s': chrun-pull died of signal %d", image,
                             WTERMSIG(status));
    if (WEXITSTATUS(status) == 127)
        return chrun_err_set(err, CHRUN_E_SYS, "pull '%s': cannot run chrun-pull", image);
    if (WEXITSTATUS(status) != 0) {
        chrun_err_clear(err); /* chrun-pull printed its own error line */
        return -1;
    }
    if (n > 0 && line[n - 1] == '\n')
        line[n - 1] = '\0';
    if (n < 0 || chrun_digest_parse(ret, line, err) < 0)
        return chrun_err_prefix(err, "pull '%s'", image);
    return 0;
}

/* The image's bundle: pull IMAGE when the store lacks it, then unpack into
 * the cached bundle (BUNDLE NULL) or into BUNDLE. */
static int prepare_bundle(const char *image, const char *platform, const char *bundle,
                          char *ret_path, size_t size, struct chrun_err *err)
{
    struct chrun_unpack_opts unpack = CHRUN_UNPACK_OPTS_INIT;
    struct chrun_store_image img;
    struct chrun_digest digest;
    struct chrun_store *st = chrun_store_open(NULL, CHRUN_STORE_CREATE, err);
    int rc = -1;

    if (st == NULL)
        return -1;
    if (chrun_store_resolve(st, image, &img, err) < 0) {
        if (err->code != CHRUN_E_NOTFOUND)
            goto out;
        chrun_err_clear(err);
        if (pull_with_sibling(image, platform, &digest, err) < 0)
            goto out;
        image = digest.str;
    }
    unpack.platform = platform;
    rc = chrun_bundle_unpack(st, image, bundle, &unpack, ret_path, size, err);
out:
    chrun_store_close(st);
    return rc;
}

/* --rm: a throwaway bundle in a fresh directory outside the store, so gc never
 * races with it. */
static int make_throwaway_dir(char *ret_dir, size_t size, struct chrun_err *err)
{
    const char *tmp = getenv("TMPDIR");
    char prefix[PATH_MAX];
    if (snprintf(prefix, sizeof(prefix), "%s/chrun-run.", tmp && *tmp ? tmp : "/tmp") >=
        (int) sizeof(prefix))
        return chrun_err_sys(err, ENAMETOOLONG, "temporary bundle directory");
    return chrun_fs_mkdtemp_at(AT_FDCWD, prefix, ret_dir, size, err);
}

static int cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        CHRUN_EXEC_LONGOPTS,
        {"rm", no_argument, NULL, OPT_RM},
        {"platform", required_argument, NULL, 'p'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_exec_cli cli;
    char bundle[PATH_MAX], tmpdir[PATH_MAX] = "", target[PATH_MAX + 16];
    const char *platform = NULL;
    bool rm = false;
    int c, rc, status = 1;

    chrun_log_set_prog("chrun run");
    optind = 1;
    chrun_exec_cli_init(&cli, 0);
    while ((c = getopt_long(argc, argv, "+" CHRUN_EXEC_SHORTOPTS "p:qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_RM: rm = true; break;
        case 'p': platform = optarg; break;
        case 'q': chrun_log_set_quiet(true); break;
        case 'h': chrun_exec_cli_release(&cli); return run_usage(stdout, 0);
        default:
            rc = chrun_exec_cli_option(&cli, c, optarg, &err);
            if (rc == 1)
                break;
            chrun_exec_cli_release(&cli);
            return rc < 0 ? chrun_tool_usage_error("%s", err.msg) : chrun_tool_bad_option(argv);
        }
    }
    if (optind >= argc) {
        chrun_exec_cli_release(&cli);
        return chrun_tool_usage_error("expected IMAGE");
    }
    if (rm && make_throwaway_dir(tmpdir, sizeof(tmpdir), &err) < 0)
        goto fail;
    snprintf(target, sizeof(target), "%s/bundle", tmpdir);
    if (prepare_bundle(argv[optind], platform, rm ? target : NULL, bundle, sizeof(bundle), &err) < 0)
        goto fail;
    /* Without --rm nothing is left to do afterwards: become the command. */
    if (!rm)
        cli.opts.flags |= CHRUN_EXEC_REPLACE;
    rc = chrun_runtime_exec(bundle, &cli.opts, argv + optind + 1, &status, &err);
    if (rc < 0 && err.code == CHRUN_E_USAGE)
        status = chrun_tool_usage_error("%s", err.msg);
    else if (rc < 0)
        chrun_tool_fail(&err);
    goto out;
fail:
    status = err.code == CHRUN_E_OK ? 1 : chrun_tool_fail(&err);
out:
    chrun_exec_cli_release(&cli);
    if (tmpdir[0] != '\0' && chrun_userns_rm_rf_at(AT_FDCWD, tmpdir, &err) < 0)
        chrun_tool_fail(&err);
    return status;
}

int main(int argc, char **argv)
{
    chrun_tool_init("chrun");
    if (argc < 2)
        return usage(stderr, 2);
    if (streq(argv[1], "-h") || streq(argv[1], "--help") || streq(argv[1], "help"))
        return usage(stdout, 0);
    if (streq(argv[1], "--version"))
        return chrun_tool_version();
    if (argv[1][0] == '-')
        return chrun_tool_usage_error("unknown option '%s'", argv[1]);
    if (streq(argv[1], "run"))
        return cmd_run(argc - 1, argv + 1);
    return dispatch(argv[1], argv + 1);
}
