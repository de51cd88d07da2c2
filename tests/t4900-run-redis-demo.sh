#!/bin/bash
test_description='make demo: pull redis from a local registry, unpack, serve with chrun-exec, PONG'
. ./lib.sh

test_expect_success 'the demo prints the bundle path and PONG, and leaves nothing behind' '
    ls -d /tmp/chrun-demo.* 2>/dev/null | sort >before &&
    PATH=$REPO_ROOT/bin:$PATH "$REPO_ROOT/scripts/demo" >out 2>err &&
    grep -x PONG out &&
    grep -E "^/tmp/chrun-demo\.[^/]+/store/bundles/[0-9a-f]{12}$" out &&
    grep "^\\$ chrun-exec" err &&
    ls -d /tmp/chrun-demo.* 2>/dev/null | sort >after &&
    test_cmp before after
'

test_done
