#!/bin/bash
test_description='chrun-exec: mounts inside, none left on the host (also after SIGKILL), -v, --read-only, --no-mounts'
. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/lib-bundle.sh"

# The pids of PID's process tree (PID included), children before grandchildren.
process_tree() {
    local p
    echo "$1"
    for p in $(pgrep -P "$1"); do process_tree "$p"; done
}

# True while any of the pids runs (a zombie counts as gone: only reaping is left).
any_alive() {
    local p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] && ! grep -q "^$p ([^)]*) Z" "/proc/$p/stat" 2>/dev/null && return 0
    done
    return 1
}

test_expect_success 'setup' '
    bundle_make b &&
    test_own_mounts >mounts.before &&
    test ! -s mounts.before
'

test_expect_success '/proc, /dev, /dev/pts, /dev/shm, /sys (ro), resolv.conf and hosts inside' '
    chrun-exec b sh -c "cat /proc/self/mounts" >mounts &&
    grep "^proc /proc proc " mounts &&
    grep "^[^ ]* /dev tmpfs " mounts &&
    grep "^devpts /dev/pts devpts .*ptmxmode=666" mounts &&
    grep "^[^ ]* /dev/shm tmpfs .*nodev" mounts &&
    grep "^[^ ]* /sys [^ ]* ro," mounts &&
    grep " /etc/resolv.conf [^ ]* ro," mounts &&
    grep " /etc/hosts [^ ]* ro," mounts &&
    chrun-exec b cat /etc/resolv.conf >out && test_cmp /etc/resolv.conf out &&
    chrun-exec b cat /etc/hosts >out && test_cmp /etc/hosts out &&
    test ! -s b/rootfs/etc/resolv.conf &&
    chrun-exec b sh -c "ls /dev | tr \"\n\" \" \"" >out &&
    printf "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero " >expect &&
    test_cmp expect out &&
    chrun-exec b sh -c "echo x >/dev/null && head -c 4 /dev/zero | wc -c && readlink /dev/stdout" >out &&
    printf "4\n/proc/self/fd/1\n" >expect && test_cmp expect out &&
    test_expect_code 1 chrun-exec b sh -c "touch /sys/x" 2>err && grep "Read-only" err &&
    cp /etc/resolv.conf resolv.saved &&
    ! chrun-exec b sh -c "echo evil >/etc/resolv.conf" 2>err &&
    grep "Read-only" err &&
    test_cmp resolv.saved /etc/resolv.conf
'

test_expect_success 'no mount of ours is left on the host' '
    chrun-exec b true && chrun-exec --pid b true && chrun-exec --isolate b true &&
    chrun-exec -v "$TRASH_DIRECTORY:/t:ro" --read-only b true &&
    test_own_mounts >mounts.after &&
    test_cmp mounts.before mounts.after
'

for mode in "" "--pid" "--isolate"; do
test_expect_success "mounts are gone after SIGKILL of chrun-exec ${mode:-(plain)}" '
    rm -f ready &&
    { chrun-exec $mode -v "$TRASH_DIRECTORY:/t" b sh -c "touch /t/ready; exec sleep 600" & } &&
    pid=$! &&
    test_wait_until "ready file or exit of chrun-exec" eval "test -e ready || ! kill -0 $pid" &&
    test -e ready &&
    tree=$(process_tree $pid | tr "\n" " ") &&
    kill -KILL $pid &&
    { wait $pid; rc=$?; } &&
    test $rc = 137 &&
    test_wait_until "the container'"'"'s processes to end" eval "! any_alive $tree" &&
    test_own_mounts >mounts.after &&
    test_cmp mounts.before mounts.after
'
done

test_expect_success '-v binds a directory or a file, rw and ro, creating the target' '
    mkdir -p vol && echo data >vol/file && echo single >one &&
    chrun-exec -v "$TRASH_DIRECTORY/vol:/mnt/vol" -v "$TRASH_DIRECTORY/one:/etc/one.conf:ro" b \
        sh -c "cat /mnt/vol/file /etc/one.conf; echo new >/mnt/vol/new" >out &&
    printf "data\nsingle\n" >expect && test_cmp expect out &&
    echo new >expect && test_cmp expect vol/new &&
    test -d b/rootfs/mnt/vol && test -f b/rootfs/etc/one.conf &&
    test_expect_code 1 chrun-exec -v "$TRASH_DIRECTORY/vol:/mnt/vol:ro" b sh -c "echo x >/mnt/vol/ro" 2>err &&
    grep "Read-only" err && test ! -e vol/ro &&
    test_expect_code 1 chrun-exec -v "$TRASH_DIRECTORY/one:/etc/one.conf:ro" b sh -c "echo x >/etc/one.conf" &&
    echo single >expect && test_cmp expect one
'

test_expect_success '--read-only: rootfs read-only, /dev/shm and rw volumes still writable' '
    mkdir -p scratch &&
    test_expect_code 1 chrun-exec --read-only b touch /newfile 2>err &&
    grep "Read-only" err && test ! -e b/rootfs/newfile &&
    chrun-exec --read-only -v "$TRASH_DIRECTORY/scratch:/scratch" b \
        sh -c "touch /dev/shm/ok /scratch/ok && echo ok" >out &&
    echo ok >expect && test_cmp expect out && test -e scratch/ok
'

test_expect_success '--no-mounts: a plain chroot, nothing mounted' '
    chrun-exec --no-mounts b sh -c "ls /proc | wc -l; ls /dev | wc -l" >out &&
    printf "0\n0\n" >expect && test_cmp expect out &&
    test_expect_code 2 chrun-exec --no-mounts --read-only b true 2>err &&
    grep "^chrun-exec: error: .*no-mounts" err
'

test_done
