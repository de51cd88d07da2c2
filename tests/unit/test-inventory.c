/* Inventories (chrun-images --inventory, chrun-save --have) and image lists
 * (-i LIST): good documents, archives read by member name, bad input. */
#include "harness.h"

#include <stdbool.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/imagelist.h"
#include "chrun/inventory.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

static bool has(const struct chrun_inventory *inv, const char *s)
{
    struct chrun_digest d;
    snprintf(d.str, sizeof(d.str), "%s", s);
    return chrun_inventory_has(inv, &d);
}

static bool msg_has(const struct chrun_err *err, const char *s)
{
    if (strstr(err->msg, s) != NULL)
        return true;
    fprintf(stderr, "# message '%s' lacks '%s'\n", err->msg, s);
    return false;
}

static void test_inventory_round_trip(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_inventory *inv = chrun_inventory_new(&err), *back = chrun_inventory_new(&err);
    struct chrun_digest d;
    FILE *f;

    CHECK(inv != NULL && back != NULL);
    if (inv == NULL || back == NULL)
        return;
    snprintf(d.str, sizeof(d.str), "%s", D2);
    CHECK_INT_EQ(chrun_inventory_add(inv, &d, &err), 0);
    snprintf(d.str, sizeof(d.str), "%s", D1);
    CHECK_INT_EQ(chrun_inventory_add(inv, &d, &err), 0);
    CHECK_INT_EQ(chrun_inventory_add(inv, &d, &err), 0);
    CHECK_INT_EQ(chrun_inventory_count(inv), 2);
    f = fopen("inv.json", "w");
    CHECK(f != NULL);
    if (f != NULL) {
        CHECK_INT_EQ(chrun_inventory_write(inv, f, &err), 0);
        fclose(f);
    }
    CHECK_INT_EQ(chrun_inventory_read(back, "inv.json", &err), 0);
    CHECK_INT_EQ(chrun_inventory_count(back), 2);
    CHECK(has(back, D1) && has(back, D2));
    chrun_inventory_free(inv);
    chrun_inventory_free(back);
}

/* Each bad document fails naming the file, and leaves the set unchanged. */
static void test_inventory_bad_input(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"{not json", "invalid JSON"},
        {"{\"blobs\": []}", "not an inventory"},
        {"{\"chrun.inventory\": 2, \"blobs\": []}", "version 2"},
        {"{\"chrun.inventory\": 1}", "\"blobs\" is missing"},
        {"{\"chrun.inventory\": 1, \"blobs\": [\"" D2 "\", 7]}", "blobs[1] is not a string"},
        {"{\"chrun.inventory\": 1, \"blobs\": [\"sha256:abc\"]}", "blobs[0]: invalid digest"},
        {"{\"chrun.inventory\": 1, \"blobs\": [\"sha512:" D1 "\"]}", "blobs[0]"},
        {"this is no archive either", "not an inventory or an image archive"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct chrun_err err = CHRUN_ERR_INIT;
        struct chrun_inventory *inv = chrun_inventory_new(&err);
        struct chrun_digest d;
        if (inv == NULL)
            continue;
        snprintf(d.str, sizeof(d.str), "%s", D1);
        CHECK_INT_EQ(chrun_inventory_add(inv, &d, &err), 0);
        put_file("bad.json", cases[i].text);
        CHECK_INT_EQ(chrun_inventory_read(inv, "bad.json", &err), -1);
        CHECK(msg_has(&err, "'bad.json'"));
        CHECK(msg_has(&err, cases[i].want));
        CHECK_INT_EQ(chrun_inventory_count(inv), 1);
        chrun_inventory_free(inv);
    }
}

/* An archive counts by its blobs/sha256/ member names (tar via tar(1)). */
static void test_inventory_from_archive(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_inventory *inv = chrun_inventory_new(&err);
    CHECK(inv != NULL);
    if (inv == NULL)
        return;
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "mkdir -p a/blobs/sha256 && echo x >a/blobs/sha256/%s && "
             "echo y >a/blobs/sha256/not-a-digest && echo '{}' >a/index.json && "
             "tar -C a -czf a.tar.gz ./blobs index.json",
             D1 + 7);
    CHECK(system(cmd) == 0);
    CHECK_INT_EQ(chrun_inventory_read(inv, "a.tar.gz", &err), 0);
    CHECK_INT_EQ(chrun_inventory_count(inv), 1);
    CHECK(has(inv, D1));
    chrun_inventory_free(inv);
}

static void test_imagelist(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_imagelist list;
    char longline[CHRUN_IMAGELIST_LINE_MAX + 8];

    put_file("l", "# header\n\n   redis:7  \n\t# indented comment\nbusybox\nlast-without-newline");
    CHECK_INT_EQ(chrun_imagelist_read(&list, "l", &err), 0);
    CHECK_INT_EQ(list.n, 3);
    if (list.n == 3) {
        CHECK_STR_EQ(list.items[0], "redis:7");
        CHECK_STR_EQ(list.items[1], "busybox");
        CHECK_STR_EQ(list.items[2], "last-without-newline");
    }
    chrun_imagelist_release(&list);

    put_file("empty", "# nothing\n  \n");
    CHECK_INT_EQ(chrun_imagelist_read(&list, "empty", &err), -1);
    CHECK(msg_has(&err, "'empty' names no image"));
    chrun_imagelist_release(&list);

    memset(longline, 'a', sizeof(longline) - 1);
    longline[sizeof(longline) - 1] = '\0';
    put_file("long", "ok\n");
    {
        FILE *f = fopen("long", "a");
        if (f != NULL) {
            fputs(longline, f);
            fclose(f);
        }
    }
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_imagelist_read(&list, "long", &err), -1);
    CHECK(msg_has(&err, "line 2: longer than"));
    chrun_imagelist_release(&list);

    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_imagelist_read(&list, "nosuch", &err), -1);
    CHECK(msg_has(&err, "'nosuch'"));
    chrun_imagelist_release(&list);
}

int main(void)
{
    RUN_TEST(test_inventory_round_trip);
    RUN_TEST(test_inventory_bad_input);
    RUN_TEST(test_inventory_from_archive);
    RUN_TEST(test_imagelist);
    return harness_done();
}
