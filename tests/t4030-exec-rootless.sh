#!/bin/bash
test_description='chrun-exec run by an unprivileged user: a user namespace maps the caller to root'
. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/lib-bundle.sh"

# uid 65534 (nobody) without groups; the bundle belongs to it, as one it unpacked.
as_nobody() {
    setpriv --reuid 65534 --regid 65534 --clear-groups "$@"
}

host_mounts() {
    test_own_mounts
}

test_expect_success 'setup: user namespaces are permitted here' '
    test "$(cat /proc/sys/user/max_user_namespaces)" -gt 0 &&
    if [ -e /proc/sys/kernel/unprivileged_userns_clone ]; then
        test "$(cat /proc/sys/kernel/unprivileged_userns_clone)" = 1
    fi &&
    as_nobody unshare --user --map-root-user true
'

test_expect_success 'setup: a bundle owned by the unprivileged user' '
    bundle_make b &&
    chown -R 65534:65534 b &&
    chmod 755 "$TRASH_DIRECTORY" &&
    host_mounts >mounts.before
'

test_expect_success 'the caller is root inside, files it owns are root'"'"'s' '
    as_nobody chrun-exec b sh -c "id -u; stat -c %u /etc/passwd" >out &&
    printf "0\n0\n" >expect && test_cmp expect out
'

test_expect_success 'mounts work: /proc, /dev nodes (bound), /dev/pts, /dev/shm, /sys ro' '
    as_nobody chrun-exec b sh -c "
        grep -q \" /proc \" /proc/self/mounts &&
        echo x >/dev/null && head -c 3 /dev/zero | wc -c &&
        grep -q \" /dev/pts devpts\" /proc/self/mounts &&
        touch /dev/shm/x && ! touch /sys/x 2>/dev/null && echo fine" >out &&
    printf "3\nfine\n" >expect && test_cmp expect out
'

test_expect_success 'namespaces work too: --isolate with --hostname' '
    as_nobody chrun-exec --isolate --hostname rootless b sh -c "echo \$\$; hostname; ls /sys/class/net" >out &&
    printf "2\nrootless\nlo\n" >expect && test_cmp expect out
'

test_expect_success 'exit status, -v and --read-only' '
    mkdir -p vol && echo data >vol/f && chown -R 65534:65534 vol &&
    test_expect_code 9 as_nobody chrun-exec b sh -c "exit 9" &&
    as_nobody chrun-exec --read-only -v "$TRASH_DIRECTORY/vol:/v:ro" b cat /v/f >out &&
    echo data >expect && test_cmp expect out &&
    ! as_nobody chrun-exec --read-only b touch /x 2>err && grep "Read-only" err
'

test_expect_success 'a user other than root cannot be switched to: one clear error' '
    test_expect_code 1 as_nobody chrun-exec -u app b id 2>err &&
    test_one_error_line chrun-exec err "uid 1000 .*rootless"
'

test_expect_success 'the host mount table is unchanged' '
    host_mounts >mounts.after &&
    test_cmp mounts.before mounts.after
'

test_done
