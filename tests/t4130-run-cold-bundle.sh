#!/bin/bash
test_description='cold chrun run (cached bundle), the copy path and chrun-pull --unpack: the bundle is made while the layers download; refused targets and bad layers change nothing'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"
. "$TEST_DIRECTORY/lib-cold.sh"

if [ "$(id -u)" != 0 ]; then
    test_skip_all 'needs root (the ordinary-user case runs as nobody through setpriv)'
fi

# wait_for_line PATTERN FILE: until FILE has a line matching PATTERN.
wait_for_line() {
    test_wait_until "'$1' in $2" grep -Eq -- "$1" "$2" || { cat "$2" >&2; return 1; }
}

# bundle_same A B: the same rootfs and the same config.json.
bundle_same() {
    tree_snapshot "$1/rootfs" >"$1.snap" &&
    tree_snapshot "$2/rootfs" >"$2.snap" &&
    test_cmp "$1.snap" "$2.snap" &&
    test_cmp "$1/config.json" "$2/config.json"
}

no_staging() { # DIR: no staging directory of a bundle left in DIR
    test -z "$(find "$1" -maxdepth 1 -name ".*.tmp-*" -o -maxdepth 1 -name ".*.new-*")"
}

test_expect_success 'setup: a registry with good and bad two-layer images, links in front' '
    registry_start plain &&
    fixtures_ensure &&
    cold_image_push cold/ok:1 ok >ok.layer &&
    cold_image_push cold/other:1 other >other.layer &&
    cold_image_push cold/diffid:1 diffid bad-diff-id >diffid.layer &&
    mkfifo hold &&
    link_start HOLD --hold-fifo "$TRASH_DIRECTORY/hold" &&
    cold_image_push cold/restart:1 restart >restart.layer &&
    link_start RESTART --restart &&
    CHRUN_ROOT=$TRASH_DIRECTORY/seq chrun-pull -q "$REGISTRY/cold/ok:1" >ok.digest &&
    CHRUN_ROOT=$TRASH_DIRECTORY/seq chrun-unpack -q "$REGISTRY/cold/ok:1" >seq.bundle &&
    CHRUN_ROOT=$TRASH_DIRECTORY/seq chrun-unpack -q "$REGISTRY/cold/ok:1" seq-b
'

test_expect_success 'cold chrun run makes the cached bundle while downloading: the same bundle pull then unpack make' '
    CHRUN_DEBUG=1 chrun run "$REGISTRY/cold/ok:1" \
        sh -c "cat /cold/first /cold/last; wc -c </cold/big" >out 2>err &&
    CHRUN_ROOT=$TRASH_DIRECTORY/seq chrun run -q "$REGISTRY/cold/ok:1" \
        sh -c "cat /cold/first /cold/last; wc -c </cold/big" >expect &&
    test_cmp expect out &&
    grep -q "bundle of $(cat ok.digest) made while it downloaded" err &&
    ! grep -q "chrun run: debug: layer 1/2" err &&
    hex=$(cut -d: -f2 ok.digest) &&
    bundle_same "$(cat seq.bundle)" "$CHRUN_ROOT/bundles/$(echo $hex | cut -c1-12)" &&
    no_staging "$CHRUN_ROOT/bundles" &&
    store_fsck
'

test_expect_success 'layer 2 is applied into the staging bundle while its download is held' '
    chrun-rmi "$REGISTRY/cold/ok:1" && chrun-gc -q &&
    rm -rf "$CHRUN_ROOT/bundles" &&
    { CHRUN_DEBUG=1 chrun run "$HOLD/cold/ok:1" cat /cold/last >out 2>err & } &&
    pid=$! &&
    wait_for_line "applying layer 2/2 $(cat ok.layer) while it downloads" err &&
    cold_wait_for "$CHRUN_ROOT/bundles/.*.tmp-*/rootfs/cold/first" &&
    test -z "$(ls "$CHRUN_ROOT/bundles")" &&
    echo go >hold &&
    wait $pid &&
    echo "last ok" >expect && test_cmp expect out &&
    no_staging "$CHRUN_ROOT/bundles"
'

test_expect_success 'SIGKILL of a cold run mid-download: no bundle under a name, store intact, the next run sweeps the staging and completes' '
    chrun-rmi "$HOLD/cold/ok:1" && chrun-gc -q && rm -rf "$CHRUN_ROOT/bundles" &&
    { chrun run "$HOLD/cold/ok:1" cat /cold/last >out 2>err & } &&
    pid=$! &&
    cold_wait_for "$CHRUN_ROOT/bundles/.*.tmp-*/rootfs/cold/first" &&
    pulls=$(pgrep -P $pid) && test -n "$pulls" &&
    kill -9 $pid $pulls && { wait $pid; true; } &&
    test_wait_until "chrun-pull gone" sh -c "! kill -0 $pulls 2>/dev/null" &&
    echo go >hold &&
    test -z "$(ls "$CHRUN_ROOT/bundles")" &&
    ! chrun-images | grep -q cold/ok &&
    store_fsck &&
    chrun run "$REGISTRY/cold/ok:1" cat /cold/last >out &&
    echo "last ok" >expect && test_cmp expect out &&
    no_staging "$CHRUN_ROOT/bundles" &&
    store_fsck
'

