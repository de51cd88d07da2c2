#!/bin/bash
test_description='chrun-load imports docker save archives and OCI layouts that skopeo and umoci made; skopeo reads the result'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"

refs() { jq -r '.manifests[].annotations["org.opencontainers.image.ref.name"]' "$CHRUN_ROOT/index.json" | sort; }

test_expect_success 'help, version and usage errors' '
    chrun-load --help >out && grep "^Usage: chrun-load" out &&
    chrun-load --version >out && grep "^chrun-load [0-9]" out &&
    test_expect_code 2 chrun-load a b 2>err && grep "^chrun-load: error: " err &&
    test_expect_code 2 chrun-load --bogus 2>err && grep "^chrun-load: error: " err &&
    test_expect_code 1 chrun-load "$TRASH_DIRECTORY/nonexistent.tar" 2>err &&
    test_one_error_line chrun-load err "nonexistent.tar"
'

test_expect_success 'oci-archive made by skopeo: manifest kept byte for byte, named' '
    fixtures_ensure &&
    chrun-load "$FIXTURES/basic.oci.tar" >out &&
    echo "$(fixture_digest basic)" >expect && test_cmp expect out &&
    refs >names && grep -x docker.io/fixture/basic:1 names &&
    store_fsck && test -z "$(ls -A "$CHRUN_ROOT/tmp")"
'

test_expect_success 'skopeo reads the loaded OCI image from the store' '
    skopeo inspect "oci:$CHRUN_ROOT:docker.io/fixture/basic:1" >insp.json &&
    test "$(jq -r .Digest insp.json)" = "$(fixture_digest basic)" &&
    skopeo --insecure-policy copy -q "oci:$CHRUN_ROOT:docker.io/fixture/basic:1" "dir:$TRASH_DIRECTORY/x1" &&
    test -f x1/manifest.json
'

