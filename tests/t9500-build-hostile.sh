#!/bin/bash
test_description='chrun-build: sources escaping the context, destinations through image symlinks, hostile ADD archives'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-fixtures.sh && . "$TEST_DIRECTORY"/lib-unpack.sh &&
    . "$TEST_DIRECTORY"/lib-build.sh

# build_refused (lib-build.sh) also checks that this host tree is unchanged.
BUILD_GUARDED_TREE=outside

test_expect_success 'setup: busybox and a base image with /evil -> a host directory' '
    fixtures_ensure &&
    chrun-load -q "$FIXTURES/basic.oci.tar" >/dev/null &&
    mkdir -p outside/host-target && echo precious >outside/host-target/f &&
    echo secret >outside/secret &&
    printf "sym evil target=$TRASH_DIRECTORY/outside/host-target\nsym evilfile target=$TRASH_DIRECTORY/outside/host-target/f\n" |
        unpack_mktar evil.tar &&
    unpack_mkimage evil:1 evil.tar >/dev/null &&
    mkdir -p ctx && echo mine >ctx/f
'

test_expect_success 'COPY ../x is refused' '
    printf "FROM fixture/basic:1\nCOPY ../outside/secret /x\n" >ctx/Dockerfile &&
    build_refused ctx "line 2: source .\.\./outside/secret. is outside the build context"
'

test_expect_success 'COPY of a context symlink pointing outside is refused' '
    ln -s "$TRASH_DIRECTORY/outside/secret" ctx/abs-link &&
    ln -s ../outside/secret ctx/rel-link &&
    printf "FROM fixture/basic:1\nCOPY abs-link /x\n" >ctx/Dockerfile &&
    build_refused ctx "line 2: source .abs-link. is outside the build context" &&
    printf "FROM fixture/basic:1\nCOPY rel-link /x\n" >ctx/Dockerfile &&
    build_refused ctx "line 2: source .rel-link. is outside the build context"
'

test_expect_success 'a symlink inside a copied directory is copied as a symlink, not followed' '
    mkdir -p ctx/d && ln -sf "$TRASH_DIRECTORY/outside/secret" ctx/d/l &&
    printf "FROM fixture/basic:1\nCOPY d /d/\n" >ctx/Dockerfile &&
    chrun-build -q -t d:1 ctx >/dev/null &&
    b=$(chrun-unpack d:1) &&
    test "$(readlink "$b/rootfs/d/l")" = "$TRASH_DIRECTORY/outside/secret" &&
    rm -r ctx/d
'

test_expect_success 'COPY through an image symlink lands inside the rootfs, never on the host' '
    tree_snapshot outside >outside.before &&
    printf "FROM evil:1\nCOPY f /evil/\nCOPY f /evilfile\n" >ctx/Dockerfile &&
    chrun-build -q -t e:1 ctx >/dev/null &&
    tree_snapshot outside >outside.after && test_cmp outside.before outside.after &&
    b=$(chrun-unpack e:1) &&
    test "$(cat "$b/rootfs$TRASH_DIRECTORY/outside/host-target/f")" = mine &&
    test -L "$b/rootfs/evil" &&
    # a file over an image symlink replaces the link, never writes through it
    test ! -L "$b/rootfs/evilfile" && test "$(cat "$b/rootfs/evilfile")" = mine &&
    test -z "$(ls -A "$CHRUN_ROOT/tmp")"
'

test_expect_success 'ADD of an archive with ../ or absolute entries is refused' '
    printf "file ../../escaped data=x\n" | unpack_mktar ctx/dotdot.tar &&
    printf "raw /abs-escaped data=x\n" | unpack_mktar ctx/abs.tar &&
    printf "FROM fixture/basic:1\nADD dotdot.tar /x/\n" >ctx/Dockerfile &&
    build_refused ctx "line 2: ADD .dotdot.tar.*\.\." &&
    printf "FROM fixture/basic:1\nADD abs.tar /x/\n" >ctx/Dockerfile &&
    build_refused ctx "line 2: ADD .abs.tar." &&
    test ! -e "$TRASH_DIRECTORY/escaped" && test ! -e /abs-escaped
'

