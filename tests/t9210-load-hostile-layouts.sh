#!/bin/bash
test_description='chrun-load: indexes that share sub-indexes, FIFOs in a layout directory, compressions that would run an external program'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"
. "$TEST_DIRECTORY/lib-fanout.sh"

# load_refused INPUT ERE: chrun-load INPUT (given at most 20 s: a hang fails
# the test) exits 1 with one error line naming INPUT and matching ERE, and the
# store (tmp/ included) is unchanged.
load_refused() {
    local input=$1 pattern=$2
    store_snapshot >before &&
    test_expect_code 1 timeout 20 chrun-load "$input" >out 2>err &&
    test_one_error_line chrun-load err "'$input'.*$pattern" &&
    test ! -s out &&
    store_snapshot >after &&
    test_cmp before after &&
    test -z "$(ls -A "$CHRUN_ROOT/tmp")"
}

test_expect_success 'setup: a store holding one image' '
    fixtures_ensure &&
    chrun-load "$FIXTURES/basic.oci.tar" >out &&
    test "$(wc -l <out)" -eq 1
'

# 20 indexes per level, 3 levels: 8000 paths to one manifest, 62 blobs.
test_expect_success 'indexes sharing sub-indexes (fan-out 20) are each checked once' '
    top=$(fanout_layout fan20 20 3) &&
    (cd fan20 && tar -cf ../fan20.tar oci-layout index.json blobs) &&
    test_expect_code 0 timeout 20 chrun-load fan20.tar >out 2>err &&
    echo "$top" >expect && test_cmp expect out &&
    test -f "$CHRUN_ROOT/blobs/sha256/${top#sha256:}" &&
    for b in fan20/blobs/sha256/*; do
        cmp "$b" "$CHRUN_ROOT/blobs/sha256/${b##*/}" || return 1
    done &&
    store_fsck
'

# 40 per level: 1681 descriptors to walk even when each index is read once.
test_expect_success 'refused: more than 1024 manifests and indexes (fan-out 40)' '
    fanout_layout fan40 40 3 >/dev/null &&
    (cd fan40 && tar -cf ../fan40.tar oci-layout index.json blobs) &&
    load_refused fan40.tar "more than 1024 manifests and indexes" &&
    load_refused fan40 "more than 1024 manifests and indexes"
'

test_expect_success 'refused: a layout directory whose manifest blob is a FIFO' '
    mkdir fifo && tar -xf "$FIXTURES/basic.oci.tar" -C fifo &&
    m=$(jq -r ".manifests[0].digest" fifo/index.json) && m=${m#sha256:} &&
    rm fifo/blobs/sha256/$m && mkfifo fifo/blobs/sha256/$m &&
    load_refused fifo "blobs/sha256/$m.: not a regular file"
'

test_expect_success 'refused: a layout directory whose index.json is a FIFO' '
    mkdir fifo-index && tar -xf "$FIXTURES/basic.oci.tar" -C fifo-index &&
    rm fifo-index/index.json && mkfifo fifo-index/index.json &&
    load_refused fifo-index "index.json.: not a regular file"
'

test_expect_success ROOT 'refused: a layout directory whose layer blob is a device node' '
    {
        mkdir dev && tar -xf "$FIXTURES/basic.oci.tar" -C dev &&
        m=$(jq -r ".manifests[0].digest" dev/index.json) &&
        l=$(jq -r ".layers[0].digest" "dev/blobs/sha256/${m#sha256:}") && l=${l#sha256:} &&
        rm dev/blobs/sha256/$l && mknod dev/blobs/sha256/$l c 1 3 &&
        load_refused dev "blobs/sha256/$l.: not a regular file"
    }
'

# Programs libarchive would run for a filter it lacks: each leaves a mark.
test_expect_success 'setup: decompressors on PATH that record being run' '
    mkdir fakebin &&
    for p in lzop lrzip grzip lz4 lzip lzma xz bzip2 gzip zstd uudecode compress; do
        printf "#!/bin/sh\n: >\"%s/ran-%s\"\ncat\n" "$TRASH_DIRECTORY" "$p" >fakebin/$p &&
        chmod +x fakebin/$p || return 1
    done
'

# The magic bytes of lzop and lrzip, then junk: no real tool is needed.
test_expect_success 'refused: lzop and lrzip input, and no program is run' '
    printf "\211LZO\000\r\n\032\n\020\060\040\240junkjunkjunkjunkjunkjunk" >x.tar.lzo &&
    printf "LRZI\000\006junkjunkjunkjunkjunkjunkjunkjunk" >x.tar.lrz &&
    PATH=$TRASH_DIRECTORY/fakebin:$PATH &&
    load_refused x.tar.lzo "not a tar, tar.gz or tar.zst" &&
    load_refused x.tar.lrz "not a tar, tar.gz or tar.zst" &&
    PATH=${PATH#$TRASH_DIRECTORY/fakebin:} &&
    test -z "$(ls ran-* 2>/dev/null)"
'

test_expect_success 'gzip and zstd archives still load, in process' '
    PATH=$TRASH_DIRECTORY/fakebin:$PATH &&
    chrun-load "$FIXTURES/basic.oci.tar.gz" >gz.out &&
    chrun-load "$FIXTURES/basic.oci.tar.zst" >zst.out &&
    PATH=${PATH#$TRASH_DIRECTORY/fakebin:} &&
    test_cmp gz.out zst.out &&
    test -z "$(ls ran-* 2>/dev/null)"
'

test_expect_success 'the store is still sound' '
    store_fsck
'

# A media type travels into chrun-push's Content-Type header: CR/LF in it
# would let the image write a second request carrying the user's credentials.
test_expect_success 'an index entry whose mediaType holds CR/LF is refused' '
    rm -rf crlf && mkdir -p crlf && tar -C crlf -xf "$FIXTURES/basic.oci.tar" &&
    jq ".manifests[0].mediaType += \"\r\nX-Injected: yes\"" crlf/index.json >crlf/i &&
    mv crlf/i crlf/index.json &&
    grep -q "X-Injected" crlf/index.json &&
    load_refused crlf "invalid mediaType"
'

test_done
