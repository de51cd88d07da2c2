/* The Dockerfile language of chrun-build: parsing into instructions, and
 * Docker's word rules (quotes, escapes, $VAR substitution) for the
 * instructions that apply them.
 *
 * Every instruction Docker documents is parsed: FROM [--platform] IMAGE
 * [AS NAME] (several stages), RUN, CMD, ENTRYPOINT, SHELL (JSON exec form or
 * shell form), COPY and ADD, ENV, ARG, WORKDIR, USER, LABEL, EXPOSE, VOLUME,
 * HEALTHCHECK (options, CMD or NONE), STOPSIGNAL, ONBUILD, MAINTAINER.
 * Heredocs (<<EOF, <<-EOF, quoted delimiters, several per instruction) on
 * RUN, COPY and ADD; the parser directives "# syntax=" (ignored) and
 * "# escape=" ('\' or '`'). Flags are checked against each instruction's
 * documented set (RUN --mount/--network, COPY --from/--chown/--chmod/--link,
 * ADD --chown/--chmod/--checksum/--link, FROM --platform, HEALTHCHECK's
 * timings); others, and unknown instructions, are refused with a message
 * naming the file and line: never silently ignored. Pure logic, no I/O. */
#ifndef CHRUN_DOCKERFILE_H
#define CHRUN_DOCKERFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "chrun/err.h"

/* Caps on what a Dockerfile may hold (it lives in memory). */
#define CHRUN_DOCKERFILE_MAX (1024 * 1024)
#define CHRUN_DOCKERFILE_MAX_INSTRS 4096

enum chrun_df_kind {
    CHRUN_DF_FROM,
    CHRUN_DF_RUN,
    CHRUN_DF_CMD,
    CHRUN_DF_ENTRYPOINT,
    CHRUN_DF_COPY,
    CHRUN_DF_ADD,
    CHRUN_DF_ENV,
    CHRUN_DF_ARG,
    CHRUN_DF_WORKDIR,
    CHRUN_DF_USER,
    CHRUN_DF_LABEL,
    CHRUN_DF_EXPOSE,
    CHRUN_DF_VOLUME,
    CHRUN_DF_SHELL,
    CHRUN_DF_HEALTHCHECK,
    CHRUN_DF_STOPSIGNAL,
    CHRUN_DF_ONBUILD,
    CHRUN_DF_MAINTAINER,
};

/* One --NAME[=VALUE] flag of an instruction, in the order written. */
struct chrun_df_flag {
    char *name;  /* "mount" */
    char *value; /* NULL when written without '=' */
};

/* One heredoc of an instruction (<<NAME ... NAME). */
struct chrun_df_heredoc {
    char *name;   /* the delimiter, quotes removed */
    char *body;   /* the lines between, each ending in '\n' (leading tabs
                   * removed for <<-) */
    bool expand;  /* unquoted delimiter: $VAR is substituted (COPY/ADD) */
    bool strip;   /* <<- */
};

/* One instruction. Strings are owned by the struct. */
struct chrun_df_instr {
    unsigned line;           /* line of the keyword, 1-based */
    enum chrun_df_kind kind;
    const char *keyword;     /* "RUN" (static) */
    char *args;              /* after keyword and flags, continuation lines joined, trimmed;
                              * FROM: the image only; HEALTHCHECK: after "CMD";
                              * ONBUILD: the trigger instruction */
    char *stage;             /* FROM ... AS NAME: NAME lowercased, or NULL */
    bool none;               /* HEALTHCHECK NONE */
    struct chrun_df_flag *flags;
    size_t n_flags, cap_flags; /* cap_*: slots allocated */
    char **exec;             /* JSON exec form (NULL-terminated), or NULL for shell form */
    size_t n_exec;
    struct chrun_df_heredoc *heredocs;
    size_t n_heredocs, cap_heredocs;
    char *script;            /* RUN with heredocs: what the shell runs (the body alone
                              * for "RUN <<EOF", else the line and the heredocs as the
                              * shell reads them), else NULL */
};

struct chrun_dockerfile {
    struct chrun_df_instr *instrs;
    size_t n_instrs, cap_instrs; /* cap_instrs: slots allocated */
    char escape;             /* '\\' or '`' (the escape directive) */
};

