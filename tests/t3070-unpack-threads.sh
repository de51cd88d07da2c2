#!/bin/bash
test_description='chrun-unpack creates files on several threads with the tree and the errors of one thread'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-unpack.sh

CANARY=$TRASH_DIRECTORY/canary
mkdir -p "$CANARY" out && echo precious >"$CANARY/file"

# same_trees NAME: NAME unpacked with one thread, the default and four
# threads gives one tree (mtimes included).
same_trees() {
    CHRUN_APPLY_THREADS=1 chrun-unpack "$1" "one-$1" >/dev/null &&
    chrun-unpack "$1" "default-$1" >/dev/null &&
    CHRUN_APPLY_THREADS=4 chrun-unpack "$1" "four-$1" >/dev/null &&
    "$TEST_DIRECTORY"/treecmp --mtime "one-$1/rootfs" "default-$1/rootfs" &&
    "$TEST_DIRECTORY"/treecmp --mtime "one-$1/rootfs" "four-$1/rootfs"
}

test_expect_success 'setup: layers where order matters, after many small files' '
    for i in $(seq 1 300); do echo "file fill$((i % 7))/f$i data=filler-$i"; done >fill.spec &&
    { cat fill.spec && cat <<-EOF; } | unpack_mktar l1.tar &&
	dir w
	file w/a data=1
	file low data=lower
	dir o
	file o/old data=old
	dir o/sub
	file o/sub/old2 data=2
	file t data=target
	hard h1 target=t
	EOF
    { cat fill.spec && cat <<-EOF; } | unpack_mktar l2.tar &&
	file s data=first
	file s data=second
	file w/c data=3
	file .wh.w
	file low data=again
	file .wh.low
	file x data=file
	dir x
	file x/y data=inner
	dir z
	file z/a data=a
	file z data=now-a-file
	file o/new data=new
	file o/.wh..wh..opq
	file u data=u
	hard h2 target=u
	hard h3 target=h1
	file big size=3000000
	file after data=after
	EOF
    unpack_mkimage order:1 l1.tar:gzip l2.tar:gzip >/dev/null
'

test_expect_success 'order-sensitive layers: one thread and several give one tree' '
    same_trees order:1 &&
    r=four-order:1/rootfs &&
    test ! -e $r/w && test "$(cat $r/low)" = again && test "$(cat $r/s)" = second &&
    test "$(cat $r/x/y)" = inner && test "$(cat $r/z)" = now-a-file &&
    test ! -e $r/o/old && test ! -e $r/o/sub && test "$(cat $r/o/new)" = new &&
    test "$(stat -c %i $r/u)" = "$(stat -c %i $r/h2)" &&
    test "$(stat -c %i $r/t)" = "$(stat -c %i $r/h3)"
'

test_expect_success 'a real tree (/usr/share/doc): one thread and several give one tree' '
    tar --numeric-owner -C / -cf doc.tar usr/share/doc &&
    unpack_mkimage doc:1 doc.tar:gzip >/dev/null &&
    same_trees doc:1
'

# A thread that cannot write a file (the file size limit, as a full disk):
# the same one error line as with one thread, naming the layer and the
# entry; no bundle, store unchanged.
test_expect_success 'a failed write on a thread: exit 1, the entry named, nothing published' '
    { cat fill.spec && echo "file data/big size=200000" && echo "file after data=x"; } |
        unpack_mktar fail.tar &&
    unpack_mkimage fail:1 fail.tar:gzip >/dev/null &&
    pattern="^chrun-unpack: error: image .fail:1.: layer sha256:[0-9a-f]{64}: write .data/big.: .*File too large" &&
    (trap "" XFSZ && ulimit -f 100 && unpack_hostile_check fail:1 "$pattern") &&
    cp err err.pool &&
    (trap "" XFSZ && ulimit -f 100 && CHRUN_APPLY_THREADS=1 &&
        export CHRUN_APPLY_THREADS && unpack_hostile_check fail:1 "$pattern") &&
    test_cmp err err.pool
'

test_done
