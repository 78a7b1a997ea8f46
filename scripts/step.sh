#!/usr/bin/env bash
# One set-up step, quietly: says what it does and how long it usually takes, keeps the tool's output in a log
# (shown when it fails), and prints a "still working" line every 10 s. V=1 shows the output as it comes.
#   scripts/step.sh "creating .venv-rasa: Rasa 3.6 and its libraries" "~3 min" var/log/venv-rasa.log cmd args...
set -uo pipefail
what="$1"; usually="$2"; log="$3"; shift 3
mkdir -p "$(dirname "$log")"
start=$SECONDS
echo "▸ $what (usually $usually; log $log)" >&2
if [[ "${V:-}" == 1 ]]; then
  "$@" 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
else
  "$@" >>"$log" 2>&1 &
  pid=$!
  next=$((start + 10))
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS >= next)) && kill -0 "$pid" 2>/dev/null; then
      echo "  … still working: $((SECONDS - start)) s (usually $usually)" >&2
      next=$((SECONDS + 10))
    fi
  done
  wait "$pid"
  status=$?
fi
if [[ $status -ne 0 ]]; then
  echo "error: '$what' failed (exit $status); the end of $log:" >&2
  tail -n 30 "$log" >&2
  exit "$status"
fi
echo "  ✓ done in $((SECONDS - start)) s" >&2
