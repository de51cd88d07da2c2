#!/bin/bash
test_description='chrun-push: plain, htpasswd and token registries; HEAD skips, cross-repo mount, chunked upload, index; skopeo reads it back'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"

fixtures_ensure
registry_start plain
registry_start auth
registry_start plain SRC
mkdir -p "$DOCKER_CONFIG"
b64() { printf '%s' "$1" | base64 -w0; }

FULL=$(chrun-load -q "$FIXTURES/full.oci.tar") &&
BASIC=$(chrun-load -q "$FIXTURES/basic.oci.tar") || exit 1
blob() { printf '%s\n' "$CHRUN_ROOT/blobs/sha256/${1#sha256:}"; }
# manifest digest, config and layer digests of a stored image manifest
refs_of() { jq -r '.config.digest, .layers[].digest' "$(blob "$1")"; }
# access-log lines of REGISTRY from line $1 on ("METHOD PATH STATUS")
log_since() { tail -n +"$1" "$REGISTRY_LOG" | grep -o '"[A-Z]* /v2/[^ ]* HTTP/1.1" [0-9]*' | tr -d '"' | sed 's/ HTTP\/1.1//'; }
log_mark() { echo $(($(wc -l <"$REGISTRY_LOG") + 1)); }
skopeo_raw() { skopeo inspect --raw --tls-verify=false "$@"; }

test_expect_success '-h, --version, usage errors exit 2' '
    chrun-push -h >out && grep -q "^Usage: chrun-push" out &&
    chrun-push --version >out && grep -q "^chrun-push " out &&
    test_expect_code 2 chrun-push 2>err &&
    grep -q "^chrun-push: error: expected IMAGE and DEST_REF" err &&
    test_expect_code 2 chrun-push "$FULL" 2>err &&
    test_expect_code 2 chrun-push a b c 2>err &&
    test_expect_code 2 chrun-push --bogus a b 2>err && grep -q "^chrun-push: error: " err &&
    test_expect_code 2 chrun-push "$FULL" "$REGISTRY/x@sha256:zz" 2>err &&
    grep -q "^chrun-push: error: .*sha256:zz" err &&
    test_expect_code 2 chrun-push "$FULL" "$REGISTRY/UPPER:1" 2>err
'

test_expect_success 'push a loaded image: prints its digest, skopeo reads back the same manifest and blobs' '
    store_snapshot >before &&
    chrun-push "$FULL" "$REGISTRY/pushed:1" >out 2>err &&
    test ! -s err &&
    echo "$FULL" >expect && test_cmp expect out &&
    skopeo_raw "docker://$REGISTRY/pushed:1" >raw &&
    cmp raw "$(blob "$FULL")" &&
    skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$REGISTRY/pushed:1" "dir:$TRASH_DIRECTORY/back" &&
    cmp back/manifest.json "$(blob "$FULL")" &&
    for d in $(refs_of "$FULL"); do
        cmp "back/${d#sha256:}" "$(blob "$d")" || return 1
    done &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 're-push: HEADs only, no upload, the same line' '
    mark=$(log_mark) &&
    chrun-push "$FULL" "$REGISTRY/pushed:1" >out &&
    test_cmp expect out &&
    log_since "$mark" >reqs &&
    test "$(grep -c "^HEAD /v2/pushed/blobs/" reqs)" = "$(refs_of "$FULL" | sort -u | wc -l)" &&
    ! grep -q "blobs/uploads" reqs &&
    ! grep -q "^PATCH" reqs &&
    grep -q "^PUT /v2/pushed/manifests/1 201" reqs
'

test_expect_success 'IMAGE by name, by short digest and from stdin' '
    chrun-push fixture/full:1 "$REGISTRY/byname:1" >out && test_cmp expect out &&
    chrun-push "${FULL:7:12}" "$REGISTRY/byname:2" >out && test_cmp expect out &&
    echo "$FULL" | chrun-push - "$REGISTRY/byname:3" >out && test_cmp expect out &&
    skopeo_raw "docker://$REGISTRY/byname:3" | cmp - "$(blob "$FULL")"
'

