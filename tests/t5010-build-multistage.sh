#!/bin/bash
test_description='chrun-build: multi-stage builds, ARG scoping, --target, reproducible digests, a cache hit that unpacks nothing'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-fixtures.sh

DATA=$REPO_ROOT/testdata/build

test_expect_success 'setup: the busybox fixture and a context' '
    fixtures_ensure &&
    chrun-load -q "$FIXTURES/basic.oci.tar" >/dev/null &&
    mkdir ms && cp "$DATA/multistage.Dockerfile" ms/Dockerfile
'

test_expect_success 'multi-stage: only the needed stages run; ARGs of another stage are not in scope' '
    chrun-build -t ms:1 ms >digest 2>err &&
    ! grep -q "this stage is not needed" err &&
    b=$(chrun-unpack ms:1) &&
    chrun-exec "$b" >out &&
    printf "built latest\nbuilt latest\n/w/latest\ntag= notset=empty\n" >expect &&
    test_cmp expect out &&
    test -z "$(ls -A "$CHRUN_ROOT/tmp")"
'

test_expect_success 'COPY --from an image and a stage from scratch; --target builds that stage' '
    chrun-build -q --target COLLECT -t collect:1 ms >/dev/null &&
    b=$(chrun-unpack collect:1) &&
    chrun-exec "$b" /bin/busybox cat /from-name /from-index >out &&
    printf "built latest\nbuilt latest\n" >expect && test_cmp expect out
'

test_expect_success 'a global ARG overridden by --build-arg reaches FROM lines and stages' '
    chrun-build -q -t ms:2 --build-arg TAG=v2 ms >/dev/null &&
    b=$(chrun-unpack ms:2) && chrun-exec "$b" >out &&
    printf "built v2\nbuilt v2\n/w/v2\ntag= notset=empty\n" >expect && test_cmp expect out
'

test_expect_success 'the target stage with a failing RUN fails; --target of an unknown stage fails' '
    test_expect_code 1 chrun-build -q --target unused ms 2>err &&
    grep "^chrun-build: error: " err >err1 &&
    test_one_error_line chrun-build err1 "line 11: RUN returned exit status 7" &&
    test_expect_code 1 chrun-build -q --target nosuch ms 2>err &&
    test_one_error_line chrun-build err "--target .nosuch.: no stage"
'

test_expect_success 'a fully cached rebuild: same digest, every step from the cache, nothing unpacked' '
    CHRUN_DEBUG=1 chrun-build -t ms:1 ms >again 2>err &&
    test_cmp digest again &&
    ! grep -q "unpacking" err &&
    ! grep -q "running (cache key" err &&
    test "$(grep -c "using cache" err)" -ge 7
'

test_expect_success 'reproducible without SOURCE_DATE_EPOCH: fresh stores give the same digest' '
    unset SOURCE_DATE_EPOCH &&
    for n in 1 2; do
        CHRUN_ROOT=$TRASH_DIRECTORY/repro$n &&
        chrun-load -q "$FIXTURES/basic.oci.tar" >/dev/null &&
        chrun-build -q ms >repro$n || return 1
    done &&
    test_cmp repro1 repro2 &&
    base_created=$(chrun-inspect fixture/basic:1 | jq -r .Config.created) &&
    CHRUN_ROOT=$TRASH_DIRECTORY/repro1 chrun-inspect "$(cat repro1)" | jq -r .Config.created >created &&
    echo "$base_created" >expect && test_cmp expect created &&
    CHRUN_ROOT=$TRASH_DIRECTORY/repro1 SOURCE_DATE_EPOCH=1800000000 chrun-build -q ms >repro3 &&
    ! test_cmp repro1 repro3 >/dev/null
'

test_expect_success 'a stage that changes nothing for the target: its steps are not run' '
    mkdir ms2 && cp "$DATA/multistage.Dockerfile" ms2/Dockerfile &&
    sed -i "s/exit 7/exit 8/" ms2/Dockerfile &&
    chrun-build -q ms2 >d2 && test_cmp digest d2
'

test_done
