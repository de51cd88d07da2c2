/* Unit tests for chrun-build's pure logic: the Dockerfile parser and word
 * rules (src/dockerfile.c) and the rootfs change set (src/changeset.c). */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>

#include "chrun/changeset.h"
#include "chrun/dockerfile.h"
#include "harness.h"

static const char *lookup_a(void *data, const char *name);

static int parse(struct chrun_dockerfile *df, const char *text, struct chrun_err *err)
{
    return chrun_dockerfile_parse(df, "Dockerfile", text, strlen(text), err);
}

static void test_parse_basic(void)
{
    struct chrun_dockerfile df;
    struct chrun_err err = CHRUN_ERR_INIT;
    const char *text = "# syntax=docker/dockerfile:1\n"
                       "ARG BASE=busybox\n"
                       "from $BASE\n"
                       "\n"
                       "# a comment\n"
                       "RUN echo a \\\n"
                       "  # comment inside a continuation\n"
                       "    && echo b\n"
                       "CMD [\"/bin/sh\", \"-c\", \"echo hi\"]\n"
                       "ENTRYPOINT echo x\n"
                       "COPY --chown=1:2 a b /dst/\n"
                       "ADD [\"x y\", \"/z\"]\n"
                       "RUN [not json\n"
                       "ENV A=1\tB=2\n";
    CHECK_INT_EQ(parse(&df, text, &err), 0);
    CHECK_INT_EQ(df.n_instrs, 9);
    if (df.n_instrs == 9) {
        CHECK_INT_EQ(df.instrs[0].kind, CHRUN_DF_ARG);
        CHECK_INT_EQ(df.instrs[0].line, 2);
        CHECK_INT_EQ(df.instrs[1].kind, CHRUN_DF_FROM);
        CHECK_STR_EQ(df.instrs[1].args, "$BASE");
        CHECK_INT_EQ(df.instrs[2].kind, CHRUN_DF_RUN);
        CHECK_INT_EQ(df.instrs[2].line, 6);
        CHECK_STR_EQ(df.instrs[2].args, "echo a     && echo b");
        CHECK(df.instrs[2].exec == NULL);
        CHECK_INT_EQ(df.instrs[3].kind, CHRUN_DF_CMD);
        CHECK_INT_EQ(df.instrs[3].n_exec, 3);
        CHECK_STR_EQ(df.instrs[3].exec[2], "echo hi");
        CHECK(df.instrs[4].exec == NULL);
        CHECK_STR_EQ(chrun_df_instr_flag(&df.instrs[5], "chown"), "1:2");
        CHECK_STR_EQ(df.instrs[5].args, "a b /dst/");
        CHECK_INT_EQ(df.instrs[6].n_exec, 2);
        CHECK_STR_EQ(df.instrs[6].exec[0], "x y");
        CHECK(df.instrs[7].exec == NULL); /* invalid JSON: shell form, as Docker */
        CHECK_STR_EQ(df.instrs[8].args, "A=1\tB=2");
        CHECK_STR_EQ(df.instrs[8].keyword, "ENV");
    }
    chrun_dockerfile_release(&df);
}

/* Every refusal names the file and the line, and the reason. */
static void expect_refused(const char *text, const char *want)
{
    struct chrun_dockerfile df;
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(parse(&df, text, &err), -1);
    if (strstr(err.msg, want) == NULL)
        fprintf(stderr, "# '%s' lacks '%s'\n", err.msg, want);
    CHECK(strstr(err.msg, want) != NULL);
    chrun_dockerfile_release(&df);
}

