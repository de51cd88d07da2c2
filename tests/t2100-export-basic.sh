#!/bin/bash
test_description='chrun-export: the flattened rootfs tar equals chrun-unpack and umoci unpack, as root and as a user'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-fixtures.sh && . "$TEST_DIRECTORY"/lib-unpack.sh
. "$TEST_DIRECTORY"/lib-registry.sh

as_nobody() {
    setpriv --reuid 65534 --regid 65534 --clear-groups env CHRUN_ROOT="$CHRUN_ROOT" PATH="$PATH" "$@"
}

# fname IMAGE: IMAGE as a file name tar does not take for host:path.
fname() {
    printf '%s\n' "$1" | tr ':/' '__'
}

# extract TAR DIR: unpack an exported tar the way a user of docker export would.
extract() {
    rm -rf "$2" && mkdir "$2" &&
    tar -x --numeric-owner --xattrs --xattrs-include='*' -C "$2" -f "$1"
}

# export_matches_unpack IMAGE: the extracted export equals chrun-unpack's
# rootfs (non-directory mtimes included); the tar names each path once and
# holds no whiteout. Leaves exp-F.tar, exp-F/ and unp-F/ (F: fname IMAGE).
export_matches_unpack() {
    local f
    f=$(fname "$1") &&
    chrun-export "$1" >"exp-$f.tar" &&
    extract "exp-$f.tar" "exp-$f" &&
    chrun-unpack "$1" "unp-$f" >/dev/null &&
    "$TEST_DIRECTORY"/treecmp --mtime "unp-$f/rootfs" "exp-$f" &&
    tar -tf "exp-$f.tar" >names &&
    test -s names &&
    test -z "$(sed "s,/\$,," names | sort | uniq -d)" &&
    ! grep -E "(^|/)\.wh\." names
}

# matches_umoci IMAGE DIR: DIR equals umoci unpack of IMAGE from the store.
matches_umoci() {
    umoci unpack --image "$CHRUN_ROOT:docker.io/library/$1" "umoci-$(fname "$1")" >/dev/null 2>&1 &&
    "$TEST_DIRECTORY"/treecmp "umoci-$(fname "$1")/rootfs" "$2"
}

