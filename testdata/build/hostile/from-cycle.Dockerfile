FROM fixture/basic:1 AS a
COPY --from=b /x /x
FROM fixture/basic:1 AS b
COPY --from=a /y /y
