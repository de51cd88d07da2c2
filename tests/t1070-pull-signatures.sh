#!/bin/bash
test_description='chrun-pull --signatures fetches cosign signatures (made with openssl, pushed with the registry API) that chrun-verify checks'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"
. "$TEST_DIRECTORY/lib-signing.sh"

fixtures_ensure
registry_start plain
fixture_push basic "$REGISTRY/sig/basic:1"
fixture_push full "$REGISTRY/sig/full:1"
IMG=$(fixture_digest basic)
FULL=$(fixture_digest full)
REPO=sig/basic

test_expect_success 'setup: keys; bad signatures only (tampered, other digest, no annotation, bad base64)' '
    openssl ecparam -name prime256v1 -genkey -noout -out ec.key &&
    openssl ec -in ec.key -pubout -out ec.pub 2>/dev/null &&
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null &&
    openssl pkey -in rsa.key -pubout -out rsa.pub &&
    openssl ecparam -name prime256v1 -genkey -noout -out other.key &&
    openssl ec -in other.key -pubout -out other.pub 2>/dev/null &&
    sig_payload "$IMG" >good.json && good_sig=$(sig_sign ec.key good.json) &&
    sig_payload "$IMG" "{\"env\":\"prod\"}" >tampered.json &&
    sig_payload "$FULL" >other.json && other_sig=$(sig_sign ec.key other.json) &&
    sig_payload "$IMG" "{\"n\":\"1\"}" >nosig.json &&
    sig_payload "$IMG" "{\"n\":\"2\"}" >badb64.json &&
    for f in tampered other nosig badb64 good; do blob_push $REPO $f.json >/dev/null || return 1; done &&
    { sig_layer tampered.json "$good_sig" &&
      sig_layer other.json "$other_sig" &&
      sig_layer nosig.json - &&
      sig_layer badb64.json "!!not*base64" ; } >bad.layers &&
    sig_push $REPO "$(sig_tag "$IMG")" bad.layers >bad.digest
'

