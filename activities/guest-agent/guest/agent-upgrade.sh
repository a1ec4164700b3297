#!/bin/sh
# Quantix guest agent upgrade helper. The host pushes this file into the guest with every upgrade
# (activities/guest-agent/upgrade.ts), so the A/B switch and its rollback watchdog are always ours,
# whatever the package being installed does. POSIX sh; busybox is enough.
#
#   agent-upgrade.sh verify   <id> <package sha256>   checksums of the pushed package, inside the guest
#   agent-upgrade.sh install  <id> <version> <rollback-after-seconds>
#   agent-upgrade.sh commit   <id>                    the host saw the new agent answer: keep it
#   agent-upgrade.sh rollback <id>                    put the previous version back now
#   agent-upgrade.sh cleanup  <id>                    forget the pushed package
#
# Layout (README "Guest agent"): $A/versions/<version>/ installed versions, $A/current -> the one
# the supervisor runs, $A/staging/<id>/ a pushed package, $A/upgrades/<id>/ one upgrade's record.
# Why a guest-side watchdog: when the new agent never starts, the host can no longer talk to the
# guest, so only the guest can restore the previous version. install arms a timer that rolls back
# unless commit comes first; commit and rollback both take $U/decided (mkdir is atomic), so exactly
# one of them wins, even when the host commits as the timer fires.
set -u
A=/var/lib/quantix-agent
cmd=$1
id=$2
S=$A/staging/$id
U=$A/upgrades/$id
# Written by the guest's agent supervisor: the pid of the agent it runs.
PIDFILE=/run/quantix-agent/agent.pid

say() { echo "quantix-agent: $*" > /dev/console 2>/dev/null; echo "$*" >&2; }

# The agent runs this script: it must report our exit before it is restarted, hence detached.
restart_agent() {
  setsid sh -c 'sleep 1; [ -f "$0" ] && kill "$(cat "$0")"' "$PIDFILE" </dev/null >/dev/null 2>&1 &
}

rollback_now() {
  mkdir "$U/decided" 2>/dev/null || return 1
  prev=$(cat "$U/previous" 2>/dev/null)
  new=$(cat "$U/version" 2>/dev/null)
  echo "rolled-back $1" > "$U/outcome"
  # Nothing recorded yet means nothing was switched: only the staging goes.
  [ -n "$prev" ] && ln -sfn "versions/$prev" "$A/current"
  [ -n "$new" ] && [ "$new" != "$prev" ] && rm -rf "$A/versions/$new" "$A/versions/.$new.new"
  rm -rf "$S"
  say "rolled back to $prev ($1)"
  restart_agent
}

case "$cmd" in
  verify)
    cd "$S" || exit 2
    [ "$(sha256sum package.tar | cut -d' ' -f1)" = "$3" ] || { say "package checksum mismatch"; exit 10; }
    rm -rf unpacked && mkdir unpacked && tar -xf package.tar -C unpacked || { say "package does not unpack"; exit 11; }
    (cd unpacked && sha256sum -c ../SHA256SUMS >/dev/null 2>&1) || { say "package files do not match their manifest"; exit 10; }
    ;;
  install)
    version=$3
    mkdir -p "$U"
    if [ -d "$U/decided" ]; then exit 0; fi
    [ -f "$U/previous" ] || { readlink "$A/current" | sed 's|.*/||' > "$U/previous.tmp" && mv "$U/previous.tmp" "$U/previous"; }
    echo "$version" > "$U/version"
    if [ ! -d "$A/versions/$version" ]; then
      rm -rf "$A/versions/.$version.new" && mkdir -p "$A/versions/.$version.new"
      (cd "$S/unpacked" && sh ./install.sh "$A/versions/.$version.new") || { rm -rf "$A/versions/.$version.new"; say "install.sh of $version failed"; exit 13; }
      mv "$A/versions/.$version.new" "$A/versions/$version"
    fi
    # Armed before the switch: from here on, no answer from the host means the old version comes back.
    if [ ! -f "$U/watchdog.pid" ]; then
      setsid sh "$0" watchdog "$id" "$4" </dev/null >/dev/null 2>&1 &
      echo $! > "$U/watchdog.pid"
    fi
    if [ "$(readlink "$A/current")" != "versions/$version" ]; then
      ln -sfn "versions/$version" "$A/current"
      restart_agent
    fi
    ;;
  watchdog)
    sleep "$3"
    rollback_now "not committed within $3 s" || true
    ;;
  commit)
    if ! mkdir "$U/decided" 2>/dev/null; then
      grep -q '^committed' "$U/outcome" 2>/dev/null && exit 0
      say "cannot commit: $(cat "$U/outcome" 2>/dev/null)"
      exit 20
    fi
    echo committed > "$U/outcome"
    kill "$(cat "$U/watchdog.pid")" 2>/dev/null
    prev=$(cat "$U/previous")
    # A/B: the committed version and the one before it stay; older ones go.
    for d in "$A"/versions/*; do
      v=${d##*/}
      [ "$v" = "$(cat "$U/version")" ] || [ "$v" = "$prev" ] || rm -rf "$d"
    done
    rm -rf "$S"
    ;;
  rollback)
    [ -d "$U" ] || { rm -rf "$S"; exit 0; }
    if ! rollback_now "the host asked"; then
      grep -q '^committed' "$U/outcome" 2>/dev/null && { say "cannot roll back: committed"; exit 21; }
    fi
    kill "$(cat "$U/watchdog.pid" 2>/dev/null)" 2>/dev/null
    exit 0
    ;;
  cleanup)
    rm -rf "$S"
    ;;
  *)
    echo "usage: $0 verify|install|commit|rollback|cleanup <id> ..." >&2
    exit 2
    ;;
esac
