#!/bin/sh
# Runs the signer's C vectors and every busted spec under Lua 5.4 and LuaJIT, then prints one line,
# "N passed, N failed", which it also keeps in build/spec-summary.txt. The verdict is the runs' own exit
# statuses; the counts come from TAP (busted -o TAP, and the C vectors' "ok -" / "not ok -" lines), never
# from human-readable summaries. A run that ends without its TAP plan (it crashed) counts as a failure.
set -u
mkdir -p build
passed=0
failed=0
status=0

# count LOG: adds the log's TAP results. Skipped tests ("# SKIP", busted's pending) count as neither.
count() {
  ok=$(grep -cE '^ok [0-9]* ?- ' "$1" | tr -d ' ')
  skipped=$(grep -E '^ok [0-9]* ?- ' "$1" | grep -c '# SKIP' | tr -d ' ')
  bad=$(grep -cE '^not ok ' "$1" | tr -d ' ')
  passed=$((passed + ok - skipped))
  failed=$((failed + bad))
}

# run NAME COMMAND...: runs the command, tees its output to build/specs-NAME.log, keeps its exit status.
run() {
  name=$1
  shift
  { "$@"; echo $? > build/rc; } | tee "build/specs-$name.log"
  rc=$(cat build/rc)
  [ "$rc" -eq 0 ] || { status=1; echo "$name: exit status $rc"; }
  count "build/specs-$name.log"
}

run c ./build/tc3_vectors
for lua in lua5.4 luajit; do
  echo "busted --lua=$lua"
  run "$lua" busted --lua="$lua" -o TAP
  plan=$(grep -E '^1\.\.[0-9]+' "build/specs-$lua.log" | tail -n 1)
  if [ -z "$plan" ]; then
    failed=$((failed + 1)); status=1; echo "busted --lua=$lua ended without a TAP plan"
  fi
done
echo "$passed passed, $failed failed" | tee build/spec-summary.txt
[ "$failed" -eq 0 ] || status=1
exit "$status"
