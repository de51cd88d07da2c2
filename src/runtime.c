/* chrun_runtime_exec: the start sequence of one run. Read the bundle's
 * config, resolve the user and environment, enter the namespaces (user
 * namespace through userns.c), set up the mounts (mounts.c), switch root
 * and user, drop capabilities, exec, and supervise the child (signal
 * forwarding, a reaping init under --pid). */
#include "chrun/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "chrun/bundle.h"
#include "chrun/env.h"
#include "chrun/fs.h"
#include "chrun/io.h"
#include "chrun/log.h"
#include "chrun/user.h"
#include "chrun/userns.h"
#include "cleanup.h"
#include "runtime-internal.h"
#include "util.h"

/* ---- one run ----------------------------------------------------------- */

/* Signals passed on to the command (SPEC: SIGINT/SIGTERM/SIGHUP reach it). */
static const int forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

/* What a failed child reports to the process that waits for it. */
struct child_report {
    int status;
    struct chrun_err err;
};

static void run_release(struct run *r)
{
    if (r->bundlefd >= 0)
        close(r->bundlefd);
    if (r->rootfd >= 0)
        close(r->rootfd);
    for (size_t i = 0; r->volume_fds && i < r->opts->n_volumes; i++)
        if (r->volume_fds[i] >= 0)
            close(r->volume_fds[i]);
    free(r->volume_fds);
    if (r->args) {
        for (char **a = r->args; *a; a++)
            free(*a);
        free(r->args);
    }
    chrun_env_free(r->env);
}

