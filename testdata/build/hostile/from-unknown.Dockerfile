FROM fixture/basic:1
COPY --from=nosuchstage /x /x
