#!/usr/bin/env python3
"""Hand-crafted tar layers and archives for chrun's test fixtures.

umoci and skopeo make the ordinary parts of the fixture images; this helper
makes what they cannot (or not reproducibly): layers with exact owners, modes,
xattrs, FIFOs, hardlinks across layers and opaque whiteouts, docker archives
holding several images, large incompressible images for benches, and hostile
archives for the bad-input tests.  Everything written here is deterministic:
fixed mtimes, no user/group names, sorted JSON keys where we write JSON.

Usage: fixture-tar.py COMMAND ARGS...  (see main() for the commands)
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

MTIME = 1700000000  # every entry gets this mtime unless a test needs another
OLD_MTIME = 1234567890  # the "file with mtime set" entry
FX = "usr/share/fixture"  # where the tricky content lives inside the images


class LayerWriter:
    """Writes a PAX tar layer entry by entry with fixed metadata."""

    def __init__(self, path):
        self.tar = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)
        self.dirs = set()

    def _info(self, name, kind, mode, uid=0, gid=0, mtime=MTIME):
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.uname = ti.gname = ""
        ti.mtime = mtime
        return ti

    def parents(self, name):
        """Emit directory entries for every missing parent of name."""
        parts = name.rstrip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.dir("/".join(parts[:i]))

    def dir(self, name, mode=0o755, uid=0, gid=0, **kw):
        if name in self.dirs:
            return
        self.parents(name)
        self.dirs.add(name)
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode, uid, gid, **kw))

    def file(self, name, data=b"", mode=0o644, uid=0, gid=0, xattrs=None, **kw):
        if isinstance(data, str):
            data = data.encode()
        self.parents(name)
        ti = self._info(name, tarfile.REGTYPE, mode, uid, gid, **kw)
        ti.size = len(data)
        if xattrs:
            ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
        self.tar.addfile(ti, io.BytesIO(data))

    def stream(self, name, size, fileobj, mode=0o644):
        self.parents(name)
        ti = self._info(name, tarfile.REGTYPE, mode)
        ti.size = size
        self.tar.addfile(ti, fileobj)

    def symlink(self, name, target, **kw):
        self.parents(name)
        ti = self._info(name, tarfile.SYMTYPE, 0o777, **kw)
        ti.linkname = target
        self.tar.addfile(ti)

    def hardlink(self, name, target, mode=0o644, uid=0, gid=0):
        self.parents(name)
        ti = self._info(name, tarfile.LNKTYPE, mode, uid, gid)
        ti.linkname = target
        self.tar.addfile(ti)

    def fifo(self, name, mode=0o644):
        self.parents(name)
        self.tar.addfile(self._info(name, tarfile.FIFOTYPE, mode))

    def close(self):
        self.tar.close()


# ---------------------------------------------------------------- layers

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "fixture:x:1000:1000:fixture user:/home/fixture:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\nfixture:x:1000:\nnogroup:x:65534:\n"


def layer_basic(out, busybox="/bin/busybox"):
    """Layer 1: static busybox as /bin/busybox, one symlink per applet."""
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    w = LayerWriter(out)
    for d, mode in (("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("proc", 0o555),
                    ("root", 0o700), ("srv", 0o755), ("sys", 0o555), ("tmp", 0o1777)):
        w.dir(d, mode)
    with open(busybox, "rb") as f:
        w.file("bin/busybox", f.read(), mode=0o755)
    for a in sorted(set(applets) - {"busybox"}):
        w.symlink("bin/" + a, "busybox")
    w.file("etc/passwd", PASSWD)
    w.file("etc/group", GROUP)
    w.file("srv/README", "fixture working directory\n")
    w.close()


def long_path():
    """A path over 255 bytes made of components of at most 100 bytes."""
    return f"{FX}/deep/" + "/".join(c * 100 for c in "def") + "/file.txt"


LONG_NAME = FX + "/" + "n" * 150 + ".txt"


def layer_tricky(out):
    """Layer 2: owners, modes, xattrs, links, special files, long names."""
    w = LayerWriter(out)
    w.dir("usr/lib")
    w.symlink("lib", "usr/lib")  # /lib -> usr/lib, used by layer 4's lib/...
    w.dir("home/fixture", 0o750, 1000, 1000)
    w.file("home/fixture/.profile", "export FIXTURE=1\n", 0o644, 1000, 1000)
    w.dir(FX)
    w.file(f"{FX}/regular.txt", "hello\n")
    w.file(f"{FX}/modified.txt", "version 1\n")
    w.file(f"{FX}/empty")
    w.file(f"{FX}/old-mtime", "old\n", mtime=OLD_MTIME)
    w.file(f"{FX}/setuid", "#!/bin/sh\necho setuid\n", 0o4755)
    w.file(f"{FX}/setgid", "#!/bin/sh\necho setgid\n", 0o2755)
    w.dir(f"{FX}/sticky", 0o1777)
    w.dir(f"{FX}/setgid-dir", 0o2775, 0, 1000)
    w.file(f"{FX}/owned-1000", "owned by 1000\n", 0o640, 1000, 1000)
    w.file(f"{FX}/owned-65534", "owned by nobody\n", 0o600, 65534, 65534)
    w.file(f"{FX}/mixed-owner", "uid 1000 gid 65534\n", 0o664, 1000, 65534)
    w.file(f"{FX}/xattr.txt", "has xattrs\n",
           xattrs={"user.fixture": "hello", "user.second": "world"})
    w.symlink(f"{FX}/sym-relative", "regular.txt")
    w.symlink(f"{FX}/sym-absolute", f"/{FX}/regular.txt")
    w.symlink(f"{FX}/sym-dangling", "does-not-exist")
    w.symlink(f"{FX}/sym-dir", "sticky")
    w.symlink(f"{FX}/sym-owned", "regular.txt", uid=1000, gid=1000)
    w.file(f"{FX}/hardlink-a", "linked within one layer\n")
    w.hardlink(f"{FX}/hardlink-b", f"{FX}/hardlink-a")
    w.hardlink(f"{FX}/busybox-link", "bin/busybox", 0o755)  # to layer 1
    w.file(f"{FX}/hl-source", "linked across layers\n")
    w.file(LONG_NAME, "long name\n")
    w.file(long_path(), "long path\n")
    w.fifo(f"{FX}/fifo")
    # Removed by layer 3 (umoci's whiteouts) or layer 4 (hand-made whiteouts).
    w.file(f"{FX}/doomed.txt", "deleted in layer 3\n")
    w.file(f"{FX}/doomed-dir/a", "a\n")
    w.file(f"{FX}/doomed-dir/b", "b\n")
    w.file(f"{FX}/doomed-by-hand", "deleted in layer 4\n")
    w.file(f"{FX}/recreate/old1", "old 1\n")
    w.file(f"{FX}/recreate/old2", "old 2\n")
    w.file(f"{FX}/opaque/old-a", "old a\n")
    w.file(f"{FX}/opaque/old-b", "old b\n")
    w.file(f"{FX}/opaque/sub/old-c", "old c\n")
    w.close()


def layer_opaque(out):
    """Layer 4: opaque dir, hardlink to layer 2, path through /lib symlink."""
    w = LayerWriter(out)
    w.dirs.update(["usr", "usr/share", FX])  # exist below; emit no entries
    w.dir(f"{FX}/opaque")
    w.file(f"{FX}/opaque/.wh..wh..opq", "")  # before the new content
    w.file(f"{FX}/opaque/new.txt", "new after opaque\n")
    w.dir(f"{FX}/recreate", 0o700)  # removed by layer 3, back with new content
    w.file(f"{FX}/recreate/new1", "recreated\n")
    w.file(f"{FX}/.wh.doomed-by-hand", "")
    w.hardlink(f"{FX}/hl-cross", f"{FX}/hl-source")
    w.dirs.add("lib")  # lib is layer 2's symlink to usr/lib: no entry for it
    w.file("lib/via-symlink.txt", "written through the /lib -> usr/lib symlink\n")
    w.close()


# ---------------------------------------------------------- docker archives

def read_members(path):
    """All members of a tar as a list of (TarInfo, bytes or None)."""
    out = []
    with tarfile.open(path) as t:
        for m in t.getmembers():
            data = t.extractfile(m).read() if m.isreg() else None
            out.append((m, data))
    return out


def write_members(path, members):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for m, data in members:
            if data is not None:
                m.size = len(data)
            t.addfile(m, io.BytesIO(data) if data is not None else None)


def merge_docker(out, inputs):
    """One docker-archive holding every image of the inputs; shared members
    (the same layer in two images) are stored once, as `docker save` does."""
    members, seen, manifest, repos = [], {}, [], {}
    for path in inputs:
        for m, data in read_members(path):
            if m.name == "manifest.json":
                manifest += json.loads(data)
            elif m.name == "repositories":
                for k, v in json.loads(data).items():
                    repos.setdefault(k, {}).update(v)
            elif m.name in seen:
                if seen[m.name] != (m.type, m.linkname, data):
                    sys.exit(f"merge: {m.name} differs between inputs")
            else:
                seen[m.name] = (m.type, m.linkname, data)
                members.append((m, data))
    for name, obj in (("manifest.json", manifest), ("repositories", repos)):
        ti = tarfile.TarInfo(name)
        ti.mtime = 0
        members.append((ti, json.dumps(obj, sort_keys=True).encode()))
    write_members(out, members)


def big_docker(out, size_mb, base_layer, seed="chrun-bench"):
    """A docker-archive: base_layer plus 4 layers of incompressible data
    totalling size_mb MiB (bytes from a SHA-256 counter stream: fast enough,
    reproducible, and incompressible)."""
    layers = [base_layer]
    tmpdir = out + ".d"
    os.makedirs(tmpdir, exist_ok=True)
    per_layer = max(1, size_mb * 1024 * 1024 // 4)
    for n in range(4):
        path = f"{tmpdir}/layer{n}.tar"
        w = LayerWriter(path)
        remaining, fileno = per_layer, 0
        while remaining > 0:
            size = min(remaining, 64 * 1024 * 1024)
            w.stream(f"data/layer{n}/file{fileno}", size,
                     RandomStream(f"{seed}-{n}-{fileno}", size))
            remaining -= size
            fileno += 1
        w.close()
        layers.append(path)
    write_docker_archive(out, layers, f"fixture/big:{size_mb}m")
    shutil.rmtree(tmpdir)


class RandomStream:
    """File-like reader of `size` pseudo-random bytes: SHAKE-256 of a seed
    and a block counter, 1 MiB per block (reproducible, incompressible)."""

    def __init__(self, seed, size):
        self.key = hashlib.sha256(seed.encode()).digest()
        self.left = size
        self.counter = 0
        self.buf = b""

    def read(self, n=-1):
        if n < 0 or n > self.left:
            n = self.left
        while len(self.buf) < n:
            self.buf += hashlib.shake_256(self.key + self.counter.to_bytes(8, "big")).digest(1 << 20)
            self.counter += 1
        data, self.buf = self.buf[:n], self.buf[n:]
        self.left -= len(data)
        return data


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_docker_archive(out, layer_paths, tag, config_extra=None):
    """A `docker save` style archive (uncompressed layers named by diff_id)."""
    diff_ids = [sha256_file(p) for p in layer_paths]
    config = {
        "architecture": "amd64", "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": {"Cmd": ["/bin/sh", "-c", "echo hello from fixture"],
                   "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           "FOO=bar"], "WorkingDir": "/srv"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d in diff_ids]},
    }
    config.update(config_extra or {})
    cfg = json.dumps(config, sort_keys=True).encode()
    cfg_hex = hashlib.sha256(cfg).hexdigest()
    manifest = [{"Config": cfg_hex + ".json", "RepoTags": [tag],
                 "Layers": [d + ".tar" for d in diff_ids]}]
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        for path, d in zip(layer_paths, diff_ids):
            t.add(path, d + ".tar", filter=_plain_member)
        _add_bytes(t, cfg_hex + ".json", cfg)
        _add_bytes(t, "manifest.json", json.dumps(manifest).encode())


def _plain_member(ti):
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.mtime = MTIME
    ti.mode = 0o644
    return ti


def _add_bytes(t, name, data, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), mode, MTIME
    t.addfile(ti, io.BytesIO(data))


def recompress_zstd(layout, src_tag, dst_tag):
    """Tag dst_tag = src_tag with every layer re-encoded as zstd (skopeo 1.9
    keeps gzip layers as they are when copying into an oci: layout, even with
    --dest-compress-format zstd).  Config and diff_ids are unchanged."""
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    ref = "org.opencontainers.image.ref.name"
    src = [d for d in index["manifests"] if d.get("annotations", {}).get(ref) == src_tag][0]
    manifest = json.loads(read_blob(layout, src["digest"]))
    for layer in manifest["layers"]:
        with open(blob_path(layout, layer["digest"]), "rb") as f:
            raw = gzip.decompress(f.read())
        data = subprocess.run(["zstd", "-q", "-3", "-c"], input=raw, check=True,
                              capture_output=True).stdout
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(blob_path(layout, digest), "wb") as f:
            f.write(data)
        layer.update(mediaType="application/vnd.oci.image.layer.v1.tar+zstd",
                     digest=digest, size=len(data))
    data = json.dumps(manifest).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob_path(layout, digest), "wb") as f:
        f.write(data)
    index["manifests"] = [d for d in index["manifests"]
                          if d.get("annotations", {}).get(ref) != dst_tag]
    index["manifests"].append({"mediaType": src["mediaType"], "digest": digest,
                               "size": len(data), "annotations": {ref: dst_tag}})
    write_json(os.path.join(layout, "index.json"), index)


def put_blob(layout, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob_path(layout, digest), "wb") as f:
        f.write(data)
    return digest, len(data)


def unique_image(layout, tag, seed):
    """A one-layer OCI layout whose layer holds `seed`, so that no other
    fixture shares its blobs. Prints the layer digest."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    write_json(os.path.join(layout, "oci-layout"), {"imageLayoutVersion": "1.0.0"})
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        data = (f"unique fixture layer: {seed}\n" * 200).encode()
        ti = tarfile.TarInfo("unique.txt")
        ti.size, ti.mtime = len(data), MTIME
        t.addfile(ti, io.BytesIO(data))
    raw = raw.getvalue()
    layer, layer_size = put_blob(layout, gzip.compress(raw, mtime=0))
    config = {"architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
              "config": {"Cmd": ["/bin/sh"]},
              "rootfs": {"type": "layers",
                         "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}
    cfg, cfg_size = put_blob(layout, json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": cfg, "size": cfg_size},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": layer, "size": layer_size}]}
    man, man_size = put_blob(layout, json.dumps(manifest, sort_keys=True).encode())
    write_json(os.path.join(layout, "index.json"), {
        "schemaVersion": 2,
        "manifests": [{"mediaType": manifest["mediaType"], "digest": man, "size": man_size,
                       "annotations": {"org.opencontainers.image.ref.name": tag}}]})
    print(layer)


