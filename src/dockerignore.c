/* .dockerignore parsing and matching; the semantics are described in
 * include/chrun/dockerignore.h.
 *
 * Each pattern compiles to a small NFA (one state per token, epsilon edges
 * only forward) and a path is matched by simulating it over the path's
 * characters, so a hostile pattern costs O(path length x pattern length),
 * never exponential backtracking. */
#include "chrun/dockerignore.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chrun/fs.h"
#include "cleanup.h"
#include "util.h"

#define IGNORE_FILE ".dockerignore"
#define SOURCE_MAX 512
/* A byte that is not part of valid UTF-8 decodes to this plus the byte, so it
 * only ever equals itself. */
#define RUNE_BAD_BASE 0x110000u

enum tok_kind {
    TOK_LIT,     /* one character equal to c */
    TOK_ANY,     /* '?': one character but '/' */
    TOK_CLASS,   /* "[...]": one character in (or, negated, not in) the ranges */
    TOK_STAR,    /* '*': any run of characters but '/' */
    TOK_ALLSTAR, /* any run of characters */
    TOK_OPT,     /* start of an optional "any run, then /" group: may jump to arg */
};

struct tok {
    uint8_t kind;
    bool negated;      /* TOK_CLASS */
    uint32_t c;        /* TOK_LIT: the character; TOK_CLASS: number of ranges */
    uint32_t arg;      /* TOK_CLASS: first range; TOK_OPT: state after the group */
};

struct range {
    uint32_t lo, hi;
};

struct pattern {
    char *text; /* cleaned, with '!' for an exception */
    bool exclusion;
    struct tok *toks;
    size_t ntok;
    struct range *ranges;
    size_t nranges;
};

struct chrun_dockerignore {
    char source[SOURCE_MAX];
    struct pattern *pats;
    size_t n, cap;
    size_t max_tok; /* largest ntok, for the matcher's state sets */
};

/* UTF-8 */

/* Decode one character of S (LEN > 0 bytes left) into *RET; returns its
 * length. Invalid or overlong sequences and surrogates give one byte. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *ret, bool *ret_valid)
{
    uint32_t c = s[0], min;
    size_t n;
    *ret_valid = true;
    if (c < 0x80) {
        *ret = c;
        return 1;
    }
    if ((c & 0xe0) == 0xc0)
        n = 2, c &= 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        n = 3, c &= 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        n = 4, c &= 0x07, min = 0x10000;
    else
        n = 0, min = 0;
    if (n == 0 || n > len) {
        *ret_valid = false;
        *ret = RUNE_BAD_BASE + s[0];
        return 1;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *ret_valid = false;
            *ret = RUNE_BAD_BASE + s[0];
            return 1;
        }
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        *ret_valid = false;
        *ret = RUNE_BAD_BASE + s[0];
        return 1;
    }
    *ret = c;
    return n;
}

/* Go's unicode.IsSpace, which strings.TrimSpace uses. */
static bool rune_is_space(uint32_t c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
           c == 0x205f || c == 0x3000;
}

/* Trim whitespace at both ends of [*S, *S + *LEN). */
static void trim_space(const char **s, size_t *len)
{
    const unsigned char *p = (const unsigned char *) *s;
    size_t start = 0, end = *len;
    while (start < end) {
        uint32_t c;
        bool valid;
        size_t n = utf8_decode(p + start, end - start, &c, &valid);
        if (!valid || !rune_is_space(c))
            break;
        start += n;
    }
    while (end > start) {
        /* back up to the start of the last character */
        size_t k = end - 1, n;
        uint32_t c;
        bool valid;
        while (k > start && end - k < 4 && (p[k] & 0xc0) == 0x80)
            k--;
        n = utf8_decode(p + k, end - k, &c, &valid);
        if (k + n != end)
            k = end - 1, n = utf8_decode(p + k, 1, &c, &valid);
        if (!valid || !rune_is_space(c))
            break;
        end = k;
    }
    *s += start;
    *len = end - start;
}

