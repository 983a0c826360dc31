#!/usr/bin/env bash
# Puts every model file of models/manifest.toml into DIR, verified by sha256:
#   - committed models are copied from this repository's models/ folder;
#   - the others are taken from LOCAL_DIR when given and holding the right bytes (an offline copy, e.g.
#     ../shared/models), else downloaded from their pinned url with curl.
# Files already in DIR with the right sha256 are kept.
# Then run facegate with FACEGATE_MODELS=DIR (or --models DIR). Exits non-zero, naming the file, when a
# download fails (e.g. offline) or a checksum does not match; a bad download is never left in DIR.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 DIR [LOCAL_DIR]" >&2
  exit 2
fi
repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="$1"
local_dir="${2:-}"
mkdir -p "$dir"

# The manifest is flat TOML: print "file sha256 committed url" per [[model]] table.
entries() {
  awk '
    function flush() { if (file != "") print file, sha, committed, (url == "" ? "-" : url); file = sha = url = committed = "" }
    /^\[\[model\]\]/ { flush() }
    /^[a-z0-9_]+ *=/ {
      key = $1; val = $0; sub(/^[^=]*= */, "", val); gsub(/^"|"$/, "", val)
      if (key == "file") file = val; else if (key == "sha256") sha = val
      else if (key == "url") url = val; else if (key == "committed") committed = val
    }
    END { flush() }' "$repo/models/manifest.toml"
}

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

failed=0
while read -r file sha committed url; do
  dest="$dir/$file"
  if [ -f "$dest" ] && [ "$(sha_of "$dest")" = "$sha" ]; then
    echo "ok       $file (already present)"
    continue
  fi
  if [ "$committed" = "true" ]; then
    src="$repo/models/$file"
    if [ ! -f "$src" ] || [ "$(sha_of "$src")" != "$sha" ]; then
      echo "FAILED   $file: $src is missing or has the wrong sha256; restore it from git" >&2
      failed=1
      continue
    fi
    cp "$src" "$dest.part" && mv "$dest.part" "$dest"
    echo "copied   $file"
    continue
  fi
  if [ -n "$local_dir" ] && [ -f "$local_dir/$file" ] && [ "$(sha_of "$local_dir/$file")" = "$sha" ]; then
    cp "$local_dir/$file" "$dest.part" && mv "$dest.part" "$dest"
    echo "copied   $file (from $local_dir)"
    continue
  fi
  if [ "$url" = "-" ]; then
    echo "FAILED   $file: the manifest gives no url for it" >&2
    failed=1
    continue
  fi
  if ! curl -fsSL --connect-timeout 15 --max-time 600 --retry 2 -o "$dest.part" "$url"; then
    rm -f "$dest.part"
    echo "FAILED   $file: cannot download $url (offline, or the address is unreachable from here)" >&2
    failed=1
    continue
  fi
  actual="$(sha_of "$dest.part")"
  if [ "$actual" != "$sha" ]; then
    rm -f "$dest.part"
    echo "FAILED   $file: downloaded sha256 $actual, expected $sha" >&2
    failed=1
    continue
  fi
  mv "$dest.part" "$dest"
  echo "fetched  $file"
done < <(entries)

if [ "$failed" -ne 0 ]; then
  echo "some models are missing from $dir (see above)" >&2
  exit 1
fi
echo "all models in $dir; use FACEGATE_MODELS=$dir or --models $dir"
