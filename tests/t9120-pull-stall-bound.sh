#!/bin/bash
test_description='chrun-pull bounds the time a blob may go without useful progress, retries included (CHRUN_BLOB_STALL_LIMIT): a server that stalls after some bytes, or trickles one byte a second, ends the pull with one error and publishes nothing'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"

fixtures_ensure
registry_start plain
fixture_push basic "$REGISTRY/basic:1"
fixture_push full "$REGISTRY/full:1"
# Each attempt is dropped after 1 s under 1 KiB/s and resumes with a few new
# bytes, which restarts its count of fruitless attempts: only the overall
# bound ends the pull. It is small here so the test runs fast.
export CHRUN_STALL_TIMEOUT=1 CHRUN_BLOB_STALL_LIMIT=3

# What a failed pull must leave untouched (tmp/ may keep resumable partials).
snapshot_published() {
    tree_snapshot "$CHRUN_ROOT/blobs"
    cat "$CHRUN_ROOT/index.json"
}

# expect_stalled REF: exit 1 (not a hang: `timeout` only guards the test
# run), one error line naming a blob as stalled or trickling, blobs/ and
# index.json unchanged, the image not named.
expect_stalled() {
    rm -rf "$CHRUN_ROOT" &&
    chrun-pull -q "$REGISTRY/basic:1" >/dev/null &&
    snapshot_published >before &&
    test_expect_code 1 timeout 300 chrun-pull "$1" >out 2>err &&
    test_one_error_line chrun-pull err \
        "^chrun-pull: error: .*blob sha256:[0-9a-f]{64}: stalled or trickling: less than 3072 bytes in 3 s, retries included \([0-9]+ of [0-9]+ bytes received; limit CHRUN_BLOB_STALL_LIMIT\)" &&
    test ! -s out &&
    snapshot_published >after &&
    test_cmp before after &&
    ! grep -q "full:1" "$CHRUN_ROOT/index.json"
}

test_expect_success 'headers and 100 bytes, then silence, on every (resumed) request' '
    evil_start stall --stall-after 100 &&
    expect_stalled "$EVIL/full:1" &&
    test "$(grep -c "/blobs/.*range=bytes=[1-9]" "$EVIL_LOG")" -ge 1
'

test_expect_success 'one byte a second' '
    evil_start trickle &&
    expect_stalled "$EVIL/full:1"
'

test_expect_success 'the same registry without tricks still serves the image' '
    chrun-pull -q "$REGISTRY/full:1" >d &&
    test -s d && store_fsck
'

test_expect_success 'chrun-pull(1) documents the bound and its variable' '
    grep -q "CHRUN_BLOB_STALL_LIMIT" "$REPO_ROOT/man/chrun-pull.1"
'

test_done
