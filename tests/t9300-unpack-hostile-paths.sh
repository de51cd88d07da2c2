#!/bin/bash
test_description='chrun-unpack refuses layers whose entries, symlinks, hardlinks or whiteouts reach outside the rootfs'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-unpack.sh

CANARY=$TRASH_DIRECTORY/canary
mkdir -p "$CANARY/dir" out ok && echo precious >"$CANARY/file" && echo precious >"$CANARY/dir/f"
UP=../../../../../../../../../../../..

# hostile NAME PATTERN LAYER...: store image NAME:1 made of LAYER spec files
# and expect the unpack to fail without touching anything.
hostile() {
    local name=$1 pattern=$2 i=0 layers=() spec
    shift 2
    for spec in "$@"; do
        i=$((i + 1))
        printf '%s\n' "$spec" | unpack_mktar "$name-$i.tar" || return 1
        layers+=("$name-$i.tar")
    done
    unpack_mkimage "$name:1" "${layers[@]}" >/dev/null &&
    unpack_hostile_check "$name:1" "$pattern"
}

test_expect_success 'entry named ../escape' '
    hostile dotdot "entry .*\.\..*component" "file ../escape data=x" &&
    test ! -e escape
'
test_expect_success 'entry with a .. component deep inside' '
    hostile dotdot2 "component" "$(printf "dir a\nfile a/b/../../../../canary/file data=x")"
'
test_expect_success 'absolute entry name' '
    hostile abs "absolute name" "file $CANARY/file data=pwned"
'
test_expect_success 'symlink to a host directory, then a write through it (same layer)' '
    hostile symabs "evil.*not a directory inside the root" \
        "$(printf "sym evil target=$CANARY\nfile evil/pwned data=x")"
'
test_expect_success 'symlink to a host directory, then a write through it (later layer)' '
    hostile symabs2 "evil.*not a directory inside the root" \
        "sym evil target=$CANARY" "file evil/pwned data=x"
'
test_expect_success 'relative symlink escaping with ../.. then a write through it' '
    hostile symrel "up.*not a directory inside the root" \
        "sym up target=$UP$CANARY" "file up/file data=pwned"
'
test_expect_success 'symlink loop as a parent directory' '
    hostile loop "loop1" "$(printf "sym loop1 target=loop2\nsym loop2 target=loop1\nfile loop1/x data=x")"
'
test_expect_success 'hardlink to /etc/passwd (absolute and with ..)' '
    hostile hardabs "absolute name" "hard passwd target=/etc/passwd" &&
    hostile hardrel "component" "hard passwd target=$UP/etc/passwd"
'
test_expect_success 'hardlink through a symlink, to the host or inside the root' '
    hostile hardsym "hardlink .*without symlinks" \
        "$(printf "sym h target=$CANARY\nhard x target=h/file")" &&
    hostile hardsym2 "hardlink .*without symlinks" \
        "$(printf "dir etc\nfile etc/passwd data=x\nsym e target=/etc")" "hard x target=e/passwd"
'
# SPEC "Bad input": a whiteout whose parent in the merged tree is not a
# directory reached without symlinks deletes nothing and follows nothing.
# harmless NAME LAYER...: the image unpacks, the host canary is untouched.
harmless() {
    local name=$1 i=0 layers=() spec
    shift
    for spec in "$@"; do
        i=$((i + 1))
        printf '%s\n' "$spec" | unpack_mktar "$name-$i.tar" || return 1
        layers+=("$name-$i.tar")
    done
    unpack_mkimage "$name:1" "${layers[@]}" >/dev/null &&
    tree_snapshot "$CANARY" >canary.before &&
    chrun-unpack "$name:1" "ok/$name" >/dev/null &&
    tree_snapshot "$CANARY" >canary.after &&
    test_cmp canary.before canary.after
}
test_expect_success 'whiteout under a symlinked directory deletes nothing, follows nothing' '
    harmless whsym "sym d target=$CANARY" "file d/.wh.file" &&
    test -L ok/whsym/rootfs/d &&
    harmless whsym2 "$(printf "dir etc\nfile etc/passwd data=x\nsym d target=/etc")" "file d/.wh.passwd" &&
    test "$(cat ok/whsym2/rootfs/etc/passwd)" = x
'
test_expect_success 'opaque whiteout under a symlinked directory deletes nothing, follows nothing' '
    harmless opqsym "sym d target=$CANARY/dir" "file d/.wh..wh..opq" &&
    test -f "$CANARY/dir/f" &&
    harmless opqsym2 "$(printf "dir etc\nfile etc/passwd data=x\nsym d target=/etc")" "file d/.wh..wh..opq" &&
    test "$(cat ok/opqsym2/rootfs/etc/passwd)" = x
'
test_expect_success 'whiteouts naming . or ..' '
    hostile whdotdot "names no entry" "file a/.wh..." &&
    hostile whdot "names no entry" "file .wh.."
'
test_expect_success 'a name with NUL cannot smuggle a .. past the checks' '
    python3 -c "
import tarfile, io
with tarfile.open(\"nul.tar\", \"w\", format=tarfile.PAX_FORMAT) as tf:
    ti = tarfile.TarInfo(\"ok\"); ti.pax_headers = {\"path\": \"ok\\x00/../../escape\"}
    ti.size = 1; tf.addfile(ti, io.BytesIO(b\"x\"))
" &&
    unpack_mkimage nul:1 nul.tar >/dev/null &&
    tree_snapshot "$CANARY" >before &&
    { chrun-unpack nul:1 out/nul 2>err; rc=$?; } &&
    test ! -e escape && test ! -e out/escape &&
    tree_snapshot "$CANARY" >after && test_cmp before after &&
    if test $rc = 0; then ls out/nul/rootfs >ls && ! grep -v "^ok" ls; else test_one_error_line chrun-unpack err; fi
'

test_done
