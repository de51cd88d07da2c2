/* Unit tests for the tree back-end of the changeset rules (src/export-tree.c):
 * layers are written as plain tars, exported with chrun_export_layers, and
 * the resulting tar is listed entry by entry. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "chrun/export.h"
#include "chrun/fs.h"
#include "chrun/layer.h"
#include "harness.h"
#include "tar-specs.h"

#define MAX_LAYERS 4

/* Export LAYERS (NULL-terminated lists of specs) to out.tar; a WRONG
 * diff_id for the last layer when asked. Returns chrun_export_layers' result. */
static int export_layers(const char *const *const *layers, size_t n, bool wrong,
                         struct chrun_err *err)
{
    struct chrun_descriptor descs[MAX_LAYERS];
    struct chrun_digest diffs[MAX_LAYERS];
    int fds[MAX_LAYERS];
    int out, rc;
    memset(descs, 0, sizeof(descs));
    for (size_t i = 0; i < n; i++) {
        char name[32], *buf;
        size_t len = 0;
        snprintf(name, sizeof(name), "layer%zu.tar", i);
        make_tar(name, layers[i]);
        buf = slurp(name, &len);
        chrun_digest_of_buffer(&descs[i].digest, buf, len, err);
        free(buf);
        descs[i].size = (int64_t) len;
        snprintf(descs[i].media_type, sizeof(descs[i].media_type), "%s", CHRUN_MT_OCI_LAYER);
        diffs[i] = descs[i].digest;
        fds[i] = open(name, O_RDONLY | O_CLOEXEC);
    }
    if (wrong)
        diffs[n - 1].str[10] = diffs[n - 1].str[10] == '0' ? '1' : '0';
    out = open("out.tar", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    rc = chrun_export_layers(fds, descs, diffs, n, out, err);
    close(out);
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
    return rc;
}

/* out.tar as one line per entry, "<type> <name>[ -> <link>][ = <data>]",
 * type d, f, l (symlink) or h (hardlink), into BUF. */
static void list_output(char *buf, size_t size)
{
    struct archive *r = archive_read_new();
    struct archive_entry *e;
    size_t len = 0;
    buf[0] = '\0';
    archive_read_support_format_tar(r);
    if (archive_read_open_filename(r, "out.tar", 10240) != ARCHIVE_OK) {
        archive_read_free(r);
        return;
    }
    while (archive_read_next_header(r, &e) == ARCHIVE_OK && len < size) {
        const char *hl = archive_entry_hardlink(e), *sl = archive_entry_symlink(e);
        char data[64] = "";
        char type = hl ? 'h' : archive_entry_filetype(e) == AE_IFDIR ? 'd'
                           : archive_entry_filetype(e) == AE_IFLNK ? 'l'
                                                                  : 'f';
        if (type == 'f') {
            la_ssize_t n = archive_read_data(r, data, sizeof(data) - 1);
            data[n > 0 ? n : 0] = '\0';
        }
        len += (size_t) snprintf(buf + len, size - len, "%c %s%s%s%s%s\n", type,
                                 archive_entry_pathname(e), hl || sl ? " -> " : "",
                                 hl ? hl : sl ? sl : "", type == 'f' ? " = " : "", data);
    }
    archive_read_free(r);
}

static void test_whiteouts_and_opaque_dirs(void)
{
    static const char *const l1[] = {"d:d", "f:d/a=a", "d:d/sub", "f:d/sub/b=b", "f:x=x",
                                     "f:y=y", NULL};
    static const char *const l2[] = {"f:d/keep=k", "f:d/.wh..wh..opq", "f:d/c=c", "f:.wh.x",
                                     "f:.wh.missing", "f:.wh..wh.plnk", NULL};
    static const char *const *layers[] = {l1, l2};
    struct chrun_err err = CHRUN_ERR_INIT;
    char out[4096];
    CHECK_INT_EQ(export_layers(layers, 2, false, &err), 0);
    list_output(out, sizeof(out));
    /* same-layer entries survive their own opaque marker; whiteouts never appear */
    CHECK_STR_EQ(out, "d d/\nf y = y\nf d/keep = k\nf d/c = c\n");
}

/* SPEC "Bad input": a whiteout (plain or opaque) whose parent in the merged
 * tree is not a directory (a file, a symlink, absent) deletes nothing and
 * follows nothing: umoci writes "dir/.wh.child" after turning dir into a file. */
static void test_whiteout_under_non_directory_is_nothing(void)
{
    static const char *const *layers[] = {umoci_l1, umoci_l2};
    struct chrun_err err = CHRUN_ERR_INIT;
    char out[4096];
    CHECK_INT_EQ(export_layers(layers, 2, false, &err), 0);
    list_output(out, sizeof(out));
    CHECK_STR_EQ(out, "d r/\nd t/\nf t/keep = k\nf r/d = file\nl r/s -> ../t\n");
}

static void test_replacement_and_merge(void)
{
    static const char *const l1[] = {"d:a", "f:a/child=c", "f:b=file", "l:s>b", NULL};
    static const char *const l2[] = {"f:a=now-file", "d:b", "f:b/in=in", "d:s", NULL};
    static const char *const l3[] = {"d:b", NULL};
    static const char *const *layers[] = {l1, l2, l3};
    struct chrun_err err = CHRUN_ERR_INIT;
    char out[4096];
    CHECK_INT_EQ(export_layers(layers, 3, false, &err), 0);
    list_output(out, sizeof(out));
    /* b keeps its first position though layer 3 names it again */
    CHECK_STR_EQ(out, "f a = now-file\nd b/\nf b/in = in\nd s/\n");
}

static void test_hardlink_data_moves_to_survivor(void)
{
    static const char *const l1[] = {"f:a=A", "h:b>a", "f:c=C", "h:c2>c", NULL};
    static const char *const l2[] = {"d:d", "h:d/c3>c", "f:.wh.a", "f:c=new", NULL};
    static const char *const *layers[] = {l1, l2};
    struct chrun_err err = CHRUN_ERR_INIT;
    char out[4096];
    CHECK_INT_EQ(export_layers(layers, 2, false, &err), 0);
    list_output(out, sizeof(out));
    /* b carries a's data at a's place in layer 1; c2 carries old c's data */
    CHECK_STR_EQ(out, "f b = A\nf c2 = C\nd d/\nh d/c3 -> c2\nf c = new\n");
}

static void test_survivor_under_a_later_dir(void)
{
    static const char *const l1[] = {"f:a=A", NULL};
    static const char *const l2[] = {"d:d", "h:d/b>a", "f:.wh.a", NULL};
    static const char *const *layers[] = {l1, l2};
    struct chrun_err err = CHRUN_ERR_INIT;
    char out[4096];
    CHECK_INT_EQ(export_layers(layers, 2, false, &err), 0);
    list_output(out, sizeof(out));
    /* the data is in layer 1, its directory from layer 2 still comes first */
    CHECK_STR_EQ(out, "d d/\nf d/b = A\n");
}

static void test_parents_resolve_through_symlinks(void)
{
    static const char *const l1[] = {"d:usr", "d:usr/bin", "l:bin>usr/bin", "l:abs>/usr", NULL};
    static const char *const l2[] = {"f:bin/x=x", "d:abs/lib", "f:implicit/deep/y=y", NULL};
    static const char *const *layers[] = {l1, l2};
    struct chrun_err err = CHRUN_ERR_INIT;
    char out[4096];
    CHECK_INT_EQ(export_layers(layers, 2, false, &err), 0);
    list_output(out, sizeof(out));
    CHECK_STR_EQ(out, "d usr/\nd usr/bin/\nl bin -> usr/bin\nl abs -> /usr\nf usr/bin/x = x\n"
                      "d usr/lib/\nd implicit/\nd implicit/deep/\nf implicit/deep/y = y\n");
}

static void test_hostile_layers_refused(void)
{
    static const char *const dotdot[] = {"f:../x=x", NULL};
    static const char *const missing[] = {"h:b>nowhere", NULL};
    static const char *const via_symlink[] = {"d:d", "f:d/f=f", "l:s>d", "h:b>s/f", NULL};
    static const char *const dangling_parent[] = {"l:s>nowhere", "f:s/x=x", NULL};
    static const char *const *const cases[] = {dotdot, missing, via_symlink, dangling_parent};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *const *layers[] = {cases[i]};
        struct chrun_err err = CHRUN_ERR_INIT;
        struct stat st;
        CHECK_INT_EQ(export_layers(layers, 1, false, &err), -1);
        CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
        CHECK(strstr(err.msg, "layer sha256:") != NULL);
        /* refused before the first byte of output */
        CHECK(stat("out.tar", &st) == 0 && st.st_size == 0);
    }
}