def oci_image(layout, tag, raw_layers, seed=""):
    """A fresh OCI layout with one image made of the given uncompressed layer
    tars (bytes), gzip-compressed without timestamps. Returns the manifest."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    write_json(os.path.join(layout, "oci-layout"), {"imageLayoutVersion": "1.0.0"})
    layers, diff_ids = [], []
    for raw in raw_layers:
        digest, size = put_blob(layout, gzip.compress(raw, mtime=0))
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": digest, "size": size})
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    config = {"architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
              "config": {"Cmd": ["/bin/sh"], "Labels": {"org.example.fixture": seed}},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    cfg, cfg_size = put_blob(layout, json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": cfg, "size": cfg_size},
                "layers": layers}
    man, man_size = put_blob(layout, json.dumps(manifest, sort_keys=True).encode())
    write_json(os.path.join(layout, "index.json"), {
        "schemaVersion": 2,
        "manifests": [{"mediaType": manifest["mediaType"], "digest": man, "size": man_size,
                       "annotations": {"org.opencontainers.image.ref.name": tag}}]})
    return manifest


class RawLayer(LayerWriter):
    """A layer written to memory; no implicit parent directory entries, so
    hostile names go into the tar exactly as given."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.dirs = set()

    def parents(self, name):
        pass

    def device(self, name, major, minor):
        ti = self._info(name, tarfile.CHRTYPE, 0o666)
        ti.devmajor, ti.devminor = major, minor
        self.tar.addfile(ti)

    def bytes(self):
        self.tar.close()
        return self.buf.getvalue()


