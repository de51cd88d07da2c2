#!/bin/bash
test_description='chrun-load refuses malformed and hostile archives: exit 1, one named error, store unchanged'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"

test_expect_success 'setup: a store holding one image' '
    fixtures_ensure &&
    chrun-load "$FIXTURES/full.oci.tar" >out &&
    test "$(wc -l <out)" -eq 1
'

# kind and the reason the error must give
while read -r kind reason; do
    test_expect_success "refused: $kind" '
        fixture_hostile_archive '"$kind"' "$TRASH_DIRECTORY/'"$kind"'.tar" >/dev/null &&
        load_refused "$TRASH_DIRECTORY/'"$kind"'.tar" "'"$reason"'"
    '
done <<'KINDS'
truncated Truncated tar archive
truncated-gzip truncated gzip (input|stream)
truncated-zstd [Tt]runcated zstd (input|stream)
corrupt-gzip (Damaged|corrupt|gzip|invalid)
corrupt-zstd (Zstd|zstd)
blob-mismatch diff_id mismatch
blob-mismatch-oci digest mismatch
size-mismatch size mismatch
missing-blob missing from the archive
bad-digest invalid digest .sha256:XYZ.
bad-digest-algo invalid digest .md5:
bad-digest-dotdot invalid digest .sha256:\.\./
bad-digest-layer invalid digest
not-json manifest.json: invalid JSON
not-json-oci invalid JSON
deep-json manifest.json: invalid JSON.*maximum parsing depth
deep-json-oci invalid JSON.*maximum parsing depth
huge-json manifest.json.*larger than 4194304 bytes: File too large
huge-json-oci larger than 4194304 bytes: File too large
layer-not-gzip not compressed as its media type
dotdot-layer '\.\./x/layer\.tar' leads outside the archive
abs-layer '/etc/passwd' leads outside the archive
symlink-layer -> '/etc/passwd' leads outside the archive
symlink-layer-rel -> '\.\./\.\./\.\./\.\./etc/passwd' leads outside the archive
KINDS

# Archives made here: python3 edits a good docker save archive.
edit_docker() { # OUT PYTHON-BODY (m: manifest list, files: name -> bytes, links: name -> target)
    python3 - "$FIXTURES/basic.docker.tar" "$1" "$2" <<'PY'
import io, json, sys, tarfile
src, out, body = sys.argv[1:4]
files, links, order = {}, {}, []
with tarfile.open(src) as t:
    for i in t.getmembers():
        order.append(i.name)
        if i.issym():
            links[i.name] = i.linkname
        elif i.isfile():
            files[i.name] = t.extractfile(i).read()
m = json.loads(files["manifest.json"])
exec(body)
if m is not None:
    files["manifest.json"] = json.dumps(m).encode()
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    for name in order + [n for n in list(files) + list(links) if n not in order]:
        if name in links:
            i = tarfile.TarInfo(name); i.type = tarfile.SYMTYPE; i.linkname = links[name]
            t.addfile(i)
        elif name in files:
            i = tarfile.TarInfo(name); i.size = len(files[name])
            t.addfile(i, io.BytesIO(files[name]))
PY
}

test_expect_success 'refused: diff_id of a layer differs from the config' '
    edit_docker bad-diffid.tar "
