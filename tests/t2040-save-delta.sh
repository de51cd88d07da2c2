#!/bin/bash
test_description='chrun-save --have (delta archives from an inventory or an earlier archive), -i LIST, --compress; chrun-load of deltas; chrun-images --inventory'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"

RECV=$TRASH_DIRECTORY/receiver
EMPTY=$TRASH_DIRECTORY/empty

# build_app TAG TEXT: fixture/basic:1 plus one layer holding TEXT.
build_app() {
    mkdir -p "ctx-$1" &&
    cp "$TEST_DIRECTORY/../testdata/airgap/Dockerfile.app" "ctx-$1/Dockerfile" &&
    printf '%s\n' "$2" >"ctx-$1/payload" &&
    chrun-build -q -t "app:$1" "ctx-$1" >"app-$1"
}

# blobs_of ARCHIVE: the blob digests an archive holds, sorted.
blobs_of() {
    tar -tf "$1" | sed -n 's,^blobs/sha256/\(.\),sha256:\1,p' | LC_ALL=C sort
}

test_expect_success 'setup: app:1 and app:2 share the base layer; the receiver has app:1' '
    fixtures_ensure &&
    chrun-load -q "$FIXTURES/basic.oci.tar" >basic &&
    build_app 1 one && build_app 2 two &&
    chrun-save -o full1.tar app:1 &&
    CHRUN_ROOT=$RECV chrun-load -q full1.tar >out && test_cmp app-1 out
'

test_expect_success 'chrun-images --inventory lists every blob of the store as JSON' '
    CHRUN_ROOT=$RECV chrun-images --inventory >inv.json &&
    jq -e "(.\"chrun.inventory\" == 1) and (.blobs | type == \"array\")" inv.json &&
    jq -r ".blobs[]" inv.json >listed &&
    ls "$RECV/blobs/sha256" | sed "s,^,sha256:," | LC_ALL=C sort >expect &&
    test_cmp expect listed &&
    CHRUN_ROOT=$EMPTY chrun-images --inventory | jq -e ".blobs == []"
'

test_expect_success 'a delta from an inventory leaves out the base layer, keeps configs and manifests' '
    chrun-save --have inv.json -o delta.tar app:2 2>err &&
    grep "left out 1 layers" err &&
    base=$(chrun-inspect app:2 | jq -r ".Manifest.layers[0].digest") &&
    new=$(chrun-inspect app:2 | jq -r ".Manifest.layers[1].digest") &&
    cfg=$(chrun-inspect app:2 | jq -r ".Manifest.config.digest") &&
    blobs_of delta.tar >members &&
    ! grep -x "$base" members && grep -x "$new" members && grep -x "$cfg" members &&
    grep -x "$(cat app-2)" members &&
    tar -xOf delta.tar index.json | jq -e ".annotations[\"vnd.chrun.delta\"] == \"true\"" &&
    ! tar -tf delta.tar | grep -x manifest.json
'

test_expect_success 'an earlier archive as --have gives the same delta' '
    chrun-save --have full1.tar -o delta2.tar app:2 &&
    blobs_of delta.tar >a && blobs_of delta2.tar >b && test_cmp a b &&
    cmp delta.tar delta2.tar
'

test_expect_success 'the receiver loads the delta: same digest, unpacks' '
    CHRUN_ROOT=$RECV chrun-load delta.tar >out && test_cmp app-2 out &&
    b=$(CHRUN_ROOT=$RECV chrun-unpack app:2 "$TRASH_DIRECTORY/b2") &&
    test "$(cat "$b/rootfs/payload")" = two &&
    CHRUN_ROOT=$RECV store_fsck
'

test_expect_success 'a full archive stays docker-load compatible, without the delta mark' '
    chrun-save -o full2.tar app:2 &&
    tar -tf full2.tar | grep -x manifest.json &&
    tar -xOf full2.tar index.json | jq -e ".annotations == null" &&
    echo "{\"chrun.inventory\": 1, \"blobs\": []}" >none.json &&
    chrun-save --have none.json -o full3.tar app:2 && cmp full2.tar full3.tar
'

test_expect_success 'a delta on a store without the base: fails listing the missing blob, store unchanged' '
    test_expect_code 1 env CHRUN_ROOT="$EMPTY" chrun-load delta.tar 2>/dev/null &&
    CHRUN_ROOT=$EMPTY store_snapshot >before &&
    test_expect_code 1 env CHRUN_ROOT="$EMPTY" chrun-load delta.tar >out 2>err &&
    test_one_error_line chrun-load err "delta.tar.*docker.io/library/app:2: $base" &&
    test ! -s out &&
    CHRUN_ROOT=$EMPTY store_snapshot >after && test_cmp before after
'

test_expect_success 'an inventory that is not JSON: exit 1, one error line, nothing written' '
    printf "not json\n{" >bad.json &&
    test_expect_code 1 chrun-save --have bad.json -o out.tar app:2 2>err &&
    test_one_error_line chrun-save err "bad.json" &&
    test ! -e out.tar && test -z "$(ls -A . | grep chrun-save)" &&
    test_expect_code 1 chrun-save --have bad.json app:2 >out 2>err &&
    test_one_error_line chrun-save err "bad.json" && test ! -s out