/* Copy a JSON array of strings into a new NULL-terminated vector. */
static int json_strv(json_t *arr, const char *what, char ***ret, size_t *ret_n,
                     struct chrun_err *err)
{
    size_t n = json_array_size(arr), i;
    char **v;
    if (arr != NULL && !json_is_array(arr))
        return chrun_err_set(err, CHRUN_E_INPUT, "%s: not an array", what);
    if (n > CHRUN_RUNTIME_MAX_ENV)
        return chrun_err_set(err, CHRUN_E_INPUT, "%s: too many entries (%zu)", what, n);
    v = calloc(n + 1, sizeof(char *));
    if (v == NULL)
        return chrun_err_sys(err, ENOMEM, "%s", what);
    for (i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (s == NULL || (v[i] = strdup(s)) == NULL) {
            for (size_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            if (s == NULL)
                return chrun_err_set(err, CHRUN_E_INPUT, "%s[%zu]: not a string", what, i);
            return chrun_err_sys(err, ENOMEM, "%s", what);
        }
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

static void strv_free(char **v)
{
    chrun_env_free(v);
}

/* Read an /etc file of the image through the rootfs (never the host's NSS). */
/* A file that cannot be opened (missing, a symlink loop) counts as absent:
 * names cannot resolve, numbers still do. A FIFO or device there is
 * refused, never opened. */
static int read_etc(int rootfd, const char *name, char **ret, struct chrun_err *err)
{
    struct chrun_err e = CHRUN_ERR_INIT;
    if (chrun_fs_read_regular_in_root(rootfd, name, CHRUN_RUNTIME_ETC_MAX, ret, &e) == 0)
        return 0;
    *ret = NULL;
    if (e.code != CHRUN_E_SYS) {
        *err = e;
        return -1;
    }
    return 0;
}

static int load_config(struct run *r, char *const cmd[], struct chrun_err *err)
{
    cleanup_free char *buf = NULL;
    cleanup_json json_t *root = NULL;
    cleanup_free char *passwd = NULL, *group = NULL;
    char **image_env = NULL;
    size_t len, n_env = 0, n_args = 0;
    json_error_t jerr;
    json_t *process, *user, *jroot;
    const char *s;
    char hostname[HOST_NAME_MAX + 1];

    if (chrun_io_read_file_at(r->bundlefd, "config.json", CHRUN_CONFIG_MAX, &buf, &len, err) < 0)
        return chrun_err_prefix(err, "bundle '%s'", r->bundle);
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "bundle '%s': config.json: invalid JSON at line %d: %s", r->bundle,
                             jerr.line, jerr.text);
    if (!json_is_object(root))
        return chrun_err_set(err, CHRUN_E_INPUT, "bundle '%s': config.json: not a JSON object",
                             r->bundle);
    process = json_object_get(root, "process");
    if (process != NULL && !json_is_object(process))
        return chrun_err_set(err, CHRUN_E_INPUT, "bundle '%s': config.json: process is not an object",
                             r->bundle);
    s = json_string_value(
        json_object_get(json_object_get(root, "annotations"), CHRUN_BUNDLE_ANNOTATION_IDMAP));
    if (s != NULL && snprintf(r->bundle_idmap, sizeof(r->bundle_idmap), "%s", s) >=
                         (int) sizeof(r->bundle_idmap))
        return chrun_err_set(err, CHRUN_E_INPUT, "bundle '%s': config.json: bad %s annotation",
                             r->bundle, CHRUN_BUNDLE_ANNOTATION_IDMAP);
    jroot = json_object_get(root, "root");
    s = json_string_value(json_object_get(jroot, "path"));
    if (snprintf(r->root_path, sizeof(r->root_path), "%s", s ? s : "rootfs") >=
        (int) sizeof(r->root_path))
        return chrun_err_set(err, CHRUN_E_INPUT, "bundle '%s': root.path too long", r->bundle);
    r->rootfd = openat(r->bundlefd, r->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (r->rootfd < 0)
        return chrun_err_sys(err, errno, "bundle '%s': rootfs '%s'", r->bundle, r->root_path);

    if (cmd != NULL && cmd[0] != NULL) {
        for (n_args = 0; cmd[n_args]; n_args++)
            ;
        r->args = calloc(n_args + 1, sizeof(char *));
        if (r->args == NULL)
            return chrun_err_sys(err, ENOMEM, "arguments");
        for (size_t i = 0; i < n_args; i++)
            if ((r->args[i] = strdup(cmd[i])) == NULL)
                return chrun_err_sys(err, ENOMEM, "arguments");
    } else {
        if (json_strv(json_object_get(process, "args"), "config.json process.args", &r->args,
                      &n_args, err) < 0)
            return chrun_err_prefix(err, "bundle '%s'", r->bundle);
        if (n_args == 0)
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "bundle '%s': no command: config.json has no process.args and "
                                 "none was given",
                                 r->bundle);
    }
    if (r->args[0][0] == '\0')
        return chrun_err_set(err, CHRUN_E_INPUT, "empty command name");

    s = r->opts->cwd ? r->opts->cwd : json_string_value(json_object_get(process, "cwd"));
    if (s == NULL || s[0] == '\0')
        s = "/";
    if (s[0] != '/')
        return chrun_err_set(err, CHRUN_E_INPUT, "working directory '%s' is not absolute", s);
    if (snprintf(r->cwd, sizeof(r->cwd), "%s", s) >= (int) sizeof(r->cwd))
        return chrun_err_set(err, CHRUN_E_INPUT, "working directory too long");

    if (read_etc(r->rootfd, "etc/passwd", &passwd, err) < 0 ||
        read_etc(r->rootfd, "etc/group", &group, err) < 0)
        return -1;
    if (r->opts->user != NULL) {
        struct chrun_user_spec spec;
        if (chrun_user_spec_parse(&spec, r->opts->user, err) < 0 ||
            chrun_exec_user_resolve(&r->user, &spec, passwd, group, err) < 0)
            return -1;
    } else {
        json_t *jgids, *v;
        json_int_t uid, gid;
        size_t i;
        user = json_object_get(process, "user");
        uid = json_integer_value(json_object_get(user, "uid"));
        gid = json_integer_value(json_object_get(user, "gid"));
        if (uid < 0 || uid >= UINT32_MAX || gid < 0 || gid >= UINT32_MAX)
            return chrun_err_set(err, CHRUN_E_INPUT, "bundle '%s': config.json: bad process.user",
                                 r->bundle);
        r->user.uid = (uid_t) uid;
        r->user.gid = (gid_t) gid;
        jgids = json_object_get(user, "additionalGids");
        json_array_foreach(jgids, i, v) {
            json_int_t g = json_integer_value(v);
            if (!json_is_integer(v) || g < 0 || g >= UINT32_MAX)
                return chrun_err_set(err, CHRUN_E_INPUT,
                                     "bundle '%s': config.json: bad process.user.additionalGids",
                                     r->bundle);
            if (r->user.n_groups < CHRUN_RUNTIME_MAX_GROUPS)
                r->user.groups[r->user.n_groups++] = (gid_t) g;
        }
        chrun_exec_user_home(passwd, r->user.uid, r->user.home, sizeof(r->user.home));
    }

    if (json_strv(json_object_get(process, "env"), "config.json process.env", &image_env, &n_env,
                  err) < 0)
        return chrun_err_prefix(err, "bundle '%s'", r->bundle);
    if (r->opts->hostname != NULL)
        snprintf(hostname, sizeof(hostname), "%s", r->opts->hostname);
    else if (gethostname(hostname, sizeof(hostname)) < 0)
        hostname[0] = '\0';
    hostname[sizeof(hostname) - 1] = '\0';
    r->env = chrun_env_build((const char *const *) image_env, n_env, r->opts->env, r->opts->n_env,
                             hostname[0] ? hostname : NULL, r->user.home, err);
    strv_free(image_env);
    if (r->env == NULL)
        return chrun_err_prefix(err, "bundle '%s'", r->bundle);
    return 0;
}

static int open_volumes(struct run *r, struct chrun_err *err)
{
    size_t n = r->opts->n_volumes;
    if (n == 0)
        return 0;
    if (n > CHRUN_RUNTIME_MAX_VOLUMES)
        return chrun_err_set(err, CHRUN_E_USAGE, "too many -v mounts (%zu)", n);
    r->volume_fds = malloc(n * sizeof(int));
    if (r->volume_fds == NULL)
        return chrun_err_sys(err, ENOMEM, "volumes");
    for (size_t i = 0; i < n; i++)
        r->volume_fds[i] = -1;
    for (size_t i = 0; i < n; i++) {
        const struct chrun_volume *v = &r->opts->volumes[i];
        r->volume_fds[i] = v->pinned ? fcntl(v->fd, F_DUPFD_CLOEXEC, 0)
                                     : open(v->host, O_PATH | O_CLOEXEC);
        if (r->volume_fds[i] < 0)
            return chrun_err_sys(err, errno, "-v source '%s'", v->host);
    }
    return 0;
}

/* ---- namespaces -------------------------------------------------------- */

static int loopback_up(struct chrun_err *err)
{
    struct ifreq ifr;
    cleanup_close int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return chrun_err_sys(err, errno, "socket for loopback");
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
        return chrun_err_sys(err, errno, "get flags of 'lo'");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
        return chrun_err_sys(err, errno, "bring up 'lo'");
    return 0;
}

/* The clone/unshare flags of this run, the user namespace excepted. */
static int namespace_flags(const struct run *r)
{
    int flags = 0;
    if (!r->no_mounts)
        flags |= CLONE_NEWNS;
    if (r->ns & CHRUN_EXEC_NS_NET)
        flags |= CLONE_NEWNET;
    if (r->ns & CHRUN_EXEC_NS_IPC)
        flags |= CLONE_NEWIPC;
    if (r->ns & CHRUN_EXEC_NS_UTS)
        flags |= CLONE_NEWUTS;
    return flags;
}

/* Inside the new namespaces: hostname and loopback. */
static int finish_namespaces(struct run *r, struct chrun_err *err)
{
    if (r->opts->hostname != NULL &&
        sethostname(r->opts->hostname, strlen(r->opts->hostname)) < 0)
        return chrun_err_sys(err, errno, "set hostname '%s'", r->opts->hostname);
    if ((r->ns & CHRUN_EXEC_NS_NET) && loopback_up(err) < 0)
        return -1;
    return 0;
}

/* ---- the container process --------------------------------------------- */

static int switch_root(struct run *r, int rootfd, struct chrun_err *err)
{
    if (fchdir(rootfd) < 0)
        return chrun_err_sys(err, errno, "enter rootfs '%s'", r->root_path);
    if (!r->no_mounts && r->ns != 0) {
        /* isolated: pivot_root so the host tree is gone from the namespace */
        if (syscall(SYS_pivot_root, ".", ".") < 0)
            return chrun_err_sys(err, errno, "pivot_root to '%s'", r->root_path);
        if (umount2(".", MNT_DETACH) < 0)
            return chrun_err_sys(err, errno, "detach the old root");
    } else if (chroot(".") < 0) {
        return chrun_err_sys(err, errno, "chroot to '%s'", r->root_path);
    }
    if (chdir("/") < 0)
        return chrun_err_sys(err, errno, "chdir /");
    if (chdir(r->cwd) < 0)
        return chrun_err_sys(err, errno, "working directory '%s'", r->cwd);
    return 0;
}

static int switch_user(struct run *r, struct chrun_err *err)
{
    /* a single-id rootless namespace denies setgroups and maps only root;
     * newgidmap leaves setgroups allowed */
    if ((!r->rootless || r->idmap.subids) && setgroups(r->user.n_groups, r->user.groups) < 0)
        return chrun_err_sys(err, errno, "set supplementary groups");
    if (setgid(r->user.gid) < 0)
        return chrun_err_sys(err, errno, "switch to gid %u", (unsigned) r->user.gid);
    if (setuid(r->user.uid) < 0)
        return chrun_err_sys(err, errno, "switch to uid %u", (unsigned) r->user.uid);
    return 0;
}

/* docker's default capability set (moby's oci/caps/defaults.go). */
#define DEFAULT_CAPS_MASK                                                                          \
    ((1ULL << CAP_CHOWN) | (1ULL << CAP_DAC_OVERRIDE) | (1ULL << CAP_FOWNER) |                     \
     (1ULL << CAP_FSETID) | (1ULL << CAP_KILL) | (1ULL << CAP_SETGID) | (1ULL << CAP_SETUID) |     \
     (1ULL << CAP_SETPCAP) | (1ULL << CAP_NET_BIND_SERVICE) | (1ULL << CAP_NET_RAW) |              \
     (1ULL << CAP_SYS_CHROOT) | (1ULL << CAP_MKNOD) | (1ULL << CAP_AUDIT_WRITE) |                  \
     (1ULL << CAP_SETFCAP))

/* Drop every capability outside KEEP: the bounding set first (that needs
 * CAP_SETPCAP, which KEEP holds), then effective, permitted, inheritable. */
static int drop_capabilities(uint64_t keep, struct chrun_err *err)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct data[2];

    for (int cap = 0; cap < 64; cap++) {
        if (keep & (1ULL << cap))
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL)
                break; /* past the kernel's last capability */
            return chrun_err_sys(err, errno, "drop capability %d", cap);
        }
    }
    if (syscall(SYS_capget, &hdr, data) < 0)
        return chrun_err_sys(err, errno, "read capabilities");
    for (int i = 0; i < 2; i++) {
        uint32_t k = (uint32_t) (keep >> (32 * i));
        data[i].effective &= k;
        data[i].permitted &= k;
        data[i].inheritable &= k;
    }
    if (syscall(SYS_capset, &hdr, data) < 0)
        return chrun_err_sys(err, errno, "set capabilities");
    return 0;
}

