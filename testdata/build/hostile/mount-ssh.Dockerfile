FROM fixture/basic:1
RUN --mount=type=ssh true
