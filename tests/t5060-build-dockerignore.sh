#!/bin/bash
test_description='chrun-build: .dockerignore holds against context symlinks; it filters the context only'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-fixtures.sh && . "$TEST_DIRECTORY"/lib-build.sh

export SOURCE_DATE_EPOCH=1700000000

test_expect_success 'setup: the busybox fixture, a context with an ignored secret' '
    fixtures_ensure &&
    chrun-load -q "$FIXTURES/basic.oci.tar" >/dev/null &&
    mkdir -p ctx/keys ctx/pub &&
    echo TOPSECRET >ctx/secret.txt && echo TOPSECRET >ctx/keys/id && echo ok >ctx/pub/a &&
    echo TOPSECRET >ctx/pub/hidden &&
    printf "secret.txt\nkeys\npub/hidden\n" >ctx/.dockerignore &&
    ln -s secret.txt ctx/link && ln -s keys ctx/dirlink && ln -s pub ctx/publink
'

test_expect_success 'COPY of a symlink to an ignored file is refused' '
    printf "FROM fixture/basic:1\nCOPY link /x\n" >ctx/Dockerfile &&
    build_refused ctx "excluded"
'

test_expect_success 'COPY through a symlinked directory into an ignored one is refused' '
    printf "FROM fixture/basic:1\nCOPY dirlink/id /x\n" >ctx/Dockerfile &&
    build_refused ctx "excluded" &&
    printf "FROM fixture/basic:1\nCOPY dirlink /x\n" >ctx/Dockerfile &&
    build_refused ctx "excluded"
'

test_expect_success 'COPY of a symlinked directory leaves out what is ignored below its target' '
    printf "FROM fixture/basic:1\nCOPY publink /p\n" >ctx/Dockerfile &&
    chrun-build -q ctx >digest &&
    b=$(chrun-unpack "$(cat digest)") &&
    test -f "$b/rootfs/p/a" && test ! -e "$b/rootfs/p/hidden"
'

test_expect_success 'RUN --mount=type=bind of a symlink to an ignored file shows nothing of it' '
    printf "FROM fixture/basic:1\nRUN --mount=type=bind,source=link,target=/m cat /m >/got\n" \
        >ctx/Dockerfile &&
    build_refused ctx "excluded"
'

test_expect_success 'COPY --from=stage is not filtered by the context .dockerignore' '
    cat >ctx/Dockerfile <<-\EOF &&
	FROM fixture/basic:1 AS a
	RUN mkdir /keys && echo built >/keys/id && echo built >/secret.txt
	FROM fixture/basic:1
	COPY --from=a /keys/id /secret.txt /out/
	EOF
    chrun-build -q ctx >digest &&
    b=$(chrun-unpack "$(cat digest)") &&
    echo built >expect && test_cmp expect "$b/rootfs/out/id" &&
    test_cmp expect "$b/rootfs/out/secret.txt"
'

test_expect_success 'COPY <<heredoc is not filtered by the context .dockerignore' '
    printf "*\n" >ctx/.dockerignore &&
    printf "FROM fixture/basic:1\nCOPY <<EOF /h\nhere\nEOF\n" >ctx/Dockerfile &&
    chrun-build -q ctx >digest &&
    b=$(chrun-unpack "$(cat digest)") &&
    echo here >expect && test_cmp expect "$b/rootfs/h"
'

test_done