/* Go's path.Clean of LEN bytes at S into a new string (free it): "." and
 * empty components dropped, ".." eats the component before it (or is kept at
 * the start of a relative path, dropped at the root), "" becomes ".". */
static char *path_clean(const char *s, size_t len)
{
    bool rooted = len > 0 && s[0] == '/';
    char *out = malloc(len + 2);
    size_t o = 0, dotdot = 0; /* dotdot: where ".." can no longer be undone */
    size_t i = 0;
    if (out == NULL)
        return NULL;
    if (rooted)
        out[o++] = '/', dotdot = 1, i = 1;
    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != '/')
            j++;
        if (j == i || (j - i == 1 && s[i] == '.')) {
            /* empty or "." */
        } else if (j - i == 2 && s[i] == '.' && s[i + 1] == '.') {
            if (o > dotdot) {
                /* back up to the previous '/' */
                o--;
                while (o > dotdot && out[o] != '/')
                    o--;
            } else if (!rooted) {
                if (o > 0)
                    out[o++] = '/';
                out[o++] = '.';
                out[o++] = '.';
                dotdot = o;
            }
        } else {
            if ((rooted && o != 1) || (!rooted && o != 0))
                out[o++] = '/';
            memcpy(out + o, s + i, j - i);
            o += j - i;
        }
        i = j + 1;
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = '\0';
    return out;
}

/* Patterns */

/* One item of a character class at P[*I] (Go's filepath getEsc): a
 * character, or '\' and a character. Returns false on a syntax error. */
static bool class_item(const char *p, size_t len, size_t *i, uint32_t *ret)
{
    bool valid;
    if (*i >= len || p[*i] == '-' || p[*i] == ']')
        return false;
    if (p[*i] == '\\') {
        (*i)++;
        if (*i >= len)
            return false;
    }
    *i += utf8_decode((const unsigned char *) p + *i, len - *i, ret, &valid);
    /* the class must go on: an item at the end is an unterminated class */
    return valid && *i < len;
}

static int add_tok(struct pattern *pt, size_t *cap, struct tok t)
{
    if (chrun_grow(&pt->toks, cap, pt->ntok + 1, sizeof(*pt->toks), NULL) < 0)
        return -1;
    pt->toks[pt->ntok++] = t;
    return 0;
}

static int add_range(struct pattern *pt, size_t *cap, uint32_t lo, uint32_t hi)
{
    if (chrun_grow(&pt->ranges, cap, pt->nranges + 1, sizeof(*pt->ranges), NULL) < 0)
        return -1;
    pt->ranges[pt->nranges++] = (struct range){lo, hi};
    return 0;
}

/* True if P (LEN bytes) has no wildcard, class or escape: Docker matches a
 * pattern "**" + such a suffix as "any path ending in the suffix". */
static bool all_plain(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (strchr("*?[]\\", p[i]) != NULL)
            return false;
    return true;
}

/* Compile the cleaned pattern P (LEN bytes, no '!') into PT's tokens.
 * Returns 0, -1 with *RET_WHY set for a syntax error, or -2 out of memory. */
