#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "chrun/dockerignore.h"

#define ARRAY_SIZE_(a) (sizeof(a) / sizeof((a)[0]))

/* Parse TEXT; NULL (and a message) when it does not parse. */
static struct chrun_dockerignore *parse(const char *text)
{
    struct chrun_dockerignore *ign = NULL;
    struct chrun_err err = CHRUN_ERR_INIT;
    if (chrun_dockerignore_parse(text, strlen(text), ".dockerignore", &ign, &err) < 0) {
        fprintf(stderr, "# parse '%s': %s\n", text, err.msg);
        return NULL;
    }
    return ign;
}

/* 1: PATH ignored under TEXT, 0: kept, -1: error. */
static int ignored(const char *text, const char *path)
{
    struct chrun_dockerignore *ign = parse(text);
    struct chrun_err err = CHRUN_ERR_INIT;
    bool ig = false;
    int rc;
    if (ign == NULL)
        return -1;
    rc = chrun_dockerignore_match(ign, path, &ig, &err);
    chrun_dockerignore_free(ign);
    return rc < 0 ? -1 : ig;
}

static int descend(const char *text, const char *dir)
{
    struct chrun_dockerignore *ign = parse(text);
    struct chrun_err err = CHRUN_ERR_INIT;
    bool d = false;
    int rc;
    if (ign == NULL)
        return -1;
    rc = chrun_dockerignore_may_descend(ign, dir, &d, &err);
    chrun_dockerignore_free(ign);
    return rc < 0 ? -1 : d;
}

struct mcase {
    const char *pattern, *path;
    int want;
};

static void check_cases(const struct mcase *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int got = ignored(c[i].pattern, c[i].path);
        harness_checks++; /* one check a case, counted as CHECK counts it */
        if (got != c[i].want) {
            fprintf(stderr, "# pattern '%s' path '%s': got %d want %d\n", c[i].pattern,
                    c[i].path, got, c[i].want);
            harness_failed_checks++;
        }
    }
}

/* One pattern against one path, the behaviours moby's matcher tests pin
 * down (our own inputs). */