/* The tree back-end of the rules test-layer.c checks on disk. */
static void test_hardlink_into_replaced_path_refused(void)
{
    static const char *const l1[] = {"d:x", "f:x/y=Y", NULL};
    static const char *const l2[] = {"h:x>x/y", NULL};
    static const char *const *layers[] = {l1, l2};
    struct chrun_err err = CHRUN_ERR_INIT;
    struct stat st;
    CHECK_INT_EQ(export_layers(layers, 2, false, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(strstr(err.msg, "inside the entry it replaces") != NULL);
    CHECK(stat("out.tar", &st) == 0 && st.st_size == 0);
}

static void test_whiteout_in_overlong_dir_is_nothing(void)
{
    char wh[400], *l2[] = {wh, NULL};
    static const char *const l1[] = {"f:a=A", NULL};
    const char *const *layers[] = {l1, (const char *const *) l2};
    struct chrun_err err = CHRUN_ERR_INIT;
    char out[4096];
    snprintf(wh, sizeof(wh), "f:%0300d/.wh.a", 0);
    CHECK_INT_EQ(export_layers(layers, 2, false, &err), 0);
    list_output(out, sizeof(out));
    CHECK_STR_EQ(out, "f a = A\n");
}

/* Old copies differed: the model gave up after 32 links, openat2 (and so
 * chrun-unpack) follows 40. One bound now, CHRUN_FS_MAX_HOPS. */
static void test_parent_symlink_chain_limit(void)
{
    static char specs[2][CHRUN_FS_MAX_HOPS + 3][32];
    for (int extra = 0; extra < 2; extra++) {
        int links = CHRUN_FS_MAX_HOPS + extra;
        const char *l1[CHRUN_FS_MAX_HOPS + 4];
        const char *const *layers[] = {l1};
        struct chrun_err err = CHRUN_ERR_INIT;
        char out[8192];
        chain_specs(links, specs[extra], l1);
        CHECK_INT_EQ(export_layers(layers, 1, false, &err), extra ? -1 : 0);
        list_output(out, sizeof(out));
        CHECK((strstr(out, "f d/x = x\n") != NULL) == !extra);
    }
}

/* ---- one interpreter, two back-ends: the same layers give the same tree ---- */

struct listing {
    char *lines[256];
    size_t n;
};

static int cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static void listing_add(struct listing *l, const char *line)
{
    if (l->n < sizeof(l->lines) / sizeof(l->lines[0]))
        l->lines[l->n++] = strdup(line);
}

static void listing_free(struct listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->lines[i]);
    l->n = 0;
}

/* DIR (below "root") as "<type> <path>[ -> <symlink>][ = <data>]" lines. */
static void list_disk(const char *dir, struct listing *l)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        char path[1024], line[1400], data[64] = "", link[256] = "";
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (lstat(path, &st) < 0)
            continue;
        if (S_ISREG(st.st_mode)) {
            FILE *f = fopen(path, "r");
            size_t n = f != NULL ? fread(data, 1, sizeof(data) - 1, f) : 0;
            data[n] = '\0';
            if (f != NULL)
                fclose(f);
        } else if (S_ISLNK(st.st_mode)) {
            ssize_t n = readlink(path, link, sizeof(link) - 1);
            link[n > 0 ? n : 0] = '\0';
        }
        snprintf(line, sizeof(line), "%c %s%s%s%s%s", S_ISDIR(st.st_mode)   ? 'd'
                                                      : S_ISLNK(st.st_mode) ? 'l'
                                                                            : 'f',
                 path + strlen("root/"), link[0] ? " -> " : "", link,
                 S_ISREG(st.st_mode) ? " = " : "", data);
        listing_add(l, line);
        if (S_ISDIR(st.st_mode))
            list_disk(path, l);
    }
    if (d != NULL)
        closedir(d);
}

