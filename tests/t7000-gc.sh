#!/bin/bash
test_description='chrun-gc removes exactly the unreferenced blobs, stale tmp files and orphaned bundles'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"

store_add() { # TAG REF
    skopeo --insecure-policy copy -q "oci:$FIXTURES/oci-layout:$1" "oci:$CHRUN_ROOT:$2"
}

# blobs_of_image REF: the digests (hex) an image's manifest names, and its own.
# An oracle independent of chrun: read straight from the layout with jq.
blobs_of_image() {
    local m
    m=$(jq -r --arg r "$1" \
        '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $r) | .digest' \
        "$CHRUN_ROOT/index.json")
    m=${m#sha256:}
    echo "$m"
    jq -r '.config.digest, .layers[].digest' "$CHRUN_ROOT/blobs/sha256/$m" | sed 's/^sha256://'
}

test_expect_success 'setup: three images, two sharing their busybox layer' '
    fixtures_ensure &&
    chrun-tag --help >/dev/null &&
    store_add basic docker.io/library/basic:1 &&
    store_add user docker.io/library/user:1 &&
    store_add full docker.io/library/full:1 &&
    chrun-images >/dev/null &&
    store_fsck
'

test_expect_success 'gc on a fully referenced store removes nothing' '
    store_snapshot >before &&
    chrun-gc --json >out.json 2>err &&
    test "$(jq .blobs_removed out.json)" -eq 0 &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'dry run after rmi reports but removes nothing' '
    chrun-rmi full:1 >/dev/null &&
    store_snapshot >before &&
    chrun-gc --dry-run --json >dry.json 2>err &&
    grep "^chrun-gc: would remove" err &&
    store_snapshot >after && test_cmp before after &&
    test "$(jq .dry_run dry.json)" = true
'

test_expect_success 'gc removes exactly the blobs only the unnamed image used' '
    { blobs_of_image docker.io/library/basic:1; blobs_of_image docker.io/library/user:1; } |
        sort -u >keep &&
    ls "$CHRUN_ROOT/blobs/sha256" | sort >all &&
    comm -23 all keep >expect_gone &&
    test -s expect_gone &&
    chrun-gc --json >out.json 2>err &&
    grep "^chrun-gc: removed" err &&
    ls "$CHRUN_ROOT/blobs/sha256" | sort >now &&
    test_cmp keep now &&
    test "$(jq .blobs_removed out.json)" -eq "$(wc -l <expect_gone)" &&
    test "$(jq .blobs_removed dry.json)" -eq "$(wc -l <expect_gone)" &&
    test "$(jq .bytes_freed out.json)" -eq "$(jq .bytes_freed dry.json)" &&
    store_fsck
'

test_expect_success 'the remaining images still copy out whole with skopeo' '
    for r in basic:1 user:1; do
        rm -rf out-$r &&
        skopeo --insecure-policy copy -q "oci:$CHRUN_ROOT:docker.io/library/$r" "dir:out-$r" &&
        test -s "out-$r/manifest.json" || return 1
    done &&
    test_expect_code 1 skopeo --insecure-policy copy -q "oci:$CHRUN_ROOT:docker.io/library/full:1" dir:gone 2>/dev/null
'

test_expect_success 'gc removes stale tmp entries and leaves foreign files in blobs alone' '
    echo partial >"$CHRUN_ROOT/tmp/blob-0000.partial" &&
    mkdir "$CHRUN_ROOT/tmp/load-stage" && echo x >"$CHRUN_ROOT/tmp/load-stage/f" &&
    echo keep >"$CHRUN_ROOT/blobs/sha256/README" &&
    chrun-gc -q --json >out.json 2>err &&
    test ! -s err &&
    test "$(jq .tmp_removed out.json)" -eq 2 &&
    test -z "$(ls -A "$CHRUN_ROOT/tmp")" &&
    test -f "$CHRUN_ROOT/blobs/sha256/README" && rm "$CHRUN_ROOT/blobs/sha256/README"
'

test_expect_success 'gc --bundles removes bundles of images no longer named, keeps the rest' '
    basic=$(chrun-inspect basic:1 | jq -r .Digest) &&
    mkb() { mkdir -p "$CHRUN_ROOT/bundles/$1/rootfs" &&
        printf "{\"annotations\":{\"io.chrun.image.manifest-digest\":\"%s\"}}" "$2" \
            >"$CHRUN_ROOT/bundles/$1/config.json"; } &&
    mkb keep "$basic" &&
    mkb orphan sha256:1111111111111111111111111111111111111111111111111111111111111111 &&
    mkdir -p "$CHRUN_ROOT/bundles/.tmp-unfinished/rootfs" &&
    mkdir -p "$CHRUN_ROOT/bundles/unknown/rootfs" &&
    chrun-gc --json >out.json 2>err &&
    test "$(jq .bundles_removed out.json)" -eq 0 &&
    test -d "$CHRUN_ROOT/bundles/orphan" &&
    chrun-gc --bundles --json >out.json 2>err &&
    test "$(jq .bundles_removed out.json)" -eq 2 &&
    test -d "$CHRUN_ROOT/bundles/keep" && test -d "$CHRUN_ROOT/bundles/unknown" &&
    test ! -e "$CHRUN_ROOT/bundles/orphan" && test ! -e "$CHRUN_ROOT/bundles/.tmp-unfinished" &&
    grep "keeping bundle .unknown." err
'

test_expect_success 'gc waits while another process holds the store (a pull or load in flight)' '
    mkfifo go &&
    { flock -s "$CHRUN_ROOT/locks/gc" sh -c "cat go >/dev/null" & } &&
    holder=$! &&
    sleep 0.2 &&
    { chrun-gc -q --json >waited.json & } &&
    gc=$! &&
    sleep 0.5 &&
    kill -0 $gc && test ! -s waited.json &&
    echo release >go &&
    wait $holder && wait $gc &&
    test "$(jq .blobs_removed waited.json)" -eq 0
'

test_expect_success 'a named image whose manifest is gone: gc fails and removes nothing' '
    m=$(chrun-inspect user:1 | jq -r .Digest) &&
    mv "$CHRUN_ROOT/blobs/sha256/${m#sha256:}" saved &&
    store_snapshot >before &&
    test_expect_code 1 chrun-gc 2>err &&
    test_one_error_line chrun-gc err "mark image .docker.io/library/user:1.*not found" &&
    store_snapshot >after && test_cmp before after &&
    mv saved "$CHRUN_ROOT/blobs/sha256/${m#sha256:}"
'

test_expect_success 'gc on a missing store fails cleanly' '
    CHRUN_ROOT=$TRASH_DIRECTORY/none test_expect_code 1 chrun-gc 2>err &&
    test_one_error_line chrun-gc err "does not exist"
'

test_done
