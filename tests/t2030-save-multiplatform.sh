#!/bin/bash
test_description='chrun-save of a multi-platform image: every platform in the OCI layout, the host platform in manifest.json'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"
. "$TEST_DIRECTORY/lib-fanout.sh"

fixtures_ensure
registry_start plain
fixture_push basic "$REGISTRY/multi:basic"
fixture_push full "$REGISTRY/multi:full"
registry_put_index multi 1 application/vnd.oci.image.index.v1+json \
    application/vnd.oci.image.manifest.v1+json basic full
fixture_push_v2s2 basic "$REGISTRY/list:basic"
fixture_push_v2s2 full "$REGISTRY/list:full"
registry_put_index list 1 application/vnd.docker.distribution.manifest.list.v2+json \
    application/vnd.docker.distribution.manifest.v2+json basic full

# blob_of ARCHIVE DIGEST: a blob's bytes, read from the archive.
blob_of() { tar -xOf "$1" "blobs/sha256/${2#sha256:}"; }

# platforms ARCHIVE: "os/arch/variant config-digest" for every platform of
# the archive's first image, sorted; fails on anything missing.
platforms() {
    local top d plat cfg
    top=$(tar -xOf "$1" index.json | jq -r ".manifests[0].digest") || return 1
    blob_of "$1" "$top" >top.json || return 1
    for d in $(jq -r ".manifests[].digest" top.json); do
        plat=$(jq -r --arg d "$d" '.manifests[] | select(.digest == $d) |
            .platform | "\(.os)/\(.architecture)/\(.variant // "")"' top.json) &&
        cfg=$(blob_of "$1" "$d" | jq -er .config.digest) &&
        blob_of "$1" "$cfg" | jq -e .rootfs >/dev/null || return 1
        printf '%s %s\n' "$plat" "$cfg"
    done | sort >platforms.out &&
    test "$(wc -l <platforms.out)" = 2 &&
    cat platforms.out
}

test_expect_success 'setup: both indexes pulled with --all-platforms' '
    chrun-pull -q --all-platforms "$REGISTRY/multi:1" >multi.pulled &&
    test_cmp multi-1.index multi.pulled &&
    chrun-pull -q --all-platforms "$REGISTRY/list:1" >list.pulled &&
    test_cmp list-1.index list.pulled
'

test_expect_success 'OCI index: saved byte for byte with every platform; skopeo copies all' '
    chrun-save --format oci -o multi.tar "$REGISTRY/multi:1" &&
    skopeo inspect --raw oci-archive:multi.tar >raw &&
    echo "sha256:$(sha256sum <raw | cut -d" " -f1)" >saved &&
    test_cmp multi-1.index saved &&
    test "$(jq ".manifests | length" raw)" = 2 &&
    skopeo copy -q --all oci-archive:multi.tar "oci:$TRASH_DIRECTORY/multi-copy:x" &&
    test "$(jq ".manifests | length" multi-copy/index.json)" = 1 &&
    ls multi-copy/blobs/sha256 | wc -l >copied &&
    tar -tf multi.tar | grep -c "^blobs/sha256/." >ours &&
    test_cmp ours copied
'

test_expect_success 'docker manifest list: becomes an OCI index of converted manifests, platforms kept' '
    chrun-save --format oci -o list.tar "$REGISTRY/list:1" &&
    skopeo inspect --raw oci-archive:list.tar >raw &&
    jq -e ".mediaType == \"application/vnd.oci.image.index.v1+json\"" raw &&
    jq -e "[.manifests[].mediaType] | unique == [\"application/vnd.oci.image.manifest.v1+json\"]" raw &&
    ! test_cmp list-1.index <(echo "sha256:$(sha256sum <raw | cut -d" " -f1)") 2>/dev/null &&
    platforms list.tar >ours &&
    platforms multi.tar >theirs &&
    test_cmp theirs ours &&
    skopeo copy -q --all oci-archive:list.tar "oci:$TRASH_DIRECTORY/list-copy:x"
'

test_expect_success 'docker format: manifest.json holds the host platform; the layout holds both' '
    chrun-save -o multi-docker.tar "$REGISTRY/multi:1" &&
    tar -xOf multi-docker.tar manifest.json >manifest.json &&
    test "$(jq length manifest.json)" = 1 &&
    host_config=$(skopeo inspect --raw "docker://$REGISTRY/multi@$(cat multi-1.host)" --tls-verify=false |
        jq -r .config.digest) &&
    test "$(jq -r ".[0].Config" manifest.json)" = "blobs/sha256/${host_config#sha256:}" &&
    test "$(jq -r ".[0].RepoTags[0]" manifest.json)" = "$REGISTRY/multi:1" &&
    skopeo inspect --raw docker-archive:multi-docker.tar | jq -r .config.digest >peer &&
    echo "$host_config" >expect && test_cmp expect peer &&
    tar -xOf multi-docker.tar index.json | jq -r ".manifests[0].digest" >top &&
    test_cmp multi-1.index top
'

test_expect_success 'the archive loads into an empty store as the same index, all platforms' '
    CHRUN_ROOT=$TRASH_DIRECTORY/other chrun-load multi.tar >loaded &&
    test_cmp multi-1.index loaded &&
    CHRUN_ROOT=$TRASH_DIRECTORY/other chrun-unpack -q --platform "linux/$OTHER_ARCH/v8" \
        "$REGISTRY/multi:1" "$TRASH_DIRECTORY/b-other" >/dev/null &&
    test -f b-other/rootfs/bin/busybox
'

test_expect_success 'a platform missing from the store: error names it, no output file' '
    cp -a "$CHRUN_ROOT" partial &&
    other=$(cat multi-1.other) &&
    rm -f "partial/blobs/sha256/${other#sha256:}" &&
    test_expect_code 1 env CHRUN_ROOT="$TRASH_DIRECTORY/partial" \
        chrun-save --format oci -o broken.tar "$REGISTRY/multi:1" 2>err &&
    test_one_error_line chrun-save err "$other" &&
    test ! -e broken.tar
'

# 60 indexes per level, 3 levels: 216000 paths to one manifest, 183 blobs.
test_expect_success 'indexes listing shared sub-indexes many times: each blob saved once (in at most 20 s)' '
    fan=$TRASH_DIRECTORY/fan &&
    CHRUN_ROOT=$fan chrun-images >/dev/null &&
    fanout_layout "$fan" 60 3 docker.io/library/fan:1 >top &&
    test_expect_code 0 timeout 20 env CHRUN_ROOT="$fan" chrun-save --format oci -o fan.tar fan:1 &&
    ls "$fan/blobs/sha256" | sort >expect &&
    tar -tf fan.tar | sed -n "s,^blobs/sha256/\(.\),\1,p" | sort >saved &&
    test_cmp expect saved
'

test_done
