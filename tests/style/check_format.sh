#!/usr/bin/env bash
# Fails naming every C++ source that differs from what clang-format makes of it under the
# repository's .clang-format (Debian 12's clang-format 14, which install-deps.sh installs).
# usage: check_format.sh SOURCE_DIR
set -euo pipefail
src=$1
cd "$src"
if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.cpp' '*.h')
else
  mapfile -t files < <(find app core plugins tests views -name '*.cpp' -o -name '*.h' | sort)
fi
existing=()
for f in "${files[@]}"; do [ -f "$f" ] && existing+=("$f"); done
# One clang-format run for all files; each difference is reported as FILE:LINE:COL: error: ...
report=$(clang-format --style=file --dry-run --Werror "${existing[@]}" 2>&1 || true)
mapfile -t bad < <(grep -oE '^[^:]+\.(cpp|h):[0-9]+:[0-9]+: error' <<< "$report" | cut -d: -f1 | sort -u)
if [ ${#bad[@]} -gt 0 ]; then
  echo "not formatted as .clang-format says (${#bad[@]} of ${#existing[@]} files); fix with: clang-format -i FILE"
  printf '  %s\n' "${bad[@]}"
  clang-format --style=file "${bad[0]}" | diff -u "${bad[0]}" - | head -40 || true
  exit 1
fi
echo "${#existing[@]} files formatted as .clang-format says ($(clang-format --version))"
