#include "chrun/inflate.h"

#include <errno.h>
#include <isa-l/igzip_lib.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* gzip trailer: CRC32 and ISIZE, little-endian (RFC 1952, 2.3.1). */
#define GZIP_TRAILER_LEN 8

struct chrun_inflate {
    enum chrun_compression comp;
    chrun_inflate_source_fn *src;
    void *data;
    const unsigned char *chunk; /* the source's current chunk */
    size_t chunk_len;
    bool src_eof, done;
    uint64_t units;      /* gzip members or zstd frames begun (gzip) / ended (zstd) */
    uint64_t member_out; /* bytes inflated from the current gzip member */
    /* The last bytes of the chunks before the current one: a trailer may
     * straddle two chunks. */
    unsigned char tail[GZIP_TRAILER_LEN];
    size_t tail_len;
    bool between; /* gzip: before the first member or after a checked trailer */
    struct inflate_state *gz;
    ZSTD_DCtx *zs;
    ZSTD_inBuffer zin;
    size_t zs_hint;  /* last ZSTD_decompressStream result: 0 = frame complete */
    bool zs_hungry; /* the last zstd call left room in its output: it wants input */
};

enum chrun_compression chrun_inflate_sniff(const void *buf, size_t len)
{
    static const unsigned char gz[] = {0x1f, 0x8b}, zs[] = {0x28, 0xb5, 0x2f, 0xfd};
    if (len >= sizeof(gz) && memcmp(buf, gz, sizeof(gz)) == 0)
        return CHRUN_COMPRESSION_GZIP;
    if (len >= sizeof(zs) && memcmp(buf, zs, sizeof(zs)) == 0)
        return CHRUN_COMPRESSION_ZSTD;
    return CHRUN_COMPRESSION_NONE;
}

const char *chrun_inflate_name(enum chrun_compression comp)
{
    if (comp == CHRUN_COMPRESSION_GZIP)
        return "gzip";
    return comp == CHRUN_COMPRESSION_ZSTD ? "zstd" : "tar";
}

struct chrun_inflate *chrun_inflate_new(enum chrun_compression comp, chrun_inflate_source_fn *src,
                                        void *data, struct chrun_err *err)
{
    struct chrun_inflate *z;
    if (comp != CHRUN_COMPRESSION_GZIP && comp != CHRUN_COMPRESSION_ZSTD)
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED, "no decompressor for %s",
                             chrun_inflate_name(comp)),
               NULL;
    z = calloc(1, sizeof(*z));
    if (z == NULL)
        return chrun_err_sys(err, ENOMEM, "inflater"), NULL;
    z->comp = comp;
    z->src = src;
    z->data = data;
    z->between = true;
    z->zs_hungry = true;
    if (comp == CHRUN_COMPRESSION_GZIP) {
        z->gz = malloc(sizeof(*z->gz));
        if (z->gz == NULL) {
            chrun_inflate_free(z);
            return chrun_err_sys(err, ENOMEM, "gzip inflater"), NULL;
        }
        isal_inflate_init(z->gz);
        return z;
    }
    z->zs = ZSTD_createDCtx();
    if (z->zs == NULL) {
        chrun_inflate_free(z);
        return chrun_err_sys(err, ENOMEM, "zstd decompressor"), NULL;
    }
    if (ZSTD_isError(ZSTD_DCtx_setParameter(z->zs, ZSTD_d_windowLogMax,
                                            CHRUN_INFLATE_ZSTD_WINDOW_LOG_MAX))) {
        chrun_inflate_free(z);
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED, "zstd: cannot cap the window size"), NULL;
    }
    return z;
}

void chrun_inflate_free(struct chrun_inflate *z)
{
    if (z == NULL)
        return;
    free(z->gz);
    ZSTD_freeDCtx(z->zs);
    free(z);
}

/* Remember the last bytes of the chunk just used up, then ask the source for
 * the next one. Returns 0 (z->src_eof set at the end) or -1. */
