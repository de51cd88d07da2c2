#include "chrun/userns.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chrun/fs.h"
#include "chrun/io.h"
#include "chrun/log.h"
#include "chrun/process.h"
#include "cleanup.h"
#include "util.h"

/* A line of /etc/subuid longer than this is not one shadow-utils wrote. */
#define SUBID_LINE_MAX 512
/* First line of a helper's stderr kept for the error message. */
#define HELPER_STDERR_MAX 200
#define HELPER_TIMEOUT_MS 10000 /* newuidmap and newgidmap answer at once */

/* ---- /etc/subuid, /etc/subgid ------------------------------------------ */

/* A decimal uint32: digits only (no sign, no blanks), no overflow. */
static bool parse_u32(const char *s, uint32_t *ret)
{
    uint64_t v = 0;
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t) (*s - '0');
        if (v > UINT32_MAX)
            return false;
    }
    *ret = (uint32_t) v;
    return true;
}

/* LINE (NUL-terminated, a private copy) for NAME/ID: 1 and *RET when it
 * is a valid range of that user, else 0. */
static int match_line(char *line, const char *name, uint32_t id, struct chrun_subid_range *ret)
{
    char *f[3];
    char *p = line;
    uint32_t owner, start, count, last;
    size_t n = 0;
    while (p != NULL && n < ARRAY_SIZE(f))
        f[n++] = strsep(&p, ":");
    if (n != 3 || p != NULL)
        return 0;
    if (!((name != NULL && f[0][0] != '\0' && streq(f[0], name)) ||
          (parse_u32(f[0], &owner) && owner == id)))
        return 0;
    if (!parse_u32(f[1], &start) || !parse_u32(f[2], &count) || count == 0)
        return 0;
    /* the namespace holds ids 0..COUNT; no range may pass the last valid id */
    if (count > UINT32_MAX - 1 || __builtin_add_overflow(start, count - 1, &last) ||
        last == UINT32_MAX)
        return 0;
    ret->start = start;
    ret->count = count;
    return 1;
}

int chrun_userns_parse_subids(const char *text, size_t len, const char *name, uint32_t id,
                              struct chrun_subid_range *ret)
{
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t llen = nl ? (size_t) (nl - (text + pos)) : len - pos;
        char line[SUBID_LINE_MAX];
        if (llen < sizeof(line) && memchr(text + pos, '\0', llen) == NULL) {
            memcpy(line, text + pos, llen);
            line[llen] = '\0';
            if (line[0] != '#' && match_line(line, name, id, ret))
                return 1;
        }
        pos += llen + 1;
    }
    return 0;
}

int chrun_userns_read_subids(const char *path, const char *name, uint32_t id,
                             struct chrun_subid_range *ret, struct chrun_err *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
    cleanup_free char *buf = NULL;
    struct stat st;
    size_t len;
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0)
        return chrun_err_sys(err, errno, "open '%s'", path);
    if (fstat(fd, &st) < 0)
        return chrun_err_sys(err, errno, "stat '%s'", path);
    if (!S_ISREG(st.st_mode))
        return chrun_err_set(err, CHRUN_E_INPUT, "'%s' is not a regular file", path);
    if (chrun_io_read_bounded(fd, CHRUN_USERNS_SUBID_FILE_MAX, &buf, &len, err) < 0)
        return chrun_err_prefix(err, "'%s'", path);
    return chrun_userns_parse_subids(buf, len, name, id, ret);
}

/* ---- helpers ----------------------------------------------------------- */

/* A program that can write another process's id maps: a root-owned
 * executable, setuid or carrying file capabilities. Anything else found on
 * PATH first (a stray or fake copy) could only fail later, confusingly. */
static bool is_map_helper(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || access(path, X_OK) < 0)
        return false;
    return (st.st_mode & S_ISUID) != 0 || getxattr(path, "security.capability", NULL, 0) > 0;
}

int chrun_userns_find_helper(const char *name, char *ret, size_t size, struct chrun_err *err)
{
    const char *path = getenv("PATH");
    while (path != NULL && *path) {
        const char *colon = strchr(path, ':');
        size_t dlen = colon ? (size_t) (colon - path) : strlen(path);
        /* only absolute entries: a relative one depends on the working directory */
        if (dlen > 0 && path[0] == '/' &&
            snprintf(ret, size, "%.*s/%s", (int) dlen, path, name) < (int) size &&
            is_map_helper(ret))
            return 0;
        path = colon ? colon + 1 : NULL;
    }
    if (snprintf(ret, size, "/usr/bin/%s", name) < (int) size && is_map_helper(ret))
        return 0;
    ret[0] = '\0';
    return chrun_err_set(err, CHRUN_E_NOTFOUND, "%s not found (install the uidmap package)",
                         name);
}