static int compile(struct pattern *pt, const char *p, size_t len, const char **ret_why)
{
    size_t tcap = 0, rcap = 0, i = 0;

    if (len >= 2 && p[0] == '*' && p[1] == '*') {
        /* Docker's leading "**": "**" + '/' is the optional-directories
         * group below; "**" alone or before plain characters is a suffix
         * match, i.e. any run of characters. */
        size_t rest = (len > 2 && p[2] == '/') ? 3 : 2;
        if (rest == len || (rest == 2 && all_plain(p + 2, len - 2))) {
            if (add_tok(pt, &tcap, (struct tok){.kind = TOK_ALLSTAR}) < 0)
                return -2;
            i = rest == len ? len : 2;
        }
    }
    while (i < len) {
        char ch = p[i];
        uint32_t c;
        bool valid;
        if (ch == '*') {
            if (i + 1 < len && p[i + 1] == '*') {
                i += 2;
                if (i < len && p[i] == '/')
                    i++;
                if (i == len) {
                    if (add_tok(pt, &tcap, (struct tok){.kind = TOK_ALLSTAR}) < 0)
                        return -2;
                } else {
                    /* "(any run, then /) optional": OPT jumps past ALLSTAR and the '/' */
                    size_t after = pt->ntok + 3;
                    if (add_tok(pt, &tcap, (struct tok){.kind = TOK_OPT, .arg = (uint32_t) after}) <
                            0 ||
                        add_tok(pt, &tcap, (struct tok){.kind = TOK_ALLSTAR}) < 0 ||
                        add_tok(pt, &tcap, (struct tok){.kind = TOK_LIT, .c = '/'}) < 0)
                        return -2;
                }
                continue;
            }
            if (add_tok(pt, &tcap, (struct tok){.kind = TOK_STAR}) < 0)
                return -2;
            i++;
            continue;
        }
        if (ch == '?') {
            if (add_tok(pt, &tcap, (struct tok){.kind = TOK_ANY}) < 0)
                return -2;
            i++;
            continue;
        }
        if (ch == '[') {
            struct tok t = {.kind = TOK_CLASS, .arg = (uint32_t) pt->nranges};
            i++;
            if (i < len && p[i] == '^')
                t.negated = true, i++;
            for (;;) {
                uint32_t lo, hi;
                if (i >= len) {
                    *ret_why = "unterminated '['";
                    return -1;
                }
                if (p[i] == ']' && t.c > 0) {
                    i++;
                    break;
                }
                if (!class_item(p, len, &i, &lo)) {
                    *ret_why = i >= len ? "unterminated '['" : "bad character class";
                    return -1;
                }
                hi = lo;
                if (p[i] == '-') {
                    i++;
                    if (!class_item(p, len, &i, &hi)) {
                        *ret_why = i >= len ? "unterminated '['" : "bad range in character class";
                        return -1;
                    }
                }
                if (add_range(pt, &rcap, lo, hi) < 0)
                    return -2;
                t.c++;
            }
            if (add_tok(pt, &tcap, t) < 0)
                return -2;
            continue;
        }
        if (ch == '\\') {
            i++;
            if (i == len) {
                *ret_why = "trailing '\\'";
                return -1;
            }
        }
        i += utf8_decode((const unsigned char *) p + i, len - i, &c, &valid);
        if (add_tok(pt, &tcap, (struct tok){.kind = TOK_LIT, .c = c}) < 0)
            return -2;
    }
    return 0;
}

static void pattern_release(struct pattern *pt)
{
    free(pt->text);
    free(pt->toks);
    free(pt->ranges);
}

void chrun_dockerignore_free(struct chrun_dockerignore *ign)
{
    if (ign == NULL)
        return;
    for (size_t i = 0; i < ign->n; i++)
        pattern_release(&ign->pats[i]);
    free(ign->pats);
    free(ign);
}

static void ign_cleanup(struct chrun_dockerignore **p)
{
    chrun_dockerignore_free(*p);
}

/* One line of the file, as Docker's ignorefile.ReadAll and then
 * patternmatcher.New treat it. LINE is the 1-based line number. */
static int add_line(struct chrun_dockerignore *ign, const char *s, size_t len, size_t line,
                    struct chrun_err *err)
{
    cleanup_free char *cleaned = NULL, *full = NULL;
    struct pattern pt = {0};
    const char *why = NULL;
    bool invert;
    size_t clen, off = 0;
    int rc;

