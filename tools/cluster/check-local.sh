#!/usr/bin/env bash
# Runs the Kubernetes Indexed Job and the Slurm array script of docs/cluster.md on this machine, N processes at
# once each (default 4), and checks that they render every item of the sweep exactly once and that running them
# again renders nothing twice.
#
#   tools/cluster/check-local.sh [N]
#
# Both blocks are taken from docs/cluster.md itself (the Job's container command and env; the sbatch script), so
# what is checked is what the page shows. The shared volume is a fresh temporary folder holding the graph, the
# shipped model (models/sana-shapes) under the SANA folder's name and four prompts; "--set steps=2 --set width=64
# --set height=64" is added so that the 100 items take seconds. Env: BIN (folder of the sanagraph binary, default
# .build/release), KEEP=1 keeps the temporary folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-4}"
BIN="$(cd "${BIN:-.build/release}" && pwd)"
[ -x "$BIN/sanagraph" ] || { echo "error: $BIN/sanagraph not found; run 'swift build -c release'" >&2; exit 2; }
export PATH="$BIN:$PATH"
ROOT="$(mktemp -d "${TMPDIR:-/tmp}/sanagraph-cluster-check.XXXXXX")"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$ROOT"' EXIT
DOC=docs/cluster.md
SMALL="--set steps=2 --set width=64 --set height=64"

# The fenced block after the line "<!-- check-local: NAME".
block() { awk -v name="$1" '
    index($0, "<!-- check-local: " name) == 1 { found = 1; next }
    found && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }' "$DOC"; }

# A folder standing for the shared volume.
volume() {
    mkdir -p "$1/graphs" "$1/models"
    cp Graphs/text2img.yaml "$1/graphs/"
    ln -s "$PWD/models/sana-shapes" "$1/models/Sana_1600M_1024px_diffusers"
    printf '%s\n' "a red circle above a blue square" "a green triangle on a white background" \
        "a yellow square left of a purple circle" "a blue circle" > "$1/prompts.txt"
}

# Checks one run's outputs: every item once over the N manifests, 100 pictures.
verify() {
    local dir="$1" label="$2"
    echo "== $label: sanagraph manifest summarize ${dir#$ROOT/}/out/manifest-*.jsonl"
    sanagraph manifest summarize "$dir"/out/manifest-*.jsonl | sed -n '2,4p' | sed 's/^/   /'
    local items pngs lines
    items=$(cat "$dir"/out/manifest-*.jsonl | grep -o '"item":[0-9]*' | sort | uniq | wc -l)
    lines=$(cat "$dir"/out/manifest-*.jsonl | wc -l)
    pngs=$(find "$dir/out" -name '*.png' | wc -l)
    echo "   distinct items $items, manifest lines $lines, pictures $pngs"
    [ "$items" = 100 ] && [ "$lines" = 100 ] && [ "$pngs" = 100 ] || { echo "FAILED: $label" >&2; exit 1; }
}

# --- Kubernetes: the container's command, with the Job's env, JOB_COMPLETION_INDEX=0..N-1.
K="$ROOT/k8s"; volume "$K"
JOB="$(block kubernetes)"
COMMAND="$(printf '%s\n' "$JOB" | awk '/^ *- \|$/ { indent = index($0, "-"); take = 1; next }
    take { match($0, /^ */); if (RLENGTH < indent && $0 != "") exit; print }' | sed "s#/data/#$K/#g")"
ENVS=$(printf '%s\n' "$JOB" | awk '/- name: / { name = $3 } /value: / && name { v = $2; gsub(/"/, "", v); print name "=" v; name = "" }' \
    | sed "s#/data/#$K/#g; s#^SANAGRAPH_SHARD_COUNT=.*#SANAGRAPH_SHARD_COUNT=$N#")
echo "Kubernetes Indexed Job, completions=$N: $(printf '%s' "$ENVS" | tr '\n' ' ' | sed "s#$ROOT/#\$ROOT/#g")"
printf '%s\n' "$COMMAND" | sed "s#$K/#/data/#g; s/^ */    /"
run_k8s() {
    local pids=() i
    for i in $(seq 0 $((N - 1))); do
        env $ENVS JOB_COMPLETION_INDEX=$i sh -c "$COMMAND $SMALL" > "$K/pod-$i$1.log" 2>&1 & pids+=($!)
    done
    for i in "${!pids[@]}"; do wait "${pids[$i]}" || { echo "pod $i failed:" >&2; cat "$K/pod-$i$1.log" >&2; exit 1; }; done
}
start=$(date +%s.%N); run_k8s ""; end=$(date +%s.%N)
printf "   %d pods at once: %s s\n" "$N" "$(awk "BEGIN { printf \"%.1f\", $end - $start }")"
grep -h "^shard\|^batch" "$K"/pod-?.log | sed "s#$ROOT/##; s/^/   pod: /"
verify "$K" "Kubernetes"
run_k8s .again
grep -h "^batch:" "$K"/pod-?.again.log | sed "s/^/   pod, run again: /"
verify "$K" "Kubernetes, run again"

# --- Slurm: the sbatch script, SLURM_ARRAY_TASK_ID=0..N-1.
S="$ROOT/slurm"; volume "$S"
block slurm > "$S/sanagraph-array.sbatch"
echo "Slurm array --array=0-$((N - 1)): bash sanagraph-array.sbatch with SHARED=\$ROOT/slurm"
run_slurm() {
    local pids=() i
    for i in $(seq 0 $((N - 1))); do
        SHARED="$S" EXTRA="$SMALL" SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=$((N - 1)) \
            SLURM_ARRAY_TASK_COUNT=$N SLURM_CPUS_PER_TASK=1 bash "$S/sanagraph-array.sbatch" > "$S/task-$i$1.log" 2>&1 & pids+=($!)
    done
    for i in "${!pids[@]}"; do wait "${pids[$i]}" || { echo "task $i failed:" >&2; cat "$S/task-$i$1.log" >&2; exit 1; }; done
}
start=$(date +%s.%N); run_slurm ""; end=$(date +%s.%N)
printf "   %d tasks at once: %s s\n" "$N" "$(awk "BEGIN { printf \"%.1f\", $end - $start }")"
grep -h "^shard\|^batch" "$S"/task-?.log | sed "s#$ROOT/##; s/^/   task: /"
verify "$S" "Slurm"
run_slurm .again
grep -h "^batch:" "$S"/task-?.again.log | sed "s/^/   task, run again: /"
verify "$S" "Slurm, run again"
echo "ok: both schedulers' commands render the 100 items once over $N processes, and nothing twice when run again"
