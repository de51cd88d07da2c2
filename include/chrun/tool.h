/* Command-line plumbing shared by every chrun program, so they all behave alike. */
#ifndef CHRUN_TOOL_H
#define CHRUN_TOOL_H

#include <stddef.h>

#include "chrun/err.h"

#ifndef CHRUN_VERSION
#define CHRUN_VERSION "0.1.0"
#endif

/* getopt_long value for --version (and a base for tool-specific long options). */
enum {
    CHRUN_OPT_VERSION = 0x100,
    CHRUN_OPT_TOOL_BASE = 0x200,
};

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

#endif
