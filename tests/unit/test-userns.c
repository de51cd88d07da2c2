/* Subordinate-id files and helper lookup of the userns module. */
#include "harness.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "chrun/userns.h"

static int parse(const char *text, const char *name, uint32_t id, struct chrun_subid_range *r)
{
    memset(r, 0, sizeof(*r));
    return chrun_userns_parse_subids(text, strlen(text), name, id, r);
}

static void test_parse_by_name_and_id(void)
{
    struct chrun_subid_range r;
    const char *text = "other:100000:65536\n"
                       "alice:165536:65536\n"
                       "1001:231072:1000\n";
    CHECK_INT_EQ(parse(text, "alice", 1000, &r), 1);
    CHECK_INT_EQ(r.start, 165536);
    CHECK_INT_EQ(r.count, 65536);
    CHECK_INT_EQ(parse(text, "bob", 1001, &r), 1);
    CHECK_INT_EQ(r.start, 231072);
    CHECK_INT_EQ(r.count, 1000);
    CHECK_INT_EQ(parse(text, NULL, 1001, &r), 1);
    CHECK_INT_EQ(r.start, 231072);
    CHECK_INT_EQ(parse(text, "carol", 1002, &r), 0);
    CHECK_INT_EQ(parse("", "alice", 1000, &r), 0);
    /* no final newline; the first valid line of the user wins */
    CHECK_INT_EQ(parse("alice:5:6\nalice:7:8", "alice", 1, &r), 1);
    CHECK_INT_EQ(r.start, 5);
    CHECK_INT_EQ(r.count, 6);
    CHECK_INT_EQ(parse("x:1:1\nalice:7:8", "alice", 1, &r), 1);
    CHECK_INT_EQ(r.start, 7);
    /* a name is never a prefix match, an id never matches a name's digits */
    CHECK_INT_EQ(parse("alice2:7:8\nalic:1:1\n", "alice", 1, &r), 0);
    CHECK_INT_EQ(parse("01000:7:8\n", NULL, 1000, &r), 1);
}

