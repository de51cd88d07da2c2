#!/bin/bash
test_description='chrun-pull with htpasswd basic auth: config.json auths, credHelpers, credsStore'
. ./lib.sh
. "$TEST_DIRECTORY/lib-registry.sh"
. "$TEST_DIRECTORY/lib-fixtures.sh"

fixtures_ensure
registry_start auth
fixture_push basic "$REGISTRY_AUTH/basic:1"
mkdir -p "$DOCKER_CONFIG" bin
PATH=$TRASH_DIRECTORY/bin:$PATH

b64() { printf '%s' "$1" | base64 -w0; }

# A credential helper speaking the docker-credential-helpers protocol; it
# logs the server URL it was asked for.
cat >bin/docker-credential-test <<HELPER
#!/bin/sh
[ "\$1" = get ] || exit 1
read -r url
echo "\$url" >>"$TRASH_DIRECTORY/helper.log"
case \$url in
$REGISTRY_AUTH) printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\n' "\$url" "$REGISTRY_USER" "$REGISTRY_PASS" ;;
*) echo "credentials not found in native keychain"; exit 1 ;;
esac
HELPER
chmod +x bin/docker-credential-test

test_expect_success 'no credentials: exit 1, says authentication is required' '
    rm -f "$DOCKER_CONFIG/config.json" &&
    test_expect_code 1 chrun-pull "$REGISTRY_AUTH/basic:1" 2>err &&
    test_one_error_line chrun-pull err "requires .*authentication.*no credentials"
'

test_expect_success 'auths entry with base64 auth' '
    echo "{\"auths\":{\"$REGISTRY_AUTH\":{\"auth\":\"$(b64 "$REGISTRY_USER:$REGISTRY_PASS")\"}}}" \
        >"$DOCKER_CONFIG/config.json" &&
    chrun-pull "$REGISTRY_AUTH/basic:1" >out &&
    echo "$(fixture_digest basic)" >expect &&
    test_cmp expect out && store_fsck
'

test_expect_success 'auths entry keyed by URL, username/password fields' '
    rm -rf "$CHRUN_ROOT" &&
    echo "{\"auths\":{\"http://$REGISTRY_AUTH/v2/\":{\"username\":\"$REGISTRY_USER\",\"password\":\"$REGISTRY_PASS\"}}}" \
        >"$DOCKER_CONFIG/config.json" &&
    chrun-pull "$REGISTRY_AUTH/basic:1" >out &&
    test_cmp expect out
'

test_expect_success 'wrong password: exit 1, says the credentials are wrong, store unchanged' '
    echo "{\"auths\":{\"$REGISTRY_AUTH\":{\"auth\":\"$(b64 "$REGISTRY_USER:wrong")\"}}}" \
        >"$DOCKER_CONFIG/config.json" &&
    store_snapshot >before &&
    test_expect_code 1 chrun-pull "$REGISTRY_AUTH/basic:1" 2>err &&
    test_one_error_line chrun-pull err "wrong username or password" &&
    store_snapshot >after &&
    test_cmp before after
'

test_expect_success 'malformed config.json: named in the error' '
    echo "{\"auths\": [" >"$DOCKER_CONFIG/config.json" &&
    test_expect_code 1 chrun-pull "$REGISTRY_AUTH/basic:1" 2>err &&
    test_one_error_line chrun-pull err "config.json.*invalid JSON"
'

test_expect_success 'credHelpers: docker-credential-test on PATH is used' '
    rm -rf "$CHRUN_ROOT" helper.log &&
    echo "{\"auths\":{\"$REGISTRY_AUTH\":{}},\"credHelpers\":{\"$REGISTRY_AUTH\":\"test\"}}" \
        >"$DOCKER_CONFIG/config.json" &&
    chrun-pull "$REGISTRY_AUTH/basic:1" >out &&
    test_cmp expect out &&
    echo "$REGISTRY_AUTH" >expect.log &&
    test_cmp expect.log helper.log
'

test_expect_success 'credsStore: the helper is used for every registry' '
    rm -rf "$CHRUN_ROOT" helper.log &&
    echo "{\"credsStore\":\"test\"}" >"$DOCKER_CONFIG/config.json" &&
    chrun-pull "$REGISTRY_AUTH/basic:1" >out &&
    test_cmp expect out &&
    test_cmp expect.log helper.log
'

test_expect_success 'a helper that fails: its message in one error line' '
    cat >bin/docker-credential-broken <<-\EOF2 &&
	#!/bin/sh
	echo "keychain locked"
	exit 3
	EOF2
    chmod +x bin/docker-credential-broken &&
    echo "{\"credsStore\":\"broken\"}" >"$DOCKER_CONFIG/config.json" &&
    test_expect_code 1 chrun-pull "$REGISTRY_AUTH/basic:1" 2>err &&
    test_one_error_line chrun-pull err "docker-credential-broken.*keychain locked"
'

test_expect_success 'a helper missing from PATH: one error line' '
    echo "{\"credsStore\":\"absent\"}" >"$DOCKER_CONFIG/config.json" &&
    test_expect_code 1 chrun-pull "$REGISTRY_AUTH/basic:1" 2>err &&
    test_one_error_line chrun-pull err "docker-credential-absent"
'

test_done
