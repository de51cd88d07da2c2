FROM fixture/basic:1
RUN --mount=type=secret,id=other,required=true true
