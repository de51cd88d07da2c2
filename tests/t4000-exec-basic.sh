#!/bin/bash
test_description='chrun-exec: exit status, signals, stdio, Env/User/WorkingDir and overrides'
. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/lib-bundle.sh"

wait_ready() {
    for i in $(seq 200); do [ -e ready ] && return 0; sleep 0.05; done
    return 1
}

test_expect_success 'setup: a busybox bundle' '
    bundle_make b &&
    bundle_config b ".process.args = [\"sh\", \"-c\", \"echo from-config; exit 5\"]"
'

test_expect_success '--help, --version, usage errors' '
    chrun-exec --help >out && grep "^Usage: chrun-exec" out &&
    chrun-exec --version >out && grep "^chrun-exec " out &&
    test_expect_code 2 chrun-exec 2>err && grep "^chrun-exec: error: expected BUNDLE" err &&
    test_expect_code 2 chrun-exec --bogus b true 2>err && grep "bogus" err &&
    test_expect_code 2 chrun-exec -v nocolon b true 2>err && grep "nocolon" err
'

test_expect_success 'runs config process.args; exit status is the command'"'"'s' '
    test_expect_code 5 chrun-exec b >out &&
    echo from-config >expect && test_cmp expect out &&
    chrun-exec b true &&
    test_expect_code 3 chrun-exec b sh -c "exit 3" &&
    test_expect_code 255 chrun-exec b sh -c "exit 255"
'

test_expect_success 'death by signal N gives 128+N (also with --pid)' '
    test_expect_code 143 chrun-exec b sh -c "kill -TERM \$\$" &&
    test_expect_code 137 chrun-exec b sh -c "kill -KILL \$\$" &&
    test_expect_code 143 chrun-exec --pid b sh -c "kill -TERM \$\$" &&
    test_expect_code 134 chrun-exec --pid b sh -c "kill -ABRT \$\$"
'

for mode in "" "--pid" "--isolate"; do
test_expect_success "SIGTERM and SIGHUP to chrun-exec reach the command ${mode:-(plain)}" '
    for sig in TERM HUP USR1; do
        rm -f ready || return 1
        chrun-exec $mode -v "$TRASH_DIRECTORY:/t" b sh -c \
            "trap \"echo got-$sig; exit 7\" $sig; touch /t/ready; while :; do sleep 0.05; done" >out &
        pid=$! &&
        wait_ready &&
        kill -$sig $pid &&
        { wait $pid; rc=$?; } &&
        test $rc = 7 && echo got-$sig >expect && test_cmp expect out || return 1
    done
'
test_expect_success "SIGINT to chrun-exec kills a command that does not catch it ${mode:-(plain)}" '
    rm -f ready &&
    # a background job of a non-interactive shell starts with SIGINT ignored
    { env --default-signal=INT chrun-exec $mode -v "$TRASH_DIRECTORY:/t" b sh -c "touch /t/ready; exec sleep 30" & } &&
    pid=$! &&
    wait_ready &&
    kill -INT $pid &&
    { wait $pid; rc=$?; } &&
    test $rc = 130
'
done

test_expect_success 'stdin, stdout and stderr pass through' '
    echo piped | chrun-exec b cat >out &&
    echo piped >expect && test_cmp expect out &&
    chrun-exec b sh -c "echo to-err >&2" 2>err >out &&
    echo to-err >expect && test_cmp expect err && test ! -s out &&
    echo through-pid | chrun-exec --pid b cat >out &&
    echo through-pid >expect && test_cmp expect out
'

test_expect_success 'not found is 127, not executable is 126, one error line each' '
    test_expect_code 127 chrun-exec b no-such-cmd 2>err &&
    test_one_error_line chrun-exec err "no-such-cmd.*not found" &&
    test_expect_code 127 chrun-exec b /no/such/path 2>err &&
    test_one_error_line chrun-exec err "/no/such/path" &&
    test_expect_code 126 chrun-exec b /etc/passwd 2>err &&
    test_one_error_line chrun-exec err "/etc/passwd.*Permission denied" &&
    test_expect_code 127 chrun-exec --pid b no-such-cmd 2>err &&
    test_one_error_line chrun-exec err "no-such-cmd"
'

test_expect_success 'a bare command is searched in the container PATH, not ours' '
    mkdir -p b/rootfs/opt/tools &&
    printf "#!/bin/sh\necho from-opt\n" >b/rootfs/opt/tools/hello &&
    chmod +x b/rootfs/opt/tools/hello &&
    test_when_finished "rm -rf b/rootfs/opt" &&
    test_expect_code 127 chrun-exec b hello 2>err &&
    chrun-exec -e PATH=/opt/tools:/bin b hello >out &&
    echo from-opt >expect && test_cmp expect out
'

test_expect_success 'Env from config, default HOME and HOSTNAME, -e overrides' '
    chrun-exec b env >out &&
    grep "^GREETING=hello$" out && grep "^TERM=xterm$" out &&
    grep "^HOME=/root$" out && grep "^HOSTNAME=$(hostname)$" out &&
    export FROM_HOST=yes &&
    chrun-exec -e GREETING=bye -e NEW=1 -e FROM_HOST b env >out &&
    grep "^GREETING=bye$" out && grep "^NEW=1$" out && grep "^FROM_HOST=yes$" out &&
    test $(grep -c "^GREETING=" out) = 1 &&
    bundle_config b "del(.process.env)" &&
    test_when_finished "bundle_config b \".process.env = [\\\"GREETING=hello\\\"]\"" &&
    chrun-exec b env >out &&
    grep "^PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin$" out
'

test_expect_success 'User from config (uid, gid, additionalGids), HOME from the image passwd' '
    bundle_config b ".process.user = {uid: 1000, gid: 1000, additionalGids: [2000]}" &&
    test_when_finished "bundle_config b \".process.user = {uid: 0, gid: 0}\"" &&
    chrun-exec b id >out &&
    echo "uid=1000(app) gid=1000(app) groups=2000(extra)" >expect &&
    test_cmp expect out &&
    chrun-exec b sh -c "echo \$HOME" >out &&
    echo /home/app >expect && test_cmp expect out
'

test_expect_success '-u by name, by number, with a group; names come from the image' '
    # as docker and runc: supplementary groups are those listing the user
    chrun-exec -u app b id >out &&
    echo "uid=1000(app) gid=1000(app) groups=2000(extra)" >expect &&
    test_cmp expect out &&
    chrun-exec -u nobody:app b id >out &&
    echo "uid=65534(nobody) gid=1000(app)" >expect &&
    test_cmp expect out &&
    chrun-exec -u 4242:4343 b id >out &&
    echo "uid=4242 gid=4343" >expect &&
    test_cmp expect out &&
    chrun-exec -u 1000 b sh -c "id -u; echo \$HOME" >out &&
    printf "1000\n/home/app\n" >expect && test_cmp expect out
'

test_expect_success 'WorkingDir from config and -w (created when missing)' '
    bundle_config b ".process.cwd = \"/home/app\"" &&
    chrun-exec b pwd >out &&
    echo /home/app >expect && test_cmp expect out &&
    chrun-exec -w /tmp b pwd >out &&
    echo /tmp >expect && test_cmp expect out &&
    chrun-exec -w /var/new/dir b pwd >out &&
    echo /var/new/dir >expect && test_cmp expect out &&
    test -d b/rootfs/var/new/dir &&
    bundle_config b ".process.cwd = \"/\""
'

test_done
