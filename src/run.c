#include "chrun/run.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chrun/bundle.h"
#include "chrun/fs.h"
#include "chrun/io.h"
#include "chrun/log.h"
#include "chrun/process.h"
#include "chrun/store.h"
#include "chrun/tree.h"
#include "chrun/userns.h"
#include "cleanup.h"
#include "util.h"

static void store_close_fn(struct chrun_store **st)
{
    if (*st != NULL)
        chrun_store_close(*st);
}
#define cleanup_store __attribute__((cleanup(store_close_fn)))

/* The program chrun-SUB: beside our own executable when it is there (as
 * git runs git-SUB from its exec path), else the bare name for a $PATH
 * search. Written to BUF. Returns 0, or -1 with errno ENOENT for a SUB that
 * is no program name. */
static int sibling_path(const char *sub, char *buf, size_t size)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;

    if (strchr(sub, '/') != NULL || snprintf(buf, size, "chrun-%s", sub) >= (int) size)
        return errno = ENOENT, -1;
    if (n <= 0)
        return 0;
    self[n] = '\0';
    slash = strrchr(self, '/');
    if (slash == NULL)
        return 0;
    *slash = '\0';
    {
        char path[PATH_MAX + 160];
        if (snprintf(path, sizeof(path), "%s/chrun-%s", self, sub) < (int) sizeof(path) &&
            access(path, X_OK) == 0 && strlen(path) < size)
            snprintf(buf, size, "%s", path);
    }
    return 0;
}

void chrun_run_exec_sibling(const char *sub, char **argv)
{
    char path[PATH_MAX + 160];
    if (sibling_path(sub, path, sizeof(path)) < 0)
        return;
    argv[0] = path;
    if (strchr(path, '/') != NULL)
        execv(path, argv);
    else
        execvp(path, argv);
}

/* What a cold run has chrun-pull make while the layers download. */
struct pull_extra {
    bool tree;          /* the image's tree (chrun-pull --tree) */
    bool unpack;        /* a bundle (chrun-pull --unpack) */
    const char *bundle; /* with unpack: where; NULL = the cached bundle */
};

/* Pull IMAGE with chrun-pull and read the manifest digest it prints. The
 * network client (libcurl and its thirty libraries) then loads only when a
 * pull is needed, not on every cached `chrun run`. With X->tree or
 * X->unpack chrun-pull also makes the image's tree or bundle, each layer
 * applied while it downloads. chrun-pull's messages go to our stderr.
 * Returns 0; or -1 with ERR set, or with ERR's code CHRUN_E_OK when
 * chrun-pull already said why. */
static int pull_with_sibling(const char *image, const char *platform, const struct pull_extra *x,
                             struct chrun_digest *ret, struct chrun_err *err)
{
    char path[PATH_MAX + 160];
    cleanup_free char *unpack = NULL;
    const char *argv[8];
    struct chrun_process_opts o = {
        .argv = argv,
        .output_max = CHRUN_DIGEST_STR_MAX + 1,
        .flags = CHRUN_PROCESS_STDERR_INHERIT,
    };
    struct chrun_process_result res = {0};
    int argc = 1, rc;

