/* ADD <url> downloads against tests/http-fixture.py, started here on a free
 * 127.0.0.1 port and stopped at the end. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "chrun/fetch.h"

static char server_dir[PATH_MAX], base_url[128];
static pid_t server_pid = -1;

static void wait_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Start the fixture server and wait for its ready file (the event that it
 * listens). Returns 0 or -1. */
static int server_start(void)
{
    char script[PATH_MAX], ready[PATH_MAX + 16];
    char *port;
    if (realpath("tests/http-fixture.py", script) == NULL) {
        perror("# tests/http-fixture.py (run from the repository root)");
        return -1;
    }
    snprintf(server_dir, sizeof(server_dir), "/tmp/chrun-fetch-XXXXXX");
    if (mkdtemp(server_dir) == NULL)
        return -1;
    snprintf(ready, sizeof(ready), "%s/ready", server_dir);
    server_pid = fork();
    if (server_pid < 0)
        return -1;
    if (server_pid == 0) {
        execlp("python3", "python3", script, ready, (char *) NULL);
        _exit(127);
    }
    for (int i = 0; i < 600; i++) {
        int status;
        if (access(ready, F_OK) == 0)
            break;
        if (waitpid(server_pid, &status, WNOHANG) == server_pid) {
            server_pid = -1;
            fprintf(stderr, "# http fixture exited\n");
            return -1;
        }
        wait_ms(50);
    }
    port = slurp(ready, NULL);
    if (port == NULL)
        return -1;
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", atoi(port));
    free(port);
    return 0;
}

static void server_stop(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
    if (server_dir[0] != '\0')
        harness_rm_rf(server_dir);
}

/* The settings every fetch here uses; tests change them. */
static struct chrun_settings settings;

static int fetch(const char *path, const char *checksum, struct chrun_fetch_result *res,
                 struct chrun_err *err)
{
    char url[256];
    int dirfd, rc;
    snprintf(url, sizeof(url), "%s%s", base_url, path);
    if (mkdir("out", 0755) < 0 && errno != EEXIST)
        return -2;
    dirfd = open("out", O_PATH | O_DIRECTORY | O_CLOEXEC);
    chrun_err_clear(err);
    rc = chrun_fetch_url(url, checksum, dirfd, "file", &settings, res, err);
    close(dirfd);
    return rc;
}

