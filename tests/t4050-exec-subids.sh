#!/bin/bash
test_description='chrun-exec as an ordinary user with subordinate ids: non-root image users run rootless'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-unpack.sh &&
    . "$TEST_DIRECTORY"/lib-bundle.sh && . "$TEST_DIRECTORY"/lib-subids.sh &&
    . "$TEST_DIRECTORY"/lib-registry.sh && . "$TEST_DIRECTORY"/lib-fixtures.sh

subids_skip_unless_root

as_plain_user() {
    setpriv --reuid "$PLAIN_UID" --regid "$PLAIN_UID" --clear-groups \
        env CHRUN_ROOT="$CHRUN_ROOT" PATH="$PATH" HOME="$TRASH_DIRECTORY" "$@"
}

test_expect_success 'setup: users with and without ranges, an image, its bundles' '
    subids_user_add chrun-subid-t4050 400000 65536 &&
    subids_user_add_plain chrun-nosubid-t4050 &&
    subids_make_image owners:1 &&
    chrun-unpack owners:1 "$TRASH_DIRECTORY/rootview" >/dev/null &&
    chmod 755 "$TRASH_DIRECTORY" && mkdir -m 1777 tmp &&
    chown -R "$SUBID_UID:$SUBID_GID" "$CHRUN_ROOT" &&
    as_subid_user chrun-unpack owners:1 >path 2>/dev/null &&
    b=$(cat path) && test -f "$b/config.json"
'

test_expect_success 'the image user runs: id shows app and its supplementary group (setgroups)' '
    b=$(cat path) &&
    as_subid_user chrun-exec "$b" >out 2>err &&
    echo "uid=1000(app) gid=1000(app) groups=2000(extra)" >expect &&
    test_cmp expect out && test ! -s err
'

test_expect_success 'inside, every file has the owner a root unpack gives it' '
    b=$(cat path) &&
    subids_owners rootview/rootfs | grep -v " /dev/null$" >expect &&
    test "$(wc -l <expect)" -gt 20 &&
    as_subid_user chrun-exec -u 0 "$b" find / -xdev -exec stat -c "%u:%g %n" {} + >raw &&
    subids_filter_owners <raw >actual &&
    test_cmp expect actual &&
    as_subid_user chrun-exec "$b" stat -c "%u:%g %n" /data/mine /srv/other/f /etc/motd /bin/busybox >out &&
    printf "1000:1000 /data/mine\n1234:2000 /srv/other/f\n10:20 /etc/motd\n0:0 /bin/busybox\n" >expect &&
    test_cmp expect out
'

test_expect_success 'the image user writes its own file, not one of root' '
    b=$(cat path) &&
    as_subid_user chrun-exec "$b" sh -c "echo more >>/data/mine && cat /data/mine" >out &&
    printf "mine\nmore\n" >expect && test_cmp expect out &&
    test_expect_code 1 as_subid_user chrun-exec "$b" sh -c "echo x >>/data/rootonly" 2>err &&
    grep -i "permission denied" err &&
    test "$(cat "$b/rootfs/data/rootonly")" = root
'

test_expect_success '-u with other ids in the range; ids past it get one clear error' '
    b=$(cat path) &&
    as_subid_user chrun-exec -u 1234:2000 "$b" id -u >out && echo 1234 >expect && test_cmp expect out &&
    as_subid_user chrun-exec -u 1234:2000 "$b" sh -c "echo y >>/srv/other/f" &&
    test_expect_code 1 as_subid_user chrun-exec -u 70000 "$b" id 2>err &&
    test_one_error_line chrun-exec err "uid 70000 .*subordinate ids of .chrun-subid-t4050. give a rootless run uids 0-65536"
'

test_expect_success 'namespaces work with the full mapping: --isolate, --pid init' '
    b=$(cat path) &&
    as_subid_user chrun-exec --isolate --hostname sub "$b" sh -c "echo \$\$; hostname; id -u" >out &&
    printf "2\nsub\n1000\n" >expect && test_cmp expect out
'

