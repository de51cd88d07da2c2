/* Dockerfile parsing and Docker's word rules (see include/chrun/dockerfile.h). */
#include "chrun/dockerfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "cleanup.h"
#include "util.h"

/* ---- a growable string --------------------------------------------------- */

struct sbuf {
    char *s;
    size_t len, cap;
};

static int sbuf_add(struct sbuf *b, const char *s, size_t n, struct chrun_err *err)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->s, cap);
        if (p == NULL)
            return chrun_err_sys(err, ENOMEM, "dockerfile");
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

/* ---- words ----------------------------------------------------------------- */

struct strv {
    char **v;
    size_t n, cap;
};

static int strv_push(struct strv *sv, char *s, struct chrun_err *err)
{
    if (sv->n + 2 > sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 8;
        char **p = realloc(sv->v, cap * sizeof(*p));
        if (p == NULL) {
            free(s);
            return chrun_err_sys(err, ENOMEM, "dockerfile");
        }
        sv->v = p;
        sv->cap = cap;
    }
    sv->v[sv->n++] = s;
    sv->v[sv->n] = NULL;
    return 0;
}

void chrun_dockerfile_words_free(char **words)
{
    if (words == NULL)
        return;
    for (char **w = words; *w != NULL; w++)
        free(*w);
    free(words);
}

/* ${A:-${B:-...}} nesting allowed; deeper is refused, not recursed into. */
#define SUBST_DEPTH_MAX 32

struct lex {
    const char *p;
    unsigned depth; /* ${...:-word} levels around this one */
    chrun_df_lookup_fn lookup;
    void *data;
    bool split;
    bool in_word;
    struct sbuf cur;
    struct strv words;
};

static int lex_end_word(struct lex *lx, struct chrun_err *err)
{
    char *w = lx->cur.s ? lx->cur.s : strdup("");
    if (w == NULL)
        return chrun_err_sys(err, ENOMEM, "dockerfile");
    lx->cur = (struct sbuf){0};
    lx->in_word = false;
    return strv_push(&lx->words, w, err);
}

/* Add C to the current word; unquoted (RAW false) whitespace ends a word. */
static int lex_add(struct lex *lx, char c, bool raw, struct chrun_err *err)
{
    if (!raw && lx->split && isspace((unsigned char) c))
        return lx->in_word ? lex_end_word(lx, err) : 0;
    lx->in_word = true;
    return sbuf_add(&lx->cur, &c, 1, err);
}

static int lex_add_str(struct lex *lx, const char *s, bool raw, struct chrun_err *err)
{
    for (; *s; s++)
        if (lex_add(lx, *s, raw, err) < 0)
            return -1;
    return 0;
}

static int lex_run(struct lex *lx, char stop, struct chrun_err *err);

static bool name_char(char c, bool first)
{
    return c == '_' || isalpha((unsigned char) c) || (!first && isdigit((unsigned char) c));
}

/* The word of ${NAME:-word}: expanded as one string, up to the closing brace. */
static int lex_subword(struct lex *lx, char **ret, struct chrun_err *err)
{
    struct lex sub = {.p = lx->p, .lookup = lx->lookup, .data = lx->data, .split = false,
                      .depth = lx->depth + 1};
    int rc = sub.depth > SUBST_DEPTH_MAX
                 ? chrun_err_set(err, CHRUN_E_INPUT, "${...} substitutions nested deeper than %d",
                                 SUBST_DEPTH_MAX)
                 : lex_run(&sub, '}', err);
    lx->p = sub.p;
    if (rc == 0 && *lx->p != '}')
        rc = chrun_err_set(err, CHRUN_E_INPUT, "missing '}' in a ${...} substitution");
    if (rc == 0) {
        *ret = sub.cur.s ? take_ptr(sub.cur.s) : strdup("");
        if (*ret == NULL)
            rc = chrun_err_sys(err, ENOMEM, "dockerfile");
    }
    free(sub.cur.s);
    chrun_dockerfile_words_free(sub.words.v);
    return rc;
}

