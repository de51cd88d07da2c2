# Nested image indexes that share their sub-indexes (sourced after lib.sh).
#
# fanout_layout DIR FANOUT LEVELS [REF]: add to the OCI layout DIR (made if
# missing) one index T listing FANOUT indexes; each index of a level lists all
# FANOUT indexes of the next level (they differ only by an annotation), LEVELS
# levels deep, and each index of the last level lists one image manifest. T is
# recorded in DIR/index.json (named REF when given). Few blobs, but
# FANOUT^LEVELS paths from T to the manifest. Prints T's digest.
fanout_layout() {
    python3 - "$@" <<'PY'
import hashlib, io, json, os, sys, tarfile
root, fan, levels = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ref = sys.argv[4] if len(sys.argv) > 4 else None
blobs = os.path.join(root, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
IDX = "application/vnd.oci.image.index.v1+json"
MAN = "application/vnd.oci.image.manifest.v1+json"
def put(mt, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return {"mediaType": mt, "digest": "sha256:" + d, "size": len(data)}
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    ti = tarfile.TarInfo("hello"); ti.size = 3; ti.mtime = 1600000000
    t.addfile(ti, io.BytesIO(b"hi\n"))
layer = put("application/vnd.oci.image.layer.v1.tar", buf.getvalue())
config = put("application/vnd.oci.image.config.v1+json", json.dumps(
    {"architecture": "amd64", "os": "linux",
     "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
below = [put(MAN, json.dumps({"schemaVersion": 2, "mediaType": MAN, "config": config,
                             "layers": [layer]}).encode())]
below[0]["platform"] = {"architecture": "amd64", "os": "linux"}
for level in range(levels):
    below = [put(IDX, json.dumps({"schemaVersion": 2, "mediaType": IDX, "manifests": below,
                                  "annotations": {"fanout": "%d.%d" % (level, i)}}).encode())
             for i in range(fan)]
top = put(IDX, json.dumps({"schemaVersion": 2, "mediaType": IDX, "manifests": below}).encode())
if ref:
    top["annotations"] = {"org.opencontainers.image.ref.name": ref}
path = os.path.join(root, "index.json")
idx = json.load(open(path)) if os.path.exists(path) else \
    {"schemaVersion": 2, "mediaType": IDX, "manifests": []}
idx["manifests"].append(top)
json.dump(idx, open(path, "w"))
lay = os.path.join(root, "oci-layout")
if not os.path.exists(lay):
    open(lay, "w").write('{"imageLayoutVersion":"1.0.0"}')
print(top["digest"])
PY
}
