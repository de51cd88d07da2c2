#!/bin/bash
test_description='chrun-unpack: directories made through a symlinked parent inside the root get their mode and mtime'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-unpack.sh

# A merged-/usr image: bin -> usr/bin (relative) and lib -> /usr/lib
# (absolute, resolved in the root); later layers name directories through them.
test_expect_success 'setup: layers that make directories through in-root symlinks' '
    unpack_mktar l1.tar <<-EOF &&
	dir usr mode=755
	dir usr/bin mode=755
	dir usr/lib mode=755
	sym bin target=usr/bin
	sym lib target=/usr/lib
	dir bin/early mode=750 mtime=1300000000
	EOF
    unpack_mktar l2.tar <<-EOF &&
	dir bin/sub mode=755 mtime=1500000000
	file bin/sub/x data=x mtime=1500000001
	dir bin/ro mode=555 mtime=1400000000
	file bin/ro/y data=y
	dir lib/abs mode=710 mtime=1450000000
	dir usr/bin/early mode=711 mtime=1350000000
	EOF
    unpack_mkimage symparent:1 l1.tar l2.tar >/dev/null
'

test_expect_success 'modes and mtimes land on the directories the symlinks lead to' '
    chrun-unpack symparent:1 chrun-symparent >/dev/null &&
    r=chrun-symparent/rootfs &&
    test -L $r/bin && test -L $r/lib &&
    stat -c "%n %a %Y" $r/usr/bin/sub $r/usr/bin/ro $r/usr/lib/abs $r/usr/bin/early >actual &&
    cat >expect <<-EOF &&
	$r/usr/bin/sub 755 1500000000
	$r/usr/bin/ro 555 1400000000
	$r/usr/lib/abs 710 1450000000
	$r/usr/bin/early 711 1350000000
	EOF
    test_cmp expect actual &&
    printf x >expect && test_cmp expect $r/usr/bin/sub/x
'

test_expect_success 'same tree as umoci unpack' '
    if test "$(id -u)" = 0; then rootless=; else rootless=--rootless; fi &&
    umoci unpack $rootless --image "$CHRUN_ROOT:docker.io/library/symparent:1" \
        umoci-symparent >/dev/null 2>&1 &&
    "$TEST_DIRECTORY"/treecmp chrun-symparent/rootfs umoci-symparent/rootfs
'

# A later layer that turns bin into a directory: the entries made through the
# old symlink must not be applied to what the name leads to now.
test_expect_success 'a name that leads elsewhere by the end keeps what its own entry says' '
    unpack_mktar l3.tar <<-EOF &&
	dir bin mode=700 mtime=1600000000
	dir bin/sub mode=701 mtime=1610000000
	EOF
    unpack_mkimage symparent:2 l1.tar l2.tar l3.tar >/dev/null &&
    chrun-unpack symparent:2 chrun-symparent2 >/dev/null &&
    r=chrun-symparent2/rootfs &&
    stat -c "%n %a %Y" $r/bin $r/bin/sub $r/usr/bin/sub >actual &&
    cat >expect <<-EOF &&
	$r/bin 700 1600000000
	$r/bin/sub 701 1610000000
	$r/usr/bin/sub 755 1500000000
	EOF
    test_cmp expect actual
'

test_done
