#!/bin/bash
test_description='chrun-save writes docker-load and OCI archives that skopeo reads and chrun-load round-trips'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"

test_expect_success 'setup: images loaded from OCI, docker and skopeo dir: sources' '
    fixtures_ensure &&
    chrun-load -q "$FIXTURES/basic.oci.tar" >basic &&
    chrun-load -q "$FIXTURES/full.docker.tar" >full &&
    chrun-load -q "$FIXTURES/full.docker-layout" >v2s2
'

test_expect_success 'help, version, usage errors' '
    chrun-save --help >out && grep "^Usage: chrun-save" out &&
    chrun-save --version | grep "^chrun-save [0-9]" &&
    test_expect_code 2 chrun-save --format zip -o x.tar fixture/basic:1 2>err &&
    grep "^chrun-save: error: unknown format" err &&
    test_expect_code 2 chrun-save --nope 2>err
'

test_expect_success 'docker format: skopeo reads every image of the archive' '
    chrun-save -o two.tar fixture/basic:1 fixture/full:1 &&
    tar -tf two.tar >members && grep -x manifest.json members && grep -x index.json members &&
    skopeo inspect "docker-archive:$TRASH_DIRECTORY/two.tar:docker.io/fixture/basic:1" >i1 &&
    skopeo inspect "docker-archive:$TRASH_DIRECTORY/two.tar:docker.io/fixture/full:1" >i2 &&
    test "$(jq -r ".Layers | length" i2)" -eq 4 &&
    skopeo --insecure-policy copy -q "docker-archive:$TRASH_DIRECTORY/two.tar:docker.io/fixture/full:1" "oci:$TRASH_DIRECTORY/peer:full" &&
    skopeo inspect --config "oci:$TRASH_DIRECTORY/peer:full" | jq -S . >cfg.peer &&
    skopeo inspect --config "oci:$CHRUN_ROOT:docker.io/fixture/full:1" | jq -S . >cfg.ours &&
    test_cmp cfg.ours cfg.peer
'

test_expect_success 'oci format: skopeo reads it, chrun-load round-trips to the same digest' '
    chrun-save --format oci fixture/basic:1 >basic.oci &&
    skopeo inspect "oci-archive:$TRASH_DIRECTORY/basic.oci" >i &&
    test "$(jq -r .Digest i)" = "$(cat basic)" &&
    store_snapshot >before &&
    chrun-save --format oci fixture/basic:1 | chrun-load >rt &&
    test_cmp basic rt &&
    chrun-save fixture/full:1 | chrun-load >rt2 &&
    test_cmp full rt2 &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'round trip into a fresh store keeps names and digests' '
    chrun-save -o both.tar fixture/basic:1 fixture/full:1 &&
    CHRUN_ROOT=$TRASH_DIRECTORY/other chrun-load both.tar >rt3 &&
    cat basic full >expect && test_cmp expect rt3 &&
    CHRUN_ROOT=$TRASH_DIRECTORY/other chrun-images >imgs &&
    grep "^docker.io/fixture/basic:1 " imgs && grep "^docker.io/fixture/full:1 " imgs
'

test_expect_success 'docker v2s2 image converts to OCI types as skopeo --format oci does' '
    chrun-save --format oci -o v2.tar "$(cat v2s2)" &&
    skopeo inspect --raw "oci-archive:$TRASH_DIRECTORY/v2.tar" >raw &&
    jq -e ".mediaType == \"application/vnd.oci.image.manifest.v1+json\" and
           .config.mediaType == \"application/vnd.oci.image.config.v1+json\" and
           (.layers | all(.mediaType == \"application/vnd.oci.image.layer.v1.tar+gzip\"))" raw &&
    skopeo --insecure-policy copy -q --format oci "dir:$FIXTURES/full.docker-layout" "oci:$TRASH_DIRECTORY/conv:x" &&
    skopeo inspect --raw "oci:$TRASH_DIRECTORY/conv:x" | jq -S ".layers" >conv.peer &&
    jq -S .layers raw >conv.ours && test_cmp conv.peer conv.ours
'

test_expect_success 'archives are reproducible; IMAGE from stdin' '
    chrun-save -o a1.tar fixture/full:1 &&
    cat full | chrun-save -o a2.tar &&
    cmp a1.tar a2.tar
'

test_expect_success 'unknown image: exit 1, one error line, no output file' '
    test_expect_code 1 chrun-save -o nope.tar fixture/nope:1 2>err &&
    test_one_error_line chrun-save err "fixture/nope:1" &&
    test ! -e nope.tar &&
    test -z "$(ls -A . | grep chrun-save)"
'

test_done
