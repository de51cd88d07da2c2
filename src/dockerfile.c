/* Dockerfile parsing and Docker's word rules (see include/chrun/dockerfile.h). */
#include "chrun/dockerfile.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdint.h>
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
    /* a buffer not allocated yet always is, whatever cap says (fuzz finding):
     * chrun_grow allocates a NULL array */
    if (n >= SIZE_MAX - b->len)
        return chrun_err_sys(err, ENOMEM, "dockerfile");
    if (chrun_grow(&b->s, &b->cap, b->len + n + 1, 1, err) < 0)
        return chrun_err_prefix(err, "dockerfile");
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
    if (chrun_grow(&sv->v, &sv->cap, sv->n + 2, sizeof(*sv->v), err) < 0) {
        free(s);
        return chrun_err_prefix(err, "dockerfile");
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
    bool raw;    /* quotes and escapes are literal: only substitution */
    char escape; /* '\\' or '`' */
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
                      .depth = lx->depth + 1, .escape = lx->escape};
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

/* VAL without its shortest (LONGEST: longest) prefix (SUFFIX: suffix)
 * matching the shell PATTERN, written to *RET (a new string). */
static int trim_pattern(const char *val, const char *pattern, bool suffix, bool longest,
                        char **ret, struct chrun_err *err)
{
    size_t len = strlen(val);
    cleanup_free char *buf = strdup(val);
    if (buf == NULL)
        return chrun_err_sys(err, ENOMEM, "dockerfile");
    for (size_t k = 0; k <= len; k++) {
        /* the candidate split: prefixes grow (or shrink), suffixes likewise */
        size_t i = suffix ? (longest ? k : len - k) : (longest ? len - k : k);
        bool match;
        if (suffix) {
            match = fnmatch(pattern, val + i, 0) == 0;
        } else {
            char c = buf[i];
            buf[i] = '\0';
            match = fnmatch(pattern, buf, 0) == 0;
            buf[i] = c;
        }
        if (match) {
            *ret = suffix ? strndup(val, i) : strdup(val + i);
            return *ret ? 0 : chrun_err_sys(err, ENOMEM, "dockerfile");
        }
    }
    *ret = take_ptr(buf);
    return 0;
}

/* ${NAME} and ${NAME<op>word} for the ops -, +, ? (with or without ':'),
 * #, ##, %, %%; lx->p is just past "${". */
