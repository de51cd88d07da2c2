/* docker-save manifest.json (src/load-docker.c): the input is manifest.json
 * of a docker-save archive whose other members are fixed: a one-file layer
 * and its image config, under their docker-save names ("layer.tar",
 * "config.json"), as blobs/sha256/<hex> (OCI layout) and as bare <hex>
 * (skopeo dir:), plus symlinks and a hardlink to the layer. The archive is
 * streamed through chrun_archive_load_fd into a fresh store each run. Run the
 * harness with FUZZ_DOCKER_SAVE_PRINT=1 to print the two digests (for seeds). */
#include <archive.h>
#include <archive_entry.h>

#include "chrun/archive.h"
#include "chrun/digest.h"
#include "chrun/store.h"
#include "fuzz-common.h"

static char base[256], store_path[300];
static char *layer_buf, config_buf[512];
static size_t layer_len, config_len;
static struct chrun_digest layer_digest, config_digest;

static void add(struct archive *a, const char *name, const void *data, size_t len,
                const char *symlink, const char *hardlink)
{
    struct archive_entry *e = archive_entry_new();
    if (e == NULL)
        abort();
    archive_entry_set_pathname(e, name);
    archive_entry_set_mtime(e, 0, 0);
    if (hardlink != NULL) {
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, hardlink);
        archive_entry_set_perm(e, 0644);
        len = 0;
    } else if (symlink != NULL) {
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, symlink);
        archive_entry_set_perm(e, 0777);
        len = 0;
    } else {
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
    }
    archive_entry_set_size(e, (la_int64_t) len);
    if (archive_write_header(a, e) != ARCHIVE_OK ||
        (len > 0 && archive_write_data(a, data, len) != (la_ssize_t) len))
        abort();
    archive_entry_free(e);
}

/* A tar written by libarchive (ustar, fixed times): deterministic bytes. */
static int tar_open(struct archive **ret, int fd)
{
    struct archive *a = archive_write_new();
    if (a == NULL || archive_write_set_format_ustar(a) != ARCHIVE_OK ||
        archive_write_add_filter_none(a) != ARCHIVE_OK || archive_write_open_fd(a, fd) != ARCHIVE_OK)
        abort();
    *ret = a;
    return 0;
}

static void make_layer(void)
{
    static const char hello[] = "hello from a fuzzed archive\n";
    struct chrun_err err = CHRUN_ERR_INIT;
    struct archive *a;
    int fd = memfd_create("layer", MFD_CLOEXEC);
    struct stat sb;

    tar_open(&a, fd);
    add(a, "hello", hello, sizeof(hello) - 1, NULL, NULL);
    if (archive_write_close(a) != ARCHIVE_OK || archive_write_free(a) != ARCHIVE_OK ||
        fstat(fd, &sb) < 0)
        abort();
    layer_len = (size_t) sb.st_size;
    layer_buf = malloc(layer_len);
    if (layer_buf == NULL || pread(fd, layer_buf, layer_len, 0) != (ssize_t) layer_len)
        abort();
    close(fd);
    if (chrun_digest_of_buffer(&layer_digest, layer_buf, layer_len, &err) < 0)
        abort();
    config_len = (size_t) snprintf(config_buf, sizeof(config_buf),
                                   "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":"
                                   "{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
                                   layer_digest.str);
    if (chrun_digest_of_buffer(&config_digest, config_buf, config_len, &err) < 0)
        abort();
}

static void remove_base(void)
{
    fuzz_rm_rf(base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    make_layer();
    if (getenv("FUZZ_DOCKER_SAVE_PRINT") != NULL) {
        printf("layer %s %zu\nconfig %s %zu\n", layer_digest.str, layer_len, config_digest.str,
               config_len);
        exit(0);
    }
    fuzz_scratch_dir("docker-save", base, sizeof(base));
    snprintf(store_path, sizeof(store_path), "%s/store", base);
    atexit(remove_base);
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_archive_result res = {0};
    struct chrun_store *st;
    struct archive *a;
    char name[128];
    int fd = memfd_create("archive", MFD_CLOEXEC);
    int rc;

    if (fd < 0)
        abort();
    tar_open(&a, fd);
    add(a, "config.json", config_buf, config_len, NULL, NULL);
    add(a, "layer.tar", layer_buf, layer_len, NULL, NULL);
    snprintf(name, sizeof(name), "blobs/sha256/%s", chrun_digest_hex(&config_digest));
    add(a, name, config_buf, config_len, NULL, NULL);
    snprintf(name, sizeof(name), "blobs/sha256/%s", chrun_digest_hex(&layer_digest));
    add(a, name, layer_buf, layer_len, NULL, NULL);
    add(a, chrun_digest_hex(&config_digest), config_buf, config_len, NULL, NULL);
    add(a, chrun_digest_hex(&layer_digest), layer_buf, layer_len, NULL, NULL);
    add(a, "link.tar", NULL, 0, "layer.tar", NULL);
    add(a, "sub/up.tar", NULL, 0, "../layer.tar", NULL);
    add(a, "loop.tar", NULL, 0, "loop.tar", NULL);
    add(a, "hard.tar", NULL, 0, NULL, "layer.tar");
    add(a, "manifest.json", data, size, NULL, NULL);
    if (archive_write_close(a) != ARCHIVE_OK || archive_write_free(a) != ARCHIVE_OK ||
        lseek(fd, 0, SEEK_SET) < 0)
        abort();

    st = chrun_store_open(store_path, CHRUN_STORE_CREATE, &err);
    if (st == NULL) {
        fprintf(stderr, "fuzz-docker-save: %s\n", err.msg);
        abort();
    }
    rc = chrun_archive_load_fd(st, fd, "fuzz.tar", &res, &err);
    fuzz_check_err(rc, &err);
    chrun_archive_result_release(&res);
    chrun_store_close(st);
    close(fd);
    fuzz_rm_rf(store_path);
    return 0;
}
