# src/wire: bytes <-> structs. No sockets, no broker state.
src_libwarren_a_SOURCES += \
	src/wire/buf.h \
	src/wire/field.c src/wire/field.h \
	src/wire/methods.gen.c src/wire/methods.gen.h \
	src/wire/frame.c src/wire/frame.h \
	src/wire/names.c src/wire/names.h