static void test_ok(void)
{
    struct chrun_fetch_result res;
    struct chrun_err err = CHRUN_ERR_INIT;
    struct stat st;
    char *body;
    CHECK_INT_EQ(fetch("/ok/file.txt", NULL, &res, &err), 0);
    CHECK_STR_EQ(res.digest.str,
                 "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
    CHECK_INT_EQ(res.size_bytes, 6);
    CHECK_STR_EQ(res.filename, "file.txt");
    CHECK(res.has_mtime);
    CHECK_INT_EQ(res.mtime_s, 1445412480);
    body = slurp("out/file", NULL);
    CHECK_STR_EQ(body, "hello\n");
    free(body);
    CHECK_INT_EQ(lstat("out/file", &st), 0);
    CHECK_INT_EQ(st.st_mode & 07777, 0600);
    CHECK_INT_EQ(st.st_mtime, 1445412480);
    CHECK_INT_EQ(count_entries("out"), 1); /* no temporary left */

    /* again over an existing file: replaced atomically */
    CHECK_INT_EQ(fetch("/nolm", NULL, &res, &err), 0);
    CHECK(!res.has_mtime);
    CHECK_STR_EQ(res.filename, "nolm");
    CHECK_INT_EQ(lstat("out/file", &st), 0);
    CHECK_INT_EQ(st.st_mtime, 0); /* BuildKit: the epoch without Last-Modified */
    CHECK_INT_EQ(count_entries("out"), 1);
}

static void test_checksum(void)
{
    struct chrun_fetch_result res;
    struct chrun_err err = CHRUN_ERR_INIT;
    const char *good = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    const char *bad = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    CHECK_INT_EQ(fetch("/ok/file.txt", good, &res, &err), 0);
    CHECK_INT_EQ(system("rm -f out/file"), 0);

    CHECK_INT_EQ(fetch("/ok/file.txt", bad, &res, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_DIGEST);
    CHECK(strstr(err.msg, "/ok/file.txt") != NULL);
    CHECK(strstr(err.msg, good) != NULL);
    CHECK(strstr(err.msg, bad) != NULL);
    CHECK_INT_EQ(count_entries("out"), 0); /* nothing left behind */

    CHECK_INT_EQ(fetch("/ok/file.txt", "sha256:abc", &res, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(strstr(err.msg, "checksum for") != NULL);
    CHECK_INT_EQ(fetch("/ok/file.txt", "sha512:abc", &res, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_UNSUPPORTED);
    CHECK_INT_EQ(count_entries("out"), 0);
}

static void test_redirects(void)
{
    struct chrun_fetch_result res;
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(fetch("/redirect-ok", NULL, &res, &err), 0);
    CHECK_STR_EQ(res.filename, "redirect-ok"); /* named after the URL as written */
    CHECK_INT_EQ(fetch("/redirect-chain/9", NULL, &res, &err), 0);
    CHECK_INT_EQ(system("rm -f out/file"), 0);

    CHECK_INT_EQ(fetch("/redirect-chain/10", NULL, &res, &err), -1);
    CHECK(strstr(err.msg, "more than 10 redirects") != NULL);
    CHECK_INT_EQ(fetch("/redirect-file", NULL, &res, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(strstr(err.msg, "refusing redirect to 'file:///etc/passwd'") != NULL);
    CHECK(strstr(err.msg, "/redirect-file") != NULL);
    CHECK_INT_EQ(fetch("/redirect-ftp", NULL, &res, &err), -1);
    CHECK(strstr(err.msg, "refusing redirect to 'ftp://") != NULL);
    CHECK_INT_EQ(fetch("/redirect-none", NULL, &res, &err), -1);
    CHECK(strstr(err.msg, "HTTP 302 without a usable Location") != NULL);
    CHECK_INT_EQ(count_entries("out"), 0);
}

static void test_redirect_rule(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(chrun_fetch_check_redirect("http://a/x", "https://b/y", &err), 0);
    CHECK_INT_EQ(chrun_fetch_check_redirect("http://a/x", "http://b/y", &err), 0);
    CHECK_INT_EQ(chrun_fetch_check_redirect("https://a/x", "https://b/y", &err), 0);
    CHECK_INT_EQ(chrun_fetch_check_redirect("https://a/x", "HTTPS://b/y", &err), 0);
    CHECK_INT_EQ(chrun_fetch_check_redirect("https://u:p@a/x?tok=1", "http://b/y?q", &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK_STR_EQ(err.msg, "'https://a/x': refusing redirect from https to plain http "
                          "('http://b/y')");
    CHECK_INT_EQ(chrun_fetch_check_redirect("https://a/x", "HTTP://b/y", &err), -1);
    CHECK_INT_EQ(chrun_fetch_check_redirect("http://a/x", "file:///etc/shadow", &err), -1);
    CHECK_INT_EQ(chrun_fetch_check_redirect("http://a/x", "gopher://b/", &err), -1);
    CHECK_INT_EQ(chrun_fetch_check_redirect("http://a/x", "data:text/plain,hi", &err), -1);
}

static void test_filenames(void)
{
    struct {
        const char *url, *cd, *want;
    } c[] = {
        {"http://h/a/b.tar.gz", NULL, "b.tar.gz"},
        {"http://h/", NULL, "download"},
        {"http://h", NULL, "download"},
        {"http://h/dir/", NULL, "dir"},
        {"http://h/a%20b", NULL, "a b"},
        {"http://h/a%2Fb", NULL, "b"},
        {"http://h/..", NULL, "download"},
        {"http://h/x?y=1#z", NULL, "x"},
        {"http://h/u", "attachment; filename=\"r.bin\"", "r.bin"},
        {"http://h/u", "attachment; filename=r.bin", "r.bin"},
        {"http://h/u", "attachment; FILENAME=\"a\\\"b\"", "a\"b"},
        {"http://h/u", "attachment; filename*=UTF-8''na%C3%AFve.txt", "na\xc3\xafve.txt"},
        {"http://h/u", "attachment; filename=\"x\"; filename*=UTF-8''y", "y"},
        {"http://h/u", "attachment; filename=\"/etc/passwd\"", "passwd"},
        {"http://h/u", "attachment; filename=\"dir/\"", "u"},
        {"http://h/u", "attachment; filename=\"..\"", "u"},
        {"http://h/u", "attachment; filename=\"a\"; filename=\"b\"", "u"},
        {"http://h/u", "inline", "u"},
        {"http://h/u", "attachment; filename=", "u"},
        {"http://h/u", "attachment; filename=\"unterminated", "u"},
        {"http://h/u", "; filename=x", "u"},
    };
    char buf[CHRUN_FETCH_NAME_MAX];
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        chrun_fetch_filename(c[i].url, c[i].cd, buf, sizeof(buf));
        harness_checks++; /* one check a case, counted as CHECK counts it */
        if (strcmp(buf, c[i].want) != 0) {
            fprintf(stderr, "# %s [%s]: got '%s' want '%s'\n", c[i].url, c[i].cd ? c[i].cd : "",
                    buf, c[i].want);
            harness_failed_checks++;
        }
    }
}

static void test_content_disposition(void)
{
    struct chrun_fetch_result res;
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(fetch("/cd/ignored-name", NULL, &res, &err), 0);
    CHECK_STR_EQ(res.filename, "name.tgz");
}

static void test_limits_and_failures(void)
{
    struct chrun_fetch_result res;
    struct chrun_err err = CHRUN_ERR_INIT;
    settings.fetch_max_bytes = 100000;
    CHECK_INT_EQ(fetch("/huge-declared", NULL, &res, &err), -1);
    CHECK_INT_EQ(err.errnum, EFBIG);
    CHECK(strstr(err.msg, "Content-Length 1073741824 over the limit of 100000 bytes") != NULL);
    CHECK_INT_EQ(fetch("/huge-stream", NULL, &res, &err), -1);
    CHECK_INT_EQ(err.errnum, EFBIG);
    CHECK(strstr(err.msg, "more than 100000 bytes") != NULL);
    settings.fetch_max_bytes = CHRUN_SETTINGS_FETCH_MAX_BYTES;
    /* a body that trickles in (never stalled for long) hits the deadline */
    settings.fetch_timeout_s = 1;
    CHECK_INT_EQ(fetch("/trickle", NULL, &res, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NETWORK);
    if (strstr(err.msg, "/trickle': not done within 1 s") == NULL) {
        fprintf(stderr, "# trickle: %s\n", err.msg);
        harness_failed_checks++;
    }
    settings.fetch_timeout_s = CHRUN_SETTINGS_FETCH_TIMEOUT_S;
    CHECK_INT_EQ(fetch("/short", NULL, &res, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NETWORK);
    CHECK_INT_EQ(fetch("/missing", NULL, &res, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NETWORK);
    CHECK(strstr(err.msg, "/missing': HTTP 404") != NULL);
    CHECK_INT_EQ(count_entries("out"), 0);
}

static void test_bad_input(void)
{
    struct chrun_fetch_result res;
    struct chrun_err err = CHRUN_ERR_INIT;
    const char *bad[] = {"file:///etc/passwd", "ftp://127.0.0.1/x", "not a url", "",
                         "gopher://127.0.0.1/"};
    int dirfd;
    CHECK_INT_EQ(mkdir("out", 0755), 0);
    dirfd = open("out", O_PATH | O_DIRECTORY | O_CLOEXEC);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT_EQ(chrun_fetch_url(bad[i], NULL, dirfd, "f", NULL, &res, &err), -1);
        CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    }
    CHECK_INT_EQ(chrun_fetch_url("http://127.0.0.1:1/x", NULL, dirfd, "../f", NULL, &res, &err),
                 -1);
    CHECK(strstr(err.msg, "not a plain name") != NULL);
    /* credentials and queries never show in messages */
    CHECK_INT_EQ(chrun_fetch_url("ftp://user:secret@127.0.0.1/x?token=hush", NULL, dirfd, "f",
                                 NULL, &res, &err),
                 -1);
    CHECK(strstr(err.msg, "secret") == NULL && strstr(err.msg, "hush") == NULL);
    CHECK_INT_EQ(count_entries("out"), 0);
    close(dirfd);
}

int main(void)
{
    int rc;
    chrun_settings_init_defaults(&settings);
    /* libcurl honours http_proxy even for loopback */
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    if (server_start() < 0) {
        server_stop();
        printf("not ok 1 - http fixture server\n# passed=0 failed=1\n");
        return 1;
    }
    RUN_TEST(test_ok);
    RUN_TEST(test_checksum);
    RUN_TEST(test_redirects);
    RUN_TEST(test_redirect_rule);
    RUN_TEST(test_filenames);
    RUN_TEST(test_content_disposition);
    RUN_TEST(test_limits_and_failures);
    RUN_TEST(test_bad_input);
    rc = harness_done();
    server_stop();
    return rc;
}