    if (len > 0 && s[0] == '#')
        return 0; /* comments are recognized before trimming */
    trim_space(&s, &len);
    if (len == 0)
        return 0;
    if (memchr(s, '\0', len) != NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "'%s' line %zu: pattern holds a NUL byte",
                             ign->source, line);
    invert = s[0] == '!';
    if (invert) {
        s++, len--;
        trim_space(&s, &len);
    }
    /* ReadAll: clean, and a leading '/' means the context root */
    cleaned = path_clean(s, len);
    if (cleaned == NULL)
        return chrun_err_sys(err, ENOMEM, "'%s'", ign->source);
    if (len == 0)
        cleaned[0] = '\0'; /* "!" alone stays "!" */
    clen = strlen(cleaned);
    if (clen > 1 && cleaned[0] == '/')
        off = 1;
    if (asprintf(&full, "%s%s", invert ? "!" : "", cleaned + off) < 0) {
        full = NULL;
        return chrun_err_sys(err, ENOMEM, "'%s'", ign->source);
    }
    /* New: clean the whole string again, then take the '!' off */
    pt.text = path_clean(full, strlen(full));
    if (pt.text == NULL)
        return chrun_err_sys(err, ENOMEM, "'%s'", ign->source);
    if (pt.text[0] == '!') {
        if (pt.text[1] == '\0') {
            pattern_release(&pt);
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "'%s' line %zu: '!' without a pattern after it", ign->source,
                                 line);
        }
        pt.exclusion = true;
    }
    rc = compile(&pt, pt.text + pt.exclusion, strlen(pt.text + pt.exclusion), &why);
    if (rc == -2) {
        pattern_release(&pt);
        return chrun_err_sys(err, ENOMEM, "'%s'", ign->source);
    }
    if (rc < 0) {
        int r = chrun_err_set(err, CHRUN_E_INPUT, "'%s' line %zu: bad pattern '%.200s': %s",
                              ign->source, line, pt.text, why);
        pattern_release(&pt);
        return r;
    }
    if (chrun_grow(&ign->pats, &ign->cap, ign->n + 1, sizeof(*ign->pats), err) < 0) {
        pattern_release(&pt);
        return chrun_err_prefix(err, "'%s'", ign->source);
    }
    if (pt.ntok > ign->max_tok)
        ign->max_tok = pt.ntok;
    ign->pats[ign->n++] = pt;
    return 0;
}

int chrun_dockerignore_parse(const char *buf, size_t len, const char *source,
                             struct chrun_dockerignore **ret, struct chrun_err *err)
{
    __attribute__((cleanup(ign_cleanup))) struct chrun_dockerignore *ign = NULL;
    size_t pos = 0, line = 0;

    ign = calloc(1, sizeof(*ign));
    if (ign == NULL)
        return chrun_err_sys(err, ENOMEM, "dockerignore");
    snprintf(ign->source, sizeof(ign->source), "%s", source ? source : "");
    /* bufio.ScanLines: split at '\n', drop one '\r' before it, a last line
     * without '\n' counts if it is not empty */
    while (pos < len) {
        const char *s = buf + pos, *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t) (nl - s) : len - pos;
        pos += n + (nl != NULL);
        line++;
        if (n >= CHRUN_DOCKERIGNORE_LINE_MAX)
            return chrun_err_set(err, CHRUN_E_INPUT, "'%s' line %zu: longer than %d bytes",
                                 ign->source, line, CHRUN_DOCKERIGNORE_LINE_MAX);
        if (n > 0 && s[n - 1] == '\r')
            n--;
        if (line == 1 && n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
            s += 3, n -= 3;
        if (add_line(ign, s, n, line, err) < 0)
            return -1;
    }
    *ret = take_ptr(ign);
    return 0;
}

int chrun_dockerignore_load(int ctxfd, int dockerfile_dirfd, const char *dockerfile_name,
                            struct chrun_dockerignore **ret, struct chrun_err *err)
{
    cleanup_free char *buf = NULL, *own = NULL;
    size_t len = 0;

