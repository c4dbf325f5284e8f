# Embeds a text file as a C array: cmake -DIN=<file> -DOUT=<file.c> -DNAME=<symbol>
#   -P embed_text.cmake
# defines  const char NAME[] (NUL-terminated) and const size_t NAME_len.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR len "${digits} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# Break the initialiser into lines of 16 bytes for the compiler's sake.
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}" "/* Generated from ${IN} by embed_text.cmake: do not edit. */\n"
                    "#include <stddef.h>\n"
                    "extern const char ${NAME}[];\n"
                    "extern const size_t ${NAME}_len;\n"
                    "const char ${NAME}[] = {\n${bytes}0x00};\n"
                    "const size_t ${NAME}_len = ${len};\n")