static void test_parse_refusals(void)
{
    expect_refused("FROM a AS 1b\n", "'Dockerfile' line 1: FROM ... AS '1b': not a stage name");
    expect_refused("FROM a\n\nCOPY --frm=x a b\n", "line 3: COPY flag '--frm' is not supported");
    expect_refused("FROM a\nRUN --mount=type=cache,target=/x --security=insecure true\n",
                   "line 2: RUN flag '--security' is not supported");
    expect_refused("FROM a\nRUN --network=none --network=host true\n",
                   "RUN flag '--network' given twice");
    expect_refused("FROM a\nCOPY --chmod a b\n", "COPY flag '--chmod' needs a value");
    expect_refused("FROM a\nADD --from=x a b\n", "ADD flag '--from' is not supported");
    expect_refused("FROM a\nHEALTHCHECK true\n", "line 2: HEALTHCHECK wants CMD command or NONE");
    expect_refused("FROM a\nHEALTHCHECK --interval=5s NONE\n", "HEALTHCHECK NONE takes no options");
    expect_refused("FROM a\nONBUILD FROM x\n", "ONBUILD: FROM is not allowed as an ONBUILD trigger");
    expect_refused("FROM a\nONBUILD ONBUILD RUN x\n", "ONBUILD is not allowed");
    expect_refused("FROM a\nSHELL /bin/bash -c\n", "SHELL wants the JSON form");
    expect_refused("FROM a\nFROBNICATE x\n", "line 2: unknown instruction 'FROBNICATE'");
    expect_refused("RUN true\n", "line 1: RUN before FROM");
    expect_refused("# just a comment\n", "has no FROM instruction");
    expect_refused("FROM a\nRUN\n", "line 2: RUN needs arguments");
    expect_refused("FROM a b\n", "FROM takes an image and optionally AS NAME");
    expect_refused("# escape=x\nFROM a\n", "line 1: parser directive escape=x");
    expect_refused("FROM a\nCMD [1, 2]\n", "not a string");
    expect_refused("FROM a\nRUN <<EOF\necho hi\nEOFX\n",
                   "'Dockerfile' line 2: heredoc 'EOF' has no terminating line 'EOF'");
    expect_refused("FROM a\nRUN cat <<A <<B\na\nA\nb\n", "line 2: heredoc 'B' has no");
    expect_refused("FROM a\nRUN cat <<\"EOF\n", "heredoc delimiter \"EOF is not closed");
}

static void test_parse_instructions(void)
{
    struct chrun_dockerfile df;
    struct chrun_err err = CHRUN_ERR_INIT;
    const char *text = "ARG V=1\n"
                       "FROM --platform=$BUILDPLATFORM img:$V As Build-1\n"
                       "RUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t "
                       "--network=none make\n"
                       "FROM scratch\n"
                       "COPY --from=build-1 --chmod=0755 --chown=1:1 --link /a /b\n"
                       "ADD --checksum=sha256:00 --chown=2 --chmod=600 x /y\n"
                       "SHELL [\"/bin/bash\", \"-c\"]\n"
                       "HEALTHCHECK --interval=5m --timeout=3s --start-period=1s "
                       "--start-interval=2s --retries=4 CMD curl -f http://x/\n"
                       "HEALTHCHECK CMD [\"/bin/check\", \"a\"]\n"
                       "HEALTHCHECK NONE\n"
                       "STOPSIGNAL SIGKILL\n"
                       "ONBUILD RUN echo on build\n"
                       "MAINTAINER Jane <j@example.com>\n";
    CHECK_INT_EQ(parse(&df, text, &err), 0);
    CHECK_INT_EQ(df.n_instrs, 13);
    if (df.n_instrs == 13) {
        const struct chrun_df_instr *in = df.instrs;
        CHECK_STR_EQ(in[1].args, "img:$V");
        CHECK_STR_EQ(in[1].stage, "build-1");
        CHECK_STR_EQ(chrun_df_instr_flag(&in[1], "platform"), "$BUILDPLATFORM");
        CHECK_INT_EQ(in[2].n_flags, 3);
        CHECK_STR_EQ(in[2].flags[0].name, "mount");
        CHECK_STR_EQ(in[2].flags[1].value, "type=tmpfs,target=/t");
        CHECK_STR_EQ(chrun_df_instr_flag(&in[2], "network"), "none");
        CHECK_STR_EQ(in[2].args, "make");
        CHECK(in[3].stage == NULL);
        CHECK_STR_EQ(chrun_df_instr_flag(&in[4], "from"), "build-1");
        CHECK_STR_EQ(chrun_df_instr_flag(&in[4], "chmod"), "0755");
        CHECK_STR_EQ(chrun_df_instr_flag(&in[4], "link"), "");
        CHECK_STR_EQ(chrun_df_instr_flag(&in[5], "checksum"), "sha256:00");
        CHECK_INT_EQ(in[6].kind, CHRUN_DF_SHELL);
        CHECK_INT_EQ(in[6].n_exec, 2);
        CHECK_INT_EQ(in[7].kind, CHRUN_DF_HEALTHCHECK);
        CHECK_STR_EQ(in[7].args, "curl -f http://x/");
        CHECK(in[7].exec == NULL);
        CHECK_STR_EQ(chrun_df_instr_flag(&in[7], "start-interval"), "2s");
        CHECK_INT_EQ(in[8].n_exec, 2);
        CHECK(in[9].none);
        CHECK_INT_EQ(in[10].kind, CHRUN_DF_STOPSIGNAL);
        CHECK_STR_EQ(in[11].args, "RUN echo on build");
        CHECK_STR_EQ(in[12].args, "Jane <j@example.com>");
    }
    chrun_dockerfile_release(&df);
}

