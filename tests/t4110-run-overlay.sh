#!/bin/bash
test_description='chrun run --rm: overlayfs over a read-only image tree, discarded at exit; gc, SIGKILL, copy path, ordinary user'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-cold.sh"

store_add() { # TAG REF
    skopeo --insecure-policy copy -q "oci:$FIXTURES/oci-layout:$1" "oci:$CHRUN_ROOT:$2"
}

# Mounts of the host's table under our store (only our own paths).
our_mounts() {
    grep -F "$CHRUN_ROOT" /proc/self/mountinfo || true
}

# wait_for_file F: until F exists and is not empty (a ready file a container
# writes).
wait_for_file() {
    test_wait_until "$1" test -s "$1"
}

# wait_gone PID: until process PID (not our child) has exited.
_gone() { ! kill -0 "$1" 2>/dev/null; }
wait_gone() {
    test_wait_until "process $1 to exit" _gone "$1"
}

# root_fstype: what `chrun run --rm` mounts as the container's /.
ROOT_FS='awk "\$5 == \"/\" { print \$9 }" /proc/self/mountinfo'

test_expect_success 'setup: two stored images' '
    fixtures_ensure &&
    store_add basic docker.io/library/basic:1 &&
    store_add user docker.io/library/user:1 &&
    chrun-images >/dev/null &&
    mkdir shared && chmod 777 shared
'

test_expect_success 'first run --rm unpacks the tree once; the container runs on an overlay' '
    chrun run --rm basic:1 sh -c "$ROOT_FS" >out &&
    echo overlay >expect && test_cmp expect out &&
    ls "$CHRUN_ROOT/trees" >trees && test "$(wc -l <trees)" -eq 1 &&
    tree=$CHRUN_ROOT/trees/$(cat trees) &&
    test -d "$tree/rootfs/bin" &&
    test -z "$(ls -A "$CHRUN_ROOT/runs")" &&
    test -z "$(our_mounts)"
'

test_expect_success 'second run: no new tree; writes reach neither the tree nor the next run' '
    tree_snapshot "$tree" >tree.before &&
    ls -i "$CHRUN_ROOT/trees" >inodes.before &&
    chrun run --rm basic:1 sh -c "echo x >/etc/marker; rm /bin/ls; mkdir -p /new/dir; cat /etc/marker" >out &&
    echo x >expect && test_cmp expect out &&
    chrun run --rm basic:1 sh -c "test ! -e /etc/marker && test -e /bin/ls && test ! -e /new && echo clean" >out &&
    echo clean >expect && test_cmp expect out &&
    ls -i "$CHRUN_ROOT/trees" >inodes.after && test_cmp inodes.before inodes.after &&
    tree_snapshot "$tree" >tree.after && test_cmp tree.before tree.after &&
    test -z "$(ls -A "$CHRUN_ROOT/runs")" &&
    test -z "$(our_mounts)"
'

test_expect_success 'exit status and exec options pass through the overlay path' '
    test_expect_code 7 chrun run --rm basic:1 sh -c "exit 7" &&
    chrun run --rm -e FOO=baz -w /tmp basic:1 sh -c "echo \$FOO \$(pwd)" >out &&
    echo "baz /tmp" >expect && test_cmp expect out &&
    chrun run --rm --isolate --hostname box basic:1 sh -c "hostname; $ROOT_FS" >out &&
    printf "box\noverlay\n" >expect && test_cmp expect out
'

test_expect_success 'the tree is no bundle: chrun-exec of it is refused and writes nothing' '
    test ! -e "$tree/config.json" &&
    tree_snapshot "$tree" >before &&
    test_expect_code 1 chrun-exec "$tree" touch /x 2>err &&
    test_one_error_line chrun-exec err "config.json" &&
    tree_snapshot "$tree" >after && test_cmp before after
'

test_expect_success 'while a run is alive its overlay is not in the host mount table' '
    rm -f shared/go shared/ready && mkfifo shared/go &&
    { chrun run --rm -v "$TRASH_DIRECTORY/shared:/shared" basic:1 \
        sh -c "$ROOT_FS >/shared/ready && read x </shared/go" & } &&
    pid=$! &&
    wait_for_file shared/ready &&
    echo overlay >expect && test_cmp expect shared/ready &&
    test -z "$(our_mounts)" &&
    test "$(ls "$CHRUN_ROOT/runs" | wc -l)" -eq 1 &&
    echo go >shared/go && wait $pid &&
    test -z "$(ls -A "$CHRUN_ROOT/runs")"