/* Everything between the namespaces and the command: mounts, root, user. */
static int container_setup(struct run *r, struct chrun_err *err)
{
    cleanup_close int rootfd = -1;
    r->saved_umask = umask(0);
    if (r->no_mounts) {
        rootfd = fcntl(r->rootfd, F_DUPFD_CLOEXEC, 3);
        if (rootfd < 0)
            return chrun_err_sys(err, errno, "dup rootfs fd");
    } else if (runtime_setup_mounts(r, &rootfd, err) < 0) {
        return -1;
    }
    umask(r->saved_umask);
    if (switch_root(r, rootfd, err) < 0)
        return -1;
    if ((r->opts->flags & CHRUN_EXEC_DEFAULT_CAPS) &&
        drop_capabilities(DEFAULT_CAPS_MASK, err) < 0)
        return -1;
    return switch_user(r, err);
}

/* Exec the command, searching the container's PATH for a bare name. Returns
 * only on failure, with *RET_STATUS 127 (not found) or 126 (not executable). */
static int exec_command(struct run *r, int *ret_status, struct chrun_err *err)
{
    const char *name = r->args[0];
    const char *path;
    bool denied = false;
    int e;

    if (r->mask_saved)
        sigprocmask(SIG_SETMASK, &r->oldmask, NULL);
    if (strchr(name, '/') != NULL) {
        execve(name, r->args, r->env);
        e = errno;
        *ret_status = (e == ENOENT || e == ENOTDIR) ? 127 : 126;
        return chrun_err_sys(err, e, "exec '%s' in the container", name);
    }
    path = chrun_env_get(r->env, "PATH");
    if (path == NULL)
        path = CHRUN_RUNTIME_DEFAULT_PATH;
    while (path != NULL) {
        const char *colon = strchr(path, ':');
        size_t dlen = colon ? (size_t) (colon - path) : strlen(path);
        const char *dir = path;
        char full[PATH_MAX];
        path = colon ? colon + 1 : NULL;
        /* an empty PATH entry means the working directory, as in execvp */
        if (snprintf(full, sizeof(full), "%.*s%s%s", (int) dlen, dir, dlen ? "/" : "", name) >=
            (int) sizeof(full))
            continue;
        execve(full, r->args, r->env);
        e = errno;
        if (e == EACCES)
            denied = true;
        else if (e != ENOENT && e != ENOTDIR)
            return *ret_status = 126, chrun_err_sys(err, e, "exec '%s' in the container", full);
    }
    if (denied) {
        *ret_status = 126;
        return chrun_err_sys(err, EACCES, "exec '%s' in the container", name);
    }
    *ret_status = 127;
    return chrun_err_set(err, CHRUN_E_NOTFOUND, "command '%s' not found in the container's PATH",
                         name);
}

