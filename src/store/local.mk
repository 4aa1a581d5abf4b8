# src/store: the journal, group commit, the definitions file, recovery.
src_libwarren_a_SOURCES += \
	src/store/crc32c.c src/store/crc32c.h \
	src/store/journal.c src/store/journal.h \
	src/store/defs.c src/store/defs.h \
	src/store/defslog.c src/store/defslog.h \
	src/store/jsonfield.c src/store/jsonfield.h \
	src/store/offsets.c src/store/offsets.h \
	src/store/store.c src/store/store.h
