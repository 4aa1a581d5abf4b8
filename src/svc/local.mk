# src/svc: what makes warrend a system service, beside the broker: the
# systemd notify protocol and the status dump (SIGUSR1). The signals
# themselves are handled in src/warrend.c, on the broker's loop.
src_libwarren_a_SOURCES += \
	src/svc/sdnotify.c src/svc/sdnotify.h \
	src/svc/status.c src/svc/status.h
