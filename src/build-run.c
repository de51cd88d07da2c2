/* chrun-build: RUN (argv, environment, the runtime) and its mounts (cache,
 * bind, tmpfs, secret). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrun/tree.h"
#include "build-internal.h"

/* ---- RUN -------------------------------------------------------------------- */

/* Join PATH to the working directory unless it is absolute. */
char *build_abs_path(struct stage *s, const char *path)
{
    const char *wd = json_string_value(build_cfg_get(s, "WorkingDir"));
    char *out = NULL;
    if (path[0] == '/')
        return strdup(path);
    if (wd == NULL || *wd == '\0')
        wd = "/";
    if (asprintf(&out, "%s%s%s", wd, wd[strlen(wd) - 1] == '/' ? "" : "/", path) < 0)
        return NULL;
    return out;
}

/* Paths a step created in the rootfs for its mounts: removed after it, when
 * still what was made (an empty directory, an empty file of the same inode),
 * so they never reach a layer. */
struct created {
    char *paths[MOUNT_PATHS_MAX];
    struct stat st[MOUNT_PATHS_MAX];
    size_t n;
};

/* Create PATH (absolute in the container) and its missing parents, as
 * directories or, with FILE, the last one as an empty file; resolved in the
 * root, so an image symlink never leads to the host. */
static int create_in_root(int rootfd, const char *path, bool file, struct created *c,
                          struct chrun_err *err)
{
    char prefix[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof(prefix))
        return chrun_err_set(err, CHRUN_E_INPUT, "path too long: '%s'", path);
    for (size_t i = 1; i <= len; i++) {
        struct chrun_err probe = CHRUN_ERR_INIT;
        cleanup_close int fd = -1, parent = -1;
        const char *base;
        bool last;
        if ((path[i] != '/' && path[i] != '\0') || path[i - 1] == '/')
            continue;
        memcpy(prefix, path, i);
        prefix[i] = '\0';
        last = path[i] == '\0' || path[i + strspn(path + i, "/")] == '\0';
        fd = chrun_fs_open_in_root(rootfd, prefix, O_PATH, 0, &probe);
        if (fd >= 0)
            continue;
        if (probe.errnum != ENOENT)
            return chrun_err_sys(err, probe.errnum, "mount point '%s'", prefix);
        if (c->n == MOUNT_PATHS_MAX)
            return chrun_err_set(err, CHRUN_E_INPUT, "more than %d mount point directories",
                                 MOUNT_PATHS_MAX);
        parent = chrun_fs_open_parent_in_root(rootfd, prefix, &base, err);
        if (parent < 0)
            return -1;
        if (last && file)
            fd = openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        else if (mkdirat(parent, base, 0755) == 0)
            fd = openat(parent, base, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &c->st[c->n]) < 0)
            return chrun_err_sys(err, errno, "create mount point '%s'", prefix);
        if ((c->paths[c->n] = strdup(prefix)) == NULL)
            return chrun_err_sys(err, ENOMEM, "build");
        c->n++;
        if (last)
            break;
    }
    return 0;
}

static void remove_created(int rootfd, struct created *c)
{
    while (c->n > 0) {
        struct chrun_err ignored = CHRUN_ERR_INIT;
        char *p = c->paths[--c->n];
        const struct stat *made = &c->st[c->n];
        const char *base;
        struct stat st;
        int parent = chrun_fs_open_parent_in_root(rootfd, p, &base, &ignored);
        if (parent >= 0 && fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            st.st_dev == made->st_dev && st.st_ino == made->st_ino) {
            if (S_ISDIR(st.st_mode))
                unlinkat(parent, base, AT_REMOVEDIR); /* fails when not empty: kept */
            else if (S_ISREG(st.st_mode) && st.st_size == 0)
                unlinkat(parent, base, 0);
        }
        if (parent >= 0)
            close(parent);
        free(p);
    }
}

enum mount_type { MOUNT_BIND, MOUNT_CACHE, MOUNT_TMPFS, MOUNT_SECRET };
enum mount_sharing { SHARING_SHARED, SHARING_PRIVATE, SHARING_LOCKED };

struct run_mount {
    enum mount_type type;
    char *target;          /* absolute in the container */
    char *source;          /* bind: path in the source; secret: unused */
    char *from;            /* bind: --from value as written, or NULL (the context) */
    char *id;              /* cache and secret */
    bool rw, required;
    enum mount_sharing sharing;
    long uid, gid;         /* -1: not given */
    long mode;             /* -1: not given */
    /* set up by the step */
    struct stage *from_stage;
    bool skip;             /* a secret that was not given and not required */
    bool is_file;
    char host[PATH_MAX];
    char scratch[32];      /* a secret's copy or a scratch directory in the stage's
                            * work directory, removed after the step; or "" */
    int lockfd;
    int srcfd;             /* bind: the source as resolved (O_PATH), kept for the run */
};

static void mount_release(struct run_mount *m)
{
    free(m->target);
    free(m->source);
    free(m->from);
    free(m->id);
    if (m->lockfd >= 0)
        close(m->lockfd);
    if (m->srcfd >= 0)
        close(m->srcfd);
}