static void test_single_patterns(void)
{
    static const struct mcase c[] = {
        {"**", "file", 1},
        {"**", "dir/file", 1},
        {"**/", "dir/file", 1},
        {"**/**", "dir/file", 1},
        {"dir/**", "dir/file", 1},
        {"dir/**", "dir/dir2/file", 1},
        {"dir/**", "dir", 0},
        {"**/dir", "dir", 1},
        {"**/dir", "dir/file", 1},
        {"**/dir", "a/b/dir/file", 1},
        {"**/dir2/*", "dir/dir2/file", 1},
        {"**/dir2/**", "dir/dir2/dir3/file", 1},
        {"**file", "file", 1},
        {"**file", "dir/file", 1},
        {"**file", "dir/myfile", 1}, /* Docker: "**" + plain text is a suffix */
        {"**.go", "a/b/c.go", 1},
        {"**.go", "c.go", 1},
        {"**.go", "c.golang", 0},
        {"**/file", "dir/dir/file", 1},
        {"**/file", "dir/myfile", 0},
        {"**/file*", "dir/dir/file.txt", 1},
        {"**/file*txt", "dir/dir/file.txt", 1},
        {"**/file*.txt*", "dir/dir/file.txt", 1},
        {"**/**/*.txt", "dir/dir/file.txt", 1},
        {"**/**/*.txt2", "dir/dir/file.txt", 0},
        {"**/*.txt", "file.txt", 1},
        {"**/**/*.txt", "file.txt", 1},
        {"a**/*.txt", "a/file.txt", 1},
        {"a**/*.txt", "a/dir/file.txt", 1},
        {"a**/*.txt", "a/dir/dir/file.txt", 1},
        {"a**b", "ab", 1},
        {"a**b", "ax/b", 1},
        {"a**b", "axb", 0}, /* "**" in the middle: optional directories */
        {"a/*.txt", "a/dir/file.txt", 0},
        {"a/*.txt", "a/file.txt", 1},
        {"a/*.txt**", "a/file.txt", 1},
        {"a**", "abc", 1},
        {"a**", "a/b/c", 1},
        {"a[b-d]e", "ae", 0},
        {"a[b-d]e", "ace", 1},
        {"a[b-d]e", "aae", 0},
        {"a[^b-d]e", "aze", 1},
        {"a[^b-d]e", "ace", 0},
        {"a[bc]e", "abe", 1},
        {"a[\\]]e", "a]e", 1},
        {"a[\\-]e", "a-e", 1},
        {"a[!b]e", "a!e", 1}, /* '!' does not negate a class; '^' does */
        {".*", ".foo", 1},
        {".*", "foo", 0},
        {"abc.def", "abcdef", 0},
        {"abc.def", "abc.def", 1},
        {"abc.def", "abcZdef", 0},
        {"abc?def", "abcZdef", 1},
        {"abc?def", "abcdef", 0},
        {"abc?def", "abc/def", 0},
        {"a*b", "a/b", 0},
        {"a*b", "axxb", 1},
        {"a\\\\", "a\\", 1},
        {"a\\*b", "a*b", 1},
        {"a\\*b", "axb", 0},
        {"a\\?", "a?", 1},
        {"**/foo/bar", "foo/bar", 1},
        {"**/foo/bar", "dir/foo/bar", 1},
        {"**/foo/bar", "dir/dir2/foo/bar", 1},
        {"abc/**", "abc", 0},
        {"abc/**", "abc/def", 1},
        {"abc/**", "abc/def/ghi", 1},
        {"**/.foo", ".foo", 1},
        {"**/.foo", "bar.foo", 0},
        {"a(b)c/def", "a(b)c/def", 1},
        {"a(b)c/def", "a(b)c/xyz", 0},
        {"a.|)$(}+{bc", "a.|)$(}+{bc", 1},
        {"dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
         "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", 1},
        {"dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", 1},
        {"caf?", "caf\xc3\xa9", 1},                 /* '?' is one character, not one byte */
        {"[\xc3\xa0-\xc3\xbf]", "\xc3\xa9", 1},     /* ranges of characters */
        {"caf\xc3\xa9", "caf\xc3\xa9", 1},
        {"*", "a\xff" "b", 1},                      /* invalid UTF-8 in a path is fine */
        {"a\xff" "b", "a\xff" "b", 1},
        {"a?b", "a\xff" "b", 1},
    };
    check_cases(c, ARRAY_SIZE_(c));
}

/* A pattern matches a path when it matches one of its parent directories. */
static void test_parent_directories(void)
{
    static const struct mcase c[] = {
        {"dir", "dir", 1},
        {"dir", "dir/a/b/c", 1},
        {"dir", "other/dir", 0},
        {"*/dir", "x/dir/file", 1},
        {"d?r", "dir/file", 1},
        {"a/b", "a/b/c", 1},
        {"a/b", "a", 0},
        {"a/b", "a/bc", 0},
        {"node_modules", "node_modules/x/package.json", 1},
        {"**/node_modules", "pkg/node_modules/x/package.json", 1},
    };
    check_cases(c, ARRAY_SIZE_(c));
}

/* The examples of Docker's .dockerignore documentation. */
static void test_docker_doc_examples(void)
{
    static const struct mcase c[] = {
        {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "somedir/temporary.txt", 1},
        {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "somedir/temp", 1},
        {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "somedir/subdir/temporary.txt", 1},
        {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "tempa", 1},
        {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "tempb", 1},
        {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "temp", 0},
        {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "tempab", 0},
        {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "temporary.txt", 0},
        {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "a/b/c/temp", 0},
        {"**/*.go", "main.go", 1},
        {"**/*.go", "cmd/x/main.go", 1},
        {"**/*.go", "main.golang", 0},
        {"*.md\n!README.md\n", "CHANGES.md", 1},
        {"*.md\n!README.md\n", "README.md", 0},
        {"*.md\n!README*.md\nREADME-secret.md\n", "README-secret.md", 1},
        {"*.md\n!README*.md\nREADME-secret.md\n", "README-public.md", 0},
        {"*.md\nREADME-secret.md\n!README*.md\n", "README-secret.md", 0},
        {"*.md\nREADME-secret.md\n!README*.md\n", "notes.md", 1},
        /* last match wins, also across exception chains */
        {"a\n!a\na\n", "a", 1},
        {"a\n!a\n", "a", 0},
        {"!a\na\n", "a", 1},
        {"*\n!keep\n", "keep", 0},
        {"*\n!keep\n", "other", 1},
        {"*\n!keep\n", "keep/inner", 0},
        {"dir\n!dir/keep\n", "dir/keep", 0},
        {"dir\n!dir/keep\n", "dir/keep/deeper", 0},
        {"dir\n!dir/keep\n", "dir/other", 1},
        {"dir\n!dir/keep\n", "dir", 1},
        {"dir\n!*/keep\n", "dir/keep", 0},
        {".git\nnode_modules\n.env\nbuild/\n", ".git/HEAD", 1},
        {".git\nnode_modules\n.env\nbuild/\n", "build/out.o", 1},
        {".git\nnode_modules\n.env\nbuild/\n", ".env", 1},
        {".git\nnode_modules\n.env\nbuild/\n", "src/.env", 0},
        {".git\nnode_modules\n.env\nbuild/\n", "src/main.c", 0},
    };
    check_cases(c, ARRAY_SIZE_(c));
}

