#!/bin/bash
test_description='chrun-build against buildah bud: same Dockerfile, same base, same rootfs and config'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-registry.sh &&
    . "$TEST_DIRECTORY"/lib-fixtures.sh && . "$TEST_DIRECTORY"/lib-buildah.sh

CASES=$REPO_ROOT/testdata/build/oracle
export SOURCE_DATE_EPOCH=1700000000

if [ "$(id -u)" != 0 ] || ! command -v buildah >/dev/null; then
    # buildah's vfs storage and chroot isolation need root here
    say "# skipped: the buildah oracle needs root and buildah"
    test_done
fi

registry_start plain

test_expect_success 'setup: buildah config, the busybox base in the registry and the store' '
    buildah_setup &&
    BASE=$(oracle_base basic) &&
    test -n "$BASE"
'

# One test per case directory: the lead adds cases (multi-stage, heredocs)
# as chrun-build learns them.
for case_dir in "$CASES"/*/; do
    case_dir=${case_dir%/}
    test_expect_success "oracle: $(basename "$case_dir")" '
        oracle_case "$case_dir" "$BASE"
    '
done

test_expect_success 'the rig notices a difference (a config field and a file)' '
    out=$TRASH_DIRECTORY/oracle-instructions &&
    cp "$out/chrun.config" "$out/chrun.config.orig" &&
    jq ".User = \"0\"" "$out/chrun.config.orig" >"$out/chrun.config" &&
    ! oracle_compare "$out" >diff 2>&1 &&
    grep -q "\"User\"" diff &&
    cp "$out/chrun.config.orig" "$out/chrun.config" &&
    oracle_compare "$out" &&
    echo changed >>"$out/chrun/rootfs/app/greeting" &&
    ! oracle_compare "$out" >diff 2>&1 &&
    grep -q "^app/greeting: sha256 differs" diff
'

test_expect_success 'a cached rebuild gives the same image on both sides' '
    out=$TRASH_DIRECTORY/oracle-again &&
    oracle_build "$CASES/instructions" "$BASE" "$out" &&
    cmp "$out/chrun.id" "$TRASH_DIRECTORY/oracle-instructions/chrun.id" &&
    cmp "$out/buildah.id" "$TRASH_DIRECTORY/oracle-instructions/buildah.id"
'

test_done