static void test_parse_ignores_bad_lines(void)
{
    struct chrun_subid_range r;
    char longline[2048];
    char withnul[] = "alice:1:2\0alice:3:4\nalice:5:6\n";
    const char *bad[] = {
        "# alice:1:2\n",
        "alice:1\n",
        "alice:1:2:3\n",
        "alice::2\n",
        "alice:1:\n",
        "alice:-1:2\n",
        "alice:+1:2\n",
        "alice: 1:2\n",
        "alice:1:2 \n",
        "alice:0x10:2\n",
        "alice:1:0\n",
        "alice:4294967296:1\n",
        "alice:1:4294967296\n",
        "alice:99999999999999999999:1\n",
        "alice:4294967295:1\n",
        "alice:4294967000:1000\n",
        "alice:0:4294967295\n",
        ":1:2\n",
        "\n\n\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], "alice", 4242, &r) != 0) {
            fprintf(stderr, "# accepted bad line %zu: '%s'\n", i, bad[i]);
            CHECK(0);
        }
    }
    /* a bad line does not hide a good one after it */
    CHECK_INT_EQ(parse("alice:-1:2\nalice:1:2:3\nalice:10:20\n", "alice", 4242, &r), 1);
    CHECK_INT_EQ(r.start, 10);
    CHECK_INT_EQ(r.count, 20);
    /* the last range that still fits below 2^32-1 */
    CHECK_INT_EQ(parse("alice:4294967294:1\n", "alice", 4242, &r), 1);
    CHECK_INT_EQ(parse("alice:0:4294967294\n", "alice", 4242, &r), 1);
    /* an over-long line is skipped as a whole, never split */
    memset(longline, 'a', sizeof(longline));
    memcpy(longline + sizeof(longline) - 40, "\nbob:1:2\nalice:3:4", 19);
    longline[sizeof(longline) - 40 + 19] = '\0';
    CHECK_INT_EQ(parse(longline, "alice", 4242, &r), 1);
    CHECK_INT_EQ(r.start, 3);
    memset(longline, 'x', sizeof(longline) - 1);
    longline[sizeof(longline) - 1] = '\0';
    memcpy(longline, "alice:1:2", 9);
    CHECK_INT_EQ(parse(longline, "alice", 4242, &r), 0);
    /* a line holding NUL is not a line of the file format */
    CHECK_INT_EQ(chrun_userns_parse_subids(withnul, sizeof(withnul) - 1, "alice", 1, &r), 1);
    CHECK_INT_EQ(r.start, 5);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_read_file(void)
{
    struct chrun_subid_range r;
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(chrun_userns_read_subids("absent", "alice", 1, &r, &err), 0);
    write_file("subuid", "bob:1:2\nalice:100000:65536\n");
    CHECK_INT_EQ(chrun_userns_read_subids("subuid", "alice", 1, &r, &err), 1);
    CHECK_INT_EQ(r.start, 100000);
    CHECK_INT_EQ(r.count, 65536);
    CHECK_INT_EQ(mkdir("adir", 0755), 0);
    CHECK_INT_EQ(chrun_userns_read_subids("adir", "alice", 1, &r, &err), -1);
    CHECK(strstr(err.msg, "adir") != NULL);
    /* a file past the cap is refused, not read without bound */
    {
        int fd = open("huge", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        CHECK_INT_EQ(ftruncate(fd, CHRUN_USERNS_SUBID_FILE_MAX + 1), 0);
        close(fd);
    }
    CHECK_INT_EQ(chrun_userns_read_subids("huge", "alice", 1, &r, &err), -1);
}

static void test_find_helper(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    char found[PATH_MAX], dir[PATH_MAX + 8], path[PATH_MAX * 2];
    const char *old = getenv("PATH");
    char *saved = old ? strdup(old) : NULL;

    CHECK(getcwd(dir, PATH_MAX) != NULL);
    CHECK_INT_EQ(mkdir("bin", 0755), 0);
    write_file("bin/newuidmap", "#!/bin/sh\n");
    /* not executable: skipped */
    snprintf(path, sizeof(path), "%s/bin", dir);
    setenv("PATH", path, 1);
    if (access("/usr/bin/newuidmap", X_OK) == 0) {
        CHECK_INT_EQ(chrun_userns_find_helper("newuidmap", found, sizeof(found), &err), 0);
        CHECK_STR_EQ(found, "/usr/bin/newuidmap");
    }
    /* executable but neither setuid nor capable: it could map nothing */
    CHECK_INT_EQ(chmod("bin/newuidmap", 0755), 0);
    if (access("/usr/bin/newuidmap", X_OK) == 0) {
        CHECK_INT_EQ(chrun_userns_find_helper("newuidmap", found, sizeof(found), &err), 0);
        CHECK_STR_EQ(found, "/usr/bin/newuidmap");
    }
    /* root-owned and setuid: taken from PATH first */
    if (geteuid() == 0) {
        CHECK_INT_EQ(chmod("bin/newuidmap", 04755), 0);
        CHECK_INT_EQ(chrun_userns_find_helper("newuidmap", found, sizeof(found), &err), 0);
        snprintf(path, sizeof(path), "%s/bin/newuidmap", dir);
        CHECK_STR_EQ(found, path);
    }
    /* relative and empty PATH entries are never used */
    setenv("PATH", "bin::.", 1);
    if (chrun_userns_find_helper("newuidmap", found, sizeof(found), &err) == 0)
        CHECK_STR_EQ(found, "/usr/bin/newuidmap");
    setenv("PATH", "/nonexistent", 1);
    CHECK_INT_EQ(chrun_userns_find_helper("chrun-no-such-helper", found, sizeof(found), &err),
                 -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NOTFOUND);
    CHECK(strstr(err.msg, "uidmap") != NULL);
    if (saved != NULL)
        setenv("PATH", saved, 1);
    else
        unsetenv("PATH");
    free(saved);
}

static void test_idmap_format(void)
{
    struct chrun_idmap map;
    char text[CHRUN_IDMAP_STR_MAX];
    memset(&map, 0, sizeof(map));
    map.uid = 1000;
    map.gid = 1001;
    chrun_idmap_format(&map, text, sizeof(text));
    CHECK_STR_EQ(text, "uid 0:1000:1 gid 0:1001:1");
    CHECK_INT_EQ(chrun_idmap_max_uid(&map), 0);
    map.subids = true;
    map.subuid.start = 100000;
    map.subuid.count = 65536;
    map.subgid.start = 200000;
    map.subgid.count = 1000;
    chrun_idmap_format(&map, text, sizeof(text));
    CHECK_STR_EQ(text, "uid 0:1000:1,1:100000:65536 gid 0:1001:1,1:200000:1000");
    CHECK_INT_EQ(chrun_idmap_max_uid(&map), 65536);
    CHECK_INT_EQ(chrun_idmap_max_gid(&map), 1000);
}

int main(void)
{
    RUN_TEST(test_parse_by_name_and_id);
    RUN_TEST(test_parse_ignores_bad_lines);
    RUN_TEST(test_read_file);
    RUN_TEST(test_find_helper);
    RUN_TEST(test_idmap_format);
    return harness_done();
}
