#!/bin/bash
test_description='chrun-unpack refuses truncated and corrupt gzip/zstd/tar streams and diff_id mismatches; streams a gzip bomb in bounded memory'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-unpack.sh

CANARY=$TRASH_DIRECTORY/canary
mkdir -p "$CANARY" out && echo precious >"$CANARY/file"

test_expect_success 'setup: a layer and its compressed forms' '
    printf "dir etc\nfile etc/a size=300000\nfile etc/b data=hello\n" | unpack_mktar good.tar &&
    gzip -9 -n -c good.tar >good.gz && zstd -q -c good.tar >good.zst &&
    python3 -c "
import sys
for src, dst in ((\"good.gz\", \"gz\"), (\"good.zst\", \"zst\"), (\"good.tar\", \"tar\")):
    b = bytearray(open(src, \"rb\").read())
    open(\"trunc.\" + dst, \"wb\").write(bytes(b[:len(b) // 2]))
    c = bytearray(b); c[len(c) // 2] ^= 0x55
    open(\"corrupt.\" + dst, \"wb\").write(bytes(c))
b = bytearray(open(\"good.tar\", \"rb\").read()); b[100:108] = b\"garbage!\"
open(\"badhdr.tar\", \"wb\").write(bytes(b))
"
'

for kind in gz:gzip zst:zstd tar:none; do
    ext=${kind%%:*} media=${kind#*:}
    test_expect_success "truncated $media stream" "
        unpack_mkimage trunc-$ext:1 blob=trunc.$ext:$media:good.tar >/dev/null &&
        unpack_hostile_check trunc-$ext:1 'sha256:[0-9a-f]{64}.*(truncat|corrupt|diff_id)'
    "
    test_expect_success "corrupt $media stream" "
        unpack_mkimage corrupt-$ext:1 blob=corrupt.$ext:$media:good.tar >/dev/null &&
        unpack_hostile_check corrupt-$ext:1 'sha256:[0-9a-f]{64}.*(corrupt|diff_id|checksum)'
    "
done

test_expect_success 'corrupt tar header' '
    unpack_mkimage badhdr:1 blob=badhdr.tar:none >/dev/null &&
    unpack_hostile_check badhdr:1 "corrupt tar|checksum|tar"
'
# pax_tar OUT RECORD [NAME]: a tar whose one file NAME (ustar name "short")
# carries the PAX extended header RECORD given byte for byte.
pax_tar() {
    python3 - "$@" <<-\PY
	import io, sys, tarfile
	out, record = sys.argv[1], sys.argv[2].encode()
	buf = io.BytesIO()
	x = tarfile.TarInfo("PaxHeaders/short"); x.type = tarfile.XHDTYPE; x.size = len(record)
	buf.write(x.tobuf(tarfile.USTAR_FORMAT) + record + bytes(-len(record) % 512))
	f = tarfile.TarInfo("short"); f.size = 5
	buf.write(f.tobuf(tarfile.USTAR_FORMAT) + b"hello" + bytes(507) + bytes(1024))
	open(out, "wb").write(buf.getvalue())
	PY
}

test_expect_success 'malformed PAX record: a length that runs past its header' '
    pax_tar pax-past.tar "99 path=etc/long/name
" &&
    unpack_mkimage pax-past:1 pax-past.tar:gzip >/dev/null &&
    unpack_hostile_check pax-past:1 "layer sha256:[0-9a-f]{64}: entry .short.: damaged tar header: .*malformed pax"
'
test_expect_success 'malformed PAX record: a length that is not a number' '
    pax_tar pax-nonnum.tar "2x path=etc/long/name
" &&
    unpack_mkimage pax-nonnum:1 pax-nonnum.tar:none >/dev/null &&
    unpack_hostile_check pax-nonnum:1 "layer sha256:[0-9a-f]{64}: entry .short.: damaged tar header: .*malformed pax"
'
test_expect_success 'a well-formed PAX path, and a UTF-8 one the C locale cannot show, unpack' '
    pax_tar pax-ok.tar "27 path=etc/long/name/file
" &&
    printf "dir caf\303\251\nfile caf\303\251/na\303\257ve data=hi\n" | unpack_mktar pax-utf8.tar &&
    unpack_mkimage pax-ok:1 pax-ok.tar:zstd pax-utf8.tar:gzip >/dev/null &&
    LC_ALL=C chrun-unpack pax-ok:1 out/pax >/dev/null &&
    test "$(cat out/pax/rootfs/etc/long/name/file)" = hello &&
    test "$(cat "out/pax/rootfs/caf$(printf "\303\251")/na$(printf "\303\257")ve")" = hi &&
    ! test -e out/pax/rootfs/short &&
    rm -rf out/pax
'
test_expect_success 'diff_id mismatch' '
    unpack_mkimage diffid:1 good.tar:gzip diffid.0=sha256:0000000000000000000000000000000000000000000000000000000000000000 >/dev/null &&
    unpack_hostile_check diffid:1 "diff_id mismatch"
'
test_expect_success 'media type and magic bytes disagree' '
    unpack_mkimage magic1:1 blob=good.gz:none:good.tar >/dev/null &&
    unpack_hostile_check magic1:1 "says tar, but the data is gzip" &&
    unpack_mkimage magic2:1 blob=good.tar:gzip >/dev/null &&
    unpack_hostile_check magic2:1 "says gzip, but the data is not compressed" &&
    unpack_mkimage magic3:1 blob=good.zst:gzip:good.tar >/dev/null &&
    unpack_hostile_check magic3:1 "says gzip, but the data is zstd"
'
test_expect_success 'a blob shorter than its descriptor (bytes changed after store)' '
    d=$(unpack_mkimage short:1 good.tar:none) &&
    layer=$(jq -r ".layers[0].digest" "$CHRUN_ROOT/blobs/sha256/${d#sha256:}") &&
    f=$CHRUN_ROOT/blobs/sha256/${layer#sha256:} &&
    cp "$f" saved && test_when_finished "cp saved \"$f\"" &&
    head -c 100 saved >"$f" &&
    unpack_hostile_check short:1 "100 bytes, its descriptor declares"
'
test_expect_success 'gzip bomb: 1 GiB of zeros streamed in bounded memory' '
    python3 -c "
import zlib, sys
tar = open(\"good.tar\", \"rb\").read()
z = zlib.compressobj(9, zlib.DEFLATED, 31)
out = open(\"bomb.gz\", \"wb\"); out.write(z.compress(tar))
zero = bytes(1 << 20)
for _ in range(1024): out.write(z.compress(zero))
out.write(z.flush())
" &&
    python3 -c "
import hashlib
h = hashlib.sha256(open(\"good.tar\", \"rb\").read()); zero = bytes(1 << 20)
for _ in range(1024): h.update(zero)
print(\"sha256:\" + h.hexdigest())" >bomb.diffid &&
    test "$(stat -c %s bomb.gz)" -lt 2000000 &&
    unpack_mkimage bomb:1 blob=bomb.gz:gzip diffid.0=$(cat bomb.diffid) >/dev/null &&
    /usr/bin/time -f %M -o rss chrun-unpack bomb:1 out/bomb >/dev/null &&
    test "$(cat out/bomb/rootfs/etc/b)" = hello &&
    echo "peak RSS $(cat rss) KiB" && test "$(cat rss)" -lt 65536
'

test_done
