# src/auth: users, password hashes, SASL mechanisms, vhost permissions.
src_libwarren_a_SOURCES += \
	src/auth/auth.c src/auth/auth.h \
	src/auth/passwd.c src/auth/passwd.h \
	src/auth/perm.c src/auth/perm.h \
	src/auth/x509name.c src/auth/x509name.h
