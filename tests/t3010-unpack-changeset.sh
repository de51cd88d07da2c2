#!/bin/bash
test_description='chrun-unpack applies the image-spec changeset rules exactly as umoci unpack does'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-unpack.sh

# unpack_compare NAME: chrun-unpack and umoci unpack of NAME give the same tree.
unpack_compare() {
    chrun-unpack "$1" "chrun-$1" >/dev/null &&
    umoci unpack --image "$CHRUN_ROOT:docker.io/library/$1" "umoci-$1" >/dev/null 2>&1 &&
    "$TEST_DIRECTORY"/treecmp "chrun-$1/rootfs" "umoci-$1/rootfs"
}

test_expect_success 'setup: three layers exercising every rule' '
    long=$(printf "d%.0s" $(seq 1 120))/$(printf "f%.0s" $(seq 1 150)) &&
    unpack_mktar l1.tar <<-EOF &&
	dir etc mode=755
	file etc/passwd data=root:x:0:0:root:/root:/bin/sh
	file etc/shadow mode=640 gid=42 data=secret
	dir usr/bin
	file usr/bin/su mode=4755 data=su
	file usr/bin/wall mode=2755 gid=5 data=wall
	sym bin target=usr/bin
	dir tmp mode=1777
	dir opaque
	file opaque/old1 data=1
	dir opaque/sub
	file opaque/sub/old2 data=2
	file gone data=gone
	dir gonedir
	file gonedir/x data=x
	file becomes-dir data=file
	dir becomes-file
	file becomes-file/child data=c
	sym becomes-dir2 target=/etc
	file hard-src data=shared
	hard hard-a target=hard-src
	dir ro mode=555 uid=7 gid=7
	file ro/inside mode=444 data=ro
	file owned uid=1234 gid=5678 data=owned
	file xattrs data=x xattr.user.comment=hello xattr.user.other=1
	file $long data=long-pax
	fifo pipe mode=600
	chr dev/null major=1 minor=3 mode=666
	blk dev/loop9 major=7 minor=9 mode=660 gid=6
	file keep data=keep
	EOF
    unpack_mktar l2.tar gnu <<-EOF &&
	file opaque/.wh..wh..opq
	file opaque/new data=new
	file .wh.gone
	file .wh.gonedir
	file .wh.nonexistent
	dir becomes-dir
	file becomes-dir/inside data=d
	file becomes-file data=now-a-file
	dir becomes-dir2
	hard hard-b target=hard-src
	file usr/bin/tool mode=755 data=tool
	file bin/viasymlink data=lands-in-usr-bin
	file $long-gnu data=long-gnu
	file keep data=changed mode=600 uid=1 gid=1
	dir etc mode=700
	EOF
    unpack_mktar l3.tar <<-EOF &&
	file new-dir/.wh..wh..opq
	file new-dir/a data=a
	file same/.wh.x
	file same/x data=same-layer-file-stays
	sym keep target=usr/bin/tool
	dir opaque/.wh..wh..opq
	EOF
    unpack_mkimage cs-gz:1 l1.tar:gzip l2.tar:gzip l3.tar:gzip >/dev/null &&
    unpack_mkimage cs-plain:1 l1.tar:none l2.tar:none l3.tar:none >/dev/null &&
    unpack_mkimage cs-zstd:1 l1.tar:zstd l2.tar:zstd l3.tar:zstd >/dev/null
'

test_expect_success 'gzip layers: chrun and umoci trees are identical' '
    unpack_compare cs-gz:1
'

test_expect_success 'plain layers: chrun and umoci trees are identical' '
    unpack_compare cs-plain:1
'

test_expect_success 'zstd layers (umoci 0.4 lacks zstd): same tree as the gzip image' '
    chrun-unpack cs-zstd:1 chrun-zstd >/dev/null &&
    "$TEST_DIRECTORY"/treecmp --mtime chrun-zstd/rootfs chrun-cs-gz:1/rootfs
'

test_expect_success 'spot checks of the rules' '
    r=chrun-cs-gz:1/rootfs &&
    test ! -e $r/gone && test ! -e $r/gonedir && test ! -e $r/opaque/old1 &&
    test ! -e $r/opaque/sub && test ! -e $r/opaque/new &&
    test -d $r/becomes-dir && test ! -L $r/becomes-dir2 && test -d $r/becomes-dir2 &&
    test "$(cat $r/becomes-file)" = now-a-file &&
    test "$(cat $r/usr/bin/viasymlink)" = lands-in-usr-bin &&
    test "$(stat -c %i $r/hard-src)" = "$(stat -c %i $r/hard-b)" &&
    test "$(stat -c %a $r/usr/bin/su)" = 4755 && test "$(stat -c %a $r/tmp)" = 1777 &&
    test "$(stat -c %a $r/ro)" = 555 && test "$(stat -c %u:%g $r/owned)" = 1234:5678 &&
    test "$(stat -c %a $r/etc)" = 700 &&
    test "$(cat $r/same/x)" = same-layer-file-stays &&
    test -L $r/keep && test -p $r/pipe && test -c $r/dev/null && test -b $r/dev/loop9 &&
    test "$(python3 -c "import os;print(os.getxattr(\"$r/xattrs\",\"user.comment\").decode())")" = hello
'

# umoci 0.4 refuses GNU sparse entries (typeflag S): GNU tar is the oracle here.
test_expect_success 'GNU and PAX sparse files, made by GNU tar' '
    mkdir sp && truncate -s 64M sp/sparse && printf middle | dd of=sp/sparse bs=1 seek=33554432 conv=notrunc 2>/dev/null &&
    printf end >>sp/sparse &&
    (cd sp && tar --format=gnu -S -cf ../sparse-gnu.tar sparse && tar --format=posix -S -cf ../sparse-pax.tar sparse) &&
    unpack_mkimage sparse:1 sparse-gnu.tar:gzip >/dev/null &&
    unpack_mkimage sparse-pax:1 sparse-pax.tar:none >/dev/null &&
    chrun-unpack sparse:1 chrun-sparse:1 && chrun-unpack sparse-pax:1 chrun-sparse-pax:1 &&
    mkdir tar-sparse && tar -C tar-sparse -xf sparse-gnu.tar &&
    "$TEST_DIRECTORY"/treecmp --mtime tar-sparse chrun-sparse:1/rootfs &&
    "$TEST_DIRECTORY"/treecmp --mtime tar-sparse chrun-sparse-pax:1/rootfs &&
    cmp sp/sparse chrun-sparse:1/rootfs/sparse && cmp sp/sparse chrun-sparse-pax:1/rootfs/sparse &&
    test "$(du -k chrun-sparse:1/rootfs/sparse | cut -f1)" -lt 1024
'

test_expect_success 'a real tree: /usr/share/doc packed by GNU tar in two layers' '
    tar --numeric-owner -C / -cf doc1.tar usr/share/doc usr/bin/busybox &&
    tar --numeric-owner -C / -cf doc2.tar usr/lib/os-release etc/os-release &&
    unpack_mkimage real:1 doc1.tar doc2.tar >/dev/null &&
    unpack_compare real:1
'

test_done