void chrun_idmap_load(struct chrun_idmap *map)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct passwd pw, *pwp = NULL;
    char pwbuf[4096];
    const char *name = NULL;
    int ru, rg;

    memset(map, 0, sizeof(*map));
    map->uid = getuid();
    map->gid = getgid();
    if (getpwuid_r(map->uid, &pw, pwbuf, sizeof(pwbuf), &pwp) == 0 && pwp != NULL &&
        strlen(pw.pw_name) < sizeof(map->user))
        name = pw.pw_name;
    if (name != NULL)
        snprintf(map->user, sizeof(map->user), "%s", name);
    else
        snprintf(map->user, sizeof(map->user), "%u", (unsigned) map->uid);

    ru = chrun_userns_read_subids(CHRUN_USERNS_SUBUID_PATH, name, map->uid, &map->subuid, &err);
    if (ru < 0)
        chrun_log_warn("%s", chrun_err_format(&err, map->why, sizeof(map->why)));
    if (ru <= 0) {
        snprintf(map->why, sizeof(map->why), "no subordinate ids for '%s' in %s", map->user,
                 CHRUN_USERNS_SUBUID_PATH);
        return;
    }
    rg = chrun_userns_read_subids(CHRUN_USERNS_SUBGID_PATH, name, map->uid, &map->subgid, &err);
    if (rg < 0)
        chrun_log_warn("%s", chrun_err_format(&err, map->why, sizeof(map->why)));
    if (rg <= 0) {
        snprintf(map->why, sizeof(map->why), "no subordinate ids for '%s' in %s", map->user,
                 CHRUN_USERNS_SUBGID_PATH);
        return;
    }
    if (chrun_userns_find_helper("newuidmap", map->newuidmap, sizeof(map->newuidmap), &err) < 0 ||
        chrun_userns_find_helper("newgidmap", map->newgidmap, sizeof(map->newgidmap), &err) < 0) {
        snprintf(map->why, sizeof(map->why),
                 "%s not found for the subordinate ids of '%s' (install uidmap)",
                 map->newuidmap[0] == '\0' ? "newuidmap" : "newgidmap", map->user);
        return;
    }
    map->subids = true;
}

void chrun_idmap_format(const struct chrun_idmap *map, char *ret, size_t size)
{
    if (map->subids)
        snprintf(ret, size, "uid 0:%u:1,1:%u:%u gid 0:%u:1,1:%u:%u", (unsigned) map->uid,
                 map->subuid.start, map->subuid.count, (unsigned) map->gid, map->subgid.start,
                 map->subgid.count);
    else
        snprintf(ret, size, "uid 0:%u:1 gid 0:%u:1", (unsigned) map->uid, (unsigned) map->gid);
}

uint32_t chrun_idmap_max_uid(const struct chrun_idmap *map)
{
    return map->subids ? map->subuid.count : 0;
}

uint32_t chrun_idmap_max_gid(const struct chrun_idmap *map)
{
    return map->subids ? map->subgid.count : 0;
}

/* ---- entering a namespace ---------------------------------------------- */

static int write_proc_file(const char *path, const char *text, struct chrun_err *err)
{
    cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return chrun_err_sys(err, errno, "open %s", path);
    if (chrun_io_write_full(fd, text, strlen(text), err) < 0)
        return chrun_err_prefix(err, "write %s", path);
    return 0;
}

/* The single-id mapping an unprivileged process may write for itself. */
static int enter_single(const struct chrun_idmap *map, struct chrun_err *err)
{
    char text[64];
    if (unshare(CLONE_NEWUSER) < 0)
        return chrun_err_sys(err, errno,
                             "create a user namespace (rootless run; are unprivileged user "
                             "namespaces enabled?)");
    snprintf(text, sizeof(text), "0 %u 1\n", (unsigned) map->uid);
    if (write_proc_file("/proc/self/uid_map", text, err) < 0)
        return -1;
    /* setgroups must be denied before an unprivileged process may write gid_map */
    if (write_proc_file("/proc/self/setgroups", "deny", err) < 0)
        return -1;
    snprintf(text, sizeof(text), "0 %u 1\n", (unsigned) map->gid);
    return write_proc_file("/proc/self/gid_map", text, err);
}

