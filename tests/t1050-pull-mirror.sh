#!/bin/bash
test_description='chrun-pull: CHRUN_REGISTRY_MIRRORS serve docker.io images'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"

fixtures_ensure
registry_start plain
fixture_push basic "$REGISTRY/library/mirrored:latest"
fixture_push basic "$REGISTRY/someone/app:2"
echo "$(fixture_digest basic)" >expect

test_expect_success 'a docker.io image comes from the mirror, named as docker.io' '
    CHRUN_REGISTRY_MIRRORS=$REGISTRY chrun-pull mirrored >out 2>err &&
    test_cmp expect out && test ! -s err &&
    jq -e ".manifests[] | select(.annotations[\"org.opencontainers.image.ref.name\"] == \"docker.io/library/mirrored:latest\")" \
        "$CHRUN_ROOT/index.json" &&
    grep -q "GET /v2/library/mirrored/manifests/latest" "$REGISTRY_LOG" &&
    store_fsck
'

test_expect_success 'a dead mirror is skipped with a warning; URL form with scheme' '
    rm -rf "$CHRUN_ROOT" &&
    CHRUN_REGISTRY_MIRRORS="127.0.0.1:1, http://$REGISTRY/" chrun-pull someone/app:2 >out 2>err &&
    test_cmp expect out &&
    grep -q "^chrun-pull: warning: mirror: .*127.0.0.1:1" err &&
    store_fsck
'

test_expect_success 'an http mirror that is not loopback or listed insecure is refused' '
    rm -rf "$CHRUN_ROOT" &&
    CHRUN_REGISTRY_MIRRORS="http://mirror.invalid,$REGISTRY" chrun-pull mirrored >out 2>err &&
    test_cmp expect out &&
    grep -q "plain http only for loopback" err
'

test_expect_success 'images of other registries ignore the mirrors' '
    rm -rf "$CHRUN_ROOT" &&
    n=$(registry_requests REGISTRY) &&
    CHRUN_REGISTRY_MIRRORS=$REGISTRY test_expect_code 1 chrun-pull 127.0.0.1:1/library/mirrored 2>err &&
    test "$(registry_requests REGISTRY)" = "$n"
'

test_done
