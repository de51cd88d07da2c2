#!/bin/bash
test_description='chrun-pull: interrupted pulls resume with Range (SIGKILL, cut connections, 200 instead of 206)'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"

fixtures_ensure
registry_start plain
big=$(fixture_make_big "$TRASH_DIRECTORY/big" 4)
fixture_push_from "docker-archive:$big" "$REGISTRY/big:1"
fixture_push full "$REGISTRY/full:1"
rm -rf "$TRASH_DIRECTORY/big"

partial_bytes() { cat "$CHRUN_ROOT"/tmp/blob-*.partial 2>/dev/null | wc -c; }
partial_over() { [ "$(partial_bytes)" -gt "$1" ]; }

evil_start slow --rate 200000
SLOW=$EVIL

test_expect_success 'SIGKILL in the middle of the blobs leaves partials, nothing in blobs/ or index.json' '
    mkdir -p "$CHRUN_ROOT" &&
    { chrun-pull -q "$SLOW/big:1" >out 2>err & } &&
    pid=$! &&
    test_wait_until "300 kB of partial blob" partial_over 300000 &&
    kill -9 $pid && { wait $pid; true; } &&
    [ "$(partial_bytes)" -gt 300000 ] &&
    test -z "$(ls "$CHRUN_ROOT/blobs/sha256")" &&
    jq -e ".manifests == []" "$CHRUN_ROOT/index.json"
'

test_expect_success 'the next pull resumes with Range requests and completes' '
    before=$(partial_bytes) &&
    evil_start proxy &&
    chrun-pull "$EVIL/big:1" >out &&
    grep -E "^GET /v2/big/blobs/sha256:[0-9a-f]+ range=bytes=[1-9][0-9]*-" "$EVIL_LOG" &&
    test -z "$(ls "$CHRUN_ROOT/tmp")" &&
    store_fsck &&
    d=$(cut -d: -f2 out) &&
    test "$(jq ".layers | length" "$CHRUN_ROOT/blobs/sha256/$d")" -ge 4
'

test_expect_success 'a connection cut mid-blob is retried from where it stopped' '
    rm -rf "$CHRUN_ROOT" &&
    evil_start cut &&
    chrun-pull "$EVIL/full:1" >out 2>err &&
    test ! -s err &&
    grep -E "range=bytes=[1-9][0-9]*-" "$EVIL_LOG" &&
    curl -s --noproxy "*" -H "Accept: application/vnd.oci.image.manifest.v1+json" \
        "http://$REGISTRY/v2/full/manifests/1" | sha256sum | sed "s/^/sha256:/; s/ .*//" >expect &&
    test_cmp expect out &&
    test -z "$(ls "$CHRUN_ROOT/tmp")" &&
    store_fsck
'

test_expect_success 'a server that ignores Range (200, not 206): start over, still correct' '
    rm -rf "$CHRUN_ROOT" && mkdir -p "$CHRUN_ROOT" &&
    { chrun-pull -q "$SLOW/big:1" >/dev/null 2>&1 & } &&
    pid=$! &&
    test_wait_until "300 kB of partial blob" partial_over 300000 &&
    kill -9 $pid && { wait $pid; true; } &&
    [ "$(partial_bytes)" -gt 0 ] &&
    evil_start ignore-range &&
    chrun-pull "$EVIL/big:1" >out &&
    grep -E "range=bytes=[1-9]" "$EVIL_LOG" &&
    test -z "$(ls "$CHRUN_ROOT/tmp")" &&
    store_fsck
'

test_expect_success 'partials of a different, stale content are detected and refetched' '
    rm -rf "$CHRUN_ROOT" &&
    chrun-pull -q "$REGISTRY/full:1" >out &&
    layer=$(jq -r ".layers[-1].digest" "$CHRUN_ROOT/blobs/sha256/$(cut -d: -f2 out)") &&
    rm -rf "$CHRUN_ROOT" && mkdir -p "$CHRUN_ROOT/tmp" &&
    head -c 100 /dev/urandom >"$CHRUN_ROOT/tmp/blob-${layer#sha256:}.partial" &&
    chrun-pull "$REGISTRY/full:1" >out2 &&
    test_cmp out out2 &&
    test -z "$(ls "$CHRUN_ROOT/tmp")" &&
    store_fsck
'

# A tmpfs too small for the image: needs root to mount.
if [ "$(id -u)" = 0 ]; then
    test_expect_success 'a full disk: one error line naming the blob; with room, the pull resumes' '
        rm -rf "$CHRUN_ROOT" && mkdir -p small &&
        mount -t tmpfs -o size=3m tmpfs small &&
        test_when_finished "umount $TRASH_DIRECTORY/small" &&
        test_expect_code 1 env CHRUN_ROOT="$TRASH_DIRECTORY/small/store" \
            chrun-pull "$REGISTRY/big:1" 2>err &&
        test_one_error_line chrun-pull err "blob sha256:[0-9a-f]*: .*No space left on device" &&
        test -z "$(ls small/store/blobs/sha256)" &&
        test "$(jq ".manifests | length" small/store/index.json)" = 0 &&
        mount -o remount,size=64m small &&
        : >"$REGISTRY_LOG" &&
        CHRUN_ROOT="$TRASH_DIRECTORY/small/store" chrun-pull -q "$REGISTRY/big:1" >out &&
        grep -q "GET /v2/big/blobs/sha256:[0-9a-f]* HTTP/1.1\" 206 " "$REGISTRY_LOG" &&
        test -z "$(ls small/store/tmp)" &&
        CHRUN_ROOT="$TRASH_DIRECTORY/small/store" store_fsck
    '
fi

test_done
