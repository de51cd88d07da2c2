#include "chrun/sink.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

/* Written bytes after which the flusher thread fdatasyncs the file being
 * written. A disk with a volatile cache (a VM's virtio disk, most SSDs) then
 * makes data durable while the download goes on, and each blob's own fsync
 * at publish time waits for the last few megabytes only. */
#define FLUSH_EVERY (16u << 20)

struct item {
    struct chrun_sink_ticket *ticket;
    struct chrun_store_writer *w;
    char *buf;
    size_t len;
};

struct chrun_sink {
    pthread_mutex_t mu;
    pthread_cond_t work;     /* an item was queued, or stop */
    pthread_cond_t progress; /* an item was written: a buffer is free */
    pthread_t thread;
    bool stop;

    pthread_t flusher;
    pthread_cond_t flush; /* flush_fd was set, or stop */
    int flush_fd;         /* handed to the flusher; -1 when none waits */
    bool flushing;        /* the flusher is in fdatasync */
    uint64_t unflushed;   /* bytes written since the last flush began */

    unsigned nbufs;
    char **all;   /* every buffer, for the final free */
    char **free;  /* stack of free buffers */
    unsigned n_free;
    struct item *queue; /* ring of nbufs items: each holds a buffer */
    unsigned head, count;
};

static void write_item(struct item *it)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    /* the flag is only set by this thread, so reading it unlocked is safe */
    if (it->ticket->failed)
        return;
    if (chrun_store_writer_write(it->w, it->buf, it->len, &err) == 0)
        return;
    /* the ticket's owner reads err only after taking the lock */
    it->ticket->err = err;
    __atomic_store_n(&it->ticket->failed, true, __ATOMIC_RELEASE);
}

/* Called with the lock held, after W was written LEN bytes. */
static void maybe_flush(struct chrun_sink *s, struct chrun_store_writer *w, size_t len)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    s->unflushed += len;
    if (s->unflushed < FLUSH_EVERY || s->flushing || s->flush_fd >= 0)
        return;
    /* best effort: the blob's fsync at publish time is what counts */
    s->flush_fd = chrun_store_writer_reopen(w, &ignored);
    if (s->flush_fd >= 0) {
        s->unflushed = 0;
        pthread_cond_signal(&s->flush);
    }
}

static void *flusher_main(void *arg)
{
    struct chrun_sink *s = arg;
    int fd;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->flush_fd < 0 && !s->stop)
            pthread_cond_wait(&s->flush, &s->mu);
        if (s->flush_fd < 0)
            break;
        fd = s->flush_fd;
        s->flush_fd = -1;
        s->flushing = true;
        pthread_mutex_unlock(&s->mu);

        (void) fdatasync(fd);
        close(fd);

        pthread_mutex_lock(&s->mu);
        s->flushing = false;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void *worker_main(void *arg)
{
    struct chrun_sink *s = arg;
    struct item it;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->count == 0 && !s->stop)
            pthread_cond_wait(&s->work, &s->mu);
        if (s->count == 0)
            break;
        it = s->queue[s->head];
        pthread_mutex_unlock(&s->mu);

        write_item(&it);

        pthread_mutex_lock(&s->mu);
        if (!it.ticket->failed)
            maybe_flush(s, it.w, it.len);
        s->head = (s->head + 1) % s->nbufs;
        s->count--;
        s->free[s->n_free++] = it.buf;
        it.ticket->pending--;
        pthread_cond_broadcast(&s->progress);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void sink_release(struct chrun_sink *s)
{
    if (s->all != NULL)
        for (unsigned i = 0; i < s->nbufs; i++)
            free(s->all[i]);
    free(s->all);
    free(s->free);
    free(s->queue);
    free(s);
}

/* Set stop and join THREAD; both threads drain their work before they
 * look at stop. */
