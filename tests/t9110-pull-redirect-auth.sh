#!/bin/bash
test_description='chrun-pull: credentials, request bodies and challenges stay with the registry origin; slow peers time out'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"

fixtures_ensure
registry_start plain
fixture_push basic "$REGISTRY/basic:1"
fixture_push full "$REGISTRY/full:1"
USERPASS_B64=$(printf %s "$REGISTRY_USER:$REGISTRY_PASS" | base64 -w0)

# docker_config JSON-ENTRY: config.json with one auths entry for $EVIL.
docker_config() {
    mkdir -p "$DOCKER_CONFIG" &&
    echo "{\"auths\":{\"$EVIL\":$1}}" >"$DOCKER_CONFIG/config.json"
}

snapshot_published() {
    tree_snapshot "$CHRUN_ROOT/blobs"
    cat "$CHRUN_ROOT/index.json"
}

# expect_refused REF PATTERN: exit 1, one error line matching PATTERN,
# blobs/ and index.json unchanged.
expect_refused() {
    rm -rf "$CHRUN_ROOT" &&
    chrun-pull -q "$REGISTRY/basic:1" >/dev/null &&
    snapshot_published >before &&
    test_expect_code 1 chrun-pull "$1" 2>err &&
    test_one_error_line chrun-pull err "$2" &&
    snapshot_published >after &&
    test_cmp before after
}

# no_credentials_leaked: the other host saw no Authorization and no body
# with a secret in it.
no_credentials_leaked() {
    ! grep -v "auth=none" "$EVIL_OTHER_LOG" &&
    ! grep -q "refresh_token\|refresh-secret" "$EVIL_OTHER_LOG"
}

test_expect_success 'manifest redirected to another host that answers 401: refused, no credentials there' '
    evil_start redirect-401 &&
    docker_config "{\"auth\":\"$USERPASS_B64\"}" &&
    expect_refused "$EVIL/full:1" "manifest .*full:1: redirect target localhost:[0-9]+ answered 401" &&
    grep -q "^/v2/full/manifests/1 auth=none$" "$EVIL_OTHER_LOG" &&
    ! grep -q "^/token" "$EVIL_OTHER_LOG" &&
    no_credentials_leaked
'

test_expect_success 'blob redirected to another host that answers 401: refused, no credentials there' '
    evil_start blob-redirect-401 &&
    docker_config "{\"auth\":\"$USERPASS_B64\"}" &&
    expect_refused "$EVIL/full:1" "blob sha256:[0-9a-f]{64}: redirect target localhost:[0-9]+ answered 401" &&
    grep -q "^/v2/full/blobs/sha256:[0-9a-f]* auth=none$" "$EVIL_OTHER_LOG" &&
    ! grep -q "^/token" "$EVIL_OTHER_LOG" &&
    no_credentials_leaked
'

test_expect_success 'identity token: the refresh-token POST does not follow a redirect to another host' '
    evil_start token-redirect &&
    docker_config "{\"identitytoken\":\"refresh-secret-1\"}" &&
    expect_refused "$EVIL/full:1" "token request: refusing redirect to another host \(localhost:[0-9]+\)" &&
    grep -q "^POST /token " "$EVIL_LOG" &&
    ! grep -q "^POST" "$EVIL_OTHER_LOG" &&
    no_credentials_leaked
'

test_expect_success 'basic credentials: the token request does not follow a redirect to another host' '
    evil_start token-redirect &&
    docker_config "{\"auth\":\"$USERPASS_B64\"}" &&
    expect_refused "$EVIL/full:1" "token request: refusing redirect to another host \(localhost:[0-9]+\)" &&
    grep -q "^GET /token?.* auth=yes$" "$EVIL_LOG" &&
    ! grep -q "^/token" "$EVIL_OTHER_LOG" &&
    no_credentials_leaked
'

test_expect_success 'a manifest trickled a byte at a time hits the request deadline (CHRUN_REQUEST_TIMEOUT)' '
    evil_start trickle-manifest &&
    rm -f "$DOCKER_CONFIG/config.json" &&
    CHRUN_REQUEST_TIMEOUT=2 CHRUN_STALL_TIMEOUT=60 \
        expect_refused "$EVIL/full:1" "manifest .*full:1: no complete reply within 2 s"
'

# At 200 B/s each transfer is cut after a second and resumed with Range; a
# large blob runs out of attempts, a small one completes. Either way the
# stall guard fired, which a 1 B/s floor never does.
test_expect_success 'a blob slower than 1 KiB/s for CHRUN_STALL_TIMEOUT seconds counts as stalled' '
    evil_start slow --rate 200 &&
    rm -f "$DOCKER_CONFIG/config.json" && rm -rf "$CHRUN_ROOT" &&
    { CHRUN_STALL_TIMEOUT=1 chrun-pull -q "$EVIL/full:1" >out 2>err; rc=$?; } &&
    grep -q "/blobs/sha256:[0-9a-f]* range=bytes=[1-9][0-9]*- " "$EVIL_LOG" &&
    if test $rc = 0; then
        store_fsck
    else
        test $rc = 1 &&
        test_one_error_line chrun-pull err "blob sha256:[0-9a-f]{64}: Operation too slow"
    fi
'

test_expect_success 'after all that, an honest pull works and the store is sound' '
    chrun-pull -q "$REGISTRY/full:1" >/dev/null && store_fsck
'

test_done