static int lex_braced(struct lex *lx, bool raw, struct chrun_err *err)
{
    cleanup_free char *name = NULL, *word = NULL, *trimmed = NULL;
    const char *start = lx->p, *val;
    char op[3] = "";
    bool colon = false, set;
    while (name_char(*lx->p, lx->p == start))
        lx->p++;
    if (lx->p == start)
        return chrun_err_set(err, CHRUN_E_INPUT, "bad substitution '${%.20s'", start);
    name = strndup(start, (size_t) (lx->p - start));
    if (name == NULL)
        return chrun_err_sys(err, ENOMEM, "dockerfile");
    if (lx->p[0] == ':' && lx->p[1] != '\0' && strchr("-+?", lx->p[1]) != NULL) {
        colon = true;
        op[0] = lx->p[1];
        lx->p += 2;
    } else if (*lx->p != '\0' && strchr("-+?#%", *lx->p) != NULL) {
        op[0] = *lx->p++;
        if ((op[0] == '#' || op[0] == '%') && *lx->p == op[0])
            op[1] = *lx->p++;
    } else if (*lx->p != '}') {
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                             "substitution '${%s%.*s}' is not supported (only ${%s}, "
                             "${%s[:]-word}, ${%s[:]+word}, ${%s[:]?word}, ${%s#word}, "
                             "${%s%%word} and ## %%%%)",
                             name, (int) strcspn(lx->p, "}"), lx->p, name, name, name, name,
                             name, name);
    }
    if (op[0] != '\0' && lex_subword(lx, &word, err) < 0)
        return -1;
    if (op[0] == '\0' && *lx->p != '}')
        return chrun_err_set(err, CHRUN_E_INPUT, "missing '}' in a ${...} substitution");
    lx->p++; /* '}' */
    val = lx->lookup ? lx->lookup(lx->data, name) : NULL;
    set = val != NULL && (!colon || *val != '\0');
    switch (op[0]) {
    case '-': val = set ? val : word; break;
    case '+': val = set ? word : ""; break;
    case '?':
        if (!set)
            return chrun_err_set(err, CHRUN_E_INPUT, "%s: %s", name,
                                 *word ? word : "parameter not set or empty");
        break;
    case '#':
    case '%':
        if (trim_pattern(val ? val : "", word, op[0] == '%', op[1] != '\0', &trimmed, err) < 0)
            return -1;
        val = trimmed;
        break;
    default: break;
    }
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
        if (*lx->p == lx->escape && lx->p[1] &&
            (lx->p[1] == '"' || lx->p[1] == '$' || lx->p[1] == lx->escape)) {
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
        if (c == '\'' && !lx->raw) {
            rc = lex_single_quoted(lx, err);
        } else if (c == '"' && !lx->raw) {
            rc = lex_double_quoted(lx, err);
        } else if (c == lx->escape && !lx->raw) {
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
    return chrun_dockerfile_words_escape(s, '\\', lookup, data, split, ret_words, ret_n, err);
}

int chrun_dockerfile_expand_raw(const char *s, chrun_df_lookup_fn lookup, void *data, char **ret,
                                struct chrun_err *err)
{
    struct lex lx = {.p = s, .lookup = lookup, .data = data, .raw = true, .escape = '\\'};
    int rc = lex_run(&lx, '\0', err);
    if (rc == 0)
        *ret = lx.cur.s ? take_ptr(lx.cur.s) : strdup("");
    if (rc == 0 && *ret == NULL)
        rc = chrun_err_sys(err, ENOMEM, "dockerfile");
    free(lx.cur.s);
    chrun_dockerfile_words_free(lx.words.v);
    return rc;
}

int chrun_dockerfile_words_escape(const char *s, char escape, chrun_df_lookup_fn lookup,
                                  void *data, bool split, char ***ret_words, size_t *ret_n,
                                  struct chrun_err *err)
{
    struct lex lx = {.p = s, .lookup = lookup, .data = data, .split = split, .escape = escape};
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

/* Flags an instruction takes; NULL-terminated lists. A name ending in '*'
 * may repeat; "link" and "keep" style booleans may go without a value. */
static const char *const run_flags[] = {"mount*", "network", NULL};
static const char *const copy_flags[] = {"from", "chown", "chmod", "link", NULL};
static const char *const add_flags[] = {"chown", "chmod", "checksum", "link", NULL};
static const char *const from_flags[] = {"platform", NULL};
static const char *const hc_flags[] = {"interval", "timeout", "start-period", "start-interval",
                                       "retries", NULL};

struct keyword {
    const char *name;
    enum chrun_df_kind kind;
    bool json_form;            /* takes the JSON exec form */
    const char *const *flags;  /* NULL: none */
};

static const struct keyword keywords[] = {
    {"FROM", CHRUN_DF_FROM, false, from_flags},
    {"RUN", CHRUN_DF_RUN, true, run_flags},
    {"CMD", CHRUN_DF_CMD, true, NULL},
    {"ENTRYPOINT", CHRUN_DF_ENTRYPOINT, true, NULL},
    {"COPY", CHRUN_DF_COPY, true, copy_flags},
    {"ADD", CHRUN_DF_ADD, true, add_flags},
    {"ENV", CHRUN_DF_ENV, false, NULL},
    {"ARG", CHRUN_DF_ARG, false, NULL},
    {"WORKDIR", CHRUN_DF_WORKDIR, false, NULL},
    {"USER", CHRUN_DF_USER, false, NULL},
    {"LABEL", CHRUN_DF_LABEL, false, NULL},
    {"EXPOSE", CHRUN_DF_EXPOSE, false, NULL},
    {"VOLUME", CHRUN_DF_VOLUME, true, NULL},
    {"SHELL", CHRUN_DF_SHELL, true, NULL},
    {"HEALTHCHECK", CHRUN_DF_HEALTHCHECK, false, hc_flags},
    {"STOPSIGNAL", CHRUN_DF_STOPSIGNAL, false, NULL},
    {"ONBUILD", CHRUN_DF_ONBUILD, false, NULL},
    {"MAINTAINER", CHRUN_DF_MAINTAINER, false, NULL},
};

static const struct keyword *find_keyword(const char *word, size_t len)
{
    for (size_t i = 0; i < ARRAY_SIZE(keywords); i++)
        if (strlen(keywords[i].name) == len && strncasecmp(keywords[i].name, word, len) == 0)
            return &keywords[i];
    return NULL;
}

const char *chrun_df_instr_flag(const struct chrun_df_instr *in, const char *name)
{
    const char *found = NULL;
    for (size_t i = 0; i < in->n_flags; i++)
        if (streq(in->flags[i].name, name))
            found = in->flags[i].value ? in->flags[i].value : "";
    return found;
}

static void instr_release(struct chrun_df_instr *in)
{
    free(in->args);
    free(in->stage);
    for (size_t i = 0; i < in->n_flags; i++) {
        free(in->flags[i].name);
        free(in->flags[i].value);
    }
    free(in->flags);
    chrun_dockerfile_words_free(in->exec);
    for (size_t i = 0; i < in->n_heredocs; i++) {
        free(in->heredocs[i].name);
        free(in->heredocs[i].body);
    }
    free(in->heredocs);
    free(in->script);
}

void chrun_dockerfile_release(struct chrun_dockerfile *df)
{
    for (size_t i = 0; i < df->n_instrs; i++)
        instr_release(&df->instrs[i]);
    free(df->instrs);
    df->instrs = NULL;
    df->n_instrs = 0;
    df->cap_instrs = 0;
}

static char *skip_space(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Is flag NAME (LEN bytes) in LIST? *RET_REPEAT: it may be given twice. */
static bool flag_known(const char *const *list, const char *name, size_t len, bool *ret_repeat)
{
    for (; list && *list; list++) {
        size_t l = strcspn(*list, "*");
        if (l == len && strncmp(*list, name, len) == 0) {
            *ret_repeat = (*list)[l] == '*';
            return true;
        }
    }
    return false;
}

/* Take the --flags in front of the arguments, checked against KW's set. */
static int parse_flags(struct chrun_df_instr *in, const struct keyword *kw, char **args,
                       struct chrun_err *err)
{
    while (str_has_prefix(*args, "--")) {
        char *flag = *args + 2, *end = flag + strcspn(flag, " \t");
        size_t len = (size_t) (end - flag);
        const char *eq = memchr(flag, '=', len);
        size_t name_len = eq ? (size_t) (eq - flag) : len;
        struct chrun_df_flag *p;
        bool repeat = false;
        if (!flag_known(kw->flags, flag, name_len, &repeat))
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED, "%s flag '--%.*s' is not supported",
                                 kw->name, (int) name_len, flag);
        for (size_t i = 0; !repeat && i < in->n_flags; i++)
            if (strlen(in->flags[i].name) == name_len &&
                strncmp(in->flags[i].name, flag, name_len) == 0)
                return chrun_err_set(err, CHRUN_E_INPUT, "%s flag '--%.*s' given twice",
                                     kw->name, (int) name_len, flag);
        if (eq == NULL && !(name_len == 4 && strncmp(flag, "link", 4) == 0))
            return chrun_err_set(err, CHRUN_E_INPUT, "%s flag '--%.*s' needs a value",
                                 kw->name, (int) name_len, flag);
        if (chrun_grow(&in->flags, &in->cap_flags, in->n_flags + 1, sizeof(*in->flags), err) < 0)
            return chrun_err_prefix(err, "dockerfile");
        p = &in->flags[in->n_flags];
        p->name = strndup(flag, name_len);
        p->value = eq ? strndup(eq + 1, (size_t) (end - eq - 1)) : NULL;
        in->n_flags++;
        if (p->name == NULL || (eq != NULL && p->value == NULL))
            return chrun_err_sys(err, ENOMEM, "dockerfile");
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

static bool stage_name_ok(const char *s)
{
    if (!isalpha((unsigned char) *s))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char) *s) && !strchr("-_.", *s))
            return false;
    return true;
}

/* FROM IMAGE [AS NAME]: ARGS becomes IMAGE, STAGE the lowercased NAME. */
static int parse_from(struct chrun_df_instr *in, struct chrun_err *err)
{
    char *save = NULL, *w[4] = {0};
    size_t n = 0;
    for (char *t = strtok_r(in->args, " \t", &save); t && n < 4; t = strtok_r(NULL, " \t", &save))
        w[n++] = t;
    if (n == 3 && strcasecmp(w[1], "AS") == 0) {
        if (!stage_name_ok(w[2]))
            return chrun_err_set(err, CHRUN_E_INPUT, "FROM ... AS '%s': not a stage name", w[2]);
        in->stage = strdup(w[2]);
        if (in->stage == NULL)
            return chrun_err_sys(err, ENOMEM, "dockerfile");
        for (char *p = in->stage; *p; p++)
            *p = (char) tolower((unsigned char) *p);
    } else if (n != 1) {
        return chrun_err_set(err, CHRUN_E_INPUT, "FROM takes an image and optionally AS NAME");
    }
    return 0; /* strtok_r cut ARGS at the end of the image */
}

/* HEALTHCHECK [OPTIONS] CMD command | NONE. */
static int parse_healthcheck(struct chrun_df_instr *in, struct chrun_err *err)
{
    char *rest;
    if (strcasecmp(in->args, "NONE") == 0) {
        if (in->n_flags > 0)
            return chrun_err_set(err, CHRUN_E_INPUT, "HEALTHCHECK NONE takes no options");
        in->none = true;
        return 0;
    }
    if (strncasecmp(in->args, "CMD", 3) != 0 || (in->args[3] != ' ' && in->args[3] != '\t'))
        return chrun_err_set(err, CHRUN_E_INPUT, "HEALTHCHECK wants CMD command or NONE");
    rest = skip_space(in->args + 3);
    if (*rest == '\0')
        return chrun_err_set(err, CHRUN_E_INPUT, "HEALTHCHECK CMD needs a command");
    memmove(in->args, rest, strlen(rest) + 1);
    return parse_exec_form(in, err);
}

static int parse_instr(struct chrun_df_instr *in, char *text, bool trigger, struct chrun_err *err);

/* ONBUILD INSTRUCTION: checked now, kept as text for the image config. */
static int parse_onbuild(struct chrun_df_instr *in, struct chrun_err *err)
{
    struct chrun_df_instr inner = {.line = in->line};
    cleanup_free char *copy = strdup(in->args);
    int rc;
    if (copy == NULL)
        return chrun_err_sys(err, ENOMEM, "dockerfile");
    rc = parse_instr(&inner, copy, true, err);
    instr_release(&inner);
    return rc < 0 ? chrun_err_prefix(err, "ONBUILD") : 0;
}

/* Turn one logical line into an instruction. TRIGGER: an ONBUILD trigger,
 * which cannot be FROM, ONBUILD or MAINTAINER. */
static int parse_instr(struct chrun_df_instr *in, char *text, bool trigger, struct chrun_err *err)
{
    const struct keyword *kw;
    size_t klen = strcspn(text, " \t");
    char *args, *end;
    kw = find_keyword(text, klen);
    if (kw == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "unknown instruction '%.*s'", (int) klen, text);
    if (trigger && (kw->kind == CHRUN_DF_FROM || kw->kind == CHRUN_DF_ONBUILD ||
                    kw->kind == CHRUN_DF_MAINTAINER))
        return chrun_err_set(err, CHRUN_E_INPUT, "%s is not allowed as an ONBUILD trigger",
                             kw->name);
    in->kind = kw->kind;
    in->keyword = kw->name;
    args = skip_space(text + klen);
    if (parse_flags(in, kw, &args, err) < 0)
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
    if (in->kind == CHRUN_DF_SHELL && in->exec == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "SHELL wants the JSON form [\"exe\", \"arg\"...]");
    if (in->kind == CHRUN_DF_SHELL && in->n_exec == 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "SHELL needs at least one element");
    if (in->kind == CHRUN_DF_FROM)
        return parse_from(in, err);
    if (in->kind == CHRUN_DF_HEALTHCHECK)
        return parse_healthcheck(in, err);
    if (in->kind == CHRUN_DF_ONBUILD)
        return parse_onbuild(in, err);
    return 0;
}

/* ---- heredocs ------------------------------------------------------------------ */

/* Find the <<WORD, <<-WORD, <<"WORD" and <<'WORD' markers of a RUN, COPY or
 * ADD line (outside quotes) and add them to IN, in order. */
static int find_heredocs(struct chrun_df_instr *in, struct chrun_err *err)
{
    const char *p = in->args;
    char quote = 0;
    if (in->exec != NULL ||
        (in->kind != CHRUN_DF_RUN && in->kind != CHRUN_DF_COPY && in->kind != CHRUN_DF_ADD))
        return 0;
    for (; *p; p++) {
        struct chrun_df_heredoc *h;
        const char *name;
        size_t len;
        char q = 0;
        bool strip = false;
        if (quote) {
            quote = *p == quote ? 0 : quote;
            continue;
        }
        if (*p == '\'' || *p == '"') {
            quote = *p;
            continue;
        }
        if (p[0] != '<' || p[1] != '<' || p[2] == '<' || (p > in->args && p[-1] == '<'))
            continue;
        p += 2;
        if (*p == '-') {
            strip = true;
            p++;
        }
        if (*p == '"' || *p == '\'')
            q = *p++;
        name = p;
        while (isalnum((unsigned char) *p) || (*p != '\0' && strchr("_.-", *p) != NULL))
            p++;
        len = (size_t) (p - name);
        if (len == 0)
            return chrun_err_set(err, CHRUN_E_INPUT, "heredoc '<<' without a delimiter word");
        if (q && *p != q)
            return chrun_err_set(err, CHRUN_E_INPUT, "heredoc delimiter %c%.*s is not closed", q,
                                 (int) len, name);
        if (in->n_heredocs >= 64)
            return chrun_err_set(err, CHRUN_E_INPUT, "more than 64 heredocs in one instruction");
        if (chrun_grow(&in->heredocs, &in->cap_heredocs, in->n_heredocs + 1,
                       sizeof(*in->heredocs), err) < 0)
            return chrun_err_prefix(err, "dockerfile");
        h = &in->heredocs[in->n_heredocs++];
        *h = (struct chrun_df_heredoc){.name = strndup(name, len), .expand = q == 0,
                                        .strip = strip};
        if (h->name == NULL)
            return chrun_err_sys(err, ENOMEM, "dockerfile");
        if (q == 0)
            p--;
    }
    return 0;
}

/* "RUN <<EOF" alone: the heredoc is the script. */
static bool heredoc_only(const struct chrun_df_instr *in)
{
    const char *p = in->args + 2;
    const struct chrun_df_heredoc *h = &in->heredocs[0];
    size_t len = strlen(h->name);
    if (in->n_heredocs != 1 || !str_has_prefix(in->args, "<<"))
        return false;
    p += *p == '-';
    if (*p == '"' || *p == '\'')
        return strncmp(p + 1, h->name, len) == 0 && p[len + 1] == *p && p[len + 2] == '\0';
    return strncmp(p, h->name, len) == 0 && p[len] == '\0';
}

/* ---- lines --------------------------------------------------------------------- */

/* A parser directive on the first lines ("# escape=\"): *RET_IS tells
 * whether LINE is one. Returns 0, or -1 for a directive chrun refuses. */
static int directive(struct chrun_dockerfile *df, const char *line, bool *ret_is,
                     struct chrun_err *err)
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
    if ((size_t) (p - name) == 6 && strncasecmp(name, "escape", 6) == 0) {
        if ((eq[0] != '\\' && eq[0] != '`') || (eq[1] != '\0' && !isspace((unsigned char) eq[1])))
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "parser directive escape=%.8s: only '\\' or '`'", eq);
        df->escape = eq[0];
    }
    /* "syntax" names a BuildKit frontend and "check" its linter: ignored,
     * as the classic builder ignores them */
    return 0;
}