/* ${NAME}, ${NAME:-word}, ${NAME:+word}; lx->p is just past "${". */
static int lex_braced(struct lex *lx, bool raw, struct chrun_err *err)
{
    cleanup_free char *name = NULL, *word = NULL;
    const char *start = lx->p, *val;
    char op = 0;
    while (name_char(*lx->p, lx->p == start))
        lx->p++;
    if (lx->p == start)
        return chrun_err_set(err, CHRUN_E_INPUT, "bad substitution '${%.20s'", start);
    name = strndup(start, (size_t) (lx->p - start));
    if (name == NULL)
        return chrun_err_sys(err, ENOMEM, "dockerfile");
    if (lx->p[0] == ':' && (lx->p[1] == '-' || lx->p[1] == '+')) {
        op = lx->p[1];
        lx->p += 2;
        if (lex_subword(lx, &word, err) < 0)
            return -1;
    } else if (*lx->p != '}') {
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                             "substitution '${%s%.*s}' is not supported (only ${%s}, "
                             "${%s:-word} and ${%s:+word})",
                             name, (int) strcspn(lx->p, "}"), lx->p, name, name, name);
    }
    lx->p++; /* '}' */
    val = lx->lookup ? lx->lookup(lx->data, name) : NULL;
    if (op == '-' && (val == NULL || *val == '\0'))
        val = word;
    else if (op == '+')
        val = (val != NULL && *val != '\0') ? word : "";
    return lex_add_str(lx, val ? val : "", raw, err);
}

/* A '$' at lx->p: substitute, or keep it literally when no name follows. */
static int lex_dollar(struct lex *lx, bool raw, struct chrun_err *err)
{
    cleanup_free char *name = NULL;
    const char *start, *val;
    lx->p++;
    if (*lx->p == '{') {
        lx->p++;
        return lex_braced(lx, raw, err);
    }
    if (!name_char(*lx->p, true))
        return lex_add(lx, '$', true, err);
    start = lx->p;
    while (name_char(*lx->p, false))
        lx->p++;
    name = strndup(start, (size_t) (lx->p - start));
    if (name == NULL)
        return chrun_err_sys(err, ENOMEM, "dockerfile");
    val = lx->lookup ? lx->lookup(lx->data, name) : NULL;
    return lex_add_str(lx, val ? val : "", raw, err);
}

static int lex_single_quoted(struct lex *lx, struct chrun_err *err)
{
    lx->p++;
    lx->in_word = true;
    while (*lx->p && *lx->p != '\'')
        if (lex_add(lx, *lx->p++, true, err) < 0)
            return -1;
    if (*lx->p != '\'')
        return chrun_err_set(err, CHRUN_E_INPUT, "unterminated single quote");
    lx->p++;
    return 0;
}

static int lex_double_quoted(struct lex *lx, struct chrun_err *err)
{
    lx->p++;
    lx->in_word = true;
    while (*lx->p && *lx->p != '"') {
        int rc;
        if (*lx->p == '\\' && lx->p[1] && strchr("\"\\$", lx->p[1])) {
            rc = lex_add(lx, lx->p[1], true, err);
            lx->p += 2;
        } else if (*lx->p == '$') {
            rc = lex_dollar(lx, true, err);
        } else {
            rc = lex_add(lx, *lx->p++, true, err);
        }
        if (rc < 0)
            return -1;
    }
    if (*lx->p != '"')
        return chrun_err_set(err, CHRUN_E_INPUT, "unterminated double quote");
    lx->p++;
    return 0;
}