static int next_chunk(struct chrun_inflate *z, struct chrun_err *err)
{
    const void *p = NULL;
    ssize_t n;
    if (z->chunk_len >= GZIP_TRAILER_LEN) {
        memcpy(z->tail, z->chunk + z->chunk_len - GZIP_TRAILER_LEN, GZIP_TRAILER_LEN);
        z->tail_len = GZIP_TRAILER_LEN;
    } else if (z->chunk_len > 0) {
        size_t keep = GZIP_TRAILER_LEN - z->chunk_len;
        if (keep > z->tail_len)
            keep = z->tail_len;
        memmove(z->tail, z->tail + z->tail_len - keep, keep);
        memcpy(z->tail + keep, z->chunk, z->chunk_len);
        z->tail_len = keep + z->chunk_len;
    }
    z->chunk = NULL;
    z->chunk_len = 0;
    n = z->src(z->data, &p, err);
    if (n < 0)
        return -1;
    if (n == 0) {
        z->src_eof = true;
        return 0;
    }
    /* igzip counts input in 32 bits */
    if ((uint64_t) n > UINT32_MAX)
        return chrun_err_sys(err, EINVAL, "inflate: source chunk of %zd bytes", n);
    z->chunk = p;
    z->chunk_len = (size_t) n;
    return 0;
}

static const char *isal_reason(int r)
{
    switch (r) {
    case ISAL_INVALID_BLOCK: return "invalid deflate block";
    case ISAL_INVALID_SYMBOL: return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK: return "invalid deflate distance";
    case ISAL_INVALID_WRAPPER: return "invalid gzip header";
    case ISAL_UNSUPPORTED_METHOD: return "unsupported compression method";
    case ISAL_NEED_DICT: return "needs a preset dictionary";
    default: return "undecodable data";
    }
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* The member just finished: its 8 trailer bytes lie right before next_in, in
 * the current chunk or partly in the tail of the ones before. Check CRC32
 * and ISIZE against the data ourselves (igzip checks them too), so that the
 * error says which one is wrong. */
static int check_trailer(struct chrun_inflate *z, struct chrun_err *err)
{
    unsigned char t[GZIP_TRAILER_LEN];
    size_t in_chunk = (size_t) (z->gz->next_in - z->chunk);
    uint32_t crc, isize;
    if (in_chunk >= GZIP_TRAILER_LEN) {
        memcpy(t, z->gz->next_in - GZIP_TRAILER_LEN, GZIP_TRAILER_LEN);
    } else {
        size_t from_tail = GZIP_TRAILER_LEN - in_chunk;
        if (from_tail > z->tail_len)
            return chrun_err_set(err, CHRUN_E_INPUT, "corrupt gzip stream: member %llu: no trailer",
                                 (unsigned long long) z->units);
        memcpy(t, z->tail + z->tail_len - from_tail, from_tail);
        memcpy(t + from_tail, z->chunk, in_chunk);
    }
    crc = le32(t);
    isize = le32(t + 4);
    if (crc != z->gz->crc)
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "corrupt gzip stream: member %llu: CRC32 %08x in its trailer, %08x "
                             "of its data",
                             (unsigned long long) z->units, crc, z->gz->crc);
    if (isize != (uint32_t) z->member_out)
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "corrupt gzip stream: member %llu: ISIZE %u in its trailer, %llu "
                             "bytes of data",
                             (unsigned long long) z->units, isize,
                             (unsigned long long) z->member_out);
    return 0;
}

/* Start the next member at the current input, or decide the stream ended. */
static int gz_begin_member(struct chrun_inflate *z, struct chrun_err *err)
{
    uint8_t *in = z->gz->next_in;
    uint32_t avail = z->gz->avail_in;
    /* SPEC "Bad input": only another member may follow a member */
    if (in[0] != 0x1f)
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "corrupt gzip stream: garbage after member %llu",
                             (unsigned long long) z->units);
    isal_inflate_reset(z->gz);
    z->gz->crc_flag = ISAL_GZIP;
    z->gz->next_in = in;
    z->gz->avail_in = avail;
    z->units++;
    z->member_out = 0;
    z->between = false;
    return 0;
}