struct parser {
    struct chrun_dockerfile *df;
    const char *name;
    struct sbuf logical;
    unsigned logical_line;
    bool in_instr;
    bool seen_from;
    bool triggers;
    /* heredoc bodies being read for the last instruction */
    size_t heredoc;     /* index of the one being read */
    bool in_heredoc;
    struct sbuf raw;    /* RUN: the heredoc lines as the shell reads them */
};

static struct chrun_df_instr *last_instr(struct parser *ps)
{
    return &ps->df->instrs[ps->df->n_instrs - 1];
}

static int add_instr(struct parser *ps, struct chrun_err *err)
{
    struct chrun_df_instr *in;
    struct chrun_dockerfile *df = ps->df;
    if (df->n_instrs >= CHRUN_DOCKERFILE_MAX_INSTRS)
        return chrun_err_set(err, CHRUN_E_INPUT, "more than %d instructions",
                             CHRUN_DOCKERFILE_MAX_INSTRS);
    if (chrun_grow(&df->instrs, &df->cap_instrs, df->n_instrs + 1, sizeof(*df->instrs), err) < 0)
        return chrun_err_prefix(err, "dockerfile");
    in = &df->instrs[df->n_instrs++];
    *in = (struct chrun_df_instr){.line = ps->logical_line};
    if (parse_instr(in, ps->logical.s, ps->triggers, err) < 0 || find_heredocs(in, err) < 0)
        return -1;
    if (!ps->triggers && in->kind != CHRUN_DF_FROM && in->kind != CHRUN_DF_ARG &&
        !ps->seen_from)
        return chrun_err_set(err, CHRUN_E_INPUT, "%s before FROM", in->keyword);
    ps->seen_from |= in->kind == CHRUN_DF_FROM;
    if (in->n_heredocs > 0) {
        ps->in_heredoc = true;
        ps->heredoc = 0;
        ps->raw.len = 0;
        return sbuf_add(&ps->raw, in->args, strlen(in->args), err);
    }
    return 0;
}