/* Consume input up to STOP (or the end), building words. */
static int lex_run(struct lex *lx, char stop, struct chrun_err *err)
{
    while (*lx->p && *lx->p != stop) {
        int rc;
        char c = *lx->p;
        if (c == '\'') {
            rc = lex_single_quoted(lx, err);
        } else if (c == '"') {
            rc = lex_double_quoted(lx, err);
        } else if (c == '\\') {
            lx->p++;
            rc = lex_add(lx, *lx->p ? *lx->p++ : '\\', true, err);
        } else if (c == '$') {
            rc = lex_dollar(lx, false, err);
        } else {
            rc = lex_add(lx, c, false, err);
            lx->p++;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

int chrun_dockerfile_words(const char *s, chrun_df_lookup_fn lookup, void *data, bool split,
                           char ***ret_words, size_t *ret_n, struct chrun_err *err)
{
    struct lex lx = {.p = s, .lookup = lookup, .data = data, .split = split};
    int rc = lex_run(&lx, '\0', err);
    if (rc == 0 && (lx.in_word || !split))
        rc = lex_end_word(&lx, err);
    if (rc == 0 && lx.words.v == NULL) {
        lx.words.v = calloc(1, sizeof(char *));
        if (lx.words.v == NULL)
            rc = chrun_err_sys(err, ENOMEM, "dockerfile");
    }
    free(lx.cur.s);
    if (rc < 0) {
        chrun_dockerfile_words_free(lx.words.v);
        return -1;
    }
    *ret_words = lx.words.v;
    *ret_n = lx.words.n;
    return 0;
}

/* ---- key=value pairs ---------------------------------------------------------- */

void chrun_dockerfile_pairs_free(char **keys, char **values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (keys)
            free(keys[i]);
        if (values)
            free(values[i]);
    }
    free(keys);
    free(values);
}

/* The legacy "ENV K V..." form: the value is the rest of the words. */
static int legacy_pair(char *const *words, size_t n, char **keys, char **values,
                       struct chrun_err *err)
{
    struct sbuf b = {0};
    for (size_t i = 1; i < n; i++)
        if ((i > 1 && sbuf_add(&b, " ", 1, err) < 0) ||
            sbuf_add(&b, words[i], strlen(words[i]), err) < 0) {
            free(b.s);
            return -1;
        }
    keys[0] = strdup(words[0]);
    values[0] = b.s ? b.s : strdup("");
    if (keys[0] == NULL || values[0] == NULL)
        return chrun_err_sys(err, ENOMEM, "dockerfile");
    return 0;
}

static int split_pair(enum chrun_df_kind kind, const char *w, char **ret_key, char **ret_value,
                      struct chrun_err *err)
{
    const char *eq = strchr(w, '=');
    if (eq == NULL && kind != CHRUN_DF_ARG)
        return chrun_err_set(err, CHRUN_E_INPUT, "'%s' is not KEY=VALUE", w);
    if (eq == w || *w == '\0')
        return chrun_err_set(err, CHRUN_E_INPUT, "empty name in '%s'", w);
    *ret_key = eq ? strndup(w, (size_t) (eq - w)) : strdup(w);
    if (*ret_key == NULL || (eq != NULL && (*ret_value = strdup(eq + 1)) == NULL))
        return chrun_err_sys(err, ENOMEM, "dockerfile");
    return 0;
}

int chrun_dockerfile_pairs(enum chrun_df_kind kind, char *const *words, size_t n,
                           char ***ret_keys, char ***ret_values, size_t *ret_n,
                           struct chrun_err *err)
{
    char **keys = calloc(n + 1, sizeof(char *)), **values = calloc(n + 1, sizeof(char *));
    size_t count = n;
    int rc = 0;
    if (keys == NULL || values == NULL)
        rc = chrun_err_sys(err, ENOMEM, "dockerfile");
    else if (n == 0)
        rc = chrun_err_set(err, CHRUN_E_INPUT, "needs at least one argument");
    else if (kind != CHRUN_DF_ARG && strchr(words[0], '=') == NULL) {
        count = 1;
        rc = n < 2 ? chrun_err_set(err, CHRUN_E_INPUT, "'%s' has no value (want KEY=VALUE)",
                                   words[0])
                   : legacy_pair(words, n, keys, values, err);
    } else {
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = split_pair(kind, words[i], &keys[i], &values[i], err);
    }
    if (rc < 0) {
        chrun_dockerfile_pairs_free(keys, values, n);
        return -1;
    }
    *ret_keys = keys;
    *ret_values = values;
    *ret_n = count;
    return 0;
}

/* ---- instructions ------------------------------------------------------------- */

struct keyword {
    const char *name;
    int kind;       /* enum chrun_df_kind, or -1: known but refused */
    bool json_form; /* takes the JSON exec form */
    const char *why;
};

static const struct keyword keywords[] = {
    {"FROM", CHRUN_DF_FROM, false, NULL},
    {"RUN", CHRUN_DF_RUN, true, NULL},
    {"CMD", CHRUN_DF_CMD, true, NULL},
    {"ENTRYPOINT", CHRUN_DF_ENTRYPOINT, true, NULL},
    {"COPY", CHRUN_DF_COPY, true, NULL},
    {"ADD", CHRUN_DF_ADD, true, NULL},
    {"ENV", CHRUN_DF_ENV, false, NULL},
    {"ARG", CHRUN_DF_ARG, false, NULL},
    {"WORKDIR", CHRUN_DF_WORKDIR, false, NULL},
    {"USER", CHRUN_DF_USER, false, NULL},
    {"LABEL", CHRUN_DF_LABEL, false, NULL},
    {"EXPOSE", CHRUN_DF_EXPOSE, false, NULL},
    {"VOLUME", CHRUN_DF_VOLUME, true, NULL},
    {"HEALTHCHECK", -1, false, "HEALTHCHECK is not supported by chrun-build"},
    {"ONBUILD", -1, false, "ONBUILD is not supported by chrun-build"},
    {"SHELL", -1, false, "SHELL is not supported by chrun-build (RUN uses /bin/sh -c)"},
    {"STOPSIGNAL", -1, false, "STOPSIGNAL is not supported by chrun-build"},
    {"MAINTAINER", -1, false, "MAINTAINER is not supported by chrun-build (use LABEL)"},
};

static const struct keyword *find_keyword(const char *word, size_t len)
{
    for (size_t i = 0; i < ARRAY_SIZE(keywords); i++)
        if (strlen(keywords[i].name) == len && strncasecmp(keywords[i].name, word, len) == 0)
            return &keywords[i];
    return NULL;
}

static void instr_release(struct chrun_df_instr *in)
{
    free(in->args);
    free(in->chown);
    chrun_dockerfile_words_free(in->exec);
}

void chrun_dockerfile_release(struct chrun_dockerfile *df)
{
    for (size_t i = 0; i < df->n_instrs; i++)
        instr_release(&df->instrs[i]);
    free(df->instrs);
    df->instrs = NULL;
    df->n_instrs = 0;
}

static char *skip_space(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Take the --flags in front of the arguments. Only COPY/ADD --chown exists. */
static int parse_flags(struct chrun_df_instr *in, char **args, struct chrun_err *err)
{
    while (str_has_prefix(*args, "--")) {
        char *flag = *args, *end = flag + strcspn(flag, " \t");
        size_t len = (size_t) (end - flag);
        const char *eq = memchr(flag, '=', len);
        size_t name_len = eq ? (size_t) (eq - flag) : len;
        bool copy = in->kind == CHRUN_DF_COPY || in->kind == CHRUN_DF_ADD;
        if (copy && name_len == 7 && strncmp(flag, "--chown", 7) == 0 && eq != NULL) {
            free(in->chown);
            in->chown = strndup(eq + 1, (size_t) (end - eq - 1));
            if (in->chown == NULL)
                return chrun_err_sys(err, ENOMEM, "dockerfile");
        } else if (copy && name_len == 6 && strncmp(flag, "--from", 6) == 0) {
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "%s --from is not supported (multi-stage builds are not)",
                                 in->keyword);
        } else {
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED, "%s flag '%.*s' is not supported",
                                 in->keyword, (int) name_len, flag);
        }
        *args = skip_space(end);
    }
    return 0;
}

/* RUN ["a", "b"]: a JSON array of strings. Anything else is the shell form,
 * as in Docker, except an array holding non-strings, which is an error. */
static int parse_exec_form(struct chrun_df_instr *in, struct chrun_err *err)
{
    cleanup_json json_t *arr = NULL;
    struct strv sv = {0};
    json_t *v;
    size_t i;
    if (in->args[0] != '[')
        return 0;
    arr = json_loads(in->args, JSON_DECODE_ANY, NULL);
    if (!json_is_array(arr))
        return 0;
    json_array_foreach (arr, i, v) {
        char *s;
        if (!json_is_string(v)) {
            chrun_dockerfile_words_free(sv.v);
            return chrun_err_set(err, CHRUN_E_INPUT, "%s: JSON form element %zu is not a string",
                                 in->keyword, i);
        }
        s = strdup(json_string_value(v));
        if (s == NULL || strv_push(&sv, s, err) < 0) {
            chrun_dockerfile_words_free(sv.v);
            return chrun_err_sys(err, ENOMEM, "dockerfile");
        }
    }
    if (sv.v == NULL && (sv.v = calloc(1, sizeof(char *))) == NULL)
        return chrun_err_sys(err, ENOMEM, "dockerfile");
    in->exec = sv.v;
    in->n_exec = sv.n;
    return 0;
}

/* FROM IMAGE: one stage only. */
static int check_from(const struct chrun_df_instr *in, struct chrun_err *err)
{
    char *copy = strdup(in->args), *save = NULL, *w[4] = {0};
    size_t n = 0;
    int rc = 0;
    if (copy == NULL)
        return chrun_err_sys(err, ENOMEM, "dockerfile");
    for (char *t = strtok_r(copy, " \t", &save); t && n < 4; t = strtok_r(NULL, " \t", &save))
        w[n++] = t;
    if (n == 3 && strcasecmp(w[1], "AS") == 0)
        rc = chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                           "FROM ... AS is not supported (multi-stage builds are not)");
    else if (n != 1)
        rc = chrun_err_set(err, CHRUN_E_INPUT, "FROM takes exactly one image");
    free(copy);
    return rc;
}

