#!/bin/bash
test_description='chrun-gc --build-cache: cache mounts and step-cache entries go only when asked'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-fixtures.sh

export SOURCE_DATE_EPOCH=1700000000

test_expect_success 'setup: a build with a RUN cache mount and a cached RUN step' '
    fixtures_ensure &&
    chrun-load -q "$FIXTURES/basic.oci.tar" >/dev/null &&
    mkdir ctx && cat >ctx/Dockerfile <<-\EOF &&
	FROM fixture/basic:1
	RUN --mount=type=cache,target=/var/cache/app echo x >>/var/cache/app/log && cp /var/cache/app/log /log
	ENV A=1
	EOF
    chrun-build -q -t c:1 ctx >/dev/null &&
    test "$(ls "$CHRUN_ROOT/build-cache-mounts" | wc -l)" = 1 &&
    test "$(ls "$CHRUN_ROOT/build-cache" | wc -l)" = 1
'

test_expect_success 'plain gc keeps cache mounts and entries of images still named' '
    tree_snapshot "$CHRUN_ROOT/build-cache-mounts" >mounts.before &&
    ls "$CHRUN_ROOT/build-cache" >entries.before &&
    chrun-gc -q --json >gc.json &&
    test "$(jq .cache_removed gc.json)" = 0 &&
    test "$(jq .cache_mounts_removed gc.json)" = 0 &&
    tree_snapshot "$CHRUN_ROOT/build-cache-mounts" >mounts.after &&
    test_cmp mounts.before mounts.after &&
    ls "$CHRUN_ROOT/build-cache" >entries.after &&
    test_cmp entries.before entries.after
'

test_expect_success '--build-cache --dry-run counts, removes nothing' '
    chrun-gc -q --build-cache --dry-run --json >gc.json &&
    test "$(jq .cache_mounts_removed gc.json)" = 1 &&
    test "$(jq .cache_removed gc.json)" = "$(wc -l <entries.before)" &&
    tree_snapshot "$CHRUN_ROOT/build-cache-mounts" >mounts.after &&
    test_cmp mounts.before mounts.after &&
    ls "$CHRUN_ROOT/build-cache" >entries.after &&
    test_cmp entries.before entries.after
'

test_expect_success '--build-cache removes every cache mount and step-cache entry; images stay' '
    chrun-gc -q --build-cache --json >gc.json &&
    test "$(jq .cache_mounts_removed gc.json)" = 1 &&
    test "$(jq .cache_removed gc.json)" = "$(wc -l <entries.before)" &&
    test "$(jq .blobs_removed gc.json)" = 0 &&
    test -z "$(ls -A "$CHRUN_ROOT/build-cache-mounts")" &&
    test -z "$(ls -A "$CHRUN_ROOT/build-cache")" &&
    b=$(chrun-unpack c:1) && test "$(cat "$b/rootfs/log")" = x
'

test_expect_success 'the next build runs every step again with an empty cache mount' '
    chrun-build -t c:2 ctx >/dev/null 2>err &&
    ! grep -q "using cache" err &&
    b=$(chrun-unpack c:2) && test "$(cat "$b/rootfs/log")" = x
'

test_expect_success 'a file in build-cache/ that is no entry is left alone by plain gc' '
    echo "not json" >"$CHRUN_ROOT/build-cache/junk" &&
    chrun-gc -q &&
    test -f "$CHRUN_ROOT/build-cache/junk"
'

test_done