test_expect_success 'ADD of a URL nobody serves: the URL named, nothing changed' '
    printf "FROM fixture/basic:1\nADD http://127.0.0.1:1/x /x\n" >ctx/Dockerfile &&
    build_refused ctx "line 2: fetch .http://127.0.0.1:1/x.*connect"
'

test_expect_success 'an image whose /etc is a host directory: RUN touches nothing there' '
    mkdir -p outside/etc-target && : >outside/etc-target/hosts && : >outside/etc-target/resolv.conf &&
    tree_snapshot outside >outside.before &&
    printf "FROM fixture/basic:1\nRUN mv /etc /etc.old && ln -s $TRASH_DIRECTORY/outside/etc-target /etc\n" >ctx/Dockerfile &&
    CHRUN_BUILD_FULL_WALK=1 chrun-build -q -t evil-etc:1 ctx >/dev/null &&
    printf "FROM evil-etc:1\nRUN true\n" >ctx/Dockerfile &&
    chrun-build -q -t evil-etc:2 ctx >/dev/null &&
    tree_snapshot outside >outside.after && test_cmp outside.before outside.after
'

test_expect_success 'a FIFO at the image /etc/passwd: COPY --chown fails, never hangs' '
    printf "dir etc\nfifo etc/passwd\n" | unpack_mktar fifo-etc.tar &&
    unpack_mkimage fifo-etc:1 fifo-etc.tar >/dev/null &&
    printf "FROM fifo-etc:1\nCOPY --chown=someone f /x\n" >ctx/Dockerfile &&
    store_snapshot >before &&
    test_expect_code 1 timeout 60 chrun-build -q ctx >out 2>err &&
    test_one_error_line chrun-build err "not a regular file" &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'a RUN leaving a path longer than PATH_MAX fails the step (never a layer without it)' '
    printf "FROM fixture/basic:1\nRUN d=\$(printf \"d%%.0s\" \$(seq 200)) && mkdir /deep && echo x >/deep/payload && for i in \$(seq 21); do mkdir /t && mv /deep /t/\$d && mv /t /deep || exit 1; done\n" >ctx/Dockerfile &&
    store_snapshot >before &&
    test_expect_code 1 chrun-build -q -t deep:1 ctx >out 2>err &&
    test_one_error_line chrun-build err "File name too long" &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'a .wh. name from ADD or RUN is refused: it would delete files in every reader' '
    printf "dir etc\nfile etc/.wh.passwd data=x\n" | unpack_mktar wh.tar &&
    cp wh.tar ctx/wh.tar &&
    printf "FROM fixture/basic:1\nADD wh.tar /\n" >ctx/Dockerfile &&
    build_refused ctx "a .\.wh\.. name cannot be kept in an image layer" &&
    printf "FROM fixture/basic:1\nRUN touch /etc/.wh.passwd\n" >ctx/Dockerfile &&
    build_refused ctx "a .\.wh\.. name cannot be kept in an image layer" &&
    rm ctx/wh.tar
'

test_expect_success 'RUN keeps only docker default capabilities: no mount, chown still works' '
    printf "FROM fixture/basic:1\nRUN grep -E \"^Cap(Bnd|Eff)\" /proc/self/status >/caps; mkdir /m; if mount -t tmpfs none /m 2>/dev/null; then echo yes >/mounted; fi; touch /owned && chown 5:5 /owned\n" >ctx/Dockerfile &&
    chrun-build -q -t caps:1 ctx >/dev/null &&
    b=$(chrun-unpack caps:1) &&
    printf "CapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n" >expect &&
    test_cmp expect "$b/rootfs/caps" &&
    test ! -e "$b/rootfs/mounted" &&
    test "$(stat -c %u:%g "$b/rootfs/owned")" = 5:5
'

test_expect_success 'RUN sees no host process: /proc/PID/root leads nowhere outside' '
    tree_snapshot outside >outside.before &&
    printf "FROM fixture/basic:1\nRUN for p in /proc/[0-9]*; do echo x >\$p/root$TRASH_DIRECTORY/outside/escaped; done 2>/dev/null; test ! -e /proc/1/root$TRASH_DIRECTORY\n" >ctx/Dockerfile &&
    chrun-build -q -t noescape:1 ctx >/dev/null &&
    test ! -e outside/escaped &&
    tree_snapshot outside >outside.after && test_cmp outside.before outside.after
'

test_done