/* Turn one logical line into an instruction. */
static int parse_instr(struct chrun_df_instr *in, char *text, struct chrun_err *err)
{
    const struct keyword *kw;
    size_t klen = strcspn(text, " \t");
    char *args, *end;
    kw = find_keyword(text, klen);
    if (kw == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "unknown instruction '%.*s'", (int) klen, text);
    if (kw->kind < 0)
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED, "%s", kw->why);
    in->kind = (enum chrun_df_kind) kw->kind;
    in->keyword = kw->name;
    args = skip_space(text + klen);
    if (parse_flags(in, &args, err) < 0)
        return -1;
    end = args + strlen(args);
    while (end > args && isspace((unsigned char) end[-1]))
        *--end = '\0';
    if (*args == '\0')
        return chrun_err_set(err, CHRUN_E_INPUT, "%s needs arguments", kw->name);
    in->args = strdup(args);
    if (in->args == NULL)
        return chrun_err_sys(err, ENOMEM, "dockerfile");
    if (kw->json_form && parse_exec_form(in, err) < 0)
        return -1;
    if (in->kind == CHRUN_DF_FROM)
        return check_from(in, err);
    return 0;
}

/* A parser directive on the first lines ("# escape=\"): *RET_IS tells
 * whether LINE is one. Returns 0, or -1 for a directive chrun refuses. */