UP = "../" * 24  # more than enough to climb from any rootfs to /


def hostile_layers(kind, target):
    """Layers for an image that attacks the host path `target` (absolute).
    A safe unpacker refuses the image or keeps everything inside rootfs;
    either way `target` on the host is neither created, changed nor removed."""
    rel = target.lstrip("/")
    parent, base = os.path.dirname(rel), os.path.basename(rel)
    one, two = RawLayer(), RawLayer()
    if kind == "abs-path":
        one.file("/" + rel, "written through an absolute path\n")
    elif kind == "dotdot-path":
        one.file(UP + rel, "written through ../\n")
    elif kind == "dotdot-inner":
        one.dir("etc")
        one.file("etc/" + UP + rel, "written through etc/../\n")
    elif kind == "symlink-escape":  # relative symlink, file in the next layer
        one.symlink("escape", UP + parent)
        two.file("escape/" + base, "written through a relative symlink\n")
    elif kind == "symlink-escape-abs":  # absolute symlink, next layer
        one.symlink("escape", "/" + parent)
        two.file("escape/" + base, "written through an absolute symlink\n")
    elif kind == "symlink-escape-same-layer":
        one.symlink("escape", UP + parent)
        one.file("escape/" + base, "written through a symlink of this layer\n")
    elif kind == "symlink-file-overwrite":  # symlink to the file, then the file
        one.symlink("escape", UP + rel)
        two.file("escape", "written over a symlink\n")
    elif kind == "hardlink-escape":  # link to the host file, then write to it
        one.hardlink("link", UP + rel)
        one.file("link", "written through a hardlink\n")
    elif kind == "hardlink-abs":
        one.hardlink("link", "/" + rel)
        one.file("link", "written through a hardlink\n")
    elif kind == "hardlink-via-symlink":
        one.symlink("escape", UP + parent)
        two.hardlink("link", "escape/" + base)
        two.file("link", "written through a hardlink\n")
    elif kind == "whiteout-escape":  # tries to delete the host file
        one.file(UP + parent + "/.wh." + base)
    elif kind == "whiteout-dotdot":  # a whiteout naming ".." itself
        one.dir("srv")
        one.file("srv/.wh..", "")
        one.file(".wh..", "")
    elif kind == "whiteout-via-symlink":
        one.symlink("escape", UP + parent)
        two.file("escape/.wh." + base)
    elif kind == "device":  # refused when unprivileged
        one.dir("dev")
        one.device("dev/evil-null", 1, 3)
    else:
        sys.exit(f"fixture-tar.py: unknown hostile image kind {kind!r}")
    layers = [one.bytes()]
    if two.buf.tell() or two.tar.offset:
        layers.append(two.bytes())
    return layers


