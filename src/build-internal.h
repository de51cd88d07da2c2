/* chrun-build internals shared by build.c, build-config.c, build-run.c and
 * build-copy.c (not installed). */
#ifndef CHRUN_BUILD_INTERNAL_H
#define CHRUN_BUILD_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "chrun/build.h"
#include "chrun/bundle.h"
#include "chrun/changeset.h"
#include "chrun/copy.h"
#include "chrun/dockerfile.h"
#include "chrun/dockerignore.h"
#include "chrun/fetch.h"
#include "chrun/fs.h"
#include "chrun/io.h"
#include "chrun/layer.h"
#include "chrun/log.h"
#include "chrun/manifest.h"
#include "chrun/ref.h"
#include "chrun/runtime.h"
#include "cleanup.h"
#include "json.h"
#include "util.h"

#define WORK_PREFIX "build-"
/* RUN --mount's of one step, and created mount-point paths. */
#define RUN_MOUNTS_MAX 16
#define MOUNT_PATHS_MAX 256

struct var {
    char *name;
    char *value; /* NULL: declared without a value */
};

struct vars {
    struct var *v;
    size_t n, cap;
};

enum stage_state { STAGE_NEW, STAGE_BUILDING, STAGE_DONE };

/* One stage: a FROM and its instructions [first, end), or an image named
 * by COPY --from / RUN --mount from= (IMAGE_REF set, no instructions). */
struct stage {
    size_t index;           /* in the Dockerfile; implicit image stages after them */
    const char *name;       /* lowercased AS name, or NULL */
    char *image_ref;        /* implicit stage: the image reference */
    size_t first, end;
    enum stage_state state;
    json_t *image;          /* the image config being built */
    json_t *layers;         /* manifest layer descriptors */
    struct chrun_digest chain; /* parent state for the step cache */
    struct vars args;       /* ARGs declared in the stage */
    bool seen_cmd;
    /* the root filesystem, materialized only when needed */
    char workname[NAME_MAX + 1];
    int workfd;
    int rootfd;
    char bundle[PATH_MAX];
    size_t applied;         /* layers of LAYERS already in the rootfs */
    unsigned scratch_seq;   /* names of per-step scratch files */
};

struct secret {
    char id[256];
    const char *path;  /* src=FILE, or NULL */
    char env[256];     /* env=NAME: the value of our environment variable NAME */
};

struct builder {
    struct chrun_store *st;
    const struct chrun_build_opts *opts;
    struct chrun_dockerfile df;
    const char *dfname;
    char dfpath[PATH_MAX];
    int ctxfd;
    struct chrun_copy_filter ctx_filter; /* .dockerignore: see context_filter() */
    struct chrun_dockerignore *ignore;   /* the matcher behind ctx_filter */
    char tmpname[NAME_MAX + 1]; /* the builder's scratch directory in tmp/ */
    int tmpfd;
    unsigned tmp_seq;
    struct stage **stages;      /* the Dockerfile's, then implicit image stages */
    size_t n_df_stages, n_stages, cap_stages;
    struct stage *cur;          /* whose variables are in scope; NULL: before FROM */
    struct vars meta;           /* ARGs before the first FROM, and the platform ARGs */
    bool *used_args;            /* per --build-arg */
    struct secret *secrets;
    int64_t epoch;              /* the mtime cap and creation time */
    char created[32];
    char platform[96];
    bool located;               /* ERR already names a Dockerfile line */
    bool no_overlay;            /* RUN: the kernel refused an overlay once */
};

/* A step's work on the materialized rootfs. PREPARE runs before the "before"
 * snapshot, RUN between the snapshots, CLEANUP (when PREPARE ran) after the
 * layer is written, also on failure. RUN_LAYER, when set, is tried after
 * PREPARE instead of the snapshots and RUN: it does the step and writes its
 * layer to *L, leaving the rootfs as it was (build-run.c: over an overlay,
 * diffing only its upper; build_materialize applies the layer when a later
 * step needs the rootfs, as after a cache hit); it returns 1 when done, 0
 * when it did nothing and the snapshot path must do the step, -1 with ERR. */
struct step_ops {
    int (*prepare)(struct builder *b, struct stage *s, void *data, struct chrun_err *err);
    int (*run)(struct builder *b, struct stage *s, void *data, struct chrun_err *err);
    void (*cleanup)(struct builder *b, struct stage *s, void *data);
    int (*run_layer)(struct builder *b, struct stage *s, void *data,
                     struct chrun_changeset_layer *l, struct chrun_err *err);
};

/* ---- build.c ---- */

/* The variable NAME of VS, or NULL. */
struct var *build_vars_find(const struct vars *vs, const char *name);

/* Set NAME to VALUE (copied; NULL: declared without a value) in VS. */
int build_vars_set(struct vars *vs, const char *name, const char *value, struct chrun_err *err);