test_expect_success 'second repository of the same registry: blobs are mounted, not uploaded' '
    chrun-pull -q "$REGISTRY/pushed:1" >/dev/null &&
    store_snapshot >before &&
    mark=$(log_mark) &&
    chrun-push "$REGISTRY/pushed:1" "$REGISTRY/mounted:1" >out &&
    test_cmp expect out &&
    log_since "$mark" >reqs &&
    for d in $(refs_of "$FULL"); do
        grep -q "^POST /v2/mounted/blobs/uploads/?.*mount=$d.* 201" reqs || return 1
    done &&
    grep -q "from=pushed" reqs &&
    ! grep -q "^PUT /v2/mounted/blobs/uploads" reqs &&
    ! grep -q "^PATCH" reqs &&
    skopeo_raw "docker://$REGISTRY/mounted:1" | cmp - "$(blob "$FULL")" &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'push by digest: DEST_REF@digest must be the image; a wrong one sends nothing' '
    chrun-push "$FULL" "$REGISTRY/bydigest@$FULL" >out && test_cmp expect out &&
    skopeo_raw "docker://$REGISTRY/bydigest@$FULL" | cmp - "$(blob "$FULL")" &&
    n=$(registry_requests REGISTRY) &&
    test_expect_code 1 chrun-push "$FULL" "$REGISTRY/bydigest@$BASIC" 2>err &&
    test_one_error_line chrun-push err "pins digest $BASIC" &&
    test "$(registry_requests REGISTRY)" = "$n"
'

test_expect_success 'a blob bigger than CHRUN_PUSH_CHUNK_SIZE goes in PATCH chunks, byte-identical' '
    big=$(jq -r "[.layers[] | {size, digest}] | max_by(.size) | .digest" "$(blob "$BASIC")") &&
    size=$(stat -c %s "$(blob "$big")") &&
    test "$size" -gt $((3 * 256 * 1024)) &&
    mark=$(log_mark) &&
    CHRUN_PUSH_CHUNK_SIZE=256K chrun-push "$BASIC" "$REGISTRY/chunked:1" >out &&
    echo "$BASIC" >expect.basic && test_cmp expect.basic out &&
    log_since "$mark" >reqs &&
    test "$(grep -c "^PATCH /v2/chunked/blobs/uploads/.* 202" reqs)" -ge $(((size + 262143) / 262144)) &&
    grep -q "^PUT /v2/chunked/blobs/uploads/.*digest=${big%%:*}%3[aA]${big#sha256:} 201" reqs &&
    cmp "$(registry_blob_path REGISTRY "$big")" "$(blob "$big")" &&
    skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$REGISTRY/chunked:1" "dir:$TRASH_DIRECTORY/chunked" &&
    cmp "chunked/${big#sha256:}" "$(blob "$big")" &&
    cmp chunked/manifest.json "$(blob "$BASIC")"
'

test_expect_success 'a bad CHRUN_PUSH_CHUNK_SIZE: exit 1, named' '
    CHRUN_PUSH_CHUNK_SIZE=lots test_expect_code 1 chrun-push "$BASIC" "$REGISTRY/chunked:2" 2>err &&
    test_one_error_line chrun-push err "CHRUN_PUSH_CHUNK_SIZE.*lots"
'

