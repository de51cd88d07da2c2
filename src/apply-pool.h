/* A small pool of threads that create regular files while the tar stream is
 * still being read (issue 13: file creation is syscall-bound, ~170 us per
 * openat on a slow disk). Not installed.
 *
 * It is a mechanism of the disk back-end of the changeset rules
 * (src/layer.c), not a rule: the rules stay in src/changeset-apply.c, which
 * only ever sees a tree where the jobs it depends on are done. The pool
 * gives the back-end two ways to get there:
 *  - every job is keyed by where it creates its file: the parent directory
 *    (device and inode) and the name in it. apply_pool_wait returns once no
 *    job with a key is pending, so a name is looked at or changed only after
 *    the file a job makes there is complete (same path twice, a hardlink
 *    after its target, a whiteout of that very file);
 *  - apply_pool_drain waits for every job, for what may touch a subtree or
 *    a path the back-end cannot key (removing or emptying a directory, a
 *    parent directory that does not resolve yet).
 * Memory is bounded: at most APPLY_POOL_JOBS_MAX jobs (or fewer, as the pool
 * is told) and APPLY_POOL_BYTES_MAX bytes (as the submitter counts them) wait at once; apply_pool_submit
 * blocks until there is room.
 *
 * Errors: the first failing job in submission order wins; after a failure
 * queued jobs are dropped without running, and submit, wait and drain
 * return -1 with that error until apply_pool_clear_error.
 *
 * One thread (the submitter) calls every function; the jobs run on the
 * pool's threads. */
#ifndef CHRUN_APPLY_POOL_H
#define CHRUN_APPLY_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "chrun/err.h"

/* Jobs waiting or running at once, and their bytes (file data copied out of
 * the stream): what the pool may hold in memory. */
#define APPLY_POOL_JOBS_MAX 128
#define APPLY_POOL_BYTES_MAX ((size_t) 16 << 20)
/* Upper bound of CHRUN_APPLY_THREADS. */
#define APPLY_POOL_THREADS_MAX 16

/* Run job DATA on a pool thread. Returns 0, or -1 with ERR. */
typedef int apply_pool_fn(void *data, struct chrun_err *err);
/* Free job DATA (run or not). */
typedef void apply_pool_free_fn(void *data);

struct apply_pool;

/* How many threads should create files: CHRUN_APPLY_THREADS when it is a
 * number from 1 to APPLY_POOL_THREADS_MAX, else the number of CPUs kept
 * between 2 and 4. 1 means no pool: the caller does everything itself. */
unsigned apply_pool_default_threads(void);

/* Start THREADS (>= 1) threads that hold at most MAX_JOBS jobs (at most
 * APPLY_POOL_JOBS_MAX; a job may hold file descriptors, which the caller
 * counts). Returns a new pool (apply_pool_free), or NULL with ERR. */
struct apply_pool *apply_pool_new(unsigned threads, size_t max_jobs, struct chrun_err *err);

/* Queue RUN(DATA) under key (DEV, INO, NAME), counted as BYTES. Blocks while
 * the pool is full. The pool owns DATA from this call on, even when it
 * fails, and frees it with FREE_FN. Returns 0; -1 when an earlier job failed
 * (ERR holds its error) or on ENOMEM. */
int apply_pool_submit(struct apply_pool *p, dev_t dev, ino_t ino, const char *name, size_t bytes,
                      apply_pool_fn *run, apply_pool_free_fn *free_fn, void *data,
                      struct chrun_err *err);

/* Wait until no job keyed (DEV, INO, NAME) is pending. Returns 0, or -1
 * when a job failed (ERR holds the first error). */
int apply_pool_wait(struct apply_pool *p, dev_t dev, ino_t ino, const char *name,
                    struct chrun_err *err);

/* Wait until no job is pending. Returns 0, or -1 with the first error. */
int apply_pool_drain(struct apply_pool *p, struct chrun_err *err);

/* True when jobs are pending (the submitter's view: only the pool's threads
 * make it false). */
bool apply_pool_busy(struct apply_pool *p);

/* True when a job failed since the last apply_pool_clear_error. */
bool apply_pool_failed(struct apply_pool *p);

/* Forget the error of a failed job (the pool must be drained). */
void apply_pool_clear_error(struct apply_pool *p);

/* Drop queued jobs, wait for running ones, stop the threads and free P
 * (NULL is fine). */
void apply_pool_free(struct apply_pool *p);

#endif
