#!/bin/bash
test_description='chrun-build: instructions, layers, whiteouts, peers, reproducibility, step cache'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-fixtures.sh

export SOURCE_DATE_EPOCH=1700000000

# layer_digest IMAGE N: the digest of layer N (0-based) of IMAGE in the store.
layer_digest() {
    local m
    m=$(jq -r --arg r "docker.io/library/$1" \
        '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $r) | .digest' \
        "$CHRUN_ROOT/index.json") &&
    jq -er ".layers[$2].digest" "$CHRUN_ROOT/blobs/sha256/${m#sha256:}"
}

# layer_list IMAGE N: the entries of layer N (0-based) of IMAGE in the store.
layer_list() {
    local l
    l=$(layer_digest "$1" "$2") &&
    tar -tzf "$CHRUN_ROOT/blobs/sha256/${l#sha256:}"
}

image_config() {
    chrun-inspect "$1" | jq -c ".Config$2"
}

test_expect_success 'help, version and usage errors' '
    chrun-build --help >out && grep -q "^Usage: chrun-build" out &&
    chrun-build --version | grep -q "^chrun-build " &&
    test_expect_code 2 chrun-build 2>err && grep -q "expected exactly one CONTEXT" err &&
    test_expect_code 2 chrun-build -t "Bad Name" . 2>err && grep -q "^chrun-build: error: -t" err
'

test_expect_success 'setup: the busybox fixture and a context' '
    fixtures_ensure &&
    chrun-load -q "$FIXTURES/basic.oci.tar" >/dev/null &&
    mkdir -p ctx/dir/sub &&
    echo hello >ctx/file &&
    echo deep >ctx/dir/sub/deep &&
    ln -s file ctx/dir/link &&
    mkdir arch && echo inside >arch/a.txt && tar -C arch -czf ctx/a.tar.gz a.txt &&
    cat >ctx/Dockerfile <<-\EOF &&
	# the fixture image: busybox, Env FOO=bar
	FROM fixture/basic:1
	ARG WHO=world
	ENV APP=/app \
	    MODE="two words"
	WORKDIR $APP
	COPY file dir ./
	COPY --chown=1000:50 file /owned/
	ADD a.tar.gz /extracted/
	RUN echo "hello $WHO" >greeting && rm /bin/true && \
	    echo "$MODE" >mode
	LABEL org.example.k="v 1"
	EXPOSE 8080 53/udp
	VOLUME /data
	USER 1000
	ENTRYPOINT ["/bin/sh", "-c"]
	CMD ["cat /app/greeting"]
	EOF
    chrun-build -t app:1 --build-arg WHO=chrun ctx >digest 2>err &&
    grep -q "^sha256:[0-9a-f]\{64\}$" digest && test $(wc -l <digest) = 1
'

test_expect_success 'the config carries ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, CMD' '
    test "$(image_config app:1 .config.Env)" = "[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\"FOO=bar\",\"APP=/app\",\"MODE=two words\"]" &&
    test "$(image_config app:1 .config.WorkingDir)" = "\"/app\"" &&
    test "$(image_config app:1 .config.User)" = "\"1000\"" &&
    test "$(image_config app:1 .config.Labels)" = "{\"org.example.fixture\":\"basic\",\"org.example.k\":\"v 1\"}" &&
    test "$(image_config app:1 .config.ExposedPorts)" = "{\"53/udp\":{},\"8080/tcp\":{}}" &&
    test "$(image_config app:1 .config.Volumes)" = "{\"/data\":{}}" &&
    test "$(image_config app:1 .config.Entrypoint)" = "[\"/bin/sh\",\"-c\"]" &&
    test "$(image_config app:1 .config.Cmd)" = "[\"cat /app/greeting\"]" &&
    test "$(image_config app:1 .created)" = "\"2023-11-14T22:13:20Z\"" &&
    test "$(image_config app:1 ".history | map(select(.empty_layer | not)) | length")" = 6 &&
    test "$(image_config app:1 ".rootfs.diff_ids | length")" = 6
'

test_expect_success 'one layer per filesystem step, holding only what changed' '
    layer_list app:1 1 >l1 && printf "app/\n" >expect && test_cmp expect l1 &&
    layer_list app:1 2 >l2 && printf "app/\napp/file\napp/link\napp/sub/\napp/sub/deep\n" >expect &&
    test_cmp expect l2 &&
    layer_list app:1 3 >l3 && printf "owned/\nowned/file\n" >expect && test_cmp expect l3 &&
    layer_list app:1 4 >l4 && printf "extracted/\nextracted/a.txt\n" >expect && test_cmp expect l4
'

test_expect_success 'a RUN that deletes a file gives a whiteout' '
    layer_list app:1 5 >l5 &&
    printf "app/\napp/greeting\napp/mode\nbin/\nbin/.wh.true\n" >expect && test_cmp expect l5 &&
    test -z "$(ls -A "$CHRUN_ROOT/tmp")"
