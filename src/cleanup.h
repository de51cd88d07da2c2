/* Scope-bound cleanup helpers (GCC/Clang cleanup attribute). Internal to libchrun and tools. */
#ifndef CHRUN_CLEANUP_H
#define CHRUN_CLEANUP_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "chrun/digest.h"
#include "chrun/image-config.h"
#include "chrun/inflate.h"

static inline void cleanup_free_fn(void *p)
{
    free(*(void **) p);
}

static inline void cleanup_close_fn(int *fd)
{
    if (*fd >= 0) {
        int saved = errno; /* close in cleanup must not clobber the caller's errno */
        close(*fd);
        errno = saved;
    }
}

static inline void cleanup_fclose_fn(FILE **f)
{
    if (*f != NULL)
        fclose(*f);
}

static inline void cleanup_closedir_fn(DIR **d)
{
    if (*d != NULL)
        closedir(*d);
}

static inline void cleanup_json_fn(json_t **j)
{
    if (*j != NULL)
        json_decref(*j);
}

/* archive_free works for read and write handles alike */
static inline void cleanup_archive_fn(struct archive **a)
{
    if (*a != NULL)
        archive_free(*a);
}

static inline void cleanup_entry_fn(struct archive_entry **e)
{
    if (*e != NULL)
        archive_entry_free(*e);
}

static inline void cleanup_linkresolver_fn(struct archive_entry_linkresolver **r)
{
    if (*r != NULL)
        archive_entry_linkresolver_free(*r);
}

static inline void cleanup_curl_fn(CURL **c)
{
    if (*c != NULL)
        curl_easy_cleanup(*c);
}

static inline void cleanup_curl_url_fn(CURLU **u)
{
    curl_url_cleanup(*u); /* NULL is fine */
}

/* A string libcurl handed out (curl_url_get): curl_free, NULL is fine. */
static inline void cleanup_curl_str_fn(char **s)
{
    curl_free(*s);
}

static inline void cleanup_md_fn(EVP_MD_CTX **m)
{
    if (*m != NULL)
        EVP_MD_CTX_free(*m);
}

#define cleanup_free __attribute__((cleanup(cleanup_free_fn)))
#define cleanup_close __attribute__((cleanup(cleanup_close_fn)))
#define cleanup_fclose __attribute__((cleanup(cleanup_fclose_fn)))
#define cleanup_closedir __attribute__((cleanup(cleanup_closedir_fn)))
#define cleanup_json __attribute__((cleanup(cleanup_json_fn)))
#define cleanup_archive __attribute__((cleanup(cleanup_archive_fn)))
#define cleanup_entry __attribute__((cleanup(cleanup_entry_fn)))
#define cleanup_linkresolver __attribute__((cleanup(cleanup_linkresolver_fn)))
#define cleanup_curl __attribute__((cleanup(cleanup_curl_fn)))
#define cleanup_curl_url __attribute__((cleanup(cleanup_curl_url_fn)))
#define cleanup_curl_str __attribute__((cleanup(cleanup_curl_str_fn)))
#define cleanup_md __attribute__((cleanup(cleanup_md_fn)))

static inline void cleanup_inflate_fn(struct chrun_inflate **z)
{
    chrun_inflate_free(*z);
}
#define cleanup_inflate __attribute__((cleanup(cleanup_inflate_fn)))

/* For a hasher declared "= {0}": release is safe before init and after final. */
static inline void cleanup_hasher_fn(struct chrun_digest_hasher *h)
{
    int saved = errno;
    chrun_digest_hasher_release(h);
    errno = saved;
}
#define cleanup_hasher __attribute__((cleanup(cleanup_hasher_fn)))

/* For an image config declared "= {0}" (release is safe on a zeroed one). */
static inline void cleanup_image_config_fn(struct chrun_image_config *c)
{
    chrun_image_config_release(c);
}
#define cleanup_image_config __attribute__((cleanup(cleanup_image_config_fn)))

/* Hand a pointer or fd out of a cleanup-guarded variable. */
#define take_ptr(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) take_ptr_tmp_ = (p);                                                         \
        (p) = NULL;                                                                                \
        take_ptr_tmp_;                                                                             \
    })

#define take_fd(fd)                                                                                \
    ({                                                                                             \
        int take_fd_tmp_ = (fd);                                                                   \
        (fd) = -1;                                                                                 \
        take_fd_tmp_;                                                                              \
    })

#endif
