FROM fixture/basic:1
RUN --mount=type=secret,id=token,required=true false
