#!/bin/bash
test_description='chrun-pull: OCI index and docker manifest list, platform choice, --all-platforms'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"

fixtures_ensure
registry_start plain

case $(uname -m) in
x86_64) HOST_ARCH=amd64 OTHER_ARCH=arm64 ;;
aarch64) HOST_ARCH=arm64 OTHER_ARCH=amd64 ;;
*) HOST_ARCH=$(uname -m) OTHER_ARCH=amd64 ;;
esac

# put_index REPO TAG INDEX_TYPE TYPE_OF_ENTRIES TAG_A TAG_B: an index whose
# host-platform entry is TAG_A and linux/$OTHER_ARCH/v8 entry is TAG_B.
put_index() {
    local repo=$1 tag=$2 itype=$3 mtype=$4 a b da db sa sb
    curl -s --noproxy "*" -H "Accept: $mtype" "http://$REGISTRY/v2/$repo/manifests/$5" >a.json &&
    curl -s --noproxy "*" -H "Accept: $mtype" "http://$REGISTRY/v2/$repo/manifests/$6" >b.json &&
    da=sha256:$(sha256sum <a.json | cut -d" " -f1) && sa=$(stat -c %s a.json) &&
    db=sha256:$(sha256sum <b.json | cut -d" " -f1) && sb=$(stat -c %s b.json) &&
    jq -n --arg it "$itype" --arg mt "$mtype" --arg da "$da" --arg db "$db" \
        --argjson sa "$sa" --argjson sb "$sb" --arg ha "$HOST_ARCH" --arg oa "$OTHER_ARCH" \
        "{schemaVersion: 2, mediaType: \$it, manifests: [
          {mediaType: \$mt, digest: \$db, size: \$sb, platform: {os: \"linux\", architecture: \$oa, variant: \"v8\"}},
          {mediaType: \$mt, digest: \$da, size: \$sa, platform: {os: \"linux\", architecture: \$ha}}]}" >index.json &&
    curl -sf --noproxy "*" -X PUT -H "Content-Type: $itype" --data-binary @index.json \
        "http://$REGISTRY/v2/$repo/manifests/$tag" >/dev/null &&
    echo "$da" >"$repo-$tag.host" && echo "$db" >"$repo-$tag.other" &&
    echo "sha256:$(sha256sum <index.json | cut -d" " -f1)" >"$repo-$tag.index"
}

fixture_push basic "$REGISTRY/multi:basic"
fixture_push full "$REGISTRY/multi:full"
put_index multi 1 application/vnd.oci.image.index.v1+json application/vnd.oci.image.manifest.v1+json basic full
fixture_push_v2s2 basic "$REGISTRY/list:basic"
fixture_push_v2s2 full "$REGISTRY/list:full"
put_index list 1 application/vnd.docker.distribution.manifest.list.v2+json \
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
