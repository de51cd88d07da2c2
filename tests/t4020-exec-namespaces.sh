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
    chrun-exec --pid b sh -c "
        for i in 1 2 3; do (sleep 0.1 &) ; done
        sleep 1
        ps -o pid,stat,comm" >out &&
    cat out &&
    ! grep -E " Z |defunct" out
'

test_expect_success 'without --pid the host pids show (as chroot has)' '
    chrun-exec b sh -c "test \$\$ -gt 2 && test -d /proc/1"
'

test_expect_success 'setup: a server on 127.0.0.1 of the host' '
    port=$(python3 -c "import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])") &&
    mkdir -p www && echo served >www/index.html || return 1
    (cd www && exec python3 -m http.server --bind 127.0.0.1 "$port") >http.log 2>&1 &
    http_pid=$!

    test_atexit "kill $http_pid" &&
    for i in $(seq 100); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done &&
    curl -sf "http://127.0.0.1:$port/index.html"
'

test_expect_success 'host network by default: the container reaches the host port' '
    chrun-exec b wget -q -O - "http://127.0.0.1:$port/index.html" >out &&
    echo served >expect && test_cmp expect out
'

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
    chrun-exec --net b sh -c "nc -l -p 9 >/tmp/got & sleep 0.3; echo hi | nc 127.0.0.1 9; wait; cat /tmp/got" >out &&
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
