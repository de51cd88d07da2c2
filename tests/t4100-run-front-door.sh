#!/bin/bash
test_description='chrun front door: dispatch to chrun-SUB, and chrun run = pull if missing + unpack + exec'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"

test_expect_success 'chrun --help lists the commands; chrun SUB runs chrun-SUB' '
    chrun --help >out && grep -E "^  run +pull if missing" out && grep -E "^  gc " out &&
    for prog in "$(dirname "$(command -v chrun)")"/chrun-*; do
        grep -E "^  ${prog##*/chrun-} " out || { echo "not listed: $prog" >&2; return 1; }
    done &&
    chrun --version | grep -x "chrun [0-9.]*" &&
    chrun images --help | grep "^Usage: chrun-images" &&
    chrun images -q >out && test ! -s out
'

test_expect_success 'unknown command and option: usage error' '
    test_expect_code 2 chrun frobnicate 2>err &&
    head -n1 err >err1 && test_one_error_line chrun err1 "unknown command .frobnicate." &&
    test_expect_code 2 chrun --bogus 2>err &&
    test_expect_code 2 chrun 2>err &&
    test_expect_code 2 chrun ../../bin/sh 2>err
'

test_expect_success 'chrun run pulls a missing image, unpacks it and runs its command' '
    registry_start plain &&
    fixture_push basic app/basic:1 &&
    chrun run -q "$REGISTRY/app/basic:1" >out 2>err &&
    echo "hello from fixture" >expect && test_cmp expect out &&
    chrun images | grep "^$REGISTRY/app/basic:1 " &&
    ls "$CHRUN_ROOT/bundles" >bundles && test "$(wc -l <bundles)" -eq 1
'

test_expect_success 'a second run uses the store and the cached bundle: no registry request' '
    before=$(registry_requests REGISTRY) &&
    chrun run "$REGISTRY/app/basic:1" sh -c "echo \$FOO; pwd" >out &&
    printf "bar\n/srv\n" >expect && test_cmp expect out &&
    test "$(registry_requests REGISTRY)" -eq "$before"
'

test_expect_success 'exit status, exec options and stdin pass through' '
    test_expect_code 7 chrun run "$REGISTRY/app/basic:1" sh -c "exit 7" &&
    test_expect_code 130 chrun run "$REGISTRY/app/basic:1" sh -c "kill -INT \$\$" &&
    chrun run -e FOO=baz -w /tmp -u 1000 "$REGISTRY/app/basic:1" sh -c "echo \$FOO \$(pwd) \$(id -u)" >out &&
    echo "baz /tmp 1000" >expect && test_cmp expect out &&
    echo piped | chrun run "$REGISTRY/app/basic:1" cat >out && echo piped >expect && test_cmp expect out
'

test_expect_success 'chrun run --rm uses a throwaway bundle and removes it' '
    export TMPDIR=$TRASH_DIRECTORY/tmp && mkdir -p "$TMPDIR" &&
    ls "$CHRUN_ROOT/bundles" >before &&
    chrun run --rm "$REGISTRY/app/basic:1" sh -c "touch /marker; ls /marker" >out &&
    echo /marker >expect && test_cmp expect out &&
    test -z "$(ls -A "$TMPDIR")" &&
    ls "$CHRUN_ROOT/bundles" >after && test_cmp before after &&
    test_expect_code 3 chrun run --rm "$REGISTRY/app/basic:1" sh -c "exit 3" &&
    test -z "$(ls -A "$TMPDIR")" &&
    unset TMPDIR
'

test_expect_success 'chrun run of an image nobody has: one error, exit 1, nothing stored' '
    store_snapshot >before &&
    test_expect_code 1 chrun run -q "$REGISTRY/app/none:1" 2>err &&
    test_one_error_line chrun-pull err "manifest unknown" &&
    store_snapshot >after && test_cmp before after
'

test_done