static int mount_bool(const char *key, const char *v, bool *ret, struct chrun_err *err)
{
    if (v == NULL || streq(v, "true") || streq(v, "1"))
        *ret = true;
    else if (streq(v, "false") || streq(v, "0"))
        *ret = false;
    else
        return chrun_err_set(err, CHRUN_E_INPUT, "RUN --mount: %s=%s is not true or false", key,
                             v);
    return 0;
}

static int mount_number(const char *key, const char *v, int base, long *ret,
                        struct chrun_err *err)
{
    char *end;
    errno = 0;
    *ret = v ? strtol(v, &end, base) : -1;
    if (v == NULL || *v == '\0' || *end != '\0' || errno != 0 || *ret < 0 || *ret > 0x7fffffff)
        return chrun_err_set(err, CHRUN_E_INPUT, "RUN --mount: %s=%s is not a number", key,
                             v ? v : "");
    return 0;
}

static int mount_option(struct run_mount *m, char *key, char *v, struct chrun_err *err)
{
    char **slot = NULL;
    if (streq(key, "type")) {
        if (v && streq(v, "bind"))
            m->type = MOUNT_BIND;
        else if (v && streq(v, "cache"))
            m->type = MOUNT_CACHE;
        else if (v && streq(v, "tmpfs"))
            m->type = MOUNT_TMPFS;
        else if (v && streq(v, "secret"))
            m->type = MOUNT_SECRET;
        else if (v && streq(v, "ssh"))
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "RUN --mount=type=ssh is not supported (chrun-build forwards no "
                                 "SSH agent)");
        else
            return chrun_err_set(err, CHRUN_E_INPUT, "RUN --mount: unknown type '%s'",
                                 v ? v : "");
        return 0;
    }
    if (streq(key, "target") || streq(key, "dst") || streq(key, "destination"))
        slot = &m->target;
    else if (streq(key, "source") || streq(key, "src"))
        slot = &m->source;
    else if (streq(key, "from"))
        slot = &m->from;
    else if (streq(key, "id"))
        slot = &m->id;
    else if (streq(key, "ro") || streq(key, "readonly")) {
        bool ro;
        if (mount_bool(key, v, &ro, err) < 0)
            return -1;
        m->rw = !ro;
        return 0;
    } else if (streq(key, "rw") || streq(key, "readwrite"))
        return mount_bool(key, v, &m->rw, err);
    else if (streq(key, "required"))
        return mount_bool(key, v, &m->required, err);
    else if (streq(key, "uid"))
        return mount_number(key, v, 10, &m->uid, err);
    else if (streq(key, "gid"))
        return mount_number(key, v, 10, &m->gid, err);
    else if (streq(key, "mode"))
        return mount_number(key, v, 8, &m->mode, err);
    else if (streq(key, "size"))
        return 0; /* tmpfs size: the scratch directory has no limit of its own */
    else if (streq(key, "sharing")) {
        if (v && streq(v, "shared"))
            m->sharing = SHARING_SHARED;
        else if (v && streq(v, "private"))
            m->sharing = SHARING_PRIVATE;
        else if (v && streq(v, "locked"))
            m->sharing = SHARING_LOCKED;
        else
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "RUN --mount: sharing=%s is not shared, private or locked",
                                 v ? v : "");
        return 0;
    } else
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED, "RUN --mount: option '%s' is not supported",
                             key);
    if (v == NULL || *v == '\0')
        return chrun_err_set(err, CHRUN_E_INPUT, "RUN --mount: %s needs a value", key);
    free(*slot);
    *slot = strdup(v);
    return *slot ? 0 : chrun_err_sys(err, ENOMEM, "build");
}

/* Normalize the absolute mount target PATH in place ("//" and "." go,
 * "/src/." is "/src"). Returns -1 for "/", a ".." component, or a place the
 * runtime mounts itself (/proc, /dev, /sys). */
static int clean_target(char *path)
{
    char *out = path + 1, *p = path;
    while (*p) {
        size_t len;
        while (*p == '/')
            p++;
        len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return -1;
        if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (out > path + 1)
                *out++ = '/';
            memmove(out, p, len);
            out += len;
        }
        p += len;
    }
    *out = '\0';
    if (path[1] == '\0')
        return -1;
    for (const char *const *r = (const char *const[]){"proc", "dev", "sys", NULL}; *r; r++) {
        size_t len = strlen(*r);
        if (strncmp(path + 1, *r, len) == 0 && (path[len + 1] == '\0' || path[len + 1] == '/'))
            return -1;
    }
    return 0;
}

