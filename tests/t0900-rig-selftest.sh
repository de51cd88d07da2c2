#!/bin/bash
test_description='test rig: fixtures, registries and hostile archives, checked with skopeo'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"

skopeo() { command skopeo --insecure-policy "$@"; }

# Set up at top level: test bodies may run in subshells.
fixtures_ensure
registry_start plain
registry_start auth

test_expect_success 'fixtures_ensure builds every fixture file' '
    test -d "$FIXTURES" &&
    bad= &&
    for f in $FIXTURE_FILES; do
        test -s "$FIXTURES/$f" || bad="$bad $f"
    done &&
    { test -z "$bad" || { echo "missing:$bad"; false; }; }
'

test_expect_success 'fixtures_ensure again is a no-op (same stamp, same files)' '
    stamp=$(cat "$FIXTURES/.stamp") &&
    before=$(stat -c %Y "$FIXTURES/full.docker.tar") &&
    fixtures_ensure &&
    test "$stamp" = "$(cat "$FIXTURES/.stamp")" &&
    test "$before" = "$(stat -c %Y "$FIXTURES/full.docker.tar")"
'

test_expect_success 'every oci-layout tag is readable by skopeo' '
    bad= &&
    for t in $FIXTURE_TAGS; do
        skopeo inspect "oci:$FIXTURES/oci-layout:$t" >"inspect-$t.json" || bad="$bad $t"
    done &&
    test -z "$bad" &&
    jq -e ".Layers | length == 4" inspect-full.json &&
    jq -e ".Layers | length == 1" inspect-basic.json &&
    jq -e ".Env | index(\"FOO=bar\") != null" inspect-full.json &&
    test "$(fixture_digest full)" = "$(jq -r .Digest inspect-full.json)"
'

test_expect_success 'full: config as documented' '
    skopeo inspect --config "oci:$FIXTURES/oci-layout:full" >config.json &&
    jq -e ".config.Cmd == [\"/bin/sh\",\"-c\",\"echo hello from fixture\"]" config.json &&
    jq -e ".config.WorkingDir == \"/srv\"" config.json &&
    skopeo inspect --config "oci:$FIXTURES/oci-layout:user" >user.json &&
    jq -e ".config.User == \"fixture\"" user.json
'

test_expect_success 'basic-zstd has a zstd layer and the same diff_ids as basic' '
    skopeo inspect --raw "oci:$FIXTURES/oci-layout:basic-zstd" >zstd.json &&
    jq -e ".layers[0].mediaType | endswith(\"+zstd\")" zstd.json &&
    test "$(skopeo inspect --config "oci:$FIXTURES/oci-layout:basic" | jq -c .rootfs)" = \
         "$(skopeo inspect --config "oci:$FIXTURES/oci-layout:basic-zstd" | jq -c .rootfs)"
'

test_expect_success 'archives are readable by skopeo' '
    skopeo inspect "oci-archive:$FIXTURES/full.oci.tar:fixture/full:1" >/dev/null &&
    skopeo inspect "docker-archive:$FIXTURES/full.docker.tar" >/dev/null &&
    skopeo inspect "dir:$FIXTURES/full.docker-layout" >/dev/null &&
    jq -e ".mediaType == \"application/vnd.docker.distribution.manifest.v2+json\"" \
        "$FIXTURES/full.docker-layout/manifest.json" &&
    skopeo inspect "docker-archive:$FIXTURES/multi.docker.tar:fixture/basic:1" >m1.json &&
    skopeo inspect "docker-archive:$FIXTURES/multi.docker.tar:fixture/full:1" >m2.json &&
    test "$(jq -r ".Layers[0]" m1.json)" = "$(jq -r ".Layers[0]" m2.json)" &&
    gzip -t "$FIXTURES/basic.docker.tar.gz" &&
    zstd -q -t "$FIXTURES/basic.oci.tar.zst"
'

test_expect_success 'umoci unpacks full with every tricky entry' '
    fixture_umoci_unpack full bundle &&
    fx=bundle/rootfs/usr/share/fixture &&
    test -p $fx/fifo &&
    test -u $fx/setuid && test -g $fx/setgid && test -k $fx/sticky &&
    test "$(stat -c %u:%g $fx/owned-1000)" = 1000:1000 &&
    test "$(stat -c %u:%g $fx/owned-65534)" = 65534:65534 &&
    test "$(stat -c %i $fx/hl-cross)" = "$(stat -c %i $fx/hl-source)" &&
    test "$(stat -c %i $fx/hardlink-a)" = "$(stat -c %i $fx/hardlink-b)" &&
    test "$(stat -c %Y $fx/old-mtime)" = 1234567890 &&
    test "$(readlink $fx/sym-dangling)" = does-not-exist &&
    test ! -e $fx/doomed.txt && test ! -e $fx/doomed-dir && test ! -e $fx/doomed-by-hand &&
    test "$(ls $fx/opaque)" = new.txt &&
    test "$(ls $fx/recreate)" = new1 &&
    test "$(cat $fx/modified.txt)" = "version 2" &&
    test -f bundle/rootfs/usr/lib/via-symlink.txt &&
    test -L bundle/rootfs/lib &&
    test -f "$fx/deep/$(printf "d%.0s" $(seq 100))/$(printf "e%.0s" $(seq 100))/$(printf "f%.0s" $(seq 100))/file.txt"
'

