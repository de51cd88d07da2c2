#!/bin/bash
test_description='chrun-pull --signatures refuses hostile signature artifacts: too many layers, a huge payload, a .sig tag naming an index'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"
. "$TEST_DIRECTORY/lib-signing.sh"

fixtures_ensure
registry_start plain

# hostile_pull REPO PATTERN: the image is in the store already; pulling it
# again with --signatures fails with one error line and changes nothing.
hostile_pull() {
    chrun-pull -q "$REGISTRY/$1:1" >/dev/null &&
    store_snapshot >before &&
    test_expect_code 1 chrun-pull -q --signatures "$REGISTRY/$1:1" >out 2>err &&
    test ! -s out &&
    test_one_error_line chrun-pull err "$2" &&
    store_snapshot >after && test_cmp before after
}

test_expect_success 'setup: key and one payload' '
    openssl ecparam -name prime256v1 -genkey -noout -out ec.key
'

test_expect_success 'a signature artifact with 10,000 layers is refused' '
    fixture_push basic "$REGISTRY/h/many:1" && img=$(fixture_digest basic) &&
    sig_payload "$img" >p.json && blob_push h/many p.json >/dev/null &&
    sig_layer p.json "$(sig_sign ec.key p.json)" >one.layer &&
    for i in $(seq 10000); do cat one.layer; done >many.layers &&
    sig_push h/many "$(sig_tag "$img")" many.layers >/dev/null &&
    hostile_pull h/many "sha256-[0-9a-f]{64}\.sig. has 10000 layers, more than 1000"
'

test_expect_success 'a 50 MB payload is refused before it is fetched' '
    fixture_push full "$REGISTRY/h/big:1" && img=$(fixture_digest full) &&
    { sig_payload "$img"; head -c 50000000 /dev/zero | tr "\0" " "; } >big.json &&
    big=$(blob_push h/big big.json) &&
    sig_layer big.json "$(sig_sign ec.key big.json)" >big.layers &&
    sig_push h/big "$(sig_tag "$img")" big.layers >/dev/null &&
    hostile_pull h/big "blob sha256:[0-9a-f]{64}: 500[0-9]* bytes, more than 4194304" &&
    ! grep "GET /v2/h/big/blobs/$big" "$REGISTRY_LOG"
'

test_expect_success 'a .sig tag pointing at an index is refused' '
    fixture_push user "$REGISTRY/h/idx:1" && img=$(fixture_digest user) &&
    size=$(curl -s --noproxy "*" -H "Accept: application/vnd.oci.image.manifest.v1+json" \
        "http://$REGISTRY/v2/h/idx/manifests/1" | wc -c) &&
    jq -cn --arg d "$img" --argjson s "$size" "{schemaVersion: 2,
        mediaType: \"application/vnd.oci.image.index.v1+json\",
        manifests: [{mediaType: \"application/vnd.oci.image.manifest.v1+json\", digest: \$d, size: \$s}]}" >idx.json &&
    curl -sf --noproxy "*" -X PUT -H "Content-Type: application/vnd.oci.image.index.v1+json" \
        --data-binary @idx.json "http://$REGISTRY/v2/h/idx/manifests/$(sig_tag "$img")" &&
    hostile_pull h/idx "\.sig. is an index, not a signature manifest"
'

test_done
