# A directory of a lower layer deleted and made again in one RUN: overlayfs
# marks it opaque, the layer says ".wh..wh..opq" (t5070).
FROM fixture/basic:1
RUN mkdir -p /d/sub && echo a >/d/a && echo b >/d/sub/b
RUN rm -rf /d && mkdir /d && echo new >/d/new && : >>/etc/passwd
RUN ls -A /d /d/* >/seen
