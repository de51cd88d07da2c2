/* Unit tests for the overlay-upper input of the changeset rules
 * (chrun_changeset_write_upper in src/changeset.c): an upper directory
 * made by hand, as overlayfs leaves it, against its lower. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <archive.h>
#include <archive_entry.h>

#include "chrun/changeset.h"
#include "harness.h"

/* "NAME[->TARGET]\n" per entry of layer D. */
static void list_layer(struct chrun_store *st, const struct chrun_digest *d, char *out, size_t size)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    int fd = chrun_store_open_blob(st, d, NULL);
    CHECK(fd >= 0);
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    CHECK_INT_EQ(archive_read_open_fd(a, fd, 4096), ARCHIVE_OK);
    out[0] = '\0';
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *hl = archive_entry_hardlink(e);
        snprintf(out + strlen(out), size - strlen(out), "%s%s%s\n", archive_entry_pathname(e),
                 hl ? "->" : "", hl ? hl : "");
    }
    archive_read_free(a);
    close(fd);
}

/* "NAME MODE SIZE:BYTES\n" per regular file of layer D but whiteouts (BYTES
 * up to the first newline, at most 32). */
static void layer_files(struct chrun_store *st, const struct chrun_digest *d, char *out,
                        size_t size)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    int fd = chrun_store_open_blob(st, d, NULL);
    CHECK(fd >= 0);
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    CHECK_INT_EQ(archive_read_open_fd(a, fd, 4096), ARCHIVE_OK);
    out[0] = '\0';
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        char buf[33] = "";
        la_ssize_t n;
        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) != NULL ||
            strstr(archive_entry_pathname(e), ".wh.") != NULL)
            continue;
        n = archive_read_data(a, buf, sizeof(buf) - 1);
        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        snprintf(out + strlen(out), size - strlen(out), "%s %o %lld:%s\n",
                 archive_entry_pathname(e), (unsigned) archive_entry_perm(e),
                 (long long) archive_entry_size(e), buf);
    }
    archive_read_free(a);
    close(fd);
}

/* The overlay xattr namespace a mount by this user writes, and its flag. */
static const char *xattr_ns(unsigned *ret_flags)
{
    *ret_flags = geteuid() == 0 ? 0 : CHRUN_CHANGESET_USERXATTR;
    return geteuid() == 0 ? "trusted.overlay." : "user.overlay.";
}

static int set_overlay_xattr(const char *path, const char *name, const char *value)
{
    unsigned flags;
    char key[64];
    snprintf(key, sizeof(key), "%s%s", xattr_ns(&flags), name);
    return setxattr(path, key, value, strlen(value), 0);
}

/* One write_upper case: a store, and the directories "upper" and "lower"
 * that the shell command SETUP makes (entries may be added afterwards). */
struct upper_case {
    struct chrun_store *st;
    unsigned flags; /* this user's overlay xattr namespace */
    int upperfd, lowerfd;
};

static void upper_case_begin(struct upper_case *c, const char *setup)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    xattr_ns(&c->flags);
    c->st = chrun_store_open("store", CHRUN_STORE_CREATE, &err);
    CHECK(c->st != NULL);
    CHECK_INT_EQ(system(setup), 0);
    c->upperfd = open("upper", O_PATH | O_DIRECTORY | O_CLOEXEC);
    c->lowerfd = open("lower", O_PATH | O_DIRECTORY | O_CLOEXEC);
    CHECK(c->upperfd >= 0 && c->lowerfd >= 0);
}

static void upper_case_end(struct upper_case *c)
{
    close(c->upperfd);
    close(c->lowerfd);
    chrun_store_close(c->st);
}