/* Comments, blanks, trimming, cleaning, BOM, CRLF, as ignorefile.ReadAll. */
static void test_file_syntax(void)
{
    struct chrun_dockerignore *ign =
        parse("\xef\xbb\xbf" "test1\r\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n"
              "! /inverted/abs/path\n \t#notacomment \n./x/./y//z/..\n/foo/../../bar\n../up\n"
              "/\n!./k/\n\xc2\xa0nbsp\xc2\xa0\n\v\ftab\t\r\nlast-no-newline");
    static const char *want[] = {
        "test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path", "#notacomment",
        "x/y",   "bar",   "../up",       "/",        "!k",                 "nbsp",
        "tab",   "last-no-newline",
    };
    CHECK(ign != NULL);
    if (ign == NULL)
        return;
    CHECK_INT_EQ(chrun_dockerignore_count(ign), ARRAY_SIZE_(want));
    for (size_t i = 0; i < ARRAY_SIZE_(want) && i < chrun_dockerignore_count(ign); i++)
        CHECK_STR_EQ(chrun_dockerignore_pattern(ign, i), want[i]);
    CHECK(chrun_dockerignore_pattern(ign, 99) == NULL);
    CHECK_STR_EQ(chrun_dockerignore_source(ign), ".dockerignore");
    chrun_dockerignore_free(ign);

    /* a BOM only counts on the first line; "#" only as the first byte */
    CHECK_INT_EQ(ignored("a\n\xef\xbb\xbf" "b\n", "b"), 0);
    CHECK_INT_EQ(ignored("a\n\xef\xbb\xbf" "b\n", "\xef\xbb\xbf" "b"), 1);
    CHECK_INT_EQ(ignored(" #x", "#x"), 1);
    CHECK_INT_EQ(ignored("#x", "#x"), 0);
    CHECK_INT_EQ(ignored("/", "a"), 0);
    CHECK_INT_EQ(ignored("", "a"), 0);
    CHECK_INT_EQ(ignored("\n\n  \n", "a"), 0);
    CHECK_INT_EQ(ignored("./build/", "build/x"), 1);
    CHECK_INT_EQ(ignored("!!x\n", "!x"), 0);
}

