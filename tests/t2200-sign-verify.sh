#!/bin/bash
test_description='chrun-sign writes cosign signatures that openssl and an independent checker accept; chrun-verify checks them offline'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"

PY=/usr/bin/python3
CHECK="$PY $REPO_ROOT/testdata/signing/cosign-check.py"
ENCRYPT="$PY $REPO_ROOT/testdata/signing/encrypt-key.py"
BLOBS=$CHRUN_ROOT/blobs/sha256

# sig_check SIG KEY.pub ALG [K=V...]: the independent checker accepts artifact
# SIG of image $IMG and openssl verifies its newest signature with KEY.pub.
sig_check() {
    local sig=$1 pub=$2 alg=$3 payload sigfile
    shift 3
    $CHECK "$BLOBS" "$sig" "$IMG" docker.io/fixture/basic "$@" >pairs || return 1
    tail -n1 pairs >last && read -r payload sigfile <last || return 1
    case $alg in
    ed25519) openssl pkeyutl -verify -pubin -inkey "$pub" -rawin -in "$payload" -sigfile "$sigfile" ;;
    *) openssl dgst -sha256 -verify "$pub" -signature "$sigfile" "$payload" ;;
    esac
}

test_expect_success 'setup: an image and keys' '
    fixtures_ensure &&
    chrun-load -q "$FIXTURES/basic.oci.tar" >img && IMG=$(cat img) &&
    openssl ecparam -name prime256v1 -genkey -noout -out ec.sec1 &&
    openssl pkcs8 -topk8 -nocrypt -in ec.sec1 -out ec.key &&
    openssl pkey -in ec.key -pubout -out ec.pub &&
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null &&
    openssl pkey -in rsa.key -pubout -out rsa.pub &&
    openssl genpkey -algorithm ed25519 -out ed.key &&
    openssl pkey -in ed.key -pubout -out ed.pub &&
    openssl ecparam -name prime256v1 -genkey -noout -out other.sec1 &&
    openssl ec -in other.sec1 -pubout -out other.pub 2>/dev/null &&
    openssl req -x509 -new -key ec.key -subj /CN=t -days 1 -out cert.pem &&
    mkdir keydir && : >empty.pem
'

test_expect_success 'help, version, usage errors' '
    chrun-sign --help | grep "^Usage: chrun-sign" &&
    chrun-verify --help | grep "^Usage: chrun-verify" &&
    chrun-verify --version | grep "^chrun-verify [0-9]" &&
    test_expect_code 2 chrun-verify fixture/basic:1 2>err && grep "^chrun-verify: error: --key" err &&
    test_expect_code 2 chrun-sign --key ec.key -a novalue fixture/basic:1 2>err &&
    grep "^chrun-sign: error: invalid annotation" err
'