static int status_of(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return 1;
}

/* In a forked child: send the failure to the waiting parent and leave. */
static void child_fail(int report_fd, int status, const struct chrun_err *err)
{
    struct child_report rep;
    memset(&rep, 0, sizeof(rep));
    rep.status = status;
    rep.err = *err;
    if (report_fd >= 0)
        (void) !write(report_fd, &rep, sizeof(rep)); /* one write: below PIPE_BUF */
    _exit(status);
}

/* Wait for PID, passing on the forwarded signals that a process sent us
 * (si_code <= 0: terminal-generated ones reach the whole process group, the
 * command included, by themselves). The signals and SIGCHLD are blocked. */
static int supervise(pid_t pid, bool reap_all, const sigset_t *set)
{
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(set, &si);
        if (sig < 0)
            continue;
        if (sig == SIGCHLD) {
            int wstatus;
            pid_t p;
            while ((p = waitpid(reap_all ? -1 : pid, &wstatus, WNOHANG)) > 0)
                if (p == pid)
                    return status_of(wstatus);
            continue;
        }
        if (si.si_code <= 0)
            kill(pid, sig);
    }
}

static void forwarded_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGCHLD);
    for (size_t i = 0; i < ARRAY_SIZE(forwarded_signals); i++)
        sigaddset(set, forwarded_signals[i]);
}