static int directive(const char *line, bool *ret_is, struct chrun_err *err)
{
    const char *p = line + 1, *name, *eq;
    *ret_is = false;
    while (*p == ' ' || *p == '\t')
        p++;
    name = p;
    while (isalpha((unsigned char) *p))
        p++;
    eq = p;
    while (*eq == ' ' || *eq == '\t')
        eq++;
    if (p == name || *eq != '=')
        return 0;
    *ret_is = true;
    eq++;
    while (*eq == ' ' || *eq == '\t')
        eq++;
    if ((size_t) (p - name) == 6 && strncasecmp(name, "escape", 6) == 0 &&
        !(eq[0] == '\\' && (eq[1] == '\0' || isspace((unsigned char) eq[1]))))
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                             "parser directive escape=%.8s is not supported (only '\\')", eq);
    /* "syntax" names a BuildKit frontend; the classic builder ignores it too. */
    return 0;
}

struct parser {
    struct chrun_dockerfile *df;
    const char *name;
    struct sbuf logical;
    unsigned logical_line;
    bool in_instr;
    bool seen_from;
};

static int add_instr(struct parser *ps, struct chrun_err *err)
{
    struct chrun_df_instr *in;
    struct chrun_dockerfile *df = ps->df;
    if (df->n_instrs >= CHRUN_DOCKERFILE_MAX_INSTRS)
        return chrun_err_set(err, CHRUN_E_INPUT, "more than %d instructions",
                             CHRUN_DOCKERFILE_MAX_INSTRS);
    in = realloc(df->instrs, (df->n_instrs + 1) * sizeof(*in));
    if (in == NULL)
        return chrun_err_sys(err, ENOMEM, "dockerfile");
    df->instrs = in;
    in = &df->instrs[df->n_instrs++];
    *in = (struct chrun_df_instr){.line = ps->logical_line};
    if (parse_instr(in, ps->logical.s, err) < 0)
        return -1;
    if (in->kind == CHRUN_DF_FROM && ps->seen_from)
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                             "a second FROM is not supported (multi-stage builds are not)");
    if (in->kind != CHRUN_DF_FROM && in->kind != CHRUN_DF_ARG && !ps->seen_from)
        return chrun_err_set(err, CHRUN_E_INPUT, "%s before FROM", in->keyword);
    ps->seen_from |= in->kind == CHRUN_DF_FROM;
    return 0;
}

