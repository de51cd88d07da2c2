/* A worker thread that writes and hashes blob bytes for store writers, so
 * the thread receiving them from the network never waits on SHA-256 or the
 * page cache. Bytes queued for one writer are written in order; a fixed
 * pool of buffers bounds memory and slows the receiver when the disk lags.
 *
 * One thread fills buffers and submits them; while a writer has bytes
 * queued (see chrun_sink_wait) only the worker touches it. */
#ifndef CHRUN_SINK_H
#define CHRUN_SINK_H

#include <stdbool.h>
#include <stddef.h>

#include "chrun/err.h"
#include "chrun/store.h"

/* Size of every buffer handed out by chrun_sink_buffer. */
#define CHRUN_SINK_BUFSZ (128 * 1024)

struct chrun_sink;

/* What one writer has queued. Embedded in the caller's state and zeroed
 * before first use; its fields belong to the sink (read them through the
 * calls below). */
struct chrun_sink_ticket {
    unsigned pending;     /* buffers queued, not yet written */
    bool failed;          /* a write failed: later buffers are dropped */
    struct chrun_err err; /* that failure */
};

/* Start the worker with NBUFS buffers. A caller filling buffers for N
 * writers at once must ask for more than N, or it can wait forever for a
 * buffer it holds itself. Returns a sink to free with chrun_sink_free, or
 * NULL. */
struct chrun_sink *chrun_sink_new(unsigned nbufs, struct chrun_err *err);

/* A free buffer of CHRUN_SINK_BUFSZ bytes, waiting until the worker frees
 * one. It goes back through chrun_sink_submit or chrun_sink_unused. */
char *chrun_sink_buffer(struct chrun_sink *s);

/* Queue the first LEN bytes of BUF to be written to W, accounted to T. */
void chrun_sink_submit(struct chrun_sink *s, struct chrun_sink_ticket *t,
                       struct chrun_store_writer *w, char *buf, size_t len);

/* Give back a buffer that will not be submitted. */
void chrun_sink_unused(struct chrun_sink *s, char *buf);

/* Whether a write queued under T has failed; does not wait. */
bool chrun_sink_failed(struct chrun_sink *s, struct chrun_sink_ticket *t);

/* Wait until every buffer queued under T is written. Returns 0, or -1 with
 * the first failed write's error (the ticket is then reset for reuse). */
int chrun_sink_wait(struct chrun_sink *s, struct chrun_sink_ticket *t, struct chrun_err *err);

/* Write what is queued, stop the worker and free the sink. NULL is a no-op. */
void chrun_sink_free(struct chrun_sink *s);

#endif
