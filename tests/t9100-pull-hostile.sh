#!/bin/bash
test_description='chrun-pull against hostile registries: every failure is one error line, exit 1, nothing new in blobs/'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"

fixtures_ensure
registry_start plain
registry_start auth
fixture_push basic "$REGISTRY/basic:1"
fixture_push full "$REGISTRY/full:1"
fixture_push full "$REGISTRY_AUTH/full:1"
export CHRUN_STALL_TIMEOUT=1

# What a failed pull must leave untouched.
snapshot_published() {
    tree_snapshot "$CHRUN_ROOT/blobs"
    cat "$CHRUN_ROOT/index.json"
}

# expect_refused REF PATTERN [network]: exit 1, one error line matching
# PATTERN, blobs/ and index.json unchanged, and (unless the failure is a
# network one, which may leave resumable partials) no partial left of a
# blob the error names.
expect_refused() {
    local ref=$1 pattern=$2 kind=${3-} d
    rm -rf "$CHRUN_ROOT" &&
    chrun-pull -q "$REGISTRY/basic:1" >/dev/null &&
    snapshot_published >before &&
    test_expect_code 1 chrun-pull "$ref" 2>err &&
    test_one_error_line chrun-pull err "$pattern" &&
    snapshot_published >after &&
    test_cmp before after || return 1
    [ "$kind" != network ] || return 0
    for d in $(grep -oE "blob sha256:[0-9a-f]{64}" err | cut -d: -f2); do
        if [ -e "$CHRUN_ROOT/tmp/blob-$d.partial" ]; then
            echo "partial of proven-bad blob $d kept" >&2
            return 1
        fi
    done
}

test_expect_success 'setup: a store with one image' '
    chrun-pull -q "$REGISTRY/basic:1" >/dev/null && store_fsck
'

test_expect_success 'blob bytes that do not match the digest (registry storage corrupted)' '
    fixture_push_corrupt_layer "$REGISTRY/corrupt:1" >layer &&
    expect_refused "$REGISTRY/corrupt:1" "blob $(cat layer): digest mismatch"
'

test_expect_success 'blob bytes flipped in transit' '
    evil_start corrupt &&
    expect_refused "$EVIL/full:1" "blob sha256:[0-9a-f]{64}: digest mismatch"
'

test_expect_success 'a lying Content-Length is refused before the body' '
    evil_start lying-length &&
    expect_refused "$EVIL/full:1" "blob sha256:[0-9a-f]{64}: server declared Content-Length [0-9]+, expected [0-9]+ bytes"
'

test_expect_success 'more bytes than the descriptor size abort at once' '
    evil_start extra-bytes &&
    expect_refused "$EVIL/full:1" "blob sha256:[0-9a-f]{64}: more bytes than the declared size"
'

test_expect_success 'a lying Docker-Content-Digest' '
    evil_start wrong-digest-header &&
    expect_refused "$EVIL/full:1" "manifest .*full:1: Docker-Content-Digest sha256:[0-9a-f]{64} does not match"
'

test_expect_success 'a manifest that is not JSON' '
    evil_start not-json &&
    expect_refused "$EVIL/full:1" "manifest .*full:1: invalid JSON"
'

test_expect_success 'a manifest over 4 MiB is refused while it streams' '
    evil_start huge-manifest &&
    expect_refused "$EVIL/full:1" "manifest .*full:1: larger than 4194304 bytes"
'

test_expect_success 'an index nested without end' '
    evil_start deep-index &&
    expect_refused "$EVIL/deep:1" "index sha256:[0-9a-f]{64}: nested more than [0-9]+ deep"
'

test_expect_success 'a schema1 manifest gets a clear error' '
    evil_start schema1 &&
    expect_refused "$EVIL/full:1" "schema1 manifests are not supported"
'

test_expect_success 'a malformed WWW-Authenticate challenge' '
    evil_start bad-challenge &&
    expect_refused "$EVIL/full:1" "malformed WWW-Authenticate header"
'

test_expect_success 'a stalled blob times out (CHRUN_STALL_TIMEOUT), no hang' '
    evil_start stall &&
    expect_refused "$EVIL/full:1" "blob sha256:[0-9a-f]{64}: .*(too slow|timed out|[Tt]imeout)" network
'

test_expect_success '429 that never recovers: retried (Retry-After), then gives up with the status' '
    evil_start status-429 &&
    expect_refused "$EVIL/full:1" "HTTP 429 \(gave up after retries\)" network &&
    n=$(grep -c "/blobs/" "$EVIL_LOG") &&
    test "$n" -ge 5
'

test_expect_success '503 that never recovers: gives up with the status' '
    evil_start status-503 &&
    expect_refused "$EVIL/full:1" "HTTP 503 \(gave up after retries\)" network
'

test_expect_success 'a web server that is not a registry: says so after one GET /v2/' '
    evil_start web-server &&
    expect_refused "$EVIL/basic:1" "$EVIL does not look like a registry: GET /v2/ answered HTTP 404" network &&
    test "$(grep -c "^GET /v2/ " "$EVIL_LOG")" = 1
'

test_expect_success 'a redirect to another host: followed, no credentials sent there' '
    evil_start redirect --upstream "$REGISTRY_AUTH" --blob-dir "$REGISTRY_AUTH_DIR/storage/docker/registry/v2/blobs" &&
    mkdir -p "$DOCKER_CONFIG" &&
    echo "{\"auths\":{\"$EVIL\":{\"auth\":\"$(printf %s "$REGISTRY_USER:$REGISTRY_PASS" | base64 -w0)\"}}}" \
        >"$DOCKER_CONFIG/config.json" &&
    rm -rf "$CHRUN_ROOT" &&
    chrun-pull "$EVIL/full:1" >out &&
    grep -q "manifests/1 range=- auth=yes" "$EVIL_LOG" &&
    test -s "$EVIL_OTHER_LOG" &&
    ! grep -v "auth=none$" "$EVIL_OTHER_LOG" &&
    store_fsck
'

test_expect_success 'after all that, an honest pull works and the store is sound' '
    chrun-pull -q "$REGISTRY/full:1" >/dev/null && store_fsck
'

test_expect_success 'a bad number in a CHRUN_* variable: exit 1 naming it, before any work' '
    rm -rf "$CHRUN_ROOT" &&
    chrun-pull -q "$REGISTRY/basic:1" >/dev/null &&
    snapshot_published >before &&
    CHRUN_STALL_TIMEOUT=10s test_expect_code 1 chrun-pull "$REGISTRY/full:1" 2>err &&
    test_one_error_line chrun-pull err "CHRUN_STALL_TIMEOUT: invalid value .10s.: want 1 to 86399 seconds" &&
    CHRUN_BLOB_STALL_LIMIT=86400 test_expect_code 1 chrun-pull "$REGISTRY/full:1" 2>err &&
    test_one_error_line chrun-pull err "CHRUN_BLOB_STALL_LIMIT: invalid value .86400." &&
    CHRUN_CONNECT_TIMEOUT=99999999999999999999 test_expect_code 1 chrun-pull "$REGISTRY/full:1" 2>err &&
    test_one_error_line chrun-pull err "CHRUN_CONNECT_TIMEOUT: invalid value" &&
    snapshot_published >after &&
    test_cmp before after
'

test_done
