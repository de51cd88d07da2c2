# Multi-stage: global ARGs in FROM, ARG scoping, stage names in any case,
# COPY --from by name, index and image, an unused failing stage, --target.
ARG TAG=latest
ARG BASE=fixture/basic:1
FROM $BASE AS Build
ARG TAG
RUN echo "built $TAG" >/out && mkdir -p /w
WORKDIR /w/$TAG

FROM fixture/basic:1 AS unused
RUN echo "this stage is not needed" && exit 7

FROM scratch AS collect
ARG TAG
COPY --from=BUILD /out /from-name
COPY --from=0 /out /from-index
COPY --from=fixture/basic:1 /bin/busybox /bin/busybox

FROM build AS final
ARG NOTSET
ENV SEEN="tag=$TAG notset=${NOTSET:-empty}"
COPY --from=collect /from-name /from-index /final/
RUN cat /final/from-name /final/from-index && pwd >/final/pwd
CMD ["sh", "-c", "cat /final/from-name /final/from-index /final/pwd; echo $SEEN"]
