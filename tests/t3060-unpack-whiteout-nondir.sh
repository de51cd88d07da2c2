#!/bin/bash
test_description='images whose whiteouts sit under a path that is no longer a directory (as umoci writes them) unpack, export, travel and run like umoci says'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-unpack.sh && . "$TEST_DIRECTORY"/lib-registry.sh

# SPEC "Bad input": a whiteout (plain or opaque) whose parent in the merged
# tree is not a directory (a file, a symlink, a device, or absent) deletes
# nothing and follows nothing. umoci writes "dir/.wh.child" for each child of
# a directory that became a file; umoci and containerd ignore them. (A
# whiteout under a symlink is left out here: umoci 0.4.7 follows the link and
# deletes in its target, which the rule forbids; t9300 covers that case.)
L=$TRASH_DIRECTORY/layout

test_expect_success 'setup: an image made by umoci, plus a layer turning directories into other things' '
    umoci init --layout "$L" &&
    umoci new --image "$L:t" &&
    umoci unpack --rootless --image "$L:t" b >/dev/null &&
    mkdir -p b/rootfs/bin b/rootfs/replace/dir-to-file/sub b/rootfs/replace/dir-to-link \
        b/rootfs/replace/dir-to-fifo b/rootfs/keep &&
    cp /bin/busybox b/rootfs/bin/busybox &&
    echo c >b/rootfs/replace/dir-to-file/child &&
    echo x >b/rootfs/replace/dir-to-file/sub/x &&
    echo l >b/rootfs/replace/dir-to-link/child &&
    echo f >b/rootfs/replace/dir-to-fifo/child &&
    echo k >b/rootfs/keep/k &&
    umoci repack --image "$L:t" b &&
    cat >layer2.spec <<-EOF &&
	file replace/dir-to-file data=now-a-file
	file replace/dir-to-file/.wh.child
	file replace/dir-to-file/.wh..wh..opq
	file replace/dir-to-file/sub/.wh.x
	sym replace/dir-to-link target=../keep
	fifo replace/dir-to-fifo
	file replace/dir-to-fifo/.wh.child
	file replace/absent/.wh.child
	file replace/absent/.wh..wh..opq
	EOF
    unpack_mktar layer2.tar <layer2.spec &&
    umoci raw add-layer --image "$L:t" layer2.tar &&
    umoci config --image "$L:t" --config.cmd /bin/busybox --config.cmd cat \
        --config.cmd /replace/dir-to-file &&
    umoci unpack --rootless --image "$L:t" want >/dev/null &&
    test "$(cat want/rootfs/replace/dir-to-file)" = now-a-file &&
    test "$(cat want/rootfs/keep/k)" = k
'

# same_as_umoci BUNDLE: the rootfs equals umoci unpack's.
same_as_umoci() {
    "$TEST_DIRECTORY"/treecmp want/rootfs "$1/rootfs"
}

test_expect_success 'OCI layout directory: load, unpack equals umoci unpack' '
    chrun-load "$L" >digest &&
    chrun-unpack "$(cat digest)" out-dir >/dev/null &&
    same_as_umoci out-dir
'

test_expect_success 'export of the image and of its bundle equal umoci unpack' '
    chrun-export "$(cat digest)" >img.tar &&
    mkdir exp-img && tar -xf img.tar -C exp-img &&
    "$TEST_DIRECTORY"/treecmp want/rootfs exp-img &&
    chrun-export out-dir >bundle.tar &&
    mkdir exp-bundle && tar -xf bundle.tar -C exp-bundle &&
    "$TEST_DIRECTORY"/treecmp want/rootfs exp-bundle
'

test_expect_success 'docker-save archive, OCI archive and zstd OCI archive (skopeo made): each unpacks' '
    skopeo --insecure-policy copy -q "oci:$L:t" docker-archive:docker.tar:wh/docker:1 &&
    skopeo --insecure-policy copy -q "oci:$L:t" oci-archive:oci.tar:wh/oci:1 &&
    zstd -q -c oci.tar >oci.tar.zst &&
    for a in docker.tar oci.tar oci.tar.zst; do
        CHRUN_ROOT=$TRASH_DIRECTORY/store-$a chrun-load "$a" >d-$a &&
        CHRUN_ROOT=$TRASH_DIRECTORY/store-$a chrun-unpack "$(cat d-$a)" out-$a >/dev/null &&
        same_as_umoci out-$a || return 1
    done
'

test_expect_success 'save, load into another store, unpack' '
    chrun-save "$(cat digest)" >saved.tar &&
    CHRUN_ROOT=$TRASH_DIRECTORY/store2 chrun-load saved.tar >d2 &&
    CHRUN_ROOT=$TRASH_DIRECTORY/store2 chrun-unpack "$(cat d2)" out-saved >/dev/null &&
    same_as_umoci out-saved
'

test_expect_success 'pushed to a registry by skopeo, pulled and unpacked' '
    registry_start plain &&
    skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$L:t" \
        "docker://$REGISTRY/wh/pulled:1" &&
    CHRUN_ROOT=$TRASH_DIRECTORY/store3 chrun-pull "$REGISTRY/wh/pulled:1" >d3 &&
    CHRUN_ROOT=$TRASH_DIRECTORY/store3 chrun-unpack "$(cat d3)" out-pulled >/dev/null &&
    same_as_umoci out-pulled
'

test_expect_success 'runc runs the bundle and chrun-exec agrees' '
    printf now-a-file >expect &&
    chrun-exec --no-mounts out-dir >chrun.out &&
    test_cmp expect chrun.out &&
    runc --root "$TRASH_DIRECTORY/runc" run --bundle out-dir "t3060-$$" </dev/null >runc.out &&
    test_cmp expect runc.out
'

test_expect_success 'a directory replaced by a file with umoci repack unpacks like umoci' '
    rm -rf b/rootfs/keep && echo file >b/rootfs/keep &&
    umoci repack --image "$L:r" b &&
    umoci unpack --rootless --image "$L:r" want-r >/dev/null &&
    skopeo --insecure-policy copy -q "oci:$L:r" oci-archive:r.tar:wh/r:1 &&
    CHRUN_ROOT=$TRASH_DIRECTORY/store-r chrun-load r.tar >d-r &&
    CHRUN_ROOT=$TRASH_DIRECTORY/store-r chrun-unpack "$(cat d-r)" out-r >/dev/null &&
    "$TEST_DIRECTORY"/treecmp want-r/rootfs out-r/rootfs &&
    test "$(cat out-r/rootfs/keep)" = file
'

test_done
