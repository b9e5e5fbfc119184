#!/bin/sh
# make demo: tciot end to end against the local API emulator, in a few seconds and offline.
# Starts the emulator on a free port, describes the documented sample batch, creates a batch,
# waits for it, downloads its device file, and stops the emulator: on success, on an error and on
# Ctrl-C (trap), and even if this shell is killed outright (the emulator's stdin is a FIFO this
# shell holds open, and it exits when that closes).
set -eu
cd "$(dirname "$0")/.."
LUA=${LUA:-lua5.4}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tciot-demo.XXXXXX")
emu_pid=

cleanup() {
  status=$?
  trap - EXIT INT TERM
  if [ -n "$emu_pid" ]; then
    kill "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n==> %s\n' "$*"; }
tciot() { "$LUA" bin/tciot --endpoint "$url" "$@"; }
show() { printf '$ tciot %s\n' "$*"; tciot "$@"; }

step "Starting the local API emulator (tciot emulator --port 0)"
# Batches move one Status every half second, so the whole demo takes a few seconds.
printf '{"status_step_seconds": 0.5}\n' > "$tmp/fixture.json"
mkfifo "$tmp/hold"
"$LUA" bin/tciot emulator --port 0 --fixture "$tmp/fixture.json" --exit-on-stdin-eof \
  < "$tmp/hold" > "$tmp/emulator.log" 2>&1 &
emu_pid=$!
exec 9> "$tmp/hold"
url=
for _ in $(seq 100); do
  # The export lines follow EMULATOR_READY; the endpoint's is the last of them.
  grep -q '^export TENCENTCLOUD_IOTEXPLORER_ENDPOINT=' "$tmp/emulator.log" 2>/dev/null &&
    url=$(sed -n 's/^EMULATOR_READY //p' "$tmp/emulator.log")
  [ -n "$url" ] && break
  kill -0 "$emu_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "the emulator did not start:" >&2
  cat "$tmp/emulator.log" >&2
  exit 1
fi
echo "listening on $url (pid $emu_pid)"
echo "Every command below also gets --endpoint $url; the emulator's credentials and region"
echo "come from the environment (the export lines it printed), as they would for the real service:"
eval "$(grep '^export ' "$tmp/emulator.log")"
echo "  TENCENTCLOUD_SECRET_ID=$TENCENTCLOUD_SECRET_ID TENCENTCLOUD_SECRET_KEY=*** TENCENTCLOUD_REGION=$TENCENTCLOUD_REGION"

step "The documented sample batch"
show DescribeBatchProduction --ProductId R32ONVL0EU --BatchProductionId LC-ya6zinv9

step "Creating a batch of 5 devices"
show CreateBatchProduction --ProjectId PROJECT0001 --ProductId R32ONVL0EU --BurnMethod 0 \
  --GenerationMethod 0 --BatchCnt 5 | tee "$tmp/created.json"
id=$(sed -n 's/^ *"BatchProductionId": "\(.*\)",*$/\1/p' "$tmp/created.json")

step "Waiting for batch $id, then downloading its device file"
show DescribeBatchProduction --ProductId R32ONVL0EU --BatchProductionId "$id" \
  --wait --poll-interval 0.25 --download "$tmp/devices.csv"

step "The device file ($(($(wc -l < "$tmp/devices.csv") - 1)) devices)"
cat "$tmp/devices.csv"

step "The project's batches"
show GetBatchProductionsList --ProjectId PROJECT0001 --output table

step "Stopping the emulator"
pid=$emu_pid
emu_pid=
kill "$pid"
wait "$pid" 2>/dev/null || true
if kill -0 "$pid" 2>/dev/null; then
  echo "the emulator is still running" >&2
  exit 1
fi
echo "stopped; nothing left running, temporary files removed."
