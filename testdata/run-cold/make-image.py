#!/usr/bin/env python3
"""make-image.py LAYOUT TAG SEED [bad-diff-id]: an OCI layout with one image
for the cold-run tests: layer 1 is the basic fixture's busybox layer, layer 2
holds cold/first (small), cold/big (2 MiB, incompressible: the blob is big
enough for link-proxy.py to hold it part way) and cold/last. With
bad-diff-id the config names a wrong diff_id for layer 2. Prints the layer 2
digest."""
import hashlib
import importlib.util
import io
import json
import os
import sys
import tarfile

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "fixture_tar", os.path.join(here, "..", "..", "scripts", "fixture-tar.py"))
ft = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ft)


def layer2(seed):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in (("cold/first", f"first {seed}\n".encode()),
                           ("cold/big", ft.RandomStream(seed, 2 << 20).read()),
                           ("cold/last", f"last {seed}\n".encode())):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(data), ft.MTIME, 0o644
            t.addfile(ti, io.BytesIO(data))
    return raw.getvalue()


def main(layout, tag, seed, flag=""):
    base = layout + ".base.tar"
    ft.layer_basic(base)
    with open(base, "rb") as f:
        raw1 = f.read()
    os.unlink(base)
    m = ft.oci_image(layout, tag, [raw1, layer2(seed)], seed)
    if flag == "bad-diff-id":
        cfg_path = ft.blob_path(layout, m["config"]["digest"])
        with open(cfg_path) as f:
            cfg = json.load(f)
        os.unlink(cfg_path)
        cfg["rootfs"]["diff_ids"][1] = "sha256:" + hashlib.sha256(b"not the layer").hexdigest()
        digest, size = ft.put_blob(layout, json.dumps(cfg, sort_keys=True).encode())
        m["config"].update(digest=digest, size=size)
        man, man_size = ft.put_blob(layout, json.dumps(m, sort_keys=True).encode())
        ft.write_json(os.path.join(layout, "index.json"), {
            "schemaVersion": 2,
            "manifests": [{"mediaType": m["mediaType"], "digest": man, "size": man_size,
                           "annotations": {"org.opencontainers.image.ref.name": tag}}]})
    print(m["layers"][1]["digest"])


if __name__ == "__main__":
    main(*sys.argv[1:])
