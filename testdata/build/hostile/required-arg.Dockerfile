FROM fixture/basic:1
ARG V
ENV X=${V:?set V with --build-arg}