'

test_expect_success 'an inventory with a malformed digest: exit 1, one error line, nothing written' '
    echo "{\"chrun.inventory\": 1, \"blobs\": [\"sha256:../../etc\"]}" >bad2.json &&
    store_snapshot >before &&
    test_expect_code 1 chrun-save --have bad2.json -o out.tar app:2 2>err &&
    test_one_error_line chrun-save err "bad2.json.*blobs\[0\].*invalid digest" &&
    test ! -e out.tar &&
    echo "{\"chrun.inventory\": 7, \"blobs\": []}" >bad3.json &&
    test_expect_code 1 chrun-save --have bad3.json -o out.tar app:2 2>err &&
    test_one_error_line chrun-save err "bad3.json.*version 7" &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'a delta whose manifest names a blob nobody has: load fails, store unchanged' '
    mkdir evil && tar -xf delta.tar -C evil &&
    m=$(cat app-2) && m=${m#sha256:} &&
    jq -c ".layers[1].digest = \"sha256:$(printf %064d 0)\"" "evil/blobs/sha256/$m" >evil.m &&
    nm=$(sha256sum <evil.m | cut -d" " -f1) &&
    rm "evil/blobs/sha256/$m" && mv evil.m "evil/blobs/sha256/$nm" &&
    jq -c ".manifests[0].digest = \"sha256:$nm\" | .manifests[0].size = $(stat -c %s "evil/blobs/sha256/$nm")" \
        evil/index.json >ix && mv ix evil/index.json &&
    (cd evil && tar -cf ../evil.tar oci-layout index.json blobs) &&
    CHRUN_ROOT=$RECV store_snapshot >before &&
    test_expect_code 1 env CHRUN_ROOT="$RECV" chrun-load evil.tar >out 2>err &&
    test_one_error_line chrun-load err "evil.tar.*sha256:$(printf %064d 0)" &&
    CHRUN_ROOT=$RECV store_snapshot >after && test_cmp before after
'

test_expect_success '--compress gzip and zstd: one compressed stream that chrun-load reads' '
    chrun-save --compress gzip -o app.tar.gz app:2 &&
    test "$(head -c2 app.tar.gz | od -An -tx1 | tr -d " ")" = 1f8b &&
    chrun-save --compress zstd -o app.tar.zst app:2 &&
    test "$(head -c4 app.tar.zst | od -An -tx1 | tr -d " ")" = 28b52ffd &&
    chrun-save --compress gzip -o again.tar.gz app:2 && cmp app.tar.gz again.tar.gz &&
    gzip -dc app.tar.gz | cmp - full2.tar &&
    zstd -qdc app.tar.zst | cmp - full2.tar &&
    CHRUN_ROOT=$TRASH_DIRECTORY/gz chrun-load app.tar.gz >out && test_cmp app-2 out &&
    CHRUN_ROOT=$TRASH_DIRECTORY/zst chrun-load app.tar.zst >out && test_cmp app-2 out &&
    chrun-save --have app.tar.zst -o d3.tar app:2 && blobs_of d3.tar >m3 &&
    test "$(wc -l <m3)" -eq 2 && grep -x "$(cat app-2)" m3 &&
    chrun-save --compress zstd --have inv.json -o d.tar.zst app:2 &&
    CHRUN_ROOT=$RECV chrun-load d.tar.zst >out && test_cmp app-2 out &&
    test_expect_code 2 chrun-save --compress lz4 -o x app:2 2>err &&
    grep "^chrun-save: error: unknown compression" err
'

test_expect_success 'chrun-save -i LIST: comments and blank lines ignored, same archive as operands' '
    printf "# the apps\n\n  app:1  \n# app:9\napp:2\n" >list &&
    chrun-save -i list -o l1.tar && chrun-save -o l2.tar app:1 app:2 && cmp l1.tar l2.tar &&
    chrun-save -i - -o l3.tar <list && cmp l1.tar l3.tar &&
    test_expect_code 2 chrun-save -i list app:1 -o x.tar 2>err &&
    printf "# nothing\n" >empty.list &&
    test_expect_code 1 chrun-save -i empty.list -o x.tar 2>err &&
    test_one_error_line chrun-save err "empty.list.*names no image" && test ! -e x.tar
'

# A fix of the one walker: load's budget of 1024 manifests is per image, as
# pull's is; it was per archive, so 1100 entries of one small image failed.
test_expect_success 'an archive listing one image 1100 times loads (the budget is per image)' '
    mkdir many && tar -xf "$FIXTURES/basic.oci.tar" -C many &&
    jq -c "{schemaVersion: 2, manifests: [range(1100) as \$i | .manifests[0] | del(.annotations)]}" \
        many/index.json >ix && mv ix many/index.json &&
    (cd many && tar -cf ../many.tar oci-layout index.json blobs) &&
    CHRUN_ROOT=$TRASH_DIRECTORY/many-store chrun-load many.tar >out &&
    test_cmp basic out
'

test_done
