#!/bin/bash
test_description='chrun-load refuses hostile attachments in an archive: names that shadow images, bad subjects, 10,000-layer signatures under --verify-key'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"

# bad_load DIR PATTERN [ARGS...]: exit 1, one error line, store unchanged.
bad_load() {
    local dir=$1 pattern=$2
    shift 2
    store_snapshot >before &&
    test_expect_code 1 chrun-load "$@" "$dir" >out 2>err &&
    test ! -s out && test_one_error_line chrun-load err "$pattern" &&
    store_snapshot >after && test_cmp before after
}

# rehash DIR FILE: move FILE into DIR/blobs/sha256 under its digest; echo it.
rehash() {
    local d
    d=$(sha256sum <"$2" | cut -d" " -f1) && mv "$2" "$1/blobs/sha256/$d" && echo "sha256:$d"
}

test_expect_success 'setup: a signed image saved; a store that holds another image' '
    fixtures_ensure &&
    CHRUN_ROOT=$PWD/src chrun-load -q "$FIXTURES/basic.oci.tar" >img && IMG=$(cat img) &&
    openssl ecparam -name prime256v1 -genkey -noout -out ec.key &&
    openssl ec -in ec.key -pubout -out ec.pub 2>/dev/null &&
    CHRUN_ROOT=$PWD/src chrun-sign -q --key ec.key fixture/basic:1 >sig &&
    CHRUN_ROOT=$PWD/src chrun-save -o signed.tar fixture/basic:1 &&
    chrun-load -q "$FIXTURES/full.oci.tar" >/dev/null &&
    mkdir good && tar -C good -xf signed.tar && rm good/manifest.json
'

test_expect_success 'an attachment named like an image is refused' '
    cp -r good shadow &&
    jq -c "(.manifests[] | select(.annotations[\"vnd.chrun.subject\"])
           .annotations[\"org.opencontainers.image.ref.name\"]) = \"docker.io/fixture/full:1\"" \
        good/index.json >shadow/index.json &&
    bad_load shadow "manifests\[1\]: attachment sha256:[0-9a-f]{64}: name is not a cosign tag of its subject"
'

test_expect_success 'an attachment whose subject is not a digest is refused' '
    cp -r good badsub &&
    jq -c "(.manifests[] | select(.annotations[\"vnd.chrun.subject\"])
           .annotations[\"vnd.chrun.subject\"]) = \"sha256:../../x\"" good/index.json >badsub/index.json &&
    bad_load badsub "attachment: invalid vnd.chrun.subject annotation"
'

test_expect_success '--verify-key: a signature artifact of 10,000 layers is refused' '
    cp -r good many && s=$(cut -c8- sig) &&
    jq -c ".layers = [range(10000) as \$i | .layers[0]]" many/blobs/sha256/$s >m.json &&
    c=$(jq -r ".config.digest[7:]" m.json) &&
    jq -c --slurpfile m m.json ".rootfs.diff_ids = [\$m[0].layers[].digest]" many/blobs/sha256/$c >c.json &&
    cs=$(stat -c %s c.json) && nc=$(rehash many c.json) &&
    jq -c --arg d "$nc" --argjson s "$cs" ".config.digest = \$d | .config.size = \$s" m.json >m3.json &&
    rm many/blobs/sha256/$s && nm=$(rehash many m3.json) &&
    jq -c --arg o "sha256:$s" --arg n "$nm" --argjson z "$(stat -c %s many/blobs/sha256/${nm#sha256:})" \
        "(.manifests[] | select(.digest == \$o)) |= (.digest = \$n | .size = \$z)" good/index.json >many/index.json &&
    bad_load many "image $IMG: signature artifact $nm: 10000 layers, more than 1000" --verify-key ec.pub
'

test_done
