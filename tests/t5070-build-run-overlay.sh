#!/bin/bash
test_description='chrun-build: RUN over an overlay diffs only the upper; same layers and rootfs as the full walk (CHRUN_BUILD_FULL_WALK=1)'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-fixtures.sh

DATA=$REPO_ROOT/testdata/build
export SOURCE_DATE_EPOCH=1700000000

# layers IMAGE: "== DIGEST" then the verbose numeric listing of each layer
# chrun-build added to IMAGE.
layers() {
    local m l
    m=$(chrun-inspect "$1" | jq -r .Digest) &&
    for l in $(jq -r ".layers[1:][].digest" "$CHRUN_ROOT/blobs/sha256/${m#sha256:}"); do
        echo "== $l" &&
        tar -tvzf "$CHRUN_ROOT/blobs/sha256/${l#sha256:}" --numeric-owner || return 1
    done
}

# rootfs_of IMAGE: tree_snapshot of IMAGE unpacked (types, modes, owners,
# sizes, link targets, file digests).
rootfs_of() {
    local b
    b=$(chrun-unpack "$1") && tree_snapshot "$b/rootfs"
}

test_expect_success 'setup: the busybox fixture and the contexts' '
    fixtures_ensure &&
    chrun-load -q "$FIXTURES/basic.oci.tar" >/dev/null &&
    mkdir corners opaque metacopy &&
    cp "$DATA/overlay-diff.Dockerfile" corners/Dockerfile &&
    cp "$DATA/overlay-opaque.Dockerfile" opaque/Dockerfile &&
    cp "$DATA/overlay-metacopy.Dockerfile" metacopy/Dockerfile
'

test_expect_success 'whiteouts, renames, metadata-only changes, hardlinks: the same image both ways' '
    CHRUN_DEBUG=1 chrun-build -t ov:1 corners >d-ov 2>err &&
    if test_have_prereq ROOT
    then
        # step 2: a metacopy file given a second name (chown, then ln)
        n_overlay=2
    else
        n_overlay=3
    fi &&
    test "$(grep -c "step diff: overlay upper" err)" = $n_overlay &&
    grep -q "full walk, the overlay upper alone is not the change (a lower hardlink" err &&
    test "$(grep -c "step diff: full walk" err)" = $((4 - n_overlay)) &&
    CHRUN_DEBUG=1 CHRUN_BUILD_FULL_WALK=1 chrun-build --no-cache -t fw:1 corners >d-fw 2>err &&
    test "$(grep -c "RUN: full walk, no overlay: CHRUN_BUILD_FULL_WALK is set" err)" = 4 &&
    ! grep -q "overlay upper" err &&
    layers ov:1 >l-ov && layers fw:1 >l-fw && test_cmp l-fw l-ov &&
    test_cmp d-fw d-ov &&
    grep -q "^-rw-r--r-- 0/0 .* data/\.wh\.gone$" l-ov &&
    grep -q "^-rw-r--r-- 0/0 .* data/\.wh\.dir$" l-ov &&
    grep -q "^-rw------- 0/0 .* etc/group$" l-ov &&
    grep -q "^hrw-r--r-- 1/2 .* data/two-hard link to app/lib/two$" l-ov &&
    ! grep -q "wh\.\.opq" l-ov
'

test_expect_success 'a RUN step sees on the overlay what it sees on the full walk' '
    rootfs_of ov:1 >r-ov && rootfs_of fw:1 >r-fw && test_cmp r-fw r-ov &&
    b=$(chrun-unpack ov:1) &&
    grep -q "^/app/one-link 644 0:0 regular file 8$" "$b/rootfs/seen" &&
    grep -q "^/tmp 644 0:0 regular file 10$" "$b/rootfs/seen" &&
    ! grep -q "^/data/gone\|^/srv/README\|^/app/lib/deep" "$b/rootfs/seen"
'

test_expect_success 'a directory deleted and made again is opaque; an entry only copied up goes in whole' '
    CHRUN_DEBUG=1 chrun-build -t ov:2 opaque >/dev/null 2>err &&
    test "$(grep -c "step diff: overlay upper" err)" = 3 &&
    CHRUN_BUILD_FULL_WALK=1 chrun-build -q --no-cache -t fw:2 opaque >/dev/null &&
    layers ov:2 >l-ov && layers fw:2 >l-fw &&
    grep -q " d/\.wh\.\.wh\.\.opq$" l-ov && ! grep -q " d/\.wh\.a$" l-ov &&
    grep -q " d/\.wh\.a$" l-fw && grep -q " d/\.wh\.sub$" l-fw && ! grep -q opq l-fw &&
    grep -q " etc/passwd$" l-ov && ! grep -q " etc/passwd$" l-fw &&
    rootfs_of ov:2 >r-ov && rootfs_of fw:2 >r-fw && test_cmp r-fw r-ov &&
    b=$(chrun-unpack ov:2) && printf "%s\n" /d/new "" /d: new >expect && test_cmp expect "$b/rootfs/seen"