test_expect_success 'the copy path (CHRUN_RUN_COPY) unpacks its throwaway bundle while downloading, then removes it' '
    chrun-rmi "$REGISTRY/cold/ok:1" && chrun-gc -q &&
    mkdir tmp &&
    CHRUN_RUN_COPY=1 TMPDIR=$TRASH_DIRECTORY/tmp CHRUN_DEBUG=1 \
        chrun run --rm "$REGISTRY/cold/ok:1" cat /cold/first >out 2>err &&
    echo "first ok" >expect && test_cmp expect out &&
    grep -q "bundle of $(cat ok.digest) made while it downloaded" err &&
    test -z "$(ls -A tmp)" &&
    chrun-images | grep -q "^$REGISTRY/cold/ok:1 " &&
    store_fsck
'

test_expect_success 'chrun-pull --unpack=BUNDLE: the bundle chrun-unpack makes, the digest on stdout' '
    chrun-rmi "$REGISTRY/cold/ok:1" && chrun-gc -q &&
    CHRUN_DEBUG=1 chrun-pull --unpack=b1 "$REGISTRY/cold/ok:1" >out 2>err &&
    test_cmp ok.digest out &&
    grep -q "bundle of $(cat ok.digest) made while it downloaded" err &&
    bundle_same seq-b b1 &&
    chrun-unpack -q "$REGISTRY/cold/ok:1" b1 >path &&
    echo "$TRASH_DIRECTORY/b1" >expect && test_cmp expect path &&
    no_staging .
'

test_expect_success 'chrun-pull --unpack of a stored image unpacks it from the store' '
    chrun-pull --unpack=b2 "$REGISTRY/cold/ok:1" >out &&
    test_cmp ok.digest out &&
    bundle_same seq-b b2
'

test_expect_success 'chrun-pull --unpack=BUNDLE onto another image'"'"'s bundle: exit 1 before downloading, nothing changed' '
    store_snapshot >before &&
    tree_snapshot b1 >b1.before &&
    test_expect_code 1 chrun-pull --unpack=b1 "$REGISTRY/cold/other:1" >out 2>err &&
    test_one_error_line chrun-pull err "b1.* holds image $(cat ok.digest)" &&
    test ! -s out &&
    ! chrun-images | grep -q cold/other &&
    store_snapshot >after && test_cmp before after &&
    tree_snapshot b1 >b1.after && test_cmp b1.before b1.after &&
    no_staging .
'

test_expect_success 'chrun-pull --unpack=BUNDLE onto a non-empty directory: exit 1, nothing changed' '
    mkdir full && echo keep >full/mine &&
    store_snapshot >before &&
    test_expect_code 1 chrun-pull --unpack=full "$REGISTRY/cold/other:1" 2>err &&
    test_one_error_line chrun-pull err "full.* exists and is not a bundle" &&
    echo keep >expect && test_cmp expect full/mine && test "$(ls -A full)" = mine &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'a layer whose diff_id does not match: exit 1, no bundle, no staging, store unchanged' '
    store_snapshot >before &&
    test_expect_code 1 chrun-pull --unpack=bad "$REGISTRY/cold/diffid:1" >out 2>err &&
    test_one_error_line chrun-pull err "$(cat diffid.layer).*diff_id" &&
    test ! -e bad && no_staging . &&
    test_expect_code 1 chrun run "$REGISTRY/cold/diffid:1" true 2>err &&
    test_one_error_line chrun-pull err "$(cat diffid.layer).*diff_id" &&
    no_staging "$CHRUN_ROOT/bundles" &&
    ! chrun-images | grep -q cold/diffid &&
    store_fsck &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'a download that starts over: the bundle is unpacked from the store after the pull' '
    CHRUN_DEBUG=1 chrun run "$RESTART/cold/restart:1" cat /cold/last >out 2>err &&
    echo "last restart" >expect && test_cmp expect out &&
    grep -q "bundle of sha256:.* left to be unpacked after the pull: blob $(cat restart.layer): download restarted" err &&
    ! grep -q "made while it downloaded" err &&
    no_staging "$CHRUN_ROOT/bundles" &&
    store_fsck
'

test_expect_success 'usage: --tree with --unpack, --unpack with two REFs or a list, an empty BUNDLE' '
    test_expect_code 2 chrun-pull --tree --unpack x 2>err &&
    grep -q "exclude each other" err &&
    test_expect_code 2 chrun-pull --unpack x y 2>err &&
    grep -q "one REF" err &&
    echo x | test_expect_code 2 chrun-pull --unpack -i - 2>err &&
    grep -q "one REF" err &&
    test_expect_code 2 chrun-pull --unpack= x 2>err &&
    grep -q "empty BUNDLE" err
'

test_expect_success 'an ordinary user without subordinate ids: the cold run'"'"'s bundle is made while downloading too' '
    chmod 755 "$TRASH_DIRECTORY" &&
    mkdir nobody && chown 65534:65534 nobody &&
    setpriv --reuid 65534 --regid 65534 --clear-groups env CHRUN_ROOT=$TRASH_DIRECTORY/nobody/store \
        HOME=$TRASH_DIRECTORY/nobody CHRUN_DEBUG=1 \
        chrun run "$REGISTRY/cold/ok:1" cat /cold/last >out 2>err &&
    echo "last ok" >expect && test_cmp expect out &&
    grep -q "unpacking without a user namespace\|bundle of $(cat ok.digest) made while it downloaded" err &&
    grep -q "bundle of $(cat ok.digest) made while it downloaded" err &&
    no_staging nobody/store/bundles
'

test_done
