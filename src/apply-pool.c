/* Threads that create files while the stream is read (see apply-pool.h). */
#include "apply-pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

struct pool_job {
    struct pool_job *prev, *next; /* pending jobs, in submission order */
    uint64_t seq;
    dev_t dev;
    ino_t ino;
    char *name;
    size_t bytes;
    apply_pool_fn *run;
    apply_pool_free_fn *free_fn;
    void *data;
};

struct apply_pool {
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* a job was queued, or stop */
    pthread_cond_t done_cv; /* a job finished or was dropped */
    /* Pending jobs: those before `queued` run, `queued` and after wait. */
    struct pool_job *head, *tail, *queued;
    size_t n_jobs, n_bytes;
    size_t max_jobs;
    uint64_t next_seq;
    bool stop;
    bool failed;
    uint64_t failed_seq;
    struct chrun_err first_err;
    unsigned n_threads;
    pthread_t threads[APPLY_POOL_THREADS_MAX];
};

unsigned apply_pool_default_threads(void)
{
    const char *env = getenv("CHRUN_APPLY_THREADS");
    long ncpu;
    if (env != NULL && *env != '\0') {
        char *end;
        unsigned long n = strtoul(env, &end, 10);
        if (*end == '\0' && n >= 1 && n <= APPLY_POOL_THREADS_MAX)
            return (unsigned) n;
    }
    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    /* File creation waits on the disk, not on a CPU: two threads help even
     * on one core, and more than four only contend for the directory locks. */
    if (ncpu < 2)
        return 2;
    return ncpu > 4 ? 4 : (unsigned) ncpu;
}

static void job_unlink(struct apply_pool *p, struct pool_job *j)
{
    if (p->queued == j)
        p->queued = j->next;
    if (j->prev != NULL)
        j->prev->next = j->next;
    else
        p->head = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    else
        p->tail = j->prev;
    p->n_jobs--;
    p->n_bytes -= j->bytes;
}

static void job_free(struct pool_job *j)
{
    j->free_fn(j->data);
    free(j->name);
    free(j);
}

/* With P->mu held: drop every queued job (after a failure, or at the end). */
static void drop_queued(struct apply_pool *p)
{
    while (p->queued != NULL) {
        struct pool_job *j = p->queued;
        job_unlink(p, j);
        job_free(j);
    }
    pthread_cond_broadcast(&p->done_cv);
}

static void *worker_main(void *arg)
{
    struct apply_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct pool_job *j;
        struct chrun_err err = CHRUN_ERR_INIT;
        int rc;
        while (p->queued == NULL && !p->stop)
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stop)
            break;
        j = p->queued;
        p->queued = j->next;
        pthread_mutex_unlock(&p->mu);
        rc = j->run(j->data, &err);
        pthread_mutex_lock(&p->mu);
        if (rc < 0 && (!p->failed || j->seq < p->failed_seq)) {
            p->failed = true;
            p->failed_seq = j->seq;
            p->first_err = err;
        }
        job_unlink(p, j);
        job_free(j);
        if (p->failed)
            drop_queued(p);
        pthread_cond_broadcast(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct apply_pool *apply_pool_new(unsigned threads, size_t max_jobs, struct chrun_err *err)
{
    struct apply_pool *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        chrun_err_sys(err, ENOMEM, "file creation threads");
        return NULL;
    }
    if (threads > APPLY_POOL_THREADS_MAX)
        threads = APPLY_POOL_THREADS_MAX;
    p->max_jobs = max_jobs == 0 || max_jobs > APPLY_POOL_JOBS_MAX ? APPLY_POOL_JOBS_MAX : max_jobs;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    for (; p->n_threads < threads; p->n_threads++) {
        int rc = pthread_create(&p->threads[p->n_threads], NULL, worker_main, p);
        if (rc != 0) {
            apply_pool_free(p);
            chrun_err_sys(err, rc, "start file creation thread");
            return NULL;
        }
    }
    return p;
}

/* With P->mu held: fail with the first job's error. */
static int pool_error(struct apply_pool *p, struct chrun_err *err)
{
    *err = p->first_err;
    return -1;
}

int apply_pool_submit(struct apply_pool *p, dev_t dev, ino_t ino, const char *name, size_t bytes,
                      apply_pool_fn *run, apply_pool_free_fn *free_fn, void *data,
                      struct chrun_err *err)
{
    struct pool_job *j = calloc(1, sizeof(*j));
    int rc = 0;
    if (j == NULL || (j->name = strdup(name)) == NULL) {
        free(j);
        free_fn(data);
        return chrun_err_sys(err, ENOMEM, "file creation job");
    }
    j->dev = dev;
    j->ino = ino;
    j->bytes = bytes;
    j->run = run;
    j->free_fn = free_fn;
    j->data = data;
    pthread_mutex_lock(&p->mu);
    /* One job larger than the byte cap still goes, alone. */
    while (!p->failed && p->n_jobs > 0 &&
           (p->n_jobs >= p->max_jobs || p->n_bytes + bytes > APPLY_POOL_BYTES_MAX))
        pthread_cond_wait(&p->done_cv, &p->mu);
    if (p->failed) {
        rc = pool_error(p, err);
        job_free(j);
    } else {
        j->seq = p->next_seq++;
        j->prev = p->tail;
        if (p->tail != NULL)
            p->tail->next = j;
        else
            p->head = j;
        p->tail = j;
        if (p->queued == NULL)
            p->queued = j;
        p->n_jobs++;
        p->n_bytes += bytes;
        pthread_cond_signal(&p->work_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

static bool key_pending(struct apply_pool *p, dev_t dev, ino_t ino, const char *name)
{
    for (struct pool_job *j = p->head; j != NULL; j = j->next)
        if (j->ino == ino && j->dev == dev && streq(j->name, name))
            return true;
    return false;
}

int apply_pool_wait(struct apply_pool *p, dev_t dev, ino_t ino, const char *name,
                    struct chrun_err *err)
{
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    while (!p->failed && key_pending(p, dev, ino, name))
        pthread_cond_wait(&p->done_cv, &p->mu);
    if (p->failed)
        rc = pool_error(p, err);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int apply_pool_drain(struct apply_pool *p, struct chrun_err *err)
{
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    while (p->n_jobs > 0)
        pthread_cond_wait(&p->done_cv, &p->mu);
    if (p->failed)
        rc = pool_error(p, err);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

bool apply_pool_busy(struct apply_pool *p)
{
    bool busy;
    pthread_mutex_lock(&p->mu);
    busy = p->n_jobs > 0;
    pthread_mutex_unlock(&p->mu);
    return busy;
}

bool apply_pool_failed(struct apply_pool *p)
{
    bool failed;
    pthread_mutex_lock(&p->mu);
    failed = p->failed;
    pthread_mutex_unlock(&p->mu);
    return failed;
}

void apply_pool_clear_error(struct apply_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->failed = false;
    p->first_err = (struct chrun_err) CHRUN_ERR_INIT;
    pthread_mutex_unlock(&p->mu);
}

void apply_pool_free(struct apply_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    drop_queued(p);
    while (p->n_jobs > 0)
        pthread_cond_wait(&p->done_cv, &p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->work_cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