/* Run HELPER (newuidmap or newgidmap) for PID with "0 OWN 1 1 START COUNT"
 * and wait for it (at most HELPER_TIMEOUT_MS). Its output's first line goes
 * into the error. */
static int run_helper(const char *helper, pid_t pid, uint32_t own,
                      const struct chrun_subid_range *r, struct chrun_err *err)
{
    /* only numbers we computed reach the setuid helper, and a fixed environment */
    char spid[16], sown[16], sstart[16], scount[16], how[64];
    const char *argv[] = {helper, spid, "0", sown, "1", "1", sstart, scount, NULL};
    const char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
    /* our stdout carries results: the helper's output all goes to the capture */
    struct chrun_process_opts o = {
        .argv = argv,
        .envp = envp,
        .output_max = HELPER_STDERR_MAX,
        .timeout_ms = HELPER_TIMEOUT_MS,
        .flags = CHRUN_PROCESS_STDERR_TOO | CHRUN_PROCESS_TRUNCATE,
    };
    struct chrun_process_result res = {0};
    int rc;

    snprintf(spid, sizeof(spid), "%d", (int) pid);
    snprintf(sown, sizeof(sown), "%u", (unsigned) own);
    snprintf(sstart, sizeof(sstart), "%u", r->start);
    snprintf(scount, sizeof(scount), "%u", r->count);
    if (chrun_process_run(&o, &res, err) < 0)
        return -1;
    res.out[strcspn(res.out, "\n")] = '\0';
    if (WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0) {
        chrun_process_result_release(&res);
        return 0;
    }
    rc = chrun_err_set(err, CHRUN_E_SYS, "%s %s 0 %s 1 1 %s %s: %s%s%s", helper, spid, sown,
                       sstart, scount, chrun_process_describe_status(res.status, how, sizeof(how)),
                       res.out[0] ? ": " : "", res.out);
    chrun_process_result_release(&res);
    return rc;
}

/* The helper process: wait for GO (the target unshared), map TARGET, send
 * the outcome on RES. Never returns. */
static void helper_main(const struct chrun_idmap *map, pid_t target, int go, int res)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    char byte;
    ssize_t n;
    do
        n = read(go, &byte, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1)
        _exit(1); /* the target gave up before unsharing */
    if (run_helper(map->newuidmap, target, (uint32_t) map->uid, &map->subuid, &err) == 0)
        run_helper(map->newgidmap, target, (uint32_t) map->gid, &map->subgid, &err);
    (void) !write(res, &err, sizeof(err)); /* one write: below PIPE_BUF */
    _exit(err.code == CHRUN_E_OK ? 0 : 1);
}

static void wait_child(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* The mapping this process entered with subordinate ids, or "". */
static char entered_idmap[CHRUN_IDMAP_STR_MAX];

const char *chrun_userns_entered_idmap(void)
{
    return entered_idmap[0] != '\0' ? entered_idmap : NULL;
}

int chrun_userns_enter(const struct chrun_idmap *map, struct chrun_err *err)
{
    struct chrun_err res_err = CHRUN_ERR_INIT;
    int go[2], res[2];
    pid_t self = getpid(), helper;
    ssize_t n;

    if (!map->subids)
        return enter_single(map, err);
    /* a socket, so that telling a dead helper to go is EPIPE, not SIGPIPE */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, go) < 0)
        return chrun_err_sys(err, errno, "socketpair");
    if (pipe2(res, O_CLOEXEC) < 0) {
        int e = errno;
        close(go[0]);
        close(go[1]);
        return chrun_err_sys(err, e, "pipe");
    }
    helper = fork();
    if (helper < 0) {
        int e = errno;
        close(go[0]);
        close(go[1]);
        close(res[0]);
        close(res[1]);
        return chrun_err_sys(err, e, "fork the id-mapping helper");
    }
    if (helper == 0) {
        close(go[1]);
        close(res[0]);
        helper_main(map, self, go[0], res[1]);
    }
    close(go[0]);
    close(res[1]);
    if (unshare(CLONE_NEWUSER) < 0) {
        int e = errno;
        close(go[1]); /* EOF: the helper leaves */
        close(res[0]);
        wait_child(helper);
        return chrun_err_sys(err, e,
                             "create a user namespace (rootless run; are unprivileged user "
                             "namespaces enabled?)");
    }
    n = send(go[1], "1", 1, MSG_NOSIGNAL);
    close(go[1]);
    if (n != 1) {
        int e = errno;
        close(res[0]);
        wait_child(helper);
        return chrun_err_sys(err, e, "start the id-mapping helper");
    }
    do
        n = read(res[0], &res_err, sizeof(res_err));
    while (n < 0 && errno == EINTR);
    close(res[0]);
    wait_child(helper);
    if (n != (ssize_t) sizeof(res_err))
        return chrun_err_set(err, CHRUN_E_SYS, "the id-mapping helper died");
    if (res_err.code != CHRUN_E_OK) {
        *err = res_err;
        return chrun_err_prefix(err, "map subordinate ids of '%s'", map->user);
    }
    /* become root of the namespace for real: the ids we hold now map to 0 */
    if (setresgid(0, 0, 0) < 0)
        return chrun_err_sys(err, errno, "switch to gid 0 in the user namespace");
    if (setresuid(0, 0, 0) < 0)
        return chrun_err_sys(err, errno, "switch to uid 0 in the user namespace");
    chrun_idmap_format(map, entered_idmap, sizeof(entered_idmap));
    return 0;
}