'

test_expect_success 'RUN --mount points and contents never reach a layer: the same entries both ways' '
    mkdir mnt && cp "$DATA/mounts.Dockerfile" mnt/Dockerfile &&
    echo "from the context" >mnt/input.txt && printf "s3cr3t" >token.txt &&
    chrun-build -q -t mnt-ov:1 --build-arg RUN_ID=1 --secret id=token,src=token.txt mnt >/dev/null &&
    CHRUN_BUILD_FULL_WALK=1 chrun-build -q --no-cache -t mnt-fw:1 --build-arg RUN_ID=1 \
        --secret id=token,src=token.txt mnt >/dev/null &&
    layers mnt-ov:1 | grep -v "^==" | awk "{print \$1, \$2, \$NF}" >l-ov &&
    layers mnt-fw:1 | grep -v "^==" | awk "{print \$1, \$2, \$NF}" >l-fw &&
    test_cmp l-fw l-ov &&
    ! grep -E " (var/cache/app|src|rw|p|img-bin|scratch|run/secrets)/?$" l-ov &&
    ! grep -E " (var/cache/app|src|rw|p|img-bin|scratch|run/secrets)/" l-ov
'

test_expect_success 'a failing RUN leaves no overlay directory behind; a .wh. name fails as on the full walk' '
    mkdir bad && printf "FROM fixture/basic:1\nRUN echo x >/x && false\n" >bad/Dockerfile &&
    test_expect_code 1 chrun-build -q bad 2>err &&
    test_one_error_line chrun-build err "line 2: RUN returned exit status 1" &&
    test -z "$(ls -A "$CHRUN_ROOT/tmp")" &&
    printf "FROM fixture/basic:1\nRUN touch /.wh.x\n" >bad/Dockerfile &&
    test_expect_code 1 chrun-build -q bad 2>err &&
    test_one_error_line chrun-build err "line 2: .*.\.wh\.x.: a .\.wh\.. name cannot be kept in an image layer" &&
    test_expect_code 1 env CHRUN_BUILD_FULL_WALK=1 chrun-build -q bad 2>err &&
    test_one_error_line chrun-build err "line 2: .*.\.wh\.x.: a .\.wh\.. name cannot be kept in an image layer" &&
    test -z "$(ls -A "$CHRUN_ROOT/tmp")"
'

# busybox has no setfattr: a static helper the Dockerfile COPYs in
test_lazy_prereq STATIC_CC '
    cc -static -O2 -o "$TRASH_DIRECTORY/metacopy/setxattr" "$DATA/setxattr.c" ||
        { echo "no static C toolchain (cc -static) for the setxattr helper"; false; }
'

test_expect_success ROOT,STATIC_CC 'metadata-only changes copy up no data (metacopy): the same layers and rootfs both ways' '
    CHRUN_DEBUG=1 chrun-build -t mc:1 metacopy >d-ov 2>err &&
    test "$(grep -c "step diff: overlay upper" err)" = 7 &&
    test "$(grep -c "RUN: full walk, the overlay upper alone is not the change" err)" = 3 &&
    grep -q "overlay upper: 5 files with their bytes in the lower" err &&
    grep -q "overlay upper: 3 files with their bytes in the lower" err &&
    CHRUN_BUILD_FULL_WALK=1 chrun-build -q --no-cache -t mc-fw:1 metacopy >d-fw &&
    layers mc:1 >l-ov && layers mc-fw:1 >l-fw && test_cmp l-fw l-ov && test_cmp d-fw d-ov &&
    rootfs_of mc:1 >r-ov && rootfs_of mc-fw:1 >r-fw && test_cmp r-fw r-ov &&
    grep -q "^-rw------- 0/0 .* m/f1$" l-ov && grep -q "^-rw-r--r-- 1/2 .* m/f2$" l-ov &&
    grep -q "^-rw-r----- 0/0  *300000 .* m/big$" l-ov &&
    grep -q "^-rwx------ 0/0 .* m/other/f7$" l-ov && grep -q " m/\.wh\.f8$" l-ov &&
    grep -q " m/\.wh\.dir$" l-ov && grep -q " m/dir-moved/new$" l-ov &&
    grep -q "^-rwx------ 0/0 .* m/dir-moved/sub/x$" l-ov && ! grep -q "dir-moved/\.wh\.a$" l-ov &&
    grep -q "^-rw------- 0/0 .* m/top/d3/sub2/x$" l-ov && grep -q " m/top/d3/f9$" l-ov &&
    ! grep -q "m/top/d3/\.wh\.new$" l-ov && grep -q " m/\.wh\.dir-moved$" l-ov &&
    b=$(chrun-unpack mc:1) &&
    grep -q "^/m/f3 1577836800$" "$b/rootfs/seen" &&
    grep -q "^/m/h1 1640995200$" "$b/rootfs/seen" && ! grep -q "^/m/h2 " "$b/rootfs/seen" &&
    test "$(sed -n "s/ .*m.big$//p" "$b/rootfs/seen")" = "$(yes abcdefgh | head -c 300000 | md5sum | cut -d" " -f1)"