static void test_upper_whiteouts_and_opaque(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_changeset_layer layer, again;
    char listing[4096];
    struct upper_case c;
    upper_case_begin(&c, "mkdir -p lower/etc lower/d/sub lower/keep && echo x >lower/etc/passwd && "
                         "echo g >lower/gone && echo a >lower/d/a && echo f >lower/f2d && "
                         "mkdir -p upper/etc upper/d upper/f2d upper/new && "
                         "echo changed >upper/etc/passwd && echo n >upper/d/new && "
                         "echo in >upper/f2d/in && echo m >upper/new/m && "
                         "ln upper/new/m upper/new/m2 && ln -s m upper/new/link");
    /* overlayfs: a whiteout is a character device 0/0 (mknod of one needs
     * no privilege since Linux 5.8) */
    CHECK_INT_EQ(mknod("upper/gone", S_IFCHR | 0600, makedev(0, 0)), 0);
    CHECK_INT_EQ(mknod("upper/d/sub", S_IFCHR | 0600, makedev(0, 0)), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/d", "opaque", "y"), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/f2d", "opaque", "y"), 0);
    CHECK_INT_EQ(
        chrun_changeset_write_upper(c.st, c.upperfd, c.lowerfd, c.flags, 1000, &layer, &err), 0);
    CHECK(!layer.empty);
    list_layer(c.st, &layer.digest, listing, sizeof(listing));
    /* d was a lower directory: opaque; f2d was a file: its marker hides
     * nothing and is left out */
    CHECK_STR_EQ(listing, ".wh.gone\nd/\nd/.wh..wh..opq\nd/.wh.sub\nd/new\netc/\netc/passwd\n"
                          "f2d/\nf2d/in\nnew/\nnew/link\nnew/m\nnew/m2->new/m\n");
    /* the same upper gives the same bytes */
    CHECK_INT_EQ(
        chrun_changeset_write_upper(c.st, c.upperfd, c.lowerfd, c.flags, 1000, &again, &err), 0);
    CHECK_STR_EQ(again.digest.str, layer.digest.str);
    CHECK_STR_EQ(again.diff_id.str, layer.diff_id.str);
    upper_case_end(&c);
}

static void test_upper_empty_and_refused(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_changeset_layer layer;
    struct upper_case c;
    upper_case_begin(&c, "mkdir -p lower/dir upper && echo a >lower/a && ln lower/a lower/b");
    /* nothing changed: no layer */
    CHECK_INT_EQ(chrun_changeset_write_upper(c.st, c.upperfd, c.lowerfd, c.flags, -1, &layer, &err),
                 0);
    CHECK(layer.empty);
    /* a copied-up name of a hardlinked lower file: the upper is not enough */
    CHECK_INT_EQ(system("echo changed >upper/a"), 0);
    CHECK_INT_EQ(chrun_changeset_write_upper(c.st, c.upperfd, c.lowerfd, c.flags, -1, &layer, &err),
                 1);
    CHECK(layer.empty);
    /* a lower directory renamed onto a name the lower has too
     * (redirect_dir=on): the layer would need whiteouts for what vanished
     * there, so neither */
    CHECK_INT_EQ(system("rm upper/a && mkdir lower/dir2 upper/dir2"), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/dir2", "redirect", "dir"), 0);
    CHECK_INT_EQ(chrun_changeset_write_upper(c.st, c.upperfd, c.lowerfd, c.flags, -1, &layer, &err),
                 1);
    CHECK(layer.empty);
    /* a name only a whiteout may have fails as on the full walk */
    CHECK_INT_EQ(system("rmdir upper/dir2 && touch upper/.wh.x"), 0);
    CHECK_INT_EQ(chrun_changeset_write_upper(c.st, c.upperfd, c.lowerfd, c.flags, -1, &layer, &err),
                 -1);
    CHECK(strstr(err.msg, "'.wh.x': a '.wh.' name cannot be kept") != NULL);
    upper_case_end(&c);
}

/* overlayfs with metacopy=on: an upper file of the lower's size, no bytes
 * (here: other bytes, which must never be read), a metacopy xattr, and for
 * a renamed one a redirect to its lower path. */
static void test_upper_metacopy(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_changeset_layer layer;
    char listing[4096];
    struct upper_case c;
    upper_case_begin(&c, "mkdir -p lower/m upper/m upper/other && echo lower-a >lower/m/a && "
                         "echo lower-b >lower/m/b && echo lower-c >lower/m/c && "
                         "echo UPPER-A >upper/m/a && chmod 600 upper/m/a && "
                         "echo UPPER-B >upper/m/renamed && echo UPPER-C >upper/other/x && "
                         "head -c 200000 /dev/zero | tr '\\0' y >lower/m/big && "
                         "truncate -s 200000 upper/m/big");
    CHECK_INT_EQ(mknod("upper/m/b", S_IFCHR | 0600, makedev(0, 0)), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/m/a", "metacopy", ""), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/m/big", "metacopy", ""), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/m/renamed", "metacopy", ""), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/m/renamed", "redirect", "b"), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/other/x", "metacopy", ""), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/other/x", "redirect", "/m/c"), 0);
    CHECK_INT_EQ(
        chrun_changeset_write_upper(c.st, c.upperfd, c.lowerfd, c.flags, 1000, &layer, &err), 0);
    layer_files(c.st, &layer.digest, listing, sizeof(listing));
    CHECK_STR_EQ(listing, "m/a 600 8:lower-a\n"
                          "m/big 644 200000:yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\n"
                          "m/renamed 644 8:lower-b\n"
                          "other/x 644 8:lower-c\n");
    list_layer(c.st, &layer.digest, listing, sizeof(listing));
    CHECK(strstr(listing, "m/.wh.b\n") != NULL);
    upper_case_end(&c);
}

