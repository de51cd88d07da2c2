#!/bin/bash
test_description='chrun-gc walks indexes that share sub-indexes once each'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fanout.sh"

# 60 indexes per level, 3 levels: 216000 paths to one manifest, 183 blobs.
test_expect_success 'setup: a store whose image is a fan-out of shared indexes' '
    chrun-images >/dev/null &&
    fanout_layout "$CHRUN_ROOT" 60 3 docker.io/library/fan:1 >top &&
    ls "$CHRUN_ROOT/blobs/sha256" >referenced &&
    printf unreferenced >"$CHRUN_ROOT/blobs/sha256/$(printf unreferenced | sha256sum | cut -d" " -f1)" &&
    store_fsck
'

test_expect_success 'gc keeps every blob of the image and removes the rest (in at most 20 s)' '
    test_expect_code 0 timeout 20 chrun-gc >out 2>err &&
    ls "$CHRUN_ROOT/blobs/sha256" >after &&
    test_cmp referenced after &&
    store_fsck
'

test_done
