#include "harness.h"

#include <isa-l/igzip_lib.h>
#include <zstd.h>

#include "chrun/inflate.h"

/* The plain data every stream here holds, and room for compressed forms. */
#define DATA_LEN 200000
#define ZBUF_MAX (2 * DATA_LEN + 4096)

static unsigned char data[DATA_LEN];

/* A source handing out LEN bytes of P in chunks of at most CHUNK bytes. */
struct chunks {
    const unsigned char *p;
    size_t len, pos, chunk;
    bool fail; /* at the end, fail instead of reporting the end */
};

static ssize_t chunks_read(void *d, const void **ret_buf, struct chrun_err *err)
{
    struct chunks *c = d;
    size_t n = c->len - c->pos;
    if (n == 0 && c->fail)
        return chrun_err_set(err, CHRUN_E_SYS, "source broke");
    if (n > c->chunk)
        n = c->chunk;
    *ret_buf = c->p + c->pos;
    c->pos += n;
    return (ssize_t) n;
}

static void fill_data(void)
{
    uint32_t x = 12345;
    for (size_t i = 0; i < DATA_LEN; i++) {
        x = x * 1103515245 + 12345;
        /* compressible, but not trivially */
        data[i] = (unsigned char) ("abcdefgh"[(x >> 16) & 7] + (i % 97 == 0));
    }
}

/* gzip LEN bytes of P into OUT (one member). Returns its length. */
static size_t gz(const unsigned char *p, size_t len, unsigned char *out)
{
    struct isal_zstream zs;
    isal_deflate_stateless_init(&zs);
    zs.gzip_flag = IGZIP_GZIP;
    zs.end_of_stream = 1;
    zs.next_in = (uint8_t *) p;
    zs.avail_in = (uint32_t) len;
    zs.next_out = out;
    zs.avail_out = ZBUF_MAX;
    if (isal_deflate_stateless(&zs) != COMP_OK)
        return 0;
    return zs.total_out;
}

static size_t zst(const unsigned char *p, size_t len, unsigned char *out)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    size_t n;
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    n = ZSTD_compress2(cc, out, ZBUF_MAX, p, len);
    ZSTD_freeCCtx(cc);
    return ZSTD_isError(n) ? 0 : n;
}

/* Inflate Z (LEN bytes, COMP) in chunks of CHUNK; on success the output must
 * be WANT_LEN bytes of DATA. Returns the read result (0 or -1) and ERR. */
static int inflate_all(enum chrun_compression comp, const unsigned char *z, size_t len,
                       size_t chunk, size_t want_len, struct chrun_err *err)
{
    static unsigned char out[DATA_LEN + 1];
    struct chunks c = {z, len, 0, chunk, false};
    struct chrun_inflate *zi = chrun_inflate_new(comp, chunks_read, &c, err);
    size_t got = 0;
    ssize_t n;
    if (zi == NULL)
        return -1;
    /* odd read sizes, so output boundaries fall everywhere */
    for (;;) {
        n = chrun_inflate_read(zi, out + got, got + 3001 <= DATA_LEN ? 3001 : DATA_LEN + 1 - got,
                               err);
        if (n <= 0)
            break;
        got += (size_t) n;
    }
    chrun_inflate_free(zi);
    if (n < 0)
        return -1;
    CHECK_INT_EQ(got, want_len);
    CHECK(memcmp(out, data, want_len) == 0);
    CHECK_INT_EQ(c.pos, len); /* read to the very end */
    return 0;
}

static void test_sniff(void)
{
    CHECK_INT_EQ(chrun_inflate_sniff("\x1f\x8b\x08", 3), CHRUN_COMPRESSION_GZIP);
    CHECK_INT_EQ(chrun_inflate_sniff("\x28\xb5\x2f\xfd", 4), CHRUN_COMPRESSION_ZSTD);
    CHECK_INT_EQ(chrun_inflate_sniff("\x1f", 1), CHRUN_COMPRESSION_NONE);
    CHECK_INT_EQ(chrun_inflate_sniff("ustar", 5), CHRUN_COMPRESSION_NONE);
    CHECK_STR_EQ(chrun_inflate_name(CHRUN_COMPRESSION_ZSTD), "zstd");
}

/* Three members (one of them empty) read in chunks of every awkward size:
 * trailers straddle chunk boundaries. */
static void test_gzip_multi_member_chunks(void)
{
    static unsigned char z[3 * ZBUF_MAX];
    static const size_t chunk_sizes[] = {1, 7, 8, 9, 4096, 3 * ZBUF_MAX};
    struct chrun_err err = CHRUN_ERR_INIT;
    size_t len = gz(data, 70000, z);
    len += gz(data + 70000, 0, z + len);
    len += gz(data + 70000, DATA_LEN - 70000, z + len);
    for (size_t i = 0; i < sizeof(chunk_sizes) / sizeof(chunk_sizes[0]); i++) {
        CHECK_INT_EQ(inflate_all(CHRUN_COMPRESSION_GZIP, z, len, chunk_sizes[i], DATA_LEN, &err),
                     0);
        if (err.code != 0)
            fprintf(stderr, "# chunk %zu: %s\n", chunk_sizes[i], err.msg);
    }
}