/* make fuzz finding: a heredoc whose first body line is empty appended
 * zero bytes to a buffer not yet allocated (memcpy to NULL + 0, UBSan).
 * The reduced input, and the fuzzer's own. */
static void test_heredoc_empty_first_line(void)
{
    static const char found[] =
        "FROM busybox\nENV ,A=1 B=\"tw %=\"t \"Cw=o$A\nRUN ecoFROM busy     &&\035 \025e<<BB-  "
        "&<$A \\\n    &&$echo $\025<<<<BB-  cho\n\n\n\n\n\nASE}\nARG V}]\n";
    static const char reduced[] = "FROM a\nRUN cat <<EOF\n\nbody\nEOF\n";
    struct chrun_dockerfile df;
    struct chrun_err err = CHRUN_ERR_INIT;
    int rc = chrun_dockerfile_parse(&df, "Dockerfile", found, sizeof(found) - 1, &err);
    CHECK(rc == 0 || rc == -1);
    chrun_dockerfile_release(&df); /* after a failure too */
    CHECK_INT_EQ(chrun_dockerfile_parse(&df, "Dockerfile", reduced, sizeof(reduced) - 1, &err), 0);
    CHECK_INT_EQ(df.n_instrs, 2);
    CHECK(df.n_instrs == 2 && df.instrs[1].n_heredocs == 1);
    if (df.n_instrs == 2 && df.instrs[1].n_heredocs == 1)
        CHECK_STR_EQ(df.instrs[1].heredocs[0].body, "\nbody\n");
    chrun_dockerfile_release(&df);
}

static void test_parse_heredocs(void)
{
    struct chrun_dockerfile df;
    struct chrun_err err = CHRUN_ERR_INIT;
    const char *text = "# syntax=docker/dockerfile:1.4\n"
                       "FROM a\n"
                       "RUN <<EOF\n"
                       "set -e\n"
                       "# not a comment of the Dockerfile\n"
                       "echo $HOME \\\n"
                       "EOF\n"
                       "RUN <<-\"END\" cat >/x && cat <<'B' >/y\n"
                       "\t\tindented $X\n"
                       "\tEND\n"
                       "b\n"
                       "B\n"
                       "COPY <<f1 <<-f2 /dest/\n"
                       "one\n"
                       "f1\n"
                       "\ttwo\n"
                       "\tf2\n"
                       "RUN echo done\n";
    CHECK_INT_EQ(parse(&df, text, &err), 0);
    if (err.msg[0])
        fprintf(stderr, "# %s\n", err.msg);
    CHECK_INT_EQ(df.n_instrs, 5);
    if (df.n_instrs == 5) {
        const struct chrun_df_instr *in = df.instrs;
        CHECK_INT_EQ(in[1].line, 3);
        CHECK_INT_EQ(in[1].n_heredocs, 1);
        CHECK_STR_EQ(in[1].heredocs[0].body,
                     "set -e\n# not a comment of the Dockerfile\necho $HOME \\\n");
        CHECK_STR_EQ(in[1].script, in[1].heredocs[0].body);
        CHECK_INT_EQ(in[2].line, 8);
        CHECK_INT_EQ(in[2].n_heredocs, 2);
        CHECK_STR_EQ(in[2].heredocs[0].name, "END");
        CHECK(!in[2].heredocs[0].expand);
        CHECK(in[2].heredocs[0].strip);
        CHECK_STR_EQ(in[2].heredocs[0].body, "indented $X\n");
        CHECK_STR_EQ(in[2].heredocs[1].body, "b\n");
        CHECK_STR_EQ(in[2].script, "<<-\"END\" cat >/x && cat <<'B' >/y\n"
                                   "\t\tindented $X\n\tEND\nb\nB");
        CHECK_INT_EQ(in[3].kind, CHRUN_DF_COPY);
        CHECK_INT_EQ(in[3].n_heredocs, 2);
        CHECK(in[3].heredocs[0].expand);
        CHECK_STR_EQ(in[3].heredocs[0].body, "one\n");
        CHECK_STR_EQ(in[3].heredocs[1].body, "two\n");
        CHECK(in[3].script == NULL);
        CHECK_INT_EQ(in[4].line, 18);
    }
    chrun_dockerfile_release(&df);
}

