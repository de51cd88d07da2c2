#!/bin/bash
# chrun-gc over a store of 20,000 blobs (target: under 1 s). Half the blobs are
# referenced by 100 images of 99 layers each, half are garbage.
set -eu
store=$BENCH_DIR/gc-store
export CHRUN_ROOT=$store
rm -rf "$store"
python3 - "$store" <<'PY'
import hashlib, json, os, sys
root = sys.argv[1]
blobs = os.path.join(root, "blobs", "sha256")
os.makedirs(blobs)
for d in ("tmp", "locks", "bundles"):
    os.makedirs(os.path.join(root, d))
open(os.path.join(root, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')

def put(data):
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, h), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + h, "size": len(data)}

manifests = []
n = 0
for img in range(100):
    layers = []
    for l in range(98):
        d = put(b"layer %d %d" % (img, l)); n += 1
        layers.append(dict(d, mediaType="application/vnd.oci.image.layer.v1.tar"))
    cfg = put(json.dumps({"rootfs": {"type": "layers", "diff_ids": [x["digest"] for x in layers]}}).encode()); n += 1
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": dict(cfg, mediaType="application/vnd.oci.image.config.v1+json"),
                    "layers": layers}).encode()
    md = put(m); n += 1
    manifests.append(dict(md, mediaType="application/vnd.oci.image.manifest.v1+json",
                          annotations={"org.opencontainers.image.ref.name": "bench/img:%d" % img}))
while n < 20000:
    put(b"garbage %d" % n); n += 1
json.dump({"schemaVersion": 2, "manifests": manifests}, open(os.path.join(root, "index.json"), "w"))
PY
count=$(ls "$store/blobs/sha256" | wc -l)
t0=$(date +%s.%N)
/usr/bin/time -f %M -o "$BENCH_DIR/gc.rss" chrun-gc -q --json >"$BENCH_DIR/gc.json"
t1=$(date +%s.%N)
secs=$(echo "$t1 - $t0" | bc -l 2>/dev/null || python3 -c "print($t1-$t0)")
printf 'gc: %d blobs, removed %s, chrun-gc %.3f s (target < 1 s), peak RSS %s KB\n' \
    "$count" "$(jq .blobs_removed "$BENCH_DIR/gc.json")" "$secs" "$(cat "$BENCH_DIR/gc.rss")"
rm -rf "$store"
