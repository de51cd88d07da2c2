#!/bin/bash
test_description='chrun-push against hostile registries: a lying Docker-Content-Digest, an upload Location on another host, a failed upload'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"

fixtures_ensure
registry_start plain
registry_start auth
mkdir -p "$DOCKER_CONFIG"
b64() { printf '%s' "$1" | base64 -w0; }
FULL=$(chrun-load -q "$FIXTURES/full.oci.tar") || exit 1
blob() { printf '%s\n' "$CHRUN_ROOT/blobs/sha256/${1#sha256:}"; }

test_expect_success 'manifest PUT answered with a wrong Docker-Content-Digest: exit 1, named, store unchanged' '
    evil_start put-wrong-digest &&
    store_snapshot >before &&
    test_expect_code 1 chrun-push "$FULL" "$EVIL/wrong:1" >out 2>err &&
    test ! -s out &&
    test_one_error_line chrun-push err \
        "push $EVIL/wrong:1: manifest $FULL: registry $EVIL answered Docker-Content-Digest sha256:2d711642" &&
    grep -q "^PUT /v2/wrong/manifests/1 " "$EVIL_LOG" &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'an upload Location on another host gets no Authorization header' '
    evil_start upload-redirect --upstream "$REGISTRY_AUTH" &&
    echo "{\"auths\":{\"$EVIL\":{\"auth\":\"$(b64 "$REGISTRY_USER:$REGISTRY_PASS")\"}}}" \
        >"$DOCKER_CONFIG/config.json" &&
    store_snapshot >before &&
    test_expect_code 1 chrun-push "$FULL" "$EVIL/away:1" 2>err &&
    test_one_error_line chrun-push err "blob sha256:[0-9a-f]{64}: localhost:[0-9]+ answered HTTP 404" &&
    grep -q "^POST /v2/away/blobs/uploads/ range=- auth=yes" "$EVIL_LOG" &&
    grep -q "^PUT /v2/away/blobs/uploads/.* auth=none$" "$EVIL_OTHER_LOG" &&
    ! grep -v "auth=none$" "$EVIL_OTHER_LOG" &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'an upload that fails with 500 starts over with a new session and succeeds' '
    evil_start upload-fail-once &&
    chrun-push "$FULL" "$EVIL/again:1" >out &&
    echo "$FULL" >expect && test_cmp expect out &&
    n=$(jq ".layers | length + 1" "$(blob "$FULL")") &&
    test "$(grep -c "^POST /v2/again/blobs/uploads/ " "$EVIL_LOG")" = $((2 * n)) &&
    skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/again:1" | cmp - "$(blob "$FULL")"
'

test_expect_success 'a malformed WWW-Authenticate challenge: one request, one error line' '
    echo "{\"auths\":{\"$REGISTRY_AUTH\":{\"auth\":\"$(b64 "$REGISTRY_USER:$REGISTRY_PASS")\"}}}" \
        >"$DOCKER_CONFIG/config.json" &&
    evil_start bad-challenge --upstream "$REGISTRY_AUTH" &&
    test_expect_code 1 chrun-push "$FULL" "$EVIL/bad:1" 2>err &&
    test_one_error_line chrun-push err "malformed WWW-Authenticate|invalid" &&
    test "$(wc -l <"$EVIL_LOG")" = 1
'

test_done