static void test_parse_escape_and_triggers(void)
{
    struct chrun_dockerfile df;
    struct chrun_err err = CHRUN_ERR_INIT;
    char **w = NULL, *raw = NULL;
    size_t n = 0;
    const char *text = "# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo x\n";
    CHECK_INT_EQ(parse(&df, text, &err), 0);
    CHECK_INT_EQ(df.escape, '`');
    if (df.n_instrs == 2)
        CHECK_STR_EQ(df.instrs[1].args, "dir c:\\   && echo x");
    chrun_dockerfile_release(&df);
    CHECK_INT_EQ(chrun_dockerfile_words_escape("a` b c\\d", '`', NULL, NULL, true, &w, &n, &err),
                 0);
    CHECK_INT_EQ(n, 2);
    if (n == 2) {
        CHECK_STR_EQ(w[0], "a b");
        CHECK_STR_EQ(w[1], "c\\d");
    }
    chrun_dockerfile_words_free(w);
    CHECK_INT_EQ(chrun_dockerfile_parse_triggers(&df, "t", "RUN a\nCOPY b c\n", 15, &err), 0);
    CHECK_INT_EQ(df.n_instrs, 2);
    chrun_dockerfile_release(&df);
    CHECK_INT_EQ(chrun_dockerfile_parse_triggers(&df, "t", "FROM x\n", 7, &err), -1);
    chrun_dockerfile_release(&df);
    CHECK_INT_EQ(chrun_dockerfile_expand_raw("'$A' \"\\x\" ${A}", lookup_a, NULL, &raw, &err), 0);
    CHECK_STR_EQ(raw, "'alpha' \"\\x\" alpha");
    free(raw);
}

static const char *lookup_a(void *data, const char *name)
{
    (void) data;
    return strcmp(name, "A") == 0 ? "alpha" : NULL;
}

static const char *lookup(void *data, const char *name)
{
    (void) data;
    if (strcmp(name, "A") == 0)
        return "alpha";
    if (strcmp(name, "SP") == 0)
        return "x  y";
    if (strcmp(name, "EMPTY") == 0)
        return "";
    return NULL;
}

/* Expand S with lookup; the words joined with '|'. */
static char *expand(const char *s, bool split)
{
    static char out[2048];
    struct chrun_err err = CHRUN_ERR_INIT;
    char **w = NULL;
    size_t n = 0;
    if (chrun_dockerfile_words(s, lookup, NULL, split, &w, &n, &err) < 0) {
        snprintf(out, sizeof(out), "ERR:%s", err.msg);
        return out;
    }
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", i ? "|" : "", w[i]);
    CHECK(w[n] == NULL);
    chrun_dockerfile_words_free(w);
    return out;
}

