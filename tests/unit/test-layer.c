/* Unit tests for the layer applier (src/layer.c). */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "chrun/fs.h"
#include "chrun/layer.h"
#include "harness.h"
#include "tar-specs.h"

/* Apply the plain tar PATH to ROOTFD with a correct (or WRONG) diff_id. */
static int apply(struct chrun_layer_applier *a, const char *path, bool wrong, struct chrun_err *err)
{
    struct chrun_descriptor desc = {0};
    struct chrun_digest diff;
    size_t n = 0;
    char *buf = slurp(path, &n);
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
    chrun_digest_of_buffer(&desc.digest, buf, n, err);
    free(buf);
    desc.size = (int64_t) n;
    snprintf(desc.media_type, sizeof(desc.media_type), "%s", CHRUN_MT_OCI_LAYER);
    diff = desc.digest;
    if (wrong)
        diff.str[10] = diff.str[10] == '0' ? '1' : '0';
    lseek(fd, 0, SEEK_SET);
    rc = chrun_layer_apply(a, fd, &desc, &diff, err);
    close(fd);
    return rc;
}

static int open_root(void)
{
    mkdir("root", 0755);
    return open("root", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static void test_files_dirs_symlinks(void)
{
    static const char *const l1[] = {"d:etc", "f:etc/a=hello", "l:bin>usr/bin", "d:usr/bin", NULL};
    static const char *const l2[] = {"f:bin/sh=sh", "f:etc/.wh.a", NULL};
    struct chrun_err err = CHRUN_ERR_INIT;
    int rootfd = open_root();
    struct chrun_layer_applier *a = chrun_layer_applier_new(rootfd, &err);
    struct stat st;
    make_tar("l1.tar", l1);
    make_tar("l2.tar", l2);
    CHECK_INT_EQ(apply(a, "l1.tar", false, &err), 0);
    CHECK(access("root/etc/a", F_OK) == 0);
    CHECK_INT_EQ(apply(a, "l2.tar", false, &err), 0);
    CHECK_INT_EQ(chrun_layer_applier_finish(a, &err), 0);
    CHECK(access("root/etc/a", F_OK) != 0);
    CHECK(lstat("root/usr/bin/sh", &st) == 0 && S_ISREG(st.st_mode));
    CHECK(lstat("root/etc", &st) == 0 && st.st_mtime == 1600000000);
    chrun_layer_applier_free(a);
    close(rootfd);
}

static void test_dotdot_refused(void)
{
    static const char *const l[] = {"f:a/../../x=evil", NULL};
    struct chrun_err err = CHRUN_ERR_INIT;
    int rootfd = open_root();
    struct chrun_layer_applier *a = chrun_layer_applier_new(rootfd, &err);
    make_tar("l.tar", l);
    CHECK_INT_EQ(apply(a, "l.tar", false, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(strstr(err.msg, "'..' component") != NULL);
    CHECK(access("x", F_OK) != 0);
    chrun_layer_applier_free(a);
    close(rootfd);
}

static void test_symlink_escape_refused(void)
{
    static const char *const l[] = {"l:evil>/tmp", "f:evil/chrun-unit-escape=x", NULL};
    struct chrun_err err = CHRUN_ERR_INIT;
    int rootfd = open_root();
    struct chrun_layer_applier *a = chrun_layer_applier_new(rootfd, &err);
    make_tar("l.tar", l);
    CHECK_INT_EQ(apply(a, "l.tar", false, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(access("/tmp/chrun-unit-escape", F_OK) != 0);
    chrun_layer_applier_free(a);
    close(rootfd);
}

/* Apply LAYERS (NULL-terminated spec lists) in order onto a fresh root. */
static int apply_layers(const char *const *const *layers, size_t n, struct chrun_err *err)
{
    int rootfd = open_root(), rc = 0;
    struct chrun_layer_applier *a = chrun_layer_applier_new(rootfd, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "layer%zu.tar", i);
        make_tar(name, layers[i]);
        rc = apply(a, name, false, err);
    }
    if (rc == 0)
        rc = chrun_layer_applier_finish(a, err);
    chrun_layer_applier_free(a);
    close(rootfd);
    return rc;
}

/* SPEC "Bad input" (issue 7, umoci): a whiteout (plain or opaque) whose
 * parent is not a directory reached without symlinks (a file, a symlink,
 * absent) deletes nothing and follows nothing; test-export.c has the same
 * case for the tree back-end. */
static void umoci_whiteout_case(void)
{
    static const char *const *layers[] = {umoci_l1, umoci_l2};
    struct chrun_err err = CHRUN_ERR_INIT;
    struct stat st;
    CHECK_INT_EQ(apply_layers(layers, 2, &err), 0);
    CHECK(lstat("root/r/d", &st) == 0 && S_ISREG(st.st_mode));
    CHECK(lstat("root/r/s", &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(access("root/t/keep", F_OK) == 0);
    CHECK(access("root/r/gone", F_OK) != 0);
    CHECK_INT_EQ(count_entries("root/r"), 2);
}

static void test_whiteout_under_non_directory_is_nothing(void)
{
    umoci_whiteout_case();
}

/* The same through the fallback walk, as on a kernel without openat2. */
static void test_whiteout_under_non_directory_walk(void)
{
    chrun_fs_force_walk(true);
    umoci_whiteout_case();
    chrun_fs_force_walk(false);
}

static void test_symlink_escape_refused_walk(void)
{
    chrun_fs_force_walk(true);
    test_symlink_escape_refused();
    chrun_fs_force_walk(false);
}

/* Old copies differed: the applier failed (the target went with the
 * directory it replaced), the exporter's model linked the freed file. One
 * rule now: refused, by both back-ends (test-export.c has the tree's). */
static void test_hardlink_into_replaced_path_refused(void)
{
    static const char *const l1[] = {"d:x", "f:x/y=Y", NULL};
    static const char *const l2[] = {"h:x>x/y", NULL};
    static const char *const *layers[] = {l1, l2};
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(apply_layers(layers, 2, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(strstr(err.msg, "inside the entry it replaces") != NULL);
    CHECK(access("root/x/y", F_OK) == 0); /* refused before anything was removed */
}

/* Old copies differed: a whiteout in a directory whose name is too long for
 * the kernel (a component over NAME_MAX) failed the unpack, while export
 * took it as nothing to delete. No such directory can exist: nothing. */
static void test_whiteout_in_overlong_dir_is_nothing(void)
{
    char wh[400], *l2[] = {wh, NULL};
    static const char *const l1[] = {"f:a=A", NULL};
    const char *const *layers[] = {l1, (const char *const *) l2};
    struct chrun_err err = CHRUN_ERR_INIT;
    snprintf(wh, sizeof(wh), "f:%0300d/.wh.a", 0);
    CHECK_INT_EQ(apply_layers(layers, 2, &err), 0);
    CHECK(access("root/a", F_OK) == 0);
}

/* Old copies differed: implicit parents took the caller's umask on disk
 * but 0755 in the export. Now 0755 in both. */
static void test_implicit_parents_are_0755(void)
{
    static const char *const l1[] = {"f:implicit/deep/y=y", NULL};
    static const char *const *layers[] = {l1};
    struct chrun_err err = CHRUN_ERR_INIT;
    struct stat st;
    mode_t old = umask(077);
    CHECK_INT_EQ(apply_layers(layers, 1, &err), 0);
    umask(old);
    CHECK(stat("root/implicit", &st) == 0 && (st.st_mode & 07777) == 0755);
    CHECK(stat("root/implicit/deep", &st) == 0 && (st.st_mode & 07777) == 0755);
}

/* A chain of links up to the kernel's limit resolves, one more does not:
 * the same bound for openat2, the walk and the exporter's model. */
static void test_parent_symlink_chain_limit(void)
{
    static char specs[2][CHRUN_FS_MAX_HOPS + 3][32];
    for (int extra = 0; extra < 2; extra++) {
        int links = CHRUN_FS_MAX_HOPS + extra;
        const char *l1[CHRUN_FS_MAX_HOPS + 4];
        const char *const *layers[] = {l1};
        struct chrun_err err = CHRUN_ERR_INIT;
        chain_specs(links, specs[extra], l1);
        CHECK(system("rm -rf root") == 0);
        CHECK_INT_EQ(apply_layers(layers, 1, &err), extra ? -1 : 0);
        CHECK_INT_EQ(access("root/d/x", F_OK), extra ? -1 : 0);
    }
}

static void test_diff_id_mismatch(void)
{
    static const char *const l[] = {"f:a=x", NULL};
    struct chrun_err err = CHRUN_ERR_INIT;
    int rootfd = open_root();
    struct chrun_layer_applier *a = chrun_layer_applier_new(rootfd, &err);
    make_tar("l.tar", l);
    CHECK_INT_EQ(apply(a, "l.tar", true, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_DIGEST);
    CHECK(strstr(err.msg, "diff_id mismatch") != NULL);
    chrun_layer_applier_free(a);
    close(rootfd);
}

static void test_unsupported_media_type(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_descriptor desc = {0};
    struct chrun_digest diff;
    int rootfd = open_root();
    struct chrun_layer_applier *a = chrun_layer_applier_new(rootfd, &err);
    snprintf(desc.media_type, sizeof(desc.media_type), "application/x-nope");
    chrun_digest_of_buffer(&desc.digest, "", 0, &err);
    diff = desc.digest;
    CHECK_INT_EQ(chrun_layer_apply(a, 0, &desc, &diff, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_UNSUPPORTED);
    chrun_layer_applier_free(a);
    close(rootfd);
}

/* A chrun_layer_source over a buffer: whole reads, the short one at the
 * end; FAIL_AT > 0 fails the read that would pass that offset. */
struct mem_source {
    const char *buf;
    size_t len, off, fail_at;
    unsigned asked; /* calls of mem_flip */
};

/* chrun_layer_source.behind that says yes and no in turn: files go to the
 * pool and are made in line by turns, while jobs are pending. */
static bool mem_flip(void *data)
{
    struct mem_source *m = data;
    return m->asked++ % 2 == 0;
}

static ssize_t mem_read(void *data, void *buf, size_t cap, struct chrun_err *err)
{
    struct mem_source *m = data;
    size_t n = m->len - m->off < cap ? m->len - m->off : cap;
    if (m->fail_at > 0 && m->off + n > m->fail_at)
        return chrun_err_set(err, CHRUN_E_NETWORK, "blob: download failed");
    memcpy(buf, m->buf + m->off, n);
    m->off += n;
    return (ssize_t) n;
}

/* Apply the plain tar PATH from a mem_source failing at FAIL_AT (0: never),
 * asking mem_flip whether it is behind when FLIP. */
static int apply_from_source_flip(struct chrun_layer_applier *a, const char *path, size_t fail_at,
                                  bool flip, struct chrun_err *err)
{
    static char buf[1 << 20];
    struct chrun_descriptor desc = {0};
    struct mem_source m = {buf, 0, 0, fail_at, 0};
    struct chrun_layer_source src = {.read = mem_read, .behind = flip ? mem_flip : NULL, .data = &m};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    m.len = (size_t) n;
    chrun_digest_of_buffer(&desc.digest, buf, m.len, err);
    desc.size = n;
    snprintf(desc.media_type, sizeof(desc.media_type), "%s", CHRUN_MT_OCI_LAYER);
    if (chrun_layer_apply_source(a, &src, &desc, &desc.digest, err) < 0)
        return -1;
    /* asked once per small regular file, when it goes to the pool */
    if (flip)
        CHECK(m.asked > 0);
    return 0;
}

static int apply_from_source(struct chrun_layer_applier *a, const char *path, size_t fail_at,
                             struct chrun_err *err)
{
    return apply_from_source_flip(a, path, fail_at, false, err);
}

static void test_source_applies_like_a_descriptor(void)
{
    static const char *const l[] = {"d:etc",     "f:etc/a=hello",   "l:bin>usr/bin",
                                    "d:usr/bin", "f:usr/bin/sh=sh", NULL};
    struct chrun_err err = CHRUN_ERR_INIT;
    int rootfd = open_root();
    struct chrun_layer_applier *a = chrun_layer_applier_new(rootfd, &err);
    struct stat st;
    make_tar("l.tar", l);
    CHECK_INT_EQ(apply_from_source(a, "l.tar", 0, &err), 0);
    CHECK_INT_EQ(chrun_layer_applier_finish(a, &err), 0);
    CHECK(lstat("root/usr/bin/sh", &st) == 0 && S_ISREG(st.st_mode));
    CHECK(lstat("root/bin", &st) == 0 && S_ISLNK(st.st_mode));
    chrun_layer_applier_free(a);
    close(rootfd);
}

static void test_source_failure_is_the_error(void)
{
    static const char *const l[] = {"f:a=x", "f:b=y", NULL};
    struct chrun_err err = CHRUN_ERR_INIT;
    int rootfd = open_root();
    struct chrun_layer_applier *a = chrun_layer_applier_new(rootfd, &err);
    make_tar("l.tar", l);
    CHECK_INT_EQ(apply_from_source(a, "l.tar", 1000, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NETWORK);
    CHECK(strstr(err.msg, "download failed") != NULL);
    chrun_layer_applier_free(a);
    close(rootfd);
}

/* ---- the file creation threads: the changeset rules hold as with one ---- */

#define POOL_THREADS 4
#define FILLERS 60

/* Append to OUT one line per entry below DIR (sorted): name, type, mode,
 * size, content or link target, and which earlier entry it shares an inode
 * with. */
static void snap_tree(int dirfd, const char *prefix, FILE *out, ino_t *inos, char (*names)[512],
                      size_t *n_inos)
{
    struct dirent **list = NULL;
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int n = fd < 0 ? -1 : scandirat(fd, ".", &list, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        char path[512], link[256] = "";
        struct stat st;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
            fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            free(list[i]);
            continue;
        }
        snprintf(path, sizeof(path), "%s%s", prefix, name);
        fprintf(out, "%s %o %lld", path, (unsigned) st.st_mode, (long long) st.st_size);
        if (S_ISLNK(st.st_mode) && readlinkat(fd, name, link, sizeof(link) - 1) > 0)
            fprintf(out, " -> %s", link);
        if (S_ISREG(st.st_mode)) {
            char data[4096];
            int f = openat(fd, name, O_RDONLY | O_CLOEXEC);
            ssize_t r = f < 0 ? -1 : read(f, data, sizeof(data) - 1);
            if (f >= 0)
                close(f);
            data[r > 0 ? r : 0] = '\0';
            fprintf(out, " =%s", data);
            for (size_t k = 0; k < *n_inos; k++)
                if (inos[k] == st.st_ino)
                    fprintf(out, " same-as %s", names[k]);
            if (*n_inos < 1024) {
                inos[*n_inos] = st.st_ino;
                snprintf(names[(*n_inos)++], 512, "%s", path);
            }
        }
        fputc('\n', out);
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            char p2[520];
            snprintf(p2, sizeof(p2), "%s/", path);
            if (sub >= 0) {
                snap_tree(sub, p2, out, inos, names, n_inos);
                close(sub);
            }
        }
        free(list[i]);
    }
    free(list);
    if (fd >= 0)
        close(fd);
}

/* The tree below DIR as text (caller frees). */
static char *tree_text(const char *dir)
{
    static ino_t inos[1024];
    static char names[1024][512];
    size_t n_inos = 0, len = 0;
    char *text = NULL;
    FILE *out = open_memstream(&text, &len);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        snap_tree(fd, "", out, inos, names, &n_inos);
        close(fd);
    }
    fclose(out);
    return text;
}

/* Specs: FILLERS small files under fill/ (to keep the threads busy), then
 * CASE. Returns a NULL-terminated array in BUF's storage. */
static const char **with_fillers(const char *const *spec, char (*buf)[48], const char **out)
{
    size_t n = 0;
    for (; n < FILLERS; n++) {
        snprintf(buf[n], 48, "f:fill%zu/n%zu=filler %zu", n % 3, n, n);
        out[n] = buf[n];
    }
    for (; *spec; spec++)
        out[n++] = *spec;
    out[n] = NULL;
    return out;
}

/* Write LAYERS as pool-layerI.tar, each after FILLERS files. */
static void make_layers(const char *const *const *layers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char name[64];
        static char fbuf[FILLERS][48];
        const char *specs[FILLERS + 64];
        snprintf(name, sizeof(name), "pool-layer%zu.tar", i);
        make_tar(name, with_fillers(layers[i], fbuf, specs));
    }
}

/* Apply the N layers of make_layers onto a fresh DIR with THREADS file
 * creation threads; returns what chrun_layer_apply/finish returned. */
static int apply_threads(const char *dir, unsigned threads, size_t n, struct chrun_err *err)
{
    int rootfd, rc = 0;
    struct chrun_layer_applier *a;
    mkdir(dir, 0755);
    rootfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    a = chrun_layer_applier_new(rootfd, err);
    chrun_layer_applier_set_threads(a, threads);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char name[64];
        snprintf(name, sizeof(name), "pool-layer%zu.tar", i);
        rc = apply(a, name, false, err);
    }
    if (rc == 0)
        rc = chrun_layer_applier_finish(a, err);
    chrun_layer_applier_free(a);
    close(rootfd);
    return rc;
}

/* LAYERS give the same tree, or the same error, with one thread and with
 * POOL_THREADS (several rounds, to meet more interleavings). FSIZE: a file
 * size limit while they apply (as a full disk would fail), 0 for none.
 * Returns the pooled tree (caller frees); *RET_RC and RET_ERR as the pooled
 * run gave. */
static char *same_as_one_thread(const char *const *const *layers, size_t n, rlim_t fsize,
                                int *ret_rc, struct chrun_err *ret_err)
{
    struct chrun_err err1 = CHRUN_ERR_INIT;
    struct rlimit old, lim;
    struct sigaction ign = {.sa_handler = SIG_IGN}, oldsa;
    int rc1;
    make_layers(layers, n);
    getrlimit(RLIMIT_FSIZE, &old);
    lim = (struct rlimit){.rlim_cur = fsize, .rlim_max = old.rlim_max};
    sigaction(SIGXFSZ, &ign, &oldsa);
    if (fsize > 0)
        CHECK_INT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
    rc1 = apply_threads("one", 1, n, &err1);
    char *want = tree_text("one"), *got = NULL;
    for (int round = 0; round < 5; round++) {
        char dir[32];
        *ret_err = (struct chrun_err) CHRUN_ERR_INIT;
        snprintf(dir, sizeof(dir), "pool%d", round);
        *ret_rc = apply_threads(dir, POOL_THREADS, n, ret_err);
        CHECK_INT_EQ(*ret_rc, rc1);
        CHECK_STR_EQ(ret_err->msg, err1.msg);
        free(got);
        got = tree_text(dir);
        if (rc1 == 0)
            CHECK_STR_EQ(got, want);
    }
    setrlimit(RLIMIT_FSIZE, &old);
    sigaction(SIGXFSZ, &oldsa, NULL);
    free(want);
    return got;
}

static void test_pool_hardlink_after_target(void)
{
    static const char *const l1[] = {"f:d/t=target", "h:d/h>d/t", "f:d/u=u",
                                     "h:h2>d/u",     "h:h3>d/h",  NULL};
    static const char *const *layers[] = {l1};
    struct chrun_err err;
    struct stat st;
    int rc;
    char *tree = same_as_one_thread(layers, 1, 0, &rc, &err);
    CHECK_INT_EQ(rc, 0);
    CHECK(strstr(tree, "d/t 100644 6 =target same-as d/h") != NULL);
    CHECK(strstr(tree, "h2 100644 1 =u same-as d/u") != NULL);
    CHECK(stat("pool0/d/t", &st) == 0 && st.st_nlink == 3);
    free(tree);
}

/* A whiteout of a directory whose files (of this layer) are still being
 * written; a whiteout of a lower file the layer wrote again before it. */
static void test_pool_whiteout_pending(void)
{
    static const char *const l1[] = {"d:w", "f:w/a=1", "f:low=lower", "f:w2/keep=k", NULL};
    static const char *const l2[] = {"f:w/c=3",  "f:w/d=4",  "f:low=again",  "f:.wh.w", "f:.wh.low",
                                     "f:w2/x=x", "f:.wh.w2", "f:w2/y=after", NULL};
    static const char *const *layers[] = {l1, l2};
    struct chrun_err err;
    int rc;
    char *tree = same_as_one_thread(layers, 2, 0, &rc, &err);
    CHECK_INT_EQ(rc, 0);
    CHECK(access("pool0/w", F_OK) != 0);
    CHECK(strstr(tree, "low 100644 5 =again") != NULL);
    CHECK(strstr(tree, "w2/y 100644 5 =after") != NULL);
    CHECK(strstr(tree, "w2/keep") == NULL);
    free(tree);
}

static void test_pool_same_path_twice(void)
{
    static const char *const l1[] = {"f:s=first", "f:t=one",   "f:s=second",
                                     "f:t=two",   "f:s=third", NULL};
    static const char *const *layers[] = {l1};
    struct chrun_err err;
    int rc;
    char *tree = same_as_one_thread(layers, 1, 0, &rc, &err);
    CHECK_INT_EQ(rc, 0);
    CHECK(strstr(tree, "\ns 100644 5 =third\n") != NULL);
    CHECK(strstr(tree, "\nt 100644 3 =two\n") != NULL);
    free(tree);
}

/* A source that is behind only at times: the files it does not hand to the
 * pool are made in line while jobs are pending, and the tree is still the
 * one a single thread makes. */
static void test_pool_source_behind_at_times(void)
{
    static const char *const l1[] = {"f:x=file",       "d:x",   "f:x/y=inner", "d:z", "f:z/a=1",
                                     "f:z=now a file", "f:v=v", "f:s=first",   "f:s=second", NULL};
    static const char *const l2[] = {"f:v2/implicit=parent made", "f:x=file again", NULL};
    static const char *const *layers[] = {l1, l2};
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_layer_applier *a;
    char *want, *got;
    int rootfd;

    make_layers(layers, 2);
    CHECK_INT_EQ(apply_threads("one", 1, 2, &err), 0);
    CHECK(mkdir("mixed", 0755) == 0);
    rootfd = open("mixed", O_PATH | O_DIRECTORY | O_CLOEXEC);
    a = chrun_layer_applier_new(rootfd, &err);
    chrun_layer_applier_set_threads(a, POOL_THREADS);
    CHECK_INT_EQ(apply_from_source_flip(a, "pool-layer0.tar", 0, true, &err), 0);
    CHECK_INT_EQ(apply_from_source_flip(a, "pool-layer1.tar", 0, true, &err), 0);
    CHECK_INT_EQ(chrun_layer_applier_finish(a, &err), 0);
    chrun_layer_applier_free(a);
    close(rootfd);
    want = tree_text("one");
    got = tree_text("mixed");
    CHECK_STR_EQ(got, want);
    free(want);
    free(got);
}

/* A file that becomes a directory and a directory that becomes a file, in
 * one layer and across two. */
static void test_pool_file_then_dir(void)
{
    static const char *const l1[] = {"f:x=file",       "d:x",   "f:x/y=inner", "d:z", "f:z/a=1",
                                     "f:z=now a file", "f:v=v", NULL};
    static const char *const l2[] = {"f:v2/implicit=parent made", "f:x=file again", NULL};
    static const char *const *layers[] = {l1, l2};
    struct chrun_err err;
    int rc;
    char *tree = same_as_one_thread(layers, 2, 0, &rc, &err);
    CHECK_INT_EQ(rc, 0);
    CHECK(strstr(tree, "\nz 100644 10 =now a file\n") != NULL);
    CHECK(strstr(tree, "\nx 100644 10 =file again\n") != NULL);
    CHECK(strstr(tree, "v2/implicit 100644 11 =parent made") != NULL);
    free(tree);
}

/* A file of this layer, maybe not written yet, as the parent of an entry:
 * the same error as with one thread. */
static void test_pool_parent_is_pending_file(void)
{
    static const char *const l1[] = {"f:q=file", "f:q/r=x", NULL};
    static const char *const *layers[] = {l1};
    struct chrun_err err;
    int rc;
    free(same_as_one_thread(layers, 1, 0, &rc, &err));
    CHECK_INT_EQ(rc, -1);
    CHECK(strstr(err.msg, "parent 'q' is not a directory inside the root") != NULL);
}

static void test_pool_opaque_dir(void)
{
    static const char *const l1[] = {"d:o", "f:o/low=1", "d:o/sub", "f:o/sub/f=2", NULL};
    static const char *const l2[] = {"f:o/new=2", "f:o/.wh..wh..opq", "f:o/new2=3", NULL};
    static const char *const *layers[] = {l1, l2};
    struct chrun_err err;
    int rc;
    char *tree = same_as_one_thread(layers, 2, 0, &rc, &err);
    CHECK_INT_EQ(rc, 0);
    CHECK(strstr(tree, "o/low") == NULL);
    CHECK(strstr(tree, "o/sub") == NULL);
    CHECK(strstr(tree, "o/new 100644 1 =2") != NULL);
    CHECK(strstr(tree, "o/new2 100644 1 =3") != NULL);
    free(tree);
}

/* A thread fails to write a file (the file size limit, as a full disk
 * would): the layer fails naming that entry, as with one thread, and the
 * entries after it are not all applied. */
static void test_pool_worker_failure(void)
{
    static char big[4200];
    static const char *l1[] = {"f:a=small", big, "f:z=after", NULL};
    static const char *const *layers[] = {l1};
    struct chrun_err err;
    int rc;
    snprintf(big, sizeof(big), "f:dir/big=");
    memset(big + 10, 'B', 4000);
    free(same_as_one_thread(layers, 1, 2048, &rc, &err));
    CHECK_INT_EQ(rc, -1);
    CHECK(strncmp(err.msg, "layer sha256:", 13) == 0);
    CHECK(strstr(err.msg, ": write 'dir/big': ") != NULL);
    CHECK_INT_EQ(err.errnum, EFBIG);
}

/* Few file descriptors (each job holds one): the pool shrinks, or is not
 * used, and no file fails where one thread would succeed. */
static void test_pool_few_descriptors(void)
{
    static const char *const l1[] = {"f:a=1", "f:a=2", "h:b>a", NULL};
    static const char *const *layers[] = {l1};
    struct rlimit old, lim;
    struct chrun_err err;
    int rc;
    getrlimit(RLIMIT_NOFILE, &old);
    for (rlim_t n = 40; n <= 120; n += 40) {
        char *tree;
        lim = (struct rlimit){.rlim_cur = n, .rlim_max = old.rlim_max};
        CHECK_INT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
        tree = same_as_one_thread(layers, 1, 0, &rc, &err);
        setrlimit(RLIMIT_NOFILE, &old);
        CHECK_INT_EQ(rc, 0);
        CHECK(strstr(tree, "\na 100644 1 =2 same-as") == NULL);
        CHECK(strstr(tree, "\nb 100644 1 =2 same-as a") != NULL);
        free(tree);
        if (system("rm -rf one pool*") != 0)
            CHECK(0);
    }
}

int main(void)
{
    RUN_TEST(test_files_dirs_symlinks);
    RUN_TEST(test_dotdot_refused);
    RUN_TEST(test_symlink_escape_refused);
    RUN_TEST(test_symlink_escape_refused_walk);
    RUN_TEST(test_whiteout_under_non_directory_is_nothing);
    RUN_TEST(test_whiteout_under_non_directory_walk);
    RUN_TEST(test_hardlink_into_replaced_path_refused);
    RUN_TEST(test_whiteout_in_overlong_dir_is_nothing);
    RUN_TEST(test_implicit_parents_are_0755);
    RUN_TEST(test_parent_symlink_chain_limit);
    RUN_TEST(test_diff_id_mismatch);
    RUN_TEST(test_unsupported_media_type);
    RUN_TEST(test_source_applies_like_a_descriptor);
    RUN_TEST(test_source_failure_is_the_error);
    RUN_TEST(test_pool_hardlink_after_target);
    RUN_TEST(test_pool_whiteout_pending);
    RUN_TEST(test_pool_same_path_twice);
    RUN_TEST(test_pool_file_then_dir);
    RUN_TEST(test_pool_source_behind_at_times);
    RUN_TEST(test_pool_parent_is_pending_file);
    RUN_TEST(test_pool_opaque_dir);
    RUN_TEST(test_pool_worker_failure);
    RUN_TEST(test_pool_few_descriptors);
    return harness_done();
}
