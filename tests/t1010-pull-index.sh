#!/bin/bash
test_description='chrun-pull: OCI index and docker manifest list, platform choice, --all-platforms'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"

fixtures_ensure
registry_start plain

fixture_push basic "$REGISTRY/multi:basic"
fixture_push full "$REGISTRY/multi:full"
registry_put_index multi 1 application/vnd.oci.image.index.v1+json application/vnd.oci.image.manifest.v1+json basic full
fixture_push_v2s2 basic "$REGISTRY/list:basic"
fixture_push_v2s2 full "$REGISTRY/list:full"
registry_put_index list 1 application/vnd.docker.distribution.manifest.list.v2+json \
    application/vnd.docker.distribution.manifest.v2+json basic full

ref_digest() {
    jq -r --arg r "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $r) | .digest' \
        "$CHRUN_ROOT/index.json"
}

for family in multi list; do
    test_expect_success "$family: the host platform by default; REF names its manifest" '
        chrun-pull "$REGISTRY/'$family':1" >out &&
        test_cmp '$family'-1.host out &&
        ref_digest "$REGISTRY/'$family':1" >named &&
        test_cmp '$family'-1.host named &&
        test -f "$CHRUN_ROOT/blobs/sha256/$(cut -d: -f2 '$family'-1.index)" &&
        store_fsck
    '

    test_expect_success "$family: --platform linux/$OTHER_ARCH/v8" '
        chrun-pull --platform "linux/$OTHER_ARCH/v8" "$REGISTRY/'$family':1" >out &&
        test_cmp '$family'-1.other out &&
        ref_digest "$REGISTRY/'$family':1" >named &&
        test_cmp '$family'-1.other named &&
        store_fsck
    '

    test_expect_success "$family: --all-platforms names the index and fetches every blob" '
        rm -rf "$CHRUN_ROOT" &&
        chrun-pull --all-platforms "$REGISTRY/'$family':1" >out &&
        test_cmp '$family'-1.index out &&
        ref_digest "$REGISTRY/'$family':1" >named &&
        test_cmp '$family'-1.index named &&
        for m in $(cat '$family'-1.host '$family'-1.other); do
            f="$CHRUN_ROOT/blobs/sha256/${m#sha256:}" &&
            test -f "$f" &&
            for b in $(jq -r ".config.digest, .layers[].digest" "$f"); do
                test -f "$CHRUN_ROOT/blobs/sha256/${b#sha256:}" || return 1
            done
        done &&
        store_fsck
    '

    test_expect_success "$family: a platform the index lacks is named in the error" '
        store_snapshot >before &&
        test_expect_code 1 chrun-pull --platform linux/s390x "$REGISTRY/'$family':1" 2>err &&
        test_one_error_line chrun-pull err "no manifest for platform linux/s390x.*linux/$HOST_ARCH" &&
        store_snapshot >after &&
        test_cmp before after
    '
done

test_expect_success 're-pull of an index by tag fetches no blob and no child manifest' '
    chrun-pull "$REGISTRY/multi:1" >first &&
    n=$(grep -c "GET /v2/" "$REGISTRY_LOG") &&
    chrun-pull "$REGISTRY/multi:1" >second &&
    test_cmp first second &&
    test "$(grep -c "GET /v2/" "$REGISTRY_LOG")" = "$((n + 1))" &&
    tail -n 4 "$REGISTRY_LOG" | grep "GET /v2/multi/manifests/1 "
'

test_expect_success 'pull by the index digest: REF@digest names the platform manifest' '
    d=$(cat multi-1.index) &&
    chrun-pull "$REGISTRY/multi@$d" >out &&
    test_cmp multi-1.host out
'

test_done
