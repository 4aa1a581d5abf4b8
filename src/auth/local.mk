# src/auth: users, password hashes, SASL mechanisms, vhost permissions.
src_libwarren_a_SOURCES += \
	src/auth/auth.c src/auth/auth.h