/* ENV value of NAME in the config, or NULL. */
const char *build_env_value(struct stage *s, const char *name);

/* Docker: ENV wins over ARG; before FROM (and in FROM lines) only the ARGs
 * before the first FROM exist. */
const char *build_lookup(void *data, const char *name);

/* S substituted and, with SPLIT, split into words (free with
 * chrun_dockerfile_words_free). Returns 0 or -1 with ERR. */
int build_words(struct builder *b, const char *s, bool split, char ***ret, size_t *ret_n,
                struct chrun_err *err);

/* S substituted as one word: a new string (free), or NULL with ERR set. */
char *build_word1(struct builder *b, const char *s, struct chrun_err *err);

/* The filter of the build context for COPY/ADD, the cache key of their
 * sources and of RUN bind mounts of the context: the one place a
 * .dockerignore matcher plugs in. It is set in b->ctx_filter once the
 * context and the Dockerfile are known (after load_dockerfile() in
 * chrun_build()). NULL: nothing is ignored. */
const struct chrun_copy_filter *build_context_filter(struct builder *b);

/* --build-arg NAME's value (marking it used), or NULL. */
const char *build_arg(struct builder *b, const char *name);

/* Bring the stage's rootfs up to its layer list: the only place layers are
 * unpacked, and only when a step must run or another stage reads it. */
int build_materialize(struct builder *b, struct stage *s, struct chrun_err *err);

/* One filesystem-changing step: from the cache, or run OPS and diff. */
int build_fs_step(struct builder *b, struct stage *s, const char *text, const char *extra,
                  const struct step_ops *ops, void *data, struct chrun_err *err);

/* A new scratch file or directory name under the builder's tmp directory. */
void build_scratch_name(struct builder *b, const char *what, char *buf, size_t size);

/* S is non-empty and only decimal digits. */
bool build_all_digits(const char *s);

/* The stage a --from=VALUE of stage S names: a stage name (any case), an
 * index, or else an image reference from the store (an implicit stage). The
 * stage is built (through the cache) before it is returned. */
int build_resolve_from(struct builder *b, struct stage *s, const char *flag, const char *value,
                       struct stage **ret, struct chrun_err *err);

/* ---- build-config.c ---- */

/* OBJ[KEY] = the string S; WHAT names S when it is not UTF-8. */
int build_set_str(json_t *obj, const char *key, const char *s, const char *what,
                  struct chrun_err *err);

/* Append the string S to ARR; WHAT names S when it is not UTF-8. */
int build_append_str(json_t *arr, const char *s, const char *what, struct chrun_err *err);

/* KEY of the stage's config, or NULL (a read: nothing is created). */
json_t *build_cfg_get(struct stage *s, const char *key);

/* The stage's config object ("config" of the image), or NULL with ERR. */
json_t *build_cfg(struct stage *s, struct chrun_err *err);

/* Append the history entry of a step (CREATED_BY, EMPTY: it made no layer). */
int build_add_history(struct builder *b, struct stage *s, const char *created_by, bool empty,
                      struct chrun_err *err);

/* The stage's rootfs.diff_ids array (borrowed), or NULL. */
json_t *build_diff_ids(struct stage *s);

/* Append a layer to the manifest's layer list and its DIFF_ID to the config. */
int build_add_layer(struct stage *s, const char *media_type, const struct chrun_digest *digest,
                    int64_t size, const struct chrun_digest *diff_id, struct chrun_err *err);

/* The instructions that only edit the config: ENV, LABEL, ARG, EXPOSE,
 * VOLUME, CMD, ENTRYPOINT, HEALTHCHECK, USER, SHELL, ONBUILD, STOPSIGNAL,
 * MAINTAINER. */
int build_do_metadata(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                      struct chrun_err *err);

/* Write stage S's image config and manifest (--label and the platform
 * added) to the store, tag them; RET gets the manifest digest. */
int build_finish_image(struct builder *b, struct stage *s, struct chrun_digest *ret,
                       struct chrun_err *err);

/* ---- build-run.c ---- */

/* Join PATH to the working directory unless it is absolute. */
char *build_abs_path(struct stage *s, const char *path);

/* The instruction as the history and the cache key show it: keyword, flags
 * as written, arguments. */
char *build_instr_text(const struct chrun_df_instr *in, const char *args);

/* RUN: a filesystem step through the runtime, with its mounts. */
int build_do_run(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                 struct chrun_err *err);

/* ---- build-copy.c ---- */

/* COPY and ADD: from the context, a stage, heredocs or URLs. */
int build_do_copy(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                  struct chrun_err *err);

/* WORKDIR: the config's WorkingDir, and the directory in the rootfs. */
int build_do_workdir(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                     struct chrun_err *err);

#endif