/* A pattern Go's filepath.Match rejects is an error naming file and line. */
static void test_bad_patterns(void)
{
    static const char *bad[] = {
        "[",     "a[",    "[a",   "[]a]",  "[a-]", "[-a]", "[^]",  "a\\",
        "[\\",   "[a-",   "[a\\", "x/[ab", "!",    "! ",   "!/",   "[\xff]",
        "a\0b",
    };
    struct chrun_dockerignore *ign = NULL;
    struct chrun_err err = CHRUN_ERR_INIT;
    char text[64];
    for (size_t i = 0; i < ARRAY_SIZE_(bad); i++) {
        size_t n = i == ARRAY_SIZE_(bad) - 1 ? 3 : strlen(bad[i]);
        int len = snprintf(text, sizeof(text), "ok\n# c\n\n");
        memcpy(text + len, bad[i], n);
        ign = NULL;
        chrun_err_clear(&err);
        if (chrun_dockerignore_parse(text, (size_t) len + n, ".dockerignore", &ign, &err) != -1) {
            fprintf(stderr, "# '%s' parsed\n", bad[i]);
            harness_failed_checks++;
            chrun_dockerignore_free(ign);
            continue;
        }
        CHECK(ign == NULL);
        CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
        CHECK(strstr(err.msg, "'.dockerignore' line 4: ") == err.msg);
    }
    /* the message names the pattern and the problem */
    CHECK_INT_EQ(chrun_dockerignore_parse("a[bc\n", 5, "x.dockerignore", &ign, &err), -1);
    CHECK_STR_EQ(err.msg, "'x.dockerignore' line 1: bad pattern 'a[bc': unterminated '['");

    /* valid classes and escapes that look odd */
    CHECK_INT_EQ(ignored("[a-a]", "a"), 1);
    CHECK_INT_EQ(ignored("[\\-]", "-"), 1);
    CHECK_INT_EQ(ignored("]", "]"), 1);
    CHECK_INT_EQ(ignored("[*]", "*"), 1);
    CHECK_INT_EQ(ignored("[*]", "x"), 0);

    /* a line longer than Go's scanner takes */
    {
        size_t n = CHRUN_DOCKERIGNORE_LINE_MAX + 10;
        char *big = malloc(n);
        CHECK(big != NULL);
        if (big != NULL) {
            memset(big, 'a', n);
            CHECK_INT_EQ(chrun_dockerignore_parse(big, n, ".dockerignore", &ign, &err), -1);
            CHECK(strstr(err.msg, "line 1: longer than") != NULL);
            free(big);
        }
    }
}

/* Whether a walker must enter an ignored directory. */
static void test_may_descend(void)
{
    CHECK_INT_EQ(descend("", "dir"), 1);
    CHECK_INT_EQ(descend("other", "dir"), 1);
    CHECK_INT_EQ(descend("dir", "dir"), 0);
    CHECK_INT_EQ(descend("dir\n!dir/keep", "dir"), 1);
    CHECK_INT_EQ(descend("dir\n!dir/a/b/keep", "dir"), 1);
    CHECK_INT_EQ(descend("dir\n!dir/a/b/keep", "dir/a"), 1);
    CHECK_INT_EQ(descend("dir\n!dir/a/b/keep", "dir/c"), 0);
    CHECK_INT_EQ(descend("dir\n!*/keep", "dir"), 1);
    CHECK_INT_EQ(descend("dir\n!**/keep", "dir/x/y"), 1);
    CHECK_INT_EQ(descend("dir\n!other/keep", "dir"), 0);
    CHECK_INT_EQ(descend("dir\n!dir", "dir"), 1);    /* not ignored at all */
    CHECK_INT_EQ(descend("!dir/keep\ndir", "dir"), 1); /* superset: a walker then finds nothing */
    CHECK_INT_EQ(descend("*\n!*.c", "src"), 0); /* "*" never crosses '/' */
    CHECK_INT_EQ(descend("*\n!src/*.c", "src"), 1);
    CHECK_INT_EQ(descend("*\n!src/*.c", "doc"), 0);
    CHECK_INT_EQ(descend("dir/*\n!dir/keep", "dir"), 1);
    CHECK_INT_EQ(ignored("dir/*\n!dir/keep", "dir"), 0);
}

/* Bad paths are the caller's bug and are refused, not guessed at. */
static void test_bad_paths(void)
{
    static const char *bad[] = {"", "/a", "a/", "a//b", "./a", "a/./b", "a/../b", "..", "."};
    struct chrun_dockerignore *ign = parse("a");
    struct chrun_err err = CHRUN_ERR_INIT;
    bool b;
    for (size_t i = 0; i < ARRAY_SIZE_(bad); i++) {
        CHECK_INT_EQ(chrun_dockerignore_match(ign, bad[i], &b, &err), -1);
        CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
        CHECK_INT_EQ(chrun_dockerignore_may_descend(ign, bad[i], &b, &err), -1);
    }
    /* NULL matcher: nothing is ignored */
    CHECK_INT_EQ(chrun_dockerignore_match(NULL, "a", &b, &err), 0);
    CHECK(!b);
    CHECK_INT_EQ(chrun_dockerignore_may_descend(NULL, "a", &b, &err), 0);
    CHECK(b);
    CHECK_INT_EQ(chrun_dockerignore_count(NULL), 0);
    chrun_dockerignore_free(ign);
    chrun_dockerignore_free(NULL);
}

