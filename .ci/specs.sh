#!/bin/sh
# Runs the signer's C vectors and every busted spec under Lua 5.4 and LuaJIT, then prints one line,
# "N passed, N failed", which it also keeps in build/spec-summary.txt. Exits non-zero on any failure.
set -u
mkdir -p build
passed=0
failed=0

count() {   # count LOG: adds the log's totals; a run that printed none counts as one failure
  line=$(grep -E '^[0-9]+ (passed|successes)' "$1" | tail -n 1)
  if [ -z "$line" ]; then failed=$((failed + 1)); return; fi
  set -- $(echo "$line" | grep -oE '[0-9]+')
  passed=$((passed + $1))
  failed=$((failed + $2 + ${3:-0}))
}

status=0
{ ./build/tc3_vectors; echo $? > build/rc; } | tee build/specs-c.log
[ "$(cat build/rc)" -eq 0 ] || status=1
count build/specs-c.log
for lua in lua5.4 luajit; do
  echo "busted --lua=$lua"
  { busted --lua="$lua" -o utfTerminal; echo $? > build/rc; } | tee "build/specs-$lua.log"
  [ "$(cat build/rc)" -eq 0 ] || status=1
  count "build/specs-$lua.log"
done
echo "$passed passed, $failed failed" | tee build/spec-summary.txt
[ "$failed" -eq 0 ] || status=1
exit "$status"