static ssize_t gz_read(struct chrun_inflate *z, unsigned char *buf, size_t cap,
                       struct chrun_err *err)
{
    size_t got = 0;
    while (got < cap && !z->done) {
        uint32_t room;
        int r;
        if (z->gz->avail_in == 0) {
            if (next_chunk(z, err) < 0)
                return -1;
            if (z->src_eof) {
                if (!z->between)
                    return chrun_err_set(err, CHRUN_E_INPUT,
                                         "truncated gzip stream: member %llu ends early",
                                         (unsigned long long) z->units);
                if (z->units == 0)
                    return chrun_err_set(err, CHRUN_E_INPUT, "empty gzip stream");
                z->done = true;
                break;
            }
            z->gz->next_in = (uint8_t *) z->chunk;
            z->gz->avail_in = (uint32_t) z->chunk_len;
        }
        if (z->between && gz_begin_member(z, err) < 0)
            return -1;
        room = cap - got > UINT32_MAX ? UINT32_MAX : (uint32_t) (cap - got);
        z->gz->next_out = buf + got;
        z->gz->avail_out = room;
        r = isal_inflate(z->gz);
        got += room - z->gz->avail_out;
        z->member_out += room - z->gz->avail_out;
        if (r == ISAL_INCORRECT_CHECKSUM) {
            if (check_trailer(z, err) < 0)
                return -1;
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "corrupt gzip stream: member %llu: trailer does not match",
                                 (unsigned long long) z->units);
        }
        /* ISAL_NEED_DICT is positive: anything but OK stops the stream */
        if (r != ISAL_DECOMP_OK)
            return chrun_err_set(err, CHRUN_E_INPUT, "corrupt gzip stream: member %llu: %s",
                                 (unsigned long long) z->units, isal_reason(r));
        if (z->gz->block_state == ISAL_BLOCK_FINISH) {
            if (check_trailer(z, err) < 0)
                return -1;
            z->between = true;
        }
    }
    return (ssize_t) got;
}

static ssize_t zstd_read(struct chrun_inflate *z, unsigned char *buf, size_t cap,
                         struct chrun_err *err)
{
    size_t got = 0;
    while (got < cap && !z->done) {
        ZSTD_outBuffer out = {buf + got, cap - got, 0};
        size_t r;
        if (z->zin.pos == z->zin.size && z->zs_hungry) {
            if (next_chunk(z, err) < 0)
                return -1;
            if (z->src_eof) {
                if (z->zs_hint != 0)
                    return chrun_err_set(err, CHRUN_E_INPUT,
                                         "truncated zstd stream: frame %llu ends early",
                                         (unsigned long long) z->units + 1);
                if (z->units == 0)
                    return chrun_err_set(err, CHRUN_E_INPUT, "empty zstd stream");
                z->done = true;
                break;
            }
            z->zin.src = z->chunk;
            z->zin.size = z->chunk_len;
            z->zin.pos = 0;
        }
        r = ZSTD_decompressStream(z->zs, &out, &z->zin);
        got += out.pos;
        if (ZSTD_isError(r)) {
            /* SPEC "Bad input": only another frame may follow a frame */
            if (z->zs_hint == 0 && z->units > 0)
                return chrun_err_set(err, CHRUN_E_INPUT,
                                     "corrupt zstd stream: garbage after frame %llu (%s)",
                                     (unsigned long long) z->units, ZSTD_getErrorName(r));
            return chrun_err_set(err, CHRUN_E_INPUT, "corrupt zstd stream: frame %llu: %s",
                                 (unsigned long long) z->units + 1, ZSTD_getErrorName(r));
        }
        if (r == 0)
            z->units++;
        z->zs_hint = r;
        /* 0: the frame is decoded and flushed, nothing stays buffered */
        z->zs_hungry = r == 0 || out.pos < out.size;
    }
    return (ssize_t) got;
}

ssize_t chrun_inflate_read(struct chrun_inflate *z, void *buf, size_t cap, struct chrun_err *err)
{
    if (cap > SSIZE_MAX)
        cap = SSIZE_MAX;
    if (z->comp == CHRUN_COMPRESSION_GZIP)
        return gz_read(z, buf, cap, err);
    return zstd_read(z, buf, cap, err);
}
