#!/usr/bin/python3
"""Independent checker of a cosign simple-signing artifact (not chrun code).

Usage: cosign-check.py BLOBDIR SIG_MANIFEST_DIGEST SUBJECT_DIGEST REPO [K=V...]

Checks the artifact as cosign's specification describes it: an OCI image
manifest whose config lists every layer as a diff_id, each layer a
simple-signing payload whose bytes hash to its descriptor, with a base64
signature annotation, and a payload whose critical section names SUBJECT and
REPO, and whose newest (last) payload's optional section carries every K=V. Prints, per layer,
"PAYLOAD_PATH SIGNATURE_FILE" (the signature decoded next to the payload) so
that the caller can check it with openssl; exits 1 on the first problem.
"""
import base64
import hashlib
import json
import os
import sys

MT_PAYLOAD = "application/vnd.dev.cosign.simplesigning.v1+json"
ANN = "dev.cosignproject.cosign/signature"


def blob(blobdir, digest):
    assert digest.startswith("sha256:"), digest
    path = os.path.join(blobdir, digest[7:])
    data = open(path, "rb").read()
    if hashlib.sha256(data).hexdigest() != digest[7:]:
        sys.exit("blob %s does not hash to its name" % digest)
    return path, data


def main():
    blobdir, sig, subject, repo = sys.argv[1:5]
    want = dict(a.split("=", 1) for a in sys.argv[5:])
    _, raw = blob(blobdir, sig)
    m = json.loads(raw)
    if m.get("schemaVersion") != 2 or m.get("mediaType") != "application/vnd.oci.image.manifest.v1+json":
        sys.exit("not an OCI image manifest")
    cfg_desc = m["config"]
    _, cfg_raw = blob(blobdir, cfg_desc["digest"])
    if len(cfg_raw) != cfg_desc["size"]:
        sys.exit("config size mismatch")
    cfg = json.loads(cfg_raw)
    layers = m["layers"]
    if cfg["rootfs"]["diff_ids"] != [l["digest"] for l in layers]:
        sys.exit("config diff_ids do not list the layers")
    for i, l in enumerate(layers):
        if l["mediaType"] != MT_PAYLOAD:
            sys.exit("layer %d: media type %s" % (i, l["mediaType"]))
        path, data = blob(blobdir, l["digest"])
        if len(data) != l["size"]:
            sys.exit("layer %d: size mismatch" % i)
        p = json.loads(data)
        c = p["critical"]
        if c["type"] != "cosign container image signature":
            sys.exit("layer %d: type %r" % (i, c["type"]))
        if c["image"]["docker-manifest-digest"] != subject:
            sys.exit("layer %d: signs %s" % (i, c["image"]["docker-manifest-digest"]))
        if c["identity"]["docker-reference"] != repo:
            sys.exit("layer %d: identity %s" % (i, c["identity"]["docker-reference"]))
        opt = p.get("optional") or {}
        for k, v in (want.items() if i == len(layers) - 1 else ()):
            if opt.get(k) != v:
                sys.exit("layer %d: optional %s=%r" % (i, k, opt.get(k)))
        sigfile = "sig-%d.bin" % i
        with open(sigfile, "wb") as f:
            f.write(base64.b64decode(l["annotations"][ANN], validate=True))
        print(path, sigfile)


main()
