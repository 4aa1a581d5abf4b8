# src/mgmt: the management HTTP API and /metrics (evhttp + jansson). Reads
# broker/ and net/ state; nothing there depends on it.
src_libwarren_a_SOURCES += \
	src/mgmt/mgmt.h src/mgmt/api.h \
	src/mgmt/http.c src/mgmt/http.h src/mgmt/path.c src/mgmt/path.h \
	src/mgmt/reply.c src/mgmt/list.c \
	src/mgmt/ep_access.c src/mgmt/ep_objects.c src/mgmt/ep_node.c \
	src/mgmt/ep_conn.c src/mgmt/metrics.c \
	src/mgmt/argshash.c src/mgmt/argshash.h