/* out.tar the same way; a hardlink shows as the file it links to. */
static void list_tar(struct listing *l)
{
    char buf[8192], *save = NULL;
    list_output(buf, sizeof(buf));
    for (char *line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char copy[1200];
        size_t len;
        if (line[0] == 'h') {
            /* "h name -> target": the data is the target's */
            char *arrow = strstr(line, " -> ");
            const char *data = "";
            if (arrow != NULL)
                for (size_t i = 0; i < l->n; i++) {
                    const char *t = l->lines[i];
                    size_t tl = strlen(arrow + 4);
                    if (t[0] == 'f' && strncmp(t + 2, arrow + 4, tl) == 0 &&
                        strncmp(t + 2 + tl, " = ", 3) == 0)
                        data = t + 2 + tl + 3;
                }
            snprintf(copy, sizeof(copy), "f %.*s = %s", arrow ? (int) (arrow - line - 2) : 0,
                     line + 2, data);
        } else {
            snprintf(copy, sizeof(copy), "%s", line);
        }
        len = strlen(copy);
        if (copy[0] == 'd' && len > 0 && copy[len - 1] == '/')
            copy[len - 1] = '\0';
        listing_add(l, copy);
    }
}

/* Apply LAYERS on disk (layerN.tar, made by export_layers) and compare the
 * rootfs with the export of the same layers. */