/* A metacopy file's lower path is never one the image could steer: no
 * symlink on the way, nothing outside the lower, no redirect the kernel
 * never writes; a file whose link count the upper cannot settle falls back. */
static void test_upper_metacopy_refused(void)
{
    static const struct {
        const char *redirect; /* of upper/m/f (metacopy, 4 bytes) */
        int rc;
        const char *msg;
    } cases[] = {
        {"../../../etc/hostname", -1, "'m/f': invalid "},
        {"/m/../m/ok", -1, "'m/f': invalid "},
        {"/m//ok", -1, "'m/f': invalid "},
        {"/", -1, "'m/f': invalid "},
        {"/m/link", -1, "lower 'm/link' is not a file of its size"}, /* not followed */
        {"/lnk/ok", -1, "metacopy file 'm/f': its lower file"},      /* through a symlink */
        {"/m/short", -1, "lower 'm/short' is not a file of its size"},
        {"/m/dir", -1, "lower 'm/dir' is not a file of its size"},
        {"/m/missing", -1, "metacopy file 'm/f': its lower file"},
        {"/m/hard", 1, NULL}, /* a hardlinked lower file: the full walk */
        {"ok", 0, NULL},
    };
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_changeset_layer layer;
    struct upper_case c;
    upper_case_begin(&c, "mkdir -p lower/m/dir upper/m && echo ok! >lower/m/ok && "
                         "echo xy >lower/m/short && echo hrd >lower/m/hard && "
                         "ln lower/m/hard lower/m/hard2 && ln -s ok lower/m/link && "
                         "ln -s m lower/lnk && touch upper/m/f && "
                         "truncate -s 4 upper/m/f");
    CHECK_INT_EQ(set_overlay_xattr("upper/m/f", "metacopy", ""), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;
        err = (struct chrun_err) CHRUN_ERR_INIT;
        CHECK_INT_EQ(set_overlay_xattr("upper/m/f", "redirect", cases[i].redirect), 0);
        rc = chrun_changeset_write_upper(c.st, c.upperfd, c.lowerfd, c.flags, -1, &layer, &err);
        if (rc != cases[i].rc)
            fprintf(stderr, "# redirect '%s': %d (%s)\n", cases[i].redirect, rc, err.msg);
        CHECK_INT_EQ(rc, cases[i].rc);
        CHECK(rc == 0 || layer.empty);
        if (cases[i].msg != NULL && strstr(err.msg, cases[i].msg) == NULL)
            fprintf(stderr, "# redirect '%s': message '%s'\n", cases[i].redirect, err.msg);
        CHECK(cases[i].msg == NULL || strstr(err.msg, cases[i].msg) != NULL);
    }
    /* two upper names of one metacopy inode: each may come from elsewhere */
    CHECK_INT_EQ(link("upper/m/f", "upper/m/g"), 0);
    CHECK_INT_EQ(chrun_changeset_write_upper(c.st, c.upperfd, c.lowerfd, c.flags, -1, &layer, &err),
                 1);
    upper_case_end(&c);
}

