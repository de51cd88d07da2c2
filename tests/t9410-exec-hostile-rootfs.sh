#!/bin/bash
test_description='chrun-exec: symlinks in an image never point a mount or a read at the host'
. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/lib-bundle.sh"

host_mounts() {
    awk '{ $1 = ""; $2 = ""; print }' /proc/self/mountinfo | sort
}

test_expect_success 'setup: an image whose mount points are symlinks to host paths' '
    bundle_make b &&
    mkdir -p victim/p victim/d && echo precious >victim/file && echo precious >victim/resolv &&
    tree_snapshot victim >victim.before &&
    host_mounts >mounts.before &&
    rm -rf b/rootfs/proc b/rootfs/etc/hosts b/rootfs/etc/resolv.conf b/rootfs/dev &&
    ln -s "$TRASH_DIRECTORY/victim/p" b/rootfs/proc &&
    ln -s "../../../../../../../../../$TRASH_DIRECTORY/victim/file" b/rootfs/etc/hosts &&
    ln -s "/../../../$TRASH_DIRECTORY/victim/resolv" b/rootfs/etc/resolv.conf &&
    ln -s "../../../../../../../../../$TRASH_DIRECTORY/victim/d" b/rootfs/dev
'

test_expect_success 'dangling in the image: one error line, the host untouched' '
    test_expect_code 1 chrun-exec b true 2>err &&
    test_one_error_line chrun-exec err "mount point ./proc." &&
    tree_snapshot victim >victim.after &&
    test_cmp victim.before victim.after &&
    host_mounts >mounts.after &&
    test_cmp mounts.before mounts.after
'

test_expect_success 'resolving inside the image: mounts land in the rootfs, the host untouched' '
    mkdir -p "b/rootfs/$TRASH_DIRECTORY/victim/p" "b/rootfs/$TRASH_DIRECTORY/victim/d" &&
    echo image-file >"b/rootfs/$TRASH_DIRECTORY/victim/file" &&
    echo image-resolv >"b/rootfs/$TRASH_DIRECTORY/victim/resolv" &&
    chrun-exec b cat /proc/self/mounts >mounts &&
    grep "^proc $TRASH_DIRECTORY/victim/p proc " mounts &&
    grep " $TRASH_DIRECTORY/victim/d tmpfs " mounts &&
    chrun-exec b ls /dev/null &&
    chrun-exec b cat "$TRASH_DIRECTORY/victim/resolv" >out &&
    test_cmp /etc/resolv.conf out &&
    tree_snapshot victim >victim.after &&
    test_cmp victim.before victim.after &&
    host_mounts >mounts.after &&
    test_cmp mounts.before mounts.after &&
    echo image-resolv >expect && test_cmp expect "b/rootfs/$TRASH_DIRECTORY/victim/resolv"
'

test_expect_success 'passwd is read from the image through its own root' '
    rm -f b/rootfs/etc/passwd &&
    ln -s /../../../../etc/passwd b/rootfs/etc/passwd &&
    test_expect_code 1 chrun-exec -u daemon b true 2>err &&
    test_one_error_line chrun-exec err "user .daemon. not found"
'

test_expect_success 'a FIFO at /etc/passwd: refused with one error line, never opened' '
    rm -f b/rootfs/etc/passwd && mkfifo b/rootfs/etc/passwd &&
    test_expect_code 1 timeout 60 chrun-exec -u daemon b true 2>err &&
    test_one_error_line chrun-exec err "not a regular file"
'

test_done