'

test_expect_success 'chrun-unpack: files, owners, whiteout applied; chrun-exec runs it' '
    b=$(chrun-unpack app:1) &&
    test "$(cat "$b/rootfs/app/greeting")" = "hello chrun" &&
    test "$(cat "$b/rootfs/app/mode")" = "two words" &&
    test "$(cat "$b/rootfs/app/sub/deep")" = deep &&
    test "$(readlink "$b/rootfs/app/link")" = file &&
    test "$(stat -c %u:%g "$b/rootfs/owned/file")" = 1000:50 &&
    test "$(cat "$b/rootfs/extracted/a.txt")" = inside &&
    test ! -e "$b/rootfs/bin/true" && test -e "$b/rootfs/bin/busybox" &&
    chrun-exec "$b" >out && echo "hello chrun" >expect && test_cmp expect out &&
    chrun-exec "$b" sh -c "id -u; pwd" >out && printf "1000\n/app\n" >expect && test_cmp expect out
'

test_expect_success 'umoci unpacks it and skopeo inspects it from the store' '
    umoci unpack --image "$CHRUN_ROOT:docker.io/library/app:1" ub >/dev/null &&
    test "$(cat ub/rootfs/app/greeting)" = "hello chrun" && test ! -e ub/rootfs/bin/true &&
    chrun-unpack app:1 fresh >/dev/null &&
    "$TEST_DIRECTORY"/treecmp fresh/rootfs ub/rootfs &&
    skopeo inspect "oci:$CHRUN_ROOT:docker.io/library/app:1" >info &&
    test "$(jq -r .Digest info)" = "$(cat digest)" &&
    test "$(jq ".Layers | length" info)" = 6
'

test_expect_success 'runc runs the unpacked bundle' '
    b=$(chrun-unpack app:1) &&
    id=chrun-t5000-$$ &&
    test_when_finished "runc delete -f $id >/dev/null 2>&1" &&
    runc run -b "$b" "$id" </dev/null >out 2>runc.err &&
    echo "hello chrun" >expect && test_cmp expect out
'

test_expect_success 'same inputs and SOURCE_DATE_EPOCH, fresh stores, touched context: same digest' '
    mkdir -p ctx/dir/a-very-long-directory-name-to-need-a-pax-header-in-the-tar-writer-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx &&
    echo long >ctx/dir/a-very-long-directory-name-to-need-a-pax-header-in-the-tar-writer-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/a-long-file-name-as-well-xxxxxxxxxxxxxxxxxxxxxxx &&
    for n in 1 2; do
        CHRUN_ROOT=$TRASH_DIRECTORY/store$n &&
        chrun-load -q "$FIXTURES/basic.oci.tar" >/dev/null &&
        chrun-build -q -t app:1 --build-arg WHO=chrun ctx >repro$n || return 1
        touch ctx/file ctx/dir ctx/dir/sub/deep
        sleep 1
    done &&
    CHRUN_ROOT=$TRASH_DIRECTORY/store &&
    test_cmp repro1 repro2 &&
    ! test_cmp digest repro1 >/dev/null
'

test_expect_success 'step cache: a second build runs no RUN and reuses every layer' '
    mkdir cctx && cat >cctx/Dockerfile <<-\EOF &&
	FROM fixture/basic:1
	RUN cat /proc/sys/kernel/random/uuid >/stamp
	EOF
    chrun-build -t stamp:1 cctx >d1 2>err1 &&
    ! grep -q "using cache" err1 &&
    chrun-build -t stamp:2 cctx >d2 2>err2 &&
    grep -q "RUN cat /proc/sys/kernel/random/uuid >/stamp: using cache" err2 &&
    test_cmp d1 d2 &&
    chrun-build --no-cache -t stamp:3 cctx >d3 2>err3 &&
    ! grep -q "using cache" err3 &&
    ! test_cmp d1 d3 >/dev/null &&
    test "$(layer_list stamp:3 1)" = stamp
'

test_expect_success 'step cache: gc drops the entries whose layer it removes' '
    ls "$CHRUN_ROOT/build-cache" | sort >cache.before &&
    chrun-rmi stamp:1 stamp:2 stamp:3 >/dev/null &&
    chrun-gc -q --json >gc.json 2>/dev/null &&
    test "$(jq .cache_removed gc.json)" -ge 1 &&
    ls "$CHRUN_ROOT/build-cache" | sort >cache.after &&
    test "$(comm -13 cache.before cache.after)" = "" &&
    test "$(wc -l <cache.after)" -lt "$(wc -l <cache.before)" &&
    chrun-build -t stamp:4 cctx >d4 2>err4 &&
    ! grep -q "using cache" err4 &&
    b=$(chrun-unpack stamp:4) && test -s "$b/rootfs/stamp"
'

