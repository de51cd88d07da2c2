#include "harness.h"

#include "chrun/digest.h"

static void test_parse_strict(void)
{
    struct chrun_digest d;
    struct chrun_err err = CHRUN_ERR_INIT;
    const char *good = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const char *bad[] = {
        "",
        "sha256:",
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
        "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256:../../../../etc/passwd0000000000000000000000000000000000000000",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/",
    };
    CHECK_INT_EQ(chrun_digest_parse(&d, good, &err), 0);
    CHECK_STR_EQ(d.str, good);
    CHECK_STR_EQ(chrun_digest_hex(&d), good + 7);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT_EQ(chrun_digest_parse(&d, bad[i], &err), -1);
        CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
        CHECK(strstr(err.msg, "invalid digest") != NULL);
    }
    CHECK_INT_EQ(chrun_digest_parse(&d, NULL, &err), -1);
}

static void test_hash_known_values(void)
{
    struct chrun_digest d;
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_digest_hasher h = {0};
    CHECK_INT_EQ(chrun_digest_of_buffer(&d, "", 0, &err), 0);
    CHECK_STR_EQ(d.str, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK_INT_EQ(chrun_digest_hasher_init(&h, &err), 0);
    CHECK_INT_EQ(chrun_digest_hasher_update(&h, "a", 1, &err), 0);
    CHECK_INT_EQ(chrun_digest_hasher_update(&h, "bc", 2, &err), 0);
    CHECK_INT_EQ(h.size_bytes, 3);
    CHECK_INT_EQ(chrun_digest_hasher_final(&h, &d, &err), 0);
    CHECK_STR_EQ(d.str, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    chrun_digest_hasher_release(&h);
}

int main(void)
{
    RUN_TEST(test_parse_strict);
    RUN_TEST(test_hash_known_values);
    return harness_done();
}