/* Many stars against a long path: the matcher is linear, not backtracking. */
static void test_hostile_pattern(void)
{
    char path[4000], pat[600];
    size_t o = 0;
    memset(path, 'a', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    for (int i = 0; i < 100; i++)
        o += (size_t) snprintf(pat + o, sizeof(pat) - o, "*a**");
    snprintf(pat + o, sizeof(pat) - o, "b");
    CHECK_INT_EQ(ignored(pat, path), 0);
    path[sizeof(path) - 2] = 'b';
    CHECK_INT_EQ(ignored(pat, path), 1);
}

/* The walk a build context needs, as include/chrun/dockerignore.h tells
 * callers to do it: kept entries are appended to OUT ("path\n"); an ignored
 * directory is entered only if may_descend says so, and listed only if
 * something below it was kept. Returns the number of entries kept. */
static int walk(const struct chrun_dockerignore *ign, const char *dir, const char *rel, char *out,
                size_t size)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort), kept = 0;
    for (int i = 0; i < n; i++) {
        char full[PATH_MAX], relpath[PATH_MAX];
        struct chrun_err err = CHRUN_ERR_INIT;
        struct stat st;
        bool ignored = false, descend = false;
        const char *name = names[i]->d_name;
        if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
            snprintf(full, sizeof(full), "%s/%s", dir, name);
            snprintf(relpath, sizeof(relpath), "%s%s%s", rel, *rel ? "/" : "", name);
            CHECK_INT_EQ(chrun_dockerignore_match(ign, relpath, &ignored, &err), 0);
            CHECK_INT_EQ(lstat(full, &st), 0);
            if (S_ISDIR(st.st_mode)) {
                size_t mark = strlen(out);
                CHECK_INT_EQ(chrun_dockerignore_may_descend(ign, relpath, &descend, &err), 0);
                CHECK(descend || ignored); /* a kept directory is always entered */
                if (!ignored) {
                    snprintf(out + strlen(out), size - strlen(out), "%s/\n", relpath);
                    kept += 1 + walk(ign, full, relpath, out, size);
                } else if (descend) {
                    int below = walk(ign, full, relpath, out, size);
                    if (below > 0) {
                        /* the parent of a kept path: insert it before its children */
                        char *tail = strdup(out + mark);
                        snprintf(out + mark, size - mark, "%s/\n%s", relpath, tail ? tail : "");
                        free(tail);
                        kept += 1 + below;
                    }
                }
            } else if (!ignored) {
                snprintf(out + strlen(out), size - strlen(out), "%s\n", relpath);
                kept++;
            }
        }
        free(names[i]);
    }
    free(names);
    return kept;
}

static void test_walk_context(void)
{
    struct chrun_dockerignore *ign =
        parse("# a typical project\n.git\nnode_modules\n**/*.log\nbuild/\n!build/keep\n.env\n"
              "docs/*\n!docs/README.md\n");
    char out[4096] = "";
    CHECK(ign != NULL);
    CHECK_INT_EQ(system("mkdir -p c/.git/objects c/node_modules/x c/src/sub c/build/keep/deep "
                        "c/build/drop c/docs/img && touch c/.git/HEAD c/.git/objects/o "
                        "c/node_modules/x/p.json c/src/main.c c/src/sub/debug.log c/src/.env "
                        "c/build/out.o c/build/keep/deep/k c/build/drop/d c/.env c/app.log "
                        "c/docs/README.md c/docs/img/i.png c/Dockerfile c/.dockerignore"),
                 0);
    walk(ign, "c", "", out, sizeof(out));
    CHECK_STR_EQ(out, ".dockerignore\n"
                      "Dockerfile\n"
                      "build/\n"
                      "build/keep/\n"
                      "build/keep/deep/\n"
                      "build/keep/deep/k\n"
                      "docs/\n"
                      "docs/README.md\n"
                      "src/\n"
                      "src/.env\n"
                      "src/main.c\n"
                      "src/sub/\n");
    chrun_dockerignore_free(ign);
}

