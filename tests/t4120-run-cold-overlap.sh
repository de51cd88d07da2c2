#!/bin/bash
test_description='cold chrun run --rm: each layer applied while it downloads; bad blobs and diff_ids publish nothing'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"
. "$TEST_DIRECTORY/lib-cold.sh"

if [ "$(id -u)" != 0 ]; then
    test_skip_all 'the tree is made while downloading only as root (an ordinary user unpacks in a user namespace)'
fi

# wait_for_line PATTERN FILE: until FILE has a line matching PATTERN.
wait_for_line() {
    test_wait_until "'$1' in $2" grep -Eq -- "$1" "$2" || { cat "$2" >&2; return 1; }
}

# The store but tmp/: a failed pull may keep resumable partials of blobs
# that were fine (chrun-pull does; see t9100), never of the bad one.
published_snapshot() {
    (cd "$CHRUN_ROOT" && find . -path ./locks -prune -o -path ./tmp -prune -o \
        -printf "%y %m %U:%G %s %p -> %l\n" | LC_ALL=C sort)
    (cd "$CHRUN_ROOT" && find . -path ./locks -prune -o -path ./tmp -prune -o -type f -print0 |
        LC_ALL=C sort -z | xargs -0 -r sha256sum)
}

our_mounts() {
    grep -F "$CHRUN_ROOT" /proc/self/mountinfo || true
}

STAGED="$CHRUN_ROOT/trees/.*.tmp-*/b/rootfs/cold/first"

test_expect_success 'setup: a registry with good and bad two-layer images, links in front' '
    registry_start plain &&
    fixtures_ensure &&
    cold_image_push cold/ok:1 ok >ok.layer &&
    cold_image_push cold/kill:1 kill >kill.layer &&
    cold_image_push cold/flip:1 flip >flip.layer &&
    cold_image_push cold/diffid:1 diffid bad-diff-id >diffid.layer &&
    mkfifo hold flip-hold &&
    link_start HOLD --hold-fifo "$TRASH_DIRECTORY/hold" &&
    link_start FLIP --hold-fifo "$TRASH_DIRECTORY/flip-hold" --flip-tail &&
    cold_image_push cold/restart:1 restart >restart.layer &&
    link_start RESTART --restart
'

test_expect_success 'cold run --rm gives the tree and result that pull then run give' '
    CHRUN_ROOT=$TRASH_DIRECTORY/seq chrun-pull -q "$REGISTRY/cold/ok:1" >seq.digest &&
    CHRUN_ROOT=$TRASH_DIRECTORY/seq chrun run --rm -q "$REGISTRY/cold/ok:1" \
        sh -c "cat /cold/first /cold/last; wc -c </cold/big" >expect &&
    CHRUN_DEBUG=1 chrun run --rm "$REGISTRY/cold/ok:1" \
        sh -c "cat /cold/first /cold/last; wc -c </cold/big" >out 2>err &&
    test_cmp expect out &&
    grep -q "tree of sha256:.* made while it downloaded" err &&
    hex=$(cut -d: -f2 seq.digest) &&
    tree_snapshot "$TRASH_DIRECTORY/seq/trees/$hex/rootfs" >tree.expect &&
    tree_snapshot "$CHRUN_ROOT/trees/$hex/rootfs" >tree.out &&
    test_cmp tree.expect tree.out &&
    chrun-images | grep -q "^$REGISTRY/cold/ok:1 " &&
    store_fsck &&
    test -z "$(ls -A "$CHRUN_ROOT/runs")" &&
    test -z "$(find "$CHRUN_ROOT/trees" -maxdepth 1 -name ".*")"
'

test_expect_success 'layer 2 is applied while its download is held: the overlap is an event' '
    chrun-rmi "$REGISTRY/cold/ok:1" && chrun-gc -q &&
    { CHRUN_DEBUG=1 chrun run --rm "$HOLD/cold/ok:1" cat /cold/last >out 2>err & } &&
    pid=$! &&
    wait_for_line "applying layer 2/2 $(cat ok.layer) while it downloads" err &&
    cold_wait_for "$STAGED" &&
    test ! -e "$CHRUN_ROOT/trees/$hex" &&
    echo go >hold &&
    wait $pid &&
    echo "last ok" >expect && test_cmp expect out &&
    test -d "$CHRUN_ROOT/trees/$hex/rootfs/cold"
'

test_expect_success 'a blob that fails its digest after entries were applied: exit 1, named, nothing published' '
    published_snapshot >before &&
    { chrun run --rm "$FLIP/cold/flip:1" true >out 2>flip.err & } &&
    pid=$! &&
    cold_wait_for "$STAGED" &&
    echo go >flip-hold &&
    { wait $pid; echo $? >rc; } &&
    echo 1 >expect && test_cmp expect rc &&
    test_one_error_line chrun-pull flip.err "blob $(cat flip.layer).*digest" &&
    test ! -e "$CHRUN_ROOT/tmp/blob-$(cut -d: -f2 flip.layer).partial" &&
    test -z "$(ls -A "$CHRUN_ROOT/trees" | grep -v "^$hex\$")" &&
    published_snapshot >after &&
    test_cmp before after
'

test_expect_success 'a layer whose diff_id does not match: exit 1, named, nothing published' '
    store_snapshot >before &&
    test_expect_code 1 chrun run --rm "$REGISTRY/cold/diffid:1" true >out 2>err &&
    test_one_error_line chrun-pull err "$(cat diffid.layer).*diff_id" &&
    ! chrun-images | grep -q cold/diffid &&
    store_fsck &&
    store_snapshot >after &&
    test_cmp before after
'

test_expect_success 'a blob whose download starts over from byte 0: the tree is made from the store after the pull' '
    CHRUN_DEBUG=1 chrun run --rm "$RESTART/cold/restart:1" cat /cold/last >out 2>err &&
    echo "last restart" >expect && test_cmp expect out &&
    grep -q "tree of sha256:.* left to be unpacked after the pull: blob $(cat restart.layer): download restarted" err &&
    ! grep -q "made while it downloaded" err &&
    store_fsck &&
    test -z "$(ls -A "$CHRUN_ROOT/trees" | grep "^\\.")"
'

test_done