test_expect_success 'pull --signatures: the .sig artifact is stored, tied to its image' '
    chrun-pull -q --signatures "$REGISTRY/$REPO:1" >out && echo "$IMG" >expect && test_cmp expect out &&
    jq -e --arg s "$(cat bad.digest)" --arg i "$IMG" "[.manifests[] | select(.digest == \$s and
        .annotations[\"vnd.chrun.subject\"] == \$i and
        .annotations[\"org.opencontainers.image.ref.name\"] == \"$REGISTRY/$REPO:sha256-\(\$i[7:]).sig\")] | length == 1" \
        "$CHRUN_ROOT/index.json" &&
    chrun-images >table && grep "^  + signature  *sha256:$(cut -c8-19 bad.digest)" table &&
    test "$(chrun-images -q | wc -l)" -eq 1 && store_fsck
'

test_expect_success 'verify: every bad signature fails, one line each saying why' '
    test_expect_code 1 chrun-verify --key ec.pub "$REGISTRY/$REPO:1" >out 2>err &&
    test ! -s out &&
    grep "^chrun-verify: error: signature 1 of .*: signature does not verify with the ecdsa-p256 key$" err &&
    grep "^chrun-verify: error: signature 2 of .*: signs $FULL, not $IMG$" err &&
    grep "^chrun-verify: error: signature 3 of .*: no dev.cosignproject.cosign/signature annotation$" err &&
    grep "^chrun-verify: error: signature 4 of .*: signature annotation: invalid base64" err &&
    grep "^chrun-verify: error: image .*no signature verifies$" err &&
    test "$(wc -l <err)" -eq 5
'

test_expect_success 'a good signature added: re-pull replaces the artifact; verify passes; wrong key fails' '
    { sig_layer good.json "$good_sig" && cat bad.layers; } >mixed.layers &&
    sig_push $REPO "$(sig_tag "$IMG")" mixed.layers >mixed.digest &&
    chrun-pull -q --signatures "$REGISTRY/$REPO:1" >/dev/null &&
    test "$(jq "[.manifests[] | select(.annotations[\"vnd.chrun.subject\"])] | length" "$CHRUN_ROOT/index.json")" -eq 1 &&
    chrun-verify -q --key ec.pub "$REGISTRY/$REPO:1" >out && test_cmp expect out &&
    test_expect_code 1 chrun-verify --key other.pub "$REGISTRY/$REPO:1" 2>err &&
    grep -c "does not verify with the ecdsa-p256 key" err >n && echo 3 >three && test_cmp three n
'

test_expect_success 'RSA signature and -a mismatch' '
    SIG_REFERENCE=$REGISTRY/$REPO sig_payload "$FULL" "{\"team\":\"a\"}" >rsa.json &&
    blob_push sig/full rsa.json >/dev/null &&
    sig_layer rsa.json "$(sig_sign rsa.key rsa.json)" >rsa.layers &&
    sig_push sig/full "$(sig_tag "$FULL")" rsa.layers >/dev/null &&
    chrun-pull -q --signatures "$REGISTRY/sig/full:1" >/dev/null &&
    chrun-verify --key rsa.pub -a team=a "$REGISTRY/sig/full:1" >out && grep -x "$FULL" out &&
    test_expect_code 1 chrun-verify --key rsa.pub -a team=b "$REGISTRY/sig/full:1" 2>err &&
    grep "^chrun-verify: error: signature 1 of .*: annotation team=b: payload has .a.$" err
'

test_expect_success 'no signatures in the registry: pull --signatures works, records nothing' '
    fixture_push user "$REGISTRY/sig/plain:1" &&
    chrun-pull -q --signatures "$REGISTRY/sig/plain:1" >out &&
    echo "$(fixture_digest user)" >expect && test_cmp expect out &&
    test_expect_code 1 chrun-verify --key ec.pub "$REGISTRY/sig/plain:1" 2>err &&
    test_one_error_line chrun-verify err "has no cosign signature"
'

test_expect_success 'an attestation tag and an OCI referrer (fallback tag sha256-<hex>) are fetched too' '
    fixture_push full "$REGISTRY/sig/ref:1" &&
    printf "{}" >empty.json && empty=$(blob_push sig/ref empty.json) &&
    echo "{\"payloadType\":\"application/vnd.in-toto+json\",\"payload\":\"e30=\",\"signatures\":[]}" >dsse.json &&
    dsse=$(blob_push sig/ref dsse.json) &&
    jq -cn --arg e "$empty" --arg d "$dsse" --argjson s "$(stat -c %s dsse.json)" \
        "{schemaVersion: 2, mediaType: \"application/vnd.oci.image.manifest.v1+json\",
          config: {mediaType: \"application/vnd.oci.image.config.v1+json\", size: 2, digest: \$e},
          layers: [{mediaType: \"application/vnd.dsse.envelope.v1+json\", size: \$s, digest: \$d}]}" >att.json &&
    curl -sf --noproxy "*" -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" \
        --data-binary @att.json "http://$REGISTRY/v2/sig/ref/manifests/$(sig_tag "$FULL" .att)" &&
    echo "sbom" >sbom.txt && sbom=$(blob_push sig/ref sbom.txt) &&
    jq -cn --arg e "$empty" --arg d "$sbom" --arg f "$FULL" \
        --argjson fs "$(curl -s --noproxy "*" -H "Accept: application/vnd.oci.image.manifest.v1+json" "http://$REGISTRY/v2/sig/ref/manifests/1" | wc -c)" \
        "{schemaVersion: 2, mediaType: \"application/vnd.oci.image.manifest.v1+json\",
          artifactType: \"application/vnd.example.sbom\",
          config: {mediaType: \"application/vnd.oci.empty.v1+json\", size: 2, digest: \$e},
          layers: [{mediaType: \"text/plain\", size: 5, digest: \$d}],
          subject: {mediaType: \"application/vnd.oci.image.manifest.v1+json\", size: \$fs, digest: \$f}}" >ref.json &&
    ref=sha256:$(sha256sum <ref.json | cut -d" " -f1) &&
    curl -sf --noproxy "*" -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" \
        --data-binary @ref.json "http://$REGISTRY/v2/sig/ref/manifests/$ref" &&
    jq -cn --arg r "$ref" --argjson s "$(stat -c %s ref.json)" \
        "{schemaVersion: 2, mediaType: \"application/vnd.oci.image.index.v1+json\",
          manifests: [{mediaType: \"application/vnd.oci.image.manifest.v1+json\", size: \$s, digest: \$r,
                       artifactType: \"application/vnd.example.sbom\"}]}" >fallback.json &&
    curl -sf --noproxy "*" -X PUT -H "Content-Type: application/vnd.oci.image.index.v1+json" \
        --data-binary @fallback.json "http://$REGISTRY/v2/sig/ref/manifests/sha256-${FULL#sha256:}" &&
    chrun-pull -q --signatures "$REGISTRY/sig/ref:1" >/dev/null &&
    chrun-images --json >imgs.json &&
    jq -e --arg n "$REGISTRY/sig/ref:1" --arg r "$ref" "[.[] | select(.Ref == \$n) | .Attachments[] |
        select(.Kind == \"attestation\" or (.Kind == \"referrer\" and .Digest == \$r))] | length == 2" imgs.json &&
    jq -e --arg r "$ref" "[.manifests[] | select(.digest == \$r and .artifactType == \"application/vnd.example.sbom\")] | length == 1" \
        "$CHRUN_ROOT/index.json" &&
    test -e "$CHRUN_ROOT/blobs/sha256/${sbom#sha256:}" && store_fsck
'

test_expect_success 'without --signatures nothing attached is fetched' '
    fixture_push basic-zstd "$REGISTRY/sig/z:1" &&
    sig_payload "$(fixture_digest basic-zstd)" >z.json && blob_push sig/z z.json >/dev/null &&
    sig_layer z.json "$(sig_sign ec.key z.json)" >z.layers &&
    sig_push sig/z "$(sig_tag "$(fixture_digest basic-zstd)")" z.layers >/dev/null &&
    chrun-pull -q "$REGISTRY/sig/z:1" >/dev/null &&
    test_expect_code 1 chrun-verify --key ec.pub "$REGISTRY/sig/z:1" 2>err &&
    chrun-pull -q --signatures "$REGISTRY/sig/z:1" >/dev/null &&
    chrun-verify -q --key ec.pub "$REGISTRY/sig/z:1"
'

test_done
