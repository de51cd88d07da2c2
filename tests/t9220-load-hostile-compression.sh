#!/bin/bash
test_description='chrun-load checks the gzip trailers (CRC32, ISIZE) of an outer .tar.gz and of gzip layers in a docker-save archive, zstd checksums, truncation and bytes after the last member or frame'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"

# damage SRC PREFIX: PREFIX.CASE, SRC compressed and damaged (see
# damaged_compression in scripts/fixture-tar.py).
damage() {
    "$_fixture_py" "$_fixture_helper" damaged-compression "$1" "$2"
}

test_expect_success 'setup: a store holding one image; damaged forms of an OCI archive' '
    fixtures_ensure &&
    chrun-load "$FIXTURES/full.oci.tar" >out &&
    damage "$FIXTURES/basic.oci.tar" outer
'

while read -r name pattern; do
    test_expect_success "outer archive refused: $name" "
        load_refused \"\$TRASH_DIRECTORY/outer.$name\" '$pattern'
    "
done <<'CASES'
gz-crc read archive: corrupt gzip stream: member 1: CRC32
gz-isize read archive: corrupt gzip stream: member 1: ISIZE
gz-trunc-trailer read archive: truncated gzip stream
gz-garbage read archive: corrupt gzip stream: garbage after member 1
gz-multi-crc read archive: corrupt gzip stream: member 2: CRC32
zst-checksum read archive: corrupt zstd stream: frame 1: .*checksum
zst-trunc read archive: truncated zstd stream
zst-garbage read archive: corrupt zstd stream: garbage after frame 1
CASES

test_expect_success 'outer archive refused from stdin too' '
    store_snapshot >before &&
    test_expect_code 1 chrun-load - <outer.gz-garbage 2>err &&
    test_one_error_line chrun-load err "^chrun-load: error: .stdin.: .*read archive: corrupt gzip stream: garbage after member 1" &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'multi-member gzip and multi-frame zstd outer archives load' '
    chrun-load outer.gz-multi >d1 &&
    chrun-load - <outer.zst-multi >d2 &&
    chrun-load "$FIXTURES/basic.oci.tar" >d3 &&
    test_cmp d1 d3 && test_cmp d2 d3 &&
    store_fsck
'

# A docker-save archive whose first layer member is compressed: its diff_id
# is checked at load, so its trailers are too.
test_expect_success 'setup: docker-save archives with damaged gzip layers' '
    mkdir -p dl && tar -xf "$FIXTURES/basic.docker.tar" -C dl &&
    l=$(jq -r ".[0].Layers[0]" dl/manifest.json) &&
    test -f "dl/$l" && ! test -L "dl/$l" &&
    cp "dl/$l" layer.tar &&
    damage layer.tar layer &&
    for c in gz-crc gz-isize gz-garbage zst-checksum; do
        cp "layer.$c" "dl/$l" &&
        tar -C dl -cf "docker-$c.tar" . || return 1
    done &&
    cp layer.gz-multi "dl/$l" && tar -C dl -cf docker-gz-multi.tar .
'

while read -r name pattern; do
    test_expect_success "docker-save layer refused: $name" "
        load_refused \"\$TRASH_DIRECTORY/docker-$name.tar\" 'layer sha256:[0-9a-f]{64}: $pattern'
    "
done <<'CASES'
gz-crc corrupt gzip stream: member 1: CRC32
gz-isize corrupt gzip stream: member 1: ISIZE
gz-garbage corrupt gzip stream: garbage after member 1
zst-checksum corrupt zstd stream: frame 1: .*checksum
CASES

test_expect_success 'docker-save archive with a multi-member gzip layer loads' '
    chrun-load docker-gz-multi.tar >d &&
    test "$(wc -l <d)" -eq 1 &&
    store_fsck
'

test_expect_success 'a malformed PAX record in the archive is damage, named by its member' '
    python3 - "$FIXTURES/basic.docker.tar" pax-bad.tar <<-\PY &&
	import io, sys, tarfile
	src, out = sys.argv[1:3]
	buf = io.BytesIO()
	with tarfile.open(src) as t:
	    for m in t.getmembers():
	        if m.name == "manifest.json":
	            rec = b"99 path=other.json\n"
	            x = tarfile.TarInfo("PaxHeaders/manifest.json"); x.type = tarfile.XHDTYPE
	            x.size = len(rec)
	            buf.write(x.tobuf(tarfile.USTAR_FORMAT) + rec + bytes(-len(rec) % 512))
	        data = t.extractfile(m).read() if m.isfile() else b""
	        m.pax_headers = {}
	        buf.write(m.tobuf(tarfile.GNU_FORMAT) + data + bytes(-len(data) % 512))
	buf.write(bytes(1024))
	open(out, "wb").write(buf.getvalue())
	PY
    load_refused "$TRASH_DIRECTORY/pax-bad.tar" "member .manifest.json.: damaged tar header: .*malformed pax"
'

test_done
