#!/bin/bash
test_description='chrun-images, chrun-tag, chrun-rmi and chrun-inspect over a store written by skopeo'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"

# skopeo writes the store as the OCI layout it is, naming images by full reference.
store_add() { # TAG REF
    skopeo --insecure-policy copy -q "oci:$FIXTURES/oci-layout:$1" "oci:$CHRUN_ROOT:$2"
}

test_expect_success 'setup: two images in the store' '
    fixtures_ensure &&
    chrun-images >out && test "$(wc -l <out)" -eq 1 &&
    store_add basic docker.io/library/basic:1 &&
    store_add full docker.io/fixture/full:1 &&
    BASIC=$(fixture_digest basic) && FULL=$(fixture_digest full)
'

test_expect_success 'images: table lists both with short digests' '
    chrun-images >out &&
    grep -E "^docker.io/library/basic:1 +sha256:${BASIC:7:12} " out &&
    grep -E "^docker.io/fixture/full:1 +sha256:${FULL:7:12} " out &&
    head -n1 out | grep "^REFERENCE"
'

test_expect_success 'images --json and -q' '
    chrun-images --json >out.json &&
    test "$(jq length out.json)" -eq 2 &&
    test "$(jq -r ".[0].Digest" out.json)" = "$BASIC" &&
    test "$(jq -r ".[1].Platform" out.json)" = "linux/amd64" &&
    test "$(jq -r ".[0].Size" out.json)" -gt 1000 &&
    chrun-images -q >q && printf "%s\n%s\n" "$BASIC" "$FULL" >expect && test_cmp expect q
'

test_expect_success 'tag: normalized names, by reference, digest and short digest' '
    chrun-tag basic:1 mine >out && echo docker.io/library/mine:latest >expect && test_cmp expect out &&
    chrun-tag "$BASIC" localhost:5000/x/y:2 >out && grep -x localhost:5000/x/y:2 out &&
    chrun-tag "${FULL:7:8}" full-short:1 >out && grep -x docker.io/library/full-short:1 out &&
    chrun-inspect full-short:1 | jq -r .Digest >d && echo "$FULL" >expect && test_cmp expect d
'

test_expect_success 'tag: IMAGE from stdin' '
    echo "$BASIC" | chrun-tag - from-stdin >out && grep -x docker.io/library/from-stdin:latest out
'

test_expect_success 'tag twice is a no-op that prints the same line' '
    cp "$CHRUN_ROOT/index.json" before &&
    chrun-tag basic:1 mine >out2 && echo docker.io/library/mine:latest >expect && test_cmp expect out2 &&
    test_cmp before "$CHRUN_ROOT/index.json"
'

test_expect_success 'inspect: manifest and config as JSON' '
    chrun-inspect docker.io/library/basic:1 >out.json &&
    test "$(jq -r .Ref out.json)" = docker.io/library/basic:1 &&
    test "$(jq -r .Manifest.config.digest out.json)" != null &&
    test "$(jq -r ".Config.config.Env[] | select(. == \"FOO=bar\")" out.json)" = FOO=bar &&
    test "$(jq -r .Config.rootfs.type out.json)" = layers
'

test_expect_success 'inspect: unknown image, usage errors' '
    test_expect_code 1 chrun-inspect nosuch 2>err &&
    test_one_error_line chrun-inspect err "no such image .nosuch." &&
    test_expect_code 2 chrun-inspect a b 2>err && grep "^chrun-inspect: error:" err &&
    test_expect_code 2 chrun-tag onlyone 2>err && grep "Try .chrun-tag --help." err &&
    test_expect_code 2 chrun-tag basic:1 "Bad Name" 2>err &&
    test_expect_code 2 chrun-images --bogus 2>err && grep "unknown or incomplete option" err
'

test_expect_success 'rmi: removes names only, reports each failure and goes on' '
    nblobs=$(ls "$CHRUN_ROOT/blobs/sha256" | wc -l) &&
    test_expect_code 1 chrun-rmi mine nosuch from-stdin >out 2>err &&
    printf "%s\n" docker.io/library/mine:latest docker.io/library/from-stdin:latest >expect &&
    test_cmp expect out &&
    test_one_error_line chrun-rmi err "no such image .docker.io/library/nosuch:latest." &&
    test "$(ls "$CHRUN_ROOT/blobs/sha256" | wc -l)" -eq "$nblobs" &&
    ! chrun-images | grep -q "library/mine"
'

test_expect_success 'rmi refuses a digest: names only' '
    store_snapshot >before &&
    test_expect_code 1 chrun-rmi "$BASIC" 2>err &&
    test_one_error_line chrun-rmi err "is a digest, not a name" &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'help and version on stdout' '
    for t in chrun-images chrun-tag chrun-rmi chrun-inspect chrun-gc; do
        $t --help >out && grep -q "^Usage: $t" out &&
        $t --version >out && grep -qx "$t [0-9.]*" out || return 1
    done
'

test_expect_success 'images on a missing store prints only the header' '
    CHRUN_ROOT=$TRASH_DIRECTORY/none chrun-images >out &&
    test "$(wc -l <out)" -eq 1 && test ! -e "$TRASH_DIRECTORY/none"
'

test_done