static void expect_gzip_error(const unsigned char *z, size_t len, const char *what)
{
    static const size_t chunk_sizes[] = {1, 5, 65536};
    for (size_t i = 0; i < sizeof(chunk_sizes) / sizeof(chunk_sizes[0]); i++) {
        struct chrun_err err = CHRUN_ERR_INIT;
        CHECK_INT_EQ(inflate_all(CHRUN_COMPRESSION_GZIP, z, len, chunk_sizes[i], DATA_LEN, &err),
                     -1);
        CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
        if (strstr(err.msg, what) == NULL)
            fprintf(stderr, "# chunk %zu: '%s' lacks '%s'\n", chunk_sizes[i], err.msg, what);
        CHECK(strstr(err.msg, what) != NULL);
    }
}

static void test_gzip_bad_trailers(void)
{
    static unsigned char z[2 * ZBUF_MAX], bad[2 * ZBUF_MAX + 16];
    size_t one = gz(data, 100000, z), len = one + gz(data + 100000, DATA_LEN - 100000, z + one);

    memcpy(bad, z, len);
    bad[one - 8] ^= 0x01; /* CRC32 of member 1 */
    expect_gzip_error(bad, len, "member 1: CRC32");
    memcpy(bad, z, len);
    bad[len - 1] ^= 0x01; /* ISIZE of member 2 */
    expect_gzip_error(bad, len, "member 2: ISIZE");
    memcpy(bad, z, len);
    memcpy(bad + len, "\0\0\0\0", 4);
    expect_gzip_error(bad, len + 4, "garbage after member 2");
    memcpy(bad + len, "\x1f\x8b\x08", 3); /* the start of a member, then nothing */
    expect_gzip_error(bad, len + 3, "truncated gzip stream: member 3");
    expect_gzip_error(z, len - 3, "truncated gzip stream: member 2");
    expect_gzip_error(z, one + 5, "truncated gzip stream: member 2");
    expect_gzip_error(z, 0, "empty gzip stream");
}

static void test_zstd_frames(void)
{
    static unsigned char z[2 * ZBUF_MAX], bad[2 * ZBUF_MAX + 16];
    static const size_t chunk_sizes[] = {1, 7, 65536};
    struct chrun_err err = CHRUN_ERR_INIT;
    size_t one = zst(data, 90000, z), len = one + zst(data + 90000, DATA_LEN - 90000, z + one);

    for (size_t i = 0; i < sizeof(chunk_sizes) / sizeof(chunk_sizes[0]); i++) {
        CHECK_INT_EQ(inflate_all(CHRUN_COMPRESSION_ZSTD, z, len, chunk_sizes[i], DATA_LEN, &err),
                     0);
        memcpy(bad, z, len);
        bad[one - 1] ^= 0x01; /* content checksum of frame 1 */
        CHECK_INT_EQ(inflate_all(CHRUN_COMPRESSION_ZSTD, bad, len, chunk_sizes[i], DATA_LEN, &err),
                     -1);
        CHECK(strstr(err.msg, "corrupt zstd stream: frame 1") != NULL);
        CHECK(strstr(err.msg, "checksum") != NULL);
        memcpy(bad, z, len);
        memcpy(bad + len, "garbage!", 8);
        CHECK_INT_EQ(
            inflate_all(CHRUN_COMPRESSION_ZSTD, bad, len + 8, chunk_sizes[i], DATA_LEN, &err), -1);
        CHECK(strstr(err.msg, "garbage after frame 2") != NULL);
        CHECK_INT_EQ(
            inflate_all(CHRUN_COMPRESSION_ZSTD, z, len - 2, chunk_sizes[i], DATA_LEN, &err), -1);
        CHECK(strstr(err.msg, "truncated zstd stream: frame 2") != NULL);
    }
}

/* The source's own error comes back untouched; NONE has no inflater. */
static void test_source_error_and_none(void)
{
    static unsigned char z[ZBUF_MAX];
    static unsigned char out[DATA_LEN];
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chunks c = {z, 0, 0, 4096, true};
    struct chrun_inflate *zi;
    c.len = gz(data, 5000, z) - 4;
    zi = chrun_inflate_new(CHRUN_COMPRESSION_GZIP, chunks_read, &c, &err);
    CHECK(zi != NULL);
    CHECK_INT_EQ(chrun_inflate_read(zi, out, sizeof(out), &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_SYS);
    CHECK_STR_EQ(err.msg, "source broke");
    chrun_inflate_free(zi);
    CHECK(chrun_inflate_new(CHRUN_COMPRESSION_NONE, chunks_read, &c, &err) == NULL);
    CHECK_INT_EQ(err.code, CHRUN_E_UNSUPPORTED);
}

int main(void)
{
    fill_data();
    RUN_TEST(test_sniff);
    RUN_TEST(test_gzip_multi_member_chunks);
    RUN_TEST(test_gzip_bad_trailers);
    RUN_TEST(test_zstd_frames);
    RUN_TEST(test_source_error_and_none);
    return harness_done();
}