/* A renamed lower directory (redirect_dir=on): the layer carries the whole
 * moved tree, the upper's changes merged over the lower directory the
 * redirect names, whiteouts inside it honoured, not written. */
static void test_upper_redirected_dir(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_changeset_layer layer;
    char listing[4096];
    struct upper_case c;
    upper_case_begin(&c, "mkdir -p lower/src/sub/deep lower/src/gone-dir upper/dst/sub upper/x && "
                         "echo a >lower/src/a && echo b >lower/src/sub/b && "
                         "echo c >lower/src/sub/c && echo d >lower/src/sub/deep/d && "
                         "echo h >lower/src/hard1 && ln lower/src/hard1 lower/src/hard2 && "
                         "ln -s a lower/src/link && echo g >lower/src/gone-dir/g && "
                         "echo MOVED >upper/dst/a && chmod 600 upper/dst/a && "
                         "echo new >upper/dst/new && echo e >lower/src/sub/e && "
                         "echo E >upper/dst/sub/e && truncate -s 2 upper/dst/sub/e");
    CHECK_INT_EQ(truncate("upper/dst/a", 2), 0);
    CHECK_INT_EQ(mknod("upper/src", S_IFCHR | 0600, makedev(0, 0)), 0);
    CHECK_INT_EQ(mknod("upper/dst/sub/b", S_IFCHR | 0600, makedev(0, 0)), 0);
    CHECK_INT_EQ(mknod("upper/dst/gone-dir", S_IFCHR | 0600, makedev(0, 0)), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/dst", "redirect", "/src"), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/dst/a", "metacopy", ""), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/dst/sub/e", "metacopy", ""), 0);
    /* a metacopy file renamed into a moved directory keeps its own redirect */
    CHECK_INT_EQ(system("echo xx >lower/x-src && truncate -s 3 upper/x/moved"), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/x/moved", "metacopy", ""), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/x/moved", "redirect", "/x-src"), 0);
    CHECK_INT_EQ(mknod("upper/x-src", S_IFCHR | 0600, makedev(0, 0)), 0);
    CHECK_INT_EQ(
        chrun_changeset_write_upper(c.st, c.upperfd, c.lowerfd, c.flags, 1000, &layer, &err), 0);
    list_layer(c.st, &layer.digest, listing, sizeof(listing));
    CHECK_STR_EQ(listing, ".wh.src\n.wh.x-src\ndst/\ndst/a\ndst/hard1\ndst/hard2->dst/hard1\n"
                          "dst/link\ndst/new\ndst/sub/\ndst/sub/c\ndst/sub/deep/\n"
                          "dst/sub/deep/d\ndst/sub/e\nx/\nx/moved\n");
    layer_files(c.st, &layer.digest, listing, sizeof(listing));
    CHECK_STR_EQ(listing, "dst/a 600 2:a\ndst/hard1 644 2:h\ndst/new 644 4:new\n"
                          "dst/sub/c 644 2:c\ndst/sub/deep/d 644 2:d\ndst/sub/e 644 2:e\n"
                          "x/moved 644 3:xx\n");
    /* a redirect into a directory through a symlink of the lower: neither */
    CHECK_INT_EQ(system("ln -s src lower/lnk"), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/dst", "redirect", "/lnk"), 0);
    CHECK_INT_EQ(
        chrun_changeset_write_upper(c.st, c.upperfd, c.lowerfd, c.flags, 1000, &layer, &err), 1);
    upper_case_end(&c);
}

int main(void)
{
    RUN_TEST(test_upper_whiteouts_and_opaque);
    RUN_TEST(test_upper_empty_and_refused);
    RUN_TEST(test_upper_metacopy);
    RUN_TEST(test_upper_metacopy_refused);
    RUN_TEST(test_upper_redirected_dir);
    return harness_done();
}