    if (dockerfile_dirfd >= 0 && dockerfile_name != NULL && *dockerfile_name != '\0') {
        const char *base = strrchr(dockerfile_name, '/');
        base = base ? base + 1 : dockerfile_name;
        if (*base == '\0')
            return chrun_err_set(err, CHRUN_E_INPUT, "Dockerfile name '%s' ends in '/'",
                                 dockerfile_name);
        if (asprintf(&own, "%s" IGNORE_FILE, base) < 0) {
            own = NULL;
            return chrun_err_sys(err, ENOMEM, "dockerignore");
        }
        if (chrun_fs_read_regular_at(dockerfile_dirfd, own, CHRUN_DOCKERIGNORE_MAX, &buf, &len,
                                     err) < 0)
            return -1;
        if (buf != NULL)
            return chrun_dockerignore_parse(buf, len, own, ret, err);
    }
    if (chrun_fs_read_regular_at(ctxfd, IGNORE_FILE, CHRUN_DOCKERIGNORE_MAX, &buf, &len, err) < 0)
        return -1;
    if (buf == NULL)
        return chrun_dockerignore_parse("", 0, "", ret, err);
    return chrun_dockerignore_parse(buf, len, IGNORE_FILE, ret, err);
}

/* Matching */

static bool class_has(const struct pattern *pt, const struct tok *t, uint32_t c)
{
    bool in = false;
    for (uint32_t k = 0; k < t->c && !in; k++) {
        const struct range *r = &pt->ranges[t->arg + k];
        in = r->lo <= c && c <= r->hi;
    }
    return in != t->negated;
}

/* Add the states reachable by epsilon edges; they only go forward, so one
 * pass in state order is the closure. */
static void closure(const struct pattern *pt, unsigned char *set)
{
    for (size_t i = 0; i < pt->ntok; i++) {
        if (!set[i])
            continue;
        switch (pt->toks[i].kind) {
        case TOK_STAR:
        case TOK_ALLSTAR:
            set[i + 1] = 1;
            break;
        case TOK_OPT:
            set[i + 1] = 1;
            set[pt->toks[i].arg] = 1;
            break;
        default:
            break;
        }
    }
}

static bool set_empty(const unsigned char *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (set[i])
            return false;
    return true;
}

/* Run PT over PATH. With PARENTS, a match of any '/'-ended prefix counts
 * too (Docker: a pattern matching a parent directory matches the path).
 * With PREFIX, succeed if some state is still alive at the end (a longer
 * path could match). CUR and NXT hold max_tok + 1 bytes. */
static bool run(const struct pattern *pt, const char *path, bool parents, bool prefix,
                unsigned char *cur, unsigned char *nxt)
{
    const unsigned char *s = (const unsigned char *) path;
    size_t len = strlen(path), pos = 0, nstates = pt->ntok + 1;

    memset(cur, 0, nstates);
    cur[0] = 1;
    closure(pt, cur);
    while (pos < len) {
        uint32_t c;
        bool valid;
        unsigned char *tmp;
        if (parents && s[pos] == '/' && cur[pt->ntok])
            return true;
        pos += utf8_decode(s + pos, len - pos, &c, &valid);
        memset(nxt, 0, nstates);
        for (size_t i = 0; i < pt->ntok; i++) {
            const struct tok *t = &pt->toks[i];
            if (!cur[i])
                continue;
            switch (t->kind) {
            case TOK_LIT:
                if (c == t->c)
                    nxt[i + 1] = 1;
                break;
            case TOK_ANY:
                if (c != '/')
                    nxt[i + 1] = 1;
                break;
            case TOK_CLASS:
                if (class_has(pt, t, c))
                    nxt[i + 1] = 1;
                break;
            case TOK_STAR:
                if (c != '/')
                    nxt[i] = 1;
                break;
            case TOK_ALLSTAR:
                nxt[i] = 1;
                break;
            default:
                break;
            }
        }
        closure(pt, nxt);
        tmp = cur, cur = nxt, nxt = tmp;
        if (set_empty(cur, nstates))
            return false;
    }
    return prefix ? true : cur[pt->ntok] != 0;
}

