#!/bin/bash
test_description='chrun-unpack as an ordinary user with subordinate ids: image owners land on SUBSTART+uid-1'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-unpack.sh &&
    . "$TEST_DIRECTORY"/lib-bundle.sh && . "$TEST_DIRECTORY"/lib-subids.sh

subids_skip_unless_root

test_expect_success 'setup: a user with subordinate ids and an image with several owners' '
    subids_user_add chrun-subid-t3050 300000 65536 &&
    grep -qx "chrun-subid-t3050:300000:65536" /etc/subuid &&
    subids_make_image owners:1 &&
    chrun-unpack owners:1 "$TRASH_DIRECTORY/rootview" >/dev/null &&
    chmod 755 "$TRASH_DIRECTORY" && mkdir out && chown -R "$SUBID_UID:$SUBID_GID" "$CHRUN_ROOT" out
'

test_expect_success 'as the user: unpacks with image owners, devices skipped with one warning' '
    as_subid_user chrun-unpack owners:1 >path 2>err &&
    b=$(cat path) && test -f "$b/config.json" &&
    test "$(grep -c "warning: device nodes need root" err)" = 1 &&
    ! grep "not running as root" err &&
    test "$(wc -l <err)" = 1 &&
    test ! -e "$b/rootfs/dev/null"
'

test_expect_success 'on-disk owners are SUBSTART+uid-1 (the caller for root), as a root unpack says' '
    b=$(cat path) &&
    subids_owners rootview/rootfs | grep -v " /dev/null$" | subids_host_owners >expect &&
    subids_owners "$b/rootfs" >actual &&
    test "$(wc -l <expect)" -gt 20 && grep -q " /srv/other/f$" expect &&
    test_cmp expect actual &&
    test "$(stat -c %u:%g "$b/rootfs/data/mine")" = "$((SUBID_START + 999)):$((SUBID_START + 999))" &&
    test "$(stat -c %u:%g "$b/rootfs/srv/other/f")" = "$((SUBID_START + 1233)):$((SUBID_START + 1999))" &&
    test "$(stat -c %u:%g "$b/rootfs/etc/motd")" = "$((SUBID_START + 9)):$((SUBID_START + 19))" &&
    test "$(stat -c %u "$b/rootfs/bin/busybox")" = "$SUBID_UID" &&
    test "$(stat -c %u "$b/config.json")" = "$SUBID_UID"
'

test_expect_success 'modes survive the chown (setuid-free modes, 700 dir kept)' '
    b=$(cat path) &&
    test "$(stat -c %a "$b/rootfs/opt/x")" = 700 &&
    test "$(stat -c %a rootview/rootfs/opt/x)" = 700
'

test_expect_success 'the bundle records the mapping it was unpacked with' '
    b=$(cat path) &&
    jq -r ".annotations[\"io.chrun.bundle.idmap\"]" "$b/config.json" >actual &&
    echo "uid 0:$SUBID_UID:1,1:$SUBID_START:$SUBID_COUNT gid 0:$SUBID_GID:1,1:$SUBID_START:$SUBID_COUNT" >expect &&
    test_cmp expect actual &&
    jq -e ".annotations[\"io.chrun.bundle.idmap\"] == null" rootview/config.json
'

test_expect_success 're-running is instant and prints the same path' '
    as_subid_user chrun-unpack owners:1 >path2 2>err &&
    test_cmp path path2 && test ! -s err
'

test_expect_success 'an unpack into a BUNDLE outside the store works the same' '
    as_subid_user chrun-unpack owners:1 "$TRASH_DIRECTORY/out/b" >/dev/null 2>err &&
    test "$(stat -c %u out/b/rootfs/data/mine)" = "$((SUBID_START + 999))" &&
    test -z "$(ls -A out | grep tmp-)"
'

test_expect_success 'kill -9 during an unpack: no bundle, no child left; the next run cleans up' '
    for i in $(seq 1 3000); do echo "file d$((i % 30))/f$i data=$i uid=$((i % 7)) gid=$((i % 5))"; done |
        unpack_mktar big.tar &&
    unpack_mkimage big:1 big.tar big.tar:none >/dev/null &&
    (cd "$CHRUN_ROOT" && chown -R "$SUBID_UID:$SUBID_GID" blobs tmp locks index.json oci-layout) &&
    bad= &&
    for delay in 0.1 0.3 0.6; do
        { as_subid_user chrun-unpack big:1 "$TRASH_DIRECTORY/out/k" >/dev/null 2>&1 & pid=$!; } &&
        sleep $delay && kill -9 $pid; wait $pid
        subids_wait_no_process "$SUBID_UID" || bad="$bad left-process-$delay"
        if test -e out/k && ! test -f out/k/config.json; then bad="$bad half-bundle-$delay"; fi
    done &&
    test -z "$bad" &&
    as_subid_user chrun-unpack big:1 "$TRASH_DIRECTORY/out/k" >/dev/null &&
    test -f out/k/config.json && test -z "$(ls -A out | grep tmp-)" &&
    test "$(stat -c %u out/k/rootfs/d1/f1)" = "$((SUBID_START + 0))"
'

test_expect_success 'the user cannot remove it by hand, chrun-gc --bundles can' '
    b=$(cat path) &&
    ! as_subid_user rm -f "$b/rootfs/srv/other/f" 2>/dev/null &&
    test -e "$b/rootfs/srv/other/f" &&
    as_subid_user chrun-rmi owners:1 &&
    as_subid_user chrun-gc --bundles 2>err &&
    test ! -e "$b" &&
    test -z "$(ls -A "$CHRUN_ROOT/bundles")"
'

test_done