/* Parse one --mount=SPEC (substituted) of stage S into M. */
static int parse_mount(struct builder *b, struct stage *s, const char *spec, struct run_mount *m,
                       struct chrun_err *err)
{
    cleanup_free char *text = build_word1(b, spec, err);
    char *save = NULL;
    *m = (struct run_mount){.uid = -1, .gid = -1, .mode = -1, .lockfd = -1, .srcfd = -1};
    if (text == NULL)
        return -1;
    for (char *kv = strtok_r(text, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (eq != NULL)
            *eq++ = '\0';
        if (mount_option(m, kv, eq, err) < 0)
            return -1;
    }
    if (m->type == MOUNT_SECRET && m->id == NULL && m->target == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "RUN --mount=type=secret needs id= or target=");
    if (m->type == MOUNT_SECRET && m->id == NULL) {
        const char *slash = strrchr(m->target, '/');
        m->id = strdup(slash ? slash + 1 : m->target);
    }
    if (m->type == MOUNT_SECRET && m->target == NULL && m->id != NULL &&
        asprintf(&m->target, "/run/secrets/%s", m->id) < 0)
        m->target = NULL;
    if (m->target == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "RUN --mount needs target=");
    if (m->type == MOUNT_CACHE && m->from != NULL)
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                             "RUN --mount=type=cache,from= is not supported");
    if (m->type == MOUNT_CACHE && m->id == NULL && (m->id = strdup(m->target)) == NULL)
        return chrun_err_sys(err, ENOMEM, "build");
    {
        char *abs = build_abs_path(s, m->target);
        if (abs == NULL)
            return chrun_err_sys(err, ENOMEM, "build");
        free(m->target);
        m->target = abs;
    }
    if (clean_target(m->target) < 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "RUN --mount: target '%s' is not allowed",
                             m->target);
    return 0;
}

/* The canonical host path of FD (O_PATH): what the runtime bind-mounts. The
 * runtime also gets FD itself and refuses to start if the path no longer
 * names that file (a context another user can write could swap a directory
 * for a symlink between our in-root open and the mount). */
static int fd_host_path(int fd, char *buf, size_t size, struct chrun_err *err)
{
    char proc[64];
    ssize_t n;
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    n = readlink(proc, buf, size - 1);
    if (n < 0 || (size_t) n >= size - 1)
        return chrun_err_sys(err, n < 0 ? errno : ENAMETOOLONG, "resolve a mount source");
    buf[n] = '\0';
    return 0;
}

static const struct secret *find_secret(struct builder *b, const char *id)
{
    for (size_t i = 0; i < b->opts->n_secrets; i++)
        if (streq(b->secrets[i].id, id))
            return &b->secrets[i];
    return NULL;
}

/* A fresh directory NAME (sizeof 32) under the stage's work directory; its
 * host path in HOST. */
static int stage_scratch_dir(struct stage *s, char *name, char *host, size_t size,
                             struct chrun_err *err)
{
    snprintf(name, 32, "mnt-%u", s->scratch_seq++);
    if (mkdirat(s->workfd, name, 0755) < 0 || fchmodat(s->workfd, name, 0755, 0) < 0)
        return chrun_err_sys(err, errno, "create mount directory");
    if (snprintf(host, size, "%s/%s", s->bundle, name) >= (int) size)
        return chrun_err_sys(err, ENAMETOOLONG, "mount directory");
    return 0;
}