'

test_expect_success 'moving a lower directory that holds a mount point: the same layer both ways' '
    mkdir mv && printf "FROM fixture/basic:1\nRUN mv /etc /etc.old\n" >mv/Dockerfile &&
    if test_have_prereq ROOT
    then
        # the overlay redirects it; the layer carries the whole moved tree
        CHRUN_DEBUG=1 chrun-build -t mv:1 mv >d-ov 2>err &&
        grep -q "step diff: overlay upper" err &&
        CHRUN_BUILD_FULL_WALK=1 chrun-build -q --no-cache -t mv-fw:1 mv >d-fw &&
        test_cmp d-fw d-ov
    else
        # an ordinary user: overlayfs copies it (as Docker) and cannot
        # remove the mount point inside
        test_expect_code 1 chrun-build -q mv 2>err &&
        grep -q "^mv: can.t remove ./etc/resolv.conf.: Device or resource busy" err &&
        CHRUN_BUILD_FULL_WALK=1 chrun-build -q -t mv:1 mv >/dev/null
    fi &&
    layers mv:1 >l-mv && grep -q " \.wh\.etc$" l-mv && grep -q " etc\.old/passwd$" l-mv
'

test_expect_success ROOT 'the kernel refuses the overlay (a store on overlayfs): the full walk, the same image' '
    mkdir -p nest/l nest/u nest/w nest/m ref &&
    printf "FROM fixture/basic:1\nRUN echo a >/a\nRUN rm /srv/README\n" >ref/Dockerfile &&
    chrun-build -q -t ref:1 ref >d-ref &&
    unshare -m sh -c "mount -t overlay overlay -o lowerdir=nest/l,upperdir=nest/u,workdir=nest/w nest/m &&
        export CHRUN_ROOT=\$PWD/nest/m/store CHRUN_DEBUG=1 &&
        chrun-load -q \"\$FIXTURES/basic.oci.tar\" >/dev/null &&
        chrun-build -t ref:1 ref >d-nest 2>err && ls -A nest/m/store/tmp >tmp-left" &&
    test_cmp d-ref d-nest &&
    test "$(grep -c "RUN: full walk, overlay refused: mount overlay" err)" = 1 &&
    grep -q "RUN: full walk, no overlay: the kernel refused it before" err &&
    test "$(grep -c "step diff: full walk" err)" = 2 &&
    test ! -s tmp-left
'

test_expect_success 'an ordinary user: the overlay with user.overlay xattrs, the same rootfs' '
    mkdir -p nb-store && chown 65534:65534 nb-store && chmod -R a+rX opaque &&
    nobody="setpriv --reuid 65534 --regid 65534 --clear-groups env CHRUN_ROOT=$TRASH_DIRECTORY/nb-store PATH=$PATH" &&
    $nobody chrun-load -q - <"$FIXTURES/basic.oci.tar" >/dev/null &&
    $nobody env CHRUN_DEBUG=1 chrun-build -t ov:2 opaque >/dev/null 2>err &&
    test "$(grep -c "step diff: overlay upper" err)" = 3 &&
    $nobody env CHRUN_BUILD_FULL_WALK=1 chrun-build -q --no-cache -t fw:2 opaque >/dev/null &&
    CHRUN_ROOT=$TRASH_DIRECTORY/nb-store layers ov:2 >l-ov &&
    grep -q " d/\.wh\.\.wh\.\.opq$" l-ov &&
    b1=$($nobody chrun-unpack ov:2) && b2=$($nobody chrun-unpack fw:2) &&
    tree_snapshot "$b1/rootfs" >r-ov && tree_snapshot "$b2/rootfs" >r-fw && test_cmp r-fw r-ov
'

test_done