/* The heredocs of the last instruction are complete. */
static int heredocs_done(struct parser *ps, struct chrun_err *err)
{
    struct chrun_df_instr *in = last_instr(ps);
    ps->in_heredoc = false;
    if (in->kind != CHRUN_DF_RUN)
        return 0;
    if (heredoc_only(in))
        in->script = strdup(in->heredocs[0].body);
    else
        in->script = strdup(ps->raw.s);
    if (in->script == NULL)
        return chrun_err_sys(err, ENOMEM, "dockerfile");
    return 0;
}

/* One physical line of a heredoc body. */
static int feed_heredoc(struct parser *ps, const char *line, struct chrun_err *err)
{
    struct chrun_df_instr *in = last_instr(ps);
    struct chrun_df_heredoc *h = &in->heredocs[ps->heredoc];
    const char *text = line;
    struct sbuf body = {.s = h->body, .len = h->body ? strlen(h->body) : 0};
    if (sbuf_add(&ps->raw, "\n", 1, err) < 0 || sbuf_add(&ps->raw, line, strlen(line), err) < 0)
        return -1;
    while (h->strip && *text == '\t')
        text++;
    if (streq(text, h->name)) {
        if (h->body == NULL && (h->body = strdup("")) == NULL)
            return chrun_err_sys(err, ENOMEM, "dockerfile");
        return ++ps->heredoc == in->n_heredocs ? heredocs_done(ps, err) : 0;
    }
    body.cap = body.s != NULL ? body.len + 1 : 0;
    if (sbuf_add(&body, text, strlen(text), err) < 0 || sbuf_add(&body, "\n", 1, err) < 0) {
        h->body = body.s;
        return -1;
    }
    h->body = body.s;
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
    if (end > line && end[-1] == ps->df->escape) {
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
    bool directives = !ps->triggers;
    unsigned lineno = 0;
    char *line = text, *nl;
    for (; line != NULL; line = nl) {
        nl = strchr(line, '\n');
        if (nl != NULL)
            *nl++ = '\0';
        else if (*line == '\0')
            break; /* the text ended with a newline */
        lineno++;
        if (ps->in_heredoc) {
            size_t len = strlen(line);
            if (len > 0 && line[len - 1] == '\r')
                line[len - 1] = '\0';
            if (feed_heredoc(ps, line, err) < 0)
                return chrun_err_prefix(err, "'%s' line %u", ps->name, lineno);
            continue;
        }
        if (directives && line[0] == '#') {
            bool is;
            if (directive(ps->df, line, &is, err) < 0)
                return chrun_err_prefix(err, "'%s' line %u", ps->name, lineno);
            if (is)
                continue;
        }
        directives = false;
        if (feed_line(ps, line, lineno, err) < 0)
            return chrun_err_prefix(err, "'%s' line %u", ps->name, ps->logical_line);
    }
    if (ps->in_heredoc) {
        const struct chrun_df_instr *in = last_instr(ps);
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "'%s' line %u: heredoc '%s' has no terminating line '%s'", ps->name,
                             in->line, in->heredocs[ps->heredoc].name,
                             in->heredocs[ps->heredoc].name);
    }
    if (!ps->in_instr)
        return 0;
    /* a continuation on the last line ends the instruction, as in Docker */
    ps->in_instr = false;
    if (add_instr(ps, err) < 0)
        return chrun_err_prefix(err, "'%s' line %u", ps->name, ps->logical_line);
    if (ps->in_heredoc)
        return chrun_err_set(err, CHRUN_E_INPUT, "'%s' line %u: heredoc has no terminating line",
                             ps->name, ps->logical_line);
    return 0;
}

