FROM fixture/basic:1 AS me
COPY --from=me /x /x
