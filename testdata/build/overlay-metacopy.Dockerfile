# Metadata-only changes of lower files over an overlay mounted with
# metacopy=on (root): the upper holds a file's metadata only, the layer
# takes its bytes from the lower. t5070 builds this both ways (overlay and
# CHRUN_BUILD_FULL_WALK=1) and compares the layers byte for byte.
FROM fixture/basic:1
COPY setxattr /usr/local/bin/setxattr
# 1: lower files for the steps below (big: more than one 128 KiB buffer)
RUN mkdir -p /m/dir/sub /m/other && for i in 1 2 3 4 5 6 7 8 9; do echo "file $i" >/m/f$i; done && \
    yes abcdefgh | head -c 300000 >/m/big && echo deep >/m/dir/sub/x && echo a >/m/dir/a && \
    echo h >/m/h1 && ln /m/h1 /m/h2 && echo h >/m/h3 && ln /m/h3 /m/h4
# 2: mode, owner, mtime, a user.* xattr: metadata copied up, bytes in the lower
RUN chmod 600 /m/f1 && chown 1:2 /m/f2 && touch -d "2020-01-01 00:00:00" /m/f3 && \
    setxattr user.test value /m/f4 && chmod 640 /m/big
# 3: a metadata change, then an append: the data is copied up after all
RUN touch -d "2021-01-01 00:00:00" /m/f5 && echo more >>/m/f5
# 4: lower files renamed: metacopy files with a redirect (relative in the
#    same directory, absolute across), one renamed over another lower file
RUN mv /m/f6 /m/f6-moved && mv /m/f7 /m/other/f7 && chmod 700 /m/other/f7 && mv /m/f8 /m/f9
# 5: a lower directory renamed (redirect_dir=on: the upper directory points at
#    the lower one), changed inside: the layer carries the whole moved tree
RUN mv /m/dir /m/dir-moved && echo new >/m/dir-moved/new && rm /m/dir-moved/a && \
    chmod 700 /m/dir-moved/sub/x
# 6: renames of renamed directories, one inside another, a metacopy file
#    moved into one: a subdirectory's own redirect and a metacopy file
#    resolve in their parent's lower directory
RUN mv /m/dir-moved /m/d2 && mv /m/d2/sub /m/d2/sub2 && chmod 600 /m/d2/sub2/x && \
    mkdir /m/top && mv /m/d2 /m/top/d3 && mv /m/f9 /m/top/d3/f9 && rm /m/top/d3/new
# 7: a lower directory renamed onto one the step emptied and removed: the
#    step runs again on the full walk
RUN rm -rf /m/other && mv /m/top/d3/sub2 /m/other
# 8: hardlinked lower files touched or renamed: the step runs again on the full walk
RUN touch -d "2022-01-01 00:00:00" /m/h1 && mv /m/h3 /m/h5
# 9: one name of a hardlinked lower file removed (the other's link count
#    changes): the step runs again on the full walk
RUN rm /m/h2
# 10: what the steps left, as RUN sees it
RUN find /m | sort | while read -r p; do stat -c "%n %a %u:%g %F %s" "$p"; done >/seen && \
    stat -c "%n %Y" /m/f3 /m/h1 >>/seen && find /m -type f | sort | xargs md5sum >>/seen
