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

static void test_upper_whiteouts_and_opaque(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store *st = chrun_store_open("store", CHRUN_STORE_CREATE, &err);
    struct chrun_changeset_layer layer, again;
    char listing[4096];
    unsigned flags;
    int upperfd, lowerfd;
    xattr_ns(&flags);
    CHECK(st != NULL);
    CHECK_INT_EQ(system("mkdir -p lower/etc lower/d/sub lower/keep && echo x >lower/etc/passwd && "
                        "echo g >lower/gone && echo a >lower/d/a && echo f >lower/f2d && "
                        "mkdir -p upper/etc upper/d upper/f2d upper/new && "
                        "echo changed >upper/etc/passwd && echo n >upper/d/new && "
                        "echo in >upper/f2d/in && echo m >upper/new/m && "
                        "ln upper/new/m upper/new/m2 && ln -s m upper/new/link"),
                 0);
    /* overlayfs: a whiteout is a character device 0/0 (mknod of one needs
     * no privilege since Linux 5.8) */
    CHECK_INT_EQ(mknod("upper/gone", S_IFCHR | 0600, makedev(0, 0)), 0);
    CHECK_INT_EQ(mknod("upper/d/sub", S_IFCHR | 0600, makedev(0, 0)), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/d", "opaque", "y"), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/f2d", "opaque", "y"), 0);
    upperfd = open("upper", O_PATH | O_DIRECTORY | O_CLOEXEC);
    lowerfd = open("lower", O_PATH | O_DIRECTORY | O_CLOEXEC);
    CHECK_INT_EQ(chrun_changeset_write_upper(st, upperfd, lowerfd, flags, 1000, &layer, &err), 0);
    CHECK(!layer.empty);
    list_layer(st, &layer.digest, listing, sizeof(listing));
    /* d was a lower directory: opaque; f2d was a file: its marker hides
     * nothing and is left out */
    CHECK_STR_EQ(listing, ".wh.gone\nd/\nd/.wh..wh..opq\nd/.wh.sub\nd/new\netc/\netc/passwd\n"
                          "f2d/\nf2d/in\nnew/\nnew/link\nnew/m\nnew/m2->new/m\n");
    /* the same upper gives the same bytes */
    CHECK_INT_EQ(chrun_changeset_write_upper(st, upperfd, lowerfd, flags, 1000, &again, &err), 0);
    CHECK_STR_EQ(again.digest.str, layer.digest.str);
    CHECK_STR_EQ(again.diff_id.str, layer.diff_id.str);
    close(upperfd);
    close(lowerfd);
    chrun_store_close(st);
}

static void test_upper_empty_and_refused(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store *st = chrun_store_open("store", CHRUN_STORE_CREATE, &err);
    struct chrun_changeset_layer layer;
    unsigned flags;
    int upperfd, lowerfd;
    xattr_ns(&flags);
    CHECK(st != NULL);
    CHECK_INT_EQ(system("mkdir -p lower/dir upper && echo a >lower/a && ln lower/a lower/b"), 0);
    upperfd = open("upper", O_PATH | O_DIRECTORY | O_CLOEXEC);
    lowerfd = open("lower", O_PATH | O_DIRECTORY | O_CLOEXEC);
    /* nothing changed: no layer */
    CHECK_INT_EQ(chrun_changeset_write_upper(st, upperfd, lowerfd, flags, -1, &layer, &err), 0);
    CHECK(layer.empty);
    /* a copied-up name of a hardlinked lower file: the upper is not enough */
    CHECK_INT_EQ(system("echo changed >upper/a"), 0);
    CHECK_INT_EQ(chrun_changeset_write_upper(st, upperfd, lowerfd, flags, -1, &layer, &err), 1);
    CHECK(layer.empty);
    /* a renamed directory (redirect_dir=on): neither */
    CHECK_INT_EQ(system("rm upper/a && mkdir upper/moved"), 0);
    CHECK_INT_EQ(set_overlay_xattr("upper/moved", "redirect", "dir"), 0);
    CHECK_INT_EQ(chrun_changeset_write_upper(st, upperfd, lowerfd, flags, -1, &layer, &err), 1);
    CHECK(layer.empty);
    /* a name only a whiteout may have fails as on the full walk */
    CHECK_INT_EQ(system("rmdir upper/moved && touch upper/.wh.x"), 0);
    CHECK_INT_EQ(chrun_changeset_write_upper(st, upperfd, lowerfd, flags, -1, &layer, &err), -1);
    CHECK(strstr(err.msg, "'.wh.x': a '.wh.' name cannot be kept") != NULL);
    close(upperfd);
    close(lowerfd);
    chrun_store_close(st);
}

int main(void)
{
    RUN_TEST(test_upper_whiteouts_and_opaque);
    RUN_TEST(test_upper_empty_and_refused);
    return harness_done();
}