/* Feed one physical line (without its newline). */
static int feed_line(struct parser *ps, char *line, unsigned lineno, struct chrun_err *err)
{
    char *p = skip_space(line), *end = line + strlen(line);
    bool more = false;
    if (*p == '\0' || *p == '#')
        return 0; /* blank and comment lines, also inside a continued instruction */
    while (end > line && isspace((unsigned char) end[-1]))
        *--end = '\0';
    if (end > line && end[-1] == '\\') {
        *--end = '\0';
        more = true;
    }
    if (!ps->in_instr) {
        ps->in_instr = true;
        ps->logical_line = lineno;
        ps->logical.len = 0;
        line = p;
    }
    if (sbuf_add(&ps->logical, line, strlen(line), err) < 0)
        return -1;
    if (more)
        return 0;
    ps->in_instr = false;
    return add_instr(ps, err);
}

static int parse_lines(struct parser *ps, char *text, struct chrun_err *err)
{
    bool directives = true;
    unsigned lineno = 0;
    char *line = text, *nl;
    for (; line != NULL; line = nl) {
        nl = strchr(line, '\n');
        if (nl != NULL)
            *nl++ = '\0';
        lineno++;
        if (directives && line[0] == '#') {
            bool is;
            if (directive(line, &is, err) < 0)
                return chrun_err_prefix(err, "'%s' line %u", ps->name, lineno);
            if (is)
                continue;
        }
        directives = false;
        if (feed_line(ps, line, lineno, err) < 0)
            return chrun_err_prefix(err, "'%s' line %u", ps->name, ps->logical_line);
    }
    if (!ps->in_instr)
        return 0;
    /* a continuation on the last line ends the instruction, as in Docker */
    ps->in_instr = false;
    if (add_instr(ps, err) < 0)
        return chrun_err_prefix(err, "'%s' line %u", ps->name, ps->logical_line);
    return 0;
}

int chrun_dockerfile_parse(struct chrun_dockerfile *df, const char *name, const char *text,
                           size_t len, struct chrun_err *err)
{
    struct parser ps = {.df = df, .name = name};
    cleanup_free char *copy = NULL;
    int rc;
    *df = (struct chrun_dockerfile){0};
    if (len > CHRUN_DOCKERFILE_MAX)
        return chrun_err_sys(err, EFBIG, "'%s'", name);
    if (memchr(text, '\0', len) != NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "'%s' holds a NUL byte", name);
    copy = strndup(text, len);
    if (copy == NULL)
        return chrun_err_sys(err, ENOMEM, "'%s'", name);
    rc = parse_lines(&ps, copy, err);
    free(ps.logical.s);
    if (rc == 0 && !ps.seen_from)
        rc = chrun_err_set(err, CHRUN_E_INPUT, "'%s' has no FROM instruction", name);
    return rc;
}