    if (sibling_path("pull", path, sizeof(path)) < 0)
        return chrun_err_sys(err, errno, "pull '%s'", image);
    if (strchr(path, '/') == NULL)
        o.flags |= CHRUN_PROCESS_SEARCH_PATH;
    argv[0] = path;
    if (chrun_log_quiet())
        argv[argc++] = "-q";
    if (x->tree)
        argv[argc++] = "--tree";
    if (x->unpack && x->bundle == NULL)
        argv[argc++] = "--unpack";
    if (x->unpack && x->bundle != NULL) {
        if (asprintf(&unpack, "--unpack=%s", x->bundle) < 0)
            return chrun_err_sys(err, ENOMEM, "pull '%s'", image);
        argv[argc++] = unpack;
    }
    if (platform != NULL) {
        argv[argc++] = "--platform";
        argv[argc++] = platform;
    }
    argv[argc++] = "--";
    argv[argc++] = image;
    argv[argc] = NULL;
    if (chrun_process_run(&o, &res, err) < 0)
        return chrun_err_prefix(err, "pull '%s'", image);
    if (WIFSIGNALED(res.status)) {
        chrun_process_result_release(&res);
        return chrun_err_set(err, CHRUN_E_SYS, "pull '%s': chrun-pull died of signal %d", image,
                             WTERMSIG(res.status));
    }
    if (WEXITSTATUS(res.status) != 0) {
        chrun_process_result_release(&res);
        chrun_err_clear(err); /* chrun-pull printed its own error line */
        return -1;
    }
    res.out[strcspn(res.out, "\n")] = '\0';
    rc = chrun_digest_parse(ret, res.out, err);
    chrun_process_result_release(&res);
    if (rc < 0)
        return chrun_err_prefix(err, "pull '%s'", image);
    return 0;
}

/* The operand to unpack: IMAGE itself when the store has it, else the
 * digest chrun-pull prints after fetching it (into PULLED), with what X
 * asks for made as it downloads. */
static const char *find_or_pull(struct chrun_store *st, const char *image, const char *platform,
                                const struct pull_extra *x, struct chrun_digest *pulled,
                                struct chrun_err *err)
{
    struct chrun_store_image img;
    if (chrun_store_resolve(st, image, &img, err) == 0)
        return image;
    if (err->code != CHRUN_E_NOTFOUND)
        return NULL;
    chrun_err_clear(err);
    if (pull_with_sibling(image, platform, x, pulled, err) < 0)
        return NULL;
    return pulled->str;
}

/* --rm, copying: a throwaway bundle in a fresh directory outside the store,
 * so gc never races with it. */
static int make_throwaway_dir(char *ret_dir, size_t size, struct chrun_err *err)
{
    const char *tmp = getenv("TMPDIR");
    char prefix[PATH_MAX];
    if (snprintf(prefix, sizeof(prefix), "%s/chrun-run.", tmp && *tmp ? tmp : "/tmp") >=
        (int) sizeof(prefix))
        return chrun_err_sys(err, ENAMETOOLONG, "temporary bundle directory");
    return chrun_fs_mkdtemp_at(AT_FDCWD, prefix, ret_dir, size, err);
}

/* Unpack IMAGE into BUNDLE (NULL: the cached bundle), close the store and
 * run the command there. */
static int run_bundle(struct chrun_store **st, const char *image, const char *platform,
                      const char *bundle, const struct chrun_exec_opts *exec, char *const cmd[],
                      int *ret_status, struct chrun_err *err)
{
    struct chrun_unpack_opts unpack = CHRUN_UNPACK_OPTS_INIT;
    char path[PATH_MAX];
    unpack.platform = platform;
    if (chrun_bundle_unpack(*st, image, bundle, &unpack, path, sizeof(path), err) < 0)
        return -1;
    /* the store's shared gc lock is not held while the command runs */
    chrun_store_close(*st);
    *st = NULL;
    return chrun_runtime_exec(path, exec, cmd, ret_status, err);
}

/* --rm by copying: IMAGE unpacked into a throwaway bundle (as it
 * downloads, when the store does not have it yet). */
static int run_copy(struct chrun_store **st, const char *image, const char *platform,
                    const struct chrun_exec_opts *exec, char *const cmd[], int *ret_status,
                    struct chrun_err *err)
{
    char dir[PATH_MAX], bundle[PATH_MAX + 16];
    struct chrun_err rm_err = CHRUN_ERR_INIT;
    struct pull_extra x = {.unpack = true, .bundle = bundle};
    struct chrun_digest pulled;
    int rc;
    if (make_throwaway_dir(dir, sizeof(dir), err) < 0)
        return -1;
    snprintf(bundle, sizeof(bundle), "%s/bundle", dir);
    image = find_or_pull(*st, image, platform, &x, &pulled, err);
    if (image == NULL)
        rc = -1;
    else
        rc = run_bundle(st, image, platform, bundle, exec, cmd, ret_status, err);
    /* a failed removal is reported; the status stays the command's */
    if (chrun_userns_rm_rf_at(AT_FDCWD, dir, &rm_err) < 0 && rc == 0) {
        *err = rm_err;
        return -1;
    }
    return rc;
}