test_expect_success 'setup: fixture images, changeset layers, hardlinks whose file goes away' '
    fixtures_ensure &&
    mkdir -p "$CHRUN_ROOT/blobs/sha256" "$CHRUN_ROOT/tmp" "$CHRUN_ROOT/locks" &&
    cp "$FIXTURES/oci-layout/oci-layout" "$CHRUN_ROOT/" &&
    cp "$FIXTURES"/oci-layout/blobs/sha256/* "$CHRUN_ROOT/blobs/sha256/" &&
    jq ".manifests |= map(.annotations[\"org.opencontainers.image.ref.name\"] |= \"docker.io/library/fx:\" + .)" \
        "$FIXTURES/oci-layout/index.json" >"$CHRUN_ROOT/index.json" &&
    chrun-load <"$FIXTURES/full.docker.tar" >/dev/null &&
    long=$(printf "d%.0s" $(seq 1 120))/$(printf "f%.0s" $(seq 1 150)) &&
    unpack_mktar l1.tar <<-EOF &&
	dir etc mode=755
	file etc/passwd data=root:x:0:0:root:/root:/bin/sh
	file etc/shadow mode=640 gid=42 data=secret
	dir usr/bin
	dir usr/lib mode=700
	file usr/bin/su mode=4755 data=su
	sym bin target=usr/bin
	sym lib target=/usr/lib
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
	file big size=300000
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
	file bin/viasymlink data=lands-in-usr-bin
	dir lib/made-through-abs-link mode=710
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
    unpack_mkimage cs:1 l1.tar l2.tar l3.tar >/dev/null &&
    unpack_mkimage cs-zstd:1 l1.tar:zstd l2.tar:none l3.tar:zstd >/dev/null &&
    unpack_mktar h1.tar <<-EOF &&
	file a data=first-a mode=600 uid=3
	hard b target=a
	file c data=c
	hard c2 target=c
	file e data=e
	EOF
    unpack_mktar h2.tar <<-EOF &&
	dir d mode=750
	hard d/a2 target=a
	hard d/c3 target=c
	hard e2 target=e
	file .wh.a
	file c data=new-c
	EOF
    unpack_mktar h3.tar <<-EOF &&
	file .wh.b
	file .wh.e
	EOF
    unpack_mkimage links:1 h1.tar h2.tar h3.tar >/dev/null
'

# t3040's merged-/usr layers: directories made and changed through in-root
# symlinks, then the symlink turned into a directory.
test_expect_success 'setup: layers that make directories through symlinked parents' '
    unpack_mktar s1.tar <<-EOF &&
	dir usr mode=755
	dir usr/bin mode=755
	dir usr/lib mode=755
	sym bin target=usr/bin
	sym lib target=/usr/lib
	dir bin/early mode=750 mtime=1300000000
	EOF
    unpack_mktar s2.tar <<-EOF &&
	dir bin/sub mode=755 mtime=1500000000
	file bin/sub/x data=x mtime=1500000001
	dir bin/ro mode=555 mtime=1400000000
	file bin/ro/y data=y
	dir lib/abs mode=710 mtime=1450000000
	dir usr/bin/early mode=711 mtime=1350000000
	EOF
    unpack_mktar s3.tar <<-EOF &&
	dir bin mode=700 mtime=1600000000
	dir bin/sub mode=701 mtime=1610000000
	EOF
    unpack_mkimage symparent:1 s1.tar s2.tar >/dev/null &&
    unpack_mkimage symparent:2 s1.tar s2.tar s3.tar >/dev/null
'

test_expect_success 'setup: the full fixture with docker v2s2 media types, pulled from a registry' '
    registry_start plain &&
    test_atexit registry_stop &&
    fixture_push_v2s2 full "$REGISTRY/full:v2s2" &&
    chrun-pull -q "$REGISTRY/full:v2s2" >v2s2.digest &&
    jq -e ".mediaType == \"application/vnd.docker.distribution.manifest.v2+json\"" \
        "$CHRUN_ROOT/blobs/sha256/$(cut -d: -f2 v2s2.digest)" &&
    V2S2=$(cat v2s2.digest)
'

for img in fx:basic fx:full fx:user fx:basic-zstd fixture/full:1 cs:1 cs-zstd:1 links:1 \
    symparent:1 symparent:2 "\$V2S2"; do
    test_expect_success "$img: the export extracts to chrun-unpack's rootfs" "
        export_matches_unpack $img
    "
done

for tag in basic full user; do
    test_expect_success "fx:$tag: the export extracts to umoci unpack's rootfs" "
        fixture_umoci_unpack $tag umoci-$tag &&
        \"\$TEST_DIRECTORY\"/treecmp umoci-$tag/rootfs exp-fx_$tag
    "
done

test_expect_success 'changeset, hardlink and symlinked-parent images: the export extracts to umoci unpack'"'"'s rootfs' '
    matches_umoci cs:1 exp-cs_1 &&
    matches_umoci links:1 exp-links_1 &&
    matches_umoci symparent:1 exp-symparent_1 &&
    matches_umoci symparent:2 exp-symparent_2
'

test_expect_success 'a hardlink whose first file was removed or replaced carries the data itself' '
    x=exp-links_1 &&
    test "$(cat $x/d/a2)" = first-a && test "$(stat -c %a:%u $x/d/a2)" = 600:3 &&
    test ! -e $x/a && test ! -e $x/b && test ! -e $x/e &&
    test "$(cat $x/e2)" = e && test "$(stat -c %h $x/e2)" = 1 &&
    test "$(cat $x/c)" = new-c && test "$(cat $x/c2)" = c &&
    test "$(stat -c %i $x/c2)" = "$(stat -c %i $x/d/c3)" &&
    tar -tvf exp-links_1.tar >list &&
    grep -E "^h.* d/c3 link to c2$" list &&
    test "$(grep -n " d/\$" list | cut -d: -f1)" -lt "$(grep -n " d/a2\$" list | cut -d: -f1)"
'

test_expect_success 'through symlinked parents the export names the real paths' '
    tar -tf exp-cs_1.tar >names &&
    grep -x usr/bin/viasymlink names && grep -x "usr/lib/made-through-abs-link/" names &&
    ! grep -E "^(bin|lib)/." names
'

test_expect_success 'as an ordinary user: the same listing, owners and devices as root'"'"'s' '
    chmod -R a+rwX "$CHRUN_ROOT" &&
    for img in links:1 fx:full cs:1; do
        as_nobody chrun-export $img >user.tar 2>user.err &&
        test ! -s user.err &&
        tar -tv --numeric-owner -f user.tar >user.list &&
        tar -tv --numeric-owner -f exp-$(fname $img).tar >root.list &&
        test_cmp root.list user.list &&
        cmp user.tar exp-$(fname $img).tar || return 1
    done &&
    grep -E "^crw-rw-rw- 0/0 +1,3 .* dev/null$" user.list
'

test_expect_success 'a bundle exports to the same tree as its image' '
    for img in cs:1 fx:full links:1; do
        chrun-export unp-$(fname $img) >bundle.tar &&
        extract bundle.tar from-bundle &&
        "$TEST_DIRECTORY"/treecmp --mtime exp-$(fname $img) from-bundle &&
        ! tar -tf bundle.tar | grep -E "^(\./|/|rootfs)" || return 1
    done
'

test_expect_success 'a bundle export does not follow a symlinked rootfs' '
    mkdir -p evil-bundle && ln -s / evil-bundle/rootfs &&
    test_expect_code 1 chrun-export evil-bundle >out.tar 2>err &&
    test_one_error_line chrun-export err "rootfs is not a directory"
'

test_expect_success 'a bundle with a socket (a service ran in it): skipped with a warning' '
    mkdir -p sock-bundle/rootfs/run && echo data >sock-bundle/rootfs/file &&
    python3 -c "import socket; socket.socket(socket.AF_UNIX).bind(\"sock-bundle/rootfs/run/app.sock\")" &&
    chrun-export -o sock.tar sock-bundle 2>err &&
    grep -q "warning: skipping socket .run/app.sock." err &&
    tar -tf sock.tar | sort >names &&
    printf "file\nrun/\n" >expect && test_cmp expect names
'

test_expect_success 'a bundle path longer than PATH_MAX: an error, never a name cut short' '
    mkdir -p long-bundle/rootfs && (
        cd long-bundle/rootfs &&
        for i in $(seq 21); do d=$(printf "d%.0s" $(seq 200)) && mkdir $d && cd $d || exit 1; done &&
        echo v >victim
    ) &&
    test_expect_code 1 chrun-export -o long.tar long-bundle 2>err &&
    test_one_error_line chrun-export err "File name too long" &&
    test ! -e long.tar
'

test_expect_success '-o writes the file, the same bytes as stdout, and no temporary' '
    mkdir -p outdir &&
    chrun-export -o outdir/cs.tar cs:1 &&
    cmp outdir/cs.tar exp-cs_1.tar &&
    test "$(ls -A outdir)" = cs.tar
'

# The plain (uncompressed) layer of cs-zstd:1 with its last byte (tar
# padding) changed: every stream reads fine, only the digest tells.
test_expect_success 'a corrupt layer: exit 1 with a digest error, nothing at FILE, no temp, store unchanged' '
    cp -a "$CHRUN_ROOT" store-copy &&
    manifest=$(jq -r ".manifests[] | select(.annotations[\"org.opencontainers.image.ref.name\"]==\"docker.io/library/cs-zstd:1\") | .digest" store-copy/index.json) &&
    layer=$(jq -r ".layers[1].digest" "store-copy/blobs/sha256/${manifest#sha256:}") &&
    blob=store-copy/blobs/sha256/${layer#sha256:} &&
    chmod u+w "$blob" &&
    python3 -c "import sys;f=open(sys.argv[1],\"r+b\");f.seek(-1,2);b=f.read(1);f.seek(-1,2);f.write(bytes([b[0]^1]))" "$blob" &&
    tree_snapshot store-copy >before &&
    echo old >outdir/keep.tar &&
    CHRUN_ROOT=$PWD/store-copy test_expect_code 1 chrun-export -o outdir/keep.tar cs-zstd:1 2>err &&
    test_one_error_line chrun-export err "blob $layer: digest mismatch" &&
    test "$(cat outdir/keep.tar)" = old &&
    CHRUN_ROOT=$PWD/store-copy test_expect_code 1 chrun-export -o outdir/new.tar cs-zstd:1 2>err &&
    test ! -e outdir/new.tar &&
    CHRUN_ROOT=$PWD/store-copy test_expect_code 1 chrun-export cs-zstd:1 >stdout.tar 2>err &&
    test_one_error_line chrun-export err "digest mismatch" &&
    test ! -s stdout.tar &&
    test "$(ls -A outdir | sort | tr "\n" " ")" = "cs.tar keep.tar " &&
    tree_snapshot store-copy >after &&
    test_cmp before after
'

test_expect_success 'the v2s2 image exports the same tree as its OCI twin' '
    "$TEST_DIRECTORY"/treecmp --mtime exp-fx_full "exp-$(fname "$V2S2")"
'

test_expect_success 'the store is unchanged by exports' '
    store_snapshot >before &&
    chrun-export cs:1 >/dev/null && chrun-export -o outdir/x.tar fx:basic &&
    store_snapshot >after &&
    test_cmp before after
'

test_expect_success 'an unknown image exits 1 with one error line' '
    test_expect_code 1 chrun-export no/such:image >out.tar 2>err &&
    test_one_error_line chrun-export err "no/such" &&
    test ! -s out.tar
'

test_expect_success 'usage errors exit 2; --help and --version exit 0' '
    test_expect_code 2 chrun-export --bogus cs:1 >out 2>err &&
    grep "^chrun-export: error: " err && grep "Try .chrun-export --help." err &&
    test_expect_code 2 chrun-export cs:1 extra >out 2>err &&
    test_expect_code 2 chrun-export -o "" cs:1 >out 2>err &&
    test_expect_code 2 chrun-export -o >out 2>err &&
    chrun-export --help >help && grep "^Usage: chrun-export" help &&
    chrun-export --version >version && grep "^chrun-export " version
'

test_expect_success 'a terminal on stdout is refused with exit 2, -o still works there' '
    { script -qec "chrun-export cs:1" /dev/null >tty.out 2>&1 </dev/null; rc=$?; } &&
    test $rc = 2 &&
    grep "chrun-export: error: refusing to write a tar archive to a terminal" tty.out &&
    script -qec "chrun-export -o outdir/tty.tar cs:1" /dev/null >/dev/null 2>&1 </dev/null &&
    cmp outdir/tty.tar exp-cs_1.tar
'

test_done
