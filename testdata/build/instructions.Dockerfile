FROM fixture/basic:1 AS base
MAINTAINER Jane Doe <jane@example.com>
SHELL ["/bin/sh", "-ec"]
RUN echo "shell $0" >/shell-used
HEALTHCHECK --interval=30s --timeout=5s --start-period=1m30s --start-interval=2s --retries=4 \
    CMD wget -q -O- http://127.0.0.1/ || exit 1
STOPSIGNAL SIGQUIT
ONBUILD RUN echo "triggered" >/onbuild-ran
ONBUILD COPY trigger.txt /trigger.txt
COPY --chmod=0751 --link tool.sh /usr/local/bin/tool
ADD --chown=1234:4321 --chmod=640 bundle.tar.gz /opt/bundle/
CMD echo shell form cmd
