#!/bin/bash
test_description='the store is an OCI image layout; index.json edits are atomic and safe in parallel'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"

test_expect_success 'setup: an image in a layout written by skopeo' '
    fixtures_ensure &&
    skopeo --insecure-policy copy -q "oci:$FIXTURES/oci-layout:basic" "oci:$CHRUN_ROOT:docker.io/library/basic:1" &&
    chrun-images >/dev/null
'

test_expect_success 'chrun completes the layout: oci-layout, index.json, blobs, tmp, locks, bundles' '
    jq -e ".imageLayoutVersion == \"1.0.0\"" "$CHRUN_ROOT/oci-layout" &&
    jq -e ".schemaVersion == 2" "$CHRUN_ROOT/index.json" &&
    for d in blobs/sha256 tmp locks bundles; do test -d "$CHRUN_ROOT/$d" || return 1; done
'

test_expect_success 'tools that only read never create a store' '
    export CHRUN_ROOT=$TRASH_DIRECTORY/absent &&
    chrun-images >/dev/null &&
    test_expect_code 1 chrun-inspect basic:1 2>err &&
    test_one_error_line chrun-inspect err "store .*absent. does not exist" &&
    test_expect_code 1 chrun-tag basic:1 x 2>err &&
    test_expect_code 1 chrun-rmi x 2>err &&
    test ! -e "$CHRUN_ROOT" &&
    export CHRUN_ROOT=$TRASH_DIRECTORY/store
'

test_expect_success '40 parallel tags all land in index.json' '
    for i in $(seq 1 40); do chrun-tag basic:1 "par/img:$i" >/dev/null & done && wait &&
    jq -e . "$CHRUN_ROOT/index.json" >/dev/null &&
    test "$(chrun-images -q | wc -l)" -eq 41
'

test_expect_success 'parallel untags lose nothing and leave valid JSON' '
    for i in $(seq 1 40); do chrun-rmi "par/img:$i" >/dev/null & done && wait &&
    test "$(chrun-images -q | wc -l)" -eq 1
'

test_expect_success 'kill -9 during a storm of tags: index.json always parses, no temp left behind in the root' '
    for round in 1 2 3 4 5; do
        { for i in $(seq 1 30); do chrun-tag basic:1 "k/img:$round-$i" >/dev/null 2>&1 & done; } &&
        sleep 0.0$round && pkill -9 -f "chrun-tag basic:1 k/img" ; wait
        jq -e . "$CHRUN_ROOT/index.json" >/dev/null || return 1
    done &&
    chrun-images >/dev/null &&
    ls -A "$CHRUN_ROOT" | sort >entries &&
    printf "%s\n" blobs bundles index.json locks oci-layout tmp >expect &&
    test_cmp expect entries
'

test_expect_success 'skopeo still reads the store after all that' '
    skopeo --insecure-policy inspect "oci:$CHRUN_ROOT:docker.io/library/basic:1" >out.json &&
    jq -e ".Layers | length == 1" out.json
'

test_expect_success 'hostile index.json: a one-line error, nothing changed' '
    cp "$CHRUN_ROOT/index.json" good.json &&
    echo "{not json" >"$CHRUN_ROOT/index.json" &&
    store_snapshot >before &&
    test_expect_code 1 chrun-images 2>err &&
    test_one_error_line chrun-images err "index.json: invalid JSON" &&
    test_expect_code 1 chrun-tag basic:1 y 2>err &&
    test_one_error_line chrun-tag err "index.json: invalid JSON" &&
    store_snapshot >after && test_cmp before after &&
    python3 -c "print(\"[\" * 100000 + \"]\" * 100000)" >"$CHRUN_ROOT/index.json" &&
    test_expect_code 1 chrun-images 2>err &&
    test_one_error_line chrun-images err "index.json" &&
    cp good.json "$CHRUN_ROOT/index.json"
'

test_expect_success 'a digest operand is never a path' '
    store_snapshot >before &&
    for bad in "sha256:../../../../etc/passwd" "sha256:XYZ" "md5:d41d8cd98f00b204e9800998ecf8427e" \
               "sha256:$(printf %064d 0)/../x"; do
        test_expect_code 1 chrun-inspect "$bad" 2>err || return 1
        grep -q "^chrun-inspect: error:" err || return 1
    done &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'a corrupt manifest blob in the store is detected, not trusted' '
    d=$(chrun-inspect basic:1 | jq -r .Digest) &&
    f=$CHRUN_ROOT/blobs/sha256/${d#sha256:} &&
    cp "$f" saved && chmod u+w "$f" && sed -i "s/layers/layerz/" "$f" &&
    test_expect_code 1 chrun-inspect basic:1 2>err &&
    test_one_error_line chrun-inspect err "blob $d in store is corrupt" &&
    cp saved "$f"
'

test_done