def hostile_image(kind, target, out):
    """OUT: an OCI layout dir (tag `evil`), or an oci-archive if it ends
    in .tar. Prints the manifest's layer digests, one per line."""
    if not target.startswith("/"):
        sys.exit("hostile-image: TARGET must be absolute")
    tmp = out + ".tmp-layout"
    manifest = oci_image(tmp, "evil", hostile_layers(kind, target), seed=kind)
    finish_layout(tmp, out)
    for layer in manifest["layers"]:
        print(layer["digest"])


def flip_file_byte(path):
    """Change one byte in the middle of path, in place, keeping its size."""
    with open(path, "r+b") as f:
        f.seek(0, 2)
        mid = f.tell() // 2
        f.seek(mid)
        b = f.read(1)
        f.seek(mid)
        f.write(bytes([b[0] ^ 0xFF]))


# ------------------------------------------------------------ hostile input

def docker_members(fixtures):
    return read_members(os.path.join(fixtures, "basic.docker.tar"))


def docker_manifest(members):
    for m, data in members:
        if m.name == "manifest.json":
            return json.loads(data)
    sys.exit("no manifest.json")


def replace_member(members, name, data):
    return [(m, data if m.name == name else d) for m, d in members]


def layer_member(members):
    """Name of the first layer file that manifest.json points to."""
    return docker_manifest(members)[0]["Layers"][0]


