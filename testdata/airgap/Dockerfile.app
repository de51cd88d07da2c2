FROM fixture/basic:1
COPY payload /payload