static void test_words(void)
{
    CHECK_STR_EQ(expand("$A ${A} x$A.y", true), "alpha|alpha|xalpha.y");
    CHECK_STR_EQ(expand("${NOPE:-def} ${A:-def} ${EMPTY:-e} ${A:+set} [${NOPE:+set}]", true),
                 "def|alpha|e|set|[]");
    CHECK_STR_EQ(expand("${NOPE:-$A/x}", true), "alpha/x");
    CHECK_STR_EQ(expand("'$A' \"$A b\" \\$A a\\ b", true), "$A|alpha b|$A|a b");
    CHECK_STR_EQ(expand("$SP \"$SP\"", true), "x|y|x  y");
    CHECK_STR_EQ(expand("  a   b  ", false), "  a   b  ");
    CHECK_STR_EQ(expand("/dir/$A", false), "/dir/alpha");
    CHECK_STR_EQ(expand("\"\" x", true), "|x");
    CHECK_STR_EQ(expand("$ $1 50$", true), "$|$1|50$");
    CHECK_STR_EQ(expand("\"a\\\"b\\n\"", true), "a\"b\\n");
    CHECK_STR_EQ(expand("", true), "");
    CHECK(strstr(expand("${A/x/y}", true), "ERR:substitution '${A/x/y}' is not supported") != NULL);
    CHECK_STR_EQ(expand("${A#al} ${A#*l} ${A##*a} ${A%a} ${A%%h*} ${A%x}", true),
                 "pha|pha|alph|alp|alpha");
    CHECK_STR_EQ(expand("${EMPTY-d} ${EMPTY:-d} ${NOPE-d} ${EMPTY+s} ${EMPTY:+s}x", true),
                 "d|d|s|x");
    CHECK_STR_EQ(expand("${A?} ${A:?must}", true), "alpha|alpha");
    CHECK(strstr(expand("${NOPE?is required}", true), "ERR:NOPE: is required") != NULL);
    CHECK(strstr(expand("${EMPTY:?}", true), "ERR:EMPTY: parameter not set or empty") != NULL);
    CHECK(strstr(expand("${A", true), "ERR:") != NULL);
    CHECK(strstr(expand("${A:-x", true), "missing '}'") != NULL);
    CHECK(strstr(expand("'abc", true), "unterminated single quote") != NULL);
    CHECK(strstr(expand("\"abc", true), "unterminated double quote") != NULL);
    /* nesting is bounded: a deep ${X:-${X:-...}} is an error, not a stack overflow */
    {
        enum { DEPTH = 100000 };
        char *deep = malloc(DEPTH * 5 + 1), *p = deep;
        CHECK(deep != NULL);
        for (int i = 0; deep != NULL && i < DEPTH; i++, p += 5)
            memcpy(p, "${X:-", 5);
        if (deep != NULL) {
            *p = '\0';
            CHECK(strstr(expand(deep, true), "nested deeper than") != NULL);
        }
        free(deep);
        CHECK_STR_EQ(expand("${N:-${N:-${N:-${A}}}}", true), "alpha");
    }
}

static void test_pairs(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    char *w1[] = {"A=1", "B=x y", "C=", NULL};
    char *w2[] = {"K", "some", "value", NULL};
    char *w3[] = {"N", "M=d", NULL};
    char *w4[] = {"=x", NULL};
    char *w5[] = {"A=1", "B", NULL};
    char **k = NULL, **v = NULL;
    size_t n = 0;
    CHECK_INT_EQ(chrun_dockerfile_pairs(CHRUN_DF_ENV, w1, 3, &k, &v, &n, &err), 0);
    CHECK_INT_EQ(n, 3);
    CHECK_STR_EQ(k[1], "B");
    CHECK_STR_EQ(v[1], "x y");
    CHECK_STR_EQ(v[2], "");
    chrun_dockerfile_pairs_free(k, v, n);
    CHECK_INT_EQ(chrun_dockerfile_pairs(CHRUN_DF_ENV, w2, 3, &k, &v, &n, &err), 0);
    CHECK_INT_EQ(n, 1);
    CHECK_STR_EQ(k[0], "K");
    CHECK_STR_EQ(v[0], "some value");
    chrun_dockerfile_pairs_free(k, v, n);
    CHECK_INT_EQ(chrun_dockerfile_pairs(CHRUN_DF_ARG, w3, 2, &k, &v, &n, &err), 0);
    CHECK(v[0] == NULL);
    CHECK_STR_EQ(v[1], "d");
    chrun_dockerfile_pairs_free(k, v, n);
    CHECK_INT_EQ(chrun_dockerfile_pairs(CHRUN_DF_LABEL, w4, 1, &k, &v, &n, &err), -1);
    CHECK(strstr(err.msg, "empty name") != NULL);
    CHECK_INT_EQ(chrun_dockerfile_pairs(CHRUN_DF_ENV, w5, 2, &k, &v, &n, &err), -1);
    CHECK(strstr(err.msg, "'B' is not KEY=VALUE") != NULL);
    CHECK_INT_EQ(chrun_dockerfile_pairs(CHRUN_DF_ENV, w2, 1, &k, &v, &n, &err), -1);
    CHECK(strstr(err.msg, "has no value") != NULL);
}

