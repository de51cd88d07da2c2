/* Per-item progress bars on stderr, docker-pull style: one line per item
 * ("3f4a5b6c7d8e: Downloading [=====>    ] 12.3MB/45.6MB"), redrawn in place
 * at most 10 times a second. Only ever drawn when stderr is a terminal; a
 * disabled handle turns every call into a no-op, so callers need no checks.
 * Not thread-safe: one thread drives a handle. */
#ifndef CHRUN_PROGRESS_H
#define CHRUN_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct chrun_progress;

/* A new set of bars. With ENABLED false, or stderr not a terminal, nothing
 * is ever drawn. Returns NULL only when out of memory; NULL is accepted by
 * every other function as a disabled handle. */
struct chrun_progress *chrun_progress_new(bool enabled);

/* Add an item LABEL (shown up to 12 characters) of TOTAL bytes (0 if
 * unknown). Returns its index for the calls below, or -1. */
int chrun_progress_add(struct chrun_progress *p, const char *label, uint64_t total);

/* Set item IDX's byte count and its status word ("Downloading",
 * "Download complete", "Already exists", ...; STATUS is copied; NULL keeps
 * the current one). */
void chrun_progress_update(struct chrun_progress *p, int idx, uint64_t done, const char *status);

/* Redraw if 100 ms have passed since the last redraw, or FORCE. */
void chrun_progress_draw(struct chrun_progress *p, bool force);

/* Final redraw (the cursor ends below the bars) and free. NULL is fine. */
void chrun_progress_free(struct chrun_progress *p);

#endif
