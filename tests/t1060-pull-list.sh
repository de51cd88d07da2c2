#!/bin/bash
test_description='chrun-pull REF... and -i LIST: digests in input order, shared blobs fetched once, one failure does not stop the others'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"

fixtures_ensure
registry_start plain
fixture_push basic "$REGISTRY/one:1"
fixture_push basic "$REGISTRY/two:1"
fixture_push full "$REGISTRY/three:1"

blob_gets() { grep -o 'GET /v2/[^ ]*/blobs/sha256:[0-9a-f]*' "$REGISTRY_LOG" | sed 's,.*/blobs/,,' | LC_ALL=C sort; }

test_expect_success 'three references: three digests in order, each blob fetched once' '
    before=$(blob_gets | wc -l) &&
    chrun-pull -q "$REGISTRY/one:1" "$REGISTRY/three:1" "$REGISTRY/two:1" >out &&
    fixture_digest basic >expect && fixture_digest full >>expect && fixture_digest basic >>expect &&
    test_cmp expect out &&
    blob_gets | tail -n +$((before + 1)) >gets &&
    LC_ALL=C sort -u gets >unique && test_cmp unique gets &&
    ls "$CHRUN_ROOT/blobs/sha256" | wc -l >n && test "$(cat n)" -ge "$(wc -l <gets)" &&
    for r in one:1 two:1 three:1; do
        jq -e --arg r "$REGISTRY/$r" "[.manifests[] | select(.annotations[\"org.opencontainers.image.ref.name\"] == \$r)] | length == 1" \
            "$CHRUN_ROOT/index.json" >/dev/null || return 1
    done &&
    store_fsck && test -z "$(ls "$CHRUN_ROOT/tmp")"
'

test_expect_success '-i LIST (comments, blank lines, stdin) prints the same lines, fetches nothing again' '
    before=$(blob_gets | wc -l) &&
    printf "# images for the gap\n\n  %s  \n%s\n# %s\n%s\n" "$REGISTRY/one:1" "$REGISTRY/three:1" "$REGISTRY/nope:1" "$REGISTRY/two:1" >list &&
    chrun-pull -q -i list >out && test_cmp expect out &&
    chrun-pull -q -i - <list >out && test_cmp expect out &&
    test "$(blob_gets | wc -l)" -eq "$before"
'

test_expect_success 'into an empty store from a list, with one connection' '
    CHRUN_ROOT=$TRASH_DIRECTORY/s1 chrun-pull -q -j 1 -i list >out && test_cmp expect out &&
    CHRUN_ROOT=$TRASH_DIRECTORY/s1 store_fsck
'

test_expect_success 'a reference that fails is named; the others complete; exit 1' '
    printf "%s\n%s\n%s\n" "$REGISTRY/one:1" "$REGISTRY/missing:1" "$REGISTRY/three:1" >bad.list &&
    test_expect_code 1 env CHRUN_ROOT="$TRASH_DIRECTORY/s2" chrun-pull -q -i bad.list >out 2>err &&
    test_one_error_line chrun-pull err "$REGISTRY/missing:1.*manifest unknown" &&
    fixture_digest basic >expect2 && fixture_digest full >>expect2 && test_cmp expect2 out &&
    CHRUN_ROOT=$TRASH_DIRECTORY/s2 chrun-images -q | LC_ALL=C sort >imgs &&
    LC_ALL=C sort expect2 >e && test_cmp e imgs
'

test_expect_success 'a corrupt layer fails its image only: named, nothing of it published' '
    fixture_push_corrupt_layer "$REGISTRY/corrupt:1" >layer &&
    test_expect_code 1 env CHRUN_ROOT="$TRASH_DIRECTORY/s3" \
        chrun-pull -q "$REGISTRY/three:1" "$REGISTRY/corrupt:1" "$REGISTRY/one:1" >out 2>err &&
    test_one_error_line chrun-pull err "$REGISTRY/corrupt:1.*blob $(cat layer): digest mismatch" &&
    fixture_digest full >expect3 && fixture_digest basic >>expect3 && test_cmp expect3 out &&
    test ! -e "$TRASH_DIRECTORY/s3/blobs/sha256/$(sed "s/^sha256://" layer)" &&
    CHRUN_ROOT=$TRASH_DIRECTORY/s3 store_fsck
'

test_expect_success 'bad lists: operand and -i together, an empty list, an unreadable file' '
    test_expect_code 2 chrun-pull -i list "$REGISTRY/one:1" 2>err &&
    printf "# only comments\n\n" >empty.list &&
    store_snapshot >before &&
    test_expect_code 1 chrun-pull -i empty.list 2>err &&
    test_one_error_line chrun-pull err "empty.list.*names no image" &&
    test_expect_code 1 chrun-pull -i nosuch.list 2>err &&
    test_one_error_line chrun-pull err "nosuch.list" &&
    store_snapshot >after && test_cmp before after
'

test_done
