#!/bin/bash
test_description='chrun-unpack never sets overlayfs xattrs (trusted.overlay.*, user.overlay.*) or other trusted.* ones from a layer: an overlay over the tree (chrun-build RUN, chrun run --rm) would obey them'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-unpack.sh

# xattrs FILE: the names of FILE's xattrs outside security.*, one a line, sorted.
xattrs() {
    python3 -c 'import os, sys
print("\n".join(sorted(n for n in os.listxattr(sys.argv[1], follow_symlinks=False)
                       if not n.startswith("security."))))' "$1"
}

test_expect_success 'setup: a layer whose entries carry overlay markers' '
    unpack_mktar l1.tar <<-EOF &&
	dir d xattr.trusted.overlay.opaque=y xattr.user.overlay.opaque=y
	file d/meta data=bytes xattr.trusted.overlay.metacopy=x xattr.trusted.overlay.redirect=/etc/shadow
	file d/user data=u xattr.user.overlay.redirect=/etc/shadow xattr.user.comment=kept
	file trusted data=t xattr.trusted.other=1
	file etc/shadow data=secret
	EOF
    unpack_mkimage ovx:1 l1.tar >/dev/null
'

test_expect_success 'unpacked without them, one warning; other user.* xattrs kept' '
    chrun-unpack ovx:1 out 2>err &&
    test "$(grep -c "^chrun-unpack: warning: extended attributes not kept (first: [a-z]*\.overlay\.opaque on .d.: " err)" = 1 &&
    test "$(grep -c . err)" = 1 &&
    test -z "$(xattrs out/rootfs/d)" &&
    test -z "$(xattrs out/rootfs/d/meta)" &&
    test "$(xattrs out/rootfs/d/user)" = user.comment &&
    test -z "$(xattrs out/rootfs/trusted)" &&
    test "$(cat out/rootfs/d/meta)" = bytes
'

test_expect_success 'the warning says why; a second unpack gives the same tree' '
    chrun-unpack ovx:1 out2 2>err &&
    grep -q "overlay\.opaque on .d.: overlayfs.s own, never taken from an image)$" err &&
    test -z "$(xattrs out2/rootfs/trusted)" && test -z "$(xattrs out2/rootfs/d/meta)"
'

test_done