static void expect_same_tree(const char *const *const *layers, size_t n)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct listing disk = {0}, tar = {0};
    int rootfd, rc = 0;
    struct chrun_layer_applier *a;

    CHECK_INT_EQ(export_layers(layers, n, false, &err), 0);
    CHECK(system("rm -rf root && mkdir root") == 0);
    rootfd = open("root", O_PATH | O_DIRECTORY | O_CLOEXEC);
    a = chrun_layer_applier_new(rootfd, &err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char name[32];
        struct chrun_descriptor desc = {0};
        struct chrun_digest diff;
        size_t len = 0;
        char *buf;
        int fd;
        snprintf(name, sizeof(name), "layer%zu.tar", i);
        buf = slurp(name, &len);
        chrun_digest_of_buffer(&desc.digest, buf, len, &err);
        free(buf);
        desc.size = (int64_t) len;
        snprintf(desc.media_type, sizeof(desc.media_type), "%s", CHRUN_MT_OCI_LAYER);
        diff = desc.digest;
        fd = open(name, O_RDONLY | O_CLOEXEC);
        rc = chrun_layer_apply(a, fd, &desc, &diff, &err);
        close(fd);
    }
    CHECK_INT_EQ(rc, 0);
    CHECK_INT_EQ(chrun_layer_applier_finish(a, &err), 0);
    chrun_layer_applier_free(a);
    close(rootfd);
    list_disk("root", &disk);
    list_tar(&tar);
    qsort(disk.lines, disk.n, sizeof(char *), cmp_lines);
    qsort(tar.lines, tar.n, sizeof(char *), cmp_lines);
    CHECK(disk.n > 0);
    CHECK_INT_EQ(disk.n, tar.n);
    for (size_t i = 0; i < disk.n && i < tar.n; i++)
        CHECK_STR_EQ(disk.lines[i], tar.lines[i]);
    listing_free(&disk);
    listing_free(&tar);
}

static void test_disk_and_tree_agree(void)
{
    static const char *const w1[] = {"d:d", "f:d/a=a", "d:d/sub", "f:d/sub/b=b", "f:x=x",
                                     "f:y=y", NULL};
    static const char *const w2[] = {"f:d/keep=k", "f:d/.wh..wh..opq", "f:d/c=c", "f:.wh.x",
                                     "f:.wh.missing", "f:.wh..wh.plnk", NULL};
    static const char *const r1[] = {"d:a", "f:a/child=c", "f:b=file", "l:s>b", NULL};
    static const char *const r2[] = {"f:a=now-file", "d:b", "f:b/in=in", "d:s", NULL};
    static const char *const r3[] = {"d:b", NULL};
    static const char *const h1[] = {"f:a=A", "h:b>a", "f:c=C", "h:c2>c", NULL};
    static const char *const h2[] = {"d:d", "h:d/c3>c", "f:.wh.a", "f:c=new", NULL};
    static const char *const p1[] = {"d:usr", "d:usr/bin", "l:bin>usr/bin", "l:abs>/usr", NULL};
    static const char *const p2[] = {"f:bin/x=x", "d:abs/lib", "f:implicit/deep/y=y",
                                     "f:bin/.wh.x", "f:abs/lib/z=z", NULL};
    static const char *const *whiteouts[] = {w1, w2}, *const *umoci[] = {umoci_l1, umoci_l2},
                                          *const *replace[] = {r1, r2, r3},
                                          *const *hard[] = {h1, h2}, *const *parents[] = {p1, p2};
    for (int walk = 0; walk < 2; walk++) {
        chrun_fs_force_walk(walk);
        expect_same_tree(whiteouts, 2);
        expect_same_tree(umoci, 2);
        expect_same_tree(replace, 3);
        expect_same_tree(hard, 2);
        expect_same_tree(parents, 2);
    }
    chrun_fs_force_walk(false);
}

