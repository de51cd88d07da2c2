/* -v HOST:CTR[:ro|rw] specs. */
#include "harness.h"

#include "chrun/volume.h"

static void test_volume_parse(void)
{
    struct chrun_volume v;
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(chrun_volume_parse(&v, "/data:/mnt/data", &err), 0);
    CHECK_STR_EQ(v.host, "/data");
    CHECK_STR_EQ(v.ctr, "/mnt/data");
    CHECK(!v.ro);
    chrun_volume_release(&v);
    CHECK_INT_EQ(chrun_volume_parse(&v, "rel/dir:/x:ro", &err), 0);
    CHECK_STR_EQ(v.host, "rel/dir");
    CHECK(v.ro);
    chrun_volume_release(&v);
    CHECK_INT_EQ(chrun_volume_parse(&v, "/a:/b:rw", &err), 0);
    CHECK(!v.ro);
    chrun_volume_release(&v);
    CHECK_INT_EQ(chrun_volume_parse(&v, "/a", &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_USAGE);
    CHECK_INT_EQ(chrun_volume_parse(&v, "/a:rel", &err), -1);
    CHECK(strstr(err.msg, "absolute") != NULL);
    CHECK_INT_EQ(chrun_volume_parse(&v, ":/b", &err), -1);
    CHECK_INT_EQ(chrun_volume_parse(&v, "/a:/b:rx", &err), -1);
    CHECK(strstr(err.msg, "'rx'") != NULL);
    CHECK_INT_EQ(chrun_volume_parse(&v, "/a:/b:ro:x", &err), -1);
    CHECK(v.host == NULL && v.ctr == NULL);
    chrun_volume_release(&v);
}

int main(void)
{
    RUN_TEST(test_volume_parse);
    return harness_done();
}