test_expect_success 'plain registry: push, inspect, logged' '
    expr "$REGISTRY" : "127\.0\.0\.1:[0-9]*$" &&
    fixture_push full fixture/full:1 &&
    fixture_push_v2s2 basic fixture/basic:v2s2 &&
    skopeo inspect --tls-verify=false "docker://$REGISTRY/fixture/full:1" >reg.json &&
    test "$(jq -r .Digest reg.json)" = "$(fixture_digest full)" &&
    skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/fixture/basic:v2s2" |
        jq -e ".mediaType == \"application/vnd.docker.distribution.manifest.v2+json\"" &&
    grep -q "GET /v2/fixture/full/manifests/1" "$REGISTRY_LOG" &&
    test "$(registry_requests REGISTRY)" -gt 0
'

test_expect_success 'corrupt layer in the registry: skopeo refuses it' '
    layer=$(fixture_push_corrupt_layer fixture/evil:1) &&
    test -f "$(registry_blob_path REGISTRY "$layer")" &&
    ! skopeo copy --src-tls-verify=false "docker://$REGISTRY/fixture/evil:1" dir:evil 2>err &&
    grep -i "digest" err &&
    skopeo inspect --tls-verify=false "docker://$REGISTRY/fixture/full:1" >/dev/null
'

test_expect_success 'auth registry: anonymous refused, credentials accepted' '
    test "$REGISTRY_AUTH" != "$REGISTRY" &&
    test "$(curl -s --noproxy "*" -o /dev/null -w "%{http_code}" "http://$REGISTRY_AUTH/v2/")" = 401 &&
    test "$(curl -s --noproxy "*" -u "$REGISTRY_USER:$REGISTRY_PASS" -o /dev/null -w "%{http_code}" \
        "http://$REGISTRY_AUTH/v2/")" = 200 &&
    ! skopeo copy -q --dest-tls-verify=false --dest-no-creds \
        "oci:$FIXTURES/oci-layout:basic" "docker://$REGISTRY_AUTH/anon/basic:1" 2>anon.err &&
    fixture_push basic "$REGISTRY_AUTH/fixture/basic:1" &&
    ! skopeo inspect --tls-verify=false --no-creds "docker://$REGISTRY_AUTH/fixture/basic:1" &&
    skopeo inspect --tls-verify=false --creds "$REGISTRY_USER:$REGISTRY_PASS" \
        "docker://$REGISTRY_AUTH/fixture/basic:1" >/dev/null
'

test_expect_success 'registry_stop stops the registry' '
    registry_start plain EXTRA &&
    pid=$(cat "$EXTRA_DIR/pid") &&
    registry_stop EXTRA &&
    ! curl -s --noproxy "*" --max-time 2 "http://$EXTRA/v2/" &&
    { stat=$(ps -o stat= -p "$pid") &&
    echo "after stop: $stat" &&
    case $stat in Z*) true ;; *) false ;; esac ||
    test -z "$stat"; }
'

test_expect_success 'hostile archives are made, and skopeo rejects the docker ones' '
    bad= &&
    for kind in $FIXTURE_HOSTILE_KINDS; do
        out=$(fixture_hostile_archive "$kind" "hostile-$kind") &&
        test -e "$out" || bad="$bad $kind"
    done &&
    for kind in truncated blob-mismatch dotdot-layer abs-layer not-json; do
        if skopeo copy -q "docker-archive:hostile-$kind" "dir:out-$kind" 2>/dev/null; then
            bad="$bad accepted:$kind"
        fi
    done &&
    echo "bad:$bad" &&
    test -z "$bad"
'

test_expect_success 'hostile OCI layouts: skopeo rejects them' '
    bad= &&
    for kind in blob-mismatch-oci missing-blob bad-digest bad-digest-algo \
                bad-digest-dotdot not-json-oci; do
        if skopeo copy -q "oci:hostile-$kind" "dir:oci-out-$kind" 2>/dev/null; then
            bad="$bad $kind"
        fi
    done &&
    echo "accepted:$bad" &&
    test -z "$bad" &&
    out=$(fixture_hostile_archive size-mismatch size.tar) &&
    tar tf size.tar | grep -qx index.json
'

test_expect_success 'hostile images are made and pushed; host target untouched' '
    mkdir -p outside &&
    bad= &&
    for kind in $FIXTURE_HOSTILE_IMAGE_KINDS; do
        fixture_hostile_image "$kind" "evil-$kind" >/dev/null &&
        skopeo inspect "oci:evil-$kind:evil" >/dev/null || bad="$bad $kind"
    done &&
    echo "bad:$bad" &&
    test -z "$bad" &&
    fixture_hostile_image symlink-escape evil.tar >/dev/null &&
    skopeo inspect "oci-archive:evil.tar:evil" >/dev/null &&
    fixture_push_hostile_image symlink-escape fixture/evil-symlink:1 &&
    skopeo inspect --tls-verify=false "docker://$REGISTRY/fixture/evil-symlink:1" |
        jq -e ".Layers | length == 2" &&
    test ! -e outside/victim
'

test_expect_success 'fixture_make_big writes a docker-archive skopeo reads' '
    big=$(fixture_make_big big 4) &&
    skopeo inspect "docker-archive:$big" | jq -e ".Layers | length == 5" &&
    fixture_push_from "docker-archive:$big" fixture/big:4m &&
    skopeo inspect --tls-verify=false "docker://$REGISTRY/fixture/big:4m" >/dev/null
'

test_done
