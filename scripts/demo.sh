#!/usr/bin/env bash
# `make demo`: a local Omni, the quickstart applied with the real terraform, no drift, drift made
# out of band and found by plan, then destroy. Needs the debug build (`make build`) and terraform.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${OMNI_BIN_DIR:-$(cd "$root" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug}
work=$(mktemp -d -t omni-demo.XXXXXX)
emu_pid=""
cleanup() {
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
t0=$(date +%s)

for b in omni-emulator terraform-provider-omni; do
  [ -x "$bin/$b" ] || { echo "missing $bin/$b: run 'make build' first" >&2; exit 1; }
done

step "Starting a local Omni (omni-emulator, 6 machines) in $work/omni"
mkdir -p "$work/omni"
"$bin/omni-emulator" --listen 127.0.0.1:0 --data-dir "$work/omni" --machines 6 --step-delay-ms 100 \
  2>"$work/omni/emulator.log" &
emu_pid=$!
for _ in $(seq 1 300); do [ -s "$work/omni/endpoint" ] && break; sleep 0.05; done
[ -s "$work/omni/endpoint" ] || { echo "emulator did not start:"; cat "$work/omni/emulator.log"; exit 1; }
export OMNI_ENDPOINT=$(cat "$work/omni/endpoint")
export OMNI_SERVICE_ACCOUNT_KEY=$(cat "$work/omni/service-account.key")
echo "Omni at $OMNI_ENDPOINT"

cat >"$work/terraform.rc" <<RC
provider_installation {
  dev_overrides {
    "siderolabs/omni" = "$bin"
  }
}
RC
export TF_CLI_CONFIG_FILE="$work/terraform.rc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 RUST_BACKTRACE=0
cp -r "$root/examples/quickstart" "$work/quickstart"
cd "$work/quickstart"
tfvars=(-var "image_factory_url=$OMNI_ENDPOINT")

# Runs terraform, shows only the lines matching $1 while it runs, and on failure prints the
# whole output and stops the demo (the EXIT trap still stops the emulator).
run_tf() {
  local pattern=$1 log=$work/tf-$(date +%s%N).txt
  shift
  set +e
  terraform "$@" -input=false -no-color -compact-warnings "${tfvars[@]}" 2>&1 | tee "$log" | grep -E "$pattern"
  local code=${PIPESTATUS[0]}
  set -e
  if [ "$code" -ne 0 ]; then
    echo "terraform $1 failed (exit $code):" >&2
    cat "$log" >&2
    exit 1
  fi
}

step "terraform apply (creates the cluster and its machine sets, waits until they are ready)"
t_apply=$(date +%s)
run_tf 'Creat|Apply complete|Error' apply -auto-approve
echo "(apply took $(( $(date +%s) - t_apply ))s)"
terraform output -no-color

step "terraform plan -detailed-exitcode: no drift expected"
set +e
terraform plan -detailed-exitcode -input=false "${tfvars[@]}" >"$work/plan1.txt" 2>&1
code=$?
set -e
if [ $code -eq 0 ]; then echo "no changes: Omni matches the configuration"; else cat "$work/plan1.txt"; echo "unexpected plan exit $code" >&2; exit 1; fi

cluster=$(terraform output -raw cluster_id)
step "Out-of-band change: someone labels cluster '$cluster' by hand"
"$bin/examples/omni-edit" label cluster "$cluster" edited-by=hand

step "terraform plan -detailed-exitcode: the drift shows up"
set +e
terraform plan -detailed-exitcode -input=false -no-color "${tfvars[@]}" >"$work/plan2.txt" 2>&1
code=$?
set -e
# What changed, without the values that are merely re-read after the update.
grep -E '# .* (will|must) be|->|Plan:' "$work/plan2.txt" | grep -v 'known after apply' || true
if [ $code -eq 2 ]; then echo "drift detected (exit 2), as a CI job would see it"; else cat "$work/plan2.txt"; echo "expected exit 2, got $code" >&2; exit 1; fi

step "terraform destroy"
run_tf 'Destroy complete|Error' destroy -auto-approve

step "Demo finished in $(( $(date +%s) - t0 ))s"
