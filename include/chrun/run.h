/* `chrun run`: pull an image when the store lacks it, give it a root
 * filesystem and run it as chrun-exec does.
 *
 * Without --rm the image runs in its cached bundle ($CHRUN_ROOT/bundles/<id>,
 * see chrun/bundle.h). With --rm it runs on a throwaway root filesystem,
 * discarded when the command exits: an overlayfs over the image's read-only
 * tree (see chrun/tree.h) when the kernel allows it, else a copy unpacked
 * into a temporary bundle under $TMPDIR. */
#ifndef CHRUN_RUN_H
#define CHRUN_RUN_H

#include <stdbool.h>

#include "chrun/err.h"
#include "chrun/runtime.h"

struct chrun_run_opts {
    const char *platform; /* "os/arch[/variant]" to pull and unpack; NULL = host */
    bool rm;              /* a throwaway root filesystem, discarded at exit */
    bool copy;            /* with RM: never overlayfs, always the copying path */
};
#define CHRUN_RUN_OPTS_INIT {NULL, false, false}

/* Run IMAGE (a reference or digest chrun_store_resolve takes; pulled with
 * chrun-pull when the store lacks it) with EXEC's options and CMD (NULL or
 * empty: the image's command), as described in chrun(1). Without OPTS->rm
 * the command replaces the calling process when it can (see
 * CHRUN_EXEC_REPLACE). Returns 0 with *RET_STATUS the command's exit status,
 * or -1 with ERR set and *RET_STATUS the status a tool should use (as
 * chrun_runtime_exec). ERR's code is CHRUN_E_OK when chrun-pull failed and
 * already printed why; CHRUN_E_USAGE for a bad exec option. Not
 * thread-safe (it forks and changes the signal mask). */
int chrun_run(const char *image, const struct chrun_run_opts *opts, struct chrun_exec_opts *exec,
              char *const cmd[], int *ret_status, struct chrun_err *err);

/* Replace the calling process with chrun-SUB (ARGV[0] is overwritten), taken
 * from the directory of the running program first, then from $PATH, as git
 * runs git-SUB. Returns only on failure, with errno set (ENOENT when SUB
 * names no program or holds a '/'). */
void chrun_run_exec_sibling(const char *sub, char **argv);

#endif
