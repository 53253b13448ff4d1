#!/usr/bin/env bash
# Batch benchmark: N items of Graphs/text2img.yaml with the shipped model (models/sana-shapes at the graph's
# defaults: 256 px, 20 steps, guidance 4.5) rendered by one `sanagraph run --sweep` process vs N separate
# `sanagraph run` processes, one after the other, on the same machine in the same run.
#
#   tools/bench/batch.sh [--items N] [--reps R] [--rows seeds,prompts]
#
# Rows: "seeds" (one prompt, seeds 0..N-1: the nightly seed sweep) and "prompts" (N prompts, seed 0: the text
# encoder is needed by every item). Both sides use the disk cache as a cron job does (rw), each starting from an
# empty folder of its own, so the separate processes also skip the text encoder once the prompt is cached.
# Time per item = wall time of the whole side / N. Model loads = loader nodes (text_encoder.load, dit.load,
# dcae.load) that ran: from the manifest for the one process, from the --json events for the separate ones.
# With --reps R > 1 the sides alternate R times and medians are printed. Env: BIN (default .build/release),
# WORK (default $TMPDIR/sanagraph-bench-batch).
set -euo pipefail
cd "$(dirname "$0")/../.."
ITEMS=20 REPS=1 ROWS=seeds,prompts
while [ $# -gt 0 ]; do
    case "$1" in
        --items) ITEMS="$2"; shift 2 ;;
        --reps) REPS="$2"; shift 2 ;;
        --rows) ROWS="$2"; shift 2 ;;
        *) echo "usage: $0 [--items N] [--reps R] [--rows seeds,prompts]" >&2; exit 2 ;;
    esac
done
BIN="${BIN:-.build/release}"
[ -x "$BIN/sanagraph" ] || swift build -c release --product sanagraph >&2
S="$BIN/sanagraph"
G=Graphs/text2img.yaml
WORK="${WORK:-${TMPDIR:-/tmp}/sanagraph-bench-batch}"
rm -rf "$WORK"; mkdir -p "$WORK"

# N distinct prompts in the words the shipped model was trained on.
for c1 in red blue green yellow purple orange; do
    for s1 in circle square triangle; do
        for c2 in blue red yellow green; do
            [ "$c1" = "$c2" ] || echo "a $c1 $s1 above a $c2 square"
        done
    done
done | head -"$ITEMS" > "$WORK/prompts.txt"
[ "$(sort -u "$WORK/prompts.txt" | wc -l)" = "$ITEMS" ] || { echo "error: at most 60 items" >&2; exit 2; }

now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# one ROW REP: prints "seconds loads"
one() {
    local dir="$WORK/$1-one-$2"; mkdir -p "$dir"
    local sweep
    if [ "$1" = seeds ]; then sweep=(--sweep "seed=0..$((ITEMS - 1))" --set "output=$dir/{seed}.png")
    else sweep=(--sweep "prompt=@$WORK/prompts.txt" --set "output=$dir/{params.prompt}.png"); fi
    local t0; t0=$(now)
    "$S" run "$G" "${sweep[@]}" --manifest "$dir/m.jsonl" --cache-dir "$dir/cache" --quiet
    local t1; t1=$(now)
    local loads; loads=$(grep -o '"model_loads":[0-9]*' "$dir/m.jsonl" | cut -d: -f2 | awk '{ s += $1 } END { print s }')
    echo "$(awk "BEGIN { print $t1 - $t0 }") $loads"
}

# separate ROW REP: prints "seconds loads"
separate() {
    local dir="$WORK/$1-sep-$2"; mkdir -p "$dir"
    local t0; t0=$(now)
    local i=0
    while IFS= read -r prompt; do
        if [ "$1" = seeds ]; then set_args=(--set "seed=$i" --set "output=$dir/$i.png")
        else set_args=(--set "prompt=$prompt" --set "output=$dir/$i.png"); fi
        "$S" run "$G" "${set_args[@]}" --cache-dir "$dir/cache" --json >> "$dir/events.jsonl"
        i=$((i + 1))
    done < <(if [ "$1" = seeds ]; then head -1 "$WORK/prompts.txt" | yes | head -"$ITEMS"; else cat "$WORK/prompts.txt"; fi)
    local t1; t1=$(now)
    local loads; loads=$(grep '"event":"node_finished"' "$dir/events.jsonl" | grep -c '\.load","seconds":[0-9.]*,"cached":false' || true)
    echo "$(awk "BEGIN { print $t1 - $t0 }") $loads"
}

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1), $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: tools/bench/batch.sh --items $ITEMS --reps $REPS --rows $ROWS"
echo
echo "| row | items | one process: s/item | model loads | $ITEMS processes: s/item | model loads | one / separate |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for row in ${ROWS//,/ }; do
    : > "$WORK/$row.one"; : > "$WORK/$row.sep"
    for rep in $(seq 1 "$REPS"); do
        one "$row" "$rep" >> "$WORK/$row.one"
        separate "$row" "$rep" >> "$WORK/$row.sep"
    done
    o=$(cut -d' ' -f1 "$WORK/$row.one" | median); ol=$(cut -d' ' -f2 "$WORK/$row.one" | median)
    p=$(cut -d' ' -f1 "$WORK/$row.sep" | median); pl=$(cut -d' ' -f2 "$WORK/$row.sep" | median)
    awk -v row="$row" -v n="$ITEMS" -v o="$o" -v ol="$ol" -v p="$p" -v pl="$pl" \
        'BEGIN { printf "| %s | %d | %.2f | %d | %.2f | %d | %.2f |\n", row, n, o / n, ol, p / n, pl, o / p }'
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