/* The secret's bytes, copied to a private file (mode, owner) for the step. */
static int prepare_secret(struct builder *b, struct stage *s, struct run_mount *m,
                          struct chrun_err *err)
{
    const struct secret *sec = find_secret(b, m->id);
    cleanup_close int in = -1, out = -1;
    cleanup_free char *buf = NULL;
    char *name = m->scratch;
    ssize_t n;
    if (sec == NULL) {
        if (m->required)
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "RUN --mount=type=secret: secret '%s' was not given (--secret "
                                 "id=%s,src=FILE)",
                                 m->id, m->id);
        m->skip = true;
        return 0;
    }
    snprintf(name, sizeof(m->scratch), "secret-%u", s->scratch_seq++);
    if (sec->path != NULL) {
        in = open(sec->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (in < 0)
            return chrun_err_sys(err, errno, "secret '%s': open '%s'", m->id, sec->path);
    }
    out = openat(s->workfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    buf = malloc(CHRUN_IO_BUFSZ);
    if (out < 0 || buf == NULL)
        return chrun_err_sys(err, out < 0 ? errno : ENOMEM, "secret '%s'", m->id);
    if (in < 0) {
        const char *v = getenv(sec->env);
        if (v == NULL)
            return chrun_err_set(err, CHRUN_E_INPUT, "secret '%s': environment variable '%s' "
                                 "is not set", m->id, sec->env);
        if (chrun_io_write_full(out, v, strlen(v), err) < 0)
            return chrun_err_prefix(err, "secret '%s'", m->id);
        n = 0;
    }
    while (in >= 0 && (n = chrun_io_read_full(in, buf, CHRUN_IO_BUFSZ, err)) > 0)
        if (chrun_io_write_full(out, buf, (size_t) n, err) < 0)
            return chrun_err_prefix(err, "secret '%s'", m->id);
    if (n < 0)
        return chrun_err_prefix(err, "secret '%s'", m->id);
    if ((geteuid() == 0 && fchown(out, m->uid < 0 ? 0 : (uid_t) m->uid,
                                  m->gid < 0 ? 0 : (gid_t) m->gid) < 0) ||
        fchmod(out, m->mode < 0 ? 0400 : (mode_t) m->mode & 07777) < 0)
        return chrun_err_sys(err, errno, "secret '%s'", m->id);
    m->is_file = true;
    if (snprintf(m->host, sizeof(m->host), "%s/%s", s->bundle, name) >= (int) sizeof(m->host))
        return chrun_err_sys(err, ENAMETOOLONG, "secret '%s'", m->id);
    return 0;
}

/* The persistent cache directory of ID: created with uid/gid/mode. */
static int prepare_cache(struct builder *b, struct stage *s, struct run_mount *m,
                         struct chrun_err *err)
{
    struct chrun_digest d;
    cleanup_close int dfd = -1;
    int root = chrun_store_root_fd(b->st);
    const char *hex;
    if (chrun_digest_of_buffer(&d, m->id, strlen(m->id), err) < 0)
        return -1;
    hex = chrun_digest_hex(&d);
    if (mkdirat(root, CHRUN_BUILD_CACHE_MOUNTS_DIR, 0700) < 0 && errno != EEXIST)
        return chrun_err_sys(err, errno, "create '%s'", CHRUN_BUILD_CACHE_MOUNTS_DIR);
    dfd = openat(root, CHRUN_BUILD_CACHE_MOUNTS_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return chrun_err_sys(err, errno, "open '%s'", CHRUN_BUILD_CACHE_MOUNTS_DIR);
    if (mkdirat(dfd, hex, 0755) == 0) {
        if ((geteuid() == 0 && fchownat(dfd, hex, m->uid < 0 ? 0 : (uid_t) m->uid,
                                        m->gid < 0 ? 0 : (gid_t) m->gid, AT_SYMLINK_NOFOLLOW) < 0) ||
            fchmodat(dfd, hex, m->mode < 0 ? 0755 : (mode_t) m->mode & 07777, 0) < 0)
            return chrun_err_sys(err, errno, "cache mount '%s'", m->id);
    } else if (errno != EEXIST) {
        return chrun_err_sys(err, errno, "cache mount '%s'", m->id);
    }
    m->lockfd = openat(dfd, hex, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (m->lockfd < 0)
        return chrun_err_sys(err, errno, "cache mount '%s'", m->id);
    if (m->sharing == SHARING_LOCKED && flock(m->lockfd, LOCK_EX) < 0)
        return chrun_err_sys(err, errno, "lock cache mount '%s'", m->id);
    if (m->sharing == SHARING_PRIVATE && flock(m->lockfd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK)
            return chrun_err_sys(err, errno, "lock cache mount '%s'", m->id);
        /* in use elsewhere: this step gets a fresh one of its own */
        return stage_scratch_dir(s, m->scratch, m->host, sizeof(m->host), err);
    }
    if (snprintf(m->host, sizeof(m->host), "%s/%s/%s", chrun_store_root_path(b->st),
                 CHRUN_BUILD_CACHE_MOUNTS_DIR, hex) >= (int) sizeof(m->host))
        return chrun_err_sys(err, ENAMETOOLONG, "cache mount '%s'", m->id);
    return 0;
}

/* A bind mount of SOURCE from the context or a stage; rw gets a copy, so
 * writes never reach the source, and so does the context when a
 * .dockerignore leaves something out (the copy holds only what is kept). */
static int prepare_bind(struct builder *b, struct stage *s, struct run_mount *m,
                        struct chrun_err *err)
{
    struct stage *src = m->from_stage;
    const char *source = m->source ? m->source : ".";
    cleanup_close int fd = -1;
    struct stat st;
    int rootfd = b->ctxfd;
    if (src != NULL) {
        if (build_materialize(b, src, err) < 0)
            return -1;
        rootfd = src->rootfd;
    }
    /* in the root of the context too: a symlink never leaves it */
    fd = chrun_fs_open_in_root(rootfd, source, O_PATH, 0, err);
    if (fd < 0 || fstat(fd, &st) < 0)
        return chrun_err_prefix(err, "RUN --mount source '%s'", source);
    m->is_file = !S_ISDIR(st.st_mode);
    /* the context as .dockerignore leaves it: what COPY could see, no more */
    if (!m->rw && (src != NULL || build_context_filter(b) == NULL)) {
        if (m->srcfd >= 0) /* a step run again (the full walk after the overlay) */
            close(m->srcfd);
        m->srcfd = take_fd(fd);
        return fd_host_path(m->srcfd, m->host, sizeof(m->host), err);
    }
    {
        struct chrun_copy c = {.ctxfd = rootfd, .src_in_root = src != NULL, .dest = "/",
                               .tmpfd = -1, .filter = src != NULL ? NULL : build_context_filter(b)};
        char *srcs[] = {(char *) source, NULL};
        cleanup_close int dfd = -1;
        const char *slash = strrchr(source, '/');
        if (stage_scratch_dir(s, m->scratch, m->host, sizeof(m->host), err) < 0)
            return -1;
        dfd = openat(s->workfd, m->scratch, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        c.rootfd = dfd;
        if (dfd < 0 || chrun_copy_run(&c, srcs, 1, err) < 0)
            return chrun_err_prefix(err, "RUN --mount source '%s'", source);
        if (m->is_file && strlen(m->host) + strlen(slash ? slash : source) + 2 < sizeof(m->host))
            snprintf(m->host + strlen(m->host), sizeof(m->host) - strlen(m->host), "/%s",
                     slash ? slash + 1 : source);
    }
    return 0;
}

struct run_step {
    char **argv;
    char **env; /* ARG values not shadowed by ENV, "K=V", NULL-terminated */
    size_t n_env;
    struct run_mount mounts[RUN_MOUNTS_MAX];
    size_t n_mounts;
    struct chrun_volume volumes[RUN_MOUNTS_MAX];
    size_t n_volumes;
    bool no_network;
    const char *script;    /* "RUN <<EOF" with a #! line: run as a file, or NULL */
    char script_name[32];  /* its copy in the stage's work directory */
    char script_host[PATH_MAX];
    char script_target[PATH_MAX];
    struct created made;
};

/* Mount points the runtime creates when missing: made before the snapshot
 * and removed after the step when still empty. Files go in etc/ only when
 * the image has one (resolved in the root: an image's "etc -> /host/dir"
 * never makes the builder touch the host). */
static const char *const run_dirs[] = {"/proc", "/dev", "/sys"};
static const char *const run_files[] = {"/etc/resolv.conf", "/etc/hosts"};

static int run_prepare(struct builder *b, struct stage *s, void *data, struct chrun_err *err)
{
    struct run_step *rs = data;
    struct chrun_err ignored = CHRUN_ERR_INIT;
    cleanup_close int etc = chrun_fs_open_in_root(s->rootfd, "etc", O_PATH | O_DIRECTORY, 0,
                                                  &ignored);
    for (size_t i = 0; i < ARRAY_SIZE(run_dirs); i++)
        if (create_in_root(s->rootfd, run_dirs[i], false, &rs->made, err) < 0)
            return -1;
    for (size_t i = 0; etc >= 0 && i < ARRAY_SIZE(run_files); i++)
        if (create_in_root(s->rootfd, run_files[i], true, &rs->made, err) < 0)
            return -1;
    if (rs->script != NULL) {
        /* as BuildKit: the file is bind-mounted at /dev/pipes/NAME (inside the
         * runtime's /dev tmpfs, never in the rootfs) and executed */
        cleanup_close int fd = -1;
        snprintf(rs->script_name, sizeof(rs->script_name), "script-%u", s->scratch_seq++);
        fd = openat(s->workfd, rs->script_name,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755);
        if (fd < 0)
            return chrun_err_sys(err, errno, "RUN heredoc script");
        if (chrun_io_write_full(fd, rs->script, strlen(rs->script), err) < 0)
            return chrun_err_prefix(err, "RUN heredoc script");
        if (fchmod(fd, 0755) < 0)
            return chrun_err_sys(err, errno, "RUN heredoc script");
        if (snprintf(rs->script_host, sizeof(rs->script_host), "%s/%s", s->bundle,
                     rs->script_name) >= (int) sizeof(rs->script_host))
            return chrun_err_sys(err, ENAMETOOLONG, "RUN heredoc script");
        rs->volumes[rs->n_volumes++] = (struct chrun_volume){
            .host = rs->script_host, .ctr = rs->script_target, .ro = true};
    }
    for (size_t i = 0; i < rs->n_mounts; i++) {
        struct run_mount *m = &rs->mounts[i];
        int rc = m->type == MOUNT_SECRET  ? prepare_secret(b, s, m, err)
                 : m->type == MOUNT_CACHE ? prepare_cache(b, s, m, err)
                 : m->type == MOUNT_TMPFS
                     ? stage_scratch_dir(s, m->scratch, m->host, sizeof(m->host), err)
                                          : prepare_bind(b, s, m, err);
        if (rc < 0)
            return -1;
        if (m->skip)
            continue;
        if (create_in_root(s->rootfd, m->target, m->is_file, &rs->made, err) < 0)
            return chrun_err_prefix(err, "RUN --mount target '%s'", m->target);
        rs->volumes[rs->n_volumes++] = (struct chrun_volume){
            .host = m->host, .ctr = m->target,
            .ro = m->type == MOUNT_SECRET || (m->type == MOUNT_BIND && !m->rw),
            .pinned = m->srcfd >= 0, .fd = m->srcfd};
    }
    return 0;
}

static void run_cleanup(struct builder *b, struct stage *s, void *data)
{
    struct run_step *rs = data;
    (void) b;
    remove_created(s->rootfd, &rs->made);
    if (rs->script_name[0] != '\0')
        unlinkat(s->workfd, rs->script_name, 0);
    rs->script_name[0] = '\0';
    /* a secret's copy does not wait for the end of the build */
    for (size_t i = 0; i < rs->n_mounts; i++) {
        struct chrun_err ignored = CHRUN_ERR_INIT;
        if (rs->mounts[i].scratch[0] != '\0')
            chrun_fs_rm_rf_at(s->workfd, rs->mounts[i].scratch, &ignored);
        rs->mounts[i].scratch[0] = '\0';
    }
}

/* Run through the runtime with stdout on our stderr (stdout carries only the
 * digest) and stdin from /dev/null, as a build step has no terminal. */
static int run_exec(struct stage *s, struct run_step *rs, const struct chrun_exec_overlay *overlay,
                    int *ret_status, struct chrun_err *err)
{
    struct chrun_exec_opts eo = CHRUN_EXEC_OPTS_INIT;
    cleanup_close int saved_out = -1, saved_in = -1, null = -1;
    int rc;
    eo.env = (const char *const *) rs->env;
    eo.n_env = rs->n_env;
    eo.volumes = rs->volumes;
    eo.n_volumes = rs->n_volumes;
    eo.overlay = overlay;
    /* root: a metadata change (chmod, chown, touch) copies up no data;
     * chrun_changeset_write_upper takes such a file's bytes from the lower */
    if (overlay != NULL && geteuid() == 0)
        eo.flags |= CHRUN_EXEC_OVERLAY_METACOPY;
    eo.flags |= CHRUN_EXEC_SINGLE_ID;
    /* a Dockerfile runs as root: its own pid namespace (no /proc/PID/root of
     * host processes) and pivot_root (no chroot to climb out of) */
    eo.ns |= CHRUN_EXEC_NS_PID | CHRUN_EXEC_NS_IPC | CHRUN_EXEC_NS_UTS;
    if (rs->no_network)
        eo.ns |= CHRUN_EXEC_NS_NET;
    eo.flags |= CHRUN_EXEC_DEFAULT_CAPS;
    if (chrun_bundle_write_config(s->workfd, s->image, err) < 0)
        return -1;
    fflush(stdout);
    saved_out = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    saved_in = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
    null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (saved_out < 0 || saved_in < 0 || null < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0 ||
        dup2(null, STDIN_FILENO) < 0)
        rc = chrun_err_sys(err, errno, "redirect the output of RUN");
    else
        rc = chrun_runtime_exec(s->bundle, &eo, rs->argv, ret_status, err);
    if (saved_out >= 0)
        dup2(saved_out, STDOUT_FILENO);
    if (saved_in >= 0)
        dup2(saved_in, STDIN_FILENO);
    return rc;
}

static int run_fn(struct builder *b, struct stage *s, void *data, struct chrun_err *err)
{
    struct run_step *rs = data;
    int status = 0, rc;
    (void) b;
    rc = run_exec(s, rs, NULL, &status, err);
    if (rc == 0 && status != 0)
        rc = chrun_err_set(err, CHRUN_E_INPUT, "RUN returned exit status %d", status);
    return rc;
}

/* ---- RUN over an overlay: the step's changes are the upper directory ---- */

/* Why RUN steps cannot diff an overlay upper here, or NULL. The module's
 * redirect_dir and metacopy defaults do not matter: a root mount names both
 * (CHRUN_EXEC_OVERLAY_METACOPY), and an ordinary user's userxattr mount
 * never has either. */
static const char *overlay_obstacle(const struct builder *b)
{
    if (chrun_settings_or_defaults(b->opts->settings)->build_full_walk)
        return "CHRUN_BUILD_FULL_WALK is set";
    return NULL;
}

/* Remove the overlay directory NAME of the stage. An ordinary user's
 * overlay leaves directories of mode 0 in its work directory: made
 * searchable first (as tree.c does for runs/). */
static void remove_overlay_dir(struct stage *s, const char *name)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    /* what stays goes with the stage's work directory at the end of the build */
    chrun_tree_overlay_work_release(s->workfd, name);
    chrun_fs_rm_rf_at(s->workfd, name, &ignored);
}

/* The RUN step over overlayfs: lower = the stage's rootfs as it is, upper
 * and work fresh in the stage's work directory, mounted by the runtime on
 * the rootfs inside the step's own mount namespace (the one overlay
 * mounter, chrun_runtime_exec), so the lower is never written. The upper
 * then is the step's change set: the layer is written from it alone, and
 * the rootfs gets that layer from build_materialize when a later step
 * needs it. Mount points run_prepare made live in the lower, so they never
 * reach the upper; the runtime's mounts never copy anything up. */
static int run_layer(struct builder *b, struct stage *s, void *data,
                     struct chrun_changeset_layer *l, struct chrun_err *err)
{
    struct run_step *rs = data;
    char upper_name[32], work_name[32], lower[PATH_MAX], upper[PATH_MAX], work[PATH_MAX];
    struct chrun_exec_overlay ov = {lower, upper, work};
    const char *why = b->no_overlay ? "the kernel refused it before" : overlay_obstacle(b);
    cleanup_close int upperfd = -1;
    struct stat root;
    double start_ms = monotonic_ms(), diff_ms;
    int status = 0, rc;

    if (why != NULL) {
        chrun_log_debug("RUN: full walk, no overlay: %s", why);
        return 0;
    }
    snprintf(upper_name, sizeof(upper_name), "upper-%u", s->scratch_seq);
    snprintf(work_name, sizeof(work_name), "ovlwork-%u", s->scratch_seq++);
    if (snprintf(lower, sizeof(lower), "%s/rootfs", s->bundle) >= (int) sizeof(lower) ||
        snprintf(upper, sizeof(upper), "%s/%s", s->bundle, upper_name) >= (int) sizeof(upper) ||
        snprintf(work, sizeof(work), "%s/%s", s->bundle, work_name) >= (int) sizeof(work))
        return chrun_err_sys(err, ENAMETOOLONG, "overlay directories of '%s'", s->bundle);
    /* the merged root directory is the upper's: it gets the rootfs' mode
     * and owner, so the step sees "/" as it is */
    if (fstat(s->rootfd, &root) < 0 || mkdirat(s->workfd, upper_name, 0700) < 0 ||
        (geteuid() == 0 &&
         fchownat(s->workfd, upper_name, root.st_uid, root.st_gid, AT_SYMLINK_NOFOLLOW) < 0) ||
        fchmodat(s->workfd, upper_name, root.st_mode & 07777, 0) < 0 ||
        mkdirat(s->workfd, work_name, 0700) < 0) {
        rc = chrun_err_sys(err, errno, "create overlay directories");
        remove_overlay_dir(s, upper_name);
        return rc;
    }
    rc = run_exec(s, rs, &ov, &status, err);
    remove_overlay_dir(s, work_name);
    if (rc < 0 && err->code == CHRUN_E_UNSUPPORTED && err->errnum != 0) {
        /* nothing ran: the snapshot path does the step, and the next ones */
        chrun_log_debug("RUN: full walk, overlay refused: %s: %s", err->msg, strerror(err->errnum));
        chrun_err_clear(err);
        b->no_overlay = true;
        remove_overlay_dir(s, upper_name);
        return 0;
    }
    if (rc == 0 && status != 0)
        rc = chrun_err_set(err, CHRUN_E_INPUT, "RUN returned exit status %d", status);
    diff_ms = monotonic_ms();
    if (rc == 0 && (upperfd = openat(s->workfd, upper_name,
                                     O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        rc = chrun_err_sys(err, errno, "open the overlay upper");
    if (rc == 0)
        rc = chrun_changeset_write_upper(b->st, upperfd, s->rootfd,
                                         geteuid() != 0 ? CHRUN_CHANGESET_USERXATTR : 0, b->epoch,
                                         l, err);
    diff_ms = monotonic_ms() - diff_ms;
    remove_overlay_dir(s, upper_name);
    if (rc > 0) {
        /* the command's effects went with the upper; run it again where
         * its changes land in the rootfs itself */
        chrun_log_debug("RUN: full walk, the overlay upper alone is not the change (a lower "
                        "hardlink copied up, or a rename onto a lower name): running the step "
                        "again");
        return 0;
    }
    if (rc == 0)
        chrun_log_debug("step diff: overlay upper, %.1f ms (step %.1f ms)", diff_ms,
                        monotonic_ms() - start_ms);
    return rc < 0 ? -1 : 1;
}

static int build_run_env(struct stage *s, struct run_step *rs, struct chrun_err *err)
{
    rs->env = calloc(s->args.n + 1, sizeof(char *));
    if (rs->env == NULL)
        return chrun_err_sys(err, ENOMEM, "build");
    for (size_t i = 0; i < s->args.n; i++) {
        const struct var *v = &s->args.v[i];
        if (v->value == NULL || build_env_value(s, v->name) != NULL)
            continue;
        if (asprintf(&rs->env[rs->n_env], "%s=%s", v->name, v->value) < 0)
            return chrun_err_sys(err, ENOMEM, "build");
        rs->n_env++;
    }
    return 0;
}

/* The shell of shell-form commands: SHELL's, else /bin/sh -c. */
static int shell_argv(struct stage *s, const char *script, char ***ret, struct chrun_err *err)
{
    json_t *sh = build_cfg_get(s, "Shell"), *v;
    size_t n = json_is_array(sh) && json_array_size(sh) > 0 ? json_array_size(sh) : 2, i;
    char **argv = calloc(n + 2, sizeof(char *));
    if (argv == NULL)
        return chrun_err_sys(err, ENOMEM, "build");
    if (json_is_array(sh) && json_array_size(sh) > 0) {
        json_array_foreach (sh, i, v)
            argv[i] = strdup(json_string_value(v) ?: "");
    } else {
        argv[0] = strdup("/bin/sh");
        argv[1] = strdup("-c");
    }
    argv[n] = strdup(script);
    for (i = 0; i <= n; i++)
        if (argv[i] == NULL) {
            chrun_dockerfile_words_free(argv);
            return chrun_err_sys(err, ENOMEM, "build");
        }
    *ret = argv;
    return 0;
}

static int run_setup_mounts(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                            struct run_step *rs, char **extra, struct chrun_err *err)
{
    const char *net = chrun_df_instr_flag(in, "network");
    if (net == NULL)
        net = b->opts->network ? b->opts->network : "default";
    if (streq(net, "none"))
        rs->no_network = true;
    else if (!streq(net, "default") && !streq(net, "host"))
        return chrun_err_set(err, CHRUN_E_INPUT, "RUN --network=%s: want none, default or host",
                             net);
    /* the network a step ran with is part of its input, also from the CLI */
    if (!streq(net, "default")) {
        char *more = NULL;
        if (asprintf(&more, "%s\nnetwork %s", *extra, net) < 0)
            return chrun_err_sys(err, ENOMEM, "build");
        free(*extra);
        *extra = more;
    }
    for (size_t i = 0; i < in->n_flags; i++) {
        struct run_mount *m = &rs->mounts[rs->n_mounts];
        if (!streq(in->flags[i].name, "mount"))
            continue;
        if (rs->n_mounts == RUN_MOUNTS_MAX)
            return chrun_err_set(err, CHRUN_E_INPUT, "more than %d RUN --mount's",
                                 RUN_MOUNTS_MAX);
        rs->n_mounts++;
        if (parse_mount(b, s, in->flags[i].value, m, err) < 0)
            return -1;
        if (m->type == MOUNT_BIND && m->from != NULL &&
            build_resolve_from(b, s, "RUN --mount from", m->from, &m->from_stage, err) < 0)
            return -1;
        /* what a bind mount shows is part of the step's input */
        if (m->type == MOUNT_BIND) {
            struct chrun_digest d;
            char *src = m->source ? m->source : ".", *more = NULL;
            if (m->from_stage != NULL)
                d = m->from_stage->chain;
            else if (chrun_copy_hash(b->ctxfd, &src, 1, build_context_filter(b), &d, err) < 0)
                return chrun_err_prefix(err, "RUN --mount");
            if (asprintf(&more, "%s\nmount %s", *extra, d.str) < 0)
                return chrun_err_sys(err, ENOMEM, "build");
            free(*extra);
            *extra = more;
        }
    }
    return 0;
}

/* The instruction as the history and the cache key show it: keyword, flags
 * as written, arguments. */
char *build_instr_text(const struct chrun_df_instr *in, const char *args)
{
    char *text = strdup(in->keyword);
    for (size_t i = 0; text && i < in->n_flags; i++) {
        char *more = NULL;
        if (asprintf(&more, "%s --%s%s%s", text, in->flags[i].name, in->flags[i].value ? "=" : "",
                     in->flags[i].value ? in->flags[i].value : "") < 0)
            more = NULL;
        free(text);
        text = more;
    }
    if (text != NULL) {
        char *more = NULL;
        if (asprintf(&more, "%s %s", text, args) < 0)
            more = NULL;
        free(text);
        text = more;
    }
    return text;
}

int build_do_run(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                 struct chrun_err *err)
{
    static const struct step_ops ops = {run_prepare, run_fn, run_cleanup, run_layer};
    struct run_step *rs = calloc(1, sizeof(*rs));
    cleanup_free char *text = NULL, *argv_json = NULL, *extra = NULL;
    cleanup_json json_t *arr = json_array();
    int rc = rs && arr ? 0 : chrun_err_sys(err, ENOMEM, "build");
    if (rc == 0 && in->exec != NULL) {
        rs->argv = calloc(in->n_exec + 1, sizeof(char *));
        for (size_t i = 0; rs->argv && i < in->n_exec; i++)
            rs->argv[i] = strdup(in->exec[i]);
        if (rs->argv == NULL)
            rc = chrun_err_sys(err, ENOMEM, "build");
    } else if (rc == 0 && in->n_heredocs == 1 && in->script != NULL &&
               str_has_prefix(in->script, "#!") && streq(in->script, in->heredocs[0].body)) {
        rs->script = in->script;
        snprintf(rs->script_target, sizeof(rs->script_target), "/dev/pipes/%s",
                 in->heredocs[0].name);
        rs->argv = calloc(2, sizeof(char *));
        if (rs->argv == NULL || (rs->argv[0] = strdup(rs->script_target)) == NULL)
            rc = chrun_err_sys(err, ENOMEM, "build");
    } else if (rc == 0) {
        rc = shell_argv(s, in->script ? in->script : in->args, &rs->argv, err);
    }
    for (char **a = rc == 0 ? rs->argv : NULL; rc == 0 && a && *a; a++)
        rc = build_append_str(arr, *a, "RUN", err);
    if (rc == 0 && (argv_json = json_dumps(arr, JSON_COMPACT)) == NULL)
        rc = chrun_err_sys(err, ENOMEM, "build");
    if (rc == 0)
        rc = build_run_env(s, rs, err);
    if (rc == 0 && ((text = build_instr_text(in, in->exec ? argv_json : in->args)) == NULL ||
                    asprintf(&extra, "%s\n%s", argv_json, rs->script ? rs->script : "") < 0))
        rc = chrun_err_sys(err, ENOMEM, "build");
    for (size_t i = 0; rc == 0 && i < rs->n_env; i++) {
        char *more = NULL;
        if (asprintf(&more, "%s\n%s", extra, rs->env[i]) < 0)
            rc = chrun_err_sys(err, ENOMEM, "build");
        free(extra);
        extra = more;
    }
    if (rc == 0)
        rc = run_setup_mounts(b, s, in, rs, &extra, err);
    if (rc == 0)
        rc = build_fs_step(b, s, text, extra, &ops, rs, err);
    if (rs != NULL) {
        for (size_t i = 0; i < rs->n_mounts; i++)
            mount_release(&rs->mounts[i]);
        remove_created(s->rootfd, &rs->made);
        chrun_dockerfile_words_free(rs->env);
        chrun_dockerfile_words_free(rs->argv);
        free(rs);
    }
    return rc;
}