/* Read a child's report: 1 when it sent one (*REP filled), 0 at EOF (its
 * command was executed). */
static int read_report(int fd, struct child_report *rep)
{
    ssize_t n;
    do
        n = read(fd, rep, sizeof(*rep));
    while (n < 0 && errno == EINTR);
    return n == (ssize_t) sizeof(*rep);
}

/* pid 1 of a new pid namespace: set up, fork the command, then reap every
 * zombie and pass signals on until the command exits. Never returns. */
static void run_init(struct run *r, const sigset_t *set)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    int status = 1;
    pid_t cmd;
    /* the supervisor's death must not leave the namespace behind */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (finish_namespaces(r, &err) < 0 || container_setup(r, &err) < 0)
        child_fail(r->report_fd, 1, &err);
    cmd = fork();
    if (cmd < 0) {
        chrun_err_sys(&err, errno, "fork");
        child_fail(r->report_fd, 1, &err);
    }
    if (cmd == 0) {
        exec_command(r, &status, &err);
        child_fail(r->report_fd, status, &err);
    }
    close(r->report_fd);
    _exit(supervise(cmd, true, set));
}

/* The process that enters the namespaces (the caller itself with
 * CHRUN_EXEC_REPLACE, else a child). Returns only on failure when it is the
 * caller; a forked child reports through r->report_fd and exits. */