static void stop_thread(struct chrun_sink *s, pthread_t thread)
{
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->work);
    pthread_cond_broadcast(&s->flush);
    pthread_mutex_unlock(&s->mu);
    pthread_join(thread, NULL);
}

static void sink_destroy(struct chrun_sink *s)
{
    if (s->flush_fd >= 0)
        close(s->flush_fd);
    pthread_cond_destroy(&s->flush);
    pthread_cond_destroy(&s->progress);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->mu);
    sink_release(s);
}

/* The sink and its buffers, or NULL when out of memory. */
static struct chrun_sink *sink_alloc(unsigned nbufs)
{
    struct chrun_sink *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->nbufs = nbufs;
    s->all = calloc(nbufs, sizeof(*s->all));
    s->free = calloc(nbufs, sizeof(*s->free));
    s->queue = calloc(nbufs, sizeof(*s->queue));
    if (s->all == NULL || s->free == NULL || s->queue == NULL) {
        sink_release(s);
        return NULL;
    }
    for (unsigned i = 0; i < nbufs; i++) {
        if ((s->all[i] = malloc(CHRUN_SINK_BUFSZ)) == NULL) {
            sink_release(s);
            return NULL;
        }
        s->free[s->n_free++] = s->all[i];
    }
    return s;
}

struct chrun_sink *chrun_sink_new(unsigned nbufs, struct chrun_err *err)
{
    struct chrun_sink *s = sink_alloc(nbufs);
    int rc;

    if (s == NULL) {
        chrun_err_sys(err, ENOMEM, "blob writer buffers");
        return NULL;
    }
    s->flush_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->progress, NULL);
    pthread_cond_init(&s->flush, NULL);
    rc = pthread_create(&s->thread, NULL, worker_main, s);
    if (rc == 0) {
        rc = pthread_create(&s->flusher, NULL, flusher_main, s);
        if (rc != 0)
            stop_thread(s, s->thread);
    }
    if (rc != 0) {
        sink_destroy(s);
        chrun_err_sys(err, rc, "start blob writer thread");
        return NULL;
    }
    return s;
}

char *chrun_sink_buffer(struct chrun_sink *s)
{
    char *buf;
    pthread_mutex_lock(&s->mu);
    while (s->n_free == 0)
        pthread_cond_wait(&s->progress, &s->mu);
    buf = s->free[--s->n_free];
    pthread_mutex_unlock(&s->mu);
    return buf;
}

void chrun_sink_submit(struct chrun_sink *s, struct chrun_sink_ticket *t,
                       struct chrun_store_writer *w, char *buf, size_t len)
{
    pthread_mutex_lock(&s->mu);
    /* count < nbufs always: every queued item holds one of the buffers */
    s->queue[(s->head + s->count) % s->nbufs] =
        (struct item){.ticket = t, .w = w, .buf = buf, .len = len};
    s->count++;
    t->pending++;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
}

void chrun_sink_unused(struct chrun_sink *s, char *buf)
{
    pthread_mutex_lock(&s->mu);
    s->free[s->n_free++] = buf;
    pthread_cond_broadcast(&s->progress);
    pthread_mutex_unlock(&s->mu);
}

bool chrun_sink_failed(struct chrun_sink *s, struct chrun_sink_ticket *t)
{
    (void) s;
    return __atomic_load_n(&t->failed, __ATOMIC_ACQUIRE);
}

int chrun_sink_wait(struct chrun_sink *s, struct chrun_sink_ticket *t, struct chrun_err *err)
{
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    while (t->pending > 0)
        pthread_cond_wait(&s->progress, &s->mu);
    if (t->failed) {
        *err = t->err;
        *t = (struct chrun_sink_ticket){0};
        rc = -1;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void chrun_sink_free(struct chrun_sink *s)
{
    if (s == NULL)
        return;
    /* the writer first: it may hand the flusher one more file */
    stop_thread(s, s->thread);
    stop_thread(s, s->flusher);
    sink_destroy(s);
}