test_expect_success 'step cache: an entry whose blob is gone is not trusted' '
    layer=$(layer_digest stamp:4 1) &&
    chrun-rmi stamp:4 >/dev/null &&
    rm -f "$CHRUN_ROOT/blobs/sha256/${layer#sha256:}" &&
    chrun-build -t stamp:5 cctx >d5 2>err5 &&
    ! grep -q "using cache" err5 &&
    b=$(chrun-unpack stamp:5) && test -s "$b/rootfs/stamp"
'

test_expect_success 'a COPY source change misses the cache; an unchanged one hits' '
    mkdir c2 && echo one >c2/f && printf "FROM fixture/basic:1\nCOPY f /f\n" >c2/Dockerfile &&
    chrun-build -q c2 >e1 && chrun-build c2 >e2 2>err && grep -q "using cache" err &&
    test_cmp e1 e2 &&
    echo two >c2/f && chrun-build c2 >e3 2>err && ! grep -q "using cache" err &&
    ! test_cmp e1 e3 >/dev/null
'

test_expect_success 'ADD of a tar longer than one read buffer is extracted, not copied' '
    mkdir -p addbig/src && head -c 300000 /dev/urandom >addbig/src/payload &&
    tar -C addbig/src -cf addbig/big.tar payload &&
    printf "FROM fixture/basic:1\nADD big.tar /b/\n" >addbig/Dockerfile &&
    chrun-build -q -t addbig:1 addbig >/dev/null &&
    b=$(chrun-unpack addbig:1) &&
    cmp addbig/src/payload "$b/rootfs/b/payload" && test ! -e "$b/rootfs/b/big.tar"
'

test_expect_success 'the builder umask does not reach the image: same digest under 022 and 077' '
    mkdir -p um && echo f >um/f &&
    printf "FROM fixture/basic:1\nWORKDIR /app/sub\nCOPY f /opt/x/f\n" >um/Dockerfile &&
    for m in 022 077; do
        CHRUN_ROOT=$TRASH_DIRECTORY/um-$m &&
        chrun-load -q "$FIXTURES/basic.oci.tar" >/dev/null &&
        (umask $m && chrun-build -q -t um:1 um >um-$m.digest) || return 1
    done &&
    CHRUN_ROOT=$TRASH_DIRECTORY/store &&
    test_cmp um-022.digest um-077.digest
'

test_expect_success 'an ordinary user builds with COPY and RUN in a store of its own' '
    mkdir -p nb nb-store && echo mine >nb/f && chown 65534:65534 nb-store &&
    printf "FROM fixture/basic:1\nCOPY f /f\nRUN cat /f >/g\n" >nb/Dockerfile &&
    nobody="setpriv --reuid 65534 --regid 65534 --clear-groups env CHRUN_ROOT=$TRASH_DIRECTORY/nb-store PATH=$PATH" &&
    $nobody chrun-load -q - <"$FIXTURES/basic.oci.tar" >/dev/null &&
    $nobody chrun-build -q -t nb:1 nb >/dev/null &&
    b=$($nobody chrun-unpack nb:1) &&
    test "$(cat "$b/rootfs/g")" = mine
'

test_expect_success 'FROM scratch with COPY' '
    mkdir sc && echo data >sc/f && printf "FROM scratch\nCOPY f /\nCMD [\"/f\"]\n" >sc/Dockerfile &&
    chrun-build -q -t sc:1 sc >/dev/null &&
    layer_list sc:1 0 >l && echo f >expect && test_cmp expect l
'

test_expect_success 'a failing RUN: exit 1, the step named, no new name, nothing in tmp/' '
    mkdir bad && printf "FROM fixture/basic:1\nRUN true\nRUN exit 3\n" >bad/Dockerfile &&
    cp "$CHRUN_ROOT/index.json" index.before &&
    test_expect_code 1 chrun-build -q -t bad:1 bad >out 2>err &&
    test_one_error_line chrun-build err "line 3: RUN returned exit status 3" &&
    test ! -s out &&
    test_cmp index.before "$CHRUN_ROOT/index.json" &&
    test -z "$(ls -A "$CHRUN_ROOT/tmp")"
'

test_expect_success 'a missing FROM image tells to pull or load it' '
    mkdir nf && printf "FROM nosuch:1\n" >nf/Dockerfile &&
    test_expect_code 1 chrun-build -q nf 2>err &&
    test_one_error_line chrun-build err "line 1: FROM image .nosuch:1. is not in the store.*chrun-pull or chrun-load"
'

test_expect_success 'what is still refused is refused with the line' '
    mkdir un &&
    for bad in "RUN --mount=type=ssh true" "ADD http://127.0.0.1:1/x /x" "COPY --parents a b" \
               "RUN --security=insecure true" "COPY --chmod=u+x f /f"; do
        printf "FROM fixture/basic:1\n%s\n" "$bad" >un/Dockerfile &&
        test_expect_code 1 chrun-build -q un 2>err &&
        test_one_error_line chrun-build err "Dockerfile. line 2: .*(not supported|supported)" || return 1
    done
'

test_done
