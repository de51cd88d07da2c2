#!/bin/bash
test_description='chrun-exec --pid (init, reaping), --net (loopback only), --uts/--hostname, --ipc'
. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/lib-bundle.sh"

test_expect_success 'setup' '
    bundle_make b
'

test_expect_success '--pid: init is pid 1, the command pid 2, host processes invisible' '
    chrun-exec --pid b sh -c "echo \$\$; ps -o pid,comm | wc -l; cat /proc/1/cmdline | tr \"\0\" \" \"" >out &&
    sed -n 1p out >pid && echo 2 >expect && test_cmp expect pid &&
    test "$(sed -n 2p out)" -le 5 &&
    sed -n 3p out | grep "chrun-exec --pid b sh"
'

test_expect_success '--pid: orphaned children are reaped (no <defunct>)' '
    cat >b/rootfs/tmp/reap <<\EOF &&
rm -f /tmp/orphans
for i in 1 2 3; do (sh -c "echo \$\$ >>/tmp/orphans" &); done
# Wait (on the event, not a time) until the three orphans are gone: a zombie
# keeps its /proc entry, so they vanish only once init has reaped them.
n=0
while [ $n -lt 20000 ]; do
    n=$((n + 1))
    [ "$(cat /tmp/orphans 2>/dev/null | wc -l)" -eq 3 ] || continue
    left=0
    for p in $(cat /tmp/orphans); do [ -e /proc/$p ] && left=1; done
    [ $left -eq 0 ] && break
done
ps -o pid,stat,comm
for p in $(cat /tmp/orphans); do [ -e /proc/$p ] && echo "not reaped: $p"; done
exit 0
EOF
    chrun-exec --pid b sh /tmp/reap >out &&
    cat out &&
    ! grep -E " Z |defunct|not reaped" out
'

test_expect_success 'without --pid the host pids show (as chroot has)' '
    chrun-exec b sh -c "test \$\$ -gt 2 && test -d /proc/1"
'

test_expect_success 'setup: a server on 127.0.0.1 of the host' '
    port=$(python3 -c "import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])") &&
    mkdir -p www && echo served >www/index.html &&
    { (cd www && exec python3 -m http.server --bind 127.0.0.1 "$port") >http.log 2>&1 & } &&
    http_pid=$! &&
    test_atexit "kill $http_pid" &&
    test_wait_until "the http server" eval "curl -sf http://127.0.0.1:$port/ >/dev/null || ! kill -0 $http_pid" &&
    curl -sf "http://127.0.0.1:$port/index.html"
'

test_expect_success 'host network by default: the container reaches the host port' '
    chrun-exec b wget -q -O - "http://127.0.0.1:$port/index.html" >out &&
    echo served >expect && test_cmp expect out
'

# The listener inside reads a FIFO the shell holds open: a background job's
# stdin is /dev/null, and busybox nc may close the connection on that EOF
# before the client's bytes arrive (seen on a loaded machine).
test_expect_success '--net: only lo, up; the host port is unreachable' '
    chrun-exec --net b sh -c "ls /sys/class/net" >out &&
    echo lo >expect && test_cmp expect out &&
    chrun-exec --net b ip -o link show lo >out &&
    grep "UP" out &&
    # (busybox wget crashes on a refused connection: probe with nc)
    ! chrun-exec --net b sh -c "printf \"GET / HTTP/1.0\r\n\r\n\" | nc 127.0.0.1 $port" >out 2>err &&
    cat err && grep -i "refused" err && test ! -s out &&
    chrun-exec b sh -c "printf \"GET / HTTP/1.0\r\n\r\n\" | nc 127.0.0.1 $port" >out &&
    grep "200 OK" out &&
    chrun-exec --net b sh -c "mkfifo /tmp/f; nc -l -p 9 </tmp/f >/tmp/got & exec 3>/tmp/f; while kill -0 \$! && ! grep -qsE \":0009 [0-9A-F]+:0000 0A\" /proc/net/tcp /proc/net/tcp6; do :; done; echo hi | nc 127.0.0.1 9; wait \$!; exec 3>&-; cat /tmp/got" >out &&
    echo hi >expect && test_cmp expect out
'

test_expect_success '--uts/--hostname: a name of our own, the host keeps its' '
    before=$(hostname) &&
    chrun-exec --hostname box b sh -c "hostname; echo \$HOSTNAME" >out &&
    printf "box\nbox\n" >expect && test_cmp expect out &&
    chrun-exec --uts b sh -c "hostname new-name; hostname" >out &&
    echo new-name >expect && test_cmp expect out &&
    test "$(hostname)" = "$before"
'

test_expect_success '--ipc and --isolate: new namespaces, different from the host'"'"'s' '
    for ns in ipc uts net pid; do
        host=$(readlink /proc/self/ns/$ns) &&
        inside=$(chrun-exec --isolate b readlink /proc/self/ns/$ns) &&
        test "$host" != "$inside" || return 1
    done &&
    test "$(readlink /proc/self/ns/ipc)" != "$(chrun-exec --ipc b readlink /proc/self/ns/ipc)" &&
    test "$(readlink /proc/self/ns/net)" = "$(chrun-exec --ipc b readlink /proc/self/ns/net)"
'

test_done
