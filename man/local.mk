# man: manual pages, written in mdoc; tests/check-man.sh lints them and
# tests/check-docs.sh and tests/unit/check_conf compare them with the code;
# tests/integ/test_man_examples.py runs warren.7's examples.
dist_man_MANS += man/warrend.8 man/warrenctl.1 man/warren.conf.5 man/warren.7 \
	man/warren-plugins.7
