#!/bin/bash
test_description='chrun-build: -f -, a context tar or Dockerfile on stdin, --iidfile, --label, --platform, --secret syntax'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-fixtures.sh

export SOURCE_DATE_EPOCH=1700000000

test_expect_success 'setup: the busybox fixture and a context' '
    fixtures_ensure &&
    chrun-load -q "$FIXTURES/basic.oci.tar" >/dev/null &&
    mkdir ctx && echo "in the context" >ctx/f &&
    printf "FROM fixture/basic:1\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n" >ctx/Dockerfile
'

test_expect_success '-f - reads the Dockerfile from stdin; --iidfile and --label' '
    chrun-build -q -f - --iidfile iid --label org.example.a=1 --label b="two words" ctx <ctx/Dockerfile >digest &&
    test_cmp digest iid &&
    chrun-inspect "$(cat digest)" | jq -c .Config.config.Labels >got &&
    echo "{\"b\":\"two words\",\"org.example.a\":\"1\",\"org.example.fixture\":\"basic\"}" >expect &&
    test_cmp expect got &&
    b=$(chrun-unpack "$(cat digest)") && chrun-exec "$b" >out && echo "in the context" >expect &&
    test_cmp expect out
'

test_expect_success 'CONTEXT -: a gzip tar on stdin; same digest as the directory' '
    chrun-build -q ctx >dir-digest &&
    tar -C ctx -czf ctx.tar.gz . &&
    chrun-build -q - <ctx.tar.gz >tar-digest &&
    test_cmp dir-digest tar-digest &&
    tar -C ctx -cf - . | zstd -q >ctx.tar.zst &&
    chrun-build -q - <ctx.tar.zst >zst-digest && test_cmp dir-digest zst-digest &&
    b=$(chrun-unpack "$(cat tar-digest)") && chrun-exec "$b" >out && echo "in the context" >expect &&
    test_cmp expect out &&
    test -z "$(ls -A "$CHRUN_ROOT/tmp")"
'

test_expect_success 'CONTEXT - with -f: the Dockerfile is a file of the tar' '
    mkdir -p tctx/sub && echo "tar file" >tctx/f &&
    printf "FROM fixture/basic:1\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n" >tctx/sub/Build.df &&
    tar -C tctx -cf tctx.tar . &&
    chrun-build -q -f sub/Build.df - <tctx.tar >digest &&
    b=$(chrun-unpack "$(cat digest)") && chrun-exec "$b" >out && echo "tar file" >expect &&
    test_cmp expect out &&
    test_expect_code 1 chrun-build -q -f nosuch.df - <tctx.tar 2>err &&
    test_one_error_line chrun-build err "nosuch.df"
'

test_expect_success 'CONTEXT -: a FIFO named Dockerfile in the tar is refused, never opened' '
    mkdir fctx && mkfifo fctx/Dockerfile && tar -C fctx -cf fctx.tar . &&
    store_snapshot >before &&
    test_expect_code 1 timeout 60 chrun-build -q - <fctx.tar >out 2>err &&
    test_one_error_line chrun-build err "Dockerfile" && grep -q "not a regular file" err &&
    test ! -s out && store_snapshot >after && test_cmp before after
'

test_expect_success 'CONTEXT -: a Dockerfile on stdin builds with an empty context' '
    printf "FROM fixture/basic:1\nRUN echo from stdin >/s\nCMD [\"cat\", \"/s\"]\n" | chrun-build -q - >digest &&
    b=$(chrun-unpack "$(cat digest)") && chrun-exec "$b" >out && echo "from stdin" >expect &&
    test_cmp expect out
'

test_expect_success '--platform: the host platform is accepted, another is a usage error' '
    host=$(chrun-inspect fixture/basic:1 | jq -r "\"\(.Config.os)/\(.Config.architecture)\"") &&
    chrun-build -q --platform "$host" ctx >/dev/null &&
    test_expect_code 2 chrun-build -q --platform linux/s390x ctx 2>err &&
    grep -q "^chrun-build: error: --platform .linux/s390x.: chrun-build builds for the host" err &&
    mkdir fp && printf "FROM --platform=linux/s390x fixture/basic:1\n" >fp/Dockerfile &&
    test_expect_code 1 chrun-build -q fp 2>err &&
    test_one_error_line chrun-build err "line 1: FROM --platform: platform .linux/s390x."
'

test_expect_success 'usage errors: --secret, --label, --network, -f - with CONTEXT -' '
    test_expect_code 2 chrun-build --secret token ctx 2>err && grep -q "want id=ID,src=FILE" err &&
    test_expect_code 2 chrun-build --label nokey ctx 2>err && grep -q "want KEY=VALUE" err &&
    test_expect_code 2 chrun-build --network bridge ctx 2>err && grep -q "want default, host or none" err &&
    test_expect_code 2 chrun-build -f - - </dev/null 2>err && grep -q "cannot both read stdin" err
'

test_done
