#!/bin/bash
test_description='chrun-pull with bearer tokens: docker-registry auth: token + scripts/token-server.py'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"

fixtures_ensure
registry_start plain
fixture_push basic "$REGISTRY/basic:1"

registry_token_start TOKREG "$REGISTRY_DIR/storage" --anonymous-pull --refresh-token refresh-secret-1
registry_token_start PRIVREG "$REGISTRY_DIR/storage"
mkdir -p "$DOCKER_CONFIG"
echo "$(fixture_digest basic)" >expect
b64() { printf '%s' "$1" | base64 -w0; }

test_expect_success 'anonymous bearer token (like Docker Hub public images)' '
    chrun-pull "$TOKREG/basic:1" >out &&
    test_cmp expect out &&
    grep -q "GET /token?service=chrun-test-registry&scope=repository%3Abasic%3Apull user=-" \
        "$TOKREG_TOKEN_DIR/token.log" &&
    store_fsck
'

test_expect_success 'one token serves the whole pull (reused in-process)' '
    rm -rf "$CHRUN_ROOT" && : >"$TOKREG_TOKEN_DIR/token.log" &&
    chrun-pull "$TOKREG/basic:1" >out &&
    test "$(wc -l <"$TOKREG_TOKEN_DIR/token.log")" = 1
'

test_expect_success 'private repository without credentials: authentication error' '
    rm -f "$DOCKER_CONFIG/config.json" &&
    test_expect_code 1 chrun-pull "$PRIVREG/basic:1" 2>err &&
    test_one_error_line chrun-pull err "refused anonymous access.*no credentials"
'

test_expect_success 'token with credentials from config.json' '
    rm -rf "$CHRUN_ROOT" &&
    echo "{\"auths\":{\"$PRIVREG\":{\"auth\":\"$(b64 "$REGISTRY_USER:$REGISTRY_PASS")\"}}}" \
        >"$DOCKER_CONFIG/config.json" &&
    chrun-pull "$PRIVREG/basic:1" >out &&
    test_cmp expect out &&
    grep -q "user=$REGISTRY_USER" "$PRIVREG_TOKEN_DIR/token.log" &&
    store_fsck
'

test_expect_success 'wrong password at the token server: says so, store unchanged' '
    rm -rf "$CHRUN_ROOT" && mkdir -p "$CHRUN_ROOT" && store_snapshot >before &&
    echo "{\"auths\":{\"$PRIVREG\":{\"auth\":\"$(b64 "$REGISTRY_USER:nope")\"}}}" \
        >"$DOCKER_CONFIG/config.json" &&
    test_expect_code 1 chrun-pull "$PRIVREG/basic:1" 2>err &&
    test_one_error_line chrun-pull err "refused the credentials.*wrong username or password" &&
    rm -rf "$CHRUN_ROOT/locks" "$CHRUN_ROOT/tmp" "$CHRUN_ROOT/bundles" &&
    test "$(ls "$CHRUN_ROOT/blobs/sha256" | wc -l)" = 0
'

test_expect_success 'identity token: OAuth2 refresh-token grant' '
    rm -rf "$CHRUN_ROOT" &&
    echo "{\"auths\":{\"$TOKREG\":{\"identitytoken\":\"refresh-secret-1\"}}}" \
        >"$DOCKER_CONFIG/config.json" &&
    chrun-pull "$TOKREG/basic:1" >out &&
    test_cmp expect out &&
    grep -q "POST /token user=refresh:ok" "$TOKREG_TOKEN_DIR/token.log"
'

test_done
