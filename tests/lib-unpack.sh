# Helpers for the chrun-unpack tests (sourced after lib.sh): craft layer tars
# and put images straight into $CHRUN_ROOT (blobs + index.json), so the
# descriptors are right while the content may be hostile.

# unpack_mktar OUT [gnu|pax|ustar] < SPEC: build a tar from lines
#   TYPE PATH [key=value]...   TYPE: dir file sym hard fifo chr blk raw
#   keys: mode uid gid mtime data (file text) size (zero bytes) target
#         xattr.NAME (PAX/SCHILY xattr); "raw" writes PATH as-is (no checks).
unpack_mktar() {
    python3 -c "$(cat <<'PY'
import sys, tarfile, io, shlex
out = sys.argv[1]
fmt = {"gnu": tarfile.GNU_FORMAT, "ustar": tarfile.USTAR_FORMAT}.get(
    sys.argv[2] if len(sys.argv) > 2 else "pax", tarfile.PAX_FORMAT)
types = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE, "sym": tarfile.SYMTYPE,
         "hard": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE,
         "blk": tarfile.BLKTYPE, "raw": tarfile.REGTYPE}
with tarfile.open(out, "w", format=fmt) as tf:
    for line in sys.stdin:
        words = shlex.split(line)
        if not words or words[0].startswith("#"):
            continue
        kind, name = words[0], words[1]
        kv = dict(w.split("=", 1) for w in words[2:])
        ti = tarfile.TarInfo(name)
        ti.type = types[kind]
        ti.mode = int(kv.get("mode", "755" if kind == "dir" else "644"), 8)
        ti.uid, ti.gid = int(kv.get("uid", 0)), int(kv.get("gid", 0))
        ti.uname = ti.gname = ""
        ti.mtime = int(kv.get("mtime", 1600000000))
        ti.linkname = kv.get("target", "")
        if kind in ("chr", "blk"):
            ti.devmajor, ti.devminor = int(kv.get("major", 1)), int(kv.get("minor", 3))
        pax = {}
        for k, v in kv.items():
            if k.startswith("xattr."):
                pax["SCHILY.xattr." + k[6:]] = v
        if pax:
            ti.pax_headers = pax
        data = None
        if kind in ("file", "raw"):
            if "size" in kv:
                data = b"\0" * int(kv["size"])
            else:
                data = kv.get("data", "").encode()
            ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data) if data is not None else None)
PY
)" "$@"
}

# unpack_mkimage NAME:TAG [key=value]... LAYER...: store an OCI image in
# $CHRUN_ROOT named docker.io/library/NAME:TAG; prints the manifest digest.
#   LAYER: FILE[:gzip|zstd|none] (a tar, compressed here), or
#          blob=FILE:MEDIA(gzip|zstd|none):DIFFID_TAR (bytes stored as given,
#          diff_id taken from DIFFID_TAR, or from FILE when empty)
#   keys: cmd=JSON entrypoint=JSON env=JSON workdir=S user=S diffid.N=DIGEST
unpack_mkimage() {
    python3 - "$@" <<'PY'
import sys, os, json, hashlib, gzip, subprocess
root = os.environ["CHRUN_ROOT"]
name = sys.argv[1]
keys, layers = {}, []
for a in sys.argv[2:]:
    k = a.split("=", 1)[0]
    if "=" in a and k in ("cmd", "entrypoint", "env", "workdir", "user") or k.startswith("diffid."):
        keys[k] = a.split("=", 1)[1]
    else:
        layers.append(a)
for d in ("blobs/sha256", "tmp", "locks", "bundles"):
    os.makedirs(os.path.join(root, d), exist_ok=True)
lay = os.path.join(root, "oci-layout")
if not os.path.exists(lay):
    open(lay, "w").write('{"imageLayoutVersion":"1.0.0"}')
idx_path = os.path.join(root, "index.json")
idx = json.load(open(idx_path)) if os.path.exists(idx_path) else {
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
def put(data):
    d = hashlib.sha256(data).hexdigest()
    p = os.path.join(root, "blobs/sha256", d)
    if not os.path.exists(p):
        open(p, "wb").write(data)
    return "sha256:" + d, len(data)
mt = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
      "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
      "none": "application/vnd.oci.image.layer.v1.tar"}
descs, diff_ids = [], []
for i, spec in enumerate(layers):
    if spec.startswith("blob="):
        f, comp, orig = (spec[5:].split(":") + ["", ""])[:3]
        blob = open(f, "rb").read()
        diff = "sha256:" + hashlib.sha256(open(orig or f, "rb").read()).hexdigest()
    else:
        f, comp = (spec.split(":") + ["gzip"])[:2]
        tar = open(f, "rb").read()
        diff = "sha256:" + hashlib.sha256(tar).hexdigest()
        if comp == "gzip":
            blob = gzip.compress(tar, 6, mtime=0)
        elif comp == "zstd":
            blob = subprocess.run(["zstd", "-q", "-c"], input=tar, check=True,
                                  stdout=subprocess.PIPE).stdout
        else:
            blob = tar
    diff = keys.get("diffid.%d" % i, diff)
    d, n = put(blob)
    descs.append({"mediaType": mt[comp], "digest": d, "size": n})
    diff_ids.append(diff)
cfg = {}
for k, jk in (("cmd", "Cmd"), ("entrypoint", "Entrypoint"), ("env", "Env")):
    if k in keys:
        cfg[jk] = json.loads(keys[k])
if "workdir" in keys: cfg["WorkingDir"] = keys["workdir"]
if "user" in keys: cfg["User"] = keys["user"]
config = {"architecture": "amd64", "os": "linux", "config": cfg,
          "rootfs": {"type": "layers", "diff_ids": diff_ids}}
cd, cn = put(json.dumps(config).encode())
man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
       "layers": descs}
md, mn = put(json.dumps(man).encode())
ref = "docker.io/library/" + name
idx["manifests"] = [m for m in idx["manifests"]
                    if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != ref]
idx["manifests"].append({"mediaType": man["mediaType"], "digest": md, "size": mn,
                         "annotations": {"org.opencontainers.image.ref.name": ref}})
json.dump(idx, open(idx_path, "w"))
print(md)
PY
}

# unpack_hostile_check NAME: chrun-unpack of image NAME fails with exit 1 and
# one error line, leaves no bundle nor temporary directory, and changes
# neither the store nor the canary directory next to the trash directory.
unpack_hostile_check() {
    local name=$1 pattern=${2:-}
    tree_snapshot "$CANARY" >canary.before &&
    store_snapshot >store.before &&
    test_expect_code 1 chrun-unpack "$name" out/b 2>err &&
    test_one_error_line chrun-unpack err "$pattern" &&
    ! test -e out/b &&
    test -z "$(ls -A out)" &&
    tree_snapshot "$CANARY" >canary.after &&
    store_snapshot >store.after &&
    test_cmp canary.before canary.after &&
    test_cmp store.before store.after
}
