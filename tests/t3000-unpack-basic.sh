#!/bin/bash
test_description='chrun-unpack: options, bundle path, idempotence, --force, config.json, runc'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-unpack.sh

test_expect_success 'help, version and usage errors' '
    chrun-unpack --help >out && grep -q "^Usage: chrun-unpack" out &&
    chrun-unpack --version | grep -q "^chrun-unpack " &&
    test_expect_code 2 chrun-unpack --bogus 2>err && grep -q "^chrun-unpack: error: " err &&
    test_expect_code 2 chrun-unpack a b c 2>err && grep -q "Try .chrun-unpack --help" err
'

test_expect_success 'setup: a busybox image' '
    mkdir -p src/bin src/etc &&
    cp /bin/busybox src/bin/busybox &&
    printf "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n" >src/etc/passwd &&
    printf "root:x:0:\napp:x:1000:\nstaff:x:50:app\n" >src/etc/group &&
    (cd src && ln -s busybox bin/sh && ln -s busybox bin/echo && ln -s busybox bin/id &&
        tar --numeric-owner -cf ../bb.tar .) &&
    printf "dir home/app uid=1000 gid=1000\nfile home/app/hello data=hi uid=1000 gid=1000\n" |
        unpack_mktar app.tar &&
    digest=$(unpack_mkimage bb:1 "entrypoint=[\"/bin/echo\"]" "cmd=[\"hello\",\"world\"]" \
        "env=[\"FOO=bar\"]" workdir=/home/app user=app bb.tar app.tar) &&
    other=$(unpack_mkimage bb:2 "cmd=[\"/bin/id\"]" user=1000:staff bb.tar:zstd)
'

test_expect_success 'default bundle under $CHRUN_ROOT/bundles, path on stdout' '
    chrun-unpack bb:1 >path 2>err &&
    hex=${digest#sha256:} &&
    echo "$CHRUN_ROOT/bundles/${hex:0:12}" >expect &&
    test_cmp expect path &&
    test ! -s err &&
    test -x "$(cat path)/rootfs/bin/busybox" &&
    test "$(cat "$(cat path)/rootfs/home/app/hello")" = hi
'

test_expect_success 'IMAGE from stdin; re-run is a no-op printing the same path' '
    b=$(cat path) &&
    touch "$b/rootfs/marker" &&
    echo bb:1 | chrun-unpack >path2 &&
    test_cmp path path2 &&
    test -e "$b/rootfs/marker" &&
    chrun-unpack "${digest:7:12}" >path3 && test_cmp path path3
'

test_expect_success 'config.json: args, env, cwd, user, annotations, runc defaults' '
    c=$(cat path)/config.json &&
    test "$(jq -c .process.args "$c")" = "[\"/bin/echo\",\"hello\",\"world\"]" &&
    test "$(jq -c .process.env "$c")" = "[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\"FOO=bar\",\"HOME=/home/app\"]" &&
    test "$(jq -r .process.cwd "$c")" = /home/app &&
    test "$(jq -c .process.user "$c")" = "{\"uid\":1000,\"gid\":1000,\"additionalGids\":[50]}" &&
    test "$(jq -r .process.terminal "$c")" = false &&
    test "$(jq -r .root.path "$c")" = rootfs &&
    test "$(jq -r ".annotations[\"io.chrun.image.manifest-digest\"]" "$c")" = "$digest" &&
    test "$(jq -r ".annotations[\"org.opencontainers.image.ref.name\"]" "$c")" = docker.io/library/bb:1 &&
    test "$(jq -c "[.linux.namespaces[].type]" "$c")" = "[\"pid\",\"network\",\"ipc\",\"uts\",\"mount\"]" &&
    test "$(jq -c "[.mounts[].destination]" "$c")" = "[\"/proc\",\"/dev\",\"/dev/pts\",\"/dev/shm\",\"/dev/mqueue\",\"/sys\",\"/sys/fs/cgroup\"]"
'

test_expect_success 'user uid:group resolved through the rootfs /etc/group' '
    chrun-unpack bb:2 out-2 >p &&
    test "$(jq -c .process.user out-2/config.json)" = "{\"uid\":1000,\"gid\":50}"
'

test_expect_success 'a bundle of another image is refused without --force, replaced with it' '
    test_expect_code 1 chrun-unpack bb:1 out-2 2>err &&
    test_one_error_line chrun-unpack err "out-2.* holds image sha256:" &&
    test "$(jq -r ".annotations[\"io.chrun.image.manifest-digest\"]" out-2/config.json)" = "$other" &&
    chrun-unpack --force bb:1 out-2 >p &&
    test "$(jq -r ".annotations[\"io.chrun.image.manifest-digest\"]" out-2/config.json)" = "$digest" &&
    test -z "$(ls -A . | grep tmp-)"
'

test_expect_success 'an existing empty directory is used, a non-empty one refused' '
    mkdir empty && chrun-unpack bb:2 empty >p && test -f empty/config.json &&
    mkdir full && touch full/x &&
    test_expect_code 1 chrun-unpack bb:2 full 2>err &&
    test_one_error_line chrun-unpack err "not a bundle" && test -e full/x
'

test_expect_success 'unknown image: exit 1, one error line, no bundle' '
    test_expect_code 1 chrun-unpack nosuch:1 out-x 2>err &&
    test_one_error_line chrun-unpack err "nosuch" && test ! -e out-x
'

test_expect_success 'runc runs the bundle and prints what the command prints' '
    b=$(cat path) &&
    id=chrun-t3000-$$ &&
    test_when_finished "runc delete -f $id >/dev/null 2>&1" &&
    runc run -b "$b" "$id" </dev/null >out 2>runc.err &&
    echo "hello world" >expect && test_cmp expect out
'

test_done
