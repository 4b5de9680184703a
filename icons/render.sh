#!/usr/bin/env bash
# Renders icons/coffer.svg into the PNG sizes of the hicolor icon theme:
#   icons/hicolor/NxN/apps/coffer.png for N in 16 32 48 64 128 256 512.
# Needs `rsvg-convert` (Debian package librsvg2-bin) or, failing that,
# ImageMagick's `convert` (package imagemagick). This script installs nothing.
# The PNGs are committed; run this again after changing the SVG.
set -euo pipefail
cd "$(dirname "$0")"
SIZES=(16 32 48 64 128 256 512)
if command -v rsvg-convert >/dev/null 2>&1; then
  render() { rsvg-convert --width "$1" --height "$1" --keep-aspect-ratio coffer.svg -o "$2"; }
elif command -v convert >/dev/null 2>&1; then
  render() { convert -background none -density 1200 coffer.svg -resize "$1x$1" "png32:$2"; }
else
  echo "render.sh: need rsvg-convert (apt-get install librsvg2-bin) or convert (apt-get install imagemagick)" >&2
  exit 1
fi
for n in "${SIZES[@]}"; do
  out="hicolor/${n}x${n}/apps/coffer.png"
  mkdir -p "$(dirname "$out")"
  render "$n" "$out"
  echo "$out"
done