import hashlib
c = m[0][\"Config\"]; cfg = json.loads(files[c]); cfg[\"rootfs\"][\"diff_ids\"][0] = \"sha256:\" + \"0\" * 64
del files[c]; data = json.dumps(cfg).encode(); c = hashlib.sha256(data).hexdigest() + \".json\"
files[c] = data; m[0][\"Config\"] = c" &&
    load_refused bad-diffid.tar "diff_id mismatch"
'

test_expect_success 'refused: config whose bytes do not match its file name' '
    edit_docker bad-config.tar "
c = m[0][\"Config\"]; files[c] = files[c].replace(b\"amd64\", b\"arm64\")" &&
    load_refused bad-config.tar "member .*\.json.: digest mismatch"
'

test_expect_success 'refused: gzip layer whose uncompressed bytes differ from the diff_id' '
    edit_docker gz-diffid.tar "
import gzip
l = m[0][\"Layers\"][0]; files[l] = gzip.compress(files[l] + b\"\\0\" * 512)" &&
    load_refused gz-diffid.tar "diff_id mismatch: uncompressed content"
'

test_expect_success 'refused: a symlink chain that leaves the archive' '
    edit_docker chain.tar "
l = m[0][\"Layers\"][0]; links[\"a/b/layer.tar\"] = \"../../../x\"; m[0][\"Layers\"][0] = \"a/b/layer.tar\"" &&
    load_refused chain.tar "symlink .a/b/layer.tar. -> .\.\./\.\./\.\./x. leads outside"
'

test_expect_success 'refused: a symlink loop' '
    edit_docker loop.tar "
links[\"a\"] = \"b\"; links[\"b\"] = \"a\"; m[0][\"Layers\"][0] = \"a\"" &&
    load_refused loop.tar "too many levels of symbolic links"
'

test_expect_success 'refused: Layers entry that is not in the archive' '
    edit_docker nolayer.tar "m[0][\"Layers\"][0] = \"nothere/layer.tar\"" &&
    load_refused nolayer.tar "nothere/layer.tar. not found in the archive"
'

test_expect_success 'refused: more Layers than diff_ids' '
    edit_docker extra.tar "m[0][\"Layers\"].append(m[0][\"Layers\"][0])" &&
    load_refused extra.tar "1 diff_ids for 2 layers"
'

test_expect_success 'refused: RepoTags entry that is not a reference' '
    edit_docker badtag.tar "m[0][\"RepoTags\"] = [\"UPPER/Case:1\"]" &&
    load_refused badtag.tar "RepoTags\[0\]"
'

test_expect_success 'refused: manifest.json of the wrong shape' '
    edit_docker shape.tar "m = {\"Config\": 1}" &&
    load_refused shape.tar "manifest.json is not an array" &&
    edit_docker empty.tar "m = []" &&
    load_refused empty.tar "lists no images"
'

test_expect_success 'refused: neither manifest.json nor index.json' '
    edit_docker none.tar "del files[\"manifest.json\"]; m = None" &&
    load_refused none.tar "neither index.json nor manifest.json"
'

test_expect_success 'refused: not an archive at all, and empty input' '
    head -c 5000 /dev/urandom >junk.bin &&
    load_refused junk.bin "read archive" &&
    : >empty.tar &&
    load_refused empty.tar "(empty input|Unrecognized archive format)"
'

test_expect_success 'refused from stdin: named as stdin' '
    fixture_hostile_archive truncated-zstd "$TRASH_DIRECTORY/t.tar.zst" >/dev/null &&
    store_snapshot >before &&
    test_expect_code 1 chrun-load - <t.tar.zst 2>err &&
    test_one_error_line chrun-load err "^chrun-load: error: .stdin.: " &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'refused: a directory whose layer is a symlink out of it' '
    mkdir -p dir outside && tar -xf "$FIXTURES/basic.docker.tar" -C dir &&
    echo secret >outside/layer.tar &&
    l=$(jq -r ".[0].Layers[0]" dir/manifest.json) &&
    rm -f "dir/$l" && ln -s "$TRASH_DIRECTORY/outside/layer.tar" "dir/$l" &&
    load_refused dir "leads outside the archive" &&
    rm -f "dir/$l" && ln -s ../outside/layer.tar "dir/$l" &&
    load_refused dir "leads outside the archive"
'

test_expect_success 'the store is still sound' '
    store_fsck &&
    test "$(jq ".manifests | length" "$CHRUN_ROOT/index.json")" -eq 1
'

test_done
