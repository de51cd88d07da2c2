#!/bin/bash
test_description='chrun-build: heredocs, SHELL, HEALTHCHECK, STOPSIGNAL, ONBUILD, MAINTAINER, COPY --chmod, ADD --chown of archives'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-fixtures.sh

DATA=$REPO_ROOT/testdata/build
export SOURCE_DATE_EPOCH=1700000000

test_expect_success 'setup: the busybox fixture' '
    fixtures_ensure &&
    chrun-load -q "$FIXTURES/basic.oci.tar" >/dev/null
'

test_expect_success 'heredocs: RUN script, <<- and quoted, several, COPY inline files' '
    mkdir hd && cp "$DATA/heredoc.Dockerfile" hd/Dockerfile &&
    chrun-build -q -t hd:1 --build-arg WHO=chrun hd >/dev/null &&
    b=$(chrun-unpack hd:1) && chrun-exec "$b" >out &&
    printf "%s\n" "script for chrun" "literal \$WHO" "first chrun" "second" \
        "inline for chrun" "raw \$WHO" "file one" "file two" "shebang /dev/pipes/SCRIPT" >expect &&
    test_cmp expect out &&
    test "$(stat -c %a "$b/rootfs/h/inline")" = 644 &&
    test ! -e "$b/rootfs/dev/pipes"
'

test_expect_success 'SHELL, HEALTHCHECK, STOPSIGNAL, ONBUILD, MAINTAINER, COPY --chmod, ADD --chown' '
    mkdir -p in/src && cp "$DATA/instructions.Dockerfile" in/Dockerfile &&
    printf "#!/bin/sh\necho tool ran\n" >in/tool.sh && chmod 600 in/tool.sh &&
    echo data >in/src/a.txt && mkdir in/src/d && echo deep >in/src/d/b.txt &&
    tar -C in/src -czf in/bundle.tar.gz a.txt d &&
    chrun-build -q -t built/instructions:1 in >/dev/null &&
    chrun-inspect built/instructions:1 >info &&
    jq -c .Config.config.Shell info >got && echo "[\"/bin/sh\",\"-ec\"]" >expect && test_cmp expect got &&
    jq -c .Config.config.Healthcheck info >got &&
    echo "{\"Interval\":30000000000,\"Retries\":4,\"StartInterval\":2000000000,\"StartPeriod\":90000000000,\"Test\":[\"CMD-SHELL\",\"wget -q -O- http://127.0.0.1/ || exit 1\"],\"Timeout\":5000000000}" >expect &&
    test_cmp expect got &&
    test "$(jq -r .Config.config.StopSignal info)" = SIGQUIT &&
    test "$(jq -r .Config.author info)" = "Jane Doe <jane@example.com>" &&
    jq -c .Config.config.OnBuild info >got &&
    echo "[\"RUN echo \\\"triggered\\\" >/onbuild-ran\",\"COPY trigger.txt /trigger.txt\"]" >expect &&
    test_cmp expect got &&
    jq -c .Config.config.Cmd info >got && echo "[\"/bin/sh\",\"-ec\",\"echo shell form cmd\"]" >expect &&
    test_cmp expect got &&
    b=$(chrun-unpack built/instructions:1) &&
    chrun-exec "$b" >out && echo "shell form cmd" >expect && test_cmp expect out &&
    test "$(cat "$b/rootfs/shell-used")" = "shell /bin/sh" &&
    test "$(stat -c %a "$b/rootfs/usr/local/bin/tool")" = 751 &&
    chrun-exec "$b" tool >out && echo "tool ran" >expect && test_cmp expect out &&
    test "$(stat -c %u:%g:%a "$b/rootfs/opt/bundle/a.txt")" = 1234:4321:640 &&
    test "$(stat -c %u:%g "$b/rootfs/opt/bundle/d/b.txt")" = 1234:4321 &&
    test "$(cat "$b/rootfs/opt/bundle/d/b.txt")" = deep
'

test_expect_success 'ONBUILD triggers run when the image is a FROM, and are not inherited' '
    mkdir child && cp "$DATA/onbuild-child.Dockerfile" child/Dockerfile &&
    echo "from the child context" >child/trigger.txt &&
    chrun-build -q -t child:1 child >/dev/null &&
    b=$(chrun-unpack child:1) && chrun-exec "$b" >out &&
    printf "triggered\nfrom the child context\n" >expect && test_cmp expect out &&
    chrun-inspect child:1 >info &&
    test "$(jq -c .Config.config.OnBuild info)" = null &&
    test "$(jq -c .Config.config.Healthcheck info)" = "{\"Test\":[\"NONE\"]}"
'

test_expect_success 'a failing ONBUILD trigger names the FROM line and the trigger' '
    mkdir child2 && cp "$DATA/onbuild-child.Dockerfile" child2/Dockerfile &&
    test_expect_code 1 chrun-build -q child2 2>err &&
    test_one_error_line chrun-build err "line 1: ONBUILD trigger .COPY trigger.txt /trigger.txt. .*trigger.txt"
'

test_expect_success 'escape directive: a backtick continues lines' '
    mkdir esc && printf "# escape=\`\nFROM fixture/basic:1\nRUN echo a \`\n  b >/e\nCMD [\"cat\", \"/e\"]\n" >esc/Dockerfile &&
    chrun-build -q -t esc:1 esc >/dev/null &&
    b=$(chrun-unpack esc:1) && chrun-exec "$b" >out && echo "a b" >expect && test_cmp expect out
'

test_done
