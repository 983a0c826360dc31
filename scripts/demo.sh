#!/usr/bin/env bash
# facegate's main job on its defaults, for now from the command line: enroll a few people from 3 photos each
# (../shared/faces/identities) into a fresh gallery, then identify their other photos and people who were never
# enrolled, and print what it decided for each photo with a tally at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh

echo "== cargo build --release"
cargo build --release --locked --quiet
bin="$CARGO_TARGET_DIR/release/facegate"
export FACEGATE_MODELS="$PWD/models:$FACEGATE_SHARED/models"
ids="$FACEGATE_SHARED/faces/identities"
enrolled=(Ben_Affleck Elton_John Jerry_Seinfeld Madonna)
impostors=(Mindy_Kaling Simon_Helberg)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
db="$work/gallery.db"

"$bin" models check
for p in "${enrolled[@]}"; do
  echo "== enroll $p (first 3 photos)"
  mapfile -t photos < <(ls "$ids/$p"/* | sort | head -3)
  "$bin" enroll --db "$db" --name "$p" "${photos[@]}" || true
done
echo "== people"
"$bin" people list --db "$db"

probes=()
for p in "${enrolled[@]}"; do
  mapfile -t rest < <(ls "$ids/$p"/* | sort | tail -n +4)
  probes+=("${rest[@]}")
done
for p in "${impostors[@]}"; do
  mapfile -t all < <(ls "$ids/$p"/* | sort | head -4)
  probes+=("${all[@]}")
done
echo "== identify ${#probes[@]} photos (${impostors[*]} are not enrolled: they must come out unknown)"
"$bin" identify --db "$db" "${probes[@]}" | tee "$work/identify.txt" || true

# Tally: the expected person is the photo's folder; for the impostors the right answer is unknown.
awk -v impostors=" ${impostors[*]} " '
  /: face 1 |: no face$|: error: / {
    path = $1; sub(/:$/, "", path); n = split(path, parts, "/"); who = parts[n - 1]
    got = "unknown"
    if ($0 ~ /: face 1 /) { got = $0; sub(/^.*\]: /, "", got); sub(/ .*/, "", got) }
    if (index(impostors, " " who " ")) { imp++; if (got == "unknown") imp_ok++; else imp_bad++ }
    else { gen++; if (got == who) gen_ok++; else if (got == "unknown") gen_unk++; else gen_bad++ }
  }
  END {
    printf "== enrolled people: %d of %d photos recognised, %d unknown, %d taken for someone else\n", gen_ok, gen, gen_unk, gen_bad
    printf "== never-enrolled people: %d of %d photos unknown, %d taken for someone enrolled\n", imp_ok, imp, imp_bad
  }' "$work/identify.txt"