'

test_expect_success 'gc keeps the tree of a named image and of a live run; removes it when neither' '
    chrun run --rm user:1 true &&
    test "$(ls "$CHRUN_ROOT/trees" | wc -l)" -eq 2 &&
    chrun-gc &&
    test "$(ls "$CHRUN_ROOT/trees" | wc -l)" -eq 2 &&
    rm -f shared/go shared/ready && mkfifo shared/go &&
    { chrun run --rm -v "$TRASH_DIRECTORY/shared:/shared" user:1 \
        sh -c "echo up >/shared/ready && read x </shared/go" & } &&
    pid=$! &&
    wait_for_file shared/ready &&
    user_tree=$(ls "$CHRUN_ROOT/runs" | cut -c1-64) &&
    chrun-rmi user:1 &&
    chrun-gc &&
    test -d "$CHRUN_ROOT/trees/$user_tree" &&
    test -d "$tree" &&
    echo go >shared/go && wait $pid &&
    chrun-gc &&
    test ! -e "$CHRUN_ROOT/trees/$user_tree" &&
    test -d "$tree" &&
    test -z "$(ls -A "$CHRUN_ROOT/runs")"
'

test_expect_success 'SIGKILL of chrun run --rm: no mount left; the run stays while its command lives, then the next run sweeps it' '
    rm -f shared/pid &&
    { chrun run --rm -v "$TRASH_DIRECTORY/shared:/shared" basic:1 \
        sh -c "echo x >/written; echo \$\$ >/shared/pid; exec sleep 1000" & } &&
    pid=$! &&
    wait_for_file shared/pid &&
    kill -9 $pid && { wait $pid; true; } &&
    test -z "$(our_mounts)" &&
    ls "$CHRUN_ROOT/runs" >runs && test "$(wc -l <runs)" -eq 1 &&
    chrun run --rm basic:1 true &&
    test_cmp runs - <<<"$(ls "$CHRUN_ROOT/runs")" &&
    kill -9 "$(cat shared/pid)" && wait_gone "$(cat shared/pid)" &&
    chrun run --rm basic:1 sh -c "test ! -e /written" &&
    test -z "$(ls -A "$CHRUN_ROOT/runs")" &&
    test -z "$(our_mounts)"
'

test_expect_success 'leftovers of killed runs and tree makers: the next run or gc removes them' '
    hex=$(basename "$tree") &&
    mkdir -p "$CHRUN_ROOT/runs/$hex.0123456789abcdef/upper/d" "$CHRUN_ROOT/runs/.$hex.fedcba9876543210" &&
    : >"$CHRUN_ROOT/runs/$hex.0123456789abcdef/lock" &&
    chrun run --rm basic:1 true &&
    ls -A "$CHRUN_ROOT/runs" >runs && echo ".$hex.fedcba9876543210" >expect && test_cmp expect runs &&
    mkdir -p "$CHRUN_ROOT/trees/.$hex.tmp-0123456789abcdef/b/rootfs" &&
    chrun-gc &&
    test -z "$(ls -A "$CHRUN_ROOT/runs")" &&
    ls -A "$CHRUN_ROOT/trees" >trees && echo "$hex" >expect && test_cmp expect trees
'

test_expect_success 'an overlay the kernel refuses (a store on overlayfs cannot hold an upper): copy path, not an error' '
    mkdir -p ov/lower ov/upper ov/work ov/mnt &&
    unshare -m sh -c "
        mount -t overlay overlay -o lowerdir=ov/lower,upperdir=ov/upper,workdir=ov/work ov/mnt &&
        export CHRUN_ROOT=\$PWD/ov/mnt/store &&
        skopeo --insecure-policy copy -q oci:\$FIXTURES/oci-layout:basic oci:\$CHRUN_ROOT:docker.io/library/basic:1 &&
        CHRUN_DEBUG=1 TMPDIR=\$PWD/ov chrun run --rm basic:1 sh -c \"echo x >/m; cat /proc/self/mountinfo\" >ov/mountinfo 2>ov/err &&
        chrun run --rm basic:1 sh -c \"test ! -e /m\" &&
        ls -A \$CHRUN_ROOT/runs >ov/runs
    " &&
    awk "\$5 == \"/\" { print \$9 }" ov/mountinfo >ov/out && test -s ov/out &&
    ! grep -x overlay ov/out &&
    grep "overlay refused, copying the image instead: .*mount overlay" ov/err &&
    test ! -s ov/runs &&
    test -z "$(our_mounts)"
