# man: manual pages, written in mdoc; tests/check-man.sh lints them and
# tests/check-docs.sh and tests/unit/check_conf compare them with the code.
dist_man_MANS += man/warrend.8 man/warrenctl.1 man/warren.conf.5 man/warren-plugins.7
