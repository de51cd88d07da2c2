/* .dockerignore: which build-context paths COPY, ADD and the step cache see.
 *
 * Docker's semantics (moby/patternmatcher with BuildKit's walker):
 *  - One pattern per line. A line whose first byte is '#' is a comment; other
 *    lines are trimmed of surrounding whitespace and blank ones are skipped. A
 *    UTF-8 byte order mark on the first line and CR before LF are dropped.
 *  - A leading '!' makes an exception (the path is kept); a lone "!" is an
 *    error. The rest is cleaned like Go's path.Clean ("./a//b/../c" is "a/c")
 *    and a leading '/' is dropped: patterns are relative to the context root.
 *  - '*' matches any run of characters except '/', '?' one character except
 *    '/', "[...]" a character class ("[^...]" negated, ranges "a-z", '\'
 *    escapes inside), '\c' the character c. "**" matches any number of
 *    directories: "**" followed by '/' (or ending the pattern after "a/") may
 *    match nothing, so "**" + "/x" matches "x" and "a/b/x"; at the end "**"
 *    matches everything below. As Docker does, a pattern that starts with
 *    "**" and continues with plain characters ("**.go") matches every path
 *    that ends with them.
 *  - A path is ignored when a pattern matches it or one of its parent
 *    directories; the last pattern that matches decides, so "!keep" after
 *    "*" keeps "keep".
 *  - A pattern that Go's filepath.Match rejects (an unterminated "[", an empty
 *    or malformed range, a trailing '\') is an error naming FILE:LINE.
 *
 * Walking a context: for each entry at context-relative path P (clean, no
 * leading '/', no "." or ".." components), call chrun_dockerignore_match.
 * Not ignored: keep it (a directory: descend). Ignored and a directory: call
 * chrun_dockerignore_may_descend; if it says true, descend anyway, because an
 * exception below may keep something, and emit the directory itself (with
 * its own metadata) only if something below it was kept (BuildKit creates
 * the parents of a kept path that way); if false, skip the whole subtree.
 * The caller hashes only kept entries for the step cache, so a change to an
 * ignored file never invalidates it.
 *
 * The Dockerfile and the ignore file are matched like any path: an ignored
 * Dockerfile is still read by the builder, but COPY and ADD do not see it.
 *
 * A matcher is immutable after parsing; match and may_descend may run on one
 * matcher from several threads. */
#ifndef CHRUN_DOCKERIGNORE_H
#define CHRUN_DOCKERIGNORE_H

#include <stdbool.h>
#include <stddef.h>

#include "chrun/err.h"

/* Largest ignore file read; more fails with EFBIG. */
#define CHRUN_DOCKERIGNORE_MAX (1024 * 1024)
/* Longest line: Go's bufio.Scanner, which Docker reads the file with, fails
 * on a longer one, and so do we. */
#define CHRUN_DOCKERIGNORE_LINE_MAX (64 * 1024)

struct chrun_dockerignore;

/* Parse LEN bytes of ignore-file text at BUF (need not be NUL-terminated;
 * may hold any bytes). SOURCE names the file in messages ("'.dockerignore'
 * line 3: ..."). On success *RET is a new matcher (chrun_dockerignore_free).
 * A bad pattern fails with CHRUN_E_INPUT naming SOURCE and the line. Made to
 * be called by a fuzzer on arbitrary input. Returns 0 or -1. */
int chrun_dockerignore_parse(const char *buf, size_t len, const char *source,
                             struct chrun_dockerignore **ret, struct chrun_err *err);

/* Find and parse the ignore file of a build. DOCKERFILE_DIRFD is the
 * directory holding the Dockerfile and DOCKERFILE_NAME its name there (only
 * its last component is used); when "<that name>.dockerignore" exists in that
 * directory it is used, else ".dockerignore" in the context CTXFD. Pass -1 /
 * NULL when the Dockerfile has no directory (read from stdin). Each file is
 * opened with symlinks resolved inside its own directory (never out of it),
 * only if it is a regular file, and read up to CHRUN_DOCKERIGNORE_MAX. No
 * file at all gives an empty matcher that ignores nothing. *RET is a new
 * matcher (chrun_dockerignore_free). Returns 0 or -1. */
int chrun_dockerignore_load(int ctxfd, int dockerfile_dirfd, const char *dockerfile_name,
                            struct chrun_dockerignore **ret, struct chrun_err *err);

/* Set *RET_IGNORED to whether context path RELPATH ("src/main.c": relative,
 * '/'-separated, without "." or ".." components, empty components or a
 * trailing '/') is ignored. IGN may be NULL (nothing is ignored). A RELPATH
 * that is not in that form fails with CHRUN_E_INPUT. Returns 0 or -1. */
int chrun_dockerignore_match(const struct chrun_dockerignore *ign, const char *relpath,
                             bool *ret_ignored, struct chrun_err *err);

/* For directory DIRPATH (same form as for match): set *RET_DESCEND to
 * whether its contents must be walked, which is the case when it is not
 * ignored or when an exception pattern could keep a path below it. False
 * means nothing below DIRPATH can be kept. Returns 0 or -1. */
int chrun_dockerignore_may_descend(const struct chrun_dockerignore *ign, const char *dirpath,
                                   bool *ret_descend, struct chrun_err *err);

/* The file the matcher came from ("" for none or a parsed buffer's SOURCE),
 * the number of patterns, and pattern I as cleaned ("!a/b" for an
 * exception). The strings live as long as IGN. */
const char *chrun_dockerignore_source(const struct chrun_dockerignore *ign);
size_t chrun_dockerignore_count(const struct chrun_dockerignore *ign);
const char *chrun_dockerignore_pattern(const struct chrun_dockerignore *ign, size_t i);

/* Free IGN; NULL is fine. */
void chrun_dockerignore_free(struct chrun_dockerignore *ign);

#endif