/* The value of the last flag NAME of IN ("" for a bare --NAME), or NULL. */
const char *chrun_df_instr_flag(const struct chrun_df_instr *in, const char *name);

/* Parse LEN bytes of TEXT (NAME is used in messages: "'NAME' line 3: ...").
 * Joins continuation lines (a trailing '\'), drops comments and blank
 * lines, splits keyword, flags and arguments, recognizes the JSON form of
 * RUN, CMD, ENTRYPOINT, COPY, ADD and VOLUME, and checks the structure
 * (ARGs, then one FROM first). Substitution is left to
 * chrun_dockerfile_words, since values change while building. Release with
 * chrun_dockerfile_release (also after a failure). Returns 0 or -1. */
int chrun_dockerfile_parse(struct chrun_dockerfile *df, const char *name, const char *text,
                           size_t len, struct chrun_err *err);

/* Parse ONBUILD trigger lines (TEXT holds one instruction per line, no
 * FROM needed; FROM, ONBUILD and MAINTAINER are refused), as
 * chrun_dockerfile_parse does otherwise. Returns 0 or -1. */
int chrun_dockerfile_parse_triggers(struct chrun_dockerfile *df, const char *name,
                                    const char *text, size_t len, struct chrun_err *err);

void chrun_dockerfile_release(struct chrun_dockerfile *df);

/* Value of variable NAME, or NULL when unset. */
typedef const char *(*chrun_df_lookup_fn)(void *data, const char *name);

/* Apply Docker's word rules to S: single quotes are literal, double quotes
 * group and still substitute, a backslash escapes the next character, and
 * $NAME, ${NAME}, ${NAME[:]-word}, ${NAME[:]+word}, ${NAME[:]?word} (an error
 * when unset, or empty with ':'), ${NAME#pat}, ${NAME##pat}, ${NAME%pat},
 * ${NAME%%pat} (shell patterns) are replaced by LOOKUP's
 * values (unset = empty). With SPLIT, unquoted whitespace (also inside
 * unquoted substituted values) separates words; without it the result is one
 * word. Other ${...} forms fail with CHRUN_E_UNSUPPORTED. On success
 * *RET_WORDS is a NULL-terminated vector of *RET_N words, freed with
 * chrun_dockerfile_words_free. Returns 0 or -1. */
int chrun_dockerfile_words(const char *s, chrun_df_lookup_fn lookup, void *data, bool split,
                           char ***ret_words, size_t *ret_n, struct chrun_err *err);

void chrun_dockerfile_words_free(char **words);

/* chrun_dockerfile_words with ESCAPE ('\\' or '`') as the escape character. */
int chrun_dockerfile_words_escape(const char *s, char escape, chrun_df_lookup_fn lookup,
                                  void *data, bool split, char ***ret_words, size_t *ret_n,
                                  struct chrun_err *err);

/* Substitute $NAME and ${NAME...} in S as chrun_dockerfile_words does, but
 * keep quotes and backslashes as they are (the body of an unquoted heredoc).
 * On success *RET is a new string (free). Returns 0 or -1. */
int chrun_dockerfile_expand_raw(const char *s, chrun_df_lookup_fn lookup, void *data, char **ret,
                                struct chrun_err *err);

/* Split WORDS of ENV, LABEL or ARG into keys and values: "K=V" pairs, or,
 * for ENV and LABEL when the first word has no '=', the legacy "K V..." form
 * (the rest of the words joined by one space is the value). For ARG a bare
 * "K" has *RET_VALUES[i] == NULL. Both vectors hold *RET_N entries and are
 * freed with chrun_dockerfile_pairs_free. Fails with CHRUN_E_INPUT on an
 * empty key or, outside ARG, a word without '='. Returns 0 or -1. */
int chrun_dockerfile_pairs(enum chrun_df_kind kind, char *const *words, size_t n,
                           char ***ret_keys, char ***ret_values, size_t *ret_n,
                           struct chrun_err *err);

/* Free what chrun_dockerfile_pairs returned; NULL vectors are fine. */
void chrun_dockerfile_pairs_free(char **keys, char **values, size_t n);

#endif
