# etc: the sample configuration, the systemd unit and warrenctl's bash
# completion, and what `make install` puts where:
#
#   $(sysconfdir)/warren/warren.conf      never over an existing one
#   $(systemdsystemunitdir)/warrend.service   configure --with-systemdsystemunitdir
#   $(datadir)/bash-completion/completions/warrenctl
#   $(localstatedir)/lib/warren, $(localstatedir)/log/warren   (empty)
#
# The paths in warren.conf and the unit are substituted by make from the
# Makefile's directory variables (those configure sets), as the GNU coding
# standards ask. `make uninstall` removes all of it except a warren.conf
# that was edited and a data or log directory that is not empty.
warrenconfdir = $(sysconfdir)/warren
warrendatadir = $(localstatedir)/lib/warren
warrenlogdir = $(localstatedir)/log/warren
noinst_DATA = etc/warren.conf
if INSTALL_UNIT
systemdsystemunit_DATA = etc/warrend.service
else
noinst_DATA += etc/warrend.service
endif
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

install-data-local: install-bash-completion install-warren-conf install-warren-dirs
uninstall-local: uninstall-bash-completion uninstall-warren-conf uninstall-warren-dirs
install-bash-completion:
	$(MKDIR_P) '$(DESTDIR)$(bashcompletiondir)'
	$(INSTALL_DATA) $(srcdir)/etc/warrenctl.bash-completion \
		'$(DESTDIR)$(bashcompletiondir)/warrenctl'
uninstall-bash-completion:
	rm -f '$(DESTDIR)$(bashcompletiondir)/warrenctl'

# An operator's warren.conf is never replaced: a reinstall or upgrade from
# source leaves it as it is and says so. Uninstall removes it only if it is
# still the file this build would install.
install-warren-conf: etc/warren.conf
	$(MKDIR_P) '$(DESTDIR)$(warrenconfdir)'
	@dest='$(DESTDIR)$(warrenconfdir)/warren.conf'; \
	if test -f "$$dest"; then \
		echo "keeping $$dest as it is (this build's is etc/warren.conf)"; \
	else \
		echo " $(INSTALL_DATA) etc/warren.conf '$$dest'"; \
		$(INSTALL_DATA) etc/warren.conf "$$dest"; \
	fi
uninstall-warren-conf: etc/warren.conf
	@dest='$(DESTDIR)$(warrenconfdir)/warren.conf'; \
	if cmp -s etc/warren.conf "$$dest"; then \
		echo " rm -f '$$dest'"; rm -f "$$dest"; \
	elif test -f "$$dest"; then \
		echo "keeping $$dest: it was edited"; \
	fi
	@rmdir '$(DESTDIR)$(warrenconfdir)' 2>/dev/null || :

# The data directory (data_dir's default) and the log directory the unit
# lets warrend write to. They belong to the user warrend runs as, which
# make cannot know: the unit's header says what to run once. Uninstall
# removes them only when empty: messages are never deleted by make.
install-warren-dirs:
	$(MKDIR_P) '$(DESTDIR)$(warrendatadir)' '$(DESTDIR)$(warrenlogdir)'
uninstall-warren-dirs:
	@for d in '$(DESTDIR)$(warrendatadir)' '$(DESTDIR)$(warrenlogdir)'; do \
		test ! -d "$$d" || rmdir "$$d" 2>/dev/null || echo "keeping $$d: it is not empty"; \
	done
.PHONY: install-bash-completion uninstall-bash-completion install-warren-conf \
	uninstall-warren-conf install-warren-dirs uninstall-warren-dirs
