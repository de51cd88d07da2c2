FROM fixture/basic:1
FROM scratch
COPY --from=5 /x /x