test_expect_success 'a user without ranges: today'"'"'s single-id mapping and a clear refusal' '
    mkdir plain && bundle_make plain/b >/dev/null && chown -R "$PLAIN_UID:$PLAIN_UID" plain &&
    as_plain_user chrun-exec plain/b sh -c "id -u; stat -c %u /etc/passwd" >out &&
    printf "0\n0\n" >expect && test_cmp expect out &&
    test_expect_code 1 as_plain_user chrun-exec -u app plain/b id 2>err &&
    test_one_error_line chrun-exec err \
        "uid 1000 .*rootless run has only uid 0 \(no subordinate ids for .chrun-nosubid-t4050. in /etc/subuid; see newuidmap\(1\)\)"
'

test_expect_success 'a subordinate-id bundle refuses a caller without the same mapping' '
    b=$(cat path) && chmod 755 "$b" && test_when_finished "chmod 700 $b" &&
    test_expect_code 1 as_plain_user chrun-exec "$b" id 2>err &&
    test_one_error_line chrun-exec err "unpacked with subordinate ids .* this run has none: no subordinate ids for .chrun-nosubid-t4050." &&
    test_expect_code 1 chrun-exec "$b" id 2>err &&
    test_one_error_line chrun-exec err "unpacked rootless with subordinate ids .*run it as the user who unpacked it"
'

test_expect_success 'chrun run --rm: runs as the image user and removes its bundle' '
    as_subid_user env TMPDIR="$TRASH_DIRECTORY/tmp" chrun run --rm owners:1 \
        sh -c "id -un; touch /data/new" >out 2>err &&
    echo app >expect && test_cmp expect out &&
    test -z "$(ls -A tmp)"
'

# as_subid_user_in STORE CMD...: as_subid_user with CHRUN_ROOT=STORE.
as_subid_user_in() {
    local store=$1
    shift
    setpriv --reuid "$SUBID_UID" --regid "$SUBID_GID" --clear-groups \
        env CHRUN_ROOT="$store" PATH="$PATH" HOME="$TRASH_DIRECTORY" "$@"
}

test_expect_success 'cold chrun run and run --rm: the layers are applied while they download, in a user namespace with the mapping' '
    registry_start plain &&
    ref=$(jq -r ".manifests[] | .annotations[\"org.opencontainers.image.ref.name\"]" \
        "$CHRUN_ROOT/index.json" | grep "owners:1\$") &&
    _fixture_skopeo_push "$REGISTRY/sub/owners:1" "oci:$CHRUN_ROOT:$ref" &&
    mkdir cold && chown "$SUBID_UID:$SUBID_GID" cold &&
    as_subid_user_in "$TRASH_DIRECTORY/cold/a" env CHRUN_DEBUG=1 \
        chrun run "$REGISTRY/sub/owners:1" sh -c "id -un; stat -c %u:%g /data/mine /srv/other/f" \
        >out 2>err &&
    printf "app\n1000:1000\n1234:2000\n" >expect && test_cmp expect out &&
    grep -q "pulling in a user namespace: uid 0:$SUBID_UID:1,1:$SUBID_START:$SUBID_COUNT" err &&
    grep -q "bundle of sha256:.* made while it downloaded" err &&
    b=$(as_subid_user_in "$TRASH_DIRECTORY/cold/a" chrun-unpack "$REGISTRY/sub/owners:1") &&
    jq -r ".annotations[\"io.chrun.bundle.idmap\"]" "$b/config.json" >idmap &&
    jq -r ".annotations[\"io.chrun.bundle.idmap\"]" "$(cat path)/config.json" >expect &&
    test_cmp expect idmap &&
    test -z "$(find cold/a/blobs cold/a/index.json ! -user "$SUBID_UID")" &&
    as_subid_user_in "$TRASH_DIRECTORY/cold/b" env CHRUN_DEBUG=1 TMPDIR="$TRASH_DIRECTORY/tmp" \
        chrun run --rm "$REGISTRY/sub/owners:1" sh -c "id -un; stat -c %u:%g /data/mine" \
        >out 2>err &&
    printf "app\n1000:1000\n" >expect && test_cmp expect out &&
    grep -q "tree of sha256:.* made while it downloaded" err &&
    test -z "$(find cold/b/blobs cold/b/index.json ! -user "$SUBID_UID")"
'

test_done
