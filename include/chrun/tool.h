/* Command-line plumbing shared by every chrun program, so they all behave alike. */
#ifndef CHRUN_TOOL_H
#define CHRUN_TOOL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "chrun/cosign.h"
#include "chrun/err.h"
#include "chrun/ref.h"

#ifndef CHRUN_VERSION
#define CHRUN_VERSION "0.1.0"
#endif

/* getopt_long value for --version (and a base for tool-specific long options). */
enum {
    CHRUN_OPT_VERSION = 0x100,
    CHRUN_OPT_TOOL_BASE = 0x200,
};

/* The long options every program takes (-q, -h, --version), and the end of
 * the table: the last entry of each program's longopts. */
#define CHRUN_TOOL_LONGOPTS_COMMON                                                                \
    {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'},                           \
        {"version", no_argument, NULL, CHRUN_OPT_VERSION}, {NULL, 0, NULL, 0}

/* What getopt_long returned, C, when it is none of the program's own
 * options: -q sets quiet and returns -1 (parse on); -h prints USAGE to
 * stdout and returns 0; --version prints the version and returns 0; anything
 * else is reported as a bad option and returns 2. A program's switch ends
 * with `default: if ((rc = chrun_tool_common_option(c, argv, usage)) >= 0)
 * return rc;`. */
int chrun_tool_common_option(int c, char **argv, int (*usage)(FILE *out, int status));

/* Set the program name for messages and getopt's opterr = 0. */
void chrun_tool_init(const char *prog);

/* Print "<prog> <version>" to stdout. Returns the exit status. */
int chrun_tool_version(void);

/* Report the option getopt_long just rejected; returns 2. */
int chrun_tool_bad_option(char **argv);

/* "<prog>: error: <msg>" + "Try '<prog> --help'." on stderr; returns 2. */
int chrun_tool_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "<prog>: error: <err>" on stderr; returns 1. */
int chrun_tool_fail(const struct chrun_err *err);

/* Flush and close stdout; returns 0, or 1 (with a message) if that failed. */
int chrun_tool_finish_stdout(void);

/* The IMAGE operand: ARG itself, or for NULL/"-" the first line of stdin
 * (so `chrun-pull x | chrun-unpack` works). Written to BUF. Returns 0 or -1. */
int chrun_tool_image_operand(const char *arg, char *buf, size_t size, struct chrun_err *err);

/* The command line chrun-sign and chrun-verify share:
 * -k/--key FILE (required), -a/--annotation K=V (repeatable, checked by
 * chrun_cosign_annotations_check), -q, -h, --version, and at most one IMAGE
 * operand (none or "-": the first line of stdin). */
struct chrun_tool_key_args {
    const char *key_path;
    const char *annotations[CHRUN_COSIGN_ANNOTATIONS_MAX + 1];
    size_t n_annotations;
    char image[CHRUN_REF_STR_MAX];
};

/* Parse ARGV into ARGS, calling USAGE(stdout, 0) for --help. Returns true
 * when main goes on; false when main must return *RET_STATUS at once: 0
 * after --help or --version, 2 after a usage error, 1 when IMAGE could not
 * be read from stdin (each already reported). */
bool chrun_tool_key_args(int argc, char **argv, int (*usage)(FILE *out, int status),
                         struct chrun_tool_key_args *args, int *ret_status);

/* The `-o FILE` of chrun-save and chrun-export: the output is written to a
 * temporary beside FILE and renamed over it only when complete, so FILE is
 * either the old file or the whole new one, never a torn archive. */
struct chrun_tool_output {
    int dirfd;               /* FILE's directory (O_PATH) */
    int fd;                  /* write the output here */
    char tmp[NAME_MAX + 1];  /* the temporary's name in DIRFD */
    const char *path, *base; /* FILE, and its last component */
};

/* Create the temporary for PATH (PREFIX names it, e.g. ".chrun-save-").
 * On success O->fd is open for writing; call chrun_tool_output_finish in
 * every case. Returns 0 or -1 with ERR (usage error for a directory name). */
int chrun_tool_output_open(struct chrun_tool_output *o, const char *path, const char *prefix,
                           struct chrun_err *err);

/* With RC == 0: give the file the mode a shell redirection would (0666 less
 * the umask), fsync, close (checked), rename over PATH, fsync the directory.
 * With RC < 0, or when any of that fails: remove the temporary. Closes
 * everything O holds. Returns 0, or -1 (ERR set here, or already by the
 * caller when RC < 0). */
int chrun_tool_output_finish(struct chrun_tool_output *o, int rc, struct chrun_err *err);

#endif