/* Old copies differed: a directory named again by a later layer kept, on
 * disk, the extended attributes of earlier entries (each entry's are added,
 * none removed), but the export carried only the newest entry's. */
static void test_merged_dir_keeps_earlier_xattrs(void)
{
    static const char *const xattrs[][3] = {{"user.a", "user.b", NULL}, {"user.b", "user.c", NULL}};
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_descriptor descs[2];
    struct chrun_digest diffs[2];
    int fds[2], out;
    struct archive *r;
    struct archive_entry *e;
    char got[128] = "";

    memset(descs, 0, sizeof(descs));
    for (size_t i = 0; i < 2; i++) {
        char name[32], *buf;
        size_t len = 0;
        struct archive *w = archive_write_new();
        struct archive_entry *d = archive_entry_new();
        snprintf(name, sizeof(name), "x%zu.tar", i);
        archive_write_set_format_pax_restricted(w);
        archive_write_open_filename(w, name);
        archive_entry_set_pathname(d, "d");
        archive_entry_set_filetype(d, AE_IFDIR);
        archive_entry_set_perm(d, 0755);
        for (size_t j = 0; xattrs[i][j] != NULL; j++)
            archive_entry_xattr_add_entry(d, xattrs[i][j], i ? "new" : "old", 3);
        archive_write_header(w, d);
        archive_entry_free(d);
        archive_write_close(w);
        archive_write_free(w);
        buf = slurp(name, &len);
        chrun_digest_of_buffer(&descs[i].digest, buf, len, &err);
        free(buf);
        descs[i].size = (int64_t) len;
        snprintf(descs[i].media_type, sizeof(descs[i].media_type), "%s", CHRUN_MT_OCI_LAYER);
        diffs[i] = descs[i].digest;
        fds[i] = open(name, O_RDONLY | O_CLOEXEC);
    }
    out = open("out.tar", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK_INT_EQ(chrun_export_layers(fds, descs, diffs, 2, out, &err), 0);
    close(out);
    close(fds[0]);
    close(fds[1]);
    r = archive_read_new();
    archive_read_support_format_tar(r);
    if (archive_read_open_filename(r, "out.tar", 10240) == ARCHIVE_OK &&
        archive_read_next_header(r, &e) == ARCHIVE_OK) {
        const char *name;
        const void *value;
        size_t size, len = 0;
        archive_entry_xattr_reset(e);
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
            len += (size_t) snprintf(got + len, sizeof(got) - len, "%s=%.*s ", name, (int) size,
                                     (const char *) value);
    }
    archive_read_free(r);
    /* user.a from the first entry; user.b and user.c the newest entry's */
    CHECK(strstr(got, "user.a=old ") != NULL);
    CHECK(strstr(got, "user.b=new ") != NULL);
    CHECK(strstr(got, "user.c=new ") != NULL);
    CHECK(strstr(got, "user.b=old") == NULL);
}

static void test_diff_id_mismatch_writes_nothing(void)
{
    static const char *const l1[] = {"f:a=A", NULL};
    static const char *const *layers[] = {l1};
    struct chrun_err err = CHRUN_ERR_INIT;
    struct stat st;
    CHECK_INT_EQ(export_layers(layers, 1, true, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_DIGEST);
    CHECK(strstr(err.msg, "diff_id mismatch") != NULL);
    CHECK(stat("out.tar", &st) == 0 && st.st_size == 0);
}

int main(void)
{
    RUN_TEST(test_whiteouts_and_opaque_dirs);
    RUN_TEST(test_whiteout_under_non_directory_is_nothing);
    RUN_TEST(test_replacement_and_merge);
    RUN_TEST(test_hardlink_data_moves_to_survivor);
    RUN_TEST(test_survivor_under_a_later_dir);
    RUN_TEST(test_parents_resolve_through_symlinks);
    RUN_TEST(test_hostile_layers_refused);
    RUN_TEST(test_hardlink_into_replaced_path_refused);
    RUN_TEST(test_whiteout_in_overlong_dir_is_nothing);
    RUN_TEST(test_parent_symlink_chain_limit);
    RUN_TEST(test_diff_id_mismatch_writes_nothing);
    RUN_TEST(test_disk_and_tree_agree);
    RUN_TEST(test_merged_dir_keeps_earlier_xattrs);
    return harness_done();
}