test_expect_success 'ECDSA (SEC1 key): openssl and the checker accept what chrun-sign writes' '
    chrun-sign --key ec.sec1 -a env=prod fixture/basic:1 >sig &&
    grep -Ex "sha256:[0-9a-f]{64}" sig &&
    sig_check "$(cat sig)" ec.pub ecdsa env=prod &&
    jq -e --arg s "$(cat sig)" --arg i "$IMG" ".manifests[] | select(.digest == \$s) |
        .annotations[\"vnd.chrun.subject\"] == \$i and
        .annotations[\"org.opencontainers.image.ref.name\"] == \"docker.io/fixture/basic:sha256-\(\$i[7:]).sig\"" \
        "$CHRUN_ROOT/index.json"
'

test_expect_success 'verify: prints the image digest; -a pairs must match' '
    chrun-verify --key ec.pub fixture/basic:1 >out && echo "$IMG" >expect && test_cmp expect out &&
    chrun-verify --key ec.pub -a env=prod "${IMG:7:12}" >out && test_cmp expect out &&
    test_expect_code 1 chrun-verify --key ec.pub -a env=dev fixture/basic:1 >out 2>err &&
    test ! -s out &&
    grep "^chrun-verify: error: signature 1 of sha256:.*: annotation env=dev: payload has .prod." err &&
    grep "^chrun-verify: error: image .*no signature verifies" err &&
    test "$(wc -l <err)" -eq 2
'

test_expect_success 'verify: a wrong key fails, saying why' '
    test_expect_code 1 chrun-verify --key other.pub fixture/basic:1 2>err &&
    grep "^chrun-verify: error: signature 1 of .*does not verify with the ecdsa-p256 key" err
'

test_expect_success 'sign again: same key and payload change nothing; PKCS#8 key gives the same' '
    store_snapshot >before &&
    chrun-sign --key ec.sec1 -a env=prod fixture/basic:1 >again && test_cmp sig again &&
    chrun-sign --key ec.key -a env=prod fixture/basic:1 >again && test_cmp sig again &&
    store_snapshot >after && test_cmp before after
'

test_expect_success 'RSA and Ed25519: appended to the same .sig artifact, each verifies' '
    chrun-sign --key rsa.key fixture/basic:1 >sig2 &&
    chrun-sign -q --key ed.key fixture/basic:1 >sig3 &&
    test "$(jq ".layers | length" "$BLOBS/$(cut -c8- sig3)")" -eq 3 &&
    $CHECK "$BLOBS" "$(cat sig3)" "$IMG" docker.io/fixture/basic >pairs &&
    sed -n 2p pairs >rsa.pair && read -r p s <rsa.pair &&
    openssl dgst -sha256 -verify rsa.pub -signature "$s" "$p" &&
    sed -n 3p pairs >ed.pair && read -r p s <ed.pair &&
    openssl pkeyutl -verify -pubin -inkey ed.pub -rawin -in "$p" -sigfile "$s" &&
    chrun-verify --key rsa.pub fixture/basic:1 >out && grep -x "$IMG" out &&
    chrun-verify --key ed.pub fixture/basic:1 >out && grep -x "$IMG" out &&
    chrun-verify --key ec.pub -a env=prod fixture/basic:1 >out && grep -x "$IMG" out &&
    chrun-images >table && grep -A1 "^docker.io/fixture/basic:1 " table | grep "^  + signature  *sha256:${sig3:7:12}" &&
    test "$(chrun-images -q | wc -l)" -eq 1
'

test_expect_success 'four signers at once: no signature is lost' '
    pids= &&
    for n in 1 2 3 4; do
        chrun-sign -q --key ec.key -a n=$n fixture/basic:1 >/dev/null 2>par.$n.err & pids="$pids $!"
    done &&
    for p in $pids; do wait $p || return 1; done &&
    for n in 1 2 3 4; do chrun-verify -q --key ec.pub -a n=$n fixture/basic:1 >/dev/null || return 1; done
'

test_expect_success 'RSA-PSS signature made by openssl verifies' '
    printf "%s" "{\"critical\":{\"identity\":{\"docker-reference\":\"x\"},\"image\":{\"docker-manifest-digest\":\"$IMG\"},\"type\":\"cosign container image signature\"},\"optional\":null}" >pss.payload &&
    openssl dgst -sha256 -sign rsa.key -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -out pss.sig pss.payload &&
    openssl dgst -sha256 -verify rsa.pub -sigopt rsa_padding_mode:pss -signature pss.sig pss.payload
'

test_expect_success 'cosign encrypted key (scrypt + secretbox, made by python): signs with CHRUN_SIGN_PASSWORD' '
    openssl pkcs8 -topk8 -nocrypt -in ec.key -outform DER -out ec.der &&
    $ENCRYPT ec.der "s3cret pass" enc.key &&
    head -n1 enc.key | grep -x -- "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----" &&
    CHRUN_SIGN_PASSWORD="s3cret pass" chrun-sign --key enc.key -a by=enc fixture/basic:1 >sig4 &&
    sig_check "$(cat sig4)" ec.pub ecdsa by=enc &&
    chrun-verify --key ec.pub -a by=enc fixture/basic:1 >out && grep -x "$IMG" out &&
    $ENCRYPT ec.der pw old.key "ENCRYPTED COSIGN PRIVATE KEY" &&
    CHRUN_SIGN_PASSWORD=pw chrun-sign -q --key old.key -a by=old fixture/basic:1 >sig5 &&
    chrun-verify --key ec.pub -a by=old fixture/basic:1 >out && grep -x "$IMG" out
'

# bad_key PROG KEY PATTERN [ARGS...]: exit 1, one error line, store unchanged.
bad_key() {
    local prog=$1 key=$2 pattern=$3
    shift 3
    store_snapshot >before &&
    test_expect_code 1 setsid -w "$prog" --key "$key" "$@" fixture/basic:1 >out 2>err &&
    test ! -s out &&
    test_one_error_line "$prog" err "$pattern" &&
    store_snapshot >after && test_cmp before after
}

test_expect_success 'bad keys: wrong password, no password and no terminal' '
    CHRUN_SIGN_PASSWORD=wrong bad_key chrun-sign enc.key "enc.key.: wrong password" &&
    (unset CHRUN_SIGN_PASSWORD && bad_key chrun-sign enc.key "encrypted: set CHRUN_SIGN_PASSWORD")
'

test_expect_success 'without CHRUN_SIGN_PASSWORD the password is asked on the terminal' '
    printf "s3cret pass\n" | (unset CHRUN_SIGN_PASSWORD &&
        script -qec "chrun-sign -q --key enc.key -a by=tty fixture/basic:1" /dev/null) >tty.out &&
    grep "Enter password for private key .enc.key.: " tty.out &&
    chrun-verify -q --key ec.pub -a by=tty fixture/basic:1 >out && grep -x "$IMG" out
'

test_expect_success 'bad keys: a directory, an empty file, a certificate, a public key to sign' '
    bad_key chrun-sign keydir "keydir. is a directory" &&
    bad_key chrun-verify keydir "keydir. is a directory" &&
    bad_key chrun-sign empty.pem "empty.pem. is empty" &&
    bad_key chrun-verify empty.pem "empty.pem. is empty" &&
    bad_key chrun-verify cert.pem "cert.pem. holds a .CERTIFICATE. PEM block" &&
    bad_key chrun-sign cert.pem "cert.pem. holds a .CERTIFICATE. PEM block" &&
    bad_key chrun-sign ec.pub "not a private key" &&
    bad_key chrun-verify ec.key "not a PUBLIC KEY" &&
    bad_key chrun-verify missing.pub "missing.pub.*No such file"
'

test_expect_success 'an image without a signature: verify fails, naming it' '
    chrun-load -q "$FIXTURES/full.oci.tar" >full &&
    test_expect_code 1 chrun-verify --key ec.pub fixture/full:1 2>err &&
    test_one_error_line chrun-verify err "fixture/full:1.*has no cosign signature"
'

test_expect_success 'gc keeps signatures with their image and drops them with it' '
    chrun-gc -q && chrun-verify -q --key ec.pub -a by=old fixture/basic:1 &&
    chrun-rmi fixture/basic:1 && chrun-gc -q &&
    test ! -e "$BLOBS/$(cut -c8- sig5)" &&
    test "$(jq "[.manifests[] | select(.annotations[\"vnd.chrun.subject\"])] | length" "$CHRUN_ROOT/index.json")" -eq 0 &&
    store_fsck
'

test_done