static int run_container(struct run *r, const sigset_t *set, int *ret_status,
                         struct chrun_err *err)
{
    *ret_status = 1;
    if (r->rootless && chrun_userns_enter(&r->idmap, err) < 0)
        return -1;
    if (r->ns & CHRUN_EXEC_NS_PID) {
        int fds[2];
        struct child_report rep;
        int rc;
        pid_t init;
        if (pipe2(fds, O_CLOEXEC) < 0)
            return chrun_err_sys(err, errno, "pipe");
        /* Only init enters the new namespaces: the waiting process keeps its
         * mounts (pivot_root would move its root too) and its pid namespace
         * for children (LeakSanitizer's tracer thread needs that). */
        init = (pid_t) syscall(SYS_clone, CLONE_NEWPID | namespace_flags(r) | SIGCHLD, NULL, NULL,
                               NULL, NULL);
        if (init < 0) {
            close(fds[0]);
            close(fds[1]);
            return chrun_err_sys(err, errno, "create a pid namespace");
        }
        if (init == 0) {
            close(fds[0]);
            /* the caller reads its pipe to EOF: only the waiter may hold it */
            if (r->report_fd >= 0)
                close(r->report_fd);
            r->report_fd = fds[1];
            run_init(r, set);
        }
        close(fds[1]);
        rc = read_report(fds[0], &rep);
        close(fds[0]);
        *ret_status = supervise(init, false, set);
        if (rc == 1) {
            *err = rep.err;
            *ret_status = rep.status;
            return -1;
        }
        return 0;
    }
    if (namespace_flags(r) != 0 && unshare(namespace_flags(r)) < 0)
        return chrun_err_sys(err, errno, "create namespaces");
    if (finish_namespaces(r, err) < 0 || container_setup(r, err) < 0)
        return -1;
    return exec_command(r, ret_status, err);
}

/* Can this caller run R's user, and see R's bundle as it was unpacked? */
static int check_ids(struct run *r, struct chrun_err *err)
{
    char have[CHRUN_IDMAP_STR_MAX];
    uint32_t max_uid, max_gid;

    if (r->rootless && (r->opts->flags & CHRUN_EXEC_SINGLE_ID)) {
        memset(&r->idmap, 0, sizeof(r->idmap));
        r->idmap.uid = getuid();
        r->idmap.gid = getgid();
        snprintf(r->idmap.why, sizeof(r->idmap.why), "a single-id user namespace was asked for");
    } else if (r->rootless) {
        chrun_idmap_load(&r->idmap);
    }
    if (r->bundle_idmap[0] != '\0') {
        /* SPEC-side rule: files of a bundle unpacked in a user namespace carry
         * the host ids of that mapping; any other mapping shows wrong owners */
        if (!r->rootless)
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "bundle '%s' was unpacked rootless with subordinate ids (%s): "
                                 "run it as the user who unpacked it",
                                 r->bundle, r->bundle_idmap);
        chrun_idmap_format(&r->idmap, have, sizeof(have));
        if (!r->idmap.subids)
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "bundle '%s' was unpacked with subordinate ids (%s) but this run "
                                 "has none: %s; see newuidmap(1)",
                                 r->bundle, r->bundle_idmap, r->idmap.why);
        if (!streq(have, r->bundle_idmap))
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "bundle '%s' was unpacked with the id mapping '%s', this run "
                                 "has '%s': unpack it again",
                                 r->bundle, r->bundle_idmap, have);
    }
    if (!r->rootless)
        return 0;
    if (!r->idmap.subids) {
        if (r->user.uid == 0 && r->user.gid == 0)
            return 0;
        /* the user namespace maps only the caller, as root */
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                             "cannot run as uid %u gid %u without root: a rootless run has only "
                             "uid 0 (%s; see newuidmap(1))",
                             (unsigned) r->user.uid, (unsigned) r->user.gid, r->idmap.why);
    }
    max_uid = chrun_idmap_max_uid(&r->idmap);
    max_gid = chrun_idmap_max_gid(&r->idmap);
    if (r->user.uid > max_uid || r->user.gid > max_gid)
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                             "cannot run as uid %u gid %u: the subordinate ids of '%s' give a "
                             "rootless run uids 0-%u and gids 0-%u",
                             (unsigned) r->user.uid, (unsigned) r->user.gid, r->idmap.user,
                             max_uid, max_gid);
    for (size_t i = 0; i < r->user.n_groups; i++)
        if (r->user.groups[i] > max_gid)
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "cannot add group %u: the subordinate ids of '%s' give a "
                                 "rootless run gids 0-%u",
                                 (unsigned) r->user.groups[i], r->idmap.user, max_gid);
    return 0;
}