static int dirfd_of(const char *path)
{
    return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static int load_count(int ctx, int dfdir, const char *name, const char **ret_source,
                      struct chrun_err *err)
{
    static char source[256];
    struct chrun_dockerignore *ign = NULL;
    int n;
    if (chrun_dockerignore_load(ctx, dfdir, name, &ign, err) < 0)
        return -1;
    n = (int) chrun_dockerignore_count(ign);
    snprintf(source, sizeof(source), "%s", chrun_dockerignore_source(ign));
    *ret_source = source;
    chrun_dockerignore_free(ign);
    return n;
}

static void test_load(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    const char *src = NULL;
    int ctx, df;
    CHECK_INT_EQ(system("mkdir -p ctx/sub df && echo outside >secret-patterns"), 0);
    ctx = dirfd_of("ctx");
    df = dirfd_of("df");
    CHECK(ctx >= 0 && df >= 0);

    /* none: an empty matcher */
    CHECK_INT_EQ(load_count(ctx, df, "Dockerfile", &src, &err), 0);
    CHECK_STR_EQ(src, "");

    CHECK_INT_EQ(spew("ctx/.dockerignore", "a\nb\n"), 0);
    CHECK_INT_EQ(load_count(ctx, -1, NULL, &src, &err), 2);
    CHECK_STR_EQ(src, ".dockerignore");
    CHECK_INT_EQ(load_count(ctx, df, "Dockerfile", &src, &err), 2);

    /* <Dockerfile name>.dockerignore beside the Dockerfile wins */
    CHECK_INT_EQ(spew("df/app.Dockerfile.dockerignore", "x\n"), 0);
    CHECK_INT_EQ(load_count(ctx, df, "app.Dockerfile", &src, &err), 1);
    CHECK_STR_EQ(src, "app.Dockerfile.dockerignore");
    CHECK_INT_EQ(load_count(ctx, df, "sub/dir/app.Dockerfile", &src, &err), 1);
    CHECK_INT_EQ(load_count(ctx, df, "Dockerfile", &src, &err), 2);

    /* a symlink resolves inside its own directory, never out of it */
    CHECK_INT_EQ(system("rm ctx/.dockerignore && ln -s ../secret-patterns ctx/.dockerignore"), 0);
    CHECK_INT_EQ(load_count(ctx, -1, NULL, &src, &err), 0);
    CHECK_INT_EQ(system("rm ctx/.dockerignore && ln -s /sub/ign ctx/.dockerignore && "
                        "printf 'p\\nq\\nr\\n' >ctx/sub/ign"),
                 0);
    CHECK_INT_EQ(load_count(ctx, -1, NULL, &src, &err), 3);

    /* not a regular file: refused, never opened for reading */
    CHECK_INT_EQ(system("rm ctx/.dockerignore && mkfifo ctx/.dockerignore"), 0);
    CHECK_INT_EQ(load_count(ctx, -1, NULL, &src, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(strstr(err.msg, "'.dockerignore'") != NULL);

    /* a bad pattern names the file that was read and the line */
    CHECK_INT_EQ(system("rm ctx/.dockerignore"), 0);
    CHECK_INT_EQ(spew("df/app.Dockerfile.dockerignore", "ok\n\n[oops\n"), 0);
    CHECK_INT_EQ(load_count(ctx, df, "app.Dockerfile", &src, &err), -1);
    CHECK(strstr(err.msg, "'app.Dockerfile.dockerignore' line 3: bad pattern '[oops'") != NULL);

    /* over the cap */
    {
        FILE *f = fopen("ctx/.dockerignore", "w");
        CHECK(f != NULL);
        for (int i = 0; f != NULL && i < CHRUN_DOCKERIGNORE_MAX / 8 + 1; i++)
            fputs("pattern\n", f);
        if (f != NULL)
            fclose(f);
        CHECK_INT_EQ(load_count(ctx, -1, NULL, &src, &err), -1);
        CHECK_INT_EQ(err.errnum, EFBIG);
    }
    close(ctx);
    close(df);
}

int main(void)
{
    RUN_TEST(test_single_patterns);
    RUN_TEST(test_parent_directories);
    RUN_TEST(test_docker_doc_examples);
    RUN_TEST(test_file_syntax);
    RUN_TEST(test_bad_patterns);
    RUN_TEST(test_may_descend);
    RUN_TEST(test_bad_paths);
    RUN_TEST(test_hostile_pattern);
    RUN_TEST(test_walk_context);
    RUN_TEST(test_load);
    return harness_done();
}
