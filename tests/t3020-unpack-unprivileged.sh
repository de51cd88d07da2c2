#!/bin/bash
test_description='chrun-unpack as an ordinary user (one warning each for owners and devices) and after kill -9'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-unpack.sh

as_nobody() {
    setpriv --reuid 65534 --regid 65534 --clear-groups env CHRUN_ROOT="$CHRUN_ROOT" PATH="$PATH" "$@"
}

test_expect_success 'setup: an image with owners, devices and read-only directories' '
    unpack_mktar l1.tar <<-EOF &&
	dir ro mode=555 uid=10
	file ro/a data=a uid=10 gid=10
	dir ro/deeper mode=500
	file ro/deeper/b data=b mode=400
	chr dev/null major=1 minor=3 mode=666
	blk dev/sda major=8 minor=0
	fifo pipe
	file owned uid=1234 data=x
	EOF
    printf "file ro/c data=c\nfile ro/.wh.a\n" | unpack_mktar l2.tar &&
    unpack_mkimage priv:1 l1.tar l2.tar >/dev/null &&
    chmod -R a+rwX "$CHRUN_ROOT" && mkdir -m 777 out
'

test_expect_success 'as nobody: unpacks, files are ours, devices skipped, one warning each' '
    as_nobody chrun-unpack priv:1 out/b >path 2>err &&
    r=out/b/rootfs &&
    test "$(grep -c "warning: not running as root" err)" = 1 &&
    test "$(grep -c "warning: device nodes need root" err)" = 1 &&
    test "$(wc -l <err)" = 2 &&
    test ! -e $r/dev/null && test ! -e $r/dev/sda && test -p $r/pipe &&
    test "$(stat -c %u $r/owned)" = 65534 &&
    test "$(stat -c %a $r/ro)" = 555 && test "$(stat -c %a $r/ro/deeper)" = 500 &&
    test ! -e $r/ro/a && test "$(cat $r/ro/c)" = c
'

test_expect_success 'kill -9 during an unpack leaves no bundle; the next run cleans up' '
    for i in $(seq 1 4000); do echo "file d$((i % 40))/f$i data=$i"; done | unpack_mktar big.tar &&
    unpack_mkimage big:1 big.tar big.tar:none >/dev/null &&
    for delay in 0.05 0.2; do
        rm -rf out/k &&
        { chrun-unpack big:1 out/k >/dev/null 2>&1 & pid=$!; } &&
        sleep $delay && kill -9 $pid; wait $pid
        if test -e out/k; then test -f out/k/config.json || return 1; fi
    done &&
    chrun-unpack big:1 out/k >/dev/null &&
    test -f out/k/config.json && test -z "$(ls -A out | grep tmp-)"
'

test_done
