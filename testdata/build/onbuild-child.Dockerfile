FROM built/instructions:1
HEALTHCHECK NONE
CMD ["sh", "-c", "cat /onbuild-ran /trigger.txt"]