/* What a child of chrun_userns_run reports. */
struct run_report {
    int rc;
    struct chrun_err err;
};

int chrun_userns_run(const struct chrun_idmap *map, int (*fn)(void *data, struct chrun_err *err),
                     void *data, struct chrun_err *err)
{
    struct run_report rep;
    int fds[2], wstatus;
    pid_t pid, parent = getpid();
    ssize_t n;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return chrun_err_sys(err, errno, "pipe");
    pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return chrun_err_sys(err, e, "fork");
    }
    if (pid == 0) {
        memset(&rep, 0, sizeof(rep));
        close(fds[0]);
        rep.rc = chrun_userns_enter(map, &rep.err);
        /* die with the caller (kill -9 of chrun-unpack stops the unpack too);
         * set after entering, since changing credentials clears it */
        if (rep.rc == 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent))
            _exit(1);
        if (rep.rc == 0)
            rep.rc = fn(data, &rep.err) < 0 ? -1 : 0;
        (void) !write(fds[1], &rep, sizeof(rep)); /* one write: below PIPE_BUF */
        _exit(rep.rc == 0 ? 0 : 1);
    }
    close(fds[1]);
    do
        n = read(fds[0], &rep, sizeof(rep));
    while (n < 0 && errno == EINTR);
    close(fds[0]);
    while (waitpid(pid, &wstatus, 0) < 0)
        if (errno != EINTR)
            return chrun_err_sys(err, errno, "wait for the user-namespace child");
    if (n != (ssize_t) sizeof(rep)) {
        if (WIFSIGNALED(wstatus))
            return chrun_err_set(err, CHRUN_E_SYS, "user-namespace child killed by signal %d",
                                 WTERMSIG(wstatus));
        return chrun_err_set(err, CHRUN_E_SYS, "user-namespace child exited (status %d) "
                             "without a report", WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
    }
    if (rep.rc < 0) {
        *err = rep.err;
        return -1;
    }
    return 0;
}

struct rm_args {
    int dirfd;
    const char *name;
};

static int rm_in_ns(void *data, struct chrun_err *err)
{
    struct rm_args *a = data;
    return chrun_fs_rm_rf_at(a->dirfd, a->name, err);
}

int chrun_userns_rm_rf_at_mapped(const struct chrun_idmap *map, int dirfd, const char *name,
                                 struct chrun_err *err)
{
    struct rm_args args = {dirfd, name};
    return chrun_userns_run(map, rm_in_ns, &args, err);
}

int chrun_userns_rm_rf_at(int dirfd, const char *name, struct chrun_err *err)
{
    struct chrun_idmap map;
    if (chrun_fs_rm_rf_at(dirfd, name, err) == 0)
        return 0;
    if (geteuid() == 0 || (err->errnum != EACCES && err->errnum != EPERM))
        return -1;
    chrun_idmap_load(&map);
    if (!map.subids)
        return -1;
    chrun_log_debug("removing '%s' in a user namespace (files of subordinate ids)", name);
    chrun_err_clear(err);
    return chrun_userns_rm_rf_at_mapped(&map, dirfd, name, err);
}
