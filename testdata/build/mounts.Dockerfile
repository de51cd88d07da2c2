FROM fixture/basic:1 AS data
RUN mkdir -p /payload && echo "from a stage" >/payload/msg

FROM fixture/basic:1
ARG RUN_ID
RUN --mount=type=cache,target=/var/cache/app,id=appcache,sharing=locked \
    echo "run $RUN_ID" >>/var/cache/app/log && cp /var/cache/app/log /cache-log
RUN --mount=type=bind,source=.,target=/src \
    cat /src/input.txt >/from-bind && ! touch /src/written 2>/dev/null
RUN --mount=type=bind,source=input.txt,target=/rw/input.txt,rw \
    echo changed >/rw/input.txt && cat /rw/input.txt >/rw-result
RUN --mount=type=bind,from=data,source=/payload,target=/p cat /p/msg >/from-stage
RUN --mount=type=bind,from=fixture/basic:1,source=/bin,target=/img-bin test -x /img-bin/busybox && echo image >>/from-stage
RUN --mount=type=tmpfs,target=/scratch echo temp >/scratch/t && cat /scratch/t >/tmpfs-result
RUN --mount=type=secret,id=token,mode=0444 cat /run/secrets/token | wc -c >/secret-length
RUN --mount=type=secret,id=absent echo "optional secret absent" >/no-secret
RUN --network=none sh -c 'grep -c : /proc/net/dev' >/netdevs
CMD ["sh", "-c", "cat /cache-log /from-bind /rw-result /from-stage /tmpfs-result /secret-length /no-secret /netdevs"]
