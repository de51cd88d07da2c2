#!/bin/bash
test_description='chrun-pull from a plain registry: tag, digest, both media-type families, zstd, re-pull'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"

fixtures_ensure
registry_start plain
fixture_push basic "$REGISTRY/basic:1"
fixture_push full "$REGISTRY/full:1"
fixture_push_v2s2 full "$REGISTRY/full:v2s2"
fixture_push basic-zstd "$REGISTRY/zstd:1"

blob_gets() { grep -c 'GET /v2/[^ ]*/blobs/' "$REGISTRY_LOG" || true; }
manifest_gets() { grep -c '"GET /v2/[^ ]*/manifests/' "$REGISTRY_LOG" || true; }
# GET /v2/ is asked only to explain a 404, never on a pull that works
version_checks() { grep '"GET /v2/ HTTP' "$REGISTRY_LOG" | grep -c '"chrun/' || true; }

test_expect_success '-h, --version, usage errors' '
    chrun-pull -h >out && grep -q "^Usage: chrun-pull" out &&
    chrun-pull --version >out && grep -q "^chrun-pull " out &&
    test_expect_code 2 chrun-pull 2>err && grep -q "^chrun-pull: error: " err &&
    test_expect_code 2 chrun-pull -i list a 2>err &&
    test_expect_code 2 chrun-pull --bogus x 2>err &&
    test_expect_code 2 chrun-pull "x@sha256:zz" 2>err &&
    test_expect_code 2 chrun-pull --jobs 0 x 2>err &&
    test_expect_code 2 chrun-pull --platform linux x 2>err &&
    test_expect_code 2 chrun-pull --platform linux/amd64 --all-platforms x 2>err
'

test_expect_success 'pull by tag prints the manifest digest and names the image' '
    chrun-pull "$REGISTRY/basic:1" >out 2>err &&
    test_must_be_empty() { test ! -s "$1" || { cat "$1"; false; }; } &&
    test_must_be_empty err &&
    echo "$(fixture_digest basic)" >expect &&
    test_cmp expect out &&
    jq -r ".manifests[] | select(.annotations[\"org.opencontainers.image.ref.name\"] == \"$REGISTRY/basic:1\") | .digest" \
        "$CHRUN_ROOT/index.json" >named &&
    test_cmp expect named &&
    store_fsck &&
    test -z "$(ls "$CHRUN_ROOT/tmp")"
'

test_expect_success 'skopeo reads the pulled image back from the store' '
    skopeo --insecure-policy copy -q "oci:$CHRUN_ROOT:$REGISTRY/basic:1" "dir:$TRASH_DIRECTORY/back" &&
    skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$REGISTRY/basic:1" "dir:$TRASH_DIRECTORY/orig" &&
    test_cmp "$TRASH_DIRECTORY/orig/manifest.json" "$TRASH_DIRECTORY/back/manifest.json"
'

test_expect_success 'multi-layer OCI image, blobs identical to the registry' '
    chrun-pull -q "$REGISTRY/full:1" >out &&
    echo "$(fixture_digest full)" >expect &&
    test_cmp expect out &&
    for d in $(jq -r ".layers[].digest, .config.digest" "$CHRUN_ROOT/blobs/sha256/$(cut -d: -f2 out)"); do
        cmp "$(registry_blob_path REGISTRY "$d")" "$CHRUN_ROOT/blobs/sha256/${d#sha256:}" || return 1
    done &&
    store_fsck
'

test_expect_success 'docker v2s2 manifest kept byte for byte' '
    chrun-pull "$REGISTRY/full:v2s2" >out &&
    d=$(cut -d: -f2 out) &&
    jq -e ".mediaType == \"application/vnd.docker.distribution.manifest.v2+json\"" \
        "$CHRUN_ROOT/blobs/sha256/$d" &&
    curl -s --noproxy "*" -H "Accept: application/vnd.docker.distribution.manifest.v2+json" \
        "http://$REGISTRY/v2/full/manifests/v2s2" >reg.json &&
    cmp reg.json "$CHRUN_ROOT/blobs/sha256/$d" &&
    jq -e ".manifests[] | select(.digest == \"sha256:$d\") | .mediaType == \"application/vnd.docker.distribution.manifest.v2+json\"" \
        "$CHRUN_ROOT/index.json" &&
    store_fsck
'

test_expect_success 'zstd layers' '
    chrun-pull "$REGISTRY/zstd:1" >out &&
    jq -e ".layers[0].mediaType == \"application/vnd.oci.image.layer.v1.tar+zstd\"" \
        "$CHRUN_ROOT/blobs/sha256/$(cut -d: -f2 out)" &&
    store_fsck
'

test_expect_success 're-pull by tag: same line, one manifest request, no blob fetched' '
    chrun-pull "$REGISTRY/full:1" >first &&
    blobs=$(blob_gets) && manifests=$(manifest_gets) &&
    store_snapshot >before &&
    chrun-pull "$REGISTRY/full:1" >second 2>err &&
    test_cmp first second &&
    test ! -s err &&
    test "$(blob_gets)" = "$blobs" &&
    test "$(manifest_gets)" = "$((manifests + 1))" &&
    store_snapshot >after &&
    test_cmp before after
'

test_expect_success 'pull by digest; the pinned name is recorded' '
    d=$(fixture_digest basic) &&
    rm -rf "$CHRUN_ROOT" &&
    chrun-pull "$REGISTRY/basic@$d" >out &&
    echo "$d" >expect && test_cmp expect out &&
    jq -e ".manifests[] | select(.annotations[\"org.opencontainers.image.ref.name\"] == \"$REGISTRY/basic@$d\")" \
        "$CHRUN_ROOT/index.json" &&
    store_fsck
'

test_expect_success 'pinned digest already in the store: no network at all' '
    d=$(fixture_digest basic) &&
    n=$(registry_requests REGISTRY) &&
    chrun-pull "$REGISTRY/basic@$d" >out &&
    echo "$d" >expect && test_cmp expect out &&
    test "$(registry_requests REGISTRY)" = "$n" &&
    chrun-pull "127.0.0.1:1/elsewhere/basic@$d" >out &&
    test_cmp expect out
'

test_expect_success 'unknown tag: manifest unknown, exit 1, store unchanged' '
    test "$(version_checks)" = 0 &&
    store_snapshot >before &&
    test_expect_code 1 chrun-pull "$REGISTRY/basic:nope" 2>err &&
    test_one_error_line chrun-pull err "manifest unknown: $REGISTRY/basic:nope" &&
    test "$(version_checks)" = 1 &&
    test_expect_code 1 chrun-pull "$REGISTRY/nothing/here" 2>err &&
    test_one_error_line chrun-pull err "manifest unknown: $REGISTRY/nothing/here:latest" &&
    store_snapshot >after &&
    test_cmp before after
'

test_expect_success 'no registry listening: network error, bounded' '
    test_expect_code 1 chrun-pull "127.0.0.1:1/x:1" 2>err &&
    test_one_error_line chrun-pull err "127.0.0.1:1"
'

test_expect_success '--jobs 1 pulls the same image' '
    rm -rf "$CHRUN_ROOT" &&
    chrun-pull -j 1 "$REGISTRY/full:1" >out &&
    echo "$(fixture_digest full)" >expect &&
    test_cmp expect out && store_fsck
'

test_done
