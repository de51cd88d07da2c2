#!/usr/bin/python3
"""Write a private key in cosign's encrypted format (not chrun code).

Usage: encrypt-key.py PKCS8_DER_FILE PASSWORD OUT_PEM [PEM_NAME]

The format is go-securesystemslib's "encrypted" JSON: scrypt (N=32768, r=8,
p=1, 32-byte salt) derives a 32-byte key from PASSWORD, NaCl secretbox with a
24-byte nonce seals the PKCS#8 DER, and the JSON document goes base64 inside
a PEM block named ENCRYPTED SIGSTORE PRIVATE KEY (or PEM_NAME).
"""
import base64
import hashlib
import json
import os
import sys

from nacl.secret import SecretBox

der = open(sys.argv[1], "rb").read()
password = sys.argv[2].encode()
name = sys.argv[4] if len(sys.argv) > 4 else "ENCRYPTED SIGSTORE PRIVATE KEY"
salt = os.urandom(32)
nonce = os.urandom(24)
key = hashlib.scrypt(password, salt=salt, n=32768, r=8, p=1, maxmem=64 * 1024 * 1024, dklen=32)
box = SecretBox(key).encrypt(der, nonce).ciphertext  # MAC first, as Go's secretbox.Seal
doc = {
    "kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1},
            "salt": base64.b64encode(salt).decode()},
    "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
    "ciphertext": base64.b64encode(box).decode(),
}
body = base64.encodebytes(json.dumps(doc).encode()).decode()
with open(sys.argv[3], "w") as f:
    f.write("-----BEGIN %s-----\n%s-----END %s-----\n" % (name, body, name))