def resolve_member(members, name):
    """Follow in-archive symlinks (skopeo's docker-archive uses them)."""
    byname = {m.name: m for m, _ in members}
    for _ in range(8):
        m = byname[name]
        if not m.issym():
            return name
        name = os.path.normpath(os.path.join(os.path.dirname(name), m.linkname))
    sys.exit("symlink loop")


def flip_byte(data, offset):
    b = bytearray(data)
    b[offset] ^= 0xFF
    return bytes(b)


def docker_with_manifest(fixtures, out, manifest_bytes):
    members = replace_member(docker_members(fixtures), "manifest.json", manifest_bytes)
    write_members(out, members)


def oci_layout_copy(fixtures, out_dir, tag="basic"):
    """A single-image OCI layout (index.json names only `tag`)."""
    src = os.path.join(fixtures, "oci-layout")
    with open(os.path.join(src, "index.json")) as f:
        index = json.load(f)
    desc = [d for d in index["manifests"]
            if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][0]
    os.makedirs(os.path.join(out_dir, "blobs", "sha256"))
    shutil.copy(os.path.join(src, "oci-layout"), out_dir)
    manifest = json.loads(read_blob(src, desc["digest"]))
    for d in [desc, manifest["config"]] + manifest["layers"]:
        shutil.copy(blob_path(src, d["digest"]), blob_path(out_dir, d["digest"]))
    index["manifests"] = [desc]
    write_json(os.path.join(out_dir, "index.json"), index)
    return index, manifest