test_expect_success 'loading the same archive again prints the same digest and changes nothing' '
    store_snapshot >before &&
    chrun-load "$FIXTURES/basic.oci.tar" >out2 &&
    test_cmp out out2 &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'docker-archive: an OCI manifest is written, stable across loads and compressions' '
    chrun-load "$FIXTURES/basic.docker.tar" >d1 &&
    test "$(wc -l <d1)" -eq 1 &&
    D=$(cat d1) &&
    jq -e ".mediaType == \"application/vnd.oci.image.manifest.v1+json\" and
           .config.mediaType == \"application/vnd.oci.image.config.v1+json\" and
           (.layers | all(.mediaType == \"application/vnd.oci.image.layer.v1.tar\"))" \
        "$CHRUN_ROOT/blobs/sha256/${D#sha256:}" &&
    store_snapshot >before &&
    chrun-load "$FIXTURES/basic.docker.tar.gz" >d2 && test_cmp d1 d2 &&
    chrun-load <"$FIXTURES/basic.docker.tar" >d3 && test_cmp d1 d3 &&
    cat "$FIXTURES/basic.docker.tar.zst" | chrun-load - >d4 && test_cmp d1 d4 &&
    store_snapshot >after && test_cmp before after &&
    test "$(jq -r ".manifests[] | select(.annotations[\"org.opencontainers.image.ref.name\"] == \"docker.io/fixture/basic:1\") | .digest" "$CHRUN_ROOT/index.json")" = "$D"
'

test_expect_success 'skopeo reads the image loaded from a docker-archive' '
    skopeo inspect "oci:$CHRUN_ROOT:docker.io/fixture/basic:1" >insp.json &&
    test "$(jq -r .Digest insp.json)" = "$D" &&
    skopeo --insecure-policy copy -q "oci:$CHRUN_ROOT:docker.io/fixture/basic:1" "dir:$TRASH_DIRECTORY/x2" &&
    skopeo inspect --config "docker-archive:$FIXTURES/basic.docker.tar" | jq -S . >cfg.expect &&
    skopeo inspect --config "oci:$CHRUN_ROOT:docker.io/fixture/basic:1" | jq -S . >cfg.actual &&
    test_cmp cfg.expect cfg.actual
'

test_expect_success 'compressed oci-archives load to the same digest' '
    chrun-load "$FIXTURES/basic.oci.tar.gz" >o2 && test_cmp out o2 &&
    chrun-load - <"$FIXTURES/basic.oci.tar.zst" >o3 && test_cmp out o3
'

test_expect_success 'docker save with two images sharing a layer (symlinked members)' '
    chrun-load "$FIXTURES/multi.docker.tar" >m &&
    test "$(wc -l <m)" -eq 2 &&
    head -n1 m >m1 && test_cmp d1 m1 &&
    refs >names && grep -x docker.io/fixture/full:1 names &&
    chrun-load "$FIXTURES/full.docker.tar" >f && tail -n1 m >m2 && test_cmp f m2 &&
    skopeo inspect "oci:$CHRUN_ROOT:docker.io/fixture/full:1" >/dev/null
'

test_expect_success 'extracted docker save directory loads like the tar' '
    mkdir saved && tar -xf "$FIXTURES/multi.docker.tar" -C saved &&
    store_snapshot >before &&
    chrun-load saved >m.dir && test_cmp m m.dir &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'umoci OCI layout directory: every tag, bare names normalized' '
    chrun-load "$FIXTURES/oci-layout" >l &&
    test "$(wc -l <l)" -eq 4 &&
    grep -x "$(fixture_digest full)" l &&
    grep -x "$(fixture_digest basic-zstd)" l &&
    refs >names &&
    grep -x docker.io/library/full:latest names &&
    grep -x docker.io/library/basic-zstd:latest names &&
    skopeo inspect "oci:$CHRUN_ROOT:docker.io/library/basic-zstd:latest" >/dev/null &&
    store_fsck
'

test_expect_success 'skopeo dir: layout (docker v2s2 types) kept byte for byte, unnamed' '
    store_snapshot >before.idx &&
    chrun-load "$FIXTURES/full.docker-layout" >s &&
    echo "sha256:$(sha256sum <"$FIXTURES/full.docker-layout/manifest.json" | cut -d" " -f1)" >expect &&
    test_cmp expect s &&
    cmp "$FIXTURES/full.docker-layout/manifest.json" "$CHRUN_ROOT/blobs/sha256/$(cut -c8- s)"
'

test_expect_success 'oci-archive without a name: digest printed, nothing named' '
    skopeo --insecure-policy copy -q "oci:$FIXTURES/oci-layout:user" "oci-archive:$TRASH_DIRECTORY/noname.tar" &&
    cp "$CHRUN_ROOT/index.json" idx.before &&
    chrun-load noname.tar >n 2>err &&
    echo "$(fixture_digest user)" >expect && test_cmp expect n &&
    test_cmp idx.before "$CHRUN_ROOT/index.json"
'

test_expect_success 'oci-archive with a bare tag as name (umoci/skopeo style): no name' '
    skopeo --insecure-policy copy -q "oci:$FIXTURES/oci-layout:user" "oci-archive:$TRASH_DIRECTORY/tagonly.tar:1.0" &&
    cp "$CHRUN_ROOT/index.json" idx.before &&
    chrun-load tagonly.tar >n 2>err &&
    test_cmp expect n && grep "1.0" err &&
    test_cmp idx.before "$CHRUN_ROOT/index.json"
'

test_expect_success 'docker 25 style: gzip layers as blobs/sha256, index.json with io.containerd.image.name' '
    python3 - "$FIXTURES/basic.docker.tar" new.tar <<-\PY &&
	import gzip, hashlib, io, json, sys, tarfile
	src, out = sys.argv[1:3]
	files = {}
	with tarfile.open(src) as t:
	    for i in t.getmembers():
	        if i.isfile():
	            files[i.name] = t.extractfile(i).read()
	    m = json.loads(files["manifest.json"])[0]
	    layers = [t.extractfile(t.getmember(l)).read() for l in m["Layers"]]
	cfg = files[m["Config"]]
	blobs = {}
	def put(b):
	    h = hashlib.sha256(b).hexdigest(); blobs[h] = b; return h
	lds = []
	for l in layers:
	    z = gzip.compress(l, mtime=0)
	    lds.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + put(z), "size": len(z)})
	c = put(cfg)
	man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
	    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + c, "size": len(cfg)},
	    "layers": lds}).encode()
	mh = put(man)
	idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
	    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + mh, "size": len(man),
	     "annotations": {"io.containerd.image.name": "docker.io/fixture/gz:25", "org.opencontainers.image.ref.name": "25"}}]}
	dm = [{"Config": "blobs/sha256/" + c, "RepoTags": ["fixture/gz:25"], "Layers": ["blobs/sha256/" + x["digest"][7:] for x in lds]}]
	with tarfile.open(out, "w") as t:
	    def add(n, b):
	        i = tarfile.TarInfo(n); i.size = len(b); t.addfile(i, io.BytesIO(b))
	    for h, b in blobs.items():
	        add("blobs/sha256/" + h, b)
	    add("index.json", json.dumps(idx).encode())
	    add("manifest.json", json.dumps(dm).encode())
	    add("oci-layout", b"{\"imageLayoutVersion\":\"1.0.0\"}")
	print("sha256:" + mh)
	PY
    chrun-load new.tar >g &&
    refs >names && grep -x docker.io/fixture/gz:25 names &&
    skopeo inspect "oci:$CHRUN_ROOT:docker.io/fixture/gz:25" >/dev/null
'

test_expect_success 'docker save with gzip layer members: +gzip media type, diff_ids checked' '
    python3 - "$FIXTURES/basic.docker.tar" gzl.tar <<-\PY &&
	import gzip, io, json, sys, tarfile
	src, out = sys.argv[1:3]
	with tarfile.open(src) as t, tarfile.open(out, "w") as o:
	    m = json.loads(t.extractfile("manifest.json").read())
	    for i in t.getmembers():
	        if i.issym():
	            o.addfile(i)
	        elif i.isfile():
	            b = t.extractfile(i).read()
	            if i.name in m[0]["Layers"] or i.name.endswith(".tar"):
	                b = gzip.compress(b, mtime=0)
	            j = tarfile.TarInfo(i.name); j.size = len(b); o.addfile(j, io.BytesIO(b))
	PY
    chrun-load gzl.tar >gz &&
    G=$(cat gz) &&
    jq -e ".layers | all(.mediaType == \"application/vnd.oci.image.layer.v1.tar+gzip\")" \
        "$CHRUN_ROOT/blobs/sha256/${G#sha256:}" &&
    skopeo inspect "oci:$CHRUN_ROOT:docker.io/fixture/basic:1" >/dev/null &&
    chrun-load gzl.tar >gz2 && test_cmp gz gz2
'

test_expect_success 'chrun-images lists the loaded images; nothing left in tmp/' '
    chrun-images >imgs &&
    grep "^docker.io/fixture/full:1 " imgs &&
    test -z "$(ls -A "$CHRUN_ROOT/tmp")" &&
    store_fsck
'

test_done
