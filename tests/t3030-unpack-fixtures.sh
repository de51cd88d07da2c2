#!/bin/bash
test_description='chrun-unpack of every fixture image of the test rig matches umoci unpack'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-fixtures.sh

test_expect_success 'setup: the fixture OCI layout copied into the store' '
    fixtures_ensure &&
    mkdir -p "$CHRUN_ROOT/blobs/sha256" "$CHRUN_ROOT/tmp" "$CHRUN_ROOT/locks" &&
    cp "$FIXTURES/oci-layout/oci-layout" "$CHRUN_ROOT/" &&
    cp "$FIXTURES"/oci-layout/blobs/sha256/* "$CHRUN_ROOT/blobs/sha256/" &&
    jq ".manifests |= map(.annotations[\"org.opencontainers.image.ref.name\"] |= \"docker.io/library/fx:\" + .)" \
        "$FIXTURES/oci-layout/index.json" >"$CHRUN_ROOT/index.json"
'

for tag in $FIXTURE_TAGS; do
    test_expect_success "fixture $tag: same tree as umoci unpack" "
        chrun-unpack fx:$tag chrun-$tag >/dev/null &&
        oracle=$tag &&
        case $tag in *-zstd) oracle=\${tag%-zstd} ;; esac &&
        fixture_umoci_unpack \$oracle umoci-$tag &&
        \"\$TEST_DIRECTORY\"/treecmp chrun-$tag/rootfs umoci-$tag/rootfs
    "
done

test_expect_success 'fixture basic runs under runc and prints what its command prints' '
    id=chrun-t3030-$$ &&
    test_when_finished "runc delete -f $id >/dev/null 2>&1" &&
    runc run -b chrun-basic "$id" </dev/null >out 2>runc.err &&
    echo "hello from fixture" >expect && test_cmp expect out
'

test_done
