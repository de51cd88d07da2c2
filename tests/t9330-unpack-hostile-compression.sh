#!/bin/bash
test_description='chrun-unpack and chrun-export check every gzip member (CRC32, ISIZE), zstd frame checksums, and refuse truncated streams and bytes after the last member or frame; multi-member gzip and multi-frame zstd layers unpack'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-unpack.sh

CANARY=$TRASH_DIRECTORY/canary
mkdir -p "$CANARY" out && echo precious >"$CANARY/file"

# The layer's blob digest matches the stored bytes and its diff_id matches
# what they inflate to: only the compression's own checks can catch these.
test_expect_success 'setup: a layer and its damaged compressed forms' '
    printf "dir etc\nfile etc/a size=300000\nfile etc/b data=hello\n" | unpack_mktar good.tar &&
    python3 "$REPO_ROOT/scripts/fixture-tar.py" damaged-compression good.tar damaged
'

while read -r name media pattern; do
    test_expect_success "refused: $name" "
        unpack_mkimage $name:1 blob=damaged.$name:$media:good.tar >/dev/null &&
        unpack_hostile_check $name:1 'layer sha256:[0-9a-f]{64}: .*$pattern'
    "
done <<'CASES'
gz-crc gzip corrupt gzip stream: member 1: CRC32
gz-isize gzip corrupt gzip stream: member 1: ISIZE
gz-trunc-trailer gzip truncated gzip stream
gz-garbage gzip corrupt gzip stream: garbage after member 1
gz-zeros gzip corrupt gzip stream: garbage after member 1
gz-multi-crc gzip corrupt gzip stream: member 2: CRC32
zst-checksum zstd corrupt zstd stream: frame 1: .*checksum
zst-trunc zstd truncated zstd stream
zst-garbage zstd corrupt zstd stream: garbage after frame 1
CASES

test_expect_success 'multi-member gzip and multi-frame zstd layers unpack whole' '
    unpack_mkimage gz-multi:1 blob=damaged.gz-multi:gzip:good.tar >/dev/null &&
    chrun-unpack gz-multi:1 out/gz >/dev/null &&
    unpack_mkimage zst-multi:1 blob=damaged.zst-multi:zstd:good.tar >/dev/null &&
    chrun-unpack zst-multi:1 out/zst >/dev/null &&
    test "$(cat out/gz/rootfs/etc/b)" = hello &&
    test "$(stat -c %s out/gz/rootfs/etc/a)" -eq 300000 &&
    "$TEST_DIRECTORY"/treecmp out/gz/rootfs out/zst/rootfs &&
    rm -rf out/gz out/zst
'

test_expect_success 'chrun-export refuses the same layers, naming them' '
    for name in gz-crc gz-garbage zst-checksum; do
        store_snapshot >store.before &&
        test_expect_code 1 chrun-export $name:1 >exp.tar 2>err &&
        test_one_error_line chrun-export err "layer sha256:[0-9a-f]{64}: .*(CRC32|garbage|checksum)" &&
        store_snapshot >store.after &&
        test_cmp store.before store.after || return 1
    done
'

# chrun-pull checks blob digests only and inflates nothing: a layer whose
# gzip trailer is wrong but whose digest is right pulls (as with docker and
# skopeo); chrun-unpack, which inflates it, refuses it.
test_expect_success 'pull stores a layer with a wrong CRC32; unpack refuses it' '
    . "$TEST_DIRECTORY"/lib-registry.sh &&
    registry_start plain &&
    chrun-push gz-crc:1 "$REGISTRY/gz-crc:1" >pushed &&
    export CHRUN_ROOT=$TRASH_DIRECTORY/store2 &&
    chrun-pull -q "$REGISTRY/gz-crc:1" >pulled &&
    test_cmp pushed pulled &&
    unpack_hostile_check "$REGISTRY/gz-crc:1" "layer sha256:[0-9a-f]{64}: corrupt gzip stream: member 1: CRC32"
'

test_done
