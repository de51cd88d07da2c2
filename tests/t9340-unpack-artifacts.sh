#!/bin/bash
test_description='artifacts (config media type not an image config) are stored and saved, but chrun-unpack, chrun-export and chrun run refuse them: exit 1, one named error, nothing created'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-unpack.sh

CANARY=$TRASH_DIRECTORY/canary
mkdir -p "$CANARY" out && echo precious >"$CANARY/file"

# mkartifact NAME:TAG CONFIG-MEDIA-TYPE LAYER-MEDIA-TYPE LAYER-FILE [ARTIFACT-TYPE]:
# store an OCI manifest whose config has CONFIG-MEDIA-TYPE, named
# docker.io/library/NAME:TAG; prints its digest.
mkartifact() {
    python3 - "$@" <<-\PY
	import hashlib, json, os, sys
	name, cfg_mt, layer_mt, layer_file = sys.argv[1:5]
	artifact_type = sys.argv[5] if len(sys.argv) > 5 else ""
	root = os.environ["CHRUN_ROOT"]
	def put(data):
	    d = hashlib.sha256(data).hexdigest()
	    open(os.path.join(root, "blobs/sha256", d), "wb").write(data)
	    return {"digest": "sha256:" + d, "size": len(data)}
	layer = open(layer_file, "rb").read()
	cfg = b"{}" if cfg_mt == "application/vnd.oci.empty.v1+json" else json.dumps({
	    "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
	    "rootfs": {"type": "layers",
	               "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
	man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
	       "config": dict(mediaType=cfg_mt, **put(cfg)),
	       "layers": [dict(mediaType=layer_mt, **put(layer))]}
	if artifact_type:
	    man["artifactType"] = artifact_type
	data = json.dumps(man).encode()
	m = put(data)
	idx_path = os.path.join(root, "index.json")
	idx = json.load(open(idx_path))
	idx["manifests"].append({"mediaType": man["mediaType"], **m, "annotations": {
	    "org.opencontainers.image.ref.name": "docker.io/library/" + name}})
	json.dump(idx, open(idx_path, "w"))
	print(m["digest"])
	PY
}

test_expect_success 'setup: an image, an evil-config artifact with a tar layer, a cosign-like signature' '
    printf "dir bin\nfile bin/sh data=x mode=755\n" | unpack_mktar layer.tar &&
    unpack_mkimage good:1 layer.tar:none >/dev/null &&
    mkartifact evil:1 application/vnd.evil.config.v1+json \
        application/vnd.oci.image.layer.v1.tar layer.tar >evil.digest &&
    printf "{\"critical\":{\"image\":{\"docker-manifest-digest\":\"%s\"}}}" \
        "$(cat evil.digest)" >payload.json &&
    mkartifact sig:1 application/vnd.oci.empty.v1+json \
        application/vnd.dev.cosign.simplesigning.v1+json payload.json \
        application/vnd.dev.sigstore.bundle.v0.3+json >sig.digest
'

for img in evil:1 sig:1; do
    case $img in
    evil:1) mt='application/vnd\.evil\.config\.v1\+json' ;;
    sig:1) mt='application/vnd\.oci\.empty\.v1\+json' ;;
    esac
    test_expect_success "chrun-unpack refuses $img" "
        unpack_hostile_check $img \"^chrun-unpack: error: .*'$img': an artifact \\(config media type $mt\\), not a runnable image\$\"
    "
    test_expect_success "chrun-unpack refuses $img by digest, into the default bundle place" "
        store_snapshot >store.before &&
        test_expect_code 1 chrun-unpack \$(cat ${img%:1}.digest) 2>err &&
        test_one_error_line chrun-unpack err 'an artifact \\(config media type $mt\\), not a runnable image' &&
        store_snapshot >store.after &&
        test_cmp store.before store.after &&
        test -z \"\$(ls -A \"\$CHRUN_ROOT/bundles\")\"
    "
    test_expect_success "chrun-export refuses $img" "
        store_snapshot >store.before &&
        test_expect_code 1 chrun-export -o out/exp.tar $img 2>err &&
        test_one_error_line chrun-export err \"'$img': an artifact \\(config media type $mt\\), not a runnable image\" &&
        ! test -e out/exp.tar &&
        store_snapshot >store.after &&
        test_cmp store.before store.after
    "
    test_expect_success "chrun run refuses $img" "
        store_snapshot >store.before &&
        test_expect_code 1 chrun run $img /bin/sh -c 'echo ran >\"\$TRASH_DIRECTORY/ran\"' 2>err &&
        grep -E \"error: .*'$img': an artifact \\(config media type $mt\\), not a runnable image\" err &&
        ! test -e ran &&
        store_snapshot >store.after &&
        test_cmp store.before store.after &&
        test -z \"\$(ls -A \"\$CHRUN_ROOT/bundles\")\"
    "
done

test_expect_success 'artifacts stay storable: inspect, tag, save and load them' '
    chrun-inspect evil:1 >inspect.json &&
    test "$(jq -r .Manifest.config.mediaType inspect.json)" = application/vnd.evil.config.v1+json &&
    chrun-tag evil:1 evil:2 &&
    chrun-save -o arts.tar evil:1 sig:1 &&
    rm -rf "$CHRUN_ROOT" &&
    chrun-load arts.tar >loaded &&
    test "$(sed -n 1p loaded)" = "$(cat evil.digest)" &&
    test "$(sed -n 2p loaded)" = "$(cat sig.digest)"
'

test_expect_success 'an image config still unpacks and exports' '
    chrun-load arts.tar >/dev/null &&
    unpack_mkimage good:1 layer.tar:none >/dev/null &&
    chrun-unpack good:1 out/good >/dev/null &&
    test -f out/good/rootfs/bin/sh &&
    chrun-export good:1 >good.tar &&
    tar -tf good.tar | grep -q "bin/sh"
'

test_done
