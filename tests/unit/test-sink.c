/* The blob sink: writes queued from one thread land in order, per writer,
 * with failures reported to the right ticket and memory bounded. */
#include "harness.h"

#include <stdbool.h>
#include <stdint.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/sink.h"
#include "chrun/store.h"

/* ---- helpers ---- */

static struct chrun_store *open_store(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store *st = chrun_store_open(NULL, CHRUN_STORE_CREATE, &err);
    if (st == NULL)
        fprintf(stderr, "# open store: %s\n", err.msg);
    return st;
}

/* LEN pseudo-random bytes from SEED (caller frees). */
static char *make_bytes(size_t len, uint32_t seed)
{
    char *buf = malloc(len);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; buf != NULL && i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (char) x;
    }
    return buf;
}

static struct chrun_store_writer *begin_for(struct chrun_store *st, const char *data, size_t len,
                                            struct chrun_digest *d)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store_writer *w;
    if (chrun_digest_of_buffer(d, data, len, &err) < 0)
        return NULL;
    w = chrun_store_writer_begin(st, d, (int64_t) len, 0, &err);
    if (w == NULL)
        fprintf(stderr, "# writer: %s\n", err.msg);
    return w;
}

/* Queue LEN bytes of DATA for W in pieces of at most PIECE bytes. */
static void queue_bytes(struct chrun_sink *s, struct chrun_sink_ticket *t,
                        struct chrun_store_writer *w, const char *data, size_t len, size_t piece)
{
    for (size_t off = 0; off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        char *buf = chrun_sink_buffer(s);
        memcpy(buf, data + off, n);
        chrun_sink_submit(s, t, w, buf, n);
    }
}

/* ---- tests ---- */

/* Three blobs queued in turns land whole and in order, past the size at
 * which the flusher thread starts syncing. */
static void test_interleaved_writers_in_order(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_sink *s = chrun_sink_new(4, &err);
    enum { N = 3, LEN = 9 << 20, PIECE = 100000 };
    struct chrun_sink_ticket t[N] = {{0}};
    struct chrun_store_writer *w[N];
    struct chrun_digest d[N], got;
    char *data[N];

    CHECK(s != NULL);
    for (int i = 0; i < N; i++) {
        data[i] = make_bytes(LEN, (uint32_t) i + 1);
        w[i] = begin_for(st, data[i], LEN, &d[i]);
        CHECK(w[i] != NULL);
    }
    for (size_t off = 0; off < LEN; off += PIECE)
        for (int i = 0; i < N; i++) {
            size_t n = LEN - off < PIECE ? LEN - off : PIECE;
            queue_bytes(s, &t[i], w[i], data[i] + off, n, n);
        }
    for (int i = 0; i < N; i++) {
        CHECK_INT_EQ(chrun_sink_wait(s, &t[i], &err), 0);
        CHECK_INT_EQ(chrun_store_writer_offset(w[i]), LEN);
        CHECK_INT_EQ(chrun_store_writer_commit(w[i], &got, &err), 0);
        CHECK_STR_EQ(got.str, d[i].str);
        chrun_store_writer_free(w[i]);
        free(data[i]);
    }
    chrun_sink_free(s);
    CHECK_INT_EQ(count_entries("store/blobs/sha256"), N);
    CHECK_INT_EQ(count_entries("store/tmp"), 0);
    chrun_store_close(st);
}

/* A write that fails (more bytes than the writer expects) fails its own
 * ticket only; later buffers for it are dropped; the other blob is intact. */
static void test_failure_stays_with_its_ticket(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_sink *s = chrun_sink_new(3, &err);
    struct chrun_sink_ticket bad = {0}, good = {0};
    struct chrun_digest dbad, dgood, got;
    struct chrun_store_writer *wbad, *wgood;
    const char *short_data = "ten bytes!", *good_data = "good blob";

    CHECK(s != NULL);
    wbad = begin_for(st, short_data, strlen(short_data), &dbad);
    wgood = begin_for(st, good_data, strlen(good_data), &dgood);
    queue_bytes(s, &bad, wbad, "0123456789abcdef", 16, 16);
    queue_bytes(s, &good, wgood, good_data, strlen(good_data), 4);
    queue_bytes(s, &bad, wbad, "more", 4, 4);

    CHECK_INT_EQ(chrun_sink_wait(s, &bad, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_DIGEST);
    CHECK(strstr(err.msg, "more bytes than the declared size") != NULL);
    CHECK_INT_EQ(chrun_store_writer_offset(wbad), 0);
    /* the ticket is reset: a later wait reports nothing old */
    CHECK(!chrun_sink_failed(s, &bad));
    CHECK_INT_EQ(chrun_sink_wait(s, &bad, &err), 0);

    CHECK_INT_EQ(chrun_sink_wait(s, &good, &err), 0);
    CHECK_INT_EQ(chrun_store_writer_commit(wgood, &got, &err), 0);
    CHECK_STR_EQ(got.str, dgood.str);
    chrun_store_writer_free(wbad);
    chrun_store_writer_free(wgood);
    chrun_sink_free(s);
    CHECK_INT_EQ(count_entries("store/blobs/sha256"), 1);
    CHECK_INT_EQ(count_entries("store/tmp"), 0);
    chrun_store_close(st);
}

/* One buffer in the pool: every request waits for the worker to free the
 * previous one, and an unused buffer given back is handed out again. */
static void test_one_buffer_pool(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_sink *s = chrun_sink_new(1, &err);
    struct chrun_sink_ticket t = {0};
    struct chrun_digest d, got;
    enum { LEN = 3 * CHRUN_SINK_BUFSZ + 5 };
    char *data = make_bytes(LEN, 7);
    struct chrun_store_writer *w = begin_for(st, data, LEN, &d);

    CHECK(s != NULL && w != NULL);
    chrun_sink_unused(s, chrun_sink_buffer(s));
    queue_bytes(s, &t, w, data, LEN, CHRUN_SINK_BUFSZ);
    CHECK_INT_EQ(chrun_sink_wait(s, &t, &err), 0);
    CHECK_INT_EQ(chrun_store_writer_commit(w, &got, &err), 0);
    CHECK_STR_EQ(got.str, d.str);
    chrun_store_writer_free(w);
    chrun_sink_free(s);
    free(data);
    chrun_store_close(st);
}

/* Freeing the sink writes what is still queued: it belongs to a partial
 * file that a later pull resumes. */
static void test_free_writes_queued_bytes(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_sink *s = chrun_sink_new(8, &err);
    struct chrun_sink_ticket t = {0};
    struct chrun_digest d;
    enum { LEN = 1 << 20 };
    char *data = make_bytes(LEN, 9);
    struct chrun_store_writer *w = begin_for(st, data, LEN, &d);

    CHECK(s != NULL && w != NULL);
    queue_bytes(s, &t, w, data, LEN / 2, 4096);
    chrun_sink_free(s);
    CHECK_INT_EQ(chrun_store_writer_offset(w), LEN / 2);
    chrun_store_writer_free(w);
    free(data);
    chrun_store_close(st);
}

int main(void)
{
    RUN_TEST(test_interleaved_writers_in_order);
    RUN_TEST(test_failure_stays_with_its_ticket);
    RUN_TEST(test_one_buffer_pool);
    RUN_TEST(test_free_writes_queued_bytes);
    return harness_done();
}