def blob_path(layout, digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(layout, "blobs", algo, hexd)


def read_blob(layout, digest):
    with open(blob_path(layout, digest), "rb") as f:
        return f.read()


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)


def put_manifest(layout, index, manifest):
    """Store a changed manifest under its correct digest and point index at it."""
    data = json.dumps(manifest).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob_path(layout, digest), "wb") as f:
        f.write(data)
    index["manifests"][0].update(digest=digest, size=len(data))
    write_json(os.path.join(layout, "index.json"), index)


def finish_layout(layout, out):
    """OUT ending in .tar gets an oci-archive of the layout, else the dir."""
    if out.endswith(".tar"):
        with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
            for name in sorted(os.listdir(layout)):
                t.add(os.path.join(layout, name), name, filter=_archive_member)
        shutil.rmtree(layout)
    elif layout != out:
        os.rename(layout, out)


def _archive_member(ti):
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.mtime = MTIME
    return ti


def deep_json(depth):
    return ("[" * depth + "]" * depth).encode()


def huge_json(size):
    """Valid JSON of about `size` bytes: a manifest list with a giant tag list."""
    tags = [f"fixture/huge:{i:08d}" for i in range(size // 24)]
    return json.dumps([{"Config": "x.json", "RepoTags": tags, "Layers": []}]).encode()


def hostile(kind, fixtures, out):
    docker_tar = os.path.join(fixtures, "basic.docker.tar")
    if kind == "truncated":
        with open(docker_tar, "rb") as f:
            data = f.read()
        with open(out, "wb") as f:
            f.write(data[: len(data) // 2])
    elif kind in ("truncated-gzip", "truncated-zstd"):
        ext = "gz" if kind.endswith("gzip") else "zst"
        with open(f"{docker_tar}.{ext}", "rb") as f:
            data = f.read()
        with open(out, "wb") as f:
            f.write(data[: len(data) // 2])
    elif kind in ("corrupt-gzip", "corrupt-zstd"):
        ext = "gz" if kind.endswith("gzip") else "zst"
        with open(f"{docker_tar}.{ext}", "rb") as f:
            data = bytearray(f.read())
        mid = len(data) // 2
        for i in range(mid, mid + 16):
            data[i] ^= 0x5A
        with open(out, "wb") as f:
            f.write(data)
    elif kind == "blob-mismatch":
        # Same size, one byte changed inside busybox: only diff_id catches it.
        members = docker_members(fixtures)
        name = resolve_member(members, layer_member(members))
        data = dict((m.name, d) for m, d in members)[name]
        write_members(out, replace_member(members, name, flip_byte(data, len(data) // 2)))
    elif kind in ("blob-mismatch-oci", "size-mismatch", "missing-blob",
                  "bad-digest", "bad-digest-algo", "bad-digest-dotdot",
                  "bad-digest-layer", "not-json-oci", "deep-json-oci",
                  "huge-json-oci", "layer-not-gzip"):
        tmp = out + ".tmp-layout"
        index, manifest = oci_layout_copy(fixtures, tmp)
        layer = manifest["layers"][0]
        if kind == "blob-mismatch-oci":
            path = blob_path(tmp, layer["digest"])
            with open(path, "rb") as f:
                data = f.read()
            with open(path, "wb") as f:
                f.write(flip_byte(data, len(data) // 2))
        elif kind == "size-mismatch":
            layer["size"] -= 1000  # the blob is longer than the descriptor says
            put_manifest(tmp, index, manifest)
        elif kind == "missing-blob":
            os.unlink(blob_path(tmp, index["manifests"][0]["digest"]))
        elif kind.startswith("bad-digest") and kind != "bad-digest-layer":
            index["manifests"][0]["digest"] = {
                "bad-digest": "sha256:XYZ",
                "bad-digest-algo": "md5:d41d8cd98f00b204e9800998ecf8427e",
                "bad-digest-dotdot": "sha256:../../../../../../etc/passwd",
            }[kind]
            write_json(os.path.join(tmp, "index.json"), index)
        elif kind == "bad-digest-layer":
            layer["digest"] = "sha256:../../../../../../etc/passwd"
            put_manifest(tmp, index, manifest)
        elif kind in ("not-json-oci", "deep-json-oci", "huge-json-oci"):
            body = {"not-json-oci": b"this is {not json\n",
                    "deep-json-oci": deep_json(100000),
                    "huge-json-oci": b" " * (10 << 20) + b"{}"}[kind]
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            with open(blob_path(tmp, digest), "wb") as f:
                f.write(body)
            index["manifests"][0].update(digest=digest, size=len(body))
            write_json(os.path.join(tmp, "index.json"), index)
        elif kind == "layer-not-gzip":
            # Media type says gzip, bytes are plain text with a valid digest.
            body = b"this is not a gzip stream\n" * 100
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            with open(blob_path(tmp, digest), "wb") as f:
                f.write(body)
            layer.update(digest=digest, size=len(body))
            put_manifest(tmp, index, manifest)
        finish_layout(tmp, out)
    elif kind in ("dotdot-layer", "abs-layer"):
        members = docker_members(fixtures)
        manifest = docker_manifest(members)
        manifest[0]["Layers"][0] = "../x/layer.tar" if kind == "dotdot-layer" else "/etc/passwd"
        write_members(out, replace_member(members, "manifest.json",
                                          json.dumps(manifest).encode()))
    elif kind in ("symlink-layer", "symlink-layer-rel"):
        members = docker_members(fixtures)
        name = layer_member(members)
        target = "/etc/passwd" if kind == "symlink-layer" else "../../../../etc/passwd"
        new = []
        for m, d in members:
            if m.name == name:
                m = tarfile.TarInfo(name)
                m.type, m.linkname, m.mtime, d = tarfile.SYMTYPE, target, MTIME, None
            new.append((m, d))
        write_members(out, new)
    elif kind == "not-json":
        docker_with_manifest(fixtures, out, b"this is {not json\n")
    elif kind == "deep-json":
        docker_with_manifest(fixtures, out, deep_json(100000))
    elif kind == "huge-json":
        docker_with_manifest(fixtures, out, huge_json(10 << 20))
    else:
        sys.exit(f"fixture-tar.py: unknown hostile kind {kind!r}")


def damaged_compression(src, prefix):
    """PREFIX.CASE for the file SRC compressed whole, damaged each way an
    inflater must refuse (gz-crc, gz-isize, gz-trunc-trailer, gz-garbage,
    gz-zeros, gz-multi-crc, zst-checksum, zst-trunc, zst-garbage), and the
    sound multi-member and multi-frame forms (gz-multi, zst-multi)."""
    data = open(src, "rb").read()

    def zst(b):
        return subprocess.run(["zstd", "-q", "-c", "--check"], input=b, check=True,
                              stdout=subprocess.PIPE).stdout

    def flip(b, i, bit):
        return b[:i] + bytes([b[i] ^ bit]) + b[i + 1:] if i != -1 else b[:-1] + bytes([b[-1] ^ bit])

    gz = gzip.compress(data, 6, mtime=0)
    half = len(data) // 2
    multi = gzip.compress(data[:half], 6, mtime=0) + gzip.compress(data[half:], 6, mtime=0)
    zs = zst(data)
    out = {
        "gz-crc": flip(gz, len(gz) - 8, 0xFF),
        "gz-isize": flip(gz, -1, 0x01),
        "gz-trunc-trailer": gz[:-4],
        "gz-garbage": gz + b"garbage!",
        "gz-zeros": gz + bytes(512),
        "gz-multi": multi,
        "gz-multi-crc": flip(multi, len(multi) - 8, 0xFF),
        "zst-checksum": flip(zs, -1, 0xFF),
        "zst-trunc": zs[:-3],
        "zst-garbage": zs + b"garbage!",
        "zst-multi": zst(data[:half]) + zst(data[half:]),
    }
    for case, b in out.items():
        with open(prefix + "." + case, "wb") as f:
            f.write(b)


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "layer-basic":
        layer_basic(*args)
    elif cmd == "layer-tricky":
        layer_tricky(*args)
    elif cmd == "layer-opaque":
        layer_opaque(*args)
    elif cmd == "merge-docker":
        merge_docker(args[0], args[1:])
    elif cmd == "big-docker":
        big_docker(args[0], int(args[1]), args[2])
    elif cmd == "recompress-zstd":
        recompress_zstd(*args)
    elif cmd == "unique-image":
        unique_image(*args)
    elif cmd == "hostile-image":
        hostile_image(*args)
    elif cmd == "flip-byte":
        flip_file_byte(*args)
    elif cmd == "hostile":
        hostile(*args)
    elif cmd == "damaged-compression":
        damaged_compression(*args)
    elif cmd == "long-path":
        print(long_path())
    else:
        sys.exit(f"fixture-tar.py: unknown command {cmd!r}")


if __name__ == "__main__":
    main(sys.argv)
