/* Image references with docker's normalization rules. */
#ifndef CHRUN_REF_H
#define CHRUN_REF_H

#include <stdbool.h>
#include <stddef.h>

#include "chrun/digest.h"
#include "chrun/err.h"

#define CHRUN_REF_NAME_MAX 255
#define CHRUN_REF_TAG_MAX 128
/* Longest formatted reference: domain/path:tag@digest */
#define CHRUN_REF_STR_MAX (CHRUN_REF_NAME_MAX + 1 + CHRUN_REF_TAG_MAX + 1 + CHRUN_DIGEST_STR_MAX)

/* A parsed, normalized reference. tag and digest may be empty; after parsing,
 * at least one of them is set (tag defaults to "latest"). */
struct chrun_ref {
    char domain[CHRUN_REF_NAME_MAX + 1]; /* "docker.io", "localhost:5000" */
    char path[CHRUN_REF_NAME_MAX + 1];   /* "library/redis" */
    char tag[CHRUN_REF_TAG_MAX + 1];     /* "latest", or "" */
    char digest[CHRUN_DIGEST_STR_MAX];   /* "sha256:...", or "" */
};

/* Parse S and normalize it as docker does: "redis" becomes
 * docker.io/library/redis:latest; the first component is a registry host when
 * it holds '.' or ':' or is "localhost"; NAME@sha256:<hex> pins a digest.
 * Fails with CHRUN_E_INPUT and a message naming S. Returns 0 or -1. */
int chrun_ref_parse(struct chrun_ref *ret, const char *s, struct chrun_err *err);

/* Write the full normalized form ("docker.io/library/redis:latest") into BUF.
 * Returns BUF. BUF should hold CHRUN_REF_STR_MAX bytes. */
char *chrun_ref_format(const struct chrun_ref *r, char *buf, size_t size);

/* Write "domain/path" into BUF. Returns BUF. */
char *chrun_ref_repository(const struct chrun_ref *r, char *buf, size_t size);

/* The host to contact for R's domain: docker.io is served at
 * registry-1.docker.io; everything else as written. */
const char *chrun_ref_registry_host(const struct chrun_ref *r);

#endif
