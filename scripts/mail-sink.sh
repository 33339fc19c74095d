#!/usr/bin/env bash
# The demo's SMTP server: aiosmtpd on 127.0.0.1, writing every message it accepts to a Maildir.
#   scripts/mail-sink.sh start|stop
# GSTJOBS_DEMO_SMTP_PORT (2525) and GSTJOBS_DEMO_MAIL (/var/tmp/gstjobs-demo-mail) move it.
set -euo pipefail
cd "$(dirname "$0")/.."

port=${GSTJOBS_DEMO_SMTP_PORT:-2525}
mail=${GSTJOBS_DEMO_MAIL:-/var/tmp/gstjobs-demo-mail}
pid_file=$mail.pid

running() { [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }

case "${1:?usage: mail-sink.sh start|stop}" in
  start)
    if running; then
      echo "mail sink already running on 127.0.0.1:$port (Maildir: $mail)"
      exit 0
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "mail-sink.sh: port $port on 127.0.0.1 is taken: set GSTJOBS_DEMO_SMTP_PORT" >&2
      exit 1
    fi
    mkdir -p "$mail"/{tmp,new,cur}
    nohup .venv/bin/python -m aiosmtpd -n -l "127.0.0.1:$port" -c aiosmtpd.handlers.Mailbox "$mail" \
      >"$mail.log" 2>&1 &
    echo $! >"$pid_file"
    for _ in $(seq 50); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      sleep 0.1
    done
    echo "mail sink running on 127.0.0.1:$port (Maildir: $mail, log: $mail.log)"
    ;;
  stop)
    if running; then
      kill "$(cat "$pid_file")"
      rm -f "$pid_file"
      echo "mail sink stopped"
    else
      echo "mail sink is not running"
    fi
    ;;
  *) echo "mail-sink.sh: use start or stop" >&2; exit 1 ;;
esac