/* Why this run cannot use an overlay, or NULL when it may try. */
static const char *overlay_obstacle(const struct chrun_run_opts *opts,
                                    const struct chrun_exec_opts *exec)
{
    struct utsname u;
    unsigned major = 0, minor = 0;
    if (opts->copy)
        return "CHRUN_RUN_COPY is set";
    if (exec->flags & CHRUN_EXEC_NO_MOUNTS)
        return "--no-mounts has no mount namespace to hold it";
    if (geteuid() == 0)
        return NULL;
    /* overlayfs accepts mounts from a user namespace since Linux 5.11 */
    if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &major, &minor) != 2 ||
        major < 5 || (major == 5 && minor < 11))
        return "an ordinary user needs Linux 5.11 for overlayfs";
    return NULL;
}

/* --rm over the image's tree (chrun/tree.h). Returns 1 when the kernel
 * refused the overlay before anything ran (*ST is closed then), else 0 or
 * -1 as chrun_run. */
static int run_overlay(struct chrun_store **st, const char *image, const char *platform,
                       struct chrun_exec_opts *exec, char *const cmd[], int *ret_status,
                       struct chrun_err *err)
{
    struct chrun_tree_use use;
    struct chrun_err end_err = CHRUN_ERR_INIT;
    int rc;

    if (chrun_tree_use_begin(*st, image, platform, &use, err) < 0)
        return -1;
    chrun_store_close(*st);
    *st = NULL;
    exec->overlay = &use.overlay;
    rc = chrun_runtime_exec(use.bundle, exec, cmd, ret_status, err);
    exec->overlay = NULL;
    if (chrun_tree_use_end(&use, &end_err) < 0 && rc == 0) {
        *err = end_err;
        return -1;
    }
    if (rc < 0 && err->code == CHRUN_E_UNSUPPORTED && err->errnum != 0) {
        chrun_log_debug("overlay refused, copying the image instead: %s: %s", err->msg,
                        strerror(err->errnum));
        chrun_err_clear(err);
        return 1;
    }
    return rc;
}

int chrun_run(const char *image, const struct chrun_run_opts *opts, struct chrun_exec_opts *exec,
              char *const cmd[], int *ret_status, struct chrun_err *err)
{
    cleanup_store struct chrun_store *st = NULL;
    struct chrun_digest pulled;
    const char *why = opts->rm ? overlay_obstacle(opts, exec) : NULL;
    /* an image not stored yet is unpacked while it downloads (SPEC: nothing
     * half-applied is ever published): into its tree for an overlay run,
     * its cached bundle for a plain one, a throwaway bundle for a copy */
    struct pull_extra x = {.tree = opts->rm, .unpack = !opts->rm};

    *ret_status = 1;
    st = chrun_store_open(NULL, CHRUN_STORE_CREATE, err);
    if (st == NULL)
        return -1;
    if (opts->rm && why != NULL) {
        chrun_log_debug("copying the image, no overlay: %s", why);
        return run_copy(&st, image, opts->platform, exec, cmd, ret_status, err);
    }
    image = find_or_pull(st, image, opts->platform, &x, &pulled, err);
    if (image == NULL)
        return -1;
    if (opts->rm) {
        int rc = run_overlay(&st, image, opts->platform, exec, cmd, ret_status, err);
        if (rc <= 0)
            return rc;
        if (st == NULL && (st = chrun_store_open(NULL, CHRUN_STORE_CREATE, err)) == NULL)
            return -1;
        return run_copy(&st, image, opts->platform, exec, cmd, ret_status, err);
    }
    /* nothing is left to do afterwards: become the command */
    exec->flags |= CHRUN_EXEC_REPLACE;
    return run_bundle(&st, image, opts->platform, NULL, exec, cmd, ret_status, err);
}
