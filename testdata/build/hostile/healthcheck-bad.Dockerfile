FROM fixture/basic:1
HEALTHCHECK --interval=5x CMD true
