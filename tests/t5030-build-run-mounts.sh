#!/bin/bash
test_description='chrun-build: RUN --mount (cache, bind, tmpfs, secret) and --network; mounts never reach a layer'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-fixtures.sh

DATA=$REPO_ROOT/testdata/build
export SOURCE_DATE_EPOCH=1700000000

# all_layer_entries IMAGE: every entry name of every layer chrun-build added.
all_layer_entries() {
    local m l
    m=$(chrun-inspect "$1" | jq -r .Digest) &&
    for l in $(jq -r ".layers[1:][].digest" "$CHRUN_ROOT/blobs/sha256/${m#sha256:}"); do
        tar -tzf "$CHRUN_ROOT/blobs/sha256/${l#sha256:}" || return 1
    done
}

test_expect_success 'setup: the busybox fixture, a context and a secret' '
    fixtures_ensure &&
    chrun-load -q "$FIXTURES/basic.oci.tar" >/dev/null &&
    mkdir mnt && cp "$DATA/mounts.Dockerfile" mnt/Dockerfile &&
    echo "from the context" >mnt/input.txt &&
    printf "s3cr3t-t0ken-value" >token.txt
'

test_expect_success 'every mount kind works; the image runs' '
    chrun-build -q -t mnt:1 --build-arg RUN_ID=1 --secret id=token,src=token.txt mnt >d1 &&
    b=$(chrun-unpack mnt:1) && chrun-exec "$b" >out &&
    printf "%s\n" "run 1" "from the context" "changed" "from a stage" "image" "temp" "18" \
        "optional secret absent" "1" >expect &&
    test_cmp expect out &&
    test "$(cat mnt/input.txt)" = "from the context" && test ! -e mnt/written
'

test_expect_success 'mount targets and contents never reach a layer, nor the secret' '
    all_layer_entries mnt:1 >entries &&
    ! grep -E "^(var/cache/app|src|rw|p|img-bin|scratch|run/secrets)/?$" entries &&
    ! grep -E "^(var/cache/app|src/|rw/|p/|img-bin/|scratch/|run/secrets/)" entries &&
    b=$(chrun-unpack mnt:1) &&
    test ! -e "$b/rootfs/src" && test ! -e "$b/rootfs/run/secrets" && test ! -e "$b/rootfs/scratch" &&
    ! grep -r -q "s3cr3t-t0ken-value" "$b/rootfs" &&
    ! grep -r -q "s3cr3t-t0ken-value" "$CHRUN_ROOT/blobs" "$CHRUN_ROOT/build-cache" &&
    for l in $(chrun-inspect mnt:1 | jq -r ".Manifest.layers[].digest"); do
        ! zcat "$CHRUN_ROOT/blobs/sha256/${l#sha256:}" | grep -q "s3cr3t-t0ken-value" || return 1
    done
'

test_expect_success 'the cache mount persists across builds; a rerun step sees the new secret' '
    printf "another-secret" >token2.txt &&
    chrun-build -q -t mnt:2 --build-arg RUN_ID=2 --secret id=token,src=token2.txt mnt >d2 &&
    b=$(chrun-unpack mnt:2) && printf "run 1\nrun 2\n" >expect && test_cmp expect "$b/rootfs/cache-log" &&
    test "$(cat "$b/rootfs/secret-length")" = 14 &&
    test -d "$CHRUN_ROOT/build-cache-mounts"
'

test_expect_success 'a secret from an environment variable; an unset one fails before any work' '
    TOKEN_ENV=twelve-chars chrun-build -q -t mnt:env --build-arg RUN_ID=env --secret id=token,env=TOKEN_ENV mnt >/dev/null &&
    b=$(chrun-unpack mnt:env) && test "$(cat "$b/rootfs/secret-length")" = 12 &&
    store_snapshot >before &&
    test_expect_code 1 chrun-build -q --secret id=token,env=NO_SUCH_ENV mnt 2>err &&
    test_one_error_line chrun-build err "secret .token.: environment variable .NO_SUCH_ENV. is not set" &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'a bind mount of the context is part of the cache key' '
    chrun-build -q --build-arg RUN_ID=2 --secret id=token,src=token.txt mnt >d3 &&
    test_cmp d2 d3 &&
    echo "edited" >mnt/input.txt &&
    chrun-build -q -t mnt:3 --build-arg RUN_ID=2 --secret id=token,src=token.txt mnt >d4 &&
    ! test_cmp d2 d4 >/dev/null &&
    b=$(chrun-unpack mnt:3) && test "$(cat "$b/rootfs/from-bind")" = edited
'

test_expect_success '--network=none: only loopback; chrun-build --network none is the default for RUN' '
    mkdir net && printf "FROM fixture/basic:1\nRUN grep -c : /proc/net/dev >/n\nCMD [\"cat\", \"/n\"]\n" >net/Dockerfile &&
    chrun-build -q --no-cache --network none -t net:1 net >/dev/null &&
    b=$(chrun-unpack net:1) && chrun-exec "$b" >out && echo 1 >expect && test_cmp expect out
'

test_expect_success 'chrun-build --network is part of the RUN cache key' '
    chrun-build --network host net >/dev/null 2>err &&
    ! grep "using cache" err &&
    chrun-build --network none net >/dev/null 2>err &&
    grep -q "RUN grep -c : /proc/net/dev >/n: using cache" err
'

test_expect_success 'target=. is the working directory; /proc, /dev, /sys and .. are refused' '
    mkdir tg && echo main >tg/main.txt &&
    printf "FROM fixture/basic:1\nWORKDIR /src\nRUN --mount=type=bind,target=. cat main.txt >/built && ls -A /src | wc -l >/count\nCMD [\"cat\", \"/built\", \"/count\"]\n" >tg/Dockerfile &&
    chrun-build -q -t tg:1 tg >/dev/null &&
    b=$(chrun-unpack tg:1) && chrun-exec "$b" >out && printf "main\n2\n" >expect && test_cmp expect out &&
    test -z "$(ls -A "$b/rootfs/src")" &&
    for t in /proc/x /dev /sys/fs ../x /a/../../b; do
        printf "FROM fixture/basic:1\nRUN --mount=type=tmpfs,target=$t true\n" >tg/Dockerfile &&
        test_expect_code 1 chrun-build -q tg 2>err &&
        test_one_error_line chrun-build err "line 2: RUN --mount: target .* is not allowed" || return 1
    done
'

test_expect_success 'an ordinary user builds with every mount kind' '
    mkdir -p nb-store && chown 65534:65534 nb-store && chmod 644 token.txt &&
    chmod -R a+rX mnt && echo "from the context" >mnt/input.txt &&
    nobody="setpriv --reuid 65534 --regid 65534 --clear-groups env CHRUN_ROOT=$TRASH_DIRECTORY/nb-store PATH=$PATH" &&
    $nobody chrun-load -q - <"$FIXTURES/basic.oci.tar" >/dev/null &&
    $nobody chrun-build -q -t nb:1 --build-arg RUN_ID=9 --secret id=token,src=token.txt mnt >/dev/null &&
    b=$($nobody chrun-unpack nb:1) && $nobody chrun-exec "$b" >out &&
    printf "%s\n" "run 9" "from the context" "changed" "from a stage" "image" "temp" "18" \
        "optional secret absent" "1" >expect &&
    test_cmp expect out
'

test_done