static int collect(void *data, enum chrun_change_kind kind, const char *path,
                   struct chrun_err *err)
{
    char *out = data;
    (void) err;
    snprintf(out + strlen(out), 4096 - strlen(out), "%c %s\n", (char) kind, path);
    return 0;
}

/* The entry names of the gzip tar blob D in store ST, one per line, with
 * "->target" for hardlinks. */
static void list_layer(struct chrun_store *st, const struct chrun_digest *d, char *out)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    int fd = chrun_store_open_blob(st, d, NULL);
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    CHECK_INT_EQ(archive_read_open_fd(a, fd, 4096), ARCHIVE_OK);
    out[0] = '\0';
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *hl = archive_entry_hardlink(e);
        snprintf(out + strlen(out), 4096 - strlen(out), "%s%s%s %lld\n",
                 archive_entry_pathname(e), hl ? "->" : "", hl ? hl : "",
                 (long long) archive_entry_mtime(e));
    }
    archive_read_free(a);
    close(fd);
}

static void test_changeset(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store *st = chrun_store_open("store", CHRUN_STORE_CREATE, &err);
    struct chrun_snapshot *before, *after;
    struct chrun_changeset_layer layer, again;
    char changes[4096] = "", listing[4096];
    int rootfd;
    CHECK(st != NULL);
    CHECK_INT_EQ(system("mkdir -p root/etc root/gone/sub root/dir root/keep root/a-b && "
                        "echo x >root/etc/passwd && echo y >root/gone/sub/f && "
                        "echo z >root/dir/f && echo k >root/keep/k && touch root/a-b/x"),
                 0);
    rootfd = open("root", O_PATH | O_DIRECTORY | O_CLOEXEC);
    before = chrun_snapshot_take(rootfd, &err);
    CHECK(before != NULL);
    CHECK_INT_EQ(system("sleep 0.01; echo changed >root/etc/passwd && rm -r root/gone && "
                        "rm -r root/dir && echo file >root/dir && mkdir root/new && "
                        "echo n >root/new/n && ln root/new/n root/new/m && "
                        "chmod 700 root/keep"),
                 0);
    after = chrun_snapshot_take(rootfd, &err);
    CHECK(after != NULL);
    CHECK_INT_EQ(chrun_changeset_diff(before, after, collect, changes, &err), 0);
    CHECK_STR_EQ(changes, "M dir\nM etc/passwd\nD gone\nM keep\nA new\nA new/m\nA new/n\n");
    CHECK_INT_EQ(chrun_changeset_write_layer(st, rootfd, before, after, 1000, &layer, &err), 0);
    CHECK(!layer.empty);
    CHECK(chrun_store_has_blob(st, &layer.digest));
    list_layer(st, &layer.digest, listing);
    CHECK_STR_EQ(listing, ".wh.gone 1000\ndir 1000\netc/ 1000\netc/passwd 1000\nkeep/ 1000\n"
                          "new/ 1000\nnew/m 1000\nnew/n->new/m 1000\n");
    /* the same change set gives the same bytes */
    CHECK_INT_EQ(chrun_changeset_write_layer(st, rootfd, before, after, 1000, &again, &err), 0);
    CHECK_STR_EQ(again.digest.str, layer.digest.str);
    CHECK_STR_EQ(again.diff_id.str, layer.diff_id.str);
    /* nothing changed: no layer */
    CHECK_INT_EQ(chrun_changeset_write_layer(st, rootfd, after, after, -1, &again, &err), 0);
    CHECK(again.empty);
    chrun_snapshot_free(before);
    chrun_snapshot_free(after);
    close(rootfd);
    chrun_store_close(st);
}

int main(void)
{
    RUN_TEST(test_parse_basic);
    RUN_TEST(test_parse_refusals);
    RUN_TEST(test_parse_instructions);
    RUN_TEST(test_parse_heredocs);
    RUN_TEST(test_heredoc_empty_first_line);
    RUN_TEST(test_parse_escape_and_triggers);
    RUN_TEST(test_words);
    RUN_TEST(test_pairs);
    RUN_TEST(test_changeset);
    return harness_done();
}