/* SPEC-style guard for callers: a context path is relative and clean. */
static int check_relpath(const char *p, struct chrun_err *err)
{
    const char *s = p;
    if (*p == '\0' || *p == '/')
        return chrun_err_set(err, CHRUN_E_INPUT, "dockerignore: '%s' is not a relative path", p);
    while (*s) {
        size_t n = strcspn(s, "/");
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.') ||
            (s[n] == '/' && s[n + 1] == '\0'))
            return chrun_err_set(err, CHRUN_E_INPUT, "dockerignore: '%s' is not a clean path", p);
        s += n + (s[n] == '/');
    }
    return 0;
}

static int state_sets(const struct chrun_dockerignore *ign, unsigned char **ret,
                      struct chrun_err *err)
{
    *ret = malloc(2 * (ign->max_tok + 1));
    if (*ret == NULL)
        return chrun_err_sys(err, ENOMEM, "dockerignore");
    return 0;
}

/* The last pattern that matches decides (Docker evaluates them in order with
 * the same outcome), so scan from the end. */
static bool ignored(const struct chrun_dockerignore *ign, const char *path, unsigned char *sets)
{
    for (size_t i = ign->n; i-- > 0;) {
        const struct pattern *pt = &ign->pats[i];
        if (run(pt, path, true, false, sets, sets + ign->max_tok + 1))
            return !pt->exclusion;
    }
    return false;
}

/* Check PATH and get the state sets *RET_SETS (free) for a matcher with
 * patterns. Returns 1 when there is matching to do, 0 when IGN has no
 * pattern, -1 with ERR. */
static int match_begin(const struct chrun_dockerignore *ign, const char *path,
                       unsigned char **ret_sets, struct chrun_err *err)
{
    if (check_relpath(path, err) < 0)
        return -1;
    if (ign == NULL || ign->n == 0)
        return 0;
    return state_sets(ign, ret_sets, err) < 0 ? -1 : 1;
}

int chrun_dockerignore_match(const struct chrun_dockerignore *ign, const char *relpath,
                             bool *ret_ignored, struct chrun_err *err)
{
    cleanup_free unsigned char *sets = NULL;
    int rc = match_begin(ign, relpath, &sets, err);
    *ret_ignored = rc > 0 && ignored(ign, relpath, sets);
    return rc < 0 ? -1 : 0;
}

int chrun_dockerignore_may_descend(const struct chrun_dockerignore *ign, const char *dirpath,
                                   bool *ret_descend, struct chrun_err *err)
{
    cleanup_free unsigned char *sets = NULL;
    cleanup_free char *slashed = NULL;
    int rc = match_begin(ign, dirpath, &sets, err);
    *ret_descend = true;
    if (rc <= 0 || !ignored(ign, dirpath, sets))
        return rc < 0 ? -1 : 0;
    /* Ignored: only an exception that can match below "DIR/" keeps anything
     * there (one that matches DIR itself or above lost to a later pattern). */
    if (asprintf(&slashed, "%s/", dirpath) < 0) {
        slashed = NULL;
        return chrun_err_sys(err, ENOMEM, "dockerignore");
    }
    *ret_descend = false;
    for (size_t i = 0; i < ign->n && !*ret_descend; i++)
        if (ign->pats[i].exclusion)
            *ret_descend = run(&ign->pats[i], slashed, false, true, sets, sets + ign->max_tok + 1);
    return 0;
}

const char *chrun_dockerignore_source(const struct chrun_dockerignore *ign)
{
    return ign ? ign->source : "";
}

size_t chrun_dockerignore_count(const struct chrun_dockerignore *ign)
{
    return ign ? ign->n : 0;
}

const char *chrun_dockerignore_pattern(const struct chrun_dockerignore *ign, size_t i)
{
    return (ign && i < ign->n) ? ign->pats[i].text : NULL;
}
