#!/bin/sh
# Install what the test suite needs beyond Python packages, and make sure PostgreSQL runs.
# Real mail clients come from Debian's packages (interoperability tests use them).
set -eu
# swaks needs the Perl TLS and SASL modules it only recommends (we install without recommends).
PACKAGES="swaks libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl fetchmail getmail6 isync offlineimap3 neomutt curl dovecot-imapd dovecot-pop3d dovecot-lmtpd"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian packages:$missing"
    # Packages must not start their own daemons (Dovecot would take ports 143/110):
    # a temporary policy-rc.d forbids it for the duration of the install.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "warning: missing Debian packages:$missing (interoperability tests will be skipped)" >&2
  fi
fi
# PostgreSQL: the tests create a throwaway database on 127.0.0.1:5432.
if command -v pg_lsclusters >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  for version in $(ls /etc/postgresql 2>/dev/null); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  for i in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
