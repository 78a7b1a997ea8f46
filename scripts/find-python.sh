#!/usr/bin/env bash
# Print the path of a Python interpreter of the wanted family, or one clear line saying what to install.
#   find-python.sh rasa   -> Python 3.10 (3.9/3.8 accepted): Rasa 3.6 supports only 3.8-3.10
#   find-python.sh main   -> Python >= 3.11 for the bot, actions, sandbox and tests
set -euo pipefail
family="${1:?usage: find-python.sh rasa|main}"
if [[ "$family" == rasa ]]; then
  names=(python3.10 python3.9 python3.8); ok='(3, 8) <= sys.version_info[:2] <= (3, 10)'
  need="Python 3.10 (Rasa 3.6 supports 3.8-3.10 only): install it, e.g. 'pyenv install 3.10' or 'apt-get install python3.10-venv'"
else
  names=(python3.11 python3.12 python3.13 python3); ok='sys.version_info[:2] >= (3, 11)'
  need="Python >= 3.11: install it, e.g. 'pyenv install 3.11' or 'apt-get install python3.11-venv'"
fi
candidates=()
for name in "${names[@]}"; do candidates+=("$name"); done
# pyenv keeps versions that its shims may hide when they are not the global one
if command -v pyenv >/dev/null 2>&1; then
  root="$(pyenv root)"
  for name in "${names[@]}"; do
    for path in "$root"/versions/*/bin/"$name"; do [[ -x "$path" ]] && candidates+=("$path"); done
  done
fi
for name in "${names[@]}"; do
  for dir in /usr/local/bin /usr/bin "$HOME/.local/bin"; do candidates+=("$dir/$name"); done
done
for candidate in "${candidates[@]}"; do
  if "$candidate" -c "import sys, venv; sys.exit(0 if $ok else 1)" >/dev/null 2>&1; then
    "$candidate" -c 'import sys; print(sys.executable)'
    exit 0
  fi
done
echo "error: no suitable interpreter found; need $need" >&2
exit 1
