# etc: the sample configuration, the systemd unit and warrenctl's bash
# completion. Install paths are substituted by make, not configure, so
# `make prefix=...` still works.
warrenconfdir = $(sysconfdir)/warren
warrenconf_DATA = etc/warren.conf etc/warrend.service
EXTRA_DIST += etc/warren.conf.in etc/warrend.service.in
CLEANFILES += etc/warren.conf etc/warrend.service

etc_edit = sed \
	-e 's|@sbindir[@]|$(sbindir)|g' \
	-e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	-e 's|@localstatedir[@]|$(localstatedir)|g' \
	-e 's|@pkglibdir[@]|$(pkglibdir)|g' \
	-e 's|@PACKAGE_VERSION[@]|$(PACKAGE_VERSION)|g'

etc/warren.conf: $(srcdir)/etc/warren.conf.in Makefile
	$(AM_V_GEN)$(MKDIR_P) etc && rm -f $@ $@.tmp && \
		$(etc_edit) $(srcdir)/etc/warren.conf.in > $@.tmp && mv $@.tmp $@

etc/warrend.service: $(srcdir)/etc/warrend.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) etc && rm -f $@ $@.tmp && \
		$(etc_edit) $(srcdir)/etc/warrend.service.in > $@.tmp && mv $@.tmp $@

# bash completion for warrenctl, installed under the name bash-completion
# looks up when "warrenctl" is first completed (hence no _DATA variable,
# which would keep the file's own name).
bashcompletiondir = $(datadir)/bash-completion/completions
EXTRA_DIST += etc/warrenctl.bash-completion

install-data-local: install-bash-completion
uninstall-local: uninstall-bash-completion
install-bash-completion:
	$(MKDIR_P) '$(DESTDIR)$(bashcompletiondir)'
	$(INSTALL_DATA) $(srcdir)/etc/warrenctl.bash-completion \
		'$(DESTDIR)$(bashcompletiondir)/warrenctl'
uninstall-bash-completion:
	rm -f '$(DESTDIR)$(bashcompletiondir)/warrenctl'
.PHONY: install-bash-completion uninstall-bash-completion
