#!/bin/bash
test_description='chrun-push pushes the signatures of an image beside it, as cosign tags them; --no-signatures leaves them out'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"
. "$TEST_DIRECTORY/lib-signing.sh"

fixtures_ensure
registry_start plain

test_expect_success 'setup: a signed image' '
    chrun-load -q "$FIXTURES/basic.oci.tar" >img && IMG=$(cat img) &&
    openssl ecparam -name prime256v1 -genkey -noout -out ec.key &&
    openssl ec -in ec.key -pubout -out ec.pub 2>/dev/null &&
    chrun-sign -q --key ec.key -a site=a fixture/basic:1 >sig
'

test_expect_success 'push: the .sig artifact is tagged sha256-<hex>.sig in the destination repository' '
    chrun-push -q fixture/basic:1 "$REGISTRY/far/basic:1" >out && test_cmp img out &&
    curl -sf --noproxy "*" -H "Accept: application/vnd.oci.image.manifest.v1+json" \
        "http://$REGISTRY/v2/far/basic/manifests/$(sig_tag "$IMG")" >got &&
    echo "sha256:$(sha256sum <got | cut -d" " -f1)" >got.digest && test_cmp sig got.digest
'

test_expect_success 'the pushed signature pulls back (--signatures) and verifies in a fresh store' '
    CHRUN_ROOT=$PWD/far chrun-pull -q --signatures "$REGISTRY/far/basic:1" >out && test_cmp img out &&
    CHRUN_ROOT=$PWD/far chrun-verify -q --key ec.pub -a site=a "$REGISTRY/far/basic:1" >out &&
    test_cmp img out
'

test_expect_success 'push --no-signatures: no .sig tag' '
    chrun-push -q --no-signatures fixture/basic:1 "$REGISTRY/bare/basic:1" >out && test_cmp img out &&
    test "$(curl -s --noproxy "*" -o /dev/null -w "%{http_code}" \
        "http://$REGISTRY/v2/bare/basic/manifests/$(sig_tag "$IMG")")" = 404
'

test_expect_success 'a signature kept as a referrer: pushed by digest and listed under the fallback tag' '
    export CHRUN_ROOT=$PWD/refstore &&
    CHRUN_ROOT=$TRASH_DIRECTORY/store chrun-save -o signed.tar fixture/basic:1 &&
    mkdir x && tar -C x -xf signed.tar && rm x/manifest.json &&
    jq -c "(.manifests[] | select(.annotations[\"vnd.chrun.subject\"])) |=
           (del(.annotations[\"org.opencontainers.image.ref.name\"]) |
            .artifactType = \"application/vnd.dev.cosign.artifact.sig.v1+json\")" \
        "$TRASH_DIRECTORY/x/index.json" >ni && mv ni x/index.json &&
    chrun-load -q x >/dev/null &&
    chrun-images --json | jq -e ".[0].Attachments[0].Kind == \"referrer\"" &&
    chrun-verify -q --key ec.pub fixture/basic:1 >out && test_cmp img out &&
    chrun-push -q fixture/basic:1 "$REGISTRY/ref/basic:1" >out && test_cmp img out &&
    curl -sf --noproxy "*" -H "Accept: application/vnd.oci.image.index.v1+json" \
        "http://$REGISTRY/v2/ref/basic/manifests/sha256-${IMG#sha256:}" >fallback.json &&
    jq -e --arg s "$(cat sig)" "[.manifests[] | select(.digest == \$s and
        .artifactType == \"application/vnd.dev.cosign.artifact.sig.v1+json\")] | length == 1" fallback.json &&
    CHRUN_ROOT=$PWD/refpull chrun-pull -q --signatures "$REGISTRY/ref/basic:1" >out && test_cmp img out &&
    CHRUN_ROOT=$PWD/refpull chrun-verify -q --key ec.pub "$REGISTRY/ref/basic:1" >out && test_cmp img out
'

test_done