static int parse_text(struct chrun_dockerfile *df, const char *name, const char *text,
                      size_t len, bool triggers, struct chrun_err *err)
{
    struct parser ps = {.df = df, .name = name, .triggers = triggers};
    cleanup_free char *copy = NULL;
    int rc;
    *df = (struct chrun_dockerfile){.escape = '\\'};
    if (len > CHRUN_DOCKERFILE_MAX)
        return chrun_err_sys(err, EFBIG, "'%s'", name);
    if (memchr(text, '\0', len) != NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "'%s' holds a NUL byte", name);
    copy = strndup(text, len);
    if (copy == NULL)
        return chrun_err_sys(err, ENOMEM, "'%s'", name);
    rc = parse_lines(&ps, copy, err);
    free(ps.logical.s);
    free(ps.raw.s);
    if (rc == 0 && !triggers && !ps.seen_from)
        rc = chrun_err_set(err, CHRUN_E_INPUT, "'%s' has no FROM instruction", name);
    return rc;
}

int chrun_dockerfile_parse(struct chrun_dockerfile *df, const char *name, const char *text,
                           size_t len, struct chrun_err *err)
{
    return parse_text(df, name, text, len, false, err);
}

int chrun_dockerfile_parse_triggers(struct chrun_dockerfile *df, const char *name,
                                    const char *text, size_t len, struct chrun_err *err)
{
    return parse_text(df, name, text, len, true, err);
}
