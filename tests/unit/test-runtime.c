/* The runtime's -v sources: a source handed over as an fd (chrun-build's
 * RUN --mount=type=bind) is the file mounted, and a path that names another
 * file by the time the mount namespace exists stops the run. */
#include "harness.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrun/fs.h"
#include "chrun/runtime.h"
#include "chrun/volume.h"

static const char config[] =
    "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},"
    "\"process\":{\"args\":[\"/no-such-command\"],\"cwd\":\"/\",\"env\":[],"
    "\"user\":{\"uid\":0,\"gid\":0}}}";

/* Run the bundle with one pinned volume: FD as the source, HOST its path. */
static int run_pinned(const char *bundle, int fd, const char *host, struct chrun_err *err)
{
    struct chrun_volume v = {.host = (char *) host, .ctr = (char *) "/mnt", .ro = true,
                             .pinned = true, .fd = fd};
    struct chrun_exec_opts opts = CHRUN_EXEC_OPTS_INIT;
    int status = 0;
    opts.volumes = &v;
    opts.n_volumes = 1;
    return chrun_runtime_exec(bundle, &opts, NULL, &status, err);
}

static void test_pinned_volume(void)
{
    char dir[] = "/tmp/chrun-test-runtime-XXXXXX", path[256], a[300], b[300];
    struct chrun_err err = CHRUN_ERR_INIT;
    int fd;

    if (geteuid() != 0) {
        printf("# skipped: mounts need root\n");
        harness_checks++;
        return;
    }
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/bundle", dir);
    CHECK(mkdir(path, 0700) == 0);
    snprintf(path, sizeof(path), "%s/bundle/rootfs", dir);
    CHECK(mkdir(path, 0755) == 0);
    snprintf(path, sizeof(path), "%s/bundle/rootfs/mnt", dir);
    CHECK(mkdir(path, 0755) == 0);
    snprintf(path, sizeof(path), "%s/bundle/config.json", dir);
    CHECK(spew(path, config) == 0);
    snprintf(a, sizeof(a), "%s/a", dir);
    snprintf(b, sizeof(b), "%s/b", dir);
    CHECK(mkdir(a, 0755) == 0 && mkdir(b, 0755) == 0);
    fd = open(a, O_PATH | O_DIRECTORY | O_CLOEXEC);
    CHECK(fd >= 0);
    snprintf(path, sizeof(path), "%s/bundle", dir);

    /* the path still names the fd's directory: the mount is made, and the
     * run gets as far as the missing command */
    CHECK_INT_EQ(run_pinned(path, fd, a, &err), -1);
    CHECK(strstr(err.msg, "no-such-command") != NULL);
    CHECK(strstr(err.msg, "changed") == NULL);

    /* the path names another directory: refused before anything runs */
    chrun_err_clear(&err);
    CHECK_INT_EQ(run_pinned(path, fd, b, &err), -1);
    CHECK(strstr(err.msg, "changed while the container started") != NULL);
    CHECK(strstr(err.msg, b) != NULL);

    close(fd);
    CHECK_INT_EQ(chrun_fs_rm_rf_at(AT_FDCWD, dir, &err), 0);
}

int main(void)
{
    RUN_TEST(test_pinned_volume);
    return harness_done();
}