'

test_expect_success 'CHRUN_RUN_COPY=1 forces the copy path: no overlay, no tree made' '
    chrun-gc &&
    tmp=$TRASH_DIRECTORY/tmp && mkdir -p "$tmp" &&
    chrun-rmi basic:1 && chrun-gc && test -z "$(ls -A "$CHRUN_ROOT/trees")" &&
    store_add basic docker.io/library/basic:1 &&
    TMPDIR=$tmp CHRUN_RUN_COPY=1 CHRUN_DEBUG=1 chrun run --rm basic:1 \
        sh -c "touch /marker; $ROOT_FS" >out 2>err &&
    ! grep -x overlay out &&
    grep "copying the image, no overlay: CHRUN_RUN_COPY" err &&
    test -z "$(ls -A "$CHRUN_ROOT/trees")" &&
    test -z "$(ls -A "$tmp")" &&
    TMPDIR=$tmp CHRUN_RUN_COPY=1 chrun run --rm basic:1 sh -c "test ! -e /marker"
'

test_expect_success '--no-mounts has no namespace for an overlay: copy path' '
    CHRUN_DEBUG=1 chrun run --rm --no-mounts basic:1 sh -c "touch /m; echo ok" >out 2>err &&
    echo ok >expect && test_cmp expect out &&
    grep "copying the image, no overlay: --no-mounts" err
'

as_nobody() {
    setpriv --reuid 65534 --regid 65534 --clear-groups env CHRUN_ROOT="$NOBODY_ROOT" "$@"
}

test_expect_success 'an ordinary user: overlay where the kernel allows it, else the copy path' '
    chmod 755 "$TRASH_DIRECTORY" &&
    NOBODY_ROOT=$TRASH_DIRECTORY/nobody-store &&
    CHRUN_ROOT=$NOBODY_ROOT store_add basic docker.io/library/basic:1 &&
    chown -R 65534:65534 "$NOBODY_ROOT" &&
    as_nobody env CHRUN_DEBUG=1 chrun run --rm basic:1 sh -c "echo x >/etc/marker; mkdir -m 0 /zero; $ROOT_FS" >out 2>err &&
    if grep -x overlay out; then
        ls "$NOBODY_ROOT/trees" >trees && test "$(wc -l <trees)" -eq 1
    else
        grep "copying the image" err
    fi &&
    as_nobody chrun run --rm basic:1 sh -c "test ! -e /etc/marker && echo clean" >out &&
    echo clean >expect && test_cmp expect out &&
    test -z "$(ls -A "$NOBODY_ROOT/runs" 2>/dev/null)" &&
    test -z "$(grep -F "$NOBODY_ROOT" /proc/self/mountinfo)" &&
    as_nobody chrun-rmi basic:1 && as_nobody chrun-gc &&
    test -z "$(ls -A "$NOBODY_ROOT/trees" 2>/dev/null)"
'

test_expect_success 'SIGKILL of a cold run while its tree is made as it downloads: no mount, store intact, the next run completes' '
    registry_start plain &&
    cold_image_push cold/kill:1 kill >kill.layer &&
    mkfifo kill-hold &&
    link_start HOLD --hold-fifo "$TRASH_DIRECTORY/kill-hold" &&
    { chrun run --rm "$HOLD/cold/kill:1" cat /cold/last >out 2>err & } &&
    pid=$! &&
    cold_wait_for "$CHRUN_ROOT/trees/.*.tmp-*/b/rootfs/cold/first" &&
    pulls=$(pgrep -P $pid) && test -n "$pulls" &&
    kill -9 $pid $pulls && { wait $pid; true; } &&
    echo go >kill-hold &&
    test -z "$(our_mounts)" &&
    ! chrun-images | grep -q cold/kill &&
    store_fsck &&
    chrun run --rm "$REGISTRY/cold/kill:1" cat /cold/last >out &&
    echo "last kill" >expect && test_cmp expect out &&
    test -z "$(our_mounts)" &&
    store_fsck &&
    test -z "$(ls -A "$CHRUN_ROOT/trees" | grep "^\.")" &&
    test -z "$(ls -A "$CHRUN_ROOT/runs")"
'

test_done
