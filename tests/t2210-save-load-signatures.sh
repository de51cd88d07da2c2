#!/bin/bash
test_description='signatures travel through chrun-save and chrun-load; chrun-load --verify-key publishes only verified archives'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"

test_expect_success 'setup: two images, one signed' '
    fixtures_ensure &&
    chrun-load -q "$FIXTURES/basic.oci.tar" >img && IMG=$(cat img) &&
    chrun-load -q "$FIXTURES/full.oci.tar" >full &&
    openssl ecparam -name prime256v1 -genkey -noout -out ec.key &&
    openssl ec -in ec.key -pubout -out ec.pub 2>/dev/null &&
    openssl ecparam -name prime256v1 -genkey -noout -out other.key &&
    openssl ec -in other.key -pubout -out other.pub 2>/dev/null &&
    chrun-sign -q --key ec.key -a site=a fixture/basic:1 >sig
'

test_expect_success 'save: the signature and its blobs are in the archive, tied to the image' '
    chrun-save -o signed.tar fixture/basic:1 &&
    tar -xOf signed.tar index.json >index.json &&
    jq -e --arg s "$(cat sig)" --arg i "$IMG" "[.manifests[] | select(.digest == \$s and
        .annotations[\"vnd.chrun.subject\"] == \$i)] | length == 1" index.json &&
    tar -tf signed.tar >members && grep -x "blobs/sha256/$(cut -c8- sig)" members &&
    tar -xOf signed.tar manifest.json | jq -e "length == 1" &&
    skopeo inspect "docker-archive:$TRASH_DIRECTORY/signed.tar" >/dev/null
'

test_expect_success 'save --no-signatures leaves them out' '
    chrun-save --no-signatures -o bare.tar fixture/basic:1 &&
    tar -xOf bare.tar index.json | jq -e ".manifests | length == 1" &&
    ! tar -tf bare.tar | grep "$(cut -c8- sig)"
'

test_expect_success 'load --verify-key: a signed archive loads; the signature is recorded and verifies' '
    CHRUN_ROOT=$PWD/far chrun-load --verify-key ec.pub signed.tar >out && test_cmp img out &&
    CHRUN_ROOT=$PWD/far chrun-verify -q --key ec.pub -a site=a fixture/basic:1 >out && test_cmp img out &&
    CHRUN_ROOT=$PWD/far chrun-images >table &&
    grep "^  + signature  *sha256:$(cut -c8-19 sig)" table
'

# bad_load KEY ARCHIVE PATTERN: exit 1, one error line, store unchanged.
bad_load() {
    store_snapshot >before &&
    test_expect_code 1 chrun-load --verify-key "$1" "$2" >out 2>err &&
    test ! -s out && test_one_error_line chrun-load err "$3" &&
    store_snapshot >after && test_cmp before after
}

test_expect_success 'load --verify-key refuses: unsigned, wrong key, one image of two unsigned' '
    export CHRUN_ROOT=$PWD/gap && chrun-load -q "$FIXTURES/full.docker.tar" >/dev/null &&
    bad_load ec.pub bare.tar "image $IMG: no cosign signature" &&
    bad_load other.pub signed.tar "image $IMG: signature 1 of .*does not verify with the ecdsa-p256 key" &&
    CHRUN_ROOT=$TRASH_DIRECTORY/store chrun-save -o mixed.tar fixture/basic:1 fixture/full:1 &&
    bad_load ec.pub mixed.tar "image $(cat full): no cosign signature" &&
    chrun-load -q mixed.tar >/dev/null
'

test_expect_success 'load --verify-key refuses a signature over another digest' '
    export CHRUN_ROOT=$PWD/forged && chrun-load -q "$FIXTURES/full.docker.tar" >/dev/null &&
    mkdir x && tar -C x -xf signed.tar &&
    s=$(cut -c8- sig) && p=$(jq -r ".layers[0].digest[7:]" x/blobs/sha256/$s) &&
    sed "s/${IMG#sha256:}/$(cut -c8- full)/" x/blobs/sha256/$p >np &&
    np=$(sha256sum <np | cut -d" " -f1) && mv np x/blobs/sha256/$np && rm x/blobs/sha256/$p &&
    openssl dgst -sha256 -sign ec.key x/blobs/sha256/$np | base64 -w0 >b64 &&
    c=$(jq -r ".config.digest[7:]" x/blobs/sha256/$s) &&
    jq -c --arg d "sha256:$np" ".rootfs.diff_ids = [\$d]" x/blobs/sha256/$c >nc &&
    nc=$(sha256sum <nc | cut -d" " -f1) && mv nc x/blobs/sha256/$nc &&
    jq -c --arg d "sha256:$np" --arg b "$(cat b64)" --arg c "sha256:$nc" \
        --argjson cs "$(stat -c %s x/blobs/sha256/$nc)" \
        ".config.digest = \$c | .config.size = \$cs | .layers[0].digest = \$d |
         .layers[0].annotations[\"dev.cosignproject.cosign/signature\"] = \$b" \
        x/blobs/sha256/$s >nm &&
    nm=$(sha256sum <nm | cut -d" " -f1) && mv nm x/blobs/sha256/$nm && rm x/blobs/sha256/$s &&
    jq -c --arg o "sha256:$s" --arg n "sha256:$nm" --argjson z "$(stat -c %s x/blobs/sha256/$nm)" \
        "(.manifests[] | select(.digest == \$o)) |= (.digest = \$n | .size = \$z)" x/index.json >ni &&
    mv ni x/index.json && rm x/manifest.json &&
    bad_load ec.pub x "image $IMG: signature 1 of sha256:$nm: signs $(cat full), not $IMG"
'

test_done