# An OCI index on the SRC registry: basic for the host, full for another platform.
make_index() {
    local a b sa sb
    fixture_push basic "$SRC/multi:basic" && fixture_push full "$SRC/multi:full" &&
    curl -sf --noproxy "*" -H "Accept: application/vnd.oci.image.manifest.v1+json" "http://$SRC/v2/multi/manifests/basic" >a.json &&
    curl -sf --noproxy "*" -H "Accept: application/vnd.oci.image.manifest.v1+json" "http://$SRC/v2/multi/manifests/full" >b.json &&
    a=sha256:$(sha256sum <a.json | cut -d" " -f1) && sa=$(stat -c %s a.json) &&
    b=sha256:$(sha256sum <b.json | cut -d" " -f1) && sb=$(stat -c %s b.json) &&
    jq -n --arg a "$a" --arg b "$b" --argjson sa "$sa" --argjson sb "$sb" \
        "{schemaVersion: 2, mediaType: \"application/vnd.oci.image.index.v1+json\", manifests: [
          {mediaType: \"application/vnd.oci.image.manifest.v1+json\", digest: \$a, size: \$sa, platform: {os: \"linux\", architecture: \"amd64\"}},
          {mediaType: \"application/vnd.oci.image.manifest.v1+json\", digest: \$b, size: \$sb, platform: {os: \"linux\", architecture: \"arm64\", variant: \"v8\"}}]}" >index.json &&
    curl -sf --noproxy "*" -X PUT -H "Content-Type: application/vnd.oci.image.index.v1+json" \
        --data-binary @index.json "http://$SRC/v2/multi/manifests/1" >/dev/null &&
    echo "$a $b" >children
}

test_expect_success 'multi-platform index: children by digest first, index last; skopeo reads it back equal' '
    make_index &&
    idx=$(chrun-pull -q --all-platforms "$SRC/multi:1") &&
    mark=$(log_mark) &&
    chrun-push "$idx" "$REGISTRY/index:1" >out &&
    echo "$idx" >expect.idx && test_cmp expect.idx out &&
    skopeo_raw "docker://$REGISTRY/index:1" | cmp - index.json &&
    for c in $(cat children); do
        skopeo_raw "docker://$REGISTRY/index@$c" | cmp - "$(blob "$c")" || return 1
    done &&
    log_since "$mark" | grep "^PUT /v2/index/manifests/" >puts &&
    test "$(wc -l <puts)" = 3 &&
    tail -n 1 puts | grep -q "^PUT /v2/index/manifests/1 201" &&
    ! head -n 2 puts | grep -qv "manifests/sha256:"
'

test_expect_success 'unknown IMAGE: exit 1, nothing sent, store unchanged' '
    store_snapshot >before &&
    n=$(registry_requests REGISTRY) &&
    test_expect_code 1 chrun-push nosuch/image:1 "$REGISTRY/x:1" 2>err &&
    test_one_error_line chrun-push err "no such image .nosuch/image:1." &&
    test "$(registry_requests REGISTRY)" = "$n" &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'htpasswd registry: no credentials, then wrong ones, fail clearly' '
    rm -f "$DOCKER_CONFIG/config.json" &&
    test_expect_code 1 chrun-push "$FULL" "$REGISTRY_AUTH/full:1" 2>err &&
    test_one_error_line chrun-push err "requires .*authentication.*no credentials" &&
    echo "{\"auths\":{\"$REGISTRY_AUTH\":{\"auth\":\"$(b64 "$REGISTRY_USER:wrong")\"}}}" \
        >"$DOCKER_CONFIG/config.json" &&
    test_expect_code 1 chrun-push "$FULL" "$REGISTRY_AUTH/full:1" 2>err &&
    test_one_error_line chrun-push err "wrong username or password" &&
    test_expect_code 1 skopeo_raw --creds "$REGISTRY_USER:$REGISTRY_PASS" "docker://$REGISTRY_AUTH/full:1"
'

test_expect_success 'htpasswd registry with credentials from config.json' '
    echo "{\"auths\":{\"$REGISTRY_AUTH\":{\"auth\":\"$(b64 "$REGISTRY_USER:$REGISTRY_PASS")\"}}}" \
        >"$DOCKER_CONFIG/config.json" &&
    chrun-push "$FULL" "$REGISTRY_AUTH/full:1" >out &&
    test_cmp expect out &&
    skopeo_raw --creds "$REGISTRY_USER:$REGISTRY_PASS" "docker://$REGISTRY_AUTH/full:1" |
        cmp - "$(blob "$FULL")"
'

registry_token_start TOKREG "$TRASH_DIRECTORY/TOKREG/storage" --anonymous-pull

test_expect_success 'token registry, anonymous: the token grants no push, exit 1' '
    rm -f "$DOCKER_CONFIG/config.json" &&
    test_expect_code 1 chrun-push "$FULL" "$TOKREG/tok:1" 2>err &&
    test_one_error_line chrun-push err "requires authentication.*no credentials"
'

test_expect_success 'token registry with credentials: one token with pull,push scope' '
    echo "{\"auths\":{\"$TOKREG\":{\"auth\":\"$(b64 "$REGISTRY_USER:$REGISTRY_PASS")\"}}}" \
        >"$DOCKER_CONFIG/config.json" &&
    : >"$TOKREG_TOKEN_DIR/token.log" &&
    chrun-push "$FULL" "$TOKREG/tok:1" >out &&
    test_cmp expect out &&
    grep -q "scope=repository%3Atok%3Apull%2Cpush user=$REGISTRY_USER" "$TOKREG_TOKEN_DIR/token.log" &&
    test "$(wc -l <"$TOKREG_TOKEN_DIR/token.log")" = 1 &&
    skopeo_raw --creds "$REGISTRY_USER:$REGISTRY_PASS" "docker://$TOKREG/tok:1" | cmp - "$(blob "$FULL")"
'

test_expect_success 'token registry, mount: the token also asks for pull on the source repository' '
    chrun-pull -q "$TOKREG/tok:1" >/dev/null &&
    : >"$TOKREG_TOKEN_DIR/token.log" &&
    chrun-push "$TOKREG/tok:1" "$TOKREG/tok2:1" >out &&
    test_cmp expect out &&
    grep -q "scope=repository%3Atok2%3Apull%2Cpush&scope=repository%3Atok%3Apull user=$REGISTRY_USER" \
        "$TOKREG_TOKEN_DIR/token.log" &&
    skopeo_raw --creds "$REGISTRY_USER:$REGISTRY_PASS" "docker://$TOKREG/tok2:1" | cmp - "$(blob "$FULL")"
'

test_done
