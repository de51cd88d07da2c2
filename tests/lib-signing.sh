# cosign signature artifacts made without cosign (not available here), from
# cosign's specification, for chrun's tests; source after lib-registry.sh.
#
#   sig_payload DIGEST [OPTIONAL-JSON]     cosign simple-signing payload (stdout)
#   sig_sign KEY FILE                      base64 ECDSA/RSA SHA-256 signature of FILE
#   sig_layer PAYLOAD-FILE SIG-B64|-       one layer descriptor (jq -c), no
#                                          signature annotation for "-"
#   blob_push REPO FILE                    upload FILE to $REGISTRY; echo its digest
#   sig_push REPO TAG LAYERS-FILE          build config + OCI manifest over the
#                                          layers (one JSON per line; each payload
#                                          uploaded already) and PUT it as TAG
#   sig_tag DIGEST [SUFFIX]                cosign's tag for DIGEST: sha256-<hex>.sig

sig_payload() {
    printf '{"critical":{"identity":{"docker-reference":"%s"},"image":{"docker-manifest-digest":"%s"},"type":"cosign container image signature"},"optional":%s}' \
        "${SIG_REFERENCE:-example/img}" "$1" "${2:-null}"
}

sig_sign() {
    openssl dgst -sha256 -sign "$1" "$2" | base64 -w0
}

sig_layer() {
    local d
    d=sha256:$(sha256sum <"$1" | cut -d' ' -f1)
    if [ "$2" = - ]; then
        jq -cn --arg d "$d" --argjson s "$(stat -c %s "$1")" \
            '{mediaType: "application/vnd.dev.cosign.simplesigning.v1+json", size: $s, digest: $d}'
    else
        jq -cn --arg d "$d" --argjson s "$(stat -c %s "$1")" --arg sig "$2" \
            '{mediaType: "application/vnd.dev.cosign.simplesigning.v1+json", size: $s, digest: $d,
              annotations: {"dev.cosignproject.cosign/signature": $sig}}'
    fi
}

blob_push() {
    local repo=$1 file=$2 d loc sep
    d=sha256:$(sha256sum <"$file" | cut -d' ' -f1)
    loc=$(curl -sf --noproxy '*' -D - -o /dev/null -X POST "http://$REGISTRY/v2/$repo/blobs/uploads/" |
        tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
    [ -n "$loc" ] || return 1
    case $loc in http*) ;; *) loc=http://$REGISTRY$loc ;; esac
    case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -sf --noproxy '*' -X PUT -H 'Content-Type: application/octet-stream' \
        --data-binary "@$file" "$loc${sep}digest=$d" >/dev/null || return 1
    echo "$d"
}

sig_push() {
    local repo=$1 tag=$2 layers=$3 cd
    jq -cs '{architecture: "", config: {}, created: "0001-01-01T00:00:00Z",
             history: [{created: "0001-01-01T00:00:00Z"}], os: "",
             rootfs: {type: "layers", diff_ids: [.[].digest]}}' "$layers" >sig-config.json &&
    cd=$(blob_push "$repo" sig-config.json) &&
    jq -cs --arg cd "$cd" --argjson cs "$(stat -c %s sig-config.json)" \
        '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: {mediaType: "application/vnd.oci.image.config.v1+json", size: $cs, digest: $cd},
          layers: .}' "$layers" >sig-manifest.json &&
    curl -sf --noproxy '*' -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary @sig-manifest.json "http://$REGISTRY/v2/$repo/manifests/$tag" >/dev/null &&
    echo "sha256:$(sha256sum <sig-manifest.json | cut -d' ' -f1)"
}

sig_tag() {
    printf 'sha256-%s%s\n' "${1#sha256:}" "${2:-.sig}"
}