int chrun_runtime_exec(const char *bundle, const struct chrun_exec_opts *opts, char *const cmd[],
                       int *ret_status, struct chrun_err *err)
{
    struct run r;
    sigset_t set;
    int rc = -1;
    pid_t pid;
    int fds[2];
    struct child_report rep;

    memset(&r, 0, sizeof(r));
    r.opts = opts;
    r.bundle = bundle;
    r.bundlefd = r.rootfd = r.report_fd = -1;
    r.ns = opts->ns | (opts->hostname ? CHRUN_EXEC_NS_UTS : 0);
    r.no_mounts = (opts->flags & CHRUN_EXEC_NO_MOUNTS) != 0;
    r.outer_uid = geteuid();
    r.outer_gid = getegid();
    r.rootless = r.outer_uid != 0;
    *ret_status = 1;

    if (r.no_mounts && (opts->n_volumes > 0 || (opts->flags & CHRUN_EXEC_READ_ONLY)))
        return chrun_err_set(err, CHRUN_E_USAGE, "-v and --read-only need mounts (drop --no-mounts)");
    r.bundlefd = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (r.bundlefd < 0)
        return chrun_err_sys(err, errno, "bundle '%s'", bundle);
    if (load_config(&r, cmd, err) < 0 || open_volumes(&r, err) < 0) {
        run_release(&r);
        return -1;
    }
    if (check_ids(&r, err) < 0) {
        run_release(&r);
        return -1;
    }

    forwarded_set(&set);
    if ((opts->flags & CHRUN_EXEC_REPLACE) && !(r.ns & CHRUN_EXEC_NS_PID)) {
        rc = run_container(&r, &set, ret_status, err);
        run_release(&r);
        return rc;
    }
    /* Block before forking: a signal between fork and wait must be queued
     * for the child, not kill us with its default action. */
    sigprocmask(SIG_BLOCK, &set, &r.oldmask);
    r.mask_saved = true;
    if ((opts->flags & CHRUN_EXEC_REPLACE)) {
        rc = run_container(&r, &set, ret_status, err);
        sigprocmask(SIG_SETMASK, &r.oldmask, NULL);
        run_release(&r);
        return rc;
    }
    if (pipe2(fds, O_CLOEXEC) < 0) {
        rc = chrun_err_sys(err, errno, "pipe");
    } else if ((pid = fork()) < 0) {
        rc = chrun_err_sys(err, errno, "fork");
        close(fds[0]);
        close(fds[1]);
    } else if (pid == 0) {
        int status = 1;
        close(fds[0]);
        r.report_fd = fds[1];
        if (run_container(&r, &set, &status, err) < 0)
            child_fail(fds[1], status, err);
        _exit(status);
    } else {
        int got;
        close(fds[1]);
        got = read_report(fds[0], &rep);
        close(fds[0]);
        *ret_status = supervise(pid, false, &set);
        rc = 0;
        if (got == 1) {
            *err = rep.err;
            *ret_status = rep.status;
            rc = -1;
        }
    }
    sigprocmask(SIG_SETMASK, &r.oldmask, NULL);
    run_release(&r);
    return rc;
}
